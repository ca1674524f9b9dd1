//! The checks that are not a receiver's: the monitor thread (invariants 4, 5 and 6, every
//! `SNAPSHOT_EVERY`), and, at the close, invariants 1 and 2 for the subscribers that lived
//! until then and the end-of-run totals.

use std::fmt::Write as _;
use std::mem::size_of;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use shardcast::stats::{StatsSnapshot, SubscriberStats};
use shardcast::{Delivery, Event, Overflow};

use super::plan::{Payload, Plan, MAX_BODY};
use super::receive::{End, Report, Seen};
use super::shared::{Counts, Shared};

pub(super) const SNAPSHOT_EVERY: Duration = Duration::from_millis(100);
pub(super) const NO_PROGRESS: Duration = Duration::from_secs(5);
pub(super) const MEMORY_ALLOWANCE: u64 = 256 << 20;

/// Bytes one queued event may hold: the event (its allocation with the `Arc` counts), its
/// largest body, and a queue slot.
pub(super) fn event_bytes() -> u64 {
    (size_of::<Event<Payload>>()
        + 2 * size_of::<usize>()
        + MAX_BODY
        + size_of::<(u64, u64, Delivery<Payload>)>()) as u64
}

pub(super) fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

pub(super) struct MonitorReport {
    pub(super) snapshots: u64,
    pub(super) peak_rss: Option<u64>,
    pub(super) bound: u64,
}

/// Invariants 4, 5 and 6, every `SNAPSHOT_EVERY`.
pub(super) struct Monitor {
    pub(super) shared: Arc<Shared>,
    pub(super) ring_capacity: u64,
    pub(super) duration: Duration,
    pub(super) prev: Option<StatsSnapshot>,
    pub(super) motion: u64,
    pub(super) still_since: Instant,
    pub(super) stall_reported: bool,
    pub(super) report: MonitorReport,
    pub(super) started: Instant,
    pub(super) next_line: Instant,
}

impl Monitor {
    pub(super) fn new(shared: &Arc<Shared>, ring_capacity: u64, duration: Duration) -> Monitor {
        let now = Instant::now();
        Monitor {
            shared: Arc::clone(shared),
            ring_capacity,
            duration,
            prev: None,
            motion: 0,
            still_since: now,
            stall_reported: false,
            report: MonitorReport {
                snapshots: 0,
                peak_rss: None,
                bound: memory_bound(ring_capacity, 0),
            },
            started: now,
            next_line: now,
        }
    }

    pub(super) fn run(mut self, stop: &AtomicBool) -> MonitorReport {
        while !stop.load(Ordering::SeqCst) {
            thread::sleep(SNAPSHOT_EVERY);
            self.tick();
        }
        self.report
    }

    fn tick(&mut self) {
        let snapshot = self.shared.bus.stats();
        self.report.snapshots += 1;
        for problem in check_snapshot(self.prev.as_ref(), &snapshot) {
            self.shared.fail(format!("stats snapshot: {problem}"));
        }
        self.check_progress(&snapshot);
        self.check_memory();
        self.progress_line(&snapshot);
        self.prev = Some(snapshot);
    }

    fn check_progress(&mut self, snapshot: &StatsSnapshot) {
        let dispatched: u64 = snapshot.shards.iter().map(|s| s.dispatched).sum();
        let motion = self.shared.published.load(Ordering::SeqCst)
            + self.shared.receives.load(Ordering::Relaxed)
            + dispatched;
        let now = Instant::now();
        if motion != self.motion {
            self.motion = motion;
            self.still_since = now;
            return;
        }
        let work = snapshot.ring_occupancy > 0
            || snapshot.subscribers.iter().any(|s| s.queue_depth > 0)
            || self.shared.publisher_busy.load(Ordering::SeqCst);
        if work && now - self.still_since >= NO_PROGRESS && !self.stall_reported {
            self.stall_reported = true;
            self.shared.fail(format!(
                "no progress for {NO_PROGRESS:?} (no publish, receive or dispatch) with work \
                 pending; state:\n{}",
                describe_state(snapshot)
            ));
        }
    }

    fn check_memory(&mut self) {
        let Some(rss) = rss_bytes() else { return };
        let peak_capacity = self.shared.peak_capacity.load(Ordering::SeqCst);
        self.report.bound = memory_bound(self.ring_capacity, peak_capacity);
        let peak = self.report.peak_rss.get_or_insert(0);
        *peak = (*peak).max(rss);
        if rss > self.report.bound {
            self.shared.fail(format!(
                "resident memory {} MiB over the bound {} MiB",
                rss >> 20,
                self.report.bound >> 20
            ));
        }
    }

    /// A line every 10 s, so a long run shows it is alive.
    fn progress_line(&mut self, snapshot: &StatsSnapshot) {
        let now = Instant::now();
        if now < self.next_line || now - self.started >= self.duration {
            return;
        }
        self.next_line = now + Duration::from_secs(10);
        if now - self.started < Duration::from_secs(1) {
            return;
        }
        println!(
            "soak: {:>5.0}s published {:>11}  subscribers {:>2}  ring {:>5}/{}  rss {} MiB",
            (now - self.started).as_secs_f64(),
            snapshot.published,
            snapshot.subscribers.len(),
            snapshot.ring_occupancy,
            snapshot.ring_capacity,
            rss_bytes().unwrap_or(0) >> 20
        );
    }
}

pub(super) fn memory_bound(ring_capacity: u64, peak_capacity: u64) -> u64 {
    MEMORY_ALLOWANCE + (ring_capacity + peak_capacity) * event_bytes()
}

pub(super) fn ensure_order(problems: &mut Vec<String>, what: &str, open: u64, closed: u64) {
    if closed > open {
        problems.push(format!("{what}: {closed} > {open}"));
    }
}

pub(super) fn ensure_growing(problems: &mut Vec<String>, what: &str, before: u64, now: u64) {
    if now < before {
        problems.push(format!("{what} went backwards: {before} -> {now}"));
    }
}

/// Invariant 4 for one snapshot, and against the one before.
pub(super) fn check_snapshot(prev: Option<&StatsSnapshot>, now: &StatsSnapshot) -> Vec<String> {
    let mut bad = Vec::new();
    ensure_order(
        &mut bad,
        "subscriptions_closed > subscriptions",
        now.subscriptions,
        now.subscriptions_closed,
    );
    ensure_order(&mut bad, "ring_occupancy > ring_capacity", now.ring_capacity, now.ring_occupancy);
    for s in &now.shards {
        let what = format!("shard {} dispatched > published", s.shard);
        ensure_order(&mut bad, &what, now.published, s.dispatched);
    }
    for s in &now.subscribers {
        let what = format!("{} consumed > delivered", s.name);
        ensure_order(&mut bad, &what, s.delivered, s.consumed);
        let what = format!("{} queue_depth > queue_capacity", s.name);
        ensure_order(&mut bad, &what, s.queue_capacity, s.queue_depth);
    }
    let Some(prev) = prev else { return bad };
    ensure_growing(&mut bad, "published", prev.published, now.published);
    ensure_growing(&mut bad, "publisher_waits", prev.publisher_waits, now.publisher_waits);
    ensure_growing(&mut bad, "subscriptions", prev.subscriptions, now.subscriptions);
    let closed = "subscriptions_closed";
    ensure_growing(&mut bad, closed, prev.subscriptions_closed, now.subscriptions_closed);
    for (a, b) in prev.shards.iter().zip(&now.shards) {
        let counters = [
            ("dispatched", a.dispatched, b.dispatched),
            ("delivered", a.delivered, b.delivered),
            ("dropped", a.dropped, b.dropped),
            ("filtered_out", a.filtered_out, b.filtered_out),
            ("filter_panics", a.filter_panics, b.filter_panics),
            ("binds", a.binds, b.binds),
            ("binding_hits", a.binding_hits, b.binding_hits),
        ];
        for (name, before, after) in counters {
            ensure_growing(&mut bad, &format!("shard {} {name}", b.shard), before, after);
        }
    }
    // `delivered` may dip (an in-flight event later dropped): only the receiver's and the
    // loss counters must never go back.
    for b in &now.subscribers {
        let Some(a) = prev.subscribers.iter().find(|a| a.id == b.id) else { continue };
        ensure_growing(&mut bad, &format!("{} consumed", b.name), a.consumed, b.consumed);
        ensure_growing(&mut bad, &format!("{} dropped", b.name), a.dropped, b.dropped);
        let what = format!("{} lagged_reports", b.name);
        ensure_growing(&mut bad, &what, a.lagged_reports, b.lagged_reports);
    }
    bad
}

/// Every shard's and queue's state, for a progress failure.
pub(super) fn describe_state(s: &StatsSnapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "  ring: occupancy {}/{}, published {}, publisher waits {}",
        s.ring_occupancy, s.ring_capacity, s.published, s.publisher_waits
    );
    for sh in &s.shards {
        let _ = writeln!(
            out,
            "  shard {}: backlog {} dispatched {} delivered {} dropped {} (newest {} oldest {} \
             disconnect {} shutdown {}) filtered {} panics {}",
            sh.shard,
            sh.backlog,
            sh.dispatched,
            sh.delivered,
            sh.dropped,
            sh.dropped_newest,
            sh.dropped_oldest,
            sh.dropped_disconnect,
            sh.dropped_shutdown,
            sh.filtered_out,
            sh.filter_panics
        );
    }
    for sub in &s.subscribers {
        let _ = writeln!(
            out,
            "  {} (id {}, shard {}): depth {}/{} delivered {} consumed {} dropped {} lagged {}",
            sub.name,
            sub.id,
            sub.shard,
            sub.queue_depth,
            sub.queue_capacity,
            sub.delivered,
            sub.consumed,
            sub.dropped,
            sub.lagged_reports
        );
    }
    out
}

// ---- at the close ------------------------------------------------------------------------

/// Invariant 2: the bus's counters for a subscriber against what it saw. `exact_drops`:
/// it drained to `Closed`, so no loss can be still unreported.
pub(super) fn stats_disagree(
    stats: &SubscriberStats,
    seen: &Seen,
    exact_drops: bool,
) -> Vec<String> {
    let mut problems = Vec::new();
    if stats.consumed != seen.received {
        problems.push(format!(
            "bus says consumed {}, the soak received {}",
            stats.consumed, seen.received
        ));
    }
    if (exact_drops && stats.dropped != seen.lost) || stats.dropped < seen.lost {
        problems.push(format!(
            "bus says dropped {}, the soak was told of {} lost (Lagged)",
            stats.dropped, seen.lost
        ));
    }
    if stats.lagged_reports != seen.lag_reports {
        problems.push(format!(
            "bus says {} Lagged reports, the soak got {}",
            stats.lagged_reports, seen.lag_reports
        ));
    }
    problems
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Fate {
    AtClose,
    Left,
    Disconnected,
}

/// One subscriber's life, for the summary.
pub(super) struct Outcome {
    pub(super) plan: Arc<Plan>,
    pub(super) seen: Seen,
    pub(super) counts: Counts,
    pub(super) fate: Fate,
}

/// Invariants 1 and 2 for the subscribers that lived until the close (against one
/// snapshot), the end-of-run totals, and that dropping them closes every subscription.
pub(super) fn check_at_close(
    shared: &Shared,
    reports: Vec<Report>,
    published: u64,
    duration: Duration,
) -> Vec<Outcome> {
    let snapshot = shared.bus.stats();
    let mut outcomes = Vec::with_capacity(reports.len());
    let mut alive = Vec::new();
    for report in reports {
        let counts = report.ledger.read();
        let fate = match report.end {
            End::Left => Fate::Left,
            End::Disconnected => Fate::Disconnected,
            End::AtClose(sub) => {
                let stats = snapshot.subscribers.iter().find(|s| s.id == sub.id());
                alive.push(sub);
                check_survivor(shared, &report.plan, &report.seen, counts, stats, duration)
            }
        };
        outcomes.push(Outcome { plan: report.plan, seen: report.seen, counts, fate });
    }
    check_totals(shared, &snapshot, published, alive.len(), &outcomes);
    drop(alive);
    let after = shared.bus.stats();
    if after.subscriptions != after.subscriptions_closed || !after.subscribers.is_empty() {
        shared.fail(format!(
            "after every subscriber was dropped: {} subscriptions, {} closed, {} listed",
            after.subscriptions,
            after.subscriptions_closed,
            after.subscribers.len()
        ));
    }
    outcomes
}

/// A subscriber that drained to `Closed` after the bus closed. A `Disconnect` subscriber
/// whose stream ended in `Lagged`, `Closed` short of what it wanted was disconnected near
/// the close: it gets the early leaver's `<=`.
pub(super) fn check_survivor(
    shared: &Shared,
    plan: &Plan,
    seen: &Seen,
    counts: Counts,
    stats: Option<&SubscriberStats>,
    duration: Duration,
) -> Fate {
    let fail = |what: String| shared.fail(format!("{plan}: {what}"));
    let accounted = seen.received + seen.lost;
    let disconnected =
        plan.overflow == Overflow::Disconnect && seen.last_was_lag && accounted < counts.wanted;
    if plan.sys {
        if seen.received == 0 && duration >= Duration::from_secs(1) {
            fail("no $SYS.stats event received".into());
        }
    } else if !disconnected && accounted != counts.wanted {
        fail(format!(
            "received {} + lost {} + filtered {} = {}, but it matched {}",
            seen.received,
            seen.lost,
            counts.filtered(),
            accounted + counts.filtered(),
            counts.matched
        ));
    }
    match stats {
        None if disconnected => {}
        None => fail("missing from Bus::stats() at the close".into()),
        Some(stats) => {
            for problem in stats_disagree(stats, seen, true) {
                fail(problem);
            }
            // Evicted events were queued: they count as delivered and dropped.
            let evicted = if plan.overflow == Overflow::DropOldest { stats.dropped } else { 0 };
            if stats.queue_depth != 0 || stats.delivered != stats.consumed + evicted {
                fail(format!(
                    "drained, but the bus says depth {}, delivered {}, consumed {}, dropped {}",
                    stats.queue_depth, stats.delivered, stats.consumed, stats.dropped
                ));
            }
        }
    }
    if disconnected {
        Fate::Disconnected
    } else {
        Fate::AtClose
    }
}

/// End-of-run totals: everything published was dispatched by every shard, loss reasons add
/// up, subscriptions match what the soak made, and the shards counted at least the
/// disconnects and predicate panics the soak saw.
pub(super) fn check_totals(
    shared: &Shared,
    s: &StatsSnapshot,
    published: u64,
    alive: usize,
    outcomes: &[Outcome],
) {
    let mut bad = Vec::new();
    if s.published != published {
        bad.push(format!("bus published {}, the soak published {published}", s.published));
    }
    if s.ring_occupancy != 0 {
        bad.push(format!("ring occupancy {} after the close", s.ring_occupancy));
    }
    for sh in &s.shards {
        if sh.dispatched != s.published || sh.backlog != 0 {
            bad.push(format!("shard {} dispatched {} of {}", sh.shard, sh.dispatched, s.published));
        }
        let reasons =
            sh.dropped_newest + sh.dropped_oldest + sh.dropped_disconnect + sh.dropped_shutdown;
        if sh.dropped != reasons {
            bad.push(format!("shard {} dropped {} != Σ reasons {reasons}", sh.shard, sh.dropped));
        }
        if sh.binding_evictions != 0 {
            bad.push(format!("shard {} evicted {} bindings", sh.shard, sh.binding_evictions));
        }
    }
    let created = shared.created.load(Ordering::SeqCst) as u64;
    if s.subscriptions != created || s.subscriptions - s.subscriptions_closed != alive as u64 {
        bad.push(format!(
            "subscriptions {} (closed {}), but the soak made {created} and holds {alive}",
            s.subscriptions, s.subscriptions_closed
        ));
    }
    let disconnects = outcomes.iter().filter(|o| o.fate == Fate::Disconnected).count() as u64;
    let counted: u64 = s.shards.iter().map(|sh| sh.dropped_disconnect).sum();
    if counted < disconnects {
        bad.push(format!("{disconnects} subscribers disconnected, the shards counted {counted}"));
    }
    let panics: u64 =
        outcomes.iter().filter(|o| o.fate == Fate::AtClose).map(|o| o.counts.panics).sum();
    let counted: u64 = s.shards.iter().map(|sh| sh.filter_panics).sum();
    if counted < panics {
        bad.push(format!(
            "predicates panicked {panics} times (soak), the shards counted {counted}"
        ));
    }
    for problem in bad {
        shared.fail(format!("at the close: {problem}"));
    }
}
