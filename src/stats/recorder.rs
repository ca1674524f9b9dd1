//! Incident captures: a background sampler that records `Bus::stats` snapshots to disk.
//!
//! An operator (or an alert hook) calls [`StatsRecorder::start`] when something looks wrong
//! and [`StatsRecorder::stop`] when it is over; the capture lands in the recorder's folder as
//! one self-contained `<id>.json`, which `shardcast stats plot` turns into a chart.
//!
//! # File format
//! `{"meta": {...}, "samples": [...]}`, meta first. [`StatsRecorder::list`] reads each file
//! only up to the end of `meta` (see [`read_meta`]), so listing a folder of 100 MB captures
//! reads a few KiB of each. One file rather than a `<id>.meta.json` sidecar: a capture is
//! written, renamed, plotted, copied and deleted as one unit, and no crash can leave a meta
//! without its samples or the reverse.
//!
//! # Atomic, unique publication
//! `stop` writes a hidden temp file in the same folder, fsyncs it, then hard-links it to
//! `<id>.json`: unlike `rename`, a link never replaces an existing file, so two recorders
//! stopping in the same second (even in two processes) get `<id>` and `<id>-2`, and readers
//! see either no file or the whole file. On a file system without hard links the recorder
//! falls back to check-then-rename (atomic for readers, but two writers racing on the same
//! id in the same instant could then collide).
//!
//! # Orderings
//! `armed` is the only atomic, a `Relaxed` flag that guards no data (see
//! [`StatsRecorder::is_armed`]); everything else is behind the `capture` lock, so there is
//! no Acquire/Release pair to model.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::de::{self, Deserializer as _, MapAccess, Visitor};
use serde::{Deserialize, Serialize};

use crate::bus::Bus;
use crate::stats::snapshot::StatsSnapshot;
use crate::sync::atomic::{AtomicBool, Ordering};
use crate::sync::thread::JoinHandle;
use crate::sync::{spawn_named, Arc, Condvar, Mutex};

/// Version of the capture file's schema; bumped on any incompatible change.
const CAPTURE_VERSION: u32 = 1;
/// Default time between samples.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Default sample cap: 90 minutes at one sample a second.
const DEFAULT_MAX_SAMPLES: usize = 5400;
/// Shortest interval: a zero interval would spin the sampler thread.
const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// Bytes of `2026-11-24T18-37-41Z`.
const ID_BASE_LEN: usize = 20;

/// What a capture was: written first in its file, and all that [`StatsRecorder::list`]
/// reads.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CaptureMeta {
    /// Capture file schema version.
    pub version: u32,
    /// The capture's id, a UTC timestamp of its stop, `2026-11-24T18-37-41Z`, with a
    /// `-2`, `-3`, ... suffix when several captures stopped in the same second. The file
    /// is `<id>.json`.
    pub id: String,
    /// When `start` armed the capture, in milliseconds since the Unix epoch (UTC).
    pub started_unix_ms: u64,
    /// When `stop` ended it, in milliseconds since the Unix epoch (UTC).
    pub stopped_unix_ms: u64,
    /// Time between samples.
    pub interval_seconds: f64,
    /// Samples kept.
    pub samples: u64,
    /// The sample cap the capture ran with.
    pub max_samples: u64,
    /// Whether samples were dropped at the cap (the first `max_samples` are kept).
    pub truncated: bool,
    /// Samples dropped at the cap.
    pub dropped_samples: u64,
}

/// A capture: its meta and every sample kept, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Capture {
    /// What the capture was. Serialized first: `list` reads only this.
    pub meta: CaptureMeta,
    /// The snapshots, oldest first, `interval_seconds` apart (each has the bus's
    /// `uptime_seconds`, which is the time axis to use).
    pub samples: Vec<StatsSnapshot>,
}

impl Capture {
    /// Writes a capture assembled elsewhere into `dir` (created if missing), the way
    /// [`StatsRecorder::stop`] writes its own: atomically, as `<id>.json` under a fresh id
    /// from `meta.stopped_unix_ms` (`-2`, `-3`, ... if taken), so
    /// [`StatsRecorder::list`] and `shardcast stats plot` read it. Sets `meta.version`,
    /// `meta.id` and `meta.samples`; the other meta fields are the caller's. This is how
    /// `shardcast stats record` saves the snapshots it polls from a daemon's `/stats.json`.
    ///
    /// ```
    /// use shardcast::Bus;
    /// use shardcast::stats::{Capture, StatsRecorder};
    /// # let dir = std::env::temp_dir().join(format!("shardcast-doc-save-{}", std::process::id()));
    /// let bus: Bus<u64> = Bus::builder().build()?;
    /// let mut capture = Capture::default();
    /// capture.meta.interval_seconds = 1.0;
    /// capture.meta.stopped_unix_ms = 1_764_633_600_000; // 2025-12-02T00:00:00Z
    /// capture.samples.push(bus.stats());
    /// let meta = capture.save(&dir)?;
    /// assert_eq!((meta.id.as_str(), meta.samples), ("2025-12-02T00-00-00Z", 1));
    /// let recorder = StatsRecorder::new(&dir, bus);
    /// assert_eq!(recorder.load(&meta.id)?.samples.len(), 1);
    /// # std::fs::remove_dir_all(&dir)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// # Errors
    /// `Io` if the folder cannot be created or the file cannot be written.
    pub fn save(mut self, dir: impl AsRef<Path>) -> Result<CaptureMeta, RecorderError> {
        self.meta.version = CAPTURE_VERSION;
        self.meta.samples = self.samples.len() as u64;
        let stopped = UNIX_EPOCH + Duration::from_millis(self.meta.stopped_unix_ms);
        write_capture(dir.as_ref(), &id_base(stopped), &mut self)?;
        Ok(self.meta)
    }
}

/// What can go wrong recording, listing or loading captures.
#[derive(Debug)]
#[non_exhaustive]
pub enum RecorderError {
    /// A file system operation failed.
    Io {
        /// The file or folder it was about.
        path: PathBuf,
        /// The error.
        source: io::Error,
    },
    /// No capture has this id (or the id is not a capture id at all, e.g. a path).
    NotFound(String),
    /// The capture's file is not a valid capture: the id and the parser's message.
    Corrupt(String, String),
    /// `stop` was called with no capture armed.
    NotArmed,
}

impl RecorderError {
    fn io(path: &Path, source: io::Error) -> Self {
        RecorderError::Io { path: path.to_owned(), source }
    }
}

impl fmt::Display for RecorderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecorderError::Io { path, source } => {
                write!(f, "i/o error on {}: {source}", path.display())
            }
            RecorderError::NotFound(id) => write!(f, "capture {id:?} not found"),
            RecorderError::Corrupt(id, msg) => write!(f, "capture {id:?} is corrupt: {msg}"),
            RecorderError::NotArmed => f.write_str("no capture armed"),
        }
    }
}

impl std::error::Error for RecorderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RecorderError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Where snapshots come from: `Bus::stats` of some bus, type-erased so the recorder needs
/// no event type.
struct Source(Box<dyn Fn() -> StatsSnapshot + Send + Sync>);

/// Records [`StatsSnapshot`]s in the background while armed, and keeps the captures in a
/// folder.
///
/// ```no_run
/// use std::time::Duration;
/// use shardcast::Bus;
/// use shardcast::stats::StatsRecorder;
///
/// let bus: Bus<u64> = Bus::builder().build()?;
/// let recorder = StatsRecorder::new("/var/lib/myapp/captures", bus.clone())
///     .interval(Duration::from_millis(500));
/// recorder.start()?; // an alert fired
/// // ...
/// let meta = recorder.stop()?; // writes <id>.json
/// println!("captured {} samples as {}", meta.samples, meta.id);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// The recorder holds what its source holds: [`new`](Self::new) keeps a handle to the bus,
/// so the bus stays open until the recorder is dropped (or the publisher is dropped).
/// Dropping the recorder while armed discards the capture in progress; call
/// [`stop`](Self::stop) to keep it.
pub struct StatsRecorder {
    dir: PathBuf,
    interval: Duration,
    max_samples: usize,
    source: Arc<Source>,
    /// Mirrors `capture.is_some()`; written only under the `capture` lock.
    armed: AtomicBool,
    capture: Mutex<Option<Running>>,
}

/// An armed capture.
struct Running {
    session: Arc<Session>,
    sampler: JoinHandle<()>,
    started: SystemTime,
}

/// What the sampler thread shares with `stop`.
struct Session {
    source: Arc<Source>,
    interval: Duration,
    stop: Mutex<bool>,
    wake: Condvar,
    samples: Mutex<Samples>,
}

#[derive(Default)]
struct Samples {
    kept: Vec<StatsSnapshot>,
    dropped: u64,
    max: usize,
}

impl StatsRecorder {
    /// A recorder of `bus`'s stats, keeping captures in `dir` (created on `start` if
    /// missing). Defaults: a sample a second, at most 5400 samples.
    pub fn new<E: Send + Sync + 'static>(dir: impl Into<PathBuf>, bus: Bus<E>) -> Self {
        Self::with_source(dir, move || bus.stats())
    }

    /// A recorder of whatever `source` returns: for a snapshot assembled from several
    /// buses, or a synthetic one in tests.
    pub fn with_source(
        dir: impl Into<PathBuf>,
        source: impl Fn() -> StatsSnapshot + Send + Sync + 'static,
    ) -> Self {
        StatsRecorder {
            dir: dir.into(),
            interval: DEFAULT_INTERVAL,
            max_samples: DEFAULT_MAX_SAMPLES,
            source: Arc::new(Source(Box::new(source))),
            armed: AtomicBool::new(false),
            capture: Mutex::new(None),
        }
    }

    /// Time between samples; default 1 s; at least 1 ms (shorter is raised to 1 ms). The
    /// first sample is taken at `start`. A sample that takes longer than the interval
    /// delays the next one rather than causing a burst.
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval.max(MIN_INTERVAL);
        self
    }

    /// Most samples kept per capture; default 5400 (90 minutes at 1 s). Memory stays
    /// bounded: later samples are dropped (counted, and the capture marked `truncated`),
    /// the first ones kept, since the start of an incident is what explains it.
    pub fn max_samples(mut self, max: usize) -> Self {
        self.max_samples = max;
        self
    }

    /// The folder captures are kept in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Arms a capture: a background thread takes a snapshot now and every `interval`
    /// until [`stop`](Self::stop). Idempotent: while armed, does nothing.
    ///
    /// # Errors
    /// `Io` if the folder cannot be created or the thread cannot be spawned, so a bad
    /// folder shows when the capture is armed rather than when the incident is over.
    pub fn start(&self) -> Result<(), RecorderError> {
        let mut capture = self.capture.lock();
        if capture.is_some() {
            return Ok(());
        }
        fs::create_dir_all(&self.dir).map_err(|e| RecorderError::io(&self.dir, e))?;
        let session = Arc::new(Session {
            source: Arc::clone(&self.source),
            interval: self.interval,
            stop: Mutex::new(false),
            wake: Condvar::new(),
            samples: Mutex::new(Samples { kept: Vec::new(), dropped: 0, max: self.max_samples }),
        });
        let started = SystemTime::now();
        let worker = Arc::clone(&session);
        let sampler = spawn_named("shardcast-stats-recorder".to_owned(), move || worker.run())
            .map_err(|e| RecorderError::io(&self.dir, e))?;
        *capture = Some(Running { session, sampler, started });
        // Relaxed: see `is_armed`; the capture lock orders this store with `stop`'s.
        self.armed.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Whether a capture is armed.
    pub fn is_armed(&self) -> bool {
        // Relaxed is enough: the flag guards no data (the capture's state is behind the
        // `capture` lock, which `start` and `stop` hold when they store it), and the answer
        // may be stale the moment it returns anyway, so it is a status display, never a
        // decision that needs ordering with the sampler.
        self.armed.load(Ordering::Relaxed)
    }

    /// Ends the armed capture and writes it to `<id>.json` in the folder, atomically.
    ///
    /// # Errors
    /// `NotArmed` with no capture armed; `Io` if the file cannot be written (the samples
    /// are lost then: the recorder is disarmed either way).
    pub fn stop(&self) -> Result<CaptureMeta, RecorderError> {
        let running = {
            let mut capture = self.capture.lock();
            let running = capture.take().ok_or(RecorderError::NotArmed)?;
            // Relaxed: see `is_armed`; stored under the lock, like `start`'s store.
            self.armed.store(false, Ordering::Relaxed);
            running
        };
        *running.session.stop.lock() = true;
        running.session.wake.notify_all();
        // A source that panicked ended sampling early; what it took before is kept.
        let _ = running.sampler.join();
        let stopped = SystemTime::now();
        let samples = std::mem::take(&mut *running.session.samples.lock());
        let mut capture = Capture {
            meta: CaptureMeta {
                version: CAPTURE_VERSION,
                id: String::new(),
                started_unix_ms: unix_ms(running.started),
                stopped_unix_ms: unix_ms(stopped),
                interval_seconds: self.interval.as_secs_f64(),
                samples: samples.kept.len() as u64,
                max_samples: self.max_samples as u64,
                truncated: samples.dropped > 0,
                dropped_samples: samples.dropped,
            },
            samples: samples.kept,
        };
        write_capture(&self.dir, &id_base(stopped), &mut capture)?;
        Ok(capture.meta)
    }

    /// The captures in the folder, newest first. Reads only each file's meta. Files that
    /// are not captures, or whose meta is unreadable, are skipped (`load` says why).
    ///
    /// # Errors
    /// `Io` if the folder exists but cannot be read.
    pub fn list(&self) -> Result<Vec<CaptureMeta>, RecorderError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(RecorderError::io(&self.dir, e)),
        };
        let mut metas = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| RecorderError::io(&self.dir, e))?;
            let name = entry.file_name();
            let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                continue;
            };
            if parse_id(id).is_none() {
                continue;
            }
            let Ok(file) = File::open(entry.path()) else { continue };
            if let Ok(mut meta) = read_meta(BufReader::new(file)) {
                // The file name is what `load` and `delete` take, whatever the meta says.
                meta.id = id.to_owned();
                metas.push(meta);
            }
        }
        metas.sort_by_key(|m| std::cmp::Reverse(newest_first_key(m)));
        Ok(metas)
    }

    /// A capture: meta and samples.
    ///
    /// # Errors
    /// `NotFound` for an unknown or malformed id (paths are never followed); `Corrupt` if
    /// the file does not parse; `Io` if it cannot be read.
    pub fn load(&self, id: &str) -> Result<Capture, RecorderError> {
        let path = self.path_of(id)?;
        let bytes = fs::read(&path).map_err(|e| not_found_or_io(id, &path, e))?;
        let mut capture: Capture = serde_json::from_slice(&bytes)
            .map_err(|e| RecorderError::Corrupt(id.to_owned(), e.to_string()))?;
        capture.meta.id = id.to_owned();
        Ok(capture)
    }

    /// Deletes a capture.
    ///
    /// # Errors
    /// `NotFound` for an unknown or malformed id; `Io` if it cannot be removed.
    pub fn delete(&self, id: &str) -> Result<(), RecorderError> {
        let path = self.path_of(id)?;
        fs::remove_file(&path).map_err(|e| not_found_or_io(id, &path, e))
    }

    /// `<dir>/<id>.json` for a well-formed id; anything else (a path, `..`, an empty
    /// string) is `NotFound`, so ids from a URL or a command line are safe to pass.
    fn path_of(&self, id: &str) -> Result<PathBuf, RecorderError> {
        parse_id(id).ok_or_else(|| RecorderError::NotFound(id.to_owned()))?;
        Ok(self.dir.join(format!("{id}.json")))
    }

    #[cfg(test)]
    fn samples_taken(&self) -> usize {
        self.capture.lock().as_ref().map_or(0, |r| r.session.samples.lock().kept.len())
    }
}

impl Drop for StatsRecorder {
    fn drop(&mut self) {
        if let Some(running) = self.capture.lock().take() {
            *running.session.stop.lock() = true;
            running.session.wake.notify_all();
            let _ = running.sampler.join();
        }
    }
}

impl fmt::Debug for StatsRecorder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StatsRecorder")
            .field("dir", &self.dir)
            .field("interval", &self.interval)
            .field("max_samples", &self.max_samples)
            .field("armed", &self.is_armed())
            .finish()
    }
}

impl Session {
    /// The sampler thread: a snapshot now and at every tick until `stop` is set.
    fn run(&self) {
        let mut next = Instant::now();
        loop {
            // Taken outside every lock: a slow or panicking source blocks nobody else.
            let snapshot = (self.source.0)();
            self.samples.lock().push(snapshot);
            next += self.interval;
            let now = Instant::now();
            if next < now {
                // Fell behind (a slow source, a suspended machine): resume the cadence
                // from now instead of catching up with a burst of samples.
                next = now + self.interval;
            }
            let mut stop = self.stop.lock();
            loop {
                if *stop {
                    return;
                }
                let now = Instant::now();
                if now >= next {
                    break;
                }
                // Woken early by `stop` (or spuriously): the loop re-checks both.
                stop = self.wake.wait_timeout(stop, next - now);
            }
        }
    }
}

impl Samples {
    fn push(&mut self, snapshot: StatsSnapshot) {
        if self.kept.len() < self.max {
            self.kept.push(snapshot);
        } else {
            self.dropped += 1;
        }
    }
}

fn not_found_or_io(id: &str, path: &Path, e: io::Error) -> RecorderError {
    if e.kind() == io::ErrorKind::NotFound {
        RecorderError::NotFound(id.to_owned())
    } else {
        RecorderError::io(path, e)
    }
}

/// Writes `capture` as `<base>.json` (or `<base>-2.json`, ...) in `dir`, atomically, with
/// `capture.meta.id` set to the id it gets.
fn write_capture(dir: &Path, base: &str, capture: &mut Capture) -> Result<(), RecorderError> {
    fs::create_dir_all(dir).map_err(|e| RecorderError::io(dir, e))?;
    for n in 1u32.. {
        let id = if n == 1 { base.to_owned() } else { format!("{base}-{n}") };
        let path = dir.join(format!("{id}.json"));
        if path.exists() {
            continue; // taken: no need to write a temp file to find out
        }
        // The id goes into the file too, so a copied or plotted file still names itself.
        capture.meta.id = id;
        let (tmp, file) = create_temp(dir)?;
        let linked = write_and_sync(&file, capture)
            .map_err(|e| RecorderError::io(&tmp, e))
            .and_then(|()| link_new(&tmp, &path));
        drop(file);
        // Linked, lost the race, or failed: the temp name goes (a rename already moved it).
        let _ = fs::remove_file(&tmp);
        if linked? {
            sync_dir(dir);
            return Ok(());
        }
        // Another writer took this id between the check and the link: try the next one.
    }
    unreachable!("u32 suffixes run out only after 4 billion captures in one second")
}

/// Gives `tmp` the name `path` unless `path` exists; `false` if it does.
fn link_new(tmp: &Path, path: &Path) -> Result<bool, RecorderError> {
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        // No hard links here (FAT, some network file systems): check, then rename.
        Err(_) if path.exists() => Ok(false),
        Err(_) => fs::rename(tmp, path).map(|()| true).map_err(|e| RecorderError::io(path, e)),
    }
}

/// A new hidden temp file in `dir`; never a `*.json` name, so `list` never sees one.
fn create_temp(dir: &Path) -> Result<(PathBuf, File), RecorderError> {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let mut attempt = 0u32;
    loop {
        let path = dir.join(format!(".capture-{}-{nanos}-{attempt}.tmp", std::process::id()));
        match OpenOptions::new().write(true).create_new(true).open(&path) {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 1000 => attempt += 1,
            Err(e) => return Err(RecorderError::io(&path, e)),
        }
    }
}

fn write_and_sync(file: &File, capture: &Capture) -> io::Result<()> {
    let mut writer = BufWriter::new(file);
    serde_json::to_writer(&mut writer, capture)?;
    writer.flush()?;
    drop(writer);
    file.sync_all()
}

/// Makes the new directory entry durable (Unix; elsewhere the rename is what we have).
fn sync_dir(dir: &Path) {
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    #[cfg(not(unix))]
    let _ = dir;
}

/// Reads a capture file's `meta` and stops: the samples after it are never read.
///
/// serde_json has no "parse a prefix" call, so a map visitor takes the first entry, which
/// must be `meta`, stashes it and then ends the parse with a sentinel error. The stash,
/// not the parse result, says whether it worked.
fn read_meta<R: io::Read>(reader: R) -> Result<CaptureMeta, serde_json::Error> {
    struct Head<'a>(&'a mut Option<CaptureMeta>);

    impl<'de> Visitor<'de> for Head<'_> {
        type Value = ();

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a capture object starting with \"meta\"")
        }

        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            match map.next_key::<String>()? {
                Some(key) if key == "meta" => {}
                _ => return Err(de::Error::custom("the first key is not \"meta\"")),
            }
            *self.0 = Some(map.next_value()?);
            Err(de::Error::custom("meta read; the samples are skipped"))
        }
    }

    let mut meta = None;
    let mut de = serde_json::Deserializer::from_reader(reader);
    let parse = (&mut de).deserialize_map(Head(&mut meta));
    match (meta, parse) {
        (Some(meta), _) => Ok(meta),
        (None, Err(e)) => Err(e),
        (None, Ok(())) => unreachable!("the visitor never returns Ok"),
    }
}

/// `(base, suffix)` of a capture id, suffix 1 for none; `None` for anything that is not
/// exactly `YYYY-MM-DDTHH-MM-SSZ` with an optional `-N` (N ≥ 2, no leading zero). That
/// shape has no `/`, `\`, `.`, `:` or `%`, so no path or encoding trick gets through.
fn parse_id(id: &str) -> Option<(&str, u32)> {
    const SHAPE: &[u8; ID_BASE_LEN] = b"0000-00-00T00-00-00Z";
    let bytes = id.as_bytes();
    if bytes.len() < ID_BASE_LEN {
        return None;
    }
    let base_ok = bytes.iter().zip(SHAPE).all(|(&b, &shape)| match shape {
        b'0' => b.is_ascii_digit(),
        other => b == other,
    });
    if !base_ok {
        return None;
    }
    // The first 20 bytes are ASCII: splitting there is on a char boundary.
    let (base, rest) = id.split_at(ID_BASE_LEN);
    if rest.is_empty() {
        return Some((base, 1));
    }
    let digits = rest.strip_prefix('-')?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u32 = digits.parse().ok()?;
    (n >= 2).then_some((base, n))
}

/// Sort key: stop time, then id base, then suffix (`-10` after `-9`, not before `-2`).
fn newest_first_key(meta: &CaptureMeta) -> (u64, String, u32) {
    let (base, n) = parse_id(&meta.id).unwrap_or(("", 0));
    (meta.stopped_unix_ms, base.to_owned(), n)
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// `2026-11-24T18-37-41Z`: RFC 3339 UTC with `-` for `:`, safe in file names on Windows.
fn id_base(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let (hh, mm, ss) = (rem / 3600, rem % 3600 / 60, rem % 60);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}-{mm:02}-{ss:02}Z")
}

/// Howard Hinnant's `civil_from_days`: days since 1970-01-01 → proleptic Gregorian
/// `(year, month, day)`. <https://howardhinnant.github.io/date_algorithms.html>
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sync::atomic::AtomicU64;

    /// Hang guard for waits on the sampler; never a timing assertion.
    const HANG: Duration = Duration::from_secs(30);

    /// A unique, empty folder under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
            let dir = std::env::temp_dir()
                .join(format!("shardcast-recorder-{name}-{}-{nanos}", std::process::id()));
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    /// A recorder whose n-th snapshot has `published == n`, sampling every millisecond.
    fn counting(dir: &Path) -> StatsRecorder {
        let calls = AtomicU64::new(0);
        StatsRecorder::with_source(dir, move || {
            // Relaxed: only the sampler thread calls the source.
            StatsSnapshot { published: calls.fetch_add(1, Ordering::Relaxed), ..Default::default() }
        })
        .interval(Duration::from_millis(1))
    }

    fn wait_for_samples(recorder: &StatsRecorder, k: usize) {
        let deadline = Instant::now() + HANG;
        while recorder.samples_taken() < k {
            assert!(Instant::now() < deadline, "hang: fewer than {k} samples");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    fn capture_with(published: &[u64]) -> Capture {
        let mut capture = Capture::default();
        capture.meta.version = CAPTURE_VERSION;
        for &published in published {
            capture.samples.push(StatsSnapshot { published, ..Default::default() });
        }
        capture.meta.samples = capture.samples.len() as u64;
        capture
    }

    #[test]
    fn start_stop_writes_a_capture_with_samples() {
        let tmp = TempDir::new("start-stop");
        let recorder = counting(&tmp.0);
        assert!(!recorder.is_armed());
        recorder.start().unwrap();
        assert!(recorder.is_armed());
        wait_for_samples(&recorder, 3);
        let meta = recorder.stop().unwrap();
        assert!(!recorder.is_armed());
        assert!(meta.samples >= 3);
        assert!(!meta.truncated);
        assert_eq!(meta.interval_seconds, 0.001);
        assert!(meta.started_unix_ms <= meta.stopped_unix_ms);
        assert!(parse_id(&meta.id).is_some(), "{}", meta.id);

        let path = tmp.0.join(format!("{}.json", meta.id));
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("{\"meta\":"), "meta must come first");
        let loaded = recorder.load(&meta.id).unwrap();
        assert_eq!(loaded.meta, meta);
        let published: Vec<u64> = loaded.samples.iter().map(|s| s.published).collect();
        assert_eq!(published, (0..meta.samples).collect::<Vec<_>>());
        // No temp file left behind.
        let names: Vec<_> = fs::read_dir(&tmp.0).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }

    #[test]
    fn stop_without_start_is_not_armed() {
        let tmp = TempDir::new("not-armed");
        let recorder = counting(&tmp.0);
        assert!(matches!(recorder.stop(), Err(RecorderError::NotArmed)));
        recorder.start().unwrap();
        recorder.stop().unwrap();
        assert!(matches!(recorder.stop(), Err(RecorderError::NotArmed)));
    }

    #[test]
    fn start_is_idempotent_while_armed() {
        let tmp = TempDir::new("idempotent");
        let recorder = counting(&tmp.0);
        recorder.start().unwrap();
        wait_for_samples(&recorder, 2);
        recorder.start().unwrap(); // no new capture: the samples so far are kept
        assert!(recorder.samples_taken() >= 2);
        let meta = recorder.stop().unwrap();
        let published: Vec<u64> =
            recorder.load(&meta.id).unwrap().samples.iter().map(|s| s.published).collect();
        assert_eq!(published[..2], [0, 1], "one sampler, one capture");
        assert_eq!(recorder.list().unwrap().len(), 1);
    }

    #[test]
    fn max_samples_keeps_the_first_and_marks_truncated() {
        let tmp = TempDir::new("truncate");
        let recorder = counting(&tmp.0).max_samples(3);
        recorder.start().unwrap();
        // Wait until the source has been called past the cap.
        let deadline = Instant::now() + HANG;
        loop {
            let dropped = recorder.capture.lock().as_ref().unwrap().session.samples.lock().dropped;
            if dropped >= 2 {
                break;
            }
            assert!(Instant::now() < deadline, "hang: no samples dropped");
            std::thread::sleep(Duration::from_millis(1));
        }
        let meta = recorder.stop().unwrap();
        assert!(meta.truncated);
        assert!(meta.dropped_samples >= 2);
        assert_eq!((meta.samples, meta.max_samples), (3, 3));
        let published: Vec<u64> =
            recorder.load(&meta.id).unwrap().samples.iter().map(|s| s.published).collect();
        assert_eq!(published, [0, 1, 2]);
    }

    #[test]
    fn same_second_captures_get_suffixes() {
        let tmp = TempDir::new("suffix");
        let base = id_base(UNIX_EPOCH + Duration::from_secs(1_795_545_461));
        assert_eq!(base, "2026-11-24T18-37-41Z");
        let mut ids = Vec::new();
        for _ in 0..3 {
            let mut capture = capture_with(&[1]);
            write_capture(&tmp.0, &base, &mut capture).unwrap();
            ids.push(capture.meta.id);
        }
        assert_eq!(ids, [base.clone(), format!("{base}-2"), format!("{base}-3")]);
        for id in &ids {
            let text = fs::read_to_string(tmp.0.join(format!("{id}.json"))).unwrap();
            let meta = read_meta(text.as_bytes()).unwrap();
            assert_eq!(&meta.id, id, "the file names itself");
        }
    }

    #[test]
    fn list_is_newest_first_and_reads_only_meta() {
        let tmp = TempDir::new("list");
        let recorder = counting(&tmp.0);
        let base = "2026-11-24T18-37-41Z";
        // Stop times out of file-name order, and suffixes past 9 (numeric, not text, order).
        let mut written = Vec::new();
        for (stopped, samples) in [(3_000, 1), (1_000, 2), (2_000, 3)] {
            let mut capture = capture_with(&vec![7; samples]);
            capture.meta.stopped_unix_ms = stopped;
            write_capture(&tmp.0, base, &mut capture).unwrap();
            written.push(capture.meta.id);
        }
        for _ in 0..8 {
            let mut capture = capture_with(&[]);
            capture.meta.stopped_unix_ms = 500;
            write_capture(&tmp.0, base, &mut capture).unwrap();
        }
        // Not captures: skipped.
        fs::write(tmp.0.join("notes.json"), "{}").unwrap();
        fs::write(tmp.0.join(".capture-1-2-3.tmp"), "{").unwrap();
        fs::write(tmp.0.join("2026-11-24T18-37-42Z.json"), "{\"samples\": []}").unwrap();
        // A meta followed by garbage still lists: the samples are never parsed.
        fs::write(
            tmp.0.join("2026-11-24T18-37-43Z.json"),
            r#"{ "meta" : {"version":1,"id":"x","started_unix_ms":1,"stopped_unix_ms":4000,
                "interval_seconds":1.0,"samples":9,"max_samples":9,"truncated":false,
                "dropped_samples":0}, "samples": [ this is not json"#,
        )
        .unwrap();

        let listed = recorder.list().unwrap();
        let ids: Vec<&str> = listed.iter().map(|m| m.id.as_str()).collect();
        let mut expected = vec!["2026-11-24T18-37-43Z", &written[0], &written[2], &written[1]];
        let olds: Vec<String> = (4..=11).rev().map(|n| format!("{base}-{n}")).collect();
        expected.extend(olds.iter().map(String::as_str));
        assert_eq!(ids, expected);
        assert_eq!(listed[0].samples, 9);
        assert_eq!(listed[1].samples, 1);
        // ...and loading that one says it is corrupt.
        assert!(matches!(
            recorder.load("2026-11-24T18-37-43Z"),
            Err(RecorderError::Corrupt(id, _)) if id == "2026-11-24T18-37-43Z"
        ));
    }

    #[test]
    fn list_of_a_missing_folder_is_empty() {
        let tmp = TempDir::new("missing");
        let recorder = counting(&tmp.0.join("not-yet"));
        assert!(recorder.list().unwrap().is_empty());
    }

    #[test]
    fn load_round_trips_and_delete_removes() {
        let tmp = TempDir::new("load-delete");
        let recorder = counting(&tmp.0);
        let mut capture = capture_with(&[5, 6, 7]);
        capture.samples[1].latency.p99_seconds = 0.25;
        capture.meta.truncated = true;
        write_capture(&tmp.0, "2000-02-29T00-00-00Z", &mut capture).unwrap();
        assert_eq!(recorder.load("2000-02-29T00-00-00Z").unwrap(), capture);

        recorder.delete("2000-02-29T00-00-00Z").unwrap();
        assert!(matches!(
            recorder.load("2000-02-29T00-00-00Z"),
            Err(RecorderError::NotFound(id)) if id == "2000-02-29T00-00-00Z"
        ));
        assert!(matches!(recorder.delete("2000-02-29T00-00-00Z"), Err(RecorderError::NotFound(_))));
        assert!(recorder.list().unwrap().is_empty());
    }

    #[test]
    fn ids_that_are_not_capture_ids_are_not_found() {
        let tmp = TempDir::new("traversal");
        // A file outside the folder that traversal would reach.
        let outside = tmp.0.join("x.json");
        fs::write(&outside, "{}").unwrap();
        let recorder = counting(&tmp.0.join("captures"));
        recorder.start().unwrap();
        recorder.stop().unwrap();
        for id in [
            "../x",
            "..",
            ".",
            "",
            "a/b",
            "a\\b",
            "/etc/passwd",
            "C:\\x",
            "%2e%2e",
            "%2e%2e%2fx",
            "..\\x",
            "x",
            "2026-11-24T18:37:41Z",
            "2026-11-24T18-37-41Z/../../x",
            "2026-11-24T18-37-41Z.json",
            "2026-11-24T18-37-41Z-",
            "2026-11-24T18-37-41Z-1",
            "2026-11-24T18-37-41Z-02",
            "2026-11-24T18-37-41Z-99999999999",
            "2026-11-24T18-37-41z",
            "2026-11-24t18-37-41Z",
            "2026-11-24T18-37-4Z",
            " 2026-11-24T18-37-41Z",
            "2026-11-24T18-37-41Z\0",
            "２026-11-24T18-37-41Z",
        ] {
            assert!(
                matches!(recorder.load(id), Err(RecorderError::NotFound(ref got)) if got == id),
                "load({id:?})"
            );
            assert!(
                matches!(recorder.delete(id), Err(RecorderError::NotFound(ref got)) if got == id),
                "delete({id:?})"
            );
        }
        assert!(outside.exists());
        assert_eq!(recorder.list().unwrap().len(), 1);
        assert_eq!(parse_id("2026-11-24T18-37-41Z"), Some(("2026-11-24T18-37-41Z", 1)));
        assert_eq!(parse_id("2026-11-24T18-37-41Z-12"), Some(("2026-11-24T18-37-41Z", 12)));
    }

    #[test]
    fn records_a_real_bus() {
        let tmp = TempDir::new("bus");
        let bus: Bus<u64> = Bus::builder().build().unwrap();
        let mut publisher = bus.publisher().unwrap();
        let topic = crate::topic::Topic::new("orders.eu.created").unwrap();
        let recorder = StatsRecorder::new(&tmp.0, bus.clone()).interval(Duration::from_millis(1));
        recorder.start().unwrap();
        publisher.publish_blocking(crate::event::Event::new(topic, 1)).unwrap();
        let deadline = Instant::now() + HANG;
        while recorder
            .capture
            .lock()
            .as_ref()
            .unwrap()
            .session
            .samples
            .lock()
            .kept
            .last()
            .map_or(0, |s| s.published)
            < 1
        {
            assert!(Instant::now() < deadline, "hang: publish never sampled");
            std::thread::sleep(Duration::from_millis(1));
        }
        let meta = recorder.stop().unwrap();
        let capture = recorder.load(&meta.id).unwrap();
        assert_eq!(capture.samples.last().unwrap().published, 1);
        assert_eq!(capture.samples[0].version, crate::stats::snapshot::STATS_VERSION);
    }

    #[test]
    fn a_panicking_source_keeps_what_it_took() {
        let tmp = TempDir::new("panic");
        let calls = AtomicU64::new(0);
        let recorder = StatsRecorder::with_source(&tmp.0, move || {
            // Relaxed: only the sampler thread calls the source.
            if calls.fetch_add(1, Ordering::Relaxed) == 2 {
                panic!("source failed (expected by this test)");
            }
            StatsSnapshot::default()
        })
        .interval(Duration::from_millis(1));
        recorder.start().unwrap();
        let deadline = Instant::now() + HANG;
        while !recorder.capture.lock().as_ref().unwrap().sampler.is_finished() {
            assert!(Instant::now() < deadline, "hang: the source never panicked");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(recorder.is_armed());
        assert_eq!(recorder.stop().unwrap().samples, 2);
    }

    #[test]
    fn dropping_an_armed_recorder_stops_its_thread() {
        let tmp = TempDir::new("drop");
        let recorder = counting(&tmp.0);
        recorder.start().unwrap();
        wait_for_samples(&recorder, 1);
        drop(recorder); // joins the sampler; would hang here otherwise
        assert_eq!(fs::read_dir(&tmp.0).unwrap().count(), 0, "nothing written");
    }

    #[test]
    fn ids_format_utc_dates() {
        /// Hinnant's `days_from_civil`, the inverse, to check against.
        fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
            let y = if m <= 2 { y - 1 } else { y };
            let era = y.div_euclid(400);
            let yoe = y.rem_euclid(400);
            let mp = i64::from((m + 9) % 12);
            let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
            let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
            era * 146_097 + doe - 719_468
        }
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_416), (2025, 11, 24));
        for days in -800_000..800_000 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
        assert_eq!(id_base(UNIX_EPOCH), "1970-01-01T00-00-00Z");
        assert_eq!(id_base(UNIX_EPOCH + Duration::from_secs(951_782_399)), "2000-02-28T23-59-59Z");
        assert_eq!(
            id_base(UNIX_EPOCH + Duration::from_secs(4_107_542_400)),
            "2100-03-01T00-00-00Z"
        );
        let now = id_base(SystemTime::now());
        assert!(parse_id(&now).is_some(), "{now}");
        assert!(!now.contains(':'));
    }

    #[test]
    fn errors_display_lowercase() {
        let io = RecorderError::io(Path::new("/x"), io::Error::other("boom"));
        assert_eq!(io.to_string(), "i/o error on /x: boom");
        assert!(std::error::Error::source(&io).is_some());
        assert_eq!(RecorderError::NotFound("..".into()).to_string(), "capture \"..\" not found");
        assert_eq!(
            RecorderError::Corrupt("a".into(), "eof".into()).to_string(),
            "capture \"a\" is corrupt: eof"
        );
        assert_eq!(RecorderError::NotArmed.to_string(), "no capture armed");
    }
}
