//! The Prometheus text exposition format 0.0.4 of a [`StatsSnapshot`] and of external
//! metrics: `shardcast_` prefix, `# HELP` and `# TYPE` per metric, counters ending in
//! `_total`, times in `_seconds`, label values escaped, each family written once.

use std::collections::HashMap;
use std::fmt::Write as _;

use super::external::{ExternalMetric, MetricKind};
use super::snapshot::{LatencyStats, ShardStats, StatsSnapshot};

impl StatsSnapshot {
    /// The snapshot in the Prometheus text exposition format 0.0.4: `shardcast_` prefix,
    /// `# HELP` and `# TYPE` per metric, counters ending in `_total`, times in `_seconds`,
    /// label values escaped.
    ///
    /// Per-subscriber series (`shardcast_subscriber_*`) are labelled `subscriber` (the
    /// name), `id` and `shard`; each [`retired`](Self::retired) row is a series of its name
    /// and shard with `id="retired"`, counters only. With
    /// [`subscribers_by_name`](Self::subscribers_by_name) they are labelled `subscriber` and
    /// `shard` alone, each the sum of the live and retired rows that share both, and the
    /// per-subscriber latency summary is left out. Either way a dropped subscriber's counts
    /// move to a series of the same name and shard, so `sum by (subscriber)` never goes
    /// down. The alias binding families (`shardcast_binding_*`) are left out while all
    /// their counters are zero.
    pub fn prometheus_text(&self) -> String {
        let mut out = Prometheus::default();
        out.gauge(
            "uptime_seconds",
            "Seconds since the bus was built.",
            &[(&[], self.uptime_seconds)],
        );
        out.counter("published_total", "Events published.", &[(&[], self.published)]);
        out.counter(
            "publisher_waits_total",
            "Publishes that found the ring full.",
            &[(&[], self.publisher_waits)],
        );
        out.gauge("ring_capacity", "Ring slots.", &[(&[], self.ring_capacity as f64)]);
        out.gauge(
            "ring_occupancy",
            "Events published but not yet read by the slowest shard.",
            &[(&[], self.ring_occupancy as f64)],
        );
        out.counter("subscriptions_total", "Subscriptions made.", &[(&[], self.subscriptions)]);
        out.counter(
            "subscriptions_closed_total",
            "Subscriptions ended.",
            &[(&[], self.subscriptions_closed)],
        );

        let shards: Vec<String> = self.shards.iter().map(|s| s.shard.to_string()).collect();
        macro_rules! per_shard {
            ($name:literal, $help:literal, $field:ident) => {
                let rows: Vec<(Vec<(&str, &str)>, u64)> = self
                    .shards
                    .iter()
                    .zip(&shards)
                    .map(|(s, i)| (vec![("shard", i.as_str())], s.$field))
                    .collect();
                out.counter_labeled($name, $help, &rows);
            };
        }
        per_shard!("shard_dispatched_total", "Events a shard read from the ring.", dispatched);
        per_shard!("shard_delivered_total", "Events a shard queued to subscribers.", delivered);
        type Reason = (&'static str, fn(&ShardStats) -> u64);
        let reasons: [Reason; 4] = [
            ("drop_newest", |s: &ShardStats| s.dropped_newest),
            ("drop_oldest", |s: &ShardStats| s.dropped_oldest),
            ("disconnect", |s: &ShardStats| s.dropped_disconnect),
            ("shutdown", |s: &ShardStats| s.dropped_shutdown),
        ];
        let rows: Vec<(Vec<(&str, &str)>, u64)> = self
            .shards
            .iter()
            .zip(&shards)
            .flat_map(|(s, i)| {
                reasons.iter().map(move |(reason, f)| {
                    (vec![("shard", i.as_str()), ("reason", *reason)], f(s))
                })
            })
            .collect();
        out.counter_labeled(
            "shard_dropped_total",
            "Events lost at full subscriber queues, by reason.",
            &rows,
        );
        per_shard!(
            "shard_filtered_out_total",
            "Pattern matches rejected by a route or predicate filter.",
            filtered_out
        );
        per_shard!("shard_filter_panics_total", "Predicate filters that panicked.", filter_panics);
        per_shard!("route_cache_hits_total", "Route cache hits.", route_hits);
        per_shard!("route_cache_misses_total", "Route cache misses.", route_misses);
        per_shard!("route_cache_invalidations_total", "Route cache flushes.", route_invalidations);
        // Only once late binding did anything (an alias bound, or looked up), which most
        // buses never use: then all five families, on every shard, so that none of them
        // appears later than the others.
        let bound = self.shards.iter().any(|s| {
            s.binds != 0
                || s.unbinds != 0
                || s.binding_hits != 0
                || s.binding_misses != 0
                || s.binding_evictions != 0
        });
        if bound {
            per_shard!("binding_binds_total", "Alias bindings recorded.", binds);
            per_shard!("binding_unbinds_total", "Alias bindings removed.", unbinds);
            per_shard!("binding_hits_total", "Events resolved through their alias.", binding_hits);
            per_shard!(
                "binding_misses_total",
                "Events whose alias had no binding.",
                binding_misses
            );
            per_shard!(
                "binding_evictions_total",
                "Alias bindings evicted at capacity.",
                binding_evictions
            );
        }
        let backlog: Vec<(Vec<(&str, &str)>, f64)> = self
            .shards
            .iter()
            .zip(&shards)
            .map(|(s, i)| (vec![("shard", i.as_str())], s.backlog as f64))
            .collect();
        out.gauge_labeled(
            "shard_backlog",
            "Events published but not yet dispatched by a shard.",
            &backlog,
        );

        let subscribers = self.subscriber_series();
        let counters: [(&str, &str); 4] = [
            ("subscriber_delivered_total", "Events queued to a subscriber."),
            ("subscriber_consumed_total", "Events a subscriber received."),
            ("subscriber_dropped_total", "Events a subscriber lost."),
            ("subscriber_lagged_reports_total", "Lagged errors handed to a subscriber."),
        ];
        for (i, (name, help)) in counters.into_iter().enumerate() {
            let rows: Vec<(Vec<(&str, &str)>, u64)> =
                subscribers.iter().map(|s| (s.labels(), s.counters[i])).collect();
            out.counter_labeled(name, help, &rows);
        }
        let gauges: [(&str, &str); 2] = [
            ("subscriber_queue_depth", "Events queued to a subscriber now."),
            ("subscriber_queue_capacity", "A subscriber's queue capacity."),
        ];
        for (i, (name, help)) in gauges.into_iter().enumerate() {
            let rows: Vec<(Vec<(&str, &str)>, f64)> = subscribers
                .iter()
                .filter_map(|s| Some((s.labels(), s.gauges?[i] as f64)))
                .collect();
            out.gauge_labeled(name, help, &rows);
        }

        macro_rules! per_topic {
            ($name:literal, $help:literal, $field:ident) => {
                let rows: Vec<(Vec<(&str, &str)>, u64)> = self
                    .topics
                    .iter()
                    .map(|t| (vec![("prefix", t.prefix.as_str())], t.$field))
                    .collect();
                out.counter_labeled($name, $help, &rows);
            };
        }
        per_topic!("topic_published_total", "Events published, by topic prefix.", published);
        per_topic!("topic_delivered_total", "Deliveries queued, by topic prefix.", delivered);
        per_topic!("topic_dropped_total", "Deliveries lost, by topic prefix.", dropped);

        // Two names: the bus-wide series is the union of the per-subscriber ones, so one
        // name for both would make `sum()` over it count every sample twice.
        out.summary(
            "receive_latency_seconds",
            "Publish to receive latency of sampled events, over every subscriber.",
            &[(vec![], &self.latency)],
        );
        // Not by name: the quantiles of several subscribers cannot be added.
        if !self.subscribers_by_name {
            let per_subscriber: Vec<(Vec<(&str, &str)>, &LatencyStats)> =
                subscribers.iter().filter_map(|s| Some((s.labels(), s.latency?))).collect();
            out.summary(
                "subscriber_receive_latency_seconds",
                "Publish to receive latency of sampled events, by subscriber.",
                &per_subscriber,
            );
        }
        out.external(&self.external);
        out.text
    }
}

/// One per-subscriber series: its labels, and what it adds up.
struct SubscriberSeries<'a> {
    name: &'a str,
    /// The subscriber's id, `retired` for a retired row, `None` by name.
    id: Option<String>,
    shard: String,
    /// `delivered`, `consumed`, `dropped`, `lagged_reports`.
    counters: [u64; 4],
    /// `queue_depth`, `queue_capacity`: live subscribers only.
    gauges: Option<[u64; 2]>,
    /// One live subscriber's (not by name).
    latency: Option<&'a LatencyStats>,
}

impl SubscriberSeries<'_> {
    fn labels(&self) -> Vec<(&str, &str)> {
        let mut labels = vec![("subscriber", self.name)];
        if let Some(id) = &self.id {
            labels.push(("id", id.as_str()));
        }
        labels.push(("shard", self.shard.as_str()));
        labels
    }
}

impl StatsSnapshot {
    /// The per-subscriber series: live subscribers by name, id and shard (names need not
    /// be unique, ids are), then each retired row as `id="retired"`; or, by name, one per
    /// name and shard, summing live and retired. Either way a subscriber's drop moves its
    /// counts from one series to another of the same name and shard, so `sum by
    /// (subscriber)` never goes down.
    fn subscriber_series(&self) -> Vec<SubscriberSeries<'_>> {
        let live = self.subscribers.iter().map(|s| SubscriberSeries {
            name: &s.name,
            id: Some(s.id.to_string()),
            shard: s.shard.to_string(),
            counters: [s.delivered, s.consumed, s.dropped, s.lagged_reports],
            gauges: Some([s.queue_depth, s.queue_capacity]),
            latency: Some(&s.latency),
        });
        let retired = self.retired.iter().map(|r| SubscriberSeries {
            name: &r.name,
            id: Some("retired".to_owned()),
            shard: r.shard.to_string(),
            counters: [r.delivered, r.consumed, r.dropped, r.lagged_reports],
            gauges: None,
            latency: None,
        });
        if !self.subscribers_by_name {
            return live.chain(retired).collect();
        }
        let mut series: Vec<SubscriberSeries<'_>> = Vec::new();
        let mut index: HashMap<(&str, String), usize> = HashMap::new();
        for row in live.chain(retired) {
            let at = *index.entry((row.name, row.shard.clone())).or_insert_with(|| {
                series.push(SubscriberSeries {
                    name: row.name,
                    id: None,
                    shard: row.shard.clone(),
                    counters: [0; 4],
                    gauges: None,
                    latency: None,
                });
                series.len() - 1
            });
            let sum = &mut series[at];
            for (total, n) in sum.counters.iter_mut().zip(row.counters) {
                *total = total.saturating_add(n);
            }
            if let Some(gauges) = row.gauges {
                let total = sum.gauges.get_or_insert([0; 2]);
                for (total, n) in total.iter_mut().zip(gauges) {
                    *total = total.saturating_add(n);
                }
            }
        }
        series
    }
}

impl ExternalMetric {
    /// `metrics` alone in the Prometheus text exposition format 0.0.4, as the bus's
    /// [`prometheus_text`](crate::stats::StatsSnapshot::prometheus_text) writes them.
    pub fn prometheus_text(metrics: &[ExternalMetric]) -> String {
        external_text(metrics)
    }
}

type Labels<'a> = [(&'a str, &'a str)];

/// `metrics` alone, for [`ExternalMetric::prometheus_text`].
pub(crate) fn external_text(metrics: &[ExternalMetric]) -> String {
    let mut out = Prometheus::default();
    out.external(metrics);
    out.text
}

#[derive(Default)]
struct Prometheus {
    text: String,
    /// Every metric family written so far, with its `shardcast_` prefix.
    families: std::collections::HashSet<String>,
}

impl Prometheus {
    fn header(&mut self, name: &str, help: &str, kind: &str) {
        self.families.insert(format!("shardcast_{name}"));
        let _ = writeln!(self.text, "# HELP shardcast_{name} {}", escape_help(help));
        let _ = writeln!(self.text, "# TYPE shardcast_{name} {kind}");
    }

    /// External metrics, by name in first-seen order: the samples of every source that
    /// reports a name go under one `# HELP`/`# TYPE` (the first one's). A name the bus
    /// wrote itself is skipped, and so is a series (name and labels) written already: one
    /// family twice makes the whole text invalid, a series twice is a duplicate sample.
    fn external(&mut self, metrics: &[ExternalMetric]) {
        let mut order: Vec<(String, &ExternalMetric, Vec<&ExternalMetric>)> = Vec::new();
        for metric in metrics {
            let name = metric_name(&metric.name, metric.kind);
            if self.families.contains(&name) {
                continue;
            }
            match order.iter_mut().find(|(n, ..)| *n == name) {
                Some((_, _, all)) => all.push(metric),
                None => order.push((name, metric, vec![metric])),
            }
        }
        for (name, first, all) in order {
            let kind = match first.kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
            };
            let _ = writeln!(self.text, "# HELP {name} {}", escape_help(&first.help));
            let _ = writeln!(self.text, "# TYPE {name} {kind}");
            let mut series: Vec<Vec<(String, &str)>> = Vec::new();
            for sample in all.iter().flat_map(|m| &m.samples) {
                // A label name twice in one sample is invalid: the first one is kept.
                let mut labels: Vec<(String, &str)> = Vec::with_capacity(sample.labels.len());
                for (k, v) in &sample.labels {
                    let k = label_name(k);
                    if !labels.iter().any(|(seen, _)| *seen == k) {
                        labels.push((k, v));
                    }
                }
                let mut key = labels.clone();
                key.sort_unstable();
                if series.contains(&key) {
                    continue;
                }
                series.push(key);
                self.text.push_str(&name);
                for (i, (k, v)) in labels.iter().enumerate() {
                    self.text.push(if i == 0 { '{' } else { ',' });
                    let _ = write!(self.text, "{k}=\"{}\"", escape_label(v));
                }
                if !labels.is_empty() {
                    self.text.push('}');
                }
                let _ = writeln!(self.text, " {}", Float(sample.value));
            }
            self.families.insert(name);
        }
    }

    fn sample(&mut self, name: &str, labels: &Labels<'_>, value: impl std::fmt::Display) {
        self.text.push_str("shardcast_");
        self.text.push_str(name);
        if !labels.is_empty() {
            self.text.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.text.push(',');
                }
                let _ = write!(self.text, "{k}=\"{}\"", escape_label(v));
            }
            self.text.push('}');
        }
        let _ = writeln!(self.text, " {value}");
    }

    fn counter(&mut self, name: &str, help: &str, rows: &[(&Labels<'_>, u64)]) {
        self.header(name, help, "counter");
        for (labels, v) in rows {
            self.sample(name, labels, v);
        }
    }

    fn counter_labeled(&mut self, name: &str, help: &str, rows: &[(Vec<(&str, &str)>, u64)]) {
        self.header(name, help, "counter");
        for (labels, v) in rows {
            self.sample(name, labels, v);
        }
    }

    fn gauge(&mut self, name: &str, help: &str, rows: &[(&Labels<'_>, f64)]) {
        self.header(name, help, "gauge");
        for (labels, v) in rows {
            self.sample(name, labels, Float(*v));
        }
    }

    fn gauge_labeled(&mut self, name: &str, help: &str, rows: &[(Vec<(&str, &str)>, f64)]) {
        self.header(name, help, "gauge");
        for (labels, v) in rows {
            self.sample(name, labels, Float(*v));
        }
    }

    fn summary(&mut self, name: &str, help: &str, rows: &[(Vec<(&str, &str)>, &LatencyStats)]) {
        self.header(name, help, "summary");
        // Its `_sum` and `_count` samples belong to it: no other family may take the names.
        self.families.insert(format!("shardcast_{name}_sum"));
        self.families.insert(format!("shardcast_{name}_count"));
        for (labels, l) in rows {
            for (q, v) in l.quantiles() {
                let mut with_q = labels.clone();
                with_q.push(("quantile", q));
                self.sample(name, &with_q, Float(v));
            }
            self.sample(&format!("{name}_sum"), labels, Float(l.sum_seconds));
            self.sample(&format!("{name}_count"), labels, l.samples);
        }
    }
}

/// Floats as Prometheus writes them (`NaN`, `+Inf`, `-Inf`).
struct Float(f64);

impl std::fmt::Display for Float {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            v if v.is_nan() => f.write_str("NaN"),
            v if v == f64::INFINITY => f.write_str("+Inf"),
            v if v == f64::NEG_INFINITY => f.write_str("-Inf"),
            v => write!(f, "{v}"),
        }
    }
}

/// Label values: `\` → `\\`, `"` → `\"`, newline → `\n`.
pub(crate) fn escape_label(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A metric name as Prometheus accepts it, `[a-zA-Z_:][a-zA-Z0-9_:]*`: any other
/// character becomes `_`, an empty name or one starting with a digit gets a `_` first, and
/// a counter's name ends in `_total`.
fn metric_name(name: &str, kind: MetricKind) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() || c == ':' { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if kind == MetricKind::Counter && !out.ends_with("_total") {
        out.push_str("_total");
    }
    out
}

/// A label name, `[a-zA-Z_][a-zA-Z0-9_]*`, made so the same way.
fn label_name(name: &str) -> String {
    let mut out: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// HELP text: `\` → `\\`, newline → `\n`.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}
