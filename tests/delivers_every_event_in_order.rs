//! Promise: a subscriber receives every event published after `subscribe()` returned,
//! in publish (`seq`) order, exactly once, whatever the number of dispatcher shards; it
//! receives nothing published before it subscribed. Subscribers are spread over the
//! shards, and each shard delivers only to its own subscribers (exactly once overall).

mod common;

use std::collections::BTreeMap;
use std::thread;

use common::{drain_to_closed, events, topic, watchdog, Got};
use shardcast::{Bus, Event, Overflow, Subscriber, Subscription};

const BEFORE: u64 = 100;
const N: u64 = 5_000;
const SUBSCRIBERS: usize = 8;

/// What each subscriber received: `(seq, payload)` per event, `Lagged`s as `(u64::MAX, n)`.
type Received = Vec<(u64, u64)>;

/// Publishes `BEFORE` events with nobody subscribed, subscribes `SUBSCRIBERS` (half read
/// while the publisher runs, half only after it closed), publishes `N` more, closes.
fn run(dispatchers: usize) -> (Vec<Received>, Vec<usize>) {
    watchdog("deliver every event", move || {
        // A small ring, so the publisher wraps it many times and is gated by the shards.
        let bus: Bus<u64> = Bus::builder()
            .ring_capacity(64)
            .dispatchers(dispatchers)
            .queue_capacity(N as usize + 16)
            .build()
            .unwrap();
        let mut publisher = bus.publisher().unwrap();
        for i in 0..BEFORE {
            assert_eq!(publisher.publish_blocking(Event::new(topic(), i)).unwrap(), i);
        }
        let subs: Vec<Subscriber<u64>> = (0..SUBSCRIBERS)
            .map(|i| {
                bus.subscribe(Subscription::all().name(format!("s{i}")).overflow(Overflow::Block))
                    .unwrap()
            })
            .collect();
        assert_eq!(bus.subscriber_count(), SUBSCRIBERS);
        let shards: Vec<usize> = subs.iter().map(Subscriber::shard).collect();

        let mut subs = subs.into_iter();
        let live: Vec<_> = subs
            .by_ref()
            .take(SUBSCRIBERS / 2)
            .map(|sub| thread::spawn(move || read(sub)))
            .collect();
        let later: Vec<Subscriber<u64>> = subs.collect();

        for i in BEFORE..BEFORE + N {
            assert_eq!(publisher.publish_blocking(Event::new(topic(), i)).unwrap(), i);
        }
        drop(publisher);

        let mut received: Vec<Received> =
            live.into_iter().map(|t| t.join().expect("reader thread")).collect();
        received.extend(later.into_iter().map(read));
        (received, shards)
    })
}

fn read(mut sub: Subscriber<u64>) -> Received {
    let mut received = Vec::new();
    let name = sub.name().to_owned();
    loop {
        match sub.recv_timeout(common::HANG) {
            Ok(d) => received.push((d.seq(), *d.payload())),
            Err(shardcast::RecvTimeoutError::Lagged(n)) => received.push((u64::MAX, n)),
            Err(shardcast::RecvTimeoutError::Closed) => break,
            Err(shardcast::RecvTimeoutError::Timeout) => panic!("{name}: hang"),
        }
    }
    assert_eq!(sub.dropped(), 0, "{}: a lossless subscriber dropped events", sub.name());
    received
}

#[test]
fn every_event_after_subscribe_in_order_exactly_once_for_1_2_4_dispatchers() {
    let expected: Received = (BEFORE..BEFORE + N).map(|i| (i, i)).collect();
    let mut results = Vec::new();
    for k in [1, 2, 4] {
        let (received, shards) = run(k);
        assert_eq!(received.len(), SUBSCRIBERS);
        for (i, got) in received.iter().enumerate() {
            assert_eq!(got.len(), expected.len(), "K={k}, subscriber {i}: wrong event count");
            assert!(
                got == &expected,
                "K={k}, subscriber {i}: events missing, repeated or reordered"
            );
        }
        assert!(shards.iter().all(|&s| s < k), "K={k}: shard index out of range: {shards:?}");
        results.push(received);
    }
    assert!(results.windows(2).all(|w| w[0] == w[1]), "results differ between K = 1, 2, 4");
}

#[test]
fn subscribers_are_spread_over_shards() {
    let bus: Bus<u64> = Bus::builder().dispatchers(4).build().unwrap();
    assert_eq!(bus.dispatchers(), 4);
    let subs: Vec<_> = (0..8).map(|_| bus.subscribe(Subscription::all()).unwrap()).collect();
    let mut per_shard = BTreeMap::new();
    for sub in &subs {
        assert!(sub.shard() < 4);
        *per_shard.entry(sub.shard()).or_insert(0) += 1;
    }
    assert!(per_shard.len() > 1, "every subscriber on one shard: {per_shard:?}");
    // Least-loaded placement (ARCHITECTURE.md, `bus.rs`): 8 subscribers on 4 shards, 2 each.
    assert_eq!(per_shard, BTreeMap::from([(0, 2), (1, 2), (2, 2), (3, 2)]));
}

/// A subscriber that joins while the publisher is running (the shard may still hold
/// older events in the ring) gets exactly the events published after it subscribed.
#[test]
fn late_subscriber_gets_only_later_events() {
    for k in [1, 2, 4] {
        let (early, late, cut) = watchdog("late subscriber", move || {
            let bus: Bus<u64> = Bus::builder()
                .ring_capacity(16)
                .dispatchers(k)
                .queue_capacity(4096)
                .build()
                .unwrap();
            let mut early = bus.subscribe(Subscription::all()).unwrap();
            let mut publisher = bus.publisher().unwrap();
            for i in 0..1000 {
                publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            }
            // Subscribed from the publishing thread: everything from `cut` on is "after".
            let cut = publisher.next_seq();
            let mut late = bus.subscribe(Subscription::all()).unwrap();
            for i in 1000..2000 {
                publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            }
            drop(publisher);
            (drain_to_closed(&mut early), drain_to_closed(&mut late), cut)
        });
        assert_eq!(cut, 1000);
        assert_eq!(early, events(0..2000), "K={k}: the early subscriber");
        assert_eq!(late, events(cut..2000), "K={k}: the late subscriber");
    }
}

#[test]
fn events_published_before_subscribe_are_not_received() {
    for k in [1, 2] {
        let got = watchdog("before subscribe", move || {
            let bus: Bus<u64> = Bus::builder().dispatchers(k).build().unwrap();
            let mut publisher = bus.publisher().unwrap();
            for i in 0..10 {
                publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            }
            let mut sub = bus.subscribe(Subscription::all()).unwrap();
            publisher.publish_blocking(Event::new(topic(), 10)).unwrap();
            drop(publisher);
            drain_to_closed(&mut sub)
        });
        assert_eq!(got, vec![Got::Event(10)], "K={k}");
    }
}
