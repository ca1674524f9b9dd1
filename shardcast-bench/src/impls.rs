//! The competitors: one function per library, each running one [`Spec`] end to end and
//! handing back raw timestamps.
//!
//! Every implementation publishes the same [`Msg`] from one publisher thread and delivers
//! it to the same receivers: subscriber `i` wants topic `i % spec.topics`, event `seq` has
//! topic `seq % spec.topics`. Receivers do the minimum: read the clock and push
//! `(seq, nanos)` into a preallocated `Vec` ([`Rec::record`]); the arithmetic (fan-out
//! completion, percentiles, losses) happens afterwards, in the CLI's `bench/stats.rs`.
//! Every channel's receivers run the one receive loop of [`crate::recv`]
//! ([`Rec::receive_blocking`], [`Rec::receive_async`]).
//!
//! Receivers run as tokio tasks on a multi-thread runtime ([`Mode::Async`]) or as OS
//! threads ([`Mode::Threads`]), the same for every library that has an async API; the two
//! that have none (crossbeam-channel, disruptor) run OS threads in both modes, and say so
//! in their function.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use crate::cpu::process_cpu_ns;
use crate::recv::{receive_async, receive_blocking, AsyncSource, BlockingSource, Source};

/// The payload: small and `Copy`, so every library moves the same 16 bytes. Competitors
/// filter on `topic` with one integer compare, the cheapest filter there is; shardcast
/// matches a real `Topic` against a `Pattern` (cached per topic by its shards).
#[derive(Clone, Copy, Debug, Default)]
pub struct Msg {
    pub seq: u64,
    pub topic: u32,
}

/// How receivers run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Tokio tasks on a multi-thread runtime (one worker per core).
    Async,
    /// One OS thread per receiver.
    Threads,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Async => "async",
            Mode::Threads => "threads",
        }
    }
}

/// The libraries under test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Impl {
    TokioBroadcast,
    WorkerMpsc,
    Crossbeam,
    AsyncBroadcast,
    Disruptor,
    Shardcast,
    /// shardcast with the buffering tokio broadcast gets in saturation runs: a
    /// `DropNewest` queue that holds the whole run, so no backpressure at all. Beside the
    /// `Block` row it separates the cost of the data path from the cost of backpressure.
    ShardcastBigQueues,
    /// Not a library: the harness floor (the `floor` function below).
    Floor,
}

impl Impl {
    pub const ALL: [Impl; 8] = [
        Impl::TokioBroadcast,
        Impl::WorkerMpsc,
        Impl::Crossbeam,
        Impl::AsyncBroadcast,
        Impl::Disruptor,
        Impl::Shardcast,
        Impl::ShardcastBigQueues,
        Impl::Floor,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Impl::TokioBroadcast => "tokio-broadcast",
            Impl::WorkerMpsc => "broadcast+worker+mpsc",
            Impl::Crossbeam => "crossbeam-fanout",
            Impl::AsyncBroadcast => "async-broadcast",
            Impl::Disruptor => "disruptor",
            Impl::Shardcast => "shardcast",
            Impl::ShardcastBigQueues => "shardcast (big queues)",
            Impl::Floor => "floor (no library)",
        }
    }

    /// The disruptor has no per-consumer filtering: every handler sees every event, so it
    /// only runs the scenarios where every subscriber wants every event.
    ///
    /// The floor does not run with the slow subscriber: nothing bounds its lag, so the run
    /// would last as long as the slow subscriber takes to read every event.
    ///
    /// `shardcast (big queues)` runs in saturation only (where the default row uses `Block`).
    pub fn supports(self, spec: &Spec) -> bool {
        match self {
            Impl::Disruptor => spec.topics == 1,
            Impl::ShardcastBigQueues => spec.lossless && !spec.slow,
            Impl::Floor => !spec.slow,
            _ => true,
        }
    }

    /// What the library does to a subscriber that cannot keep up (for the `slow` report).
    pub fn slow_policy(self) -> &'static str {
        match self {
            Impl::TokioBroadcast => "ring overwrites; slow receiver sees Lagged(n)",
            Impl::WorkerMpsc => "worker try_send fails; event dropped for it",
            Impl::Crossbeam => "publisher try_send fails; event dropped for it",
            Impl::AsyncBroadcast => "overflow evicts oldest; slow receiver sees Overflowed(n)",
            Impl::Disruptor => "no drops: ring fills, publisher waits for it",
            Impl::Shardcast => "its queue drops newest (DropNewest); Lagged(n)",
            Impl::ShardcastBigQueues => "not run: saturation only",
            Impl::Floor => "not run: nothing bounds its lag",
        }
    }
}

/// One run.
#[derive(Clone, Debug)]
pub struct Spec {
    /// Subscribers that keep up.
    pub subscribers: usize,
    /// Add one more subscriber (the last index) that sleeps [`SLOW_DELAY`] per event.
    pub slow: bool,
    /// Distinct topics; 1 means every subscriber wants every event.
    pub topics: u32,
    pub events: u64,
    /// Events/s; `None` publishes as fast as the library lets it (saturation).
    pub rate: Option<u64>,
    pub mode: Mode,
    /// Size queues (or use backpressure) so that nothing is lost: saturation runs.
    pub lossless: bool,
    /// Per-subscriber queue capacity when not lossless (each library's bounded queue).
    pub queue: usize,
    /// shardcast dispatcher shards.
    pub dispatchers: usize,
}

/// How long the slow subscriber takes per event.
pub const SLOW_DELAY: Duration = Duration::from_millis(1);

impl Spec {
    pub fn receivers(&self) -> usize {
        self.subscribers + usize::from(self.slow)
    }

    pub fn wants(&self, sub: usize, seq: u64) -> bool {
        sub as u64 % u64::from(self.topics) == seq % u64::from(self.topics)
    }

    fn is_slow(&self, sub: usize) -> bool {
        self.slow && sub == self.subscribers
    }

    /// Expected deliveries to `sub`.
    pub fn expected(&self, sub: usize) -> u64 {
        let t = u64::from(self.topics);
        let topic = sub as u64 % t;
        self.events / t + u64::from(topic < self.events % t)
    }

    /// A queue that can hold every event this subscriber will get: a lossless queue for
    /// libraries without backpressure (tokio broadcast and mpsc via `try_send`,
    /// async-broadcast with overflow on).
    fn lossless_capacity(&self) -> usize {
        (self.events as usize).max(2).next_power_of_two()
    }
}

/// The harness clock: the TSC through `quanta`, calibrated once per process, read as
/// nanoseconds since a run's origin. On this project's VM `clock_gettime` through the vDSO
/// costs about three times a TSC read, and every receiver reads the clock once per
/// delivery: a cheaper clock is less harness in every row's numbers. quanta falls back to
/// the OS clock where the TSC is not reliable.
#[derive(Clone, Copy, Debug)]
pub struct Origin {
    start: u64,
}

fn clock() -> &'static quanta::Clock {
    static CLOCK: std::sync::OnceLock<quanta::Clock> = std::sync::OnceLock::new();
    CLOCK.get_or_init(quanta::Clock::new)
}

impl Origin {
    pub fn now() -> Origin {
        Origin { start: clock().raw() }
    }

    /// Nanoseconds since this origin.
    #[inline]
    pub fn elapsed_ns(self) -> u64 {
        let clock = clock();
        clock.delta_as_nanos(self.start, clock.raw())
    }
}

/// What one subscriber saw.
#[derive(Debug, Default)]
pub struct Rec {
    pub sub: usize,
    /// `(seq, nanos since origin)` per receive, in receive order.
    pub got: Vec<(u64, u64)>,
    /// Losses the library reported to this subscriber (Lagged/Overflowed/drops).
    pub reported_lost: u64,
    /// The slow subscriber: sleeps [`SLOW_DELAY`] after each event.
    pub slow: bool,
    pub origin: Option<Origin>,
}

/// A vector with room for `n` items whose every page is already faulted in: the timed
/// window then never pays the first touch of a page, and no row depends on what the row
/// before it left in the allocator. (`Vec::with_capacity` alone only reserves address
/// space; zeroes could come from the OS's zero page, so the fill is not zero.)
pub fn prefaulted<T: Copy>(n: usize, fill: T) -> Vec<T> {
    let mut v = vec![fill; n];
    std::hint::black_box(&mut v);
    v.clear();
    v
}

impl Rec {
    pub fn new(spec: &Spec, sub: usize, origin: Origin) -> Rec {
        Rec {
            sub,
            got: prefaulted(spec.expected(sub) as usize, (u64::MAX, u64::MAX)),
            reported_lost: 0,
            slow: spec.is_slow(sub),
            origin: Some(origin),
        }
    }

    /// The whole receive-side work: one clock read and one push into reserved space.
    #[inline]
    pub fn record(&mut self, seq: u64) {
        let ns = self.origin.map_or(0, |o| o.elapsed_ns());
        self.got.push((seq, ns));
    }

    /// What to do with one message: record it if this subscriber wants it (`filters`: the
    /// library hands every receiver every message, as broadcast channels do; otherwise the
    /// library filtered already), then the slow subscriber's pause.
    #[inline]
    fn take(&mut self, spec: &Spec, filters: bool, m: Msg) -> Option<Duration> {
        if filters && !spec.wants(self.sub, m.seq) {
            return None;
        }
        self.record(m.seq);
        self.slow.then_some(SLOW_DELAY)
    }

    /// The receive side of every channel's row, on a thread: the one receive loop
    /// ([`receive_blocking`]) until `Closed`, adding what the library reports lost.
    pub fn receive_blocking<S: BlockingSource<Msg = Msg>>(
        &mut self,
        src: &mut S,
        spec: &Spec,
        filters: bool,
    ) {
        let tally = receive_blocking(src, u64::MAX, |m| self.take(spec, filters, m));
        self.reported_lost += tally.lost;
    }

    /// [`Rec::receive_blocking`] in a tokio task.
    pub async fn receive_async<S: AsyncSource<Msg = Msg>>(
        &mut self,
        src: &mut S,
        spec: &Spec,
        filters: bool,
    ) {
        let tally = receive_async(src, u64::MAX, |m| self.take(spec, filters, m)).await;
        self.reported_lost += tally.lost;
    }
}

/// A run's raw result.
#[derive(Debug)]
pub struct Outcome {
    /// Nanos since origin, taken just before each publish, indexed by seq.
    pub published: Vec<u64>,
    /// One per receiver, indexed by subscriber.
    pub recs: Vec<Rec>,
    /// Process CPU time (user + system, every thread) from just before the first publish
    /// until the last receiver finished: the publisher, the receivers and whatever threads
    /// the library runs, but not the setup (runtime, subscriptions, prefaulted records)
    /// nor the teardown. `None` where the harness does not measure it (`bridge`, whose
    /// nats-server is another process).
    pub cpu_ns: Option<u64>,
}

/// A run's publishing side: the publish stamps, and the process CPU clock read just before
/// the publisher started (see [`Outcome::cpu_ns`]).
struct Published {
    stamps: Vec<u64>,
    cpu_start: u64,
}

/// [`publish_loop`], reading the CPU clock first: receivers are all set up and waiting by
/// the time every implementation calls it, so the row's CPU starts here.
fn publish_counted<P: FnMut(Msg) + Send>(spec: &Spec, origin: Origin, publish: P) -> Published {
    let cpu_start = process_cpu_ns();
    Published { stamps: publish_loop(spec, origin, publish), cpu_start }
}

/// Runs `spec` against `imp`.
pub fn run(imp: Impl, spec: &Spec) -> Outcome {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_time().build().expect("runtime");
    let origin = Origin::now();
    let mut rxs = Receivers::new(spec.mode, &rt);
    let Published { stamps, cpu_start } = match imp {
        Impl::TokioBroadcast => tokio_broadcast(spec, origin, &mut rxs),
        Impl::WorkerMpsc => worker_mpsc(spec, origin, &mut rxs, &rt),
        Impl::Crossbeam => crossbeam(spec, origin, &mut rxs),
        Impl::AsyncBroadcast => async_bcast(spec, origin, &mut rxs),
        Impl::Disruptor => return disruptor_run(spec, origin),
        Impl::Shardcast => shardcast_run(spec, origin, &mut rxs, false),
        Impl::ShardcastBigQueues => shardcast_run(spec, origin, &mut rxs, true),
        Impl::Floor => floor(spec, origin, &mut rxs),
    };
    let mut recs = rxs.join();
    // The last receiver is done: the row's work is over (what follows is sorting and
    // dropping).
    let cpu_ns = process_cpu_ns().saturating_sub(cpu_start);
    recs.sort_by_key(|r| r.sub);
    Outcome { published: stamps, recs, cpu_ns: Some(cpu_ns) }
}

/// Stack size of every receiver thread: the receive loop is shallow, and with the default
/// 2 MiB a run of 8 192 thread receivers reserves 16 GiB of address space.
pub const RECEIVER_STACK: usize = 128 * 1024;

/// Receiver tasks or threads, joined at the end of the run.
struct Receivers<'rt> {
    mode: Mode,
    rt: &'rt tokio::runtime::Runtime,
    tasks: Vec<tokio::task::JoinHandle<Rec>>,
    threads: Vec<thread::JoinHandle<Rec>>,
    /// Dropped only after every receiver finished (a shardcast `Bus` closes on drop).
    hold: Vec<Box<dyn std::any::Any>>,
}

impl<'rt> Receivers<'rt> {
    fn new(mode: Mode, rt: &'rt tokio::runtime::Runtime) -> Self {
        Receivers { mode, rt, tasks: Vec::new(), threads: Vec::new(), hold: Vec::new() }
    }

    fn spawn_async(&mut self, f: impl std::future::Future<Output = Rec> + Send + 'static) {
        self.tasks.push(self.rt.spawn(f));
    }

    fn spawn_thread(&mut self, f: impl FnOnce() -> Rec + Send + 'static) {
        let thread = thread::Builder::new()
            .name("bench-receiver".into())
            .stack_size(RECEIVER_STACK)
            .spawn(f)
            .expect("spawn a receiver thread (thread limit: ulimit -u, kernel.threads-max)");
        self.threads.push(thread);
    }

    /// Spawns a receiver that runs the one receive loop on `src`, in the spec's mode.
    fn spawn_loop<S>(&mut self, spec: &Spec, mut rec: Rec, mut src: S, filters: bool)
    where
        S: Source<Msg = Msg> + BlockingSource + AsyncSource,
    {
        let spec = spec.clone();
        match self.mode {
            Mode::Async => self.spawn_async(async move {
                rec.receive_async(&mut src, &spec, filters).await;
                rec
            }),
            Mode::Threads => self.spawn_thread(move || {
                rec.receive_blocking(&mut src, &spec, filters);
                rec
            }),
        }
    }

    /// For libraries with only a blocking API: a plain OS thread in both modes. Not tokio's
    /// blocking pool (what a tokio application might reach for first): the pool stops at
    /// 512 threads, so from 512 receivers on the rest wait in its queue for a thread
    /// that never frees (each receiver runs until the channel closes, and the publisher
    /// blocks on their full queues): the row deadlocked at N = 1 024 (issue 28).
    fn spawn_blocking(&mut self, f: impl FnOnce() -> Rec + Send + 'static) {
        self.spawn_thread(f);
    }

    fn join(self) -> Vec<Rec> {
        let mut recs: Vec<Rec> =
            self.threads.into_iter().map(|t| t.join().expect("receiver panicked")).collect();
        let tasks = self.tasks;
        recs.extend(self.rt.block_on(async move {
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.expect("receiver task panicked"));
            }
            out
        }));
        drop(self.hold);
        recs
    }
}

/// Publishes `spec.events` messages from a new thread, paced at `spec.rate` if set;
/// `publish` returns once the library accepted the message. Returns the publish
/// timestamps (taken just before each publish).
pub fn publish_loop<P: FnMut(Msg) + Send>(spec: &Spec, origin: Origin, mut publish: P) -> Vec<u64> {
    let events = spec.events;
    let topics = u64::from(spec.topics);
    let interval = spec.rate.map(|r| 1e9 / r.max(1) as f64);
    thread::scope(|s| {
        s.spawn(move || {
            let mut stamps = prefaulted(events as usize, u64::MAX);
            let start = origin.elapsed_ns();
            for seq in 0..events {
                if let Some(interval) = interval {
                    let due = start + (seq as f64 * interval) as u64;
                    // Yield rather than sleep: sleeps are ~50 us on Linux, far longer than
                    // the 10 us between events at the default rate.
                    while origin.elapsed_ns() < due {
                        thread::yield_now();
                    }
                }
                stamps.push(origin.elapsed_ns());
                publish(Msg { seq, topic: (seq % topics) as u32 });
            }
            stamps
        })
        .join()
        .expect("publisher panicked")
    })
}

/// Competitor 1: `tokio::sync::broadcast`: every receiver sees every event and filters for itself.
fn tokio_broadcast(spec: &Spec, origin: Origin, rxs: &mut Receivers<'_>) -> Published {
    // Capacity is shared by all receivers; in saturation it holds the whole run so no
    // receiver lags. Paced runs use the same bounded size as every other library's queue.
    let cap = if spec.lossless { spec.lossless_capacity() } else { spec.queue };
    let (tx, _) = tokio::sync::broadcast::channel::<Msg>(cap);
    for sub in 0..spec.receivers() {
        rxs.spawn_loop(spec, Rec::new(spec, sub, origin), tx.subscribe(), true);
    }
    // `send` only fails with no receivers, and there always are some here.
    publish_counted(spec, origin, move |m| {
        let _ = tx.send(m);
    })
}

/// One subscriber as the worker sees it.
struct Slot {
    topic: u32,
    all: bool,
    tx: tokio::sync::mpsc::Sender<Msg>,
}

/// Competitor 2: The pattern shardcast replaces: one broadcast channel into one worker task, which
/// reads the subscriber list under a `tokio::sync::RwLock`, applies each filter and
/// `try_send`s into a bounded mpsc per subscriber (a full queue drops the event for that
/// subscriber, so one slow subscriber cannot stall the worker).
fn worker_mpsc(
    spec: &Spec,
    origin: Origin,
    rxs: &mut Receivers<'_>,
    rt: &tokio::runtime::Runtime,
) -> Published {
    use tokio::sync::broadcast::error::RecvError;
    use tokio::sync::mpsc::error::TrySendError;
    // Saturation: both the broadcast and the mpsc queues hold the whole run (try_send never
    // waits, so only capacity makes it lossless).
    let cap = if spec.lossless { spec.lossless_capacity() } else { spec.queue };
    let (tx, mut brx) = tokio::sync::broadcast::channel::<Msg>(cap);
    let mut slots = Vec::new();
    let dropped: Arc<Vec<AtomicU64>> =
        Arc::new((0..spec.receivers()).map(|_| AtomicU64::new(0)).collect());
    for sub in 0..spec.receivers() {
        let (mtx, mut mrx) = tokio::sync::mpsc::channel::<Msg>(cap);
        slots.push(Slot {
            topic: (sub as u64 % u64::from(spec.topics)) as u32,
            all: spec.topics == 1,
            tx: mtx,
        });
        let mut rec = Rec::new(spec, sub, origin);
        let dropped = Arc::clone(&dropped);
        let spec = spec.clone();
        // The worker filtered: everything in the mpsc is wanted. Its drops are counted on
        // the sending side, read once the mpsc closed.
        match spec.mode {
            Mode::Async => rxs.spawn_async(async move {
                rec.receive_async(&mut mrx, &spec, false).await;
                rec.reported_lost = dropped[sub].load(Ordering::Relaxed);
                rec
            }),
            Mode::Threads => rxs.spawn_thread(move || {
                rec.receive_blocking(&mut mrx, &spec, false);
                rec.reported_lost = dropped[sub].load(Ordering::Relaxed);
                rec
            }),
        }
    }
    let slots = Arc::new(tokio::sync::RwLock::new(slots));
    let fan_out = move |slots: &[Slot], m: Msg, lagged: u64| {
        for (i, slot) in slots.iter().enumerate() {
            // The worker's own lag loses the events for everybody.
            if lagged > 0 {
                dropped[i].fetch_add(lagged, Ordering::Relaxed);
            }
            if slot.all || slot.topic == m.topic {
                if let Err(TrySendError::Full(_)) = slot.tx.try_send(m) {
                    dropped[i].fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    };
    let worker_done = match spec.mode {
        Mode::Async => {
            let h = rt.spawn(async move {
                let mut lagged = 0;
                loop {
                    match brx.recv().await {
                        Ok(m) => fan_out(&slots.read().await, m, std::mem::take(&mut lagged)),
                        Err(RecvError::Lagged(n)) => lagged += n,
                        Err(RecvError::Closed) => break,
                    }
                }
                // Dropping `slots` closes every mpsc, ending the receivers.
            });
            Box::new(move || rt.block_on(h).expect("worker panicked")) as Box<dyn FnOnce()>
        }
        Mode::Threads => {
            let h = thread::spawn(move || {
                let mut lagged = 0;
                loop {
                    match brx.blocking_recv() {
                        Ok(m) => fan_out(&slots.blocking_read(), m, std::mem::take(&mut lagged)),
                        Err(RecvError::Lagged(n)) => lagged += n,
                        Err(RecvError::Closed) => break,
                    }
                }
            });
            Box::new(move || h.join().expect("worker panicked")) as Box<dyn FnOnce()>
        }
    };
    let published = publish_counted(spec, origin, move |m| {
        let _ = tx.send(m);
    });
    worker_done();
    published
}

/// Competitor 3: crossbeam-channel fan-out: the publisher filters and sends into one bounded channel
/// per subscriber. crossbeam has no async API, so its receivers are OS threads in both
/// modes (see [`Receivers::spawn_blocking`]).
fn crossbeam(spec: &Spec, origin: Origin, rxs: &mut Receivers<'_>) -> Published {
    use crossbeam_channel::TrySendError;
    let mut txs = Vec::new();
    let dropped: Arc<Vec<AtomicU64>> =
        Arc::new((0..spec.receivers()).map(|_| AtomicU64::new(0)).collect());
    for sub in 0..spec.receivers() {
        // Saturation: blocking `send` is crossbeam's lossless mode (backpressure), so the
        // queue keeps the paced runs' size instead of holding the whole run.
        let (tx, mut rx) = crossbeam_channel::bounded::<Msg>(spec.queue);
        txs.push((sub, tx));
        let mut rec = Rec::new(spec, sub, origin);
        let dropped = Arc::clone(&dropped);
        let spec = spec.clone();
        // The publisher filtered: everything in the channel is wanted.
        rxs.spawn_blocking(move || {
            rec.receive_blocking(&mut rx, &spec, false);
            rec.reported_lost = dropped[sub].load(Ordering::Relaxed);
            rec
        });
    }
    let spec2 = spec.clone();
    publish_counted(spec, origin, move |m| {
        for (sub, tx) in &txs {
            if !spec2.wants(*sub, m.seq) {
                continue;
            }
            if spec2.lossless {
                let _ = tx.send(m);
            } else if let Err(TrySendError::Full(_)) = tx.try_send(m) {
                // Paced runs: a publisher must not wait for one slow consumer.
                dropped[*sub].fetch_add(1, Ordering::Relaxed);
            }
        }
    })
}

/// Competitor 4: async-broadcast with overflow on: a full channel evicts its oldest message, and a
/// receiver that missed it sees `Overflowed(n)`. Receivers filter for themselves.
fn async_bcast(spec: &Spec, origin: Origin, rxs: &mut Receivers<'_>) -> Published {
    let cap = if spec.lossless { spec.lossless_capacity() } else { spec.queue };
    let (mut tx, rx0) = async_broadcast::broadcast::<Msg>(cap);
    tx.set_overflow(true);
    let mut receivers = vec![rx0];
    while receivers.len() < spec.receivers() {
        receivers.push(receivers[0].new_receiver());
    }
    for (sub, rx) in receivers.into_iter().enumerate() {
        rxs.spawn_loop(spec, Rec::new(spec, sub, origin), rx, true);
    }
    // With overflow on, `try_broadcast` never reports Full: it evicts and returns the
    // evicted message.
    publish_counted(spec, origin, move |m| {
        let _ = tx.try_broadcast(m);
    })
}

/// Competitor 5: disruptor: one event handler per subscriber on the ring, each on a thread the
/// disruptor manages (it has no async API, so both modes run it the same way). Lossless
/// by design: a full ring makes the publisher wait for the slowest handler.
fn disruptor_run(spec: &Spec, origin: Origin) -> Outcome {
    use disruptor::{BusySpinWithSpinLoopHint, Sequence, Sleep};
    // Handlers write receive times into their own preallocated slots (they run inside the
    // disruptor, so a `Vec` could not be handed back); the producer's drop joins them.
    let slots: Vec<Arc<Vec<AtomicU64>>> = (0..spec.receivers())
        .map(|_| Arc::new((0..spec.events).map(|_| AtomicU64::new(u64::MAX)).collect()))
        .collect();
    let handler = |sub: usize| {
        let slot = Arc::clone(&slots[sub]);
        let slow = spec.is_slow(sub);
        move |m: &Msg, _: Sequence, _: bool| {
            slot[m.seq as usize].store(origin.elapsed_ns(), Ordering::Relaxed);
            if slow {
                thread::sleep(SLOW_DELAY);
            }
        }
    };
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    // The ring: same size as shardcast's default ring.
    const RING: usize = 4096;
    let Published { stamps, cpu_start } = if spec.receivers() < cores {
        // Its documented low-latency setup: a spinning handler per core.
        disruptor_publish(spec, origin, RING, BusySpinWithSpinLoopHint, &handler)
    } else {
        // More handlers than cores: spinning handlers would starve the publisher and each
        // other, so use the library's sleeping strategy (1 us asked, ~50 us slept).
        disruptor_publish(spec, origin, RING, Sleep::new(Duration::from_micros(1)), &handler)
    };
    // `disruptor_publish` joined the handlers: the row's work is over. Collecting the
    // slots below is the harness's, not the library's.
    let cpu_ns = process_cpu_ns().saturating_sub(cpu_start);
    let recs = slots
        .iter()
        .enumerate()
        .map(|(sub, slot)| {
            let mut rec = Rec::new(spec, sub, origin);
            rec.got = (0..spec.events)
                .filter_map(|seq| {
                    let ns = slot[seq as usize].load(Ordering::Relaxed);
                    (ns != u64::MAX).then_some((seq, ns))
                })
                .collect();
            rec
        })
        .collect();
    Outcome { published: stamps, recs, cpu_ns: Some(cpu_ns) }
}

fn disruptor_publish<W, H>(
    spec: &Spec,
    origin: Origin,
    ring: usize,
    wait: W,
    handler: &dyn Fn(usize) -> H,
) -> Published
where
    W: disruptor::wait_strategies::WaitStrategy + 'static,
    H: FnMut(&Msg, disruptor::Sequence, bool) + Send + 'static,
{
    use disruptor::Producer;
    let builder =
        disruptor::build_single_producer(ring, Msg::default, wait).handle_events_with(handler(0));
    // The builder's type changes from one consumer to many, so N = 1 is its own branch.
    if spec.receivers() == 1 {
        let mut p = builder.build();
        let published = publish_counted(spec, origin, |m| p.publish(|e| *e = m));
        drop(p); // Joins the handler threads: every event is handled after this.
        published
    } else {
        let mut b = builder.handle_events_with(handler(1));
        for sub in 2..spec.receivers() {
            b = b.handle_events_with(handler(sub));
        }
        let mut p = b.build();
        let published = publish_counted(spec, origin, |m| p.publish(|e| *e = m));
        drop(p);
        published
    }
}

/// Competitor 6: shardcast: default configuration; `spec.dispatchers` shards (default 1,
/// the library's default).
/// Saturation runs subscribe with `Overflow::Block` (its lossless mode: backpressure
/// through the ring, like crossbeam's `send`) and the default 1024-event queue; paced runs
/// use the default `DropNewest` and `spec.queue`.
fn shardcast_run(spec: &Spec, origin: Origin, rxs: &mut Receivers<'_>, big: bool) -> Published {
    use shardcast::{Bus, Event, Overflow, Subscription, Topic};
    let bus: Bus<Msg> =
        Bus::builder().dispatchers(spec.dispatchers).build().expect("valid bus config");
    let topics: Vec<Topic> = (0..spec.topics)
        .map(|t| Topic::new(&format!("bench.t{t}")).expect("valid topic"))
        .collect();
    for sub in 0..spec.receivers() {
        let subscription = if spec.topics == 1 {
            Subscription::all()
        } else {
            Subscription::to(&format!("bench.t{}", sub as u64 % u64::from(spec.topics)))
                .expect("valid pattern")
        };
        let (overflow, capacity) = if big {
            (Overflow::DropNewest, spec.lossless_capacity())
        } else if spec.lossless {
            (Overflow::Block, 1024)
        } else {
            (Overflow::DropNewest, spec.queue)
        };
        let s =
            bus.subscribe(subscription.capacity(capacity).overflow(overflow)).expect("subscribe");
        // The shards filtered (by pattern): everything delivered is wanted.
        rxs.spawn_loop(spec, Rec::new(spec, sub, origin), s, false);
    }
    let mut publisher = bus.publisher().expect("publisher");
    let published = publish_counted(spec, origin, |m| {
        let topic = topics[m.topic as usize].clone();
        publisher.publish_blocking(Event::new(topic, m)).expect("bus open");
    });
    // Closing the publisher lets the shards deliver what is in the ring, then receivers see
    // Closed. (`bus.close()` now would drop a `Block` push still waiting.)
    publisher.close();
    rxs.hold.push(Box::new(bus));
    published
}

/// Not a competitor: the harness floor. The publisher stores each `seq` into a
/// preallocated array and bumps a counter (Release); receivers read whatever is published
/// (Acquire), filter and record it like every competitor's receivers, and yield when caught
/// up. No bound, no reclamation, no wake-ups: no real channel does less per delivery, so
/// this row's deliveries/s is the most any library can show in this harness on this
/// machine, and its ratio to tokio the largest ratio any library can reach here.
fn floor(spec: &Spec, origin: Origin, rxs: &mut Receivers<'_>) -> Published {
    /// The published events, and how many there are.
    struct Board {
        seqs: Vec<AtomicU64>,
        published: AtomicU64,
    }

    /// One receiver's side: records what was published since `next`; `false` when there
    /// was nothing new (the caller yields). The floor never runs with the slow subscriber
    /// ([`Impl::supports`]), so there is no per-event sleep to await here.
    struct Reader {
        board: Arc<Board>,
        spec: Spec,
        sub: usize,
        next: u64,
        rec: Rec,
    }

    impl Reader {
        fn done(&self) -> bool {
            self.next >= self.spec.events
        }

        fn catch_up(&mut self) -> bool {
            // Acquire: pairs with the publisher's Release store of `published`.
            let end = self.board.published.load(Ordering::Acquire);
            for i in self.next..end {
                // Relaxed: published by the Acquire load of `published` above.
                let seq = self.board.seqs[i as usize].load(Ordering::Relaxed);
                if self.spec.wants(self.sub, seq) {
                    self.rec.record(seq);
                }
            }
            let progressed = end > self.next;
            self.next = end;
            progressed
        }
    }

    let board = Arc::new(Board {
        // A non-zero fill: every page faulted in before the clock starts (see `prefaulted`).
        seqs: (0..spec.events).map(|_| AtomicU64::new(u64::MAX)).collect(),
        published: AtomicU64::new(0),
    });
    for sub in 0..spec.receivers() {
        let rec = Rec::new(spec, sub, origin);
        let mut reader =
            Reader { board: Arc::clone(&board), spec: spec.clone(), sub, next: 0, rec };
        match spec.mode {
            Mode::Async => rxs.spawn_async(async move {
                while !reader.done() {
                    if !reader.catch_up() {
                        tokio::task::yield_now().await;
                    }
                }
                reader.rec
            }),
            Mode::Threads => rxs.spawn_thread(move || {
                while !reader.done() {
                    if !reader.catch_up() {
                        thread::yield_now();
                    }
                }
                reader.rec
            }),
        }
    }
    publish_counted(spec, origin, move |m| {
        // Relaxed: published by the Release store of `published` right after.
        board.seqs[m.seq as usize].store(m.seq, Ordering::Relaxed);
        board.published.store(m.seq + 1, Ordering::Release);
    })
}

/// An idle run's result: the process CPU time spent over a quiet window.
#[derive(Clone, Copy, Debug)]
pub struct Idle {
    pub cpu_ns: u64,
    /// The window's wall time, measured (at least the one asked for).
    pub window_ns: u64,
}

impl Idle {
    /// CPU time as a percentage of one core over the window.
    pub fn percent_of_a_core(&self) -> f64 {
        if self.window_ns == 0 {
            0.0
        } else {
            self.cpu_ns as f64 * 100.0 / self.window_ns as f64
        }
    }
}

/// The implementations [`idle`] runs: shardcast and its baseline.
pub fn supports_idle(imp: Impl) -> bool {
    matches!(imp, Impl::TokioBroadcast | Impl::Shardcast)
}

/// What an implementation costs with nothing to do: `spec.receivers()` receivers set up and
/// waiting (the usual receive loop, in `spec.mode`) and no publish at all. After `warmup`
/// (threads started, first parks done), reads the process CPU over `window`, then closes
/// the channel and joins the receivers. A library whose threads spin or poll on a timer
/// shows here; one that parks costs nothing. `None` for an implementation without an
/// idle row ([`supports_idle`]).
pub fn idle(imp: Impl, spec: &Spec, warmup: Duration, window: Duration) -> Option<Idle> {
    if !supports_idle(imp) {
        return None;
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_time().build().expect("runtime");
    let origin = Origin::now();
    let mut rxs = Receivers::new(spec.mode, &rt);
    // The window runs while the sender side is still held, so nothing closes early.
    let quiet = || {
        thread::sleep(warmup);
        let (cpu, wall) = (process_cpu_ns(), Origin::now());
        thread::sleep(window);
        Idle { cpu_ns: process_cpu_ns().saturating_sub(cpu), window_ns: wall.elapsed_ns() }
    };
    let result = match imp {
        Impl::TokioBroadcast => {
            let (tx, _) = tokio::sync::broadcast::channel::<Msg>(spec.queue);
            for sub in 0..spec.receivers() {
                rxs.spawn_loop(spec, Rec::new(spec, sub, origin), tx.subscribe(), true);
            }
            let result = quiet();
            drop(tx); // Receivers see Closed.
            result
        }
        Impl::Shardcast => {
            use shardcast::{Bus, Overflow, Subscription};
            let bus: Bus<Msg> =
                Bus::builder().dispatchers(spec.dispatchers).build().expect("valid bus config");
            for sub in 0..spec.receivers() {
                let subscription =
                    Subscription::all().capacity(spec.queue).overflow(Overflow::DropNewest);
                let s = bus.subscribe(subscription).expect("subscribe");
                rxs.spawn_loop(spec, Rec::new(spec, sub, origin), s, false);
            }
            let result = quiet();
            // Not in async context (this is the calling thread), so the blocking close is
            // allowed; receivers see Closed.
            bus.close();
            rxs.hold.push(Box::new(bus));
            result
        }
        // Ruled out by `supports_idle` above.
        _ => return None,
    };
    rxs.join();
    Some(result)
}
