//! `shardcast stats record` polls a stats endpoint into a capture that `shardcast stats plot`
//! draws; bad flags exit 2 naming the flag and its range; an endpoint that does not answer
//! exits 1; a daemon that goes away mid-recording leaves what was recorded, and exits 1;
//! Ctrl-C leaves what was recorded, and exits 0.
//!
//! The endpoint is a tiny HTTP server on 127.0.0.1 that serves a real bus's `Bus::stats()`
//! as JSON, serialized as the example daemon serializes it (`serde_json::to_string`).

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use shardcast::stats::Capture;
use shardcast::{Bus, Event, RecvError, Subscription, Topic};

fn shardcast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardcast")).args(args).output().expect("run shardcast")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A fresh, empty folder under the temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir()
            .join(format!("shardcast-stats-record-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        TempDir(dir)
    }

    fn files(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(&self.0) else { return Vec::new() };
        let mut files: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        files.sort();
        files
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bus with a subscriber and a publisher thread (so the counters move), served at
/// `/stats.json` until dropped. After `limit` answered requests the server stops
/// listening: the daemon went away.
struct Daemon {
    url: String,
    stop: Arc<AtomicBool>,
    threads: Vec<thread::JoinHandle<()>>,
    addr: std::net::SocketAddr,
}

impl Daemon {
    fn start(limit: usize) -> Self {
        let bus: Bus<u64> = Bus::builder().build().unwrap();
        let mut sub = bus.subscribe(Subscription::all().name("audit")).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        let mut publisher = bus.publisher().unwrap();
        let stopping = Arc::clone(&stop);
        threads.push(thread::spawn(move || {
            let topic = Topic::new("orders.eu.created").unwrap();
            let mut n = 0;
            while !stopping.load(Ordering::Relaxed) {
                for _ in 0..50 {
                    publisher.publish_blocking(Event::new(topic.clone(), n)).unwrap();
                    n += 1;
                }
                thread::sleep(Duration::from_millis(5));
            }
        }));
        // Lagged is not the end: receive until Closed.
        threads.push(thread::spawn(move || {
            while !matches!(sub.recv_blocking(), Err(RecvError::Closed)) {}
        }));

        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let stopping = Arc::clone(&stop);
        threads.push(thread::spawn(move || {
            for (answered, stream) in listener.incoming().enumerate() {
                if stopping.load(Ordering::Relaxed) || answered >= limit {
                    return; // drops the listener: later connects are refused
                }
                let Ok(stream) = stream else { continue };
                serve(stream, &bus);
            }
        }));
        Daemon { url: format!("http://{addr}/stats.json"), stop, threads, addr }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop, if it still runs
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One request: `/stats.json` gets the snapshot, anything else 404.
fn serve(stream: TcpStream, bus: &Bus<u64>) {
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let (status, body) = if request_line.starts_with("GET /stats.json ") {
        ("200 OK", serde_json::to_string(&bus.stats()).unwrap())
    } else {
        ("404 Not Found", "not found".to_owned())
    };
    let mut stream = &stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
}

fn load(path: &Path) -> Capture {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn record_then_plot() {
    let daemon = Daemon::start(usize::MAX);
    let out = TempDir::new("plot");
    let dir = out.0.to_str().unwrap();
    let run = shardcast(&[
        "stats",
        "record",
        "--url",
        &daemon.url,
        "--every",
        "200ms",
        "--for",
        "2s",
        "--out",
        dir,
    ]);
    assert!(run.status.success(), "{:?}\nstderr:\n{}", run.status, text(&run.stderr));
    assert!(text(&run.stdout).contains("shardcast stats plot"), "{}", text(&run.stdout));
    drop(daemon);

    let files = out.files();
    assert_eq!(files.len(), 1, "one capture, no temp files: {files:?}");
    let capture = load(&files[0]);
    let n = capture.samples.len();
    assert!((6..=11).contains(&n), "2 s at 200 ms is 11 polls; got {n}");
    assert_eq!(capture.meta.samples, n as u64);
    assert_eq!(capture.meta.interval_seconds, 0.2);
    assert_eq!(files[0].file_stem().unwrap().to_str().unwrap(), capture.meta.id);
    let (first, last) = (&capture.samples[0], &capture.samples[n - 1]);
    assert!(last.uptime_seconds > first.uptime_seconds);
    assert!(last.published > first.published, "the bus was publishing all along");
    assert_eq!(last.subscribers[0].name, "audit");

    let svg = out.0.join("plot.svg");
    let plot =
        shardcast(&["stats", "plot", files[0].to_str().unwrap(), "--out", svg.to_str().unwrap()]);
    assert!(plot.status.success(), "{:?}\nstderr:\n{}", plot.status, text(&plot.stderr));
    assert!(std::fs::read_to_string(&svg).unwrap().starts_with("<svg"));
}

#[test]
fn unreachable_url_exits_1_and_writes_nothing() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = TempDir::new("unreachable");
    let url = format!("http://127.0.0.1:{port}/stats.json");
    let run = shardcast(&[
        "stats",
        "record",
        "--url",
        &url,
        "--every",
        "100ms",
        "--for",
        "1s",
        "--out",
        out.0.to_str().unwrap(),
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("--url") && stderr.contains("cannot connect"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(!out.0.exists(), "no folder was made");
}

#[test]
fn an_endpoint_that_is_not_stats_exits_1() {
    let daemon = Daemon::start(usize::MAX);
    let out = TempDir::new("not-stats");
    let url = daemon.url.replace("/stats.json", "/metrics");
    let run = shardcast(&[
        "stats",
        "record",
        "--url",
        &url,
        "--every",
        "100ms",
        "--for",
        "1s",
        "--out",
        out.0.to_str().unwrap(),
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("404"), "{stderr}");
    assert!(out.files().is_empty());
}

#[test]
fn a_daemon_that_goes_away_leaves_what_was_recorded() {
    let daemon = Daemon::start(4);
    let out = TempDir::new("goes-away");
    let run = shardcast(&[
        "stats",
        "record",
        "--url",
        &daemon.url,
        "--every",
        "50ms",
        "--for",
        "10s",
        "--out",
        out.0.to_str().unwrap(),
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("stopped answering"), "{stderr}");
    let files = out.files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(load(&files[0]).samples.len(), 4);
}

#[test]
fn bad_flags_exit_2_naming_the_flag_and_the_range() {
    let out = TempDir::new("bad-flags");
    let dir = out.0.to_str().unwrap();
    let url = "http://127.0.0.1:9/stats.json";
    let cases: [(&[&str], &[&str]); 9] = [
        (&["--url", url, "--every", "0s"], &["--every", "10ms..=1h"]),
        (&["--url", url, "--every", "2h"], &["--every", "10ms..=1h"]),
        (&["--url", url, "--every", "1"], &["--every", "unit"]),
        (&["--url", url, "--for", "25h"], &["--for", "10ms..=24h"]),
        (&["--url", url, "--for", "-1s"], &["--for", "unit"]),
        (&["--url", url, "--every", "1s", "--for", "100ms"], &["--for", "--every", "shorter"]),
        (&["--url", url, "--every", "10ms", "--for", "24h"], &["--for", "--every", "100000"]),
        (&["--url", "https://127.0.0.1/stats.json"], &["--url", "http://"]),
        (&["--url", "http://127.0.0.1:99999/"], &["--url", "1..=65535"]),
    ];
    for (args, words) in cases {
        let mut all = vec!["stats", "record", "--out", dir];
        all.extend_from_slice(args);
        let run = shardcast(&all);
        let stderr = text(&run.stderr);
        assert_eq!(run.status.code(), Some(2), "{args:?}: stderr:\n{stderr}");
        for word in words {
            assert!(stderr.contains(word), "{args:?}: no {word:?} in:\n{stderr}");
        }
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(run.stdout.is_empty(), "{args:?}");
    }
    let run = shardcast(&["stats", "record", "--out", dir]);
    assert_eq!(run.status.code(), Some(2), "--url is required");
    assert!(text(&run.stderr).contains("--url"));
    assert!(out.files().is_empty(), "nothing was recorded: {:?}", out.files());
}

#[test]
fn unwritable_out_fails_before_the_recording() {
    let daemon = Daemon::start(usize::MAX);
    let tmp = TempDir::new("unwritable");
    std::fs::create_dir_all(&tmp.0).unwrap();
    let file = tmp.0.join("a-file");
    std::fs::write(&file, "not a folder").unwrap();
    let out = file.join("captures");
    let started = std::time::Instant::now();
    let run = shardcast(&[
        "stats",
        "record",
        "--url",
        &daemon.url,
        "--every",
        "1s",
        "--for",
        "60s",
        "--out",
        out.to_str().unwrap(),
    ]);
    let stderr = text(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("--out") && stderr.contains("cannot write"), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(30), "checked before recording for 60 s");
}

/// Ctrl-C ends the recording early and saves what was recorded (exit 0).
#[cfg(unix)]
#[test]
fn ctrl_c_saves_what_was_recorded() {
    use std::process::Stdio;

    let daemon = Daemon::start(usize::MAX);
    let out = TempDir::new("ctrl-c");
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args(["stats", "record", "--url", &daemon.url, "--every", "100ms", "--for", "60s"])
        .args(["--out", out.0.to_str().unwrap()])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // "recording ..." is printed once the handler is installed.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    assert!(line.contains("recording"), "{line}");
    thread::sleep(Duration::from_millis(500));
    let kill = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    assert!(status.success(), "{status:?}\nstderr:\n{line}{rest}");
    assert!(rest.contains("interrupted"), "{rest}");
    let files = out.files();
    assert_eq!(files.len(), 1, "{files:?}");
    let n = load(&files[0]).samples.len();
    assert!((2..100).contains(&n), "about 6 samples in 0.5 s at 100 ms; got {n}");
}
