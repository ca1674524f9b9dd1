//! Cost per publish with one subscriber draining on another thread, beside
//! `crossbeam_channel::bounded` send and `tokio::sync::broadcast` send, each with one
//! receiver draining on another thread.
//!
//! Every row is timed with `iter_custom` from just before the first send until the receiver
//! has taken the last of the `iters` events, so the time covers delivery (for ringcast: ring,
//! dispatcher shard, subscriber queue, wake-ups), not only the sender's side. Threads, buses
//! and channels are made before the clock starts and torn down after it stops. The second
//! group, `publish_send_side`, times the same runs up to the last send returning: with 4096
//! slots of buffering (8192 for ringcast: ring plus queue) the sender may finish before the
//! receiver, so that is a lower bound, shown for reference, not the headline. tokio's sender
//! never waits for its receiver, so its send-side row is its bare send cost.
//!
//! All three get the same 32-byte payload and capacity 4096: ringcast's ring and its
//! subscriber's queue, crossbeam's channel, tokio's broadcast channel. The machine's core
//! count matters: ringcast runs three threads (publisher, dispatcher shard, subscriber), the
//! others two.
//!
//! Losses are counted, never hidden:
//! - ringcast's subscriber uses `Overflow::Block`, lossless backpressure like crossbeam's
//!   full channel, so it must receive every event (a `Lagged` report panics). The
//!   `ringcast_drop_newest` row is the default policy: a full queue drops, the receiver
//!   counts what `Lagged(n)` reports as accounted for.
//! - tokio's broadcast never waits for a receiver: a full channel overwrites the oldest
//!   message and the receiver gets `Lagged(n)`. A lagging receiver skips those `n` messages
//!   (less work per send), so the receiver counts them as accounted for, the totals are
//!   printed at the end (stderr), and a row with losses is not a like-for-like comparison.

use std::hint::black_box;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Barrier;
use std::thread;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ringcast::{Bus, Event, Overflow, Publisher, RecvError, Subscriber, Subscription, Topic};

const CAPACITY: usize = 4096;

/// 32 bytes, like a small domain event.
#[derive(Debug, Clone, Copy)]
struct Payload([u64; 4]);

fn payload(i: u64) -> Payload {
    Payload([i, i ^ 1, i ^ 2, i ^ 3])
}

/// What every receiver does with a payload: reads all of it.
fn consume(p: &Payload) {
    black_box(p.0);
}

/// When a run's last send returned and when its receiver took the last event, both
/// measured from just before the first send.
#[derive(Debug, Clone, Copy)]
struct Timing {
    sent: Duration,
    delivered: Duration,
}

/// Runs `recv` on its own thread and `send` on this one, both released by one barrier; the
/// clock starts after the barrier, so thread start-up is not measured.
fn time_run(recv: impl FnOnce() + Send, send: impl FnOnce()) -> Timing {
    let ready = Barrier::new(2);
    thread::scope(|s| {
        let receiver = s.spawn(|| {
            ready.wait();
            recv();
            Instant::now()
        });
        ready.wait();
        let start = Instant::now();
        send();
        let sent = start.elapsed();
        let delivered = receiver.join().expect("receiver panicked");
        Timing { sent, delivered: delivered.saturating_duration_since(start) }
    })
}

/// Events each impl's receiver was told it lost, and events sent, over the whole run.
struct Losses {
    name: &'static str,
    lost: AtomicU64,
    sent: AtomicU64,
}

impl Losses {
    const fn new(name: &'static str) -> Self {
        Losses { name, lost: AtomicU64::new(0), sent: AtomicU64::new(0) }
    }

    fn add(&self, lost: u64, sent: u64) {
        self.lost.fetch_add(lost, Ordering::Relaxed);
        self.sent.fetch_add(sent, Ordering::Relaxed);
    }

    fn report(&self) {
        let (lost, sent) = (self.lost.load(Ordering::Relaxed), self.sent.load(Ordering::Relaxed));
        let pct = if sent == 0 { 0.0 } else { 100.0 * lost as f64 / sent as f64 };
        eprintln!("{}: receiver lagged over {lost} of {sent} events ({pct:.3}%)", self.name);
    }
}

static RINGCAST_DROP_NEWEST_LOSSES: Losses = Losses::new("ringcast_drop_newest");
static TOKIO_LOSSES: Losses = Losses::new("tokio_broadcast");

/// The harness alone: the barrier, the clock, a send loop that only builds payloads, and
/// one cross-thread flag the receiver waits for.
fn base(iters: u64) -> Timing {
    let done = AtomicBool::new(false);
    time_run(
        || {
            // Acquire: pairs with the Release store after the loop.
            while !done.load(Ordering::Acquire) {
                std::hint::spin_loop();
            }
        },
        || {
            for i in 0..iters {
                black_box(payload(i));
            }
            done.store(true, Ordering::Release);
        },
    )
}

fn ringcast_bus(
    overflow: Overflow,
    stats: bool,
) -> (Bus<Payload>, Publisher<Payload>, Subscriber<Payload>) {
    // `stats(false)` turns off per-topic counters and latency sampling (the parts of stats
    // with a per-event cost); the `ringcast_stats_off` row shows what they cost.
    let bus: Bus<Payload> =
        Bus::builder().ring_capacity(CAPACITY).dispatchers(1).stats(stats).build().expect("bus");
    let subscriber = bus
        .subscribe(Subscription::all().capacity(CAPACITY).overflow(overflow))
        .expect("subscribe");
    let publisher = bus.publisher().expect("publisher");
    (bus, publisher, subscriber)
}

fn ringcast(iters: u64, overflow: Overflow, losses: Option<&Losses>) -> Timing {
    ringcast_with(iters, overflow, losses, true)
}

fn ringcast_with(iters: u64, overflow: Overflow, losses: Option<&Losses>, stats: bool) -> Timing {
    let (bus, mut publisher, mut subscriber) = ringcast_bus(overflow, stats);
    // Made once: a clone is one reference-count increment, as a real publisher would do.
    let topic = Topic::new("bench.publish").expect("topic");
    let timing = time_run(
        || {
            // Until `Closed`: losses at the very end are reported only then.
            let (mut received, mut lost) = (0, 0);
            loop {
                match subscriber.recv() {
                    Ok(delivery) => {
                        consume(delivery.payload());
                        received += 1;
                    }
                    Err(RecvError::Lagged(n)) if losses.is_some() => lost += n,
                    Err(RecvError::Lagged(n)) => panic!("ringcast {overflow:?} lost {n}"),
                    Err(RecvError::Closed) => break,
                }
            }
            assert_eq!(received + lost, iters, "ringcast {overflow:?}: events unaccounted for");
            if let Some(losses) = losses {
                losses.add(lost, iters);
            }
        },
        || {
            for i in 0..iters {
                publisher.publish(Event::new(topic.clone(), payload(i))).expect("publish");
            }
            // What tells the receiver it has everything: part of the real path, and cheap
            // (one RMW, one uncontended lock). Dropping the bus joins the dispatcher thread
            // after the clock stopped.
            publisher.close();
        },
    );
    drop(bus);
    timing
}

fn crossbeam_bounded(iters: u64) -> Timing {
    let (tx, rx) = crossbeam_channel::bounded::<Payload>(CAPACITY);
    time_run(
        || {
            for _ in 0..iters {
                consume(&rx.recv().expect("crossbeam recv"));
            }
        },
        || {
            for i in 0..iters {
                tx.send(payload(i)).expect("crossbeam send");
            }
        },
    )
}

fn tokio_broadcast(iters: u64) -> Timing {
    use tokio::sync::broadcast::{self, error::RecvError};
    let (tx, mut rx) = broadcast::channel::<Payload>(CAPACITY);
    time_run(
        || {
            // `blocking_recv`: the receiver is a plain thread, like the other rows'.
            let (mut accounted, mut lost) = (0, 0);
            while accounted < iters {
                match rx.blocking_recv() {
                    Ok(p) => {
                        consume(&p);
                        accounted += 1;
                    }
                    // The sender overwrote `n` messages this receiver had not read yet; it
                    // resumes at the oldest one still held. Counted and reported.
                    Err(RecvError::Lagged(n)) => {
                        lost += n;
                        accounted += n;
                    }
                    Err(RecvError::Closed) => panic!("tokio broadcast closed early"),
                }
            }
            TOKIO_LOSSES.add(lost, iters);
        },
        || {
            for i in 0..iters {
                // Fails only when no receiver is left.
                tx.send(payload(i)).expect("tokio send");
            }
        },
    )
}

type Impl = (&'static str, fn(u64) -> Timing);

const IMPLS: [Impl; 6] = [
    ("base", base),
    ("ringcast", |iters| ringcast(iters, Overflow::Block, None)),
    ("ringcast_drop_newest", |iters| {
        ringcast(iters, Overflow::DropNewest, Some(&RINGCAST_DROP_NEWEST_LOSSES))
    }),
    ("ringcast_stats_off", |iters| ringcast_with(iters, Overflow::Block, None, false)),
    ("crossbeam_bounded", crossbeam_bounded),
    ("tokio_broadcast", tokio_broadcast),
];

fn publish(c: &mut Criterion) {
    let mut group = c.benchmark_group("publish");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (name, run) in IMPLS {
        group.bench_function(BenchmarkId::new(name, 1), |b| {
            b.iter_custom(|iters| run(iters).delivered)
        });
    }
    group.finish();

    let mut group = c.benchmark_group("publish_send_side");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    for (name, run) in IMPLS.into_iter().filter(|(name, _)| *name != "ringcast_drop_newest") {
        group.bench_function(BenchmarkId::new(name, 1), |b| b.iter_custom(|iters| run(iters).sent));
    }
    group.finish();

    RINGCAST_DROP_NEWEST_LOSSES.report();
    TOKIO_LOSSES.report();
}

criterion_group! {
    name = benches;
    // Plots cost seconds per row and say nothing the numbers do not.
    config = Criterion::default().without_plots();
    targets = publish
}
criterion_main!(benches);
