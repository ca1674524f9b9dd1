//! Late binding (alias → route) through a real bus with a small `binding_capacity`,
//! against [`LateBindingModel`] (a `HashMap` and a `VecDeque`
//! recency list).
//!
//! The cache is internal to each shard (`routing::BindingCache` over `lru::Lru`), so it is
//! driven black-box: `.binds()` events (alias and route), `.unbinds()` events, alias-only
//! lookups and events that need no binding. Every delivery's [`Delivery::resolved_route`] must be the
//! model's resolution, a route-filtered subscriber must get exactly the events resolved to
//! its route, and after close every shard's binds / unbinds / hits / misses / evictions
//! counters must equal the model's (every shard resolves every event identically).
//!
//! [`Delivery::resolved_route`]: shardcast::Delivery::resolved_route

use arbitrary::Arbitrary;
use shardcast::{Alias, Bus, Event, RecvTimeoutError, Subscriber, Subscription, Topic, Uuid};

use crate::late_binding::{LateBindingModel, Mark};
use crate::support::decode_and_check;
use crate::{Seq, Verdict, HANG};

/// Distinct aliases (more than the largest capacity, so evictions happen).
pub const ALIASES: u8 = 6;
/// Distinct routes (`Uuid::from_u128(1..=ROUTES)`).
pub const ROUTES: u8 = 3;
/// Largest binding capacity tried (`capacity % (MAX_CAPACITY + 1)`).
pub const MAX_CAPACITY: u8 = 4;
/// Longest op sequence a check runs; longer inputs are rejected. Also every subscriber's
/// queue capacity, so nothing is ever lost.
pub const MAX_OPS: usize = 256;

/// The bus to build and the events to publish.
#[derive(Debug, Clone, Arbitrary)]
pub struct Input {
    /// Shards: `1 + dispatchers % 2`.
    pub dispatchers: u8,
    /// Binding capacity: `capacity % (MAX_CAPACITY + 1)`, 0 included.
    pub capacity: u8,
    /// One event each.
    pub ops: Seq<Op>,
}

/// One event.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Op {
    /// Alias, route, `.binds()`: records (or replaces) the binding.
    Bind {
        /// `alias % ALIASES`.
        alias: u8,
        /// `route % ROUTES`.
        route: u8,
    },
    /// Alias, optional own route, `.unbinds()`: resolves, then forgets the alias.
    Unbind {
        /// `alias % ALIASES`.
        alias: u8,
        /// `route % ROUTES`.
        route: Option<u8>,
    },
    /// Alias only: delivered with the bound route, if any.
    Lookup {
        /// `alias % ALIASES`.
        alias: u8,
    },
    /// `.binds()` with an alias but no route: only a lookup.
    BindWithoutRoute {
        /// `alias % ALIASES`.
        alias: u8,
    },
    /// An own route (and maybe an alias): the own route wins, nothing is touched.
    Routed {
        /// `alias % ALIASES`.
        alias: Option<u8>,
        /// `route % ROUTES`.
        route: u8,
    },
    /// Neither alias nor route.
    Plain,
}

fn route(i: u8) -> Uuid {
    Uuid::from_u128(u128::from(i % ROUTES) + 1)
}

fn alias(i: u8) -> Alias {
    Alias::new("conn", &format!("k{}", i % ALIASES)).expect("valid alias")
}

impl Op {
    /// `(alias index, own route, mark)`.
    fn parts(self) -> (Option<u8>, Option<u8>, Mark) {
        match self {
            Op::Bind { alias, route } => (Some(alias), Some(route), Mark::Binds),
            Op::Unbind { alias, route } => (Some(alias), route, Mark::Unbinds),
            Op::Lookup { alias } => (Some(alias), None, Mark::None),
            Op::BindWithoutRoute { alias } => (Some(alias), None, Mark::Binds),
            Op::Routed { alias, route } => (alias, Some(route), Mark::None),
            Op::Plain => (None, None, Mark::None),
        }
    }
}

/// Decodes `data` as the fuzz target does and runs [`check`].
pub fn check_bytes(data: &[u8]) -> Verdict {
    decode_and_check(data, check)
}

/// Receives until `Closed`: `(seq, resolved route)` per event; nothing may be lost.
fn drain(sub: &mut Subscriber<usize>) -> Vec<(u64, Option<Uuid>)> {
    let mut got = Vec::new();
    // A delivery borrows `sub` until the match ends, error arms included.
    let name = sub.name().to_owned();
    loop {
        match sub.recv_timeout(HANG) {
            Ok(d) => got.push((d.seq(), d.resolved_route())),
            Err(RecvTimeoutError::Closed) => return got,
            Err(RecvTimeoutError::Lagged(n)) => panic!("{name}: lost {n} events"),
            Err(RecvTimeoutError::Timeout) => {
                panic!("hang: {name}: nothing within {HANG:?} on a closed bus")
            }
        }
    }
}

/// Publishes every op's event, closes, and compares routes and counters with the model.
pub fn check(input: &Input) -> Verdict {
    if input.ops.0.len() > MAX_OPS {
        return Verdict::Rejected;
    }
    let dispatchers = 1 + usize::from(input.dispatchers % 2);
    let capacity = usize::from(input.capacity % (MAX_CAPACITY + 1));
    let bus: Bus<usize> = Bus::builder()
        .dispatchers(dispatchers)
        .ring_capacity(16)
        .binding_capacity(capacity)
        .build()
        .expect("a valid configuration builds");
    // One unfiltered subscriber per shard (least-loaded placement puts one on each), so
    // every shard's resolution is observed, plus one filtered on route 0.
    let mut all: Vec<Subscriber<usize>> = (0..dispatchers)
        .map(|i| {
            let s = Subscription::all().capacity(MAX_OPS).name(format!("all-{i}"));
            bus.subscribe(s).expect("subscribe")
        })
        .collect();
    let mut routed = bus
        .subscribe(Subscription::all().route(route(0)).capacity(MAX_OPS).name("route-0"))
        .expect("subscribe");
    let mut publisher = bus.publisher().expect("publisher");
    let topic = Topic::new("sessions.events").expect("valid topic");

    let mut model = LateBindingModel::new(capacity);
    let mut want = Vec::with_capacity(input.ops.0.len());
    for (i, op) in input.ops.0.iter().enumerate() {
        let (a, r, mark) = op.parts();
        let mut event = Event::new(topic.clone(), i);
        if let Some(a) = a {
            event = event.with_alias(alias(a));
        }
        if let Some(r) = r {
            event = event.with_route(route(r));
        }
        event = match mark {
            Mark::None => event,
            Mark::Binds => event.binds(),
            Mark::Unbinds => event.unbinds(),
        };
        let seq = publisher.publish_timeout(event, HANG).expect("no hang, bus open");
        assert_eq!(seq, i as u64);
        let resolved = model.resolve(a.map(|a| usize::from(a % ALIASES)), r.map(route), mark);
        want.push((seq, resolved));
        assert!(model.len() <= capacity);
    }
    drop(publisher);

    for sub in all.iter_mut() {
        let got = drain(sub);
        for (g, w) in got.iter().zip(&want) {
            assert_eq!(
                g,
                w,
                "{}: event {} ({:?}): (seq, route)",
                sub.name(),
                w.0,
                input.ops.0[w.0 as usize]
            );
        }
        assert_eq!(got.len(), want.len(), "{}: every event delivered", sub.name());
    }
    let want_routed: Vec<_> = want.iter().copied().filter(|&(_, r)| r == Some(route(0))).collect();
    assert_eq!(drain(&mut routed), want_routed, "route-filtered subscriber");

    bus.close(); // joins the shards: their counters are final
    let c = model.counts;
    for s in bus.shard_stats() {
        assert_eq!(s.dispatched, want.len() as u64, "shard {}", s.shard);
        let got = (s.binds, s.unbinds, s.binding_hits, s.binding_misses, s.binding_evictions);
        let want = (c.binds, c.unbinds, c.binding_hits, c.binding_misses, c.binding_evictions);
        assert_eq!(
            got, want,
            "shard {}: (binds, unbinds, hits, misses, evictions), capacity {capacity}",
            s.shard
        );
    }
    Verdict::Checked
}
