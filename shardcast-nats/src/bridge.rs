//! One NATS connection, its origin id and counters, and the exports and imports made on it.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_nats::{Client, ConnectOptions, Event as NatsEvent, ToServerAddrs};
use shardcast::{Bus, Topic, Uuid};
use tokio::sync::Notify;

use crate::codec::Codec;
use crate::error::{BridgeError, ImportError};
use crate::export::{self, ExportHandle, ExportOptions};
use crate::import::{self, ImportHandle, ImportOptions, ImportPublisher};
use crate::shared::Inner;
use crate::stats::{add, BridgeStats, Counters, Source};

/// How to connect a [`Bridge`].
#[derive(Debug)]
pub struct BridgeConfig {
    prefix: String,
    origin: Option<Uuid>,
    connect: Option<ConnectOptions>,
}

impl Default for BridgeConfig {
    fn default() -> Self {
        BridgeConfig { prefix: "shardcast".into(), origin: None, connect: None }
    }
}

impl BridgeConfig {
    /// Subject prefix: topic `a.b` travels as `<prefix>.a.b`. Default `shardcast`. One or
    /// more tokens, no wildcards.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// This bridge's origin id, written on every message it exports; default: random.
    pub fn origin(mut self, origin: Uuid) -> Self {
        self.origin = Some(origin);
        self
    }

    /// async-nats options (auth, TLS, reconnect backoff, name, ...). The bridge installs
    /// its own `event_callback` (to count and log connection changes), replacing any set
    /// here. Reconnects follow these options: by default async-nats retries forever with
    /// an exponential backoff capped at 4 s.
    pub fn connect_options(mut self, options: ConnectOptions) -> Self {
        self.connect = Some(options);
        self
    }
}

/// A bridge between local buses and one NATS server or cluster. Cheap to clone: clones
/// share the connection, the origin id and the counters.
///
/// Exports and imports run as tasks on the tokio runtime that was current when the bridge
/// connected.
#[derive(Clone)]
pub struct Bridge {
    inner: Arc<Inner>,
}

impl Bridge {
    /// Connects to `addrs` (for example `nats://127.0.0.1:4222`). Must be called inside a
    /// tokio runtime. The first connection is not retried unless the
    /// [`connect_options`](BridgeConfig::connect_options) say
    /// `retry_on_initial_connect()`; every later one is.
    ///
    /// # Errors
    /// The prefix is not a valid topic, or the first connection failed.
    pub async fn connect(
        addrs: impl ToServerAddrs,
        config: BridgeConfig,
    ) -> Result<Bridge, BridgeError> {
        let prefix = Topic::new(&config.prefix).map_err(BridgeError::Prefix)?;
        let origin = config.origin.unwrap_or_else(random_origin);
        let counters = Arc::new(Counters::default());
        let state_changed = Arc::new(Notify::new());
        let options = config.connect.unwrap_or_default();
        let (c, n) = (Arc::clone(&counters), Arc::clone(&state_changed));
        let options = options.event_callback(move |event| {
            on_event(&c, &n, origin, event);
            std::future::ready(())
        });
        let client = options.connect(addrs).await.map_err(BridgeError::Connect)?;
        // Connected, unless the options asked to retry the first connection in the
        // background (then the callback's `Connected` sets it).
        let up = client.connection_state() == async_nats::connection::State::Connected;
        if up {
            counters.connected.store(true, Relaxed);
            tracing::info!(%origin, "shardcast-nats connected");
        }
        Ok(Bridge {
            inner: Arc::new(Inner {
                client,
                origin,
                prefix,
                source: Arc::new(Source {
                    origin: origin.to_string(),
                    counters: Arc::clone(&counters),
                }),
                counters,
                state_changed,
                runtime: tokio::runtime::Handle::current(),
                next_export: AtomicU32::new(0),
                epoch: Instant::now(),
            }),
        })
    }

    /// Exports events of `bus` that match `pattern` to NATS, each on subject
    /// `<prefix>.<topic>`. See [`ExportOptions`] for the subscription it makes, and the
    /// crate docs for what is never exported.
    ///
    /// # Errors
    /// An invalid pattern, or the bus refused the subscription (closed, bad capacity).
    pub fn export<E, C>(
        &self,
        bus: &Bus<E>,
        pattern: &str,
        options: ExportOptions<C>,
    ) -> Result<ExportHandle, BridgeError>
    where
        E: Send + Sync + 'static,
        C: Codec<E>,
    {
        export::start(&self.inner, bus, pattern, options)
    }

    /// Imports messages from NATS subjects `<prefix>.<pattern>` into a local bus through
    /// `publisher`, each with topic = the subject after the prefix.
    ///
    /// `publisher` is either of the bus's publishing handles ([`ImportPublisher`]):
    /// - a clone of its [`SharedPublisher`](shardcast::SharedPublisher) (the bus's
    ///   multi-producer handle): the rest of the daemon keeps publishing through its own
    ///   clones, and imported and local events interleave in the bus's one order;
    /// - the bus's one [`Publisher`](shardcast::Publisher): the import owns it until
    ///   [`ImportHandle::stop`] gives it back, and local code publishes through
    ///   [`ImportHandle::sender`].
    ///
    /// The import's task waits for ring space with `publish_async`, so a full bus never
    /// blocks the executor: the task stops reading, and the NATS client's subscription
    /// buffer takes the rest.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use shardcast::{Bus, Event, Topic};
    /// use shardcast_nats::{Bridge, BridgeConfig, ImportOptions};
    ///
    /// let bus: Bus<String> = Bus::builder().build()?;
    /// let publisher = bus.shared_publisher()?;
    /// let bridge = Bridge::connect("nats://127.0.0.1:4222", BridgeConfig::default()).await?;
    /// let import = bridge.import(publisher.clone(), "orders.>", ImportOptions::default()).await?;
    /// // Local events go into the same bus, next to the imported ones.
    /// publisher.publish(Event::new(Topic::new("orders.local")?, "made here".to_owned())).await?;
    /// # drop(import);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// An invalid pattern or option, or the NATS subscription failed; the error hands the
    /// publisher back.
    pub async fn import<E, C, P>(
        &self,
        publisher: P,
        pattern: &str,
        options: ImportOptions<C>,
    ) -> Result<ImportHandle<E, P>, ImportError<E, P>>
    where
        E: Send + Sync + 'static,
        C: Codec<E>,
        P: ImportPublisher<E>,
    {
        import::start(&self.inner, publisher, pattern, options).await
    }

    /// Returns once the server has processed everything this bridge sent before the call
    /// (subscriptions included): after `import(..).await` and `round_trip().await`, the
    /// import receives every later message. Waits for the connection if it is down.
    ///
    /// # Errors
    /// The round trip failed (the client is closed, or the server timed out).
    pub async fn round_trip(&self) -> Result<(), async_nats::RequestError> {
        // No one answers this subject: the server's "no responders" reply comes after it
        // has processed every earlier command of this connection.
        let subject = format!("_SHARDCAST_NATS.ping.{}", self.inner.origin);
        match self.inner.client.request(subject, bytes::Bytes::new()).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// This bridge's origin id.
    pub fn origin(&self) -> Uuid {
        self.inner.origin
    }

    /// The subject prefix.
    pub fn prefix(&self) -> &str {
        self.inner.prefix.as_str()
    }

    /// The underlying async-nats client (to publish or subscribe beside the bridge).
    pub fn client(&self) -> &Client {
        &self.inner.client
    }

    /// A snapshot of the counters of this bridge, all exports and imports together.
    pub fn stats(&self) -> BridgeStats {
        self.inner.source.snapshot()
    }

    /// [`BridgeStats::prometheus_text`] of a fresh snapshot: `shardcast_nats_*` series. A
    /// bus this bridge exports from or imports into shows them in its own `stats()` and
    /// `prometheus_text()` already: do not append this to those.
    pub fn prometheus_text(&self) -> String {
        self.stats().prometheus_text()
    }
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("origin", &self.inner.origin)
            .field("prefix", &self.inner.prefix.as_str())
            .field("connected", &self.inner.is_connected())
            .finish()
    }
}

fn on_event(counters: &Counters, changed: &Notify, origin: Uuid, event: NatsEvent) {
    match event {
        NatsEvent::Connected => {
            counters.connected.store(true, Relaxed);
            // Only a connection after a loss is a reconnect (the first one may be reported
            // here too). This callback is the only writer of both counters and runs on one
            // task, in order, so the comparison cannot race.
            if counters.disconnects.load(Relaxed) > counters.reconnects.load(Relaxed) {
                add(&counters.reconnects, 1);
                tracing::info!(%origin, "shardcast-nats reconnected");
            }
            changed.notify_waiters();
        }
        NatsEvent::Disconnected => {
            if counters.connected.swap(false, Relaxed) {
                add(&counters.disconnects, 1);
            }
            tracing::warn!(%origin, "shardcast-nats disconnected; reconnecting with backoff");
            changed.notify_waiters();
        }
        other => tracing::debug!(%origin, event = %other, "shardcast-nats connection event"),
    }
}

fn random_origin() -> Uuid {
    // Two independently keyed std hashers of the time and pid: unique enough for an id
    // that only has to differ between the bridges sharing one NATS cluster.
    let seed = (SystemTime::now(), std::process::id());
    let hi = RandomState::new().hash_one(seed);
    let lo = RandomState::new().hash_one(seed);
    Uuid::from_u64_pair(hi, lo)
}
