//! The state every part of one bus shares (`Shared`), what keeps a bus alive
//! (`BusHandle`), registering a subscriber's queue with a shard, and the capacity checks
//! that both the builder and `subscribe` apply.
//!
//! `bus` builds it; the publisher, the subscribers and the shards read it. It depends on
//! the data path below it (ring, segments, registry, queues) and on the stats types, never
//! on the handles built over it (`Bus`, `Publisher`, `Subscriber`).

use std::task::Waker;
use std::thread::ThreadId;
use std::time::Instant;

use crate::error::{BusError, CloseReason, ClosedError, ConfigError};
use crate::queue::SubQueue;
use crate::registry::{Entry, Registry};
use crate::ring::Ring;
use crate::segment::{Pool, SegRef};
use crate::stats::counters::{CounterPair, ShardCounters};
use crate::stats::external::Sources;
use crate::stats::latency::{self, Latency};
use crate::stats::retired::Retired;
use crate::stats::snapshot::{
    ShardStats, StatsSnapshot, SubscriberStats, TopicStats, STATS_VERSION,
};
use crate::stats::topics::TopicTable;
use crate::subscription::{Meta, Subscription};
use crate::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use crate::sync::{thread::JoinHandle, Arc, Condvar, Mutex};
use crate::trace::RateLimit;
use crate::wait::WaitStrategy;

/// State shared by the bus handle, the publisher, the subscribers and the shards.
///
/// The fields at the top are the data path's: the ring and segments, the shards' lists and
/// counters, written by the publisher and the shards while events flow. The rest is grouped
/// by who writes it: [`Config`] (nobody, after the build), [`Lifetime`] (handles as they
/// come and go), [`Reporting`] (the stats side, off the data path).
pub(crate) struct Shared<E> {
    pub(crate) ring: Arc<Ring<SegRef<E>>>,
    /// Every segment of this bus (see `segment`).
    pub(crate) pool: Arc<Pool<E>>,
    pub(crate) shards: Box<[Registry<E>]>,
    /// One per shard, written only by that shard.
    pub(crate) counters: Box<[ShardCounters]>,
    /// One inbox per shard for `$SYS` events (which do not go through the ring).
    pub(crate) sys_inbox: Box<[SysInbox<E>]>,
    /// Per topic prefix; `None` with stats off. Written by the publisher and the shards.
    pub(crate) topics: Option<TopicTable>,
    /// Publishes that found the ring full. Written only by the publisher.
    pub(crate) publisher_waits: AtomicU64,
    /// Rate limit of the "ring stayed full" `tracing` event (empty without the feature).
    pub(crate) ring_full_limit: RateLimit,
    pub(crate) config: Config,
    pub(crate) lifetime: Lifetime,
    pub(crate) reporting: Reporting,
}

/// What the builder set; read-only once the bus is built.
pub(crate) struct Config {
    pub(crate) binding_capacity: usize,
    pub(crate) route_cache_capacity: usize,
    pub(crate) wait_strategy: WaitStrategy,
    /// Receives sampled for latency: 1 in this many; 0 = off.
    pub(crate) latency_sample_every: u32,
    /// A subscription's capacity when it sets none.
    pub(crate) queue_capacity: usize,
    /// Whether the Prometheus text labels per-subscriber series with their ids.
    pub(crate) stats_subscriber_ids: bool,
}

/// Written as handles come and go: taking the publisher, subscribing, dropping, closing.
pub(crate) struct Lifetime {
    /// Set by `Bus::close`: `Overflow::Block` pushes stop waiting.
    pub(crate) shutdown: AtomicBool,
    /// What closed the ring first (`CLOSED_BY_*`), set just before closing it; read by
    /// [`Shared::closed_error`] for the message of `BusError::Closed`.
    pub(crate) closed_by: AtomicU8,
    pub(crate) publisher_taken: AtomicBool,
    pub(crate) next_id: AtomicU64,
    /// Serialises subscribes, so least-loaded placement sees every earlier one.
    pub(crate) placement: Mutex<()>,
    /// Subscriptions opened / closed.
    pub(crate) subscriptions: CounterPair,
    /// Live `Subscriber` handles: incremented by subscribe, decremented last in
    /// `Subscriber::drop`. Read by `Publisher::subscriber_count` and `Publisher::closed`.
    pub(crate) live_subscribers: AtomicU64,
    /// Tasks waiting in `Publisher::closed` for `live_subscribers` to reach 0.
    pub(crate) closed_wakers: Mutex<ClosedWakers>,
}

/// The stats side: written off the data path (a subscriber's drop, `attach_stats`, the
/// `$SYS` stats thread), read by `Bus::stats`.
pub(crate) struct Reporting {
    pub(crate) started: Instant,
    /// Latency samples of subscribers that are gone (merged when they fold into
    /// `retired`, under its lock).
    pub(crate) retired_latency: Latency,
    /// Counters of subscribers that are gone, per name and shard (`stats::retired`).
    pub(crate) retired: Arc<Retired>,
    /// Counters kept outside the bus, shown by `Bus::stats` (never by `$SYS.stats`).
    pub(crate) external: Sources,
    /// The `$SYS` stats thread (`stats::events`).
    pub(crate) thread: StatsThread,
}

/// Starts and stops the `$SYS` stats thread.
#[derive(Default)]
pub(crate) struct StatsThread {
    pub(crate) started: AtomicBool,
    pub(crate) stop: Mutex<bool>,
    pub(crate) wake: Condvar,
}

/// The tasks waiting in `Publisher::closed`, each under the id of its future.
#[derive(Default)]
pub(crate) struct ClosedWakers {
    pub(crate) next_id: u64,
    pub(crate) wakers: Vec<(u64, Waker)>,
}

/// `$SYS` events waiting for one shard.
pub(crate) struct SysInbox<E> {
    pub(crate) pending: AtomicBool,
    pub(crate) events: Mutex<Vec<SegRef<E>>>,
}

/// What every handle (`Bus`, `Publisher`, `Subscriber`) keeps alive; its drop closes the
/// bus and joins the dispatchers. The dispatcher threads hold only `Shared`, never this, so
/// they never keep the bus alive.
pub(crate) struct BusHandle<E> {
    pub(crate) shared: Arc<Shared<E>>,
    pub(crate) threads: Mutex<Vec<JoinHandle<()>>>,
    #[cfg_attr(loom, allow(dead_code))]
    pub(crate) thread_ids: Vec<ThreadId>,
}

/// `Lifetime::closed_by`: still open (or closed by nobody who could see an error).
const OPEN: u8 = 0;
/// `Lifetime::closed_by`: the last publisher was dropped.
pub(crate) const CLOSED_BY_PUBLISHER: u8 = 1;
/// `Lifetime::closed_by`: `Bus::close` or `close_async`.
pub(crate) const CLOSED_BY_CLOSE: u8 = 2;
/// `Lifetime::closed_by`: a dispatcher panicked.
pub(crate) const CLOSED_BY_PANIC: u8 = 3;

pub(crate) fn check_queue_capacity(
    field: &'static str,
    capacity: usize,
) -> Result<(), ConfigError> {
    if capacity == 0 {
        return Err(ConfigError::new(field, capacity, "at least 1"));
    }
    // `ArrayQueue` allocates the slots up front; refuse sizes that cannot be allocated
    // rather than abort on allocation failure.
    if capacity > 1 << 26 {
        return Err(ConfigError::new(field, capacity, "at most 67108864"));
    }
    Ok(())
}

impl<E> Shared<E> {
    /// Closes the ring, recording `by` (a `CLOSED_BY_*`) as the reason if nothing closed
    /// it before. Returns whether this call closed it.
    pub(crate) fn close_ring(&self, by: u8) -> bool {
        // Relaxed: the first writer wins; the ring's close below is an AcqRel RMW, so a
        // reader that sees the ring closed through an Acquire load (`Ring::is_closed`)
        // also sees this value (see `closed_error`).
        let _ = self.lifetime.closed_by.compare_exchange(
            OPEN,
            by,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
        self.ring.close()
    }

    /// `BusError::Closed` for `operation`, saying why the bus closed. Call after seeing the
    /// ring closed; `otherwise` is the reason if none was recorded yet.
    pub(crate) fn closed_error(&self, operation: &'static str, otherwise: CloseReason) -> BusError {
        // Relaxed: ordered by the ring's CLOSED flag, as `close_ring` says.
        let reason = match self.lifetime.closed_by.load(Ordering::Relaxed) {
            CLOSED_BY_PUBLISHER => CloseReason::PublisherDropped,
            CLOSED_BY_CLOSE => CloseReason::CloseCalled,
            CLOSED_BY_PANIC => CloseReason::DispatcherPanicked,
            _ => otherwise,
        };
        BusError::Closed(ClosedError::new(operation, reason))
    }

    pub(crate) fn shard_stats(&self) -> Vec<ShardStats> {
        let ring = &self.ring;
        self.counters.iter().enumerate().map(|(i, c)| c.snapshot(i, || ring.published())).collect()
    }

    /// [`stats`](Self::stats) plus the attached external sources' readings.
    pub(crate) fn stats_with_external(&self) -> StatsSnapshot {
        let mut stats = self.stats();
        stats.external = self.reporting.external.collect();
        stats
    }

    pub(crate) fn stats(&self) -> StatsSnapshot {
        let shared = self;
        let (subscriptions, subscriptions_closed) = shared.lifetime.subscriptions.snapshot();
        let shards = self.shard_stats();
        // Loaded before the retired table's lock and dropped after it: dropping a list may
        // drop a queue, whose settle takes that lock (`stats::retired`, "Locks").
        let lists: Vec<_> = shared.shards.iter().map(|registry| registry.load()).collect();
        let mut all_latency = latency::empty();
        let mut subscribers = Vec::new();
        // Under the lock, each subscriber counts once: live, or folded into `retired`.
        let view = shared.reporting.retired.lock();
        let retired = view.rows();
        shared.reporting.retired_latency.merge_into(&mut all_latency);
        for entry in lists.iter().flat_map(|list| list.entries.iter()) {
            let q = &entry.queue;
            if view.is_folded(q.meta.id) {
                continue;
            }
            let (delivered, consumed) = q.delivered_consumed();
            q.latency.merge_into(&mut all_latency);
            subscribers.push(SubscriberStats {
                id: q.meta.id,
                name: q.meta.name.clone(),
                shard: q.meta.shard,
                delivered,
                consumed,
                dropped: q.dropped(),
                lagged_reports: q.lagged_reports(),
                queue_depth: q.len() as u64,
                queue_capacity: q.capacity() as u64,
                latency: q.latency.stats(),
            });
        }
        drop(view);
        drop(lists);
        subscribers.sort_unstable_by_key(|s| s.id);
        let topics = shared.topics.as_ref().map_or_else(Vec::new, |t| {
            t.snapshot()
                .into_iter()
                .map(|(prefix, published, delivered, dropped)| TopicStats {
                    prefix,
                    published,
                    delivered,
                    dropped,
                })
                .collect()
        });
        StatsSnapshot {
            version: STATS_VERSION,
            uptime_seconds: shared.reporting.started.elapsed().as_secs_f64(),
            published: shared.ring.published(),
            // Relaxed: a plain counter read.
            publisher_waits: shared.publisher_waits.load(Ordering::Relaxed),
            ring_capacity: shared.ring.capacity(),
            ring_occupancy: shared.ring.occupancy(),
            subscriptions,
            subscriptions_closed,
            shards,
            subscribers,
            retired,
            subscribers_by_name: !shared.config.stats_subscriber_ids,
            topics,
            latency: latency::stats_of(&all_latency),
            external: Vec::new(),
        }
    }

    /// Places a new subscriber on the least-loaded shard and registers its queue there:
    /// the core of `Bus::subscribe` and `Subscriber::resubscribe`, which wrap the queue in
    /// a `Subscriber`.
    pub(crate) fn register(
        &self,
        subscription: &Subscription<E>,
        operation: &'static str,
    ) -> Result<Arc<SubQueue<E>>, BusError> {
        let shared = self;
        let capacity = subscription.capacity.unwrap_or(shared.config.queue_capacity);
        check_queue_capacity("capacity", capacity)?;
        let _placement = shared.lifetime.placement.lock();
        let shard = (0..shared.shards.len()).min_by_key(|&i| shared.shards[i].len()).unwrap_or(0);
        // Relaxed: ids need only be unique.
        let id = shared.lifetime.next_id.fetch_add(1, Ordering::Relaxed);
        let name = subscription.name.clone().unwrap_or_else(|| format!("sub-{id}"));
        let queue = Arc::new(SubQueue::new(
            capacity,
            subscription.overflow,
            Meta { id, name, shard },
            Arc::clone(&shared.pool),
            Some(Arc::clone(&shared.reporting.retired)),
        ));
        let start = || (!shared.ring.is_closed()).then(|| shared.ring.published_acquire());
        let entry = Entry {
            id,
            start: 0,
            queue: Arc::clone(&queue),
            matcher: subscription.matcher.clone(),
            route: subscription.route.map(|r| r.as_u128()),
            filter: subscription.filter.clone(),
        };
        shared.shards[shard]
            .insert(entry, start)
            .map_err(|_| shared.closed_error(operation, CloseReason::CloseCalled))?;
        shared.lifetime.subscriptions.open();
        // Relaxed: a count; `Publisher::closed` needs only the decrements ordered (a
        // subscriber that exists was counted before its handle could reach anyone).
        shared.lifetime.live_subscribers.fetch_add(1, Ordering::Relaxed);
        Ok(queue)
    }
}

impl<E> BusHandle<E> {
    /// The part of `close` that never waits: closes the ring, stops the stats thread and
    /// wakes every shard waiting on a `Block` subscriber (`Bus::close_async` awaits the
    /// rest).
    pub(crate) fn start_close(&self) {
        let shared = &self.shared;
        // Release: pairs with the Acquire loads in `SubQueue::push_blocking`.
        shared.lifetime.shutdown.store(true, Ordering::Release);
        shared.close_ring(CLOSED_BY_CLOSE);
        *shared.reporting.thread.stop.lock() = true;
        shared.reporting.thread.wake.notify_all();
        for registry in shared.shards.iter() {
            for entry in registry.load().entries.iter() {
                entry.queue.wake_shard_if_registered();
            }
        }
    }

    pub(crate) fn close(&self) {
        let shared = &self.shared;
        self.start_close();
        #[cfg(not(loom))]
        if self.thread_ids.contains(&std::thread::current().id()) {
            // Called from a dispatcher thread (a subscriber's code holding a bus handle):
            // joining itself would deadlock; the last handle's drop joins.
            return;
        }
        let threads = std::mem::take(&mut *self.threads.lock());
        for thread in threads {
            // A shard that panicked already closed what it owned (dispatch's `Finish`).
            let _ = thread.join();
        }
        // A concurrent close may have taken the threads: wait for the shards all the same,
        // so that after any `close` returns every queue is closed (each shard closes its
        // queues, then retires its cursor).
        shared.ring.wait_retired(shared.config.wait_strategy);
    }
}

impl<E> Drop for BusHandle<E> {
    fn drop(&mut self) {
        self.close();
    }
}
