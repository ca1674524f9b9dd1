//! The receiving end of a subscription: sync, timed and async receives.
//!
//! Receive methods take `&mut self`, like `tokio::sync::broadcast::Receiver`: a subscriber
//! has one consumer, which is what lets the wake protocol keep a single waiter slot and the
//! lag accounting live in plain fields. Move it between threads freely; share it by
//! subscribing again. The receive logic itself is `receiver::Receiver`, so the loom models
//! drive exactly the code users run.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::error::{BusError, RecvError, RecvTimeoutError, TryRecvError};
use crate::queue::SubQueue;
use crate::receiver::{Delivery, OwnedDelivery, Receiver, Recv};
use crate::shared::{BusHandle, Shared};
use crate::stats::retired;
use crate::subscription::Subscription;
use crate::sync::atomic::Ordering;
use crate::sync::Arc;

/// A subscription's receiver. Dropping it unsubscribes. It keeps the bus alive: the bus
/// lives while a `Bus`, the publisher or a subscriber does.
pub struct Subscriber<E> {
    receiver: Receiver<E>,
    shared: Arc<Shared<E>>,
    /// What it subscribed with (the filter is shared with the shard's entry, not copied),
    /// for [`resubscribe`](Self::resubscribe).
    subscription: Subscription<E>,
    /// Keeps the bus alive; dropped after `drop` has unsubscribed.
    handle: Arc<BusHandle<E>>,
}

impl<E> Subscriber<E> {
    pub(crate) fn new(
        queue: Arc<SubQueue<E>>,
        handle: Arc<BusHandle<E>>,
        subscription: Subscription<E>,
    ) -> Self {
        let shared = Arc::clone(&handle.shared);
        let mut receiver = Receiver::new(queue, shared.config.wait_strategy);
        receiver.sample_latency(shared.config.latency_sample_every);
        Subscriber { receiver, shared, subscription, handle }
    }

    /// Takes the next event if one is queued; never waits.
    ///
    /// # Errors
    /// `Empty`; `Lagged(n)` once after `n` events were lost (then the next event);
    /// `Closed` once the bus closed and the queue is drained.
    pub fn try_recv(&mut self) -> Result<Delivery<'_, E>, TryRecvError> {
        self.receiver.try_recv()
    }

    /// Waits for the next event without blocking the thread, like tokio broadcast's
    /// `recv().await`. Cancel-safe: dropping the future loses no event and leaves no waker
    /// behind. Works on any executor; on tokio it takes part in the task's cooperative
    /// budget (the `tokio` feature), so a hot loop still lets the worker's other tasks run.
    ///
    /// The delivery borrows the subscriber until it is dropped: copy what the loop needs
    /// from the subscriber (its [`name`](Self::name)) before the `match`, or take an
    /// [`OwnedDelivery`] with [`recv_owned`](Self::recv_owned).
    ///
    /// ```
    /// use shardcast::{Bus, RecvError, Subscription};
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let bus: Bus<String> = Bus::builder().dispatchers(1).build()?;
    /// let mut sub = bus.subscribe(Subscription::to("orders.>")?.name("audit"))?;
    /// let publisher = bus.shared_publisher()?;
    /// publisher.publish_to("orders.eu", "o-1".to_string()).await?;
    /// drop(publisher); // the last publisher: the bus closes once `sub` has drained
    /// let name = sub.name().to_owned();
    /// loop {
    ///     match sub.recv().await {
    ///         Ok(delivery) => assert_eq!(delivery.payload(), "o-1"),
    ///         Err(RecvError::Lagged(n)) => eprintln!("{name} lost {n} events"),
    ///         Err(RecvError::Closed) => break,
    ///     }
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `Lagged(n)` once after `n` events were lost; `Closed` once the bus closed and the
    /// queue is drained.
    pub fn recv(&mut self) -> Recv<'_, E> {
        self.receiver.recv()
    }

    /// Waits for the next event as [`recv`](Self::recv) does, and hands it out as an
    /// [`OwnedDelivery`]: no borrow of the subscriber, at one reference-count increment
    /// (like the items of [`into_stream`](Self::into_stream)). Keep the borrowed `recv`
    /// where the event is handled in place: it costs nothing. A kept `OwnedDelivery` keeps
    /// its whole segment (up to 16 events) in memory until it is dropped.
    ///
    /// ```
    /// use shardcast::{Bus, Subscription};
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let bus: Bus<String> = Bus::builder().dispatchers(1).build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let publisher = bus.shared_publisher()?;
    /// publisher.publish_to("greetings", "hello".to_string()).await?;
    /// let owned = sub.recv_owned().await?;
    /// let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    /// tx.send(owned).await?; // the subscriber stays free to receive
    /// let received = rx.recv().await.unwrap();
    /// // Moved out if no other handle holds its segment (see `try_into_payload`), else cloned.
    /// let hello: String = received.try_into_payload().unwrap_or_else(|d| d.payload().clone());
    /// assert_eq!(hello, "hello");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub async fn recv_owned(&mut self) -> Result<OwnedDelivery<E>, RecvError> {
        self.receiver.recv().await.map(|delivery| delivery.to_owned())
    }

    /// Waits for the next event, blocking the thread (spinning briefly, then parking it).
    /// For plain threads and `spawn_blocking`; in async code await [`recv`](Self::recv).
    ///
    /// # Panics
    /// If it would wait on a thread that runs tokio tasks (a runtime worker, or inside
    /// `block_on`), where it could hang the runtime: like tokio's `blocking_recv`, it
    /// panics instead, naming `recv().await`. An event already queued is returned anywhere.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_blocking(&mut self) -> Result<Delivery<'_, E>, RecvError> {
        self.receiver.recv_blocking()
    }

    /// Waits at most `timeout` for the next event, blocking the thread.
    ///
    /// # Panics
    /// As [`recv_blocking`](Self::recv_blocking).
    ///
    /// # Errors
    /// `Timeout`, `Lagged(n)` or `Closed`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Delivery<'_, E>, RecvTimeoutError> {
        self.receiver.recv_timeout(timeout)
    }

    /// Waits for the next event as [`recv_blocking`](Self::recv_blocking) does, then hands it and up to
    /// `max - 1` more events that are already queued to `f`, each read in place: a whole run
    /// per call, for consumers that work in batches. Returns how many `f` got (0 only if
    /// `max` is 0). A gap met after the first event ends the call; the next receive reports
    /// its `Lagged(n)`.
    ///
    /// ```
    /// use shardcast::{Bus, Event, Subscription, Topic};
    /// let bus: Bus<u64> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let mut publisher = bus.publisher()?;
    /// for n in 0..10 {
    ///     publisher.publish_blocking(Event::new(Topic::new("ticks")?, n))?;
    /// }
    /// publisher.flush();
    /// let mut sum = 0;
    /// let got = sub.recv_many_blocking(64, |delivery| sum += *delivery.payload())?;
    /// assert_eq!((got, sum), (10, 45));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Panics
    /// As [`recv_blocking`](Self::recv_blocking).
    ///
    /// # Errors
    /// As [`recv`](Self::recv), for the first event.
    pub fn recv_many_blocking(
        &mut self,
        max: usize,
        mut f: impl FnMut(Delivery<'_, E>),
    ) -> Result<usize, RecvError> {
        self.receiver.recv_many_blocking(max, &mut f)
    }

    /// [`recv_many_blocking`](Self::recv_many_blocking) without waiting: hands out up to `max` events that are
    /// already queued.
    ///
    /// # Errors
    /// As [`try_recv`](Self::try_recv), if no event was handed out.
    pub fn try_recv_many(
        &mut self,
        max: usize,
        mut f: impl FnMut(Delivery<'_, E>),
    ) -> Result<usize, TryRecvError> {
        self.receiver.try_recv_many(max, &mut f)
    }

    /// Events lost by this subscriber so far (every overflow drop).
    pub fn dropped(&self) -> u64 {
        self.receiver.queue().dropped()
    }

    /// Events waiting for this subscriber now: its queue, plus the event held back behind
    /// a `Lagged` report. Never more than [`capacity`](Self::capacity) (see
    /// `tests/len_within_capacity.rs`). Events still in the ring are not counted (see
    /// [`Publisher::len`](crate::Publisher::len) and [`Publisher::flush`](crate::Publisher::flush)).
    pub fn len(&self) -> usize {
        self.receiver.len()
    }

    /// Whether no event is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queue capacity, exactly as subscribed.
    pub fn capacity(&self) -> usize {
        self.receiver.queue().capacity()
    }

    /// The subscription's name (`sub-<id>` unless one was given).
    pub fn name(&self) -> &str {
        &self.receiver.queue().meta.name
    }

    /// This subscription's id, unique within the bus.
    pub fn id(&self) -> u64 {
        self.receiver.queue().meta.id
    }

    /// The dispatcher shard that delivers to this subscriber.
    pub fn shard(&self) -> usize {
        self.receiver.queue().meta.shard
    }
}

impl<E: Send + Sync + 'static> Subscriber<E> {
    /// A new subscriber with the same subscription: the same patterns, route, filter (the
    /// same closure, shared), capacity and overflow policy, and the same name if one was
    /// given (a default name is new: `sub-<new id>`; ids are unique, names need not be).
    /// Like tokio's `Receiver::resubscribe`, it receives events published from now on, not
    /// what this one has queued, and it starts without lag.
    ///
    /// ```
    /// use shardcast::{Bus, Event, Subscription, Topic};
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let mut first = bus.subscribe(Subscription::to("orders.>")?.capacity(8).name("audit"))?;
    /// let mut publisher = bus.publisher()?;
    /// publisher.publish_blocking(Event::new(Topic::new("orders.a")?, 1))?;
    /// let mut second = first.resubscribe()?;
    /// assert_eq!((second.name(), second.capacity()), ("audit", 8));
    /// publisher.publish_blocking(Event::new(Topic::new("orders.b")?, 2))?;
    /// publisher.publish_blocking(Event::new(Topic::new("billing")?, 3))?; // not matched
    /// publisher.flush();
    /// assert_eq!(*first.try_recv()?.payload(), 1);
    /// assert_eq!(*second.try_recv()?.payload(), 2);
    /// assert!(second.try_recv().is_err());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `Closed` if the bus is closed.
    pub fn resubscribe(&self) -> Result<Subscriber<E>, BusError> {
        let mut subscription = self.subscription.clone();
        subscription.capacity = Some(self.capacity());
        let queue = self.handle.shared.register(&subscription, "resubscribe")?;
        Ok(Subscriber::new(queue, Arc::clone(&self.handle), subscription))
    }
}

impl<E> Subscriber<E> {
    /// This subscriber as a [`Stream`](futures_core::Stream) of owned deliveries, for
    /// `StreamExt` combinators and `tokio::select!`. The combinators come from a crate of
    /// your choice: `futures_util::StreamExt` (below) or `tokio_stream::StreamExt`; this
    /// crate implements only the trait. A loss is an item,
    /// `Err(RecvError::Lagged(n))`, never swallowed and never the end; the stream ends
    /// (`None`) when the subscription is closed and drained, and never yields
    /// `Err(RecvError::Closed)`. Each item is an
    /// [`OwnedDelivery`](crate::OwnedDelivery): one reference-count increment per event (use
    /// [`recv`](Self::recv) to read in place). Cancel-safe like `recv`, and it keeps tokio's
    /// cooperative budget as `recv` does.
    ///
    /// ```
    /// use futures_util::StreamExt;
    /// use shardcast::{Bus, Event, Subscription, Topic};
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let sub = bus.subscribe(Subscription::all())?;
    /// let mut publisher = bus.publisher()?;
    /// for n in 1..=3 {
    ///     publisher.publish(Event::new(Topic::new("t")?, n)).await?;
    /// }
    /// publisher.close();
    /// let got: Vec<u32> = sub.into_stream().map(|item| *item.unwrap().payload()).collect().await;
    /// assert_eq!(got, [1, 2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn into_stream(self) -> SubscriberStream<E> {
        SubscriberStream { sub: self, registered: false, done: false }
    }
}

/// The [`Stream`](futures_core::Stream) of [`Subscriber::into_stream`].
#[must_use = "streams do nothing unless polled"]
pub struct SubscriberStream<E> {
    sub: Subscriber<E>,
    registered: bool,
    done: bool,
}

impl<E> SubscriberStream<E> {
    /// The subscriber, for its counters and name.
    pub fn subscriber(&self) -> &Subscriber<E> {
        &self.sub
    }
}

impl<E> futures_core::Stream for SubscriberStream<E> {
    type Item = Result<OwnedDelivery<E>, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        let receiver = &mut this.sub.receiver;
        match receiver.poll_claim(cx, &mut this.registered) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(claimed)) => {
                Poll::Ready(Some(Ok(Delivery::new(receiver, claimed).to_owned())))
            }
            Poll::Ready(Err(RecvError::Closed)) => {
                this.done = true;
                Poll::Ready(None)
            }
            Poll::Ready(Err(lagged)) => Poll::Ready(Some(Err(lagged))),
        }
    }
}

impl<E> futures_core::FusedStream for SubscriberStream<E> {
    fn is_terminated(&self) -> bool {
        self.done
    }
}

impl<E> Drop for SubscriberStream<E> {
    fn drop(&mut self) {
        if self.registered {
            self.sub.receiver.queue().clear_waker();
        }
    }
}

impl<E> fmt::Debug for SubscriberStream<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SubscriberStream").field("subscriber", &self.sub).finish()
    }
}

impl<E> Drop for Subscriber<E> {
    fn drop(&mut self) {
        let queue = self.receiver.queue();
        let reporting = &self.shared.reporting;
        // Its latency samples move to the bus-wide histogram as its counters fold.
        let samples = (self.shared.config.latency_sample_every != 0).then(|| {
            let mut samples = crate::stats::latency::empty();
            queue.latency.merge_into(&mut samples);
            samples
        });
        // Folded first, while its entry is surely listed (it leaves the shard's list with
        // `remove` below); what the shard pushes later is added when the queue is dropped.
        // See `stats::retired`.
        let name = self.subscription.name.as_deref().unwrap_or(retired::UNNAMED);
        reporting.retired.fold(queue.meta.id, (name.to_owned(), queue.meta.shard), || {
            if let Some(samples) = &samples {
                reporting.retired_latency.merge_hist(samples);
            }
            queue.counts()
        });
        queue.disconnect_receiver();
        self.shared.shards[queue.meta.shard].remove(queue.meta.id);
        // After everything this subscriber counted: see `stats::CounterPair`.
        self.shared.lifetime.subscriptions.close();
        // Last: `Publisher::closed` resolving means this subscriber is entirely gone.
        // Release: pairs with the Acquire loads in `Closed::poll` (`publisher` module).
        let before = self.shared.lifetime.live_subscribers.fetch_sub(1, Ordering::AcqRel);
        if before == 1 {
            let wakers = std::mem::take(&mut self.shared.lifetime.closed_wakers.lock().wakers);
            // Wake outside the lock: a waker may poll `closed` again at once.
            for (_, waker) in wakers {
                waker.wake();
            }
        }
    }
}

impl<E> fmt::Debug for Subscriber<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("id", &self.id())
            .field("name", &self.name())
            .field("shard", &self.shard())
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("dropped", &self.dropped())
            .finish()
    }
}
