//! `shardcast`: command-line tools for the shardcast event bus.
//!
//! `shardcast demo` runs a small publish/subscribe scenario and prints what each subscriber
//! received, so the overflow policies can be seen side by side. `shardcast soak` runs the
//! real bus for a while under a changing load and checks its invariants all along.
//! `shardcast stats record` polls a running daemon's stats endpoint into a capture, and
//! `shardcast stats plot` draws a capture.

mod bench;
mod http;
mod plot;
mod record;
mod soak;

use std::error::Error;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::thread;

use clap::{Parser, Subcommand};
use shardcast::{Bus, Event, Overflow, RecvError, Subscriber, Subscription, Topic};

#[derive(Debug, Parser)]
#[command(name = "shardcast", version, about = "Tools for the shardcast in-process event bus")]
#[command(arg_required_else_help = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish 20 events to three subscribers with different overflow policies; print what
    /// each received
    Demo,
    /// Work with stats captures (see `shardcast::stats::StatsRecorder`)
    #[command(subcommand)]
    Stats(StatsCommand),
    /// Run the standard scenarios against every competitor and print a table
    Bench(bench::BenchArgs),
    /// Run the bus under a changing load (phases, subscribers joining and leaving, every
    /// overflow policy) for a while, checking its invariants; prints the seed to rerun
    Soak(soak::SoakArgs),
}

#[derive(Debug, Subcommand)]
enum StatsCommand {
    /// Poll a running daemon's stats endpoint (JSON, as `Bus::stats()` serializes) into a
    /// capture that `stats plot` reads
    Record(record::RecordArgs),
    /// Render a capture to an SVG chart: throughput, drops and latency over time
    Plot {
        /// The capture file, `<id>.json`
        capture: PathBuf,
        /// Where to write the SVG
        #[arg(long, default_value = "plot.svg")]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    // Usage errors (unknown subcommand, bad flag) exit 2 with usage on stderr; `--help`
    // and `help` print to stdout and exit 0: clap's conventions.
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo => demo(),
        Command::Stats(StatsCommand::Record(args)) => record::run(&args),
        Command::Stats(StatsCommand::Plot { capture, out }) => plot::plot_capture(&capture, &out),
        Command::Bench(args) => bench::run(&args),
        Command::Soak(args) => soak::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<Usage>() => {
            eprintln!("shardcast: error: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("shardcast: {e}");
            ExitCode::FAILURE
        }
    }
}

/// A request the flags allow but the tool refuses (e.g. a bench plan estimated to take too
/// long): exits 2, like clap's own usage errors.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Usage {}

const TOPICS: [&str; 3] = ["orders.eu.created", "orders.us.created", "orders.eu.cancelled"];
const EVENTS: u64 = 20;
const DISPATCHERS: usize = 2;
const RING_CAPACITY: usize = 64;

/// The demo's payload.
struct Order {
    id: u64,
}

/// What one subscriber saw, receive by receive.
struct Received {
    name: String,
    shard: usize,
    capacity: usize,
    overflow: Overflow,
    seqs: Vec<u64>,
    /// Each `Lagged(n)` report, in order.
    lagged: Vec<u64>,
    dropped: u64,
}

fn demo() -> Result<(), Box<dyn Error>> {
    let bus: Bus<Order> =
        Bus::builder().ring_capacity(RING_CAPACITY).dispatchers(DISPATCHERS).build()?;
    // Subscribes go to the least-loaded shard, ties to the lowest index: audit -> 0,
    // dashboard -> 1, billing -> 0.
    let audit = bus.subscribe(
        Subscription::all().name("audit").capacity(1024).overflow(Overflow::DropNewest),
    )?;
    let dashboard = bus.subscribe(
        Subscription::all().name("dashboard").capacity(4).overflow(Overflow::DropOldest),
    )?;
    // A small `Block` queue: the shard waits for billing whenever it is 4 events behind,
    // so billing loses nothing (and its shard-mate audit is delayed, not starved).
    let billing =
        bus.subscribe(Subscription::all().name("billing").capacity(4).overflow(Overflow::Block))?;

    // audit and billing read while events are published; dashboard reads nothing until
    // everything has been dispatched.
    let readers = [(audit, Overflow::DropNewest), (billing, Overflow::Block)]
        .map(|(sub, overflow)| thread::spawn(move || drain(sub, overflow)));

    let topics = TOPICS.map(|t| Topic::new(t).expect("demo topics are valid"));
    let mut publisher = bus.publisher()?;
    let mut published = Vec::new();
    for id in 0..EVENTS {
        let topic = &topics[id as usize % topics.len()];
        let seq = publisher.publish_blocking(Event::new(topic.clone(), Order { id }))?;
        published.push((seq, topic.clone()));
    }
    publisher.close();

    let mut reports = Vec::new();
    for reader in readers {
        reports.push(reader.join().map_err(|_| "a reader thread panicked")?);
    }
    // Waits until both shards have dispatched every event, so dashboard's queue holds
    // exactly the last 4 events. (After the readers finished: a `Block` push still waiting
    // at close would be dropped.)
    bus.close();
    reports.insert(1, drain(dashboard, Overflow::DropOldest));

    print!("{}", render(&published, &reports));
    check(&reports)
}

/// Receives until `Closed`, recording every delivery and every `Lagged` report.
/// `overflow` is only echoed in the report: the public API does not expose it.
fn drain(mut sub: Subscriber<Order>, overflow: Overflow) -> Received {
    let mut seqs = Vec::new();
    let mut lagged = Vec::new();
    loop {
        match sub.recv_blocking() {
            Ok(delivery) => {
                debug_assert_eq!(delivery.payload().id, delivery.seq());
                seqs.push(delivery.seq());
            }
            Err(RecvError::Lagged(n)) => lagged.push(n),
            Err(RecvError::Closed) => break,
        }
    }
    Received {
        name: sub.name().to_owned(),
        shard: sub.shard(),
        capacity: sub.capacity(),
        overflow,
        seqs,
        lagged,
        dropped: sub.dropped(),
    }
}

fn render(published: &[(u64, Topic)], reports: &[Received]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bus: {DISPATCHERS} dispatchers, ring {RING_CAPACITY}; published {} events (seq {}):",
        published.len(),
        ranges(&published.iter().map(|(seq, _)| *seq).collect::<Vec<_>>()),
    );
    for topic in TOPICS {
        let seqs: Vec<u64> =
            published.iter().filter(|(_, t)| t.as_str() == topic).map(|(s, _)| *s).collect();
        let _ = writeln!(out, "  {topic:<20} {:>2} events", seqs.len());
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<10} {:>5} {:>8}  {:<10} {:>8}  {:<10} {:<8} {:>7}",
        "subscriber", "shard", "capacity", "overflow", "received", "seqs", "lagged", "dropped"
    );
    for r in reports {
        let lagged = if r.lagged.is_empty() {
            "-".to_owned()
        } else {
            r.lagged.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
        };
        let _ = writeln!(
            out,
            "{:<10} {:>5} {:>8}  {:<10} {:>8}  {:<10} {:<8} {:>7}",
            r.name,
            r.shard,
            r.capacity,
            format!("{:?}", r.overflow),
            r.seqs.len(),
            ranges(&r.seqs),
            lagged,
            r.dropped,
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "audit:     DropNewest, room for every event: received all of them.");
    let _ = writeln!(out, "dashboard: read nothing until all were dispatched; DropOldest kept the");
    let _ = writeln!(out, "           newest 4 and reported the others once, as Lagged(n).");
    let _ = writeln!(out, "billing:   Block, read while publishing: lossless, its shard waited.");
    out
}

/// Every event is either received or reported lost, and `dropped()` counts the losses.
fn check(reports: &[Received]) -> Result<(), Box<dyn Error>> {
    for r in reports {
        let lost: u64 = r.lagged.iter().sum();
        if r.seqs.len() as u64 + lost != EVENTS || r.dropped != lost {
            return Err(format!(
                "{}: received {} + lagged {lost} != published {EVENTS}, or dropped {} != {lost}",
                r.name,
                r.seqs.len(),
                r.dropped
            )
            .into());
        }
    }
    Ok(())
}

/// `[0, 1, 2, 5, 7, 8]` -> `"0..=2,5,7..=8"`; `"-"` when empty.
fn ranges(seqs: &[u64]) -> String {
    let mut parts = Vec::new();
    let mut i = 0;
    while i < seqs.len() {
        let mut j = i;
        while j + 1 < seqs.len() && seqs[j + 1] == seqs[j] + 1 {
            j += 1;
        }
        parts.push(if i == j { seqs[i].to_string() } else { format!("{}..={}", seqs[i], seqs[j]) });
        i = j + 1;
    }
    if parts.is_empty() {
        "-".to_owned()
    } else {
        parts.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::ranges;

    #[test]
    fn ranges_compresses_runs() {
        assert_eq!(ranges(&[]), "-");
        assert_eq!(ranges(&[3]), "3");
        assert_eq!(ranges(&[0, 1, 2, 5, 7, 8]), "0..=2,5,7..=8");
    }
}
