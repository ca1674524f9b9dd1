//! Late binding (alias → route) against a HashMap + LRU model, through a real bus.
//! The checks live in `shardcast_models::binding_cache`; `tests/model_binding_cache.rs` is the stable twin.
#![no_main]

use libfuzzer_sys::{fuzz_target, Corpus};
use shardcast_models::{binding_cache, Verdict};

fuzz_target!(|input: binding_cache::Input| -> Corpus {
    match binding_cache::check(&input) {
        Verdict::Checked => Corpus::Keep,
        Verdict::Rejected => Corpus::Reject,
    }
});
