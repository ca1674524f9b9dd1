//! The single publisher, and its signals: flush, closed, subscriber count, ring length.
//!
//! # Orderings
//! | write (Release) | read (Acquire) | what it publishes |
//! |---|---|---|
//! | a shard's swap of its ring cursor (`ring::Consumer::release`, `Ring::retire`) | the cursor loads of `Ring::dispatched` in [`Publisher::flush`] / [`Flush`] (`ring::FlushWait`) | the shard's pushes into subscriber queues of every event below the cursor: after a flush, `try_recv` finds them |
//! | `Subscriber::drop`'s `fetch_sub` of `live_subscribers` (AcqRel) | the `live_subscribers` loads in [`Closed::poll`] | everything the last subscriber did before it was dropped |
//!
//! Both waits register with the side that makes the condition true under a lock that the
//! waker takes too, and re-check after registering: the flush through the ring's
//! `PUBLISHER_WAITING` protocol (see `ring`), `closed` through `Shared::closed_wakers`
//! (register, then load the count; the last subscriber decrements, then takes the wakers
//! under the same lock). Modelled in `loom-tests/tests/publisher.rs`, whose models fail if
//! either Acquire/Release pair above is weakened to Relaxed.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::error::{
    PublishError, PublishTimeoutError, PublishToError, TopicError, TryPublishError,
};
use crate::event::Event;
use crate::ring::{FlushWait, Producer, PushError, WaitError};
use crate::segment::{SegRef, Writer, SEG_LEN};
use crate::shared::{BusHandle, Shared};
use crate::stats::topics::LocalTopics;
use crate::sync::atomic::Ordering;
use crate::sync::Arc;
use crate::topic::Topic;

/// The bus's one publisher: writes events into the ring. Get it with
/// [`Bus::publisher`](crate::Bus::publisher).
///
/// Dropping it (or [`close`](Self::close)) closes the bus for publishing: the dispatchers
/// deliver every event already published, then every receiver sees `Closed`. It keeps the
/// bus alive: the bus lives while a `Bus`, the publisher or a subscriber does.
///
/// [`publish`](Self::publish) (awaited) and [`publish_blocking`](Self::publish_blocking)
/// return once the event is in the ring; a dispatcher thread moves it to the subscribers'
/// queues a moment later. [`flush`](Self::flush) waits for that.
pub struct Publisher<E> {
    producer: Producer<SegRef<E>>,
    /// The segment being written, and recycled segments.
    writer: Writer<E>,
    shared: Arc<Shared<E>>,
    topics: LocalTopics,
    /// The topic of the last `publish_to`: a run of events on one
    /// topic compares its text instead of looking it up.
    last_topic: Option<Topic>,
    /// Keeps the bus alive (dropped after `shared`'s ring is closed in `drop`).
    _handle: Arc<BusHandle<E>>,
}

// SAFETY: `&Publisher` methods only read atomics (the ring's cursors, `live_subscribers`),
// the producer's own sequence (written only through `&mut self`), or go through the bus's
// locks (`attach_stats`, the waker list of `closed`). The one field that is not `Sync` by
// itself, the segment `Writer` (raw segment pointers), is used only through `&mut self`.
// Like tokio's `Sender`: a task may hold `&Publisher` across an `.await`.
unsafe impl<E: Send + Sync> Sync for Publisher<E> {}

impl<E> Publisher<E> {
    pub(crate) fn new(handle: Arc<BusHandle<E>>) -> Self {
        let shared = Arc::clone(&handle.shared);
        Publisher {
            producer: Producer::new(Arc::clone(&shared.ring)),
            writer: Writer::new(Arc::clone(&shared.pool)),
            shared,
            topics: LocalTopics::new(),
            last_topic: None,
            _handle: handle,
        }
    }

    /// Shows `source`'s counters in the bus's stats, as
    /// [`Bus::attach_stats`](crate::Bus::attach_stats) does.
    pub fn attach_stats(&self, source: std::sync::Arc<dyn crate::stats::external::ExternalStats>) {
        self.shared.reporting.external.attach(source);
    }

    /// The ring is full: count it (once per publish that had to wait or failed).
    fn count_wait(&self) {
        let waits = &self.shared.publisher_waits;
        // Relaxed: single writer (this publisher), a plain counter.
        waits.store(waits.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Publishes `event`, blocking the thread (per the bus's wait strategy) while the ring
    /// is full. Returns the event's sequence number. Publishing with no subscribers is a
    /// cheap no-op. For plain threads and `spawn_blocking`; in async code await
    /// [`publish`](Self::publish). It costs the same as `publish` when the ring has room.
    ///
    /// # Panics
    /// If the ring is full on a thread that runs tokio tasks (a runtime worker, or inside
    /// `block_on`), where waiting could hang the runtime: it panics instead, naming
    /// `publish(..).await`, as tokio's `blocking_recv` does.
    ///
    /// # Errors
    /// The bus is closed; the event is handed back.
    pub fn publish_blocking(&mut self, event: Event<E>) -> Result<u64, PublishError<Event<E>>> {
        self.publish_blocking_as(event, "publish_blocking")
    }

    /// `publish_blocking`, named `call` in the panic of a call made where it must not wait.
    pub(crate) fn publish_blocking_as(
        &mut self,
        event: Event<E>,
        call: &str,
    ) -> Result<u64, PublishError<Event<E>>> {
        if !self.producer.has_space() {
            crate::blocking::forbid_in_async(call, "publish(..).await");
            self.count_wait();
            let started = Instant::now();
            let waited = self.producer.wait_for_space(self.shared.config.wait_strategy, None);
            crate::trace::ring_full(&self.shared.ring_full_limit, started.elapsed());
            if let Err(WaitError::Closed | WaitError::Timeout) = waited {
                return Err(PublishError(event));
            }
        }
        self.push(event).map_err(PublishError)
    }

    /// Publishes every event of `events`, in order, as
    /// [`publish_blocking`](Self::publish_blocking) would one at a time (blocking while the
    /// ring is full), and leaves `events` empty with its
    /// allocation kept. Returns the sequence numbers given, in order.
    ///
    /// Cheaper per event than `publish_blocking` for a burst that is ready at once: events are
    /// written into their segment and published with one store per run of up to 16 (one
    /// segment's worth, or as many as the ring has room for), so a dispatcher wakes and
    /// reads them as one batch.
    ///
    /// ```
    /// use shardcast::{Bus, Event, RecvError, Subscription, Topic};
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let mut publisher = bus.publisher()?;
    /// let topic = Topic::new("ticks")?;
    /// let mut burst: Vec<_> = (0..40).map(|i| Event::new(topic.clone(), i)).collect();
    /// assert_eq!(publisher.publish_batch_blocking(&mut burst)?, 0..40);
    /// assert!(burst.is_empty()); // reusable for the next burst
    /// publisher.close();
    /// let mut got = Vec::new();
    /// loop {
    ///     match sub.recv_blocking() {
    ///         Ok(d) => got.push(*d.payload()),
    ///         Err(RecvError::Lagged(n)) => eprintln!("lost {n} events"), // and go on
    ///         Err(RecvError::Closed) => break,
    ///     }
    /// }
    /// assert_eq!(got, (0..40).collect::<Vec<_>>());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The bus closed before every event was published. The events not published are
    /// left in `events`, in order; the error carries the sequence numbers of those that
    /// were (a prefix of the batch).
    pub fn publish_batch_blocking(
        &mut self,
        events: &mut Vec<Event<E>>,
    ) -> Result<std::ops::Range<u64>, PublishError<std::ops::Range<u64>>> {
        let first = self.producer.next_seq();
        let shards = self.shared.shards.len() as u32;
        let mut pending = events.drain(..);
        while pending.len() > 0 {
            if !self.producer.has_space() {
                crate::blocking::forbid_in_async(
                    "publish_batch_blocking",
                    "publish(..).await, one event at a time,",
                );
                self.count_wait();
                let started = Instant::now();
                let waited = self.producer.wait_for_space(self.shared.config.wait_strategy, None);
                crate::trace::ring_full(&self.shared.ring_full_limit, started.elapsed());
                if waited.is_err() {
                    break;
                }
            }
            let (at, starts) = self.writer.reserve(shards);
            let room = (SEG_LEN - at.slot as usize).min(pending.len()) as u64;
            let n = self.producer.free_slots(room).min(room) as usize;
            let mut refs = [at; SEG_LEN];
            let seq = self.producer.next_seq();
            for (j, mut event) in pending.by_ref().take(n).enumerate() {
                self.count_published(&event);
                event.stamp(seq + j as u64);
                refs[j] = SegRef { seg: at.seg, slot: at.slot + j as u32 };
                self.writer.write(refs[j], event);
            }
            let mut pushed = self.producer.push_many(&refs[..n], starts);
            if let Err(PushError::Sealed(())) = pushed {
                // An idle shard ended the segment: the run moves to a new one, which the
                // ring never refuses as sealed.
                self.writer.seal();
                let (to, starts) = self.writer.reserve(shards);
                debug_assert!(starts);
                for (j, from) in refs[..n].iter_mut().enumerate() {
                    let event = self.writer.take_back(*from);
                    *from = SegRef { seg: to.seg, slot: j as u32 };
                    self.writer.write(*from, event);
                }
                pushed = self.producer.push_many(&refs[..n], starts);
            }
            match pushed {
                Ok(_) => self.writer.commit_many(n),
                Err(_) => {
                    // Closed: the run goes back, in order, before the events not taken.
                    let mut back: Vec<Event<E>> =
                        refs[..n].iter().map(|&at| self.writer.take_back(at)).collect();
                    back.extend(pending.by_ref());
                    drop(pending);
                    events.extend(back);
                    return Err(PublishError(first..self.producer.next_seq()));
                }
            }
        }
        if pending.len() > 0 {
            let back: Vec<Event<E>> = pending.collect();
            events.extend(back);
            return Err(PublishError(first..self.producer.next_seq()));
        }
        Ok(first..self.producer.next_seq())
    }

    /// Publishes `payload` on the topic `topic`, given as text: as
    /// [`publish_blocking`](Self::publish_blocking) of `Event::new(Topic::new(topic)?, payload)`, except that a
    /// topic seen before is not parsed again (the last one is compared by text, others are
    /// found in the process's intern table, see [`Topic::INTERN_LIMIT`]).
    ///
    /// ```
    /// use shardcast::{Bus, PublishToError, Subscription};
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::to("orders.>")?)?;
    /// let mut publisher = bus.publisher()?;
    /// publisher.publish_to_blocking("orders.eu.created", 7)?;
    /// // A bad topic hands the payload back.
    /// match publisher.publish_to_blocking("orders..created", 8) {
    ///     Err(PublishToError::Topic(e, payload)) => {
    ///         assert_eq!(payload, 8);
    ///         assert!(e.to_string().contains("empty token"));
    ///     }
    ///     other => panic!("{other:?}"),
    /// }
    /// publisher.close();
    /// assert_eq!(*sub.recv_blocking()?.payload(), 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `Topic` (the text is not a valid topic) or `Closed`, with the payload.
    pub fn publish_to_blocking(
        &mut self,
        topic: &str,
        payload: E,
    ) -> Result<u64, PublishToError<E>> {
        let topic = match self.topic(topic) {
            Ok(t) => t,
            Err(e) => return Err(PublishToError::Topic(e, payload)),
        };
        self.publish_blocking_as(Event::new(topic, payload), "publish_to_blocking")
            .map_err(|e| PublishToError::Closed(e.into_inner().into_payload()))
    }

    /// [`publish_to_blocking`](Self::publish_to_blocking) without blocking the thread: the
    /// topic given as text, then a wait for ring space as in [`publish`](Self::publish).
    ///
    /// # Errors
    /// `Topic` (the text is not a valid topic) or `Closed`, with the payload.
    pub async fn publish_to(&mut self, topic: &str, payload: E) -> Result<u64, PublishToError<E>> {
        let topic = match self.topic(topic) {
            Ok(t) => t,
            Err(e) => return Err(PublishToError::Topic(e, payload)),
        };
        self.publish(Event::new(topic, payload))
            .await
            .map_err(|e| PublishToError::Closed(e.into_inner().into_payload()))
    }

    /// The topic for `text`: the last one again without parsing, or parsed and remembered.
    pub(crate) fn topic(&mut self, text: &str) -> Result<Topic, TopicError> {
        match &self.last_topic {
            Some(last) if last.as_str() == text => Ok(last.clone()),
            _ => {
                let t = Topic::new(text)?;
                self.last_topic = Some(t.clone());
                Ok(t)
            }
        }
    }

    /// Publishes `event` if the ring has room right now; never waits.
    ///
    /// # Errors
    /// `Full` (every slot still awaits a slow dispatcher) or `Closed`, with the event.
    pub fn try_publish(&mut self, event: Event<E>) -> Result<u64, TryPublishError<Event<E>>> {
        if !self.producer.has_space() {
            if self.producer.ring().is_closed() {
                return Err(TryPublishError::Closed(event));
            }
            self.count_wait();
            if self.producer.ring().is_closed() {
                return Err(TryPublishError::Closed(event));
            }
            return Err(TryPublishError::Full(event));
        }
        self.push(event).map_err(TryPublishError::Closed)
    }

    /// Publishes `event` without blocking the thread, like tokio broadcast's `send` but
    /// awaited: while the ring is full, the future waits for the dispatcher shards to
    /// release slots (they wake a registered waker, no polling), so it is safe to await on
    /// any executor. Returns the event's sequence number; with room in the ring it
    /// completes at its first poll.
    ///
    /// Cancel-safe: the event is either published, or still inside the future when it is
    /// dropped, and then dropped with it, unpublished. Nothing is ever half-published and no
    /// waker is left behind.
    ///
    /// ```
    /// use shardcast::{Bus, Event, RecvError, Subscription, Topic};
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let bus: Bus<u32> = Bus::builder().ring_capacity(2).build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let mut publisher = bus.publisher()?;
    /// let topic = Topic::new("t")?;
    /// for i in 0..10 {
    ///     // A 2-slot ring: some of these wait for the shard, without blocking the thread.
    ///     publisher.publish(Event::new(topic.clone(), i)).await?;
    /// }
    /// publisher.close();
    /// let mut got = Vec::new();
    /// loop {
    ///     match sub.recv().await {
    ///         Ok(d) => got.push(*d.payload()),
    ///         Err(RecvError::Lagged(n)) => eprintln!("lost {n} events"), // and go on
    ///         Err(RecvError::Closed) => break,
    ///     }
    /// }
    /// assert_eq!(got, (0..10).collect::<Vec<_>>());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// The bus is closed; the event is handed back.
    pub async fn publish(&mut self, event: Event<E>) -> Result<u64, PublishError<Event<E>>> {
        if !self.producer.has_space() {
            self.count_wait();
            loop {
                if self.producer.ring().is_closed() {
                    return Err(PublishError(event));
                }
                // Every shard past `next - capacity`: the slot for `next` is free. Closing
                // the bus lets the shards drain and retire their cursors, so this ends then
                // too.
                let need = self.producer.next_seq() + 1 - self.producer.ring().capacity();
                FlushWait::new(self.producer.ring(), need).await;
                if self.producer.has_space() {
                    break;
                }
            }
        }
        self.push(event).map_err(PublishError)
    }

    /// Publishes `event`, waiting at most `timeout` for ring space.
    ///
    /// # Errors
    /// `Timeout` or `Closed`, with the event.
    pub fn publish_timeout(
        &mut self,
        event: Event<E>,
        timeout: Duration,
    ) -> Result<u64, PublishTimeoutError<Event<E>>> {
        if !self.producer.has_space() {
            crate::blocking::forbid_in_async("publish_timeout", "publish(..).await");
            self.count_wait();
            let started = Instant::now();
            let deadline = started.checked_add(timeout);
            let waited = self.producer.wait_for_space(self.shared.config.wait_strategy, deadline);
            crate::trace::ring_full(&self.shared.ring_full_limit, started.elapsed());
            match waited {
                Ok(()) => {}
                Err(WaitError::Timeout) => return Err(PublishTimeoutError::Timeout(event)),
                Err(WaitError::Closed) => return Err(PublishTimeoutError::Closed(event)),
            }
        }
        self.push(event).map_err(PublishTimeoutError::Closed)
    }

    /// Sequence number the next published event gets.
    pub fn next_seq(&self) -> u64 {
        self.producer.next_seq()
    }

    /// Closes the bus for publishing (same as dropping the publisher). Does not wait for
    /// the dispatchers: see [`Bus::close`](crate::Bus::close) for a close that does.
    pub fn close(self) {}

    /// Waits until every event published before this call has been handled by every
    /// dispatcher shard: pushed into the queue of every subscriber it matches, or dropped
    /// under that subscriber's [`Overflow`](crate::Overflow) policy. After it returns,
    /// [`Subscriber::try_recv`](crate::Subscriber::try_recv) on this thread finds those
    /// events (another thread finds them once it has synchronised with this one). A
    /// subscriber parked in `recv` is woken a moment later (wake-ups follow each batch).
    ///
    /// It waits like [`publish_blocking`](Self::publish_blocking) waits for ring space (the bus's
    /// [`WaitStrategy`](crate::WaitStrategy): spin, yield, then park until a dispatcher
    /// moves on). An `Overflow::Block` subscriber with a full queue makes it wait until
    /// that subscriber receives: which is what makes request/response over `Block`
    /// subscribers safe (see the README). It does not hang on a closed bus: a shard that
    /// has finished (closed and drained, or panicked) counts as done. Do not call it from
    /// a subscription's filter (a dispatcher thread): it would wait for itself.
    ///
    /// ```
    /// use shardcast::{Bus, Event, Subscription, Topic};
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let mut publisher = bus.publisher()?;
    /// publisher.publish_blocking(Event::new(Topic::new("t")?, 7))?;
    /// publisher.flush();
    /// assert_eq!(*sub.try_recv()?.payload(), 7); // never `Empty` after a flush
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&mut self) {
        if !self.is_empty() {
            crate::blocking::forbid_in_async("flush", "flush_async()");
        }
        self.producer.flush(self.shared.config.wait_strategy);
    }

    /// [`flush`](Self::flush) without blocking the thread: the future is woken by the
    /// dispatcher shard that moves its cursor (a registered waker, no polling). Cancel-safe:
    /// dropping it loses nothing (events are dispatched whether or not anyone waits) and
    /// leaves no waker behind. Works on any executor.
    ///
    /// ```
    /// use shardcast::{Bus, Event, Subscription, Topic};
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let mut publisher = bus.publisher()?;
    /// publisher.publish(Event::new(Topic::new("t")?, 7)).await?;
    /// publisher.flush_async().await;
    /// assert_eq!(*sub.try_recv()?.payload(), 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush_async(&mut self) -> Flush<'_, E> {
        Flush(self.producer.flush_async())
    }

    /// Live subscribers: [`Subscriber`](crate::Subscriber) handles not yet dropped (like
    /// tokio's `Sender::receiver_count`). A subscriber disconnected by
    /// `Overflow::Disconnect` counts until its handle is dropped.
    ///
    /// ```
    /// use shardcast::{Bus, Subscription};
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let publisher = bus.publisher()?;
    /// let sub = bus.subscribe(Subscription::all())?;
    /// assert_eq!(publisher.subscriber_count(), 1);
    /// drop(sub);
    /// assert_eq!(publisher.subscriber_count(), 0);
    /// # Ok::<(), shardcast::BusError>(())
    /// ```
    pub fn subscriber_count(&self) -> usize {
        // Relaxed: a gauge; `closed` is the synchronising way to wait for 0.
        self.shared.lifetime.live_subscribers.load(Ordering::Relaxed) as usize
    }

    /// Resolves when no subscriber is left ([`subscriber_count`](Self::subscriber_count)
    /// is 0), like tokio's `Sender::closed`: at once if there is none now (also before the
    /// first subscribe), otherwise when the last one is dropped. A subscriber made later
    /// does not un-resolve it. Everything the last subscriber did before its drop is
    /// visible once it resolves. Cancel-safe: dropping the future leaves nothing behind.
    ///
    /// ```
    /// use shardcast::{Bus, Subscription};
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let publisher = bus.publisher()?;
    /// let sub = bus.subscribe(Subscription::all())?;
    /// std::thread::spawn(move || drop(sub));
    /// publisher.closed().await; // the last subscriber is gone
    /// assert_eq!(publisher.subscriber_count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn closed(&self) -> Closed<'_, E> {
        Closed::new(&self.shared)
    }

    /// Events published and not yet dispatched by every shard: the ring's occupancy, a
    /// gauge. Events a shard already moved into subscriber queues are not counted here
    /// (see [`Subscriber::len`](crate::Subscriber::len)). At most
    /// [`capacity`](Self::capacity).
    pub fn len(&self) -> usize {
        let published = self.producer.next_seq();
        let dispatched = self.shared.ring.min_dispatched().min(published);
        (published - dispatched) as usize
    }

    /// Whether every published event has been dispatched ([`len`](Self::len) is 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ring slots: how far the publisher may run ahead of the slowest dispatcher shard.
    pub fn capacity(&self) -> usize {
        self.shared.ring.capacity() as usize
    }

    /// Counts `event` in its topic's publishes (if stats are on). Before the event is
    /// visible: a snapshot never shows a topic's deliveries ahead of its publishes for
    /// long. A publish that then fails (bus closed) is still counted as attempted; the bus
    /// is closed anyway.
    fn count_published(&mut self, event: &Event<E>) {
        if let Some(table) = &self.shared.topics {
            if !event.topic().is_system() {
                self.topics.get(table, event.topic()).add_published();
            }
        }
    }

    /// Stamps and publishes; the ring has space. Hands the event back if the bus closed.
    fn push(&mut self, mut event: Event<E>) -> Result<u64, Event<E>> {
        self.count_published(&event);
        event.stamp(self.producer.next_seq());
        let shards = self.shared.shards.len() as u32;
        loop {
            let (at, starts) = self.writer.reserve(shards);
            self.writer.write(at, event);
            match self.producer.push(at, starts) {
                Ok(seq) => {
                    self.writer.commit();
                    return Ok(seq);
                }
                Err(PushError::Closed(at)) => return Err(self.writer.take_back(at)),
                Err(PushError::Sealed(at)) => {
                    // An idle shard ended the segment: the event starts the next one.
                    event = self.writer.take_back(at);
                    self.writer.seal();
                }
            }
        }
    }
}

impl<E> Drop for Publisher<E> {
    fn drop(&mut self) {
        self.shared.close_ring(crate::shared::CLOSED_BY_PUBLISHER);
    }
}

/// The future of [`Publisher::flush_async`] and
/// [`SharedPublisher::flush_async`](crate::SharedPublisher::flush_async).
#[must_use = "futures do nothing unless polled"]
pub struct Flush<'a, E>(FlushWait<'a, SegRef<E>>);

impl<'a, E> Flush<'a, E> {
    pub(crate) fn new(wait: FlushWait<'a, SegRef<E>>) -> Self {
        Flush(wait)
    }
}

impl<E> Future for Flush<'_, E> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // `FlushWait` is `Unpin` (references and plain fields).
        Pin::new(&mut self.get_mut().0).poll(cx)
    }
}

impl<E> fmt::Debug for Flush<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Flush").field("target", &self.0.target()).finish()
    }
}

/// The future of [`Publisher::closed`] and
/// [`SharedPublisher::closed`](crate::SharedPublisher::closed).
#[must_use = "futures do nothing unless polled"]
pub struct Closed<'a, E> {
    shared: &'a Shared<E>,
    /// Our entry in `closed_wakers`, once registered.
    id: Option<u64>,
}

impl<'a, E> Closed<'a, E> {
    pub(crate) fn new(shared: &'a Shared<E>) -> Self {
        Closed { shared, id: None }
    }
}

impl<E> Closed<'_, E> {
    fn none_left(&self) -> bool {
        // Acquire: pairs with the AcqRel `fetch_sub` in `Subscriber::drop`; what the last
        // subscriber did before its drop is visible once this sees 0.
        self.shared.lifetime.live_subscribers.load(Ordering::Acquire) == 0
    }

    fn unregister(&mut self) {
        if let Some(id) = self.id.take() {
            let stale = {
                let mut waiters = self.shared.lifetime.closed_wakers.lock();
                let at = waiters.wakers.iter().position(|(i, _)| *i == id);
                at.map(|at| waiters.wakers.swap_remove(at))
            };
            drop(stale); // outside the lock: a waker's drop may run anything
        }
    }
}

impl<E> Future for Closed<'_, E> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.none_left() {
            this.unregister();
            return Poll::Ready(());
        }
        {
            let mut waiters = this.shared.lifetime.closed_wakers.lock();
            let id = match this.id {
                Some(id) => id,
                None => {
                    let id = waiters.next_id;
                    waiters.next_id += 1;
                    this.id = Some(id);
                    id
                }
            };
            match waiters.wakers.iter_mut().find(|(i, _)| *i == id) {
                Some((_, w)) if w.will_wake(cx.waker()) => {}
                Some((_, w)) => *w = cx.waker().clone(),
                None => waiters.wakers.push((id, cx.waker().clone())),
            }
        }
        // Re-check after registering: the last subscriber decrements, then takes the
        // wakers under the lock we just released, so either it finds ours or we see 0.
        if this.none_left() {
            this.unregister();
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

impl<E> Drop for Closed<'_, E> {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl<E> fmt::Debug for Closed<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Closed").field("registered", &self.id.is_some()).finish()
    }
}

impl<E> fmt::Debug for Publisher<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher").field("next_seq", &self.producer.next_seq()).finish()
    }
}
