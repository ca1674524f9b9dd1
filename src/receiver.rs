//! The receiving side of a subscriber's queue: lag accounting, claiming events, reading
//! them in place and waiting for them; and the deliveries it hands out.
//!
//! A [`Receiver`] owns the reader's end of one `SubQueue` (see `queue` for the entry ring,
//! the packed `head` word and the wake protocol it follows). A [`Delivery`] borrows the
//! receiver, so the entry it reads is not released while it is read; an
//! [`OwnedDelivery`] holds a reference on the event's segment of its own.

use std::fmt;
use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::event::Event;
use crate::queue::{low_bits, pack, unpack, SubQueue, RX_CLOSED};
use crate::segment::{Pool, SegHold, SegPtr, Segment};
use crate::subscription::Overflow;
use crate::sync::atomic::{self, Ordering};
use crate::sync::thread;
use crate::sync::{park_timeout, Arc};
use crate::wait::{spin_or_yield, WaitStrategy};

/// The entry the receiver reads (its reference is the receiver's).
struct Current<E> {
    seg: SegPtr<E>,
    /// Match index of the first event << 16 | mask.
    word: u64,
    /// Its index in the queue.
    index: u64,
    /// Its events not yet taken, and how many were.
    rest: u16,
    taken: u32,
}

impl<E> Clone for Current<E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for Current<E> {}

/// One event taken from the queue.
pub(crate) struct Claimed<E> {
    pub(crate) seg: SegPtr<E>,
    /// `usize`, not `u32`: a 4-byte field copied out by an 8-byte load is a
    /// store-forwarding stall on every receive.
    pub(crate) slot: usize,
    index: u64,
}

impl<E> Clone for Claimed<E> {
    fn clone(&self) -> Self {
        Claimed { seg: self.seg, slot: self.slot, index: self.index }
    }
}

/// The receiving side of a [`SubQueue`]: lag accounting, reading in place and waiting.
/// Owned by one `Subscriber` (or a loom model).
pub(crate) struct Receiver<E> {
    queue: Arc<SubQueue<E>>,
    strategy: WaitStrategy,
    /// Latency sampling: 1 in `sample_every` received events (0: off).
    sample_every: u32,
    since_sample: u32,
    /// Match index of the next event we expect ("Loss accounting").
    expected: u64,
    /// Our copy of `head` (the only writer unless `DropOldest`).
    head: u64,
    /// Events taken (claimed) so far; published in `ReaderShared::taken`.
    taken: u64,
    /// The entry being read, if we own its reference.
    current: Option<Current<E>>,
    /// `current`'s last event was handed out: release it once that delivery is done.
    finish_current: bool,
    /// The event right after a gap: returned by the call after the one that said `Lagged`.
    pending: Option<Claimed<E>>,
    /// A `Lagged(n)` that `recv_many` met after it had handed out events: reported by the
    /// next receive, before `pending`.
    deferred_lag: Option<u64>,
}

// SAFETY: the receiver's segment pointers are references it owns (module docs).
unsafe impl<E: Send + Sync> Send for Receiver<E> {}
// SAFETY: `&Receiver` exposes nothing but gauges: its `&self` methods only read the
// queue's atomics (`len`, `dropped`, ...); everything that claims, reads an event or touches
// a segment reference takes `&mut self`. This is what makes `Subscriber` `Sync`, like
// tokio's `Receiver`: a task may hold `&Subscriber` across an `.await`.
unsafe impl<E: Send + Sync> Sync for Receiver<E> {}

impl<E> Receiver<E> {
    pub(crate) fn new(queue: Arc<SubQueue<E>>, strategy: WaitStrategy) -> Self {
        Receiver {
            queue,
            strategy,
            sample_every: 0,
            since_sample: 0,
            expected: 0,
            head: 0,
            taken: 0,
            current: None,
            finish_current: false,
            pending: None,
            deferred_lag: None,
        }
    }

    /// Records the latency of 1 in `every` received events into the queue's histogram.
    pub(crate) fn sample_latency(&mut self, every: u32) {
        self.sample_every = every;
    }

    #[inline]
    fn sample(&mut self, seg: SegPtr<E>, slot: usize) {
        // By value, not `&Claimed`: a claimed event that must live in memory for this
        // call costs a store-forwarding stall when it is copied out right after.
        if self.sample_every == 0 {
            return;
        }
        self.since_sample += 1;
        if self.since_sample >= self.sample_every {
            self.since_sample = 0;
            self.record_sample(seg, slot);
        }
    }

    #[cold]
    fn record_sample(&self, seg: SegPtr<E>, slot: usize) {
        // SAFETY: a claimed event's segment is held by `current` (ours).
        let event = unsafe { Segment::event(seg.0, slot) };
        if let Some(age) = event.age() {
            let nanos = u64::try_from(age.as_nanos()).unwrap_or(u64::MAX);
            self.queue.latency.record(nanos);
        }
    }

    pub(crate) fn queue(&self) -> &SubQueue<E> {
        &self.queue
    }

    /// Events waiting for this receiver, including one held back behind a `Lagged` report,
    /// at most the capacity.
    pub(crate) fn len(&self) -> usize {
        self.queue.len()
    }

    /// Called when a delivery is done: releases the entry whose last event it was.
    pub(crate) fn finish(&mut self) {
        if self.finish_current && self.pending.is_none() {
            self.finish_current = false;
            if let Some(current) = self.current.take() {
                // SAFETY: `current`'s reference is ours, and its last delivery is done.
                drop(unsafe { SegHold::adopt(current.seg, 1) });
            }
        }
    }

    /// Takes the next event from the queue, if any.
    fn claim(&mut self) -> Option<Claimed<E>> {
        let queue = &*self.queue;
        let oldest = queue.overflow == Overflow::DropOldest;
        loop {
            let head = if oldest {
                // Acquire: pairs with the shard's eviction CAS.
                queue.reader.head.load(Ordering::Acquire)
            } else {
                self.head
            };
            let (index, _, taken) = unpack(head);
            if let Some(current) = self.current {
                if current.index != index {
                    // The shard evicted the rest of our entry: we still own its reference.
                    self.current = None;
                    // SAFETY: `current`'s reference is ours; nothing of it is handed out
                    // (a delivery borrows the receiver, so none is alive during `claim`).
                    drop(unsafe { SegHold::adopt(current.seg, 1) });
                }
            }
            let mut current = match self.current {
                Some(current) => current,
                None => {
                    // A new entry: the only time a receive loads the shard's `tail`.
                    if !queue.has_entries(head) {
                        return None;
                    }
                    let slot = &queue.slots[(index & queue.mask) as usize];
                    // Relaxed: ordered by the Acquire load of `tail` in `has_entries`.
                    let seg = slot.seg.load(Ordering::Relaxed);
                    let word = slot.word.load(Ordering::Relaxed);
                    match NonNull::new(seg) {
                        Some(seg) => {
                            Current { seg: SegPtr(seg), word, index, rest: word as u16, taken: 0 }
                        }
                        // Only a reused slot under `DropOldest` reads as empty: retry.
                        None => continue,
                    }
                }
            };
            if current.taken != taken {
                // `DropOldest` evicted from this entry (or this is a torn read of a reused
                // slot, which the CAS below rejects).
                let mask = current.word as u16;
                if taken >= mask.count_ones() {
                    continue;
                }
                current.rest = mask & !low_bits(mask, taken);
                current.taken = taken;
            }
            let slot = current.rest.trailing_zeros();
            current.rest &= current.rest.wrapping_sub(1);
            current.taken += 1;
            let last = current.rest == 0;
            let next = if last { pack(index + 1, false, 0) } else { pack(index, true, taken + 1) };
            if oldest {
                // AcqRel: claims the event against the shard's eviction (module docs).
                if queue
                    .reader
                    .head
                    .compare_exchange(head, next, Ordering::AcqRel, Ordering::Acquire)
                    .is_err()
                {
                    continue;
                }
            } else {
                // Ours alone until the receiver is dropped (see `ReaderShared::head`).
                self.head = next;
            }
            self.taken += 1;
            // Release: pairs with the shard's Acquire load in `room`: the event is claimed
            // (its entry copied), its room free. Per event: room is exact, as the user set it.
            queue.reader.taken.store(self.taken, Ordering::Release);
            // The entry's reference is ours from its first claim.
            self.current = Some(current);
            if last {
                self.finish_current = true;
                queue.entry_done();
            }
            let index = (current.word >> 16) + u64::from(taken);
            return Some(Claimed { seg: current.seg, slot: slot as usize, index });
        }
    }

    /// Checks the claimed event against the index we expect.
    fn accept(&mut self, claimed: Claimed<E>) -> Result<Claimed<E>, TryRecvError> {
        debug_assert!(claimed.index >= self.expected, "queue reordered");
        let lost = claimed.index - self.expected;
        self.expected = claimed.index + 1;
        if lost == 0 {
            self.queue.count_consumed();
            self.sample(claimed.seg, claimed.slot);
            Ok(claimed)
        } else {
            self.pending = Some(claimed);
            self.queue.count_lagged_report();
            Err(TryRecvError::Lagged(lost))
        }
    }

    /// The next event, if any; the common case (the next event of the entry being read)
    /// inline, everything else in [`try_claim_slow`](Self::try_claim_slow).
    #[inline(always)]
    pub(crate) fn try_claim(&mut self) -> Result<Claimed<E>, TryRecvError> {
        match self.claim_in_entry() {
            Some(claimed) => Ok(claimed),
            None => self.try_claim_slow(),
        }
    }

    /// The next event of the entry we are reading, when nothing else is owed first (no
    /// deferred `Lagged`, no event held back behind one) and the shard cannot evict from
    /// under us (not `DropOldest`). The events of an entry have consecutive match indices,
    /// so there is no gap to check: the event after a claimed one in its entry is always
    /// the one we expect.
    #[inline(always)]
    fn claim_in_entry(&mut self) -> Option<Claimed<E>> {
        if self.finish_current
            || self.pending.is_some()
            || self.deferred_lag.is_some()
            || self.queue.overflow == Overflow::DropOldest
        {
            return None;
        }
        let current = self.current.as_mut()?;
        let slot = current.rest.trailing_zeros();
        let taken = current.taken;
        current.rest &= current.rest.wrapping_sub(1);
        current.taken += 1;
        let last = current.rest == 0;
        let index = (current.word >> 16) + u64::from(taken);
        let seg = current.seg;
        let entry = current.index;
        debug_assert_eq!(index, self.expected, "an entry's indices are consecutive");
        self.head = if last { pack(entry + 1, false, 0) } else { pack(entry, true, taken + 1) };
        self.taken += 1;
        let queue = &*self.queue;
        // Release: as in `claim`.
        queue.reader.taken.store(self.taken, Ordering::Release);
        if last {
            self.finish_current = true;
            queue.entry_done();
        }
        self.expected = index + 1;
        let claimed = Claimed { seg, slot: slot as usize, index };
        queue.count_consumed();
        self.sample(claimed.seg, claimed.slot);
        Some(claimed)
    }

    fn try_claim_slow(&mut self) -> Result<Claimed<E>, TryRecvError> {
        if let Some(lost) = self.deferred_lag.take() {
            return Err(TryRecvError::Lagged(lost));
        }
        if let Some(claimed) = self.pending.take() {
            self.queue.count_consumed();
            self.sample(claimed.seg, claimed.slot);
            return Ok(claimed);
        }
        self.finish();
        if let Some(claimed) = self.claim() {
            return self.accept(claimed);
        }
        if self.queue.rx_state() & RX_CLOSED == 0 {
            return Err(TryRecvError::Empty);
        }
        // Closed: every push before the close is visible now (Acquire in `rx_state`).
        if let Some(claimed) = self.claim() {
            return self.accept(claimed);
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

    /// Hands out up to `max` queued events to `f`, without waiting, after `first` if
    /// given. Stops at a gap (its `Lagged` is reported by the next receive) and at the end
    /// of the queue. Returns how many `f` got.
    pub(crate) fn claim_many(
        &mut self,
        first: Option<Claimed<E>>,
        max: usize,
        f: &mut dyn FnMut(Delivery<'_, E>),
    ) -> usize {
        let mut n = 0;
        if let Some(claimed) = first {
            f(Delivery::new(self, claimed));
            n += 1;
        }
        while n < max {
            match self.try_claim() {
                Ok(claimed) => {
                    f(Delivery::new(self, claimed));
                    n += 1;
                }
                Err(TryRecvError::Lagged(lost)) => {
                    self.deferred_lag = Some(lost);
                    break;
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        n
    }

    /// `try_recv_many`: as [`claim_many`](Self::claim_many), reporting `Empty`, `Closed` or
    /// `Lagged` if nothing was handed out.
    pub(crate) fn try_recv_many(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(Delivery<'_, E>),
    ) -> Result<usize, TryRecvError> {
        if max == 0 {
            return Ok(0);
        }
        let first = self.try_claim()?;
        Ok(self.claim_many(Some(first), max, f))
    }

    /// `recv_many`: waits for one event as `recv` does, then hands out what else is queued.
    pub(crate) fn recv_many_blocking(
        &mut self,
        max: usize,
        f: &mut dyn FnMut(Delivery<'_, E>),
    ) -> Result<usize, RecvError> {
        if max == 0 {
            return Ok(0);
        }
        let first = match self.claim_until(None, "Subscriber::recv_many_blocking") {
            Ok(claimed) => claimed,
            Err(RecvTimeoutError::Lagged(n)) => return Err(RecvError::Lagged(n)),
            Err(RecvTimeoutError::Closed | RecvTimeoutError::Timeout) => {
                return Err(RecvError::Closed)
            }
        };
        Ok(self.claim_many(Some(first), max, f))
    }

    /// One poll of an async receive: the body of [`Recv`] and of the subscriber's stream.
    /// `registered` says whether our waker may be in the queue's waiter slot.
    #[inline(always)]
    pub(crate) fn poll_claim(
        &mut self,
        cx: &mut Context<'_>,
        registered: &mut bool,
    ) -> Poll<Result<Claimed<E>, RecvError>> {
        // tokio's cooperative budget, as its own channels keep it: a hot receive loop
        // yields to the worker's other tasks once the task's budget is spent. One unit per
        // queue entry (a run of up to 16 events) rather than per event: the loop still
        // yields, after at most 128 entries, with a sixteenth of the forced yields, which
        // cost a fifth of the async fan-out's throughput when taken per event
        // (docs/perf/journal.md, attempt 30).
        #[cfg(feature = "tokio")]
        let coop = match self.current {
            Some(current) if current.rest != 0 => None,
            _ => Some(std::task::ready!(tokio::task::coop::poll_proceed(cx))),
        };
        loop {
            let result = match self.try_claim() {
                Ok(claimed) => Ok(claimed),
                Err(TryRecvError::Lagged(lost)) => Err(RecvError::Lagged(lost)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
                Err(TryRecvError::Empty) => {
                    let seen = self.queue.rx_state();
                    if self.is_empty()
                        && seen & RX_CLOSED == 0
                        && self.queue.register_waker(seen, cx.waker())
                    {
                        *registered = true;
                        // SeqCst: as in `claim_until` ("Wake protocol").
                        atomic::fence(Ordering::SeqCst);
                        if self.is_empty() {
                            return Poll::Pending;
                        }
                    }
                    continue;
                }
            };
            if *registered {
                self.queue.clear_waker();
                *registered = false;
            }
            #[cfg(feature = "tokio")]
            if let Some(coop) = &coop {
                coop.made_progress();
            }
            return Poll::Ready(result);
        }
    }

    fn is_empty(&self) -> bool {
        let head = if self.queue.overflow == Overflow::DropOldest {
            // Acquire: as in `claim`.
            self.queue.reader.head.load(Ordering::Acquire)
        } else {
            self.head
        };
        self.pending.is_none() && !self.queue.has_entries(head)
    }

    pub(crate) fn try_recv(&mut self) -> Result<Delivery<'_, E>, TryRecvError> {
        let claimed = self.try_claim()?;
        Ok(Delivery::new(self, claimed))
    }

    pub(crate) fn recv_blocking(&mut self) -> Result<Delivery<'_, E>, RecvError> {
        match self.claim_until(None, "Subscriber::recv_blocking") {
            Ok(claimed) => Ok(Delivery::new(self, claimed)),
            Err(RecvTimeoutError::Lagged(n)) => Err(RecvError::Lagged(n)),
            Err(RecvTimeoutError::Closed | RecvTimeoutError::Timeout) => Err(RecvError::Closed),
        }
    }

    pub(crate) fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Delivery<'_, E>, RecvTimeoutError> {
        let deadline = Instant::now()
            .checked_add(timeout)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600));
        let claimed = self.claim_until(Some(deadline), "Subscriber::recv_timeout")?;
        Ok(Delivery::new(self, claimed))
    }

    pub(crate) fn recv(&mut self) -> Recv<'_, E> {
        Recv { receiver: Some(self), registered: false }
    }

    /// The blocking receives' wait. `call` names the caller, for the panic of a call made
    /// on a thread that runs async tasks (`blocking` module).
    fn claim_until(
        &mut self,
        deadline: Option<Instant>,
        call: &str,
    ) -> Result<Claimed<E>, RecvTimeoutError> {
        let mut n = 0;
        loop {
            match self.try_claim() {
                Ok(claimed) => return Ok(claimed),
                Err(TryRecvError::Lagged(lost)) => return Err(RecvTimeoutError::Lagged(lost)),
                Err(TryRecvError::Closed) => return Err(RecvTimeoutError::Closed),
                Err(TryRecvError::Empty) => {}
            }
            if n == 0 {
                crate::blocking::forbid_in_async(call, "Subscriber::recv().await");
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
            if !self.is_empty() || seen & RX_CLOSED != 0 {
                continue;
            }
            if self.queue.prepare_park(seen) {
                // SeqCst: pairs with the shard's fence after a batch ("Wake protocol"): a
                // batch this look misses will see our bit and wake us.
                atomic::fence(Ordering::SeqCst);
                if !self.is_empty() {
                    // Not sleeping after all: take the registration back, so the shard
                    // does not unpark us for nothing (it may already have: harmless).
                    self.queue.cancel_park();
                    continue;
                }
                match remaining {
                    Some(remaining) => park_timeout(remaining),
                    None => thread::park(),
                }
            }
        }
    }
}

impl<E> Drop for Receiver<E> {
    fn drop(&mut self) {
        if self.queue.overflow != Overflow::DropOldest {
            // Release: `SubQueue::drop` (after the last `Arc`, which orders it after us)
            // releases the entries from here on.
            self.queue.reader.head.store(self.head, Ordering::Release);
        }
        // No delivery is alive (they borrow the receiver): release the entry we own.
        self.pending = None;
        if let Some(current) = self.current.take() {
            // SAFETY: `current`'s reference is ours; nothing of it is in use.
            drop(unsafe { SegHold::adopt(current.seg, 1) });
        }
    }
}

/// The future of [`Subscriber::recv`](crate::Subscriber::recv). Holds no event: dropping it loses nothing.
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'a, E> {
    receiver: Option<&'a mut Receiver<E>>,
    registered: bool,
}

impl<'a, E> Future for Recv<'a, E> {
    type Output = Result<Delivery<'a, E>, RecvError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let receiver = this.receiver.take().expect("`Recv` polled after completion");
        match receiver.poll_claim(cx, &mut this.registered) {
            Poll::Pending => {
                this.receiver = Some(receiver);
                Poll::Pending
            }
            Poll::Ready(result) => {
                Poll::Ready(result.map(|claimed| Delivery::new(receiver, claimed)))
            }
        }
    }
}

impl<E> Drop for Recv<'_, E> {
    fn drop(&mut self) {
        if self.registered {
            if let Some(receiver) = &self.receiver {
                receiver.queue.clear_waker();
            }
        }
    }
}

impl<E> Unpin for Recv<'_, E> {}

/// One subscriber's receipt of an event, read in place: it borrows the
/// [`Subscriber`](crate::Subscriber) until it is dropped, and derefs to the [`Event`],
/// which lives in a segment shared with every other subscriber that received it. Taking
/// it costs no reference count; [`to_owned`](Self::to_owned) gives a handle that outlives
/// the borrow (and may cross threads) at one reference-count increment.
pub struct Delivery<'a, E> {
    rx: &'a mut Receiver<E>,
    event: &'a Event<E>,
    seg: SegPtr<E>,
    slot: usize,
}

impl<'a, E> Delivery<'a, E> {
    #[inline(always)]
    pub(crate) fn new(rx: &'a mut Receiver<E>, claimed: Claimed<E>) -> Self {
        let (seg, slot) = (claimed.seg, claimed.slot);
        // SAFETY: the receiver owns a reference on the claimed event's segment until this
        // delivery is dropped (`Receiver::finish` runs in our `Drop`), and a claimed slot
        // holds a published event.
        let event = unsafe { Segment::event(seg.0, slot) };
        // The resolved route is read only when asked for: most receivers never do, and it
        // lives on another line of the segment.
        Delivery { rx, event, seg, slot }
    }

    /// The event's route as resolved at dispatch: its own, or the one bound to its alias.
    /// [`Event::route`] (through `Deref`, as `Event::route(&delivery)`) is the route the
    /// event was published with.
    ///
    /// ```
    /// use shardcast::{Alias, Bus, Event, Subscription, Topic, Uuid};
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let mut publisher = bus.publisher()?;
    /// let (alias, route) = (Alias::new("conn", "c-1")?, Uuid::from_u128(7));
    /// let t = Topic::new("t")?;
    /// publisher.publish_blocking(Event::new(t.clone(), 0).with_alias(alias.clone()).with_route(route).binds())?;
    /// publisher.publish_blocking(Event::new(t, 1).with_alias(alias))?;
    /// publisher.close();
    /// let first = sub.recv_blocking()?;
    /// assert_eq!(first.resolved_route(), Some(route));
    /// drop(first);
    /// let late = sub.recv_blocking()?;
    /// assert_eq!(Event::route(&late), None); // published without a route
    /// assert_eq!(late.resolved_route(), Some(route)); // bound through its alias
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolved_route(&self) -> Option<Uuid> {
        // SAFETY: the receiver's reference keeps the segment alive while we exist, and the
        // shard wrote its route before it pushed the entry we were claimed from.
        unsafe { Segment::route(self.seg.0, self.rx.queue().meta.shard, self.slot) }
    }

    /// The resolved route; renamed [`resolved_route`](Self::resolved_route) because this
    /// name shadowed [`Event::route`] (the published route) through `Deref`.
    #[deprecated(note = "use `resolved_route()`; `Event::route` is the published route")]
    pub fn route(&self) -> Option<Uuid> {
        self.resolved_route()
    }

    /// An owned handle on the same event, which outlives this borrow and may be sent to
    /// another thread: one reference-count increment on the event's segment (and one on
    /// the bus's segment pool, which must outlive it). The segment, and the other events
    /// in it, stay in memory until the handle is dropped.
    ///
    /// ```
    /// use shardcast::{Bus, Event, RecvError, Subscription, Topic};
    /// let bus: Bus<String> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let mut publisher = bus.publisher()?;
    /// for word in ["a", "b"] {
    ///     publisher.publish_blocking(Event::new(Topic::new("t")?, word.to_owned()))?;
    /// }
    /// publisher.close();
    /// let mut kept = Vec::new();
    /// loop {
    ///     match sub.recv_blocking() {
    ///         Ok(delivery) => kept.push(delivery.to_owned()),
    ///         Err(RecvError::Lagged(n)) => eprintln!("lost {n} events"), // and go on
    ///         Err(RecvError::Closed) => break,
    ///     }
    /// }
    /// let words: Vec<&str> = kept.iter().map(|d| d.payload().as_str()).collect();
    /// assert_eq!(words, ["a", "b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> OwnedDelivery<E> {
        OwnedDelivery {
            // SAFETY: we hold the receiver's reference on the segment while we exist.
            hold: unsafe { SegHold::share(self.seg) },
            slot: self.slot as u32,
            route: self.resolved_route(),
            pool: Arc::clone(self.rx.queue().pool_arc()),
        }
    }

    /// Whether two deliveries (borrowed or owned, through `Deref`) are of the same event:
    /// the same slot of the same segment.
    pub fn ptr_eq(a: &Event<E>, b: &Event<E>) -> bool {
        std::ptr::eq(a, b)
    }
}

impl<E> Drop for Delivery<'_, E> {
    fn drop(&mut self) {
        self.rx.finish();
    }
}

impl<E> Deref for Delivery<'_, E> {
    type Target = Event<E>;
    fn deref(&self) -> &Event<E> {
        self.event
    }
}

impl<E: fmt::Debug> fmt::Debug for Delivery<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("route", &self.resolved_route())
            .field("event", self.event)
            .finish()
    }
}

/// An owned [`Delivery`] (see [`Delivery::to_owned`]): keeps its event alive, `Clone`
/// (one more reference), `Send` and `Sync` when `E` is.
pub struct OwnedDelivery<E> {
    /// Declared before `pool`: released before the pool may go.
    hold: SegHold<E>,
    slot: u32,
    route: Option<Uuid>,
    pool: Arc<Pool<E>>,
}

impl<E> OwnedDelivery<E> {
    /// As [`Delivery::resolved_route`].
    pub fn resolved_route(&self) -> Option<Uuid> {
        self.route
    }

    /// The event's payload, moved out without a copy, if this is the last handle on the
    /// event's segment: no other subscriber or owned delivery still holds an event of it
    /// (a segment carries up to 16 consecutive events), and every shard is done with it.
    /// Otherwise the delivery is handed back unchanged: clone the payload, or keep reading
    /// it in place.
    ///
    /// While the bus runs, expect it to fail more often than not: a shard holds a segment
    /// until it has read the segment's last event (16 events later, or when the publisher
    /// goes idle), and every other subscriber that received one of its events holds it
    /// until it moves on. It succeeds reliably once the bus is closed and drained, or for
    /// the last of a segment's events to be released. Write
    /// `d.try_into_payload().unwrap_or_else(|d| d.payload().clone())` where a copy is the
    /// fallback.
    ///
    /// ```
    /// use shardcast::{Bus, Event, Subscription, Topic};
    /// let bus: Bus<String> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let mut publisher = bus.publisher()?;
    /// publisher.publish_blocking(Event::new(Topic::new("t")?, "hello".to_string()))?;
    /// let owned = sub.recv_blocking()?.to_owned();
    /// let copy = owned.clone(); // a second handle: not the last one
    /// let owned = owned.try_into_payload().unwrap_err();
    /// drop(copy);
    /// drop(publisher);
    /// bus.close(); // waits until the shard is done with the segment
    /// assert_eq!(owned.try_into_payload().unwrap(), "hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// Another handle holds the event's segment; the delivery is handed back.
    pub fn try_into_payload(self) -> Result<E, Self> {
        let OwnedDelivery { hold, slot, route, pool } = self;
        match hold.try_take(slot as usize) {
            Ok(event) => Ok(event.into_payload()),
            Err(hold) => Err(OwnedDelivery { hold, slot, route, pool }),
        }
    }

    /// Whether two owned deliveries are of the same event.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        std::ptr::eq::<Event<E>>(&**a, &**b)
    }
}

impl<E> Clone for OwnedDelivery<E> {
    fn clone(&self) -> Self {
        OwnedDelivery {
            hold: self.hold.clone(),
            slot: self.slot,
            route: self.route,
            pool: Arc::clone(&self.pool),
        }
    }
}

impl<E> Deref for OwnedDelivery<E> {
    type Target = Event<E>;
    fn deref(&self) -> &Event<E> {
        // SAFETY: our reference keeps the segment and its published event alive.
        unsafe { Segment::event(self.hold.seg().0, self.slot as usize) }
    }
}

impl<E: fmt::Debug> fmt::Debug for OwnedDelivery<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedDelivery").field("route", &self.route).field("event", &**self).finish()
    }
}
