//! The single publisher.

use std::fmt;
use std::time::{Duration, Instant};

use crate::bus::Shared;
use crate::error::{PublishError, PublishTimeoutError, TryPublishError};
use crate::event::Event;
use crate::ring::{Producer, WaitError};
use crate::stats::topics::LocalTopics;
use crate::sync::atomic::Ordering;
use crate::sync::Arc;

/// The bus's one publisher: writes events into the ring. Get it with
/// [`Bus::publisher`](crate::Bus::publisher).
///
/// Dropping it (or [`close`](Self::close)) closes the bus for publishing: the dispatchers
/// deliver every event already published, then every receiver sees `Closed`.
pub struct Publisher<E> {
    producer: Producer<Arc<Event<E>>>,
    shared: Arc<Shared<E>>,
    topics: LocalTopics,
}

impl<E> Publisher<E> {
    pub(crate) fn new(shared: Arc<Shared<E>>) -> Self {
        Publisher {
            producer: Producer::new(Arc::clone(&shared.ring)),
            shared,
            topics: LocalTopics::new(),
        }
    }

    /// The ring is full: count it (once per publish that had to wait or failed).
    fn count_wait(&self) {
        let waits = &self.shared.publisher_waits;
        // Relaxed: single writer (this publisher), a plain counter.
        waits.store(waits.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Publishes `event`, waiting (per the bus's wait strategy) while the ring is full.
    /// Returns the event's sequence number. Publishing with no subscribers is a cheap no-op.
    ///
    /// # Errors
    /// The bus is closed; the event is handed back.
    pub fn publish(&mut self, event: Event<E>) -> Result<u64, PublishError<Event<E>>> {
        if !self.producer.has_space() {
            self.count_wait();
            if let Err(WaitError::Closed | WaitError::Timeout) =
                self.producer.wait_for_space(self.shared.wait_strategy, None)
            {
                return Err(PublishError(event));
            }
        }
        self.push(event).map_err(PublishError)
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
            self.count_wait();
            let deadline = Instant::now().checked_add(timeout);
            match self.producer.wait_for_space(self.shared.wait_strategy, deadline) {
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

    /// Closes the bus for publishing (same as dropping the publisher).
    pub fn close(self) {}

    /// Stamps and publishes; the ring has space. Hands the event back if the bus closed.
    fn push(&mut self, mut event: Event<E>) -> Result<u64, Event<E>> {
        if let Some(table) = &self.shared.topics {
            if !event.topic().is_system() {
                // Counted before the event is visible: a snapshot never shows a topic's
                // deliveries ahead of its publishes for long. A publish that then fails
                // (bus closed) is still counted as attempted; the bus is closed anyway.
                self.topics.get(table, event.topic()).add_published();
            }
        }
        event.stamp(self.producer.next_seq());
        self.producer.push(Arc::new(event)).map_err(|event| {
            match Arc::try_unwrap(event) {
                Ok(event) => event,
                // The ring hands back a value it never published: nobody else holds it.
                Err(_) => unreachable!("an unpublished event is shared"),
            }
        })
    }
}

impl<E> Drop for Publisher<E> {
    fn drop(&mut self) {
        self.shared.ring.close();
    }
}

impl<E> fmt::Debug for Publisher<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Publisher").field("next_seq", &self.producer.next_seq()).finish()
    }
}
