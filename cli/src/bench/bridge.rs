//! `--scenario bridge`: 1 KiB payloads from bus A to bus B through `shardcast-nats` and a
//! local `nats-server`, against plain `async-nats` publish and subscribe of the same bytes
//! through the same server, in the same run.
//!
//! Both sides have one publisher and one receiver, in the same process, so one clock
//! stamps both ends:
//! - **plain async-nats**: client 1 publishes each payload on `bench.plain`
//!   (`publish(..).await`); client 2's subscription receives it.
//! - **shardcast-nats**: a thread publishes each payload into bus A; bridge 1 exports
//!   `bench.>` with the [`Raw`] codec (the bytes as they are, no JSON); bridge 2 imports
//!   `bench.>` into bus B, where a subscription receives it.
//!
//! Each publisher runs on its own thread with the harness's pacing (`publish_loop`), and
//! stamps each event just before publishing it; each receiver is a tokio task that reads
//! the sequence number from the payload's first 8 bytes, stamps it and keeps nothing else
//! (the delivery is read in place, never stored). Saturation runs are lossless where the
//! bridge can be (`Overflow::Block` on the export and on bus B, as the other scenarios'
//! shardcast rows); plain async-nats has no such mode, and a subscriber that falls behind
//! loses messages (slow consumer). Every loss shows in `lost` (expected minus received).
//!
//! The targets of issue 13 compare the two: the bridge keeps at least 0.8x plain
//! async-nats's throughput (saturation) and at most 1.2x its p99 (paced).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures_util::StreamExt;
use indicatif::ProgressBar;
use shardcast::{Bus, Event, Overflow, RecvError, Subscription, Topic};
use shardcast_nats::{Bridge, BridgeConfig, ExportOptions, ImportOptions, Raw};
use tokio::runtime::Runtime;
use tokio::sync::Notify;

use super::impls::{publish_loop, Origin, Outcome, Rec, Spec};
use super::nats_server::NatsServer;
use super::stats::{self, Summary};

/// Payload size: the sequence number (8 bytes, little-endian), then filler.
pub const PAYLOAD_BYTES: usize = 1024;
/// Events per second in the paced rows unless `--rate` says otherwise: well under what
/// either side sustains on 2 cores, so the rows measure latency, not queueing.
pub const DEFAULT_RATE: u64 = 20_000;
/// The throughput target: bridge/plain at saturation.
pub const TARGET_THROUGHPUT: f64 = 0.8;
/// The latency target: bridge/plain p99 when paced.
pub const TARGET_P99: f64 = 1.2;
/// The receiver gives up this long after the last message arrived, once the publisher
/// is done (the rest was lost).
const IDLE: Duration = Duration::from_secs(1);
/// How long connecting and subscribing may take.
const SETUP: Duration = Duration::from_secs(10);
/// How long one publish may wait (the server died, the bridge is reconnecting) before the
/// row gives up: the rest of its events are not published.
const STALL: Duration = Duration::from_secs(10);
const BUS_TOPIC: &str = "bench.bridge";
const BRIDGE_PATTERN: &str = "bench.>";
const PLAIN_SUBJECT: &str = "bench.plain";

/// The two sides of the comparison.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    Plain,
    Bridge,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Plain => "plain async-nats",
            Side::Bridge => "shardcast-nats",
        }
    }
}

/// One row: a side in a phase, measured or the reason it was not.
#[derive(Debug)]
pub struct BridgeRow {
    /// `saturation` or `paced`.
    pub phase: &'static str,
    pub side: Side,
    pub spec: Spec,
    pub result: Result<Summary, String>,
}

/// Runs every `(phase, spec)`, plain async-nats first, then the bridge, against one
/// `nats-server` started here and killed on return; `bar` counts the rows. If the server
/// does not start, every row says why.
pub fn run(plans: &[(&'static str, Spec)], bar: &ProgressBar) -> Vec<BridgeRow> {
    let server = NatsServer::start();
    let mut rows = Vec::new();
    for (phase, spec) in plans {
        for side in [Side::Plain, Side::Bridge] {
            bar.set_message(format!("bridge {phase} {}", side.name()));
            let result = match &server {
                Ok(server) => run_row(side, &server.url(), spec),
                Err(why) => Err(format!("not run: {why}")),
            };
            rows.push(BridgeRow { phase, side, spec: spec.clone(), result });
            bar.inc(1);
        }
    }
    rows
}

fn run_row(side: Side, url: &str, spec: &Spec) -> Result<Summary, String> {
    // A runtime per row, as the other scenarios: nothing of one row runs into the next.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let outcome = match side {
        Side::Plain => plain(&rt, url, spec),
        Side::Bridge => bridged(&rt, url, spec),
    }?;
    Ok(stats::summarize(spec, &outcome))
}

/// The payload of event `seq`: 1 KiB, built per publish on both sides (one allocation and
/// one fill each).
fn payload(seq: u64) -> Bytes {
    let mut body = BytesMut::with_capacity(PAYLOAD_BYTES);
    body.put_u64_le(seq);
    body.resize(PAYLOAD_BYTES, 0xa5);
    body.freeze()
}

fn seq_of(body: &[u8]) -> Option<u64> {
    Some(u64::from_le_bytes(body.get(..8)?.try_into().ok()?))
}

/// Plain async-nats: one client publishes, another subscribes.
fn plain(rt: &Runtime, url: &str, spec: &Spec) -> Result<Outcome, String> {
    let slow_consumer = Arc::new(AtomicU64::new(0));
    let (publisher, _subscriber, subscription) =
        rt.block_on(within("connect and subscribe", async {
            let publisher = async_nats::connect(url).await.map_err(|e| format!("connect: {e}"))?;
            let events = Arc::clone(&slow_consumer);
            let subscriber = async_nats::ConnectOptions::new()
                .event_callback(move |event| {
                    if let async_nats::Event::SlowConsumer(_) = event {
                        events.fetch_add(1, Relaxed);
                    }
                    std::future::ready(())
                })
                .connect(url)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let subscription =
                subscriber.subscribe(PLAIN_SUBJECT).await.map_err(|e| format!("subscribe: {e}"))?;
            round_trip(&subscriber).await?;
            Ok((publisher, subscriber, subscription))
        }))?;

    let origin = Origin::now();
    let receiver = Receiver::spawn(rt, spec, origin, subscription);
    let subject = async_nats::Subject::from(PLAIN_SUBJECT);
    let handle = rt.handle().clone();
    let mut failed = None;
    let published = publish_loop(spec, origin, |m| {
        if failed.is_some() {
            return;
        }
        // Built inside the runtime (the timer needs it); armed only if the publish waits.
        let publish = publisher.publish(subject.clone(), payload(m.seq));
        match handle.block_on(async { tokio::time::timeout(STALL, publish).await }) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = Some(format!("publish: {e}")),
            Err(_) => failed = Some(format!("publish: stalled for {STALL:?}")),
        }
    });
    rt.block_on(publisher.flush()).map_err(|e| format!("flush: {e}"))?;
    let mut rec = receiver.finish(rt)?;
    rec.reported_lost += slow_consumer.load(Relaxed);
    match failed {
        Some(e) => Err(e),
        None => Ok(Outcome { published, recs: vec![rec], cpu_ns: None }),
    }
}

/// shardcast-nats: bus A -> export -> NATS -> import -> bus B.
fn bridged(rt: &Runtime, url: &str, spec: &Spec) -> Result<Outcome, String> {
    let bus = || -> Result<Bus<Bytes>, String> {
        Bus::builder().dispatchers(spec.dispatchers).build().map_err(|e| e.to_string())
    };
    let (bus_a, bus_b) = (bus()?, bus()?);
    let overflow = if spec.lossless { Overflow::Block } else { Overflow::DropNewest };
    let capacity = spec.queue;
    let (exporter, importer, _export, _import, subscription) =
        rt.block_on(within("connect, export and import", async {
            let exporter = Bridge::connect(url, BridgeConfig::default())
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let importer = Bridge::connect(url, BridgeConfig::default())
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let export = exporter
                .export(
                    &bus_a,
                    BRIDGE_PATTERN,
                    ExportOptions::new(Raw).capacity(capacity).overflow(overflow),
                )
                .map_err(|e| format!("export: {e}"))?;
            let subscription = bus_b
                .subscribe(Subscription::all().name("bench").capacity(capacity).overflow(overflow))
                .map_err(|e| format!("subscribe: {e}"))?;
            let publisher_b = bus_b.publisher().map_err(|e| format!("bus b: {e}"))?;
            let import = importer
                .import(publisher_b, BRIDGE_PATTERN, ImportOptions::new(Raw))
                .await
                .map_err(|e| format!("import: {e}"))?;
            importer.round_trip().await.map_err(|e| format!("round trip: {e}"))?;
            Ok((exporter, importer, export, import, subscription))
        }))?;

    let origin = Origin::now();
    let receiver = Receiver::spawn(rt, spec, origin, subscription);
    let topic = Topic::new(BUS_TOPIC).map_err(|e| e.to_string())?;
    let mut publisher = bus_a.publisher().map_err(|e| format!("bus a: {e}"))?;
    let mut failed = None;
    let published = publish_loop(spec, origin, |m| {
        if failed.is_some() {
            return;
        }
        let event = Event::new(topic.clone(), payload(m.seq));
        if let Err(e) = publisher.publish_timeout(event, STALL) {
            failed = Some(format!("publish into bus a: {e}"));
        }
    });
    // The export hands what its queue holds to NATS, then ends.
    publisher.close();
    let mut rec = receiver.finish(rt)?;
    let (out, inn) = (exporter.stats(), importer.stats());
    // `import_missed` covers the export's own losses too: they keep their stream positions.
    rec.reported_lost += inn.import_missed;
    if out.encode_errors + out.publish_errors + inn.decode_errors.total() > 0 {
        failed.get_or_insert_with(|| {
            format!(
                "bridge errors: encode {}, publish {}, decode {}",
                out.encode_errors,
                out.publish_errors,
                inn.decode_errors.total()
            )
        });
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(Outcome { published, recs: vec![rec], cpu_ns: None }),
    }
}

/// Fails with `what` if `future` takes longer than [`SETUP`].
async fn within<T>(
    what: &str,
    future: impl std::future::Future<Output = Result<T, String>>,
) -> Result<T, String> {
    tokio::time::timeout(SETUP, future).await.map_err(|_| format!("{what}: timed out"))?
}

/// Returns once the server has processed every command `client` sent before (its SUB
/// included): nobody answers this request, and the server's "no responders" comes after
/// everything earlier on the connection. `Bridge::round_trip` does the same.
async fn round_trip(client: &async_nats::Client) -> Result<(), String> {
    match client.request("_SHARDCAST_BENCH.ping", Bytes::new()).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == async_nats::RequestErrorKind::NoResponders => Ok(()),
        Err(e) => Err(format!("round trip: {e}")),
    }
}

/// What a receiver gets next.
enum Next {
    Seq(u64),
    Lost(u64),
    Closed,
}

/// A receiving end: async-nats's subscription or a shardcast subscriber.
trait Source: Send + 'static {
    fn next(&mut self) -> impl std::future::Future<Output = Next> + Send;
}

impl Source for async_nats::Subscriber {
    async fn next(&mut self) -> Next {
        match StreamExt::next(self).await {
            Some(message) => seq_of(&message.payload).map_or(Next::Lost(0), Next::Seq),
            None => Next::Closed,
        }
    }
}

impl Source for shardcast::Subscriber<Bytes> {
    async fn next(&mut self) -> Next {
        match self.recv().await {
            // Read in place: the delivery is not kept past this line.
            Ok(delivery) => seq_of(delivery.payload()).map_or(Next::Lost(0), Next::Seq),
            Err(RecvError::Lagged(n)) => Next::Lost(n),
            Err(RecvError::Closed) => Next::Closed,
        }
    }
}

/// The receiving task, and how the bench ends it.
struct Receiver {
    task: tokio::task::JoinHandle<Rec>,
    /// Messages received so far (Relaxed: only watched for progress).
    received: Arc<AtomicU64>,
    /// Ends the task when the rest is lost.
    stop: Arc<Notify>,
}

impl Receiver {
    fn spawn(rt: &Runtime, spec: &Spec, origin: Origin, mut source: impl Source) -> Receiver {
        let received = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(Notify::new());
        let mut rec = Rec::new(spec, 0, origin);
        let events = spec.events;
        let (count, stopped) = (Arc::clone(&received), Arc::clone(&stop));
        let task = rt.spawn(async move {
            while (rec.got.len() as u64) < events {
                let next = tokio::select! {
                    biased;
                    next = source.next() => next,
                    () = stopped.notified() => break,
                };
                match next {
                    Next::Seq(seq) if seq < events => {
                        rec.record(seq);
                        count.store(rec.got.len() as u64, Relaxed);
                    }
                    Next::Seq(_) => {}
                    Next::Lost(n) => rec.reported_lost += n,
                    Next::Closed => break,
                }
            }
            rec
        });
        Receiver { task, received, stop }
    }

    /// After the publisher is done: waits for every event, or until nothing arrived for
    /// [`IDLE`].
    fn finish(self, rt: &Runtime) -> Result<Rec, String> {
        let mut last = self.received.load(Relaxed);
        let mut since = Instant::now();
        while !self.task.is_finished() {
            std::thread::sleep(Duration::from_millis(10));
            let now = self.received.load(Relaxed);
            if now != last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= IDLE {
                self.stop.notify_one();
                break;
            }
        }
        rt.block_on(self.task).map_err(|e| format!("receiver: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_1_kib_and_carries_its_seq() {
        let body = payload(0x0102_0304_0506_0708);
        assert_eq!(body.len(), PAYLOAD_BYTES);
        assert_eq!(seq_of(&body), Some(0x0102_0304_0506_0708));
        assert_eq!(seq_of(&body[..7]), None);
    }
}
