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
use std::ops::Deref;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::error::AliasError;
use crate::queue::{Claimed, Receiver};
use crate::segment::{Pool, SegPtr, Segment};
use crate::sync::Arc;
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

    /// The route the event was published with (see [`Delivery::resolved_route`] for the resolved
    /// one).
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

#[cfg(not(miri))]
use quanta::Clock;

/// Miri cannot run quanta's calibration (`rdtsc`, `cpuid`): under miri the publish clock is
/// the monotonic clock, with quanta's `raw`/`delta` API. This is the one place that owns the
/// clock, so the shim lives here, as `sync` holds loom's.
#[cfg(miri)]
struct Clock(Instant);

#[cfg(miri)]
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

/// One subscriber's receipt of an event, read in place: it borrows the
/// [`Subscriber`](crate::Subscriber) until it is dropped, and derefs to the [`Event`],
/// which lives in a segment shared with every other subscriber that received it. Taking
/// it costs no reference count; [`to_owned`](Self::to_owned) gives a handle that outlives
/// the borrow (and may cross threads) at one reference-count increment.
pub struct Delivery<'a, E> {
    rx: &'a mut Receiver<E>,
    event: &'a Event<E>,
    seg: SegPtr<E>,
    slot: usize,
}

impl<'a, E> Delivery<'a, E> {
    #[inline(always)]
    pub(crate) fn new(rx: &'a mut Receiver<E>, claimed: Claimed<E>) -> Self {
        let (seg, slot) = (claimed.seg, claimed.slot);
        // SAFETY: the receiver owns a reference on the claimed event's segment until this
        // delivery is dropped (`Receiver::finish` runs in our `Drop`), and a claimed slot
        // holds a published event.
        let event = unsafe { Segment::event(seg.0, slot) };
        // The resolved route is read only when asked for: most receivers never do, and it
        // lives on another line of the segment.
        Delivery { rx, event, seg, slot }
    }

    /// The event's route as resolved at dispatch: its own, or the one bound to its alias.
    /// [`Event::route`] (through `Deref`, as `Event::route(&delivery)`) is the route the
    /// event was published with.
    ///
    /// ```
    /// use shardcast::{Alias, Bus, Event, Subscription, Topic, Uuid};
    /// let bus: Bus<u32> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let mut publisher = bus.publisher()?;
    /// let (alias, route) = (Alias::new("conn", "c-1")?, Uuid::from_u128(7));
    /// let t = Topic::new("t")?;
    /// publisher.publish(Event::new(t.clone(), 0).with_alias(alias.clone()).with_route(route).binds())?;
    /// publisher.publish(Event::new(t, 1).with_alias(alias))?;
    /// publisher.close();
    /// let first = sub.recv()?;
    /// assert_eq!(first.resolved_route(), Some(route));
    /// drop(first);
    /// let late = sub.recv()?;
    /// assert_eq!(Event::route(&late), None); // published without a route
    /// assert_eq!(late.resolved_route(), Some(route)); // bound through its alias
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn resolved_route(&self) -> Option<Uuid> {
        // SAFETY: the receiver's reference keeps the segment alive while we exist, and the
        // shard wrote its route before it pushed the entry we were claimed from.
        unsafe { Segment::route(self.seg.0, self.rx.queue().meta.shard, self.slot) }
    }

    /// The resolved route; renamed [`resolved_route`](Self::resolved_route) because this
    /// name shadowed [`Event::route`] (the published route) through `Deref`.
    #[deprecated(
        since = "0.2.0",
        note = "use `resolved_route()`; `Event::route` is the published route"
    )]
    pub fn route(&self) -> Option<Uuid> {
        self.resolved_route()
    }

    /// An owned handle on the same event, which outlives this borrow and may be sent to
    /// another thread: one reference-count increment on the event's segment (and one on
    /// the bus's segment pool, which must outlive it). The segment, and the other events
    /// in it, stay in memory until the handle is dropped.
    ///
    /// ```
    /// use shardcast::{Bus, Event, RecvError, Subscription, Topic};
    /// let bus: Bus<String> = Bus::builder().build()?;
    /// let mut sub = bus.subscribe(Subscription::all())?;
    /// let mut publisher = bus.publisher()?;
    /// for word in ["a", "b"] {
    ///     publisher.publish(Event::new(Topic::new("t")?, word.to_owned()))?;
    /// }
    /// publisher.close();
    /// let mut kept = Vec::new();
    /// loop {
    ///     match sub.recv() {
    ///         Ok(delivery) => kept.push(delivery.to_owned()),
    ///         Err(RecvError::Lagged(n)) => eprintln!("lost {n} events"), // and go on
    ///         Err(RecvError::Closed) => break,
    ///     }
    /// }
    /// let words: Vec<&str> = kept.iter().map(|d| d.payload().as_str()).collect();
    /// assert_eq!(words, ["a", "b"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[allow(clippy::should_implement_trait)]
    pub fn to_owned(&self) -> OwnedDelivery<E> {
        // SAFETY: we hold the receiver's reference on the segment while we exist.
        unsafe { Segment::add_refs(self.seg.0, 1) };
        OwnedDelivery {
            seg: self.seg,
            slot: self.slot as u32,
            route: self.resolved_route(),
            pool: Arc::clone(self.rx.queue().pool_arc()),
        }
    }

    /// Whether two deliveries (borrowed or owned, through `Deref`) are of the same event:
    /// the same slot of the same segment.
    pub fn ptr_eq(a: &Event<E>, b: &Event<E>) -> bool {
        std::ptr::eq(a, b)
    }
}

impl<E> Drop for Delivery<'_, E> {
    fn drop(&mut self) {
        self.rx.finish();
    }
}

impl<E> Deref for Delivery<'_, E> {
    type Target = Event<E>;
    fn deref(&self) -> &Event<E> {
        self.event
    }
}

impl<E: fmt::Debug> fmt::Debug for Delivery<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("route", &self.resolved_route())
            .field("event", self.event)
            .finish()
    }
}

/// An owned [`Delivery`] (see [`Delivery::to_owned`]): keeps its event alive, `Clone`
/// (one more reference), `Send` and `Sync` when `E` is.
pub struct OwnedDelivery<E> {
    seg: SegPtr<E>,
    slot: u32,
    route: Option<Uuid>,
    pool: Arc<Pool<E>>,
}

impl<E> OwnedDelivery<E> {
    /// As [`Delivery::resolved_route`].
    pub fn resolved_route(&self) -> Option<Uuid> {
        self.route
    }

    /// Whether two owned deliveries are of the same event.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        std::ptr::eq::<Event<E>>(&**a, &**b)
    }
}

impl<E> Clone for OwnedDelivery<E> {
    fn clone(&self) -> Self {
        // SAFETY: we hold a reference on the segment.
        unsafe { Segment::add_refs(self.seg.0, 1) };
        OwnedDelivery {
            seg: self.seg,
            slot: self.slot,
            route: self.route,
            pool: Arc::clone(&self.pool),
        }
    }
}

impl<E> Drop for OwnedDelivery<E> {
    fn drop(&mut self) {
        // SAFETY: our reference, released once.
        unsafe { self.pool.release(self.seg.0, 1) };
    }
}

impl<E> Deref for OwnedDelivery<E> {
    type Target = Event<E>;
    fn deref(&self) -> &Event<E> {
        // SAFETY: our reference keeps the segment and its published event alive.
        unsafe { Segment::event(self.seg.0, self.slot as usize) }
    }
}

impl<E: fmt::Debug> fmt::Debug for OwnedDelivery<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedDelivery").field("route", &self.route).field("event", &**self).finish()
    }
}
