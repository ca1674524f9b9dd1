//! Promise: `Subscriber::len()` never exceeds `capacity()`, also right after a `Lagged`
//! report (when the event after the gap is held back for the next receive), under every
//! lossy policy.

mod common;

use common::{topic, watchdog};
use shardcast::{Bus, Event, Overflow, Publisher, Subscriber, Subscription, TryRecvError};

fn publish(publisher: &mut Publisher<u64>, seqs: std::ops::Range<u64>) {
    for i in seqs {
        publisher.publish_blocking(Event::new(topic(), i)).unwrap();
    }
    publisher.flush();
}

fn check(sub: &Subscriber<u64>, when: &str) {
    assert!(sub.len() <= sub.capacity(), "{when}: len {} > capacity {}", sub.len(), sub.capacity());
}

#[test]
fn len_stays_within_capacity_after_lagged() {
    watchdog("len after Lagged", || {
        // The report: capacity 2, DropNewest, len() said 3 after Lagged(1).
        let bus: Bus<u64> = Bus::builder().build().unwrap();
        let mut sub =
            bus.subscribe(Subscription::all().capacity(2).overflow(Overflow::DropNewest)).unwrap();
        let mut publisher = bus.publisher().unwrap();
        publish(&mut publisher, 0..3); // 2 is dropped
        assert_eq!(sub.len(), 2);
        assert_eq!(sub.try_recv().unwrap().seq(), 0);
        assert_eq!(sub.try_recv().unwrap().seq(), 1);
        publish(&mut publisher, 3..5);
        assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Lagged(1));
        // 3 is held back; the queue has room for one more behind it.
        assert_eq!(sub.len(), 2);
        publish(&mut publisher, 5..6);
        check(&sub, "after Lagged, queue refilled");
        assert_eq!(sub.len(), 2);
        assert_eq!(sub.try_recv().unwrap().seq(), 3);
        check(&sub, "after the held-back event");
        assert_eq!(sub.try_recv().unwrap().seq(), 4);
        assert_eq!(sub.try_recv().unwrap().seq(), 5);
        assert_eq!(sub.len(), 0);
        assert!(sub.is_empty());
    });
}

#[test]
fn len_stays_within_capacity_under_every_lossy_policy() {
    watchdog("len under load", || {
        for overflow in [Overflow::DropNewest, Overflow::DropOldest, Overflow::Disconnect] {
            for capacity in [1, 2, 5] {
                let bus: Bus<u64> = Bus::builder().ring_capacity(8).build().unwrap();
                let mut sub = bus
                    .subscribe(Subscription::all().capacity(capacity).overflow(overflow))
                    .unwrap();
                let mut publisher = bus.publisher().unwrap();
                let mut next = 0;
                for round in 0..200u64 {
                    // Publish more than fits, then receive a few: a gap every round.
                    let burst = capacity as u64 + 1 + round % 3;
                    publish(&mut publisher, next..next + burst);
                    next += burst;
                    check(&sub, &format!("{overflow:?} cap {capacity} round {round}"));
                    for _ in 0..=round % 2 {
                        let _ = sub.try_recv();
                        check(&sub, &format!("{overflow:?} cap {capacity} round {round}, recv"));
                    }
                }
            }
        }
    });
}
