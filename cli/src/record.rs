//! `shardcast stats record`: polls a running daemon's stats endpoint into a capture.
//!
//! The daemon serves `Bus::stats()` as JSON (the example daemon at `/stats.json`); every
//! `--every` this GETs it, for `--for`, and then saves the snapshots as one capture file in
//! `--out`, the same `<id>.json` that `shardcast::stats::StatsRecorder` writes (through
//! `Capture::save`), so `shardcast stats plot` reads it. The plot's time axis is each
//! snapshot's own `uptime_seconds`, so a slow poll does not distort rates.
//!
//! Failures: an endpoint that does not answer the first poll (or answers something that is
//! not a stats snapshot) exits 1 before anything is written. Later, a failed poll is
//! reported and skipped; after [`MAX_MISSES`] failures in a row (the daemon went away) the
//! recording stops early, what was recorded is saved, and the exit status is 1. Ctrl-C
//! (SIGINT) ends the recording early too: what was recorded is saved, exit 0.

use std::error::Error;
use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Args;
use shardcast::stats::{Capture, StatsSnapshot};

use crate::http::{self, GetError, Url};
use crate::Usage;

/// Shortest `--every`: a poll is an HTTP request and a snapshot on the daemon's side.
const MIN_EVERY: Duration = Duration::from_millis(10);
/// Longest `--every`.
const MAX_EVERY: Duration = Duration::from_secs(3600);
/// Shortest `--for`.
const MIN_FOR: Duration = Duration::from_millis(10);
/// Longest `--for`.
const MAX_FOR: Duration = Duration::from_secs(24 * 3600);
/// Most samples a recording may plan: all of them are held in memory until saved.
const MAX_SAMPLES: u64 = 100_000;
/// Failed polls in a row that end the recording early.
const MAX_MISSES: u32 = 3;
/// Bounds on one poll's connect/read timeout (it is `--every`, clamped to these).
const MIN_POLL_TIMEOUT: Duration = Duration::from_secs(1);
const MAX_POLL_TIMEOUT: Duration = Duration::from_secs(10);

/// `shardcast stats record`.
#[derive(Debug, Args)]
pub struct RecordArgs {
    /// The daemon's stats endpoint, plain HTTP: http://HOST:PORT/PATH (the example
    /// daemon's is http://127.0.0.1:9464/stats.json)
    #[arg(long, value_parser = parse_url)]
    url: Url,
    /// Time between samples, 10ms..=1h: a number and a unit (ms, s, m, h), e.g. 200ms, 1s
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_every)]
    #[arg(allow_hyphen_values = true)] // `--every -1s`: our message, not "unexpected argument"
    every: Duration,
    /// How long to record, 10ms..=24h, at least --every: e.g. 60s, 5m, 1h
    #[arg(long = "for", value_name = "DURATION", default_value = "60s", value_parser = parse_for)]
    #[arg(allow_hyphen_values = true)]
    span: Duration,
    /// The folder to write the capture to, `<id>.json` (created if missing)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
}

fn parse_url(text: &str) -> Result<Url, String> {
    Url::parse(text)
}

fn parse_every(text: &str) -> Result<Duration, String> {
    parse_duration_in(text, MIN_EVERY, MAX_EVERY, "10ms..=1h")
}

fn parse_for(text: &str) -> Result<Duration, String> {
    parse_duration_in(text, MIN_FOR, MAX_FOR, "10ms..=24h")
}

fn parse_duration_in(
    text: &str,
    min: Duration,
    max: Duration,
    range: &str,
) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < min || d > max {
        return Err(format!("{text:?} is not in {range}"));
    }
    Ok(d)
}

/// `500ms`, `1s`, `1.5s`, `2m`, `1h`. A bare number is refused: `--every 1` could mean
/// anything.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let expected = "expected a number and a unit (ms, s, m or h), e.g. 500ms, 1s, 2m";
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let scale = match unit.trim() {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{text:?}: {expected}")),
    };
    let number: f64 = number.parse().map_err(|_| format!("{text:?}: {expected}"))?;
    Duration::try_from_secs_f64(number * scale).map_err(|_| format!("{text:?}: out of range"))
}

/// Records, saves, prints where the capture went.
///
/// # Errors
/// A [`Usage`] error (exit 2) for a plan with too many samples or `--for` shorter than
/// `--every`; otherwise (exit 1) an unwritable `--out`, an endpoint that does not answer
/// the first poll, a daemon that stopped answering (after saving what was recorded), or a
/// failed save.
pub fn run(args: &RecordArgs) -> Result<(), Box<dyn Error>> {
    let RecordArgs { url, every, span, out } = args;
    let (every, span) = (*every, *span);
    if span < every {
        return Err(Usage(format!(
            "--for {} is shorter than --every {}: a capture needs at least two samples",
            show(span),
            show(every)
        ))
        .into());
    }
    let planned = (span.as_nanos() / every.as_nanos()) as u64 + 1;
    if planned > MAX_SAMPLES {
        return Err(Usage(format!(
            "--for {} at --every {} is {planned} samples: at most {MAX_SAMPLES} \
             (raise --every or shorten --for)",
            show(span),
            show(every)
        ))
        .into());
    }

    let timeout = every.clamp(MIN_POLL_TIMEOUT, MAX_POLL_TIMEOUT);
    // Before the first poll: once "recording" is printed, Ctrl-C saves rather than kills.
    let ctrl_c = on_ctrl_c();
    let started = SystemTime::now();
    let start = Instant::now();
    let first = poll(url, timeout).map_err(|e| {
        let hint =
            if e.downcast_ref::<GetError>().is_some_and(|e| matches!(e, GetError::Connect(_))) {
                " (is the daemon running, and serving there?)"
            } else {
                ""
            };
        format!("--url {url}: {e}{hint}")
    })?;
    // After the first poll (an unreachable daemon leaves no folder behind), before the
    // recording (a bad folder shows now, not after `--for`).
    check_writable(out)?;
    let mut samples = Vec::with_capacity(planned.min(4096) as usize);
    samples.push(first);
    eprintln!(
        "shardcast: recording {url} every {} for {} into {}",
        show(every),
        show(span),
        out.display()
    );

    let (mut misses, mut missed, mut gave_up) = (0u32, 0u64, None);
    let mut next = start + every;
    while next.duration_since(start) <= span {
        if interrupted_before(next, ctrl_c.as_ref()) {
            eprintln!("shardcast: interrupted after {:.1}s", start.elapsed().as_secs_f64());
            break;
        }
        match poll(url, timeout) {
            Ok(sample) => {
                samples.push(sample);
                misses = 0;
            }
            Err(e) => {
                missed += 1;
                misses += 1;
                let at = start.elapsed().as_secs_f64();
                eprintln!("shardcast: sample at +{at:.1}s skipped: {e}");
                if misses >= MAX_MISSES {
                    gave_up = Some(e);
                    break;
                }
            }
        }
        next += every;
        let now = Instant::now();
        if next < now {
            // Fell behind (a slow daemon, a suspended machine): keep the cadence from now
            // rather than catching up with a burst of polls.
            next = now + every;
        }
    }

    let mut capture = Capture::default();
    capture.meta.started_unix_ms = unix_ms(started);
    capture.meta.stopped_unix_ms = unix_ms(SystemTime::now());
    capture.meta.interval_seconds = every.as_secs_f64();
    capture.meta.max_samples = planned;
    capture.samples = samples;
    let meta = capture.save(out).map_err(|e| format!("--out {}: {e}", out.display()))?;
    let path = out.join(format!("{}.json", meta.id));
    println!(
        "recorded {} samples from {url} ({missed} skipped) into {}",
        meta.samples,
        path.display()
    );
    println!("plot it: shardcast stats plot {} --out plot.svg", path.display());
    match gave_up {
        None => Ok(()),
        Some(e) => Err(format!(
            "--url {url} stopped answering ({e}) after {MAX_MISSES} tries in a row; \
             saved the {} samples recorded before that",
            meta.samples
        )
        .into()),
    }
}

/// A channel that gets a message on the first Ctrl-C (SIGINT), from a watcher thread that
/// runs until the process exits. `None` (with a warning) if the handler cannot be installed:
/// then Ctrl-C kills the recording as it would without one.
fn on_ctrl_c() -> Option<Receiver<()>> {
    let (tx, rx) = mpsc::channel();
    let (installed_tx, installed) = mpsc::channel();
    let watcher = move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        runtime.block_on(async move {
            #[cfg(unix)]
            {
                // `signal` installs the handler now; `ctrl_c()` would only on its first poll.
                use tokio::signal::unix::{signal, SignalKind};
                let mut interrupt = signal(SignalKind::interrupt())?;
                let _ = installed_tx.send(());
                interrupt.recv().await;
            }
            #[cfg(not(unix))]
            {
                let ctrl_c = tokio::signal::ctrl_c();
                let _ = installed_tx.send(());
                ctrl_c.await?;
            }
            let _ = tx.send(());
            // Stay: a second Ctrl-C while the capture is saved must not kill the process.
            std::future::pending::<std::io::Result<()>>().await
        })
    };
    let spawned = thread::Builder::new().name("ctrl-c".to_owned()).spawn(move || {
        if let Err(e) = watcher() {
            eprintln!("shardcast: warning: Ctrl-C will not save the capture: {e}");
        }
    });
    match spawned {
        // The watcher drops its sender on failure: then this `recv` fails.
        Ok(_) => installed.recv().ok().map(|()| rx),
        Err(e) => {
            eprintln!("shardcast: warning: Ctrl-C will not save the capture: {e}");
            None
        }
    }
}

/// Waits until `deadline`; `true` if Ctrl-C came first.
fn interrupted_before(deadline: Instant, ctrl_c: Option<&Receiver<()>>) -> bool {
    let wait = deadline.saturating_duration_since(Instant::now());
    match ctrl_c {
        Some(ctrl_c) => match ctrl_c.recv_timeout(wait) {
            Ok(()) => true,
            Err(RecvTimeoutError::Timeout) => false,
            // The watcher failed after all: no more Ctrl-C, but still wait (no busy loop).
            Err(RecvTimeoutError::Disconnected) => {
                thread::sleep(deadline.saturating_duration_since(Instant::now()));
                false
            }
        },
        None => {
            thread::sleep(wait);
            false
        }
    }
}

/// One GET, parsed as a stats snapshot.
fn poll(url: &Url, timeout: Duration) -> Result<StatsSnapshot, Box<dyn Error>> {
    let body = http::get(url, timeout)?;
    serde_json::from_slice(&body)
        .map_err(|e| format!("the answer is not a shardcast stats snapshot: {e}").into())
}

/// Creates `out` and a file in it (removed again).
fn check_writable(out: &Path) -> Result<(), Box<dyn Error>> {
    let cannot = |e: std::io::Error| format!("--out {}: cannot write there: {e}", out.display());
    fs::create_dir_all(out).map_err(cannot)?;
    let probe = out.join(format!(".shardcast-record-probe-{}", std::process::id()));
    OpenOptions::new().write(true).create(true).truncate(true).open(&probe).map_err(cannot)?;
    let _ = fs::remove_file(&probe);
    Ok(())
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// `Duration` as the flags spell it: `200ms`, `1s`, `1.5s`.
fn show(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("1s"), Ok(Duration::from_secs(1)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "1", "s", "1x", "-1s", "1..5s", "1e3s", "99999999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert!(parse_every("5ms").unwrap_err().contains("10ms..=1h"));
        assert!(parse_every("2h").is_err());
        assert!(parse_for("25h").unwrap_err().contains("10ms..=24h"));
        assert_eq!(show(Duration::from_millis(200)), "200ms");
        assert_eq!(show(Duration::from_secs(60)), "60s");
    }
}
