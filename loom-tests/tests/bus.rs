//! The whole bus with one dispatcher thread: subscribe racing a dispatch batch, and close
//! racing publish and receive.
#![cfg(loom)]

use loom::sync::atomic::{AtomicU64, Ordering};
use loom::sync::Arc;
use loom::thread;
use shardcast::{Bus, Event, RecvError, Subscription, Topic};

fn topic() -> Topic {
    Topic::new("t").unwrap()
}

#[test]
fn subscribe_races_dispatch() {
    // The publisher publishes 2 events while another thread subscribes. The subscriber
    // receives no event published before its start, and every event published after
    // `subscribe` returned (the publisher learns that through `subscribed`).
    loom::model(|| {
        let bus: Bus<u64> = Bus::builder().ring_capacity(2).build().unwrap();
        let mut publisher = bus.publisher().unwrap();
        let subscribed = Arc::new(AtomicU64::new(0));
        let subscriber = {
            let bus = bus.clone();
            let subscribed = Arc::clone(&subscribed);
            thread::spawn(move || {
                let sub = bus.subscribe(Subscription::all()).unwrap();
                // Release: pairs with the publisher's Acquire load.
                subscribed.store(1, Ordering::Release);
                sub
            })
        };
        let mut must_see = Vec::new();
        for i in 0..2u64 {
            let after = subscribed.load(Ordering::Acquire) == 1;
            let seq = publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            if after {
                must_see.push(seq);
            }
        }
        let mut sub = subscriber.join().unwrap();
        drop(publisher);
        let mut got = Vec::new();
        loop {
            match sub.recv_blocking() {
                Ok(d) => got.push(d.seq()),
                Err(RecvError::Closed) => break,
                Err(RecvError::Lagged(n)) => panic!("lagged {n}"),
            }
        }
        assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "gap or disorder: {got:?}");
        for seq in must_see {
            assert!(got.contains(&seq), "missed {seq}: got {got:?}");
        }
    });
}

#[test]
fn close_races_publish_and_recv() {
    // `Bus::close` from one thread while the publisher publishes and a subscriber receives:
    // every event whose publish succeeded is received, in order; everyone ends `Closed`.
    loom::model(|| {
        let bus: Bus<u64> = Bus::builder().ring_capacity(2).build().unwrap();
        let mut sub = bus.subscribe(Subscription::all()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let closer = {
            let bus = bus.clone();
            thread::spawn(move || bus.close())
        };
        let mut published = Vec::new();
        for i in 0..2u64 {
            if let Ok(seq) = publisher.publish_blocking(Event::new(topic(), i)) {
                published.push(seq);
            }
        }
        let mut got = Vec::new();
        loop {
            match sub.recv_blocking() {
                Ok(d) => got.push(d.seq()),
                Err(RecvError::Closed) => break,
                Err(RecvError::Lagged(n)) => panic!("lagged {n}"),
            }
        }
        closer.join().unwrap();
        assert_eq!(got, published);
        assert!(bus.subscribe(Subscription::all()).is_err());
    });
}

#[test]
fn resubscribe_races_route_cache() {
    // A pattern subscriber is dropped and another subscribes while the shard dispatches
    // (and caches the topic's subscribers). The cache is tied to the list snapshot's
    // generation, so it can neither deliver to the removed subscriber's slot in a newer
    // list nor miss the new one: the new subscriber gets every event published after its
    // subscribe returned, in order.
    loom::model(|| {
        let bus: Bus<u64> = Bus::builder().ring_capacity(2).build().unwrap();
        let old = bus.subscribe(Subscription::to("t").unwrap()).unwrap();
        let mut publisher = bus.publisher().unwrap();
        let subscribed = Arc::new(AtomicU64::new(0));
        let resubscriber = {
            let bus = bus.clone();
            let subscribed = Arc::clone(&subscribed);
            thread::spawn(move || {
                drop(old);
                let sub = bus.subscribe(Subscription::to("t").unwrap()).unwrap();
                // Release: pairs with the publisher's Acquire load.
                subscribed.store(1, Ordering::Release);
                sub
            })
        };
        let mut must_see = Vec::new();
        for i in 0..2u64 {
            let after = subscribed.load(Ordering::Acquire) == 1;
            let seq = publisher.publish_blocking(Event::new(topic(), i)).unwrap();
            if after {
                must_see.push(seq);
            }
        }
        let mut sub = resubscriber.join().unwrap();
        drop(publisher);
        let mut got = Vec::new();
        while let Ok(d) = sub.recv_blocking() {
            got.push(d.seq());
        }
        assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "gap or disorder: {got:?}");
        for seq in must_see {
            assert!(got.contains(&seq), "missed {seq}: got {got:?}");
        }
        assert_eq!(bus.subscriber_count(), 1);
    });
}
