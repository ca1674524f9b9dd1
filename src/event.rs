//! Events as published, and deliveries as received.
//!
//! A published event is moved into a slot of a pooled segment (no allocation per publish
//! in the steady state, see `segment`) and every subscriber's [`Delivery`] reads it there:
//! payloads are shared, never copied, so `E` needs neither `Clone` nor `Debug`.
//!
//! An event may carry a `route` (the primary routing key, say a session id) and an
//! [`Alias`] (a secondary key the producer knows before the route, say a connector's own
//! session id). See `dispatch` for how aliases are bound to routes, late, at dispatch time.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::error::AliasError;
use crate::topic::Topic;

/// What an event does to the shards' alias → route bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Binding {
    #[default]
    None,
    Binds,
    Unbinds,
}

/// An event: a topic and a payload, optional routing keys, plus the sequence number and
/// timestamp the bus stamps on it at publish.
pub struct Event<E> {
    seq: u64,
    /// Raw TSC reading of [`clock`] at publish: an `rdtsc` costs a third of
    /// `Instant::now()` on the publisher's hot path; converting is left to the rare reader.
    published_raw: Option<u64>,
    topic: Topic,
    route: Option<Uuid>,
    alias: Option<Alias>,
    binding: Binding,
    payload: E,
}

impl<E> Event<E> {
    /// A new event, not yet published.
    pub fn new(topic: Topic, payload: E) -> Self {
        Event {
            seq: 0,
            published_raw: None,
            topic,
            route: None,
            alias: None,
            binding: Binding::None,
            payload,
        }
    }

    /// Sets the route (primary routing key).
    #[must_use]
    pub fn with_route(mut self, route: Uuid) -> Self {
        self.route = Some(route);
        self
    }

    /// Sets the alias (secondary key). An event with an alias and no route is delivered
    /// with the route bound to the alias, if any.
    #[must_use]
    pub fn with_alias(mut self, alias: Alias) -> Self {
        self.alias = Some(alias);
        self
    }

    /// Marks the event as binding its alias to its route (it needs both; without both the
    /// mark does nothing). Later events with that alias and no route get this route.
    #[must_use]
    pub fn binds(mut self) -> Self {
        self.binding = Binding::Binds;
        self
    }

    /// Marks the event as ending its alias's binding. The event itself is still resolved
    /// (delivered with the route the alias had), then the binding is removed.
    #[must_use]
    pub fn unbinds(mut self) -> Self {
        self.binding = Binding::Unbinds;
        self
    }

    /// The sequence number the publisher gave this event (0 before publishing). Sequence
    /// numbers start at 0 and increase by one per published event.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The topic.
    pub fn topic(&self) -> &Topic {
        &self.topic
    }

    /// The route the event was published with (see
    /// [`Delivery::resolved_route`](crate::Delivery::resolved_route) for the resolved one).
    pub fn route(&self) -> Option<Uuid> {
        self.route
    }

    /// The alias the event was published with.
    pub fn alias(&self) -> Option<&Alias> {
        self.alias.as_ref()
    }

    /// When the publisher handed the event to the bus; `None` before publishing. The bus
    /// stamps a cheaper clock (the TSC) and converts it here against one reference point,
    /// so the value is stable but may differ from an `Instant` taken at publish by the
    /// clocks' calibration error.
    pub fn published_at(&self) -> Option<Instant> {
        let raw = self.published_raw?;
        let anchor = anchor();
        Some(anchor.instant + anchor.clock.delta(anchor.raw, raw))
    }

    /// Time since the event was published; `None` before publishing.
    pub fn age(&self) -> Option<Duration> {
        let raw = self.published_raw?;
        let clock = &anchor().clock;
        Some(clock.delta(raw, clock.raw()))
    }

    /// The payload.
    pub fn payload(&self) -> &E {
        &self.payload
    }

    /// Takes the payload out of an event (for example one returned by a failed publish).
    pub fn into_payload(self) -> E {
        self.payload
    }

    pub(crate) fn binding(&self) -> Binding {
        self.binding
    }

    pub(crate) fn stamp(&mut self, seq: u64) {
        self.seq = seq;
        self.published_raw = Some(anchor().clock.raw());
    }
}

impl<E: fmt::Debug> fmt::Debug for Event<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("seq", &self.seq)
            .field("topic", &self.topic)
            .field("route", &self.route)
            .field("alias", &self.alias)
            .field("payload", &self.payload)
            .finish()
    }
}

/// The process-wide publish clock (quanta's TSC clock, calibrated against the monotonic
/// clock; it falls back to the OS clock where the TSC is unusable) and one reading of both
/// clocks, taken together, to convert stamps to `Instant`s.
pub(crate) struct Anchor {
    clock: Clock,
    raw: u64,
    instant: Instant,
}

pub(crate) fn anchor() -> &'static Anchor {
    static ANCHOR: OnceLock<Anchor> = OnceLock::new();
    ANCHOR.get_or_init(|| {
        let clock = Clock::new();
        let raw = clock.raw();
        Anchor { clock, raw, instant: Instant::now() }
    })
}

#[cfg(all(feature = "latency", not(miri)))]
use quanta::Clock;

/// Miri cannot run quanta's calibration (`rdtsc`, `cpuid`), and without the `latency`
/// feature quanta is not built: then the publish clock is the monotonic clock, with
/// quanta's `raw`/`delta` API. This is the one place that owns the clock, so the shim lives
/// here, as `sync` holds loom's.
#[cfg(any(miri, not(feature = "latency")))]
struct Clock(Instant);

#[cfg(any(miri, not(feature = "latency")))]
impl Clock {
    fn new() -> Self {
        Clock(Instant::now())
    }

    /// Nanoseconds since the clock was made.
    fn raw(&self) -> u64 {
        u64::try_from(self.0.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn delta(&self, start: u64, end: u64) -> Duration {
        Duration::from_nanos(end.saturating_sub(start))
    }
}

/// A secondary routing key: a namespace (say a connector id) and a key within it (say
/// that connector's native session id). Cheap to clone; hash precomputed.
#[derive(Clone)]
pub struct Alias(std::sync::Arc<AliasInner>);

struct AliasInner {
    hash: u64,
    namespace: Box<str>,
    key: Box<str>,
}

impl Alias {
    /// The longest namespace or key, in bytes.
    pub const MAX_LEN: usize = 255;

    /// An alias; namespace and key must be non-empty and at most 255 bytes each.
    ///
    /// # Errors
    /// Which part is empty or too long.
    pub fn new(namespace: &str, key: &str) -> Result<Alias, AliasError> {
        for (part, value) in [("namespace", namespace), ("key", key)] {
            if value.is_empty() {
                return Err(AliasError::Empty(part));
            }
            if value.len() > Self::MAX_LEN {
                return Err(AliasError::TooLong(part, value.len()));
            }
        }
        let mut hasher = ALIAS_HASHER.build_hasher();
        namespace.hash(&mut hasher);
        key.hash(&mut hasher);
        let hash = hasher.finish();
        Ok(Alias(std::sync::Arc::new(AliasInner {
            hash,
            namespace: namespace.into(),
            key: key.into(),
        })))
    }

    /// The namespace.
    pub fn namespace(&self) -> &str {
        &self.0.namespace
    }

    /// The key within the namespace.
    pub fn key(&self) -> &str {
        &self.0.key
    }
}

static ALIAS_HASHER: std::hash::BuildHasherDefault<std::collections::hash_map::DefaultHasher> =
    std::hash::BuildHasherDefault::new();

impl PartialEq for Alias {
    fn eq(&self, other: &Self) -> bool {
        std::sync::Arc::ptr_eq(&self.0, &other.0)
            || (self.0.hash == other.0.hash
                && self.0.namespace == other.0.namespace
                && self.0.key == other.0.key)
    }
}

impl Eq for Alias {}

impl Hash for Alias {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.hash);
    }
}

impl fmt::Debug for Alias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Alias({:?}, {:?})", self.namespace(), self.key())
    }
}

impl fmt::Display for Alias {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace(), self.key())
    }
}
