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
        match sub.recv() {
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
            publisher.publish(event).unwrap();
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
        publisher.publish(event).unwrap();
        drop(publisher);
        let kept = thread::spawn(move || sub.recv().unwrap().to_owned()).join().unwrap();
        drop(bus);
        assert_eq!(drops.load(Ordering::SeqCst), 0);
        assert_eq!(kept.payload().1, 7);
        drop(kept);
        assert_eq!(drops.load(Ordering::SeqCst), 1);
    });
}
