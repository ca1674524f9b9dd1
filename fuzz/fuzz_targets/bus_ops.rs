//! Subscribe / publish / receive / drop / close sequences against an exact model of every queue.
//! The checks live in `shardcast_models::bus_ops`; `tests/model_bus_ops.rs` is the stable twin.
#![no_main]

use libfuzzer_sys::{fuzz_target, Corpus};
use shardcast_models::{bus_ops, Verdict};

fuzz_target!(|input: bus_ops::Input| -> Corpus {
    match bus_ops::check(&input) {
        Verdict::Checked => Corpus::Keep,
        Verdict::Rejected => Corpus::Reject,
    }
});
