//! Promise: pattern, multi-pattern and predicate subscriptions receive exactly the events
//! they ask for; a panicking predicate is caught, counted and treated as "no match", and
//! the shard carries on.

use std::time::Duration;

use shardcast::{Bus, Event, RecvTimeoutError, Subscriber, Subscription, Topic};

fn drain(sub: &mut Subscriber<u32>) -> Vec<u32> {
    let mut got = Vec::new();
    loop {
        match sub.recv_timeout(Duration::from_secs(30)) {
            Ok(d) => got.push(*d.payload()),
            Err(RecvTimeoutError::Closed) => return got,
            Err(e) => panic!("{e}"),
        }
    }
}

const TOPICS: [&str; 5] =
    ["orders.eu.created", "orders.us.created", "orders.eu.cancelled", "billing.eu", "audit"];

#[test]
fn patterns_and_predicates_select_exactly() {
    for shards in [1, 2] {
        let bus: Bus<u32> = Bus::builder().dispatchers(shards).build().unwrap();
        let mut created = bus.subscribe(Subscription::to("orders.*.created").unwrap()).unwrap();
        let mut eu_or_audit =
            bus.subscribe(Subscription::to_any(["*.eu.>", "*.eu", "audit"]).unwrap()).unwrap();
        let mut even_orders = bus
            .subscribe(Subscription::to("orders.>").unwrap().filter(|e| e.payload() % 2 == 0))
            .unwrap();
        let mut publisher = bus.publisher().unwrap();
        let topics: Vec<Topic> = TOPICS.iter().map(|t| Topic::new(t).unwrap()).collect();
        for i in 0..500u32 {
            publisher.publish_blocking(Event::new(topics[i as usize % 5].clone(), i)).unwrap();
        }
        drop(publisher);
        let want = |f: &dyn Fn(u32) -> bool| (0..500u32).filter(|&i| f(i)).collect::<Vec<_>>();
        assert_eq!(drain(&mut created), want(&|i| i % 5 < 2));
        assert_eq!(drain(&mut eu_or_audit), want(&|i| i % 5 != 1));
        assert_eq!(drain(&mut even_orders), want(&|i| i % 5 < 3 && i % 2 == 0));
        bus.close();
        let filtered: u64 = bus.shard_stats().iter().map(|s| s.filtered_out).sum();
        // Odd payloads on orders.* topics: 300 events, 150 odd.
        assert_eq!(filtered, 150);
    }
}

#[test]
fn a_panicking_predicate_is_caught_and_counted() {
    // Keep the default hook from printing 50 expected panics.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let bus: Bus<u32> = Bus::builder().build().unwrap();
    let mut fragile = bus
        .subscribe(Subscription::all().filter(|e| {
            assert!(e.payload() % 2 == 0, "odd payload");
            true
        }))
        .unwrap();
    let mut everything = bus.subscribe(Subscription::all()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    let topic = Topic::new("t").unwrap();
    for i in 0..100u32 {
        publisher.publish_blocking(Event::new(topic.clone(), i)).unwrap();
    }
    drop(publisher);
    let even: Vec<u32> = (0..100).filter(|i| i % 2 == 0).collect();
    assert_eq!(drain(&mut fragile), even);
    assert_eq!(drain(&mut everything), (0..100).collect::<Vec<_>>(), "the shard survived");
    bus.close();
    std::panic::set_hook(hook);
    let stats = &bus.shard_stats()[0];
    assert_eq!(stats.filter_panics, 50);
    assert_eq!(stats.delivered, 150);
}

#[test]
fn invalid_patterns_are_errors_not_panics() {
    assert!(Subscription::<u32>::to("a..b").is_err());
    assert!(Subscription::<u32>::to_any(["ok.>", "bad.>.x"]).is_err());
    assert!(Subscription::<u32>::to("").is_err());
}
