//! Periodic stats events on `$SYS.stats`.
//!
//! [`Bus::publish_stats_every`](crate::Bus::publish_stats_every) starts a thread that takes
//! a snapshot every interval and, when something changed, posts a [`StatsDelta`] event on
//! `$SYS.stats` to every shard, which delivers it to its subscribers whose patterns match
//! (`$SYS.>`, `$SYS.stats`, or `Subscription::all()`). Idle intervals emit nothing; a new
//! subscriber asks `Bus::stats` for the baseline.
//!
//! `$SYS` events do not go through the ring (the bus has one publisher, and it is the
//! user's) and are never counted in the bus, shard or topic counters, so a stats event
//! never causes the next one. They carry their own sequence numbers, starting at 0.

use std::time::Duration;

use super::snapshot::{StatsSnapshot, TopicStats, STATS_VERSION};
use crate::event::Event;
use crate::segment::{SegRef, Writer};
use crate::shared::Shared;
use crate::sync::atomic::Ordering;
use crate::sync::Arc;
use crate::topic::Topic;

/// The topic stats events are published on.
pub const STATS_TOPIC: &str = "$SYS.stats";

/// What changed over one interval: counter increases (gauges as they are now).
#[derive(Debug, Clone, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct StatsDelta {
    /// Schema version ([`STATS_VERSION`]).
    pub version: u32,
    /// Bus uptime at the start of the interval, in seconds.
    pub from_seconds: f64,
    /// Bus uptime at the end of the interval, in seconds.
    pub to_seconds: f64,
    /// Events published.
    pub published: u64,
    /// Deliveries queued (all shards).
    pub delivered: u64,
    /// Deliveries lost (all shards).
    pub dropped: u64,
    /// Pattern matches rejected by route or predicate filters.
    pub filtered_out: u64,
    /// Publishes that found the ring full.
    pub publisher_waits: u64,
    /// Subscriptions made.
    pub subscriptions: u64,
    /// Subscriptions ended.
    pub subscriptions_closed: u64,
    /// Ring occupancy now (a gauge).
    pub ring_occupancy: u64,
    /// Per topic prefix, the rows that changed.
    pub topics: Vec<TopicStats>,
}

impl StatsDelta {
    /// The change from `before` to `after`; `None` if nothing changed.
    pub fn between(before: &StatsSnapshot, after: &StatsSnapshot) -> Option<StatsDelta> {
        let sum = |s: &StatsSnapshot, f: fn(&super::snapshot::ShardStats) -> u64| {
            s.shards.iter().map(f).sum::<u64>()
        };
        let d = |a: u64, b: u64| b.saturating_sub(a);
        let mut topics = Vec::new();
        for t in &after.topics {
            let old = before.topics.iter().find(|o| o.prefix == t.prefix);
            let (p, dl, dr) = old.map_or((0, 0, 0), |o| (o.published, o.delivered, o.dropped));
            let row = TopicStats {
                prefix: t.prefix.clone(),
                published: d(p, t.published),
                delivered: d(dl, t.delivered),
                dropped: d(dr, t.dropped),
            };
            if row.published + row.delivered + row.dropped != 0 {
                topics.push(row);
            }
        }
        let delta = StatsDelta {
            version: STATS_VERSION,
            from_seconds: before.uptime_seconds,
            to_seconds: after.uptime_seconds,
            published: d(before.published, after.published),
            delivered: d(sum(before, |s| s.delivered), sum(after, |s| s.delivered)),
            dropped: d(sum(before, |s| s.dropped), sum(after, |s| s.dropped)),
            filtered_out: d(sum(before, |s| s.filtered_out), sum(after, |s| s.filtered_out)),
            publisher_waits: d(before.publisher_waits, after.publisher_waits),
            subscriptions: d(before.subscriptions, after.subscriptions),
            subscriptions_closed: d(before.subscriptions_closed, after.subscriptions_closed),
            ring_occupancy: after.ring_occupancy,
            topics,
        };
        let changed = delta.published
            + delta.delivered
            + delta.dropped
            + delta.filtered_out
            + delta.publisher_waits
            + delta.subscriptions
            + delta.subscriptions_closed
            != 0;
        changed.then_some(delta)
    }
}

/// Clamps a user interval to something a thread can sleep on sensibly.
pub(crate) fn clamp_interval(interval: Duration) -> Duration {
    interval.max(Duration::from_millis(1))
}

/// The stats events thread: a snapshot per interval, a `$SYS.stats` event when something
/// changed, until the bus closes.
pub(crate) fn run<E: From<StatsDelta> + Send + Sync + 'static>(
    shared: &Shared<E>,
    mut before: StatsSnapshot,
    interval: Duration,
) {
    let mut seq = 0;
    let mut writer = Writer::for_system(Arc::clone(&shared.pool));
    loop {
        {
            let mut stopped = shared.reporting.thread.stop.lock();
            if !*stopped {
                stopped = shared.reporting.thread.wake.wait_timeout(stopped, interval);
            }
            if *stopped {
                return;
            }
        }
        let after = shared.stats();
        if let Some(delta) = StatsDelta::between(&before, &after) {
            if let Ok(topic) = Topic::system(STATS_TOPIC) {
                let mut event = Event::new(topic, E::from(delta));
                event.stamp(seq);
                seq += 1;
                let (at, _) = writer.reserve(shared.shards.len() as u32);
                writer.write(at, event);
                writer.commit();
                writer.seal();
                post_system_event(shared, at);
            }
        }
        before = after;
    }
}

/// Hands a `$SYS` event, alone in a segment holding one reference per shard, to every
/// shard and wakes them.
fn post_system_event<E>(shared: &Shared<E>, at: SegRef<E>) {
    for inbox in shared.sys_inbox.iter() {
        inbox.events.lock().push(at);
        // Release: pairs with the Acquire swap in `Shard::deliver_system_events`.
        inbox.pending.store(true, Ordering::Release);
    }
    shared.ring.wake_consumers();
}
