//! A subscriber's bounded queue of runs: written by its dispatcher shard, read by its
//! `Subscriber`, with the overflow policy, loss accounting and the wake protocol in both
//! directions.
//!
//! # Entries
//! The queue holds 16-byte entries, each a run of one segment's events: the segment, a
//! bitmask of its slots, and the match index of the run's first event. One shard writes
//! (`tail`, entries pushed, Release) and one receiver reads; neither side uses a
//! compare-and-swap, except under `Overflow::DropOldest` (below). Each entry holds one
//! reference on its segment (see `segment`): taken by the shard before the entry is
//! visible, handed to the receiver when it claims the entry's first event, and released
//! by the receiver once it is done with the entry's last event. Receiving reads the
//! event in place: no reference count is touched per delivery.
//!
//! `head` packs the receiver's position: the entry index (bits 17..), a *claimed* bit
//! (bit 16: the receiver owns the entry's reference) and the number of the entry's events
//! already taken (bits 0..16). The receiver advances it per event.
//!
//! # Capacity, counted in events
//! The shard counts the events it pushed and evicted; the receiver publishes `taken` per
//! event it claims (Release). Events queued = pushed - evicted - taken, which the shard
//! re-reads (Acquire) only when its cached value says the queue is full. `consumed` (for
//! stats) lives on a line of its own, and `head` is stored per event only under
//! `DropOldest`, so a receive writes one line the shard may read. Every
//! entry holds at least one event, so the entry ring (`capacity` rounded up to a power of
//! two) never runs out of slots before the events do.
//!
//! # DropOldest
//! The shard evicts from the reader's end with a compare-and-swap on `head`: it skips
//! events of the head entry (or the whole entry: then, unless the receiver had claimed
//! it, the shard releases the entry's reference). The receiver claims each event with a
//! compare-and-swap on the same word, so an event is either delivered or evicted, never
//! both, and a delivery being read is never evicted.
//!
//! # Loss accounting
//! Every event the shard matches for this subscriber gets the next *match index* (0, 1, 2,
//! ...), whether it is queued or lost; an entry's events have consecutive indices. The
//! receiver knows the index it expects next, so a gap is exactly the number of events lost
//! right there, and it reports `Lagged(gap)` once, at that position, before the event after
//! the gap. At close, `matched` (the count of indices handed out) tells about losses at
//! the very end. `dropped` counts every loss for `Subscriber::dropped()`; its one writer is
//! the shard.
//!
//! # Wake protocol
//! A receiver that finds the queue empty reads `rx`, tries once more, registers its thread
//! or waker, sets [`RX_WAITING`] with a compare-and-swap from the value it read, issues a
//! `SeqCst` fence and looks at the queue once more before it sleeps. After each batch, the
//! shard issues one `SeqCst` fence (for all the queues it fed) and then, per queue, loads
//! `rx`: only a queue whose receiver waits gets the `fetch_add` of [`RX_UNIT`] and the
//! wake-up ([`SubQueue::notify_if_waiting`]), so a busy receiver costs the shard one load,
//! not a read-modify-write on a line the receiver owns. The two fences are totally
//! ordered: either the receiver's second look sees the batch's entries (it does not sleep),
//! or the shard's load sees the bit (it wakes the receiver). Close, and the wake-up before
//! a `Block` wait, always `fetch_add`/`fetch_or`, and a CAS from a stale `rx` fails. `tx` is
//! the same protocol the
//! other way, used only by `Overflow::Block`: the receiver bumps it when it takes an
//! entry's last event (not per event), and the shard waits on it. A receiver that stops
//! in the middle of an entry while the shard waits for room is seen at the shard's next
//! timed re-check ([`BLOCK_RECHECK`]).
//!
//! # Orderings
//! | write (Release) | read (Acquire) | what it publishes |
//! |---|---|---|
//! | shard's `tail` store in `push_entry` | receiver's `tail` loads in `claim` | the entry's slot, the segment references and routes written before it |
//! | shard's `rx.fetch_add` in [`SubQueue::notify`] | receiver's `rx` load and CAS in `set_waiting` (from `prepare_park` or `register_waker`) | the pushes of the batch (also published by `tail`) |
//! | shard's `SeqCst` fence after a batch's pushes, then its `rx` load | receiver's `SeqCst` fence after setting `RX_WAITING`, then its `tail` load | no lost wake-up: one side sees the other (module docs, "Wake protocol") |
//! | shard's `rx.fetch_or(RX_CLOSED)` in [`SubQueue::close`] | receiver's `rx` loads | every push, `matched` and `dropped` store before close |
//! | receiver's `head` store/CAS in `claim` | shard's `head` loads (DropOldest eviction) | the receiver's copy of the entry is taken: its slot may be reused |
//! | receiver's `taken` store in `claim` | shard's `taken` loads in `room` | claimed events free room |
//! | receiver's `consumed` store | `delivered_consumed`, `counts` | the `delivered`/`consumed` counter pair |
//! | receiver's `tx.fetch_add` after an entry's last event (Block) | shard's `tx` load and CAS | the freed room |
//! | `gone.store(true)` in [`SubQueue::disconnect_receiver`] | shard's `gone` loads | the receiver left; stop delivering and stop waiting |
//! | shard's `unqueued` store in `count_drops` | `delivered_consumed`, `counts` | `delivered = matched - unqueued` never undercounts |
//!
//! Modelled in `loom-tests/tests/queue.rs` and `loom-tests/tests/wake.rs`.

use std::ptr::{self, NonNull};
use std::task::Waker;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::segment::{Pool, SegHold, SegPtr, Segment, SEG_LEN};
use crate::stats::latency::Latency;
use crate::stats::retired::{Counts, Retired};
use crate::subscription::{DropReason, Meta, Overflow};
use crate::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use crate::sync::thread::{self, Thread};
use crate::sync::{park_timeout, Arc, Mutex, UnsafeCell};
use crate::wait::{spin_or_yield, WaitStrategy};

/// `rx`: the shard will push nothing more.
pub(crate) const RX_CLOSED: u64 = 1;
/// `rx`: the receiver may be parked (or its task pending).
pub(crate) const RX_WAITING: u64 = 2;
/// `rx`: one notification.
pub(crate) const RX_UNIT: u64 = 4;
/// `tx`: the shard may be parked waiting for space.
const TX_WAITING: u64 = 1;
/// `tx`: one entry finished.
const TX_UNIT: u64 = 2;
/// How long a shard blocked on a full `Overflow::Block` queue sleeps between looks.
pub(crate) const BLOCK_RECHECK: Duration = Duration::from_millis(1);

/// `head`: the receiver owns the head entry's reference.
const CLAIMED: u64 = 1 << 16;
/// `head`: events of the head entry already taken (claimed or evicted).
const TAKEN: u64 = CLAIMED - 1;
/// `head`: the entry index starts here.
const INDEX_SHIFT: u32 = 17;

pub(crate) fn pack(index: u64, claimed: bool, taken: u32) -> u64 {
    index << INDEX_SHIFT | if claimed { CLAIMED } else { 0 } | u64::from(taken)
}

pub(crate) fn unpack(head: u64) -> (u64, bool, u32) {
    (head >> INDEX_SHIFT, head & CLAIMED != 0, (head & TAKEN) as u32)
}

/// The lowest `n` set bits of `mask`.
pub(crate) fn low_bits(mask: u16, n: u32) -> u16 {
    let mut rest = mask;
    for _ in 0..n {
        rest &= rest.wrapping_sub(1);
    }
    mask & !rest
}

#[derive(Default)]
struct RxWaiter {
    thread: Option<Thread>,
    waker: Option<Waker>,
}

/// What [`SubQueue::push_run`] did with a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pushed {
    /// Events queued.
    pub(crate) queued: u32,
    /// Older queued events evicted to make room (`DropOldest`).
    pub(crate) evicted: u32,
    /// Events of the run lost, and why (the reason of the last loss).
    pub(crate) dropped: u32,
    pub(crate) reason: Option<DropReason>,
    /// The run's reference was not used (nothing was queued): the caller releases it.
    pub(crate) unused_ref: bool,
    /// Events of the run the queue never looked at (it died first): neither queued nor
    /// counted, like events after a `Disconnect`.
    pub(crate) skipped: u32,
}

/// Counters written only by the queue's shard.
#[derive(Default)]
struct ShardCounts {
    /// Match indices handed out.
    matched: AtomicU64,
    /// Matched events that were never queued (dropped new under `DropNewest`,
    /// `Disconnect`, or an aborted `Block`). `delivered = matched - unqueued`: the open side
    /// of `delivered`/`consumed`, with no extra store on the push path.
    unqueued: AtomicU64,
    /// Events lost.
    dropped: AtomicU64,
}

/// The shard's own bookkeeping (only the shard touches it).
#[derive(Default)]
struct ShardLocal {
    /// Entries pushed (the value of `tail`).
    tail: u64,
    /// Events pushed and evicted, ever.
    pushed: u64,
    evicted: u64,
    /// Last `taken` seen.
    taken: u64,
}

/// One entry slot. Atomic fields: under `DropOldest` the receiver may read a slot that
/// the shard is reusing (its claim's compare-and-swap then fails and it discards what it
/// read); Relaxed, ordered by `tail` and `head`.
pub(crate) struct Slot<E> {
    pub(crate) seg: AtomicPtr<Segment<E>>,
    /// Match index of the first event << 16 | slot mask.
    pub(crate) word: AtomicU64,
}

/// The receiver's side, on one cache line: what the shard reads to find room.
#[derive(Default)]
pub(crate) struct ReaderShared {
    /// The receiver's position. Stored per event under `DropOldest` (a CAS, against the
    /// shard's evictions); otherwise only the receiver reads it, and it is stored once, when
    /// the receiver is dropped (for `SubQueue::drop`).
    pub(crate) head: AtomicU64,
    /// Events taken out of the queue (claimed), which frees their room; the shard reads it
    /// only when its cached value says the queue is full.
    pub(crate) taken: AtomicU64,
}

pub(crate) struct SubQueue<E> {
    pub(crate) slots: Box<[Slot<E>]>,
    pub(crate) mask: u64,
    capacity: usize,
    pub(crate) overflow: Overflow,
    pub(crate) pool: Arc<Pool<E>>,
    pub(crate) meta: Meta,
    /// The receiver was dropped. Written once; read by the shard once per batch, so it
    /// sits with the read-only fields above, not on a line the receiver writes.
    gone: AtomicBool,
    /// Rate limit of this subscriber's `tracing` events (empty without the feature).
    pub(crate) trace_limit: crate::trace::RateLimit,
    /// Publish → receive latency samples (taken by the `Subscriber`). Padded: a sample
    /// writes the histogram, which must not invalidate the read-only fields above.
    pub(crate) latency: CachePadded<Latency>,
    tail: CachePadded<AtomicU64>,
    pub(crate) reader: CachePadded<ReaderShared>,
    /// Events handed out (the closed side of `delivered`/`consumed`): the taken ones less
    /// the one held back behind a `Lagged` report, if any. Written only by the receiver, per
    /// event, on a line of its own (read only by stats).
    consumed: CachePadded<AtomicU64>,
    rx: CachePadded<AtomicU64>,
    tx: CachePadded<AtomicU64>,
    /// The shard's counters, on their own cache line.
    counts: CachePadded<ShardCounts>,
    local: CachePadded<UnsafeCell<ShardLocal>>,
    /// `Lagged` reports handed out. Written only by the receiver.
    lagged_reports: AtomicU64,
    rx_waiter: Mutex<RxWaiter>,
    tx_waiter: Mutex<Option<Thread>>,
    /// Where its subscriber's counters were folded when it was dropped; settled with the
    /// final counters when this queue is dropped (see `stats::retired`). `None` for queues
    /// made without a bus.
    retired: Option<Arc<Retired>>,
}

// SAFETY: the slots and `local` are shared under the single-writer protocol of the module
// docs; segments cross threads, so `E: Send + Sync`.
unsafe impl<E: Send + Sync> Sync for SubQueue<E> {}
// SAFETY: as above.
unsafe impl<E: Send + Sync> Send for SubQueue<E> {}

impl<E> SubQueue<E> {
    /// `capacity >= 1` (the subscription checks).
    pub(crate) fn new(
        capacity: usize,
        overflow: Overflow,
        meta: Meta,
        pool: Arc<Pool<E>>,
        retired: Option<Arc<Retired>>,
    ) -> Self {
        let size = capacity.next_power_of_two();
        SubQueue {
            slots: (0..size)
                .map(|_| Slot { seg: AtomicPtr::new(ptr::null_mut()), word: AtomicU64::new(0) })
                .collect(),
            mask: size as u64 - 1,
            capacity,
            overflow,
            pool,
            meta,
            gone: AtomicBool::new(false),
            trace_limit: crate::trace::RateLimit::default(),
            latency: CachePadded::new(Latency::new()),
            tail: CachePadded::new(AtomicU64::new(0)),
            reader: CachePadded::new(ReaderShared::default()),
            consumed: CachePadded::new(AtomicU64::new(0)),
            rx: CachePadded::new(AtomicU64::new(0)),
            tx: CachePadded::new(AtomicU64::new(0)),
            counts: CachePadded::new(ShardCounts::default()),
            local: CachePadded::new(UnsafeCell::new(ShardLocal::default())),
            lagged_reports: AtomicU64::new(0),
            rx_waiter: Mutex::new(RxWaiter::default()),
            tx_waiter: Mutex::new(None),
            retired,
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn pool_arc(&self) -> &Arc<Pool<E>> {
        &self.pool
    }

    /// Events waiting (a gauge, at most the capacity): matched, minus lost, minus handed
    /// out.
    pub(crate) fn len(&self) -> usize {
        // Relaxed: a gauge; the clamp keeps it within the promise whatever the interleaving.
        let consumed = self.consumed.load(Ordering::Relaxed);
        let matched = self.counts.matched.load(Ordering::Relaxed);
        let dropped = self.counts.dropped.load(Ordering::Relaxed);
        (matched.saturating_sub(dropped).saturating_sub(consumed) as usize).min(self.capacity)
    }

    /// Events lost so far. Relaxed: a counter read, ordered by nothing.
    pub(crate) fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }

    /// Whether the shard should skip this queue: closed (disconnected) or receiver gone.
    pub(crate) fn is_dead(&self) -> bool {
        // Relaxed: a stale `false` only means one more push into a queue nobody reads;
        // `push_run` re-checks `gone` with Acquire before it would wait.
        self.gone.load(Ordering::Relaxed) || self.rx.load(Ordering::Relaxed) & RX_CLOSED != 0
    }

    // ---- shard side -------------------------------------------------------------------

    /// Runs `f` on the shard's bookkeeping.
    fn local<R>(&self, f: impl FnOnce(&mut ShardLocal) -> R) -> R {
        // SAFETY: only the queue's shard calls the shard-side methods (one thread), and
        // none of them re-enters this.
        self.local.with_mut(|l| f(unsafe { &mut *l }))
    }

    /// Events queued as the shard last saw them; refreshes `taken` if `need` more
    /// would not fit.
    fn room(&self, need: u64) -> u64 {
        let capacity = self.capacity as u64;
        let queued = self.local(|l| l.pushed - l.evicted - l.taken);
        if queued + need <= capacity {
            return capacity - queued;
        }
        // Acquire: pairs with the receiver's Release store in `claim`: what it took is out
        // of the queue (its entry copied, its slot reusable).
        let taken = self.reader.taken.load(Ordering::Acquire);
        self.local(|l| {
            l.taken = taken;
            capacity.saturating_sub(l.pushed - l.evicted - taken)
        })
    }

    /// Pushes the run `mask` of `seg` under this queue's overflow policy. Shard only. The
    /// caller holds one reference on `seg` for this run; it is handed to the queue unless
    /// [`Pushed::unused_ref`]. `abort` is checked while an `Overflow::Block` push waits (bus
    /// shutdown); `flush` is called once before such a wait, to deliver the wake-ups the
    /// shard has batched so far (the receiver we wait for may be parked on exactly such a
    /// wake-up).
    pub(crate) fn push_run(
        &self,
        seg: SegPtr<E>,
        mask: u16,
        strategy: WaitStrategy,
        abort: &AtomicBool,
        flush: &mut dyn FnMut(),
    ) -> Pushed {
        let k = mask.count_ones();
        debug_assert!(k >= 1);
        match self.overflow {
            Overflow::DropNewest | Overflow::Disconnect => {
                let fit = (self.room(u64::from(k)).min(u64::from(k))) as u32;
                let mut pushed = Pushed::default();
                if fit > 0 {
                    self.push_entry(seg, low_bits(mask, fit), fit);
                    pushed.queued = fit;
                } else {
                    pushed.unused_ref = true;
                }
                if fit < k {
                    if self.overflow == Overflow::DropNewest {
                        self.count_drops(DropReason::Newest, u64::from(k - fit));
                        pushed.dropped = k - fit;
                        pushed.reason = Some(DropReason::Newest);
                    } else {
                        // The first event that does not fit closes the queue; the rest of
                        // the run is never looked at (not matched, not counted).
                        self.count_drops(DropReason::Disconnect, 1);
                        pushed.dropped = 1;
                        pushed.reason = Some(DropReason::Disconnect);
                        pushed.skipped = k - fit - 1;
                        self.close();
                    }
                }
                pushed
            }
            Overflow::DropOldest => self.push_oldest(seg, mask, k),
            Overflow::Block => self.push_blocking(seg, mask, k, strategy, abort, flush),
        }
    }

    /// Appends an entry of `n` events and hands it the caller's reference. The room (in
    /// events, hence in slots) was checked.
    fn push_entry(&self, seg: SegPtr<E>, mask: u16, n: u32) {
        // Relaxed: only this thread writes `matched`.
        let first = self.counts.matched.load(Ordering::Relaxed);
        self.counts.matched.store(first + u64::from(n), Ordering::Relaxed);
        let tail = self.local(|l| {
            l.pushed += u64::from(n);
            l.tail
        });
        let slot = &self.slots[(tail & self.mask) as usize];
        // Relaxed: published by the Release store of `tail` below.
        slot.seg.store(seg.0.as_ptr(), Ordering::Relaxed);
        slot.word.store(first << 16 | u64::from(mask), Ordering::Relaxed);
        self.local(|l| l.tail = tail + 1);
        // Release: pairs with the receiver's Acquire loads of `tail` in `claim`; the slot,
        // the segment's reference and the routes written before are visible with it.
        self.tail.store(tail + 1, Ordering::Release);
    }

    fn count_drops(&self, reason: DropReason, n: u64) {
        // Relaxed: one writer; readers see it via `close` (Release) or as a gauge.
        let dropped = self.counts.dropped.load(Ordering::Relaxed);
        self.counts.dropped.store(dropped + n, Ordering::Relaxed);
        if reason == DropReason::Oldest {
            return;
        }
        // Lost new events take match indices without an entry.
        let matched = self.counts.matched.load(Ordering::Relaxed);
        self.counts.matched.store(matched + n, Ordering::Relaxed);
        let unqueued = self.counts.unqueued.load(Ordering::Relaxed);
        // Release: pairs with the Acquire load in `delivered_consumed`: a snapshot that
        // sees this count also sees the `matched` store made before it.
        self.counts.unqueued.store(unqueued + n, Ordering::Release);
    }

    /// `DropOldest`: queue the run (at most `capacity` of its newest events), evicting the
    /// oldest queued events for room.
    fn push_oldest(&self, seg: SegPtr<E>, mut mask: u16, mut k: u32) -> Pushed {
        // Every event of the run counts as queued (`delivered`), as if pushed one by one;
        // the ones that could not stay count as evicted.
        let mut pushed = Pushed { queued: k, ..Pushed::default() };
        let capacity = self.capacity as u32;
        if k > capacity {
            // The run's own first events would be evicted by its last ones: lost at once,
            // with their match indices (so the receiver sees the gap).
            let lost = k - capacity;
            mask &= !low_bits(mask, lost);
            k = capacity;
            let first = self.counts.matched.load(Ordering::Relaxed);
            // Relaxed: one writer.
            self.counts.matched.store(first + u64::from(lost), Ordering::Relaxed);
            self.count_drops(DropReason::Oldest, u64::from(lost));
            pushed.evicted += lost;
        }
        let room = self.room(u64::from(k));
        if room < u64::from(k) {
            pushed.evicted += self.evict(u64::from(k) - room);
        }
        // Slots: an entry holds at least one event, so queued events bound the entries,
        // except while the receiver holds claimed events the shard cannot evict.
        while self.entries_in_ring() >= self.slots.len() as u64 {
            if self.evict(1) == 0 {
                thread::yield_now();
            } else {
                pushed.evicted += 1;
            }
        }
        self.push_entry(seg, mask, k);
        pushed
    }

    fn entries_in_ring(&self) -> u64 {
        // Acquire: pairs with the receiver's claim: a slot before `head` is free.
        let (index, _, _) = unpack(self.reader.head.load(Ordering::Acquire));
        self.local(|l| l.tail) - index
    }

    /// Evicts up to `n` of the oldest events not yet claimed; returns how many.
    fn evict(&self, n: u64) -> u32 {
        let mut evicted = 0u64;
        let tail = self.local(|l| l.tail);
        // Acquire: pairs with the receiver's claim CAS.
        let mut head = self.reader.head.load(Ordering::Acquire);
        while evicted < n {
            let (index, claimed, taken) = unpack(head);
            if index == tail {
                break;
            }
            let slot = &self.slots[(index & self.mask) as usize];
            // Relaxed: the shard wrote this slot itself.
            let word = slot.word.load(Ordering::Relaxed);
            let count = (word as u16).count_ones();
            let left = u64::from(count - taken);
            let take = left.min(n - evicted);
            let next = if take == left {
                pack(index + 1, false, 0)
            } else {
                pack(index, claimed, taken + take as u32)
            };
            // AcqRel: orders the eviction with the receiver's claims of the same word.
            match self.reader.head.compare_exchange(head, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => {
                    evicted += take;
                    if take == left && !claimed {
                        // The whole entry, never claimed: its reference is ours to release.
                        // Relaxed: the shard wrote it.
                        let seg = slot.seg.load(Ordering::Relaxed);
                        // SAFETY: the entry held one reference, now the shard's (the
                        // receiver never claimed it and cannot: `head` moved past it);
                        // the slot of a queued entry is never null.
                        drop(unsafe { SegHold::adopt(SegPtr(NonNull::new_unchecked(seg)), 1) });
                    }
                    head = next;
                }
                Err(actual) => head = actual,
            }
        }
        if evicted > 0 {
            self.local(|l| l.evicted += evicted);
            self.count_drops(DropReason::Oldest, evicted);
        }
        evicted as u32
    }

    fn push_blocking(
        &self,
        seg: SegPtr<E>,
        mut mask: u16,
        mut k: u32,
        strategy: WaitStrategy,
        abort: &AtomicBool,
        flush: &mut dyn FnMut(),
    ) -> Pushed {
        let mut pushed = Pushed::default();
        // The common case first: room for the whole run, known from the shard's own count
        // (`room` reads the receiver's line only when the queue looks full). `tx`, which
        // the receiver bumps per entry, is read only on the way to waiting, so the shard
        // does not pull that line across per push.
        if self.room(u64::from(k)) >= u64::from(k) {
            self.push_entry(seg, mask, k);
            pushed.queued = k;
            return pushed;
        }
        let mut n = 0;
        let mut flushed = false;
        loop {
            // Acquire: pairs with the receiver's Release `fetch_add` in `claim`.
            let seen = self.tx.load(Ordering::Acquire);
            let room = self.room(u64::from(k)).min(u64::from(k)) as u32;
            if room == k {
                self.push_entry(seg, mask, k);
                pushed.queued += k;
                return pushed;
            }
            if room > 0 {
                // Part now, the rest when there is room: the rest needs a reference of
                // its own (we still hold the run's, so the count cannot reach zero).
                // SAFETY: we hold the run's reference.
                let part_ref = unsafe { SegHold::share(seg) };
                let part = low_bits(mask, room);
                self.push_entry(part_ref.into_raw(), part, room);
                pushed.queued += room;
                mask &= !part;
                k -= room;
                n = 0;
                // The part needs its wake-up before we wait again.
                flushed = false;
                continue;
            }
            // Acquire: pairs with the Release store in `disconnect_receiver` / bus shutdown.
            if self.gone.load(Ordering::Acquire) {
                pushed.unused_ref = true;
                pushed.skipped = k;
                return pushed;
            }
            if abort.load(Ordering::Acquire) {
                self.count_drops(DropReason::Shutdown, u64::from(k));
                pushed.unused_ref = true;
                pushed.dropped = k;
                pushed.reason = Some(DropReason::Shutdown);
                return pushed;
            }
            if !flushed {
                // Our receiver only receives after a wake-up, and the shard batches those
                // until the end of the batch: without this, both would wait for each other.
                flushed = true;
                self.notify();
                flush();
            }
            if !spin_or_yield(strategy.step(n)) {
                n = n.saturating_add(1);
                continue;
            }
            *self.tx_waiter.lock() = Some(thread::current());
            // Re-check after registering: `disconnect_receiver` and shutdown store their
            // flag before they take the registered thread (under the same lock) to unpark it.
            if self.gone.load(Ordering::Acquire) || abort.load(Ordering::Acquire) {
                continue;
            }
            // AcqRel: orders the bit against the receiver's `fetch_add` (module docs).
            if self
                .tx
                .compare_exchange(seen, seen | TX_WAITING, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                // Timed: a receiver that stopped in the middle of an entry does not bump
                // `tx` (module docs, "Wake protocol").
                park_timeout(BLOCK_RECHECK);
            }
        }
    }

    /// `(delivered, consumed)` with `delivered >= consumed`.
    pub(crate) fn delivered_consumed(&self) -> (u64, u64) {
        // Acquire: pairs with the Release store in `count_consumed`; every event it counts
        // was matched (the `matched` store precedes the push, which precedes the claim).
        let consumed = self.consumed.load(Ordering::Acquire);
        // Acquire: pairs with `count_drops`; the `matched` loaded below is at least the one
        // current when this many drops were counted, so the difference never undercounts.
        let unqueued = self.counts.unqueued.load(Ordering::Acquire);
        // Relaxed: ordered by the two Acquire loads above; newer values only overcount an
        // in-flight event, which is still matched-and-not-consumed.
        let matched = self.counts.matched.load(Ordering::Relaxed);
        (matched.saturating_sub(unqueued).max(consumed), consumed)
    }

    /// Every counter, raw, for folding into the retired rows: read as
    /// [`delivered_consumed`](Self::delivered_consumed) reads them, so
    /// `matched - unqueued >= consumed`.
    pub(crate) fn counts(&self) -> Counts {
        // Acquire, Acquire: as in `delivered_consumed`, which says what each pairs with.
        let consumed = self.consumed.load(Ordering::Acquire);
        let unqueued = self.counts.unqueued.load(Ordering::Acquire);
        Counts {
            // Relaxed: ordered by the Acquire loads above, as in `delivered_consumed`.
            matched: self.counts.matched.load(Ordering::Relaxed),
            unqueued,
            consumed,
            dropped: self.dropped(),
            lagged_reports: self.lagged_reports(),
        }
    }

    /// Receiver only: one event handed out.
    pub(crate) fn count_consumed(&self) {
        // Relaxed: the receiver is the only writer.
        let c = self.consumed.load(Ordering::Relaxed);
        // Release: pairs with the Acquire load in `delivered_consumed`.
        self.consumed.store(c + 1, Ordering::Release);
    }

    /// Receiver only: one `Lagged` report handed out.
    pub(crate) fn count_lagged_report(&self) {
        // Relaxed: single writer, no partner.
        let c = self.lagged_reports.load(Ordering::Relaxed);
        self.lagged_reports.store(c + 1, Ordering::Relaxed);
    }

    /// `Lagged` reports handed out so far.
    pub(crate) fn lagged_reports(&self) -> u64 {
        // Relaxed: a plain counter read.
        self.lagged_reports.load(Ordering::Relaxed)
    }

    /// After a batch: the shard has issued a `SeqCst` fence since its last push into this
    /// queue (see "Wake protocol"); wakes the receiver if it waits.
    pub(crate) fn notify_if_waiting(&self) {
        // Relaxed: ordered by the caller's SeqCst fence against the receiver's (module docs).
        if self.rx.load(Ordering::Relaxed) & RX_WAITING != 0 {
            self.notify();
        }
    }

    /// Wakes the receiver if it waits, and makes any `rx` value it read stale.
    pub(crate) fn notify(&self) {
        // Release: pairs with the receiver's Acquire load/CAS of `rx`.
        let old = self.rx.fetch_add(RX_UNIT, Ordering::AcqRel);
        if old & RX_WAITING != 0 {
            self.wake_receiver();
        }
    }

    /// No more pushes: the bus closed, or `Disconnect` overflowed. Shard (or close path).
    pub(crate) fn close(&self) {
        // Release: pairs with the receiver's Acquire loads of `rx`; every push, `matched`
        // and `dropped` store before this is visible to a receiver that sees RX_CLOSED.
        let old = self.rx.fetch_or(RX_CLOSED, Ordering::AcqRel);
        if old & RX_WAITING != 0 {
            self.wake_receiver();
        }
    }

    fn wake_receiver(&self) {
        // AcqRel: clears the bit for the next wait; see "Wake protocol".
        self.rx.fetch_and(!RX_WAITING, Ordering::AcqRel);
        let (thread, waker) = {
            let mut waiter = self.rx_waiter.lock();
            (waiter.thread.take(), waiter.waker.take())
        };
        // Wake outside the lock: a waker may re-enter (poll the receiver at once).
        if let Some(thread) = thread {
            thread.unpark();
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    // ---- receiver side ------------------------------------------------------------------

    fn wake_shard(&self) {
        // AcqRel: clears the bit for the shard's next wait; ordered against its CAS in
        // `push_blocking` like `wake_receiver` is against the receiver's.
        self.tx.fetch_and(!TX_WAITING, Ordering::AcqRel);
        let thread = self.tx_waiter.lock().take();
        if let Some(thread) = thread {
            thread.unpark();
        }
    }

    /// Receiver only: an entry's last event was taken (frees room for a `Block` shard).
    pub(crate) fn entry_done(&self) {
        if self.overflow == Overflow::Block {
            // Release: pairs with the shard's Acquire load/CAS of `tx` in `push_blocking`.
            let old = self.tx.fetch_add(TX_UNIT, Ordering::AcqRel);
            if old & TX_WAITING != 0 {
                self.wake_shard();
            }
        }
    }

    /// Whether an entry waits past `head` (the receiver's view).
    pub(crate) fn has_entries(&self, head: u64) -> bool {
        // Acquire: pairs with the Release store in `push_entry`.
        self.tail.load(Ordering::Acquire) != unpack(head).0
    }

    /// The `rx` word, for a receiver about to wait: if the queue is still empty after this
    /// load, pass the value to [`prepare_park`](Self::prepare_park) or
    /// [`register_waker`](Self::register_waker).
    pub(crate) fn rx_state(&self) -> u64 {
        // Acquire: pairs with `notify` and `close` (Release).
        self.rx.load(Ordering::Acquire)
    }

    /// Match indices handed out so far; exact once [`rx_state`](Self::rx_state) showed
    /// [`RX_CLOSED`].
    pub(crate) fn matched(&self) -> u64 {
        // Relaxed: called after an Acquire load of `rx` saw RX_CLOSED (see `close`).
        self.counts.matched.load(Ordering::Relaxed)
    }

    /// Registers the current thread and sets `RX_WAITING` if `rx` still is `seen`. Returns
    /// `true` if the caller may park (a later `notify`/`close` will unpark it).
    pub(crate) fn prepare_park(&self, seen: u64) -> bool {
        // Always re-register: the subscriber may have moved to another thread since.
        self.rx_waiter.lock().thread = Some(thread::current());
        self.set_waiting(seen)
    }

    /// Takes back the thread registered by [`prepare_park`](Self::prepare_park) (the
    /// receiver found an event after all).
    pub(crate) fn cancel_park(&self) {
        self.rx_waiter.lock().thread = None;
    }

    /// Registers `waker` and sets `RX_WAITING` if `rx` still is `seen`. Returns `true` if
    /// the task may return `Pending`.
    pub(crate) fn register_waker(&self, seen: u64, waker: &Waker) -> bool {
        {
            let mut waiter = self.rx_waiter.lock();
            match &waiter.waker {
                Some(w) if w.will_wake(waker) => {}
                _ => waiter.waker = Some(waker.clone()),
            }
        }
        self.set_waiting(seen)
    }

    /// Forgets a registered waker (a cancelled `recv().await`): nothing is left behind.
    pub(crate) fn clear_waker(&self) {
        let waker = self.rx_waiter.lock().waker.take();
        drop(waker);
    }

    fn set_waiting(&self, seen: u64) -> bool {
        // Always a CAS, even when `seen` already has the bit: the RMW is what orders this
        // wait against the shard's next `fetch_add` (and against a `fetch_and` clearing a
        // stale bit, which is then followed by taking our registration and waking us).
        // AcqRel: orders the bit against the shard's `fetch_add` in `notify` (module docs).
        self.rx
            .compare_exchange(seen, seen | RX_WAITING, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// The receiver is dropped: the shard stops delivering and stops waiting for space.
    pub(crate) fn disconnect_receiver(&self) {
        // Release: pairs with the shard's Acquire loads of `gone` in `push_blocking`.
        self.gone.store(true, Ordering::Release);
        self.clear_waker();
        self.wake_shard_if_registered();
    }

    /// Unparks a shard blocked in `push_blocking` so it re-checks its abort flags.
    pub(crate) fn wake_shard_if_registered(&self) {
        let thread = self.tx_waiter.lock().take();
        if let Some(thread) = thread {
            thread.unpark();
        }
    }
}

impl<E> Drop for SubQueue<E> {
    fn drop(&mut self) {
        if let Some(retired) = &self.retired {
            // The last reference: no shard can push any more, so the counters are final.
            retired.settle(self.meta.id, self.counts());
        }
        // `&mut self`: the shard and the receiver are gone (the receiver released the entry
        // it had claimed, see `Receiver::drop`). Release every entry still queued.
        // Relaxed: `&mut self`, no other thread (and loom's atomics have no `get_mut`).
        let (mut index, claimed, _) = unpack(self.reader.head.load(Ordering::Relaxed));
        if claimed {
            index += 1;
        }
        let tail = self.tail.load(Ordering::Relaxed);
        for i in index..tail {
            let seg = self.slots[(i & self.mask) as usize].seg.load(Ordering::Relaxed);
            if let Some(seg) = NonNull::new(seg) {
                // SAFETY: a queued, unclaimed entry holds one reference, released once here.
                drop(unsafe { SegHold::adopt(SegPtr(seg), 1) });
            }
        }
    }
}

/// Most events an entry can hold.
const _: () = assert!(SEG_LEN <= 16, "a slot mask is 16 bits");
