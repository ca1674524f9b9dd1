//! Promise: an import given a clone of the bus's `SharedPublisher` (the multi-producer
//! handle) shares the bus with local publishers: imported and local events all arrive,
//! each stream in order; `stop` hands the clone back, and the bus stays open until the
//! last clone is dropped.

mod common;

use shardcast::{Bus, Event, Overflow, RecvError, Subscription, Topic};
use shardcast_nats::{ExportOptions, ImportOptions, ALIAS_NAMESPACE};

use common::{bridge, within, NatsServer, DEADLINE};

const N: u64 = 2_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_and_local_events_share_the_bus() {
    let server = NatsServer::start();
    let (a, b) = (bridge(&server).await, bridge(&server).await);
    let bus_a: Bus<u64> = Bus::builder().build().unwrap();
    let bus_b: Bus<u64> = Bus::builder().build().unwrap();
    let options = ExportOptions::default().capacity(1024).overflow(Overflow::Block);
    let _export = a.export(&bus_a, "orders.>", options).unwrap();
    let mut received = bus_b.subscribe(Subscription::all().capacity(4 * N as usize)).unwrap();
    let shared = bus_b.shared_publisher().unwrap();
    let import = b.import(shared.clone(), "orders.>", ImportOptions::default()).await.unwrap();
    within("import subscribed", b.round_trip()).await.unwrap();

    // Both at once: 0..N from bus A through NATS, N..2N from a local clone.
    let (remote, local) =
        (Topic::new("orders.remote").unwrap(), Topic::new("orders.local").unwrap());
    let mut publisher_a = bus_a.publisher().unwrap();
    let topic = remote.clone();
    let remote_task = tokio::task::spawn_blocking(move || {
        for id in 0..N {
            publisher_a.publish_timeout(Event::new(topic.clone(), id), DEADLINE).unwrap();
        }
        publisher_a
    });
    let (clone, topic) = (shared.clone(), local.clone());
    let local_task = tokio::task::spawn_blocking(move || {
        for id in N..2 * N {
            clone.publish_blocking(Event::new(topic.clone(), id)).unwrap();
        }
    });

    let (mut next_remote, mut next_local) = (0, N);
    while next_remote < N || next_local < 2 * N {
        let got = match within("next event", received.recv()).await {
            Ok(got) => got,
            Err(RecvError::Lagged(n)) => panic!("receiver lagged by {n}"),
            Err(RecvError::Closed) => panic!("bus b closed"),
        };
        if *got.topic() == remote {
            assert_eq!(*got.payload(), next_remote, "imported events in order");
            let alias = got.alias().expect("imported events carry the bridge alias");
            assert_eq!(alias.namespace(), ALIAS_NAMESPACE);
            next_remote += 1;
        } else {
            assert_eq!(got.topic(), &local);
            assert_eq!(*got.payload(), next_local, "local events in order");
            assert!(got.alias().is_none(), "local events are not marked as bridged");
            next_local += 1;
        }
    }
    within("local publisher", local_task).await.unwrap();
    drop(within("remote publisher", remote_task).await.unwrap());

    let back = within("stop", import.stop()).await.expect("the import's task did not panic");
    assert!(!bus_b.is_closed(), "other clones keep the bus open");
    drop(back);
    assert!(!bus_b.is_closed());
    drop(shared);
    assert!(bus_b.is_closed(), "the last clone is gone");
}
