//! Promise: `$SYS` topics (the bus's own stats events) are never exported, not even by an
//! export whose pattern is `>`.

mod common;

use std::time::Duration;

use shardcast::stats::StatsDelta;
use shardcast::{Bus, Event, Subscription, Topic};
use shardcast_nats::{ExportOptions, ImportOptions};

use common::{bridge, eventually, within, NatsServer};

#[derive(Debug, serde::Serialize, serde::Deserialize)]
enum Msg {
    Order(u64),
    Stats(Box<StatsDelta>),
}

impl From<StatsDelta> for Msg {
    fn from(delta: StatsDelta) -> Self {
        Msg::Stats(Box::new(delta))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_events_stay_home() {
    let server = NatsServer::start();
    let (a, b) = (bridge(&server).await, bridge(&server).await);
    let bus_a: Bus<Msg> = Bus::builder().build().unwrap();
    let bus_b: Bus<Msg> = Bus::builder().build().unwrap();
    let mut sys_a = bus_a.subscribe(Subscription::to("$SYS.>").unwrap()).unwrap();
    let _export = a.export(&bus_a, ">", ExportOptions::default()).unwrap();
    let mut received = bus_b.subscribe(Subscription::all().capacity(1024)).unwrap();
    let _import =
        b.import(bus_b.publisher().unwrap(), ">", ImportOptions::default()).await.unwrap();
    within("subscribed", b.round_trip()).await.unwrap();
    bus_a.publish_stats_every(Duration::from_millis(5)).unwrap();

    let mut publisher = bus_a.publisher().unwrap();
    let topic = Topic::new("orders.eu").unwrap();
    for id in 0..5 {
        let event = Event::new(topic.clone(), Msg::Order(id));
        within("ring space", publisher.publish(event)).await.unwrap();
        // A stats event is published on bus A between orders.
        let stats = within("a stats event", sys_a.recv()).await.unwrap();
        assert!(stats.topic().is_system());
    }
    for id in 0..5 {
        let got = within("next order", received.recv()).await.unwrap();
        assert_eq!(got.topic().as_str(), "orders.eu", "only orders cross");
        assert!(matches!(got.payload(), Msg::Order(n) if *n == id));
    }
    // The stats events published between the orders came before the last order in the
    // export's queue: had any been exported, it would be counted by now.
    within("round trip", a.round_trip()).await.unwrap();
    eventually("export idle", || a.stats().in_flight == 0).await;
    assert_eq!(a.stats().exported, 5);
    // `imported` moves just after the bus took the event: wait for it, don't race it.
    eventually("imported 5", || b.stats().imported == 5).await;
}
