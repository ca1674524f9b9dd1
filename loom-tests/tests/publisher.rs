//! The publisher's two waits and what they promise to make visible.
//!
//! - Flush: a shard does its work on a batch (in the library: the pushes into subscriber
//!   queues; here: a write to an `UnsafeCell`) before it releases the batch's ring slots.
//!   After `flush` (or `flush_async`) returns, that work is visible: loom's cell checking
//!   fails the model if the flush's Acquire loads of the cursors (`Ring::min_cursor`) or
//!   the shard's Release swap (`Ring::swap_cursor`) are weakened to Relaxed. A lost
//!   wake-up (parked flush, pending flush task) shows as a deadlock.
//! - `closed()`: what the last subscriber did before its drop is visible once `closed()`
//!   resolves; the model fails if the `live_subscribers` decrement in `Subscriber::drop` or
//!   the load in `Closed::poll` is weakened to Relaxed. A lost wake-up is a deadlock.
#![cfg(loom)]

use loom::cell::UnsafeCell;
use loom::sync::Arc;
use loom::thread;
use shardcast::loom_api::Ring;
use shardcast::{Bus, Subscription};

/// A ring of 2 slots, one shard that counts what it dispatched into `work` before it
/// releases each batch.
fn ring_with_counting_shard() -> (
    Ring<Arc<u64>>,
    shardcast::loom_api::Producer<Arc<u64>>,
    Arc<UnsafeCell<usize>>,
    thread::JoinHandle<()>,
) {
    let ring = Ring::new(2, 1);
    let producer = ring.producer();
    let mut consumer = ring.consumer(0);
    let work = Arc::new(UnsafeCell::new(0usize));
    let shard = {
        let work = Arc::clone(&work);
        thread::spawn(move || {
            while consumer
                .next_batch_then(|batch| {
                    // SAFETY: loom checks it: the flusher reads only after its flush.
                    work.with_mut(|w| unsafe { *w += batch.len() });
                })
                .is_some()
            {}
        })
    };
    (ring, producer, work, shard)
}

#[test]
fn flush_makes_the_shards_work_visible() {
    loom::model(|| {
        let (ring, mut producer, work, shard) = ring_with_counting_shard();
        producer.publish(Arc::new(0)).unwrap();
        producer.flush();
        // SAFETY: loom checks that the shard's write happens before this read.
        assert_eq!(work.with(|w| unsafe { *w }), 1);
        ring.close();
        shard.join().unwrap();
    });
}

#[test]
fn flush_async_is_woken_and_makes_the_shards_work_visible() {
    loom::model(|| {
        let (ring, mut producer, work, shard) = ring_with_counting_shard();
        producer.publish(Arc::new(0)).unwrap();
        loom::future::block_on(producer.flush_async());
        // SAFETY: as above.
        assert_eq!(work.with(|w| unsafe { *w }), 1);
        ring.close();
        shard.join().unwrap();
    });
}

/// Two tasks wait on the ring's cursors at once (two `SharedPublisher::publish_async`
/// clones waiting for space): the shard's cursor move must wake both. With one waker slot
/// (the second registration overwriting the first) this deadlocks.
#[test]
fn two_async_waiters_are_both_woken() {
    loom::model(|| {
        let (ring, mut producer, work, shard) = ring_with_counting_shard();
        producer.publish(Arc::new(0)).unwrap();
        let ring = Arc::new(ring);
        let other = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || loom::future::block_on(ring.dispatched_async(1)))
        };
        loom::future::block_on(ring.dispatched_async(1));
        other.join().unwrap();
        // SAFETY: as above.
        assert_eq!(work.with(|w| unsafe { *w }), 1);
        ring.close();
        shard.join().unwrap();
    });
}

#[test]
fn closed_resolves_after_the_last_subscriber_and_sees_its_work() {
    loom::model(|| {
        let bus: Bus<u64> = Bus::builder().ring_capacity(2).build().unwrap();
        let publisher = bus.publisher().unwrap();
        let sub = bus.subscribe(Subscription::all()).unwrap();
        drop(bus);
        let work = Arc::new(UnsafeCell::new(0u64));
        let last = {
            let work = Arc::clone(&work);
            thread::spawn(move || {
                // SAFETY: the publisher reads only after `closed()` resolved.
                work.with_mut(|w| unsafe { *w = 1 });
                drop(sub);
            })
        };
        loom::future::block_on(publisher.closed());
        assert_eq!(publisher.subscriber_count(), 0);
        // SAFETY: loom checks that the write happens before this read.
        assert_eq!(work.with(|w| unsafe { *w }), 1);
        last.join().unwrap();
        drop(publisher); // the last handle: closes and joins the dispatcher
    });
}
