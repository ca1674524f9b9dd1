//! Promise: payloads are shared, never copied. `E` needs neither `Clone` nor `Debug`;
//! every subscriber's `Delivery` of one event points at the same event and payload; a
//! `Delivery` clone is another handle to it; the payload lives until the last handle is
//! gone, and is dropped exactly once.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{topic, watchdog, HANG};
use shardcast::{Bus, Delivery, Event, OwnedDelivery, Subscriber, Subscription, SEGMENT_LEN};

/// Neither `Clone` nor `Debug`; records its drop.
struct Payload {
    value: u64,
    drops: Arc<AtomicUsize>,
}

impl Drop for Payload {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

const EVENTS: u64 = common::scaled(200);
const SUBSCRIBERS: usize = 5;

#[test]
fn every_subscriber_gets_the_same_allocation() {
    for k in [1, 2, 3] {
        watchdog("shared payloads", move || {
            let drops = Arc::new(AtomicUsize::new(0));
            let bus: Bus<Payload> =
                Bus::builder().ring_capacity(16).dispatchers(k).build().unwrap();
            let mut subs: Vec<Subscriber<Payload>> = (0..SUBSCRIBERS)
                .map(|_| bus.subscribe(Subscription::all().capacity(EVENTS as usize)).unwrap())
                .collect();
            let shards: std::collections::HashSet<usize> = subs.iter().map(|s| s.shard()).collect();
            assert_eq!(shards.len(), k.min(SUBSCRIBERS), "subscribers not spread over shards");

            let mut publisher = bus.publisher().unwrap();
            for value in 0..EVENTS {
                let event = Event::new(topic(), Payload { value, drops: Arc::clone(&drops) });
                assert_eq!(event.seq(), 0);
                assert!(event.published_at().is_none());
                publisher.publish_blocking(event).unwrap();
            }
            drop(publisher);

            let received: Vec<Vec<OwnedDelivery<Payload>>> = subs
                .iter_mut()
                .map(|sub| {
                    (0..EVENTS).map(|_| sub.recv_timeout(HANG).unwrap().to_owned()).collect()
                })
                .collect();
            assert_eq!(drops.load(Ordering::SeqCst), 0, "a payload was dropped while delivered");
            for seq in 0..EVENTS as usize {
                let first = &received[0][seq];
                assert_eq!((first.seq(), first.payload().value), (seq as u64, seq as u64));
                assert_eq!(first.topic(), &topic());
                assert!(first.published_at().is_some());
                for (s, deliveries) in received.iter().enumerate().skip(1) {
                    let other = &deliveries[seq];
                    assert!(Delivery::ptr_eq(first, other), "K={k}: seq {seq}, subscriber {s}");
                    assert!(std::ptr::eq(first.payload(), other.payload()));
                    assert_eq!(first.published_at(), other.published_at());
                }
                if seq > 0 {
                    assert!(!Delivery::ptr_eq(first, &received[0][seq - 1]));
                }
            }

            // Clones are handles, not copies.
            let (some, other) = (EVENTS as usize / 4, EVENTS as usize / 2);
            let original = &received[0][some];
            let clones: Vec<OwnedDelivery<Payload>> = (0..1000).map(|_| original.clone()).collect();
            for clone in &clones {
                assert!(Delivery::ptr_eq(original, clone));
                assert!(std::ptr::eq(original.payload(), clone.payload()));
                assert_eq!(clone.seq(), some as u64);
            }
            drop(clones);
            assert_eq!(drops.load(Ordering::SeqCst), 0);

            // Keep one clone, drop everything else: only that payload, and the others of
            // its segment (an owned delivery keeps its segment), survive.
            let kept = received[2][other].clone();
            drop(received);
            drop(subs);
            drop(bus);
            let dropped = drops.load(Ordering::SeqCst);
            assert!(
                (EVENTS as usize).saturating_sub(SEGMENT_LEN) <= dropped
                    && dropped < EVENTS as usize,
                "K={k}: {dropped} of {EVENTS} dropped while one owned delivery is kept"
            );
            assert_eq!(kept.payload().value, other as u64);
            drop(kept);
            assert_eq!(drops.load(Ordering::SeqCst), EVENTS as usize, "dropped more than once?");
        });
    }
}

/// A payload type that is neither `Clone` nor `Debug` (nor `Default`) works with every
/// API, including `Debug` of the bus handles.
#[test]
fn payload_needs_no_clone_or_debug() {
    struct Opaque(#[allow(dead_code)] Box<[u8]>);
    let bus: Bus<Opaque> = Bus::builder().build().unwrap();
    let mut sub = bus.subscribe(Subscription::all()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    publisher
        .publish_blocking(Event::new(topic(), Opaque(vec![1, 2, 3].into_boxed_slice())))
        .unwrap();
    let d = sub.recv_timeout(HANG).unwrap();
    assert_eq!(d.payload().0.as_ref(), &[1, 2, 3]);
    drop(d);
    // Handles are Debug whatever the payload.
    let _ = format!("{bus:?} {sub:?} {publisher:?}");
}

#[test]
fn the_last_handle_on_a_segment_moves_its_payload_out() {
    watchdog("try_into_payload", || {
        let drops = Arc::new(AtomicUsize::new(0));
        let bus: Bus<Payload> = Bus::builder().dispatchers(2).build().unwrap();
        let mut subs: Vec<Subscriber<Payload>> =
            (0..3).map(|_| bus.subscribe(Subscription::all().capacity(256)).unwrap()).collect();
        let mut publisher = bus.publisher().unwrap();
        // One batch: runs of whole segments (an idle shard cannot end one early), so three
        // segments, the last one partly full.
        let events = 2 * SEGMENT_LEN as u64 + 3;
        let mut batch: Vec<_> = (0..events)
            .map(|value| Event::new(topic(), Payload { value, drops: Arc::clone(&drops) }))
            .collect();
        publisher.publish_batch_blocking(&mut batch).unwrap();
        drop(publisher);
        let mut owned: Vec<OwnedDelivery<Payload>> = Vec::new();
        for sub in &mut subs {
            while let Ok(d) = sub.recv_blocking() {
                owned.push(d.to_owned());
            }
        }
        // While the subscribers live, their queue entries hold segments too: every
        // attempt hands the delivery back, unchanged.
        let first = owned.pop().unwrap();
        let value = first.payload().value;
        let first = first.try_into_payload().map(|_| ()).expect_err("a subscriber still holds it");
        assert_eq!(first.payload().value, value);
        owned.push(first);
        drop(subs);
        bus.close();
        // Now only the owned deliveries hold the segments: of each segment's handles, the
        // last one tried gets the payload; every other attempt hands back.
        let mut moved_out = Vec::new();
        while let Some(d) = owned.pop() {
            match d.try_into_payload() {
                Ok(payload) => moved_out.push(payload),
                Err(d) => drop(d),
            }
        }
        let mut values: Vec<u64> = moved_out.iter().map(|p| p.value).collect();
        values.sort_unstable();
        // The last handle of each segment is the first subscriber's delivery of its
        // first event (the vector is popped from its end).
        assert_eq!(values, [0, SEGMENT_LEN as u64, 2 * SEGMENT_LEN as u64]);
        // Every payload is dropped exactly once: the other ones with their segment, the
        // moved ones by their new owner.
        assert_eq!(drops.load(Ordering::SeqCst), events as usize - 3);
        drop(moved_out);
        assert_eq!(drops.load(Ordering::SeqCst), events as usize);
        drop(bus);
        assert_eq!(drops.load(Ordering::SeqCst), events as usize);
    });
}
