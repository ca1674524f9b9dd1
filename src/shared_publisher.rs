//! A publisher many threads can use: clones of one handle that serialize on a lock around
//! the exclusive [`Publisher`].
//!
//! The ring stays single-writer: every `SharedPublisher` clone shares one `Publisher` behind
//! one `parking_lot` mutex (through the `sync` shim), and each publish is one short critical
//! section: stamp, write the slot, one Release store. The lock's acquire/release is what
//! orders one handle's publish before the next handle's, so per-thread publish order is
//! kept and the sequence numbers are handed out in lock order. No new atomic pairs are
//! added here: the ring's own orderings (see `ring` and `publisher`) apply unchanged.
//!
//! # Waiting while holding the lock
//! A `publish` that finds the ring full waits for space *holding* the lock, so the other
//! handles queue up on the mutex (parked by `parking_lot`, not spinning) behind it rather
//! than all polling the ring. They would all wait for the same space anyway, and the ring's
//! wait protocol has room for one waiting publisher. [`SharedPublisher::flush`] also holds
//! the lock while it waits. [`SharedPublisher::try_publish`] never queues behind such a
//! wait: when the lock is busy it looks at the ring's occupancy, and a full ring is `Full`.
//!
//! # Lifetime
//! The `Publisher` inside is dropped (and the bus closed for publishing) when the last
//! clone is dropped or closed. The bus keeps a weak reference to the clones' shared state:
//! while any clone is alive, [`Bus::shared_publisher`] returns another clone and
//! [`Bus::publisher`] returns [`BusError::PublisherTaken`](crate::BusError), as both do
//! while the exclusive publisher is alive.
//!
//! [`Bus::publisher`]: crate::Bus::publisher
//! [`Bus::shared_publisher`]: crate::Bus::shared_publisher

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::{
    PublishError, PublishTimeoutError, PublishToError, TopicError, TryPublishError,
};
use crate::event::Event;
use crate::publisher::{Closed, Flush, Publisher};
use crate::ring::FlushWait;
use crate::shared::Shared;
use crate::sync::atomic::Ordering;
use crate::sync::{hint, thread, Arc, Mutex};
use crate::topic::Topic;

/// Spins on a busy lock before yielding the thread, in [`SharedPublisher::try_publish`].
const TRY_SPINS: u32 = 64;

/// A cloneable, `Send + Sync` publisher: publish from many threads or tasks through
/// `&self`. Get it with [`Bus::shared_publisher`](crate::Bus::shared_publisher).
///
/// Each clone publishes through the bus's one ring writer, serialized by a short critical
/// section. Events published by one thread reach every subscriber in that thread's order;
/// events of different threads interleave in the order they took the lock (their sequence
/// numbers say which). The exclusive [`Publisher`] stays the fastest path when one thread
/// publishes everything.
///
/// The bus closes for publishing when the last clone is dropped or
/// [`close`](Self::close)d: the dispatchers then deliver everything already published and
/// every receiver sees `Closed`.
///
/// ```
/// use shardcast::{Bus, Event, RecvError, Subscription, Topic};
/// use std::thread;
///
/// let bus: Bus<(usize, u32)> = Bus::builder().build()?;
/// let mut audit = bus.subscribe(Subscription::all().capacity(64))?;
/// let publisher = bus.shared_publisher()?;
/// let topic = Topic::new("orders.eu.created")?;
/// let producers: Vec<_> = (0..4)
///     .map(|thread_no| {
///         let (publisher, topic) = (publisher.clone(), topic.clone());
///         thread::spawn(move || {
///             for n in 0..5 {
///                 publisher.publish_blocking(Event::new(topic.clone(), (thread_no, n))).unwrap();
///             }
///         })
///     })
///     .collect();
/// drop(publisher); // the producers hold the other clones
/// for producer in producers {
///     producer.join().unwrap();
/// } // the last clone is gone: the bus is closed for publishing
///
/// let mut next = [0; 4]; // each thread's events arrive in that thread's order
/// loop {
///     match audit.recv_blocking() {
///         Ok(delivery) => {
///             let (thread_no, n) = *delivery.payload();
///             assert_eq!(n, next[thread_no]);
///             next[thread_no] += 1;
///         }
///         Err(RecvError::Lagged(_)) => continue, // counted losses; go on
///         Err(RecvError::Closed) => break,
///     }
/// }
/// assert_eq!(next, [5; 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SharedPublisher<E> {
    /// A `std` `Arc`, also under loom: the bus keeps a `std::sync::Weak` to it (loom has
    /// none) to hand out more clones; a reference count, not a protocol between threads.
    inner: std::sync::Arc<Inner<E>>,
}

pub(crate) struct Inner<E> {
    publisher: Mutex<Publisher<E>>,
    /// For the lock-free gauges and `try_publish`'s look at the ring; the publisher keeps
    /// the bus alive.
    shared: Arc<Shared<E>>,
}

impl<E> SharedPublisher<E> {
    pub(crate) fn new(publisher: Publisher<E>, shared: Arc<Shared<E>>) -> Self {
        let inner = Inner { publisher: Mutex::new(publisher), shared };
        SharedPublisher { inner: std::sync::Arc::new(inner) }
    }

    /// The handle the bus remembers, to hand out clones of this one.
    pub(crate) fn downgrade(&self) -> std::sync::Weak<Inner<E>> {
        std::sync::Arc::downgrade(&self.inner)
    }

    /// Another clone of a handle the bus remembered, if one is still alive.
    pub(crate) fn upgrade(weak: &std::sync::Weak<Inner<E>>) -> Option<Self> {
        weak.upgrade().map(|inner| SharedPublisher { inner })
    }

    /// Publishes `event`, blocking the thread (per the bus's wait strategy) while the ring
    /// is full, as [`Publisher::publish_blocking`] does. Returns the event's sequence
    /// number. Other handles publishing meanwhile wait for their turn on the lock. In async
    /// code await [`publish`](Self::publish).
    ///
    /// # Panics
    /// If the ring is full on a thread that runs tokio tasks (a runtime worker, or inside
    /// `block_on`): it panics instead, naming `publish(..).await`.
    ///
    /// # Errors
    /// The bus is closed; the event is handed back.
    pub fn publish_blocking(&self, event: Event<E>) -> Result<u64, PublishError<Event<E>>> {
        self.lock_to_block("publish_blocking").publish_blocking_as(event, "publish_blocking")
    }

    /// The lock, for a blocking publish. Free at once: nothing to check (the publisher
    /// checks before it waits for ring space). Busy with the ring full: the holder may be
    /// waiting for space, and so would we, which is not allowed on a thread that runs
    /// async tasks (`blocking` module). The uncontended path reads no ring state.
    fn lock_to_block(&self, call: &str) -> crate::sync::MutexGuard<'_, Publisher<E>> {
        if let Some(publisher) = self.inner.publisher.try_lock() {
            return publisher;
        }
        let ring = &self.inner.shared.ring;
        if ring.occupancy() >= ring.capacity() {
            crate::blocking::forbid_in_async(call, "publish(..).await");
        }
        self.inner.publisher.lock()
    }

    /// Publishes every event of `events` in order, as [`Publisher::publish_batch_blocking`] does,
    /// under the lock for the whole batch: no other clone's events come between them.
    ///
    /// # Errors
    /// The bus closed first: the events not published are left in `events`, and the error
    /// carries the sequence numbers of those that were.
    pub fn publish_batch_blocking(
        &self,
        events: &mut Vec<Event<E>>,
    ) -> Result<std::ops::Range<u64>, PublishError<std::ops::Range<u64>>> {
        self.lock_to_block("publish_batch_blocking").publish_batch_blocking(events)
    }

    /// Publishes `payload` on the topic given as text, as
    /// [`Publisher::publish_to_blocking`] does (a topic seen before is not parsed again),
    /// under the lock, blocking the thread while the ring is full.
    ///
    /// # Panics
    /// As [`publish_blocking`](Self::publish_blocking).
    ///
    /// # Errors
    /// `Topic` (the text is not a valid topic) or `Closed`, with the payload.
    pub fn publish_to_blocking(&self, topic: &str, payload: E) -> Result<u64, PublishToError<E>> {
        self.lock_to_block("publish_to_blocking").publish_to_blocking(topic, payload)
    }

    /// Publishes `event` without blocking the thread, as [`Publisher::publish`] does, from
    /// any number of tasks through `&self`: while the ring is full, the future waits for the
    /// dispatcher shards to release slots (a registered waker; any number of clones may
    /// wait at once), and it never waits for the lock while another clone waits for space.
    ///
    /// Cancel-safe: the event is either published, or still inside the future when it is
    /// dropped, and then dropped with it, unpublished.
    ///
    /// ```
    /// use shardcast::{Bus, Event, RecvError, Subscription, Topic};
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let bus: Bus<u32> = Bus::builder().ring_capacity(2).build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let publisher = bus.shared_publisher()?;
    /// let topic = Topic::new("t")?;
    /// for i in 0..10 {
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
    pub async fn publish(&self, event: Event<E>) -> Result<u64, PublishError<Event<E>>> {
        let mut event = event;
        loop {
            match self.try_publish(event) {
                Ok(seq) => return Ok(seq),
                Err(TryPublishError::Closed(e)) => return Err(PublishError(e)),
                Err(TryPublishError::Full(e)) => {
                    event = e;
                    let ring = &self.inner.shared.ring;
                    // The next event's slot is free once every shard is past
                    // `published - capacity` (closing lets the shards drain and retire
                    // their cursors, so this ends then too; the next try says `Closed`).
                    let need = (ring.published_acquire() + 1).saturating_sub(ring.capacity());
                    FlushWait::new(ring, need).await;
                }
            }
        }
    }

    /// Publishes `payload` on the topic given as text, without blocking the thread: the
    /// topic, then a wait for ring space as in [`publish`](Self::publish). The
    /// last topic is reused without parsing when the lock is free at once; otherwise the
    /// text is parsed here, never waiting for the lock.
    ///
    /// Cancel-safe, as `publish`: the payload is either published or dropped with
    /// the future, unpublished.
    ///
    /// ```
    /// use shardcast::{Bus, PublishToError, Subscription};
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let bus: Bus<u32> = Bus::builder().ring_capacity(2).build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let publisher = bus.shared_publisher()?;
    /// for i in 0..5 {
    ///     publisher.publish_to("orders.eu.created", i).await?;
    /// }
    /// assert!(matches!(
    ///     publisher.publish_to("orders..eu", 9).await,
    ///     Err(PublishToError::Topic(_, 9))
    /// ));
    /// publisher.flush_async().await;
    /// assert_eq!(sub.len(), 5);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `Topic` (the text is not a valid topic) or `Closed`, with the payload.
    pub async fn publish_to(&self, topic: &str, payload: E) -> Result<u64, PublishToError<E>> {
        let topic = match self.topic(topic) {
            Ok(t) => t,
            Err(e) => return Err(PublishToError::Topic(e, payload)),
        };
        self.publish(Event::new(topic, payload))
            .await
            .map_err(|e| PublishToError::Closed(e.into_inner().into_payload()))
    }

    /// The topic for `text`: through the publisher's one-topic cache if the lock is free
    /// now, parsed here otherwise (never waiting for the lock).
    fn topic(&self, text: &str) -> Result<Topic, TopicError> {
        match self.inner.publisher.try_lock() {
            Some(mut publisher) => publisher.topic(text),
            None => Topic::new(text),
        }
    }

    /// Publishes `event` if the ring has room right now. It never waits for ring space,
    /// and never queues behind a handle that does: if the lock is busy and the ring is full,
    /// it returns `Full` at once; if the lock is busy and the ring has room, it waits for
    /// the holder's short critical section (or its [`flush`](Self::flush)).
    ///
    /// # Errors
    /// `Full` (every slot still awaits a slow dispatcher) or `Closed`, with the event.
    pub fn try_publish(&self, event: Event<E>) -> Result<u64, TryPublishError<Event<E>>> {
        let mut n = 0u32;
        loop {
            if let Some(mut publisher) = self.inner.publisher.try_lock() {
                return publisher.try_publish(event);
            }
            // Another handle holds the lock. With the ring full it is waiting for space, or
            // will find none: the answer is `Full` either way (that handle counts its own
            // wait in `publisher_waits`, whose one writer is the publisher).
            let ring = &self.inner.shared.ring;
            if ring.occupancy() >= ring.capacity() {
                if ring.is_closed() {
                    return Err(TryPublishError::Closed(event));
                }
                return Err(TryPublishError::Full(event));
            }
            if n < TRY_SPINS {
                hint::spin_loop();
            } else {
                thread::yield_now();
            }
            n = n.saturating_add(1);
        }
    }

    /// Publishes `event`, waiting at most `timeout` in all: for the lock, then for ring
    /// space.
    ///
    /// # Errors
    /// `Timeout` or `Closed`, with the event.
    pub fn publish_timeout(
        &self,
        event: Event<E>,
        timeout: Duration,
    ) -> Result<u64, PublishTimeoutError<Event<E>>> {
        let start = Instant::now();
        let Some(mut publisher) = self.inner.publisher.try_lock_for(timeout) else {
            if self.is_closed() {
                return Err(PublishTimeoutError::Closed(event));
            }
            return Err(PublishTimeoutError::Timeout(event));
        };
        publisher.publish_timeout(event, timeout.saturating_sub(start.elapsed()))
    }

    /// Waits until every event published (through any clone) before this call has been
    /// handled by every dispatcher shard; see [`Publisher::flush`]. It holds the lock while
    /// it waits, so other handles' publishes wait for it too. It blocks the thread: in a
    /// task, await [`flush_async`](Self::flush_async) instead. Do not call it from a
    /// subscription's filter (a dispatcher thread): it would wait for itself.
    ///
    /// ```
    /// use shardcast::{Bus, Event, Subscription, Topic};
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let publisher = bus.shared_publisher()?;
    /// publisher.clone().publish_blocking(Event::new(Topic::new("t")?, 7))?;
    /// publisher.flush();
    /// assert_eq!(*sub.try_recv()?.payload(), 7); // never `Empty` after a flush
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush(&self) {
        if !self.is_empty() {
            crate::blocking::forbid_in_async("flush", "flush_async()");
        }
        self.inner.publisher.lock().flush();
    }

    /// [`flush`](Self::flush) without blocking the thread, as [`Publisher::flush_async`]
    /// does: resolves once every event published (through any clone) before this call is
    /// in the queue of every subscriber it matches, or dropped and counted under that
    /// subscriber's [`Overflow`](crate::Overflow) policy. It takes no lock, so it never
    /// waits behind a clone that is waiting for ring space, and clones publishing
    /// meanwhile are not held up. Cancel-safe: dropping it loses nothing and leaves no
    /// waker behind.
    ///
    /// ```
    /// use shardcast::{Bus, Event, Subscription, Topic};
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let publisher = bus.shared_publisher()?;
    /// publisher.clone().publish(Event::new(Topic::new("t")?, 7)).await?;
    /// publisher.flush_async().await;
    /// assert_eq!(*sub.try_recv()?.payload(), 7); // never `Empty` after a flush
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn flush_async(&self) -> Flush<'_, E> {
        let ring = &self.inner.shared.ring;
        // Every publish that returned before this call (on this thread, or one that this
        // thread synchronised with) is counted in `tail`: the Acquire load pairs with the
        // Release CAS in `Producer::push`, as in `published_acquire`'s other uses.
        Flush::new(crate::ring::FlushWait::new(ring, ring.published_acquire()))
    }

    /// Resolves when no subscriber is left ([`subscriber_count`](Self::subscriber_count)
    /// is 0), as [`Publisher::closed`] does and like tokio's `Sender::closed`: at once if
    /// there is none now, otherwise when the last one is dropped. Takes no lock.
    /// Cancel-safe: dropping the future leaves nothing behind.
    ///
    /// ```
    /// use shardcast::{Bus, Subscription};
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let publisher = bus.shared_publisher()?;
    /// let sub = bus.subscribe(Subscription::all())?;
    /// tokio::spawn(async move { drop(sub) });
    /// publisher.closed().await; // the last subscriber is gone
    /// assert_eq!(publisher.subscriber_count(), 0);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn closed(&self) -> Closed<'_, E> {
        Closed::new(&self.inner.shared)
    }

    /// Shows `source`'s counters in the bus's stats, as
    /// [`Bus::attach_stats`](crate::Bus::attach_stats) does.
    pub fn attach_stats(&self, source: std::sync::Arc<dyn crate::stats::external::ExternalStats>) {
        self.inner.shared.reporting.external.attach(source);
    }

    /// Drops this handle. The bus closes for publishing when the last clone is dropped or
    /// closed (the same as dropping each); to close the bus whatever other handles remain,
    /// use [`Bus::close`](crate::Bus::close).
    pub fn close(self) {}

    /// Whether the bus is closed for publishing: by [`Bus::close`](crate::Bus::close), or by a
    /// dispatcher's panic (while a clone lives, nothing else closes it).
    pub fn is_closed(&self) -> bool {
        self.inner.shared.ring.is_closed()
    }

    /// Live subscribers; see [`Publisher::subscriber_count`]. Takes no lock.
    ///
    /// ```
    /// use shardcast::{Bus, Subscription};
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let publisher = bus.shared_publisher()?;
    /// let sub = bus.subscribe(Subscription::all())?;
    /// assert_eq!(publisher.clone().subscriber_count(), 1);
    /// drop(sub);
    /// assert_eq!(publisher.subscriber_count(), 0);
    /// # Ok::<(), shardcast::BusError>(())
    /// ```
    pub fn subscriber_count(&self) -> usize {
        // Relaxed: a gauge, as in `Publisher::subscriber_count`.
        self.inner.shared.lifetime.live_subscribers.load(Ordering::Relaxed) as usize
    }

    /// Events published and not yet dispatched by every shard; see [`Publisher::len`].
    /// Takes no lock.
    pub fn len(&self) -> usize {
        self.inner.shared.ring.occupancy() as usize
    }

    /// Whether every published event has been dispatched ([`len`](Self::len) is 0).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Ring slots; see [`Publisher::capacity`].
    pub fn capacity(&self) -> usize {
        self.inner.shared.ring.capacity() as usize
    }
}

impl<E> Clone for SharedPublisher<E> {
    fn clone(&self) -> Self {
        SharedPublisher { inner: std::sync::Arc::clone(&self.inner) }
    }
}

impl<E> fmt::Debug for SharedPublisher<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedPublisher")
            .field("published", &self.inner.shared.ring.published())
            .field("closed", &self.is_closed())
            .finish()
    }
}
