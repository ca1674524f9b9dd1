//! Promise: messages on imported subjects that do not decode (bad JSON, no headers, a
//! garbled header, an invalid topic, an oversized body) are counted by reason and
//! dropped; the import keeps working and never publishes them.

mod common;

use async_nats::HeaderMap;
use bytes::Bytes;
use shardcast::{Bus, Event, Subscription, Topic, TryRecvError, Uuid};
use shardcast_nats::{headers, DecodeErrors, ExportOptions, ImportOptions};

use common::{bridge, eventually, within, NatsServer};

const MAX_PAYLOAD: usize = 256;

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
}

const ORIGIN: Uuid = Uuid::from_u128(0xbad);

/// Headers as a well-behaved exporter (not the import's own bridge) would write them.
fn valid_headers(seq: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(headers::SHARDCAST, format!("{ORIGIN} 0 {seq} {seq} -"));
    h
}

/// The same in the one-header-per-field form that imports also accept.
fn per_field_headers(seq: u64) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(headers::ORIGIN, ORIGIN.to_string());
    h.insert(headers::EXPORT, "0");
    h.insert(headers::EXPORT_SEQ, seq.to_string());
    h.insert(headers::SEQ, seq.to_string());
    h
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_is_counted_and_the_import_keeps_working() {
    let server = NatsServer::start();
    let (a, b) = (bridge(&server).await, bridge(&server).await);
    let bus_a: Bus<Order> = Bus::builder().build().unwrap();
    let bus_b: Bus<Order> = Bus::builder().build().unwrap();
    let mut received = bus_b.subscribe(Subscription::all().capacity(64)).unwrap();
    let options = ImportOptions::default().max_payload(MAX_PAYLOAD);
    let _import = b.import(bus_b.publisher().unwrap(), "orders.>", options).await.unwrap();
    let _export = a.export(&bus_a, "orders.>", ExportOptions::default()).unwrap();
    within("subscribed", b.round_trip()).await.unwrap();

    let raw = within("raw client", async_nats::connect(server.url())).await.unwrap();
    let good = Bytes::from_static(br#"{"id":1}"#);
    let mut garbled = HeaderMap::new();
    garbled.insert(headers::SHARDCAST, format!("{ORIGIN} 0 3 three -"));
    let mut garbled_per_field = per_field_headers(7);
    garbled_per_field.insert(headers::SEQ, "three");
    let mut bad_alias = valid_headers(4);
    bad_alias.insert(headers::ALIAS, "not json");
    let garbage: Vec<(&str, Option<HeaderMap>, Bytes)> = vec![
        ("shardcast.orders.eu", Some(valid_headers(1)), Bytes::from_static(b"{\"id\": oops")),
        ("shardcast.orders.eu", Some(valid_headers(2)), Bytes::from_static(br#"{"id":"x"}"#)),
        ("shardcast.orders.eu", None, good.clone()),
        ("shardcast.orders.eu", Some(garbled), good.clone()),
        ("shardcast.orders.eu", Some(garbled_per_field), good.clone()),
        ("shardcast.orders.eu", Some(bad_alias), good.clone()),
        // NATS accepts UTF-8 subjects; shardcast topics are printable ASCII.
        ("shardcast.orders.caf\u{e9}", Some(valid_headers(5)), good.clone()),
        ("shardcast.orders.eu", Some(valid_headers(6)), Bytes::from(vec![b' '; MAX_PAYLOAD + 1])),
    ];
    for (subject, headers, body) in garbage {
        let sent = match headers {
            Some(h) => raw.publish_with_headers(subject, h, body).await,
            None => raw.publish(subject, body).await,
        };
        sent.unwrap();
    }
    within("raw flush", raw.flush()).await.unwrap();
    let expected = DecodeErrors { header: 4, topic: 1, oversized: 1, payload: 2 };
    eventually("garbage counted", || b.stats().decode_errors == expected).await;

    // The import still works, and none of the garbage became an event.
    let mut publisher = bus_a.publisher().unwrap();
    for id in 10..20 {
        let event = Event::new(Topic::new("orders.eu").unwrap(), Order { id });
        within("ring space", publisher.publish(event)).await.unwrap();
    }
    for id in 10..20 {
        let got = within("next event", received.recv()).await.unwrap();
        assert_eq!(got.payload(), &Order { id });
        assert_eq!(got.alias().map(|a| a.key().to_owned()), Some(a.origin().to_string()));
    }
    // A valid message in the per-field form is imported too.
    raw.publish_with_headers(
        "shardcast.orders.eu",
        per_field_headers(8),
        br#"{"id":99}"#[..].into(),
    )
    .await
    .unwrap();
    within("raw flush", raw.flush()).await.unwrap();
    let got = within("per-field event", received.recv()).await.unwrap();
    assert_eq!(got.payload(), &Order { id: 99 });
    assert_eq!(got.alias().map(|a| a.key().to_owned()), Some(ORIGIN.to_string()), "its origin");
    drop(got);
    assert!(matches!(received.try_recv(), Err(TryRecvError::Empty)));
    // `imported` moves just after the bus took the event: wait for it, don't race it.
    eventually("imported 11", || b.stats().imported == 11).await;
    let stats = b.stats();
    assert_eq!(stats.decode_errors, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_options_and_patterns_are_errors_not_panics() {
    let server = NatsServer::start();
    let b = bridge(&server).await;
    let bus: Bus<Order> = Bus::builder().build().unwrap();
    let zero = ImportOptions::default().queue(0);
    let err = b.import(bus.publisher().unwrap(), "orders.>", zero).await.unwrap_err();
    assert_eq!(err.to_string(), "invalid import queue: must be at least 1");
    // The publisher comes back: the bus is still open.
    let publisher = err.into_publisher();
    let err = b.import(publisher, "orders..x", ImportOptions::default()).await.unwrap_err();
    assert!(err.to_string().starts_with("bad pattern: "), "{err}");
    assert!(!bus.is_closed());
    let err = b.export(&bus, "orders.>", ExportOptions::default().capacity(0)).unwrap_err();
    assert!(err.to_string().starts_with("cannot subscribe to the bus: "), "{err}");
    let err = b.export(&bus, "a.>.b", ExportOptions::default()).unwrap_err();
    assert!(err.to_string().starts_with("bad pattern: "), "{err}");
}
