//! The park/wake protocol: a receiver parked in `recv_blocking`, or a task pending in `recv`,
//! is always woken by the shard's end-of-batch `notify` (and by `close`). A lost wake-up
//! shows as a deadlock, which loom reports.
#![cfg(loom)]

use loom::sync::atomic::AtomicBool;

use loom::thread;
use shardcast::loom_api::Queue;
use shardcast::{Overflow, RecvError};

fn shard(queue: Queue, events: u64) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let abort = AtomicBool::new(false);
        for i in 0..events {
            queue.push(i, &abort);
            queue.notify();
        }
    })
}

#[test]
fn thread_receiver_is_woken() {
    loom::model(|| {
        let queue = Queue::new(4, Overflow::DropNewest);
        let mut receiver = queue.receiver();
        let shard = shard(queue.clone(), 2);
        // The receiver on a thread of its own: a receiver that registered, then found an
        // event on its second look, may get an unpark it does not need (std allows
        // spurious wake-ups; loom's `join` would take that token for its own).
        let receiving = thread::spawn(move || {
            assert_eq!(receiver.recv_blocking().unwrap(), 0);
            assert_eq!(receiver.recv_blocking().unwrap(), 1);
        });
        receiving.join().unwrap();
        shard.join().unwrap();
    });
}

#[test]
fn async_receiver_is_woken() {
    loom::model(|| {
        let queue = Queue::new(4, Overflow::DropNewest);
        let mut receiver = queue.receiver();
        let shard = shard(queue.clone(), 2);
        loom::future::block_on(async {
            assert_eq!(receiver.recv().await.unwrap(), 0);
            assert_eq!(receiver.recv().await.unwrap(), 1);
        });
        shard.join().unwrap();
    });
}

#[test]
fn close_wakes_parked_receiver() {
    loom::model(|| {
        let queue: Queue = Queue::new(2, Overflow::DropNewest);
        let mut receiver = queue.receiver();
        let closer = {
            let queue = queue.clone();
            thread::spawn(move || queue.close())
        };
        assert_eq!(receiver.recv_blocking().unwrap_err(), RecvError::Closed);
        closer.join().unwrap();
    });
}

#[test]
fn close_wakes_pending_task() {
    loom::model(|| {
        let queue: Queue = Queue::new(2, Overflow::DropNewest);
        let mut receiver = queue.receiver();
        let closer = {
            let queue = queue.clone();
            thread::spawn(move || queue.close())
        };
        let result = loom::future::block_on(receiver.recv());
        assert_eq!(result.unwrap_err(), RecvError::Closed);
        closer.join().unwrap();
    });
}
