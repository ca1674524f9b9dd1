//! `shardcast bench`: the standard scenarios against every competitor, one after another in
//! one process, printed as one table (stdout), optionally as JSON and an SVG of latency
//! CDFs.
//!
//! Scenarios (each a saturation run and a paced run, except `slow`):
//! - `fanout`: 1 publisher, N subscribers that each want every event.
//! - `filtered`: 64 subscribers, 16 topics, each subscriber wants one topic (~6%).
//! - `slow`: 16 subscribers, paced, without and then with one more that sleeps 1 ms per
//!   event; the others' p99 should not move.
//! - `bridge` (only when named: it starts a `nats-server`): 1 KiB payloads from bus A to
//!   bus B through `shardcast-nats`, against plain `async-nats` (see `bridge.rs`); a table
//!   of its own, with ratios to plain async-nats.
//! - `idle` (only when named): 64 subscribers and no traffic, shardcast against tokio
//!   broadcast; after a second of warm-up, the process CPU over the next second, as a
//!   percentage of one core (issue 27's target: under 1 %). A table of its own.
//!
//! Ratios compare each row with `tokio::sync::broadcast` on the same row set (scenario,
//! phase, subscribers), measured in the same process minutes apart: on a shared machine
//! only such ratios mean anything.
//!
//! Every row also reports the process CPU time it used (`cpu ms`, JSON `cpu_ns`): user plus
//! system time of every thread from just before the first publish until the last receiver
//! finished (`shardcast_bench::cpu`). Paced rows include the publisher's pacing loop,
//! which yields rather than sleeps and so keeps about one core busy whatever the library.

mod bridge;
mod nats_server;
mod plot;
mod report;
mod stats;

use std::error::Error;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use clap::builder::{PossibleValuesParser, RangedU64ValueParser};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::Usage;
// The competitors live in the workspace's `shardcast-bench` crate, shared with the
// criterion benches (`benches/`).
use bridge::BridgeRow;
use impls::{Impl, Mode, Spec};
pub use shardcast_bench::impls;
use stats::Summary;

/// The most subscribers `--subscribers` accepts: every receiver is a task or an OS thread.
pub const MAX_SUBSCRIBERS: u64 = 10_000;
/// The most events `--events` accepts; the plan check below refuses far fewer on most
/// machines.
pub const MAX_EVENTS: u64 = 1_000_000_000;
/// The highest `--rate` (events/s).
pub const MAX_RATE: u64 = 1_000_000_000;
/// Plans estimated to take longer than this are refused unless `--force`.
pub const MAX_PLAN_SECS: u64 = 600;

/// `shardcast bench` options.
///
/// Exit codes: 2 for a value out of range or a plan refused by the estimate (change the
/// flags or add `--force`), 1 when the run itself fails (e.g. an output path that cannot be
/// written).
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Fewer events (under a minute on 2 cores); same scenarios
    #[arg(long)]
    quick: bool,
    /// Scenarios to run (repeatable or comma-separated); default fanout, filtered and slow
    /// (bridge starts a nats-server, from PATH or $SHARDCAST_NATS_SERVER: only when named;
    /// idle, 64 subscribers and no traffic for 2 s, measures CPU: only when named)
    #[arg(long, value_enum, value_delimiter = ',')]
    scenario: Vec<Scenario>,
    /// Subscriber counts for `fanout` (each 1..=10000)
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "1,4,16,64",
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=MAX_SUBSCRIBERS)
    )]
    subscribers: Vec<usize>,
    /// Events per run, 1..=1000000000 (overrides the defaults; the disruptor's `slow` run
    /// with the slow subscriber is capped at 5000: it runs at that subscriber's pace)
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_EVENTS))]
    events: Option<u64>,
    /// Events/s for the paced latency runs, 1..=1000000000 [default: 100000; bridge: 20000]
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_RATE))]
    rate: Option<u64>,
    /// Sweep paced rates (comma-separated events/s, each 1..=1000000000): every paced phase,
    /// bridge's included, runs once per rate, and the table adds a section grouped by rate.
    /// `--rate R` is the same as `--rates R`; give one or the other
    #[arg(
        long,
        value_delimiter = ',',
        conflicts_with = "rate",
        value_parser = clap::value_parser!(u64).range(1..=MAX_RATE)
    )]
    rates: Vec<u64>,
    /// How receivers run: tokio tasks or OS threads
    #[arg(long, value_enum, default_value_t = ModeArg::Async)]
    mode: ModeArg,
    /// shardcast dispatcher shards, 1..=64. 1, the library's default, is best on 2 cores: 2
    /// and 4 shards were slower at N = 1 to 16 and in filtered, no faster at N=64, and
    /// raised paced p50 and losses (docs/perf/journal.md, attempt 26: the publisher, the shards
    /// and two tokio workers oversubscribe the cores)
    #[arg(
        long,
        default_value_t = 1,
        value_parser = RangedU64ValueParser::<usize>::new().range(1..=shardcast::MAX_DISPATCHERS as u64)
    )]
    dispatchers: usize,
    /// Implementations to run (comma-separated); default all
    #[arg(
        long,
        value_delimiter = ',',
        hide = true,
        value_parser = PossibleValuesParser::new(Impl::ALL.map(Impl::name))
    )]
    only: Vec<String>,
    /// Phases to run (comma-separated: saturation, paced, paced+slow); default all. `bridge`
    /// has saturation and paced
    #[arg(
        long,
        value_delimiter = ',',
        hide = true,
        value_parser = PossibleValuesParser::new(["saturation", "paced", "paced+slow"])
    )]
    phase: Vec<String>,
    /// Write machine-readable results here (checked before the run)
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write latency CDFs (one panel per scenario) here, as SVG (checked before the run)
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Run even if the plan is estimated to take more than 10 minutes or more memory than
    /// is available
    #[arg(long)]
    force: bool,
    /// Give up on a row that runs longer than this (500ms, 90s, 5m, 1h) [default: 60 s plus
    /// ten times the row's estimate]: it is reported as timed out, the run goes on, and the
    /// exit code is 3. A row that never ends is a stalled or hung library (a lost wake-up),
    /// and the run would otherwise just stop
    #[arg(long, value_name = "DURATION", value_parser = crate::soak::parse_duration)]
    row_timeout: Option<Duration>,
}

impl BenchArgs {
    /// The paced rates: `--rates`, else `--rate`, else `default`.
    fn rates(&self, default: u64) -> Vec<u64> {
        if self.rates.is_empty() {
            vec![self.rate.unwrap_or(default)]
        } else {
            self.rates.clone()
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Fanout,
    Filtered,
    Slow,
    Bridge,
    Idle,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Filtered => "filtered",
            Scenario::Slow => "slow",
            Scenario::Bridge => "bridge",
            Scenario::Idle => "idle",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    Async,
    Threads,
}

/// Per-subscriber queue capacity in paced runs: shardcast's default queue size, used for
/// every library's bounded queue so that none has more slack than another.
const QUEUE: usize = 1024;
/// The disruptor's cap in `paced+slow`: it never drops, so it runs at the slow
/// subscriber's 1000 events/s. Every other implementation runs the scenario's full count:
/// a p99 over 5 000 events is the 50th-worst event, too few to compare.
const DISRUPTOR_SLOW_EVENTS: u64 = 5_000;
const FILTERED_SUBSCRIBERS: usize = 64;
const FILTERED_TOPICS: u32 = 16;
const SLOW_SUBSCRIBERS: usize = 16;
/// The paced rate of the other scenarios unless `--rate` says otherwise.
const DEFAULT_RATE: u64 = 100_000;
/// `bridge` events per row (saturation, paced) unless `--events` or `--quick`: about a
/// second at saturation and three when paced at the default 20 000/s.
const BRIDGE_EVENTS: (u64, u64) = (200_000, 60_000);

/// One row of the results.
#[derive(Debug)]
pub struct Row {
    pub scenario: Scenario,
    /// `saturation`, `paced` or `paced+slow`.
    pub phase: &'static str,
    pub imp: Impl,
    pub spec: Spec,
    pub summary: Summary,
    /// The row ran after a row that timed out, whose threads may still be running beside
    /// it: its figures may be off.
    pub after_timeout: bool,
}

/// A row given up on by [`within`]: no figures, only what it was and how long it had.
#[derive(Debug)]
pub struct TimedOutRow {
    pub scenario: Scenario,
    /// `saturation`, `paced`, `paced+slow` or `idle`.
    pub phase: &'static str,
    pub imp: Impl,
    pub spec: Spec,
    pub limit: Duration,
}

/// A planned run.
struct Plan {
    scenario: Scenario,
    phase: &'static str,
    spec: Spec,
}

fn plan(args: &BenchArgs) -> Vec<Plan> {
    let mode = match args.mode {
        ModeArg::Async => Mode::Async,
        ModeArg::Threads => Mode::Threads,
    };
    let (sat_events, paced_events) = match (args.events, args.quick) {
        (Some(n), _) => (n, n),
        (None, true) => (20_000, 20_000),
        (None, false) => (200_000, 100_000),
    };
    let slow_events = args.events.unwrap_or(paced_events);
    let base = Spec {
        subscribers: 1,
        slow: false,
        topics: 1,
        events: sat_events,
        rate: None,
        mode,
        lossless: true,
        queue: QUEUE,
        dispatchers: args.dispatchers,
    };
    let sat = |subscribers, topics| Spec { subscribers, topics, ..base.clone() };
    let paced = |subscribers, topics, slow, events, rate| Spec {
        subscribers,
        topics,
        slow,
        events,
        rate: Some(rate),
        lossless: false,
        ..base.clone()
    };
    let rates = args.rates(DEFAULT_RATE);
    let scenarios = if args.scenario.is_empty() {
        vec![Scenario::Fanout, Scenario::Filtered, Scenario::Slow]
    } else {
        args.scenario.clone()
    };
    let mut plans = Vec::new();
    let mut add = |scenario, phase: &'static str, spec| {
        if args.phase.is_empty() || args.phase.iter().any(|p| p == phase) {
            plans.push(Plan { scenario, phase, spec });
        }
    };
    for scenario in scenarios {
        match scenario {
            Scenario::Fanout => {
                for &n in &args.subscribers {
                    add(scenario, "saturation", sat(n, 1));
                    for &rate in &rates {
                        add(scenario, "paced", paced(n, 1, false, paced_events, rate));
                    }
                }
            }
            Scenario::Filtered => {
                add(scenario, "saturation", sat(FILTERED_SUBSCRIBERS, FILTERED_TOPICS));
                for &rate in &rates {
                    let (n, topics) = (FILTERED_SUBSCRIBERS, FILTERED_TOPICS);
                    add(scenario, "paced", paced(n, topics, false, paced_events, rate));
                }
            }
            Scenario::Slow => {
                let events = slow_events;
                for &rate in &rates {
                    add(scenario, "paced", paced(SLOW_SUBSCRIBERS, 1, false, events, rate));
                    add(scenario, "paced+slow", paced(SLOW_SUBSCRIBERS, 1, true, events, rate));
                }
            }
            // Not `Impl` row sets: see `bridge_plan` and `idle_plan`.
            Scenario::Bridge | Scenario::Idle => {}
        }
    }
    plans
}

/// The `bridge` scenario's rows, `(phase, spec)`, if it was asked for. One publisher and
/// one receiver, a tokio task whatever `--mode` says (async-nats has no blocking API);
/// `queue` is the bridge's export and bus B subscription capacity.
fn bridge_plan(args: &BenchArgs) -> Vec<(&'static str, Spec)> {
    if !args.scenario.contains(&Scenario::Bridge) {
        return Vec::new();
    }
    let (sat_events, paced_events) = match (args.events, args.quick) {
        (Some(n), _) => (n, n),
        (None, true) => (20_000, 20_000),
        (None, false) => BRIDGE_EVENTS,
    };
    let mode = Mode::Async;
    let spec = |events, rate, lossless| Spec {
        subscribers: 1,
        slow: false,
        topics: 1,
        events,
        rate,
        mode,
        lossless,
        queue: QUEUE,
        dispatchers: args.dispatchers,
    };
    let paced = args.rates(bridge::DEFAULT_RATE).into_iter();
    std::iter::once(("saturation", spec(sat_events, None, true)))
        .chain(paced.map(|rate| ("paced", spec(paced_events, Some(rate), false))))
        .filter(|(phase, _)| args.phase.is_empty() || args.phase.iter().any(|p| p == phase))
        .collect()
}

/// `idle`: subscribers per row.
const IDLE_SUBSCRIBERS: usize = 64;
/// `idle`: quiet time before the measured window (threads started, first parks done).
const IDLE_WARMUP: Duration = Duration::from_secs(1);
/// `idle`: the measured window.
const IDLE_WINDOW: Duration = Duration::from_secs(1);

/// One row of the `idle` scenario.
#[derive(Debug)]
pub struct IdleRow {
    pub imp: Impl,
    pub spec: Spec,
    pub idle: impls::Idle,
}

/// The `idle` scenario's spec, if it was asked for: [`IDLE_SUBSCRIBERS`] receivers in
/// `--mode` with the paced runs' queues, and no events.
fn idle_plan(args: &BenchArgs) -> Option<Spec> {
    args.scenario.contains(&Scenario::Idle).then_some(Spec {
        subscribers: IDLE_SUBSCRIBERS,
        slow: false,
        topics: 1,
        events: 0,
        rate: None,
        mode: match args.mode {
            ModeArg::Async => Mode::Async,
            ModeArg::Threads => Mode::Threads,
        },
        lossless: false,
        queue: QUEUE,
        dispatchers: args.dispatchers,
    })
}

pub fn run(args: &BenchArgs) -> Result<(), Box<dyn Error>> {
    let impls: Vec<Impl> = Impl::ALL
        .into_iter()
        .filter(|i| args.only.is_empty() || args.only.iter().any(|o| o == i.name()))
        .collect();
    let plans = plan(args);
    let bridge_plans = bridge_plan(args);
    let idle_spec = idle_plan(args);
    let idle_impls: Vec<Impl> = match &idle_spec {
        Some(_) => impls.iter().copied().filter(|&i| impls::supports_idle(i)).collect(),
        None => Vec::new(),
    };
    let idle_secs = (IDLE_WARMUP + IDLE_WINDOW).as_secs() * idle_impls.len() as u64;
    let runs: Vec<&Spec> = plans
        .iter()
        .flat_map(|p| impls.iter().filter(|i| i.supports(&p.spec)).map(|_| &p.spec))
        .collect();
    if !args.force {
        let bridge_runs: Vec<&Spec> = bridge_plans.iter().map(|(_, spec)| spec).collect();
        let estimate = Estimate::of(&runs)
            .and(Estimate::of_bridge(&bridge_runs))
            .and(Estimate { secs: idle_secs, bytes: 0 });
        estimate.check(mem_available())?;
    }
    // Open (and so create or truncate) the outputs now: a bad path fails in a second, not
    // after the whole run.
    let json_file = args.json.as_deref().map(|p| open_output("--json", p)).transpose()?;
    if let Some(path) = &args.plot {
        open_output("--plot", path)?;
    }
    // Each bridge plan is a plain async-nats row and a shardcast-nats row.
    let total = (runs.len() + 2 * bridge_plans.len() + idle_impls.len()) as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut rows = Vec::new();
    let mut timed_out: Vec<TimedOutRow> = Vec::new();
    for p in plans {
        for &imp in impls.iter().filter(|i| i.supports(&p.spec)) {
            let row = format!(
                "{} {} {} n={}",
                p.scenario.name(),
                p.phase,
                imp.name(),
                p.spec.receivers()
            );
            bar.set_message(row.clone());
            let mut spec = p.spec.clone();
            if imp == Impl::Disruptor && spec.slow {
                spec.events = spec.events.min(DISRUPTOR_SLOW_EVENTS);
            }
            let limit = args.row_timeout.unwrap_or_else(|| default_row_timeout(&spec));
            let run_spec = spec.clone();
            let hang = test_hang(imp);
            match within(limit, &bar, &row, move || {
                if hang {
                    hang_forever();
                }
                impls::run(imp, &run_spec)
            }) {
                Some(outcome) => {
                    let summary = stats::summarize(&spec, &outcome);
                    let after_timeout = !timed_out.is_empty();
                    let (scenario, phase) = (p.scenario, p.phase);
                    rows.push(Row { scenario, phase, imp, spec, summary, after_timeout });
                }
                None => timed_out.push(TimedOutRow {
                    scenario: p.scenario,
                    phase: p.phase,
                    imp,
                    spec,
                    limit,
                }),
            }
            bar.inc(1);
        }
    }
    let bridge_rows: Vec<BridgeRow> = bridge::run(&bridge_plans, &bar);
    let mut idle_rows = Vec::new();
    if let Some(spec) = idle_spec {
        for imp in idle_impls {
            let row = format!("idle {} n={}", imp.name(), spec.receivers());
            bar.set_message(row.clone());
            let limit = args.row_timeout.unwrap_or(Duration::from_secs(60) + IDLE_WARMUP);
            let run_spec = spec.clone();
            let idle = within(limit, &bar, &row, move || {
                impls::idle(imp, &run_spec, IDLE_WARMUP, IDLE_WINDOW)
            });
            match idle {
                Some(idle) => {
                    let idle = idle.expect("supports_idle filtered the implementations");
                    idle_rows.push(IdleRow { imp, spec: spec.clone(), idle });
                }
                None => timed_out.push(TimedOutRow {
                    scenario: Scenario::Idle,
                    phase: "idle",
                    imp,
                    spec: spec.clone(),
                    limit,
                }),
            }
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    let mut tables = Vec::new();
    if !rows.is_empty() || !timed_out.is_empty() || (bridge_rows.is_empty() && idle_rows.is_empty())
    {
        tables.push(report::table(&rows, &timed_out));
    }
    if !bridge_rows.is_empty() {
        tables.push(report::bridge_table(&bridge_rows));
    }
    if !idle_rows.is_empty() {
        tables.push(report::idle_table(&idle_rows, IDLE_WARMUP, IDLE_WINDOW));
    }
    print!("{}", tables.join("\n"));
    if let (Some(path), Some(mut file)) = (&args.json, json_file) {
        let json = report::json(&rows, &bridge_rows, &idle_rows, &timed_out, args.quick);
        file.write_all(serde_json::to_string_pretty(&json)?.as_bytes())
            .map_err(|e| format!("--json: cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        plot::cdfs(&rows, path)?;
    }
    if !timed_out.is_empty() {
        let _ = std::io::stdout().flush();
        eprintln!(
            "shardcast bench: {} row(s) did not finish within their limit and were given up \
             on (a stall or a lost wake-up in that implementation): {}. Every other row was \
             printed and written. Rerun one alone with --scenario, --subscribers and --only, \
             or allow more with --row-timeout.",
            timed_out.len(),
            timed_out
                .iter()
                .map(|t| format!("`{} {} {}`", t.scenario.name(), t.phase, t.imp.name()))
                .collect::<Vec<_>>()
                .join(", ")
        );
        // The given-up rows' threads may still be running (nothing can stop them from
        // outside): leave the process rather than wait for them.
        std::process::exit(EXIT_ROW_TIMEOUT);
    }
    Ok(())
}

/// Test hook: `SHARDCAST_BENCH_TEST_HANG=<implementation name>` makes that implementation's
/// rows hang instead of running, so a test can make exactly one row time out. Not a user
/// feature; undocumented outside this comment and the test that uses it.
fn test_hang(imp: Impl) -> bool {
    std::env::var("SHARDCAST_BENCH_TEST_HANG").is_ok_and(|name| name == imp.name())
}

/// What a hung row does for [`test_hang`]: never returns.
fn hang_forever() -> ! {
    loop {
        std::thread::park();
    }
}

/// The row limit without `--row-timeout`: a minute more than ten times the estimate, which
/// already assumes the slow end of this machine.
fn default_row_timeout(spec: &Spec) -> Duration {
    let estimate = Estimate::of(&[spec]).secs;
    Duration::from_secs(estimate.saturating_mul(10).saturating_add(60))
}

/// Exit code of a run in which a row timed out (2 is a usage error, 1 any other failure).
const EXIT_ROW_TIMEOUT: i32 = 3;

/// Runs `f` on a thread of its own and waits up to `limit` for it. `None` if it has not
/// returned by then: the row is given up on and its thread (and whatever threads the row
/// started) abandoned, still running, since nothing can stop them from outside; the caller
/// goes on with the next row and the process exits at the end of the run. A panic in `f`
/// is passed on.
fn within<R: Send + 'static>(
    limit: Duration,
    bar: &ProgressBar,
    row: &str,
    f: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    let (done, finished) = std::sync::mpsc::channel::<R>();
    let runner = std::thread::Builder::new()
        .name("bench-row".into())
        .spawn(move || {
            let _ = done.send(f());
        })
        .expect("spawn a bench row thread");
    match finished.recv_timeout(limit) {
        Ok(result) => {
            let _ = runner.join();
            Some(result)
        }
        Err(RecvTimeoutError::Timeout) => {
            bar.suspend(|| {
                eprintln!(
                    "shardcast bench: the row `{row}` did not finish within {}; given up on, \
                     its threads left running. The run goes on; the rows after it may be \
                     slowed by them.",
                    crate::soak::format_duration(limit)
                );
            });
            None
        }
        // The row panicked: its sender was dropped without a result.
        Err(RecvTimeoutError::Disconnected) => match runner.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("a row thread that returned sent its result"),
        },
    }
}

/// Creates (or truncates) an output file, so that a missing directory or a read-only one is
/// reported before the run.
fn open_output(flag: &str, path: &Path) -> Result<File, String> {
    File::create(path).map_err(|e| format!("{flag}: cannot write {}: {e}", path.display()))
}

/// Assumed delivery rate of a saturation run (deliveries/s), for the estimate only. On 2
/// cores the fastest rows deliver some tens of millions per second and the slowest a few
/// million; the estimate takes the slow end so that it errs towards refusing.
const SATURATION_DELIVERIES_PER_SEC: u64 = 5_000_000;
/// Bytes per delivery at the peak of a run: the receiver's `(seq, nanos)` record (16) and
/// the event held in a lossless queue (16 plus per-slot overhead).
const BYTES_PER_DELIVERY: u64 = 48;
/// Bytes per published event: its publish stamp and a slot in the widest ring.
const BYTES_PER_EVENT: u64 = 72;
/// Bytes per receiver besides its records: its queue, its task or thread.
const BYTES_PER_RECEIVER: u64 = 64 * 1024;
/// Assumed rate of a `bridge` saturation row (messages/s), for the estimate only: the slow
/// end of what a debug build managed on 2 cores.
const BRIDGE_SATURATION_PER_SEC: u64 = 20_000;
/// Extra seconds per `bridge` row: connecting, and the idle wait when messages were lost.
const BRIDGE_ROW_OVERHEAD_SECS: u64 = 2;

/// What a plan is expected to cost: the sum of its runs' durations, the largest run's
/// memory (runs are sequential, and each frees its memory before the next).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Estimate {
    secs: u64,
    bytes: u64,
}

impl Estimate {
    fn of(runs: &[&Spec]) -> Estimate {
        let mut secs = 0u64;
        let mut bytes = 0u64;
        for spec in runs {
            let receivers = spec.receivers() as u64;
            let deliveries: u64 = (0..spec.receivers()).map(|s| spec.expected(s)).sum();
            let run_secs = match spec.rate {
                Some(rate) => spec.events.div_ceil(rate),
                None => deliveries.div_ceil(SATURATION_DELIVERIES_PER_SEC),
            };
            secs = secs.saturating_add(run_secs);
            let run_bytes = deliveries
                .saturating_mul(BYTES_PER_DELIVERY)
                .saturating_add(spec.events.saturating_mul(BYTES_PER_EVENT))
                .saturating_add(receivers.saturating_mul(BYTES_PER_RECEIVER));
            bytes = bytes.max(run_bytes);
        }
        Estimate { secs, bytes }
    }

    /// `bridge` rows: each spec runs twice (plain async-nats, then the bridge), NATS-bound
    /// at saturation; memory is the receiver's records and the event in flight, 1 KiB each.
    fn of_bridge(runs: &[&Spec]) -> Estimate {
        let mut secs = 0u64;
        let mut bytes = 0u64;
        for spec in runs {
            let rate = spec.rate.unwrap_or(BRIDGE_SATURATION_PER_SEC);
            let row_secs = spec.events.div_ceil(rate).saturating_add(BRIDGE_ROW_OVERHEAD_SECS);
            secs = secs.saturating_add(row_secs.saturating_mul(2));
            bytes = bytes.max(spec.events.saturating_mul(BYTES_PER_DELIVERY + BYTES_PER_EVENT));
        }
        Estimate { secs, bytes }
    }

    /// Two plans run one after the other.
    fn and(self, other: Estimate) -> Estimate {
        Estimate { secs: self.secs.saturating_add(other.secs), bytes: self.bytes.max(other.bytes) }
    }

    /// Refuses a plan over [`MAX_PLAN_SECS`] or over `available` bytes (when known).
    fn check(self, available: Option<u64>) -> Result<(), Usage> {
        let mut problems = Vec::new();
        if self.secs > MAX_PLAN_SECS {
            problems.push(format!(
                "estimated time {} s exceeds the limit of {MAX_PLAN_SECS} s",
                self.secs
            ));
        }
        if let Some(available) = available.filter(|&a| self.bytes > a) {
            problems.push(format!(
                "estimated memory {} MiB exceeds the {} MiB available (MemAvailable)",
                self.bytes >> 20,
                available >> 20
            ));
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(Usage(format!(
                "bench plan refused: {}; lower --events or --subscribers (or choose fewer \
                 --scenario), or pass --force",
                problems.join("; ")
            )))
        }
    }
}

/// `MemAvailable` from `/proc/meminfo`, in bytes; `None` where there is no such file.
fn mem_available() -> Option<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    parse_mem_available(&meminfo)
}

fn parse_mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(events: u64, subscribers: usize, rate: Option<u64>) -> Spec {
        Spec {
            subscribers,
            slow: false,
            topics: 1,
            events,
            rate,
            mode: Mode::Async,
            lossless: rate.is_none(),
            queue: QUEUE,
            dispatchers: 1,
        }
    }

    #[test]
    fn parses_mem_available() {
        let meminfo = "MemTotal:  16000000 kB\nMemFree: 1000 kB\nMemAvailable:    2048 kB\n";
        assert_eq!(parse_mem_available(meminfo), Some(2048 * 1024));
        assert_eq!(parse_mem_available("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn estimate_sums_time_and_takes_the_largest_run_for_memory() {
        let a = spec(10_000_000, 1, None);
        let b = spec(1_000_000, 1, Some(100_000));
        let e = Estimate::of(&[&a, &b]);
        assert_eq!(e.secs, 2 + 10);
        assert_eq!(
            e.bytes,
            10_000_000 * (BYTES_PER_DELIVERY + BYTES_PER_EVENT) + BYTES_PER_RECEIVER
        );
    }

    #[test]
    fn bridge_estimate_counts_both_sides_of_each_row() {
        let paced = spec(60_000, 1, Some(20_000));
        let saturation = spec(BRIDGE_SATURATION_PER_SEC * 5, 1, None);
        let e = Estimate::of_bridge(&[&saturation, &paced]);
        assert_eq!(e.secs, 2 * (5 + BRIDGE_ROW_OVERHEAD_SECS) + 2 * (3 + BRIDGE_ROW_OVERHEAD_SECS));
        let both = Estimate { secs: 1, bytes: 10 }.and(Estimate { secs: 2, bytes: 5 });
        assert_eq!(both, Estimate { secs: 3, bytes: 10 });
    }

    #[test]
    fn check_refuses_long_or_large_plans_with_the_estimate() {
        let small = Estimate { secs: 10, bytes: 1 << 20 };
        assert!(small.check(Some(1 << 30)).is_ok());
        assert!(small.check(None).is_ok());
        let slow = Estimate { secs: 601, bytes: 1 << 20 }.check(Some(1 << 30)).unwrap_err();
        assert!(slow.0.contains("estimated time 601 s"), "{}", slow.0);
        assert!(slow.0.contains("--force"), "{}", slow.0);
        let big = Estimate { secs: 10, bytes: 4 << 30 }.check(Some(1 << 30)).unwrap_err();
        assert!(big.0.contains("estimated memory 4096 MiB exceeds the 1024 MiB"), "{}", big.0);
    }
}
