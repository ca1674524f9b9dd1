//! shardcast: a lock-free, high-throughput in-process event bus.
//!
//! One [`Publisher`] writes events into a broadcast ring; dispatcher shards (one thread
//! each) read the ring and push each event into the bounded queue of every matching
//! [`Subscriber`] of their shard; subscribers receive synchronously or asynchronously. A
//! slow subscriber only hurts itself: its own queue overflows under its own
//! [`Overflow`] policy, and every loss is counted and reported as `Lagged(n)`.
//!
//! ```
//! use shardcast::{Bus, Overflow, RecvError, Subscription};
//!
//! struct Order { id: u64 }
//!
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let bus: Bus<Order> = Bus::builder().ring_capacity(4096).dispatchers(1).build()?;
//! let mut audit = bus.subscribe(
//!     Subscription::all().capacity(256).overflow(Overflow::DropOldest).name("audit"),
//! )?;
//! let publisher = bus.shared_publisher()?; // Clone + Send + Sync
//! for id in 0..3 {
//!     publisher.publish_to("orders.eu.created", Order { id }).await?;
//! }
//! drop(publisher); // the last one: the bus closes once everything is delivered
//! let mut ids = Vec::new();
//! loop {
//!     match audit.recv().await {
//!         Ok(delivery) => ids.push(delivery.payload().id),
//!         Err(RecvError::Lagged(_)) => continue, // lost events are counted; go on
//!         Err(RecvError::Closed) => break,
//!     }
//! }
//! assert_eq!(ids, [0, 1, 2]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Async and blocking
//! An async name never blocks the thread, and a blocking name says so:
//! [`Subscriber::recv`] and [`SharedPublisher::publish`] (and [`Publisher::publish`]) are
//! awaited, as in tokio; [`Subscriber::recv_blocking`], [`Publisher::publish_blocking`] and
//! the other `*_blocking` methods, `recv_timeout`, `publish_timeout`, `flush` and
//! [`Bus::close`] block the thread, for plain threads and `spawn_blocking`. Called where it
//! would wait on a thread that runs tokio tasks (a runtime worker, or inside `block_on`), a
//! blocking method panics at once, naming the async method to await, as tokio's
//! `blocking_recv` does, instead of hanging the runtime (the `tokio` feature, on by
//! default). `try_recv` and `try_publish` never wait.
//!
//! See `ARCHITECTURE.md` in the repository for the data flow, a map of the modules with the
//! invariant each keeps, and how orderings, testing, errors and observability cut across
//! them; each module's docs give its invariants and a `# Orderings` table of the atomics it
//! relies on.

#![deny(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs, clippy::undocumented_unsafe_blocks)]

#[doc(hidden)]
pub mod bench_api;
mod blocking;
mod bus;
mod dispatch;
mod error;
mod event;
#[cfg(loom)]
#[doc(hidden)]
pub mod loom_api;
mod lru;
mod publisher;
mod queue;
mod receiver;
mod registry;
mod ring;
mod routing;
mod segment;
mod shared;
mod shared_publisher;
pub mod stats;
mod subscriber;
mod subscription;
mod sync;
mod topic;
mod trace;
mod wait;

/// The README's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

/// The migration page's examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../docs/from-tokio-broadcast.md")]
pub struct MigrationDoctests;

pub use bus::{
    Bus, BusBuilder, MAX_BINDING_CAPACITY, MAX_DISPATCHERS, MAX_RING_CAPACITY,
    MAX_ROUTE_CACHE_CAPACITY, MIN_RING_CAPACITY,
};
pub use error::{
    AliasError, BusError, CloseReason, ClosedError, ConfigError, PatternError, PublishError,
    PublishTimeoutError, PublishToError, RecvError, RecvTimeoutError, TopicError, TopicErrorKind,
    TryPublishError, TryRecvError,
};
pub use event::{Alias, Event};
/// Events per segment: a queue entry covers at most this many, so a subscriber pins at
/// most `SEGMENT_LEN` times its capacity in events (see the README's "What it promises").
pub const SEGMENT_LEN: usize = segment::SEG_LEN;
pub use publisher::{Closed, Flush, Publisher};
pub use receiver::{Delivery, OwnedDelivery, Recv};
pub use shared_publisher::SharedPublisher;
pub use subscriber::{Subscriber, SubscriberStream};
pub use subscription::{Overflow, Subscription};
pub use topic::{Pattern, Topic};
pub use uuid::Uuid;
pub use wait::WaitStrategy;
