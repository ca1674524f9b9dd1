//! Promise: any builder values give either a working bus (subscribe, publish, receive,
//! close) or a `ConfigError` naming a field that is out of its documented bounds; never a
//! panic. Stable twin of the `config` fuzz target: the same checking function
//! (`shardcast_models::config`), driven by proptest bytes, plus the target's seed corpus and
//! crash regressions.

use proptest::prelude::*;
use shardcast_models::{config, replay};

#[test]
fn seed_corpus_replays() {
    replay("corpus", "config", true, config::check_bytes);
}

#[test]
fn crash_regressions_replay() {
    replay("regressions", "config", false, config::check_bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn builder_values_build_or_name_the_bad_field(
        data in prop::collection::vec(any::<u8>(), 0..160),
    ) {
        config::check_bytes(&data);
    }
}
