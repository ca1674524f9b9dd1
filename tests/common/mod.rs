//! Helpers shared by the behaviour tests. Each test file uses only some of them.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::task::Wake;
use std::thread;
use std::time::{Duration, Instant};

use shardcast::{RecvTimeoutError, Subscriber, Topic};

/// Hang guard: long enough never to fire on a slow, noisy machine, short enough to fail a
/// hung test instead of hanging CI. Never a timing assertion. Under miri, which interprets
/// every instruction (about a thousand times slower), it is an hour.
pub const HANG: Duration =
    if cfg!(miri) { Duration::from_secs(3600) } else { Duration::from_secs(30) };

/// How many events (or rounds) a scenario runs: `n`, or a hundredth of it (at least 8) under
/// miri, so the same scenarios check the unsafe paths in minutes. Ring and queue sizes in the
/// tests are small already, so the scaled runs still wrap the ring and fill the queues.
pub const fn scaled(n: u64) -> u64 {
    if cfg!(miri) {
        let small = n / 100;
        if small < 8 {
            if n < 8 {
                n
            } else {
                8
            }
        } else {
            small
        }
    } else {
        n
    }
}

/// A topic for tests that do not care about topics.
pub fn topic() -> Topic {
    Topic::new("test.events").expect("valid topic")
}

/// Runs `f` on its own thread and waits at most [`HANG`] for it: a hang fails the test
/// (naming `what`) instead of hanging the run. A panic in `f` is re-raised here.
pub fn watchdog<T, F>(what: &str, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    watchdog_for(what, HANG, f)
}

/// [`watchdog`] with another limit, for long scenarios that guard each step themselves.
pub fn watchdog_for<T, F>(what: &str, limit: Duration, f: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let handle = thread::Builder::new()
        .name(format!("watchdog: {what}"))
        .spawn(move || {
            let _ = tx.send(f());
        })
        .expect("spawn watchdog thread");
    match rx.recv_timeout(limit) {
        Ok(value) => {
            handle.join().expect("watchdog thread");
            value
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the watchdog thread always sends unless it panics"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("{what}: still running after {limit:?}: hang")
        }
    }
}

/// What a receiver saw, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Got {
    /// An event, by sequence number.
    Event(u64),
    /// `Lagged(n)`.
    Lagged(u64),
}

/// Receives until `Closed`, recording every event's seq and every `Lagged(n)`. A receive
/// that waits longer than [`HANG`] fails the test.
pub fn drain_to_closed<E>(sub: &mut Subscriber<E>) -> Vec<Got> {
    let mut got = Vec::new();
    // A delivery borrows `sub` for the whole match, error arms included.
    let name = sub.name().to_owned();
    loop {
        match sub.recv_timeout(HANG) {
            Ok(delivery) => got.push(Got::Event(delivery.seq())),
            Err(RecvTimeoutError::Lagged(n)) => got.push(Got::Lagged(n)),
            Err(RecvTimeoutError::Closed) => return got,
            Err(RecvTimeoutError::Timeout) => {
                panic!("{name}: no event and no Closed after {HANG:?}")
            }
        }
    }
}

/// `Got::Event(s)` for every `s` in `seqs`.
pub fn events(seqs: impl IntoIterator<Item = u64>) -> Vec<Got> {
    seqs.into_iter().map(Got::Event).collect()
}

/// A payload that records its own drop in `drops[id]`.
pub struct Tracked {
    pub id: usize,
    pub drops: Arc<Vec<AtomicUsize>>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.drops[self.id].fetch_add(1, Ordering::SeqCst);
    }
}

/// Drop counters for payload ids `0..n`.
pub fn tracker(n: usize) -> Arc<Vec<AtomicUsize>> {
    Arc::new((0..n).map(|_| AtomicUsize::new(0)).collect())
}

/// Every payload was dropped exactly once (no leak, no double drop).
pub fn assert_each_dropped_once(drops: &[AtomicUsize], what: &str) {
    let counts: Vec<usize> = drops.iter().map(|d| d.load(Ordering::SeqCst)).collect();
    let wrong: Vec<(usize, usize)> =
        counts.iter().copied().enumerate().filter(|&(_, c)| c != 1).take(10).collect();
    assert!(wrong.is_empty(), "{what}: (payload id, times dropped), first 10 wrong: {wrong:?}");
}

/// A waker that counts its wake-ups; `Arc::strong_count` tells whether a copy is kept.
#[derive(Default)]
pub struct CountingWaker(pub AtomicUsize);

impl Wake for CountingWaker {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// Asserts that `expected` strong references to `counter` remain. A waker's `wake` counts
/// before the waking thread drops its copy, so a test that saw the count move may look a
/// moment too early: the count is read again until it settles, for at most [`HANG`]. A copy
/// that the bus keeps never goes, and fails.
pub fn assert_copies_settle<T>(counter: &Arc<T>, expected: usize, what: &str) {
    let started = Instant::now();
    while Arc::strong_count(counter) != expected && started.elapsed() < HANG {
        thread::sleep(Duration::from_millis(1));
    }
    assert_eq!(Arc::strong_count(counter), expected, "{what}");
}

/// `promtool check metrics` from Debian's `prometheus` package (installed by `.ci/run`).
/// Where it is not installed only the caller's strict parser (`shardcast_models`) checks
/// the text; under CI it is required.
pub fn promtool_check(text: &str) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(e) => {
            assert!(std::env::var_os("CI").is_none(), "promtool is required under CI: {e}");
            eprintln!("promtool not installed ({e}); checked with the built-in parser only");
            return;
        }
    };
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report =
        format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "promtool rejected the metrics:\n{report}\n---\n{text}");
    // promtool's lint warnings (e.g. naming) also fail the test: the output must be clean.
    assert!(report.trim().is_empty(), "promtool complained:\n{report}");
}
