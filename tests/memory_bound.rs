//! Promise (README, "Memory is bounded and stated"): a subscriber pins at most
//! `SEGMENT_LEN × capacity` events, also when its filter wants one event in 64 (each queued
//! event then keeps its whole segment); dropping it releases everything; an idle publisher
//! keeps nothing alive.

mod common;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::{topic, watchdog};
use shardcast::{Bus, Event, Overflow, Subscription, SEGMENT_LEN};

/// Counts the payloads alive.
struct Live(Arc<AtomicI64>, u64);

impl Live {
    fn new(live: &Arc<AtomicI64>, n: u64) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        Live(Arc::clone(live), n)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits (a generous deadline, not a timing claim) until `live` is at most `bound`.
fn settles_to(live: &AtomicI64, bound: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    while live.load(Ordering::SeqCst) > bound && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
    live.load(Ordering::SeqCst)
}

#[test]
fn a_sparse_stalled_subscriber_pins_at_most_segment_len_times_its_capacity() {
    watchdog("memory bound", || {
        for (capacity, overflow) in [(4, Overflow::DropNewest), (8, Overflow::DropOldest)] {
            let live = Arc::new(AtomicI64::new(0));
            let bus: Bus<Live> = Bus::builder().ring_capacity(256).build().unwrap();
            // Wants 1 event in 64, and never receives.
            let sparse = bus
                .subscribe(
                    Subscription::all()
                        .capacity(capacity)
                        .overflow(overflow)
                        .filter(|e: &Event<Live>| e.payload().1.is_multiple_of(64)),
                )
                .unwrap();
            let mut publisher = bus.publisher().unwrap();
            let events = 64 * capacity as u64 * 8;
            for n in 0..events {
                publisher.publish_blocking(Event::new(topic(), Live::new(&live, n))).unwrap();
            }
            publisher.flush();
            // The publisher idles: the dispatcher seals its segment; what stays alive is
            // what the stalled subscriber's queue pins.
            let bound = (SEGMENT_LEN * capacity) as i64;
            let alive = settles_to(&live, bound);
            assert!(
                alive <= bound,
                "{overflow:?} capacity {capacity}: {alive} events alive, bound {bound}"
            );
            assert!(alive >= capacity as i64, "the queued events are alive: {alive}");
            assert_eq!(sparse.len(), capacity);
            drop(sparse);
            assert_eq!(settles_to(&live, 0), 0, "{overflow:?}: a dropped subscriber keeps events");
            drop(publisher);
            drop(bus);
            assert_eq!(live.load(Ordering::SeqCst), 0);
        }
    });
}
