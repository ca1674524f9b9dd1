//! Counters, gauges and latency: where every event went.
//!
//! - `counters`: the lifetime pairs and each shard's counters (the counting discipline and
//!   the orderings a snapshot relies on);
//! - `snapshot`: the plain-data [`StatsSnapshot`] that `Bus::stats` returns;
//! - `prometheus`: its Prometheus text;
//! - `topics`: the bounded per-topic-prefix table;
//! - `latency`: sampled publish → receive latency;
//! - `events`: the [`StatsDelta`] events on `$SYS.stats` and the thread that posts them;
//! - `external`: counters kept outside the bus ([`ExternalStats`]);
//! - `recorder`: `StatsRecorder`, snapshots recorded to a capture file (the `recorder`
//!   feature, on by default).
//!
//! This file only declares and re-exports: the modules below depend on each other and on
//! the rest of the crate directly, never through here.

pub(crate) mod counters;
pub(crate) mod events;
pub(crate) mod external;
pub(crate) mod latency;
pub(crate) mod prometheus;
#[cfg(feature = "recorder")]
pub(crate) mod recorder;
pub(crate) mod snapshot;
pub(crate) mod topics;

pub use counters::CounterPair;
pub use events::{StatsDelta, STATS_TOPIC};
pub use external::{ExternalMetric, ExternalSample, ExternalStats, MetricKind};
#[cfg(feature = "recorder")]
pub use recorder::{Capture, CaptureMeta, RecorderError, StatsRecorder};
pub use snapshot::{
    LatencyStats, ShardStats, StatsSnapshot, SubscriberStats, TopicStats, STATS_VERSION,
};
pub use topics::OVERFLOW as STATS_TOPIC_OVERFLOW;
