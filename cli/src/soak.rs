//! `shardcast soak`: the real bus with real threads for a while (`--duration`, default 60 s),
//! every random choice drawn from one seed (`--seed`, always printed so a run can be
//! repeated), checked all along and at the end.
//!
//! What runs: one publisher whose rate changes by phase (bursts, idle gaps, saturation,
//! paced); subscribers that join and leave under every `Overflow` policy, read by threads
//! (`recv`, `recv_timeout`, `try_recv`) or tokio tasks (`recv_async`, sometimes cancelled by
//! a timeout); slow and stalling subscribers; patterns, routes and predicates (some panic);
//! late-bound events (alias + route `binds()`, then alias only); `$SYS.stats` events read by
//! a `$SYS.>` subscriber; and a `Bus::close` at the end.
//!
//! # Invariants
//! 1. Accounting: for each subscriber that lives until the close,
//!    `received + lost (Σ Lagged) + filtered = matched`. `matched` and `filtered` are the
//!    soak's own: the publisher thread subscribes between two publishes (so the subscriber's
//!    first event is `next_seq()` at that moment) and, before publishing each event, counts
//!    in every live subscriber's [`Ledger`] whether its patterns (`Pattern::matches`), route
//!    and predicate take it. A subscriber that leaves early, or is disconnected, has `<=`.
//! 2. The bus agrees with the soak: per subscriber, `consumed` = events received,
//!    `dropped` = Σ Lagged (`>=` for one that leaves before the close), `lagged_reports` =
//!    Lagged reports, read from `Bus::stats` before the subscriber is dropped.
//! 3. Order: `seq` strictly increasing per subscriber (so nothing twice); every received
//!    event matches its patterns, its route (the one the soak resolved, late binding
//!    included) and its predicate; payloads arrive intact.
//! 4. Every stats snapshot (one per 100 ms) has closed <= open in every pair and no counter
//!    going backwards; at the end every shard dispatched everything published.
//! 5. Progress: something moves (a publish, a receive, a dispatch) at least every 5 s while
//!    there is work; else every queue's and shard's state is printed and the run fails.
//! 6. Memory: the resident set stays under 256 MiB + (ring capacity + peak Σ queue
//!    capacities) × the size of one queued event.
//!
//! On a violation the run stops early, prints what failed and the command line that
//! repeats it, and exits non-zero. Threads make the interleaving differ between runs of one
//! seed; the seed fixes the bus, the phases and every subscriber's configuration.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::fmt::{self, Write as _};
use std::mem::size_of;
use std::panic;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use shardcast::stats::{StatsDelta, StatsSnapshot, SubscriberStats, STATS_VERSION};
use shardcast::{
    Alias, Bus, Delivery, Event, Overflow, Pattern, Publisher, RecvError, RecvTimeoutError,
    Subscriber, Subscription, Topic, TryRecvError, Uuid,
};

/// `shardcast soak` options.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// How long to publish: a whole number and a unit, ms, s, m or h (500ms, 60s, 5m, 1h)
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Seed of every random choice; default: from the clock (always printed, to rerun)
    #[arg(long)]
    seed: Option<u64>,
}

const TOPICS: [&str; 11] = [
    "orders.eu.created",
    "orders.us.created",
    "orders.ap.created",
    "orders.eu.cancelled",
    "orders.us.shipped",
    "billing.eu.invoice",
    "billing.us.refund",
    "sessions.s1.events",
    "sessions.s2.events",
    "metrics.cpu",
    "metrics.mem.used",
];
/// Subscriptions' pattern sets. None matches `$SYS`: only the `$SYS.>` subscriber gets
/// stats events, so everyone else's match indices are the soak's published events only.
const PATTERN_SETS: [&[&str]; 8] = [
    &["orders.>"],
    &["orders.*.created"],
    &["billing.>"],
    &["sessions.*.events"],
    &["*.eu.*"],
    &["metrics.>"],
    &["orders.eu.>", "billing.us.*"],
    &["orders.>", "billing.>", "sessions.>", "metrics.>"],
];
const ROUTES: usize = 4;
const ALIASES: usize = 6;
/// Far above `ALIASES`: no binding is ever evicted, so the soak's model is a plain map.
const BINDING_CAPACITY: usize = 1024;
const POLICIES: [Overflow; 4] =
    [Overflow::DropNewest, Overflow::DropOldest, Overflow::Disconnect, Overflow::Block];
const CAPACITIES: [usize; 7] = [1, 2, 8, 64, 256, 1024, 4096];
const BLOCK_CAPACITIES: [usize; 4] = [1, 8, 64, 256];
const MAX_LIVE: usize = 20;
const MAX_BODY: usize = 48;
const STATS_EVERY: Duration = Duration::from_millis(200);
const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);
const NO_PROGRESS: Duration = Duration::from_secs(5);
const MEMORY_ALLOWANCE: u64 = 256 << 20;
/// How long the end may take: draining the ring, `Bus::close`, every receiver's report.
const END_TIMEOUT: Duration = Duration::from_secs(30);
/// Violations printed as they happen (all are counted, the first 100 kept for the end).
const PRINTED_VIOLATIONS: usize = 20;

// ---- command line ------------------------------------------------------------------------

/// `500ms`, `60s`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let expected = "expected a whole number and a unit: ms, s, m or h (e.g. 500ms, 60s, 5m, 1h)";
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().map_err(|_| expected.to_owned())?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(expected.to_owned()),
    };
    match millis {
        Some(0) => Err("the duration must be longer than 0".to_owned()),
        Some(ms) => Ok(Duration::from_millis(ms)),
        None => Err("the duration is too long".to_owned()),
    }
}

/// The inverse of [`parse_duration`] (whole milliseconds).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

fn clock_seed() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    Rng(nanos ^ u64::from(std::process::id()).rotate_left(32)).next()
}

// ---- randomness --------------------------------------------------------------------------

/// SplitMix64: small, fast, and the same sequence everywhere for a seed.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }

    fn micros(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_micros(self.range(lo, hi))
    }
}

// ---- what is published and who wants it ---------------------------------------------------

/// The soak's payload; `From<StatsDelta>` so the bus can publish `$SYS.stats` events.
pub enum Payload {
    Msg(Msg),
    Stats(StatsDelta),
}

/// A published event's payload: `id` is the event's `seq`, `route` the route the soak
/// resolved for it (late binding included), `body` a few bytes so that drops free memory.
pub struct Msg {
    id: u64,
    route: Option<Uuid>,
    body: Vec<u8>,
}

impl From<StatsDelta> for Payload {
    fn from(delta: StatsDelta) -> Self {
        Payload::Stats(delta)
    }
}

fn body_byte(id: u64, i: usize) -> u8 {
    (id as u8).wrapping_add(i as u8)
}

fn body_len(id: u64) -> usize {
    (id % 7) as usize * 8 // 0..=48 bytes: MAX_BODY
}

fn body(id: u64) -> Vec<u8> {
    (0..body_len(id)).map(|i| body_byte(id, i)).collect()
}

fn body_intact(id: u64, body: &[u8]) -> bool {
    body.len() == body_len(id) && body.iter().enumerate().all(|(i, &b)| b == body_byte(id, i))
}

fn route(n: usize) -> Uuid {
    Uuid::from_u128(n as u128 + 1)
}

/// A subscription's predicate, as a value the ledger can evaluate too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Predicate {
    None,
    EvenIds,
    /// Panics on 1 id in 61, else takes 2 in 3.
    Panicky,
}

/// The payload of a predicate's deliberate panic (the panic hook keeps quiet about it).
struct PredicatePanic;

impl Predicate {
    /// `Some(takes it)`, or `None` where the predicate panics.
    fn verdict(self, id: u64) -> Option<bool> {
        match self {
            Predicate::None => Some(true),
            Predicate::EvenIds => Some(id.is_multiple_of(2)),
            Predicate::Panicky if id % 61 == 7 => None,
            Predicate::Panicky => Some(!id.is_multiple_of(3)),
        }
    }

    fn run(self, event: &Event<Payload>) -> bool {
        let Payload::Msg(msg) = event.payload() else { return true };
        match self.verdict(msg.id) {
            Some(takes) => takes,
            None => panic::panic_any(PredicatePanic),
        }
    }
}

/// Keeps the default panic output for everything but the predicates' deliberate panics.
fn quiet_predicate_panics() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<PredicatePanic>().is_none() {
            default(info);
        }
    }));
}

/// What one subscriber does with one published event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// No pattern matches.
    Unmatched,
    /// A pattern matches; the route or the predicate rejects it.
    Filtered,
    /// A pattern matches; the predicate panics (the bus counts it as not matching).
    Panics,
    /// Delivered (or lost at its full queue).
    Wanted,
}

/// Which events a subscriber asks for.
#[derive(Clone)]
struct Spec {
    patterns: Vec<Pattern>,
    route: Option<Uuid>,
    predicate: Predicate,
}

impl Spec {
    fn new(patterns: &[&str], route: Option<Uuid>, predicate: Predicate) -> Spec {
        let patterns =
            patterns.iter().map(|p| Pattern::new(p).expect("the soak's patterns are valid"));
        Spec { patterns: patterns.collect(), route, predicate }
    }

    fn random(rng: &mut Rng) -> Spec {
        let route = rng.chance(30).then(|| route(rng.range(0, ROUTES as u64 - 1) as usize));
        let predicate = match rng.range(0, 9) {
            0..=5 => Predicate::None,
            6 | 7 => Predicate::EvenIds,
            _ => Predicate::Panicky,
        };
        Spec::new(rng.pick(&PATTERN_SETS), route, predicate)
    }

    /// Mirrors the shard: patterns, then route, then predicate.
    fn verdict(&self, topic: &Topic, route: Option<Uuid>, id: u64) -> Verdict {
        if !self.patterns.iter().any(|p| p.matches(topic)) {
            return Verdict::Unmatched;
        }
        if self.route.is_some() && self.route != route {
            return Verdict::Filtered;
        }
        match self.predicate.verdict(id) {
            Some(true) => Verdict::Wanted,
            Some(false) => Verdict::Filtered,
            None => Verdict::Panics,
        }
    }

    fn subscription(&self) -> Subscription<Payload> {
        let mut sub = Subscription::to_patterns(self.patterns.iter().cloned());
        if let Some(route) = self.route {
            sub = sub.route(route);
        }
        if self.predicate != Predicate::None {
            let predicate = self.predicate;
            sub = sub.filter(move |event| predicate.run(event));
        }
        sub
    }
}

impl fmt::Display for Spec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let patterns: Vec<&str> = self.patterns.iter().map(Pattern::as_str).collect();
        write!(f, "{}", patterns.join("|"))?;
        if let Some(route) = self.route {
            write!(f, " route {}", route.as_u128())?;
        }
        match self.predicate {
            Predicate::None => Ok(()),
            predicate => write!(f, " filter {predicate:?}"),
        }
    }
}

// ---- subscriber plans ----------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum ThreadRecv {
    Recv,
    RecvTimeout,
    TryRecv,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Style {
    Thread(ThreadRecv),
    Async,
}

const STYLES: [Style; 4] = [
    Style::Thread(ThreadRecv::Recv),
    Style::Thread(ThreadRecv::RecvTimeout),
    Style::Thread(ThreadRecv::TryRecv),
    Style::Async,
];

impl fmt::Display for Style {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Style::Thread(ThreadRecv::Recv) => "recv",
            Style::Thread(ThreadRecv::RecvTimeout) => "recv_timeout",
            Style::Thread(ThreadRecv::TryRecv) => "try_recv",
            Style::Async => "recv_async",
        })
    }
}

/// How a subscriber reads.
#[derive(Clone, Copy, Debug)]
enum Behavior {
    Steady,
    /// Sleeps `sleep` after every `every` events.
    Slow {
        every: u64,
        sleep: Duration,
    },
    /// Stops reading for `pause` after every `every` events.
    Stalls {
        every: u64,
        pause: Duration,
    },
}

impl Behavior {
    /// A `Block` subscriber stalls its whole shard while it does not read: only short
    /// stalls, rarely, so the progress check stays meaningful.
    fn random(rng: &mut Rng, overflow: Overflow) -> Behavior {
        match (overflow, rng.range(0, 9)) {
            (Overflow::Block, 0..=6) => Behavior::Steady,
            (Overflow::Block, _) => {
                Behavior::Stalls { every: rng.range(2000, 20_000), pause: rng.millis(20, 200) }
            }
            (_, 0..=4) => Behavior::Steady,
            (_, 5..=7) => Behavior::Slow { every: rng.range(1, 8), sleep: rng.micros(50, 1000) },
            _ => Behavior::Stalls { every: rng.range(100, 5000), pause: rng.millis(100, 2000) },
        }
    }

    fn pause_after(self, received: u64) -> Option<Duration> {
        match self {
            Behavior::Steady => None,
            Behavior::Slow { every, sleep } => received.is_multiple_of(every).then_some(sleep),
            Behavior::Stalls { every, pause } => received.is_multiple_of(every).then_some(pause),
        }
    }
}

impl fmt::Display for Behavior {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Behavior::Steady => f.write_str("steady"),
            Behavior::Slow { every, sleep } => write!(f, "slow: {sleep:?} per {every} events"),
            Behavior::Stalls { every, pause } => write!(f, "stalls {pause:?} per {every} events"),
        }
    }
}

/// One subscriber's whole configuration, drawn from the seed.
struct Plan {
    name: String,
    overflow: Overflow,
    style: Style,
    capacity: usize,
    spec: Spec,
    behavior: Behavior,
    /// Leaves (drops its subscriber) this long after it started, unless the close came
    /// first.
    leave_after: Option<Duration>,
    /// The `$SYS.>` subscriber: only stats events.
    sys: bool,
    seed: u64,
}

impl Plan {
    fn random(
        index: usize,
        rng: &mut Rng,
        overflow: Overflow,
        style: Style,
        leave_after: Option<Duration>,
    ) -> Plan {
        let capacities: &[usize] =
            if overflow == Overflow::Block { &BLOCK_CAPACITIES } else { &CAPACITIES };
        Plan {
            name: format!("s{index}-{overflow:?}-{style}"),
            overflow,
            style,
            capacity: rng.pick(capacities),
            spec: Spec::random(rng),
            behavior: Behavior::random(rng, overflow),
            leave_after,
            sys: false,
            seed: rng.next(),
        }
    }

    fn sys(index: usize, rng: &mut Rng) -> Plan {
        Plan {
            name: format!("s{index}-sys"),
            overflow: Overflow::DropNewest,
            style: Style::Thread(ThreadRecv::RecvTimeout),
            capacity: 256,
            spec: Spec::new(&["$SYS.>"], None, Predicate::None),
            behavior: Behavior::Steady,
            leave_after: None,
            sys: true,
            seed: rng.next(),
        }
    }

    fn subscription(&self) -> Subscription<Payload> {
        self.spec
            .subscription()
            .capacity(self.capacity)
            .overflow(self.overflow)
            .name(self.name.clone())
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} [capacity {}, {}, {}", self.name, self.capacity, self.spec, self.behavior)?;
        if let Some(after) = self.leave_after {
            write!(f, ", leaves after {after:?}")?;
        }
        f.write_str("]")
    }
}

// ---- shared state ------------------------------------------------------------------------

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every violation seen: counted, printed as it happens (the first few), kept for the end.
#[derive(Default)]
struct Failures {
    list: Mutex<Vec<String>>,
    count: AtomicUsize,
}

impl Failures {
    fn record(&self, what: String) {
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        if n < PRINTED_VIOLATIONS {
            eprintln!("soak: violation: {what}");
        }
        let mut list = lock(&self.list);
        if list.len() < 100 {
            list.push(what);
        }
    }

    fn any(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }
}

/// What the publisher, the receivers, the monitor and the main thread share.
struct Shared {
    bus: Bus<Payload>,
    failures: Failures,
    /// The publisher is done: receivers stop sleeping and stalling, and drain.
    draining: AtomicBool,
    /// Set (under the write lock) before `Bus::close`. A receiver leaves only under the read
    /// lock with this still false, so no subscriber is dropped once the close began: the
    /// final stats snapshot still lists every subscriber that lived until the close (a
    /// registry sweep on unsubscribe forgets closed queues).
    closing: RwLock<bool>,
    /// Events published, subscribers created, receive results: the progress check's motion.
    published: AtomicU64,
    created: AtomicUsize,
    receives: AtomicU64,
    /// The publisher is in a phase that publishes (not an idle gap, not done).
    publisher_busy: AtomicBool,
    /// Σ capacities of subscribers not dropped yet, and its peak (the memory bound).
    live_capacity: AtomicU64,
    peak_capacity: AtomicU64,
}

impl Shared {
    fn new(bus: Bus<Payload>) -> Shared {
        Shared {
            bus,
            failures: Failures::default(),
            draining: AtomicBool::new(false),
            closing: RwLock::new(false),
            published: AtomicU64::new(0),
            created: AtomicUsize::new(0),
            receives: AtomicU64::new(0),
            publisher_busy: AtomicBool::new(true),
            live_capacity: AtomicU64::new(0),
            peak_capacity: AtomicU64::new(0),
        }
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    fn fail(&self, what: String) {
        self.failures.record(what);
    }
}

/// What the soak counted for one subscriber, written by the publisher thread before each
/// publish. Relaxed is enough: a receiver reads it after receiving an event published later
/// (the bus's publish/dispatch/queue chain orders the two), or after the publisher is done.
#[derive(Default)]
struct Ledger {
    matched: AtomicU64,
    wanted: AtomicU64,
    panics: AtomicU64,
    /// The subscriber left: the publisher stops counting for it.
    gone: AtomicBool,
}

#[derive(Clone, Copy, Default)]
struct Counts {
    matched: u64,
    wanted: u64,
    panics: u64,
}

impl Counts {
    fn filtered(self) -> u64 {
        self.matched - self.wanted
    }
}

fn bump(counter: &AtomicU64) {
    // Relaxed load and store: one writer (see `Ledger`).
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl Ledger {
    fn count(&self, verdict: Verdict) {
        match verdict {
            Verdict::Unmatched => return,
            Verdict::Wanted => bump(&self.wanted),
            Verdict::Panics => bump(&self.panics),
            Verdict::Filtered => {}
        }
        bump(&self.matched);
    }

    fn read(&self) -> Counts {
        Counts {
            matched: self.matched.load(Ordering::Relaxed),
            wanted: self.wanted.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
        }
    }
}

// ---- the publisher -----------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum Phase {
    /// This many events back to back.
    Burst(u64),
    /// Nothing published.
    Idle(Duration),
    /// As fast as the ring takes them.
    Saturation(Duration),
    /// `rate` events per second.
    Paced { rate: u64, length: Duration },
}

impl Phase {
    fn random(rng: &mut Rng) -> Phase {
        match rng.range(0, 99) {
            0..=29 => Phase::Burst(rng.range(100, 5000)),
            30..=44 => Phase::Idle(rng.millis(20, 800)),
            45..=64 => Phase::Saturation(rng.millis(100, 1500)),
            _ => Phase::Paced { rate: rng.range(500, 50_000), length: rng.millis(200, 2000) },
        }
    }

    fn name(self) -> &'static str {
        match self {
            Phase::Burst(_) => "burst",
            Phase::Idle(_) => "idle",
            Phase::Saturation(_) => "saturation",
            Phase::Paced { .. } => "paced",
        }
    }
}

#[derive(Default, Clone, Copy)]
struct PhaseTally {
    runs: u64,
    events: u64,
    time: Duration,
}

/// What the publisher did, for the summary.
#[derive(Default)]
struct PublisherTally {
    events: u64,
    kinds: BTreeMap<&'static str, u64>,
    phases: BTreeMap<&'static str, PhaseTally>,
    threads: Vec<JoinHandle<()>>,
}

struct Publishing {
    shared: Arc<Shared>,
    publisher: Publisher<Payload>,
    rng: Rng,
    topics: Vec<Topic>,
    aliases: Vec<Alias>,
    /// The soak's model of the shards' binding cache (alias index → route).
    bindings: HashMap<usize, Uuid>,
    /// Live subscribers the ledger counts for.
    tracked: Vec<(Arc<Plan>, Arc<Ledger>)>,
    reports: Sender<Report>,
    runtime: tokio::runtime::Handle,
    next_join: Instant,
    tally: PublisherTally,
}

impl Publishing {
    fn new(
        shared: Arc<Shared>,
        publisher: Publisher<Payload>,
        rng: Rng,
        reports: Sender<Report>,
        runtime: tokio::runtime::Handle,
    ) -> Publishing {
        let topics = TOPICS.iter().map(|t| Topic::new(t).expect("the soak's topics are valid"));
        let aliases =
            (0..ALIASES).map(|i| Alias::new("soak", &format!("session-{i}")).expect("valid alias"));
        Publishing {
            shared,
            publisher,
            rng,
            topics: topics.collect(),
            aliases: aliases.collect(),
            bindings: HashMap::new(),
            tracked: Vec::new(),
            reports,
            runtime,
            next_join: Instant::now(),
            tally: PublisherTally::default(),
        }
    }

    /// Subscribes the keepers (every policy, threads and tasks, until the close) and the
    /// `$SYS.>` subscriber, then runs random phases until `deadline` or a violation. Hands
    /// the publisher back: dropping it would close the bus, which the main thread does.
    fn run(mut self, deadline: Instant) -> (PublisherTally, Publisher<Payload>) {
        self.start_keepers();
        while Instant::now() < deadline && !self.shared.failures.any() {
            let phase = Phase::random(&mut self.rng);
            if !self.run_phase(phase, deadline) {
                break;
            }
        }
        self.shared.publisher_busy.store(false, Ordering::SeqCst);
        (self.tally, self.publisher)
    }

    fn start_keepers(&mut self) {
        let plan = Plan::sys(self.index(), &mut self.rng);
        self.start_subscriber(plan);
        let threads = [ThreadRecv::Recv, ThreadRecv::RecvTimeout, ThreadRecv::TryRecv];
        for overflow in POLICIES {
            for style in [Style::Thread(self.rng.pick(&threads)), Style::Async] {
                let plan = Plan::random(self.index(), &mut self.rng, overflow, style, None);
                self.start_subscriber(plan);
            }
        }
    }

    fn index(&self) -> usize {
        self.shared.created.load(Ordering::SeqCst)
    }

    /// Runs one phase; `false` once the run must end (deadline, violation, bus closed).
    fn run_phase(&mut self, phase: Phase, deadline: Instant) -> bool {
        let start = Instant::now();
        let events_before = self.tally.events;
        let go_on = match phase {
            Phase::Burst(n) => self.publish_n(n),
            Phase::Idle(length) => self.idle(deadline.min(start + length)),
            Phase::Saturation(length) => self.saturate(deadline.min(start + length)),
            Phase::Paced { rate, length } => self.paced(rate, deadline.min(start + length)),
        };
        let tally = self.tally.phases.entry(phase.name()).or_default();
        tally.runs += 1;
        tally.events += self.tally.events - events_before;
        tally.time += start.elapsed();
        go_on
    }

    fn publish_n(&mut self, n: u64) -> bool {
        for i in 0..n {
            if i % 64 == 0 && !self.between_publishes() {
                return false;
            }
            if !self.publish_one() {
                return false;
            }
        }
        true
    }

    fn idle(&mut self, until: Instant) -> bool {
        self.shared.publisher_busy.store(false, Ordering::SeqCst);
        while Instant::now() < until {
            if !self.between_publishes() {
                return false;
            }
            thread::sleep(Duration::from_millis(5).min(until - Instant::now().min(until)));
        }
        self.shared.publisher_busy.store(true, Ordering::SeqCst);
        true
    }

    fn saturate(&mut self, until: Instant) -> bool {
        while Instant::now() < until {
            if !self.publish_n(256) {
                return false;
            }
        }
        true
    }

    fn paced(&mut self, rate: u64, until: Instant) -> bool {
        let start = Instant::now();
        let mut sent = 0;
        while Instant::now() < until {
            let due = (start.elapsed().as_secs_f64() * rate as f64) as u64;
            // Catch up after a stall, but not by more than a small burst.
            let n = due.saturating_sub(sent).min(1000);
            if !self.publish_n(n) || !self.between_publishes() {
                return false;
            }
            sent += n;
            thread::sleep(Duration::from_millis(1));
        }
        true
    }

    /// Between two publishes: subscribers join. `false` once the run must end.
    fn between_publishes(&mut self) -> bool {
        if self.shared.failures.any() {
            return false;
        }
        self.tracked.retain(|(_, ledger)| !ledger.gone.load(Ordering::SeqCst));
        let now = Instant::now();
        if now >= self.next_join && self.tracked.len() < MAX_LIVE {
            self.next_join = now + self.rng.millis(20, 400);
            let plan = self.joiner();
            return self.start_subscriber(plan);
        }
        true
    }

    /// A subscriber that joins mid-run and leaves after a while. `Block` subscribers stay
    /// a minority (each one can stall its shard).
    fn joiner(&mut self) -> Plan {
        let blocks = self.tracked.iter().filter(|(p, _)| p.overflow == Overflow::Block).count();
        let mut overflow = self.rng.pick(&POLICIES);
        if overflow == Overflow::Block && (blocks + 1) * 3 > self.tracked.len() + 1 {
            overflow = self.rng.pick(&POLICIES[..3]);
        }
        let style = self.rng.pick(&STYLES);
        let leave_after = Some(self.rng.millis(50, 20_000));
        Plan::random(self.index(), &mut self.rng, overflow, style, leave_after)
    }

    /// Subscribes on this thread, between two publishes, so the ledger counts exactly the
    /// events from `next_seq()` on; then hands the subscriber to its thread or task.
    fn start_subscriber(&mut self, plan: Plan) -> bool {
        let plan = Arc::new(plan);
        let sub = match self.shared.bus.subscribe(plan.subscription()) {
            Ok(sub) => sub,
            Err(e) => {
                if !self.shared.bus.is_closed() {
                    self.shared.fail(format!("{plan}: subscribe failed: {e}"));
                }
                return false;
            }
        };
        let ledger = Arc::new(Ledger::default());
        if !plan.sys {
            self.tracked.push((Arc::clone(&plan), Arc::clone(&ledger)));
        }
        let capacity = plan.capacity as u64;
        let live = self.shared.live_capacity.fetch_add(capacity, Ordering::SeqCst) + capacity;
        self.shared.peak_capacity.fetch_max(live, Ordering::SeqCst);
        let tracker = Tracker::new(Arc::clone(&plan), ledger, &self.shared, self.reports.clone());
        let rng = Rng(plan.seed);
        match plan.style {
            Style::Async => {
                self.runtime.spawn(async_receiver(sub, tracker, rng));
            }
            Style::Thread(how) => {
                let spawned = thread::Builder::new()
                    .name(format!("soak-{}", plan.name))
                    .spawn(move || thread_receiver(sub, tracker, rng, how));
                match spawned {
                    Ok(handle) => self.tally.threads.push(handle),
                    Err(e) => {
                        self.shared.fail(format!("{plan}: cannot spawn its thread: {e}"));
                        return false;
                    }
                }
            }
        }
        self.shared.created.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// Draws, counts in every ledger, then publishes one event. `false` if the bus closed.
    fn publish_one(&mut self) -> bool {
        let id = self.publisher.next_seq();
        let topic = self.topics[self.rng.range(0, TOPICS.len() as u64 - 1) as usize].clone();
        let (event, route) = self.draw_event(topic.clone(), id);
        for (plan, ledger) in &self.tracked {
            ledger.count(plan.spec.verdict(&topic, route, id));
        }
        match self.publisher.publish(event) {
            Ok(seq) if seq == id => {}
            Ok(seq) => self.shared.fail(format!("publish returned seq {seq}; next_seq was {id}")),
            Err(_) => return false,
        }
        self.tally.events += 1;
        self.shared.published.fetch_add(1, Ordering::SeqCst);
        true
    }

    /// An event of a random kind, and the route the shards must resolve for it. The model
    /// is `routing::BindingCache` without evictions (`BINDING_CAPACITY` > `ALIASES`).
    fn draw_event(&mut self, topic: Topic, id: u64) -> (Event<Payload>, Option<Uuid>) {
        let alias = self.rng.range(0, ALIASES as u64 - 1) as usize;
        let some_route = route(self.rng.range(0, ROUTES as u64 - 1) as usize);
        let (kind, route) = match self.rng.range(0, 99) {
            0..=34 => ("plain", None),
            35..=49 => ("routed", Some(some_route)),
            50..=57 => {
                self.bindings.insert(alias, some_route);
                ("binds", Some(some_route))
            }
            58..=95 => ("late-bound", self.bindings.get(&alias).copied()),
            _ => ("unbinds", self.bindings.remove(&alias)),
        };
        *self.tally.kinds.entry(kind).or_default() += 1;
        let payload = Payload::Msg(Msg { id, route, body: body(id) });
        let mut event = Event::new(topic, payload);
        let alias = self.aliases[alias].clone();
        event = match kind {
            "routed" => event.with_route(some_route),
            "binds" => event.with_alias(alias).with_route(some_route).binds(),
            "late-bound" => event.with_alias(alias),
            "unbinds" => event.with_alias(alias).unbinds(),
            _ => event,
        };
        (event, route)
    }
}

// ---- receivers ---------------------------------------------------------------------------

/// One receive's outcome, whatever the receive style.
enum Got<'a> {
    Event(Delivery<'a, Payload>),
    Lagged(u64),
    /// Empty or timed out.
    Nothing,
    Closed,
}

impl<'a> From<Result<Delivery<'a, Payload>, RecvError>> for Got<'a> {
    fn from(result: Result<Delivery<'a, Payload>, RecvError>) -> Got<'a> {
        match result {
            Ok(d) => Got::Event(d),
            Err(RecvError::Lagged(n)) => Got::Lagged(n),
            Err(RecvError::Closed) => Got::Closed,
        }
    }
}

impl<'a> From<Result<Delivery<'a, Payload>, RecvTimeoutError>> for Got<'a> {
    fn from(result: Result<Delivery<'a, Payload>, RecvTimeoutError>) -> Got<'a> {
        match result {
            Ok(d) => Got::Event(d),
            Err(RecvTimeoutError::Lagged(n)) => Got::Lagged(n),
            Err(RecvTimeoutError::Timeout) => Got::Nothing,
            Err(RecvTimeoutError::Closed) => Got::Closed,
        }
    }
}

impl<'a> From<Result<Delivery<'a, Payload>, TryRecvError>> for Got<'a> {
    fn from(result: Result<Delivery<'a, Payload>, TryRecvError>) -> Got<'a> {
        match result {
            Ok(d) => Got::Event(d),
            Err(TryRecvError::Lagged(n)) => Got::Lagged(n),
            Err(TryRecvError::Empty) => Got::Nothing,
            Err(TryRecvError::Closed) => Got::Closed,
        }
    }
}

/// What a receiver saw.
#[derive(Clone, Copy, Default)]
struct Seen {
    received: u64,
    lost: u64,
    lag_reports: u64,
    last_seq: Option<u64>,
    last_was_lag: bool,
}

/// How a subscriber's life ended.
enum End {
    /// Dropped before the close (its checks done by its receiver).
    Left,
    /// `Overflow::Disconnect` closed it before the bus closed (checked by its receiver).
    Disconnected,
    /// Saw `Closed` after the bus closed; the main thread checks it against one final
    /// snapshot, then drops it.
    AtClose(Box<Subscriber<Payload>>),
}

struct Report {
    plan: Arc<Plan>,
    ledger: Arc<Ledger>,
    seen: Seen,
    end: End,
}

/// A receiver's checks, shared by threads and tasks.
struct Tracker {
    plan: Arc<Plan>,
    ledger: Arc<Ledger>,
    shared: Arc<Shared>,
    reports: Sender<Report>,
    seen: Seen,
    started: Instant,
    /// The close began when it wanted to leave: it stays to the end.
    stays: bool,
    complaints: u32,
}

enum Step {
    Go,
    Idle,
    Pause(Duration),
    Closed,
}

impl Tracker {
    fn new(
        plan: Arc<Plan>,
        ledger: Arc<Ledger>,
        shared: &Arc<Shared>,
        reports: Sender<Report>,
    ) -> Tracker {
        Tracker {
            plan,
            ledger,
            shared: Arc::clone(shared),
            reports,
            seen: Seen::default(),
            started: Instant::now(),
            stays: false,
            complaints: 0,
        }
    }

    /// Records a violation of this subscriber (the first five; the rest are counted).
    fn fail(&mut self, what: impl fmt::Display) {
        self.complaints += 1;
        if self.complaints <= 5 {
            self.shared.fail(format!("{}: {what}", self.plan));
        } else {
            self.shared.failures.count.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn on(&mut self, got: Got<'_>) -> Step {
        if !matches!(got, Got::Nothing) {
            self.shared.receives.fetch_add(1, Ordering::Relaxed);
        }
        match got {
            Got::Event(delivery) => {
                self.on_event(&delivery);
                match self.plan.behavior.pause_after(self.seen.received) {
                    Some(pause) if !self.shared.draining() => Step::Pause(pause),
                    _ => Step::Go,
                }
            }
            Got::Lagged(n) => {
                self.on_lagged(n);
                Step::Go
            }
            Got::Nothing => Step::Idle,
            Got::Closed => Step::Closed,
        }
    }

    fn on_event(&mut self, delivery: &Delivery<'_, Payload>) {
        let seq = delivery.seq();
        if let Some(last) = self.seen.last_seq {
            if seq <= last {
                self.fail(format_args!("seq {seq} received after seq {last}"));
            }
        }
        self.seen.last_seq = Some(seq);
        self.seen.last_was_lag = false;
        self.seen.received += 1;
        match (delivery.payload(), self.plan.sys) {
            (Payload::Stats(delta), true) => {
                if delivery.topic().as_str() != shardcast::stats::STATS_TOPIC
                    || delta.version != STATS_VERSION
                {
                    self.fail(format_args!("a bad stats event on {}", delivery.topic()));
                }
            }
            (Payload::Msg(msg), false) => self.check_msg(delivery, msg),
            _ => self.fail(format_args!("an event it did not ask for on {}", delivery.topic())),
        }
    }

    fn check_msg(&mut self, delivery: &Delivery<Payload>, msg: &Msg) {
        let seq = delivery.seq();
        if msg.id != seq {
            self.fail(format_args!("event {} delivered as seq {seq}", msg.id));
        }
        if !body_intact(msg.id, &msg.body) {
            self.fail(format_args!("event {seq}: payload body corrupted"));
        }
        if delivery.resolved_route() != msg.route {
            let (got, want) = (delivery.resolved_route(), msg.route);
            self.fail(format_args!("event {seq}: route resolved as {got:?}, expected {want:?}"));
        }
        let verdict = self.plan.spec.verdict(delivery.topic(), msg.route, msg.id);
        if verdict != Verdict::Wanted {
            let topic = delivery.topic();
            self.fail(format_args!("event {seq} on {topic} delivered, but it is {verdict:?}"));
        }
    }

    fn on_lagged(&mut self, n: u64) {
        if n == 0 {
            self.fail("Lagged(0)");
        }
        if self.seen.last_was_lag {
            self.fail("two Lagged reports in a row");
        }
        self.seen.lost += n;
        self.seen.lag_reports += 1;
        self.seen.last_was_lag = true;
    }

    fn due_to_leave(&self) -> bool {
        !self.stays && self.plan.leave_after.is_some_and(|after| self.started.elapsed() >= after)
    }

    /// Leaves unless the close has begun; then hands the subscriber back (it stays), boxed:
    /// a `Subscriber` is too large for a cheap `Err`.
    fn try_leave(
        &mut self,
        sub: Subscriber<Payload>,
        end: End,
    ) -> Result<(), Box<Subscriber<Payload>>> {
        let shared = Arc::clone(&self.shared);
        let closing = shared.closing.read().unwrap_or_else(PoisonError::into_inner);
        if *closing {
            self.stays = true;
            return Err(Box::new(sub));
        }
        self.check_departure(&sub, matches!(end, End::Disconnected));
        self.ledger.gone.store(true, Ordering::SeqCst);
        self.shared.live_capacity.fetch_sub(self.plan.capacity as u64, Ordering::SeqCst);
        drop(sub); // Under the read lock: see `Shared::closing`.
        drop(closing);
        self.report(end);
        Ok(())
    }

    /// Invariants 1 and 2 for a subscriber that leaves before the close.
    fn check_departure(&mut self, sub: &Subscriber<Payload>, disconnected: bool) {
        let counts = self.ledger.read();
        let seen = self.seen;
        if !self.plan.sys && seen.received + seen.lost > counts.wanted {
            self.fail(format_args!(
                "left with received {} + lost {} > {} it wanted (matched {}, filtered {})",
                seen.received,
                seen.lost,
                counts.wanted,
                counts.matched,
                counts.filtered()
            ));
        }
        // A drop under `DropOldest` is counted just after the eviction that the receiver
        // may already have seen as a gap: give the count a moment to land.
        let mut stats = None;
        for _ in 0..50 {
            stats = self.shared.bus.stats().subscribers.into_iter().find(|s| s.id == sub.id());
            if stats.as_ref().is_none_or(|s| s.dropped >= seen.lost) {
                break;
            }
            thread::sleep(Duration::from_millis(2));
        }
        match stats {
            // The registry forgets a disconnected queue at its next subscribe or unsubscribe.
            None if disconnected => {}
            None => self.fail("missing from Bus::stats() before it was dropped"),
            Some(stats) => {
                for problem in stats_disagree(&stats, &seen, disconnected) {
                    self.fail(problem);
                }
            }
        }
    }

    /// After `Closed`: it stays closed; then the subscriber leaves as disconnected (if the
    /// bus is not closing) or goes to the main thread for the final checks.
    fn finish(mut self, mut sub: Subscriber<Payload>) {
        if !matches!(sub.try_recv(), Err(TryRecvError::Closed)) {
            self.fail("a receive after Closed did not say Closed");
        }
        if !self.shared.closing.read().map_or(true, |closing| *closing) {
            if self.plan.overflow != Overflow::Disconnect {
                self.fail("Closed before the bus closed");
            }
            match self.try_leave(sub, End::Disconnected) {
                Ok(()) => return,
                Err(back) => sub = *back,
            }
        }
        self.report(End::AtClose(Box::new(sub)));
    }

    fn report(&self, end: End) {
        let report = Report {
            plan: Arc::clone(&self.plan),
            ledger: Arc::clone(&self.ledger),
            seen: self.seen,
            end,
        };
        // The main thread may have given up waiting (and dropped the receiver): nothing to do.
        let _ = self.reports.send(report);
    }
}

/// Invariant 2: the bus's counters for a subscriber against what it saw. `exact_drops`:
/// it drained to `Closed`, so no loss can be still unreported.
fn stats_disagree(stats: &SubscriberStats, seen: &Seen, exact_drops: bool) -> Vec<String> {
    let mut problems = Vec::new();
    if stats.consumed != seen.received {
        problems.push(format!(
            "bus says consumed {}, the soak received {}",
            stats.consumed, seen.received
        ));
    }
    if (exact_drops && stats.dropped != seen.lost) || stats.dropped < seen.lost {
        problems.push(format!(
            "bus says dropped {}, the soak was told of {} lost (Lagged)",
            stats.dropped, seen.lost
        ));
    }
    if stats.lagged_reports != seen.lag_reports {
        problems.push(format!(
            "bus says {} Lagged reports, the soak got {}",
            stats.lagged_reports, seen.lag_reports
        ));
    }
    problems
}

/// Sleeps `length`, in short steps so the end of the run cuts it short.
fn pause(length: Duration, draining: &AtomicBool) {
    let end = Instant::now() + length;
    while !draining.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            return;
        }
        thread::sleep((end - now).min(Duration::from_millis(5)));
    }
}

async fn pause_async(length: Duration, draining: &AtomicBool) {
    let end = Instant::now() + length;
    while !draining.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            return;
        }
        tokio::time::sleep((end - now).min(Duration::from_millis(5))).await;
    }
}

fn thread_receiver(
    mut sub: Subscriber<Payload>,
    mut tracker: Tracker,
    mut rng: Rng,
    how: ThreadRecv,
) {
    let mut empty = 0u32;
    loop {
        let got = match how {
            ThreadRecv::Recv => Got::from(sub.recv()),
            ThreadRecv::RecvTimeout => Got::from(sub.recv_timeout(rng.millis(1, 20))),
            ThreadRecv::TryRecv => Got::from(sub.try_recv()),
        };
        match tracker.on(got) {
            Step::Closed => break,
            Step::Pause(length) => pause(length, &tracker.shared.draining),
            Step::Idle if how == ThreadRecv::TryRecv => {
                // Spin a little, then back off: this machine may have fewer cores than
                // threads.
                empty += 1;
                if empty < 10 {
                    thread::yield_now();
                } else {
                    thread::sleep(Duration::from_micros(200));
                }
            }
            Step::Idle => {}
            Step::Go => empty = 0,
        }
        if tracker.due_to_leave() {
            match tracker.try_leave(sub, End::Left) {
                Ok(()) => return,
                Err(back) => sub = *back,
            }
        }
    }
    tracker.finish(sub);
}

async fn async_receiver(mut sub: Subscriber<Payload>, mut tracker: Tracker, mut rng: Rng) {
    loop {
        // Sometimes cancel the receive: a dropped `recv_async` must lose nothing.
        let got = if rng.chance(20) {
            let limit = rng.millis(1, 10);
            match tokio::time::timeout(limit, sub.recv_async()).await {
                Ok(result) => Got::from(result),
                Err(_) => Got::Nothing,
            }
        } else {
            Got::from(sub.recv_async().await)
        };
        match tracker.on(got) {
            Step::Closed => break,
            Step::Pause(length) => pause_async(length, &tracker.shared.draining).await,
            Step::Go | Step::Idle => {}
        }
        if tracker.due_to_leave() {
            match tracker.try_leave(sub, End::Left) {
                Ok(()) => return,
                Err(back) => sub = *back,
            }
        }
    }
    tracker.finish(sub);
}

// ---- the monitor -------------------------------------------------------------------------

/// Bytes one queued event may hold: the event (its allocation with the `Arc` counts), its
/// largest body, and a queue slot.
fn event_bytes() -> u64 {
    (size_of::<Event<Payload>>()
        + 2 * size_of::<usize>()
        + MAX_BODY
        + size_of::<(u64, u64, Delivery<Payload>)>()) as u64
}

fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

struct MonitorReport {
    snapshots: u64,
    peak_rss: Option<u64>,
    bound: u64,
}

/// Invariants 4, 5 and 6, every `SNAPSHOT_EVERY`.
struct Monitor {
    shared: Arc<Shared>,
    ring_capacity: u64,
    duration: Duration,
    prev: Option<StatsSnapshot>,
    motion: u64,
    still_since: Instant,
    stall_reported: bool,
    report: MonitorReport,
    started: Instant,
    next_line: Instant,
}

impl Monitor {
    fn new(shared: &Arc<Shared>, ring_capacity: u64, duration: Duration) -> Monitor {
        let now = Instant::now();
        Monitor {
            shared: Arc::clone(shared),
            ring_capacity,
            duration,
            prev: None,
            motion: 0,
            still_since: now,
            stall_reported: false,
            report: MonitorReport {
                snapshots: 0,
                peak_rss: None,
                bound: memory_bound(ring_capacity, 0),
            },
            started: now,
            next_line: now,
        }
    }

    fn run(mut self, stop: &AtomicBool) -> MonitorReport {
        while !stop.load(Ordering::SeqCst) {
            thread::sleep(SNAPSHOT_EVERY);
            self.tick();
        }
        self.report
    }

    fn tick(&mut self) {
        let snapshot = self.shared.bus.stats();
        self.report.snapshots += 1;
        for problem in check_snapshot(self.prev.as_ref(), &snapshot) {
            self.shared.fail(format!("stats snapshot: {problem}"));
        }
        self.check_progress(&snapshot);
        self.check_memory();
        self.progress_line(&snapshot);
        self.prev = Some(snapshot);
    }

    fn check_progress(&mut self, snapshot: &StatsSnapshot) {
        let dispatched: u64 = snapshot.shards.iter().map(|s| s.dispatched).sum();
        let motion = self.shared.published.load(Ordering::SeqCst)
            + self.shared.receives.load(Ordering::Relaxed)
            + dispatched;
        let now = Instant::now();
        if motion != self.motion {
            self.motion = motion;
            self.still_since = now;
            return;
        }
        let work = snapshot.ring_occupancy > 0
            || snapshot.subscribers.iter().any(|s| s.queue_depth > 0)
            || self.shared.publisher_busy.load(Ordering::SeqCst);
        if work && now - self.still_since >= NO_PROGRESS && !self.stall_reported {
            self.stall_reported = true;
            self.shared.fail(format!(
                "no progress for {NO_PROGRESS:?} (no publish, receive or dispatch) with work \
                 pending; state:\n{}",
                describe_state(snapshot)
            ));
        }
    }

    fn check_memory(&mut self) {
        let Some(rss) = rss_bytes() else { return };
        let peak_capacity = self.shared.peak_capacity.load(Ordering::SeqCst);
        self.report.bound = memory_bound(self.ring_capacity, peak_capacity);
        let peak = self.report.peak_rss.get_or_insert(0);
        *peak = (*peak).max(rss);
        if rss > self.report.bound {
            self.shared.fail(format!(
                "resident memory {} MiB over the bound {} MiB",
                rss >> 20,
                self.report.bound >> 20
            ));
        }
    }

    /// A line every 10 s, so a long run shows it is alive.
    fn progress_line(&mut self, snapshot: &StatsSnapshot) {
        let now = Instant::now();
        if now < self.next_line || now - self.started >= self.duration {
            return;
        }
        self.next_line = now + Duration::from_secs(10);
        if now - self.started < Duration::from_secs(1) {
            return;
        }
        println!(
            "soak: {:>5.0}s published {:>11}  subscribers {:>2}  ring {:>5}/{}  rss {} MiB",
            (now - self.started).as_secs_f64(),
            snapshot.published,
            snapshot.subscribers.len(),
            snapshot.ring_occupancy,
            snapshot.ring_capacity,
            rss_bytes().unwrap_or(0) >> 20
        );
    }
}

fn memory_bound(ring_capacity: u64, peak_capacity: u64) -> u64 {
    MEMORY_ALLOWANCE + (ring_capacity + peak_capacity) * event_bytes()
}

fn ensure_order(problems: &mut Vec<String>, what: &str, open: u64, closed: u64) {
    if closed > open {
        problems.push(format!("{what}: {closed} > {open}"));
    }
}

fn ensure_growing(problems: &mut Vec<String>, what: &str, before: u64, now: u64) {
    if now < before {
        problems.push(format!("{what} went backwards: {before} -> {now}"));
    }
}

/// Invariant 4 for one snapshot, and against the one before.
fn check_snapshot(prev: Option<&StatsSnapshot>, now: &StatsSnapshot) -> Vec<String> {
    let mut bad = Vec::new();
    ensure_order(
        &mut bad,
        "subscriptions_closed > subscriptions",
        now.subscriptions,
        now.subscriptions_closed,
    );
    ensure_order(&mut bad, "ring_occupancy > ring_capacity", now.ring_capacity, now.ring_occupancy);
    for s in &now.shards {
        let what = format!("shard {} dispatched > published", s.shard);
        ensure_order(&mut bad, &what, now.published, s.dispatched);
    }
    for s in &now.subscribers {
        let what = format!("{} consumed > delivered", s.name);
        ensure_order(&mut bad, &what, s.delivered, s.consumed);
        let what = format!("{} queue_depth > queue_capacity", s.name);
        ensure_order(&mut bad, &what, s.queue_capacity, s.queue_depth);
    }
    let Some(prev) = prev else { return bad };
    ensure_growing(&mut bad, "published", prev.published, now.published);
    ensure_growing(&mut bad, "publisher_waits", prev.publisher_waits, now.publisher_waits);
    ensure_growing(&mut bad, "subscriptions", prev.subscriptions, now.subscriptions);
    let closed = "subscriptions_closed";
    ensure_growing(&mut bad, closed, prev.subscriptions_closed, now.subscriptions_closed);
    for (a, b) in prev.shards.iter().zip(&now.shards) {
        let counters = [
            ("dispatched", a.dispatched, b.dispatched),
            ("delivered", a.delivered, b.delivered),
            ("dropped", a.dropped, b.dropped),
            ("filtered_out", a.filtered_out, b.filtered_out),
            ("filter_panics", a.filter_panics, b.filter_panics),
            ("binds", a.binds, b.binds),
            ("binding_hits", a.binding_hits, b.binding_hits),
        ];
        for (name, before, after) in counters {
            ensure_growing(&mut bad, &format!("shard {} {name}", b.shard), before, after);
        }
    }
    // `delivered` may dip (an in-flight event later dropped): only the receiver's and the
    // loss counters must never go back.
    for b in &now.subscribers {
        let Some(a) = prev.subscribers.iter().find(|a| a.id == b.id) else { continue };
        ensure_growing(&mut bad, &format!("{} consumed", b.name), a.consumed, b.consumed);
        ensure_growing(&mut bad, &format!("{} dropped", b.name), a.dropped, b.dropped);
        let what = format!("{} lagged_reports", b.name);
        ensure_growing(&mut bad, &what, a.lagged_reports, b.lagged_reports);
    }
    bad
}

/// Every shard's and queue's state, for a progress failure.
fn describe_state(s: &StatsSnapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  ring: occupancy {}/{}, published {}, publisher waits {}",
        s.ring_occupancy, s.ring_capacity, s.published, s.publisher_waits
    );
    for sh in &s.shards {
        let _ = writeln!(
            out,
            "  shard {}: backlog {} dispatched {} delivered {} dropped {} (newest {} oldest {} \
             disconnect {} shutdown {}) filtered {} panics {}",
            sh.shard,
            sh.backlog,
            sh.dispatched,
            sh.delivered,
            sh.dropped,
            sh.dropped_newest,
            sh.dropped_oldest,
            sh.dropped_disconnect,
            sh.dropped_shutdown,
            sh.filtered_out,
            sh.filter_panics
        );
    }
    for sub in &s.subscribers {
        let _ = writeln!(
            out,
            "  {} (id {}, shard {}): depth {}/{} delivered {} consumed {} dropped {} lagged {}",
            sub.name,
            sub.id,
            sub.shard,
            sub.queue_depth,
            sub.queue_capacity,
            sub.delivered,
            sub.consumed,
            sub.dropped,
            sub.lagged_reports
        );
    }
    out
}

// ---- the run -----------------------------------------------------------------------------

/// The bus configuration, drawn from the seed.
struct Setup {
    dispatchers: usize,
    ring_capacity: usize,
}

impl Setup {
    fn random(rng: &mut Rng) -> Setup {
        Setup {
            dispatchers: rng.range(1, 3) as usize,
            ring_capacity: rng.pick(&[64, 256, 1024, 4096]),
        }
    }
}

/// Runs the soak; `Err` (after printing what failed and how to rerun it) on a violation.
pub fn run(args: &SoakArgs) -> Result<(), Box<dyn Error>> {
    let seed = args.seed.unwrap_or_else(clock_seed);
    let rerun =
        format!("shardcast soak --duration {} --seed {seed}", format_duration(args.duration));
    println!("soak: seed {seed} (rerun: {rerun})");
    quiet_predicate_panics();
    let mut rng = Rng(seed);
    let setup = Setup::random(&mut rng);
    println!(
        "soak: {} dispatcher(s), ring {}, {} topics, stats events every {STATS_EVERY:?}, for {}",
        setup.dispatchers,
        setup.ring_capacity,
        TOPICS.len(),
        format_duration(args.duration)
    );
    let bus: Bus<Payload> = Bus::builder()
        .dispatchers(setup.dispatchers)
        .ring_capacity(setup.ring_capacity)
        .binding_capacity(BINDING_CAPACITY)
        .build()?;
    bus.publish_stats_every(STATS_EVERY)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build()?;
    let shared = Arc::new(Shared::new(bus.clone()));
    let started = Instant::now();

    let stop_monitor = Arc::new(AtomicBool::new(false));
    let monitor = {
        let monitor = Monitor::new(&shared, setup.ring_capacity as u64, args.duration);
        let stop = Arc::clone(&stop_monitor);
        thread::Builder::new().name("soak-monitor".into()).spawn(move || monitor.run(&stop))?
    };
    let (reports_tx, reports_rx) = mpsc::channel();
    let publisher = {
        let publishing = Publishing::new(
            Arc::clone(&shared),
            bus.publisher()?,
            Rng(rng.next()),
            reports_tx,
            runtime.handle().clone(),
        );
        let deadline = started + args.duration;
        thread::Builder::new()
            .name("soak-publisher".into())
            .spawn(move || publishing.run(deadline))?
    };

    wait_for_publisher(&publisher, &shared);
    let publishing_time = started.elapsed();
    drain_and_close(&shared, &rerun);
    // Joined after the close: dropping the `Publisher` it hands back would close the bus.
    let mut tally = match publisher.join() {
        Ok((tally, publisher)) => {
            drop(publisher);
            tally
        }
        Err(_) => {
            shared.fail("the publisher thread panicked".into());
            PublisherTally::default()
        }
    };
    let reports = collect_reports(&shared, &reports_rx);
    stop_monitor.store(true, Ordering::SeqCst);
    let monitor = monitor.join().map_err(|_| "the monitor thread panicked")?;

    let all_reported = reports.len() == shared.created.load(Ordering::SeqCst);
    let outcomes = check_at_close(&shared, reports, tally.events, args.duration);
    if all_reported {
        // Each has sent its report and returns right after.
        for handle in std::mem::take(&mut tally.threads) {
            let _ = handle.join();
        }
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    print_summary(
        &outcomes,
        &tally,
        publishing_time,
        &monitor,
        setup.ring_capacity as u64,
        &shared,
    );
    verdict(&shared, &rerun)
}

/// Waits for the publisher's deadline; after a violation, gives it 2 s to notice (it may
/// be blocked in `publish` behind a wedged shard: the close frees it).
fn wait_for_publisher<T>(publisher: &JoinHandle<T>, shared: &Shared) {
    let mut failed_at = None;
    while !publisher.is_finished() {
        if shared.failures.any()
            && failed_at.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(2)
        {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Lets receivers drain, waits for the shards to dispatch everything, then closes (under
/// the `closing` gate), with a watchdog: a close that hangs ends the process.
fn drain_and_close(shared: &Shared, rerun: &str) {
    shared.draining.store(true, Ordering::SeqCst);
    if !shared.failures.any() {
        wait_dispatched(shared);
    }
    *shared.closing.write().unwrap_or_else(PoisonError::into_inner) = true;
    let bus = shared.bus.clone();
    let (done_tx, done_rx) = mpsc::channel();
    let closer = thread::Builder::new().name("soak-close".into()).spawn(move || {
        bus.close();
        let _ = done_tx.send(());
    });
    if closer.is_err() || done_rx.recv_timeout(END_TIMEOUT).is_err() {
        let state = describe_state(&shared.bus.stats());
        shared.fail(format!("Bus::close did not return within {END_TIMEOUT:?}; state:\n{state}"));
        give_up(shared, rerun);
    }
}

fn wait_dispatched(shared: &Shared) {
    let deadline = Instant::now() + END_TIMEOUT;
    loop {
        let s = shared.bus.stats();
        if s.ring_occupancy == 0 && s.shards.iter().all(|shard| shard.dispatched == s.published) {
            return;
        }
        if Instant::now() > deadline {
            shared.fail(format!(
                "the shards did not dispatch every event within {END_TIMEOUT:?} of the last \
                 publish; state:\n{}",
                describe_state(&s)
            ));
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Prints what failed and how to rerun, and ends the process: for hangs, where the threads
/// involved cannot be joined.
fn give_up(shared: &Shared, rerun: &str) -> ! {
    let _ = verdict(shared, rerun);
    std::process::exit(1);
}

/// Every receiver's report (one per subscriber created), waiting at most `END_TIMEOUT`.
fn collect_reports(shared: &Shared, reports: &Receiver<Report>) -> Vec<Report> {
    let expected = shared.created.load(Ordering::SeqCst);
    let deadline = Instant::now() + END_TIMEOUT;
    let mut got = Vec::with_capacity(expected);
    while got.len() < expected {
        match reports.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(report) => got.push(report),
            Err(_) => {
                shared.fail(format!(
                    "{} of {expected} receivers never reported (no Closed within {END_TIMEOUT:?} \
                     of the close?); state:\n{}",
                    expected - got.len(),
                    describe_state(&shared.bus.stats())
                ));
                break;
            }
        }
    }
    got
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Fate {
    AtClose,
    Left,
    Disconnected,
}

/// One subscriber's life, for the summary.
struct Outcome {
    plan: Arc<Plan>,
    seen: Seen,
    counts: Counts,
    fate: Fate,
}

/// Invariants 1 and 2 for the subscribers that lived until the close (against one
/// snapshot), the end-of-run totals, and that dropping them closes every subscription.
fn check_at_close(
    shared: &Shared,
    reports: Vec<Report>,
    published: u64,
    duration: Duration,
) -> Vec<Outcome> {
    let snapshot = shared.bus.stats();
    let mut outcomes = Vec::with_capacity(reports.len());
    let mut alive = Vec::new();
    for report in reports {
        let counts = report.ledger.read();
        let fate = match report.end {
            End::Left => Fate::Left,
            End::Disconnected => Fate::Disconnected,
            End::AtClose(sub) => {
                let stats = snapshot.subscribers.iter().find(|s| s.id == sub.id());
                alive.push(sub);
                check_survivor(shared, &report.plan, &report.seen, counts, stats, duration)
            }
        };
        outcomes.push(Outcome { plan: report.plan, seen: report.seen, counts, fate });
    }
    check_totals(shared, &snapshot, published, alive.len(), &outcomes);
    drop(alive);
    let after = shared.bus.stats();
    if after.subscriptions != after.subscriptions_closed || !after.subscribers.is_empty() {
        shared.fail(format!(
            "after every subscriber was dropped: {} subscriptions, {} closed, {} listed",
            after.subscriptions,
            after.subscriptions_closed,
            after.subscribers.len()
        ));
    }
    outcomes
}

/// A subscriber that drained to `Closed` after the bus closed. A `Disconnect` subscriber
/// whose stream ended in `Lagged`, `Closed` short of what it wanted was disconnected near
/// the close: it gets the early leaver's `<=`.
fn check_survivor(
    shared: &Shared,
    plan: &Plan,
    seen: &Seen,
    counts: Counts,
    stats: Option<&SubscriberStats>,
    duration: Duration,
) -> Fate {
    let fail = |what: String| shared.fail(format!("{plan}: {what}"));
    let accounted = seen.received + seen.lost;
    let disconnected =
        plan.overflow == Overflow::Disconnect && seen.last_was_lag && accounted < counts.wanted;
    if plan.sys {
        if seen.received == 0 && duration >= Duration::from_secs(1) {
            fail("no $SYS.stats event received".into());
        }
    } else if !disconnected && accounted != counts.wanted {
        fail(format!(
            "received {} + lost {} + filtered {} = {}, but it matched {}",
            seen.received,
            seen.lost,
            counts.filtered(),
            accounted + counts.filtered(),
            counts.matched
        ));
    }
    match stats {
        None if disconnected => {}
        None => fail("missing from Bus::stats() at the close".into()),
        Some(stats) => {
            for problem in stats_disagree(stats, seen, true) {
                fail(problem);
            }
            // Evicted events were queued: they count as delivered and dropped.
            let evicted = if plan.overflow == Overflow::DropOldest { stats.dropped } else { 0 };
            if stats.queue_depth != 0 || stats.delivered != stats.consumed + evicted {
                fail(format!(
                    "drained, but the bus says depth {}, delivered {}, consumed {}, dropped {}",
                    stats.queue_depth, stats.delivered, stats.consumed, stats.dropped
                ));
            }
        }
    }
    if disconnected {
        Fate::Disconnected
    } else {
        Fate::AtClose
    }
}

/// End-of-run totals: everything published was dispatched by every shard, loss reasons add
/// up, subscriptions match what the soak made, and the shards counted at least the
/// disconnects and predicate panics the soak saw.
fn check_totals(
    shared: &Shared,
    s: &StatsSnapshot,
    published: u64,
    alive: usize,
    outcomes: &[Outcome],
) {
    let mut bad = Vec::new();
    if s.published != published {
        bad.push(format!("bus published {}, the soak published {published}", s.published));
    }
    if s.ring_occupancy != 0 {
        bad.push(format!("ring occupancy {} after the close", s.ring_occupancy));
    }
    for sh in &s.shards {
        if sh.dispatched != s.published || sh.backlog != 0 {
            bad.push(format!("shard {} dispatched {} of {}", sh.shard, sh.dispatched, s.published));
        }
        let reasons =
            sh.dropped_newest + sh.dropped_oldest + sh.dropped_disconnect + sh.dropped_shutdown;
        if sh.dropped != reasons {
            bad.push(format!("shard {} dropped {} != Σ reasons {reasons}", sh.shard, sh.dropped));
        }
        if sh.binding_evictions != 0 {
            bad.push(format!("shard {} evicted {} bindings", sh.shard, sh.binding_evictions));
        }
    }
    let created = shared.created.load(Ordering::SeqCst) as u64;
    if s.subscriptions != created || s.subscriptions - s.subscriptions_closed != alive as u64 {
        bad.push(format!(
            "subscriptions {} (closed {}), but the soak made {created} and holds {alive}",
            s.subscriptions, s.subscriptions_closed
        ));
    }
    let disconnects = outcomes.iter().filter(|o| o.fate == Fate::Disconnected).count() as u64;
    let counted: u64 = s.shards.iter().map(|sh| sh.dropped_disconnect).sum();
    if counted < disconnects {
        bad.push(format!("{disconnects} subscribers disconnected, the shards counted {counted}"));
    }
    let panics: u64 =
        outcomes.iter().filter(|o| o.fate == Fate::AtClose).map(|o| o.counts.panics).sum();
    let counted: u64 = s.shards.iter().map(|sh| sh.filter_panics).sum();
    if counted < panics {
        bad.push(format!(
            "predicates panicked {panics} times (soak), the shards counted {counted}"
        ));
    }
    for problem in bad {
        shared.fail(format!("at the close: {problem}"));
    }
}

#[derive(Default)]
struct Row {
    subs: u64,
    at_close: u64,
    left: u64,
    disconnected: u64,
    received: u64,
    lost: u64,
    filtered: u64,
    lag_reports: u64,
}

impl Row {
    fn add(&mut self, o: &Outcome) {
        self.subs += 1;
        match o.fate {
            Fate::AtClose => self.at_close += 1,
            Fate::Left => self.left += 1,
            Fate::Disconnected => self.disconnected += 1,
        }
        self.received += o.seen.received;
        self.lost += o.seen.lost;
        self.filtered += o.counts.filtered();
        self.lag_reports += o.seen.lag_reports;
    }
}

fn print_summary(
    outcomes: &[Outcome],
    tally: &PublisherTally,
    publishing_time: Duration,
    monitor: &MonitorReport,
    ring_capacity: u64,
    shared: &Shared,
) {
    let mut rows: BTreeMap<(usize, Style), Row> = BTreeMap::new();
    let mut sys = Row::default();
    for o in outcomes {
        if o.plan.sys {
            sys.add(o);
        } else {
            let policy = POLICIES.iter().position(|&p| p == o.plan.overflow).unwrap_or(0);
            rows.entry((policy, o.plan.style)).or_default().add(o);
        }
    }
    println!();
    println!(
        "{:<11} {:<13} {:>5} {:>8} {:>5} {:>7} {:>12} {:>10} {:>10} {:>7}",
        "policy",
        "receive",
        "subs",
        "to-close",
        "left",
        "discon.",
        "received",
        "lost",
        "filtered",
        "lagged"
    );
    for ((policy, style), r) in &rows {
        let policy = format!("{:?}", POLICIES[*policy]);
        print_row(&policy, &style.to_string(), r);
    }
    print_row("$SYS.>", "recv_timeout", &sys);
    println!();
    let secs = publishing_time.as_secs_f64().max(1e-9);
    let kinds: Vec<String> = tally.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "publisher: {} events in {:.1} s ({:.0}/s): {}; waits on a full ring: {}",
        tally.events,
        secs,
        tally.events as f64 / secs,
        kinds.join(", "),
        shared.bus.stats().publisher_waits
    );
    let phases: Vec<String> = tally
        .phases
        .iter()
        .map(|(name, p)| match *name {
            "idle" => format!("idle {} ({:.1} s)", p.runs, p.time.as_secs_f64()),
            _ => format!("{name} {} ({} events)", p.runs, p.events),
        })
        .collect();
    println!("phases: {}", phases.join(", "));
    let peak_capacity = shared.peak_capacity.load(Ordering::SeqCst);
    println!(
        "checks: {} stats snapshots; peak RSS {} MiB, bound {} MiB = {} MiB + (ring {ring_capacity} \
         + peak queue capacity {peak_capacity}) x {} B",
        monitor.snapshots,
        monitor.peak_rss.map_or_else(|| "?".to_owned(), |b| (b >> 20).to_string()),
        monitor.bound >> 20,
        MEMORY_ALLOWANCE >> 20,
        event_bytes()
    );
}

fn print_row(policy: &str, style: &str, r: &Row) {
    println!(
        "{policy:<11} {style:<13} {:>5} {:>8} {:>5} {:>7} {:>12} {:>10} {:>10} {:>7}",
        r.subs, r.at_close, r.left, r.disconnected, r.received, r.lost, r.filtered, r.lag_reports
    );
}

/// `Ok` if nothing failed; else prints every violation kept and the command to rerun.
fn verdict(shared: &Shared, rerun: &str) -> Result<(), Box<dyn Error>> {
    let n = shared.failures.count.load(Ordering::SeqCst);
    if n == 0 {
        println!("soak: OK");
        return Ok(());
    }
    eprintln!("soak: FAILED with {n} violation(s):");
    for what in lock(&shared.failures.list).iter() {
        eprintln!("  - {what}");
    }
    eprintln!("soak: rerun with: {rerun}");
    Err(format!("soak failed with {n} violation(s); rerun with: {rerun}").into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_back() {
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        for (text, ms) in [("500ms", 500), ("60s", 60_000), ("5m", 300_000), ("1h", 3_600_000)] {
            let d = parse_duration(text).unwrap();
            assert_eq!(d, Duration::from_millis(ms), "{text}");
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{text}");
        }
        for bad in ["", "nonsense", "60", "s", "1.5s", "-1s", "0s", "10 s", "1d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn spec_verdicts_follow_pattern_route_then_predicate() {
        let spec = Spec::new(&["orders.>"], Some(route(0)), Predicate::Panicky);
        let topic = Topic::new("orders.eu.created").unwrap();
        let other = Topic::new("billing.eu.invoice").unwrap();
        assert_eq!(spec.verdict(&other, Some(route(0)), 1), Verdict::Unmatched);
        assert_eq!(spec.verdict(&topic, None, 1), Verdict::Filtered);
        assert_eq!(spec.verdict(&topic, Some(route(0)), 1), Verdict::Wanted);
        assert_eq!(spec.verdict(&topic, Some(route(0)), 3), Verdict::Filtered);
        assert_eq!(spec.verdict(&topic, Some(route(0)), 7), Verdict::Panics);
    }
}
