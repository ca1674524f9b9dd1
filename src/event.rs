//! Events as published, and deliveries as received.
//!
//! A published event is moved into one `Arc` (the only allocation per publish) and every
//! subscriber's [`Delivery`] points at that same allocation: payloads are shared, never
//! copied, so `E` needs neither `Clone` nor `Debug`.

use std::fmt;
use std::ops::Deref;
use std::time::Instant;

use crate::sync::Arc;
use crate::topic::Topic;

/// An event: a topic and a payload, plus the sequence number and timestamp the bus stamps
/// on it at publish.
pub struct Event<E> {
    seq: u64,
    published_at: Option<Instant>,
    topic: Topic,
    payload: E,
}

impl<E> Event<E> {
    /// A new event, not yet published.
    pub fn new(topic: Topic, payload: E) -> Self {
        Event { seq: 0, published_at: None, topic, payload }
    }

    /// The sequence number the publisher gave this event (0 before publishing). Sequence
    /// numbers start at 0 and increase by one per published event.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The topic.
    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    /// When the publisher handed the event to the bus; `None` before publishing.
    pub fn published_at(&self) -> Option<Instant> {
        self.published_at
    }

    /// The payload.
    pub fn payload(&self) -> &E {
        &self.payload
    }

    /// Takes the payload out of an event (for example one returned by a failed publish).
    pub fn into_payload(self) -> E {
        self.payload
    }

    pub(crate) fn stamp(&mut self, seq: u64) {
        self.seq = seq;
        self.published_at = Some(Instant::now());
    }
}

impl<E: fmt::Debug> fmt::Debug for Event<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("seq", &self.seq)
            .field("topic", &self.topic)
            .field("payload", &self.payload)
            .finish()
    }
}

/// One subscriber's receipt of an event: a shared handle, cheap to clone. Every
/// subscriber's `Delivery` of one event points at the same [`Event`].
pub struct Delivery<E>(pub(crate) Arc<Event<E>>);

impl<E> Delivery<E> {
    /// Whether two deliveries share the same event allocation.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }
}

impl<E> Clone for Delivery<E> {
    fn clone(&self) -> Self {
        Delivery(Arc::clone(&self.0))
    }
}

impl<E> Deref for Delivery<E> {
    type Target = Event<E>;
    fn deref(&self) -> &Event<E> {
        &self.0
    }
}

impl<E: fmt::Debug> fmt::Debug for Delivery<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}
