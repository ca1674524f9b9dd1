//! `StatsSnapshot::prometheus_text` with arbitrary label values, read back by the strict
//! parser in [`crate::prometheus`].
//!
//! Two ways to a snapshot:
//!
//! - [`Input::Snapshot`]: built field by field: subscriber names and topic prefixes are any
//!   UTF-8 (quotes, backslashes, line feeds, text that looks like escapes or like the
//!   format's own syntax), counters hit the `u64` boundaries, latency floats include `NaN`,
//!   the infinities, `-0`, subnormals;
//! - [`Input::Bus`]: a real bus (`Bus::builder()`, 1–3 shards, 1–3 prefix levels, a
//!   1–4-prefix topic table so `__overflow__` is reached) with subscribers named by the
//!   input and events on topics joined from arbitrary valid tokens (`"` and `\` included);
//!   the snapshot is `bus.stats()` after the shards settled and some receives.
//!
//! For either, [`check_text`]: the text parses strictly (every line a well-formed
//! HELP / TYPE / sample, so no line breaks inside a sample line; HELP and TYPE before each
//! family's samples; counters end in `_total`); every subscriber name comes back unescaped
//! as the `subscriber` label of `shardcast_subscriber_consumed_total` (and of every
//! per-subscriber family) exactly as given, every topic prefix as a `prefix` label; every
//! family has the kind and exactly the samples the snapshot says: counters' text is the
//! exact `u64`, gauges and latencies the exact `f64` (bit for bit; `NaN` as `NaN`). Where the
//! snapshot's own rows are distinct (subscribers by name and shard, shards by index, topics
//! by prefix) no series (name and label set) may appear twice. The bus mode also checks
//! the snapshot against what was done: names and consumed counts by subscriber id, the
//! topic table's prefixes (first come, first counted, the rest under `__overflow__`), and
//! that the table never reports a prefix twice.
//!
//! Per-subscriber series are labelled by name, id and shard, and retired rows (dropped
//! subscribers, per name and shard) by `id="retired"`; with `subscribers_by_name`, by name
//! and shard alone, each the sum of the live and retired rows that share both. A built
//! snapshot may repeat an id or a retired row, which prints the same series twice: the
//! check accepts those duplicates (each row is still checked) rather than stop every run on
//! them. The binding families appear only once any of their counters is non-zero.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::hash::Hash;

use arbitrary::Arbitrary;
use shardcast::stats::{
    ExternalMetric, LatencyStats, MetricKind, RetiredSubscriberStats, ShardStats, StatsSnapshot,
    SubscriberStats, TopicStats, STATS_TOPIC_OVERFLOW,
};
use shardcast::{Bus, Event, Overflow, Subscriber, Subscription, Topic, TryRecvError};

use crate::prometheus::{self, first_duplicate, Labels, Sample};
use crate::support::{decode_and_check, settle};
use crate::{Seq, Verdict};

/// Most subscriber or topic rows in a built snapshot; larger inputs are rejected.
pub const MAX_ROWS: usize = 64;
/// Most shard rows in a built snapshot.
pub const MAX_SHARDS: usize = 16;
/// Longest subscriber name or topic prefix (bytes); longer inputs are rejected.
pub const MAX_LABEL: usize = 512;
/// Most subscribers on the real bus.
pub const MAX_BUS_SUBSCRIBERS: usize = 8;
/// Most events published on the real bus (well under the default ring, so publishing
/// never waits).
pub const MAX_EVENTS: usize = 256;
/// Most tokens in one topic on the real bus.
pub const MAX_TOPIC_TOKENS: usize = 8;

/// A snapshot built directly, or one taken from a real bus.
#[derive(Debug, Clone, Arbitrary)]
pub enum Input {
    /// Every field from the input.
    Snapshot(Box<SnapshotInput>),
    /// Subscribe, publish, receive, then `bus.stats()`.
    Bus(BusInput),
    /// Metrics kept outside the bus: alone, and in a snapshot.
    External(Vec<ExternalInput>),
}

/// One [`ExternalMetric`] with any name, help, labels and values.
#[derive(Debug, Clone, Arbitrary)]
pub struct ExternalInput {
    /// The name as the source gives it (sanitised by the writer).
    pub name: Label,
    /// Help text.
    pub help: Label,
    /// Counter (`false`) or gauge.
    pub gauge: bool,
    /// Samples: label names and values, and the value.
    pub samples: Vec<(Vec<(Label, Label)>, Float)>,
}

/// Most external metrics, samples per metric and labels per sample in one input.
pub const MAX_EXTERNAL: usize = 8;

/// A counter value, drawn so that small values and `u64` boundaries are likely.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Count {
    /// 0..=255.
    Small(u8),
    /// `1 << (n % 64)` (2^53 and up lose precision as `f64`).
    Pow2(u8),
    /// `(1 << (n % 64))` plus a small signed offset (wrapping).
    NearPow2(u8, i8),
    /// `u64::MAX`.
    Max,
    /// Anything.
    Raw(u64),
}

impl Count {
    /// The value.
    pub fn value(self) -> u64 {
        match self {
            Count::Small(n) => u64::from(n),
            Count::Pow2(n) => 1u64 << (n % 64),
            Count::NearPow2(n, d) => (1u64 << (n % 64)).wrapping_add_signed(i64::from(d)),
            Count::Max => u64::MAX,
            Count::Raw(n) => n,
        }
    }

    fn index(self) -> usize {
        usize::try_from(self.value()).unwrap_or(usize::MAX)
    }
}

/// A float: ordinary seconds, any bit pattern, or a special value.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Float {
    /// `n / 1000`.
    Millis(u32),
    /// A count as `f64`.
    Count(Count),
    /// `f64::from_bits`: any value, NaN payloads and subnormals included.
    Bits(u64),
    /// `NaN`.
    Nan,
    /// `+∞`.
    Inf,
    /// `-∞`.
    NegInf,
    /// `-0.0`.
    NegZero,
    /// The smallest subnormal (its decimal form is 300+ digits long).
    Tiny,
    /// `f64::MAX` (309 digits).
    Huge,
}

impl Float {
    /// The value.
    pub fn value(self) -> f64 {
        match self {
            Float::Millis(n) => f64::from(n) / 1000.0,
            Float::Count(c) => c.value() as f64,
            Float::Bits(b) => f64::from_bits(b),
            Float::Nan => f64::NAN,
            Float::Inf => f64::INFINITY,
            Float::NegInf => f64::NEG_INFINITY,
            Float::NegZero => -0.0,
            Float::Tiny => f64::from_bits(1),
            Float::Huge => f64::MAX,
        }
    }
}

/// A label value: any string, or one assembled from the characters escaping is about.
#[derive(Debug, Clone, Arbitrary)]
pub enum Label {
    /// Any UTF-8.
    Text(String),
    /// Joined pieces.
    Pieces(Vec<Piece>),
}

/// A piece of a [`Label`].
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Piece {
    /// `"`.
    Quote,
    /// `\`.
    Backslash,
    /// A line feed.
    LineFeed,
    /// A carriage return (not a line break in the format: written as is).
    CarriageReturn,
    /// A tab.
    Tab,
    /// The two characters `\n`.
    EscapedLineFeed,
    /// The two characters `\"`.
    EscapedQuote,
    /// One of the format's own characters: `{`, `}`, `=`, `,`, ` `, `#`.
    Syntax(u8),
    /// Any character.
    Char(char),
    /// `sub-1` (a default name).
    Word,
    /// `__overflow__` (the topic table's overflow row).
    Overflow,
}

impl Label {
    /// The string.
    pub fn text(&self) -> String {
        match self {
            Label::Text(s) => s.clone(),
            Label::Pieces(pieces) => {
                let mut out = String::new();
                for p in pieces {
                    match p {
                        Piece::Quote => out.push('"'),
                        Piece::Backslash => out.push('\\'),
                        Piece::LineFeed => out.push('\n'),
                        Piece::CarriageReturn => out.push('\r'),
                        Piece::Tab => out.push('\t'),
                        Piece::EscapedLineFeed => out.push_str("\\n"),
                        Piece::EscapedQuote => out.push_str("\\\""),
                        Piece::Syntax(b) => {
                            out.push(['{', '}', '=', ',', ' ', '#'][usize::from(b % 6)])
                        }
                        Piece::Char(c) => out.push(*c),
                        Piece::Word => out.push_str("sub-1"),
                        Piece::Overflow => out.push_str(STATS_TOPIC_OVERFLOW),
                    }
                }
                out
            }
        }
    }
}

/// Latency percentiles.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub struct Latency {
    /// `samples`.
    pub samples: Count,
    /// `p50`, `p90`, `p99`, `p999`, `max`, `sum` seconds.
    pub seconds: [Float; 6],
}

impl Latency {
    fn stats(&self) -> LatencyStats {
        let [p50, p90, p99, p999, max, sum] = self.seconds.map(Float::value);
        let mut l = LatencyStats::default();
        l.samples = self.samples.value();
        l.p50_seconds = p50;
        l.p90_seconds = p90;
        l.p99_seconds = p99;
        l.p999_seconds = p999;
        l.max_seconds = max;
        l.sum_seconds = sum;
        l
    }
}

/// A shard row.
#[derive(Debug, Clone, Arbitrary)]
pub struct ShardInput {
    /// Its index.
    pub shard: Count,
    /// `backlog`, then every counter in `ShardStats`' field order.
    pub counters: [Count; 18],
}

/// A subscriber row.
#[derive(Debug, Clone, Arbitrary)]
pub struct SubscriberInput {
    /// `id`.
    pub id: u64,
    /// `name`.
    pub name: Label,
    /// `shard`.
    pub shard: Count,
    /// `delivered`, `consumed`, `dropped`, `lagged_reports`, `queue_depth`,
    /// `queue_capacity`.
    pub counters: [Count; 6],
    /// `latency`.
    pub latency: Latency,
}

/// A retired row (dropped subscribers of one name on one shard).
#[derive(Debug, Clone, Arbitrary)]
pub struct RetiredInput {
    /// `name`.
    pub name: Label,
    /// `shard`.
    pub shard: Count,
    /// `subscribers`, `delivered`, `consumed`, `dropped`, `lagged_reports`.
    pub counters: [Count; 5],
}

/// A topic row.
#[derive(Debug, Clone, Arbitrary)]
pub struct TopicInput {
    /// `prefix`.
    pub prefix: Label,
    /// `published`, `delivered`, `dropped`.
    pub counters: [Count; 3],
}

/// A whole snapshot.
#[derive(Debug, Clone, Arbitrary)]
pub struct SnapshotInput {
    /// `version`.
    pub version: u32,
    /// `uptime_seconds`.
    pub uptime: Float,
    /// `published`, `publisher_waits`, `ring_capacity`, `ring_occupancy`, `subscriptions`,
    /// `subscriptions_closed`.
    pub counters: [Count; 6],
    /// The bus-wide latency.
    pub latency: Latency,
    /// Shard rows.
    pub shards: Vec<ShardInput>,
    /// Topic rows.
    pub topics: Vec<TopicInput>,
    /// `subscribers_by_name`.
    pub by_name: bool,
    /// Retired rows.
    pub retired: Vec<RetiredInput>,
    /// Subscriber rows.
    pub subscribers: Seq<SubscriberInput>,
}

impl SnapshotInput {
    /// The snapshot (built from `Default`: the types are `#[non_exhaustive]`).
    pub fn snapshot(&self) -> StatsSnapshot {
        let [published, waits, ring_capacity, ring_occupancy, subscriptions, closed] =
            self.counters.map(Count::value);
        let mut s = StatsSnapshot::default();
        s.version = self.version;
        s.uptime_seconds = self.uptime.value();
        s.published = published;
        s.publisher_waits = waits;
        s.ring_capacity = ring_capacity;
        s.ring_occupancy = ring_occupancy;
        s.subscriptions = subscriptions;
        s.subscriptions_closed = closed;
        s.latency = self.latency.stats();
        s.shards = self.shards.iter().map(shard_stats).collect();
        s.topics = self
            .topics
            .iter()
            .map(|t| {
                let [published, delivered, dropped] = t.counters.map(Count::value);
                let mut row = TopicStats::default();
                row.prefix = t.prefix.text();
                row.published = published;
                row.delivered = delivered;
                row.dropped = dropped;
                row
            })
            .collect();
        s.subscribers = self
            .subscribers
            .0
            .iter()
            .map(|x| {
                let [delivered, consumed, dropped, lagged, depth, capacity] =
                    x.counters.map(Count::value);
                let mut row = SubscriberStats::default();
                row.id = x.id;
                row.name = x.name.text();
                row.shard = x.shard.index();
                row.delivered = delivered;
                row.consumed = consumed;
                row.dropped = dropped;
                row.lagged_reports = lagged;
                row.queue_depth = depth;
                row.queue_capacity = capacity;
                row.latency = x.latency.stats();
                row
            })
            .collect();
        s.subscribers_by_name = self.by_name;
        s.retired = self
            .retired
            .iter()
            .map(|x| {
                let [subscribers, delivered, consumed, dropped, lagged] =
                    x.counters.map(Count::value);
                let mut row = RetiredSubscriberStats::default();
                row.name = x.name.text();
                row.shard = x.shard.index();
                row.subscribers = subscribers;
                row.delivered = delivered;
                row.consumed = consumed;
                row.dropped = dropped;
                row.lagged_reports = lagged;
                row
            })
            .collect();
        s
    }
}

fn shard_stats(x: &ShardInput) -> ShardStats {
    let [backlog, dispatched, delivered, dropped, newest, oldest, disconnect, shutdown, filtered, panics, hits, misses, invalidations, binds, unbinds, b_hits, b_misses, evictions] =
        x.counters.map(Count::value);
    let mut s = ShardStats::default();
    s.shard = x.shard.index();
    s.backlog = backlog;
    s.dispatched = dispatched;
    s.delivered = delivered;
    s.dropped = dropped;
    s.dropped_newest = newest;
    s.dropped_oldest = oldest;
    s.dropped_disconnect = disconnect;
    s.dropped_shutdown = shutdown;
    s.filtered_out = filtered;
    s.filter_panics = panics;
    s.route_hits = hits;
    s.route_misses = misses;
    s.route_invalidations = invalidations;
    s.binds = binds;
    s.unbinds = unbinds;
    s.binding_hits = b_hits;
    s.binding_misses = b_misses;
    s.binding_evictions = evictions;
    s
}

/// A real bus, its subscribers and its events.
#[derive(Debug, Clone, Arbitrary)]
pub struct BusInput {
    /// Shards: `1 + dispatchers % 3`.
    pub dispatchers: u8,
    /// `stats_topic_levels`: `1 + levels % 3`.
    pub levels: u8,
    /// `stats_topic_capacity`: `1 + topic_capacity % 4`.
    pub topic_capacity: u8,
    /// Subscribers (`Subscription::all()`), made before anything is published.
    pub subscribers: Vec<BusSubscriber>,
    /// One event each.
    pub events: Seq<TopicTokens>,
}

/// A subscriber on the real bus.
#[derive(Debug, Clone, Arbitrary)]
pub struct BusSubscriber {
    /// Its name.
    pub name: Label,
    /// Queue capacity: `1 + capacity % 8` (small, so events are dropped too).
    pub capacity: u8,
    /// `Overflow::DropOldest` instead of `Overflow::DropNewest`.
    pub drop_oldest: bool,
    /// `try_recv` calls after the shards settled: `receive % 16`.
    pub receive: u8,
}

/// A topic, as tokens joined with `.` (one `a` if there are none).
#[derive(Debug, Clone, Arbitrary)]
pub struct TopicTokens(pub Vec<Token>);

/// A topic token; every one is valid anywhere in a topic.
#[derive(Debug, Clone, Copy, Arbitrary)]
pub enum Token {
    /// `a`.
    A,
    /// `b`.
    B,
    /// `"`.
    Quote,
    /// `\`.
    Backslash,
    /// `__overflow__`: the overflow row's name, as a real prefix.
    Overflow,
    /// `{x}`.
    Braces,
    /// Two bytes mapped onto the valid ones (printable ASCII but `.`, `*`, `>`).
    Bytes([u8; 2]),
}

/// The bytes a topic token may hold.
fn token_byte(b: u8) -> char {
    let valid: Vec<u8> = (b'!'..=b'~').filter(|c| !b".*>".contains(c)).collect();
    char::from(valid[usize::from(b) % valid.len()])
}

impl TopicTokens {
    /// The topic's text.
    pub fn text(&self) -> String {
        if self.0.is_empty() {
            return "a".to_owned();
        }
        let tokens: Vec<String> = self
            .0
            .iter()
            .map(|t| match t {
                Token::A => "a".to_owned(),
                Token::B => "b".to_owned(),
                Token::Quote => "\"".to_owned(),
                Token::Backslash => "\\".to_owned(),
                Token::Overflow => STATS_TOPIC_OVERFLOW.to_owned(),
                Token::Braces => "{x}".to_owned(),
                Token::Bytes(b) => b.iter().map(|&b| token_byte(b)).collect(),
            })
            .collect();
        tokens.join(".")
    }
}

/// Decodes `data` as the fuzz target does and runs [`check`].
pub fn check_bytes(data: &[u8]) -> Verdict {
    decode_and_check(data, check)
}

/// Runs every check on one input; panics on the first failure.
pub fn check(input: &Input) -> Verdict {
    match input {
        Input::Snapshot(s) => check_snapshot_input(s),
        Input::Bus(b) => check_bus(b),
        Input::External(e) => check_external(e),
    }
}

/// The name rule the writer promises, restated: characters outside `[a-zA-Z0-9_:]`
/// (`[a-zA-Z0-9_]` for a label) become `_`; `_` goes first if the name is empty or starts
/// with a digit; a counter's name ends in `_total`.
fn external_name(name: &str, label: bool, counter: bool) -> String {
    let keep = |c: char| c.is_ascii_alphanumeric() || c == '_' || (!label && c == ':');
    let mut out: String = name.chars().map(|c| if keep(c) { c } else { '_' }).collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    if counter && !out.ends_with("_total") {
        out.push_str("_total");
    }
    out
}

/// [`ExternalMetric::prometheus_text`] alone, and a snapshot's text with them: both parse
/// strictly, each name is one family (of the first metric's kind), every series the input
/// names comes back once, with its label values and value exact (the first of a repeated
/// label name, the first of a repeated series), and a snapshot's own families win over an
/// external metric of the same name.
pub fn check_external(input: &[ExternalInput]) -> Verdict {
    let too_long = |l: &Label| l.text().len() > MAX_LABEL;
    if input.len() > MAX_EXTERNAL
        || input.iter().any(|m| {
            too_long(&m.name)
                || too_long(&m.help)
                || m.samples.len() > MAX_EXTERNAL
                || m.samples.iter().any(|(labels, _)| {
                    labels.len() > MAX_EXTERNAL
                        || labels.iter().any(|(k, v)| too_long(k) || too_long(v))
                })
        })
    {
        return Verdict::Rejected;
    }
    let metrics: Vec<ExternalMetric> = input
        .iter()
        .map(|m| {
            let (name, help) = (m.name.text(), m.help.text());
            let metric = if m.gauge {
                ExternalMetric::gauge(name, help)
            } else {
                ExternalMetric::counter(name, help)
            };
            m.samples.iter().fold(metric, |metric, (labels, value)| {
                let labels: Vec<(String, String)> =
                    labels.iter().map(|(k, v)| (k.text(), v.text())).collect();
                let labels: Vec<(&str, &str)> =
                    labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                metric.sample(&labels, value.value())
            })
        })
        .collect();
    let mut snapshot = StatsSnapshot::default();
    snapshot.external = metrics.clone();
    for (text, ours) in [
        (ExternalMetric::prometheus_text(&metrics), None),
        (snapshot.prometheus_text(), Some(StatsSnapshot::default().prometheus_text())),
    ] {
        let show = || format!("\n--- text:\n{text}---");
        let exp = prometheus::parse(&text)
            .unwrap_or_else(|e| panic!("external metrics: invalid exposition: {e}{}", show()));
        if let Some((a, b)) = first_duplicate(&exp.samples) {
            panic!("series twice, lines {} and {}{}", a.line, b.line, show());
        }
        // The snapshot's own names, a summary's `_sum` and `_count` included.
        let bus_families: HashSet<String> = match &ours {
            Some(ours) => prometheus::parse(ours)
                .unwrap()
                .types
                .into_iter()
                .flat_map(|(name, kind)| {
                    let parts = if kind == "summary" { &["", "_sum", "_count"][..] } else { &[""] };
                    parts.iter().map(move |p| format!("{name}{p}")).collect::<Vec<_>>()
                })
                .collect(),
            None => HashSet::new(),
        };
        // Expected: per sanitised name (first metric's kind), the first of each series.
        /// A family: name, kind, and its series (labels, value).
        type Family = (String, &'static str, Vec<(Labels, f64)>);
        let mut want: Vec<Family> = Vec::new();
        for m in &metrics {
            let counter = m.kind == MetricKind::Counter;
            let name = external_name(&m.name, false, counter);
            if bus_families.contains(&name) {
                continue;
            }
            if !want.iter().any(|(n, ..)| *n == name) {
                want.push((name.clone(), if counter { "counter" } else { "gauge" }, Vec::new()));
            }
            let rows = &mut want.iter_mut().find(|(n, ..)| *n == name).unwrap().2;
            for sample in &m.samples {
                let mut labels = Labels::new();
                for (k, v) in &sample.labels {
                    labels.entry(external_name(k, true, false)).or_insert_with(|| v.clone());
                }
                if !rows.iter().any(|(l, _)| *l == labels) {
                    rows.push((labels, sample.value));
                }
            }
        }
        for (name, kind, rows) in &want {
            assert_eq!(
                exp.types.get(name).map(String::as_str),
                Some(*kind),
                "TYPE of {name}{}",
                show()
            );
            let got: Vec<&Sample> = exp.samples.iter().filter(|s| s.name == *name).collect();
            assert_eq!(got.len(), rows.len(), "samples of {name}{}", show());
            for (labels, value) in rows {
                let found = got
                    .iter()
                    .find(|s| s.labels == *labels)
                    .unwrap_or_else(|| panic!("{name} lacks the series {labels:?}{}", show()));
                let same = found.value == *value || (found.value.is_nan() && value.is_nan());
                assert!(same, "{name}{labels:?}: {} for {value}{}", found.value, show());
            }
        }
        let external: usize = want.iter().map(|(_, _, rows)| rows.len()).sum();
        let bus_samples = match &ours {
            Some(ours) => prometheus::parse(ours).unwrap().samples.len(),
            None => 0,
        };
        assert_eq!(exp.samples.len(), bus_samples + external, "no other samples{}", show());
    }
    Verdict::Checked
}

fn check_snapshot_input(input: &SnapshotInput) -> Verdict {
    let labels_fit = |l: &Label| match l {
        Label::Text(s) => s.len() <= MAX_LABEL,
        Label::Pieces(p) => p.len() <= MAX_LABEL / 4,
    };
    if input.shards.len() > MAX_SHARDS
        || input.topics.len() > MAX_ROWS
        || input.subscribers.0.len() > MAX_ROWS
        || input.retired.len() > MAX_ROWS
        || !input.topics.iter().all(|t| labels_fit(&t.prefix))
        || !input.subscribers.0.iter().all(|s| labels_fit(&s.name))
        || !input.retired.iter().all(|s| labels_fit(&s.name))
    {
        return Verdict::Rejected;
    }
    check_text(&input.snapshot());
    Verdict::Checked
}

/// [`check_text`] on a snapshot with these subscriber names (one per shard 0, 1, ...) and
/// topic prefixes, and counters that differ per row. For the proptest twin's string
/// strategies.
pub fn check_labels(names: &[String], prefixes: &[String]) {
    let mut s = StatsSnapshot::default();
    s.subscribers = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut row = SubscriberStats::default();
            row.id = i as u64;
            row.name = n.clone();
            row.shard = i;
            row.consumed = 1000 + i as u64;
            row
        })
        .collect();
    s.topics = prefixes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let mut row = TopicStats::default();
            row.prefix = p.clone();
            row.published = 2000 + i as u64;
            row
        })
        .collect();
    check_text(&s);
}

fn check_bus(input: &BusInput) -> Verdict {
    let too_long = |l: &Label| l.text().len() > MAX_LABEL;
    if input.subscribers.len() > MAX_BUS_SUBSCRIBERS
        || input.events.0.len() > MAX_EVENTS
        || input.events.0.iter().any(|t| t.0.len() > MAX_TOPIC_TOKENS)
        || input.subscribers.iter().any(|s| too_long(&s.name))
    {
        return Verdict::Rejected;
    }
    let dispatchers = 1 + usize::from(input.dispatchers % 3);
    let levels = 1 + usize::from(input.levels % 3);
    let capacity = 1 + usize::from(input.topic_capacity % 4);
    let topics: Vec<Topic> = input
        .events
        .0
        .iter()
        .map(|t| {
            let text = t.text();
            Topic::new(&text).unwrap_or_else(|e| panic!("harness: built invalid topic: {e}"))
        })
        .collect();

    let bus: Bus<u64> = Bus::builder()
        .dispatchers(dispatchers)
        .stats_topic_levels(levels)
        .stats_topic_capacity(capacity)
        .latency_sample_every(1)
        .build()
        .expect("a valid configuration builds");
    let mut subs: Vec<(Subscriber<u64>, String, u8)> = input
        .subscribers
        .iter()
        .map(|s| {
            let name = s.name.text();
            let overflow = if s.drop_oldest { Overflow::DropOldest } else { Overflow::DropNewest };
            let sub = Subscription::all()
                .name(name.clone())
                .capacity(1 + usize::from(s.capacity % 8))
                .overflow(overflow);
            let sub = bus.subscribe(sub).expect("subscribe on an open bus");
            assert_eq!(sub.name(), name, "Subscriber::name");
            (sub, name, s.receive % 16)
        })
        .collect();
    let mut publisher = bus.publisher().expect("first publisher");
    for (i, t) in topics.iter().enumerate() {
        publisher
            .publish_blocking(Event::new(t.clone(), i as u64))
            .expect("publish on an open bus");
    }
    settle(&bus);
    let mut consumed = Vec::new();
    for (sub, _, receive) in subs.iter_mut() {
        // `consumed` counts an event when it is handed out: one held back behind a
        // `Lagged` report counts on the next receive, not before.
        let mut got = 0;
        for _ in 0..*receive {
            match sub.try_recv() {
                Ok(_) => got += 1,
                Err(TryRecvError::Lagged(_)) => {}
                Err(TryRecvError::Empty) => break,
                Err(e) => panic!("try_recv on an open bus: {e:?}"),
            }
        }
        consumed.push(got);
    }

    let s = bus.stats();
    assert_eq!(s.published, topics.len() as u64, "published");
    assert_eq!(s.subscribers.len(), subs.len(), "one row per live subscriber");
    for ((sub, name, _), got) in subs.iter().zip(&consumed) {
        let row = s.subscribers.iter().find(|r| r.id == sub.id()).unwrap_or_else(|| {
            panic!("no stats row for subscriber {} ({name:?}): {:?}", sub.id(), s.subscribers)
        });
        assert_eq!(&row.name, name, "subscriber {}: name in stats", sub.id());
        assert_eq!(row.consumed, *got, "subscriber {} ({name:?}): consumed", sub.id());
    }
    if let Some(p) = first_repeat(s.topics.iter().map(|t| &t.prefix)) {
        panic!(
            "the topic table reports prefix {p:?} twice, so the Prometheus text has the \
             series shardcast_topic_published_total{{prefix={p:?}}} (and _delivered, \
             _dropped) twice: a real prefix collides with the overflow row \
             {STATS_TOPIC_OVERFLOW:?}; rows: {:?}",
            s.topics
        );
    }
    let want_topics = topic_rows(&topics, levels, capacity);
    let got_topics: Vec<(String, u64)> =
        s.topics.iter().map(|t| (t.prefix.clone(), t.published)).collect();
    assert_eq!(
        got_topics, want_topics,
        "topic table (levels {levels}, capacity {capacity}): (prefix, published)"
    );
    check_text(&s);

    drop(publisher);
    bus.close();
    drop(subs);
    Verdict::Checked
}

/// `(prefix, published)` as the topic table documents it: the first `capacity` distinct
/// prefixes (first `levels` tokens) get rows, sorted; later ones count under
/// `__overflow__`, last.
fn topic_rows(topics: &[Topic], levels: usize, capacity: usize) -> Vec<(String, u64)> {
    let mut rows: BTreeMap<String, u64> = BTreeMap::new();
    let mut overflow = 0;
    for t in topics {
        let tokens: Vec<&str> = t.as_str().split('.').take(levels).collect();
        let prefix = tokens.join(".");
        if prefix == STATS_TOPIC_OVERFLOW {
            // A real `__overflow__` prefix counts in the overflow row (no duplicate rows).
            overflow += 1;
        } else if let Some(n) = rows.get_mut(&prefix) {
            *n += 1;
        } else if rows.len() < capacity {
            rows.insert(prefix, 1);
        } else {
            overflow += 1;
        }
    }
    let mut rows: Vec<(String, u64)> = rows.into_iter().collect();
    if overflow > 0 {
        rows.push((STATS_TOPIC_OVERFLOW.to_owned(), overflow));
    }
    rows
}

fn first_repeat<T: Eq + Hash + Clone>(items: impl IntoIterator<Item = T>) -> Option<T> {
    let mut seen = HashSet::new();
    items.into_iter().find(|x| !seen.insert(x.clone()))
}

/// What a sample's value must be.
#[derive(Debug, Clone, Copy)]
enum Want {
    /// A counter: the text is exactly this `u64`.
    Int(u64),
    /// A gauge or a latency: this `f64`, bit for bit (any NaN as `NaN`).
    Float(f64),
}

impl Want {
    fn canonical(self) -> String {
        match self {
            Want::Int(n) => n.to_string(),
            Want::Float(v) => canonical_float(v),
        }
    }

    /// The sample's value the way [`Want::canonical`] writes this kind of value.
    fn canonical_of(self, s: &Sample) -> String {
        match self {
            Want::Int(_) => match s.value_text.parse::<u64>() {
                Ok(n) => n.to_string(),
                Err(_) => format!("{:?} (not a u64)", s.value_text),
            },
            Want::Float(_) => canonical_float(s.value),
        }
    }
}

fn canonical_float(v: f64) -> String {
    if v.is_nan() {
        "NaN".to_owned()
    } else {
        format!("{v:?} ({:#018x})", v.to_bits())
    }
}

/// A sample the text must have: its name, labels and value.
type Row = (String, Labels, Want);

/// The families a snapshot must print: family → (kind, rows).
struct Expected {
    families: BTreeMap<String, (&'static str, Vec<Row>)>,
}

impl Expected {
    fn family(&mut self, name: &str, kind: &'static str) -> &mut Vec<Row> {
        let entry = self.families.entry(format!("shardcast_{name}")).or_insert((kind, Vec::new()));
        assert_eq!(entry.0, kind, "model: {name} declared twice");
        &mut entry.1
    }

    fn row(&mut self, family: &str, kind: &'static str, labels: &[(&str, &str)], want: Want) {
        let labels = labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        self.family(family, kind).push((format!("shardcast_{family}"), labels, want));
    }
}

fn expected(s: &StatsSnapshot) -> Expected {
    let mut e = Expected { families: BTreeMap::new() };
    let (c, g) = ("counter", "gauge");
    e.row("uptime_seconds", g, &[], Want::Float(s.uptime_seconds));
    e.row("published_total", c, &[], Want::Int(s.published));
    e.row("publisher_waits_total", c, &[], Want::Int(s.publisher_waits));
    e.row("ring_capacity", g, &[], Want::Float(s.ring_capacity as f64));
    e.row("ring_occupancy", g, &[], Want::Float(s.ring_occupancy as f64));
    e.row("subscriptions_total", c, &[], Want::Int(s.subscriptions));
    e.row("subscriptions_closed_total", c, &[], Want::Int(s.subscriptions_closed));

    type Field = fn(&ShardStats) -> u64;
    let mut per_shard: Vec<(&str, Field)> = vec![
        ("shard_dispatched_total", |x| x.dispatched),
        ("shard_delivered_total", |x| x.delivered),
        ("shard_filtered_out_total", |x| x.filtered_out),
        ("shard_filter_panics_total", |x| x.filter_panics),
        ("route_cache_hits_total", |x| x.route_hits),
        ("route_cache_misses_total", |x| x.route_misses),
        ("route_cache_invalidations_total", |x| x.route_invalidations),
    ];
    let binding: [(&str, Field); 5] = [
        ("binding_binds_total", |x| x.binds),
        ("binding_unbinds_total", |x| x.unbinds),
        ("binding_hits_total", |x| x.binding_hits),
        ("binding_misses_total", |x| x.binding_misses),
        ("binding_evictions_total", |x| x.binding_evictions),
    ];
    // The binding families: all five, for every shard, once any of them is non-zero on
    // any shard; none before.
    if s.shards.iter().any(|x| binding.iter().any(|(_, f)| f(x) != 0)) {
        per_shard.extend(binding);
    }
    let reasons: [(&str, Field); 4] = [
        ("drop_newest", |x| x.dropped_newest),
        ("drop_oldest", |x| x.dropped_oldest),
        ("disconnect", |x| x.dropped_disconnect),
        ("shutdown", |x| x.dropped_shutdown),
    ];
    // Declared even with no rows: HELP and TYPE are written regardless.
    for (name, _) in &per_shard {
        e.family(name, c);
    }
    e.family("shard_dropped_total", c);
    e.family("shard_backlog", g);
    for x in &s.shards {
        let shard = x.shard.to_string();
        for (name, f) in &per_shard {
            e.row(name, c, &[("shard", &shard)], Want::Int(f(x)));
        }
        for (reason, f) in reasons {
            let labels = [("shard", shard.as_str()), ("reason", reason)];
            e.row("shard_dropped_total", c, &labels, Want::Int(f(x)));
        }
        e.row("shard_backlog", g, &[("shard", &shard)], Want::Float(x.backlog as f64));
    }

    let counters: [&str; 4] = [
        "subscriber_delivered_total",
        "subscriber_consumed_total",
        "subscriber_dropped_total",
        "subscriber_lagged_reports_total",
    ];
    let gauges: [&str; 2] = ["subscriber_queue_depth", "subscriber_queue_capacity"];
    for name in counters {
        e.family(name, c);
    }
    for name in gauges {
        e.family(name, g);
    }
    let bus_latency = "receive_latency_seconds";
    let sub_latency = "subscriber_receive_latency_seconds";
    e.family(bus_latency, "summary");
    /// A summary's family name, labels and values.
    type Summary<'a> = (&'a str, Vec<(&'a str, &'a str)>, &'a LatencyStats);
    let mut summaries: Vec<Summary<'_>> = vec![(bus_latency, Vec::new(), &s.latency)];
    let ids: Vec<(String, String)> =
        s.subscribers.iter().map(|x| (x.id.to_string(), x.shard.to_string())).collect();
    let live = |x: &SubscriberStats| [x.delivered, x.consumed, x.dropped, x.lagged_reports];
    let retired =
        |x: &RetiredSubscriberStats| [x.delivered, x.consumed, x.dropped, x.lagged_reports];
    if s.subscribers_by_name {
        // One series per (name, shard): live and retired rows summed (saturating), gauges
        // of the live ones only; no per-subscriber latency.
        /// Per (name, shard): the four counters, and the two gauges if any row is live.
        type Sums<'a> = BTreeMap<(&'a str, String), ([u64; 4], Option<[u64; 2]>)>;
        let mut sums: Sums<'_> = BTreeMap::new();
        let rows = s.subscribers.iter().map(|x| (&x.name, x.shard, live(x), Some(x)));
        let rows = rows.chain(s.retired.iter().map(|x| (&x.name, x.shard, retired(x), None)));
        for (name, shard, counts, live) in rows {
            let (total, gauges) = sums.entry((name.as_str(), shard.to_string())).or_default();
            for (t, n) in total.iter_mut().zip(counts) {
                *t = t.saturating_add(n);
            }
            if let Some(x) = live {
                let g = gauges.get_or_insert([0; 2]);
                g[0] = g[0].saturating_add(x.queue_depth);
                g[1] = g[1].saturating_add(x.queue_capacity);
            }
        }
        for ((name, shard), (total, live)) in &sums {
            let labels = [("subscriber", *name), ("shard", shard.as_str())];
            for (family, v) in counters.iter().zip(total) {
                e.row(family, c, &labels, Want::Int(*v));
            }
            for (family, v) in gauges.iter().zip(live.iter().flatten()) {
                e.row(family, g, &labels, Want::Float(*v as f64));
            }
        }
    } else {
        for (x, (id, shard)) in s.subscribers.iter().zip(&ids) {
            let labels =
                [("subscriber", x.name.as_str()), ("id", id.as_str()), ("shard", shard.as_str())];
            for (family, v) in counters.iter().zip(live(x)) {
                e.row(family, c, &labels, Want::Int(v));
            }
            for (family, v) in gauges.iter().zip([x.queue_depth, x.queue_capacity]) {
                e.row(family, g, &labels, Want::Float(v as f64));
            }
            summaries.push((sub_latency, labels.to_vec(), &x.latency));
        }
        // Retired rows: `id="retired"`, counters only.
        for x in &s.retired {
            let shard = x.shard.to_string();
            let labels = [("subscriber", x.name.as_str()), ("id", "retired"), ("shard", &shard)];
            for (family, v) in counters.iter().zip(retired(x)) {
                e.row(family, c, &labels, Want::Int(v));
            }
        }
        e.family(sub_latency, "summary");
    }
    for (latency, labels, l) in summaries {
        for (q, v) in [
            ("0.5", l.p50_seconds),
            ("0.9", l.p90_seconds),
            ("0.99", l.p99_seconds),
            ("0.999", l.p999_seconds),
        ] {
            let mut with_q = labels.clone();
            with_q.push(("quantile", q));
            // No samples: NaN (Prometheus's "no observations"), not a zero.
            let v = if l.samples == 0 { f64::NAN } else { v };
            e.row(latency, "summary", &with_q, Want::Float(v));
        }
        let labels: Labels =
            labels.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        let rows = e.family(latency, "summary");
        rows.push((format!("shardcast_{latency}_sum"), labels.clone(), Want::Float(l.sum_seconds)));
        rows.push((format!("shardcast_{latency}_count"), labels, Want::Int(l.samples)));
    }

    type TopicField = fn(&TopicStats) -> u64;
    let per_topic: [(&str, TopicField); 3] = [
        ("topic_published_total", |t| t.published),
        ("topic_delivered_total", |t| t.delivered),
        ("topic_dropped_total", |t| t.dropped),
    ];
    for (name, _) in per_topic {
        e.family(name, c);
    }
    for t in &s.topics {
        for (name, f) in per_topic {
            e.row(name, c, &[("prefix", &t.prefix)], Want::Int(f(t)));
        }
    }
    e
}

/// Every property of `s.prometheus_text()` (see the module docs); panics with the text on
/// the first failure.
pub fn check_text(s: &StatsSnapshot) {
    let text = s.prometheus_text();
    let show = || format!("\n--- prometheus_text():\n{text}---");
    let exp = prometheus::parse(&text)
        .and_then(|e| prometheus::check_prefix(&e, &text).map(|()| e))
        .unwrap_or_else(|e| {
            panic!("prometheus_text() is not valid exposition format: {e}{}", show())
        });

    // Label values round-trip: each name / prefix comes back unescaped, exactly.
    let consumed = "shardcast_subscriber_consumed_total";
    let live = s.subscribers.iter().map(|x| (&x.name, x.id.to_string(), x.shard));
    let retired = s.retired.iter().map(|x| (&x.name, "retired".to_owned(), x.shard));
    for (name, id, shard) in live.chain(retired) {
        let shard = shard.to_string();
        // By name: no `id` label at all.
        let id = (!s.subscribers_by_name).then_some(id);
        let found = exp.samples.iter().any(|m| {
            m.name == consumed
                && m.labels.get("subscriber") == Some(name)
                && m.labels.get("id") == id.as_ref()
                && m.labels.get("shard") == Some(&shard)
        });
        if !found {
            let got: Vec<_> = exp
                .samples
                .iter()
                .filter(|m| m.name == consumed)
                .map(|m| (&m.labels, &m.value_text))
                .collect();
            panic!(
                "subscriber name {name:?} (id {id:?}, shard {shard}) is not the subscriber \
                 label of any {consumed} sample; those samples read back as {got:?}{}",
                show()
            );
        }
    }
    let published = "shardcast_topic_published_total";
    for t in &s.topics {
        if !exp
            .samples
            .iter()
            .any(|m| m.name == published && m.labels.get("prefix") == Some(&t.prefix))
        {
            let got: Vec<_> =
                exp.samples.iter().filter(|m| m.name == published).map(|m| &m.labels).collect();
            panic!(
                "topic prefix {:?} is not the prefix label of any {published} sample; those \
                 read back as {got:?}{}",
                t.prefix,
                show()
            );
        }
    }

    // Every known family: its kind, and exactly its samples (as multisets).
    let want = expected(s);
    let mut by_family: BTreeMap<&str, Vec<&Sample>> = BTreeMap::new();
    for m in &exp.samples {
        by_family.entry(m.family.as_str()).or_default().push(m);
    }
    for (family, (kind, rows)) in &want.families {
        assert_eq!(
            exp.types.get(family).map(String::as_str),
            Some(*kind),
            "TYPE of {family}{}",
            show()
        );
        let mut want_rows: Vec<(&str, &Labels, String)> =
            rows.iter().map(|(n, l, w)| (n.as_str(), l, w.canonical())).collect();
        // The family's sample names (a summary has three), each with its kind of value.
        let mut names: Vec<(&str, Want)> = Vec::new();
        for (n, _, w) in rows {
            if !names.iter().any(|(m, _)| m == n) {
                names.push((n, *w));
            }
        }
        let mut got_rows: Vec<(&str, &Labels, String)> = Vec::new();
        for m in by_family.get(family.as_str()).into_iter().flatten() {
            let Some((_, w)) = names.iter().find(|(n, _)| *n == m.name) else {
                panic!(
                    "line {}: unexpected sample {} in family {family}{}",
                    m.line,
                    m.name,
                    show()
                );
            };
            got_rows.push((m.name.as_str(), &m.labels, w.canonical_of(m)));
        }
        want_rows.sort();
        got_rows.sort();
        if want_rows != got_rows {
            let missing: Vec<_> = want_rows.iter().filter(|r| !got_rows.contains(r)).collect();
            let extra: Vec<_> = got_rows.iter().filter(|r| !want_rows.contains(r)).collect();
            panic!(
                "family {family}: {} samples, want {}; missing {missing:?}, unexpected \
                 {extra:?}{}",
                got_rows.len(),
                want_rows.len(),
                show()
            );
        }
    }
    // Families left out: the binding ones while all their counters are zero, the
    // per-subscriber latency by name.
    let absent = |family: &str| !want.families.contains_key(family);
    for family in exp.types.keys() {
        let left_out = (family.starts_with("shardcast_binding_") && absent(family))
            || (family == "shardcast_subscriber_receive_latency_seconds" && absent(family));
        assert!(!left_out, "family {family} is there, but the model leaves it out{}", show());
    }
    // Families the model does not know (added later): their label values are still ours.
    let names: BTreeSet<&str> = s
        .subscribers
        .iter()
        .map(|x| x.name.as_str())
        .chain(s.retired.iter().map(|x| x.name.as_str()))
        .collect();
    let prefixes: BTreeSet<&str> = s.topics.iter().map(|t| t.prefix.as_str()).collect();
    for m in exp.samples.iter().filter(|m| !want.families.contains_key(&m.family)) {
        for (label, allowed) in [("subscriber", &names), ("prefix", &prefixes)] {
            if let Some(v) = m.labels.get(label) {
                assert!(
                    allowed.contains(v.as_str()),
                    "line {}: {label}={v:?} is no row's{}",
                    m.line,
                    show()
                );
            }
        }
    }

    // No series twice, where the snapshot's rows are distinct.
    // By name, rows that share a name and shard are one series; by id, a series repeats only
    // where the input repeats an id, or a retired name and shard.
    let dup_subscribers = !s.subscribers_by_name
        && (first_repeat(s.subscribers.iter().map(|x| x.id)).is_some()
            || first_repeat(s.retired.iter().map(|x| (&x.name, x.shard))).is_some());
    let dup_topics = first_repeat(s.topics.iter().map(|t| &t.prefix)).is_some();
    let dup_shards = first_repeat(s.shards.iter().map(|x| x.shard)).is_some();
    let distinct = exp.samples.iter().filter(|m| {
        let has = |l: &str| m.labels.contains_key(l);
        if has("subscriber") {
            !dup_subscribers
        } else if has("prefix") {
            !dup_topics
        } else if has("shard") {
            !dup_shards
        } else {
            true
        }
    });
    if let Some((a, b)) = first_duplicate(distinct) {
        panic!(
            "lines {} and {}: the same series {} {:?} twice, from distinct rows{}",
            a.line,
            b.line,
            a.name,
            a.labels,
            show()
        );
    }
}
