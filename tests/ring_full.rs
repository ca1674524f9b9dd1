//! Promise: the ring never drops. When every slot still awaits a shard (here: a shard
//! held by a `Block` subscriber that does not read), `try_publish` says `Full` and
//! `publish_timeout` says `Timeout`, each handing the event back; every event that was
//! accepted is delivered, in order, once the subscriber reads. After the bus closes, every
//! publish method says `Closed` and hands the event back.

mod common;

use std::time::{Duration, Instant};

use common::{drain_to_closed, events, topic, watchdog};
use shardcast::{Bus, Event, Overflow, Subscription};

#[derive(Debug, PartialEq, Eq)]
struct Payload(u64, String);

fn payload(i: u64) -> Payload {
    Payload(i, format!("event {i}"))
}

#[test]
fn full_ring_refuses_without_losing_anything() {
    watchdog("full ring", || {
        let bus: Bus<Payload> = Bus::builder().ring_capacity(4).build().unwrap();
        let mut sub =
            bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
        let mut publisher = bus.publisher().unwrap();

        // try_publish: accepted until the ring is full (the shard holds at most one event
        // in the queue and one in its wait; the ring holds 4).
        let mut accepted = Vec::new();
        let mut i = 0;
        let full = loop {
            match publisher.try_publish(Event::new(topic(), payload(i))) {
                Ok(seq) => {
                    assert_eq!(seq, i);
                    accepted.push(i);
                    i += 1;
                    assert!(i < 1_000, "try_publish never reported Full");
                }
                Err(e) => break e,
            }
        };
        assert!(full.is_full(), "{full:?}");
        assert!(!full.is_closed());
        assert_eq!(format!("{full:?}"), "Full(..)");
        assert_eq!(full.to_string(), "ring full");
        let event = full.into_inner();
        assert_eq!(event.topic(), &topic());
        assert_eq!(event.into_payload(), payload(i), "Full must hand back the very event");
        assert!(accepted.len() >= 4, "the ring holds 4: only {} accepted", accepted.len());

        // publish_timeout: may still be accepted while the shard has not reached its wait;
        // then times out, not earlier than asked, with the event.
        let timeout = Duration::from_millis(30);
        let timed_out = loop {
            let started = Instant::now();
            match publisher.publish_timeout(Event::new(topic(), payload(i)), timeout) {
                Ok(seq) => {
                    assert_eq!(seq, i);
                    accepted.push(i);
                    i += 1;
                    assert!(i < 1_000, "publish_timeout never timed out");
                }
                Err(e) => {
                    assert!(started.elapsed() >= timeout, "Timeout before the timeout");
                    break e;
                }
            }
        };
        assert!(timed_out.is_timeout(), "{timed_out:?}");
        assert!(!timed_out.is_closed());
        assert_eq!(format!("{timed_out:?}"), "Timeout(..)");
        assert_eq!(timed_out.into_inner().into_payload(), payload(i));
        // The refused events took no sequence number.
        assert_eq!(publisher.next_seq(), accepted.len() as u64);
        assert_eq!(bus.published(), accepted.len() as u64);

        // The subscriber starts reading: every accepted event, in order, nothing else.
        for &expected in &accepted {
            let d = sub.recv_timeout(common::HANG).expect("an accepted event");
            assert_eq!((d.seq(), d.payload()), (expected, &payload(expected)));
        }
        assert_eq!(sub.dropped(), 0);

        // The ring drained: publishing works again and is delivered.
        let seq = publisher.publish_blocking(Event::new(topic(), payload(i))).unwrap();
        assert_eq!(seq, i);
        assert_eq!(sub.recv_timeout(common::HANG).unwrap().seq(), i);

        // After close, every publish method hands the event back as Closed.
        bus.close();
        let e = publisher.try_publish(Event::new(topic(), payload(100))).unwrap_err();
        assert!(e.is_closed() && !e.is_full(), "{e:?}");
        assert_eq!(format!("{e:?}"), "Closed(..)");
        assert_eq!(e.into_inner().into_payload(), payload(100));
        let e = publisher.publish_blocking(Event::new(topic(), payload(101))).unwrap_err();
        assert_eq!(e.into_inner().into_payload(), payload(101));
        let e = publisher
            .publish_timeout(Event::new(topic(), payload(102)), Duration::from_secs(1))
            .unwrap_err();
        assert!(e.is_closed() && !e.is_timeout(), "{e:?}");
        assert_eq!(e.into_inner().into_payload(), payload(102));
        assert_eq!(bus.published(), i + 1, "a publish after close was counted");
        assert_eq!(drain_to_closed(&mut sub), events(std::iter::empty()));
    });
}

/// A closed bus refuses publishes even while its ring is full.
#[test]
fn full_ring_then_close_is_closed_not_full() {
    watchdog("full then closed", || {
        let bus: Bus<Payload> = Bus::builder().ring_capacity(2).build().unwrap();
        let mut sub =
            bus.subscribe(Subscription::all().capacity(1).overflow(Overflow::Block)).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let mut i = 0;
        while publisher.try_publish(Event::new(topic(), payload(i))).is_ok() {
            i += 1;
            assert!(i < 1_000, "try_publish never reported Full");
        }
        bus.close();
        let e = publisher.try_publish(Event::new(topic(), payload(7))).unwrap_err();
        assert!(e.is_closed(), "{e:?}");
        assert_eq!(e.into_inner().into_payload(), payload(7));
        let e = publisher
            .publish_timeout(Event::new(topic(), payload(8)), Duration::from_millis(1))
            .unwrap_err();
        assert!(e.is_closed(), "{e:?}");
        let e = publisher.publish_blocking(Event::new(topic(), payload(9))).unwrap_err();
        assert_eq!(e.0.into_payload(), payload(9));
        // What the shard had delivered before close is still there; the rest, held up in
        // the ring behind the stuck shard, was dropped for this subscriber and reported.
        assert!(i >= 2, "the ring holds 2: only {i} accepted");
        let got = drain_to_closed(&mut sub);
        assert_eq!(got, vec![common::Got::Event(0), common::Got::Lagged(i - 1)]);
        assert_eq!(sub.dropped(), i - 1);
    });
}

/// Publishing with no subscribers is a cheap no-op, never a block: the shards consume the
/// ring even when nobody listens.
#[test]
fn publishing_with_no_subscribers_never_blocks() {
    for k in [1, 3] {
        watchdog("publish with nobody subscribed", move || {
            let bus: Bus<u64> = Bus::builder().ring_capacity(4).dispatchers(k).build().unwrap();
            let mut publisher = bus.publisher().unwrap();
            // Far more than the ring holds; few enough to stay quick on a loaded machine,
            // where every ring wrap can cost a shard wake-up.
            let n = common::scaled(500);
            for i in 0..n {
                assert_eq!(publisher.publish_blocking(Event::new(topic(), i)).unwrap(), i);
            }
            assert_eq!(bus.published(), n);
        });
    }
}
