//! Promise: late binding behaves as a bounded LRU map alias → route: every delivery's
//! resolved route and every shard's binds / unbinds / hits / misses / evictions counters
//! equal a `HashMap` + recency-list model's, at every capacity including 0. Stable twin of
//! the `binding_cache` fuzz target: the same checking function
//! (`shardcast_models::binding_cache`), driven by proptest bytes, plus the target's seed
//! corpus and crash regressions.

use proptest::prelude::*;
use shardcast_models::{binding_cache, replay};

#[test]
fn seed_corpus_replays() {
    replay("corpus", "binding_cache", true, binding_cache::check_bytes);
}

#[test]
fn crash_regressions_replay() {
    replay("regressions", "binding_cache", false, binding_cache::check_bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn bindings_agree_with_the_lru_model(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        binding_cache::check_bytes(&data);
    }
}
