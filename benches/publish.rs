//! Cost per publish with one subscriber draining on another thread, beside
//! `crossbeam_channel::bounded` send and `tokio::sync::broadcast` send, each with one
//! receiver draining on another thread.
//!
//! Every row is timed with `iter_custom` from just before the first send until the receiver
//! has taken the last of the `iters` events, so the time covers delivery (for shardcast: ring,
//! dispatcher shard, subscriber queue, wake-ups), not only the sender's side. Threads, buses
//! and channels are made before the clock starts and torn down after it stops. The second
//! group, `publish_send_side`, times the same runs up to the last send returning: with 4096
//! slots of buffering (8192 for shardcast: ring plus queue) the sender may finish before the
//! receiver, so that is a lower bound, shown for reference, not the headline. tokio's sender
//! never waits for its receiver, so its send-side row is its bare send cost.
//!
//! All three get the same 32-byte payload and capacity 4096: shardcast's ring and its
//! subscriber's queue, crossbeam's channel, tokio's broadcast channel. The machine's core
//! count matters: shardcast runs three threads (publisher, dispatcher shard, subscriber), the
//! others two.
//!
//! `shardcast_publish_to` publishes by topic text (`publish_to`); `shardcast_counted_topic`
//! clones a topic made after the process's intern table is full (a reference count per
//! publish, decremented by the thread that drops the event), beside `shardcast`, whose topic
//! is interned (a pointer copy).
//!
//! `shardcast_shared` is the `shardcast` row published through a [`SharedPublisher`] from the
//! one sending thread: the uncontended cost of its lock beside the exclusive `Publisher`.
//! The third group, `publish_4_threads`, has four sending threads: four clones of one
//! `SharedPublisher` beside four clones of one tokio broadcast `Sender`, one receiver each,
//! `iters` events in all (split evenly), timed until the receiver has taken the last one.
//!
//! Every receiver runs the harness's one receive loop (`shardcast_bench::recv`, the loop
//! `shardcast bench` runs too), and reads each payload whole.
//!
//! Losses are counted, never hidden:
//! - shardcast's subscriber uses `Overflow::Block`, lossless backpressure like crossbeam's
//!   full channel, so it must receive every event (a `Lagged` report panics). The
//!   `shardcast_drop_newest` row is the default policy: a full queue drops, the receiver
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
use shardcast::{
    Bus, Event, Overflow, Publisher, SharedPublisher, Subscriber, Subscription, Topic,
};
use shardcast_bench::recv::{receive_blocking, BlockingSource, Tally};

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

/// The receive loop of every row: consumes each payload; returns at `Closed`, or once
/// `received + lost` reaches `limit` (for a channel that never closes in the run).
fn drain<S: BlockingSource<Msg = Payload>>(rx: &mut S, limit: u64) -> Tally {
    receive_blocking(rx, limit, |p| {
        consume(&p);
        None
    })
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

static SHARDCAST_DROP_NEWEST_LOSSES: Losses = Losses::new("shardcast_drop_newest");
static TOKIO_LOSSES: Losses = Losses::new("tokio_broadcast");
static TOKIO_SENDERS_LOSSES: Losses = Losses::new("tokio_broadcast x4 senders");

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

fn shardcast_bus(
    overflow: Overflow,
    stats: bool,
) -> (Bus<Payload>, Publisher<Payload>, Subscriber<Payload>) {
    // `stats(false)` turns off per-topic counters and latency sampling (the parts of stats
    // with a per-event cost); the `shardcast_stats_off` row shows what they cost.
    let bus: Bus<Payload> =
        Bus::builder().ring_capacity(CAPACITY).dispatchers(1).stats(stats).build().expect("bus");
    let subscriber = bus
        .subscribe(Subscription::all().capacity(CAPACITY).overflow(overflow))
        .expect("subscribe");
    let publisher = bus.publisher().expect("publisher");
    (bus, publisher, subscriber)
}

fn shardcast(iters: u64, overflow: Overflow, losses: Option<&Losses>) -> Timing {
    shardcast_with(iters, overflow, losses, true, How::Interned)
}

/// How the `shardcast` rows name the topic of each publish.
#[derive(Clone, Copy, PartialEq)]
enum How {
    /// `Event::new(topic.clone(), ..)` with an interned topic (the first 4096 distinct
    /// topics of a process): the clone is a pointer copy.
    Interned,
    /// The same with a topic made after the intern table is full: the clone is a
    /// reference-count increment, and the event's drop (on the receiving thread) the
    /// decrement, on a line both threads write.
    Counted,
    /// `publish_to("bench.publish", ..)`: by text, compared with the last topic's.
    Text,
}

/// A topic past the intern table's limit: fills the table with fresh topics until one is
/// not interned, and returns that one. (Asking again for a name that was already tried
/// would find it interned, so every name is new; the interned rows' topic was made before,
/// so it stays interned.)
fn counted_topic() -> Topic {
    let interned = Topic::new("bench.publish").expect("topic");
    for i in 0..=Topic::INTERN_LIMIT {
        let topic = Topic::new(&format!("bench.fill.{i}")).expect("topic");
        if !topic.is_interned() {
            assert!(interned.is_interned() && Topic::new("bench.publish").unwrap().is_interned());
            return topic;
        }
    }
    panic!("{} new topics and the intern table is still not full", Topic::INTERN_LIMIT + 1);
}

fn shardcast_with(
    iters: u64,
    overflow: Overflow,
    losses: Option<&Losses>,
    stats: bool,
    how: How,
) -> Timing {
    let (bus, mut publisher, mut subscriber) = shardcast_bus(overflow, stats);
    // Made once and cloned per event, as a real publisher would do.
    let topic = if how == How::Counted {
        counted_topic()
    } else {
        Topic::new("bench.publish").expect("topic")
    };
    let timing = time_run(
        || {
            // Until `Closed`: losses at the very end are reported only then.
            let Tally { received, lost } = drain(&mut subscriber, u64::MAX);
            assert!(losses.is_some() || lost == 0, "shardcast {overflow:?} lost {lost}");
            assert_eq!(received + lost, iters, "shardcast {overflow:?}: events unaccounted for");
            if let Some(losses) = losses {
                losses.add(lost, iters);
            }
        },
        || {
            if how == How::Text {
                for i in 0..iters {
                    publisher.publish_to_blocking("bench.publish", payload(i)).expect("publish");
                }
            } else {
                for i in 0..iters {
                    publisher
                        .publish_blocking(Event::new(topic.clone(), payload(i)))
                        .expect("publish");
                }
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

/// The `shardcast` row through a `SharedPublisher` (one thread, so the lock is uncontended).
fn shardcast_shared(iters: u64) -> Timing {
    let bus: Bus<Payload> =
        Bus::builder().ring_capacity(CAPACITY).dispatchers(1).build().expect("bus");
    let mut subscriber = bus
        .subscribe(Subscription::all().capacity(CAPACITY).overflow(Overflow::Block))
        .expect("subscribe");
    let publisher = bus.shared_publisher().expect("shared publisher");
    let topic = Topic::new("bench.publish").expect("topic");
    let timing = time_run(
        || {
            let Tally { received, lost } = drain(&mut subscriber, u64::MAX);
            assert_eq!(lost, 0, "shardcast_shared lost {lost}");
            assert_eq!(received, iters, "shardcast_shared: events unaccounted for");
        },
        || {
            for i in 0..iters {
                publisher.publish_blocking(Event::new(topic.clone(), payload(i))).expect("publish");
            }
            publisher.close(); // the only clone: closes the bus, as in `shardcast`
        },
    );
    drop(bus);
    timing
}

fn crossbeam_bounded(iters: u64) -> Timing {
    let (tx, mut rx) = crossbeam_channel::bounded::<Payload>(CAPACITY);
    time_run(
        || {
            let Tally { received, .. } = drain(&mut rx, iters);
            assert_eq!(received, iters, "crossbeam closed early");
        },
        || {
            for i in 0..iters {
                tx.send(payload(i)).expect("crossbeam send");
            }
        },
    )
}

fn tokio_broadcast(iters: u64) -> Timing {
    use tokio::sync::broadcast;
    let (tx, mut rx) = broadcast::channel::<Payload>(CAPACITY);
    time_run(
        || {
            // `blocking_recv`: the receiver is a plain thread, like the other rows'. A
            // `Lagged(n)`: the sender overwrote `n` messages this receiver had not read yet;
            // it resumes at the oldest one still held. Counted and reported.
            let Tally { received, lost } = drain(&mut rx, iters);
            assert_eq!(received + lost, iters, "tokio broadcast closed early");
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

/// Sending threads in the `publish_4_threads` group.
const SENDERS: usize = 4;

/// This sender's share of `iters` (the first `iters % SENDERS` senders send one more).
fn share(iters: u64, sender: usize) -> u64 {
    iters / SENDERS as u64 + u64::from((sender as u64) < iters % SENDERS as u64)
}

/// Runs `recv` on its own thread and `send(i)` on `SENDERS` threads, all released by one
/// barrier; the clock starts after it. `sent` is when the last sender returned.
fn time_run_senders(recv: impl FnOnce() + Send, send: impl Fn(usize) + Sync) -> Timing {
    let ready = Barrier::new(SENDERS + 2);
    thread::scope(|s| {
        let receiver = s.spawn(|| {
            ready.wait();
            recv();
            Instant::now()
        });
        let senders: Vec<_> = (0..SENDERS)
            .map(|i| {
                let (ready, send) = (&ready, &send);
                s.spawn(move || {
                    ready.wait();
                    send(i);
                })
            })
            .collect();
        ready.wait();
        let start = Instant::now();
        for sender in senders {
            sender.join().expect("sender panicked");
        }
        let sent = start.elapsed();
        let delivered = receiver.join().expect("receiver panicked");
        Timing { sent, delivered: delivered.saturating_duration_since(start) }
    })
}

/// The harness alone, four senders: each builds its share of payloads, the last one to
/// finish raises the flag the receiver waits for.
fn base_senders(iters: u64) -> Timing {
    let left = AtomicU64::new(SENDERS as u64);
    time_run_senders(
        || {
            // Acquire: pairs with the AcqRel decrements of the senders.
            while left.load(Ordering::Acquire) != 0 {
                std::hint::spin_loop();
            }
        },
        |sender| {
            for i in 0..share(iters, sender) {
                black_box(payload(i));
            }
            left.fetch_sub(1, Ordering::AcqRel);
        },
    )
}

/// Four clones of one `SharedPublisher`, one `Block` subscriber: lossless.
fn shardcast_shared_senders(iters: u64) -> Timing {
    let bus: Bus<Payload> =
        Bus::builder().ring_capacity(CAPACITY).dispatchers(1).build().expect("bus");
    let mut subscriber = bus
        .subscribe(Subscription::all().capacity(CAPACITY).overflow(Overflow::Block))
        .expect("subscribe");
    let publisher: SharedPublisher<Payload> = bus.shared_publisher().expect("shared publisher");
    let clones: Vec<_> = (0..SENDERS).map(|_| Some(publisher.clone())).collect();
    drop(publisher);
    let clones: Vec<_> = clones.into_iter().map(std::sync::Mutex::new).collect();
    let topic = Topic::new("bench.publish").expect("topic");
    let timing = time_run_senders(
        || {
            let Tally { received, lost } = drain(&mut subscriber, u64::MAX);
            assert_eq!(lost, 0, "shardcast_shared x4 lost {lost}");
            assert_eq!(received, iters, "shardcast_shared x4: events unaccounted for");
        },
        |sender| {
            // Each sender owns its clone, so the last one to finish closes the bus. (One
            // uncontended std lock per sender per run: noise next to `iters` publishes.)
            let publisher = clones[sender].lock().expect("clone").take().expect("one take");
            for i in 0..share(iters, sender) {
                publisher.publish_blocking(Event::new(topic.clone(), payload(i))).expect("publish");
            }
            // The last clone's drop closes the bus: that is what tells the receiver.
            drop(publisher);
        },
    );
    drop(bus);
    timing
}

/// Four clones of one tokio broadcast `Sender`, one receiver.
fn tokio_broadcast_senders(iters: u64) -> Timing {
    use tokio::sync::broadcast;
    let (tx, mut rx) = broadcast::channel::<Payload>(CAPACITY);
    time_run_senders(
        || {
            // Overwritten before this receiver read them: counted, as above.
            let Tally { received, lost } = drain(&mut rx, iters);
            assert_eq!(received + lost, iters, "tokio broadcast closed early");
            TOKIO_SENDERS_LOSSES.add(lost, iters);
        },
        |sender| {
            let tx = tx.clone();
            for i in 0..share(iters, sender) {
                tx.send(payload(i)).expect("tokio send");
            }
        },
    )
}

type Impl = (&'static str, fn(u64) -> Timing);

const IMPLS: [Impl; 9] = [
    ("base", base),
    ("shardcast", |iters| shardcast(iters, Overflow::Block, None)),
    ("shardcast_shared", shardcast_shared),
    ("shardcast_drop_newest", |iters| {
        shardcast(iters, Overflow::DropNewest, Some(&SHARDCAST_DROP_NEWEST_LOSSES))
    }),
    ("shardcast_stats_off", |iters| {
        shardcast_with(iters, Overflow::Block, None, false, How::Interned)
    }),
    ("shardcast_publish_to", |iters| shardcast_with(iters, Overflow::Block, None, true, How::Text)),
    // Last of the shardcast rows: it fills the process's intern table.
    ("shardcast_counted_topic", |iters| {
        shardcast_with(iters, Overflow::Block, None, true, How::Counted)
    }),
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
    for (name, run) in IMPLS.into_iter().filter(|(name, _)| *name != "shardcast_drop_newest") {
        group.bench_function(BenchmarkId::new(name, 1), |b| b.iter_custom(|iters| run(iters).sent));
    }
    group.finish();

    let mut group = c.benchmark_group("publish_4_threads");
    group
        .throughput(Throughput::Elements(1))
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    let senders: [Impl; 3] = [
        ("base", base_senders),
        ("shardcast_shared", shardcast_shared_senders),
        ("tokio_broadcast", tokio_broadcast_senders),
    ];
    for (name, run) in senders {
        group.bench_function(BenchmarkId::new(name, SENDERS), |b| {
            b.iter_custom(|iters| run(iters).delivered)
        });
    }
    group.finish();

    SHARDCAST_DROP_NEWEST_LOSSES.report();
    TOKIO_LOSSES.report();
    TOKIO_SENDERS_LOSSES.report();
}

criterion_group! {
    name = benches;
    // Plots cost seconds per row and say nothing the numbers do not.
    config = Criterion::default().without_plots();
    targets = publish
}
criterion_main!(benches);
