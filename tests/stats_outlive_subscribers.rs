//! Promise: a dropped subscriber's counters outlive it. They move into
//! `StatsSnapshot::retired` (per name and shard) at the instant it leaves
//! `StatsSnapshot::subscribers`, and in the Prometheus text into a series of the same name
//! and shard, so no total over subscribers (`sum`, `sum by (subscriber)`) goes down when one
//! is dropped. With `stats_subscriber_ids(false)`, subscribers that share a name share one
//! series. The alias binding families are left out until an alias is bound.
//!
//! Events are made visible with `Publisher::flush` and received with `try_recv`: nothing
//! depends on timing. Every snapshot's text is also checked against the model of the text
//! (`shardcast_models::stats_text::check_text`).

mod common;

use std::collections::BTreeMap;

use shardcast::stats::{StatsSnapshot, RETIRED_UNNAMED};
use shardcast::{
    Alias, Bus, Event, Overflow, Publisher, Subscriber, Subscription, Topic, TryRecvError, Uuid,
};
use shardcast_models::{prometheus, stats_text};

/// The per-subscriber counter families, in the order of [`Counts`].
const FAMILIES: [&str; 4] = [
    "shardcast_subscriber_delivered_total",
    "shardcast_subscriber_consumed_total",
    "shardcast_subscriber_dropped_total",
    "shardcast_subscriber_lagged_reports_total",
];

/// `delivered`, `consumed`, `dropped`, `lagged_reports`.
type Counts = [u64; 4];

fn add(into: &mut Counts, counts: Counts) {
    for (total, n) in into.iter_mut().zip(counts) {
        *total += n;
    }
}

/// Per counter family, the sum of every series by `subscriber` label: `sum by
/// (subscriber)`, whose values add up to `sum`.
fn text_sums(s: &StatsSnapshot) -> BTreeMap<String, Counts> {
    stats_text::check_text(s);
    let text = s.prometheus_text();
    common::promtool_check(&text);
    let parsed = prometheus::parse(&text).expect("valid exposition text");
    let mut sums: BTreeMap<String, Counts> = BTreeMap::new();
    for sample in &parsed.samples {
        let Some(i) = FAMILIES.iter().position(|f| *f == sample.name) else { continue };
        let name = sample.labels["subscriber"].clone();
        let value: u64 = sample.value_text.parse().expect("a counter is an integer");
        sums.entry(name).or_default()[i] += value;
    }
    sums
}

/// Live and retired rows together.
fn snapshot_totals(s: &StatsSnapshot) -> Counts {
    let mut totals = [0; 4];
    for x in &s.subscribers {
        add(&mut totals, [x.delivered, x.consumed, x.dropped, x.lagged_reports]);
    }
    for x in &s.retired {
        add(&mut totals, [x.delivered, x.consumed, x.dropped, x.lagged_reports]);
    }
    totals
}

fn total(sums: &BTreeMap<String, Counts>) -> Counts {
    let mut totals = [0; 4];
    for counts in sums.values() {
        add(&mut totals, *counts);
    }
    totals
}

/// At most `n` receives with `try_recv` (a `Lagged` report counts as one).
fn receive(sub: &mut Subscriber<u64>, n: usize) {
    for _ in 0..n {
        match sub.try_recv() {
            Ok(_) | Err(TryRecvError::Lagged(_)) => {}
            Err(TryRecvError::Empty) => return,
            Err(e) => panic!("try_recv on an open bus: {e}"),
        }
    }
}

/// Publishes `n` events and waits until every subscriber's counters show them.
fn publish(publisher: &mut Publisher<u64>, n: u64) {
    let topic = Topic::new("orders.eu").unwrap();
    for i in 0..n {
        publisher.publish_blocking(Event::new(topic.clone(), i)).unwrap();
    }
    publisher.flush();
}

/// `(subscription, events received per round)`.
fn subscriptions() -> Vec<(Subscription<u64>, usize)> {
    let lossy = || Subscription::all().capacity(2).overflow(Overflow::DropNewest);
    vec![
        // Never read: drops all but 2 events.
        (lossy().name("lossy"), 0),
        (lossy().name("lossy"), 0),
        // Loses events, then reads: `Lagged` reports.
        (Subscription::all().name("lagging").capacity(4).overflow(Overflow::DropNewest), 3),
        (Subscription::all().name("reader").capacity(64), 64),
        // Default names: fold into one row.
        (Subscription::all().capacity(8), 5),
        (Subscription::all().capacity(8), 0),
        // Stays.
        (Subscription::all().name("keeper").capacity(64), 64),
    ]
}

#[test]
fn no_total_goes_down_when_subscribers_are_dropped() {
    for ids in [true, false] {
        let bus: Bus<u64> =
            Bus::builder().dispatchers(2).stats_subscriber_ids(ids).build().unwrap();
        let mut publisher = bus.publisher().unwrap();
        let mut subs: Vec<(Subscriber<u64>, usize)> = subscriptions()
            .into_iter()
            .map(|(subscription, reads)| (bus.subscribe(subscription).unwrap(), reads))
            .collect();
        // Every subscriber but the last ("keeper") is dropped, one per round.
        let mut want: BTreeMap<(String, usize), (u64, Counts)> = BTreeMap::new();
        let mut named_defaults = Vec::new();
        while subs.len() > 1 {
            publish(&mut publisher, 20);
            for (sub, reads) in &mut subs {
                receive(sub, *reads);
            }
            let before = bus.stats();
            let before_text = text_sums(&before);
            let (gone, _) = subs.remove(0);
            let id = gone.id();
            let row = before.subscribers.iter().find(|x| x.id == id).expect("a live row").clone();
            match row.name.as_str() {
                "lossy" => assert!(row.dropped > 0, "{row:?}"),
                "lagging" => assert!(row.lagged_reports > 0, "{row:?}"),
                _ => {}
            }
            let given = !row.name.starts_with("sub-");
            if !given {
                named_defaults.push(row.name.clone());
            }
            drop(gone);

            let after = bus.stats();
            let ctx = format!("ids {ids}, dropped {row:?}");
            assert!(after.subscribers.iter().all(|x| x.id != id), "{ctx}");
            let name = if given { row.name.clone() } else { RETIRED_UNNAMED.to_owned() };
            let (n, counts) = want.entry((name, row.shard)).or_default();
            *n += 1;
            add(counts, [row.delivered, row.consumed, row.dropped, row.lagged_reports]);
            let got: BTreeMap<(String, usize), (u64, Counts)> = after
                .retired
                .iter()
                .map(|x| {
                    let counts = [x.delivered, x.consumed, x.dropped, x.lagged_reports];
                    ((x.name.clone(), x.shard), (x.subscribers, counts))
                })
                .collect();
            assert_eq!(got, want, "retired rows: what the dropped subscribers counted; {ctx}");

            // Nothing was in flight: the totals are exactly the same, live or retired.
            assert_eq!(snapshot_totals(&after), snapshot_totals(&before), "{ctx}");
            let after_text = text_sums(&after);
            assert_eq!(total(&after_text), total(&before_text), "sum(): {ctx}");
            assert_eq!(total(&after_text), snapshot_totals(&after), "{ctx}");
            // `sum by (subscriber)`: unchanged, but that a default name's counts move to
            // the unnamed row.
            let mut moved = before_text.clone();
            if !given {
                let counts = moved.remove(&row.name).expect("its series before the drop");
                add(moved.entry(RETIRED_UNNAMED.to_owned()).or_default(), counts);
            }
            assert_eq!(after_text, moved, "sum by (subscriber): {ctx}");

            // More traffic: every sum grows or stays.
            publish(&mut publisher, 5);
            let later = text_sums(&bus.stats());
            for (name, counts) in &after_text {
                let now = later.get(name).unwrap_or_else(|| panic!("{name} gone: {ctx}"));
                assert!(now.iter().zip(counts).all(|(now, was)| now >= was), "{name}: {ctx}");
            }
        }
        assert_eq!(named_defaults.len(), 2, "both default-named subscribers were dropped");
    }
}

#[test]
fn without_ids_subscribers_sharing_a_name_are_one_series() {
    let bus: Bus<u64> = Bus::builder().stats_subscriber_ids(false).build().unwrap();
    let mut reader = bus.subscribe(Subscription::all().name("conn")).unwrap();
    let lossy = bus
        .subscribe(Subscription::all().name("conn").capacity(1).overflow(Overflow::DropNewest))
        .unwrap();
    let mut publisher = bus.publisher().unwrap();
    publish(&mut publisher, 3);
    receive(&mut reader, 3);
    // One line per family, labelled by name and shard alone.
    let lines = |s: &StatsSnapshot, family: &str| -> Vec<String> {
        stats_text::check_text(s);
        let text = s.prometheus_text();
        common::promtool_check(&text);
        text.lines().filter(|l| l.starts_with(&format!("{family}{{"))).map(str::to_owned).collect()
    };
    let series = |family: &str, value: u64| {
        vec![format!("shardcast_subscriber_{family}{{subscriber=\"conn\",shard=\"0\"}} {value}")]
    };
    let s = bus.stats();
    assert_eq!(s.subscribers.len(), 2, "the snapshot still lists each subscriber");
    assert_eq!(lines(&s, "shardcast_subscriber_delivered_total"), series("delivered_total", 4));
    assert_eq!(lines(&s, "shardcast_subscriber_consumed_total"), series("consumed_total", 3));
    assert_eq!(lines(&s, "shardcast_subscriber_dropped_total"), series("dropped_total", 2));
    assert_eq!(lines(&s, "shardcast_subscriber_queue_depth"), series("queue_depth", 1));
    assert_eq!(lines(&s, "shardcast_subscriber_queue_capacity"), series("queue_capacity", 1025));
    assert!(!s.prometheus_text().contains("shardcast_subscriber_receive_latency_seconds"));

    // Dropped, one then the other: the same one series, the same counts; the gauges
    // follow the live subscribers.
    drop(lossy);
    let s = bus.stats();
    assert_eq!(lines(&s, "shardcast_subscriber_delivered_total"), series("delivered_total", 4));
    assert_eq!(lines(&s, "shardcast_subscriber_dropped_total"), series("dropped_total", 2));
    assert_eq!(lines(&s, "shardcast_subscriber_queue_capacity"), series("queue_capacity", 1024));
    drop(reader);
    let s = bus.stats();
    assert_eq!(lines(&s, "shardcast_subscriber_consumed_total"), series("consumed_total", 3));
    assert_eq!(lines(&s, "shardcast_subscriber_dropped_total"), series("dropped_total", 2));
    assert!(lines(&s, "shardcast_subscriber_queue_depth").is_empty());
    assert_eq!(s.retired.len(), 1);
    assert_eq!((s.retired[0].name.as_str(), s.retired[0].subscribers), ("conn", 2));
}

#[test]
fn binding_families_appear_once_an_alias_is_bound() {
    // Per binding family, its value per shard label.
    let binding_lines = |s: &StatsSnapshot| -> BTreeMap<String, BTreeMap<String, u64>> {
        stats_text::check_text(s);
        let text = s.prometheus_text();
        common::promtool_check(&text);
        let parsed = prometheus::parse(&text).expect("valid exposition text");
        let mut families: BTreeMap<String, BTreeMap<String, u64>> = BTreeMap::new();
        for sample in parsed.samples.iter().filter(|x| x.name.starts_with("shardcast_binding_")) {
            let value = sample.value_text.parse().expect("a counter is an integer");
            let shard = sample.labels["shard"].clone();
            families.entry(sample.name.clone()).or_default().insert(shard, value);
        }
        assert!(
            parsed.types.keys().filter(|f| f.starts_with("shardcast_binding_")).count()
                == families.len(),
            "no binding family without samples"
        );
        families
    };

    // A bus that never binds: no binding lines.
    let bus: Bus<u64> = Bus::builder().dispatchers(2).build().unwrap();
    let _sub = bus.subscribe(Subscription::all()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    publish(&mut publisher, 3);
    drop(publisher);
    bus.close(); // joins the shards: their counters are final
    assert!(binding_lines(&bus.stats()).is_empty());

    // One that binds: all five families, for every shard.
    let bus: Bus<u64> = Bus::builder().dispatchers(2).build().unwrap();
    let _sub = bus.subscribe(Subscription::all()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    let alias = Alias::new("connector-1", "s1").unwrap();
    let event = Event::new(Topic::new("sessions").unwrap(), 0);
    publisher
        .publish_blocking(event.with_alias(alias).with_route(Uuid::from_u128(1)).binds())
        .unwrap();
    drop(publisher);
    bus.close();
    let families = binding_lines(&bus.stats());
    let names: Vec<&str> = families.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "shardcast_binding_binds_total",
            "shardcast_binding_evictions_total",
            "shardcast_binding_hits_total",
            "shardcast_binding_misses_total",
            "shardcast_binding_unbinds_total",
        ]
    );
    for (family, shards) in &families {
        let want = u64::from(family == "shardcast_binding_binds_total");
        let shard = |n: &str| (n.to_owned(), want);
        assert_eq!(*shards, BTreeMap::from([shard("0"), shard("1")]), "{family}");
    }
}
