//! The arithmetic: from raw timestamps to fan-out latencies, percentiles, throughput and
//! losses. Pure functions, so they are unit-tested on hand-made inputs.

use hdrhistogram::Histogram;

use super::impls::{Outcome, Spec};

/// Latency percentiles in nanoseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Percentiles {
    pub count: u64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

/// One run, summarised.
#[derive(Debug)]
pub struct Summary {
    /// Fan-out latency over the subscribers that keep up.
    pub latency: Percentiles,
    /// CDF points `(nanos, fraction)` for the plot.
    pub cdf: Vec<(u64, f64)>,
    /// Deliveries to the subscribers that keep up (the slow one's trickle would otherwise
    /// stretch `elapsed_ns` to its own pace).
    pub deliveries: u64,
    pub expected: u64,
    /// From the first publish to the last receive by a subscriber that keeps up.
    pub elapsed_ns: u64,
    /// From the first to the last publish.
    pub publish_ns: u64,
    /// Events lost by the subscribers that keep up (expected minus received).
    pub lost: u64,
    /// Events the slow subscriber lost, if there is one.
    pub slow_lost: Option<u64>,
    /// Losses the libraries reported (Lagged/Overflowed/drop counters), all subscribers.
    pub reported_lost: u64,
    /// Process CPU time over the run ([`Outcome::cpu_ns`]), if measured.
    pub cpu_ns: Option<u64>,
}

impl Summary {
    /// Events published per second: below the asked rate when the publisher had to wait.
    pub fn publish_rate(&self, events: u64) -> f64 {
        if self.publish_ns == 0 {
            0.0
        } else {
            events.saturating_sub(1) as f64 * 1e9 / self.publish_ns as f64
        }
    }

    pub fn deliveries_per_s(&self) -> f64 {
        if self.elapsed_ns == 0 {
            0.0
        } else {
            self.deliveries as f64 * 1e9 / self.elapsed_ns as f64
        }
    }
}

/// Fan-out latency of each event: from its publish stamp until the last of the `counted`
/// subscribers that want it has it. Events some counted subscriber never got (lost) or
/// that no counted subscriber wants have no fan-out latency and are skipped.
pub fn fanout_latencies(
    published: &[u64],
    got: &[&[(u64, u64)]],
    want_count: impl Fn(u64) -> usize,
) -> Vec<u64> {
    let mut last = vec![0u64; published.len()];
    let mut seen = vec![0usize; published.len()];
    for sub in got {
        for &(seq, ns) in *sub {
            let i = seq as usize;
            last[i] = last[i].max(ns);
            seen[i] += 1;
        }
    }
    (0..published.len())
        .filter(|&i| seen[i] > 0 && seen[i] == want_count(i as u64))
        .map(|i| last[i].saturating_sub(published[i]))
        .collect()
}

/// Percentiles of `values` via an HdrHistogram (3 significant digits).
pub fn histogram(values: &[u64]) -> Histogram<u64> {
    let mut h = Histogram::<u64>::new(3).expect("3 significant digits is valid");
    for &v in values {
        h.record(v.max(1)).expect("auto-resizing histogram");
    }
    h
}

pub fn percentiles(h: &Histogram<u64>) -> Percentiles {
    if h.is_empty() {
        return Percentiles::default();
    }
    Percentiles {
        count: h.len(),
        p50: h.value_at_quantile(0.50),
        p99: h.value_at_quantile(0.99),
        p999: h.value_at_quantile(0.999),
        max: h.max(),
    }
}

/// `(value, fraction at or below)` at quantiles spread towards the tail (1 - 10^-k).
pub fn cdf(h: &Histogram<u64>) -> Vec<(u64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut points: Vec<(u64, f64)> = (0..=100)
        .map(|i| {
            // 0 .. 0.99999 spaced evenly in -log10(1 - q).
            let q = 1.0 - 10f64.powf(-(i as f64) / 20.0);
            (h.value_at_quantile(q), q)
        })
        .collect();
    points.push((h.max(), 1.0));
    points
}

/// Events not received: expected minus received, per subscriber.
pub fn lost(expected: u64, received: u64) -> u64 {
    expected.saturating_sub(received)
}

/// Summarises a run: latency over the subscribers that keep up, losses split between them
/// and the slow one.
pub fn summarize(spec: &Spec, out: &Outcome) -> Summary {
    let fast: Vec<&[(u64, u64)]> =
        out.recs.iter().filter(|r| r.sub < spec.subscribers).map(|r| r.got.as_slice()).collect();
    let want = |seq: u64| (0..spec.subscribers).filter(|&s| spec.wants(s, seq)).count();
    let lat = fanout_latencies(&out.published, &fast, want);
    let h = histogram(&lat);
    let deliveries: u64 = fast.iter().map(|g| g.len() as u64).sum();
    let expected: u64 = (0..spec.subscribers).map(|s| spec.expected(s)).sum();
    let first = out.published.first().copied().unwrap_or(0);
    let last = fast.iter().flat_map(|g| g.iter().map(|g| g.1)).max().unwrap_or(first);
    let lost_of = |r: &super::impls::Rec| lost(spec.expected(r.sub), r.got.len() as u64);
    Summary {
        latency: percentiles(&h),
        cdf: cdf(&h),
        deliveries,
        expected,
        elapsed_ns: last.saturating_sub(first),
        publish_ns: out.published.last().map_or(0, |l| l - first),
        lost: out.recs.iter().filter(|r| r.sub < spec.subscribers).map(lost_of).sum(),
        slow_lost: out.recs.iter().find(|r| r.sub >= spec.subscribers).map(lost_of),
        reported_lost: out.recs.iter().map(|r| r.reported_lost).sum(),
        cpu_ns: out.cpu_ns,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fanout_completes_at_the_last_receiver() {
        let published = [100, 200, 300];
        let a: &[(u64, u64)] = &[(0, 150), (1, 260), (2, 310)];
        let b: &[(u64, u64)] = &[(0, 180), (1, 220)]; // lost seq 2
        let lat = fanout_latencies(&published, &[a, b], |_| 2);
        // seq 0: max(150, 180) - 100; seq 1: max(260, 220) - 200; seq 2 incomplete.
        assert_eq!(lat, [80, 60]);
    }

    #[test]
    fn fanout_counts_only_wanting_subscribers() {
        // Two topics: sub 0 wants even seqs, sub 1 odd ones.
        let published = [0, 10, 20, 30];
        let a: &[(u64, u64)] = &[(0, 5), (2, 27)];
        let b: &[(u64, u64)] = &[(1, 11), (3, 39)];
        let lat = fanout_latencies(&published, &[a, b], |_| 1);
        assert_eq!(lat, [5, 1, 7, 9]);
        // An event nobody received is skipped, not counted as zero latency.
        assert_eq!(fanout_latencies(&[0, 0], &[&[(1, 4)]], |_| 1), [4]);
    }

    #[test]
    fn percentiles_of_a_uniform_range() {
        let values: Vec<u64> = (1..=10_000).collect();
        let p = percentiles(&histogram(&values));
        assert_eq!(p.count, 10_000);
        // HdrHistogram with 3 significant digits: within 0.1 %.
        let near = |got: u64, want: u64| (got as f64 - want as f64).abs() <= want as f64 * 1e-3;
        assert!(near(p.p50, 5_000), "{p:?}");
        assert!(near(p.p99, 9_900), "{p:?}");
        assert!(near(p.p999, 9_990), "{p:?}");
        assert!(near(p.max, 10_000), "{p:?}");
        assert_eq!(percentiles(&histogram(&[])), Percentiles::default());
    }

    #[test]
    fn cdf_is_monotonic_and_ends_at_one() {
        let values: Vec<u64> = (1..=1000).map(|v| v * v).collect();
        let points = cdf(&histogram(&values));
        assert!(points.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 <= w[1].1));
        assert_eq!(points.last().map(|p| p.1), Some(1.0));
    }

    #[test]
    fn losses_are_expected_minus_received() {
        assert_eq!(lost(300, 300), 0);
        assert_eq!(lost(300, 120), 180);
        assert_eq!(lost(0, 0), 0);
    }

    #[test]
    fn summary_splits_fast_and_slow_losses() {
        use super::super::impls::{Mode, Outcome, Rec};
        let spec = Spec {
            subscribers: 2,
            slow: true,
            topics: 1,
            events: 4,
            rate: None,
            mode: Mode::Threads,
            lossless: false,
            queue: 8,
            dispatchers: 1,
        };
        let rec = |sub, got: Vec<(u64, u64)>| Rec { sub, got, ..Rec::default() };
        let out = Outcome {
            published: vec![0, 10, 20, 30],
            recs: vec![
                rec(0, vec![(0, 1), (1, 11), (2, 21), (3, 31)]),
                rec(1, vec![(0, 2), (1, 12), (3, 40)]),
                rec(2, vec![(0, 500)]),
            ],
            cpu_ns: Some(7),
        };
        let s = summarize(&spec, &out);
        assert_eq!(s.lost, 1);
        assert_eq!(s.slow_lost, Some(3));
        assert_eq!(s.deliveries, 7);
        assert_eq!(s.expected, 8);
        assert_eq!(s.elapsed_ns, 40);
        assert_eq!(s.publish_ns, 30);
        assert_eq!(s.cpu_ns, Some(7));
        // The slow subscriber's 500 ns does not count; seq 2 is incomplete.
        assert_eq!(s.latency.count, 3);
        assert_eq!(s.latency.max, 10);
    }
}
