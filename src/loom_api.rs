//! Thin public wrappers over internals, compiled only under `cfg(loom)`, so the models in
//! `loom-tests/` drive the real ring, queue and receiver code. Not part of the API.

use std::future::Future;

use crate::error::{RecvError, TryRecvError};
use crate::event::Event;
use crate::queue::SubQueue;
use crate::receiver;
use crate::ring;
use crate::segment::{Pool, SegHold, Writer};
use crate::subscription::Meta;
use crate::subscription::Overflow;
use crate::sync::atomic::AtomicBool;
use crate::sync::Arc;
use crate::sync::Mutex;
use crate::topic::Topic;
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
    /// As the wait inside `publish_async` (and `flush_async`): resolves once every shard
    /// has dispatched every sequence below `target`. Any number may wait at once.
    pub fn dispatched_async(&self, target: u64) -> impl Future<Output = ()> + '_ {
        ring::FlushWait::new(&self.0, target)
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
        // Every value "starts a segment": the ring ignores the seal bit for it.
        self.0.push(value, true).map_err(|e| match e {
            ring::PushError::Closed(v) | ring::PushError::Sealed(v) => v,
        })
    }
    /// As `Publisher::publish_batch`: waits for room for all of `values`, then publishes
    /// them with one store; `Err` if closed.
    pub fn publish_many(&mut self, values: &[T]) -> Result<u64, ()>
    where
        T: Copy,
    {
        while (self.0.free_slots(values.len() as u64) as usize) < values.len() {
            self.0.wait_for_space(WaitStrategy::Adaptive, None).map_err(|_| ())?;
            loom::thread::yield_now();
        }
        self.0.push_many(values, true).map_err(|_| ())
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
            let available = self.0.wait(WaitStrategy::Adaptive, &|| false, &mut || {});
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
            let available = self.0.wait(WaitStrategy::Adaptive, &|| false, &mut || {});
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

/// A subscriber queue of `u64` events, shard side. Each push writes the value into a
/// segment of its own (from a real pool, holding the shard's reference), pushes a one-event
/// run and releases the shard's reference, as a dispatch batch does.
pub struct Queue {
    queue: Arc<SubQueue<u64>>,
    writer: Arc<Mutex<Writer<u64>>>,
}

impl Queue {
    /// A queue of `capacity` under `overflow`.
    pub fn new(capacity: usize, overflow: Overflow) -> Self {
        let pool = Arc::new(Pool::new(1));
        let writer = Arc::new(Mutex::new(Writer::new(Arc::clone(&pool))));
        Queue {
            queue: Arc::new(SubQueue::new(capacity, overflow, Meta::default(), pool, None)),
            writer,
        }
    }
    /// Pushes under the policy; `true` if queued. `abort` ends a `Block` wait.
    pub fn push(&self, value: u64, abort: &AtomicBool) -> bool {
        let at = {
            let mut writer = self.writer.lock();
            let (at, _) = writer.reserve(1);
            writer.write(at, Event::new(Topic::new("t").expect("a valid topic"), value));
            writer.commit();
            writer.seal();
            at
        };
        // SAFETY: the segment's one reference (made for one shard) is this "shard"'s.
        let mut hold = unsafe { SegHold::adopt(at.seg, 1) };
        hold.take(1);
        let pushed =
            self.queue.push_run(at.seg, 1 << at.slot, WaitStrategy::Adaptive, abort, &mut || {});
        hold.hand_off(u32::from(!pushed.unused_ref));
        // Releases the shard's own reference and, if the run was not pushed, the run's.
        hold.set_len(1);
        drop(hold);
        pushed.queued == 1
    }
    /// The end-of-batch wake-up, as a dispatch batch does it: one `SeqCst` fence, then a
    /// wake-up only if the receiver waits.
    pub fn notify(&self) {
        crate::sync::atomic::fence(crate::sync::atomic::Ordering::SeqCst);
        self.queue.notify_if_waiting();
    }
    /// No more pushes.
    pub fn close(&self) {
        self.queue.close();
    }
    /// Events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped()
    }
    /// The receiver has gone (as `Subscriber::drop` does).
    pub fn disconnect_receiver(&self) {
        self.queue.disconnect_receiver();
    }
    /// Unparks a shard blocked on this queue (as `Bus::close` does).
    pub fn wake_shard(&self) {
        self.queue.wake_shard_if_registered();
    }
    /// The receiving side.
    pub fn receiver(&self) -> Receiver {
        Receiver(receiver::Receiver::new(Arc::clone(&self.queue), WaitStrategy::Adaptive))
    }
}

impl Clone for Queue {
    fn clone(&self) -> Self {
        Queue { queue: Arc::clone(&self.queue), writer: Arc::clone(&self.writer) }
    }
}

/// A subscriber queue, receiving side (what `Subscriber` uses): returns payloads, read in
/// place from the delivery (which is then dropped, releasing its entry).
pub struct Receiver(receiver::Receiver<u64>);

impl Receiver {
    /// As `Subscriber::try_recv`.
    pub fn try_recv(&mut self) -> Result<u64, TryRecvError> {
        self.0.try_recv().map(|d| *d.payload())
    }
    /// As `Subscriber::recv_blocking` (parks the thread).
    pub fn recv_blocking(&mut self) -> Result<u64, RecvError> {
        self.0.recv_blocking().map(|d| *d.payload())
    }
    /// As `Subscriber::recv`.
    pub async fn recv(&mut self) -> Result<u64, RecvError> {
        self.0.recv().await.map(|d| *d.payload())
    }
}
