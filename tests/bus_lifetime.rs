//! Promise: a bus lives as long as any handle to it does (a `Bus`, the publisher, a
//! subscriber), like a channel; when the last handle of any kind is dropped, wherever
//! that happens (a plain thread, a subscription's filter on a dispatcher thread), nothing
//! is left: no dispatcher thread, no event. Nothing deadlocks on the way.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    assert_each_dropped_once, drain_to_closed, events, topic, tracker, watchdog, Tracked, HANG,
};
use shardcast::{Bus, Event, Overflow, Publisher, Subscriber, Subscription};

/// Dispatcher threads of this process whose name starts with `prefix` (Linux shows the
/// first 15 bytes of a name; each test uses its own prefix).
fn dispatcher_threads(prefix: &str) -> usize {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    tasks
        .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim_end().starts_with(&format!("{prefix}-dispatch-")))
        .count()
}

/// Waits (bounded) until no thread named `prefix-dispatch-*` is left: a finished thread may
/// stay listed for a moment after it was joined, or after it returned when detached.
fn assert_no_dispatcher_left(prefix: &str) {
    if !cfg!(target_os = "linux") {
        return;
    }
    let started = Instant::now();
    while dispatcher_threads(prefix) != 0 {
        assert!(
            started.elapsed() < HANG,
            "{prefix}: dispatcher threads left after the last handle"
        );
        thread::sleep(Duration::from_millis(1));
    }
}

/// Builds a bus and returns only its halves: the `Bus` handle is dropped here.
fn channel(prefix: &str) -> (Publisher<Tracked>, Subscriber<Tracked>, Subscriber<Tracked>) {
    let bus: Bus<Tracked> =
        Bus::builder().ring_capacity(16).dispatchers(2).thread_name(prefix).build().unwrap();
    let reader = bus.subscribe(Subscription::all().capacity(1024)).unwrap();
    let stuck = bus.subscribe(Subscription::all().capacity(2)).unwrap();
    (bus.publisher().unwrap(), reader, stuck)
}

#[test]
fn a_bus_returned_as_its_halves_lives_on() {
    watchdog("bus returned as halves", || {
        let bus: Bus<u64> = Bus::builder().build().unwrap();
        let (mut publisher, mut sub) =
            (bus.publisher().unwrap(), bus.subscribe(Subscription::all()).unwrap());
        drop(bus);
        for i in 0..100 {
            publisher.publish_blocking(Event::new(topic(), i)).unwrap();
        }
        drop(publisher);
        assert_eq!(drain_to_closed(&mut sub), events(0..100));
    });
}

#[derive(Clone, Copy, Debug)]
enum Last {
    Publisher,
    Reader,
    Stuck,
}

#[test]
fn the_last_handle_of_any_kind_leaves_no_thread_and_no_event() {
    const EVENTS: usize = 500;
    for (i, last) in [Last::Publisher, Last::Reader, Last::Stuck].into_iter().enumerate() {
        let prefix = format!("rclt{i}");
        let drops = tracker(EVENTS);
        let d = Arc::clone(&drops);
        let p = prefix.clone();
        watchdog("last handle", move || {
            let (mut publisher, mut reader, stuck) = channel(&p);
            let reading = thread::spawn(move || {
                // Every event, without waiting for `Closed` (the bus lives on).
                for id in 0..EVENTS {
                    let d = reader.recv_timeout(HANG).expect("reader");
                    assert_eq!(d.payload().id, id);
                }
                reader
            });
            for id in 0..EVENTS {
                let payload = Tracked { id, drops: Arc::clone(&d) };
                publisher.publish_blocking(Event::new(topic(), payload)).unwrap();
            }
            let reader = reading.join().unwrap();
            assert_eq!(stuck.len(), 2, "the stuck subscriber holds two events");
            match last {
                Last::Publisher => {
                    drop((stuck, reader));
                    drop(publisher);
                }
                Last::Reader => {
                    drop((publisher, stuck));
                    drop(reader);
                }
                Last::Stuck => {
                    drop((publisher, reader));
                    drop(stuck); // still holds 2 events (and the bus)
                }
            }
        });
        assert_no_dispatcher_left(&prefix);
        assert_each_dropped_once(&drops, &format!("{last:?} dropped last"));
    }
}

/// The last handle is dropped inside a subscription's filter, on a dispatcher thread: the
/// bus closes from there without joining that thread (it cannot join itself), the
/// dispatchers finish on their own, and every event is still dropped exactly once.
#[test]
fn the_last_handle_dropped_inside_a_filter_does_not_deadlock_or_leak() {
    const EVENTS: usize = 50;
    let prefix = "rclf";
    let drops = tracker(EVENTS);
    let d = Arc::clone(&drops);
    watchdog("last handle in a filter", move || {
        let bus: Bus<Tracked> =
            Bus::builder().ring_capacity(16).dispatchers(2).thread_name(prefix).build().unwrap();
        // The filter's bus handle, and a flag saying every other handle is gone.
        let slot: Arc<Mutex<Option<Bus<Tracked>>>> = Arc::new(Mutex::new(Some(bus.clone())));
        let others_gone = Arc::new(AtomicBool::new(false));
        let reached = Arc::new(AtomicBool::new(false));
        let dropped_in_filter = Arc::new(AtomicBool::new(false));
        let filter = {
            let (slot, others_gone, dropped_in_filter) =
                (Arc::clone(&slot), Arc::clone(&others_gone), Arc::clone(&dropped_in_filter));
            let reached = Arc::clone(&reached);
            move |event: &Event<Tracked>| {
                if event.payload().id == EVENTS - 1 {
                    reached.store(true, Ordering::SeqCst);
                    // Bounded wait for the test thread to drop everything else.
                    let started = Instant::now();
                    while !others_gone.load(Ordering::SeqCst) && started.elapsed() < HANG {
                        thread::sleep(Duration::from_millis(1));
                    }
                    let last = slot.lock().unwrap().take();
                    drop(last); // the last handle, on this dispatcher thread
                    dropped_in_filter.store(true, Ordering::SeqCst);
                }
                true
            }
        };
        let filtering = bus.subscribe(Subscription::all().capacity(EVENTS).filter(filter)).unwrap();
        let mut publisher = bus.publisher().unwrap();
        drop(bus);
        for id in 0..EVENTS {
            publisher
                .publish_blocking(Event::new(topic(), Tracked { id, drops: Arc::clone(&d) }))
                .unwrap();
        }
        // The filter is running on the last event (a dropped subscription's filter would
        // not run any more): now drop everything but the filter's handle.
        let started = Instant::now();
        while !reached.load(Ordering::SeqCst) {
            assert!(started.elapsed() < HANG, "the filter never ran on the last event");
            thread::sleep(Duration::from_millis(1));
        }
        drop(publisher);
        drop(filtering);
        others_gone.store(true, Ordering::SeqCst);
        let started = Instant::now();
        while !dropped_in_filter.load(Ordering::SeqCst) {
            assert!(started.elapsed() < HANG, "the filter never dropped its handle");
            thread::sleep(Duration::from_millis(1));
        }
    });
    assert_no_dispatcher_left(prefix);
    assert_each_dropped_once(&drops, "last handle dropped in a filter");
}

/// The `Block` subscriber is the last handle and is stuck (never receives): dropping it
/// ends the shard's wait, closes and joins.
#[test]
fn a_stuck_block_subscriber_as_last_handle_leaves_nothing() {
    const EVENTS: usize = 40;
    let prefix = "rclb";
    let drops = tracker(EVENTS);
    let d = Arc::clone(&drops);
    watchdog("stuck Block last", move || {
        let bus: Bus<Tracked> =
            Bus::builder().ring_capacity(8).thread_name(prefix).build().unwrap();
        let stuck =
            bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
        let mut publisher = bus.publisher().unwrap();
        drop(bus);
        let mut id = 0;
        while id < EVENTS {
            let payload = Tracked { id, drops: Arc::clone(&d) };
            match publisher.try_publish(Event::new(topic(), payload)) {
                Ok(_) => id += 1,
                Err(e) => {
                    assert!(e.is_full());
                    break;
                }
            }
        }
        drop(publisher);
        for unused in &d[id..] {
            unused.store(1, Ordering::SeqCst); // never created
        }
        drop(stuck);
    });
    assert_no_dispatcher_left(prefix);
    assert_each_dropped_once(&drops, "stuck Block subscriber dropped last");
}
