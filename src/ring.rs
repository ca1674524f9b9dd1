//! The broadcast ring: one writer, `K` readers (the dispatcher shards), every reader reads
//! every slot.
//!
//! The publisher writes slot `seq & mask` and then publishes `seq + 1` in the `tail` word;
//! each shard reads slots below `tail` and then publishes how far it got in its own
//! `cursor`. The publisher may overwrite slot `s` (holding sequence `s - capacity`) only
//! once every cursor is past `s - capacity`: the slowest shard gates the publisher, and
//! nothing is ever dropped in the ring.
//!
//! For a value type that needs dropping, each slot also counts the shards still to read
//! its value; the shard that brings the count to zero, when it releases the slot, moves the
//! value out and drops it. Such a value lives in the ring only until every shard has
//! dispatched it, not until the publisher happens to overwrite its slot, and its drop runs
//! on the shard that just touched it, not on the publisher. The bus's values,
//! `segment::SegRef`s, are `Copy` and skip that count (see below): the events they point
//! at are counted per segment, in `segment`.
//!
//! # Words
//! - `tail`: bits 0..62 count published events; [`CLOSED`] says no event will follow;
//!   [`SLEEPERS`] says a shard may be parked waiting for data. The count is written only by
//!   the publisher, with a compare-and-swap so that close (by any thread) and publish are
//!   totally ordered: an event is either published before close, or handed back.
//! - `cursors[i]`: bits 0..63 are shard `i`'s next sequence to read; [`PUBLISHER_WAITING`]
//!   says someone may wait for the cursor to move: the publisher parked for space, or
//!   waiting in a flush (parked, or its task's waker registered in `lock`), or a
//!   `Bus::close` waiting for the shards to finish.
//!
//! Sequence numbers have 61 bits: at 10^9 events/s they last 73 years.
//!
//! # Sealing
//! The bus's values are `segment::SegRef`s: events live in segments of
//! `segment::SEG_LEN`, and a segment's events are dropped only once every shard has
//! released it, which a shard does once the segment is over. A shard that runs out of
//! events while the publisher is in the middle of a segment seals it ([`Consumer::seal`]: a
//! `fetch_or` of [`SEALED`] on `tail`), so that an idle publisher keeps nothing alive: the
//! publisher's next push sees the bit in its compare-and-swap and starts a new segment
//! (it wrote the event into the sealed segment's next slot, unpublished, and takes it back).
//! Both are read-modify-writes of `tail`, so they are totally ordered: either the push
//! comes first (the shard sees a new count and does not treat the segment as over) or
//! the seal does (the push fails and moves on). Values of other types ignore the bit.
//!
//! A value type that needs no drop (`SegRef` is `Copy`) skips the per-slot `readers`
//! count entirely: the publisher stores nothing per slot but the value, and a shard's
//! release is its cursor store alone.
//!
//! # Parking without lost wake-ups
//! Both sleep bits are set with a read-modify-write on the very word the other side
//! advances with a read-modify-write, under the ring's `lock`. RMWs on one atomic are
//! totally ordered, so either the sleeper's RMW sees the progress (and does not sleep), or
//! the waker's RMW sees the bit (and notifies under the lock, which the sleeper holds until
//! its condition-variable wait has released it). No `SeqCst` fence is needed, and the hot
//! path pays one RMW per publish and one per shard batch.
//!
//! Flush and close wait for cursors with the very same protocol as the publisher waiting
//! for space: set [`PUBLISHER_WAITING`] on every cursor under `lock`, sleep if a cursor
//! is still behind; the shard whose swap finds the bit notifies `space_ready` and takes
//! and wakes every registered task waker (after releasing the lock). Several waiters may
//! share the bit: the notification is `notify_all`, the wakers are a list taken whole, and
//! each waiter re-checks and re-sets it (loom: `two_async_waiters_are_both_woken`).
//!
//! # Orderings
//! | write (Release) | read (Acquire) | what it publishes |
//! |---|---|---|
//! | publisher's CAS of `tail` in [`Producer::push`] and [`Producer::push_many`] | shard's load of `tail` in [`Consumer::poll`] / [`Consumer::wait`] | the slot value written before it |
//! | shard's swap of `cursors[i]` in [`Consumer::release`] | publisher's loads of `cursors` in [`Producer::has_space`] | the shard's reads of slots below the cursor are done, so they may be overwritten |
//! | the same swap (and [`Ring::retire`]'s) | the loads of `cursors` in [`Ring::dispatched`] (`Publisher::flush`, `flush_async`, `Bus::close`) | the shard's pushes of every event below the cursor into subscriber queues (dispatch pushes a batch, then releases it), and, once retired, its queues' close |
//! | `fetch_or(CLOSED)` in [`Ring::close`] | every load of `tail` | close; the count it carries is final |
//! | a shard's `fetch_sub` of a slot's `readers` in [`Consumer::release`] (AcqRel) | the last shard's same `fetch_sub` | the other shards' reads of the value are done before the last one drops it |
//!
//! Each row is exercised by `loom-tests/tests/ring.rs` (the flush row by its
//! `flush_*` models, which fail if the Acquire loads of `min_cursor` are weakened).

use std::mem::MaybeUninit;
use std::task::Waker;
use std::time::Instant;

use crossbeam_utils::CachePadded;

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Condvar, Mutex, UnsafeCell};
use crate::wait::{spin_or_yield, WaitStrategy, IDLE_AFTER};

/// `tail`: no further event will be published.
pub(crate) const CLOSED: u64 = 1 << 63;
/// `tail`: a shard may be parked on `data_ready`.
pub(crate) const SLEEPERS: u64 = 1 << 62;
/// `tail`: the segment holding the last published event is sealed (by an idle shard): the
/// next event starts a new segment. See "Sealing".
pub(crate) const SEALED: u64 = 1 << 61;
/// `tail`: the published count.
pub(crate) const COUNT: u64 = SEALED - 1;
/// `cursors[i]`: the publisher may be parked on `space_ready`.
const PUBLISHER_WAITING: u64 = 1 << 63;
/// A dead shard's cursor: never gates the publisher again.
const RETIRED: u64 = COUNT;

struct Slot<T> {
    value: UnsafeCell<MaybeUninit<T>>,
    /// Shards still to read `value`; 0: the slot is empty. Set by the publisher before it
    /// publishes the value; the shard that brings it to 0 takes the value out.
    readers: AtomicU64,
}

pub(crate) struct Ring<T> {
    tail: CachePadded<AtomicU64>,
    cursors: Box<[CachePadded<AtomicU64>]>,
    slots: Box<[Slot<T>]>,
    mask: u64,
    /// Guards the sleep protocol: held while setting a sleep bit and waiting, and while
    /// notifying. Holds the task wakers of the futures waiting on cursors
    /// (`Publisher::flush_async`, and `publish_async` of either publisher: clones of a
    /// `SharedPublisher` may wait at once, so a list, taken whole by the waking shard).
    lock: Mutex<Vec<Waker>>,
    data_ready: Condvar,
    space_ready: Condvar,
}

// SAFETY: slots are written only by the single `Producer` and read by `Consumer`s under the
// tail/cursor protocol described in the module docs; values of type `T` cross threads, so
// `T: Send + Sync` (shards read `&T` concurrently).
unsafe impl<T: Send + Sync> Sync for Ring<T> {}
// SAFETY: as above; the ring owns its values.
unsafe impl<T: Send> Send for Ring<T> {}

/// Why [`Producer::push`] handed a value back.
#[derive(Debug)]
pub(crate) enum PushError<T> {
    Closed(T),
    Sealed(T),
}

/// Why a wait ended without the awaited condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WaitError {
    Closed,
    Timeout,
}

impl<T> Ring<T> {
    /// `capacity` must be a power of two >= 2 (the builder checks), `shards` >= 1.
    pub(crate) fn new(capacity: usize, shards: usize) -> Self {
        debug_assert!(capacity.is_power_of_two() && capacity >= 2 && shards >= 1);
        Ring {
            tail: CachePadded::new(AtomicU64::new(0)),
            cursors: (0..shards).map(|_| CachePadded::new(AtomicU64::new(0))).collect(),
            slots: (0..capacity)
                .map(|_| Slot {
                    value: UnsafeCell::new(MaybeUninit::uninit()),
                    readers: AtomicU64::new(0),
                })
                .collect(),
            mask: capacity as u64 - 1,
            lock: Mutex::new(Vec::new()),
            data_ready: Condvar::new(),
            space_ready: Condvar::new(),
        }
    }

    pub(crate) fn capacity(&self) -> u64 {
        self.mask + 1
    }

    /// Events published so far. Relaxed: a gauge, ordered by nothing.
    pub(crate) fn published(&self) -> u64 {
        self.tail.load(Ordering::Relaxed) & COUNT
    }

    /// Events published but not yet read by the slowest (live) shard. A gauge.
    pub(crate) fn occupancy(&self) -> u64 {
        let published = self.published();
        published.saturating_sub(self.min_cursor().min(published))
    }

    /// Events published so far, synchronised with their publication: a caller that sees
    /// count `n` here also sees everything the publisher did before publishing `n - 1`.
    pub(crate) fn published_acquire(&self) -> u64 {
        // Acquire: pairs with the Release CAS in `Producer::push`.
        self.tail.load(Ordering::Acquire) & COUNT
    }

    /// Whether the ring is closed. Acquire: pairs with the Release `fetch_or` in `close`.
    pub(crate) fn is_closed(&self) -> bool {
        self.tail.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Closes the ring: later publishes fail, shards drain what is there and stop. Returns
    /// `false` if it was already closed.
    pub(crate) fn close(&self) -> bool {
        // Release: pairs with the Acquire loads of `tail` by shards and the publisher.
        let old = self.tail.fetch_or(CLOSED, Ordering::AcqRel);
        // Close is rare: wake everybody, whatever the sleep bits say.
        let _guard = self.lock.lock();
        self.data_ready.notify_all();
        self.space_ready.notify_all();
        old & CLOSED == 0
    }

    /// Wakes every shard parked in [`Consumer::wait`] (after the caller made their
    /// `interrupted` condition true).
    pub(crate) fn wake_consumers(&self) {
        let _guard = self.lock.lock();
        self.data_ready.notify_all();
    }

    /// The lowest live shard cursor: every sequence below it is dispatched. Acquire.
    pub(crate) fn min_dispatched(&self) -> u64 {
        self.min_cursor()
    }

    /// Whether every shard has dispatched every sequence below `target`: each live cursor
    /// is at or past it, or retired. A caller that sees `true` also sees everything those
    /// shards did before releasing their cursors: their pushes into subscriber queues
    /// (dispatch pushes a batch before it releases it), so `try_recv` finds them.
    pub(crate) fn dispatched(&self, target: u64) -> bool {
        // `min_cursor` loads every cursor with Acquire: pairs with the Release swap in
        // `Consumer::store_cursor` (the `flush` row of the module's table).
        self.min_cursor() >= target
    }

    /// Waits (per `strategy`: spin, yield, then park on `space_ready`) until
    /// [`dispatched(target)`](Self::dispatched). Does not stop at close: a closed ring is
    /// still drained by its shards, and a shard that ends retires its cursor, which counts
    /// as past every target.
    pub(crate) fn wait_dispatched(&self, target: u64, strategy: WaitStrategy) {
        let mut n = 0;
        while !self.dispatched(target) {
            if spin_or_yield(strategy.step(n)) {
                let guard = self.lock.lock();
                if self.set_publisher_waiting(target) {
                    let _guard = self.space_ready.wait(guard);
                }
            }
            n = n.saturating_add(1);
        }
    }

    /// Registers `waker` to be woken when a shard moves its cursor, unless every cursor is
    /// already at `target` or past it. Returns `true` if the caller may return `Pending`.
    /// Same protocol as the parking in `wait_dispatched`, with the waker in place of the
    /// condition variable: `Consumer::store_cursor` takes it under the lock and wakes it.
    pub(crate) fn register_flush_waker(&self, target: u64, waker: &Waker) -> bool {
        let mut slot = self.lock.lock();
        if !slot.iter().any(|w| w.will_wake(waker)) {
            slot.push(waker.clone());
        }
        if self.set_publisher_waiting(target) {
            return true;
        }
        // Already there: leave nothing behind.
        let stale = take_waker(&mut slot, waker);
        drop(slot);
        drop(stale);
        false
    }

    /// Forgets a waiting future's waker (it was dropped, or is done).
    pub(crate) fn clear_flush_waker(&self, waker: &Waker) {
        let stale = take_waker(&mut self.lock.lock(), waker);
        drop(stale);
    }

    /// Sets [`PUBLISHER_WAITING`] on every cursor; returns whether a cursor was still below
    /// `need` (then the caller may sleep: the shard's next `store_cursor` sees the bit).
    /// Call with `lock` held.
    fn set_publisher_waiting(&self, need: u64) -> bool {
        let mut behind = false;
        for cursor in self.cursors.iter() {
            // AcqRel: the RMW orders this bit against the shard's swap in
            // `Consumer::store_cursor` (see "Parking" in the module docs); Acquire also
            // makes the shard's work below the cursor visible if the cursor already moved.
            let seen = cursor.fetch_or(PUBLISHER_WAITING, Ordering::AcqRel) & !PUBLISHER_WAITING;
            behind |= seen < need;
        }
        behind
    }

    /// Waits until every shard has retired its cursor (see [`retire`](Self::retire)).
    pub(crate) fn wait_retired(&self, strategy: WaitStrategy) {
        self.wait_dispatched(RETIRED, strategy);
    }

    /// Whether every shard has retired its cursor (what `wait_retired` waits for).
    pub(crate) fn all_retired(&self) -> bool {
        self.dispatched(RETIRED)
    }

    /// The future form of [`wait_retired`](Self::wait_retired) (`Bus::close_async`).
    pub(crate) fn retired_async(&self) -> FlushWait<'_, T> {
        FlushWait::new(self, RETIRED)
    }

    /// Retires shard `index`'s cursor: that shard has finished (drained or panicked) and
    /// never gates the publisher, a flush or a close again.
    pub(crate) fn retire(&self, index: usize) {
        self.swap_cursor(index, RETIRED);
    }

    /// Stores shard `index`'s cursor and wakes whoever waits on cursors.
    fn swap_cursor(&self, index: usize, value: u64) {
        // Release: pairs with the Acquire loads in `Ring::min_cursor`; the shard's slot
        // reads, and its pushes into subscriber queues, happen before the publisher
        // overwrites those slots or a flush returns. An RMW, so that it is ordered against
        // the waiters' `fetch_or(PUBLISHER_WAITING)` (module docs, "Parking").
        let old = self.cursors[index].swap(value, Ordering::AcqRel);
        if old & PUBLISHER_WAITING != 0 {
            let wakers = {
                let mut slot = self.lock.lock();
                self.space_ready.notify_all();
                std::mem::take(&mut *slot)
            };
            // Wake outside the lock: a waker may poll its future at once.
            for waker in wakers {
                waker.wake();
            }
        }
    }

    /// Lowest shard cursor (the sequence the slowest shard reads next).
    fn min_cursor(&self) -> u64 {
        self.cursors
            .iter()
            // Acquire: pairs with the Release swap in `Consumer::release`; the shard's reads
            // of every slot below its cursor happen before we overwrite one.
            .map(|c| c.load(Ordering::Acquire) & !PUBLISHER_WAITING)
            .min()
            .unwrap_or(RETIRED)
    }
}

impl<T> Drop for Ring<T> {
    fn drop(&mut self) {
        // `&mut self`: no other thread can touch the ring; Relaxed is enough.
        for slot in self.slots.iter() {
            if slot.readers.load(Ordering::Relaxed) != 0 {
                // SAFETY: a nonzero count means the value was written and published and no
                // shard has taken it out yet (the last reader zeroes the count as it takes).
                slot.value.with_mut(|v| unsafe { (*v).assume_init_drop() });
            }
        }
    }
}

/// Takes the wakers that wake the same task as `waker` out of `slot` (dropped by the
/// caller, outside the lock).
fn take_waker(slot: &mut Vec<Waker>, waker: &Waker) -> Vec<Waker> {
    let mut taken = Vec::new();
    let mut i = 0;
    while i < slot.len() {
        if slot[i].will_wake(waker) {
            taken.push(slot.swap_remove(i));
        } else {
            i += 1;
        }
    }
    taken
}

/// Waits, as a future, until [`Ring::dispatched(target)`](Ring::dispatched): the body of
/// `Publisher::flush_async`. Woken by the shard whose cursor swap finds
/// [`PUBLISHER_WAITING`] (see "Parking without lost wake-ups"). Dropping it pending takes
/// its waker back out of the ring.
pub(crate) struct FlushWait<'a, T> {
    ring: &'a Ring<T>,
    target: u64,
    /// The waker we registered, which is (or may still be) in the ring's list.
    registered: Option<Waker>,
}

impl<'a, T> FlushWait<'a, T> {
    pub(crate) fn new(ring: &'a Ring<T>, target: u64) -> Self {
        FlushWait { ring, target, registered: None }
    }

    pub(crate) fn target(&self) -> u64 {
        self.target
    }
}

impl<T> std::future::Future for FlushWait<'_, T> {
    type Output = ();

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        let this = self.get_mut();
        // `dispatched` loads the cursors with Acquire (the flush row of the table).
        if !this.ring.dispatched(this.target) {
            if let Some(old) = this.registered.take() {
                if !old.will_wake(cx.waker()) {
                    // Polled from another task now: the old waker must not linger.
                    this.ring.clear_flush_waker(&old);
                }
            }
            if this.ring.register_flush_waker(this.target, cx.waker()) {
                this.registered = Some(cx.waker().clone());
                return std::task::Poll::Pending;
            }
            // The cursors got there meanwhile (seen by the AcqRel `fetch_or`s, which
            // synchronise like the Acquire loads); the waker was taken back.
            return std::task::Poll::Ready(());
        }
        if let Some(waker) = this.registered.take() {
            this.ring.clear_flush_waker(&waker);
        }
        std::task::Poll::Ready(())
    }
}

impl<T> Drop for FlushWait<'_, T> {
    fn drop(&mut self) {
        if let Some(waker) = self.registered.take() {
            self.ring.clear_flush_waker(&waker);
        }
    }
}

/// The single writer's handle. Only one exists per ring (the bus hands out one publisher).
pub(crate) struct Producer<T> {
    ring: crate::sync::Arc<Ring<T>>,
    /// Sequence of the next event.
    next: u64,
    /// A lower bound of every shard's cursor, refreshed when the ring looks full.
    gate: u64,
    /// Last known value of `tail` (our count, plus the sleep bit when shards set it).
    tail: u64,
}

impl<T> Producer<T> {
    pub(crate) fn new(ring: crate::sync::Arc<Ring<T>>) -> Self {
        // Relaxed: the producer is made before any publish; its count is the only writer's.
        let tail = ring.tail.load(Ordering::Relaxed);
        let next = tail & COUNT;
        let gate = ring.min_cursor();
        Producer { ring, next, gate, tail }
    }

    pub(crate) fn ring(&self) -> &Ring<T> {
        &self.ring
    }

    /// Sequence number the next pushed value gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next
    }

    /// Waits until every value pushed so far is dispatched (`Publisher::flush`).
    pub(crate) fn flush(&self, strategy: WaitStrategy) {
        self.ring.wait_dispatched(self.next, strategy);
    }

    /// The future form of [`flush`](Self::flush).
    pub(crate) fn flush_async(&self) -> FlushWait<'_, T> {
        FlushWait::new(&self.ring, self.next)
    }

    /// Whether slot `next` may be written: every shard has read sequence `next - capacity`.
    pub(crate) fn has_space(&mut self) -> bool {
        let capacity = self.ring.capacity();
        if self.next < self.gate + capacity {
            return true;
        }
        self.gate = self.ring.min_cursor();
        self.next < self.gate + capacity
    }

    /// Waits until [`has_space`](Self::has_space), the ring closes, or `deadline` passes.
    pub(crate) fn wait_for_space(
        &mut self,
        strategy: WaitStrategy,
        deadline: Option<Instant>,
    ) -> Result<(), WaitError> {
        let mut n = 0;
        loop {
            if self.has_space() {
                return Ok(());
            }
            if self.ring.is_closed() {
                return Err(WaitError::Closed);
            }
            let now = deadline.map(|_| Instant::now());
            if let (Some(deadline), Some(now)) = (deadline, now) {
                if now >= deadline {
                    return Err(WaitError::Timeout);
                }
            }
            if spin_or_yield(strategy.step(n)) {
                self.park_for_space(deadline.zip(now).map(|(d, now)| d - now));
            }
            n = n.saturating_add(1);
        }
    }

    fn park_for_space(&mut self, timeout: Option<std::time::Duration>) {
        let ring = &*self.ring;
        let need = self.next + 1 - ring.capacity();
        let guard = ring.lock.lock();
        let behind = ring.set_publisher_waiting(need);
        // Acquire: pairs with `Ring::close`; close notifies under `lock`, which we hold.
        if !behind || ring.tail.load(Ordering::Acquire) & CLOSED != 0 {
            return;
        }
        let _guard = match timeout {
            Some(t) => ring.space_ready.wait_timeout(guard, t),
            None => ring.space_ready.wait(guard),
        };
    }

    /// How many slots from [`next_seq`](Self::next_seq) on may be written now, looking at
    /// the cursors again only if fewer than `want` are known to be free.
    pub(crate) fn free_slots(&mut self, want: u64) -> u64 {
        let capacity = self.ring.capacity();
        if self.next + want <= self.gate + capacity {
            return want;
        }
        self.gate = self.ring.min_cursor();
        (self.gate + capacity).saturating_sub(self.next)
    }

    /// Publishes `values` as the sequences from [`next_seq`](Self::next_seq) on, with one
    /// Release compare-and-swap of `tail` for all of them (`Publisher::publish_batch`).
    /// The caller must have seen [`free_slots`](Self::free_slots) give at least
    /// `values.len()` since the last push. Only for values that need no drop (the bus's
    /// `SegRef`s): no per-slot count, and nothing to put back if the push fails, in which
    /// case nothing was published (`Closed`, or `Sealed` unless `starts_segment`, as for
    /// [`push`](Self::push)) and the caller still owns what the values point at.
    pub(crate) fn push_many(
        &mut self,
        values: &[T],
        starts_segment: bool,
    ) -> Result<u64, PushError<()>>
    where
        T: Copy,
    {
        let n = values.len() as u64;
        debug_assert!(n > 0 && !std::mem::needs_drop::<T>());
        debug_assert!(self.next + n <= self.gate + self.ring.capacity(), "push without space");
        let first = self.next;
        let ring = &*self.ring;
        for (seq, &value) in (first..).zip(values) {
            let slot = &ring.slots[(seq & ring.mask) as usize];
            // As in `push`, the slot is ours: unpublished (`seq >= tail`), and every live
            // shard has released its previous occupant (`free_slots`, Acquire on the
            // cursors). A `Copy` value has no count and no drop: a stale one is overwritten.
            slot.value.with_mut(|v| {
                // SAFETY: exclusive access to the slot, as just argued.
                unsafe { (*v).write(value) }
            });
        }
        let mut current = self.tail;
        loop {
            if current & CLOSED != 0 {
                return Err(PushError::Closed(()));
            }
            if current & SEALED != 0 && !starts_segment {
                self.tail = current;
                return Err(PushError::Sealed(()));
            }
            // Release: pairs with the shards' Acquire loads of `tail`, as in `push`: every
            // slot write above happens before any shard reads one of them.
            match ring.tail.compare_exchange_weak(
                current,
                first + n,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        self.tail = first + n;
        self.next = first + n;
        if current & SLEEPERS != 0 {
            let _guard = ring.lock.lock();
            ring.data_ready.notify_all();
        }
        Ok(first)
    }

    /// Publishes `value` as sequence [`next_seq`](Self::next_seq). The caller must have
    /// seen [`has_space`](Self::has_space) return `true` since the last push. Hands the
    /// value back if the ring is closed, or (unless `starts_segment`) if a shard sealed
    /// the current segment (see "Sealing"): the caller then starts a new segment and
    /// pushes again.
    pub(crate) fn push(&mut self, value: T, starts_segment: bool) -> Result<u64, PushError<T>> {
        debug_assert!(self.next < self.gate + self.ring.capacity(), "push without space");
        let seq = self.next;
        let ring = &*self.ring;
        let index = (seq & ring.mask) as usize;
        debug_assert!(index < ring.slots.len());
        let slot = &ring.slots[index];
        // Only this producer writes slots, and no shard reads slot `index` now: it is not
        // published yet (`seq >= tail`), and every live shard has read and released its
        // previous occupant `seq - capacity` (`has_space`, Acquire on the cursors, which
        // also makes their `readers` decrements visible). So the slot is empty, unless a
        // shard retired without reading that occupant: then it is ours to drop, after the
        // new value is published (so a closed ring can put it back).
        // Relaxed: ordered by the Acquire loads of the cursors in `has_space`.
        let counted = std::mem::needs_drop::<T>();
        let stale = if counted { slot.readers.load(Ordering::Relaxed) } else { 0 };
        // SAFETY: exclusive access to the slot, as just argued; a nonzero count means it
        // holds an initialised value nobody else will touch.
        let old = slot.value.with_mut(|v| unsafe {
            let old = (stale != 0).then(|| (*v).assume_init_read());
            (*v).write(value);
            old
        });
        if counted {
            // Relaxed: published with the value by the Release CAS of `tail` below.
            slot.readers.store(ring.cursors.len() as u64, Ordering::Relaxed);
        }
        let mut current = self.tail;
        loop {
            let sealed = current & SEALED != 0 && !starts_segment;
            if current & CLOSED != 0 || sealed {
                // SAFETY: the value was never published, so no shard has seen it; put the
                // previous occupant (if any) and its count back, so `Ring::drop` finds it.
                let value = slot.value.with_mut(|v| unsafe {
                    let value = (*v).assume_init_read();
                    if let Some(old) = old {
                        (*v).write(old);
                    }
                    value
                });
                if counted {
                    // Relaxed: only this thread touches an unpublished slot.
                    slot.readers.store(stale, Ordering::Relaxed);
                }
                if sealed && current & CLOSED == 0 {
                    self.tail = current;
                    return Err(PushError::Sealed(value));
                }
                return Err(PushError::Closed(value));
            }
            // Release: pairs with the shards' Acquire loads of `tail`; the slot write above
            // happens before any shard reads it. Clearing SLEEPERS here is what obliges us to
            // notify below; clearing SEALED (only when starting a segment) ends the seal.
            match ring.tail.compare_exchange_weak(
                current,
                seq + 1,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => break,
                Err(actual) => current = actual,
            }
        }
        self.tail = seq + 1;
        self.next = seq + 1;
        if current & SLEEPERS != 0 {
            let _guard = ring.lock.lock();
            ring.data_ready.notify_all();
        }
        drop(old);
        Ok(seq)
    }
}

/// One shard's reading handle.
pub(crate) struct Consumer<T> {
    ring: crate::sync::Arc<Ring<T>>,
    index: usize,
    next: u64,
}

/// What a shard found in the ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Available {
    /// Sequences `next..end` are readable.
    pub(crate) end: u64,
    /// No more will come after `end`.
    pub(crate) closed: bool,
}

impl<T> Consumer<T> {
    pub(crate) fn new(ring: crate::sync::Arc<Ring<T>>, index: usize) -> Self {
        assert!(index < ring.cursors.len());
        // Relaxed: only this shard writes its cursor; the consumer is made before it reads.
        let next = ring.cursors[index].load(Ordering::Relaxed) & !PUBLISHER_WAITING;
        Consumer { ring, index, next }
    }

    /// Next sequence this shard reads.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next
    }

    /// Looks at the ring without waiting.
    pub(crate) fn poll(&self) -> Available {
        // Acquire: pairs with the Release CAS in `Producer::push` (slot contents) and the
        // `fetch_or(CLOSED)` in `Ring::close`.
        let tail = self.ring.tail.load(Ordering::Acquire);
        Available { end: tail & COUNT, closed: tail & CLOSED != 0 }
    }

    /// Waits until something is readable, the ring is closed (and drained up to `end`), or
    /// `interrupted()` (checked between steps and, under the ring's lock, right before
    /// parking: a thread that makes it true and then calls [`Ring::wake_consumers`] is
    /// never missed). `idle()` runs once, after [`IDLE_AFTER`] failed checks: where a
    /// shard seals its segment (see "Sealing").
    pub(crate) fn wait(
        &self,
        strategy: WaitStrategy,
        interrupted: &dyn Fn() -> bool,
        idle: &mut dyn FnMut(),
    ) -> Available {
        let mut n = 0;
        loop {
            let available = self.poll();
            if available.end != self.next || available.closed || interrupted() {
                return available;
            }
            if n == IDLE_AFTER {
                // Then wait as usual: the publisher's next push starts a new segment.
                idle();
            }
            if spin_or_yield(strategy.step(n)) {
                let ring = &*self.ring;
                let guard = ring.lock.lock();
                // AcqRel: orders the bit against the publisher's CAS (module docs,
                // "Parking"); Acquire as in `poll`.
                let tail = ring.tail.fetch_or(SLEEPERS, Ordering::AcqRel);
                if tail & COUNT == self.next && tail & CLOSED == 0 && !interrupted() {
                    let _guard = ring.data_ready.wait(guard);
                }
            }
            n = n.saturating_add(1);
        }
    }

    /// Runs `f` on the value of sequence `seq`, which must be in `next_seq()..end` of an
    /// [`Available`] this consumer saw.
    pub(crate) fn read<R>(&self, seq: u64, f: impl FnOnce(&T) -> R) -> R {
        assert!(seq >= self.next, "read below the cursor");
        debug_assert!(seq < self.ring.published_acquire(), "read above the tail");
        let index = (seq & self.ring.mask) as usize;
        debug_assert!(index < self.ring.slots.len());
        // `seq` is published (the caller saw it below `tail` with Acquire), so the slot is
        // initialised and its write happened before; the publisher does not overwrite it
        // until our cursor passes `seq`, which only `release` does, and that takes
        // `&mut self`, so it cannot happen while `f` borrows the value.
        // SAFETY: a shared borrow of an initialised slot nobody writes meanwhile, as argued.
        self.ring.slots[index].value.with(|v| f(unsafe { (*v).assume_init_ref() }))
    }

    /// Seals the segment holding the last published event (see "Sealing"); returns `tail`
    /// as it was. The segment is over for this shard if the count is still
    /// [`next_seq`](Self::next_seq).
    pub(crate) fn seal(&self) -> u64 {
        // AcqRel: totally ordered with the publisher's CAS in `Producer::push`, which
        // fails (and moves to a new segment) if it comes after; Acquire as in `poll`.
        self.ring.tail.fetch_or(SEALED, Ordering::AcqRel)
    }

    /// Marks every sequence below `end` as read, letting the publisher reuse those slots.
    /// Drops each value this shard was the last to read.
    pub(crate) fn release(&mut self, end: u64) {
        debug_assert!(end >= self.next);
        let ring = &*self.ring;
        let counted = std::mem::needs_drop::<T>();
        for seq in (self.next..end).filter(|_| counted) {
            let slot = &ring.slots[(seq & ring.mask) as usize];
            // AcqRel: Release publishes our reads of the value to the shard that drops it;
            // Acquire, for that last shard, sees every other shard's reads before it drops.
            if slot.readers.fetch_sub(1, Ordering::AcqRel) == 1 {
                // The count reached zero here, so every shard has read the value and will
                // not read it again (each reads a sequence once, and `read` needs a sequence
                // at or above its cursor); the publisher does not touch the slot before our
                // cursor passes `seq`, which happens below.
                // SAFETY: exclusive access to an initialised value, as just argued.
                let value = slot.value.with_mut(|v| unsafe { (*v).assume_init_read() });
                drop(value);
            }
        }
        self.next = end;
        self.store_cursor(end);
    }

    fn store_cursor(&self, value: u64) {
        self.ring.swap_cursor(self.index, value);
    }
}
