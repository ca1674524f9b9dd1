//! Arbitrary builder values: either a working bus (subscribe, publish one event, receive
//! it, close) or a `ConfigError` naming a field that really is out of bounds; never a
//! panic.
//!
//! The bounds come from the `BusBuilder` docs and the errors' `expected` texts. Invalid
//! values go in as they are, however large; valid values that would allocate a lot are
//! scaled down first (a 4-million-slot ring is valid but not what a fuzzer should allocate
//! on every run), which keeps them valid.

use arbitrary::Arbitrary;
use shardcast::{
    Bus, BusError, Event, RecvTimeoutError, Subscription, Topic, WaitStrategy,
    MAX_BINDING_CAPACITY, MAX_DISPATCHERS, MAX_RING_CAPACITY, MAX_ROUTE_CACHE_CAPACITY,
    MIN_RING_CAPACITY,
};

use crate::support::decode_and_check;
use crate::{Verdict, HANG};

/// The queue capacity bound the library enforces (`ConfigError` "at most 67108864").
pub const MAX_QUEUE_CAPACITY: usize = 1 << 26;
/// `stats_topic_capacity`'s documented bound (`1..=65_536`).
pub const MAX_STATS_TOPIC_CAPACITY: usize = 1 << 16;
/// Largest ring the check allocates (valid larger rings are scaled down to this).
const RING_CAP: usize = 1 << 16;
/// Largest queue the check allocates.
const QUEUE_CAP: usize = 1 << 12;
/// Longest thread name the check runs; longer inputs are rejected.
pub const MAX_NAME: usize = 256;

/// A size, drawn so that bounds and powers of two are likely.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Size {
    /// Small values, 0..=255.
    Small(u8),
    /// `1 << (n % 64)`.
    Pow2(u8),
    /// `(1 << (n % 64))` plus a small signed offset (wrapping).
    NearPow2(u8, i8),
    /// Anything.
    Raw(u64),
}

impl Size {
    /// The value, as the builder receives it.
    pub fn value(self) -> usize {
        let v = match self {
            Size::Small(n) => u64::from(n),
            Size::Pow2(n) => 1u64 << (n % 64),
            Size::NearPow2(n, d) => (1u64 << (n % 64)).wrapping_add_signed(i64::from(d)),
            Size::Raw(n) => n,
        };
        usize::try_from(v).unwrap_or(usize::MAX)
    }
}

/// Which wait strategy to set.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Wait {
    /// `WaitStrategy::BusySpin`.
    BusySpin,
    /// `WaitStrategy::Yield`.
    Yield,
    /// `WaitStrategy::Adaptive`.
    Adaptive,
}

/// Builder values; `None` leaves the default.
#[derive(Debug, Clone, Arbitrary)]
pub struct Input {
    /// `ring_capacity`.
    pub ring_capacity: Option<Size>,
    /// `dispatchers`.
    pub dispatchers: Option<Size>,
    /// `queue_capacity`.
    pub queue_capacity: Option<Size>,
    /// `binding_capacity`.
    pub binding_capacity: Option<Size>,
    /// `route_cache_capacity`.
    pub route_cache_capacity: Option<Size>,
    /// `wait_strategy`.
    pub wait: Option<Wait>,
    /// `stats`.
    pub stats: Option<bool>,
    /// `stats_topic_levels`.
    pub stats_topic_levels: Option<Size>,
    /// `stats_topic_capacity`.
    pub stats_topic_capacity: Option<Size>,
    /// `latency_sample_every` (any `u32` is valid).
    pub latency_sample_every: Option<u32>,
    /// The subscription's `capacity`.
    pub subscription_capacity: Option<Size>,
    /// `thread_name`.
    pub thread_name: Option<String>,
}

/// Decodes `data` as the fuzz target does and runs [`check`].
pub fn check_bytes(data: &[u8]) -> Verdict {
    decode_and_check(data, check)
}

fn queue_ok(n: usize) -> bool {
    (1..=MAX_QUEUE_CAPACITY).contains(&n)
}

/// Builds the bus the input describes and checks the outcome; panics if it is wrong.
pub fn check(input: &Input) -> Verdict {
    if input.thread_name.as_ref().is_some_and(|n| n.len() > MAX_NAME) {
        return Verdict::Rejected;
    }
    let busy = matches!(input.wait, Some(Wait::BusySpin));
    let mut invalid: Vec<&'static str> = Vec::new();
    let mut builder = Bus::builder();

    let ring = input.ring_capacity.map(Size::value);
    if let Some(mut n) = ring {
        if n.is_power_of_two() && (MIN_RING_CAPACITY..=MAX_RING_CAPACITY).contains(&n) {
            n = n.min(RING_CAP);
        } else {
            invalid.push("ring_capacity");
        }
        builder = builder.ring_capacity(n);
    }
    let mut shards = 1;
    if let Some(mut n) = input.dispatchers.map(Size::value) {
        if (1..=MAX_DISPATCHERS).contains(&n) {
            // Every busy-spinning shard burns a core for the whole check.
            if busy {
                n = n.min(2);
            }
            shards = n;
        } else {
            invalid.push("dispatchers");
        }
        builder = builder.dispatchers(n);
    }
    if let Some(mut n) = input.queue_capacity.map(Size::value) {
        if queue_ok(n) {
            n = n.min(QUEUE_CAP);
        } else {
            invalid.push("queue_capacity");
        }
        builder = builder.queue_capacity(n);
    }
    if let Some(n) = input.binding_capacity.map(Size::value) {
        if n > MAX_BINDING_CAPACITY {
            invalid.push("binding_capacity");
        }
        builder = builder.binding_capacity(n);
    }
    if let Some(n) = input.route_cache_capacity.map(Size::value) {
        if n > MAX_ROUTE_CACHE_CAPACITY {
            invalid.push("route_cache_capacity");
        }
        builder = builder.route_cache_capacity(n);
    }
    if let Some(on) = input.stats {
        builder = builder.stats(on);
    }
    if let Some(n) = input.stats_topic_levels.map(Size::value) {
        if !(1..=Topic::MAX_TOKENS).contains(&n) {
            invalid.push("stats_topic_levels");
        }
        builder = builder.stats_topic_levels(n);
    }
    if let Some(n) = input.stats_topic_capacity.map(Size::value) {
        if !(1..=MAX_STATS_TOPIC_CAPACITY).contains(&n) {
            invalid.push("stats_topic_capacity");
        }
        builder = builder.stats_topic_capacity(n);
    }
    if let Some(n) = input.latency_sample_every {
        builder = builder.latency_sample_every(n);
    }
    if let Some(w) = input.wait {
        builder = builder.wait_strategy(match w {
            Wait::BusySpin => WaitStrategy::BusySpin,
            Wait::Yield => WaitStrategy::Yield,
            Wait::Adaptive => WaitStrategy::Adaptive,
        });
    }
    if let Some(name) = &input.thread_name {
        if name.contains('\0') {
            invalid.push("thread_name");
        }
        builder = builder.thread_name(name.clone());
    }

    let bus: Bus<u32> = match builder.clone().build() {
        Ok(bus) => bus,
        Err(e) => {
            let text = e.to_string();
            assert!(text.starts_with(&format!("invalid {} ", e.field())), "{text}");
            // A valid shard count can still fail if the OS refuses threads; the error
            // says so (it is not a bound the input broke).
            let spawn_failed = e.field() == "dispatchers" && text.contains("threads");
            assert!(
                invalid.contains(&e.field()) || spawn_failed,
                "{builder:?}: error names {:?} ({text}) but the invalid fields are {invalid:?}",
                e.field()
            );
            return Verdict::Checked;
        }
    };
    assert!(invalid.is_empty(), "{builder:?} built, though {invalid:?} are out of bounds");
    assert_eq!(bus.dispatchers(), shards);

    let mut subscription = Subscription::all();
    let mut capacity_ok = true;
    if let Some(mut n) = input.subscription_capacity.map(Size::value) {
        capacity_ok = queue_ok(n);
        if capacity_ok {
            n = n.min(QUEUE_CAP);
        }
        subscription = subscription.capacity(n);
    }
    let mut sub = match bus.subscribe(subscription) {
        Ok(sub) => {
            assert!(capacity_ok, "subscribed with an out-of-bounds capacity");
            sub
        }
        Err(BusError::Config(e)) => {
            assert!(!capacity_ok, "valid subscription capacity refused: {e}");
            assert_eq!(e.field(), "capacity", "{e}");
            return Verdict::Checked;
        }
        Err(e) => panic!("subscribe on an open bus: {e}"),
    };
    let mut publisher = bus.publisher().expect("first publisher");
    let topic = Topic::new("config.check").expect("valid topic");
    let seq = publisher.publish_timeout(Event::new(topic, 7), HANG).expect("no hang, bus open");
    assert_eq!(seq, 0);
    let d = sub.recv_timeout(HANG).expect("the one event arrives");
    assert_eq!((d.seq(), *d.payload()), (0, 7));
    drop(d);
    bus.close();
    assert_eq!(sub.recv_timeout(HANG).unwrap_err(), RecvTimeoutError::Closed);
    Verdict::Checked
}
