//! Promise: two buses that each export and import the same subjects (a ring through
//! NATS) see every event exactly once; no bridge re-exports what it imported.

mod common;

use std::collections::HashSet;

use shardcast::{Bus, Event, Subscriber, Subscription, Topic, TryRecvError};
use shardcast_nats::{Bridge, BridgeStats, ExportOptions, ImportOptions};

use common::{bridge, eventually, within, NatsServer};

const PER_SIDE: u64 = 2_000;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Msg {
    side: char,
    id: u64,
}

async fn receive_all(sub: &mut Subscriber<Msg>, count: u64) -> HashSet<(char, u64)> {
    let mut seen = HashSet::new();
    for _ in 0..count {
        let got = within("next event", sub.recv()).await.expect("no loss, no close");
        let key = (got.payload().side, got.payload().id);
        assert!(seen.insert(key), "{key:?} delivered twice");
    }
    seen
}

/// Waits until neither bridge has anything in flight and two round trips in a row see
/// the same counters: whatever a loop would have sent has arrived by then.
async fn quiescent(a: &Bridge, b: &Bridge) -> (BridgeStats, BridgeStats) {
    let mut last = (a.stats(), b.stats());
    within("quiescence", async {
        loop {
            a.round_trip().await.unwrap();
            b.round_trip().await.unwrap();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let now = (a.stats(), b.stats());
            if now == last && now.0.in_flight == 0 && now.1.in_flight == 0 {
                return now;
            }
            last = now;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_side_sees_each_event_once() {
    let server = NatsServer::start();
    let (a, b) = (bridge(&server).await, bridge(&server).await);
    let bus_a: Bus<Msg> = Bus::builder().build().unwrap();
    let bus_b: Bus<Msg> = Bus::builder().build().unwrap();
    let mut seen_a = bus_a.subscribe(Subscription::to("orders.>").unwrap().capacity(8192)).unwrap();
    let mut seen_b = bus_b.subscribe(Subscription::to("orders.>").unwrap().capacity(8192)).unwrap();
    let big = || ExportOptions::default().capacity(8192);
    let _export_a = a.export(&bus_a, "orders.>", big()).unwrap();
    let _export_b = b.export(&bus_b, "orders.>", big()).unwrap();
    let import_a =
        a.import(bus_a.publisher().unwrap(), "orders.>", ImportOptions::default()).await.unwrap();
    let import_b =
        b.import(bus_b.publisher().unwrap(), "orders.>", ImportOptions::default()).await.unwrap();
    within("subscribed", a.round_trip()).await.unwrap();
    within("subscribed", b.round_trip()).await.unwrap();

    let (local_a, local_b) = (import_a.sender(), import_b.sender());
    let (topic_a, topic_b) = (Topic::new("orders.a").unwrap(), Topic::new("orders.b").unwrap());
    for id in 0..PER_SIDE {
        let event = Event::new(topic_a.clone(), Msg { side: 'a', id });
        within("publish a", local_a.publish(event)).await.unwrap();
        let event = Event::new(topic_b.clone(), Msg { side: 'b', id });
        within("publish b", local_b.publish(event)).await.unwrap();
    }

    let expected: HashSet<(char, u64)> =
        (0..PER_SIDE).flat_map(|id| [('a', id), ('b', id)]).collect();
    assert_eq!(receive_all(&mut seen_a, 2 * PER_SIDE).await, expected);
    assert_eq!(receive_all(&mut seen_b, 2 * PER_SIDE).await, expected);

    let (sa, sb) = quiescent(&a, &b).await;
    // Each bridge exported its own side's events only, and imported the other side's.
    assert_eq!((sa.exported, sb.exported), (PER_SIDE, PER_SIDE));
    assert_eq!((sa.imported, sb.imported), (PER_SIDE, PER_SIDE));
    // Its own exports came back from NATS and were skipped.
    assert_eq!((sa.import_own_skipped, sb.import_own_skipped), (PER_SIDE, PER_SIDE));
    for seen in [&mut seen_a, &mut seen_b] {
        assert!(matches!(seen.try_recv(), Err(TryRecvError::Empty)), "an event looped");
    }
    eventually("exports drained", || {
        [&bus_a, &bus_b]
            .iter()
            .all(|bus| bus.stats().subscribers.iter().all(|s| s.queue_depth == 0))
    })
    .await;
}
