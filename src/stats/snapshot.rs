//! The plain-data snapshot returned by `Bus::stats` (its Prometheus text form is in
//! `prometheus`).
//!
//! Field names are stable (they are the JSON keys); entries are sorted (shards by index,
//! subscribers by id, retired subscribers by name and shard, topics by prefix), so two
//! snapshots diff cleanly.

use super::external::ExternalMetric;

/// Version of the snapshot's schema; bumped on any incompatible change.
pub const STATS_VERSION: u32 = 1;

/// Everything the bus counted, at one moment.
///
/// Each subscriber counts once: in `subscribers` while it lives, then in `retired`, which
/// its counters join at the instant it leaves `subscribers` (a snapshot taken while it is
/// dropped sees one or the other). Totals over both never go down; over `subscribers` alone
/// they drop when a subscriber does.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct StatsSnapshot {
    /// Schema version ([`STATS_VERSION`]).
    pub version: u32,
    /// Seconds since the bus was built.
    pub uptime_seconds: f64,
    /// Events published.
    pub published: u64,
    /// Publishes that found the ring full and had to wait (or failed to, for `try_publish`).
    pub publisher_waits: u64,
    /// Ring slots.
    pub ring_capacity: u64,
    /// Events published but not yet read by the slowest shard.
    pub ring_occupancy: u64,
    /// Subscriptions ever made.
    pub subscriptions: u64,
    /// Subscriptions ended (subscriber dropped).
    pub subscriptions_closed: u64,
    /// Per dispatcher shard.
    pub shards: Vec<ShardStats>,
    /// Per live subscriber.
    pub subscribers: Vec<SubscriberStats>,
    /// What dropped subscribers counted, per name and shard, sorted by both: a subscriber's
    /// counters move here when it is dropped, so totals over `subscribers` and `retired`
    /// never go down. Subscribers given no name fold into one row,
    /// [`RETIRED_UNNAMED`](super::RETIRED_UNNAMED). Absent (empty) in snapshots from older
    /// versions.
    #[cfg_attr(feature = "serde", serde(default))]
    pub retired: Vec<RetiredSubscriberStats>,
    /// The Prometheus text labels per-subscriber series by name and shard alone, summing
    /// the subscribers that share both, live and retired, instead of one series per id
    /// (`BusBuilder::stats_subscriber_ids(false)`). `false` in snapshots from older versions.
    #[cfg_attr(feature = "serde", serde(default))]
    pub subscribers_by_name: bool,
    /// Per topic prefix.
    pub topics: Vec<TopicStats>,
    /// Publish → receive latency over every subscriber (live and closed).
    pub latency: LatencyStats,
    /// Counters kept outside the bus and attached to it
    /// ([`Bus::attach_stats`](crate::Bus::attach_stats)), as their sources read them.
    /// Not part of `$SYS.stats` deltas; absent (empty) in snapshots from older versions.
    #[cfg_attr(feature = "serde", serde(default))]
    pub external: Vec<ExternalMetric>,
}

/// One dispatcher shard's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ShardStats {
    /// Shard index.
    pub shard: usize,
    /// Events published but not yet dispatched by this shard.
    pub backlog: u64,
    /// Events this shard read from the ring.
    pub dispatched: u64,
    /// Events queued to a subscriber.
    pub delivered: u64,
    /// Events lost at a full subscriber queue (the sum of the `dropped_*` reasons).
    pub dropped: u64,
    /// Lost under `Overflow::DropNewest`.
    pub dropped_newest: u64,
    /// Lost under `Overflow::DropOldest` (the evicted events).
    pub dropped_oldest: u64,
    /// Lost under `Overflow::Disconnect`.
    pub dropped_disconnect: u64,
    /// Lost by an `Overflow::Block` wait that `Bus::close` ended.
    pub dropped_shutdown: u64,
    /// Pattern matches rejected by a route or predicate filter.
    pub filtered_out: u64,
    /// Predicate filters that panicked (treated as no match).
    pub filter_panics: u64,
    /// Route cache hits (topic → subscribers).
    pub route_hits: u64,
    /// Route cache misses.
    pub route_misses: u64,
    /// Route cache flushes after a subscribe or unsubscribe.
    pub route_invalidations: u64,
    /// Alias → route bindings recorded.
    pub binds: u64,
    /// Bindings removed by an unbinding event.
    pub unbinds: u64,
    /// Events without a route resolved through their alias.
    pub binding_hits: u64,
    /// Events without a route whose alias had no binding.
    pub binding_misses: u64,
    /// Bindings evicted (least recently used) at capacity.
    pub binding_evictions: u64,
}

/// One live subscriber's counters.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct SubscriberStats {
    /// Subscription id.
    pub id: u64,
    /// Name (`sub-<id>` unless given).
    pub name: String,
    /// Its dispatcher shard.
    pub shard: usize,
    /// Events queued to it.
    pub delivered: u64,
    /// Events it received.
    pub consumed: u64,
    /// Events it lost (queue overflow).
    pub dropped: u64,
    /// `Lagged` errors it was handed.
    pub lagged_reports: u64,
    /// Events queued now.
    pub queue_depth: u64,
    /// Queue capacity.
    pub queue_capacity: u64,
    /// Its publish → receive latency.
    pub latency: LatencyStats,
}

/// What the dropped subscribers of one name on one shard counted, in all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct RetiredSubscriberStats {
    /// The name they were given, or [`RETIRED_UNNAMED`](super::RETIRED_UNNAMED) for those
    /// given none.
    pub name: String,
    /// Their dispatcher shard.
    pub shard: usize,
    /// How many were dropped.
    pub subscribers: u64,
    /// Events queued to them.
    pub delivered: u64,
    /// Events they received.
    pub consumed: u64,
    /// Events they lost (queue overflow).
    pub dropped: u64,
    /// `Lagged` errors they were handed.
    pub lagged_reports: u64,
}

/// Counters of one topic prefix (`__overflow__` collects prefixes past the table's cap).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct TopicStats {
    /// The topic's first `stats_topic_levels` tokens.
    pub prefix: String,
    /// Events published.
    pub published: u64,
    /// Deliveries queued.
    pub delivered: u64,
    /// Deliveries lost.
    pub dropped: u64,
}

/// Latency percentiles of sampled receives, in seconds.
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct LatencyStats {
    /// Samples recorded.
    pub samples: u64,
    /// Median.
    pub p50_seconds: f64,
    /// 90th percentile.
    pub p90_seconds: f64,
    /// 99th percentile.
    pub p99_seconds: f64,
    /// 99.9th percentile.
    pub p999_seconds: f64,
    /// Largest sample.
    pub max_seconds: f64,
    /// Sum of the samples.
    pub sum_seconds: f64,
}

impl LatencyStats {
    /// The summary's quantiles as Prometheus labels and values: `NaN` (Prometheus's "no
    /// observations") while there are no samples, never a zero that was not measured.
    pub fn quantiles(&self) -> [(&'static str, f64); 4] {
        let q = |v: f64| if self.samples == 0 { f64::NAN } else { v };
        [
            ("0.5", q(self.p50_seconds)),
            ("0.9", q(self.p90_seconds)),
            ("0.99", q(self.p99_seconds)),
            ("0.999", q(self.p999_seconds)),
        ]
    }
}

impl StatsSnapshot {
    /// The worst (deepest) subscriber queue now: `(name, depth)`.
    pub fn deepest_queue(&self) -> Option<(&str, u64)> {
        self.subscribers
            .iter()
            .max_by_key(|s| s.queue_depth)
            .map(|s| (s.name.as_str(), s.queue_depth))
    }

    /// Total events lost at subscriber queues.
    pub fn dropped(&self) -> u64 {
        self.shards.iter().map(|s| s.dropped).sum()
    }
}
