//! Promise: no receive or publish hangs a runtime silently. A blocking call (`*_blocking`,
//! `recv_timeout`, `publish_timeout`, `flush`, `Bus::close`) that would wait on a thread
//! that runs tokio tasks panics at once, naming the async method to await; on
//! `spawn_blocking` threads and plain threads it waits as before. The async forms work on a
//! current-thread runtime with the publisher and the subscriber in tasks of that runtime,
//! and `recv().await` keeps tokio's cooperative budget.

mod common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::topic;
use shardcast::{Bus, Event, Overflow, RecvError, Subscription};

/// Runs `f`, which must panic, and returns its message.
fn panic_message(f: impl FnOnce()) -> String {
    let err = catch_unwind(AssertUnwindSafe(f)).expect_err("a blocking call in async code ran");
    match err.downcast::<String>() {
        Ok(s) => *s,
        Err(err) => err.downcast::<&str>().map(|s| s.to_string()).unwrap_or_default(),
    }
}

fn assert_names(message: &str, call: &str, instead: &str) {
    assert!(
        message.contains(call) && message.contains(instead),
        "the panic should name `{call}` and `{instead}`: {message}"
    );
}

#[tokio::test] // current-thread: the flavour where a blocked worker hangs for good
async fn blocking_receives_panic_in_a_task_instead_of_hanging() {
    let bus: Bus<u64> = Bus::builder().dispatchers(1).build().unwrap();
    let mut sub = bus.subscribe(Subscription::all()).unwrap();
    let _publisher = bus.publisher().unwrap(); // keeps the bus open: nothing will come

    let m = panic_message(|| drop(sub.recv_blocking()));
    assert_names(&m, "recv_blocking", "recv().await");
    let m = panic_message(|| drop(sub.recv_timeout(Duration::from_secs(3600))));
    assert_names(&m, "recv_timeout", "recv().await");
    let m = panic_message(|| _ = sub.recv_many_blocking(8, |_| {}));
    assert_names(&m, "recv_many_blocking", "recv().await");
}

#[tokio::test]
async fn a_blocking_receive_with_an_event_queued_returns_it() {
    let bus: Bus<u64> = Bus::builder().dispatchers(1).build().unwrap();
    let mut sub = bus.subscribe(Subscription::all()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    publisher.publish(Event::new(topic(), 7)).await.unwrap();
    publisher.flush_async().await;
    // Nothing to wait for: it does not block, so it is allowed.
    assert_eq!(*sub.recv_blocking().unwrap().payload(), 7);
}

/// Publishes with `try_publish` (which never waits) until the ring stays full: the shard
/// is then stuck on a `Block` subscriber that never reads, and every later publish would
/// wait.
async fn fill(mut try_publish: impl FnMut() -> bool) {
    let mut full_in_a_row = 0;
    let mut published = 0;
    while full_in_a_row < 10 {
        if try_publish() {
            published += 1;
            assert!(published < 1_000, "the ring never filled");
            full_in_a_row = 0;
        } else {
            full_in_a_row += 1;
            tokio::time::sleep(Duration::from_millis(1)).await; // let the shard catch up
        }
    }
}

#[tokio::test]
async fn blocking_publishes_panic_in_a_task_when_the_ring_is_full() {
    let bus: Bus<u64> = Bus::builder().ring_capacity(2).dispatchers(1).build().unwrap();
    // A `Block` subscriber that never reads: the shard waits on it, so the ring fills.
    let _stuck = bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
    let shared = bus.shared_publisher().unwrap();
    fill(|| shared.try_publish(Event::new(topic(), 0)).is_ok()).await;
    let m = panic_message(|| drop(shared.publish_blocking(Event::new(topic(), 0))));
    assert_names(&m, "publish_blocking", "publish(..).await");
    let m = panic_message(|| drop(shared.publish_to_blocking("t", 0)));
    assert_names(&m, "publish_to_blocking", "publish(..).await");
    let m = panic_message(|| {
        drop(shared.publish_timeout(Event::new(topic(), 0), Duration::from_secs(3600)))
    });
    assert_names(&m, "publish_timeout", "publish(..).await");
    let m =
        panic_message(|| drop(shared.publish_batch_blocking(&mut vec![Event::new(topic(), 0)])));
    assert_names(&m, "publish_batch_blocking", "publish(..).await");
    let m = panic_message(|| shared.flush());
    assert_names(&m, "flush", "flush_async()");
    let m = panic_message(|| bus.close());
    assert_names(&m, "Bus::close", "close_async()");
    // The async forms do not hang either: closing frees the shard, and the bus says so.
    bus.close_async().await;
    assert!(shared.publish(Event::new(topic(), 0)).await.is_err());
}

#[tokio::test]
async fn the_exclusive_publisher_panics_too() {
    let bus: Bus<u64> = Bus::builder().ring_capacity(2).dispatchers(1).build().unwrap();
    let _stuck = bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
    let mut publisher = bus.publisher().unwrap();
    fill(|| publisher.try_publish(Event::new(topic(), 0)).is_ok()).await;
    let m = panic_message(|| drop(publisher.publish_blocking(Event::new(topic(), 0))));
    assert_names(&m, "publish_blocking", "publish(..).await");
    let m = panic_message(|| publisher.flush());
    assert_names(&m, "flush", "flush_async()");
    bus.close_async().await;
}

#[tokio::test]
async fn spawn_blocking_threads_may_block() {
    let bus: Bus<u64> = Bus::builder().dispatchers(1).build().unwrap();
    let mut sub = bus.subscribe(Subscription::all()).unwrap();
    let publisher = bus.shared_publisher().unwrap();
    let receiver = tokio::task::spawn_blocking(move || {
        let first = *sub.recv_blocking().unwrap().payload();
        (first, sub)
    });
    tokio::time::sleep(Duration::from_millis(20)).await; // let it park (not required)
    publisher.publish(Event::new(topic(), 5)).await.unwrap();
    let (first, _sub) = receiver.await.unwrap();
    assert_eq!(first, 5);
    let flushed = tokio::task::spawn_blocking(move || publisher.flush());
    flushed.await.unwrap();
}

#[tokio::test]
async fn publisher_and_subscriber_tasks_share_a_current_thread_runtime() {
    // A 2-slot ring and a 4-event queue under `Block`: both sides must wait for the other,
    // on the one thread, many times over.
    let bus: Bus<u64> = Bus::builder().ring_capacity(2).dispatchers(1).build().unwrap();
    let mut sub = bus.subscribe(Subscription::all().capacity(4).overflow(Overflow::Block)).unwrap();
    let publisher = bus.shared_publisher().unwrap();
    let producer = tokio::spawn(async move {
        for i in 0..1_000 {
            publisher.publish(Event::new(topic(), i)).await.unwrap();
        }
    });
    let mut next = 0;
    loop {
        match sub.recv().await {
            Ok(d) => {
                assert_eq!(*d.payload(), next);
                next += 1;
            }
            Err(RecvError::Lagged(n)) => panic!("lost {n} under Block"),
            Err(RecvError::Closed) => break,
        }
    }
    producer.await.unwrap();
    assert_eq!(next, 1_000);
}

/// More events than tokio's budget (128 units) times the events an entry can hold (16).
const EVENTS: u64 = 4_096;

#[tokio::test]
async fn a_hot_receive_loop_yields_to_the_other_tasks() {
    let bus: Bus<u64> = Bus::builder().dispatchers(1).build().unwrap();
    let mut sub = bus.subscribe(Subscription::all().capacity(EVENTS as usize)).unwrap();
    let mut publisher = bus.publisher().unwrap();
    for i in 0..EVENTS {
        publisher.publish(Event::new(topic(), i)).await.unwrap();
    }
    publisher.flush_async().await;
    let other_ran = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&other_ran);
    tokio::spawn(async move { flag.store(true, Ordering::Relaxed) });
    // Every event is queued: without the budget, this loop never returns `Pending`, and on
    // a current-thread runtime the other task would run only after it. The budget is spent
    // per queue entry (up to 16 events), so 128 entries take at most 2 048 events.
    let mut received_before_it_ran = None;
    for _ in 0..EVENTS {
        sub.recv().await.unwrap();
        if received_before_it_ran.is_none() && other_ran.load(Ordering::Relaxed) {
            received_before_it_ran = Some(());
            break;
        }
    }
    assert!(received_before_it_ran.is_some(), "{EVENTS} receives never yielded");
}
