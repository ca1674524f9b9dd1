//! Two daemons sharing `orders.>` through one `nats-server`: run it twice.
//!
//! ```text
//! nats-server -a 127.0.0.1 -p 4222 &
//! cargo run -p shardcast-nats --example two_daemons -- receive   # terminal 1
//! cargo run -p shardcast-nats --example two_daemons -- publish   # terminal 2
//! ```
//!
//! `publish` runs a bus whose `orders.>` events are exported; `receive` runs a bus into
//! which `orders.>` is imported, prints each order as it arrives and exits after the 10th.
//! An optional last argument is the server URL (default `nats://127.0.0.1:4222`).

use std::time::Duration;

use shardcast::{Bus, Event, Overflow, Subscription, Topic};
use shardcast_nats::{Bridge, BridgeConfig, ExportOptions, ImportOptions};

const ORDERS: u64 = 10;

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Order {
    id: u64,
    item: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let url = args.get(1).map_or("nats://127.0.0.1:4222", String::as_str);
    let bridge = Bridge::connect(url, BridgeConfig::default()).await?;
    match args.first().map(String::as_str) {
        Some("publish") => publish(&bridge).await,
        Some("receive") => receive(&bridge).await,
        _ => Err("usage: two_daemons publish|receive [nats-url]".into()),
    }
}

/// The daemon where orders are placed: its `orders.>` events go out to NATS.
async fn publish(bridge: &Bridge) -> Result<(), Box<dyn std::error::Error>> {
    let bus: Bus<Order> = Bus::builder().build()?;
    let options = ExportOptions::default().capacity(1024).overflow(Overflow::DropOldest);
    let export = bridge.export(&bus, "orders.>", options)?;
    let mut publisher = bus.publisher()?;
    for id in 0..ORDERS {
        let topic =
            Topic::new(if id % 2 == 0 { "orders.eu.created" } else { "orders.us.created" })?;
        publisher.publish(Event::new(topic, Order { id, item: format!("item-{id}") })).await?;
        println!("published order {id}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // Closing the bus lets the export hand every queued event to NATS, then end.
    publisher.close();
    export.finished().await;
    print!("{}", bridge.prometheus_text());
    Ok(())
}

/// The daemon that audits orders: `orders.>` from NATS comes into its bus.
async fn receive(bridge: &Bridge) -> Result<(), Box<dyn std::error::Error>> {
    let bus: Bus<Order> = Bus::builder().build()?;
    let mut audit = bus.subscribe(Subscription::to("orders.>")?.name("audit"))?;
    // A clone of the shared publisher: the daemon could keep publishing into this bus too.
    let import =
        bridge.import(bus.shared_publisher()?, "orders.>", ImportOptions::default()).await?;
    bridge.round_trip().await?;
    println!("waiting for {ORDERS} orders on {}.orders.>", bridge.prefix());
    for _ in 0..ORDERS {
        let delivery = audit.recv().await?;
        let from = delivery.alias().map_or("?", |alias| alias.key());
        println!("{} {:?} (from bridge {from})", delivery.topic().as_str(), delivery.payload());
    }
    drop(import);
    print!("{}", bridge.prometheus_text());
    Ok(())
}
