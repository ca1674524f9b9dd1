//! The receivers, on threads or tokio tasks: every receive style, slow and stalling readers,
//! early leavers, and the [`Tracker`] that checks each delivery (invariant 3) and a
//! departure (invariants 1 and 2) as it happens.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use shardcast::stats::STATS_VERSION;
use shardcast::{Delivery, Overflow, RecvError, RecvTimeoutError, Subscriber, TryRecvError};

use super::check::stats_disagree;
use super::plan::{body_intact, Msg, Payload, Plan, Rng, ThreadRecv, Verdict};
use super::shared::{Ledger, Shared};

/// One receive's outcome, whatever the receive style.
pub(super) enum Got<'a> {
    Event(Delivery<'a, Payload>),
    Lagged(u64),
    /// Empty or timed out.
    Nothing,
    Closed,
}

impl<'a> From<Result<Delivery<'a, Payload>, RecvError>> for Got<'a> {
    fn from(result: Result<Delivery<'a, Payload>, RecvError>) -> Got<'a> {
        match result {
            Ok(d) => Got::Event(d),
            Err(RecvError::Lagged(n)) => Got::Lagged(n),
            Err(RecvError::Closed) => Got::Closed,
        }
    }
}

impl<'a> From<Result<Delivery<'a, Payload>, RecvTimeoutError>> for Got<'a> {
    fn from(result: Result<Delivery<'a, Payload>, RecvTimeoutError>) -> Got<'a> {
        match result {
            Ok(d) => Got::Event(d),
            Err(RecvTimeoutError::Lagged(n)) => Got::Lagged(n),
            Err(RecvTimeoutError::Timeout) => Got::Nothing,
            Err(RecvTimeoutError::Closed) => Got::Closed,
        }
    }
}

impl<'a> From<Result<Delivery<'a, Payload>, TryRecvError>> for Got<'a> {
    fn from(result: Result<Delivery<'a, Payload>, TryRecvError>) -> Got<'a> {
        match result {
            Ok(d) => Got::Event(d),
            Err(TryRecvError::Lagged(n)) => Got::Lagged(n),
            Err(TryRecvError::Empty) => Got::Nothing,
            Err(TryRecvError::Closed) => Got::Closed,
        }
    }
}

/// What a receiver saw.
#[derive(Clone, Copy, Default)]
pub(super) struct Seen {
    pub(super) received: u64,
    pub(super) lost: u64,
    pub(super) lag_reports: u64,
    pub(super) last_seq: Option<u64>,
    pub(super) last_was_lag: bool,
}

/// How a subscriber's life ended.
pub(super) enum End {
    /// Dropped before the close (its checks done by its receiver).
    Left,
    /// `Overflow::Disconnect` closed it before the bus closed (checked by its receiver).
    Disconnected,
    /// Saw `Closed` after the bus closed; the main thread checks it against one final
    /// snapshot, then drops it.
    AtClose(Box<Subscriber<Payload>>),
}

pub(super) struct Report {
    pub(super) plan: Arc<Plan>,
    pub(super) ledger: Arc<Ledger>,
    pub(super) seen: Seen,
    pub(super) end: End,
}

/// A receiver's checks, shared by threads and tasks.
pub(super) struct Tracker {
    pub(super) plan: Arc<Plan>,
    pub(super) ledger: Arc<Ledger>,
    pub(super) shared: Arc<Shared>,
    pub(super) reports: Sender<Report>,
    pub(super) seen: Seen,
    pub(super) started: Instant,
    /// The close began when it wanted to leave: it stays to the end.
    pub(super) stays: bool,
    pub(super) complaints: u32,
}

pub(super) enum Step {
    Go,
    Idle,
    Pause(Duration),
    Closed,
}

impl Tracker {
    pub(super) fn new(
        plan: Arc<Plan>,
        ledger: Arc<Ledger>,
        shared: &Arc<Shared>,
        reports: Sender<Report>,
    ) -> Tracker {
        Tracker {
            plan,
            ledger,
            shared: Arc::clone(shared),
            reports,
            seen: Seen::default(),
            started: Instant::now(),
            stays: false,
            complaints: 0,
        }
    }

    /// Records a violation of this subscriber (the first five; the rest are counted).
    fn fail(&mut self, what: impl fmt::Display) {
        self.complaints += 1;
        if self.complaints <= 5 {
            self.shared.fail(format!("{}: {what}", self.plan));
        } else {
            self.shared.failures.count.fetch_add(1, Ordering::SeqCst);
        }
    }

    fn on(&mut self, got: Got<'_>) -> Step {
        if !matches!(got, Got::Nothing) {
            self.shared.receives.fetch_add(1, Ordering::Relaxed);
        }
        match got {
            Got::Event(delivery) => {
                self.on_event(&delivery);
                match self.plan.behavior.pause_after(self.seen.received) {
                    Some(pause) if !self.shared.draining() => Step::Pause(pause),
                    _ => Step::Go,
                }
            }
            Got::Lagged(n) => {
                self.on_lagged(n);
                Step::Go
            }
            Got::Nothing => Step::Idle,
            Got::Closed => Step::Closed,
        }
    }

    fn on_event(&mut self, delivery: &Delivery<'_, Payload>) {
        let seq = delivery.seq();
        if let Some(last) = self.seen.last_seq {
            if seq <= last {
                self.fail(format_args!("seq {seq} received after seq {last}"));
            }
        }
        self.seen.last_seq = Some(seq);
        self.seen.last_was_lag = false;
        self.seen.received += 1;
        match (delivery.payload(), self.plan.sys) {
            (Payload::Stats(delta), true) => {
                if delivery.topic().as_str() != shardcast::stats::STATS_TOPIC
                    || delta.version != STATS_VERSION
                {
                    self.fail(format_args!("a bad stats event on {}", delivery.topic()));
                }
            }
            (Payload::Msg(msg), false) => self.check_msg(delivery, msg),
            _ => self.fail(format_args!("an event it did not ask for on {}", delivery.topic())),
        }
    }

    fn check_msg(&mut self, delivery: &Delivery<Payload>, msg: &Msg) {
        let seq = delivery.seq();
        if msg.id != seq {
            self.fail(format_args!("event {} delivered as seq {seq}", msg.id));
        }
        if !body_intact(msg.id, &msg.body) {
            self.fail(format_args!("event {seq}: payload body corrupted"));
        }
        if delivery.resolved_route() != msg.route {
            let (got, want) = (delivery.resolved_route(), msg.route);
            self.fail(format_args!("event {seq}: route resolved as {got:?}, expected {want:?}"));
        }
        let verdict = self.plan.spec.verdict(delivery.topic(), msg.route, msg.id);
        if verdict != Verdict::Wanted {
            let topic = delivery.topic();
            self.fail(format_args!("event {seq} on {topic} delivered, but it is {verdict:?}"));
        }
    }

    fn on_lagged(&mut self, n: u64) {
        if n == 0 {
            self.fail("Lagged(0)");
        }
        if self.seen.last_was_lag {
            self.fail("two Lagged reports in a row");
        }
        self.seen.lost += n;
        self.seen.lag_reports += 1;
        self.seen.last_was_lag = true;
    }

    fn due_to_leave(&self) -> bool {
        !self.stays && self.plan.leave_after.is_some_and(|after| self.started.elapsed() >= after)
    }

    /// Leaves unless the close has begun; then hands the subscriber back (it stays), boxed:
    /// a `Subscriber` is too large for a cheap `Err`.
    fn try_leave(
        &mut self,
        sub: Subscriber<Payload>,
        end: End,
    ) -> Result<(), Box<Subscriber<Payload>>> {
        let shared = Arc::clone(&self.shared);
        let closing = shared.closing.read().unwrap_or_else(PoisonError::into_inner);
        if *closing {
            self.stays = true;
            return Err(Box::new(sub));
        }
        self.check_departure(&sub, matches!(end, End::Disconnected));
        self.ledger.gone.store(true, Ordering::SeqCst);
        self.shared.live_capacity.fetch_sub(self.plan.capacity as u64, Ordering::SeqCst);
        drop(sub); // Under the read lock: see `Shared::closing`.
        drop(closing);
        self.report(end);
        Ok(())
    }

    /// Invariants 1 and 2 for a subscriber that leaves before the close.
    fn check_departure(&mut self, sub: &Subscriber<Payload>, disconnected: bool) {
        let counts = self.ledger.read();
        let seen = self.seen;
        if !self.plan.sys && seen.received + seen.lost > counts.wanted {
            self.fail(format_args!(
                "left with received {} + lost {} > {} it wanted (matched {}, filtered {})",
                seen.received,
                seen.lost,
                counts.wanted,
                counts.matched,
                counts.filtered()
            ));
        }
        // A drop under `DropOldest` is counted just after the eviction that the receiver
        // may already have seen as a gap: give the count a moment to land.
        let mut stats = None;
        for _ in 0..50 {
            stats = self.shared.bus.stats().subscribers.into_iter().find(|s| s.id == sub.id());
            if stats.as_ref().is_none_or(|s| s.dropped >= seen.lost) {
                break;
            }
            thread::sleep(Duration::from_millis(2));
        }
        match stats {
            // The registry forgets a disconnected queue at its next subscribe or unsubscribe.
            None if disconnected => {}
            None => self.fail("missing from Bus::stats() before it was dropped"),
            Some(stats) => {
                for problem in stats_disagree(&stats, &seen, disconnected) {
                    self.fail(problem);
                }
            }
        }
    }

    /// After `Closed`: it stays closed; then the subscriber leaves as disconnected (if the
    /// bus is not closing) or goes to the main thread for the final checks.
    fn finish(mut self, mut sub: Subscriber<Payload>) {
        if !matches!(sub.try_recv(), Err(TryRecvError::Closed)) {
            self.fail("a receive after Closed did not say Closed");
        }
        if !self.shared.closing.read().map_or(true, |closing| *closing) {
            if self.plan.overflow != Overflow::Disconnect {
                self.fail("Closed before the bus closed");
            }
            match self.try_leave(sub, End::Disconnected) {
                Ok(()) => return,
                Err(back) => sub = *back,
            }
        }
        self.report(End::AtClose(Box::new(sub)));
    }

    fn report(&self, end: End) {
        let report = Report {
            plan: Arc::clone(&self.plan),
            ledger: Arc::clone(&self.ledger),
            seen: self.seen,
            end,
        };
        // The main thread may have given up waiting (and dropped the receiver): nothing to do.
        let _ = self.reports.send(report);
    }
}

/// Sleeps `length`, in short steps so the end of the run cuts it short.
pub(super) fn pause(length: Duration, draining: &AtomicBool) {
    let end = Instant::now() + length;
    while !draining.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            return;
        }
        thread::sleep((end - now).min(Duration::from_millis(5)));
    }
}

pub(super) async fn pause_async(length: Duration, draining: &AtomicBool) {
    let end = Instant::now() + length;
    while !draining.load(Ordering::SeqCst) {
        let now = Instant::now();
        if now >= end {
            return;
        }
        tokio::time::sleep((end - now).min(Duration::from_millis(5))).await;
    }
}

pub(super) fn thread_receiver(
    mut sub: Subscriber<Payload>,
    mut tracker: Tracker,
    mut rng: Rng,
    how: ThreadRecv,
) {
    let mut empty = 0u32;
    loop {
        let got = match how {
            ThreadRecv::Recv => Got::from(sub.recv_blocking()),
            ThreadRecv::RecvTimeout => Got::from(sub.recv_timeout(rng.millis(1, 20))),
            ThreadRecv::TryRecv => Got::from(sub.try_recv()),
        };
        match tracker.on(got) {
            Step::Closed => break,
            Step::Pause(length) => pause(length, &tracker.shared.draining),
            Step::Idle if how == ThreadRecv::TryRecv => {
                // Spin a little, then back off: this machine may have fewer cores than
                // threads.
                empty += 1;
                if empty < 10 {
                    thread::yield_now();
                } else {
                    thread::sleep(Duration::from_micros(200));
                }
            }
            Step::Idle => {}
            Step::Go => empty = 0,
        }
        if tracker.due_to_leave() {
            match tracker.try_leave(sub, End::Left) {
                Ok(()) => return,
                Err(back) => sub = *back,
            }
        }
    }
    tracker.finish(sub);
}

pub(super) async fn async_receiver(
    mut sub: Subscriber<Payload>,
    mut tracker: Tracker,
    mut rng: Rng,
) {
    loop {
        // Sometimes cancel the receive: a dropped `recv()` future must lose nothing.
        let got = if rng.chance(20) {
            let limit = rng.millis(1, 10);
            match tokio::time::timeout(limit, sub.recv()).await {
                Ok(result) => Got::from(result),
                Err(_) => Got::Nothing,
            }
        } else {
            Got::from(sub.recv().await)
        };
        match tracker.on(got) {
            Step::Closed => break,
            Step::Pause(length) => pause_async(length, &tracker.shared.draining).await,
            Step::Go | Step::Idle => {}
        }
        if tracker.due_to_leave() {
            match tracker.try_leave(sub, End::Left) {
                Ok(()) => return,
                Err(back) => sub = *back,
            }
        }
    }
    tracker.finish(sub);
}
