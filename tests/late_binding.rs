//! Promise: events carrying an alias and no route are delivered with the route bound to
//! the alias by an earlier `.binds()` event; `.unbinds()` resolves, then forgets; the
//! binding cache is bounded (LRU, evictions counted); every shard resolves identically.

use std::time::Duration;

use shardcast::{Alias, Bus, Event, RecvTimeoutError, Subscriber, Subscription, Topic, Uuid};

const HANG: Duration = Duration::from_secs(30);

fn topic() -> Topic {
    Topic::new("sessions.events").unwrap()
}

fn alias(key: &str) -> Alias {
    Alias::new("connector-1", key).unwrap()
}

/// Receives until `Closed`: `(seq, resolved route)` per event.
fn drain(sub: &mut Subscriber<u32>) -> Vec<(u64, Option<Uuid>)> {
    let mut got = Vec::new();
    loop {
        match sub.recv_timeout(HANG) {
            Ok(d) => got.push((d.seq(), d.resolved_route())),
            Err(RecvTimeoutError::Closed) => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Publishes the scenario, closes, and returns what an all-subscriber got.
fn run(
    shards: usize,
    binding_capacity: usize,
    events: Vec<Event<u32>>,
) -> Vec<(u64, Option<Uuid>)> {
    let bus: Bus<u32> =
        Bus::builder().dispatchers(shards).binding_capacity(binding_capacity).build().unwrap();
    // One subscriber per shard, so every shard's resolution is observed.
    let mut subs: Vec<_> =
        (0..shards).map(|_| bus.subscribe(Subscription::all()).unwrap()).collect();
    let mut publisher = bus.publisher().unwrap();
    for event in events {
        publisher.publish_blocking(event).unwrap();
    }
    drop(publisher);
    let results: Vec<_> = subs.iter_mut().map(drain).collect();
    for r in &results[1..] {
        assert_eq!(r, &results[0], "shards resolved differently");
    }
    results.into_iter().next().unwrap()
}

fn ev(n: u32) -> Event<u32> {
    Event::new(topic(), n)
}

#[test]
fn binding_then_follow_up_gets_the_route() {
    let session = Uuid::from_u128(1);
    for shards in [1, 4] {
        let got = run(
            shards,
            16,
            vec![
                ev(0).with_alias(alias("s1")), // before: no route
                ev(1).with_alias(alias("s1")).with_route(session).binds(), // binding
                ev(2).with_alias(alias("s1")), // follow-up
                ev(3).with_alias(alias("other")), // unrelated alias
                ev(4).with_alias(alias("s1")).unbinds(), // resolved, then unbound
                ev(5).with_alias(alias("s1")), // no longer bound
                ev(6).with_route(Uuid::from_u128(9)).with_alias(alias("s1")), // own route wins
            ],
        );
        assert_eq!(
            got,
            [
                (0, None),
                (1, Some(session)),
                (2, Some(session)),
                (3, None),
                (4, Some(session)),
                (5, None),
                (6, Some(Uuid::from_u128(9))),
            ],
            "shards = {shards}"
        );
    }
}

#[test]
fn rebinding_moves_the_alias() {
    let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
    let got = run(
        2,
        16,
        vec![
            ev(0).with_alias(alias("s")).with_route(a).binds(),
            ev(1).with_alias(alias("s")),
            ev(2).with_alias(alias("s")).with_route(b).binds(),
            ev(3).with_alias(alias("s")),
        ],
    );
    let routes: Vec<_> = got.into_iter().map(|(_, r)| r).collect();
    assert_eq!(routes, [Some(a), Some(a), Some(b), Some(b)]);
}

#[test]
fn eviction_at_capacity_is_least_recently_used_and_counted() {
    let route = |n| Uuid::from_u128(n);
    let bus: Bus<u32> = Bus::builder().dispatchers(2).binding_capacity(2).build().unwrap();
    let mut sub = bus.subscribe(Subscription::all()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    let events = vec![
        ev(0).with_alias(alias("a")).with_route(route(1)).binds(),
        ev(1).with_alias(alias("b")).with_route(route(2)).binds(),
        ev(2).with_alias(alias("a")), // touch a: b is now the least recently used
        ev(3).with_alias(alias("c")).with_route(route(3)).binds(), // evicts b
        ev(4).with_alias(alias("a")),
        ev(5).with_alias(alias("b")),
        ev(6).with_alias(alias("c")),
    ];
    for e in events {
        publisher.publish_blocking(e).unwrap();
    }
    drop(publisher);
    let routes: Vec<_> = drain(&mut sub).into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        routes,
        [
            Some(route(1)),
            Some(route(2)),
            Some(route(1)),
            Some(route(3)),
            Some(route(1)),
            None,
            Some(route(3))
        ]
    );
    bus.close();
    for shard in bus.shard_stats() {
        assert_eq!(shard.binds, 3, "{shard:?}");
        assert_eq!(shard.binding_evictions, 1, "{shard:?}");
        assert_eq!(shard.binding_hits, 3, "{shard:?}");
        assert_eq!(shard.binding_misses, 1, "{shard:?}");
    }
}

#[test]
fn route_subscription_receives_exactly_its_routes_events() {
    let (mine, theirs) = (Uuid::from_u128(7), Uuid::from_u128(8));
    for shards in [1, 3] {
        let bus: Bus<u32> = Bus::builder().dispatchers(shards).build().unwrap();
        let mut routed = bus.subscribe(Subscription::all().route(mine)).unwrap();
        let mut patterned =
            bus.subscribe(Subscription::to("sessions.>").unwrap().route(mine)).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let mut want = Vec::new();
        for i in 0..300u32 {
            let event = match i % 5 {
                0 => ev(i).with_route(mine),
                1 => ev(i).with_route(theirs),
                2 => ev(i).with_alias(alias(&format!("k{}", i % 4))), // bound below or not
                3 => ev(i)
                    .with_alias(alias(&format!("k{}", i % 4)))
                    .with_route(if i % 2 == 0 { mine } else { theirs })
                    .binds(),
                _ => ev(i),
            };
            publisher.publish_blocking(event).unwrap();
        }
        drop(publisher);
        // The model: replay the same resolution rules.
        let mut bound = std::collections::HashMap::new();
        for i in 0..300u32 {
            let key = format!("k{}", i % 4);
            let route = match i % 5 {
                0 => Some(mine),
                1 => Some(theirs),
                2 => bound.get(&key).copied(),
                3 => {
                    let r = if i % 2 == 0 { mine } else { theirs };
                    bound.insert(key, r);
                    Some(r)
                }
                _ => None,
            };
            if route == Some(mine) {
                want.push(u64::from(i));
            }
        }
        for sub in [&mut routed, &mut patterned] {
            let got: Vec<u64> = drain(sub)
                .into_iter()
                .map(|(seq, r)| {
                    assert_eq!(r, Some(mine));
                    seq
                })
                .collect();
            assert_eq!(got, want, "shards = {shards}");
        }
    }
}

#[test]
fn bad_aliases_are_typed_errors() {
    assert!(Alias::new("", "k").is_err());
    assert!(Alias::new("ns", "").is_err());
    assert!(Alias::new("ns", &"k".repeat(256)).is_err());
    assert!(Alias::new("ns", &"k".repeat(255)).is_ok());
    assert_eq!(Alias::new("ns", "").unwrap_err().to_string(), "invalid alias: empty key");
}

#[test]
fn binding_capacity_zero_turns_late_binding_off() {
    let got = run(
        1,
        0,
        vec![
            ev(0).with_alias(alias("s")).with_route(Uuid::from_u128(1)).binds(),
            ev(1).with_alias(alias("s")),
        ],
    );
    assert_eq!(got, [(0, Some(Uuid::from_u128(1))), (1, None)]);
}

/// `Delivery::resolved_route()` is the resolved route; `Event::route` (through `Deref`) is
/// the published one; the deprecated `Delivery::route()` still answers the resolved one
/// for this release.
#[test]
fn resolved_route_and_published_route_are_distinct() {
    let bus: Bus<u32> = Bus::builder().build().unwrap();
    let mut sub = bus.subscribe(Subscription::all()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    let route = Uuid::from_u128(42);
    publisher
        .publish_blocking(Event::new(topic(), 0).with_alias(alias("a")).with_route(route).binds())
        .unwrap();
    publisher.publish_blocking(Event::new(topic(), 1).with_alias(alias("a"))).unwrap();
    publisher.close();
    let bound = sub.recv_timeout(HANG).unwrap();
    assert_eq!((Event::route(&bound), bound.resolved_route()), (Some(route), Some(route)));
    drop(bound);
    let late = sub.recv_timeout(HANG).unwrap();
    assert_eq!(Event::route(&late), None, "published without a route");
    assert_eq!(late.resolved_route(), Some(route), "resolved through its alias");
    #[allow(deprecated)]
    let old = late.route();
    assert_eq!(old, late.resolved_route());
}
