//! Publish → receive latency histograms (HdrHistogram), sampled 1 in N receives.
//!
//! Without the `latency` feature, [`Latency`] and [`Hist`] hold nothing and record
//! nothing (the builder keeps sampling off), so the rest of the crate needs no `cfg`.

#[cfg(feature = "latency")]
use hdrhistogram::Histogram;

/// A set of samples: a histogram, or nothing without the `latency` feature.
#[cfg(feature = "latency")]
pub(crate) type Hist = Histogram<u64>;
#[cfg(not(feature = "latency"))]
pub(crate) struct Hist;

use super::snapshot::LatencyStats;
#[cfg(feature = "latency")]
use crate::sync::Mutex;

#[cfg(feature = "latency")]
/// Highest trackable latency: one hour, in nanoseconds. Longer samples are clamped.
const MAX_NANOS: u64 = 3_600 * 1_000_000_000;

/// A histogram of latencies in nanoseconds, behind a lock taken once per sample (by the
/// one receiver) and once per snapshot: uncontended in practice. Allocated on the first
/// sample, so subscribers with sampling off cost nothing.
pub(crate) struct Latency {
    #[cfg(feature = "latency")]
    hist: Mutex<Option<Histogram<u64>>>,
}

#[cfg(feature = "latency")]
fn new_histogram() -> Histogram<u64> {
    // 2 significant digits (1 % error) from 1 ns to an hour: about 40 KiB.
    Histogram::new_with_bounds(1, MAX_NANOS, 2)
        .unwrap_or_else(|_| unreachable!("constant bounds are valid"))
}

#[cfg(feature = "latency")]
impl Latency {
    pub(crate) fn new() -> Self {
        Latency { hist: Mutex::new(None) }
    }

    pub(crate) fn record(&self, nanos: u64) {
        let mut hist = self.hist.lock();
        // `saturating_record` clamps instead of failing on out-of-range values.
        hist.get_or_insert_with(new_histogram).saturating_record(nanos.clamp(1, MAX_NANOS));
    }

    /// Adds this histogram's samples into `into`.
    pub(crate) fn merge_into(&self, into: &mut Histogram<u64>) {
        if let Some(hist) = &*self.hist.lock() {
            // Same bounds on both sides: `add` cannot fail.
            let _ = into.add(hist);
        }
    }

    /// Adds `other`'s samples into this histogram.
    pub(crate) fn merge_hist(&self, other: &Histogram<u64>) {
        if other.is_empty() {
            return;
        }
        let mut hist = self.hist.lock();
        // Same bounds on both sides: `add` cannot fail.
        let _ = hist.get_or_insert_with(new_histogram).add(other);
    }

    pub(crate) fn stats(&self) -> LatencyStats {
        self.hist.lock().as_ref().map(stats_of).unwrap_or_default()
    }
}

#[cfg(not(feature = "latency"))]
impl Latency {
    pub(crate) fn new() -> Self {
        Latency {}
    }

    pub(crate) fn record(&self, _nanos: u64) {}

    pub(crate) fn merge_into(&self, _into: &mut Hist) {}

    pub(crate) fn merge_hist(&self, _other: &Hist) {}

    pub(crate) fn stats(&self) -> LatencyStats {
        LatencyStats::default()
    }
}

#[cfg(feature = "latency")]
pub(crate) fn empty() -> Hist {
    new_histogram()
}

#[cfg(not(feature = "latency"))]
pub(crate) fn empty() -> Hist {
    Hist
}

#[cfg(not(feature = "latency"))]
pub(crate) fn stats_of(_hist: &Hist) -> LatencyStats {
    LatencyStats::default()
}

#[cfg(feature = "latency")]
pub(crate) fn stats_of(hist: &Histogram<u64>) -> LatencyStats {
    let seconds = |nanos: u64| nanos as f64 / 1e9;
    if hist.is_empty() {
        return LatencyStats::default();
    }
    LatencyStats {
        samples: hist.len(),
        p50_seconds: seconds(hist.value_at_quantile(0.50)),
        p90_seconds: seconds(hist.value_at_quantile(0.90)),
        p99_seconds: seconds(hist.value_at_quantile(0.99)),
        p999_seconds: seconds(hist.value_at_quantile(0.999)),
        max_seconds: seconds(hist.max()),
        sum_seconds: hist.mean() * hist.len() as f64 / 1e9,
    }
}
