//! Promise: the bus counts where every event went, snapshots are consistent plain data
//! (JSON round-trip, stable names, sorted), and the Prometheus text is valid exposition
//! format 0.0.4 (checked by a strict parser here and by `promtool check metrics`).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use shardcast::stats::{ExternalMetric, ExternalStats, StatsSnapshot, STATS_TOPIC_OVERFLOW};
use shardcast::{
    Bus, Event, Overflow, RecvTimeoutError, Subscriber, Subscription, Topic, TryPublishError,
};
use shardcast_models::prometheus::parse_prometheus;

use common::promtool_check;

fn topic(s: &str) -> Topic {
    Topic::new(s).unwrap()
}

fn drain(sub: &mut Subscriber<u64>) -> (u64, u64) {
    let (mut got, mut lagged) = (0, 0);
    loop {
        match sub.recv_timeout(Duration::from_secs(30)) {
            Ok(_) => got += 1,
            Err(RecvTimeoutError::Lagged(n)) => lagged += n,
            Err(RecvTimeoutError::Closed) => return (got, lagged),
            Err(RecvTimeoutError::Timeout) => panic!("hang"),
        }
    }
}

/// A bus with a lossless subscriber, a lossy one and a filtered one, after `n` events.
fn scenario(n: u64) -> (Bus<u64>, StatsSnapshot, [(u64, u64); 3]) {
    let bus: Bus<u64> = Bus::builder()
        .dispatchers(2)
        .latency_sample_every(1)
        .stats_topic_levels(2)
        .build()
        .unwrap();
    let mut all = bus.subscribe(Subscription::all().name("all").capacity(n as usize)).unwrap();
    let mut lossy = bus
        .subscribe(
            Subscription::all().name("lossy \"q\"\n\\").capacity(4).overflow(Overflow::DropNewest),
        )
        .unwrap();
    let mut eu = bus.subscribe(Subscription::to("orders.eu.>").unwrap().name("eu")).unwrap();
    let mut publisher = bus.publisher().unwrap();
    let topics = [topic("orders.eu.created"), topic("orders.us.created"), topic("billing")];
    for i in 0..n {
        publisher.publish_blocking(Event::new(topics[(i % 3) as usize].clone(), i)).unwrap();
    }
    drop(publisher);
    let got = [drain(&mut all), drain(&mut lossy), drain(&mut eu)];
    let stats = bus.stats();
    (bus, stats, got)
}

#[test]
fn counters_account_for_every_event() {
    let n = 300;
    let (_bus, s, got) = scenario(n);
    assert_eq!(s.version, shardcast::stats::STATS_VERSION);
    assert_eq!(s.published, n);
    assert_eq!((s.subscriptions, s.subscriptions_closed), (3, 0));
    assert_eq!(s.shards.len(), 2);
    for shard in &s.shards {
        assert_eq!(shard.dispatched, n, "every shard reads every event");
        assert_eq!(shard.backlog, 0);
        assert_eq!(
            shard.dropped,
            shard.dropped_newest
                + shard.dropped_oldest
                + shard.dropped_disconnect
                + shard.dropped_shutdown
        );
    }
    let by_name: BTreeMap<&str, _> = s.subscribers.iter().map(|x| (x.name.as_str(), x)).collect();
    let all = by_name["all"];
    assert_eq!((all.delivered, all.consumed, all.dropped), (n, n, 0));
    assert_eq!(got[0], (n, 0));
    let lossy = by_name["lossy \"q\"\n\\"];
    // Nothing lost that was not counted: received + lost = matched = n.
    assert_eq!(got[1].0 + got[1].1, n);
    assert_eq!(lossy.consumed, got[1].0);
    assert_eq!(lossy.dropped, got[1].1);
    assert_eq!(lossy.delivered + lossy.dropped, n);
    assert!(lossy.lagged_reports >= 1 || lossy.dropped == 0);
    let eu = by_name["eu"];
    assert_eq!(got[2], (n / 3, 0));
    assert_eq!(eu.consumed, n / 3);
    let delivered: u64 = s.shards.iter().map(|x| x.delivered).sum();
    assert_eq!(delivered, all.delivered + lossy.delivered + eu.delivered);
    assert_eq!(s.dropped(), lossy.dropped);
    // Topics, by 2-token prefix, sorted.
    let prefixes: Vec<&str> = s.topics.iter().map(|t| t.prefix.as_str()).collect();
    assert_eq!(prefixes, ["billing", "orders.eu", "orders.us"]);
    for t in &s.topics {
        assert_eq!(t.published, n / 3, "{t:?}");
    }
    let eu_topic = &s.topics[1];
    assert_eq!(
        eu_topic.delivered + eu_topic.dropped,
        3 * n / 3,
        "all, lossy and eu match orders.eu"
    );
    // Latency: sampled every receive here.
    assert_eq!(all.latency.samples, n);
    assert!(all.latency.p50_seconds > 0.0 && all.latency.p50_seconds <= all.latency.max_seconds);
    assert!(s.latency.samples >= n);
}

#[test]
fn subscription_pair_and_retired_latency() {
    let bus: Bus<u64> = Bus::builder().latency_sample_every(1).build().unwrap();
    let mut a = bus.subscribe(Subscription::all()).unwrap();
    let b = bus.subscribe(Subscription::all()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    publisher.publish_blocking(Event::new(topic("t"), 1)).unwrap();
    a.recv_blocking().unwrap();
    drop(a);
    drop(b);
    let s = bus.stats();
    assert_eq!((s.subscriptions, s.subscriptions_closed), (2, 2));
    assert!(s.subscribers.is_empty());
    assert_eq!(s.latency.samples, 1, "a gone subscriber's samples stay in the bus-wide latency");
}

#[test]
fn publisher_waits_and_occupancy() {
    let bus: Bus<u64> = Bus::builder().ring_capacity(2).build().unwrap();
    let stuck = bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
    let mut publisher = bus.publisher().unwrap();
    let mut full = 0;
    for i in 0..50 {
        if let Err(TryPublishError::Full(_)) = publisher.try_publish(Event::new(topic("t"), i)) {
            full += 1;
        }
    }
    assert!(full > 0);
    let s = bus.stats();
    assert_eq!(s.publisher_waits, full);
    assert!(s.ring_occupancy <= s.ring_capacity);
    drop(stuck);
}

#[test]
fn topic_table_is_bounded() {
    let bus: Bus<u64> =
        Bus::builder().stats_topic_capacity(4).stats_topic_levels(1).build().unwrap();
    let mut publisher = bus.publisher().unwrap();
    for i in 0..20 {
        publisher.publish_blocking(Event::new(topic(&format!("t{i}.x")), i)).unwrap();
    }
    bus.close();
    let s = bus.stats();
    assert_eq!(s.topics.len(), 5);
    assert_eq!(s.topics.last().unwrap().prefix, STATS_TOPIC_OVERFLOW);
    assert_eq!(s.topics.last().unwrap().published, 16);
    assert_eq!(s.topics.iter().map(|t| t.published).sum::<u64>(), 20);
}

#[test]
fn stats_off_keeps_the_core_counters() {
    let bus: Bus<u64> = Bus::builder().stats(false).build().unwrap();
    let mut sub = bus.subscribe(Subscription::all()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    publisher.publish_blocking(Event::new(topic("a.b"), 1)).unwrap();
    sub.recv_blocking().unwrap();
    let s = bus.stats();
    assert!(s.topics.is_empty());
    assert_eq!(s.latency.samples, 0);
    assert_eq!(s.subscribers[0].consumed, 1);
}

#[test]
fn json_round_trips_with_stable_names() {
    let (_bus, s, _) = scenario(30);
    let json = serde_json::to_string_pretty(&s).unwrap();
    let back: StatsSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, s);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    for key in [
        "version",
        "published",
        "publisher_waits",
        "ring_occupancy",
        "subscriptions",
        "subscriptions_closed",
        "shards",
        "subscribers",
        "topics",
        "latency",
    ] {
        assert!(value.get(key).is_some(), "missing {key}");
    }
    for key in ["delivered", "consumed", "dropped", "lagged_reports", "queue_depth", "latency"] {
        assert!(value["subscribers"][0].get(key).is_some(), "missing subscribers[].{key}");
    }
    let ids: Vec<u64> = s.subscribers.iter().map(|x| x.id).collect();
    let mut sorted = ids.clone();
    sorted.sort_unstable();
    assert_eq!(ids, sorted, "subscribers sorted by id");
}

#[test]
fn prometheus_text_is_valid_and_escapes_labels() {
    let (_bus, s, _) = scenario(60);
    let text = s.prometheus_text();
    let samples = parse_prometheus(&text).unwrap();
    let find = |name: &str, labels: &[(&str, &str)]| {
        samples
            .iter()
            .find(|(n, l, _)| {
                n == name && labels.iter().all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.2)
    };
    assert_eq!(find("shardcast_published_total", &[]), Some(60.0));
    // The label value with a quote, a newline and a backslash round-trips.
    let lossy_name = "lossy \"q\"\n\\";
    let consumed = find("shardcast_subscriber_consumed_total", &[("subscriber", lossy_name)])
        .expect("lossy row");
    let lossy = s.subscribers.iter().find(|x| x.name == lossy_name).unwrap();
    assert_eq!(consumed, lossy.consumed as f64);
    assert_eq!(find("shardcast_topic_published_total", &[("prefix", "orders.eu")]), Some(20.0));
    assert!(find("shardcast_receive_latency_seconds", &[("quantile", "0.99")]).is_some());
    // The bus-wide series and the per-subscriber ones have different names, so a `sum()`
    // over either counts each sample once: the per-subscriber counts add up to the bus's.
    let bus_count = find("shardcast_receive_latency_seconds_count", &[]).unwrap();
    let sub_counts: f64 = samples
        .iter()
        .filter(|(n, _, _)| n == "shardcast_subscriber_receive_latency_seconds_count")
        .map(|(_, _, v)| v)
        .sum();
    assert_eq!(sub_counts, bus_count);
    assert!(samples
        .iter()
        .filter(|(n, _, _)| n == "shardcast_receive_latency_seconds_count")
        .all(|(_, l, _)| l.is_empty()));
    assert!(text
        .lines()
        .filter(|l| l.starts_with("# TYPE"))
        .all(|l| !l.contains("_seconds counter")));
    promtool_check(&text);
}

/// An application's counters, kept outside the bus.
struct Jobs {
    worker: &'static str,
    done: std::sync::atomic::AtomicU64,
    extra: Vec<ExternalMetric>,
}

impl ExternalStats for Jobs {
    fn collect(&self, out: &mut Vec<ExternalMetric>) {
        let done = self.done.load(std::sync::atomic::Ordering::Relaxed) as f64;
        out.push(
            ExternalMetric::counter("app_jobs_total", "Jobs done.")
                .sample(&[("worker", self.worker)], done),
        );
        out.extend(self.extra.iter().cloned());
    }
}

#[test]
fn external_counters_show_in_stats_and_prometheus_text() {
    let (bus, _, _) = scenario(10);
    let jobs =
        |worker, extra| std::sync::Arc::new(Jobs { worker, done: Default::default(), extra });
    let a = jobs("a \"q\"\n", vec![ExternalMetric::gauge("app_up", "Up.").sample(&[], 1.0)]);
    let b = jobs(
        "b",
        vec![
            // The bus's own name: skipped, or the text would name one family twice.
            ExternalMetric::counter("shardcast_published_total", "Not the bus's.").sample(&[], 7.0),
            ExternalMetric::gauge("app-queue depth", "Sanitised.").sample(&[("in-box", "x")], 4.0),
        ],
    );
    a.done.store(2, std::sync::atomic::Ordering::Relaxed);
    b.done.store(5, std::sync::atomic::Ordering::Relaxed);
    bus.attach_stats(a.clone());
    bus.attach_stats(a.clone());
    bus.attach_stats(b.clone());

    let s = bus.stats();
    assert_eq!(s.external.len(), 5, "a attached once: {:?}", s.external);
    let json = serde_json::to_string(&s).unwrap();
    assert_eq!(serde_json::from_str::<StatsSnapshot>(&json).unwrap(), s);
    let mut older: serde_json::Value = serde_json::from_str(&json).unwrap();
    older.as_object_mut().unwrap().remove("external");
    let older: StatsSnapshot = serde_json::from_value(older).unwrap();
    assert!(older.external.is_empty(), "a snapshot from before the field still reads");

    let text = s.prometheus_text();
    // The strict parser, less its `shardcast_` prefix rule: external names are their own.
    let parsed = shardcast_models::prometheus::parse(&text).unwrap();
    let find = |name: &str, labels: &[(&str, &str)]| {
        parsed
            .samples
            .iter()
            .find(|s| {
                s.name == name
                    && labels.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|s| s.value)
    };
    assert_eq!(parsed.types.get("app_up").map(String::as_str), Some("gauge"));
    assert_eq!(find("app_jobs_total", &[("worker", "a \"q\"\n")]), Some(2.0));
    assert_eq!(find("app_jobs_total", &[("worker", "b")]), Some(5.0));
    assert_eq!(find("app_up", &[]), Some(1.0));
    assert_eq!(find("app_queue_depth", &[("in_box", "x")]), Some(4.0));
    assert_eq!(find("shardcast_published_total", &[]), Some(s.published as f64));
    assert_eq!(text.matches("# TYPE app_jobs_total counter").count(), 1, "one family:\n{text}");
    assert_eq!(text.matches("# TYPE shardcast_published_total").count(), 1);
    promtool_check(&text);

    // A dropped source is gone from the next snapshot; the other one stays.
    drop(b);
    let s = bus.stats();
    assert_eq!(s.external.len(), 2);
    assert!(s.prometheus_text().contains("app_jobs_total{worker=\"a \\\"q\\\"\\n\"} 2\n"));
    drop(a);
    assert!(bus.stats().external.is_empty());
}

mod sys_events {
    use super::*;
    use shardcast::stats::{StatsDelta, STATS_TOPIC};

    enum Msg {
        Data(u64),
        Stats(StatsDelta),
    }

    impl From<StatsDelta> for Msg {
        fn from(d: StatsDelta) -> Self {
            Msg::Stats(d)
        }
    }

    #[test]
    fn deltas_arrive_on_sys_stats_and_are_not_counted() {
        let bus: Bus<Msg> = Bus::builder().dispatchers(2).build().unwrap();
        let mut sys = bus.subscribe(Subscription::to("$SYS.>").unwrap()).unwrap();
        let mut data = bus.subscribe(Subscription::to("orders.>").unwrap()).unwrap();
        bus.publish_stats_every(Duration::from_millis(5)).unwrap();
        let mut publisher = bus.publisher().unwrap();
        for i in 0..10 {
            publisher.publish_blocking(Event::new(topic("orders.eu"), Msg::Data(i))).unwrap();
        }
        for i in 0..10 {
            assert!(matches!(data.recv_blocking().unwrap().payload(), Msg::Data(n) if *n == i));
        }
        // Deltas add up to what was published; the first may come before all 10.
        let mut published = 0;
        while published < 10 {
            let d = sys.recv_timeout(Duration::from_secs(30)).expect("a stats event");
            assert_eq!(d.topic().as_str(), STATS_TOPIC);
            match d.payload() {
                Msg::Stats(delta) => {
                    published += delta.published;
                    assert!(delta.topics.iter().all(|t| !t.prefix.starts_with("$SYS")));
                }
                Msg::Data(_) => panic!("data on $SYS"),
            }
        }
        assert_eq!(published, 10);
        // Idle: nothing changes, so no event comes, although intervals pass (bounded
        // check: 50 intervals).
        std::thread::sleep(Duration::from_millis(250));
        assert!(matches!(sys.try_recv(), Err(shardcast::TryRecvError::Empty)));
        // `$SYS` traffic is not in the bus, shard or topic counters.
        let s = bus.stats();
        assert_eq!(s.published, 10);
        assert_eq!(s.shards.iter().map(|x| x.delivered).sum::<u64>(), 10);
        assert!(s.topics.iter().all(|t| !t.prefix.starts_with("$SYS")));
        drop(publisher);
        drop(bus); // joins the stats thread too
    }
}

/// Found by `shardcast soak` (seed 14356390416667042106): a subscriber closed by a
/// `Disconnect` overflow vanished from `Bus::stats()` at the next subscribe or unsubscribe
/// anywhere on its shard, while its handle was alive and its losses still unread. It stays
/// in the snapshot, with its counts, until it is dropped.
#[test]
fn a_disconnected_subscriber_stays_in_stats_until_dropped() {
    let bus: Bus<u64> = Bus::builder().build().unwrap();
    let mut cut = bus
        .subscribe(Subscription::all().capacity(2).overflow(Overflow::Disconnect).name("cut"))
        .unwrap();
    let mut publisher = bus.publisher().unwrap();
    for i in 0..5 {
        publisher.publish_blocking(Event::new(topic("t"), i)).unwrap();
    }
    publisher.flush();
    // Two queued, the third overflowed and closed the queue.
    assert_eq!(cut.try_recv().unwrap().seq(), 0);
    // An edit of the shard's list: a subscribe, then an unsubscribe.
    drop(bus.subscribe(Subscription::all()).unwrap());
    let stats = bus.stats();
    let row = stats.subscribers.iter().find(|s| s.name == "cut");
    let row = row.expect("a disconnected subscriber whose handle lives is in the snapshot");
    assert_eq!((row.consumed, row.dropped), (1, 1));
    assert_eq!(bus.subscriber_count(), 1);
    drop(cut);
    assert!(bus.stats().subscribers.iter().all(|s| s.name != "cut"), "dropped: gone");
    assert_eq!(bus.subscriber_count(), 0);
}

#[test]
fn latency_without_samples_is_nan_not_zero() {
    let bus: Bus<u32> = Bus::builder().build().unwrap();
    let _sub = bus.subscribe(Subscription::all().name("idle")).unwrap();
    let s = bus.stats();
    assert_eq!(s.latency.samples, 0);
    assert!(s.latency.quantiles().iter().all(|(_, v)| v.is_nan()));
    let text = s.prometheus_text();
    for name in
        ["shardcast_receive_latency_seconds", "shardcast_subscriber_receive_latency_seconds"]
    {
        let quantile_lines: Vec<&str> =
            text.lines().filter(|l| l.starts_with(name) && l.contains("quantile=")).collect();
        assert_eq!(quantile_lines.len(), 4, "{name}: {quantile_lines:?}");
        assert!(quantile_lines.iter().all(|l| l.ends_with(" NaN")), "{quantile_lines:?}");
    }
    promtool_check(&text);
}
