//! Reference models and checking functions for shardcast, shared by the cargo-fuzz targets
//! in `fuzz/` and their stable-toolchain proptest twins in `tests/model_*.rs`.
//!
//! Each module is one target: an `Input` that derives [`arbitrary::Arbitrary`], a
//! `check(&Input) -> Verdict` that drives the real library and a plain model side by side
//! and panics on the first disagreement, and `check_bytes`, which decodes raw bytes exactly
//! as `libfuzzer_sys::fuzz_target!` does (`arbitrary_take_rest`), so a fuzzer's crash file
//! replays through `cargo test` unchanged.
//!
//! - [`topic_pattern`]: parsing, round trips and matching against a reference validator
//!   and matcher written from the documented rules.
//! - [`bus_ops`]: subscribe / publish / receive / drop / close sequences against an exact
//!   model of every subscriber queue, overflow policy, lag report and counter.
//! - [`binding_cache`]: late binding (alias → route) against a `HashMap` + LRU model.
//! - [`config`]: builder values: a working bus or a `ConfigError` naming a bad field.
//! - [`stats_text`]: `StatsSnapshot::prometheus_text` with arbitrary subscriber names and
//!   topic prefixes (built snapshots and a real bus's), read back by [`prometheus`], a
//!   strict parser of the text format that `tests/stats.rs` uses too.

mod late_binding;
mod support;

pub mod binding_cache;
pub mod bus_ops;
pub mod config;
pub mod prometheus;
pub mod stats_text;
pub mod topic_pattern;

pub use late_binding::{BindingCounts, LateBindingModel, Mark};
pub use support::{corpus_files, replay, Bytes, Seq, Verdict, HANG};
