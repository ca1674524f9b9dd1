//! Promise: `recv_async` receives every event in order on a multi-threaded runtime (or
//! any executor), is cancel-safe (a dropped future loses no event and leaves no waker
//! behind), is woken by a publish or a close from another thread (no lost wake-up), and
//! surfaces `Lagged` and `Closed` like `recv`.

mod common;

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread;
use std::time::{Duration, Instant};

use common::{assert_copies_settle, topic, HANG};
use shardcast::{Bus, Event, Overflow, RecvError, Subscriber, Subscription};

const N: u64 = 5_000;

fn bus(dispatchers: usize) -> Bus<u64> {
    Bus::builder().ring_capacity(64).dispatchers(dispatchers).build().unwrap()
}

/// Publishes `0..n` on a plain thread, pausing now and then so receivers go idle (and
/// wait) in between.
fn publish_on_thread(bus: &Bus<u64>, n: u64) -> thread::JoinHandle<()> {
    let mut publisher = bus.publisher().unwrap();
    thread::spawn(move || {
        for i in 0..n {
            publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            if i % 500 == 499 {
                thread::sleep(Duration::from_millis(1));
            }
        }
    })
}

/// Receives with `recv_async` until `Closed`; returns the seqs.
async fn receive_all(sub: &mut Subscriber<u64>) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        match sub.recv().await {
            Ok(d) => {
                assert_eq!(*d.payload(), d.seq());
                got.push(d.seq());
            }
            Err(RecvError::Closed) => return got,
            Err(e) => panic!("recv_async: {e}"),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_async_receives_everything_in_order() {
    for k in [1, 2] {
        let bus = bus(k);
        let tasks: Vec<_> = (0..3)
            .map(|_| {
                let mut sub = bus.subscribe(Subscription::all().capacity(N as usize)).unwrap();
                tokio::spawn(async move { receive_all(&mut sub).await })
            })
            .collect();
        let publishing = publish_on_thread(&bus, N);
        for task in tasks {
            let got = tokio::time::timeout(HANG, task).await.expect("hang").unwrap();
            assert!(got.iter().copied().eq(0..N), "K={k}: lost or reordered events");
        }
        publishing.join().unwrap();
    }
}

/// `tokio::time::timeout` drops the pending `recv_async` future again and again: no
/// event is lost or repeated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeout_cancelling_recv_async_loses_nothing() {
    for k in [1, 2] {
        let bus = bus(k);
        let mut sub = bus.subscribe(Subscription::all().capacity(N as usize)).unwrap();
        // First a cancellation for sure: nothing is published yet.
        let first = tokio::time::timeout(Duration::from_millis(1), sub.recv()).await;
        assert!(first.is_err(), "received an event nobody published");
        drop(first);
        let publishing = publish_on_thread(&bus, N);
        let started = Instant::now();
        let mut got = Vec::new();
        let mut cancelled = 1u64;
        loop {
            assert!(started.elapsed() < HANG, "hang: got {} events", got.len());
            match tokio::time::timeout(Duration::from_micros(100), sub.recv()).await {
                Err(_elapsed) => cancelled += 1,
                Ok(Ok(d)) => got.push(d.seq()),
                Ok(Err(RecvError::Closed)) => break,
                Ok(Err(e)) => panic!("recv_async: {e}"),
            }
        }
        publishing.join().unwrap();
        assert!(cancelled >= 1);
        assert!(got.iter().copied().eq(0..N), "K={k}: lost or repeated events");
        assert_eq!(sub.dropped(), 0);
    }
}

/// `tokio::select!` with a busy second branch drops `recv_async` whenever the other
/// branch wins: no event is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn select_cancelling_recv_async_loses_nothing() {
    let bus = bus(2);
    let mut sub = bus.subscribe(Subscription::all().capacity(N as usize)).unwrap();
    let publishing = publish_on_thread(&bus, N);
    let mut ticker = tokio::time::interval(Duration::from_micros(200));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (mut got, mut ticks) = (Vec::new(), 0u64);
    let outcome = tokio::time::timeout(HANG, async {
        loop {
            tokio::select! {
                biased;
                _ = ticker.tick() => ticks += 1,
                r = sub.recv() => match r {
                    Ok(d) => got.push(d.seq()),
                    Err(RecvError::Closed) => break,
                    Err(e) => panic!("recv_async: {e}"),
                },
            }
        }
    })
    .await;
    assert!(outcome.is_ok(), "hang: got {} events", got.len());
    publishing.join().unwrap();
    assert!(ticks >= 1, "the first tick is immediate: the select! dropped a recv_async");
    assert!(got.iter().copied().eq(0..N), "lost or repeated events");
}

/// Publish one, await it, acknowledge, repeat: every publish must wake the waiting task.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_pong_never_loses_a_wake_up() {
    const ROUNDS: u64 = 1_000;
    for k in [1, 2] {
        let bus = bus(k);
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let (ack_tx, ack_rx) = crossbeam_channel::unbounded();
        let mut publisher = bus.publisher().unwrap();
        let pinging = thread::spawn(move || {
            for i in 0..ROUNDS {
                publisher.publish_blocking(Event::new(topic(), i)).unwrap();
                match ack_rx.recv_timeout(Duration::from_secs(10)) {
                    Ok(seq) => assert_eq!(seq, i),
                    Err(_) => panic!("K={k}: round {i}: the waiting task was never woken"),
                }
            }
        });
        let ponging = tokio::spawn(async move {
            loop {
                match sub.recv().await {
                    Ok(d) => ack_tx.send(d.seq()).unwrap(),
                    Err(RecvError::Closed) => return,
                    Err(e) => panic!("recv_async: {e}"),
                }
            }
        });
        tokio::task::spawn_blocking(move || pinging.join())
            .await
            .unwrap()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        tokio::time::timeout(HANG, ponging).await.expect("hang").unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_async_reports_lagged_then_closed() {
    let bus = bus(1);
    let mut sub =
        bus.subscribe(Subscription::all().capacity(2).overflow(Overflow::DropNewest)).unwrap();
    let mut publisher = bus.publisher().unwrap();
    for i in 0..10 {
        publisher.publish(Event::new(topic(), i)).await.unwrap();
    }
    drop(publisher);
    // Let the shard push all 10 before receiving, so exactly 8 are lost (its counters move
    // at the end of each batch, after the pushes).
    while bus.shard_stats()[0].dispatched < 10 {
        tokio::task::yield_now().await;
    }
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        let r = tokio::time::timeout(HANG, sub.recv()).await.expect("hang");
        outcomes.push(r.map(|d| d.seq()));
    }
    assert_eq!(
        outcomes,
        [Ok(0), Ok(1), Err(RecvError::Lagged(8)), Err(RecvError::Closed), Err(RecvError::Closed)]
    );
}

// ---- without tokio: a hand-driven future and a minimal executor -------------------------

/// A waker that counts its wakes.
#[derive(Default)]
struct CountingWaker {
    wakes: AtomicUsize,
}

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
    fn wake_by_ref(self: &Arc<Self>) {
        self.wakes.fetch_add(1, Ordering::SeqCst);
    }
}

fn wait_for_wake(counter: &CountingWaker, what: &str) {
    let started = Instant::now();
    while counter.wakes.load(Ordering::SeqCst) == 0 {
        assert!(started.elapsed() < HANG, "{what}: the pending future was never woken");
        thread::sleep(Duration::from_millis(1));
    }
}

#[test]
fn a_pending_recv_async_is_woken_by_publish_and_clears_its_waker() {
    for k in [1, 2] {
        let bus = bus(k);
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counter));
        let mut cx = Context::from_waker(&waker);
        {
            let mut fut = pin!(sub.recv());
            assert!(fut.as_mut().poll(&mut cx).is_pending());
            publisher.publish_blocking(Event::new(topic(), 7)).unwrap();
            wait_for_wake(&counter, "publish");
            match fut.as_mut().poll(&mut cx) {
                Poll::Ready(Ok(d)) => assert_eq!((d.seq(), *d.payload()), (0, 7)),
                other => panic!("K={k}: after the wake: {:?}", other.map(|r| r.map(|d| d.seq()))),
            }
        }
        drop(waker);
        // Completed: the bus keeps no clone of the waker.
        // The publishing thread drops its copy just after waking: let it.
        assert_copies_settle(&counter, 1, &format!("K={k}: a finished recv_async left its waker"));
    }
}

#[test]
fn a_cancelled_recv_async_leaves_nothing_behind() {
    let bus = bus(1);
    let mut sub = bus.subscribe(Subscription::all()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    let counter = Arc::new(CountingWaker::default());
    let waker = Waker::from(Arc::clone(&counter));
    {
        let mut fut = pin!(sub.recv());
        assert!(fut.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
        // Dropped here, pending.
    }
    drop(waker);
    assert_eq!(Arc::strong_count(&counter), 1, "a cancelled recv_async left its waker behind");
    // And the event published after the cancellation is still received.
    publisher.publish_blocking(Event::new(topic(), 1)).unwrap();
    assert_eq!(sub.recv_timeout(HANG).unwrap().seq(), 0);
    // Many cancellations accumulate nothing either.
    let waker = Waker::from(Arc::clone(&counter));
    for _ in 0..1_000 {
        let mut fut = pin!(sub.recv());
        assert!(fut.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
    }
    drop(waker);
    // The shard may still be in the wake-up step of event 0, which can find a later
    // future's waker and wake it (a spurious wake, allowed): let it drop that copy.
    assert_copies_settle(&counter, 1, "1 000 cancelled recv_async left a waker behind");
}

#[test]
fn a_pending_recv_async_is_woken_by_close() {
    for close_bus in [false, true] {
        let bus = bus(2);
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let publisher = bus.publisher().unwrap();
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counter));
        let mut cx = Context::from_waker(&waker);
        let mut fut = pin!(sub.recv());
        assert!(fut.as_mut().poll(&mut cx).is_pending());
        if close_bus {
            bus.close();
        } else {
            drop(publisher);
        }
        wait_for_wake(&counter, "close");
        assert!(
            matches!(fut.as_mut().poll(&mut cx), Poll::Ready(Err(RecvError::Closed))),
            "close_bus={close_bus}"
        );
    }
}

/// A minimal executor (thread park/unpark), to show `recv_async` needs no tokio.
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    loop {
        if let Poll::Ready(out) = fut.as_mut().poll(&mut cx) {
            return out;
        }
        thread::park();
    }
}

#[test]
fn recv_async_works_on_any_executor() {
    let got = common::watchdog("block_on executor", || {
        let bus = bus(2);
        let mut sub = bus.subscribe(Subscription::all().capacity(N as usize)).unwrap();
        let publishing = publish_on_thread(&bus, N);
        let got = block_on(receive_all(&mut sub));
        publishing.join().unwrap();
        got
    });
    assert!(got.iter().copied().eq(0..N), "lost or reordered events");
}
