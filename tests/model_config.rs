//! Promise: any builder values give either a working bus (subscribe, publish, receive,
//! close) or a `ConfigError` naming a field that is out of its documented bounds; never a
//! panic. Stable twin of the `config` fuzz target: the same checking function
//! (`ringcast_models::config`), driven by proptest bytes, plus the target's seed corpus and
//! crash regressions.

use std::path::PathBuf;

use proptest::prelude::*;
use ringcast_models::{config, corpus_files, Verdict};

fn fuzz_dir(kind: &str) -> PathBuf {
    [env!("CARGO_MANIFEST_DIR"), "fuzz", kind, "config"].iter().collect()
}

#[test]
fn seed_corpus_replays() {
    let files = corpus_files(&fuzz_dir("corpus"));
    assert!(!files.is_empty(), "no seed corpus in {}", fuzz_dir("corpus").display());
    for (path, data) in files {
        eprintln!("replaying {}", path.display());
        assert_eq!(config::check_bytes(&data), Verdict::Checked, "{}", path.display());
    }
}

#[test]
fn crash_regressions_replay() {
    for (path, data) in corpus_files(&fuzz_dir("regressions")) {
        eprintln!("replaying {}", path.display());
        assert_eq!(config::check_bytes(&data), Verdict::Checked, "{}", path.display());
    }
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
