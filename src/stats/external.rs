//! Counters kept outside the bus (a bridge's, say) that the bus shows in its stats.
//!
//! A source is plain data behind a trait: the bus holds it weakly, asks it for readings
//! only when [`Bus::stats`](crate::Bus::stats) is called, on the caller's thread, and never
//! from its own threads (`$SYS.stats` deltas carry the bus's counters only). A source that
//! is dropped disappears from the next snapshot.

use std::sync::{Arc, Weak};

use crate::sync::Mutex;

/// A set of counters kept outside the bus that [`Bus::stats`](crate::Bus::stats) includes
/// in [`StatsSnapshot::external`](crate::stats::StatsSnapshot::external) and in its Prometheus
/// text. Attach one with [`Bus::attach_stats`](crate::Bus::attach_stats).
///
/// `collect` runs on the thread that takes the snapshot, every time: keep it to loads of
/// atomics, with no lock that the data path holds and no I/O.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
/// use std::sync::Arc;
/// use shardcast::Bus;
/// use shardcast::stats::{ExternalMetric, ExternalStats};
///
/// #[derive(Default)]
/// struct Uploads(AtomicU64);
///
/// impl ExternalStats for Uploads {
///     fn collect(&self, out: &mut Vec<ExternalMetric>) {
///         let done = self.0.load(Relaxed) as f64;
///         out.push(ExternalMetric::counter("uploader_done_total", "Uploads done.").sample(&[], done));
///     }
/// }
///
/// let bus: Bus<u32> = Bus::builder().build()?;
/// let uploads = Arc::new(Uploads::default());
/// bus.attach_stats(uploads.clone());
/// uploads.0.fetch_add(3, Relaxed);
/// let stats = bus.stats();
/// assert_eq!(stats.external[0].samples[0].value, 3.0);
/// assert!(stats.prometheus_text().contains("\nuploader_done_total 3\n"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ExternalStats: Send + Sync + 'static {
    /// Appends the current readings to `out`.
    fn collect(&self, out: &mut Vec<ExternalMetric>);
}

/// Whether a metric only goes up (a counter; its name should end in `_total`) or may go
/// both ways (a gauge).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum MetricKind {
    /// Monotonic.
    Counter,
    /// Any value.
    Gauge,
}

/// One metric of an [`ExternalStats`] source: its full Prometheus name (no `shardcast_`
/// prefix is added), help text, kind and samples.
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ExternalMetric {
    /// Prometheus name, `[a-zA-Z_:][a-zA-Z0-9_:]*` (other characters are written as `_`);
    /// a counter's ends in `_total` (added if missing).
    pub name: String,
    /// One line of help.
    pub help: String,
    /// Counter or gauge.
    pub kind: MetricKind,
    /// One value per label set.
    pub samples: Vec<ExternalSample>,
}

/// One labelled value of an [`ExternalMetric`].
#[derive(Debug, Clone, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[non_exhaustive]
pub struct ExternalSample {
    /// Label names and values, in the order written (a name is made valid as the metric's
    /// is, and a name that repeats is written once, with its first value).
    pub labels: Vec<(String, String)>,
    /// The reading.
    pub value: f64,
}

impl ExternalMetric {
    /// A counter with no samples yet.
    pub fn counter(name: impl Into<String>, help: impl Into<String>) -> Self {
        Self::new(name.into(), help.into(), MetricKind::Counter)
    }

    /// A gauge with no samples yet.
    pub fn gauge(name: impl Into<String>, help: impl Into<String>) -> Self {
        Self::new(name.into(), help.into(), MetricKind::Gauge)
    }

    fn new(name: String, help: String, kind: MetricKind) -> Self {
        ExternalMetric { name, help, kind, samples: Vec::new() }
    }

    /// Adds a sample with these labels.
    pub fn sample(mut self, labels: &[(&str, &str)], value: f64) -> Self {
        let labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.samples.push(ExternalSample { labels, value });
        self
    }
}

/// The sources attached to one bus, held weakly.
#[derive(Default)]
pub(crate) struct Sources {
    sources: Mutex<Vec<Weak<dyn ExternalStats>>>,
}

impl Sources {
    /// Attaches `source` unless it is attached already.
    pub(crate) fn attach(&self, source: Arc<dyn ExternalStats>) {
        let mut sources = self.sources.lock();
        sources.retain(|s| s.strong_count() > 0);
        let new = Arc::downgrade(&source);
        if !sources.iter().any(|s| Weak::ptr_eq(s, &new)) {
            sources.push(new);
        }
    }

    /// Every live source's readings, in the order attached.
    pub(crate) fn collect(&self) -> Vec<ExternalMetric> {
        // Upgraded under the lock, collected outside it: a slow source never holds up an
        // `attach`.
        let live: Vec<Arc<dyn ExternalStats>> = {
            let mut sources = self.sources.lock();
            sources.retain(|s| s.strong_count() > 0);
            sources.iter().filter_map(Weak::upgrade).collect()
        };
        let mut out = Vec::new();
        for source in live {
            source.collect(&mut out);
        }
        out
    }
}
