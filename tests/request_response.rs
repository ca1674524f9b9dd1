//! Promise: request/response over two buses with `Overflow::Block` subscribers of
//! capacity 1 cannot deadlock when each side flushes after publishing (crossbeam's
//! `stress_iter` shape: the client drains responses with `try_recv`, then sends a request;
//! the server receives a request, then sends a response).
//!
//! Without the flush it can: a `Block` subscriber lets the publisher run ahead by its queue
//! plus the whole ring plus one dispatch batch, and `try_recv` cannot see the ring, so the
//! client may stop draining while thousands of responses sit in the response ring, both
//! rings fill, and each side waits in `publish` for the other. With the flush, each side
//! has at most one event in flight, as with a bounded(1) channel.
//!
//! Each run has a watchdog: past `LIMIT` the test fails with a dump of both buses' state
//! instead of hanging CI.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use shardcast::{Bus, Event, Overflow, RecvError, Subscription, Topic, TryRecvError};

const ROUND_TRIPS: u64 = 100_000;
const RUNS: usize = 10;
/// Per run. A debug run takes a few seconds on 2 busy cores; this is a hang guard, not a
/// timing assertion.
const LIMIT: Duration = Duration::from_secs(60);

fn dump(name: &str, bus: &Bus<u64>) -> String {
    let stats = bus.stats();
    let queues: Vec<String> = stats
        .subscribers
        .iter()
        .map(|s| format!("{} {}/{}", s.name, s.queue_depth, s.queue_capacity))
        .collect();
    format!(
        "{name}: published {}, ring {}/{}, closed {}, queues [{}]",
        stats.published,
        stats.ring_occupancy,
        stats.ring_capacity,
        bus.is_closed(),
        queues.join(", ")
    )
}

fn run(index: usize) {
    let topic = Topic::new("rpc").unwrap();
    // The default ring (4096), one Block subscriber of capacity 1 per bus.
    let requests: Bus<u64> = Bus::builder().thread_name("rr-req").build().unwrap();
    let responses: Bus<u64> = Bus::builder().thread_name("rr-resp").build().unwrap();
    let block = || Subscription::all().capacity(1).overflow(Overflow::Block);
    let mut server_sub = requests.subscribe(block().name("server")).unwrap();
    let mut client_sub = responses.subscribe(block().name("client")).unwrap();
    let mut request_pub = requests.publisher().unwrap();
    let mut response_pub = responses.publisher().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let sent = Arc::new(AtomicU64::new(0));

    let client = {
        let (received, sent, topic) = (Arc::clone(&received), Arc::clone(&sent), topic.clone());
        thread::spawn(move || {
            let mut count = 0;
            loop {
                loop {
                    match client_sub.try_recv() {
                        Ok(_) => {
                            count += 1;
                            received.store(count, Ordering::Relaxed);
                            if count == ROUND_TRIPS {
                                return; // drops the request publisher: the server stops
                            }
                        }
                        Err(TryRecvError::Empty) => break,
                        Err(e) => panic!("client: {e}"),
                    }
                }
                let n = sent.fetch_add(1, Ordering::Relaxed);
                request_pub.publish_blocking(Event::new(topic.clone(), n)).expect("request");
                request_pub.flush(); // the safe form: at most one request in flight
            }
        })
    };
    let server = thread::spawn(move || loop {
        match server_sub.recv_blocking() {
            Ok(request) => {
                let n = *request.payload();
                drop(request);
                response_pub.publish_blocking(Event::new(topic.clone(), n)).expect("response");
                response_pub.flush(); // the safe form: at most one response in flight
            }
            Err(RecvError::Closed) => return,
            Err(e) => panic!("server: {e}"),
        }
    });

    let started = Instant::now();
    while !(client.is_finished() && server.is_finished()) {
        if started.elapsed() > LIMIT {
            panic!(
                "run {index}: no progress after {LIMIT:?} (deadlock?): {} of {ROUND_TRIPS} \
                 responses received, {} requests sent; client finished {}, server finished {}\n\
                 {}\n{}",
                received.load(Ordering::Relaxed),
                sent.load(Ordering::Relaxed),
                client.is_finished(),
                server.is_finished(),
                dump("requests", &requests),
                dump("responses", &responses),
            );
        }
        thread::sleep(Duration::from_millis(5));
    }
    client.join().expect("client");
    server.join().expect("server");
    assert_eq!(received.load(Ordering::Relaxed), ROUND_TRIPS);
}

#[test]
fn flushed_request_response_over_block_subscribers_never_deadlocks() {
    for index in 0..RUNS {
        run(index);
    }
}
