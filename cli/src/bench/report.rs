//! The results as a text table (stdout) and as JSON (`--json`).

use std::fmt::Write as _;

use serde_json::{json, Value};

use super::impls::Impl;
use super::Row;

/// Bumped whenever a field changes meaning or disappears.
pub const JSON_VERSION: u32 = 1;

/// The tokio broadcast row of `row`'s row set (same scenario, phase and subscribers).
fn baseline<'a>(rows: &'a [Row], row: &Row) -> Option<&'a Row> {
    rows.iter().find(|b| {
        b.imp == Impl::TokioBroadcast
            && b.scenario == row.scenario
            && b.phase == row.phase
            && b.spec.subscribers == row.spec.subscribers
    })
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// Throughput and p99 relative to tokio broadcast.
fn ratios(rows: &[Row], row: &Row) -> (Option<f64>, Option<f64>) {
    match baseline(rows, row) {
        Some(b) => (
            ratio(row.summary.deliveries_per_s(), b.summary.deliveries_per_s()),
            ratio(row.summary.latency.p99 as f64, b.summary.latency.p99 as f64),
        ),
        None => (None, None),
    }
}

/// The same implementation's `paced` row in the `slow` scenario (no slow subscriber).
fn without_slow<'a>(rows: &'a [Row], row: &Row) -> Option<&'a Row> {
    rows.iter().find(|b| b.imp == row.imp && b.scenario == row.scenario && b.phase == "paced")
}

fn us(ns: u64) -> String {
    let us = ns as f64 / 1e3;
    if us >= 100.0 {
        format!("{us:.0}")
    } else {
        format!("{us:.1}")
    }
}

fn x(r: Option<f64>) -> String {
    r.map_or("-".to_owned(), |r| format!("{r:.2}x"))
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<9} {:<10} {:<22} {:>5} {:>7} {:>12} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8}",
        "scenario",
        "phase",
        "implementation",
        "subs",
        "events",
        "deliv/s",
        "p50 us",
        "p99 us",
        "p999 us",
        "max us",
        "lost",
        "thr/tok",
        "p99/tok"
    );
    for row in rows {
        let s = &row.summary;
        let (thr, p99) = ratios(rows, row);
        let subs = if row.spec.slow {
            format!("{}+1", row.spec.subscribers)
        } else {
            row.spec.subscribers.to_string()
        };
        let _ = writeln!(
            out,
            "{:<9} {:<10} {:<22} {:>5} {:>7} {:>12.0} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8}",
            row.scenario.name(),
            row.phase,
            row.imp.name(),
            subs,
            row.spec.events,
            s.deliveries_per_s(),
            us(s.latency.p50),
            us(s.latency.p99),
            us(s.latency.p999),
            us(s.latency.max),
            s.lost,
            x(thr),
            x(p99),
        );
    }
    let slow: Vec<&Row> = rows.iter().filter(|r| r.spec.slow).collect();
    if !slow.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "slow: the other subscribers' fan-out p99 without / with the slow one, what happened \
             to it, and the publish rate achieved with it"
        );
        let _ = writeln!(
            out,
            "{:<22} {:>10} {:>10} {:>8} {:>10} {:>9}  policy",
            "implementation", "p99 w/o us", "p99 w/ us", "change", "slow lost", "pub/s"
        );
        for row in slow {
            let before = without_slow(rows, row).map(|b| b.summary.latency.p99);
            let change = before
                .and_then(|b| ratio(row.summary.latency.p99 as f64, b as f64))
                .map_or("-".to_owned(), |r| format!("{:+.0}%", (r - 1.0) * 100.0));
            let _ = writeln!(
                out,
                "{:<22} {:>10} {:>10} {:>8} {:>10} {:>9.0}  {}",
                row.imp.name(),
                before.map_or("-".to_owned(), us),
                us(row.summary.latency.p99),
                change,
                row.summary.slow_lost.unwrap_or(0),
                row.summary.publish_rate(row.spec.events),
                row.imp.slow_policy(),
            );
        }
    }
    out
}

/// `{"version", "cores", "quick", "rows": [...]}`; latencies in nanoseconds.
pub fn json(rows: &[Row], quick: bool) -> Value {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rows: Vec<Value> = rows
        .iter()
        .map(|row| {
            let s = &row.summary;
            let (thr, p99) = ratios(rows, row);
            let others_p99_change = row
                .spec
                .slow
                .then(|| without_slow(rows, row))
                .flatten()
                .and_then(|b| ratio(s.latency.p99 as f64, b.summary.latency.p99 as f64))
                .map(|r| r - 1.0);
            json!({
                "scenario": row.scenario.name(),
                "phase": row.phase,
                "implementation": row.imp.name(),
                "subscribers": row.spec.subscribers,
                "slow_subscriber": row.spec.slow,
                "topics": row.spec.topics,
                "events": row.spec.events,
                "rate": row.spec.rate,
                "mode": row.spec.mode.name(),
                "dispatchers": row.spec.dispatchers,
                "deliveries": s.deliveries,
                "expected_deliveries": s.expected,
                "elapsed_ns": s.elapsed_ns,
                "publish_rate": s.publish_rate(row.spec.events),
                "deliveries_per_s": s.deliveries_per_s(),
                "latency_ns": {
                    "count": s.latency.count,
                    "p50": s.latency.p50,
                    "p99": s.latency.p99,
                    "p999": s.latency.p999,
                    "max": s.latency.max,
                },
                "lost": s.lost,
                "slow_lost": s.slow_lost,
                "reported_lost": s.reported_lost,
                "throughput_vs_tokio": thr,
                "p99_vs_tokio": p99,
                "others_p99_change": others_p99_change,
            })
        })
        .collect();
    json!({ "version": JSON_VERSION, "cores": cores, "quick": quick, "rows": rows })
}
