//! Builder values: a working bus or a ConfigError naming a bad field; never a panic.
//! The checks live in `shardcast_models::config`; `tests/model_config.rs` is the stable twin.
#![no_main]

use libfuzzer_sys::{fuzz_target, Corpus};
use shardcast_models::{config, Verdict};

fuzz_target!(|input: config::Input| -> Corpus {
    match config::check(&input) {
        Verdict::Checked => Corpus::Keep,
        Verdict::Rejected => Corpus::Reject,
    }
});
