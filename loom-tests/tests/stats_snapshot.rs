//! The bus's stats snapshot: the counter pairs of `counters.rs` hold in a whole
//! `Bus::stats()` taken while events flow, a receiver consumes and a subscriber is dropped.
//! The slowest model (most interleavings): a file of its own, so CI runs it on one core
//! while the other models run on the other.
#![cfg(loom)]

use loom::thread;
use shardcast::{Bus, Event, Subscription, Topic};

#[test]
fn bus_snapshot_pairs_hold_while_events_flow() {
    // delivered >= consumed per subscriber, published >= dispatched per shard,
    // subscriptions >= subscriptions_closed, and every subscriber counted once (live or
    // retired), in snapshots taken while a receiver consumes and a subscriber is dropped.
    loom::model(|| {
        let bus: Bus<u64> = Bus::builder().ring_capacity(2).build().unwrap();
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let gone = bus.subscribe(Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let receiver = thread::spawn(move || {
            let got = sub.recv_blocking().map(|d| d.seq());
            drop(gone);
            got
        });
        publisher.publish_blocking(Event::new(Topic::new("t").unwrap(), 0)).unwrap();
        let stats = bus.stats();
        for s in &stats.subscribers {
            assert!(s.delivered >= s.consumed, "{s:?}");
        }
        for s in &stats.shards {
            assert!(stats.published >= s.dispatched, "{s:?}");
        }
        assert!(stats.subscriptions >= stats.subscriptions_closed);
        // Each subscriber counts once, live or folded into `retired`, even while one drops.
        let retired: u64 = stats.retired.iter().map(|r| r.subscribers).sum();
        assert_eq!(stats.subscribers.len() as u64 + retired, 2, "{stats:?}");
        assert_eq!(receiver.join().unwrap(), Ok(0));
        drop(publisher);
    });
}
