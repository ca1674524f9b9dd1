//! A subscriber queue of capacity 2, each overflow policy, the shard pushing 3 events
//! while the receiver takes them. Whatever the interleaving: what arrives is in order,
//! losses are exactly what `Lagged` reported and `dropped()` counted, and the receiver
//! ends with `Closed`.
#![cfg(loom)]

use loom::sync::atomic::AtomicBool;
use loom::sync::Arc;
use loom::thread;
use shardcast::loom_api::Queue;
use shardcast::{Overflow, RecvError};

const EVENTS: u64 = 3;

fn model(overflow: Overflow) {
    loom::model(move || {
        let queue = Queue::new(2, overflow);
        let mut receiver = queue.receiver();
        let shard = {
            let queue = queue.clone();
            thread::spawn(move || {
                // Like a dispatch batch: push all, then one wake-up (a `Block` push that must
                // wait delivers the pending wake-up itself first).
                let abort = AtomicBool::new(false);
                for i in 0..EVENTS {
                    queue.push(i, &abort);
                }
                queue.notify();
                queue.close();
            })
        };
        let mut got = Vec::new();
        let mut lagged = 0;
        loop {
            match receiver.recv_blocking() {
                Ok(v) => got.push(v),
                Err(RecvError::Lagged(n)) => lagged += n,
                Err(RecvError::Closed) => break,
            }
        }
        shard.join().unwrap();
        assert!(got.windows(2).all(|w| w[0] < w[1]), "out of order: {got:?}");
        assert_eq!(got.len() as u64 + lagged, EVENTS, "got {got:?}, lagged {lagged}");
        assert_eq!(queue.dropped(), lagged);
        match overflow {
            Overflow::Block => assert_eq!(got, [0, 1, 2]),
            // The newest are dropped: what arrives is a prefix.
            Overflow::DropNewest => assert_eq!(got, (0..got.len() as u64).collect::<Vec<_>>()),
            // The oldest are dropped: what arrives ends with the last event.
            Overflow::DropOldest => assert_eq!(got.last(), Some(&2)),
            _ => {}
        }
    });
}

#[test]
fn drop_newest() {
    model(Overflow::DropNewest);
}

#[test]
fn drop_oldest() {
    model(Overflow::DropOldest);
}

#[test]
fn disconnect() {
    model(Overflow::Disconnect);
}

#[test]
fn block() {
    model(Overflow::Block);
}

#[test]
fn block_ends_when_receiver_drops() {
    // A shard blocked on a full `Block` queue stops waiting when the receiver goes.
    loom::model(|| {
        let queue = Queue::new(1, Overflow::Block);
        let receiver = queue.receiver();
        let shard = {
            let queue = queue.clone();
            thread::spawn(move || {
                let abort = AtomicBool::new(false);
                (0..2u64).filter(|&i| queue.push(i, &abort)).count()
            })
        };
        drop(receiver);
        queue.disconnect_receiver();
        let queued = shard.join().unwrap();
        assert!(queued >= 1);
    });
}

#[test]
fn block_ends_on_shutdown() {
    // ... and when the bus shuts down (`Bus::close` stores the flag, then wakes the shard).
    loom::model(|| {
        let queue = Queue::new(1, Overflow::Block);
        let _receiver = queue.receiver();
        let abort = Arc::new(AtomicBool::new(false));
        let shard = {
            let queue = queue.clone();
            let abort = Arc::clone(&abort);
            thread::spawn(move || (0..2u64).filter(|&i| queue.push(i, &abort)).count())
        };
        abort.store(true, std::sync::atomic::Ordering::Release);
        queue.wake_shard();
        let queued = shard.join().unwrap();
        assert_eq!(queued as u64 + queue.dropped(), 2);
    });
}
