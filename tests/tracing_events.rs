//! The `tracing` feature's events: each rare condition is reported, rate-limited, never
//! once per event. Run with `cargo test --features tracing --test tracing_events`.
#![cfg(feature = "tracing")]

use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use shardcast::{Bus, Event, Overflow, RecvError, Subscription, Topic};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Level, Metadata};

/// Every event: its level and its fields, as text.
#[derive(Debug, Clone)]
struct Seen {
    level: Level,
    text: String,
}

static SEEN: Mutex<Vec<Seen>> = Mutex::new(Vec::new());

/// A minimal subscriber that records events (no spans): installed once per process.
struct Recorder;

struct Fields(String);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push_str(&format!("{}={value:?} ", field.name()));
    }
}

impl tracing::Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut fields = Fields(String::new());
        event.record(&mut fields);
        SEEN.lock().unwrap().push(Seen { level: *event.metadata().level(), text: fields.0 });
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

/// Installs the recorder (once) and serialises the tests: they share it.
fn recorder() -> std::sync::MutexGuard<'static, ()> {
    static ONCE: OnceLock<()> = OnceLock::new();
    static SERIAL: Mutex<()> = Mutex::new(());
    ONCE.get_or_init(|| tracing::subscriber::set_global_default(Recorder).unwrap());
    let guard = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    SEEN.lock().unwrap().clear();
    guard
}

fn seen(containing: &str) -> Vec<Seen> {
    SEEN.lock().unwrap().iter().filter(|s| s.text.contains(containing)).cloned().collect()
}

#[test]
fn a_lossy_subscriber_is_reported_once_per_second_not_per_event() {
    let _r = recorder();
    let bus: Bus<u32> = Bus::builder().build().unwrap();
    let _stuck = bus
        .subscribe(Subscription::all().name("stuck").capacity(1).overflow(Overflow::DropNewest))
        .unwrap();
    let mut publisher = bus.publisher().unwrap();
    let topic = Topic::new("t").unwrap();
    for i in 0..200 {
        publisher.publish_blocking(Event::new(topic.clone(), i)).unwrap();
        publisher.flush(); // one batch per event: 199 separate losses
    }
    let warnings = seen("losing events");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert_eq!(warnings[0].level, Level::WARN);
    assert!(
        warnings[0].text.contains("subscriber=stuck") && warnings[0].text.contains("DropNewest")
    );
}

#[test]
fn a_disconnect_is_reported() {
    let _r = recorder();
    let bus: Bus<u32> = Bus::builder().build().unwrap();
    let mut sub = bus
        .subscribe(Subscription::all().name("strict").capacity(1).overflow(Overflow::Disconnect))
        .unwrap();
    let mut publisher = bus.publisher().unwrap();
    let topic = Topic::new("t").unwrap();
    for i in 0..3 {
        publisher.publish_blocking(Event::new(topic.clone(), i)).unwrap();
        publisher.flush();
    }
    let warnings = seen("disconnected");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].text.contains("subscriber=strict"));
    assert_eq!(*sub.recv_blocking().unwrap().payload(), 0);
}

#[test]
fn a_panicking_predicate_is_reported_once_per_second() {
    let _r = recorder();
    let bus: Bus<u32> = Bus::builder().build().unwrap();
    let _sub = bus
        .subscribe(bus.subscription(">").unwrap().name("fragile").filter(|e| {
            assert!(*e.payload() > 1000, "predicate refuses {}", e.payload());
            true
        }))
        .unwrap();
    let mut publisher = bus.publisher().unwrap();
    let topic = Topic::new("t").unwrap();
    for i in 0..20 {
        publisher.publish_blocking(Event::new(topic.clone(), i)).unwrap();
        publisher.flush();
    }
    let errors = seen("predicate panicked");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].level, Level::ERROR);
    assert!(errors[0].text.contains("subscriber=fragile"));
}

#[test]
fn a_ring_that_stays_full_is_reported() {
    let _r = recorder();
    let bus: Bus<u32> = Bus::builder().ring_capacity(2).build().unwrap();
    let mut slow =
        bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
    let receiver = std::thread::spawn(move || {
        // Start late: the shard blocks on this queue and the ring fills meanwhile.
        std::thread::sleep(Duration::from_millis(300));
        let mut n = 0;
        loop {
            match slow.recv_blocking() {
                Ok(_) => n += 1,
                Err(RecvError::Lagged(lost)) => panic!("Block lost {lost}"),
                Err(RecvError::Closed) => return n,
            }
        }
    });
    let mut publisher = bus.publisher().unwrap();
    let topic = Topic::new("t").unwrap();
    for i in 0..10 {
        publisher.publish_blocking(Event::new(topic.clone(), i)).unwrap();
    }
    publisher.close();
    assert_eq!(receiver.join().unwrap(), 10);
    let warnings = seen("waited for ring space");
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].text.contains("waited_ms="));
}

#[test]
fn a_healthy_bus_says_nothing() {
    let _r = recorder();
    let bus: Bus<u32> = Bus::builder().build().unwrap();
    let mut sub = bus.subscribe(Subscription::all()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    let topic = Topic::new("t").unwrap();
    for i in 0..500 {
        publisher.publish_blocking(Event::new(topic.clone(), i)).unwrap();
    }
    publisher.close();
    let mut n = 0;
    loop {
        match sub.recv_blocking() {
            Ok(_) => n += 1,
            Err(RecvError::Lagged(lost)) => panic!("a 1024-event queue lost {lost} of 500"),
            Err(RecvError::Closed) => break,
        }
    }
    assert_eq!(n, 500);
    assert!(SEEN.lock().unwrap().is_empty(), "{:?}", SEEN.lock().unwrap());
}

/// A payload whose drop panics for one value: the dispatcher shard that drops it panics.
struct Bomb(u32);

impl Drop for Bomb {
    fn drop(&mut self) {
        if self.0 == 13 && !std::thread::panicking() {
            panic!("payload 13 refuses to be dropped");
        }
    }
}

#[test]
fn a_shard_panic_is_reported_once() {
    let _r = recorder();
    let bus: Bus<Bomb> = Bus::builder().build().unwrap();
    // Matches nothing: the shard holds the only reference on the events' segment, so it is
    // the shard that drops them (after reading the segment's last slot).
    let _elsewhere = bus.subscribe(Subscription::to("elsewhere.>").unwrap()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    let topic = Topic::new("t").unwrap();
    let mut closed = false;
    for i in 0..64 {
        if publisher.publish_blocking(Event::new(topic.clone(), Bomb(i))).is_err() {
            closed = true; // the panicking shard closed the ring
            break;
        }
    }
    if !closed {
        publisher.flush();
    }
    bus.close();
    let errors = seen("dispatcher shard panicked");
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0].level, Level::ERROR);
    assert!(errors[0].text.contains("shard=0"));
}
