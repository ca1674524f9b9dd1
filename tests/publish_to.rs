//! `publish_to`: publishing by topic text, with the payload handed back on every error.

use shardcast::{Bus, PublishToError, Subscription, TopicErrorKind};

#[test]
fn publishes_by_text_across_topic_changes() {
    let bus: Bus<u32> = Bus::builder().build().unwrap();
    let mut eu = bus.subscribe(Subscription::to("orders.eu.>").unwrap()).unwrap();
    let mut all = bus.subscribe(Subscription::all()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    let topics = ["orders.eu.created", "orders.us.created", "orders.eu.created", "audit"];
    for (i, topic) in topics.iter().cycle().take(40).enumerate() {
        publisher.publish_to_blocking(topic, i as u32).unwrap();
    }
    publisher.close();
    let got: Vec<(String, u32)> = std::iter::from_fn(|| {
        all.recv_blocking().ok().map(|d| (d.topic().as_str().to_owned(), *d.payload()))
    })
    .collect();
    let want: Vec<(String, u32)> = topics
        .iter()
        .cycle()
        .take(40)
        .enumerate()
        .map(|(i, t)| (t.to_string(), i as u32))
        .collect();
    assert_eq!(got, want);
    let eu_got: Vec<u32> =
        std::iter::from_fn(|| eu.recv_blocking().ok().map(|d| *d.payload())).collect();
    let eu_want: Vec<u32> = (0..40).filter(|i| i % 4 == 0 || i % 4 == 2).collect();
    assert_eq!(eu_got, eu_want);
}

#[test]
fn a_bad_topic_hands_the_payload_back_and_publishes_nothing() {
    let bus: Bus<String> = Bus::builder().build().unwrap();
    let mut sub = bus.subscribe(Subscription::all()).unwrap();
    let mut publisher = bus.publisher().unwrap();
    for (text, kind) in [
        ("", TopicErrorKind::Empty),
        ("a..b", TopicErrorKind::EmptyToken(2)),
        ("$SYS.stats", TopicErrorKind::Reserved),
        ("a b", TopicErrorKind::InvalidByte { byte: b' ', at: 1 }),
    ] {
        match publisher.publish_to_blocking(text, format!("payload {text}")) {
            Err(PublishToError::Topic(e, payload)) => {
                assert_eq!(e.kind(), kind, "{text:?}");
                assert_eq!(payload, format!("payload {text}"));
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }
    // A valid topic after a bad one still works, and the bad ones left nothing behind.
    publisher.publish_to_blocking("ok", "fine".to_owned()).unwrap();
    publisher.close();
    assert_eq!(sub.recv_blocking().unwrap().payload(), "fine");
    assert!(sub.recv_blocking().is_err());
}

#[test]
fn a_closed_bus_hands_the_payload_back() {
    let bus: Bus<Vec<u8>> = Bus::builder().build().unwrap();
    let shared = bus.shared_publisher().unwrap();
    shared.publish_to_blocking("t", vec![1]).unwrap();
    bus.close();
    let err = shared.publish_to_blocking("t", vec![2, 3]).unwrap_err();
    assert!(err.is_closed());
    assert_eq!(err.to_string(), "publishing on a closed bus");
    assert_eq!(err.into_inner(), vec![2, 3]);
}
