//! `recv_many` / `try_recv_many` hand out whole runs in order, stop at a gap and leave its
//! `Lagged` to the next receive; `into_stream` yields owned deliveries, lag as an item, and
//! ends at `Closed`.

mod common;

use common::{topic, HANG};
use futures_util::StreamExt;
use shardcast::{Bus, Event, Overflow, Publisher, RecvError, Subscription, TryRecvError};

fn publish(publisher: &mut Publisher<u64>, values: std::ops::Range<u64>) {
    for v in values {
        publisher.publish_blocking(Event::new(topic(), v)).unwrap();
    }
    publisher.flush();
}

#[test]
fn recv_many_hands_out_runs_in_order_up_to_max() {
    let bus: Bus<u64> = Bus::builder().build().unwrap();
    let mut sub = bus.subscribe(Subscription::all().capacity(1000)).unwrap();
    let mut publisher = bus.publisher().unwrap();
    assert_eq!(sub.try_recv_many(8, |_| panic!("nothing is queued")), Err(TryRecvError::Empty));
    publish(&mut publisher, 0..100);
    assert_eq!(sub.try_recv_many(0, |_| panic!("max is 0")), Ok(0));
    let mut got = Vec::new();
    assert_eq!(sub.recv_many_blocking(30, |d| got.push((d.seq(), *d.payload()))), Ok(30));
    while got.len() < 100 {
        let n = sub.try_recv_many(7, |d| got.push((d.seq(), *d.payload()))).unwrap();
        assert!((1..=7).contains(&n));
    }
    assert!(got.iter().enumerate().all(|(i, &(seq, v))| seq == i as u64 && v == i as u64));
    drop(publisher);
    assert_eq!(sub.recv_many_blocking(8, |_| panic!("closed")), Err(RecvError::Closed));
}

#[test]
fn recv_many_stops_at_a_gap_and_the_next_receive_reports_it() {
    let bus: Bus<u64> = Bus::builder().build().unwrap();
    let mut sub =
        bus.subscribe(Subscription::all().capacity(2).overflow(Overflow::DropNewest)).unwrap();
    let mut publisher = bus.publisher().unwrap();
    publish(&mut publisher, 0..3); // 2 is dropped
    assert_eq!(*sub.try_recv().unwrap().payload(), 0);
    publish(&mut publisher, 3..4); // queue: 1, (gap: 2), 3
    let mut got = Vec::new();
    assert_eq!(sub.recv_many_blocking(10, |d| got.push(*d.payload())), Ok(1));
    assert_eq!(got, [1]);
    assert_eq!(sub.try_recv().unwrap_err(), TryRecvError::Lagged(1));
    assert_eq!(*sub.try_recv().unwrap().payload(), 3);
    assert_eq!(sub.dropped(), 1);
}

#[tokio::test]
async fn the_stream_yields_owned_deliveries_lag_as_an_item_and_ends_at_closed() {
    let bus: Bus<u64> = Bus::builder().build().unwrap();
    let sub =
        bus.subscribe(Subscription::all().capacity(2).overflow(Overflow::DropNewest)).unwrap();
    let mut publisher = bus.publisher().unwrap();
    for v in 0..5 {
        publisher.publish(Event::new(topic(), v)).await.unwrap();
    }
    publisher.flush_async().await; // 2, 3, 4 are dropped
    publisher.close();
    let items: Vec<Result<u64, RecvError>> =
        sub.into_stream().map(|item| item.map(|d| *d.payload())).collect().await;
    assert_eq!(items, [Ok(0), Ok(1), Err(RecvError::Lagged(3))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_works_in_select_and_is_woken() {
    let bus: Bus<u64> = Bus::builder().build().unwrap();
    let mut stream = bus.subscribe(Subscription::all()).unwrap().into_stream();
    let mut publisher = bus.publisher().unwrap();
    let publishing = std::thread::spawn(move || {
        for v in 0..1000 {
            publisher.publish_blocking(Event::new(topic(), v)).unwrap();
        }
    });
    let mut next = 0;
    let deadline = tokio::time::sleep(HANG);
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(d)) => {
                    assert_eq!(*d.payload(), next);
                    next += 1;
                }
                Some(Err(e)) => panic!("{e}"),
                None => break,
            },
            _ = &mut deadline => panic!("hang after {next} events"),
        }
    }
    publishing.join().unwrap();
    assert_eq!(next, 1000);
    assert_eq!(stream.subscriber().dropped(), 0);
}
