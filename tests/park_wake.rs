//! Promise: a blocking receive never misses its wake-up. A subscriber thread parked in
//! `recv` is woken by every publish (ping-pong, under each wait strategy and with one or
//! several shards), also after it moved to another thread; `recv_timeout` returns
//! `Timeout` when nothing comes, and the subscription carries on after it.

mod common;

use std::thread;
use std::time::Duration;

use common::{drain_to_closed, events, topic, watchdog, watchdog_for, HANG};
use shardcast::{
    Bus, Event, RecvError, RecvTimeoutError, Subscriber, Subscription, TryRecvError, WaitStrategy,
};

/// Publish one event, wait for the subscriber thread to acknowledge it, repeat.
fn ping_pong(strategy: WaitStrategy, dispatchers: usize, rounds: u64) {
    // Each round has its own 10 s hang guard (the ack below); the whole run may take long
    // on a loaded machine, where every round is a few thread hand-offs.
    watchdog_for("ping-pong", Duration::from_secs(300), move || {
        let bus: Bus<u64> =
            Bus::builder().wait_strategy(strategy).dispatchers(dispatchers).build().unwrap();
        // Several subscribers on different shards; the ack comes from the last one.
        let mut others: Vec<Subscriber<u64>> =
            (0..dispatchers - 1).map(|_| bus.subscribe(Subscription::all()).unwrap()).collect();
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let (ack_tx, ack_rx) = crossbeam_channel::unbounded();
        let ponging = thread::spawn(move || loop {
            match sub.recv_blocking() {
                Ok(d) => ack_tx.send(d.seq()).unwrap(),
                Err(RecvError::Closed) => return,
                Err(e) => panic!("recv: {e}"),
            }
        });
        let mut publisher = bus.publisher().unwrap();
        for i in 0..rounds {
            publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            match ack_rx.recv_timeout(Duration::from_secs(10)) {
                Ok(seq) => assert_eq!(seq, i),
                Err(_) => panic!(
                    "{strategy:?}, K={dispatchers}: round {i}: the parked subscriber was never woken"
                ),
            }
            // The other shards' subscribers get it too (drained now and then).
            if i % 64 == 63 {
                for other in &mut others {
                    while other.try_recv().is_ok() {}
                }
            }
        }
        drop(publisher);
        ponging.join().expect("subscriber thread");
        for other in &mut others {
            assert_eq!(other.dropped(), 0);
        }
    });
}

#[test]
fn ping_pong_adaptive_one_shard() {
    ping_pong(WaitStrategy::Adaptive, 1, 2_000);
}

#[test]
fn ping_pong_adaptive_two_shards() {
    ping_pong(WaitStrategy::Adaptive, 2, 2_000);
}

#[test]
fn ping_pong_yield_one_shard() {
    ping_pong(WaitStrategy::Yield, 1, 2_000);
}

#[test]
fn ping_pong_yield_two_shards() {
    ping_pong(WaitStrategy::Yield, 2, 2_000);
}

#[test]
fn default_wait_strategy_is_adaptive() {
    assert_eq!(WaitStrategy::default(), WaitStrategy::Adaptive);
}

#[test]
fn recv_timeout_times_out_when_nothing_is_published() {
    watchdog("recv_timeout", || {
        let bus: Bus<u64> = Bus::builder().dispatchers(2).build().unwrap();
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Empty);
        assert_eq!(sub.recv_timeout(Duration::ZERO).unwrap_err(), RecvTimeoutError::Timeout);
        let started = std::time::Instant::now();
        let timeout = Duration::from_millis(20);
        assert_eq!(sub.recv_timeout(timeout).unwrap_err(), RecvTimeoutError::Timeout);
        assert!(started.elapsed() >= timeout, "Timeout before the timeout");
        assert!(sub.is_empty());
        // A timeout ends nothing: the next event is received.
        publisher.publish_blocking(Event::new(topic(), 1)).unwrap();
        assert_eq!(sub.recv_timeout(HANG).unwrap().seq(), 0);
        // A timeout so large that `now + timeout` overflows means "no deadline".
        publisher.publish_blocking(Event::new(topic(), 2)).unwrap();
        assert_eq!(sub.recv_timeout(Duration::MAX).unwrap().seq(), 1);
        drop(publisher);
        assert_eq!(sub.recv_timeout(Duration::MAX).unwrap_err(), RecvTimeoutError::Closed);
    });
}

/// Waits with a timeout on one thread, then moves to another thread and blocks there:
/// the wake-up must go to the thread that waits now, not the one that waited before.
#[test]
fn a_subscriber_moved_to_another_thread_is_woken_there() {
    const ROUNDS: u64 = 100;
    let got = watchdog("moved subscriber", || {
        let bus: Bus<u64> = Bus::builder().dispatchers(2).build().unwrap();
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let mut got = Vec::new();
        for i in 0..ROUNDS {
            // Thread A: waits (parks) briefly, times out, and leaves.
            sub = thread::spawn(move || {
                assert_eq!(
                    sub.recv_timeout(Duration::from_millis(1)).unwrap_err(),
                    RecvTimeoutError::Timeout
                );
                sub
            })
            .join()
            .unwrap();
            // Thread B: blocks in recv until the publish below.
            let (ready_tx, ready_rx) = crossbeam_channel::bounded(1);
            let b = thread::spawn(move || {
                ready_tx.send(()).unwrap();
                let seq = sub.recv_blocking().expect("an event").seq();
                (sub, seq)
            });
            ready_rx.recv().unwrap();
            if i.is_multiple_of(2) {
                thread::sleep(Duration::from_millis(1)); // let B park, sometimes
            }
            publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            let (back, seq) = b.join().unwrap();
            sub = back;
            got.push(seq);
        }
        drop(publisher);
        assert_eq!(drain_to_closed(&mut sub), events(std::iter::empty()));
        got
    });
    assert!(got.iter().copied().eq(0..ROUNDS));
}
