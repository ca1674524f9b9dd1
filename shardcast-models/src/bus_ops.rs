//! Subscribe / publish / receive / drop / close sequences against an exact model.
//!
//! # Why the model can be exact
//! The check is the only publisher and the only receiver, on one thread. Before any receive
//! or drop it waits until every shard has dispatched everything published (`settle`), and
//! shards push each event into each queue in sequence order; so at every receive, each
//! subscriber's queue holds exactly what the model's queue holds: same events, same match
//! indices, same losses under its overflow policy. The model therefore predicts every
//! `try_recv` result (`Empty`, an event with its resolved route, `Lagged(n)`, `Closed`)
//! exactly, not just as an ordered subsequence, plus `dropped()`, `len()` and, after
//! close, the shards' counters.
//!
//! After a close by dropping the publisher the shards finish on their own time: receives
//! still settle first (so every push is done), then use `recv_timeout` with the hang guard,
//! because the queue's close may not have landed yet; the model never predicts `Empty` on
//! a closed bus, so the answer is the same whenever it comes.
//!
//! Overflow policies: `DropNewest`, `DropOldest` and `Disconnect`. Not `Block`: a `Block`
//! subscriber nobody reads stalls its shard by design.

use std::collections::VecDeque;
use std::time::Duration;

use arbitrary::Arbitrary;
use shardcast::{
    Alias, Bus, BusError, CloseReason, Delivery, Event, Overflow, Pattern, Publisher,
    RecvTimeoutError, Subscriber, Subscription, Topic, TryRecvError, Uuid, WaitStrategy,
};

use crate::late_binding::{LateBindingModel, Mark};
use crate::support::{decode_and_check, settle};
use crate::topic_pattern::reference_matches;
use crate::{Seq, Verdict, HANG};

/// Topics events are published on.
pub const TOPICS: [&str; 6] = ["a", "a.b", "a.c", "a.b.c", "b.c", "x"];
/// Patterns subscriptions choose from.
pub const PATTERNS: [&str; 9] = [">", "a", "a.>", "a.*", "*.c", "a.*.c", "b.>", "*", "x"];
/// Distinct routes (`Uuid::from_u128(1..=ROUTES)`).
pub const ROUTES: u8 = 3;
/// Distinct aliases.
pub const ALIASES: u8 = 3;
/// Longest op sequence a check runs; longer inputs are rejected.
pub const MAX_OPS: usize = 192;
/// How long a `RecvTimeout` op waits when the model predicts nothing is queued.
const SHORT: Duration = Duration::from_micros(200);

/// The bus to build and the ops to run on it.
#[derive(Debug, Clone, Arbitrary)]
pub struct Input {
    /// Shards: `1 + dispatchers % 3`.
    pub dispatchers: u8,
    /// Ring slots: `8 << (ring % 4)` (8..=64).
    pub ring: u8,
    /// Route cache capacity: `[0, 1, 2, 4096][route_cache % 4]`.
    pub route_cache: u8,
    /// `WaitStrategy::Yield` instead of the default `Adaptive`.
    pub yield_wait: bool,
    /// What to do, in order.
    pub ops: Seq<Op>,
}

/// One step.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Op {
    /// Subscribe with capacity `1 + capacity % 8`.
    Subscribe {
        /// Which topics.
        patterns: Patterns,
        /// Queue capacity, `1 + capacity % 8`.
        capacity: u8,
        /// Overflow policy.
        overflow: Policy,
        /// Route filter, `route % ROUTES`.
        route: Option<u8>,
    },
    /// Publish an event (`.binds()` then `.unbinds()` if both flags: the last mark wins).
    Publish {
        /// `TOPICS[topic % len]`.
        topic: u8,
        /// Alias `alias % ALIASES`.
        alias: Option<u8>,
        /// Own route `route % ROUTES`.
        route: Option<u8>,
        /// Call `.binds()`.
        binds: bool,
        /// Call `.unbinds()`.
        unbinds: bool,
    },
    /// `try_recv` on live subscriber `sub % live`.
    TryRecv {
        /// Which subscriber.
        sub: u8,
    },
    /// `recv_timeout` (short) on live subscriber `sub % live`.
    RecvTimeout {
        /// Which subscriber.
        sub: u8,
    },
    /// Drop live subscriber `sub % live`.
    Drop {
        /// Which subscriber.
        sub: u8,
    },
    /// Close the bus (`Bus::close`, or by dropping the publisher), but only when
    /// `odds < 8`: 1 in 32, so random bytes mostly keep the bus open long enough to do
    /// something (the check closes at the end anyway).
    Close {
        /// Drop the publisher instead of calling `Bus::close`.
        by_publisher: bool,
        /// Closes only below 8.
        odds: u8,
    },
}

/// A subscription's topics.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Patterns {
    /// `Subscription::all()`.
    All,
    /// `Subscription::to(PATTERNS[i % len])`.
    One(u8),
    /// `Subscription::to_any` of two patterns.
    Two(u8, u8),
}

/// The overflow policies the model covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Arbitrary)]
pub enum Policy {
    /// `Overflow::DropNewest`.
    DropNewest,
    /// `Overflow::DropOldest`.
    DropOldest,
    /// `Overflow::Disconnect`.
    Disconnect,
}

impl Policy {
    fn overflow(self) -> Overflow {
        match self {
            Policy::DropNewest => Overflow::DropNewest,
            Policy::DropOldest => Overflow::DropOldest,
            Policy::Disconnect => Overflow::Disconnect,
        }
    }
}

fn route(i: u8) -> Uuid {
    Uuid::from_u128(u128::from(i % ROUTES) + 1)
}

fn alias(i: u8) -> Alias {
    Alias::new("conn", &format!("k{}", i % ALIASES)).expect("valid alias")
}

/// Decodes `data` as the fuzz target does and runs [`check`].
pub fn check_bytes(data: &[u8]) -> Verdict {
    decode_and_check(data, check)
}

/// One delivered event as both sides describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    seq: u64,
    topic: String,
    alias: Option<String>,
    own_route: Option<Uuid>,
    /// As resolved at dispatch.
    route: Option<Uuid>,
}

/// What a receive returned, comparable between bus and model.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Got {
    Event(Seen),
    Lagged(u64),
    Empty,
    Closed,
}

impl Got {
    fn from_delivery(d: &Delivery<u64>) -> Got {
        assert_eq!(*d.payload(), d.seq(), "payload is the seq it was published as");
        assert!(d.published_at().is_some(), "a delivered event has a publish time");
        Got::Event(Seen {
            seq: d.seq(),
            topic: d.topic().as_str().to_owned(),
            alias: d.alias().map(|a| a.to_string()),
            own_route: Event::route(d),
            route: d.resolved_route(),
        })
    }

    fn from_try(r: Result<Delivery<u64>, TryRecvError>) -> Got {
        match r {
            Ok(d) => Got::from_delivery(&d),
            Err(TryRecvError::Empty) => Got::Empty,
            Err(TryRecvError::Lagged(n)) => Got::Lagged(n),
            Err(TryRecvError::Closed) => Got::Closed,
        }
    }

    /// `Timeout` reads as `Empty`: only asked for when the bus is open.
    fn from_timeout(r: Result<Delivery<u64>, RecvTimeoutError>) -> Got {
        match r {
            Ok(d) => Got::from_delivery(&d),
            Err(RecvTimeoutError::Timeout) => Got::Empty,
            Err(RecvTimeoutError::Lagged(n)) => Got::Lagged(n),
            Err(RecvTimeoutError::Closed) => Got::Closed,
        }
    }
}

/// One subscriber, modelled: its queue, match indices, losses and lag reports.
#[derive(Debug)]
struct SubModel {
    /// `None`: every topic.
    patterns: Option<Vec<&'static str>>,
    route: Option<Uuid>,
    capacity: usize,
    policy: Policy,
    /// `(match index, event)`, oldest first.
    queue: VecDeque<(u64, Seen)>,
    /// Match indices handed out.
    matched: u64,
    /// Events lost (what `Subscriber::dropped` says).
    dropped: u64,
    /// Closed by `Disconnect` on overflow.
    disconnected: bool,
    /// The receiver's next expected match index.
    expected: u64,
    /// The event after a reported gap.
    pending: Option<Seen>,
    /// Events received, and the sum of every `Lagged(n)`.
    received: u64,
    lagged: u64,
}

/// Whole-bus expectations.
struct Totals {
    /// Pushes that queued (shards' `delivered`).
    delivered: u64,
    /// Events lost at a full queue, any policy (shards' `dropped`).
    dropped: u64,
    /// Pattern matches rejected by the route filter (shards' `filtered_out`).
    filtered_out: u64,
}

impl SubModel {
    fn wants(&self, topic: &str) -> bool {
        let topic: Vec<&str> = topic.split('.').collect();
        match &self.patterns {
            None => true,
            Some(ps) => {
                ps.iter().any(|p| reference_matches(&p.split('.').collect::<Vec<_>>(), &topic))
            }
        }
    }

    /// What the shard does with a matching event for this subscriber.
    fn push(&mut self, seen: Seen, totals: &mut Totals) {
        let index = self.matched;
        self.matched += 1;
        let full = self.queue.len() == self.capacity;
        match (self.policy, full) {
            (_, false) => {
                self.queue.push_back((index, seen));
                totals.delivered += 1;
            }
            (Policy::DropNewest, true) => {
                self.dropped += 1;
                totals.dropped += 1;
            }
            (Policy::DropOldest, true) => {
                self.queue.pop_front();
                self.queue.push_back((index, seen));
                self.dropped += 1;
                totals.delivered += 1;
                totals.dropped += 1;
            }
            (Policy::Disconnect, true) => {
                self.dropped += 1;
                self.disconnected = true;
                totals.dropped += 1;
            }
        }
    }

    /// `Receiver::try_recv`, modelled from the `queue` module's "Loss accounting".
    fn try_recv(&mut self, bus_closed: bool) -> Got {
        if let Some(seen) = self.pending.take() {
            self.received += 1;
            return Got::Event(seen);
        }
        if let Some((index, seen)) = self.queue.pop_front() {
            let lost = index - self.expected;
            self.expected = index + 1;
            if lost == 0 {
                self.received += 1;
                return Got::Event(seen);
            }
            self.pending = Some(seen);
            self.lagged += lost;
            return Got::Lagged(lost);
        }
        if !(bus_closed || self.disconnected) {
            return Got::Empty;
        }
        if self.matched > self.expected {
            let lost = self.matched - self.expected;
            self.expected = self.matched;
            self.lagged += lost;
            return Got::Lagged(lost);
        }
        Got::Closed
    }

    /// `Subscriber::len`: the queue plus the held-back event, never above the capacity
    /// (the queue may refill behind a held-back event; `len` is clamped).
    fn len(&self) -> usize {
        (self.queue.len() + usize::from(self.pending.is_some())).min(self.capacity)
    }
}

struct Live {
    sub: Subscriber<u64>,
    model: SubModel,
    /// Which `Subscribe` op made it (for messages).
    made_at: usize,
}

/// Runs the ops against a real bus and the model; panics on the first disagreement.
pub fn check(input: &Input) -> Verdict {
    if input.ops.0.len() > MAX_OPS {
        return Verdict::Rejected;
    }
    let dispatchers = 1 + usize::from(input.dispatchers % 3);
    let ring = 8usize << (input.ring % 4);
    let route_cache = [0, 1, 2, 4096][usize::from(input.route_cache % 4)];
    let wait = if input.yield_wait { WaitStrategy::Yield } else { WaitStrategy::Adaptive };
    let bus: Bus<u64> = Bus::builder()
        .dispatchers(dispatchers)
        .ring_capacity(ring)
        .route_cache_capacity(route_cache)
        .wait_strategy(wait)
        .build()
        .expect("a valid configuration builds");
    let mut publisher: Option<Publisher<u64>> = Some(bus.publisher().expect("first publisher"));
    assert!(matches!(bus.publisher(), Err(BusError::PublisherTaken)));

    let topics: Vec<Topic> = TOPICS.iter().map(|t| Topic::new(t).expect("valid topic")).collect();
    // Default binding capacity (65 536) with 3 aliases: never evicts.
    let mut bindings = LateBindingModel::new(65_536);
    let mut totals = Totals { delivered: 0, dropped: 0, filtered_out: 0 };
    let mut published = 0u64;
    let mut closed = false;
    // What closed the bus first: every `BusError::Closed` after it must say so.
    let mut close_reason: Option<CloseReason> = None;
    let mut live: Vec<Live> = Vec::new();

    for (step, &op) in input.ops.0.iter().enumerate() {
        let at = || format!("step {step}: {op:?}");
        match op {
            Op::Subscribe { patterns, capacity, overflow, route: filter } => {
                let chosen: Option<Vec<&'static str>> = match patterns {
                    Patterns::All => None,
                    Patterns::One(i) => Some(vec![PATTERNS[usize::from(i) % PATTERNS.len()]]),
                    Patterns::Two(i, j) => Some(vec![
                        PATTERNS[usize::from(i) % PATTERNS.len()],
                        PATTERNS[usize::from(j) % PATTERNS.len()],
                    ]),
                };
                let capacity = 1 + usize::from(capacity % 8);
                let mut subscription = match &chosen {
                    None => Subscription::all(),
                    Some(ps) if ps.len() == 1 => Subscription::to(ps[0]).expect("valid pattern"),
                    Some(ps) => Subscription::to_patterns(
                        ps.iter().map(|p| Pattern::new(p).expect("valid")),
                    ),
                };
                subscription = subscription.capacity(capacity).overflow(overflow.overflow());
                if let Some(r) = filter {
                    subscription = subscription.route(route(r));
                }
                match bus.subscribe(subscription) {
                    Ok(sub) => {
                        assert!(!closed, "{}: subscribed on a closed bus", at());
                        assert_eq!(sub.capacity(), capacity, "{}", at());
                        assert!(sub.shard() < dispatchers, "{}", at());
                        let model = SubModel {
                            patterns: chosen,
                            route: filter.map(route),
                            capacity,
                            policy: overflow,
                            queue: VecDeque::new(),
                            matched: 0,
                            dropped: 0,
                            disconnected: false,
                            expected: 0,
                            pending: None,
                            received: 0,
                            lagged: 0,
                        };
                        live.push(Live { sub, model, made_at: step });
                    }
                    Err(e) => {
                        assert!(closed, "{}: subscribe failed on an open bus: {e}", at());
                        assert!(e.is_closed(), "{}: {e}", at());
                        assert_eq!(e.close_reason(), close_reason, "{}: {e}", at());
                    }
                }
            }
            Op::Publish { topic, alias: a, route: r, binds, unbinds } => {
                let Some(p) = publisher.as_mut() else {
                    continue; // dropped to close the bus
                };
                let topic = &topics[usize::from(topic) % topics.len()];
                let mut event = Event::new(topic.clone(), published);
                if let Some(a) = a {
                    event = event.with_alias(alias(a));
                }
                if let Some(r) = r {
                    event = event.with_route(route(r));
                }
                if binds {
                    event = event.binds();
                }
                if unbinds {
                    event = event.unbinds();
                }
                match p.publish_timeout(event, HANG) {
                    Ok(seq) => {
                        assert!(!closed, "{}: published on a closed bus", at());
                        assert_eq!(seq, published, "{}: sequence numbers count publishes", at());
                        published += 1;
                        assert_eq!(bus.published(), published, "{}", at());
                    }
                    Err(e) => {
                        assert!(e.is_closed(), "hang: {}: no ring space within {HANG:?}", at());
                        assert!(closed, "{}: publish failed on an open bus", at());
                        continue;
                    }
                }
                let mark = match (binds, unbinds) {
                    (_, true) => Mark::Unbinds,
                    (true, false) => Mark::Binds,
                    (false, false) => Mark::None,
                };
                let resolved =
                    bindings.resolve(a.map(|a| usize::from(a % ALIASES)), r.map(route), mark);
                let seen = Seen {
                    seq: published - 1,
                    topic: topic.as_str().to_owned(),
                    alias: a.map(|a| alias(a).to_string()),
                    own_route: r.map(route),
                    route: resolved,
                };
                for l in live.iter_mut() {
                    let m = &mut l.model;
                    if m.disconnected || !m.wants(topic.as_str()) {
                        continue;
                    }
                    if m.route.is_some() && m.route != resolved {
                        totals.filtered_out += 1;
                        continue;
                    }
                    m.push(seen.clone(), &mut totals);
                }
            }
            Op::TryRecv { sub } | Op::RecvTimeout { sub } => {
                if live.is_empty() {
                    continue;
                }
                let k = usize::from(sub) % live.len();
                let l = &mut live[k];
                // Settle even when closed: after a close by the publisher's drop the
                // shards are still dispatching, and a receive that made room first would
                // change what the next push does.
                settle(&bus);
                assert_eq!(l.sub.len(), l.model.len(), "{}: queue length", at());
                assert_eq!(l.sub.dropped(), l.model.dropped, "{}: dropped()", at());
                let got = match op {
                    // Closed: the queue's close may still be on its way; wait for it.
                    _ if closed => Got::from_timeout(l.sub.recv_timeout(HANG)),
                    Op::TryRecv { .. } => Got::from_try(l.sub.try_recv()),
                    _ => Got::from_timeout(l.sub.recv_timeout(SHORT)),
                };
                let want = l.model.try_recv(closed);
                assert_ne!(
                    (closed, &got),
                    (true, &Got::Empty),
                    "hang: {}: nothing within {HANG:?} on a closed bus",
                    at()
                );
                assert_eq!(got, want, "{}: subscriber made at step {}", at(), l.made_at);
            }
            Op::Drop { sub } => {
                if live.is_empty() {
                    continue;
                }
                // Settle first: what the shard pushed into the queue before the drop
                // counts in the totals, and that must not depend on timing.
                settle(&bus);
                let k = usize::from(sub) % live.len();
                drop(live.remove(k));
            }
            Op::Close { odds: 8.., .. } => {}
            Op::Close { by_publisher, .. } => {
                let now = if by_publisher {
                    publisher.take().map(|p| {
                        drop(p);
                        CloseReason::PublisherDropped
                    })
                } else {
                    bus.close();
                    Some(CloseReason::CloseCalled)
                };
                close_reason = close_reason.or(now);
                closed = true;
                assert!(bus.is_closed(), "{}", at());
                let e = bus.publisher().expect_err("a publisher from a closed bus");
                assert!(matches!(e, BusError::Closed(_)), "{}: {e}", at());
                assert_eq!(e.close_reason(), close_reason, "{}: {e}", at());
            }
        }
    }

    // Close, then drain everyone: a closed bus answers every receive at once.
    drop(publisher);
    bus.close();
    for l in live.iter_mut() {
        // A queue of capacity c holds at most c events, a `Lagged` before each (gaps can sit
        // between queued events: a DropNewest drop, then a pop, then a push), one held-back
        // event, a final `Lagged`, and `Closed`.
        let bound = 2 * l.model.capacity + 4;
        let mut closed = false;
        for _ in 0..bound {
            let got = Got::from_timeout(l.sub.recv_timeout(HANG));
            assert_ne!(got, Got::Empty, "hang: drain: nothing within {HANG:?} on a closed bus");
            let want = l.model.try_recv(true);
            assert_eq!(got, want, "drain: subscriber made at step {}", l.made_at);
            if got == Got::Closed {
                closed = true;
                break;
            }
        }
        assert!(
            closed,
            "drain: no Closed within {bound} receives, subscriber made at step {}",
            l.made_at
        );
        let m = &l.model;
        assert_eq!(Got::from_try(l.sub.try_recv()), Got::Closed, "Closed is final");
        assert_eq!(m.received + m.lagged, m.matched, "received + lagged == matched");
        assert_eq!(l.sub.dropped(), m.dropped, "dropped(), subscriber made at step {}", l.made_at);
        assert_eq!(m.received + l.sub.dropped(), m.matched, "received + dropped() == matched");
    }

    let stats = bus.shard_stats();
    assert_eq!(stats.len(), dispatchers);
    for s in &stats {
        assert_eq!(s.dispatched, published, "shard {} dispatched every event", s.shard);
        assert_eq!(s.route_hits + s.route_misses, s.dispatched, "shard {}: route cache", s.shard);
        assert_eq!(s.filter_panics, 0);
        let c = bindings.counts;
        let got = (s.binds, s.unbinds, s.binding_hits, s.binding_misses, s.binding_evictions);
        let want = (c.binds, c.unbinds, c.binding_hits, c.binding_misses, c.binding_evictions);
        assert_eq!(
            got, want,
            "shard {}: binding counters (binds, unbinds, hits, misses, evictions)",
            s.shard
        );
    }
    let sum = |f: fn(&shardcast::stats::ShardStats) -> u64| stats.iter().map(f).sum::<u64>();
    assert_eq!(sum(|s| s.delivered), totals.delivered, "shards' delivered");
    assert_eq!(sum(|s| s.filtered_out), totals.filtered_out, "shards' filtered_out");
    assert_eq!(sum(|s| s.dropped), totals.dropped, "shards' dropped (every policy's losses)");
    Verdict::Checked
}
