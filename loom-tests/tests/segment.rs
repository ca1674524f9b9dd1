//! Segments: events written in place by the publisher, read in place by the shard (its
//! filters and stats) and by subscribers, dropped once by whoever releases the last
//! reference, and recycled. The publisher idles after its events, so the shard seals the
//! segment it is in (see "Sealing" in `ring`); loom's `UnsafeCell` checking fails the model
//! if a payload is dropped while a receiver or the shard may still read it, and the drop
//! counts fail it on a leak or double drop.
#![cfg(loom)]

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use shardcast::{Bus, Event, RecvError, Subscription, Topic};

/// Counts its drops.
struct Tracked(Arc<AtomicUsize>, u64);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn drain(mut sub: shardcast::Subscriber<Tracked>) -> Vec<u64> {
    let mut got = Vec::new();
    loop {
        match sub.recv_blocking() {
            Ok(d) => got.push(d.payload().1),
            Err(RecvError::Closed) => return got,
            Err(RecvError::Lagged(n)) => panic!("lagged {n}"),
        }
    }
}

#[test]
fn events_are_read_in_place_and_dropped_once() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let bus: Bus<Tracked> = Bus::builder().ring_capacity(2).build().unwrap();
        let sub = bus.subscribe(Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let receiver = thread::spawn(move || drain(sub));
        for i in 0..2 {
            let event = Event::new(Topic::new("t").unwrap(), Tracked(Arc::clone(&drops), i));
            publisher.publish_blocking(event).unwrap();
        }
        drop(publisher);
        assert_eq!(receiver.join().unwrap(), [0, 1]);
        drop(bus);
        assert_eq!(drops.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn owned_delivery_outlives_the_bus() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let bus: Bus<Tracked> = Bus::builder().ring_capacity(2).build().unwrap();
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let event = Event::new(Topic::new("t").unwrap(), Tracked(Arc::clone(&drops), 7));
        publisher.publish_blocking(event).unwrap();
        drop(publisher);
        let kept = thread::spawn(move || sub.recv_blocking().unwrap().to_owned()).join().unwrap();
        drop(bus);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        assert_eq!(kept.payload().1, 7);
        drop(kept);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}

/// `OwnedDelivery::try_into_payload` races another handle's last read and drop: the
/// payload is moved out only by the last holder, after the other holder's read (the
/// Acquire of the CAS from one to zero in `SegHold::try_take`, against the Release of
/// the other's decrement; loom's `UnsafeCell` checking fails the model if it is weakened
/// to Relaxed), and is dropped exactly once either way.
#[test]
fn the_last_owned_delivery_moves_its_payload_out() {
    loom::model(|| {
        let drops = Arc::new(AtomicUsize::new(0));
        let bus: Bus<Tracked> = Bus::builder().ring_capacity(2).build().unwrap();
        let mut a = bus.subscribe(Subscription::all()).unwrap();
        let mut b = bus.subscribe(Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let event = Event::new(Topic::new("t").unwrap(), Tracked(Arc::clone(&drops), 7));
        publisher.publish_blocking(event).unwrap();
        drop(publisher);
        let mine = a.recv_blocking().unwrap().to_owned();
        let theirs = b.recv_blocking().unwrap().to_owned();
        drop((a, b));
        bus.close(); // the shard has released the segment: only the two handles hold it
        let other = thread::spawn(move || {
            assert_eq!(theirs.payload().1, 7);
            drop(theirs);
        });
        let moved = mine.try_into_payload();
        other.join().unwrap();
        match moved {
            Ok(payload) => {
                assert_eq!(payload.1, 7);
                assert_eq!(drops.load(Ordering::SeqCst), 0);
                drop(payload);
            }
            Err(mine) => drop(mine),
        }
        assert_eq!(drops.load(Ordering::SeqCst), 1);
        drop(bus);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}
