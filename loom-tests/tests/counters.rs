//! Counter pairs: a snapshot racing an open-then-close never shows closed > open. The
//! model fails if `CounterPair::close` is weakened from Release to Relaxed (loom then
//! lets the snapshot's Acquire load see the close without the open).
#![cfg(loom)]

use loom::sync::Arc;
use loom::thread;
use shardcast::stats::CounterPair;
use shardcast::{Bus, Event, Subscription, Topic};

#[test]
fn snapshot_never_shows_more_closed_than_open() {
    loom::model(|| {
        let pair = Arc::new(CounterPair::new());
        let lifetimes = {
            let pair = Arc::clone(&pair);
            thread::spawn(move || {
                for _ in 0..2 {
                    pair.open();
                    pair.close();
                }
            })
        };
        for _ in 0..2 {
            let (open, closed) = pair.snapshot();
            assert!(open >= closed, "open {open} < closed {closed}");
        }
        lifetimes.join().unwrap();
        assert_eq!(pair.snapshot(), (2, 2));
    });
}

#[test]
fn bus_snapshot_pairs_hold_while_events_flow() {
    // delivered >= consumed per subscriber, published >= dispatched per shard, and
    // subscriptions >= subscriptions_closed, in snapshots taken while a receiver consumes
    // and a subscriber is dropped.
    loom::model(|| {
        let bus: Bus<u64> = Bus::builder().ring_capacity(2).build().unwrap();
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let gone = bus.subscribe(Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let receiver = thread::spawn(move || {
            let got = sub.recv().map(|d| d.seq());
            drop(gone);
            got
        });
        publisher.publish(Event::new(Topic::new("t").unwrap(), 0)).unwrap();
        let stats = bus.stats();
        for s in &stats.subscribers {
            assert!(s.delivered >= s.consumed, "{s:?}");
        }
        for s in &stats.shards {
            assert!(stats.published >= s.dispatched, "{s:?}");
        }
        assert!(stats.subscriptions >= stats.subscriptions_closed);
        assert_eq!(receiver.join().unwrap(), Ok(0));
        drop(publisher);
    });
}
