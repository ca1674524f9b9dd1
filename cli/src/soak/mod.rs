//! `shardcast soak`: the real bus with real threads for a while (`--duration`, default 60 s),
//! every random choice drawn from one seed (`--seed`, always printed so a run can be
//! repeated), checked all along and at the end.
//!
//! What runs: one publisher whose rate changes by phase (bursts, idle gaps, saturation,
//! paced); subscribers that join and leave under every `Overflow` policy, read by threads
//! (`recv_blocking`, `recv_timeout`, `try_recv`) or tokio tasks (`recv().await`, sometimes cancelled by
//! a timeout); slow and stalling subscribers; patterns, routes and predicates (some panic);
//! late-bound events (alias + route `binds()`, then alias only); `$SYS.stats` events read by
//! a `$SYS.>` subscriber; and a `Bus::close` at the end.
//!
//! # Invariants
//! 1. Accounting: for each subscriber that lives until the close,
//!    `received + lost (Σ Lagged) + filtered = matched`. `matched` and `filtered` are the
//!    soak's own: the publisher thread subscribes between two publishes (so the subscriber's
//!    first event is `next_seq()` at that moment) and, before publishing each event, counts
//!    in every live subscriber's [`Ledger`] whether its patterns (`Pattern::matches`), route
//!    and predicate take it. A subscriber that leaves early, or is disconnected, has `<=`.
//! 2. The bus agrees with the soak: per subscriber, `consumed` = events received,
//!    `dropped` = Σ Lagged (`>=` for one that leaves before the close), `lagged_reports` =
//!    Lagged reports, read from `Bus::stats` before the subscriber is dropped.
//! 3. Order: `seq` strictly increasing per subscriber (so nothing twice); every received
//!    event matches its patterns, its route (the one the soak resolved, late binding
//!    included) and its predicate; payloads arrive intact.
//! 4. Every stats snapshot (one per 100 ms) has closed <= open in every pair and no counter
//!    going backwards; at the end every shard dispatched everything published.
//! 5. Progress: something moves (a publish, a receive, a dispatch) at least every 5 s while
//!    there is work; else every queue's and shard's state is printed and the run fails.
//! 6. Memory: the resident set stays under 256 MiB + (ring capacity + peak Σ queue
//!    capacities) × the size of one queued event.
//!
//! On a violation the run stops early, prints what failed and the command line that
//! repeats it, and exits non-zero. Threads make the interleaving differ between runs of one
//! seed; the seed fixes the bus, the phases and every subscriber's configuration.
//!
//! # Layout
//! - `plan`: everything drawn from the seed (payloads, subscriptions, subscriber plans);
//! - `shared`: the state the threads share (violations, progress counters, ledgers);
//! - `drive`: the publisher thread and its phases;
//! - `receive`: the receivers and their per-delivery checks;
//! - `check`: the monitor thread and the checks at the close;
//! - `report`: the summary and the verdict;
//! - here: the command line and the run (start, drain, close, collect).

use std::error::Error;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use shardcast::Bus;

use self::check::{check_at_close, describe_state, Monitor};
use self::drive::{PublisherTally, Publishing};
use self::plan::{quiet_predicate_panics, Payload, Rng, Setup, BINDING_CAPACITY, TOPICS};
use self::receive::Report;
use self::report::{print_summary, verdict};
use self::shared::Shared;

mod check;
mod drive;
mod plan;
mod receive;
mod report;
mod shared;

/// `shardcast soak` options.
#[derive(Debug, Args)]
pub struct SoakArgs {
    /// How long to publish: a whole number and a unit, ms, s, m or h (500ms, 60s, 5m, 1h)
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: Duration,
    /// Seed of every random choice; default: from the clock (always printed, to rerun)
    #[arg(long)]
    seed: Option<u64>,
}

const STATS_EVERY: Duration = Duration::from_millis(200);
/// How long the end may take: draining the ring, `Bus::close`, every receiver's report.
const END_TIMEOUT: Duration = Duration::from_secs(30);

// ---- command line ------------------------------------------------------------------------

/// `500ms`, `60s`, `5m`, `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let expected = "expected a whole number and a unit: ms, s, m or h (e.g. 500ms, 60s, 5m, 1h)";
    let digits = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(digits);
    let n: u64 = number.parse().map_err(|_| expected.to_owned())?;
    let millis = match unit {
        "ms" => Some(n),
        "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => return Err(expected.to_owned()),
    };
    match millis {
        Some(0) => Err("the duration must be longer than 0".to_owned()),
        Some(ms) => Ok(Duration::from_millis(ms)),
        None => Err("the duration is too long".to_owned()),
    }
}

/// The inverse of [`parse_duration`] (whole milliseconds).
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_millis();
    match ms {
        _ if ms.is_multiple_of(3_600_000) => format!("{}h", ms / 3_600_000),
        _ if ms.is_multiple_of(60_000) => format!("{}m", ms / 60_000),
        _ if ms.is_multiple_of(1000) => format!("{}s", ms / 1000),
        _ => format!("{ms}ms"),
    }
}

fn clock_seed() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    Rng(nanos ^ u64::from(std::process::id()).rotate_left(32)).next()
}

// ---- the run -----------------------------------------------------------------------------

/// Runs the soak; `Err` (after printing what failed and how to rerun it) on a violation.
pub fn run(args: &SoakArgs) -> Result<(), Box<dyn Error>> {
    let seed = args.seed.unwrap_or_else(clock_seed);
    let rerun =
        format!("shardcast soak --duration {} --seed {seed}", format_duration(args.duration));
    println!("soak: seed {seed} (rerun: {rerun})");
    quiet_predicate_panics();
    let mut rng = Rng(seed);
    let setup = Setup::random(&mut rng);
    println!(
        "soak: {} dispatcher(s), ring {}, {} topics, stats events every {STATS_EVERY:?}, for {}",
        setup.dispatchers,
        setup.ring_capacity,
        TOPICS.len(),
        format_duration(args.duration)
    );
    let bus: Bus<Payload> = Bus::builder()
        .dispatchers(setup.dispatchers)
        .ring_capacity(setup.ring_capacity)
        .binding_capacity(BINDING_CAPACITY)
        .build()?;
    bus.publish_stats_every(STATS_EVERY)?;
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_time().build()?;
    let shared = Arc::new(Shared::new(bus.clone()));
    let started = Instant::now();

    let stop_monitor = Arc::new(AtomicBool::new(false));
    let monitor = {
        let monitor = Monitor::new(&shared, setup.ring_capacity as u64, args.duration);
        let stop = Arc::clone(&stop_monitor);
        thread::Builder::new().name("soak-monitor".into()).spawn(move || monitor.run(&stop))?
    };
    let (reports_tx, reports_rx) = mpsc::channel();
    let publisher = {
        let publishing = Publishing::new(
            Arc::clone(&shared),
            bus.publisher()?,
            Rng(rng.next()),
            reports_tx,
            runtime.handle().clone(),
        );
        let deadline = started + args.duration;
        thread::Builder::new()
            .name("soak-publisher".into())
            .spawn(move || publishing.run(deadline))?
    };

    wait_for_publisher(&publisher, &shared);
    let publishing_time = started.elapsed();
    drain_and_close(&shared, &rerun);
    // Joined after the close: dropping the `Publisher` it hands back would close the bus.
    let mut tally = match publisher.join() {
        Ok((tally, publisher)) => {
            drop(publisher);
            tally
        }
        Err(_) => {
            shared.fail("the publisher thread panicked".into());
            PublisherTally::default()
        }
    };
    let reports = collect_reports(&shared, &reports_rx);
    stop_monitor.store(true, Ordering::SeqCst);
    let monitor = monitor.join().map_err(|_| "the monitor thread panicked")?;

    let all_reported = reports.len() == shared.created.load(Ordering::SeqCst);
    let outcomes = check_at_close(&shared, reports, tally.events, args.duration);
    if all_reported {
        // Each has sent its report and returns right after.
        for handle in std::mem::take(&mut tally.threads) {
            let _ = handle.join();
        }
    }
    runtime.shutdown_timeout(Duration::from_secs(1));
    print_summary(
        &outcomes,
        &tally,
        publishing_time,
        &monitor,
        setup.ring_capacity as u64,
        &shared,
    );
    verdict(&shared, &rerun)
}

/// Waits for the publisher's deadline; after a violation, gives it 2 s to notice (it may
/// be blocked in `publish` behind a wedged shard: the close frees it).
fn wait_for_publisher<T>(publisher: &JoinHandle<T>, shared: &Shared) {
    let mut failed_at = None;
    while !publisher.is_finished() {
        if shared.failures.any()
            && failed_at.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(2)
        {
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Lets receivers drain, waits for the shards to dispatch everything, then closes (under
/// the `closing` gate), with a watchdog: a close that hangs ends the process.
fn drain_and_close(shared: &Shared, rerun: &str) {
    shared.draining.store(true, Ordering::SeqCst);
    if !shared.failures.any() {
        wait_dispatched(shared);
    }
    *shared.closing.write().unwrap_or_else(PoisonError::into_inner) = true;
    let bus = shared.bus.clone();
    let (done_tx, done_rx) = mpsc::channel();
    let closer = thread::Builder::new().name("soak-close".into()).spawn(move || {
        bus.close();
        let _ = done_tx.send(());
    });
    if closer.is_err() || done_rx.recv_timeout(END_TIMEOUT).is_err() {
        let state = describe_state(&shared.bus.stats());
        shared.fail(format!("Bus::close did not return within {END_TIMEOUT:?}; state:\n{state}"));
        give_up(shared, rerun);
    }
}

fn wait_dispatched(shared: &Shared) {
    let deadline = Instant::now() + END_TIMEOUT;
    loop {
        let s = shared.bus.stats();
        if s.ring_occupancy == 0 && s.shards.iter().all(|shard| shard.dispatched == s.published) {
            return;
        }
        if Instant::now() > deadline {
            shared.fail(format!(
                "the shards did not dispatch every event within {END_TIMEOUT:?} of the last \
                 publish; state:\n{}",
                describe_state(&s)
            ));
            return;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Prints what failed and how to rerun, and ends the process: for hangs, where the threads
/// involved cannot be joined.
fn give_up(shared: &Shared, rerun: &str) -> ! {
    let _ = verdict(shared, rerun);
    std::process::exit(1);
}

/// Every receiver's report (one per subscriber created), waiting at most `END_TIMEOUT`.
fn collect_reports(shared: &Shared, reports: &Receiver<Report>) -> Vec<Report> {
    let expected = shared.created.load(Ordering::SeqCst);
    let deadline = Instant::now() + END_TIMEOUT;
    let mut got = Vec::with_capacity(expected);
    while got.len() < expected {
        match reports.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(report) => got.push(report),
            Err(_) => {
                shared.fail(format!(
                    "{} of {expected} receivers never reported (no Closed within {END_TIMEOUT:?} \
                     of the close?); state:\n{}",
                    expected - got.len(),
                    describe_state(&shared.bus.stats())
                ));
                break;
            }
        }
    }
    got
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_and_print_back() {
        assert_eq!(format_duration(Duration::from_secs(90)), "90s");
        assert_eq!(format_duration(Duration::from_secs(3600)), "1h");
        for (text, ms) in [("500ms", 500), ("60s", 60_000), ("5m", 300_000), ("1h", 3_600_000)] {
            let d = parse_duration(text).unwrap();
            assert_eq!(d, Duration::from_millis(ms), "{text}");
            assert_eq!(parse_duration(&format_duration(d)), Ok(d), "{text}");
        }
        for bad in ["", "nonsense", "60", "s", "1.5s", "-1s", "0s", "10 s", "1d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
