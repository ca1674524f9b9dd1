//! The receiving end of a subscription: sync, timed and async receives.
//!
//! Receive methods take `&mut self`, like `tokio::sync::broadcast::Receiver`: a subscriber
//! has one consumer, which is what lets the wake protocol keep a single waiter slot and the
//! lag accounting live in plain fields. Move it between threads freely; share it by
//! subscribing again.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use crate::bus::Shared;
use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::event::Delivery;
use crate::queue::{SubQueue, RX_CLOSED};
use crate::sync::{park_timeout, thread, Arc};
use crate::wait::spin_or_yield;

/// A subscription's receiver. Dropping it unsubscribes.
pub struct Subscriber<E> {
    queue: Arc<SubQueue<Delivery<E>>>,
    shared: Arc<Shared<E>>,
    shard: usize,
    id: u64,
    name: String,
    /// Match index of the next event we expect (see `queue`'s "Loss accounting").
    expected: u64,
    /// The event right after a gap: returned by the call after the one that said `Lagged`.
    pending: Option<Delivery<E>>,
}

impl<E> Subscriber<E> {
    pub(crate) fn new(
        queue: Arc<SubQueue<Delivery<E>>>,
        shared: Arc<Shared<E>>,
        shard: usize,
        id: u64,
        name: String,
    ) -> Self {
        Subscriber { queue, shared, shard, id, name, expected: 0, pending: None }
    }

    /// Takes the next event if one is queued; never waits.
    ///
    /// # Errors
    /// `Empty`; `Lagged(n)` once after `n` events were lost (then the next event);
    /// `Closed` once the bus closed and the queue is drained.
    pub fn try_recv(&mut self) -> Result<Delivery<E>, TryRecvError> {
        if let Some(delivery) = self.pending.take() {
            return Ok(delivery);
        }
        if let Some((index, delivery)) = self.queue.pop() {
            return self.accept(index, delivery);
        }
        if self.queue.rx_state() & RX_CLOSED == 0 {
            return Err(TryRecvError::Empty);
        }
        // Closed: everything pushed before the close is visible now (Acquire in rx_state).
        if let Some((index, delivery)) = self.queue.pop() {
            return self.accept(index, delivery);
        }
        let matched = self.queue.matched();
        if matched > self.expected {
            let lost = matched - self.expected;
            self.expected = matched;
            return Err(TryRecvError::Lagged(lost));
        }
        Err(TryRecvError::Closed)
    }

    fn accept(&mut self, index: u64, delivery: Delivery<E>) -> Result<Delivery<E>, TryRecvError> {
        debug_assert!(index >= self.expected, "queue reordered");
        let lost = index - self.expected;
        self.expected = index + 1;
        if lost == 0 {
            Ok(delivery)
        } else {
            self.pending = Some(delivery);
            Err(TryRecvError::Lagged(lost))
        }
    }

    /// Waits for the next event (spinning briefly, then parking the thread).
    ///
    /// # Errors
    /// `Lagged(n)` once after `n` events were lost; `Closed` once the bus closed and the
    /// queue is drained.
    pub fn recv(&mut self) -> Result<Delivery<E>, RecvError> {
        match self.recv_until(None) {
            Ok(delivery) => Ok(delivery),
            Err(RecvTimeoutError::Lagged(n)) => Err(RecvError::Lagged(n)),
            Err(RecvTimeoutError::Closed | RecvTimeoutError::Timeout) => Err(RecvError::Closed),
        }
    }

    /// Waits at most `timeout` for the next event.
    ///
    /// # Errors
    /// `Timeout`, `Lagged(n)` or `Closed`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Delivery<E>, RecvTimeoutError> {
        self.recv_until(Some(Instant::now().checked_add(timeout).unwrap_or_else(far_future)))
    }

    /// Waits for the next event without blocking the thread. Cancel-safe: dropping the
    /// future loses no event and leaves no waker behind. Works on any executor.
    ///
    /// # Errors
    /// As [`recv`](Self::recv).
    pub fn recv_async(&mut self) -> Recv<'_, E> {
        Recv { subscriber: self, registered: false }
    }

    fn recv_until(&mut self, deadline: Option<Instant>) -> Result<Delivery<E>, RecvTimeoutError> {
        let strategy = self.shared.wait_strategy;
        let mut n = 0;
        loop {
            match self.try_recv() {
                Ok(delivery) => return Ok(delivery),
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
            if !spin_or_yield(strategy.step(n)) {
                n = n.saturating_add(1);
                continue;
            }
            // The wake protocol (queue docs): read `rx`, try again, then park only if `rx`
            // did not move in between.
            let seen = self.queue.rx_state();
            if !self.queue.is_empty() || seen & RX_CLOSED != 0 || self.pending.is_some() {
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

    /// Events lost by this subscriber so far (every overflow drop).
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }

    /// Events queued now.
    pub fn len(&self) -> usize {
        self.queue.len() + usize::from(self.pending.is_some())
    }

    /// Whether no event is queued now.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queue capacity, exactly as subscribed.
    pub fn capacity(&self) -> usize {
        self.queue.capacity()
    }

    /// The subscription's name (`sub-<id>` unless one was given).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// This subscription's id, unique within the bus.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The dispatcher shard that delivers to this subscriber.
    pub fn shard(&self) -> usize {
        self.shard
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

impl<E> Drop for Subscriber<E> {
    fn drop(&mut self) {
        self.queue.disconnect_receiver();
        self.shared.shards[self.shard].remove(self.id);
    }
}

impl<E> fmt::Debug for Subscriber<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscriber")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("shard", &self.shard)
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("dropped", &self.dropped())
            .finish()
    }
}

/// The future of [`Subscriber::recv_async`].
#[must_use = "futures do nothing unless polled"]
pub struct Recv<'a, E> {
    subscriber: &'a mut Subscriber<E>,
    registered: bool,
}

impl<E> Future for Recv<'_, E> {
    type Output = Result<Delivery<E>, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            let result = match this.subscriber.try_recv() {
                Ok(delivery) => Ok(delivery),
                Err(TryRecvError::Lagged(lost)) => Err(RecvError::Lagged(lost)),
                Err(TryRecvError::Closed) => Err(RecvError::Closed),
                Err(TryRecvError::Empty) => {
                    let queue = &this.subscriber.queue;
                    let seen = queue.rx_state();
                    if !queue.is_empty() || seen & RX_CLOSED != 0 {
                        continue;
                    }
                    if queue.register_waker(seen, cx.waker()) {
                        this.registered = true;
                        return Poll::Pending;
                    }
                    continue;
                }
            };
            if this.registered {
                this.subscriber.queue.clear_waker();
                this.registered = false;
            }
            return Poll::Ready(result);
        }
    }
}

impl<E> Drop for Recv<'_, E> {
    fn drop(&mut self) {
        if self.registered {
            self.subscriber.queue.clear_waker();
        }
    }
}
