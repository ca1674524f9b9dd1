//! Promise: a bad configuration is a typed `ConfigError` naming the field (never a
//! panic, never a half-built bus); error messages are lowercase and say what is wrong;
//! every error type implements `std::error::Error`, and the ones that hand an event back
//! are `Debug` for any payload, so `.unwrap()` works with payloads that are not `Debug`.

use std::error::Error;

use shardcast::{
    AliasError, Bus, BusBuilder, BusError, ConfigError, Event, PatternError, PublishError,
    PublishTimeoutError, RecvError, RecvTimeoutError, Subscription, Topic, TopicError,
    TryPublishError, TryRecvError, MAX_DISPATCHERS, MAX_RING_CAPACITY, MIN_RING_CAPACITY,
};

fn build(builder: BusBuilder) -> Result<Bus<u64>, ConfigError> {
    builder.build()
}

fn assert_lowercase_message(message: &str) {
    let first = message.chars().next().expect("an empty error message");
    assert!(!first.is_uppercase(), "message not lowercase: {message:?}");
    assert!(!message.ends_with('.'), "message ends with a period: {message:?}");
}

/// `builder` must fail naming `field`, with a message that names the field and the value.
fn assert_config_error(builder: BusBuilder, field: &str, value: &str) {
    let e = build(builder).expect_err(&format!("{field} = {value} was accepted"));
    assert_eq!(e.field(), field, "{e}");
    let message = e.to_string();
    assert_lowercase_message(&message);
    assert!(message.contains(field), "{message:?} does not name {field}");
    assert!(message.contains(value), "{message:?} does not show the value {value}");
    assert!(e.source().is_none());
}

#[test]
fn ring_capacity_must_be_a_power_of_two_in_range() {
    assert_eq!((MIN_RING_CAPACITY, MAX_RING_CAPACITY), (2, 1 << 22));
    for bad in [0, 1, 3, 6, 1000, 4095, MAX_RING_CAPACITY + 1, 1 << 23, usize::MAX] {
        assert_config_error(Bus::builder().ring_capacity(bad), "ring_capacity", &bad.to_string());
    }
    for good in [MIN_RING_CAPACITY, 4, 1024] {
        build(Bus::builder().ring_capacity(good)).unwrap().close();
    }
}

#[test]
fn largest_ring_builds() {
    build(Bus::builder().ring_capacity(MAX_RING_CAPACITY)).unwrap().close();
}

#[test]
fn dispatchers_must_be_1_to_64() {
    assert_eq!(MAX_DISPATCHERS, 64);
    for bad in [0, MAX_DISPATCHERS + 1, 1000, usize::MAX] {
        assert_config_error(Bus::builder().dispatchers(bad), "dispatchers", &bad.to_string());
    }
    for good in [1, MAX_DISPATCHERS] {
        let bus = build(Bus::builder().dispatchers(good)).unwrap();
        assert_eq!(bus.dispatchers(), good);
        bus.close();
    }
}

#[test]
fn queue_capacity_must_be_at_least_1_and_allocatable() {
    for bad in [0, usize::MAX, usize::MAX / 2] {
        assert_config_error(Bus::builder().queue_capacity(bad), "queue_capacity", &bad.to_string());
    }
    let bus = build(Bus::builder().queue_capacity(5)).unwrap();
    let sub = bus.subscribe(Subscription::all()).unwrap();
    assert_eq!(sub.capacity(), 5, "the default capacity is the builder's, not rounded");
}

#[test]
fn other_builder_fields_are_checked() {
    assert_config_error(Bus::builder().thread_name("a\0b"), "thread_name", "a\\0b");
    assert_config_error(
        Bus::builder().binding_capacity(shardcast::MAX_BINDING_CAPACITY + 1),
        "binding_capacity",
        &(shardcast::MAX_BINDING_CAPACITY + 1).to_string(),
    );
    assert_config_error(
        Bus::builder().route_cache_capacity(shardcast::MAX_ROUTE_CACHE_CAPACITY + 1),
        "route_cache_capacity",
        &(shardcast::MAX_ROUTE_CACHE_CAPACITY + 1).to_string(),
    );
}

#[test]
fn the_first_bad_field_is_reported_and_nothing_is_started() {
    // Several bad fields: an error, not a panic, naming one of them.
    let e = build(Bus::builder().ring_capacity(3).dispatchers(0).queue_capacity(0)).unwrap_err();
    assert!(["ring_capacity", "dispatchers", "queue_capacity"].contains(&e.field()), "{e}");
}

#[test]
fn subscription_capacity_is_checked_at_subscribe() {
    let bus = build(Bus::builder().dispatchers(2)).unwrap();
    let ok = bus.subscribe(Subscription::all().capacity(1)).unwrap();
    for bad in [0, usize::MAX] {
        let e = bus.subscribe(Subscription::all().capacity(bad)).unwrap_err();
        let BusError::Config(config) = &e else { panic!("capacity {bad}: {e:?}") };
        assert_eq!(config.field(), "capacity");
        let message = e.to_string();
        assert_lowercase_message(&message);
        assert!(message.contains("capacity") && message.contains(&bad.to_string()), "{message}");
        // The ConfigError is the BusError's source.
        let source = e.source().expect("BusError::Config has a source");
        assert_eq!(source.to_string(), config.to_string());
        // Never half-subscribed.
        assert_eq!(bus.subscriber_count(), 1);
    }
    // The bus is unharmed.
    let mut publisher = bus.publisher().unwrap();
    publisher.publish_blocking(Event::new(Topic::new("a").unwrap(), 1)).unwrap();
    drop(ok);
}

/// A payload that is neither `Debug` nor `Clone`.
struct NotDebug(#[allow(dead_code)] u8);

fn assert_error<T: Error + Send + Sync + 'static>() {}

#[test]
fn every_error_type_is_a_std_error() {
    assert_error::<ConfigError>();
    assert_error::<BusError>();
    assert_error::<TopicError>();
    assert_error::<PatternError>();
    assert_error::<AliasError>();
    assert_error::<RecvError>();
    assert_error::<TryRecvError>();
    assert_error::<RecvTimeoutError>();
    // Generic errors: for any payload, Debug or not.
    assert_error::<PublishError<Event<NotDebug>>>();
    assert_error::<TryPublishError<Event<NotDebug>>>();
    assert_error::<PublishTimeoutError<Event<NotDebug>>>();
    // Boxing into `Box<dyn Error>` (what `?` does) works too.
    let boxed: Box<dyn Error + Send + Sync> =
        Box::new(TryPublishError::Full(Event::new(Topic::new("a").unwrap(), NotDebug(1))));
    assert_eq!(boxed.to_string(), "ring full");
}

#[test]
fn errors_with_a_non_debug_payload_format_and_unwrap() {
    let bus: Bus<NotDebug> = Bus::builder().build().unwrap();
    let mut publisher = bus.publisher().unwrap();
    bus.close();
    let topic = Topic::new("a").unwrap();

    let r = publisher.try_publish(Event::new(topic.clone(), NotDebug(1)));
    assert_eq!(format!("{r:?}"), "Err(Closed(..))");
    let e = r.unwrap_err();
    assert!(e.is_closed() && !e.is_full());
    assert_eq!(e.to_string(), "publishing on a closed bus");
    assert_eq!(e.into_inner().into_payload().0, 1);

    let e = publisher.publish_blocking(Event::new(topic.clone(), NotDebug(2))).unwrap_err();
    assert_eq!(format!("{e:?}"), "PublishError(..)");
    assert_lowercase_message(&e.to_string());
    assert_eq!(e.into_inner().into_payload().0, 2);

    let e = publisher
        .publish_timeout(Event::new(topic.clone(), NotDebug(3)), std::time::Duration::ZERO)
        .unwrap_err();
    assert_eq!(format!("{e:?}"), "Closed(..)");
    assert!(e.is_closed() && !e.is_timeout());
    assert_eq!(e.into_inner().into_payload().0, 3);

    // `.unwrap()` on such a result compiles and panics with the error's Debug.
    let r = publisher.try_publish(Event::new(topic.clone(), NotDebug(4)));
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.unwrap()))
        .expect_err("unwrap of an Err");
    let message = panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default();
    assert!(message.contains("Closed(..)"), "{message:?}");

    // Conversions between the publish errors keep the event.
    let e: TryPublishError<u8> = PublishError(5).into();
    assert!(e.is_closed());
    assert_eq!(e.into_inner(), 5);
    let e: PublishTimeoutError<u8> = PublishError(6).into();
    assert_eq!(e, PublishTimeoutError::Closed(6));
    assert!(PublishTimeoutError::Timeout(7u8).is_timeout());
    assert_eq!(format!("{:?}", TryPublishError::Full(NotDebug(8))), "Full(..)");
    assert_eq!(format!("{:?}", PublishTimeoutError::Timeout(NotDebug(9))), "Timeout(..)");
}

fn closed_bus_error() -> BusError {
    let bus: Bus<u64> = Bus::builder().build().unwrap();
    bus.close();
    bus.subscribe(Subscription::all()).unwrap_err()
}

#[test]
fn receive_error_messages_are_lowercase_and_say_what_happened() {
    let messages = [
        (RecvError::Closed.to_string(), None),
        (RecvError::Lagged(3).to_string(), Some("3")),
        (TryRecvError::Empty.to_string(), None),
        (TryRecvError::Closed.to_string(), None),
        (TryRecvError::Lagged(1).to_string(), Some("1")),
        (RecvTimeoutError::Timeout.to_string(), None),
        (RecvTimeoutError::Closed.to_string(), None),
        (RecvTimeoutError::Lagged(u64::MAX).to_string(), Some("18446744073709551615")),
        (closed_bus_error().to_string(), None),
        (BusError::PublisherTaken.to_string(), None),
    ];
    for (message, number) in messages {
        assert_lowercase_message(&message);
        if let Some(n) = number {
            assert!(message.contains(n), "{message:?} does not say how many");
        }
    }
    assert!(RecvError::Closed.to_string().contains("closed"));
    assert!(TryRecvError::Lagged(1).to_string().contains("lag"));
}

/// One error type for configuration: `build()`'s `ConfigError` converts into
/// `BusError::Config` with `?`, so a function that builds a bus and subscribes reports
/// either problem as one `BusError`, holding the very `ConfigError` the builder returned.
#[test]
fn build_and_subscribe_errors_meet_in_bus_error() {
    fn start(dispatchers: usize, capacity: usize) -> Result<Bus<u64>, BusError> {
        let bus = Bus::builder().dispatchers(dispatchers).build()?;
        drop(bus.subscribe(Subscription::all().capacity(capacity))?);
        Ok(bus)
    }
    let from_build = Bus::builder().dispatchers(0).build::<u64>().unwrap_err();
    assert_eq!(start(0, 1).unwrap_err(), BusError::Config(from_build.clone()));
    assert_eq!(BusError::from(from_build.clone()), BusError::Config(from_build));
    match start(1, 0).unwrap_err() {
        BusError::Config(e) => assert_eq!(e.field(), "capacity"),
        other => panic!("capacity 0: {other:?}"),
    }
    start(1, 1).unwrap().close();
}

/// A bad pattern is configuration too: `BusError::Pattern`, from `subscribe_to` or through
/// `?` on `Bus::subscription`, holding the `PatternError` with what and where.
#[test]
fn bad_patterns_meet_in_bus_error() {
    fn watch(bus: &Bus<u64>, pattern: &str) -> Result<(), BusError> {
        drop(bus.subscribe(bus.subscription(pattern)?)?);
        Ok(())
    }
    let bus = build(Bus::builder()).unwrap();
    let e = watch(&bus, "a..b").unwrap_err();
    let BusError::Pattern(pattern) = &e else { panic!("a..b: {e:?}") };
    assert_eq!(pattern, &shardcast::Pattern::new("a..b").unwrap_err());
    assert_eq!(e.to_string(), r#"invalid pattern "a..b": empty token at byte 2"#);
    assert_eq!(e.source().unwrap().to_string(), e.to_string());
    let e = bus.subscribe_to("a.>.b", |s| s.capacity(1)).unwrap_err();
    assert!(matches!(e, BusError::Pattern(_)), "{e:?}");
    assert_eq!(bus.subscriber_count(), 0, "never half-subscribed");
    watch(&bus, "a.*").unwrap();
    let _kept = bus.subscribe_to("a.>", |s| s.filter(|e| *e.payload() > 1)).unwrap();
    assert_eq!(bus.subscriber_count(), 1);
}
