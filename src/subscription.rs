//! What a subscriber asks for: which events (topic patterns, a route, a predicate), how
//! much it may queue, and what happens when its queue is full.

use std::fmt;
use std::marker::PhantomData;

use uuid::Uuid;

use crate::error::PatternError;
use crate::event::Event;
use crate::topic::{Pattern, Topic};

/// A predicate run on the dispatcher thread.
pub(crate) type Filter<E> = std::sync::Arc<dyn Fn(&Event<E>) -> bool + Send + Sync>;

/// Which topics a subscription wants.
#[derive(Clone, Debug)]
pub(crate) enum Matcher {
    All,
    /// Shared, so that copying a chunk of the subscriber list allocates nothing.
    Any(std::sync::Arc<[Pattern]>),
}

impl Matcher {
    pub(crate) fn matches(&self, topic: &Topic) -> bool {
        match self {
            Matcher::All => true,
            Matcher::Any(patterns) => patterns.iter().any(|p| p.matches(topic)),
        }
    }
}

/// What a dispatcher shard does with an event for a subscriber whose queue is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Overflow {
    /// Drop the new event (the queue keeps the older ones). Counted. The default.
    #[default]
    DropNewest,
    /// Drop the oldest queued event to make room for the new one. Counted.
    DropOldest,
    /// Wait until the subscriber makes room: lossless for this subscriber.
    ///
    /// **Hazard:** while it waits, the subscriber's dispatcher shard delivers to nobody else
    /// and the ring fills up, so a stuck `Block` subscriber eventually stalls the publisher
    /// and every subscriber of its shard. The wait ends when the subscriber receives, is
    /// dropped, or the bus is closed with [`Bus::close`](crate::Bus::close) (the event
    /// is then counted as dropped).
    ///
    /// **Bound:** lossless is not a rendezvous. The publisher may run ahead of a `Block`
    /// subscriber by its queue plus the whole ring: up to `capacity + ring_capacity`
    /// events published and not yet received (the batch its shard is pushing stays in the
    /// ring until released), and `try_recv` sees only the queue. Two parties that publish
    /// to each other's `Block` subscribers can therefore both fill their rings and wait on
    /// each other forever; [`Publisher::flush`](crate::Publisher::flush) after each publish
    /// bounds what is in flight to one event and makes request/response safe (see
    /// `examples/request_response.rs`).
    Block,
    /// Drop the event and close the subscription: the subscriber drains what it has, sees
    /// `Lagged(1)`, then `Closed`. Counted.
    Disconnect,
}

/// What to subscribe to and how, for [`Bus::subscribe`](crate::Bus::subscribe).
///
/// Topic patterns are matched first (and cached per topic by each shard); the
/// [`route`](Self::route) and [`filter`](Self::filter) refinements run after, per event.
///
/// ```
/// use shardcast::{Subscription, Uuid};
/// let session = Uuid::from_u128(7);
/// // Built on its own, a subscription names its payload type so that the predicate's
/// // argument type is known; `Bus::subscription` takes it from the bus instead.
/// let sub = Subscription::<String>::to_any(["orders.*.created", "billing.>"])?
///     .route(session)
///     .filter(|event| event.payload().len() < 1024)
///     .capacity(256)
///     .name("session-7");
/// # Ok::<(), shardcast::PatternError>(())
/// ```
pub struct Subscription<E> {
    pub(crate) matcher: Matcher,
    pub(crate) route: Option<Uuid>,
    pub(crate) filter: Option<Filter<E>>,
    pub(crate) capacity: Option<usize>,
    pub(crate) overflow: Overflow,
    pub(crate) name: Option<String>,
    _payload: PhantomData<fn(&E)>,
}

impl<E> Subscription<E> {
    /// Every event on the bus (`$SYS` events included).
    pub fn all() -> Self {
        Self::with_matcher(Matcher::All)
    }

    /// Events whose topic matches `pattern` (see [`Pattern`] for the syntax).
    ///
    /// # Errors
    /// An invalid pattern, saying what and where.
    pub fn to(pattern: &str) -> Result<Self, PatternError> {
        Ok(Self::with_matcher(Matcher::Any(std::sync::Arc::new([Pattern::new(pattern)?]))))
    }

    /// Events whose topic matches any of `patterns`.
    ///
    /// # Errors
    /// The first invalid pattern.
    pub fn to_any<'a>(patterns: impl IntoIterator<Item = &'a str>) -> Result<Self, PatternError> {
        let patterns = patterns.into_iter().map(Pattern::new).collect::<Result<Box<[_]>, _>>()?;
        Ok(Self::with_matcher(Matcher::Any(patterns.into())))
    }

    /// Events whose topic matches any of these parsed patterns.
    pub fn to_patterns(patterns: impl IntoIterator<Item = Pattern>) -> Self {
        Self::with_matcher(Matcher::Any(patterns.into_iter().collect()))
    }

    fn with_matcher(matcher: Matcher) -> Self {
        Subscription {
            matcher,
            route: None,
            filter: None,
            capacity: None,
            overflow: Overflow::default(),
            name: None,
            _payload: PhantomData,
        }
    }

    /// Only events whose resolved route (their own, or the one bound to their alias) is
    /// `route`.
    pub fn route(mut self, route: Uuid) -> Self {
        self.route = Some(route);
        self
    }

    /// Only events for which `predicate` returns `true`. It runs on the dispatcher thread
    /// for every event that passed the pattern and route checks, so it must be cheap and
    /// must not block. A predicate that panics is caught: the event counts as not matching,
    /// the panic is counted in the shard's `filter_panics`, and the shard carries on.
    pub fn filter(mut self, predicate: impl Fn(&Event<E>) -> bool + Send + Sync + 'static) -> Self {
        self.filter = Some(std::sync::Arc::new(predicate));
        self
    }

    /// Queue capacity, `1..=67_108_864`; default: the bus's
    /// [`queue_capacity`](crate::BusBuilder::queue_capacity). Exactly this many events
    /// fit: it is not rounded.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// What to do when the queue is full; default [`Overflow::DropNewest`].
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// A name for stats and debugging; default `sub-<id>`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }
}

impl<E> Clone for Subscription<E> {
    fn clone(&self) -> Self {
        Subscription {
            matcher: self.matcher.clone(),
            route: self.route,
            filter: self.filter.clone(),
            capacity: self.capacity,
            overflow: self.overflow,
            name: self.name.clone(),
            _payload: PhantomData,
        }
    }
}

impl<E> fmt::Debug for Subscription<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("matcher", &self.matcher)
            .field("route", &self.route)
            .field("filter", &self.filter.as_ref().map(|_| ".."))
            .field("capacity", &self.capacity)
            .field("overflow", &self.overflow)
            .field("name", &self.name)
            .finish()
    }
}

/// Why an event was lost for a subscriber.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    /// `Overflow::DropNewest`: the new event.
    Newest,
    /// `Overflow::DropOldest`: the oldest queued event (the new one was queued).
    Oldest,
    /// `Overflow::Disconnect`: the new event; the queue is now closed.
    Disconnect,
    /// `Overflow::Block`, ended by bus shutdown.
    Shutdown,
}

/// Who a queue belongs to, for stats and debugging.
#[derive(Debug, Clone, Default)]
pub(crate) struct Meta {
    pub(crate) id: u64,
    pub(crate) name: String,
    pub(crate) shard: usize,
}
