//! Promise: a `SharedPublisher` is the bus's one publisher, shared. Clones publish from many
//! threads; every subscriber gets each thread's events exactly once and in that thread's
//! order. While a shared one lives, `shared_publisher()` hands out another clone and
//! `publisher()` says `PublisherTaken`; while the exclusive one lives, both say
//! `PublisherTaken`. The bus closes for publishing when the last clone goes. A full ring
//! makes `try_publish` say `Full` at once, also while another clone waits for space.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use common::{drain_to_closed, events, scaled, topic, watchdog, Got, HANG};
use shardcast::{
    Bus, BusError, Event, Overflow, PublishTimeoutError, PublishToError, RecvTimeoutError,
    SharedPublisher, Subscription,
};

const THREADS: usize = 4;

#[test]
fn shared_publisher_is_clone_send_sync() {
    fn assert_clone_send_sync<T: Clone + Send + Sync + 'static>() {}
    assert_clone_send_sync::<SharedPublisher<u64>>();
    assert_clone_send_sync::<SharedPublisher<String>>();
}

#[test]
fn four_threads_through_clones_each_threads_events_arrive_in_order_exactly_once() {
    watchdog("four publishing threads", || {
        let per_thread = scaled(5_000);
        // A small ring and small `Block` queues: the publishers wait for space often, so
        // the lock is held across waits, and nothing may be lost.
        let bus: Bus<(usize, u64)> =
            Bus::builder().ring_capacity(64).dispatchers(2).build().unwrap();
        let subscribers: Vec<_> = (0..3)
            .map(|i| {
                bus.subscribe(
                    Subscription::all()
                        .name(format!("sub-{i}"))
                        .capacity(16)
                        .overflow(Overflow::Block),
                )
                .unwrap()
            })
            .collect();
        let readers: Vec<_> = subscribers
            .into_iter()
            .map(|mut sub| {
                thread::spawn(move || {
                    let mut got = Vec::new();
                    let name = sub.name().to_owned();
                    loop {
                        match sub.recv_timeout(HANG) {
                            Ok(d) => got.push((d.seq(), *d.payload())),
                            Err(RecvTimeoutError::Closed) => return got,
                            Err(e) => panic!("{name}: {e:?}"),
                        }
                    }
                })
            })
            .collect();

        let publisher = bus.shared_publisher().unwrap();
        let producers: Vec<_> = (0..THREADS)
            .map(|t| {
                let publisher = publisher.clone();
                thread::spawn(move || {
                    let mut seqs = Vec::new();
                    for n in 0..per_thread {
                        seqs.push(publisher.publish_blocking(Event::new(topic(), (t, n))).unwrap());
                    }
                    seqs
                })
            })
            .collect();
        drop(publisher);
        let mut published: Vec<u64> = Vec::new();
        for producer in producers {
            let seqs = producer.join().unwrap();
            assert!(seqs.windows(2).all(|w| w[0] < w[1]), "one thread's seqs increase");
            published.extend(seqs);
        }
        published.sort_unstable();
        let total = THREADS as u64 * per_thread;
        assert_eq!(published, (0..total).collect::<Vec<_>>(), "seqs are 0..total, once each");
        assert!(bus.is_closed(), "the last clone is gone: closed");

        let mut first: Option<Vec<(u64, (usize, u64))>> = None;
        for reader in readers {
            let got = reader.join().unwrap();
            assert_eq!(got.len() as u64, total, "every event exactly once");
            assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "publish order");
            let mut next = [0u64; THREADS];
            for &(_, (t, n)) in &got {
                assert_eq!(n, next[t], "thread {t}'s events in its order");
                next[t] += 1;
            }
            assert_eq!(next, [per_thread; THREADS]);
            match &first {
                None => first = Some(got),
                Some(first) => assert_eq!(first, &got, "every subscriber sees the same"),
            }
        }
    });
}

#[test]
fn publisher_taken_both_ways() {
    let bus: Bus<u64> = Bus::builder().build().unwrap();
    let exclusive = bus.publisher().unwrap();
    assert_eq!(bus.shared_publisher().unwrap_err(), BusError::PublisherTaken);
    assert_eq!(bus.clone().shared_publisher().unwrap_err(), BusError::PublisherTaken);
    drop(exclusive);
    // A bus has one publisher for its whole life: once it is gone, the bus is closed.
    assert!(bus.shared_publisher().unwrap_err().is_closed());

    let bus: Bus<u64> = Bus::builder().build().unwrap();
    let shared = bus.shared_publisher().unwrap();
    let clone = shared.clone();
    assert_eq!(bus.publisher().unwrap_err(), BusError::PublisherTaken);
    drop(shared);
    assert_eq!(bus.publisher().unwrap_err(), BusError::PublisherTaken, "a clone is alive");
    drop(clone);
    assert!(bus.publisher().unwrap_err().is_closed());
}

#[test]
fn shared_publisher_hands_out_clones_while_one_lives() {
    watchdog("shared_publisher clones", || {
        let bus: Bus<u64> = Bus::builder().build().unwrap();
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let first = bus.shared_publisher().unwrap();
        // Tasks that restart ask the bus again, from any `Bus` handle: each gets a clone
        // of the same publisher, whose sequence numbers continue.
        let again = bus.shared_publisher().unwrap();
        let from_a_clone_of_the_bus = bus.clone().shared_publisher().unwrap();
        assert_eq!(first.publish_blocking(Event::new(topic(), 10)).unwrap(), 0);
        assert_eq!(again.publish_blocking(Event::new(topic(), 11)).unwrap(), 1);
        assert_eq!(from_a_clone_of_the_bus.publish_blocking(Event::new(topic(), 12)).unwrap(), 2);
        assert_eq!(bus.publisher().unwrap_err(), BusError::PublisherTaken, "exclusive: no");
        drop(first);
        drop(again);
        assert!(!bus.is_closed(), "one clone still lives");
        let late = bus.shared_publisher().unwrap();
        drop(from_a_clone_of_the_bus);
        late.publish_blocking(Event::new(topic(), 13)).unwrap();
        drop(late);
        // The last clone is gone: the bus is closed, and asking again says so.
        assert!(bus.is_closed());
        assert!(matches!(bus.shared_publisher(), Err(BusError::Closed(_))));
        assert_eq!(drain_to_closed(&mut sub), events(0..4));
    });

    // Many threads asking at once all get clones of the one publisher.
    watchdog("concurrent shared_publisher calls", || {
        let bus: Bus<u64> = Bus::builder().build().unwrap();
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let keep = bus.shared_publisher().unwrap();
        let threads: Vec<_> = (0..THREADS)
            .map(|_| {
                let bus = bus.clone();
                thread::spawn(move || {
                    let publisher = bus.shared_publisher().unwrap();
                    publisher.publish_blocking(Event::new(topic(), 0)).unwrap()
                })
            })
            .collect();
        let mut seqs: Vec<u64> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        seqs.sort_unstable();
        assert_eq!(seqs, (0..THREADS as u64).collect::<Vec<_>>(), "one sequence, one ring");
        drop(keep);
        assert_eq!(drain_to_closed(&mut sub).len(), THREADS);
    });
}

#[test]
fn bus_closes_when_the_last_clone_goes() {
    watchdog("last clone closes", || {
        let bus: Bus<u64> = Bus::builder().build().unwrap();
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let a = bus.shared_publisher().unwrap();
        let b = a.clone();
        let c = b.clone();
        assert_eq!(a.publish_blocking(Event::new(topic(), 0)).unwrap(), 0);
        drop(a);
        assert!(!bus.is_closed(), "two clones left");
        assert_eq!(b.publish_blocking(Event::new(topic(), 1)).unwrap(), 1);
        b.close();
        assert!(!bus.is_closed(), "one clone left");
        assert!(!c.is_closed());
        // The last clone, dropped on another thread.
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            c.publish_blocking(Event::new(topic(), 2)).unwrap();
            drop(c);
            tx.send(()).unwrap();
        });
        rx.recv_timeout(HANG).unwrap();
        assert!(bus.is_closed(), "no clone left: closed");
        assert_eq!(drain_to_closed(&mut sub), events(0..3));
    });
}

#[test]
fn closed_bus_hands_the_event_back() {
    let bus: Bus<u64> = Bus::builder().build().unwrap();
    let publisher = bus.shared_publisher().unwrap();
    bus.close();
    assert!(publisher.is_closed());
    assert_eq!(publisher.publish_blocking(Event::new(topic(), 7)).unwrap_err().0.into_payload(), 7);
    let err = publisher.try_publish(Event::new(topic(), 8)).unwrap_err();
    assert!(err.is_closed(), "{err:?}");
    assert_eq!(err.into_inner().into_payload(), 8);
    let err = publisher.publish_timeout(Event::new(topic(), 9), Duration::from_millis(1));
    assert!(matches!(err, Err(PublishTimeoutError::Closed(_))), "{err:?}");
}

#[test]
fn try_publish_on_a_full_ring_says_full_even_while_another_clone_waits() {
    watchdog("try_publish on a full ring", || {
        // A `Block` subscriber that does not read: its shard stops, the ring fills.
        let bus: Bus<u64> = Bus::builder().ring_capacity(4).build().unwrap();
        let mut sub =
            bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
        let publisher = bus.shared_publisher().unwrap();

        let mut next = 0;
        let full = loop {
            match publisher.try_publish(Event::new(topic(), next)) {
                Ok(seq) => {
                    assert_eq!(seq, next);
                    next += 1;
                    assert!(next < 1_000, "try_publish never reported Full");
                }
                Err(e) => break e,
            }
        };
        assert!(full.is_full(), "{full:?}");
        assert_eq!(full.into_inner().into_payload(), next, "Full hands back the very event");
        assert!(next >= 4, "the ring holds 4: only {next} accepted");
        assert_eq!(publisher.len(), publisher.capacity());

        // Another clone blocks in `publish`, holding the lock while it waits for space.
        let waiting = publisher.clone();
        let blocked =
            thread::spawn(move || waiting.publish_blocking(Event::new(topic(), next)).unwrap());
        thread::sleep(Duration::from_millis(50)); // let it reach its wait (not required)

        // `try_publish` through a third clone does not queue behind it.
        let other = publisher.clone();
        let started = Instant::now();
        let err = other.try_publish(Event::new(topic(), 1_000)).unwrap_err();
        assert!(err.is_full(), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(5), "try_publish waited");
        // `publish_timeout` gives up at its deadline, lock or no lock.
        let err = other.publish_timeout(Event::new(topic(), 1_001), Duration::from_millis(20));
        assert!(matches!(err, Err(PublishTimeoutError::Timeout(_))), "{err:?}");

        // The subscriber reads: the blocked publish gets its slot, nothing was lost.
        drop((publisher, other));
        let mut got = Vec::new();
        while got.len() as u64 <= next {
            match sub.recv_timeout(HANG) {
                Ok(d) => got.push(Got::Event(d.seq())),
                Err(e) => panic!("{e:?} after {got:?}"),
            }
        }
        assert_eq!(blocked.join().unwrap(), next);
        assert_eq!(got, events(0..=next));
        // The blocked thread's clone was the last: the bus is closed once it returns.
        assert_eq!(drain_to_closed(&mut sub), Vec::new());
    });
}

/// A subscription whose filter holds its shard until `open` is set. The tests below set it
/// from a task on the same current-thread runtime as the future under test: a future that
/// blocked the thread instead of yielding would never let that task run, and would hang
/// (caught by the watchdog).
fn gated(open: &Arc<AtomicBool>) -> Subscription<u64> {
    let open = Arc::clone(open);
    Subscription::all().filter(move |_| {
        // Acquire: pairs with the Release store in `opens`; nothing else rides on it.
        while !open.load(Ordering::Acquire) {
            thread::sleep(Duration::from_millis(1));
        }
        true
    })
}

async fn opens(open: Arc<AtomicBool>) {
    // Release: pairs with the Acquire load in `gated`'s filter.
    open.store(true, Ordering::Release);
}

fn current_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().build().unwrap()
}

#[test]
fn flush_async_yields_to_the_task_that_lets_it_finish() {
    watchdog("SharedPublisher::flush_async on a current-thread runtime", || {
        let open = Arc::new(AtomicBool::new(false));
        let bus: Bus<u64> = Bus::builder().build().unwrap();
        let mut sub = bus.subscribe(gated(&open)).unwrap();
        let publisher = bus.shared_publisher().unwrap();
        current_thread().block_on(async {
            publisher.publish(Event::new(topic(), 1)).await.unwrap();
            let opener = tokio::spawn(opens(Arc::clone(&open)));
            // The shard is held in the filter until the opener runs: only a flush that
            // yields can finish.
            publisher.clone().flush_async().await;
            opener.await.unwrap();
        });
        assert_eq!(*sub.try_recv().unwrap().payload(), 1, "in the queue after the flush");
    });
}

#[test]
fn publish_to_async_waits_for_space_without_blocking_the_thread() {
    watchdog("SharedPublisher::publish_to_async on a current-thread runtime", || {
        let open = Arc::new(AtomicBool::new(false));
        let bus: Bus<u64> = Bus::builder().ring_capacity(2).build().unwrap();
        let mut sub = bus.subscribe(gated(&open)).unwrap();
        let publisher = bus.shared_publisher().unwrap();
        current_thread().block_on(async {
            let opener = tokio::spawn(opens(Arc::clone(&open)));
            for i in 0..8 {
                publisher.publish_to("orders.eu.created", i).await.unwrap();
            }
            // A 2-slot ring behind a held shard: the loop had to wait, and the opener ran
            // while it did.
            assert!(open.load(Ordering::Relaxed), "publish_to_async yielded");
            opener.await.unwrap();
            publisher.flush_async().await;
        });
        let got: Vec<u64> = (0..8).map(|_| *sub.try_recv().unwrap().payload()).collect();
        assert_eq!(got, (0..8).collect::<Vec<_>>());
        let err = current_thread().block_on(publisher.publish_to("orders..eu", 9)).unwrap_err();
        assert!(matches!(err, PublishToError::Topic(_, 9)), "{err:?}");
        drop(sub);
        bus.close();
        let err = current_thread().block_on(publisher.publish_to("t", 10)).unwrap_err();
        assert!(err.is_closed());
        assert_eq!(err.into_inner(), 10, "the payload comes back");
    });
}

#[test]
fn closed_yields_until_the_last_subscriber_is_dropped() {
    watchdog("SharedPublisher::closed on a current-thread runtime", || {
        let bus: Bus<u64> = Bus::builder().build().unwrap();
        let publisher = bus.shared_publisher().unwrap();
        let sub = bus.subscribe(Subscription::all()).unwrap();
        assert_eq!(publisher.subscriber_count(), 1);
        current_thread().block_on(async {
            let dropper = tokio::spawn(async move { drop(sub) });
            publisher.closed().await;
            dropper.await.unwrap();
        });
        assert_eq!(publisher.subscriber_count(), 0);
        // With none left it resolves at once.
        current_thread().block_on(publisher.clone().closed());
    });
}
