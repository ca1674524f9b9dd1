//! Promise: closing (dropping or closing the publisher, `Bus::close`, dropping the last
//! handle of any kind) delivers everything published before, then every receive method
//! reports `Closed`, whatever the drop order; a closed bus refuses new subscribers and
//! publishers; a bus has one publisher; nothing leaks; the dispatcher threads are named
//! and joined. Dropping every `Bus` handle does not close a bus whose publisher lives
//! (see `bus_lifetime.rs`).

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use common::{
    assert_each_dropped_once, drain_to_closed, events, topic, tracker, watchdog, Tracked, HANG,
};
use shardcast::{
    Bus, BusError, CloseReason, Event, Overflow, OwnedDelivery, RecvError, RecvTimeoutError,
    Subscriber, Subscription, TryRecvError,
};

const N: u64 = common::scaled(2_000);

#[derive(Clone, Copy, Debug)]
enum HowToClose {
    DropPublisher,
    PublisherClose,
    BusClose,
    /// Every `Bus` handle, then the publisher: the publisher is the last handle that ends
    /// publishing (the bus handles alone do not).
    DropBus,
}

fn read_with_recv(mut sub: Subscriber<u64>) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        match sub.recv_blocking() {
            Ok(d) => got.push(d.seq()),
            Err(RecvError::Closed) => break,
            Err(e) => panic!("recv: {e}"),
        }
    }
    assert_eq!(sub.recv_blocking().unwrap_err(), RecvError::Closed, "Closed is final");
    assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Closed);
    assert_eq!(sub.recv_timeout(Duration::ZERO).unwrap_err(), RecvTimeoutError::Closed);
    got
}

fn read_with_try_recv(mut sub: Subscriber<u64>) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        match sub.try_recv() {
            Ok(d) => got.push(d.seq()),
            Err(TryRecvError::Empty) => thread::yield_now(),
            Err(TryRecvError::Closed) => break,
            Err(e) => panic!("try_recv: {e}"),
        }
    }
    assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Closed, "Closed is final");
    assert_eq!(sub.recv_blocking().unwrap_err(), RecvError::Closed);
    got
}

fn read_with_recv_timeout(mut sub: Subscriber<u64>) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        match sub.recv_timeout(Duration::from_millis(1)) {
            Ok(d) => got.push(d.seq()),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Closed) => break,
            Err(e) => panic!("recv_timeout: {e}"),
        }
    }
    assert_eq!(sub.recv_timeout(HANG).unwrap_err(), RecvTimeoutError::Closed, "final");
    got
}

fn read_with_recv_async(mut sub: Subscriber<u64>) -> Vec<u64> {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
    rt.block_on(async move {
        let mut got = Vec::new();
        loop {
            match sub.recv().await {
                Ok(d) => got.push(d.seq()),
                Err(RecvError::Closed) => break,
                Err(e) => panic!("recv_async: {e}"),
            }
        }
        assert_eq!(sub.recv().await.unwrap_err(), RecvError::Closed, "Closed is final");
        got
    })
}

fn close_scenario(how: HowToClose) {
    let got = watchdog("close scenario", move || {
        let bus: Bus<u64> = Bus::builder().ring_capacity(32).dispatchers(2).build().unwrap();
        let readers: [fn(Subscriber<u64>) -> Vec<u64>; 4] =
            [read_with_recv, read_with_try_recv, read_with_recv_timeout, read_with_recv_async];
        let threads: Vec<_> = readers
            .into_iter()
            .map(|read| {
                // Room for everything: `Bus::close` stops shards waiting on `Block`
                // subscribers, so only a queue that never overflows is lossless here.
                let sub = bus.subscribe(Subscription::all().capacity(N as usize)).unwrap();
                thread::spawn(move || read(sub))
            })
            .collect();
        let mut publisher = bus.publisher().unwrap();
        for i in 0..N {
            publisher.publish_blocking(Event::new(topic(), i)).unwrap();
        }
        match how {
            HowToClose::DropPublisher => drop(publisher),
            HowToClose::PublisherClose => publisher.close(),
            HowToClose::BusClose => {
                bus.close();
                assert!(publisher.publish_blocking(Event::new(topic(), N)).is_err());
            }
            HowToClose::DropBus => {
                drop(bus);
                drop(publisher);
                return threads.into_iter().map(|t| t.join().unwrap()).collect::<Vec<_>>();
            }
        }
        assert!(bus.is_closed());
        threads.into_iter().map(|t| t.join().unwrap()).collect::<Vec<_>>()
    });
    for (i, seqs) in got.iter().enumerate() {
        assert_eq!(seqs.len() as u64, N, "{how:?}, reader {i}");
        assert!(seqs.iter().copied().eq(0..N), "{how:?}, reader {i}: not 0..N in order");
    }
}

#[test]
fn dropping_the_publisher_delivers_everything_then_closed() {
    close_scenario(HowToClose::DropPublisher);
}

#[test]
fn publisher_close_delivers_everything_then_closed() {
    close_scenario(HowToClose::PublisherClose);
}

#[test]
fn bus_close_delivers_everything_then_closed() {
    close_scenario(HowToClose::BusClose);
}

#[test]
fn dropping_the_bus_delivers_everything_then_closed() {
    close_scenario(HowToClose::DropBus);
}

/// Receivers already waiting (sync and async) when the bus closes are woken with
/// `Closed`, whichever handle goes first.
#[test]
fn waiting_receivers_see_close_whatever_the_drop_order() {
    for how in [
        HowToClose::DropPublisher,
        HowToClose::PublisherClose,
        HowToClose::BusClose,
        HowToClose::DropBus,
    ] {
        watchdog("waiting receivers at close", move || {
            let bus: Bus<u64> = Bus::builder().dispatchers(2).build().unwrap();
            let publisher = bus.publisher().unwrap();
            let mut sync_sub = bus.subscribe(Subscription::all()).unwrap();
            let mut async_sub = bus.subscribe(Subscription::all()).unwrap();
            let (ready_tx, ready_rx) = crossbeam_channel::bounded(2);
            let ready = ready_tx.clone();
            let sync_thread = thread::spawn(move || {
                ready.send(()).unwrap();
                sync_sub.recv_blocking().map(|d| d.seq())
            });
            let async_thread = thread::spawn(move || {
                let rt =
                    tokio::runtime::Builder::new_multi_thread().worker_threads(1).build().unwrap();
                rt.block_on(async move {
                    ready_tx.send(()).unwrap();
                    async_sub.recv().await.map(|d| d.seq())
                })
            });
            ready_rx.recv().unwrap();
            ready_rx.recv().unwrap();
            // Give both a chance to actually park / return Pending (coverage, not needed).
            thread::sleep(Duration::from_millis(20));
            match how {
                HowToClose::DropPublisher => drop(publisher),
                HowToClose::PublisherClose => publisher.close(),
                HowToClose::BusClose => bus.close(),
                HowToClose::DropBus => {
                    drop(bus);
                    drop(publisher);
                }
            }
            assert_eq!(sync_thread.join().unwrap().unwrap_err(), RecvError::Closed, "{how:?}");
            assert_eq!(async_thread.join().unwrap().unwrap_err(), RecvError::Closed, "{how:?}");
        });
    }
}

#[test]
fn subscribe_and_publisher_after_close_are_closed_and_say_why() {
    for how in [HowToClose::DropPublisher, HowToClose::PublisherClose, HowToClose::BusClose] {
        let bus: Bus<u64> = Bus::builder().dispatchers(2).build().unwrap();
        let publisher = bus.publisher().unwrap();
        assert!(!bus.is_closed());
        match how {
            HowToClose::DropPublisher => drop(publisher),
            HowToClose::PublisherClose => publisher.close(),
            HowToClose::BusClose => bus.close(),
            HowToClose::DropBus => unreachable!(),
        }
        let (reason, why) = match how {
            HowToClose::BusClose => (CloseReason::CloseCalled, "`Bus::close` was called"),
            _ => (CloseReason::PublisherDropped, "its last publisher was dropped"),
        };
        assert!(bus.is_closed(), "{how:?}");
        let err = bus.subscribe(Subscription::all()).unwrap_err();
        assert!(err.is_closed(), "{how:?}");
        assert_eq!(err.close_reason(), Some(reason), "{how:?}");
        assert_eq!(err.to_string(), format!("cannot subscribe: bus closed: {why}"));
        let err = bus.publisher().unwrap_err();
        assert_eq!(err.to_string(), format!("cannot take the publisher: bus closed: {why}"));
        let err = bus.shared_publisher().unwrap_err();
        assert_eq!(err.to_string(), format!("cannot take the publisher: bus closed: {why}"));
        // A clone of a closed bus is closed too.
        let err = bus.clone().subscribe(Subscription::all()).unwrap_err();
        assert!(matches!(&err, BusError::Closed(e) if e.operation() == "subscribe"), "{err:?}");
        assert_eq!(bus.subscriber_count(), 0);
    }
    // Closed before any publisher was taken; a later close does not change the reason.
    let bus: Bus<u64> = Bus::builder().build().unwrap();
    bus.close();
    bus.close(); // idempotent
    assert_eq!(bus.publisher().unwrap_err().close_reason(), Some(CloseReason::CloseCalled));
    assert!(bus.subscribe(Subscription::all()).unwrap_err().is_closed());

    // The last `SharedPublisher` clone, then `Bus::close`: the first closer is the reason.
    let bus: Bus<u64> = Bus::builder().build().unwrap();
    let shared = bus.shared_publisher().unwrap();
    drop(shared.clone());
    drop(shared);
    bus.close();
    let err = bus.subscribe(Subscription::all()).unwrap_err();
    assert_eq!(err.to_string(), "cannot subscribe: bus closed: its last publisher was dropped");
}

/// Subscribing races with close: it either succeeds (and the subscriber then sees
/// `Closed` after its events) or fails with `Closed`; it never hangs.
#[test]
fn subscribe_racing_close_never_hangs() {
    watchdog("subscribe vs close", || {
        for round in 0..common::scaled(50) {
            let bus: Bus<u64> = Bus::builder().dispatchers(2).build().unwrap();
            let mut publisher = bus.publisher().unwrap();
            let subscribing = {
                let bus = bus.clone();
                thread::spawn(move || {
                    let mut subs = Vec::new();
                    for _ in 0..20 {
                        match bus.subscribe(Subscription::all().capacity(64)) {
                            Ok(sub) => subs.push(sub),
                            Err(BusError::Closed(_)) => break,
                            Err(e) => panic!("subscribe: {e}"),
                        }
                        thread::yield_now();
                    }
                    subs
                })
            };
            for i in 0..round {
                publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            }
            drop(publisher);
            for mut sub in subscribing.join().unwrap() {
                // Events published while it subscribed may or may not reach it; whatever
                // does is in order, exactly once, and Closed follows.
                let got = drain_to_closed(&mut sub);
                assert!(got.windows(2).all(|w| w[0] < w[1]), "round {round}: {got:?}");
                assert!(got.iter().all(|g| matches!(g, common::Got::Event(s) if *s < round)));
            }
        }
    });
}

#[test]
fn a_bus_has_one_publisher() {
    let bus: Bus<u64> = Bus::builder().build().unwrap();
    let publisher = bus.publisher().unwrap();
    assert_eq!(bus.publisher().unwrap_err(), BusError::PublisherTaken);
    assert_eq!(bus.clone().publisher().unwrap_err(), BusError::PublisherTaken);
    assert_eq!(BusError::PublisherTaken.to_string(), "the bus already has a publisher");
    drop(publisher);
    // Dropping the publisher closed the bus for good.
    assert_eq!(bus.publisher().unwrap_err().close_reason(), Some(CloseReason::PublisherDropped));
}

#[test]
fn dropping_every_bus_handle_does_not_close_while_the_publisher_lives() {
    watchdog("bus clones", || {
        let bus: Bus<u64> = Bus::builder().dispatchers(2).build().unwrap();
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let clone = bus.clone();
        drop(bus);
        assert!(!clone.is_closed());
        publisher.publish_blocking(Event::new(topic(), 1)).unwrap();
        assert_eq!(sub.recv_timeout(HANG).unwrap().seq(), 0);
        drop(clone); // the last `Bus`, not the last handle: the bus lives on
        publisher.publish_blocking(Event::new(topic(), 2)).unwrap();
        assert_eq!(*sub.recv_timeout(HANG).unwrap().payload(), 2);
        drop(publisher); // closes
        assert_eq!(drain_to_closed(&mut sub), events(std::iter::empty()));
    });
}

// ---- leaks ------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug)]
enum DropOrder {
    SubscribersFirst,
    BusFirst,
    PublisherLast,
}

#[test]
fn every_payload_is_dropped_exactly_once() {
    const EVENTS: usize = common::scaled(3_000) as usize;
    for order in [DropOrder::SubscribersFirst, DropOrder::BusFirst, DropOrder::PublisherLast] {
        for k in [1, 2] {
            // One extra id for an event published after the bus handles were dropped.
            let drops = tracker(EVENTS + 1);
            let d = Arc::clone(&drops);
            watchdog("leak scenario", move || {
                let drops = d;
                let bus: Bus<Tracked> =
                    Bus::builder().ring_capacity(16).dispatchers(k).build().unwrap();
                let sub = |cap: usize, overflow: Overflow| {
                    bus.subscribe(Subscription::all().capacity(cap).overflow(overflow)).unwrap()
                };
                // A reader on its own thread that keeps some deliveries past everything.
                // Room for every event, the one published after the bus handles went too.
                let mut reader = sub(EVENTS + 1, Overflow::DropNewest);
                let reading = thread::spawn(move || {
                    let mut kept: Vec<OwnedDelivery<Tracked>> = Vec::new();
                    while let Ok(d) = reader.recv_blocking() {
                        if d.payload().id.is_multiple_of(100) {
                            kept.push(d.to_owned());
                        }
                    }
                    kept
                });
                // Stuck subscribers of every lossy policy, one dropped half-way.
                let mut subs = vec![
                    sub(3, Overflow::DropNewest),
                    sub(3, Overflow::DropOldest),
                    sub(3, Overflow::Disconnect),
                    sub(EVENTS, Overflow::DropNewest),
                ];
                let mut publisher = bus.publisher().unwrap();
                for id in 0..EVENTS {
                    if id == EVENTS / 2 {
                        subs.pop();
                    }
                    let payload = Tracked { id, drops: Arc::clone(&drops) };
                    publisher.publish_blocking(Event::new(topic(), payload)).unwrap();
                }
                let bus2 = bus.clone();
                match order {
                    DropOrder::SubscribersFirst => {
                        drop(subs);
                        drop(publisher);
                        drop(bus);
                        drop(bus2);
                    }
                    DropOrder::BusFirst => {
                        drop(bus);
                        drop(bus2); // the publisher and subscribers keep the bus alive
                        let last = Tracked { id: EVENTS, drops: Arc::clone(&drops) };
                        publisher.publish_blocking(Event::new(topic(), last)).unwrap();
                        drop(publisher);
                        drop(subs);
                    }
                    DropOrder::PublisherLast => {
                        bus.close();
                        drop(subs);
                        drop(bus);
                        drop(bus2);
                        drop(publisher);
                    }
                }
                let kept = reading.join().expect("reader");
                // Id EVENTS, published after the bus handles were dropped, is delivered
                // too (the publisher keeps the bus alive); it is kept if it is a multiple
                // of 100.
                let last = matches!(order, DropOrder::BusFirst) && EVENTS.is_multiple_of(100);
                assert_eq!(kept.len(), EVENTS.div_ceil(100) + usize::from(last));
                drop(kept);
            });
            if !matches!(order, DropOrder::BusFirst) {
                drops[EVENTS].store(1, Ordering::SeqCst); // that id was never created
            }
            assert_each_dropped_once(&drops, &format!("{order:?}, K={k}"));
        }
    }
}

/// Events still in the ring when the bus goes away (no subscriber ever took them) are
/// dropped too.
#[test]
fn payloads_left_in_the_ring_are_dropped() {
    for published in [0, 1, 3, 4, 5, 17] {
        let drops = tracker(published);
        let d = Arc::clone(&drops);
        watchdog("ring leftovers", move || {
            let bus: Bus<Tracked> = Bus::builder().ring_capacity(4).build().unwrap();
            let mut publisher = bus.publisher().unwrap();
            for id in 0..published {
                publisher
                    .publish_blocking(Event::new(topic(), Tracked { id, drops: Arc::clone(&d) }))
                    .unwrap();
            }
            drop(bus);
            drop(publisher);
        });
        assert_each_dropped_once(&drops, &format!("{published} published"));
    }
}

/// Events held up behind a shard stuck on a `Block` subscriber are dropped exactly once
/// when the bus closes (the blocked push is abandoned), whatever is dropped first.
#[test]
fn payloads_behind_a_stuck_block_subscriber_are_dropped() {
    for subscriber_first in [false, true] {
        let drops = tracker(64);
        let d = Arc::clone(&drops);
        let accepted = watchdog("stuck Block leftovers", move || {
            let bus: Bus<Tracked> = Bus::builder().ring_capacity(4).build().unwrap();
            let stuck =
                bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
            let mut publisher = bus.publisher().unwrap();
            let mut id = 0;
            loop {
                let payload = Tracked { id, drops: Arc::clone(&d) };
                id += 1;
                if let Err(e) = publisher.try_publish(Event::new(topic(), payload)) {
                    assert!(e.is_full());
                    break; // the refused event is dropped here
                }
                assert!(id < 64, "try_publish never reported Full");
            }
            if subscriber_first {
                drop(stuck);
                drop(bus);
            } else {
                drop(bus);
                drop(stuck);
            }
            drop(publisher);
            id
        });
        for unused in &drops[accepted..] {
            unused.store(1, Ordering::SeqCst); // never created
        }
        assert_each_dropped_once(&drops, &format!("subscriber dropped first: {subscriber_first}"));
    }
}

// ---- dispatcher threads -----------------------------------------------------------------

/// Names of this process's threads (Linux: `/proc/self/task/*/comm`, at most 15 bytes).
/// Not under miri: its threads are interpreted, so the OS does not list them.
#[cfg(all(target_os = "linux", not(miri)))]
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .map(|name| name.trim_end().to_owned())
        .collect()
}

#[cfg(all(target_os = "linux", not(miri)))]
#[test]
fn dispatcher_threads_are_named_and_joined_on_close() {
    // "rcx7-dispatch-0" is 15 bytes: the longest name Linux keeps whole; the prefix is
    // unique to this test, so other tests' buses cannot interfere.
    let bus: Bus<u64> = Bus::builder().dispatchers(3).thread_name("rcx7").build().unwrap();
    let expected = ["rcx7-dispatch-0", "rcx7-dispatch-1", "rcx7-dispatch-2"];
    // A new thread sets its own name once it runs: wait for that (bounded).
    let started = std::time::Instant::now();
    let mut names: Vec<String>;
    loop {
        names = thread_names().into_iter().filter(|n| n.starts_with("rcx7-")).collect();
        names.sort();
        if names == expected || started.elapsed() > HANG {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(names, expected);
    // Close joins the dispatchers. A joined thread has finished, but the kernel may list it
    // for a moment longer.
    bus.close();
    let started = std::time::Instant::now();
    let mut left: Vec<String>;
    loop {
        left = thread_names().into_iter().filter(|n| n.starts_with("rcx7-")).collect();
        if left.is_empty() || started.elapsed() > HANG {
            break;
        }
        thread::sleep(Duration::from_millis(1));
    }
    assert!(left.is_empty(), "dispatcher threads still running after close: {left:?}");
}

#[test]
fn close_async_yields_until_the_shards_have_closed_every_queue() {
    watchdog("Bus::close_async on a current-thread runtime", || {
        let open = Arc::new(AtomicBool::new(false));
        let bus: Bus<u64> = Bus::builder().dispatchers(2).build().unwrap();
        // The filter holds its shard until a task on the same runtime opens it: a
        // `close_async` that blocked the thread would never let that task run.
        let gate = Arc::clone(&open);
        let mut held = bus
            .subscribe(Subscription::all().filter(move |_| {
                // Acquire: pairs with the Release store in the opener task.
                while !gate.load(Ordering::Acquire) {
                    thread::sleep(Duration::from_millis(1));
                }
                true
            }))
            .unwrap();
        let mut other = bus.subscribe(Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        publisher.publish_blocking(Event::new(topic(), 1)).unwrap();
        let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
        runtime.block_on(async {
            let opener = {
                let open = Arc::clone(&open);
                // Release: pairs with the Acquire load in the filter.
                tokio::spawn(async move { open.store(true, Ordering::Release) })
            };
            bus.close_async().await;
            assert!(open.load(Ordering::Relaxed), "close_async yielded to the opener");
            opener.await.unwrap();
            bus.close_async().await; // idempotent: at once
        });
        assert!(bus.is_closed());
        let err = publisher.publish_blocking(Event::new(topic(), 2)).unwrap_err();
        assert_eq!(*err.into_inner().payload(), 2);
        for sub in [&mut held, &mut other] {
            // Every queue closed when it resolved: what was queued, then `Closed`, never
            // `Empty`.
            assert_eq!(*sub.try_recv().unwrap().payload(), 1);
            assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Closed);
        }
    });
}
