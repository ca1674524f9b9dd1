//! A long-running service around a shardcast bus, with its stats served over HTTP.
//!
//! A producer thread publishes a modest stream on four topics; four async subscribers
//! with different patterns consume it (one deliberately slow, with a small `DropOldest`
//! queue, so the drop counters move). The daemon serves, on 127.0.0.1 only:
//! - `GET /metrics`: `Bus::stats().prometheus_text()`, for a Prometheus scrape;
//! - `GET /stats.json`: the same snapshot as JSON.
//!
//! ```text
//! cargo run --example daemon -- --port 9464      # or SHARDCAST_PORT=9464; 0 = any free port
//! curl -s http://127.0.0.1:9464/metrics | grep shardcast_published_total
//! curl -s http://127.0.0.1:9464/stats.json
//! ```
//!
//! Ctrl-C (SIGINT) or SIGTERM shuts it down gracefully: stop producing, close the
//! publisher, let every subscriber drain its queue to `Closed`, stop the HTTP server, print
//! the final stats, exit 0. The final stats include each subscriber's counters as the bus
//! kept them after it was dropped (`StatsSnapshot::retired`): the slow one's losses too.

use std::error::Error;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use shardcast::stats::StatsSnapshot;
use shardcast::{Bus, Event, Overflow, RecvError, Subscriber, Subscription, Topic};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The port Prometheus exporters conventionally start from.
const DEFAULT_PORT: u16 = 9464;
const TOPICS: [&str; 4] =
    ["orders.eu.created", "orders.us.created", "sensors.eu.temperature", "sensors.us.temperature"];
/// Events per producer tick; with `TICK`, about 2000 events/s.
const PER_TICK: u64 = 20;
const TICK: Duration = Duration::from_millis(10);
/// How long the HTTP server may take to finish in-flight requests at shutdown.
const SERVER_GRACE: Duration = Duration::from_secs(5);
/// The Prometheus text exposition format's content type.
const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The demo payload: a reading or an order amount.
type Payload = u64;

#[tokio::main]
async fn main() -> ExitCode {
    let port = match port() {
        Ok(port) => port,
        Err(e) => {
            eprintln!("daemon: {e}\nusage: daemon [--port N]   (or SHARDCAST_PORT=N; default {DEFAULT_PORT})");
            return ExitCode::from(2);
        }
    };
    match run(port).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("daemon: {e}");
            ExitCode::FAILURE
        }
    }
}

/// `--port N` / `--port=N`, else `SHARDCAST_PORT`, else 9464.
fn port() -> Result<u16, String> {
    let mut args = std::env::args().skip(1);
    let mut port = None;
    while let Some(arg) = args.next() {
        let value = match arg.strip_prefix("--port") {
            Some("") => args.next().ok_or("--port needs a value")?,
            Some(v) if v.starts_with('=') => v[1..].to_owned(),
            _ => return Err(format!("unexpected argument {arg:?}")),
        };
        port = Some(value);
    }
    let Some(port) = port.or_else(|| std::env::var("SHARDCAST_PORT").ok()) else {
        return Ok(DEFAULT_PORT);
    };
    port.parse().map_err(|_| format!("invalid port {port:?}: expected 0..=65535"))
}

async fn run(port: u16) -> Result<(), Box<dyn Error>> {
    // Signal handlers first: a signal that arrives once "listening" is printed must reach
    // them, not the default action (which would kill the process without final stats).
    let shutdown = Shutdown::install()?;

    let bus: Bus<Payload> = Bus::builder().dispatchers(1).latency_sample_every(16).build()?;
    let consumers = [
        (Subscription::all().name("audit"), Duration::ZERO),
        (Subscription::to("orders.eu.>")?.name("orders-eu"), Duration::ZERO),
        (Subscription::to("sensors.*.temperature")?.name("sensors"), Duration::ZERO),
        // Slow (about 1 ms an event against 2000 events/s) with a tiny queue: it keeps the
        // newest events and loses the rest, which `dropped` and `Lagged` report.
        (
            Subscription::all().name("dashboard").capacity(8).overflow(Overflow::DropOldest),
            Duration::from_millis(1),
        ),
    ];
    let mut tasks = Vec::new();
    for (subscription, delay) in consumers {
        let subscriber = bus.subscribe(subscription)?;
        tasks.push(tokio::spawn(consume(subscriber, delay)));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let producer = produce(&bus, Arc::clone(&stop))?;

    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/stats.json", get(stats_json))
        .with_state(bus.clone());
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, port))).await?;
    // The real port (port 0 picks a free one); the socket is already accepting.
    let addr = listener.local_addr()?;
    let (stop_server, server_stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = server_stopped.await;
            })
            .await
    });
    println!("listening on http://{addr}");
    std::io::stdout().flush()?;

    let signal = shutdown.wait().await;
    println!("{signal}: stopping the producer");
    stop.store(true, Ordering::Relaxed);
    // The producer drops (closes) the publisher on its way out; subscribers then drain
    // what is queued and see `Closed`.
    let published = tokio::task::spawn_blocking(move || producer.join())
        .await?
        .map_err(|_| "the producer panicked")?;
    println!("producer stopped after {published} events; draining the subscribers");
    let mut tallies = Vec::new();
    for task in tasks {
        tallies.push(task.await?);
    }
    // Metrics stay up until the bus has drained, so a last scrape sees the final counts.
    let _ = stop_server.send(());
    match tokio::time::timeout(SERVER_GRACE, server).await {
        Ok(served) => served??,
        Err(_) => eprintln!("daemon: http connections still open after {SERVER_GRACE:?}; leaving"),
    }

    let stats = bus.stats();
    let delivered: u64 = stats.shards.iter().map(|s| s.delivered).sum();
    println!(
        "final stats: published={} delivered={delivered} dropped={} latency_p99={}",
        stats.published,
        stats.dropped(),
        // Never a zero that was not measured: say how many samples the figure rests on.
        match stats.latency.samples {
            0 => "n/a (no samples)".to_owned(),
            n => format!("{:.1}us ({n} samples)", stats.latency.p99_seconds * 1e6),
        },
    );
    // Each subscriber was dropped when its task ended: the bus's counters of it live on in
    // `stats.retired` (so the slow one's losses still show), those of any live one in
    // `stats.subscribers`.
    for tally in &tallies {
        let [delivered, consumed, dropped, lagged_reports] = bus_counts(&stats, &tally.name);
        println!(
            "  {}: received={} lagged={} delivered={delivered} consumed={consumed} \
             dropped={dropped} lagged_reports={lagged_reports}",
            tally.name, tally.received, tally.lagged,
        );
    }
    Ok(())
}

/// `delivered`, `consumed`, `dropped` and `lagged_reports` of the subscribers named `name`,
/// live and dropped.
fn bus_counts(stats: &StatsSnapshot, name: &str) -> [u64; 4] {
    let live = stats.subscribers.iter().filter(|s| s.name == name);
    let live = live.map(|s| [s.delivered, s.consumed, s.dropped, s.lagged_reports]);
    let retired = stats.retired.iter().filter(|r| r.name == name);
    let retired = retired.map(|r| [r.delivered, r.consumed, r.dropped, r.lagged_reports]);
    live.chain(retired).fold([0; 4], |mut sum, row| {
        for (total, n) in sum.iter_mut().zip(row) {
            *total += n;
        }
        sum
    })
}

/// What a consumer saw.
struct Tally {
    name: String,
    received: u64,
    lagged: u64,
}

/// Receives until the bus closes and the queue is drained.
async fn consume(mut subscriber: Subscriber<Payload>, delay: Duration) -> Tally {
    let mut tally = Tally { name: subscriber.name().to_owned(), received: 0, lagged: 0 };
    loop {
        match subscriber.recv().await {
            Ok(_delivery) => {
                tally.received += 1;
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
            }
            Err(RecvError::Lagged(lost)) => tally.lagged += lost,
            Err(RecvError::Closed) => return tally,
        }
    }
}

/// Publishes `PER_TICK` events every `TICK` until `stop`; returns how many it published.
fn produce(
    bus: &Bus<Payload>,
    stop: Arc<AtomicBool>,
) -> Result<thread::JoinHandle<u64>, Box<dyn Error>> {
    let mut publisher = bus.publisher()?;
    let topics = TOPICS.map(|t| Topic::new(t).expect("valid topic"));
    let handle = thread::Builder::new().name("producer".to_owned()).spawn(move || {
        let mut n = 0u64;
        // Relaxed: the flag carries no data; the join after it orders everything else.
        while !stop.load(Ordering::Relaxed) {
            for _ in 0..PER_TICK {
                let topic = topics[(n % topics.len() as u64) as usize].clone();
                if publisher.publish_blocking(Event::new(topic, n)).is_err() {
                    return n; // the bus was closed under us
                }
                n += 1;
            }
            thread::sleep(TICK);
        }
        publisher.close();
        n
    })?;
    Ok(handle)
}

async fn metrics(State(bus): State<Bus<Payload>>) -> Response {
    ([(header::CONTENT_TYPE, PROMETHEUS_TEXT)], bus.stats().prometheus_text()).into_response()
}

async fn stats_json(State(bus): State<Bus<Payload>>) -> Response {
    match serde_json::to_string(&bus.stats()) {
        Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

/// SIGINT (Ctrl-C) or SIGTERM, whichever comes first.
struct Shutdown {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl Shutdown {
    /// Installs the handlers now (not on first poll, as `tokio::signal::ctrl_c` would).
    fn install() -> std::io::Result<Self> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Shutdown {
                interrupt: signal(SignalKind::interrupt())?,
                terminate: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        {
            Ok(Shutdown {})
        }
    }

    /// Waits for a signal; returns its name.
    async fn wait(self) -> &'static str {
        #[cfg(unix)]
        {
            let Shutdown { mut interrupt, mut terminate } = self;
            tokio::select! {
                _ = interrupt.recv() => "SIGINT",
                _ = terminate.recv() => "SIGTERM",
            }
        }
        #[cfg(not(unix))]
        {
            let Shutdown {} = self;
            let _ = tokio::signal::ctrl_c().await;
            "ctrl-c"
        }
    }
}
