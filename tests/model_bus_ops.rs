//! Promise: every subscriber receives exactly what a plain model of its queue predicts,
//! whatever the sequence of subscribes, publishes (with late binding), receives, drops and
//! closes: the same events in order with their resolved routes, `Lagged(n)` exactly where
//! and as large as the losses its overflow policy caused, then `Closed`; and the shards'
//! counters add up. Stable twin of the `bus_ops` fuzz target: the same checking function
//! (`ringcast_models::bus_ops`), driven by proptest bytes, plus the target's seed corpus
//! and crash regressions.

use std::path::PathBuf;

use proptest::prelude::*;
use ringcast_models::{bus_ops, corpus_files, Verdict};

fn fuzz_dir(kind: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "fuzz", kind, "bus_ops"].iter().collect()
}

#[test]
fn seed_corpus_replays() {
    let files = corpus_files(&fuzz_dir("corpus"));
    assert!(!files.is_empty(), "no seed corpus in {}", fuzz_dir("corpus").display());
    for (path, data) in files {
        eprintln!("replaying {}", path.display());
        assert_eq!(bus_ops::check_bytes(&data), Verdict::Checked, "{}", path.display());
    }
}

#[test]
fn crash_regressions_replay() {
    for (path, data) in corpus_files(&fuzz_dir("regressions")) {
        eprintln!("replaying {}", path.display());
        assert_eq!(bus_ops::check_bytes(&data), Verdict::Checked, "{}", path.display());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn bus_agrees_with_the_model(data in prop::collection::vec(any::<u8>(), 0..1024)) {
        bus_ops::check_bytes(&data);
    }
}
