//! `Publisher` and `Subscriber` are `Send + Sync`, like tokio's `Sender` and `Receiver`: a
//! task that holds `&Subscriber` or `&Publisher` across an `.await` stays spawnable.

use std::time::Duration;

use shardcast::{
    Bus, Event, OwnedDelivery, Publisher, SharedPublisher, Subscriber, Subscription, Topic,
};

fn assert_send_sync<T: Send + Sync>() {}

#[test]
fn handles_are_send_and_sync() {
    assert_send_sync::<Bus<String>>();
    assert_send_sync::<Publisher<String>>();
    assert_send_sync::<SharedPublisher<String>>();
    assert_send_sync::<Subscriber<String>>();
    assert_send_sync::<OwnedDelivery<String>>();
}

#[tokio::test]
async fn a_task_holding_a_subscriber_reference_across_an_await_is_spawnable() {
    let bus: Bus<u32> = Bus::builder().build().unwrap();
    let mut sub = bus.subscribe(Subscription::all().name("audit")).unwrap();
    let publisher = bus.publisher().unwrap();
    let task = tokio::spawn(async move {
        let mut publisher = publisher;
        let sub_ref: &Subscriber<u32> = &sub;
        let name = sub_ref.name().to_owned();
        // `&Subscriber` and `&Publisher` live across this await: the future is `Send`
        // only if both are `Sync`.
        let publisher_ref: &Publisher<u32> = &publisher;
        tokio::time::sleep(Duration::from_millis(1)).await;
        let (dropped, subscribers) = (sub_ref.dropped(), publisher_ref.subscriber_count());
        publisher.publish(Event::new(Topic::new("t").unwrap(), 7)).await.unwrap();
        let got = *sub.recv().await.unwrap().payload();
        (name, dropped, subscribers, got)
    });
    assert_eq!(task.await.unwrap(), ("audit".to_owned(), 0, 1, 7));
}
