//! What the bus counts, and the ways to read it.
//!
//! - [`Bus::stats`](crate::Bus::stats) returns a [`StatsSnapshot`]: plain data (serde), per
//!   shard ([`ShardStats`]), per live subscriber ([`SubscriberStats`]), per name of dropped
//!   subscribers ([`RetiredSubscriberStats`]), per topic prefix ([`TopicStats`]) and
//!   latency ([`LatencyStats`]); every open/closed pair satisfies `open >= closed`.
//!   [`StatsSnapshot::prometheus_text`] writes it in the Prometheus text format.
//! - [`Bus::publish_stats_every`](crate::Bus::publish_stats_every) posts a [`StatsDelta`] on
//!   [`STATS_TOPIC`] (`$SYS.stats`) every interval in which something changed. `$SYS`
//!   traffic is never counted.
//! - [`ExternalStats`]: counters kept outside the bus (a bridge's, say), shown in its
//!   snapshot and Prometheus text once attached with
//!   [`Bus::attach_stats`](crate::Bus::attach_stats).
//! - `StatsRecorder` (the `recorder` feature, on by default) records snapshots to a capture
//!   file that `shardcast stats plot` charts.

// Layout: `counters` (the lifetime pairs and each shard's counters, with the counting
// discipline and the orderings a snapshot relies on), `snapshot` (the plain data),
// `prometheus` (its text), `retired` (what dropped subscribers counted), `topics` (the
// bounded per-topic-prefix table), `latency` (sampled publish -> receive latency), `events`
// (`StatsDelta` and the `$SYS` thread), `external`, `recorder`. This file only declares and
// re-exports: those modules depend on each other and on the rest of the crate directly,
// never through here.

pub(crate) mod counters;
pub(crate) mod events;
pub(crate) mod external;
pub(crate) mod latency;
pub(crate) mod prometheus;
#[cfg(feature = "recorder")]
pub(crate) mod recorder;
pub(crate) mod retired;
pub(crate) mod snapshot;
pub(crate) mod topics;

pub use counters::CounterPair;
pub use events::{StatsDelta, STATS_TOPIC};
pub use external::{ExternalMetric, ExternalSample, ExternalStats, MetricKind};
#[cfg(feature = "recorder")]
pub use recorder::{Capture, CaptureMeta, RecorderError, StatsRecorder};
pub use retired::UNNAMED as RETIRED_UNNAMED;
pub use snapshot::{
    LatencyStats, RetiredSubscriberStats, ShardStats, StatsSnapshot, SubscriberStats, TopicStats,
    STATS_VERSION,
};
pub use topics::OVERFLOW as STATS_TOPIC_OVERFLOW;
