//! Promise: topic and pattern parsing never panics, accepts exactly what the documented
//! rules accept, names a rule the input really breaks, round-trips valid values, and
//! matches as the rules say. Stable twin of the `topic_pattern` fuzz target: the same
//! checking function (`ringcast_models::topic_pattern`), driven by proptest bytes, plus
//! the target's seed corpus and crash regressions.

use std::path::PathBuf;

use proptest::prelude::*;
use ringcast_models::{corpus_files, topic_pattern, Verdict};

fn fuzz_dir(kind: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "fuzz", kind, "topic_pattern"].iter().collect()
}

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
    let files = corpus_files(&fuzz_dir("corpus"));
    assert!(!files.is_empty(), "no seed corpus in {}", fuzz_dir("corpus").display());
    for (path, data) in files {
        eprintln!("replaying {}", path.display());
        assert_eq!(topic_pattern::check_bytes(&data), Verdict::Checked, "{}", path.display());
    }
}

#[test]
fn crash_regressions_replay() {
    for (path, data) in corpus_files(&fuzz_dir("regressions")) {
        eprintln!("replaying {}", path.display());
        assert_eq!(topic_pattern::check_bytes(&data), Verdict::Checked, "{}", path.display());
    }
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
