//! Thin public wrappers over internals, compiled only under `cfg(loom)`, so the models in
//! `loom-tests/` drive the real ring, queue and receiver code. Not part of the API.

use std::future::Future;

use crate::error::{RecvError, TryRecvError};
use crate::queue::{self, Pushed, SubQueue};
use crate::ring;
use crate::subscription::Overflow;
use crate::sync::atomic::AtomicBool;
use crate::sync::Arc;
use crate::wait::WaitStrategy;

/// The broadcast ring.
pub struct Ring<T>(Arc<ring::Ring<T>>);

impl<T> Ring<T> {
    /// A ring of `capacity` slots read by `shards` consumers.
    pub fn new(capacity: usize, shards: usize) -> Self {
        Ring(Arc::new(ring::Ring::new(capacity, shards)))
    }
    /// The single producer.
    pub fn producer(&self) -> Producer<T> {
        Producer(ring::Producer::new(Arc::clone(&self.0)))
    }
    /// Shard `index`'s consumer.
    pub fn consumer(&self, index: usize) -> Consumer<T> {
        Consumer(ring::Consumer::new(Arc::clone(&self.0), index))
    }
    /// Closes the ring.
    pub fn close(&self) {
        self.0.close();
    }
}

/// The ring's producer.
pub struct Producer<T>(ring::Producer<T>);

impl<T> Producer<T> {
    /// Waits for space (parking), then publishes; hands the value back if closed.
    pub fn publish(&mut self, value: T) -> Result<u64, T> {
        if !self.0.has_space() && self.0.wait_for_space(WaitStrategy::Adaptive, None).is_err() {
            return Err(value);
        }
        self.0.push(value)
    }
    /// As `Publisher::flush`: waits until every value published so far is dispatched.
    pub fn flush(&self) {
        self.0.flush(WaitStrategy::Adaptive);
    }
    /// As `Publisher::flush_async`.
    pub fn flush_async(&self) -> impl Future<Output = ()> + '_ {
        self.0.flush_async()
    }
}

/// One shard's consumer.
pub struct Consumer<T>(ring::Consumer<T>);

impl<T: Clone> Consumer<T> {
    /// Waits for a batch, returns `(seq, value)` for each, and releases the slots. `None`
    /// once the ring is closed and drained.
    pub fn next_batch(&mut self) -> Option<Vec<(u64, T)>> {
        loop {
            let available = self.0.wait(WaitStrategy::Adaptive, &|| false);
            let next = self.0.next_seq();
            if available.end == next {
                if available.closed {
                    return None;
                }
                continue;
            }
            let batch = (next..available.end).map(|s| (s, self.0.read(s, T::clone))).collect();
            self.0.release(available.end);
            return Some(batch);
        }
    }

    /// As [`next_batch`](Self::next_batch), running `before_release` on the batch before
    /// the slots are released (where a shard pushes into subscriber queues).
    pub fn next_batch_then(&mut self, before_release: impl FnOnce(&[(u64, T)])) -> Option<usize> {
        loop {
            let available = self.0.wait(WaitStrategy::Adaptive, &|| false);
            let next = self.0.next_seq();
            if available.end == next {
                if available.closed {
                    return None;
                }
                continue;
            }
            let batch: Vec<_> =
                (next..available.end).map(|s| (s, self.0.read(s, T::clone))).collect();
            before_release(&batch);
            self.0.release(available.end);
            return Some(batch.len());
        }
    }
}

/// A subscriber queue, shard side.
pub struct Queue<T>(Arc<SubQueue<T>>);

impl<T> Queue<T> {
    /// A queue of `capacity` under `overflow`.
    pub fn new(capacity: usize, overflow: Overflow) -> Self {
        Queue(Arc::new(SubQueue::new(capacity, overflow, queue::Meta::default())))
    }
    /// Pushes under the policy; `true` if queued. `abort` ends a `Block` wait.
    pub fn push(&self, item: T, abort: &AtomicBool) -> bool {
        self.0.push(item, WaitStrategy::Adaptive, abort, &mut || {}) == Pushed::Queued
    }
    /// The end-of-batch wake-up.
    pub fn notify(&self) {
        self.0.notify();
    }
    /// No more pushes.
    pub fn close(&self) {
        self.0.close();
    }
    /// Events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.0.dropped()
    }
    /// The receiver has gone (as `Subscriber::drop` does).
    pub fn disconnect_receiver(&self) {
        self.0.disconnect_receiver();
    }
    /// Unparks a shard blocked on this queue (as `Bus::close` does).
    pub fn wake_shard(&self) {
        self.0.wake_shard_if_registered();
    }
    /// The receiving side.
    pub fn receiver(&self) -> Receiver<T> {
        Receiver(queue::Receiver::new(Arc::clone(&self.0), WaitStrategy::Adaptive))
    }
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue(Arc::clone(&self.0))
    }
}

/// A subscriber queue, receiving side (what `Subscriber` uses).
pub struct Receiver<T>(queue::Receiver<T>);

impl<T> Receiver<T> {
    /// As `Subscriber::try_recv`.
    pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
        self.0.try_recv()
    }
    /// As `Subscriber::recv` (parks the thread).
    pub fn recv(&mut self) -> Result<T, RecvError> {
        self.0.recv()
    }
    /// As `Subscriber::recv_async`.
    pub fn recv_async(&mut self) -> impl Future<Output = Result<T, RecvError>> + '_ {
        self.0.recv_async()
    }
}
