//! shardcast-nats: carries selected topics between a local [`shardcast`] bus and a NATS
//! server or cluster. NATS subjects and shardcast topics share one syntax (`a.b.c`, `*`,
//! `>`), so topic `orders.eu.created` travels as subject `shardcast.orders.eu.created`
//! (the prefix is configurable) and comes back as the same topic on the other side.
//!
//! - **Export** ([`Bridge::export`]): a subscription on the local bus, with its own
//!   capacity and overflow policy, whose events a tokio task publishes to NATS. The
//!   payload is encoded by a [`Codec`] ([`Json`] by default, [`Raw`] for bytes); NATS
//!   headers carry the event's seq, resolved route, alias, publish time and the bridge's
//!   origin id (see the [`headers`] module).
//! - **Import** ([`Bridge::import`]): a NATS subscription whose messages a tokio task
//!   decodes and publishes into the local bus through the bus's one
//!   [`Publisher`](shardcast::Publisher), which the caller hands over.
//!
//! # No loops
//! An imported event carries the alias `shardcast-nats/<origin id of the exporting
//! bridge>` (its original alias, if any, is replaced: its route was already resolved at
//! the origin and travels in the `Shardcast` header). An export never exports an
//! event with an alias in the `shardcast-nats` namespace unless asked
//! ([`ExportOptions::include_bridged`]), and never exports `$SYS` topics. An import skips
//! messages its own bridge exported.
//!
//! # Faults
//! While the connection is down an export stops taking events: its subscription queue
//! buffers them up to its capacity, then overflows under its policy, and every loss is
//! counted. async-nats reconnects with backoff and resubscribes; exports and imports
//! resume on their own. A message that does not decode is counted by reason and dropped,
//! with at most one `tracing` warning per second. Each export numbers its stream (the
//! `export-seq` field of the `Shardcast` header), so an import counts every event that
//! never arrived, whatever lost it ([`BridgeStats::import_missed`]).
//!
//! # Observability
//! A bus shows the counters of every bridge that exports from it or imports into it: the
//! export or import attaches them ([`Bus::attach_stats`](shardcast::Bus::attach_stats)),
//! so the bus's own `stats()` and `StatsSnapshot::prometheus_text()` carry the
//! `shardcast_nats_*` series. Do not append [`Bridge::prometheus_text`] to the bus's text:
//! each series would be there twice, which Prometheus rejects. [`Bridge::stats`] is a plain
//! [`BridgeStats`] snapshot (serde), and [`Bridge::prometheus_text`] its series alone, for a
//! process that serves the bridge's metrics without a bus's.
//!
//! # Example
//! Needs a `nats-server` on 127.0.0.1:4222, hence `no_run`; `examples/two_daemons.rs`
//! is the two-process version.
//!
//! ```no_run
//! use shardcast::{Bus, Event, Subscription, Topic};
//! use shardcast_nats::{Bridge, BridgeConfig, ExportOptions, ImportOptions};
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Order { id: u64 }
//!
//! # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let bridge = Bridge::connect("nats://127.0.0.1:4222", BridgeConfig::default()).await?;
//!
//! // This process's orders go out...
//! let local: Bus<Order> = Bus::builder().build()?;
//! let _export = bridge.export(&local, "orders.>", ExportOptions::default().capacity(4096))?;
//!
//! // ...and everybody's orders come in on another bus.
//! let remote: Bus<Order> = Bus::builder().build()?;
//! let mut audit = remote.subscribe(Subscription::to("orders.>")?)?;
//! let _import = bridge.import(remote.publisher()?, "orders.>", ImportOptions::default()).await?;
//!
//! let mut publisher = local.publisher()?;
//! publisher.publish_blocking(Event::new(Topic::new("orders.eu")?, Order { id: 1 }))?;
//! // The bridge's `shardcast_nats_*` series are in the bus's own text.
//! println!("{}", local.stats().prometheus_text());
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod bridge;
mod codec;
mod error;
mod export;
pub mod headers;
mod import;
mod shared;
mod stats;

pub use bridge::{Bridge, BridgeConfig};
pub use codec::{Codec, Json, Raw};
pub use error::{BridgeError, CodecError, DecodeError, ImportError};
pub use export::{ExportHandle, ExportOptions};
pub use import::{ImportHandle, ImportOptions, ImportPublisher, ImportSender};
pub use shared::ALIAS_NAMESPACE;
pub use stats::{BridgeStats, DecodeErrors};
