//! Promise: when `nats-server` dies mid-stream and comes back on the same port, both
//! bridges reconnect on their own, the export buffers up to its subscription's capacity
//! and counts what it drops, the import counts every event that never arrived, and
//! received + missed = published, exactly. A dead NATS never stalls the local bus: a
//! local subscriber gets every event meanwhile. Nothing hangs.

mod common;

use shardcast::{Bus, Event, Overflow, Publisher, RecvError, Subscriber, Subscription, Topic};
use shardcast_nats::{ExportOptions, ImportOptions};

use common::{bridge, eventually, within, NatsServer};

/// Phase sizes. The first fits the export's queue, so it crosses whole: an import counts
/// gaps from the first message it sees of a stream.
const BEFORE: u64 = EXPORT_CAPACITY as u64;
const WHILE_DOWN: u64 = 5_000;
const AFTER: u64 = 1_000;
const EXPORT_CAPACITY: usize = 500;

async fn publish(publisher: &mut Publisher<u64>, ids: std::ops::Range<u64>) {
    let topic = Topic::new("orders.eu").unwrap();
    for id in ids {
        within("ring space", publisher.publish(Event::new(topic.clone(), id))).await.unwrap();
    }
}

/// Receives until event `last` arrives; returns how many arrived, checking their order.
async fn receive_through(sub: &mut Subscriber<u64>, previous: &mut Option<u64>, last: u64) -> u64 {
    let mut count = 0;
    loop {
        let id = match within("next event", sub.recv()).await {
            Ok(got) => *got.payload(),
            Err(RecvError::Lagged(n)) => panic!("the receiving subscriber itself lagged by {n}"),
            Err(RecvError::Closed) => panic!("bus closed"),
        };
        assert!(previous.is_none_or(|p| id > p), "{id} after {previous:?}: out of order");
        *previous = Some(id);
        count += 1;
        if id == last {
            return count;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bridge_resumes_and_counts_every_loss() {
    let mut server = NatsServer::start();
    let (a, b) = (bridge(&server).await, bridge(&server).await);
    let bus_a: Bus<u64> = Bus::builder().build().unwrap();
    let bus_b: Bus<u64> = Bus::builder().build().unwrap();
    let options = ExportOptions::default().capacity(EXPORT_CAPACITY).overflow(Overflow::DropOldest);
    // DropOldest: whatever is lost, the newest event of each burst always crosses, so the
    // receiver knows when a burst is over.
    let _export = a.export(&bus_a, "orders.>", options).unwrap();
    let total = BEFORE + WHILE_DOWN + AFTER;
    let mut local = bus_a.subscribe(Subscription::all().capacity(total as usize)).unwrap();
    let mut received = bus_b.subscribe(Subscription::all().capacity(total as usize)).unwrap();
    let _import =
        b.import(bus_b.publisher().unwrap(), "orders.>", ImportOptions::default()).await.unwrap();
    within("subscribed", b.round_trip()).await.unwrap();
    let mut publisher = bus_a.publisher().unwrap();
    let mut previous = None;

    // Mid-stream: the first part has crossed, the stream goes on.
    publish(&mut publisher, 0..BEFORE).await;
    let mut got = receive_through(&mut received, &mut previous, BEFORE - 1).await;

    server.kill();
    eventually("both bridges see the disconnect", || !a.stats().connected && !b.stats().connected)
        .await;
    let export_id =
        bus_a.stats().subscribers.iter().find(|s| s.name == "nats-export-0").unwrap().id;
    let handled = || {
        let stats = bus_a.stats();
        let export = stats.subscribers.iter().find(|s| s.id == export_id).unwrap();
        export.delivered + export.dropped
    };
    let before = handled();
    publish(&mut publisher, BEFORE..BEFORE + WHILE_DOWN).await;
    // Every event has reached the export's queue or overflowed it before the restart.
    eventually("export queue full", || handled() >= before + WHILE_DOWN).await;
    assert!(!a.stats().connected, "nothing reconnected to a dead server");

    server.restart();
    eventually("both bridges reconnect", || {
        let (sa, sb) = (a.stats(), b.stats());
        sa.connected && sb.connected && sa.reconnects == 1 && sb.reconnects == 1
    })
    .await;
    within("resubscribed", b.round_trip()).await.unwrap();
    publish(&mut publisher, BEFORE + WHILE_DOWN..total).await;
    got += receive_through(&mut received, &mut previous, total - 1).await;

    // The local subscriber of bus A never noticed: every event, no loss.
    let mut local_previous = None;
    let local_got = receive_through(&mut local, &mut local_previous, total - 1).await;
    assert_eq!((local_got, local.dropped()), (total, 0));

    // `imported` moves just after the bus took the event: wait for it, don't race it.
    eventually("imported all received", || b.stats().imported >= got).await;
    let (sa, sb) = (a.stats(), b.stats());
    // What the receiver missed is exactly what the import counted as missed...
    assert_eq!(got + sb.import_missed, total, "a: {sa:?}\nb: {sb:?}");
    // ...and covers what the export dropped while disconnected (more can be lost in
    // flight: messages written to the dying connection).
    assert!(sa.dropped_disconnected >= WHILE_DOWN - EXPORT_CAPACITY as u64 - 1, "{sa:?}");
    assert!(sa.dropped_disconnected + sa.export_lagged <= sb.import_missed, "{sa:?}\n{sb:?}");
    assert_eq!((sa.disconnects, sb.disconnects), (1, 1));
    assert_eq!(sb.imported, got);
}
