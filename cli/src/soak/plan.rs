//! Everything drawn from the seed: the random source, the payload, which events a subscriber
//! asks for ([`Spec`], mirrored by the soak's ledger), each subscriber's [`Plan`] and the
//! bus's [`Setup`].

use std::fmt;
use std::panic;
use std::time::Duration;

use shardcast::stats::StatsDelta;
use shardcast::{Event, Overflow, Pattern, Subscription, Topic, Uuid};

pub(super) const TOPICS: [&str; 11] = [
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
pub(super) const PATTERN_SETS: [&[&str]; 8] = [
    &["orders.>"],
    &["orders.*.created"],
    &["billing.>"],
    &["sessions.*.events"],
    &["*.eu.*"],
    &["metrics.>"],
    &["orders.eu.>", "billing.us.*"],
    &["orders.>", "billing.>", "sessions.>", "metrics.>"],
];
pub(super) const ROUTES: usize = 4;
pub(super) const ALIASES: usize = 6;
/// Far above `ALIASES`: no binding is ever evicted, so the soak's model is a plain map.
pub(super) const BINDING_CAPACITY: usize = 1024;
pub(super) const POLICIES: [Overflow; 4] =
    [Overflow::DropNewest, Overflow::DropOldest, Overflow::Disconnect, Overflow::Block];
pub(super) const CAPACITIES: [usize; 7] = [1, 2, 8, 64, 256, 1024, 4096];
pub(super) const BLOCK_CAPACITIES: [usize; 4] = [1, 8, 64, 256];
pub(super) const MAX_BODY: usize = 48;

// ---- randomness --------------------------------------------------------------------------

/// SplitMix64: small, fast, and the same sequence everywhere for a seed.
#[derive(Clone)]
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub(super) fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    pub(super) fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub(super) fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }

    pub(super) fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(self.range(lo, hi))
    }

    pub(super) fn micros(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_micros(self.range(lo, hi))
    }
}

// ---- what is published and who wants it ---------------------------------------------------

/// The soak's payload; `From<StatsDelta>` so the bus can publish `$SYS.stats` events.
pub(super) enum Payload {
    Msg(Msg),
    Stats(StatsDelta),
}

/// A published event's payload: `id` is the event's `seq`, `route` the route the soak
/// resolved for it (late binding included), `body` a few bytes so that drops free memory.
pub(super) struct Msg {
    pub(super) id: u64,
    pub(super) route: Option<Uuid>,
    pub(super) body: Vec<u8>,
}

impl From<StatsDelta> for Payload {
    fn from(delta: StatsDelta) -> Self {
        Payload::Stats(delta)
    }
}

pub(super) fn body_byte(id: u64, i: usize) -> u8 {
    (id as u8).wrapping_add(i as u8)
}

pub(super) fn body_len(id: u64) -> usize {
    (id % 7) as usize * 8 // 0..=48 bytes: MAX_BODY
}

pub(super) fn body(id: u64) -> Vec<u8> {
    (0..body_len(id)).map(|i| body_byte(id, i)).collect()
}

pub(super) fn body_intact(id: u64, body: &[u8]) -> bool {
    body.len() == body_len(id) && body.iter().enumerate().all(|(i, &b)| b == body_byte(id, i))
}

pub(super) fn route(n: usize) -> Uuid {
    Uuid::from_u128(n as u128 + 1)
}

/// A subscription's predicate, as a value the ledger can evaluate too.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Predicate {
    None,
    EvenIds,
    /// Panics on 1 id in 61, else takes 2 in 3.
    Panicky,
}

/// The payload of a predicate's deliberate panic (the panic hook keeps quiet about it).
pub(super) struct PredicatePanic;

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
pub(super) fn quiet_predicate_panics() {
    let default = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if info.payload().downcast_ref::<PredicatePanic>().is_none() {
            default(info);
        }
    }));
}

/// What one subscriber does with one published event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Verdict {
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
pub(super) struct Spec {
    pub(super) patterns: Vec<Pattern>,
    pub(super) route: Option<Uuid>,
    pub(super) predicate: Predicate,
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
    pub(super) fn verdict(&self, topic: &Topic, route: Option<Uuid>, id: u64) -> Verdict {
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
pub(super) enum ThreadRecv {
    Recv,
    RecvTimeout,
    TryRecv,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Style {
    Thread(ThreadRecv),
    Async,
}

pub(super) const STYLES: [Style; 4] = [
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
            Style::Async => "recv().await",
        })
    }
}

/// How a subscriber reads.
#[derive(Clone, Copy, Debug)]
pub(super) enum Behavior {
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

    pub(super) fn pause_after(self, received: u64) -> Option<Duration> {
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
pub(super) struct Plan {
    pub(super) name: String,
    pub(super) overflow: Overflow,
    pub(super) style: Style,
    pub(super) capacity: usize,
    pub(super) spec: Spec,
    pub(super) behavior: Behavior,
    /// Leaves (drops its subscriber) this long after it started, unless the close came
    /// first.
    pub(super) leave_after: Option<Duration>,
    /// The `$SYS.>` subscriber: only stats events.
    pub(super) sys: bool,
    pub(super) seed: u64,
}

impl Plan {
    pub(super) fn random(
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

    pub(super) fn sys(index: usize, rng: &mut Rng) -> Plan {
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

    pub(super) fn subscription(&self) -> Subscription<Payload> {
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

/// The bus configuration, drawn from the seed.
pub(super) struct Setup {
    pub(super) dispatchers: usize,
    pub(super) ring_capacity: usize,
}

impl Setup {
    pub(super) fn random(rng: &mut Rng) -> Setup {
        Setup {
            dispatchers: rng.range(1, 3) as usize,
            ring_capacity: rng.pick(&[64, 256, 1024, 4096]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
