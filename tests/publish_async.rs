//! `Publisher::publish_async`: waits for ring space without blocking the executor thread,
//! is cancel-safe (a dropped future publishes nothing and drops its event once), and hands
//! the event back when the bus closes.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use shardcast::{Bus, Event, Overflow, RecvError, Subscription, Topic};

/// A payload that counts its drops.
struct Counted {
    n: u32,
    drops: Arc<AtomicUsize>,
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn assert_send<T: Send>(_: &T) {}

/// Ends the test process if it is not dropped within `secs`: a `publish_async` that blocks
/// the executor's only thread would otherwise hang, with no timer able to fire.
struct Watchdog(Option<std::sync::mpsc::Sender<()>>);

impl Watchdog {
    fn new(secs: u64, what: &'static str) -> Watchdog {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                rx.recv_timeout(Duration::from_secs(secs))
            {
                eprintln!("watchdog: {what} after {secs} s");
                std::process::exit(101);
            }
        });
        Watchdog(Some(tx))
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        drop(self.0.take());
    }
}

#[test]
fn a_full_ring_does_not_block_the_executor() {
    // One thread for both tasks: a `publish` that blocked the thread while the ring is
    // full would never let the receiving task drain the `Block` queue the shard waits on.
    let _watchdog = Watchdog::new(60, "publish_async blocked the executor thread");
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        let bus: Bus<u32> = Bus::builder().ring_capacity(2).build().unwrap();
        let mut sub =
            bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let receiving = tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                match sub.recv().await {
                    Ok(d) => got.push(*d.payload()),
                    Err(RecvError::Closed) => return got,
                    Err(RecvError::Lagged(n)) => panic!("Block lost {n}"),
                }
            }
        });
        let topic = Topic::new("t").unwrap();
        let publishing = async move {
            for i in 0..2000 {
                let publish = publisher.publish(Event::new(topic.clone(), i));
                assert_send(&publish);
                publish.await.unwrap();
            }
        };
        tokio::time::timeout(Duration::from_secs(30), publishing)
            .await
            .expect("publish_async blocked the executor");
        let got = tokio::time::timeout(Duration::from_secs(30), receiving).await.unwrap().unwrap();
        assert_eq!(got, (0..2000).collect::<Vec<_>>());
    });
}

#[test]
fn a_cancelled_publish_drops_its_event_once_and_publishes_nothing() {
    let _watchdog = Watchdog::new(60, "publish_async blocked the executor thread");
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        let drops = Arc::new(AtomicUsize::new(0));
        let bus: Bus<Counted> = Bus::builder().ring_capacity(2).build().unwrap();
        // Nobody receives yet: the shard waits on this queue, and the ring fills.
        let mut sub =
            bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let topic = Topic::new("t").unwrap();
        let event = |n| Event::new(topic.clone(), Counted { n, drops: Arc::clone(&drops) });
        let mut published = 0;
        let cancelled = loop {
            let n = published;
            tokio::select! {
                result = publisher.publish(event(n)) => {
                    result.unwrap();
                    published += 1;
                }
                () = tokio::time::sleep(Duration::from_millis(200)) => break n,
            }
            assert!(published < 100, "the ring never filled");
        };
        // The cancelled future held event `cancelled`: dropped with it, once.
        assert_eq!(drops.load(Ordering::SeqCst), 1, "the cancelled event was dropped once");
        // One more publish after the cancellation: it must follow the published ones.
        let receiving = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Ok(d) = sub.recv().await {
                got.push(d.payload().n);
            }
            got
        });
        publisher.publish(event(1000)).await.unwrap();
        publisher.close();
        let got = receiving.await.unwrap();
        let mut want: Vec<u32> = (0..cancelled).collect();
        want.push(1000);
        assert_eq!(got, want, "event {cancelled} was cancelled, never published");
    });
    drop(rt);
}

#[test]
fn closing_the_bus_while_waiting_hands_the_event_back() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    rt.block_on(async {
        let bus: Bus<u32> = Bus::builder().ring_capacity(2).build().unwrap();
        // Never received: the shard blocks on it, the ring fills.
        let _stuck =
            bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let topic = Topic::new("t").unwrap();
        let closer = bus.clone();
        let close = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            tokio::task::spawn_blocking(move || closer.close()).await.unwrap();
        });
        let mut n = 0;
        let err = loop {
            let publish = publisher.publish(Event::new(topic.clone(), n));
            match tokio::time::timeout(Duration::from_secs(30), publish).await {
                Ok(Ok(_)) => n += 1,
                Ok(Err(e)) => break e,
                Err(_) => panic!("publish_async still waiting after the bus closed"),
            }
        };
        assert_eq!(*err.into_inner().payload(), n, "the waiting event comes back");
        close.await.unwrap();
    });
}

#[test]
fn shared_clones_wait_for_space_together() {
    // Four tasks wait for ring space at once on one thread: each must be woken (a single
    // waker slot would lose three of them), and every event arrives, in each task's order.
    let _watchdog = Watchdog::new(60, "a SharedPublisher::publish_async waiter was never woken");
    let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    rt.block_on(async {
        let bus: Bus<(u32, u32)> = Bus::builder().ring_capacity(2).build().unwrap();
        let mut sub =
            bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
        let publisher = bus.shared_publisher().unwrap();
        let receiving = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Ok(d) = sub.recv().await {
                got.push(*d.payload());
            }
            got
        });
        let tasks: Vec<_> = (0..4u32)
            .map(|task| {
                let publisher = publisher.clone();
                tokio::spawn(async move {
                    let topic = Topic::new("t").unwrap();
                    for i in 0..500 {
                        let publish = publisher.publish(Event::new(topic.clone(), (task, i)));
                        assert_send(&publish);
                        publish.await.unwrap();
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        publisher.close();
        let got = receiving.await.unwrap();
        assert_eq!(got.len(), 2000);
        for task in 0..4 {
            let mine: Vec<u32> = got.iter().filter(|(t, _)| *t == task).map(|(_, i)| *i).collect();
            assert_eq!(mine, (0..500).collect::<Vec<_>>(), "task {task}");
        }
    });
}
