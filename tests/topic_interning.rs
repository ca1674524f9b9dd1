//! Interned topics: the first `Topic::INTERN_LIMIT` distinct topics of a process are
//! interned, later ones are reference-counted, and both kinds behave the same everywhere.
//! One test in its own binary: it fills the process's table.

use shardcast::{Bus, Event, Subscription, Topic};

#[test]
fn interned_then_counted_topics_route_alike() {
    let hot = Topic::new("orders.eu.created").unwrap();
    assert!(hot.is_interned());
    assert!(hot.clone().is_interned());
    for i in 0..Topic::INTERN_LIMIT {
        Topic::new(&format!("fill.t{i}")).unwrap();
    }
    let late = Topic::new("late.one").unwrap();
    assert!(!late.is_interned(), "the table is full");
    // A topic interned before the table filled is still found by its text.
    assert!(Topic::new("orders.eu.created").unwrap().is_interned());
    // A counted topic equals, hashes and orders like any other of the same text.
    let again = Topic::new("late.one").unwrap();
    assert_eq!(late, again);
    let hash = |t: &Topic| {
        use std::hash::{BuildHasher, RandomState};
        let s = RandomState::new();
        (s.hash_one(t), s.hash_one(t))
    };
    let (a, b) = hash(&late);
    assert_eq!(a, b);

    let bus: Bus<u32> = Bus::builder().build().unwrap();
    let mut late_sub = bus.subscribe(Subscription::to("late.>").unwrap()).unwrap();
    let mut hot_sub = bus.subscribe(Subscription::to("orders.>").unwrap()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    for i in 0..100 {
        publisher.publish_blocking(Event::new(late.clone(), i)).unwrap();
        publisher.publish_blocking(Event::new(hot.clone(), i)).unwrap();
        publisher.publish_to_blocking("late.one", 1000 + i).unwrap();
    }
    publisher.close();
    let mut late_got = Vec::new();
    while let Ok(d) = late_sub.recv_blocking() {
        assert_eq!(d.topic(), &late);
        late_got.push(*d.payload());
    }
    let hot_got: Vec<u32> =
        std::iter::from_fn(|| hot_sub.recv_blocking().ok().map(|d| *d.payload())).collect();
    let want_late: Vec<u32> = (0..100).flat_map(|i| [i, 1000 + i]).collect();
    assert_eq!(late_got, want_late);
    assert_eq!(hot_got, (0..100).collect::<Vec<_>>());
}
