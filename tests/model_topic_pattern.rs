//! Promise: topic and pattern parsing never panics, accepts exactly what the documented
//! rules accept, names a rule the input really breaks, round-trips valid values, and
//! matches as the rules say. Stable twin of the `topic_pattern` fuzz target: the same
//! checking function (`shardcast_models::topic_pattern`), driven by proptest bytes, plus
//! the target's seed corpus and crash regressions.

use proptest::prelude::*;
use shardcast_models::{replay, topic_pattern};

/// Bytes that decode to interesting inputs often: mostly the rules' own alphabet.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    let byte = prop_oneof![
        4 => prop::sample::select(b"ab.*>$SY x".to_vec()),
        1 => any::<u8>(),
    ];
    prop::collection::vec(byte, 0..600)
}

#[test]
fn seed_corpus_replays() {
    replay("corpus", "topic_pattern", true, topic_pattern::check_bytes);
}

#[test]
fn crash_regressions_replay() {
    replay("regressions", "topic_pattern", false, topic_pattern::check_bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_agree_with_the_reference(data in bytes()) {
        topic_pattern::check_bytes(&data);
    }

    #[test]
    fn token_strings_agree_with_the_reference(
        topic in "[ab$*>. x]{0,12}|(a|b|\\$SYS|\\*|>)(\\.(a|b|\\*|>)){0,6}",
        pattern in "[ab*>. ]{0,12}|(a|b|\\*|>)(\\.(a|b|\\*|>)){0,6}",
    ) {
        topic_pattern::check_strings(&topic, &pattern);
    }
}
