//! `ringcast bench`: the standard scenarios against every competitor, one after another in
//! one process, printed as one table (stdout), optionally as JSON and an SVG of latency
//! CDFs.
//!
//! Scenarios (each a saturation run and a paced run, except `slow`):
//! - `fanout`: 1 publisher, N subscribers that each want every event.
//! - `filtered`: 64 subscribers, 16 topics, each subscriber wants one topic (~6%).
//! - `slow`: 16 subscribers, paced, without and then with one more that sleeps 1 ms per
//!   event; the others' p99 should not move.
//!
//! Ratios compare each row with `tokio::sync::broadcast` on the same row set (scenario,
//! phase, subscribers), measured in the same process minutes apart: on a shared machine
//! only such ratios mean anything.

pub mod impls;
mod plot;
mod report;
mod stats;

use std::error::Error;
use std::path::PathBuf;

use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use impls::{Impl, Mode, Spec};
use stats::Summary;

/// `ringcast bench` options.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Fewer events (under a minute on 2 cores); same scenarios
    #[arg(long)]
    quick: bool,
    /// Scenarios to run (repeatable or comma-separated); default all
    #[arg(long, value_enum, value_delimiter = ',')]
    scenario: Vec<Scenario>,
    /// Subscriber counts for `fanout`
    #[arg(long, value_delimiter = ',', default_value = "1,4,16,64")]
    subscribers: Vec<usize>,
    /// Events per run (overrides the defaults; the disruptor's `slow` run with the slow
    /// subscriber is capped at 5000: it runs at that subscriber's pace)
    #[arg(long)]
    events: Option<u64>,
    /// Events/s for the paced latency runs
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// How receivers run: tokio tasks or OS threads
    #[arg(long, value_enum, default_value_t = ModeArg::Async)]
    mode: ModeArg,
    /// ringcast dispatcher shards. 1, the library's default, is best on 2 cores: a second
    /// shard thread did not raise N=64 saturation throughput measurably, and it made paced
    /// p99 worse (the publisher, two shards and two tokio workers oversubscribe the cores)
    #[arg(long, default_value_t = 1)]
    dispatchers: usize,
    /// Implementations to run (comma-separated); default all
    #[arg(long, value_delimiter = ',', hide = true)]
    only: Vec<String>,
    /// Phases to run (comma-separated: saturation, paced, paced+slow); default all
    #[arg(long, value_delimiter = ',', hide = true)]
    phase: Vec<String>,
    /// Write machine-readable results here
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write latency CDFs (one panel per scenario) here, as SVG
    #[arg(long)]
    plot: Option<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Scenario {
    Fanout,
    Filtered,
    Slow,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Fanout => "fanout",
            Scenario::Filtered => "filtered",
            Scenario::Slow => "slow",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ModeArg {
    Async,
    Threads,
}

/// Per-subscriber queue capacity in paced runs: ringcast's default queue size, used for
/// every library's bounded queue so that none has more slack than another.
const QUEUE: usize = 1024;
/// The disruptor's cap in `paced+slow`: it never drops, so it runs at the slow
/// subscriber's 1000 events/s. Every other implementation runs the scenario's full count:
/// a p99 over 5 000 events is the 50th-worst event, too few to compare.
const DISRUPTOR_SLOW_EVENTS: u64 = 5_000;
const FILTERED_SUBSCRIBERS: usize = 64;
const FILTERED_TOPICS: u32 = 16;
const SLOW_SUBSCRIBERS: usize = 16;

/// One row of the results.
#[derive(Debug)]
pub struct Row {
    pub scenario: Scenario,
    /// `saturation`, `paced` or `paced+slow`.
    pub phase: &'static str,
    pub imp: Impl,
    pub spec: Spec,
    pub summary: Summary,
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
    let paced = |subscribers, topics, slow, events| Spec {
        subscribers,
        topics,
        slow,
        events,
        rate: Some(args.rate),
        lossless: false,
        ..base.clone()
    };
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
                    add(scenario, "paced", paced(n, 1, false, paced_events));
                }
            }
            Scenario::Filtered => {
                add(scenario, "saturation", sat(FILTERED_SUBSCRIBERS, FILTERED_TOPICS));
                let spec = paced(FILTERED_SUBSCRIBERS, FILTERED_TOPICS, false, paced_events);
                add(scenario, "paced", spec);
            }
            Scenario::Slow => {
                let events = slow_events;
                add(scenario, "paced", paced(SLOW_SUBSCRIBERS, 1, false, events));
                add(scenario, "paced+slow", paced(SLOW_SUBSCRIBERS, 1, true, events));
            }
        }
    }
    plans
}

pub fn run(args: &BenchArgs) -> Result<(), Box<dyn Error>> {
    if args.subscribers.contains(&0) || args.rate == 0 || args.events == Some(0) {
        return Err("--subscribers, --rate and --events must be positive".into());
    }
    let impls: Vec<Impl> = Impl::ALL
        .into_iter()
        .filter(|i| args.only.is_empty() || args.only.iter().any(|o| o == i.name()))
        .collect();
    let plans = plan(args);
    let total: u64 =
        plans.iter().map(|p| impls.iter().filter(|i| i.supports(&p.spec)).count() as u64).sum();
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let mut rows = Vec::new();
    for p in plans {
        for &imp in impls.iter().filter(|i| i.supports(&p.spec)) {
            bar.set_message(format!(
                "{} {} {} n={}",
                p.scenario.name(),
                p.phase,
                imp.name(),
                p.spec.receivers()
            ));
            let mut spec = p.spec.clone();
            if imp == Impl::Disruptor && spec.slow {
                spec.events = spec.events.min(DISRUPTOR_SLOW_EVENTS);
            }
            let outcome = impls::run(imp, &spec);
            let summary = stats::summarize(&spec, &outcome);
            rows.push(Row { scenario: p.scenario, phase: p.phase, imp, spec, summary });
            bar.inc(1);
        }
    }
    bar.finish_and_clear();
    print!("{}", report::table(&rows));
    if let Some(path) = &args.json {
        let json = report::json(&rows, args.quick);
        std::fs::write(path, serde_json::to_string_pretty(&json)?)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        plot::cdfs(&rows, path)?;
    }
    Ok(())
}
