//! Promise: the publisher side has the signals tokio and async-broadcast users rely on.
//! `subscriber_count` follows subscribe, resubscribe and drop; `closed()` does not resolve
//! while a subscriber exists, resolves when the last one drops (and at once when there is
//! none), and is cancel-safe; `len()` is the ring's occupancy, `0..=capacity()`;
//! `Subscriber::resubscribe` subscribes again with the same subscription, from now on.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread;

use common::{topic, watchdog, CountingWaker, HANG};
use shardcast::{Bus, Event, Overflow, Subscription, Topic, TryRecvError};

#[test]
fn subscriber_count_follows_subscribe_resubscribe_and_drop() {
    let bus: Bus<u64> = Bus::builder().dispatchers(2).build().unwrap();
    let publisher = bus.publisher().unwrap();
    assert_eq!(publisher.subscriber_count(), 0);
    let a = bus.subscribe(Subscription::all()).unwrap();
    let b = a.resubscribe().unwrap();
    let c = bus.subscribe(Subscription::all()).unwrap();
    assert_eq!(publisher.subscriber_count(), 3);
    drop(a);
    assert_eq!(publisher.subscriber_count(), 2);
    drop((b, c));
    assert_eq!(publisher.subscriber_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_does_not_resolve_while_a_subscriber_exists() {
    let bus: Bus<u64> = Bus::builder().build().unwrap();
    let publisher = bus.publisher().unwrap();
    let a = bus.subscribe(Subscription::all()).unwrap();
    let b = bus.subscribe(Subscription::all()).unwrap();
    let counter = Arc::new(CountingWaker::default());
    let waker = Waker::from(Arc::clone(&counter));
    let mut cx = Context::from_waker(&waker);
    let mut closed = pin!(publisher.closed());
    assert_eq!(closed.as_mut().poll(&mut cx), Poll::Pending, "two subscribers");
    drop(a);
    assert_eq!(counter.0.load(Ordering::SeqCst), 0, "woken while a subscriber is left");
    assert_eq!(closed.as_mut().poll(&mut cx), Poll::Pending, "one subscriber left");
    // A resubscribe of the last one, then its drop: still one left.
    let c = b.resubscribe().unwrap();
    drop(b);
    assert_eq!(closed.as_mut().poll(&mut cx), Poll::Pending, "the resubscribed one is left");
    drop(c);
    assert_eq!(counter.0.load(Ordering::SeqCst), 1, "the last drop wakes the task");
    assert_eq!(closed.as_mut().poll(&mut cx), Poll::Ready(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_resolves_when_the_last_subscriber_drops() {
    let bus: Bus<u64> = Bus::builder().dispatchers(2).build().unwrap();
    let mut publisher = bus.publisher().unwrap();
    // None yet: resolves at once, like tokio's `Sender::closed` with no receiver.
    tokio::time::timeout(HANG, publisher.closed()).await.expect("no subscriber: at once");
    let subs: Vec<_> = (0..4).map(|_| bus.subscribe(Subscription::all()).unwrap()).collect();
    publisher.publish(Event::new(topic(), 1)).await.unwrap();
    // The subscribers receive and go away on other threads, once the waiter is there.
    let (go_tx, go_rx) = crossbeam_channel::bounded::<()>(4);
    let gone = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for mut sub in subs {
        let (go_rx, gone) = (go_rx.clone(), Arc::clone(&gone));
        threads.push(thread::spawn(move || {
            assert_eq!(*sub.recv_timeout(HANG).unwrap().payload(), 1);
            go_rx.recv().unwrap();
            // Before the drop: once `closed()` resolves, all four increments are visible.
            gone.fetch_add(1, Ordering::Relaxed);
            drop(sub);
        }));
    }
    let waiter = tokio::spawn(async move {
        publisher.closed().await;
        publisher
    });
    for _ in 0..4 {
        go_tx.send(()).unwrap();
    }
    let publisher = tokio::time::timeout(HANG, waiter).await.expect("closed() hung").unwrap();
    assert_eq!(gone.load(Ordering::Relaxed), 4, "resolved before the last subscriber dropped");
    assert_eq!(publisher.subscriber_count(), 0);
    for t in threads {
        t.join().unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_is_cancel_safe() {
    let bus: Bus<u64> = Bus::builder().build().unwrap();
    let publisher = bus.publisher().unwrap();
    let sub = bus.subscribe(Subscription::all()).unwrap();
    let counter = Arc::new(CountingWaker::default());
    let waker = Waker::from(Arc::clone(&counter));
    let mut cx = Context::from_waker(&waker);
    for _ in 0..3 {
        let mut closed = pin!(publisher.closed());
        assert_eq!(closed.as_mut().poll(&mut cx), Poll::Pending);
        // Dropped pending: the cancel.
    }
    assert_eq!(Arc::strong_count(&counter), 2, "a cancelled closed() left its waker behind");
    // A select! that gives up on it, then a later closed() that completes.
    tokio::select! {
        _ = publisher.closed() => panic!("resolved with a subscriber"),
        _ = tokio::time::sleep(std::time::Duration::from_millis(10)) => {}
    }
    let dropper = thread::spawn(move || drop(sub));
    tokio::time::timeout(HANG, publisher.closed()).await.expect("closed() hung");
    dropper.join().unwrap();
    assert_eq!(counter.0.load(Ordering::SeqCst), 0, "a cancelled closed() was woken");
}

#[test]
fn len_is_the_ring_occupancy_up_to_capacity() {
    watchdog("publisher len", || {
        let bus: Bus<u64> = Bus::builder().ring_capacity(8).build().unwrap();
        let stuck =
            bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
        let mut publisher = bus.publisher().unwrap();
        assert_eq!((publisher.len(), publisher.capacity()), (0, 8));
        assert!(publisher.is_empty());
        let mut published = 0;
        while publisher.try_publish(Event::new(topic(), published)).is_ok() {
            published += 1;
            assert!(publisher.len() <= publisher.capacity());
            assert!(published < 64, "try_publish never reported Full");
        }
        // Full: the shard holds its batch until the stuck subscriber makes room.
        assert_eq!(publisher.len(), publisher.capacity());
        drop(stuck);
        publisher.flush();
        assert_eq!(publisher.len(), 0);
    });
}

#[test]
fn resubscribe_keeps_the_subscription_and_receives_from_now_on() {
    watchdog("resubscribe", || {
        let bus: Bus<u64> = Bus::builder().dispatchers(2).build().unwrap();
        let route = shardcast::Uuid::from_u128(9);
        let mut first = bus
            .subscribe(
                Subscription::to("orders.>")
                    .unwrap()
                    .route(route)
                    .filter(|e| e.payload() % 2 == 0)
                    .capacity(3)
                    .overflow(Overflow::DropOldest)
                    .name("audit"),
            )
            .unwrap();
        let anonymous = bus.subscribe(Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let orders = Topic::new("orders.eu").unwrap();
        let send = |p: &mut shardcast::Publisher<u64>, topic: &Topic, n: u64, routed: bool| {
            let event = Event::new(topic.clone(), n);
            p.publish_blocking(if routed { event.with_route(route) } else { event }).unwrap();
        };
        send(&mut publisher, &orders, 0, true);
        let mut second = first.resubscribe().unwrap();
        assert_eq!((second.name(), second.capacity()), ("audit", 3));
        assert_ne!(second.id(), first.id());
        let renamed = anonymous.resubscribe().unwrap();
        assert_eq!(renamed.name(), format!("sub-{}", renamed.id()), "a default name is new");
        send(&mut publisher, &orders, 1, true); // filtered out (odd)
        send(&mut publisher, &orders, 2, false); // no route
        send(&mut publisher, &Topic::new("billing").unwrap(), 4, true); // pattern
        for n in [6, 8, 10, 12] {
            send(&mut publisher, &orders, n, true);
        }
        publisher.flush();
        let take = |sub: &mut shardcast::Subscriber<u64>| {
            let mut got = Vec::new();
            loop {
                match sub.try_recv() {
                    Ok(d) => got.push(Ok(*d.payload())),
                    Err(TryRecvError::Empty) => return got,
                    Err(e) => got.push(Err(e)),
                }
            }
        };
        // Capacity 3 under DropOldest: 0 then 6 were evicted for 8, 10, 12.
        assert_eq!(take(&mut first), [Err(TryRecvError::Lagged(2)), Ok(8), Ok(10), Ok(12)]);
        // From now on: not 0; same filters; same capacity and policy (6 evicted).
        assert_eq!(take(&mut second), [Err(TryRecvError::Lagged(1)), Ok(8), Ok(10), Ok(12)]);
        bus.close();
        let err = second.resubscribe().unwrap_err();
        assert_eq!(err.to_string(), "cannot resubscribe: bus closed: `Bus::close` was called");
    });
}
