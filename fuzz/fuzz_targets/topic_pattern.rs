//! Topic and pattern parsing, round trips and matching against a reference validator and matcher.
//! The checks live in `shardcast_models::topic_pattern`; `tests/model_topic_pattern.rs` is the stable twin.
#![no_main]

use libfuzzer_sys::{fuzz_target, Corpus};
use shardcast_models::{topic_pattern, Verdict};

fuzz_target!(|input: topic_pattern::Input| -> Corpus {
    match topic_pattern::check(&input) {
        Verdict::Checked => Corpus::Keep,
        Verdict::Rejected => Corpus::Reject,
    }
});
