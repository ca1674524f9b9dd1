//! Promise: dropping a `Subscriber` unsubscribes it. The bus forgets it
//! (`subscriber_count` goes down at once), its shard stops delivering to it and never
//! waits for it again (even a full `Block` subscriber), and the other subscribers are
//! unaffected, also while subscribers come and go during publishing.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use common::{drain_to_closed, events, topic, watchdog};
use shardcast::{Bus, Event, Overflow, Subscriber, Subscription};

#[test]
fn subscriber_count_follows_subscribe_and_drop() {
    let bus: Bus<u64> = Bus::builder().dispatchers(3).build().unwrap();
    assert_eq!(bus.subscriber_count(), 0);
    let mut subs: Vec<Subscriber<u64>> = Vec::new();
    for i in 1..=7 {
        subs.push(bus.subscribe(Subscription::all()).unwrap());
        assert_eq!(bus.subscriber_count(), i);
    }
    // Ids are unique; default names are `sub-<id>`.
    let ids: HashSet<u64> = subs.iter().map(Subscriber::id).collect();
    assert_eq!(ids.len(), 7);
    for sub in &subs {
        assert_eq!(sub.name(), format!("sub-{}", sub.id()));
    }
    // Drop from the middle, the end and the front, on different shards.
    for (dropped, index) in [3, 5, 0, 0].into_iter().enumerate() {
        subs.remove(index);
        assert_eq!(bus.subscriber_count(), 7 - dropped - 1);
    }
    drop(subs);
    assert_eq!(bus.subscriber_count(), 0);
    // A new subscription after all that gets a fresh id and a given name.
    let named = bus.subscribe(Subscription::all().name("audit")).unwrap();
    assert_eq!(named.name(), "audit");
    assert!(!ids.contains(&named.id()));
    assert_eq!(bus.subscriber_count(), 1);
}

#[test]
fn dropping_one_subscriber_mid_stream_does_not_affect_the_others() {
    const N: u64 = common::scaled(4_000);
    for k in [1, 2] {
        let others = watchdog("drop mid-stream", move || {
            let bus: Bus<u64> = Bus::builder().ring_capacity(16).dispatchers(k).build().unwrap();
            let mut victim = Some(bus.subscribe(Subscription::all().capacity(8)).unwrap());
            let mut others: Vec<Subscriber<u64>> = (0..3)
                .map(|_| bus.subscribe(Subscription::all().capacity(N as usize)).unwrap())
                .collect();
            let mut publisher = bus.publisher().unwrap();
            for i in 0..N {
                if i == N / 2 {
                    let mut victim = victim.take().unwrap();
                    // Receive a little first, so the victim is in the middle of things.
                    let _ = victim.try_recv();
                    drop(victim);
                    assert_eq!(bus.subscriber_count(), 3);
                    // A short-lived one comes and goes too.
                    drop(bus.subscribe(Subscription::all().capacity(1)).unwrap());
                    assert_eq!(bus.subscriber_count(), 3);
                }
                publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            }
            drop(publisher);
            others.iter_mut().map(drain_to_closed).collect::<Vec<_>>()
        });
        for (i, got) in others.iter().enumerate() {
            assert!(got == &events(0..N), "K={k}, subscriber {i}: lost or reordered events");
        }
    }
}

/// A `Block` subscriber with a full queue would stall its shard; once dropped, the shard
/// never waits for it again.
#[test]
fn a_dropped_block_subscriber_never_stalls_its_shard() {
    const N: u64 = common::scaled(5_000);
    for k in [1, 2] {
        let (got, published) = watchdog("dropped Block subscriber", move || {
            let bus: Bus<u64> = Bus::builder().ring_capacity(8).dispatchers(k).build().unwrap();
            let stuck =
                bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
            let mut other = bus.subscribe(Subscription::all().capacity(N as usize)).unwrap();
            let mut publisher = bus.publisher().unwrap();
            // Fill its queue (one event), then drop it before its shard has to wait.
            publisher.publish_blocking(Event::new(topic(), 0)).unwrap();
            drop(stuck);
            assert_eq!(bus.subscriber_count(), 1);
            for i in 1..N {
                publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            }
            drop(publisher);
            (drain_to_closed(&mut other), bus.published())
        });
        assert_eq!(published, N, "K={k}");
        assert!(got == events(0..N), "K={k}: the other subscriber lost or reordered events");
    }
}

/// Re-subscribing after a drop gives a fresh subscription: only later events, from the
/// start of its own queue (no left-overs, no Lagged from the old one).
#[test]
fn resubscribing_starts_fresh() {
    let (first, second) = watchdog("resubscribe", || {
        let bus: Bus<u64> = Bus::builder().build().unwrap();
        let mut publisher = bus.publisher().unwrap();
        let mut sub = bus.subscribe(Subscription::all().capacity(2)).unwrap();
        for i in 0..10 {
            publisher.publish_blocking(Event::new(topic(), i)).unwrap();
        }
        let first = sub.recv_timeout(common::HANG).unwrap().seq();
        drop(sub);
        let mut sub = bus.subscribe(Subscription::all().capacity(2)).unwrap();
        publisher.publish_blocking(Event::new(topic(), 10)).unwrap();
        drop(publisher);
        (first, drain_to_closed(&mut sub))
    });
    assert_eq!(first, 0);
    assert_eq!(second, events([10]));
}

/// Subscribers come and go (on another thread) while the publisher runs: the steady
/// subscribers get everything, in order (even when a short-lived `Block` subscriber
/// filled up and held its shard until it was dropped); short-lived ones see their events
/// in order; the count returns to the steady ones.
#[test]
fn churn_while_publishing() {
    const N: u64 = common::scaled(20_000);
    for k in [1, 3] {
        let (steady, published, count_after) = watchdog("subscriber churn", move || {
            let bus: Bus<u64> = Bus::builder().ring_capacity(32).dispatchers(k).build().unwrap();
            let mut steady: Vec<Subscriber<u64>> = (0..2)
                .map(|_| bus.subscribe(Subscription::all().capacity(N as usize)).unwrap())
                .collect();
            let stop = Arc::new(AtomicBool::new(false));
            let churn = {
                let bus = bus.clone();
                let stop = Arc::clone(&stop);
                thread::spawn(move || {
                    let mut rounds = 0u32;
                    while !stop.load(Ordering::Relaxed) {
                        let overflow = match rounds % 3 {
                            0 => Overflow::Block,
                            1 => Overflow::DropOldest,
                            _ => Overflow::Disconnect,
                        };
                        let mut sub = bus
                            .subscribe(Subscription::all().capacity(64).overflow(overflow))
                            .unwrap();
                        let mut last = None;
                        for _ in 0..(rounds % 5) {
                            match sub.try_recv() {
                                Ok(d) => {
                                    if let Some(last) = last {
                                        assert!(d.seq() > last, "out of order");
                                    }
                                    last = Some(d.seq());
                                }
                                Err(_) => break,
                            }
                        }
                        drop(sub);
                        rounds += 1;
                        thread::yield_now();
                    }
                    rounds
                })
            };
            let mut publisher = bus.publisher().unwrap();
            for i in 0..N {
                publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            }
            stop.store(true, Ordering::Relaxed);
            let rounds = churn.join().expect("churn thread");
            assert!(rounds > 0);
            let count_after = bus.subscriber_count();
            drop(publisher);
            let got: Vec<_> = steady.iter_mut().map(drain_to_closed).collect();
            (got, bus.published(), count_after)
        });
        assert_eq!(published, N, "K={k}");
        assert_eq!(count_after, 2, "K={k}: churned subscribers still counted");
        for (i, got) in steady.iter().enumerate() {
            assert!(got == &events(0..N), "K={k}, steady subscriber {i}");
        }
    }
}
