//! The results as a text table (stdout) and as JSON (`--json`).

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::{json, Value};

use super::bridge::{self, BridgeRow, Side};
use super::impls::Impl;
use super::stats::Summary;
use super::{IdleRow, Row, TimedOutRow};

/// Bumped whenever a field changes meaning or disappears.
pub const JSON_VERSION: u32 = 1;

/// The tokio broadcast row of `row`'s row set (same scenario, phase, subscribers and rate).
fn baseline<'a>(rows: &'a [Row], row: &Row) -> Option<&'a Row> {
    rows.iter().find(|b| {
        b.imp == Impl::TokioBroadcast
            && b.scenario == row.scenario
            && b.phase == row.phase
            && b.spec.subscribers == row.spec.subscribers
            && b.spec.rate == row.spec.rate
    })
}

fn ratio(a: f64, b: f64) -> Option<f64> {
    (b > 0.0).then(|| a / b)
}

/// p50 relative to tokio broadcast.
fn p50_ratio(rows: &[Row], row: &Row) -> Option<f64> {
    let b = baseline(rows, row)?;
    ratio(row.summary.latency.p50 as f64, b.summary.latency.p50 as f64)
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

/// The same implementation's `paced` row in the `slow` scenario (no slow subscriber), at
/// the same rate.
fn without_slow<'a>(rows: &'a [Row], row: &Row) -> Option<&'a Row> {
    rows.iter().find(|b| {
        b.imp == row.imp
            && b.scenario == row.scenario
            && b.phase == "paced"
            && b.spec.rate == row.spec.rate
    })
}

/// A row's rate in the table: events/s, or `max` at saturation.
fn rate(spec_rate: Option<u64>) -> String {
    spec_rate.map_or("max".to_owned(), |r| r.to_string())
}

fn us(ns: u64) -> String {
    let us = ns as f64 / 1e3;
    if us >= 100.0 {
        format!("{us:.0}")
    } else {
        format!("{us:.1}")
    }
}

/// CPU time in milliseconds, `-` where not measured.
fn ms(ns: Option<u64>) -> String {
    ns.map_or("-".to_owned(), |ns| format!("{:.1}", ns as f64 / 1e6))
}

fn x(r: Option<f64>) -> String {
    r.map_or("-".to_owned(), |r| format!("{r:.2}x"))
}

/// With `--rates` (more than one paced rate): the paced rows again, grouped by rate, with
/// p50 and p99 and their ratios to tokio broadcast at that rate. Empty otherwise.
fn sweep(rows: &[Row]) -> String {
    let mut rates: Vec<u64> = rows.iter().filter_map(|r| r.spec.rate).collect();
    rates.sort_unstable();
    rates.dedup();
    let mut out = String::new();
    if rates.len() < 2 {
        return out;
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "rate sweep: paced rows by rate, latency ratios to tokio broadcast at the same rate"
    );
    let _ = writeln!(
        out,
        "{:>9} {:<9} {:<10} {:<22} {:>5} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8}",
        "rate",
        "scenario",
        "phase",
        "implementation",
        "subs",
        "p50 us",
        "p99 us",
        "p50/tok",
        "p99/tok",
        "lost",
        "cpu ms"
    );
    for r in rates {
        for row in rows.iter().filter(|row| row.spec.rate == Some(r)) {
            let s = &row.summary;
            let subs = subs(&row.spec);
            let _ = writeln!(
                out,
                "{:>9} {:<9} {:<10} {:<22} {:>5} {:>8} {:>8} {:>8} {:>8} {:>7} {:>8}",
                r,
                row.scenario.name(),
                row.phase,
                row.imp.name(),
                subs,
                us(s.latency.p50),
                us(s.latency.p99),
                x(p50_ratio(rows, row)),
                x(ratios(rows, row).1),
                s.lost,
                ms(s.cpu_ns),
            );
        }
    }
    out
}

fn subs(spec: &super::Spec) -> String {
    if spec.slow {
        format!("{}+1", spec.subscribers)
    } else {
        spec.subscribers.to_string()
    }
}

/// The main table: every finished row, then the rows that timed out (`timed out after
/// ...` in place of their figures), and a note when rows ran after a timed-out one.
pub fn table(rows: &[Row], timed_out: &[TimedOutRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<9} {:<10} {:<22} {:>5} {:>7} {:>9} {:>12} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8} {:>8}",
        "scenario",
        "phase",
        "implementation",
        "subs",
        "events",
        "rate",
        "deliv/s",
        "p50 us",
        "p99 us",
        "p999 us",
        "max us",
        "lost",
        "thr/tok",
        "p99/tok",
        "cpu ms"
    );
    for row in rows {
        let s = &row.summary;
        let (thr, p99) = ratios(rows, row);
        let subs = subs(&row.spec);
        let _ = writeln!(
            out,
            "{:<9} {:<10} {:<22} {:>5} {:>7} {:>9} {:>12.0} {:>8} {:>8} {:>8} {:>8} {:>7} {:>7} {:>8} {:>8}",
            row.scenario.name(),
            row.phase,
            row.imp.name(),
            subs,
            row.spec.events,
            rate(row.spec.rate),
            s.deliveries_per_s(),
            us(s.latency.p50),
            us(s.latency.p99),
            us(s.latency.p999),
            us(s.latency.max),
            s.lost,
            x(thr),
            x(p99),
            ms(s.cpu_ns),
        );
    }
    for t in timed_out {
        let _ = writeln!(
            out,
            "{:<9} {:<10} {:<22} {:>5} {:>7} {:>9} timed out after {}",
            t.scenario.name(),
            t.phase,
            t.imp.name(),
            subs(&t.spec),
            t.spec.events,
            rate(t.spec.rate),
            crate::soak::format_duration(t.limit),
        );
    }
    if !timed_out.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "timed out: {} row(s) did not finish within --row-timeout and were given up on; \
             their threads were left running.",
            timed_out.len()
        );
        if rows.iter().any(|r| r.after_timeout) {
            let _ = writeln!(
                out,
                "  the rows that ran after a timed-out one shared the machine with its \
                 abandoned threads (JSON `after_timeout`): their figures may be unreliable."
            );
        }
    }
    out.push_str(&sweep(rows));
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
            "{:<22} {:>9} {:>10} {:>10} {:>8} {:>10} {:>9}  policy",
            "implementation", "rate", "p99 w/o us", "p99 w/ us", "change", "slow lost", "pub/s"
        );
        for row in slow {
            let before = without_slow(rows, row).map(|b| b.summary.latency.p99);
            let change = before
                .and_then(|b| ratio(row.summary.latency.p99 as f64, b as f64))
                .map_or("-".to_owned(), |r| format!("{:+.0}%", (r - 1.0) * 100.0));
            let _ = writeln!(
                out,
                "{:<22} {:>9} {:>10} {:>10} {:>8} {:>10} {:>9.0}  {}",
                row.imp.name(),
                rate(row.spec.rate),
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

/// The plain async-nats summary of `row`'s phase and rate.
fn plain_of<'a>(rows: &'a [BridgeRow], row: &BridgeRow) -> Option<&'a Summary> {
    rows.iter()
        .find(|p| p.side == Side::Plain && p.phase == row.phase && p.spec.rate == row.spec.rate)
        .and_then(|p| p.result.as_ref().ok())
}

/// Throughput and p99 relative to plain async-nats in the same phase.
fn bridge_ratios(rows: &[BridgeRow], row: &BridgeRow) -> (Option<f64>, Option<f64>) {
    match (row.result.as_ref().ok(), plain_of(rows, row)) {
        (Some(s), Some(p)) => (
            ratio(s.deliveries_per_s(), p.deliveries_per_s()),
            ratio(s.latency.p99 as f64, p.latency.p99 as f64),
        ),
        _ => (None, None),
    }
}

/// Whether `value` meets a target, in words.
fn verdict(value: Option<f64>, met: impl Fn(f64) -> bool) -> String {
    match value {
        Some(v) if met(v) => format!("{v:.2}x, met"),
        Some(v) => format!("{v:.2}x, missed"),
        None => "not measured".to_owned(),
    }
}

/// The `bridge` scenario: one line per side and phase, ratios to plain async-nats, and
/// the targets with what this run measured against them.
pub fn bridge_table(rows: &[BridgeRow]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<9} {:<10} {:<22} {:>7} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>9}",
        "scenario",
        "phase",
        "implementation",
        "events",
        "rate",
        "msgs/s",
        "p50 us",
        "p99 us",
        "p999 us",
        "max us",
        "lost",
        "thr/plain",
        "p99/plain"
    );
    for row in rows {
        let rate = row.spec.rate.map_or("max".to_owned(), |r| r.to_string());
        let head = format!(
            "{:<9} {:<10} {:<22} {:>7} {:>7}",
            "bridge",
            row.phase,
            row.side.name(),
            row.spec.events,
            rate
        );
        match &row.result {
            Ok(s) => {
                let (thr, p99) = bridge_ratios(rows, row);
                let _ = writeln!(
                    out,
                    "{head} {:>10.0} {:>8} {:>8} {:>8} {:>8} {:>7} {:>9} {:>9}",
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
            Err(why) => {
                let _ = writeln!(out, "{head} {why}");
            }
        }
    }
    let of = |phase: &str| rows.iter().find(|r| r.side == Side::Bridge && r.phase == phase);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "bridge: {} B payloads, bus A -> shardcast-nats (raw codec) -> nats-server -> bus B, \
         vs one async-nats client publishing to another; targets:",
        bridge::PAYLOAD_BYTES
    );
    if let Some(row) = of("saturation") {
        let _ = writeln!(
            out,
            "  throughput (saturation) >= {:.2}x plain: {}",
            bridge::TARGET_THROUGHPUT,
            verdict(bridge_ratios(rows, row).0, |r| r >= bridge::TARGET_THROUGHPUT)
        );
    }
    if let Some(row) = of("paced") {
        let _ = writeln!(
            out,
            "  p99 (paced)              <= {:.2}x plain: {}",
            bridge::TARGET_P99,
            verdict(bridge_ratios(rows, row).1, |r| r <= bridge::TARGET_P99)
        );
    }
    out
}

/// One `bridge` row in the JSON: the fields of the other rows where they apply, the
/// ratios to plain async-nats, and `error` (null when measured; when set, no measured
/// field is present).
fn bridge_json(rows: &[BridgeRow], row: &BridgeRow) -> Value {
    let mut value = json!({
        "scenario": "bridge",
        "phase": row.phase,
        "implementation": row.side.name(),
        "subscribers": row.spec.subscribers,
        "slow_subscriber": false,
        "topics": row.spec.topics,
        "events": row.spec.events,
        "rate": row.spec.rate,
        "mode": row.spec.mode.name(),
        "dispatchers": row.spec.dispatchers,
        "payload_bytes": bridge::PAYLOAD_BYTES,
        "error": row.result.as_ref().err(),
    });
    if let (Ok(s), Some(fields)) = (&row.result, value.as_object_mut()) {
        let (thr, p99) = bridge_ratios(rows, row);
        let measured = json!({
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
            "reported_lost": s.reported_lost,
            "throughput_vs_plain": thr,
            "p99_vs_plain": p99,
        });
        if let Value::Object(measured) = measured {
            fields.extend(measured);
        }
    }
    value
}

/// The target for the `idle` scenario: percent of one core.
const IDLE_TARGET_PERCENT: f64 = 1.0;

/// The `idle` scenario: one line per implementation, and the target.
pub fn idle_table(rows: &[IdleRow], warmup: Duration, window: Duration) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<9} {:<22} {:>5} {:>10} {:>8} {:>11}",
        "scenario", "implementation", "subs", "window ms", "cpu ms", "% of a core"
    );
    for row in rows {
        let _ = writeln!(
            out,
            "{:<9} {:<22} {:>5} {:>10.0} {:>8.3} {:>11.3}",
            "idle",
            row.imp.name(),
            row.spec.receivers(),
            row.idle.window_ns as f64 / 1e6,
            row.idle.cpu_ns as f64 / 1e6,
            row.idle.percent_of_a_core(),
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "idle: {} {} subscribers, no traffic; process CPU over {} s after {} s of warm-up; \
         target: under {IDLE_TARGET_PERCENT} % of a core",
        rows.first().map_or(0, |r| r.spec.receivers()),
        rows.first().map_or("async", |r| r.spec.mode.name()),
        window.as_secs_f64(),
        warmup.as_secs_f64(),
    );
    if let Some(row) = rows.iter().find(|r| r.imp == Impl::Shardcast) {
        let percent = row.idle.percent_of_a_core();
        let met = if percent < IDLE_TARGET_PERCENT { "met" } else { "missed" };
        let _ = writeln!(out, "  shardcast: {percent:.3} %, {met}");
    }
    out
}

/// One `idle` row in the JSON: the fields of the other rows that apply (no events, so no
/// latency or throughput), `cpu_ns` over `window_ns`, and `idle_cpu_percent` (of one core).
fn idle_json(row: &IdleRow) -> Value {
    json!({
        "scenario": "idle",
        "phase": "idle",
        "implementation": row.imp.name(),
        "subscribers": row.spec.subscribers,
        "slow_subscriber": false,
        "topics": row.spec.topics,
        "events": 0,
        "rate": null,
        "mode": row.spec.mode.name(),
        "dispatchers": row.spec.dispatchers,
        "cpu_ns": row.idle.cpu_ns,
        "window_ns": row.idle.window_ns,
        "idle_cpu_percent": row.idle.percent_of_a_core(),
    })
}

/// `{"version", "cores", "quick", "rows": [...]}`; latencies in nanoseconds. `bridge` rows
/// come after the others (see [`bridge_json`]), `idle` rows last (see [`idle_json`]).
/// A row that timed out: what it was, `timed_out: true`, `timeout_ns`, and no figures.
fn timed_out_json(row: &TimedOutRow) -> Value {
    let idle = row.phase == "idle";
    json!({
        "scenario": row.scenario.name(),
        "phase": row.phase,
        "implementation": row.imp.name(),
        "subscribers": row.spec.subscribers,
        "slow_subscriber": row.spec.slow,
        "topics": row.spec.topics,
        "events": if idle { 0 } else { row.spec.events },
        "rate": row.spec.rate,
        "mode": row.spec.mode.name(),
        "dispatchers": row.spec.dispatchers,
        "timed_out": true,
        "timeout_ns": u64::try_from(row.limit.as_nanos()).unwrap_or(u64::MAX),
    })
}

/// `timed_out` rows come after the other rows of the table (see [`timed_out_json`]); every
/// measured row of the table has `timed_out: false` and `after_timeout`.
pub fn json(
    rows: &[Row],
    bridge_rows: &[BridgeRow],
    idle_rows: &[IdleRow],
    timed_out: &[TimedOutRow],
    quick: bool,
) -> Value {
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
                "cpu_ns": s.cpu_ns,
                "throughput_vs_tokio": thr,
                "p50_vs_tokio": p50_ratio(rows, row),
                "p99_vs_tokio": p99,
                "others_p99_change": others_p99_change,
                "timed_out": false,
                "after_timeout": row.after_timeout,
            })
        })
        .chain(timed_out.iter().map(timed_out_json))
        .chain(bridge_rows.iter().map(|row| bridge_json(bridge_rows, row)))
        .chain(idle_rows.iter().map(idle_json))
        .collect();
    json!({ "version": JSON_VERSION, "cores": cores, "quick": quick, "rows": rows })
}
