//! Promise: `examples/daemon.rs` serves live stats on 127.0.0.1, as Prometheus text on
//! `/metrics` and as a `StatsSnapshot` on `/stats.json`, and a SIGTERM shuts it down
//! gracefully: exit status 0 and the final stats printed, each subscriber's included after
//! it was dropped.
//!
//! The test builds the example with the same cargo and profile (examples have no
//! `CARGO_BIN_EXE_*`), runs the binary itself (not `cargo run`, so the signal reaches the
//! daemon, not cargo) on port 0, and learns the port from its "listening on" line. Every
//! wait is bounded by a hang guard; nothing asserts on timing.
#![cfg(unix)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use shardcast::stats::StatsSnapshot;

/// Hang guard: long enough never to fire on a slow, noisy machine; never a timing assertion.
const HANG: Duration = Duration::from_secs(30);
const POLL: Duration = Duration::from_millis(100);

/// Builds `examples/daemon.rs`; returns the executable's path as cargo reports it.
fn build_daemon() -> PathBuf {
    let mut cargo = Command::new(env!("CARGO"));
    cargo.args(["build", "--example", "daemon", "--message-format=json-render-diagnostics"]);
    cargo.arg("--manifest-path").arg(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    if !cfg!(debug_assertions) {
        cargo.arg("--release");
    }
    let out = cargo.stderr(Stdio::inherit()).output().expect("run cargo build --example daemon");
    assert!(out.status.success(), "cargo build --example daemon failed: {}", out.status);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact" && msg["target"]["name"] == "daemon")
        .find_map(|msg| msg["executable"].as_str().map(PathBuf::from))
        .expect("cargo reported no executable for the daemon example")
}

/// The daemon, killed if the test fails before it exits.
struct Daemon {
    child: Child,
    lines: Receiver<String>,
}

impl Daemon {
    fn start() -> Daemon {
        let mut child = Command::new(build_daemon())
            .args(["--port", "0"])
            .env_remove("SHARDCAST_PORT")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the daemon");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Daemon { child, lines }
    }

    /// The next stdout line; `None` at end of output.
    fn next_line(&self) -> Option<String> {
        match self.lines.recv_timeout(HANG) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Disconnected) => None,
            Err(mpsc::RecvTimeoutError::Timeout) => panic!("hang: no output from the daemon"),
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn get(agent: &ureq::Agent, url: &str) -> (String, String) {
    let mut response = agent.get(url).call().unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(response.status(), 200, "GET {url}");
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = response.body_mut().read_to_string().expect("read the body");
    (content_type, body)
}

/// The value of the unlabelled `shardcast_published_total` sample.
fn published_total(text: &str) -> u64 {
    text.lines()
        .find_map(|line| line.strip_prefix("shardcast_published_total "))
        .unwrap_or_else(|| panic!("no shardcast_published_total in:\n{text}"))
        .trim()
        .parse()
        .expect("a counter value")
}

/// Scrapes `read` until it returns more than `before`, at most `HANG`.
fn wait_for_more(what: &str, before: u64, mut read: impl FnMut() -> u64) -> u64 {
    let deadline = Instant::now() + HANG;
    loop {
        let now = read();
        if now > before {
            return now;
        }
        assert!(Instant::now() < deadline, "hang: {what} stayed at {before}");
        thread::sleep(POLL);
    }
}

#[test]
fn daemon_serves_live_stats_and_exits_cleanly_on_sigterm() {
    let mut daemon = Daemon::start();
    let line = daemon.next_line().expect("the daemon exited before listening");
    let addr = line
        .strip_prefix("listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    let port: u16 = addr["127.0.0.1:".len()..].parse().expect("a port");
    assert_ne!(port, 0);

    // No proxy from the environment: the daemon is on loopback.
    let agent: ureq::Agent =
        ureq::Agent::config_builder().proxy(None).timeout_global(Some(HANG)).build().into();
    let metrics = format!("http://{addr}/metrics");
    let json = format!("http://{addr}/stats.json");

    let (content_type, text) = get(&agent, &metrics);
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    assert!(text.contains("# TYPE shardcast_published_total counter"));
    assert!(text.contains("shardcast_subscriber_consumed_total{subscriber=\"audit\""));
    let first = published_total(&text);
    wait_for_more("shardcast_published_total", first, || published_total(&get(&agent, &metrics).1));

    let snapshot = |body: &str| -> StatsSnapshot {
        serde_json::from_str(body).unwrap_or_else(|e| panic!("not a StatsSnapshot ({e}): {body}"))
    };
    let (content_type, body) = get(&agent, &json);
    assert_eq!(content_type, "application/json");
    let stats = snapshot(&body);
    assert_eq!(stats.version, shardcast::stats::STATS_VERSION);
    let names: Vec<&str> = stats.subscribers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["audit", "orders-eu", "sensors", "dashboard"]);
    wait_for_more("published in /stats.json", stats.published, || {
        snapshot(&get(&agent, &json).1).published
    });

    let pid = libc::pid_t::try_from(daemon.child.id()).expect("a pid");
    // SAFETY: `kill` has no memory-safety preconditions; `pid` is our own child, which has
    // not been reaped yet (we have not waited on it), so the pid cannot have been reused.
    let sent = unsafe { libc::kill(pid, libc::SIGTERM) };
    assert_eq!(sent, 0, "kill(SIGTERM): {}", std::io::Error::last_os_error());

    let deadline = Instant::now() + HANG;
    let status = loop {
        if let Some(status) = daemon.child.try_wait().expect("wait for the daemon") {
            break status;
        }
        assert!(Instant::now() < deadline, "hang: the daemon did not exit after SIGTERM");
        thread::sleep(POLL);
    };
    let rest: Vec<String> = std::iter::from_fn(|| daemon.next_line()).collect();
    assert!(status.success(), "exit status {status}; output: {rest:#?}");
    assert_eq!(rest.first().map(String::as_str), Some("SIGTERM: stopping the producer"));
    let summary = rest
        .iter()
        .find_map(|l| l.strip_prefix("final stats: "))
        .unwrap_or_else(|| panic!("no final stats in {rest:#?}"));
    let published: u64 = summary
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("published="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no published= in {summary:?}"));
    assert!(published >= stats.published, "{summary}");
    // Every subscriber drained to `Closed`: audit (every topic) accounts for every event,
    // received or reported lost.
    let audit = rest
        .iter()
        .find_map(|l| l.trim().strip_prefix("audit: "))
        .unwrap_or_else(|| panic!("no audit line in {rest:#?}"));
    let count = |key: &str| -> u64 {
        audit
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(key))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {audit:?}"))
    };
    assert_eq!(count("received=") + count("lagged="), published, "{audit}");
    // The bus's counters of each subscriber outlive it (all were dropped by then): they
    // agree with what it saw, the slow one's losses included.
    for name in ["audit", "orders-eu", "sensors", "dashboard"] {
        let line = rest
            .iter()
            .find_map(|l| l.trim().strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} line in {rest:#?}"));
        let count = |key: &str| -> u64 {
            line.split_whitespace()
                .find_map(|kv| kv.strip_prefix(key))
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("no {key} in {line:?}"))
        };
        assert_eq!(count("consumed="), count("received="), "{line}");
        assert_eq!(count("dropped="), count("lagged="), "{line}");
    }
}
