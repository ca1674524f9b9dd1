//! Routing costs: `Pattern::matches` against a naive split-and-compare matcher, the route
//! cache's hit path against evaluating every subscriber's pattern, and whole-bus dispatch of
//! events to 64 subscribers on 16 topics with the route cache on and off.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use shardcast::bench_api::RouteCacheProbe;
use shardcast::{Bus, Event, Overflow, Pattern, Subscription, Topic, TryRecvError};

/// What a user without precomputed boundaries writes: split both strings per call.
fn naive_matches(pattern: &str, topic: &str) -> bool {
    let p: Vec<&str> = pattern.split('.').collect();
    let t: Vec<&str> = topic.split('.').collect();
    for (i, tok) in p.iter().enumerate() {
        match *tok {
            ">" => return t.len() > i,
            "*" if i < t.len() => {}
            _ if i < t.len() && t[i] == *tok => {}
            _ => return false,
        }
    }
    p.len() == t.len()
}

fn topics(n: usize) -> Vec<Topic> {
    (0..n).map(|i| Topic::new(&format!("orders.region{i}.created")).unwrap()).collect()
}

/// 64 subscribers, each on one of 16 topics (4 per topic), as patterns with a wildcard so
/// nothing is trivially literal.
fn patterns() -> Vec<Pattern> {
    (0..64).map(|i| Pattern::new(&format!("orders.region{}.*", i % 16)).unwrap()).collect()
}

fn matching(c: &mut Criterion) {
    let mut group = c.benchmark_group("pattern_match");
    group.throughput(Throughput::Elements(1)).measurement_time(Duration::from_secs(2));
    let pattern = Pattern::new("orders.*.created").unwrap();
    let topic = Topic::new("orders.eu.created").unwrap();
    group.bench_function(BenchmarkId::new("shardcast", 1), |b| {
        b.iter(|| black_box(&pattern).matches(black_box(&topic)))
    });
    group.bench_function(BenchmarkId::new("naive_split", 1), |b| {
        b.iter(|| naive_matches(black_box("orders.*.created"), black_box("orders.eu.created")))
    });
    group.finish();

    // The shard's per-event routing step for 64 subscribers: the cache's hit path against
    // evaluating all 64 patterns (what capacity 0 does).
    let mut group = c.benchmark_group("route_64_subscribers");
    group.throughput(Throughput::Elements(1)).measurement_time(Duration::from_secs(2));
    let topics = topics(16);
    for (name, capacity) in [("cache_hit", 4096), ("evaluate_patterns", 0)] {
        let mut probe = RouteCacheProbe::new(&patterns(), capacity);
        let mut i = 0;
        group.bench_function(BenchmarkId::new(name, 64), |b| {
            b.iter(|| {
                i = (i + 1) % topics.len();
                probe.matching(black_box(&topics[i]))
            })
        });
    }
    group.finish();
}

/// Publishes `iters` events round-robin over 16 topics to 64 subscribers (4 per topic) and
/// times until every subscriber has drained its share. Subscribers use `Overflow::Block`
/// (lossless, bounded memory) and are drained round-robin by two reader threads.
fn dispatch(iters: u64, cache: usize) -> Duration {
    let bus: Bus<u64> = Bus::builder()
        .dispatchers(1)
        .route_cache_capacity(cache)
        .queue_capacity(1024)
        .build()
        .unwrap();
    let mut groups: Vec<Vec<_>> = vec![Vec::new(), Vec::new()];
    for (i, p) in patterns().into_iter().enumerate() {
        let sub = Subscription::to_patterns([p]).overflow(Overflow::Block);
        groups[i % 2].push(bus.subscribe(sub).unwrap());
    }
    let topics = topics(16);
    let mut publisher = bus.publisher().unwrap();
    let start = Instant::now();
    let readers: Vec<_> = groups
        .into_iter()
        .map(|mut subs| {
            std::thread::spawn(move || {
                let mut open = subs.len();
                while open > 0 {
                    open = 0;
                    for sub in &mut subs {
                        loop {
                            match sub.try_recv() {
                                Ok(d) => {
                                    black_box(d.payload());
                                }
                                Err(TryRecvError::Empty) => {
                                    open += 1;
                                    break;
                                }
                                Err(TryRecvError::Closed) => break,
                                Err(TryRecvError::Lagged(n)) => panic!("lost {n}"),
                            }
                        }
                    }
                    if open > 0 {
                        std::thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for i in 0..iters {
        publisher.publish_blocking(Event::new(topics[(i % 16) as usize].clone(), i)).unwrap();
    }
    publisher.close();
    for r in readers {
        r.join().unwrap();
    }
    start.elapsed()
}

fn dispatch_group(c: &mut Criterion) {
    let mut group = c.benchmark_group("dispatch_64_subscribers_16_topics");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .measurement_time(Duration::from_secs(3));
    for (name, capacity) in [("route_cache_on", 4096), ("route_cache_off", 0)] {
        group.bench_function(BenchmarkId::new(name, 64), |b| {
            b.iter_custom(|iters| dispatch(iters, capacity))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().without_plots();
    targets = matching, dispatch_group
}
criterion_main!(benches);
