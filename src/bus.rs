//! The bus handle and its builder: configuration, thread lifecycle, subscribe.

use std::fmt;
use std::time::{Duration, Instant};

use crate::error::{BusError, CloseReason, ConfigError, PatternError};
use crate::publisher::Publisher;
use crate::registry::Registry;
use crate::ring::Ring;
use crate::segment::Pool;
use crate::shared::{
    check_queue_capacity, BusHandle, ClosedWakers, Config, Lifetime, Reporting, Shared,
    StatsThread, SysInbox,
};
use crate::shared_publisher::SharedPublisher;
use crate::stats::counters::{CounterPair, ShardCounters};
use crate::stats::events::{self, clamp_interval, StatsDelta};
use crate::stats::external::{ExternalStats, Sources};
use crate::stats::latency::Latency;
use crate::stats::retired::Retired;
use crate::stats::snapshot::{ShardStats, StatsSnapshot};
use crate::stats::topics::TopicTable;
use crate::subscriber::Subscriber;
use crate::subscription::Subscription;
use crate::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use crate::sync::{spawn_named, Arc, Mutex};
use crate::topic::Topic;
use crate::trace::RateLimit;
use crate::wait::WaitStrategy;

/// Smallest ring.
pub const MIN_RING_CAPACITY: usize = 2;
/// Largest ring.
pub const MAX_RING_CAPACITY: usize = 1 << 22;
/// Most dispatcher shards.
pub const MAX_DISPATCHERS: usize = 64;

/// Configures and builds a [`Bus`].
#[derive(Debug, Clone)]
pub struct BusBuilder {
    ring_capacity: usize,
    dispatchers: usize,
    queue_capacity: usize,
    wait_strategy: WaitStrategy,
    thread_name: String,
    binding_capacity: usize,
    route_cache_capacity: usize,
    stats: bool,
    stats_topic_levels: usize,
    stats_topic_capacity: usize,
    stats_subscriber_ids: bool,
    latency_sample_every: u32,
}

/// Most alias bindings per shard.
pub const MAX_BINDING_CAPACITY: usize = 1 << 24;
/// Most route cache entries per shard.
pub const MAX_ROUTE_CACHE_CAPACITY: usize = 1 << 20;

impl Default for BusBuilder {
    fn default() -> Self {
        BusBuilder {
            ring_capacity: 4096,
            dispatchers: 1,
            queue_capacity: 1024,
            wait_strategy: WaitStrategy::default(),
            thread_name: "shardcast".to_owned(),
            binding_capacity: 65_536,
            route_cache_capacity: 4096,
            stats: true,
            stats_topic_levels: 2,
            stats_topic_capacity: 1024,
            stats_subscriber_ids: true,
            latency_sample_every: if cfg!(feature = "latency") { 64 } else { 0 },
        }
    }
}

impl BusBuilder {
    /// Ring slots: a power of two in `2..=4_194_304`; default 4096. The ring holds events
    /// published but not yet dispatched by every shard; it never drops, the publisher waits.
    /// An event leaves the ring as soon as every shard has dispatched it.
    pub fn ring_capacity(mut self, capacity: usize) -> Self {
        self.ring_capacity = capacity;
        self
    }

    /// Dispatcher shards (one thread each), `1..=64`; default 1. Subscribers are spread
    /// over shards; each event's fan-out work is split between them.
    ///
    /// More shards help only when the fan-out work per event is more than one core can do
    /// and spare cores exist for the extra threads; otherwise a second shard only competes
    /// with the publisher and the receivers for the same cores. Measured on two cores at
    /// saturation, as throughput relative to tokio's broadcast with 1, 2 and 4 shards: one
    /// subscriber 1.04, 0.72 and 0.59; 4 subscribers 1.34, 1.28 and 1.05; 16 subscribers
    /// 1.39, 1.29 and 1.07; 64 subscribers behind a filter 4.27, 3.71 and 3.46; only 64
    /// plain subscribers gained nothing with 2 shards (1.53, 1.55) and a little with 4
    /// (1.67). At a paced rate two shards also raised the median latency (one subscriber:
    /// 0.81 to 2.13 times tokio's) and lost events to full queues at 64 subscribers. Keep 1
    /// unless a measurement of your own load on your own cores says otherwise.
    pub fn dispatchers(mut self, shards: usize) -> Self {
        self.dispatchers = shards;
        self
    }

    /// Default per-subscriber queue capacity, `1..=67_108_864`; default 1024. Exactly this
    /// many events fit (it is not rounded).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity;
        self
    }

    /// How the publisher, the shards and blocking receives wait; default
    /// [`WaitStrategy::Adaptive`].
    pub fn wait_strategy(mut self, strategy: WaitStrategy) -> Self {
        self.wait_strategy = strategy;
        self
    }

    /// Prefix of the dispatcher threads' names: `"{name}-dispatch-{i}"`; default
    /// `"shardcast"`. A name containing a NUL byte is a `ConfigError` (the OS cannot take
    /// it). Linux shows only the first 15 bytes of a thread name.
    pub fn thread_name(mut self, name: impl Into<String>) -> Self {
        self.thread_name = name.into();
        self
    }

    /// Alias → route bindings each shard remembers, `0..=16_777_216`; default 65 536. Past
    /// it the least recently used binding is evicted (counted in `binding_evictions`).
    /// 0 turns late binding off.
    pub fn binding_capacity(mut self, capacity: usize) -> Self {
        self.binding_capacity = capacity;
        self
    }

    /// Topics each shard's route cache remembers, `0..=1_048_576`; default 4096. 0 turns
    /// the cache off (every event evaluates every pattern).
    pub fn route_cache_capacity(mut self, capacity: usize) -> Self {
        self.route_cache_capacity = capacity;
        self
    }

    /// Whether to keep per-topic counters and latency samples; default `true`. Shard,
    /// ring and per-subscriber counters are always kept (they cost a store per batch).
    pub fn stats(mut self, enabled: bool) -> Self {
        self.stats = enabled;
        self
    }

    /// Topic tokens per-topic counters aggregate by, `1..=32`; default 2
    /// (`orders.eu.created` counts under `orders.eu`).
    pub fn stats_topic_levels(mut self, levels: usize) -> Self {
        self.stats_topic_levels = levels;
        self
    }

    /// Most topic prefixes counted, `1..=65_536`; default 1024. Past it, new prefixes count
    /// under `__overflow__`.
    pub fn stats_topic_capacity(mut self, capacity: usize) -> Self {
        self.stats_topic_capacity = capacity;
        self
    }

    /// Whether the Prometheus text ([`StatsSnapshot::prometheus_text`]) labels each
    /// subscriber's series with its `id`; default `true`. With `false`, per-subscriber
    /// series are labelled by `subscriber` (the name) and `shard` alone, and the subscribers
    /// that share both are summed into one series, those already dropped included: a
    /// server that subscribes once per connection, under one name, gets one series per
    /// shard, not one per connection. Their latency is then only in the bus-wide summary
    /// (`shardcast_receive_latency_seconds`): quantiles of several subscribers cannot be
    /// added. [`Bus::stats`] lists every live subscriber, with its id, either way.
    ///
    /// ```
    /// use shardcast::{Bus, Subscription};
    /// let bus: Bus<u32> = Bus::builder().stats_subscriber_ids(false).build()?;
    /// let _a = bus.subscribe(Subscription::all().name("conn"))?;
    /// let _b = bus.subscribe(Subscription::all().name("conn"))?;
    /// let text = bus.stats().prometheus_text();
    /// let consumed = "shardcast_subscriber_consumed_total";
    /// let series: Vec<&str> = text.lines().filter(|l| l.starts_with(consumed)).collect();
    /// assert_eq!(series, [format!(r#"{consumed}{{subscriber="conn",shard="0"}} 0"#)]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats_subscriber_ids(mut self, ids: bool) -> Self {
        self.stats_subscriber_ids = ids;
        self
    }

    /// Record the publish → receive latency of 1 in `n` received events; default 64;
    /// 0 turns sampling off. Sampling needs the `latency` feature (on by default): without
    /// it the default is 0, and [`build`](Self::build) refuses any other value.
    pub fn latency_sample_every(mut self, n: u32) -> Self {
        self.latency_sample_every = n;
        self
    }

    /// Checks the configuration and starts the dispatcher threads.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field and its bound: the same type that
    /// [`Bus::subscribe`] reports as [`BusError::Config`], so `?` converts it in a function
    /// that returns [`BusError`].
    pub fn build<E: Send + Sync + 'static>(self) -> Result<Bus<E>, ConfigError> {
        if cfg!(not(feature = "latency")) && self.latency_sample_every != 0 {
            return Err(ConfigError::new(
                "latency_sample_every",
                self.latency_sample_every,
                "0: latency sampling needs the `latency` feature",
            ));
        }
        if !self.ring_capacity.is_power_of_two()
            || !(MIN_RING_CAPACITY..=MAX_RING_CAPACITY).contains(&self.ring_capacity)
        {
            return Err(ConfigError::new(
                "ring_capacity",
                self.ring_capacity,
                "a power of two in 2..=4194304",
            ));
        }
        if !(1..=MAX_DISPATCHERS).contains(&self.dispatchers) {
            return Err(ConfigError::new("dispatchers", self.dispatchers, "1..=64"));
        }
        check_queue_capacity("queue_capacity", self.queue_capacity)?;
        if self.binding_capacity > MAX_BINDING_CAPACITY {
            return Err(ConfigError::new(
                "binding_capacity",
                self.binding_capacity,
                "0..=16777216",
            ));
        }
        if self.route_cache_capacity > MAX_ROUTE_CACHE_CAPACITY {
            return Err(ConfigError::new(
                "route_cache_capacity",
                self.route_cache_capacity,
                "0..=1048576",
            ));
        }
        if !(1..=Topic::MAX_TOKENS).contains(&self.stats_topic_levels) {
            return Err(ConfigError::new("stats_topic_levels", self.stats_topic_levels, "1..=32"));
        }
        if !(1..=1 << 16).contains(&self.stats_topic_capacity) {
            return Err(ConfigError::new(
                "stats_topic_capacity",
                self.stats_topic_capacity,
                "1..=65536",
            ));
        }
        if self.thread_name.contains('\0') {
            return Err(ConfigError::new(
                "thread_name",
                format!("{:?}", self.thread_name),
                "no NUL byte",
            ));
        }
        // Calibrate the publish clock now, not on the first publish.
        crate::event::anchor();
        let shared = Arc::new(Shared {
            ring: Arc::new(Ring::new(self.ring_capacity, self.dispatchers)),
            pool: Arc::new(Pool::new(self.dispatchers)),
            shards: (0..self.dispatchers).map(|_| Registry::new()).collect(),
            counters: (0..self.dispatchers).map(|_| ShardCounters::default()).collect(),
            sys_inbox: (0..self.dispatchers)
                .map(|_| SysInbox {
                    pending: AtomicBool::new(false),
                    events: Mutex::new(Vec::new()),
                })
                .collect(),
            topics: self.stats.then(|| {
                TopicTable::new(
                    self.stats_topic_levels,
                    self.stats_topic_capacity,
                    self.dispatchers,
                )
            }),
            publisher_waits: AtomicU64::new(0),
            ring_full_limit: RateLimit::default(),
            config: Config {
                binding_capacity: self.binding_capacity,
                route_cache_capacity: self.route_cache_capacity,
                wait_strategy: self.wait_strategy,
                latency_sample_every: if self.stats { self.latency_sample_every } else { 0 },
                queue_capacity: self.queue_capacity,
                stats_subscriber_ids: self.stats_subscriber_ids,
            },
            lifetime: Lifetime {
                shutdown: AtomicBool::new(false),
                closed_by: AtomicU8::new(0),
                publisher_taken: AtomicBool::new(false),
                next_id: AtomicU64::new(0),
                placement: Mutex::new(()),
                subscriptions: CounterPair::new(),
                live_subscribers: AtomicU64::new(0),
                closed_wakers: Mutex::new(ClosedWakers::default()),
            },
            reporting: Reporting {
                started: Instant::now(),
                retired_latency: Latency::new(),
                retired: Arc::new(Retired::default()),
                external: Sources::default(),
                thread: StatsThread::default(),
            },
        });
        let mut threads = Vec::with_capacity(self.dispatchers);
        for index in 0..self.dispatchers {
            let worker = Arc::clone(&shared);
            let name = format!("{}-dispatch-{index}", self.thread_name);
            match spawn_named(name, move || crate::dispatch::run(worker, index)) {
                Ok(handle) => threads.push(handle),
                Err(e) => {
                    // Never a half-built bus: stop the shards already started. The shards
                    // never started are retired here, so close does not wait for them.
                    for never in index..self.dispatchers {
                        shared.ring.retire(never);
                    }
                    let handle =
                        BusHandle { shared, threads: Mutex::new(threads), thread_ids: Vec::new() };
                    drop(handle);
                    return Err(ConfigError::new(
                        "dispatchers",
                        format!("{} ({e})", self.dispatchers),
                        "as many threads as the OS can spawn",
                    ));
                }
            }
        }
        #[cfg(not(loom))]
        let thread_ids = threads.iter().map(|t| t.thread().id()).collect();
        #[cfg(loom)]
        let thread_ids = Vec::new();
        Ok(Bus {
            handle: Arc::new(BusHandle { shared, threads: Mutex::new(threads), thread_ids }),
            shared_publisher: Arc::new(Mutex::new(None)),
        })
    }
}

/// A handle to an event bus. Cheap to clone.
///
/// Lifetime: a bus has one publisher for its whole life, either the exclusive
/// [`Publisher`] or the clones of one [`SharedPublisher`] (while a clone lives,
/// [`shared_publisher`](Self::shared_publisher) hands out another). The bus closes when
/// that publisher goes (the exclusive one, or the last clone, is dropped or closed), when
/// [`close`](Self::close) or [`close_async`](Self::close_async) is called, or when a
/// dispatcher thread panics. Closing is final: events already published are still
/// delivered, each subscriber drains its queue and then sees `Closed`, and taking a
/// publisher or subscribing returns [`BusError::Closed`], whose message says which of these
/// closed it. The bus itself lives as long as any handle to it does, of any kind (a `Bus`,
/// a publisher or a [`Subscriber`]), like a channel lives as long as its halves, so a
/// function may build a bus and return only its publisher and subscribers; when the last
/// handle is dropped, the bus closes and its dispatcher threads are joined (if that drop
/// runs on a dispatcher thread itself, for example inside a subscription's filter, the
/// threads are left to finish on their own instead: a thread cannot join itself).
///
/// ```
/// use shardcast::{Bus, Event, Subscription, Topic};
///
/// let bus: Bus<String> = Bus::builder().dispatchers(1).build()?;
/// let mut audit = bus.subscribe(Subscription::all().name("audit"))?;
/// let mut publisher = bus.publisher()?;
/// publisher.publish_blocking(Event::new(Topic::new("orders.eu.created")?, "order 1".to_owned()))?;
/// drop(publisher); // close: what was published is still delivered
///
/// let delivery = audit.recv_blocking()?;
/// assert_eq!((delivery.seq(), delivery.payload().as_str()), (0, "order 1"));
/// drop(delivery); // a delivery borrows its subscriber until it is dropped
/// assert_eq!(audit.recv_blocking().unwrap_err(), shardcast::RecvError::Closed);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Bus<E> {
    handle: Arc<BusHandle<E>>,
    /// The live `SharedPublisher` clones' state, once one was taken: `shared_publisher`
    /// hands out another clone while it upgrades. Shared by every clone of this `Bus`; a
    /// `std` `Weak` (see `sync`).
    shared_publisher: Arc<Mutex<Option<SharedSlot<E>>>>,
}

type SharedSlot<E> = std::sync::Weak<crate::shared_publisher::Inner<E>>;

impl<E> Clone for Bus<E> {
    fn clone(&self) -> Self {
        Bus {
            handle: Arc::clone(&self.handle),
            shared_publisher: Arc::clone(&self.shared_publisher),
        }
    }
}

impl Bus<()> {
    /// A builder with the defaults.
    pub fn builder() -> BusBuilder {
        BusBuilder::default()
    }
}

impl<E: Send + Sync + 'static> Bus<E> {
    /// Takes the bus's one publisher.
    ///
    /// # Errors
    /// `PublisherTaken` while a publisher is alive, exclusive or
    /// [shared](Self::shared_publisher) (a bus has one publisher for its whole life:
    /// dropping it closes the bus); `Closed` if the bus is closed.
    pub fn publisher(&self) -> Result<Publisher<E>, BusError> {
        let shared = &self.handle.shared;
        if shared.ring.is_closed() {
            return Err(shared.closed_error("take the publisher", CloseReason::CloseCalled));
        }
        // Relaxed: the flag guards only itself; the publisher's state comes from the ring.
        if shared.lifetime.publisher_taken.swap(true, Ordering::Relaxed) {
            return Err(BusError::PublisherTaken);
        }
        Ok(Publisher::new(Arc::clone(&self.handle)))
    }

    /// The bus's one publisher as a [`SharedPublisher`]: `Clone + Send + Sync`, with
    /// `publish(&self)`, for many threads or tasks. The first call takes the publisher;
    /// while any clone lives, later calls (on any `Bus` handle) return another clone of it,
    /// so tasks that restart can each ask the bus again. The bus closes for publishing when
    /// the last clone is dropped.
    ///
    /// ```
    /// use shardcast::{Bus, BusError};
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let publisher = bus.shared_publisher()?;
    /// let for_a_task = bus.shared_publisher()?; // another clone, as `publisher.clone()`
    /// assert_eq!(bus.publisher().unwrap_err(), BusError::PublisherTaken);
    /// drop((publisher, for_a_task));
    /// assert!(bus.is_closed());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `PublisherTaken` while the exclusive [`publisher`](Self::publisher) is alive;
    /// `Closed` if the bus is closed (which it is once the last clone has been dropped).
    pub fn shared_publisher(&self) -> Result<SharedPublisher<E>, BusError> {
        let shared = &self.handle.shared;
        // Held while taking a new one: two calls never both take the publisher.
        let mut slot = self.shared_publisher.lock();
        if let Some(weak) = &*slot {
            let operation = "take the publisher";
            if shared.ring.is_closed() {
                return Err(shared.closed_error(operation, CloseReason::PublisherDropped));
            }
            // Gone: its last clone was dropped, which closes the bus (the ring may not say
            // so yet, for a moment).
            return SharedPublisher::upgrade(weak)
                .ok_or_else(|| shared.closed_error(operation, CloseReason::PublisherDropped));
        }
        let publisher = self.publisher()?;
        let handle = SharedPublisher::new(publisher, Arc::clone(shared));
        *slot = Some(handle.downgrade());
        Ok(handle)
    }

    /// A [`Subscription`] to the topics matching `pattern`, typed with this bus's payload.
    ///
    /// The same as [`Subscription::to`], except that the payload type comes from the bus, so
    /// a [`filter`](Subscription::filter) closure needs no annotation and the call no
    /// turbofish:
    ///
    /// ```
    /// use shardcast::{Bus, Event, Topic};
    ///
    /// struct Order { id: u64 }
    ///
    /// let bus: Bus<Order> = Bus::builder().build()?;
    /// let mut big = bus.subscribe(bus.subscription("orders.>")?.filter(|e| e.payload().id > 100))?;
    /// let mut publisher = bus.publisher()?;
    /// for id in [7, 700] {
    ///     publisher.publish_blocking(Event::new(Topic::new("orders.eu.created")?, Order { id }))?;
    /// }
    /// publisher.close();
    /// assert_eq!(big.recv_blocking()?.payload().id, 700);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// An invalid pattern, saying what and where.
    pub fn subscription(&self, pattern: &str) -> Result<Subscription<E>, PatternError> {
        Subscription::to(pattern)
    }

    /// Subscribes to the topics matching `pattern`, with the rest of the subscription set by
    /// `configure` on a [`Subscription`] typed by this bus (so its closures infer):
    ///
    /// ```
    /// use shardcast::{Bus, BusError, Overflow};
    ///
    /// struct Order { id: u64 }
    ///
    /// let bus: Bus<Order> = Bus::builder().build()?;
    /// let big = bus.subscribe_to("orders.>", |s| {
    ///     s.filter(|e| e.payload().id > 100).capacity(64).overflow(Overflow::DropOldest)
    /// })?;
    /// assert_eq!(big.capacity(), 64);
    /// assert!(matches!(bus.subscribe_to("orders..eu", |s| s), Err(BusError::Pattern(_))));
    /// # Ok::<(), BusError>(())
    /// ```
    ///
    /// # Errors
    /// `Pattern` for an invalid pattern; otherwise as [`subscribe`](Self::subscribe).
    pub fn subscribe_to(
        &self,
        pattern: &str,
        configure: impl FnOnce(Subscription<E>) -> Subscription<E>,
    ) -> Result<Subscriber<E>, BusError> {
        self.subscribe(configure(self.subscription(pattern)?))
    }

    /// Subscribes. The subscriber receives every matching event published after this
    /// returns, in order, exactly once, unless its own queue overflows (then losses are
    /// counted and reported as `Lagged`). Events published *while* `subscribe` runs on
    /// another thread may or may not reach it (never out of order, never an event from
    /// before its start).
    ///
    /// # Errors
    /// `Closed` after the bus closed (a closed bus takes no new subscriber; the error says
    /// why it closed); `Config` for a capacity of 0.
    pub fn subscribe(&self, subscription: Subscription<E>) -> Result<Subscriber<E>, BusError> {
        let queue = self.handle.shared.register(&subscription, "subscribe")?;
        Ok(Subscriber::new(queue, Arc::clone(&self.handle), subscription))
    }

    /// Closes the bus and waits for its dispatchers to finish: the publisher's next publish
    /// fails, events already published are delivered, then every receiver sees `Closed`
    /// after draining its queue. A shard waiting on a full `Overflow::Block` subscriber
    /// stops waiting (that event is counted as dropped; call
    /// [`Publisher::flush`] first to deliver to `Block` subscribers losslessly).
    /// Idempotent.
    ///
    /// When `close` returns (called anywhere but on a dispatcher thread, where it cannot
    /// wait for itself), every shard has finished and closed its subscribers' queues: a
    /// subscriber's `try_recv` returns what is queued and then `Closed`, never `Empty`.
    /// Dropping the publisher does not wait: until the shards have drained the ring,
    /// `try_recv` may still say `Empty` before `Closed`. `close` blocks the calling thread
    /// while the shards drain; on an async executor await [`close_async`](Self::close_async)
    /// instead.
    ///
    /// # Panics
    /// If it would wait on a thread that runs tokio tasks (a runtime worker, or inside
    /// `block_on`): it names `close_async` instead (see the crate docs, "Async and
    /// blocking").
    ///
    /// ```
    /// use shardcast::{Bus, Event, Subscription, Topic, TryRecvError};
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let mut publisher = bus.publisher()?;
    /// publisher.publish_blocking(Event::new(Topic::new("t")?, 1))?;
    /// bus.close();
    /// assert_eq!(*sub.try_recv()?.payload(), 1);
    /// assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Closed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn close(&self) {
        if !self.handle.shared.ring.all_retired() {
            crate::blocking::forbid_in_async("Bus::close", "Bus::close_async()");
        }
        self.handle.close();
    }

    /// [`close`](Self::close) without blocking the thread: closes the bus at once, then
    /// resolves once every dispatcher shard has finished and closed its subscribers'
    /// queues, with the same guarantee as `close` (a subscriber's `try_recv` then returns
    /// what is queued and then `Closed`, never `Empty`). The shards wake the future as they
    /// finish (a registered waker, no polling). The dispatcher threads are joined later,
    /// by the last handle's drop, by which time they have finished. Idempotent, and
    /// cancel-safe: the bus is closed when the future is first polled, and dropping the
    /// future leaves no waker behind. Do not await it inside a subscription's filter (a
    /// dispatcher thread): it would wait for itself.
    ///
    /// ```
    /// use shardcast::{Bus, Event, Subscription, Topic, TryRecvError};
    /// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let publisher = bus.shared_publisher()?;
    /// publisher.publish(Event::new(Topic::new("t")?, 1)).await?;
    /// bus.close_async().await;
    /// assert!(publisher.is_closed());
    /// assert_eq!(*sub.try_recv()?.payload(), 1);
    /// assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Closed);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// # })?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub async fn close_async(&self) {
        self.handle.start_close();
        // Each shard closes its queues, then retires its cursor (dispatch's `Finish`); the
        // retire's cursor swap wakes this future (the ring's flush-waker protocol).
        self.handle.shared.ring.retired_async().await;
    }

    /// Whether the bus is closed (by [`close`](Self::close) or the publisher's drop).
    pub fn is_closed(&self) -> bool {
        self.handle.shared.ring.is_closed()
    }

    /// Subscribers whose handle is alive, over all shards (one closed by a `Disconnect`
    /// overflow counts until it is dropped).
    pub fn subscriber_count(&self) -> usize {
        self.handle.shared.shards.iter().map(|r| r.len()).sum()
    }

    /// Events published so far.
    pub fn published(&self) -> u64 {
        self.handle.shared.ring.published()
    }

    /// A snapshot of each dispatcher shard's counters.
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        let shared = &self.handle.shared;
        let ring = &shared.ring;
        shared
            .counters
            .iter()
            .enumerate()
            .map(|(i, c)| c.snapshot(i, || ring.published()))
            .collect()
    }

    /// Everything the bus counted, now: plain data (serde), entries sorted. Every
    /// open/closed pair satisfies `open >= closed` (see the `stats` module). A dropped
    /// subscriber leaves [`StatsSnapshot::subscribers`] and its counters fold into
    /// [`StatsSnapshot::retired`] (per name and shard) at the same instant, so no total over
    /// subscribers goes down, here or in the Prometheus text.
    ///
    /// ```
    /// use shardcast::{Bus, Event, Subscription, Topic};
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::all().name("audit"))?;
    /// let mut publisher = bus.publisher()?;
    /// publisher.publish_blocking(Event::new(Topic::new("orders.eu.created")?, 1))?;
    /// sub.recv_blocking()?;
    /// let stats = bus.stats();
    /// assert_eq!(stats.published, 1);
    /// assert_eq!(stats.subscribers[0].name, "audit");
    /// assert_eq!(stats.subscribers[0].consumed, 1);
    /// assert_eq!(stats.topics[0].prefix, "orders.eu");
    /// assert!(stats.prometheus_text().contains("shardcast_published_total 1"));
    ///
    /// drop(sub);
    /// let stats = bus.stats();
    /// assert!(stats.subscribers.is_empty());
    /// assert_eq!((stats.retired[0].name.as_str(), stats.retired[0].consumed), ("audit", 1));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn stats(&self) -> StatsSnapshot {
        self.handle.shared.stats_with_external()
    }

    /// Shows `source`'s counters in this bus's [`stats`](Self::stats), in
    /// [`StatsSnapshot::external`] and the Prometheus text, until `source` is dropped (the
    /// bus holds it weakly). Attaching the same source again changes nothing. A bridge
    /// attaches its counters to every bus it exports from or imports into.
    pub fn attach_stats(&self, source: std::sync::Arc<dyn ExternalStats>) {
        self.handle.shared.reporting.external.attach(source);
    }

    /// Publishes a [`StatsDelta`] event on `$SYS.stats` every `interval` in which
    /// something changed, until the bus closes. Subscribe with `$SYS.>` (or
    /// `Subscription::all()`) to receive them; the payload is `E::from(delta)`. `$SYS`
    /// events are never counted in stats. Calling it again changes nothing.
    ///
    /// ```
    /// use shardcast::{Bus, Event, Subscription, Topic};
    /// use shardcast::stats::StatsDelta;
    /// use std::time::Duration;
    ///
    /// enum Msg { Order(u32), Stats(StatsDelta) }
    /// impl From<StatsDelta> for Msg {
    ///     fn from(d: StatsDelta) -> Self { Msg::Stats(d) }
    /// }
    ///
    /// let bus: Bus<Msg> = Bus::builder().build()?;
    /// let mut sys = bus.subscribe(Subscription::to("$SYS.>")?)?;
    /// bus.publish_stats_every(Duration::from_millis(10))?;
    /// let mut publisher = bus.publisher()?;
    /// publisher.publish_blocking(Event::new(Topic::new("orders")?, Msg::Order(1)))?;
    /// match sys.recv_blocking()?.payload() {
    ///     Msg::Stats(delta) => assert_eq!(delta.published, 1),
    ///     Msg::Order(_) => unreachable!(),
    /// }
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `Closed` if the bus is closed; `Config` if the OS cannot spawn the stats thread.
    pub fn publish_stats_every(&self, interval: Duration) -> Result<(), BusError>
    where
        E: From<StatsDelta>,
    {
        let shared = &self.handle.shared;
        if shared.ring.is_closed() {
            return Err(shared.closed_error("publish stats", CloseReason::CloseCalled));
        }
        let mut threads = self.handle.threads.lock();
        // Relaxed: guarded by the `threads` lock.
        if shared.reporting.thread.started.swap(true, Ordering::Relaxed) {
            return Ok(());
        }
        let worker = Arc::clone(shared);
        let interval = clamp_interval(interval);
        // The baseline is taken now, not when the thread starts: the first delta covers
        // everything after this call.
        let baseline = shared.stats();
        let handle = spawn_named("shardcast-stats".to_owned(), move || {
            events::run::<E>(&worker, baseline, interval);
        })
        .map_err(|e| {
            BusError::Config(ConfigError::new(
                "publish_stats_every",
                format!("a stats thread ({e})"),
                "a thread the OS can spawn",
            ))
        })?;
        threads.push(handle);
        Ok(())
    }

    /// Number of dispatcher shards.
    pub fn dispatchers(&self) -> usize {
        self.handle.shared.shards.len()
    }
}

impl<E> fmt::Debug for Bus<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = &self.handle.shared;
        f.debug_struct("Bus")
            .field("dispatchers", &shared.shards.len())
            .field("ring_capacity", &shared.ring.capacity())
            .field("published", &shared.ring.published())
            .field("closed", &shared.ring.is_closed())
            .finish()
    }
}
