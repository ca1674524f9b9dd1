//! Request/response over two buses with lossless (`Overflow::Block`) subscribers, in the
//! safe form: each side flushes after it publishes.
//!
//! Why the flush: `publish` returns once the event is in the ring, and a `Block`
//! subscriber lets the publisher run ahead of it by its queue plus the whole ring:
//! `capacity + ring_capacity` events published and not yet received (the batch a shard is
//! pushing stays in the ring until it is released, so it adds nothing). `try_recv` sees
//! only the queue. A client that drains responses with `try_recv` and then
//! publishes a request can therefore stop draining while thousands of responses wait in
//! the response ring; once both rings are full, each side waits in `publish` for the
//! other: a deadlock. `flush` returns once the event is in the subscriber's queue, so each
//! side has at most one event in flight and the pair behaves like two bounded(1) channels.
//!
//! Run with `cargo run --release --example request_response`.

use std::thread;
use std::time::Instant;

use shardcast::{Bus, Event, Overflow, RecvError, Subscription, Topic, TryRecvError};

const ROUND_TRIPS: u64 = 100_000;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let requests: Bus<u64> = Bus::builder().build()?;
    let responses: Bus<u64> = Bus::builder().build()?;
    let lossless = || Subscription::all().capacity(1).overflow(Overflow::Block);
    let mut server_inbox = requests.subscribe(lossless().name("server"))?;
    let mut client_inbox = responses.subscribe(lossless().name("client"))?;
    let mut request_pub = requests.publisher()?;
    let mut response_pub = responses.publisher()?;
    // The buses live on in their publishers and subscribers.
    drop((requests, responses));
    let topic = Topic::new("rpc")?;

    let started = Instant::now();
    let server = {
        let topic = topic.clone();
        thread::spawn(move || loop {
            match server_inbox.recv_blocking() {
                Ok(request) => {
                    let id = *request.payload();
                    drop(request);
                    response_pub
                        .publish_blocking(Event::new(topic.clone(), id))
                        .expect("response bus");
                    response_pub.flush(); // at most one response in flight
                }
                Err(RecvError::Closed) => return,
                Err(RecvError::Lagged(_)) => unreachable!("Block subscribers never lag"),
            }
        })
    };
    let mut received = 0;
    let mut next_id = 0;
    'client: loop {
        loop {
            match client_inbox.try_recv() {
                Ok(_) => {
                    received += 1;
                    if received == ROUND_TRIPS {
                        break 'client;
                    }
                }
                Err(TryRecvError::Empty) => break,
                Err(e) => return Err(e.into()),
            }
        }
        request_pub.publish_blocking(Event::new(topic.clone(), next_id))?;
        request_pub.flush(); // at most one request in flight
        next_id += 1;
    }
    drop(request_pub); // the server sees Closed
    drop(client_inbox); // a server still publishing is not kept waiting
    server.join().expect("server");
    let elapsed = started.elapsed();
    println!(
        "{ROUND_TRIPS} round trips in {elapsed:.2?} ({:.1} µs each)",
        elapsed.as_secs_f64() * 1e6 / ROUND_TRIPS as f64
    );
    Ok(())
}
