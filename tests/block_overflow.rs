//! Promise: `Overflow::Block` is lossless (the shard waits for the subscriber), and the
//! wait ends when that subscriber is dropped or the bus is closed with `Bus::close`; a
//! shard never stays stuck on a subscriber that is gone.

mod common;

use std::thread;
use std::time::Duration;

use common::{drain_to_closed, events, topic, watchdog, watchdog_for, Got};
use shardcast::{Bus, Event, Overflow, Subscription};

#[test]
fn block_is_lossless_for_a_slow_reader() {
    // Far more than ring + queue hold; every event is a hand-off between shard and reader.
    const N: u64 = common::scaled(1_000);
    for k in [1, 2] {
        let (got, dropped) = watchdog("slow Block reader", move || {
            let bus: Bus<u64> = Bus::builder().ring_capacity(8).dispatchers(k).build().unwrap();
            let mut slow =
                bus.subscribe(Subscription::all().capacity(2).overflow(Overflow::Block)).unwrap();
            let reader = thread::spawn(move || {
                let mut got = Vec::new();
                loop {
                    // Slow: give the publisher and shard time to fill everything up.
                    if got.len().is_multiple_of(250) {
                        thread::sleep(Duration::from_millis(5));
                    } else if got.len().is_multiple_of(7) {
                        thread::yield_now();
                    }
                    match slow.recv_timeout(common::HANG) {
                        Ok(d) => {
                            assert_eq!(*d.payload(), d.seq());
                            got.push(Got::Event(d.seq()));
                        }
                        Err(shardcast::RecvTimeoutError::Lagged(n)) => got.push(Got::Lagged(n)),
                        Err(shardcast::RecvTimeoutError::Closed) => break,
                        Err(shardcast::RecvTimeoutError::Timeout) => panic!("slow reader hung"),
                    }
                }
                (got, slow.dropped())
            });
            let mut publisher = bus.publisher().unwrap();
            for i in 0..N {
                publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            }
            drop(publisher);
            reader.join().expect("reader")
        });
        assert_eq!(got.len() as u64, N, "K={k}");
        assert!(got == events(0..N), "K={k}: a Block subscriber lost or reordered events");
        assert_eq!(dropped, 0, "K={k}");
    }
}

/// The receiver of a `Block` subscriber is parked on an empty queue when a burst arrives
/// that fills its queue within one shard batch: the shard must wake it before it waits
/// for room, or each waits for the other forever.
#[test]
fn parked_block_receiver_is_woken_before_the_shard_waits_for_room() {
    const ROUNDS: u64 = common::scaled(40);
    const BURST: u64 = 4; // one batch on a ring of 8; twice the queue
    watchdog_for("burst into a parked Block receiver", Duration::from_secs(120), || {
        let bus: Bus<u64> = Bus::builder().ring_capacity(8).build().unwrap();
        let mut sub =
            bus.subscribe(Subscription::all().capacity(2).overflow(Overflow::Block)).unwrap();
        let (ack_tx, ack_rx) = crossbeam_channel::unbounded();
        let reader = thread::spawn(move || loop {
            match sub.recv_blocking() {
                Ok(d) => ack_tx.send(d.seq()).unwrap(),
                Err(shardcast::RecvError::Closed) => return,
                Err(e) => panic!("recv: {e}"),
            }
        });
        let mut publisher = bus.publisher().unwrap();
        for round in 0..ROUNDS {
            // The reader has received everything: let it go idle and park.
            thread::sleep(Duration::from_millis(2));
            for i in 0..BURST {
                publisher.publish_blocking(Event::new(topic(), round * BURST + i)).unwrap();
            }
            for i in 0..BURST {
                let expected = round * BURST + i;
                match ack_rx.recv_timeout(Duration::from_secs(10)) {
                    Ok(seq) => assert_eq!(seq, expected),
                    Err(_) => panic!(
                        "round {round}: event {expected} never received: the shard waits for \
                         room in a queue whose parked receiver it has not woken"
                    ),
                }
            }
        }
        drop(publisher);
        reader.join().expect("reader");
    });
}

/// Waits until the shard is certainly stuck on `stuck` (its queue is full and the ring
/// has filled behind it), so the scenario really exercises a waiting shard.
fn wait_until_stuck(bus: &Bus<u64>, stuck: &shardcast::Subscriber<u64>, cap: usize, ring: u64) {
    while stuck.len() < cap || bus.published() < ring {
        thread::yield_now();
    }
    // Let the shard reach its wait (not needed for correctness, only for coverage).
    thread::sleep(Duration::from_millis(20));
}

#[test]
fn dropping_the_blocking_subscriber_releases_the_shard() {
    const N: u64 = common::scaled(2_000);
    const RING: u64 = 16;
    for k in [1, 2] {
        let (others, published) = watchdog("drop a stuck Block subscriber", move || {
            let bus: Bus<u64> =
                Bus::builder().ring_capacity(RING as usize).dispatchers(k).build().unwrap();
            let stuck =
                bus.subscribe(Subscription::all().capacity(2).overflow(Overflow::Block)).unwrap();
            // With K = 2 the others are spread over both shards: one shares the stuck
            // subscriber's shard.
            let mut others: Vec<_> = (0..3)
                .map(|_| bus.subscribe(Subscription::all().capacity(N as usize)).unwrap())
                .collect();
            let mut publisher = bus.publisher().unwrap();
            let publishing = thread::spawn(move || {
                for i in 0..N {
                    publisher.publish_blocking(Event::new(topic(), i)).unwrap();
                }
            });
            wait_until_stuck(&bus, &stuck, 2, RING);
            assert!(bus.published() < N, "the publisher was never held up by the Block shard");
            let before = bus.subscriber_count();
            drop(stuck);
            assert_eq!(bus.subscriber_count(), before - 1);
            publishing.join().expect("the publisher finishes once the stuck subscriber is gone");
            let got: Vec<_> = others.iter_mut().map(drain_to_closed).collect();
            (got, bus.published())
        });
        assert_eq!(published, N, "K={k}");
        for (i, got) in others.iter().enumerate() {
            assert!(got == &events(0..N), "K={k}: subscriber {i} lost or reordered events");
        }
    }
}

#[test]
fn bus_close_releases_a_shard_waiting_on_a_block_subscriber() {
    const RING: u64 = 16;
    for k in [1, 2] {
        let (stuck_got, stuck_dropped, other_got, published, publish_result) =
            watchdog("Bus::close with a stuck Block subscriber", move || {
                let bus: Bus<u64> =
                    Bus::builder().ring_capacity(RING as usize).dispatchers(k).build().unwrap();
                let mut stuck = bus
                    .subscribe(Subscription::all().capacity(2).overflow(Overflow::Block))
                    .unwrap();
                let mut other = bus.subscribe(Subscription::all().capacity(1 << 16)).unwrap();
                let mut publisher = bus.publisher().unwrap();
                let publishing = thread::spawn(move || {
                    // Publishes until the bus closes under it.
                    for i in 0..u64::MAX {
                        if let Err(e) = publisher.publish_blocking(Event::new(topic(), i)) {
                            return (i, e.into_inner().into_payload());
                        }
                    }
                    unreachable!()
                });
                wait_until_stuck(&bus, &stuck, 2, RING);
                bus.close(); // must return: the shard stops waiting
                assert!(bus.is_closed());
                let publish_result = publishing.join().expect("publisher thread");
                let published = bus.published();
                let dropped_after_close = stuck.dropped();
                let stuck_got = drain_to_closed(&mut stuck);
                (
                    stuck_got,
                    dropped_after_close,
                    drain_to_closed(&mut other),
                    published,
                    publish_result,
                )
            });
        // The publisher's first failed event is the one after the last published one, and
        // it is handed back.
        assert_eq!(publish_result, (published, published), "K={k}");
        // The stuck subscriber keeps what it had queued; everything after was dropped
        // (counted) when the bus closed, and reported at the end.
        let mut expected = events(0..2);
        expected.push(Got::Lagged(published - 2));
        assert_eq!(stuck_got, expected, "K={k}");
        assert_eq!(stuck_dropped, published - 2, "K={k}: dropped()");
        // Everything published before close reaches the other subscriber.
        assert!(other_got == events(0..published), "K={k}: the other subscriber");
    }
}

/// `Bus::close` with a stuck `Block` subscriber and no publisher running: close returns.
#[test]
fn bus_close_with_idle_blocked_shard_returns() {
    watchdog("close, publisher already dropped", || {
        let bus: Bus<u64> = Bus::builder().ring_capacity(4).build().unwrap();
        let mut stuck =
            bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
        let mut publisher = bus.publisher().unwrap();
        for i in 0..3 {
            publisher.publish_blocking(Event::new(topic(), i)).unwrap();
        }
        drop(publisher); // closes the ring; the shard is still stuck on event 1
        bus.close();
        assert_eq!(drain_to_closed(&mut stuck), vec![Got::Event(0), Got::Lagged(2)]);
        assert_eq!(stuck.dropped(), 2);
    });
}
