//! `StatsSnapshot::prometheus_text` with arbitrary subscriber names and topic prefixes (built
//! snapshots and a real bus's), read back by a strict parser of the text format.
//! The checks live in `shardcast_models::stats_text`; `tests/model_stats_text.rs` is the stable twin.
#![no_main]

use libfuzzer_sys::{fuzz_target, Corpus};
use shardcast_models::{stats_text, Verdict};

fuzz_target!(|input: stats_text::Input| -> Corpus {
    match stats_text::check(&input) {
        Verdict::Checked => Corpus::Keep,
        Verdict::Rejected => Corpus::Reject,
    }
});
