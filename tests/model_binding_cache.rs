//! Promise: late binding behaves as a bounded LRU map alias → route: every delivery's
//! resolved route and every shard's binds / unbinds / hits / misses / evictions counters
//! equal a `HashMap` + recency-list model's, at every capacity including 0. Stable twin of
//! the `binding_cache` fuzz target: the same checking function
//! (`ringcast_models::binding_cache`), driven by proptest bytes, plus the target's seed
//! corpus and crash regressions.

use std::path::PathBuf;

use proptest::prelude::*;
use ringcast_models::{binding_cache, corpus_files, Verdict};

fn fuzz_dir(kind: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "fuzz", kind, "binding_cache"].iter().collect()
}

#[test]
fn seed_corpus_replays() {
    let files = corpus_files(&fuzz_dir("corpus"));
    assert!(!files.is_empty(), "no seed corpus in {}", fuzz_dir("corpus").display());
    for (path, data) in files {
        eprintln!("replaying {}", path.display());
        assert_eq!(binding_cache::check_bytes(&data), Verdict::Checked, "{}", path.display());
    }
}

#[test]
fn crash_regressions_replay() {
    for (path, data) in corpus_files(&fuzz_dir("regressions")) {
        eprintln!("replaying {}", path.display());
        assert_eq!(binding_cache::check_bytes(&data), Verdict::Checked, "{}", path.display());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn bindings_agree_with_the_lru_model(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        binding_cache::check_bytes(&data);
    }
}
