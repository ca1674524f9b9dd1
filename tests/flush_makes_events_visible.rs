//! Promise: after `Publisher::flush` (or `flush_async`) returns, every event published
//! before it is in the queue of every subscriber it matches (or dropped under that
//! subscriber's policy), so `try_recv` on the same thread finds it. After `Bus::close`
//! returns, `try_recv` gives what is queued and then `Closed`, never `Empty`. A flush waits
//! for a full `Block` subscriber, never hangs on a closed bus, is woken by the shard (not
//! by polling) and, async, is cancel-safe.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_copies_settle, topic, watchdog, CountingWaker, HANG};
use shardcast::{Bus, Event, Overflow, Subscription, TryRecvError};

const TRIES: u64 = 10_000;

#[test]
fn publish_flush_then_try_recv_is_ok_every_time() {
    watchdog("publish, flush, try_recv", || {
        // Two shards, a subscriber on each: the flush waits for both cursors.
        let bus: Bus<u64> = Bus::builder().dispatchers(2).build().unwrap();
        let mut a = bus.subscribe(Subscription::all().name("a")).unwrap();
        let mut b = bus.subscribe(Subscription::all().name("b")).unwrap();
        assert_ne!(a.shard(), b.shard());
        let mut publisher = bus.publisher().unwrap();
        let mut empty = 0;
        for i in 0..TRIES {
            publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            publisher.flush();
            for sub in [&mut a, &mut b] {
                match sub.try_recv() {
                    Ok(d) => assert_eq!(*d.payload(), i),
                    Err(TryRecvError::Empty) => empty += 1,
                    Err(e) => panic!("try {i}: {e}"),
                }
            }
        }
        assert_eq!(empty, 0, "try_recv said Empty after a flush");
    });
}

#[test]
fn publish_flush_async_then_try_recv_is_ok_every_time() {
    watchdog("publish, flush_async, try_recv", || {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async {
            let bus: Bus<u64> = Bus::builder().dispatchers(2).build().unwrap();
            let mut a = bus.subscribe(Subscription::all()).unwrap();
            let mut b = bus.subscribe(Subscription::all()).unwrap();
            let mut publisher = bus.publisher().unwrap();
            for i in 0..TRIES {
                publisher.publish_blocking(Event::new(topic(), i)).unwrap();
                publisher.flush_async().await;
                assert_eq!(*a.try_recv().unwrap().payload(), i, "try {i}");
                assert_eq!(*b.try_recv().unwrap().payload(), i, "try {i}");
            }
        });
    });
}

/// Publish, flush (so that `Block` subscribers get everything), `Bus::close`: then
/// `try_recv` reaches `Closed` without ever returning `Empty`.
#[test]
fn flush_then_bus_close_then_try_recv_reaches_closed_without_empty() {
    watchdog("flush, close, try_recv", || {
        for round in 0..200u64 {
            let bus: Bus<u64> = Bus::builder().ring_capacity(16).dispatchers(2).build().unwrap();
            let mut subs = vec![
                bus.subscribe(Subscription::all().capacity(64)).unwrap(),
                bus.subscribe(Subscription::all().capacity(64).overflow(Overflow::Block)).unwrap(),
                bus.subscribe(Subscription::all().capacity(64)).unwrap(),
            ];
            let mut publisher = bus.publisher().unwrap();
            let n = round % 40;
            for i in 0..n {
                publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            }
            publisher.flush();
            bus.close();
            for sub in &mut subs {
                let mut got = Vec::new();
                loop {
                    match sub.try_recv() {
                        Ok(d) => got.push(*d.payload()),
                        Err(TryRecvError::Closed) => break,
                        Err(e) => panic!("round {round}: {e} after close, got {got:?}"),
                    }
                }
                assert!(got.iter().copied().eq(0..n), "round {round}: {got:?}");
            }
        }
    });
}

/// Without a flush, `Bus::close` alone also gives `Closed` without `Empty` (it joins the
/// shards), for lossy subscribers with room.
#[test]
fn bus_close_then_try_recv_reaches_closed_without_empty() {
    watchdog("close, try_recv", || {
        for round in 0..200u64 {
            let bus: Bus<u64> = Bus::builder().ring_capacity(16).build().unwrap();
            let mut sub = bus.subscribe(Subscription::all().capacity(64)).unwrap();
            let mut publisher = bus.publisher().unwrap();
            let n = round % 40;
            for i in 0..n {
                publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            }
            // Closed from another bus handle, on another thread, while we hold the publisher.
            let closer = bus.clone();
            thread::spawn(move || closer.close()).join().unwrap();
            for i in 0..n {
                assert_eq!(*sub.try_recv().unwrap().payload(), i, "round {round}");
            }
            assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Closed, "round {round}");
        }
    });
}

fn full_block_subscriber() -> (Bus<u64>, shardcast::Subscriber<u64>, shardcast::Publisher<u64>) {
    let bus: Bus<u64> = Bus::builder().ring_capacity(8).build().unwrap();
    let sub = bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
    let mut publisher = bus.publisher().unwrap();
    publisher.publish_blocking(Event::new(topic(), 0)).unwrap();
    publisher.flush(); // in the queue, which is now full
    publisher.publish_blocking(Event::new(topic(), 1)).unwrap(); // the shard waits for room
    (bus, sub, publisher)
}

#[test]
fn flush_waits_for_a_full_block_subscriber_and_returns_once_it_receives() {
    watchdog("flush and Block", || {
        let (_bus, mut sub, mut publisher) = full_block_subscriber();
        let flushed = Arc::new(AtomicBool::new(false));
        let flusher = {
            let flushed = Arc::clone(&flushed);
            thread::spawn(move || {
                publisher.flush();
                flushed.store(true, Ordering::SeqCst);
                publisher
            })
        };
        thread::sleep(Duration::from_millis(50));
        // Event 1 cannot be in the queue yet: the flush must still wait.
        assert!(!flushed.load(Ordering::SeqCst), "flush returned before event 1 was queued");
        assert_eq!(*sub.recv_timeout(HANG).unwrap().payload(), 0);
        let _publisher = flusher.join().unwrap();
        assert!(flushed.load(Ordering::SeqCst));
        assert_eq!(*sub.try_recv().unwrap().payload(), 1);
    });
}

#[test]
fn flush_does_not_hang_on_a_closed_bus() {
    watchdog("flush after close", || {
        // Closed while the shard waits on a full Block subscriber: the wait is abandoned.
        let (bus, _sub, mut publisher) = full_block_subscriber();
        bus.close();
        publisher.flush();
        // Closed before anything was published.
        let bus: Bus<u64> = Bus::builder().build().unwrap();
        let mut publisher = bus.publisher().unwrap();
        bus.close();
        publisher.flush();
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(publisher.flush_async());
    });
}

#[test]
fn flush_async_is_woken_by_the_shard_and_leaves_no_waker_behind() {
    watchdog("flush_async wake-up", || {
        let (_bus, mut sub, mut publisher) = full_block_subscriber();
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counter));
        let mut cx = Context::from_waker(&waker);
        {
            let mut flush = pin!(publisher.flush_async());
            assert_eq!(flush.as_mut().poll(&mut cx), Poll::Pending, "event 1 is not queued yet");
            assert_eq!(sub.recv_timeout(HANG).unwrap().seq(), 0);
            // The shard now pushes event 1 and moves its cursor, which wakes the task.
            let started = Instant::now();
            while counter.0.load(Ordering::SeqCst) == 0 {
                assert!(started.elapsed() < HANG, "flush_async was never woken");
                thread::sleep(Duration::from_millis(1));
            }
            assert_eq!(flush.as_mut().poll(&mut cx), Poll::Ready(()));
        }
        // The shard drops its copy just after waking: let it.
        assert_copies_settle(&counter, 2, "a waker copy outlived the flush");
        assert_eq!(sub.try_recv().unwrap().seq(), 1);
    });
}

#[test]
fn cancelled_flush_async_leaves_nothing_behind() {
    watchdog("flush_async cancelled", || {
        let (_bus, mut sub, mut publisher) = full_block_subscriber();
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counter));
        let mut cx = Context::from_waker(&waker);
        {
            let mut flush = pin!(publisher.flush_async());
            assert_eq!(flush.as_mut().poll(&mut cx), Poll::Pending);
            // Dropped here, pending: the cancel.
        }
        assert_eq!(Arc::strong_count(&counter), 2, "a cancelled flush left its waker behind");
        // Nothing was lost, and a later flush still works.
        assert_eq!(sub.recv_timeout(HANG).unwrap().seq(), 0);
        publisher.flush();
        assert_eq!(sub.try_recv().unwrap().seq(), 1);
        assert_eq!(counter.0.load(Ordering::SeqCst), 0, "a cancelled flush was woken");
    });
}
