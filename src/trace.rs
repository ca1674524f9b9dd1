//! Optional `tracing` events (the `tracing` feature): the rare things an operator wants in
//! the logs, each rate-limited, never one per event. Without the feature every function
//! here is an empty inline call.
//!
//! | event | level | where | limit |
//! |---|---|---|---|
//! | a subscriber loses events (`DropNewest`, `DropOldest`) | `WARN` | its shard | one per subscriber per second |
//! | a subscriber is disconnected (`Disconnect` overflow) | `WARN` | its shard | once (its queue closes) |
//! | a subscription's predicate panicked | `ERROR` | its shard | one per subscriber per second |
//! | a dispatcher shard panicked | `ERROR` | the shard, unwinding | once per shard |
//! | the publisher waited for ring space longer than 100 ms | `WARN` | the publisher | one per bus per second |

use std::time::Duration;

#[cfg(feature = "tracing")]
use std::sync::atomic::{AtomicU64, Ordering};

use crate::subscription::{DropReason, Meta};

/// How long a publish may wait for ring space before it is reported.
#[cfg(feature = "tracing")]
pub(crate) const RING_FULL_WARN: Duration = Duration::from_millis(100);

/// At most one event per second from one source (a subscriber, the publisher).
#[derive(Default)]
pub(crate) struct RateLimit {
    /// Milliseconds since the process's first event, plus one, of the last event emitted
    /// (0: none yet).
    #[cfg(feature = "tracing")]
    last: AtomicU64,
}

impl RateLimit {
    /// Whether an event may be emitted now (and, if so, counts it).
    #[cfg(feature = "tracing")]
    fn allow(&self) -> bool {
        static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
        let now = EPOCH.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64 + 1;
        // Relaxed (both): a rate limit, ordered by nothing; a lost race only drops an event
        // that another thread emitted in the same second.
        let last = self.last.load(Ordering::Relaxed);
        if last != 0 && now < last + 1000 {
            return false;
        }
        self.last.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
    }
}

/// A subscriber lost `n` events under its overflow policy (shard).
#[inline(always)]
pub(crate) fn lost(meta: &Meta, limit: &RateLimit, reason: DropReason, n: u64) {
    #[cfg(feature = "tracing")]
    match reason {
        DropReason::Disconnect => tracing::warn!(
            subscriber = %meta.name, id = meta.id, shard = meta.shard,
            "shardcast: subscriber disconnected: its queue overflowed (Overflow::Disconnect)"
        ),
        DropReason::Shutdown => {}
        DropReason::Newest | DropReason::Oldest if limit.allow() => tracing::warn!(
            subscriber = %meta.name, id = meta.id, shard = meta.shard, lost = n,
            policy = if reason == DropReason::Newest { "DropNewest" } else { "DropOldest" },
            "shardcast: subscriber is losing events: its queue is full"
        ),
        DropReason::Newest | DropReason::Oldest => {}
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (meta, limit, reason, n);
}

/// A subscription's predicate panicked (shard).
#[inline(always)]
pub(crate) fn predicate_panicked(meta: &Meta, limit: &RateLimit) {
    #[cfg(feature = "tracing")]
    if limit.allow() {
        tracing::error!(
            subscriber = %meta.name, id = meta.id, shard = meta.shard,
            "shardcast: a subscription predicate panicked; the event was not delivered to it"
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (meta, limit);
}

/// A dispatcher shard is unwinding from a panic.
#[inline(always)]
pub(crate) fn shard_panicked(shard: usize) {
    #[cfg(feature = "tracing")]
    tracing::error!(
        shard,
        "shardcast: dispatcher shard panicked; its subscribers are closed and the bus is closed \
         for publishing"
    );
    #[cfg(not(feature = "tracing"))]
    let _ = shard;
}

/// A publish waited `waited` for ring space (publisher; reported past 100 ms).
#[inline(always)]
pub(crate) fn ring_full(limit: &RateLimit, waited: Duration) {
    #[cfg(feature = "tracing")]
    if waited >= RING_FULL_WARN && limit.allow() {
        tracing::warn!(
            waited_ms = waited.as_millis() as u64,
            "shardcast: the publisher waited for ring space: a dispatcher shard is behind \
             (a slow Overflow::Block subscriber, or too little CPU)"
        );
    }
    #[cfg(not(feature = "tracing"))]
    let _ = (limit, waited);
}
