//! The broadcast ring: a publisher and two shard consumers over a ring of 2 slots, 3
//! events (so the publisher wraps and must wait for both cursors). Loom's `UnsafeCell`
//! checking fails the model if a slot is read before it is written or overwritten before
//! every shard read it; the `Arc` payloads fail it on a leak or double drop.
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use shardcast::loom_api::Ring;

fn drain(mut consumer: shardcast::loom_api::Consumer<Arc<u64>>) -> Vec<u64> {
    let mut seen = Vec::new();
    while let Some(batch) = consumer.next_batch() {
        for (seq, value) in batch {
            assert_eq!(seq, *value);
            seen.push(*value);
        }
    }
    seen
}

type Drained = thread::JoinHandle<Vec<u64>>;

/// A ring of 2 slots read by 2 shards, each draining on its own thread.
fn two_draining_shards(
) -> (Ring<Arc<u64>>, shardcast::loom_api::Producer<Arc<u64>>, Drained, Drained) {
    let ring = Ring::new(2, 2);
    let producer = ring.producer();
    let shard0 = ring.consumer(0);
    let shard1 = ring.consumer(1);
    let a = thread::spawn(move || drain(shard0));
    let b = thread::spawn(move || drain(shard1));
    (ring, producer, a, b)
}

#[test]
fn two_shards_wrap_around() {
    loom::model(|| {
        let (ring, mut producer, a, b) = two_draining_shards();
        for i in 0..3u64 {
            assert_eq!(producer.publish(Arc::new(i)).unwrap(), i);
        }
        ring.close();
        assert_eq!(a.join().unwrap(), [0, 1, 2]);
        assert_eq!(b.join().unwrap(), [0, 1, 2]);
    });
}

#[test]
fn close_races_publish() {
    // Close from another thread while publishing: every event the publisher was told is
    // published is read by the shard; every other one is handed back. Nothing in between.
    loom::model(|| {
        let ring = Arc::new(Ring::new(2, 1));
        let mut producer = ring.producer();
        let shard = ring.consumer(0);
        let reader = thread::spawn(move || drain(shard));
        let closer = {
            let ring = Arc::clone(&ring);
            thread::spawn(move || ring.close())
        };
        let mut published = Vec::new();
        for i in 0..2u64 {
            match producer.publish(Arc::new(i)) {
                Ok(seq) => published.push(seq),
                Err(back) => assert_eq!(*back, i),
            }
        }
        closer.join().unwrap();
        assert_eq!(reader.join().unwrap(), published);
    });
}

#[test]
fn last_shard_to_read_drops_the_value() {
    // Each value leaves the ring when the last of two shards releases it, while the
    // producer and the ring are still alive: only our own handle is left afterwards. A
    // shard dropping it while the other still reads it fails loom's `UnsafeCell` checks.
    loom::model(|| {
        let (ring, mut producer, a, b) = two_draining_shards();
        let value = Arc::new(0u64);
        assert_eq!(producer.publish(Arc::clone(&value)).unwrap(), 0);
        ring.close();
        assert_eq!(a.join().unwrap(), [0]);
        assert_eq!(b.join().unwrap(), [0]);
        assert_eq!(Arc::strong_count(&value), 1, "the ring still holds a dispatched value");
        drop(producer);
    });
}

#[test]
fn one_store_publishes_a_run() {
    // `push_many` (`Publisher::publish_batch`): three slots written, then one Release CAS
    // of `tail`. A shard that sees the new tail must see all three values: loom's cell
    // checking fails the model if the CAS is weakened to Relaxed (checked).
    loom::model(|| {
        let ring: Ring<u64> = Ring::new(4, 1);
        let mut producer = ring.producer();
        let mut shard = ring.consumer(0);
        let reader = thread::spawn(move || {
            let mut seen = Vec::new();
            while let Some(batch) = shard.next_batch() {
                for (seq, value) in batch {
                    assert_eq!(value, 10 + seq);
                    seen.push(value);
                }
            }
            seen
        });
        assert_eq!(producer.publish_many(&[10, 11, 12]), Ok(0));
        ring.close();
        assert_eq!(reader.join().unwrap(), [10, 11, 12]);
    });
}
