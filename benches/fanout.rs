//! Fan-out throughput: one publisher, N subscribers that each want every event, for every
//! competitor of `shardcast bench` at N = 1, 8, 64.
//!
//! The competitor implementations are the CLI's own (the workspace's `shardcast-bench`
//! crate), so this bench and `shardcast bench` measure the same code. Each sample is
//! one saturation run of `iters` events (lossless: every library's queues hold the run or
//! push back), timed with `iter_custom` from just before the first publish until the last
//! subscriber has its last event: cross-thread delivery, not just the send side. Runtimes,
//! threads and channels are made before the first stamp and torn down after the last.
//!
//! The `base` row measures the measuring: one clock read and one push per event, on one
//! thread, which every receiver of every row pays per delivery.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

use shardcast_bench::impls::{self, Impl, Mode, Spec};

const SUBSCRIBERS: [usize; 3] = [1, 8, 64];

fn spec(subscribers: usize, events: u64) -> Spec {
    Spec {
        subscribers,
        slow: false,
        topics: 1,
        events,
        rate: None,
        mode: Mode::Async,
        lossless: true,
        queue: 1024,
        // The CLI's default (one shard per core on the 2-core reference machine).
        dispatchers: 2,
    }
}

fn fanout(c: &mut Criterion) {
    let mut group = c.benchmark_group("fanout");
    // Each sample is a whole run (runtime, N receivers): few samples, short windows.
    group.sample_size(10).warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    for n in SUBSCRIBERS {
        // Deliveries per event.
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(BenchmarkId::new("base", n), &n, |b, &n| {
            b.iter_custom(|iters| {
                let origin = impls::Origin::now();
                let mut got = Vec::with_capacity(iters as usize * n);
                let start = Instant::now();
                for seq in 0..iters * n as u64 {
                    got.push((seq, origin.elapsed_ns()));
                }
                black_box(&got);
                start.elapsed()
            })
        });
        for imp in Impl::ALL {
            group.bench_with_input(BenchmarkId::new(imp.name(), n), &n, |b, &n| {
                b.iter_custom(|iters| {
                    let out = impls::run(imp, &spec(n, iters.max(1)));
                    let first = out.published.first().copied().unwrap_or(0);
                    let last = out.recs.iter().flat_map(|r| r.got.iter().map(|g| g.1)).max();
                    let delivered: usize = out.recs.iter().map(|r| r.got.len()).sum();
                    assert_eq!(delivered as u64, iters.max(1) * n as u64, "{}: lost", imp.name());
                    Duration::from_nanos(last.unwrap_or(first) - first)
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, fanout);
criterion_main!(benches);
