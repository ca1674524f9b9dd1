//! What a subscriber asks for: which events (for now, all of them), how much it may queue,
//! and what happens when its queue is full.

use std::fmt;
use std::marker::PhantomData;

/// What a dispatcher shard does with an event for a subscriber whose queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the new event (the queue keeps the older ones). Counted. The default.
    #[default]
    DropNewest,
    /// Drop the oldest queued event to make room for the new one. Counted.
    DropOldest,
    /// Wait until the subscriber makes room: lossless for this subscriber.
    ///
    /// **Hazard:** while it waits, the subscriber's dispatcher shard delivers to nobody else
    /// and the ring fills up, so a stuck `Block` subscriber eventually stalls the publisher
    /// and every subscriber of its shard. The wait ends when the subscriber receives, is
    /// dropped, or the bus is closed with [`Bus::close`](crate::Bus::close) (the event
    /// is then counted as dropped).
    Block,
    /// Drop the event and close the subscription: the subscriber drains what it has, sees
    /// `Lagged(1)`, then `Closed`. Counted.
    Disconnect,
}

/// Options for [`Bus::subscribe`](crate::Bus::subscribe).
pub struct Subscription<E> {
    pub(crate) capacity: Option<usize>,
    pub(crate) overflow: Overflow,
    pub(crate) name: Option<String>,
    _payload: PhantomData<fn(&E)>,
}

impl<E> Subscription<E> {
    /// Every event on the bus.
    pub fn all() -> Self {
        Subscription {
            capacity: None,
            overflow: Overflow::default(),
            name: None,
            _payload: PhantomData,
        }
    }

    /// Queue capacity (at least 1); default: the bus's
    /// [`queue_capacity`](crate::BusBuilder::queue_capacity). Exactly this many events
    /// fit: it is not rounded.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// What to do when the queue is full; default [`Overflow::DropNewest`].
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// A name for stats and debugging; default `sub-<id>`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl<E> Clone for Subscription<E> {
    fn clone(&self) -> Self {
        Subscription {
            capacity: self.capacity,
            overflow: self.overflow,
            name: self.name.clone(),
            _payload: PhantomData,
        }
    }
}

impl<E> fmt::Debug for Subscription<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("capacity", &self.capacity)
            .field("overflow", &self.overflow)
            .field("name", &self.name)
            .finish()
    }
}
