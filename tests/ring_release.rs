//! The ring keeps an event only until every shard has dispatched it: once its subscribers
//! have dropped their deliveries, the payload is dropped, even if the publisher stays idle
//! and never overwrites the slot.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use shardcast::{Bus, Event, Subscription, Topic};

/// Counts its drops.
struct Tracked(Arc<AtomicUsize>);

impl Drop for Tracked {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Waits (up to a generous deadline, not a timing claim) for the shards to finish their
/// batch, then reports the drop count.
fn drops_after_settling(drops: &AtomicUsize, want: usize) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while drops.load(Ordering::SeqCst) < want && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    drops.load(Ordering::SeqCst)
}

#[test]
fn a_delivered_event_is_dropped_with_its_last_delivery_while_the_publisher_idles() {
    for shards in [1, 3] {
        let drops = Arc::new(AtomicUsize::new(0));
        let bus: Bus<Tracked> = Bus::builder().dispatchers(shards).build().unwrap();
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let topic = Topic::new("orders.created").unwrap();
        publisher.publish_blocking(Event::new(topic, Tracked(Arc::clone(&drops)))).unwrap();

        let delivery = sub.recv_timeout(Duration::from_secs(10)).expect("delivered");
        assert_eq!(drops.load(Ordering::SeqCst), 0, "dropped while a subscriber holds it");
        drop(delivery);
        // The bus and the publisher are alive and idle: only the ring could still hold it.
        assert_eq!(
            drops_after_settling(&drops, 1),
            1,
            "{shards} shard(s): the ring kept a dispatched event alive"
        );
        drop(publisher);
        drop(bus);
        assert_eq!(drops.load(Ordering::SeqCst), 1, "dropped twice");
    }
}

#[test]
fn an_event_nobody_subscribed_to_is_dropped_once_the_shards_pass_it() {
    for shards in [1, 2] {
        let drops = Arc::new(AtomicUsize::new(0));
        let bus: Bus<Tracked> = Bus::builder().dispatchers(shards).build().unwrap();
        let mut publisher = bus.publisher().unwrap();
        for _ in 0..10 {
            let topic = Topic::new("nobody.listens").unwrap();
            publisher.publish_blocking(Event::new(topic, Tracked(Arc::clone(&drops)))).unwrap();
        }
        assert_eq!(
            drops_after_settling(&drops, 10),
            10,
            "{shards} shard(s): the ring kept dispatched events alive"
        );
        drop(publisher);
        drop(bus);
        assert_eq!(drops.load(Ordering::SeqCst), 10, "dropped twice");
    }
}
