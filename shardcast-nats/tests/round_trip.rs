//! Promise: events exported from bus A arrive on bus B through NATS, all of them, once,
//! in order, with their topics and payloads, with the JSON codec and with raw bytes.

mod common;

use std::time::Instant;

use bytes::Bytes;
use shardcast::{Bus, Event, Overflow, RecvError, Subscription, Topic};
use shardcast_nats::{ExportOptions, ImportOptions, Raw, ALIAS_NAMESPACE};

use common::{bridge, eventually, within, NatsServer, DEADLINE};

/// Events per test: 20 000 rather than 100 000, which took 7.0 s (alone) to 10.3 s (on a
/// busy machine) for both tests together in a debug build on 2 cores; CI's budget is tight.
/// Since the import publishes from its task, 100 000 take about 2.5 s, but then runs can
/// lose events: 2 failures in about 60 runs (most of them two test binaries at once on 2
/// cores), one of them a gap of about 7 700 events mid-stream. The export does not feel
/// the importer, and async-nats's subscription buffer holds 65 536 messages, past which
/// NATS drops them as a slow consumer (counted in `import_missed`). These tests assert
/// that nothing is lost, so they stay below that buffer.
const N: u64 = 20_000;

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
    note: String,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_events_cross_in_order() {
    let started = Instant::now();
    let server = NatsServer::start();
    let (a, b) = (bridge(&server).await, bridge(&server).await);
    let bus_a: Bus<Order> = Bus::builder().build().unwrap();
    let bus_b: Bus<Order> = Bus::builder().build().unwrap();
    // Lossless end to end: the export waits for NATS rather than dropping.
    let _export = a
        .export(
            &bus_a,
            "orders.>",
            ExportOptions::default().capacity(1024).overflow(Overflow::Block),
        )
        .unwrap();
    let mut received =
        bus_b.subscribe(Subscription::to(">").unwrap().capacity(N as usize)).unwrap();
    let _import =
        b.import(bus_b.publisher().unwrap(), "orders.>", ImportOptions::default()).await.unwrap();
    within("import subscribed", b.round_trip()).await.unwrap();

    let mut publisher = bus_a.publisher().unwrap();
    let sender = tokio::task::spawn_blocking(move || {
        let (eu, us) = (Topic::new("orders.eu").unwrap(), Topic::new("orders.us.new").unwrap());
        let skipped = Topic::new("billing.eu").unwrap();
        for id in 0..N {
            let topic = if id % 2 == 0 { &eu } else { &us };
            publisher
                .publish_timeout(
                    Event::new(topic.clone(), Order { id, note: format!("n{id}") }),
                    DEADLINE,
                )
                .unwrap();
            publisher
                .publish_timeout(
                    Event::new(skipped.clone(), Order { id, note: String::new() }),
                    DEADLINE,
                )
                .unwrap();
        }
        publisher
    });

    for id in 0..N {
        let got = match within("next event", received.recv()).await {
            Ok(got) => got,
            Err(RecvError::Lagged(n)) => panic!("receiver lagged by {n}"),
            Err(RecvError::Closed) => panic!("bus b closed"),
        };
        assert_eq!(got.payload(), &Order { id, note: format!("n{id}") });
        let topic = if id % 2 == 0 { "orders.eu" } else { "orders.us.new" };
        assert_eq!(got.topic().as_str(), topic);
        let alias = got.alias().expect("imported events carry the bridge alias");
        assert_eq!(
            (alias.namespace(), alias.key()),
            (ALIAS_NAMESPACE, a.origin().to_string().as_str())
        );
    }
    drop(within("publisher", sender).await.unwrap());
    // `imported` moves just after the bus took the event: wait for it, don't race it.
    eventually("imported all", || b.stats().imported >= N).await;
    let (sa, sb) = (a.stats(), b.stats());
    assert_eq!(sa.exported, N);
    assert_eq!(sb.imported, N);
    assert_eq!(sb.import_missed, 0);
    assert_eq!(sb.decode_errors.total(), 0);
    assert!(received.try_recv().is_err(), "no event beyond the exported ones");
    eprintln!("json round trip of {N} events: {:?}", started.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_bytes_cross_unchanged() {
    let server = NatsServer::start();
    let (a, b) = (bridge(&server).await, bridge(&server).await);
    let bus_a: Bus<Bytes> = Bus::builder().build().unwrap();
    let bus_b: Bus<Vec<u8>> = Bus::builder().build().unwrap();
    let _export = a
        .export(&bus_a, "blobs.*", ExportOptions::new(Raw).capacity(1024).overflow(Overflow::Block))
        .unwrap();
    let mut received = bus_b.subscribe(Subscription::all().capacity(N as usize)).unwrap();
    let _import =
        b.import(bus_b.publisher().unwrap(), "blobs.*", ImportOptions::new(Raw)).await.unwrap();
    within("import subscribed", b.round_trip()).await.unwrap();

    let mut publisher = bus_a.publisher().unwrap();
    let sender = tokio::task::spawn_blocking(move || {
        let topic = Topic::new("blobs.x").unwrap();
        for id in 0..N {
            // Not UTF-8, not JSON: bytes as they are.
            let body = Bytes::from(vec![0xff, (id % 251) as u8, 0, (id >> 8) as u8]);
            publisher.publish_timeout(Event::new(topic.clone(), body), DEADLINE).unwrap();
        }
        publisher
    });
    for id in 0..N {
        let got = within("next event", received.recv()).await.unwrap();
        assert_eq!(got.payload(), &vec![0xff, (id % 251) as u8, 0, (id >> 8) as u8]);
    }
    drop(within("publisher", sender).await.unwrap());
    assert_eq!(a.stats().exported, N);
    eventually("imported all", || b.stats().imported >= N).await;
    assert_eq!(b.stats().imported, N);
}
