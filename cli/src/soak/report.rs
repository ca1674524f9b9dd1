//! The end of the run: the summary table (per policy and receive style), the publisher's and
//! the monitor's lines, and the verdict.

use std::collections::BTreeMap;
use std::error::Error;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::check::{event_bytes, Fate, MonitorReport, Outcome, MEMORY_ALLOWANCE};
use super::drive::PublisherTally;
use super::plan::{Style, POLICIES};
use super::shared::{lock, Shared};

#[derive(Default)]
pub(super) struct Row {
    pub(super) subs: u64,
    pub(super) at_close: u64,
    pub(super) left: u64,
    pub(super) disconnected: u64,
    pub(super) received: u64,
    pub(super) lost: u64,
    pub(super) filtered: u64,
    pub(super) lag_reports: u64,
}

impl Row {
    fn add(&mut self, o: &Outcome) {
        self.subs += 1;
        match o.fate {
            Fate::AtClose => self.at_close += 1,
            Fate::Left => self.left += 1,
            Fate::Disconnected => self.disconnected += 1,
        }
        self.received += o.seen.received;
        self.lost += o.seen.lost;
        self.filtered += o.counts.filtered();
        self.lag_reports += o.seen.lag_reports;
    }
}

pub(super) fn print_summary(
    outcomes: &[Outcome],
    tally: &PublisherTally,
    publishing_time: Duration,
    monitor: &MonitorReport,
    ring_capacity: u64,
    shared: &Shared,
) {
    let mut rows: BTreeMap<(usize, Style), Row> = BTreeMap::new();
    let mut sys = Row::default();
    for o in outcomes {
        if o.plan.sys {
            sys.add(o);
        } else {
            let policy = POLICIES.iter().position(|&p| p == o.plan.overflow).unwrap_or(0);
            rows.entry((policy, o.plan.style)).or_default().add(o);
        }
    }
    println!();
    println!(
        "{:<11} {:<13} {:>5} {:>8} {:>5} {:>7} {:>12} {:>10} {:>10} {:>7}",
        "policy",
        "receive",
        "subs",
        "to-close",
        "left",
        "discon.",
        "received",
        "lost",
        "filtered",
        "lagged"
    );
    for ((policy, style), r) in &rows {
        let policy = format!("{:?}", POLICIES[*policy]);
        print_row(&policy, &style.to_string(), r);
    }
    print_row("$SYS.>", "recv_timeout", &sys);
    println!();
    let secs = publishing_time.as_secs_f64().max(1e-9);
    let kinds: Vec<String> = tally.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect();
    println!(
        "publisher: {} events in {:.1} s ({:.0}/s): {}; waits on a full ring: {}",
        tally.events,
        secs,
        tally.events as f64 / secs,
        kinds.join(", "),
        shared.bus.stats().publisher_waits
    );
    let phases: Vec<String> = tally
        .phases
        .iter()
        .map(|(name, p)| match *name {
            "idle" => format!("idle {} ({:.1} s)", p.runs, p.time.as_secs_f64()),
            _ => format!("{name} {} ({} events)", p.runs, p.events),
        })
        .collect();
    println!("phases: {}", phases.join(", "));
    let peak_capacity = shared.peak_capacity.load(Ordering::SeqCst);
    println!(
        "checks: {} stats snapshots; peak RSS {} MiB, bound {} MiB = {} MiB + (ring {ring_capacity} \
         + peak queue capacity {peak_capacity}) x {} B",
        monitor.snapshots,
        monitor.peak_rss.map_or_else(|| "?".to_owned(), |b| (b >> 20).to_string()),
        monitor.bound >> 20,
        MEMORY_ALLOWANCE >> 20,
        event_bytes()
    );
}

pub(super) fn print_row(policy: &str, style: &str, r: &Row) {
    println!(
        "{policy:<11} {style:<13} {:>5} {:>8} {:>5} {:>7} {:>12} {:>10} {:>10} {:>7}",
        r.subs, r.at_close, r.left, r.disconnected, r.received, r.lost, r.filtered, r.lag_reports
    );
}

/// `Ok` if nothing failed; else prints every violation kept and the command to rerun.
pub(super) fn verdict(shared: &Shared, rerun: &str) -> Result<(), Box<dyn Error>> {
    let n = shared.failures.count.load(Ordering::SeqCst);
    if n == 0 {
        println!("soak: OK");
        return Ok(());
    }
    eprintln!("soak: FAILED with {n} violation(s):");
    for what in lock(&shared.failures.list).iter() {
        eprintln!("  - {what}");
    }
    eprintln!("soak: rerun with: {rerun}");
    Err(format!("soak failed with {n} violation(s); rerun with: {rerun}").into())
}
