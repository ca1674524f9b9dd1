//! Promise: the route cache never changes what is delivered. Random subscribe /
//! unsubscribe / publish sequences run with the cache on and off (capacity 0); every
//! subscriber's deliveries are identical, and equal to what a plain model predicts.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use shardcast::{
    Bus, Event, Pattern, RecvTimeoutError, Subscriber, Subscription, Topic, TryRecvError,
};

const TOPICS: [&str; 6] = ["a", "a.b", "a.c", "a.b.c", "b.b", "c.a.b"];
const PATTERNS: [&str; 8] = [">", "a", "a.*", "a.>", "*.b", "*.b.*", "c.>", "b.b"];

#[derive(Debug, Clone)]
enum Op {
    Subscribe(Vec<usize>),
    Unsubscribe(usize),
    Publish(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        1 => prop::collection::vec(0..PATTERNS.len(), 1..3).prop_map(Op::Subscribe),
        1 => (0..8usize).prop_map(Op::Unsubscribe),
        5 => (0..TOPICS.len()).prop_map(Op::Publish),
    ]
}

/// Waits until every shard has dispatched everything published (no timing assumption:
/// it polls the shards' counters, with a hang guard).
fn settle(bus: &Bus<u32>) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while bus.shard_stats().iter().any(|s| s.dispatched < bus.published()) {
        assert!(std::time::Instant::now() < deadline, "shards did not catch up");
        std::thread::yield_now();
    }
}

fn take_all(sub: &mut Subscriber<u32>, into: &mut Vec<u32>) {
    loop {
        match sub.try_recv() {
            Ok(d) => into.push(*d.payload()),
            Err(TryRecvError::Empty | TryRecvError::Closed) => return,
            Err(TryRecvError::Lagged(n)) => panic!("lagged {n}"),
        }
    }
}

/// Runs `ops`; returns each subscription's deliveries (by the order it was made).
fn run(ops: &[Op], shards: usize, cache: usize) -> BTreeMap<usize, Vec<u32>> {
    let bus: Bus<u32> =
        Bus::builder().dispatchers(shards).route_cache_capacity(cache).build().unwrap();
    let mut publisher = bus.publisher().unwrap();
    let topics: Vec<Topic> = TOPICS.iter().map(|t| Topic::new(t).unwrap()).collect();
    let mut live: Vec<(usize, Subscriber<u32>)> = Vec::new();
    let mut got: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    let mut made = 0;
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Subscribe(patterns) => {
                settle(&bus);
                let sub = Subscription::to_any(patterns.iter().map(|&p| PATTERNS[p])).unwrap();
                live.push((made, bus.subscribe(sub.capacity(1024)).unwrap()));
                got.insert(made, Vec::new());
                made += 1;
            }
            Op::Unsubscribe(k) if !live.is_empty() => {
                settle(&bus);
                let (id, mut sub) = live.remove(k % live.len());
                take_all(&mut sub, got.get_mut(&id).unwrap());
            }
            Op::Unsubscribe(_) => {}
            Op::Publish(t) => {
                publisher.publish_blocking(Event::new(topics[*t].clone(), i as u32)).unwrap();
            }
        }
    }
    drop(publisher);
    for (id, sub) in &mut live {
        loop {
            match sub.recv_timeout(Duration::from_secs(30)) {
                Ok(d) => got.get_mut(id).unwrap().push(*d.payload()),
                Err(RecvTimeoutError::Closed) => break,
                Err(e) => panic!("{e}"),
            }
        }
    }
    got
}

/// The model: a subscription receives every publish between its subscribe and its
/// unsubscribe whose topic matches one of its patterns.
fn model(ops: &[Op]) -> BTreeMap<usize, Vec<u32>> {
    let mut live: Vec<(usize, Vec<Pattern>)> = Vec::new();
    let mut got: BTreeMap<usize, Vec<u32>> = BTreeMap::new();
    let mut made = 0;
    for (i, op) in ops.iter().enumerate() {
        match op {
            Op::Subscribe(p) => {
                live.push((made, p.iter().map(|&p| Pattern::new(PATTERNS[p]).unwrap()).collect()));
                got.insert(made, Vec::new());
                made += 1;
            }
            Op::Unsubscribe(k) if !live.is_empty() => {
                live.remove(k % live.len());
            }
            Op::Unsubscribe(_) => {}
            Op::Publish(t) => {
                let topic = Topic::new(TOPICS[*t]).unwrap();
                for (id, patterns) in &live {
                    if patterns.iter().any(|p| p.matches(&topic)) {
                        got.get_mut(id).unwrap().push(i as u32);
                    }
                }
            }
        }
    }
    got
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn cache_on_and_off_deliver_the_same(ops in prop::collection::vec(op(), 1..60), shards in 1..4usize) {
        let want = model(&ops);
        let cached = run(&ops, shards, 4096);
        let uncached = run(&ops, shards, 0);
        let tiny = run(&ops, shards, 1); // constant eviction
        prop_assert_eq!(&cached, &want);
        prop_assert_eq!(&uncached, &want);
        prop_assert_eq!(&tiny, &want);
    }
}

#[test]
fn cache_counters_move() {
    let bus: Bus<u32> = Bus::builder().route_cache_capacity(2).build().unwrap();
    let _a = bus.subscribe(Subscription::to("a.>").unwrap()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    for (i, t) in ["a.b", "a.b", "a.c", "a.d", "a.b"].iter().enumerate() {
        publisher.publish_blocking(Event::new(Topic::new(t).unwrap(), i as u32)).unwrap();
    }
    settle(&bus);
    let _b = bus.subscribe(Subscription::to("a.b").unwrap()).unwrap();
    publisher.publish_blocking(Event::new(Topic::new("a.b").unwrap(), 9)).unwrap();
    drop(publisher);
    bus.close();
    let s = &bus.shard_stats()[0];
    // a.b miss, a.b hit, a.c miss, a.d miss (evicts a.b), a.b miss; then a new generation.
    assert_eq!((s.route_hits, s.route_misses, s.route_invalidations), (1, 5, 1), "{s:?}");
}
