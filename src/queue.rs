//! A subscriber's bounded queue: written by its dispatcher shard, read by its `Subscriber`,
//! with the overflow policy, loss accounting and the wake protocol in both directions.
//!
//! # Loss accounting
//! Every event the shard matches for this subscriber gets the next *match index* (0, 1, 2,
//! ...), whether it is queued or lost. The queue stores `(index, item)`; the receiver knows
//! the index it expects next, so a gap is exactly the number of events lost right there,
//! and it reports `Lagged(gap)` once, at that position, before the event after the gap. At
//! close, `matched` (the count of indices handed out) tells about losses at the very end.
//! `dropped` counts every loss for `Subscriber::dropped()`; it has one writer, the shard.
//!
//! # Wake protocol
//! `rx` is a word the shard bumps by [`RX_UNIT`] after each batch it pushed into this
//! queue. A receiver that finds the queue empty reads `rx`, tries once more, registers its
//! thread or waker, and sets [`RX_WAITING`] with a compare-and-swap from the value it read:
//! if the shard pushed meanwhile, the CAS fails and the receiver retries instead of
//! sleeping; if the CAS succeeds, the shard's later `fetch_add` sees the bit and wakes it.
//! Either way no wake-up is lost, without a `SeqCst` fence. `tx` is the same protocol the
//! other way, used only by `Overflow::Block` (the receiver bumps it per pop, the shard
//! waits on it).
//!
//! # Orderings
//! | write (Release) | read (Acquire) | what it publishes |
//! |---|---|---|
//! | shard's `rx.fetch_add` in [`SubQueue::notify`] | receiver's `rx` load and CAS in `prepare_wait` | the pushes of the batch (also published by the queue itself) |
//! | shard's `rx.fetch_or(RX_CLOSED)` in [`SubQueue::close`] | receiver's `rx` loads | every push, `matched` and `dropped` store before close |
//! | receiver's `tx.fetch_add` after a pop (Block) | shard's `tx` load and CAS | the freed slot |
//! | `gone.store(true)` in [`SubQueue::disconnect_receiver`] | shard's `gone` loads | the receiver left; stop delivering and stop waiting |
//! | receiver's `consumed` store | `delivered_consumed` (Acquire, then `unqueued` Acquire, then `matched` Relaxed) | the `delivered`/`consumed` counter pair |
//! | shard's `unqueued` store in `count_drop` | `delivered_consumed` | `delivered = matched - unqueued` never undercounts |
//!
//! Modelled in `loom-tests/tests/queue.rs` and `loom-tests/tests/wake.rs`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use crossbeam_utils::CachePadded;

use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::stats::latency::Latency;
use crate::subscription::Overflow;
use crate::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use crate::sync::thread::{self, Thread};
use crate::sync::{park_timeout, Arc, Mutex};
use crate::wait::{spin_or_yield, WaitStrategy};

/// `rx`: the shard will push nothing more.
pub(crate) const RX_CLOSED: u64 = 1;
/// `rx`: the receiver may be parked (or its task pending).
pub(crate) const RX_WAITING: u64 = 2;
/// `rx`: one notification.
pub(crate) const RX_UNIT: u64 = 4;
/// `tx`: the shard may be parked waiting for space.
const TX_WAITING: u64 = 1;
/// `tx`: one pop.
const TX_UNIT: u64 = 2;

/// The bounded MPMC array queue from crossbeam; a mutex-guarded `VecDeque` under loom,
/// which cannot run crossbeam's internals (see `sync`).
#[cfg(not(loom))]
struct Queue<T>(crossbeam_queue::ArrayQueue<T>);
#[cfg(loom)]
struct Queue<T>(Mutex<std::collections::VecDeque<T>>, usize);

#[cfg(not(loom))]
impl<T> Queue<T> {
    fn new(capacity: usize) -> Self {
        Queue(crossbeam_queue::ArrayQueue::new(capacity))
    }
    fn push(&self, value: T) -> Result<(), T> {
        self.0.push(value)
    }
    fn force_push(&self, value: T) -> Option<T> {
        self.0.force_push(value)
    }
    fn pop(&self) -> Option<T> {
        self.0.pop()
    }
    fn len(&self) -> usize {
        self.0.len()
    }
    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(loom)]
impl<T> Queue<T> {
    fn new(capacity: usize) -> Self {
        Queue(Mutex::new(std::collections::VecDeque::with_capacity(capacity)), capacity)
    }
    fn push(&self, value: T) -> Result<(), T> {
        let mut q = self.0.lock();
        if q.len() == self.1 {
            return Err(value);
        }
        q.push_back(value);
        Ok(())
    }
    fn force_push(&self, value: T) -> Option<T> {
        let mut q = self.0.lock();
        let old = if q.len() == self.1 { q.pop_front() } else { None };
        q.push_back(value);
        old
    }
    fn pop(&self) -> Option<T> {
        self.0.lock().pop_front()
    }
    fn len(&self) -> usize {
        self.0.lock().len()
    }
    fn is_empty(&self) -> bool {
        self.0.lock().is_empty()
    }
}

#[derive(Default)]
struct RxWaiter {
    thread: Option<Thread>,
    waker: Option<Waker>,
}

/// Why an event was lost for a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// `Overflow::DropNewest`: the new event.
    Newest,
    /// `Overflow::DropOldest`: the oldest queued event (the new one was queued).
    Oldest,
    /// `Overflow::Disconnect`: the new event; the queue is now closed.
    Disconnect,
    /// `Overflow::Block`, ended by bus shutdown.
    Shutdown,
}

/// What [`SubQueue::push`] did with an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// Queued.
    Queued,
    /// Queued, evicting the oldest queued item (counted as dropped).
    Evicted,
    /// Lost and counted (under `Disconnect`, the queue is now closed).
    Dropped(DropReason),
    /// The receiver is gone; nothing was counted.
    Gone,
}

/// Who a queue belongs to, for stats and debugging.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meta {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) shard: usize,
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

pub(crate) struct SubQueue<T> {
    items: Queue<(u64, T)>,
    capacity: usize,
    overflow: Overflow,
    pub(crate) meta: Meta,
    /// Publish → receive latency samples (taken by the `Subscriber`).
    pub(crate) latency: Latency,
    rx: CachePadded<AtomicU64>,
    tx: CachePadded<AtomicU64>,
    /// The shard's counters, on their own cache line: the shard writes `matched` on every
    /// push, and sharing a line with fields the receiver reads on every pop would make each
    /// pop miss.
    counts: CachePadded<ShardCounts>,
    /// Items received (the closed side). Written only by the receiver, with Release.
    consumed: CachePadded<AtomicU64>,
    /// `Lagged` reports handed out. Written only by the receiver.
    lagged_reports: AtomicU64,
    /// The receiver was dropped.
    gone: AtomicBool,
    rx_waiter: Mutex<RxWaiter>,
    tx_waiter: Mutex<Option<Thread>>,
}

impl<T> SubQueue<T> {
    /// `capacity >= 1` (the subscription checks).
    pub(crate) fn new(capacity: usize, overflow: Overflow, meta: Meta) -> Self {
        SubQueue {
            items: Queue::new(capacity),
            capacity,
            overflow,
            meta,
            latency: Latency::new(),
            rx: CachePadded::new(AtomicU64::new(0)),
            tx: CachePadded::new(AtomicU64::new(0)),
            counts: CachePadded::new(ShardCounts::default()),
            consumed: CachePadded::new(AtomicU64::new(0)),
            lagged_reports: AtomicU64::new(0),
            gone: AtomicBool::new(false),
            rx_waiter: Mutex::new(RxWaiter::default()),
            tx_waiter: Mutex::new(None),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Events lost so far. Relaxed: a counter read, ordered by nothing.
    pub(crate) fn dropped(&self) -> u64 {
        self.counts.dropped.load(Ordering::Relaxed)
    }

    /// Whether the shard should skip this queue: closed (disconnected) or receiver gone.
    pub(crate) fn is_dead(&self) -> bool {
        // Relaxed: a stale `false` only means one more push into a queue nobody reads;
        // `push` re-checks `gone` with Acquire before it would wait.
        self.gone.load(Ordering::Relaxed) || self.rx.load(Ordering::Relaxed) & RX_CLOSED != 0
    }

    /// Whether the receiver was dropped (its `Subscriber` is gone for good).
    pub(crate) fn receiver_gone(&self) -> bool {
        // Relaxed: read under the registry's writer lock only to sweep; a stale `false`
        // keeps the entry until the dropping `Subscriber`'s own `remove`, which follows.
        self.gone.load(Ordering::Relaxed)
    }

    // ---- shard side -------------------------------------------------------------------

    /// Pushes `item` under this queue's overflow policy. Shard only. `abort` is checked
    /// while an `Overflow::Block` push waits (bus shutdown); `flush` is called once before
    /// such a wait, to deliver the wake-ups the shard has batched so far (the receiver we
    /// wait for may be parked on exactly such a wake-up).
    pub(crate) fn push(
        &self,
        item: T,
        strategy: WaitStrategy,
        abort: &AtomicBool,
        flush: &mut dyn FnMut(),
    ) -> Pushed {
        // Relaxed: only this thread writes `matched`; the receiver reads it after the
        // Release close.
        let index = self.counts.matched.load(Ordering::Relaxed);
        self.counts.matched.store(index + 1, Ordering::Relaxed);
        let entry = (index, item);
        match self.overflow {
            Overflow::DropNewest => match self.items.push(entry) {
                Ok(()) => Pushed::Queued,
                Err(_) => self.count_drop(DropReason::Newest),
            },
            Overflow::DropOldest => {
                if self.items.force_push(entry).is_some() {
                    self.count_drop(DropReason::Oldest);
                    return Pushed::Evicted;
                }
                Pushed::Queued
            }
            Overflow::Disconnect => match self.items.push(entry) {
                Ok(()) => Pushed::Queued,
                Err(_) => {
                    let pushed = self.count_drop(DropReason::Disconnect);
                    self.close();
                    pushed
                }
            },
            Overflow::Block => self.push_blocking(entry, strategy, abort, flush),
        }
    }

    fn count_drop(&self, reason: DropReason) -> Pushed {
        // Relaxed: one writer; readers see it via `close` (Release) or as a gauge.
        let dropped = self.counts.dropped.load(Ordering::Relaxed);
        self.counts.dropped.store(dropped + 1, Ordering::Relaxed);
        if reason != DropReason::Oldest {
            let unqueued = self.counts.unqueued.load(Ordering::Relaxed);
            // Release: pairs with the Acquire load in `delivered_consumed`: a snapshot that
            // sees this count also sees the `matched` store made before it.
            self.counts.unqueued.store(unqueued + 1, Ordering::Release);
        }
        Pushed::Dropped(reason)
    }

    fn push_blocking(
        &self,
        mut entry: (u64, T),
        strategy: WaitStrategy,
        abort: &AtomicBool,
        flush: &mut dyn FnMut(),
    ) -> Pushed {
        let mut n = 0;
        let mut flushed = false;
        loop {
            // Acquire: pairs with the receiver's Release `fetch_add` in `pop`.
            let seen = self.tx.load(Ordering::Acquire);
            entry = match self.items.push(entry) {
                Ok(()) => return Pushed::Queued,
                Err(entry) => entry,
            };
            // Acquire: pairs with the Release store in `disconnect_receiver` / bus shutdown.
            if self.gone.load(Ordering::Acquire) {
                return Pushed::Gone;
            }
            if abort.load(Ordering::Acquire) {
                return self.count_drop(DropReason::Shutdown);
            }
            if !flushed {
                // Our receiver only pops after a wake-up, and the shard batches those until
                // the end of the batch: without this, both would wait for each other.
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
                thread::park();
            }
        }
    }

    /// `(delivered, consumed)` with `delivered >= consumed`.
    pub(crate) fn delivered_consumed(&self) -> (u64, u64) {
        // Acquire: pairs with the Release store in `count_consumed`; every item it counts
        // was matched (the `matched` store precedes the push, which precedes the pop).
        let consumed = self.consumed.load(Ordering::Acquire);
        // Acquire: pairs with `count_drop`; the `matched` loaded below is at least the one
        // current when this many drops were counted, so the difference never undercounts.
        let unqueued = self.counts.unqueued.load(Ordering::Acquire);
        // Relaxed: ordered by the two Acquire loads above; newer values only overcount an
        // in-flight event, which is still matched-and-not-consumed.
        let matched = self.counts.matched.load(Ordering::Relaxed);
        (matched.saturating_sub(unqueued), consumed)
    }

    /// Receiver only: one item received.
    fn count_consumed(&self) {
        let c = self.consumed.load(Ordering::Relaxed);
        // Release: pairs with the Acquire load in `delivered_consumed`.
        self.consumed.store(c + 1, Ordering::Release);
    }

    /// Receiver only: one `Lagged` report handed out.
    fn count_lagged_report(&self) {
        // Relaxed: single writer, no partner.
        let c = self.lagged_reports.load(Ordering::Relaxed);
        self.lagged_reports.store(c + 1, Ordering::Relaxed);
    }

    /// `Lagged` reports handed out so far.
    pub(crate) fn lagged_reports(&self) -> u64 {
        // Relaxed: a plain counter read.
        self.lagged_reports.load(Ordering::Relaxed)
    }

    /// Called by the shard once per batch that pushed into this queue: wakes the receiver
    /// if it waits.
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

    /// Takes the next queued `(index, item)`.
    pub(crate) fn pop(&self) -> Option<(u64, T)> {
        let entry = self.items.pop()?;
        if self.overflow == Overflow::Block {
            // Release: pairs with the shard's Acquire load/CAS of `tx` in `push_blocking`.
            let old = self.tx.fetch_add(TX_UNIT, Ordering::AcqRel);
            if old & TX_WAITING != 0 {
                self.wake_shard();
            }
        }
        Some(entry)
    }

    fn wake_shard(&self) {
        // AcqRel: clears the bit for the shard's next wait; ordered against its CAS in
        // `push_blocking` like `wake_receiver` is against the receiver's.
        self.tx.fetch_and(!TX_WAITING, Ordering::AcqRel);
        let thread = self.tx_waiter.lock().take();
        if let Some(thread) = thread {
            thread.unpark();
        }
    }

    /// The `rx` word, for a receiver about to wait: if the queue is still empty after this
    /// load, pass the value to [`wait_thread`](Self::wait_thread) or
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

    /// Forgets a registered waker (a cancelled `recv_async`): nothing is left behind.
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

/// The receiving side of a [`SubQueue`]: lag accounting and waiting. Owned by one
/// `Subscriber` (or a loom model).
pub(crate) struct Receiver<T> {
    queue: Arc<SubQueue<T>>,
    strategy: WaitStrategy,
    /// Latency sampling: 1 in `sample_every` received items (0: off), timed from `stamp`.
    sample_every: u32,
    since_sample: u32,
    age: Option<fn(&T) -> Option<Duration>>,
    /// Match index of the next item we expect ("Loss accounting").
    expected: u64,
    /// The item right after a gap: returned by the call after the one that said `Lagged`.
    pending: Option<T>,
}

impl<T> Receiver<T> {
    pub(crate) fn new(queue: Arc<SubQueue<T>>, strategy: WaitStrategy) -> Self {
        Receiver {
            queue,
            strategy,
            sample_every: 0,
            since_sample: 0,
            age: None,
            expected: 0,
            pending: None,
        }
    }

    /// Records the latency of 1 in `every` received items into the queue's histogram:
    /// `age(item)` at the receive.
    pub(crate) fn sample_latency(&mut self, every: u32, age: fn(&T) -> Option<Duration>) {
        self.sample_every = every;
        self.age = Some(age);
    }

    fn sample(&mut self, item: &T) {
        let Some(age) = self.age else { return };
        if self.sample_every == 0 {
            return;
        }
        self.since_sample += 1;
        if self.since_sample < self.sample_every {
            return;
        }
        self.since_sample = 0;
        if let Some(age) = age(item) {
            let nanos = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
            self.queue.latency.record(nanos);
        }
    }

    pub(crate) fn queue(&self) -> &SubQueue<T> {
        &self.queue
    }

    /// Items waiting for this receiver, including one held back behind a `Lagged` report,
    /// at most the capacity. The held item left the queue when it was popped (to see the
    /// gap before it), so the shard may refill the queue behind it: for that short span
    /// `capacity + 1` items wait, and `len` says `capacity`. The clamp keeps the promise
    /// users read off `len` (it never exceeds `capacity`) without a second counter on the
    /// push path.
    pub(crate) fn len(&self) -> usize {
        (self.queue.len() + usize::from(self.pending.is_some())).min(self.queue.capacity())
    }

    pub(crate) fn try_recv(&mut self) -> Result<T, TryRecvError> {
        let result = self.try_recv_inner();
        if let Ok(item) = &result {
            self.sample(item);
        }
        result
    }

    fn try_recv_inner(&mut self) -> Result<T, TryRecvError> {
        if let Some(item) = self.pending.take() {
            self.queue.count_consumed();
            return Ok(item);
        }
        if let Some((index, item)) = self.queue.pop() {
            return self.accept(index, item);
        }
        if self.queue.rx_state() & RX_CLOSED == 0 {
            return Err(TryRecvError::Empty);
        }
        // Closed: every push before the close is visible now (Acquire in `rx_state`).
        if let Some((index, item)) = self.queue.pop() {
            return self.accept(index, item);
        }
        let matched = self.queue.matched();
        if matched > self.expected {
            let lost = matched - self.expected;
            self.expected = matched;
            self.queue.count_lagged_report();
            return Err(TryRecvError::Lagged(lost));
        }
        Err(TryRecvError::Closed)
    }

    fn accept(&mut self, index: u64, item: T) -> Result<T, TryRecvError> {
        debug_assert!(index >= self.expected, "queue reordered");
        let lost = index - self.expected;
        self.expected = index + 1;
        if lost == 0 {
            // Counted when handed out (an item held back behind `Lagged` counts later).
            self.queue.count_consumed();
            Ok(item)
        } else {
            self.pending = Some(item);
            self.queue.count_lagged_report();
            Err(TryRecvError::Lagged(lost))
        }
    }

    pub(crate) fn recv(&mut self) -> Result<T, RecvError> {
        match self.recv_until(None) {
            Ok(item) => Ok(item),
            Err(RecvTimeoutError::Lagged(n)) => Err(RecvError::Lagged(n)),
            Err(RecvTimeoutError::Closed | RecvTimeoutError::Timeout) => Err(RecvError::Closed),
        }
    }

    pub(crate) fn recv_timeout(&mut self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600));
        self.recv_until(Some(deadline))
    }

    pub(crate) fn recv_async(&mut self) -> Recv<'_, T> {
        Recv { receiver: self, registered: false }
    }

    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut n = 0;
        loop {
            match self.try_recv() {
                Ok(item) => return Ok(item),
                Err(TryRecvError::Lagged(lost)) => return Err(RecvTimeoutError::Lagged(lost)),
                Err(TryRecvError::Closed) => return Err(RecvTimeoutError::Closed),
                Err(TryRecvError::Empty) => {}
            }
            let remaining = match deadline {
                Some(deadline) => match deadline.checked_duration_since(Instant::now()) {
                    Some(remaining) if !remaining.is_zero() => Some(remaining),
                    _ => return Err(RecvTimeoutError::Timeout),
                },
                None => None,
            };
            if !spin_or_yield(self.strategy.step(n)) {
                n = n.saturating_add(1);
                continue;
            }
            // The wake protocol: read `rx`, look again, park only if `rx` did not move.
            let seen = self.queue.rx_state();
            if !self.queue.is_empty() || seen & RX_CLOSED != 0 {
                continue;
            }
            if self.queue.prepare_park(seen) {
                match remaining {
                    Some(remaining) => park_timeout(remaining),
                    None => thread::park(),
                }
            }
        }
    }
}

/// The future of `Subscriber::recv_async`. Holds no event: dropping it loses nothing.
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'a, T> {
    receiver: &'a mut Receiver<T>,
    registered: bool,
}

impl<T> Future for Recv<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            let result = match this.receiver.try_recv() {
                Ok(item) => Ok(item),
                Err(TryRecvError::Lagged(lost)) => Err(RecvError::Lagged(lost)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
                Err(TryRecvError::Empty) => {
                    let queue = &this.receiver.queue;
                    let seen = queue.rx_state();
                    if queue.is_empty()
                        && seen & RX_CLOSED == 0
                        && queue.register_waker(seen, cx.waker())
                    {
                        this.registered = true;
                        return Poll::Pending;
                    }
                    continue;
                }
            };
            if this.registered {
                this.receiver.queue.clear_waker();
                this.registered = false;
            }
            return Poll::Ready(result);
        }
    }
}

impl<T> Drop for Recv<'_, T> {
    fn drop(&mut self) {
        if self.registered {
            self.receiver.queue.clear_waker();
        }
    }
}
