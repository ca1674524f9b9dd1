//! Promise: a subscriber that never receives only hurts itself. Under `DropNewest`,
//! `DropOldest` and `Disconnect` its full queue neither blocks the publisher nor keeps
//! other subscribers from receiving everything; its own losses follow its policy exactly,
//! are counted by `dropped()` and reported as `Lagged(n)` at the gap, before the next
//! event (or before `Closed` when the losses are at the end).

mod common;

use std::thread;

use common::{drain_to_closed, events, topic, watchdog, Got};
use shardcast::{Bus, Event, Overflow, Subscriber, Subscription, TryRecvError};

const RING: usize = 64;
const N: u64 = 20_000;
/// Not a power of two: a queue holds exactly what the user asked for.
const STUCK_CAPACITY: usize = 5;

struct Outcome {
    /// What the fast subscriber received (all from one thread, while publishing).
    fast: Vec<Got>,
    /// What the stuck subscriber found once the bus had drained and closed.
    stuck: Vec<Got>,
    stuck_dropped: u64,
    stuck_len_after_close: usize,
    stuck_capacity: usize,
    published: u64,
}

/// One stuck subscriber with `policy` and a tiny queue, one fast reader (lossless `Block`,
/// reading on its own thread). Publishes `N` events through a ring of
/// `RING`, closes the publisher, waits for the bus to drain (the fast reader's `Closed`,
/// then `Bus::close`, which joins the dispatchers), and only then drains the stuck
/// subscriber.
fn run(policy: Overflow, dispatchers: usize) -> Outcome {
    watchdog("stuck subscriber scenario", move || {
        let bus: Bus<u64> =
            Bus::builder().ring_capacity(RING).dispatchers(dispatchers).build().unwrap();
        let mut stuck = bus
            .subscribe(Subscription::all().capacity(STUCK_CAPACITY).overflow(policy).name("stuck"))
            .unwrap();
        let mut fast =
            bus.subscribe(Subscription::all().capacity(256).overflow(Overflow::Block)).unwrap();
        let reader = thread::spawn(move || {
            let got = drain_to_closed(&mut fast);
            assert_eq!(fast.dropped(), 0);
            got
        });

        let mut publisher = bus.publisher().unwrap();
        for i in 0..N {
            assert_eq!(publisher.publish_blocking(Event::new(topic(), i)).unwrap(), i);
        }
        publisher.close();
        // The fast reader sees Closed once its shard has drained the ring; then
        // `Bus::close` joins every shard, so the stuck subscriber's queue is final. (Not
        // the other way round: `Bus::close` stops shards waiting on `Block` subscribers.)
        let fast = reader.join().expect("fast reader");
        bus.close();

        let stuck_len_after_close = stuck.len();
        let stuck_dropped = stuck.dropped();
        let stuck_capacity = stuck.capacity();
        let got = drain_to_closed(&mut stuck);
        // `Closed` is final, for every receive method.
        assert_eq!(stuck.try_recv().unwrap_err(), TryRecvError::Closed);
        assert_eq!(stuck.dropped(), stuck_dropped, "dropped() changed after close");
        Outcome {
            fast,
            stuck: got,
            stuck_dropped,
            stuck_len_after_close,
            stuck_capacity,
            published: bus.published(),
        }
    })
}

fn delivered(got: &[Got]) -> u64 {
    got.iter().filter(|g| matches!(g, Got::Event(_))).count() as u64
}

fn lagged(got: &[Got]) -> u64 {
    got.iter().map(|g| if let Got::Lagged(n) = g { *n } else { 0 }).sum()
}

fn check_common(o: &Outcome, what: &str) {
    assert_eq!(o.published, N, "{what}: the publisher did not publish everything");
    assert_eq!(o.fast.len() as u64, N, "{what}: the fast subscriber lost or gained events");
    assert!(o.fast == events(0..N), "{what}: the fast subscriber's events are not 0..N in order");
    assert_eq!(o.stuck_capacity, STUCK_CAPACITY, "{what}: capacity()");
    assert_eq!(
        o.stuck_len_after_close, STUCK_CAPACITY,
        "{what}: a full queue holds exactly capacity"
    );
}

#[test]
fn drop_newest_keeps_the_first_capacity_events() {
    for k in [1, 2] {
        let what = format!("DropNewest, K={k}");
        let o = run(Overflow::DropNewest, k);
        check_common(&o, &what);
        let cap = STUCK_CAPACITY as u64;
        let mut expected = events(0..cap);
        expected.push(Got::Lagged(N - cap));
        assert_eq!(o.stuck, expected, "{what}");
        assert_eq!(o.stuck_dropped, N - cap, "{what}: dropped()");
        assert_eq!(delivered(&o.stuck) + o.stuck_dropped, N, "{what}: delivered + dropped");
        assert_eq!(lagged(&o.stuck), o.stuck_dropped, "{what}: Lagged sum vs dropped()");
    }
}

#[test]
fn drop_oldest_keeps_the_last_capacity_events() {
    for k in [1, 2] {
        let what = format!("DropOldest, K={k}");
        let o = run(Overflow::DropOldest, k);
        check_common(&o, &what);
        let cap = STUCK_CAPACITY as u64;
        let mut expected = vec![Got::Lagged(N - cap)];
        expected.extend(events(N - cap..N));
        assert_eq!(o.stuck, expected, "{what}");
        assert_eq!(o.stuck_dropped, N - cap, "{what}: dropped()");
        assert_eq!(delivered(&o.stuck) + o.stuck_dropped, N, "{what}: delivered + dropped");
        assert_eq!(lagged(&o.stuck), o.stuck_dropped, "{what}: Lagged sum vs dropped()");
    }
}

#[test]
fn disconnect_drains_then_lagged_1_then_closed() {
    for k in [1, 2] {
        let what = format!("Disconnect, K={k}");
        let o = run(Overflow::Disconnect, k);
        check_common(&o, &what);
        let cap = STUCK_CAPACITY as u64;
        let mut expected = events(0..cap);
        expected.push(Got::Lagged(1));
        assert_eq!(o.stuck, expected, "{what}");
        // The one event that overflowed is lost and counted; the subscription then ended,
        // so later events were never matched for it.
        assert_eq!(o.stuck_dropped, 1, "{what}: dropped()");
    }
}

/// `Disconnect` ends the subscription while the bus is still open: the subscriber sees
/// its queued events, `Lagged(1)`, then `Closed`, although the publisher goes on.
#[test]
fn disconnect_closes_only_that_subscriber_while_the_bus_runs() {
    let (got, other, dropped) = watchdog("disconnect while open", || {
        let bus: Bus<u64> = Bus::builder().ring_capacity(8).build().unwrap();
        let mut victim =
            bus.subscribe(Subscription::all().capacity(3).overflow(Overflow::Disconnect)).unwrap();
        let mut other = bus.subscribe(Subscription::all().capacity(1024)).unwrap();
        let mut publisher = bus.publisher().unwrap();
        for i in 0..100 {
            publisher.publish_blocking(Event::new(topic(), i)).unwrap();
        }
        // The publisher is still open: the victim's Closed comes from its own overflow.
        let got = drain_to_closed(&mut victim);
        assert!(!bus.is_closed());
        for i in 100..200 {
            publisher.publish_blocking(Event::new(topic(), i)).unwrap();
        }
        assert_eq!(victim.try_recv().unwrap_err(), TryRecvError::Closed);
        drop(publisher);
        (got, drain_to_closed(&mut other), victim.dropped())
    });
    assert_eq!(got, vec![Got::Event(0), Got::Event(1), Got::Event(2), Got::Lagged(1)]);
    assert_eq!(dropped, 1);
    assert_eq!(other, events(0..200));
}

/// Losses in the middle: the gap is reported once, at its position, and the subscription
/// goes on with the next event (Lagged is never fatal).
#[test]
fn lagged_is_reported_at_the_gap_and_the_subscription_continues() {
    let got = watchdog("lag in the middle", || {
        let bus: Bus<u64> = Bus::builder().ring_capacity(8).build().unwrap();
        let mut sub =
            bus.subscribe(Subscription::all().capacity(4).overflow(Overflow::DropNewest)).unwrap();
        let mut publisher = bus.publisher().unwrap();
        // 10 events into a queue of 4 nobody reads: 0..4 kept, 4..10 lost.
        for i in 0..10 {
            publisher.publish_blocking(Event::new(topic(), i)).unwrap();
        }
        let mut got = Vec::new();
        // Wait until the shard has handled all 10 (4 queued, 6 counted as dropped).
        while sub.dropped() < 6 {
            thread::yield_now();
        }
        for _ in 0..4 {
            got.push(Got::Event(sub.recv_timeout(common::HANG).unwrap().seq()));
        }
        // Room again: the next events are queued behind the gap.
        for i in 10..13 {
            publisher.publish_blocking(Event::new(topic(), i)).unwrap();
        }
        drop(publisher);
        got.extend(drain_to_closed(&mut sub));
        assert_eq!(sub.dropped(), 6);
        got
    });
    let mut expected = events(0..4);
    expected.push(Got::Lagged(6));
    expected.extend(events(10..13));
    assert_eq!(got, expected);
}

/// Subscribers whose queues overflow do not hold up the publisher at all: with only lossy
/// stuck subscribers, publishing far more than ring + queues completes.
#[test]
fn stuck_lossy_subscribers_never_block_the_publisher() {
    for k in [1, 2, 4] {
        let published = watchdog("publisher with stuck subscribers", move || {
            let bus: Bus<u64> = Bus::builder().ring_capacity(8).dispatchers(k).build().unwrap();
            let subs: Vec<Subscriber<u64>> = [
                Overflow::DropNewest,
                Overflow::DropOldest,
                Overflow::Disconnect,
                Overflow::DropNewest,
            ]
            .into_iter()
            .map(|o| bus.subscribe(Subscription::all().capacity(1).overflow(o)).unwrap())
            .collect();
            let mut publisher = bus.publisher().unwrap();
            for i in 0..2_000 {
                publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            }
            drop(publisher);
            bus.close();
            assert_eq!(subs[0].dropped(), 1_999);
            assert_eq!(subs[1].dropped(), 1_999);
            assert_eq!(subs[2].dropped(), 1);
            bus.published()
        });
        assert_eq!(published, 2_000, "K={k}");
    }
}

/// Checks a lossy subscriber's trace against the gap accounting: events strictly
/// increasing, each `Lagged(n)` exactly the gap before the next event (or before the end),
/// never two reports in a row. Returns (events received, events reported lost).
fn check_gap_accounting(trace: &[Got], published: u64, what: &str) -> (u64, u64) {
    let (mut next, mut received, mut lost) = (0u64, 0u64, 0u64);
    let mut pending_lag: Option<u64> = None;
    for (at, got) in trace.iter().enumerate() {
        match *got {
            Got::Lagged(n) => {
                assert!(n > 0, "{what}: Lagged(0) at {at}");
                assert!(pending_lag.is_none(), "{what}: two Lagged in a row at {at}");
                pending_lag = Some(n);
                lost += n;
            }
            Got::Event(seq) => {
                let gap = pending_lag.take().unwrap_or(0);
                assert_eq!(seq, next + gap, "{what}: at {at}, Lagged({gap}) then seq {seq}");
                next = seq + 1;
                received += 1;
            }
        }
    }
    let gap = pending_lag.unwrap_or(0);
    assert_eq!(next + gap, published, "{what}: the trace ends short of {published}");
    (received, lost)
}

/// A lossy subscriber that reads while the publisher runs (and now and then falls
/// behind): whatever it receives is in order, every loss is reported exactly at its gap,
/// and received + reported lost == dropped() + received == published.
#[test]
fn a_lagging_reader_accounts_for_every_event() {
    const N: u64 = 20_000;
    for policy in [Overflow::DropNewest, Overflow::DropOldest] {
        for k in [1, 2] {
            let what = format!("{policy:?}, K={k}");
            let (trace, dropped) = watchdog("lagging reader", move || {
                let bus: Bus<u64> =
                    Bus::builder().ring_capacity(64).dispatchers(k).build().unwrap();
                let mut sub =
                    bus.subscribe(Subscription::all().capacity(4).overflow(policy)).unwrap();
                let reader = thread::spawn(move || {
                    let mut trace = Vec::new();
                    let mut i = 0u64;
                    loop {
                        i += 1;
                        if i.is_multiple_of(1_000) {
                            thread::sleep(std::time::Duration::from_millis(1)); // fall behind
                        }
                        match sub.recv_timeout(common::HANG) {
                            Ok(d) => trace.push(Got::Event(d.seq())),
                            Err(shardcast::RecvTimeoutError::Lagged(n)) => {
                                trace.push(Got::Lagged(n))
                            }
                            Err(shardcast::RecvTimeoutError::Closed) => break,
                            Err(shardcast::RecvTimeoutError::Timeout) => panic!("reader hung"),
                        }
                    }
                    (trace, sub.dropped())
                });
                let mut publisher = bus.publisher().unwrap();
                for i in 0..N {
                    publisher.publish_blocking(Event::new(topic(), i)).unwrap();
                }
                drop(publisher);
                reader.join().expect("reader")
            });
            let (received, lost) = check_gap_accounting(&trace, N, &what);
            assert_eq!(lost, dropped, "{what}: Lagged total vs dropped()");
            assert_eq!(received + dropped, N, "{what}: delivered + dropped");
        }
    }
}

/// `Disconnect` with a reader that falls behind: a gap-free run from the first event,
/// `Lagged(1)`, then `Closed`, and exactly one event counted as dropped.
#[test]
fn a_lagging_disconnect_reader_gets_a_prefix_then_lagged_1() {
    const N: u64 = 5_000;
    for k in [1, 2] {
        let (trace, dropped) = watchdog("lagging Disconnect reader", move || {
            let bus: Bus<u64> = Bus::builder().ring_capacity(64).dispatchers(k).build().unwrap();
            let mut sub = bus
                .subscribe(Subscription::all().capacity(4).overflow(Overflow::Disconnect))
                .unwrap();
            let reader = thread::spawn(move || {
                // Slow to start: the 4-slot queue almost surely overflows meanwhile.
                thread::sleep(std::time::Duration::from_millis(2));
                let trace = drain_to_closed(&mut sub);
                (trace, sub.dropped())
            });
            let mut publisher = bus.publisher().unwrap();
            for i in 0..N {
                publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            }
            drop(publisher);
            reader.join().expect("reader")
        });
        match trace.split_last() {
            Some((Got::Lagged(1), events_part)) => {
                assert!(events_part == events(0..events_part.len() as u64), "K={k}: {trace:?}");
                assert_eq!(dropped, 1, "K={k}");
            }
            // The reader kept up with every event: no overflow, no loss.
            _ => {
                assert_eq!(trace, events(0..N), "K={k}");
                assert_eq!(dropped, 0, "K={k}");
            }
        }
    }
}
