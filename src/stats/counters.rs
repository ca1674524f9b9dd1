//! The bus's own counters: lifetime pairs, each shard's padded counters and the plain
//! `Tally` a shard counts a batch in.
//!
//! # Counting discipline
//! - Each counter has exactly one writer site. Counters written by one thread use a
//!   `Relaxed` load and store (no read-modify-write); counters written by several threads
//!   (subscription lifetimes) use `fetch_add`.
//! - Shards count in a plain [`Tally`] during a batch and add it to their padded
//!   [`ShardCounters`] once per batch.
//! - Every lifetime is an open/closed pair ([`CounterPair`] and the per-subscriber
//!   `delivered`/`consumed`, the shard's `dispatched` against `published`). Close
//!   increments use `Release`; a snapshot loads each closed counter with `Acquire` *before*
//!   its open counterpart with `Relaxed`, so a snapshot never shows closed > open, on any
//!   architecture.
//!
//! # Orderings
//! | write (Release) | read (Acquire, then the open side Relaxed) | pair |
//! |---|---|---|
//! | `CounterPair::close` | `CounterPair::snapshot` | `subscriptions` / `subscriptions_closed` |
//! | receiver's `consumed` store (`SubQueue::count_consumed`) | `SubQueue::delivered_consumed` | `delivered` / `consumed` per subscriber |
//! | shard's `dispatched` store in `ShardCounters::add` | `ShardCounters::snapshot`, before `published` | `published` / `dispatched` |
//!
//! Modelled in `loom-tests/tests/counters.rs` (which fails if a Release is weakened).

use crossbeam_utils::CachePadded;

use super::snapshot::ShardStats;
use crate::sync::atomic::{AtomicU64, Ordering};

/// Counts kept by the shard thread in plain integers and flushed once per batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) dispatched: u64,
    pub(crate) delivered: u64,
    pub(crate) dropped: u64,
    pub(crate) dropped_newest: u64,
    pub(crate) dropped_oldest: u64,
    pub(crate) dropped_disconnect: u64,
    pub(crate) dropped_shutdown: u64,
    pub(crate) filtered_out: u64,
    pub(crate) filter_panics: u64,
    pub(crate) route_hits: u64,
    pub(crate) route_misses: u64,
    pub(crate) route_invalidations: u64,
    pub(crate) binds: u64,
    pub(crate) unbinds: u64,
    pub(crate) binding_hits: u64,
    pub(crate) binding_misses: u64,
    pub(crate) binding_evictions: u64,
}

/// An open/closed lifetime counter pair, for lifetimes that open and close on any thread.
#[derive(Default, Debug)]
pub struct CounterPair {
    open: AtomicU64,
    closed: AtomicU64,
}

impl CounterPair {
    /// A pair at zero.
    pub fn new() -> Self {
        CounterPair { open: AtomicU64::new(0), closed: AtomicU64::new(0) }
    }

    /// Counts an opening.
    pub fn open(&self) {
        // Relaxed: the opening is published by whatever later hands the object to the
        // thread that closes it, and that close is Release.
        self.open.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a closing; must follow (happen after) its opening.
    pub fn close(&self) {
        // Release: pairs with the Acquire load in `snapshot`; everything before this close,
        // including its opening, is visible to a snapshot that sees it.
        self.closed.fetch_add(1, Ordering::Release);
    }

    /// `(open, closed)`, with `open >= closed` guaranteed.
    pub fn snapshot(&self) -> (u64, u64) {
        // Acquire first: pairs with `close`. Then the open side, which can only be newer.
        let closed = self.closed.load(Ordering::Acquire);
        let open = self.open.load(Ordering::Relaxed);
        (open, closed)
    }
}

/// One shard's counters, padded so shards do not share cache lines.
#[derive(Default)]
pub(crate) struct ShardCounters {
    inner: CachePadded<Inner>,
}

macro_rules! shard_counters {
    ($($field:ident,)*) => {
        #[derive(Default)]
        struct Inner {
            $($field: AtomicU64,)*
        }

        impl ShardCounters {
            /// Adds a batch's tally. Called only by the owning shard thread.
            pub(crate) fn add(&self, tally: &Tally) {
                $(
                    if tally.$field != 0 {
                        let c = &self.inner.$field;
                        // Release: single writer (this shard). For `dispatched` it pairs
                        // with the Acquire load in `snapshot` (`published >= dispatched`);
                        // for the others it is free on x86 and keeps one code path.
                        c.store(c.load(Ordering::Relaxed) + tally.$field, Ordering::Release);
                    }
                )*
            }

            /// The shard's counters; `published` is read after `dispatched`.
            pub(crate) fn snapshot(&self, shard: usize, published: impl FnOnce() -> u64) -> ShardStats {
                // Acquire: pairs with the Release store in `add`; the ring count read
                // after it is at least what the shard dispatched.
                let dispatched = self.inner.dispatched.load(Ordering::Acquire);
                let published = published();
                ShardStats {
                    shard,
                    backlog: published.saturating_sub(dispatched),
                    // Relaxed: independent monotonic counters.
                    $($field: self.inner.$field.load(Ordering::Relaxed),)*
                }
            }
        }
    };
}

shard_counters! {
    dispatched,
    delivered,
    dropped,
    dropped_newest,
    dropped_oldest,
    dropped_disconnect,
    dropped_shutdown,
    filtered_out,
    filter_panics,
    route_hits,
    route_misses,
    route_invalidations,
    binds,
    unbinds,
    binding_hits,
    binding_misses,
    binding_evictions,
}
