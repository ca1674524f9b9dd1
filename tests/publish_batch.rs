//! Promise: `publish_batch` publishes every event once, in order, with the sequence numbers
//! it returns, across segment boundaries, a ring smaller than the batch and a segment an
//! idle shard sealed; a close hands back exactly the events not published, in order.
//!
//! It also pins down the shard's shared-runs path (`dispatch`, `Uniform`): a batch of 16
//! events published with one store is read by the shard as one batch, so the deliveries,
//! losses and counters of a batch where every event matches the same plain subscribers,
//! and of one where that stops halfway (the plan so far is rewritten per subscriber), are
//! checked exactly against what each subscriber's queue must hold.

mod common;

use std::thread;
use std::time::Duration;

use common::{drain_to_closed, events, scaled, watchdog, Got};
use shardcast::{Bus, Event, Overflow, Subscription, Topic};

fn t(name: &str) -> Topic {
    Topic::new(name).expect("valid topic")
}

#[test]
fn every_event_once_in_order_across_segments_and_a_small_ring() {
    watchdog("publish_batch through an 8-slot ring", || {
        let n = scaled(5_000);
        let bus: Bus<u64> = Bus::builder().ring_capacity(8).dispatchers(2).build().unwrap();
        let mut subs: Vec<_> = (0..3)
            .map(|_| bus.subscribe(Subscription::all().capacity(64).overflow(Overflow::Block)))
            .collect::<Result<_, _>>()
            .unwrap();
        let mut publisher = bus.publisher().unwrap();
        let readers: Vec<_> =
            subs.drain(..).map(|mut s| thread::spawn(move || drain_to_closed(&mut s))).collect();
        let topic = t("batch");
        let mut batch = Vec::new();
        let mut next = 0;
        // Batches of every size from 1 to 37, so runs start at every slot of a segment.
        let mut size = 1;
        while next < n {
            let k = size.min(n - next);
            batch.extend((next..next + k).map(|i| Event::new(topic.clone(), i)));
            let cap = batch.capacity();
            assert_eq!(publisher.publish_batch_blocking(&mut batch).unwrap(), next..next + k);
            assert!(batch.is_empty() && batch.capacity() == cap, "the Vec is kept for reuse");
            next += k;
            size = size % 37 + 1;
        }
        drop(publisher);
        for r in readers {
            assert!(r.join().unwrap() == events(0..n), "lost, repeated or reordered events");
        }
    });
}

#[test]
fn a_batch_after_the_shard_sealed_the_segment() {
    watchdog("publish_batch after an idle shard", || {
        let bus: Bus<u64> = Bus::builder().build().unwrap();
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let topic = t("batch");
        let mut next = 0;
        for round in 0..scaled(20) {
            // A few events into a segment, then an idle ring: the shard seals the segment
            // it is in, and the batch must start a new one.
            let k = 1 + round % 5;
            let mut batch: Vec<_> =
                (next..next + k).map(|i| Event::new(topic.clone(), i)).collect();
            assert_eq!(publisher.publish_batch_blocking(&mut batch).unwrap(), next..next + k);
            next += k;
            publisher.flush();
            thread::sleep(Duration::from_millis(if cfg!(miri) { 0 } else { 5 }));
        }
        drop(publisher);
        assert!(drain_to_closed(&mut sub) == events(0..next));
    });
}

#[test]
fn close_leaves_the_unpublished_events_in_order() {
    watchdog("publish_batch into a closed bus", || {
        let bus: Bus<u64> = Bus::builder().ring_capacity(8).build().unwrap();
        // Never read, and `Block`: the shard stops after 1 queued event, the ring fills.
        let _stuck = bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block));
        let mut publisher = bus.publisher().unwrap();
        let topic = t("batch");
        let publishing = thread::spawn(move || {
            let mut batch: Vec<_> = (0..100).map(|i| Event::new(topic.clone(), i)).collect();
            let err = publisher.publish_batch_blocking(&mut batch).unwrap_err();
            (err.into_inner(), batch)
        });
        while bus.published() < 8 {
            thread::yield_now();
        }
        bus.close();
        let (published, rest) = publishing.join().unwrap();
        assert_eq!(published.start, 0);
        assert!(published.end >= 8 && published.end < 100, "{published:?}");
        let left: Vec<u64> = rest.iter().map(|e| *e.payload()).collect();
        assert_eq!(left, (published.end..100).collect::<Vec<_>>(), "not handed back in order");
        assert_eq!(bus.published(), published.end);
    });
}

/// The four subscribers of the shared-runs scenarios, all plain (no route, no predicate):
/// `all` (room for everything), `only_a` (topic `a` only), `newest` (`all`, 4 slots,
/// `DropNewest`) and `oldest` (`all`, 4 slots, `DropOldest`). None reads until the batch is
/// dispatched.
fn one_batch(topics: &[&str; 16]) -> ([Vec<Got>; 4], shardcast::stats::StatsSnapshot) {
    watchdog("one batch of 16", {
        let topics = topics.map(str::to_owned);
        move || {
            let bus: Bus<u64> =
                Bus::builder().ring_capacity(64).stats_topic_levels(1).build().unwrap();
            let sub = |s: Subscription<u64>| bus.subscribe(s).unwrap();
            let mut subs = [
                sub(Subscription::all().capacity(64)),
                sub(Subscription::to("a").unwrap().capacity(64)),
                sub(Subscription::all().capacity(4).overflow(Overflow::DropNewest)),
                sub(Subscription::all().capacity(4).overflow(Overflow::DropOldest)),
            ];
            let mut publisher = bus.publisher().unwrap();
            let mut batch: Vec<_> =
                (0..16u64).map(|i| Event::new(t(&topics[i as usize]), i)).collect();
            // One segment, one store: the shard reads all 16 as one batch.
            assert_eq!(publisher.publish_batch_blocking(&mut batch).unwrap(), 0..16);
            drop(publisher);
            let got = subs.each_mut().map(drain_to_closed);
            (got, bus.stats())
        }
    })
}

fn seqs(r: impl IntoIterator<Item = u64>) -> Vec<Got> {
    events(r)
}

#[test]
fn a_uniform_batch_delivers_and_counts_as_per_event_dispatch_would() {
    let ([all, only_a, newest, oldest], s) = one_batch(&["a"; 16]);
    assert_eq!(all, seqs(0..16));
    assert_eq!(only_a, seqs(0..16));
    assert_eq!(newest, [seqs(0..4), vec![Got::Lagged(12)]].concat());
    assert_eq!(oldest, [vec![Got::Lagged(12)], seqs(12..16)].concat());
    let shard = &s.shards[0];
    assert_eq!(shard.delivered, 16 + 16 + 4 + 16);
    assert_eq!((shard.dropped_newest, shard.dropped_oldest), (12, 12));
    let a = s.topics.iter().find(|t| t.prefix == "a").expect("topic a counted");
    assert_eq!((a.published, a.delivered, a.dropped), (16, 52, 24));
}

#[test]
fn a_batch_that_stops_being_uniform_keeps_every_subscribers_order_and_counts() {
    // Six events on `a` (all four subscribers), four on `b` (not `only_a`): the plan of
    // the first six is rewritten per subscriber at the seventh, then six more on `a`.
    let mut topics = ["a"; 16];
    topics[6..10].fill("b");
    let ([all, only_a, newest, oldest], s) = one_batch(&topics);
    assert_eq!(all, seqs(0..16));
    assert_eq!(only_a, [seqs(0..6), seqs(10..16)].concat());
    assert_eq!(newest, [seqs(0..4), vec![Got::Lagged(12)]].concat());
    assert_eq!(oldest, [vec![Got::Lagged(12)], seqs(12..16)].concat());
    let shard = &s.shards[0];
    assert_eq!(shard.delivered, 16 + 12 + 4 + 16);
    assert_eq!((shard.dropped_newest, shard.dropped_oldest), (12, 12));
    let by = |p: &str| s.topics.iter().find(|t| t.prefix == p).expect("topic counted").clone();
    let (a, b) = (by("a"), by("b"));
    assert_eq!((a.published, b.published), (12, 4));
    // `a`: 12 to `all` and `only_a`, 4 to `newest`, 12 to `oldest`; `b`: 4 and 4.
    assert_eq!((a.delivered, b.delivered), (40, 8));
    assert_eq!(a.dropped + b.dropped, 24);
}
