//! Counters: written by exactly one site each, read as snapshots.
//!
//! Each shard keeps its counts in a plain [`Tally`] while it dispatches a batch and adds
//! it to its [`ShardCounters`] once per batch. The counters are written only by their
//! shard thread, so a `Relaxed` load and store (no read-modify-write) is enough; readers
//! get `Relaxed` values, which are monotonic per counter.

use crossbeam_utils::CachePadded;

use crate::routing::Tally;
use crate::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($($field:ident: $doc:literal,)*) => {
        /// One shard's counters, padded so shards do not share cache lines.
        #[derive(Default)]
        pub(crate) struct ShardCounters {
            inner: CachePadded<Inner>,
        }

        #[derive(Default)]
        struct Inner {
            $($field: AtomicU64,)*
        }

        impl ShardCounters {
            /// Adds a batch's tally. Called only by the owning shard thread.
            pub(crate) fn add(&self, tally: &Tally) {
                $(
                    if tally.$field != 0 {
                        // Relaxed: single writer (this shard); see the module docs.
                        let c = &self.inner.$field;
                        c.store(c.load(Ordering::Relaxed) + tally.$field, Ordering::Relaxed);
                    }
                )*
            }

            pub(crate) fn snapshot(&self, shard: usize) -> ShardStats {
                ShardStats {
                    shard,
                    // Relaxed: independent monotonic counters, no pair to keep consistent.
                    $($field: self.inner.$field.load(Ordering::Relaxed),)*
                }
            }
        }

        /// A snapshot of one dispatcher shard's counters.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        #[non_exhaustive]
        pub struct ShardStats {
            /// Shard index.
            pub shard: usize,
            $(#[doc = $doc] pub $field: u64,)*
        }
    };
}

counters! {
    dispatched: "Events this shard read from the ring.",
    delivered: "Events queued to a subscriber.",
    dropped: "Events lost at a full subscriber queue (any overflow policy).",
    filtered_out: "Pattern matches rejected by a route or predicate filter.",
    filter_panics: "Predicate filters that panicked (treated as no match).",
    route_hits: "Route cache hits (topic → subscribers).",
    route_misses: "Route cache misses.",
    route_invalidations: "Route cache flushes after a subscribe or unsubscribe.",
    binds: "Alias → route bindings recorded.",
    unbinds: "Bindings removed by an unbinding event.",
    binding_hits: "Events without a route resolved through their alias.",
    binding_misses: "Events without a route whose alias had no binding.",
    binding_evictions: "Bindings evicted (least recently used) at capacity.",
}
