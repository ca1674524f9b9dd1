//! The bridge's counters, their snapshot and its Prometheus text.
//!
//! Every counter is a plain `Relaxed` atomic with one writer site: a snapshot is a set of
//! independent readings, not a consistent cut (no counter pair here needs `open >= closed`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};
use shardcast::stats::{ExternalMetric, ExternalStats};

/// Live counters, shared by the bridge, its exports and imports and the connection-event
/// callback.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub connected: AtomicBool,
    pub reconnects: AtomicU64,
    pub disconnects: AtomicU64,
    pub exported: AtomicU64,
    pub encode_errors: AtomicU64,
    pub publish_errors: AtomicU64,
    pub export_lagged: AtomicU64,
    pub dropped_disconnected: AtomicU64,
    pub export_in_flight: AtomicU64,
    pub imported: AtomicU64,
    pub import_missed: AtomicU64,
    pub import_own: AtomicU64,
    pub import_bus_closed: AtomicU64,
    pub import_in_flight: AtomicU64,
    pub decode_header: AtomicU64,
    pub decode_topic: AtomicU64,
    pub decode_oversized: AtomicU64,
    pub decode_payload: AtomicU64,
    pub decode_log: LogLimit,
    pub encode_log: LogLimit,
}

/// At most one log event per second for one kind of error.
#[derive(Debug, Default)]
pub(crate) struct LogLimit {
    /// Milliseconds since the bridge's epoch, plus one second, of the last event logged.
    last_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl LogLimit {
    /// Whether an event may be logged now; if so, how many were suppressed since the
    /// last one (the event should say so).
    pub(crate) fn check(&self, epoch: Instant) -> Option<u64> {
        // Offset by a second so that the very first event passes.
        let now = epoch.elapsed().as_millis() as u64 + 1_000;
        let last = self.last_ms.load(Relaxed);
        // Relaxed: the limit is advisory; a race at worst logs one event too many or few.
        if now < last + 1_000 || self.last_ms.compare_exchange(last, now, Relaxed, Relaxed).is_err()
        {
            add(&self.suppressed, 1);
            return None;
        }
        Some(self.suppressed.swap(0, Relaxed))
    }
}

pub(crate) fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

pub(crate) fn sub(counter: &AtomicU64, n: u64) {
    counter.fetch_sub(n, Relaxed);
}

impl Counters {
    pub(crate) fn snapshot(&self, origin: String) -> BridgeStats {
        let decode_errors = DecodeErrors {
            header: self.decode_header.load(Relaxed),
            topic: self.decode_topic.load(Relaxed),
            oversized: self.decode_oversized.load(Relaxed),
            payload: self.decode_payload.load(Relaxed),
        };
        BridgeStats {
            origin,
            connected: self.connected.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            disconnects: self.disconnects.load(Relaxed),
            exported: self.exported.load(Relaxed),
            encode_errors: self.encode_errors.load(Relaxed),
            publish_errors: self.publish_errors.load(Relaxed),
            export_lagged: self.export_lagged.load(Relaxed),
            dropped_disconnected: self.dropped_disconnected.load(Relaxed),
            imported: self.imported.load(Relaxed),
            import_missed: self.import_missed.load(Relaxed),
            import_own_skipped: self.import_own.load(Relaxed),
            import_bus_closed: self.import_bus_closed.load(Relaxed),
            decode_errors,
            in_flight: self.export_in_flight.load(Relaxed) + self.import_in_flight.load(Relaxed),
        }
    }
}

/// Decode errors by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecodeErrors {
    /// A required header missing, or a header that does not parse.
    pub header: u64,
    /// The subject after the prefix is not a valid topic.
    pub topic: u64,
    /// The body exceeds the import's `max_payload`.
    pub oversized: u64,
    /// The codec rejected the body.
    pub payload: u64,
}

impl DecodeErrors {
    /// All decode errors.
    pub fn total(&self) -> u64 {
        self.header + self.topic + self.oversized + self.payload
    }
}

/// A plain snapshot of one bridge's counters (all exports and imports together).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BridgeStats {
    /// The bridge's origin id.
    pub origin: String,
    /// Whether the NATS connection is up now.
    pub connected: bool,
    /// Connections re-established after a disconnect.
    pub reconnects: u64,
    /// Connections lost.
    pub disconnects: u64,
    /// Events handed to the NATS client by exports.
    pub exported: u64,
    /// Events an export could not encode (dropped).
    pub encode_errors: u64,
    /// Events the NATS client refused (oversized for the server, client closed; dropped).
    pub publish_errors: u64,
    /// Events lost at an export's full subscription while connected (a slow NATS).
    pub export_lagged: u64,
    /// Events lost at an export's full subscription while disconnected.
    pub dropped_disconnected: u64,
    /// Events imports published into the local bus.
    pub imported: u64,
    /// Events that never arrived: gaps in the `export-seq` of the streams imported (see
    /// [`headers`](crate::headers)).
    pub import_missed: u64,
    /// Messages this bridge exported itself, seen again by its own import and skipped.
    pub import_own_skipped: u64,
    /// Decoded messages dropped because the local bus was closed.
    pub import_bus_closed: u64,
    /// Messages imports dropped because they did not decode, by reason.
    pub decode_errors: DecodeErrors,
    /// Events taken by an export but not yet handed to NATS, plus messages received by an
    /// import but not yet published into the bus.
    pub in_flight: u64,
}

impl BridgeStats {
    /// The snapshot in the Prometheus text exposition format 0.0.4: `shardcast_nats_`
    /// prefix, `# HELP` and `# TYPE` per metric, counters ending in `_total`, an `origin`
    /// label on every series. A bus the bridge exports from or imports into shows these
    /// series already (its `stats()` includes them); use this for a bridge on its own.
    pub fn prometheus_text(&self) -> String {
        ExternalMetric::prometheus_text(&self.metrics())
    }

    /// The snapshot as metrics for a bus's stats ([`shardcast::stats::ExternalStats`]).
    pub fn metrics(&self) -> Vec<ExternalMetric> {
        type Extra = &'static [(&'static str, &'static str)];
        let origin = self.origin.as_str();
        let labels = |extra: Extra| {
            let mut all = vec![("origin", origin)];
            all.extend_from_slice(extra);
            all
        };
        let counter = |name: &str, help: &str, rows: &[(Extra, u64)]| {
            rows.iter().fold(
                ExternalMetric::counter(format!("shardcast_nats_{name}"), help),
                |metric, (extra, value)| metric.sample(&labels(extra), *value as f64),
            )
        };
        let gauge = |name: &str, help: &str, value: u64| {
            ExternalMetric::gauge(format!("shardcast_nats_{name}"), help)
                .sample(&labels(&[]), value as f64)
        };
        let d = &self.decode_errors;
        vec![
            gauge(
                "connected",
                "Whether the NATS connection is up (1) or not (0).",
                u64::from(self.connected),
            ),
            counter(
                "reconnects_total",
                "Connections re-established after a disconnect.",
                &[(&[], self.reconnects)],
            ),
            counter("disconnects_total", "Connections lost.", &[(&[], self.disconnects)]),
            counter("exported_total", "Events handed to NATS by exports.", &[(&[], self.exported)]),
            counter(
                "encode_errors_total",
                "Events an export could not encode.",
                &[(&[], self.encode_errors)],
            ),
            counter(
                "publish_errors_total",
                "Events the NATS client refused.",
                &[(&[], self.publish_errors)],
            ),
            counter(
                "export_dropped_total",
                "Events lost at a full export subscription, by connection state.",
                &[
                    (&[("state", "connected")], self.export_lagged),
                    (&[("state", "disconnected")], self.dropped_disconnected),
                ],
            ),
            counter(
                "imported_total",
                "Events imports published into the local bus.",
                &[(&[], self.imported)],
            ),
            counter(
                "import_missed_total",
                "Events missing from imported streams (sequence gaps).",
                &[(&[], self.import_missed)],
            ),
            counter(
                "import_own_skipped_total",
                "Messages exported by this bridge and skipped by its own import.",
                &[(&[], self.import_own_skipped)],
            ),
            counter(
                "import_bus_closed_total",
                "Decoded messages dropped because the local bus was closed.",
                &[(&[], self.import_bus_closed)],
            ),
            counter(
                "decode_errors_total",
                "Incoming messages dropped because they did not decode, by reason.",
                &[
                    (&[("reason", "header")], d.header),
                    (&[("reason", "topic")], d.topic),
                    (&[("reason", "oversized")], d.oversized),
                    (&[("reason", "payload")], d.payload),
                ],
            ),
            gauge(
                "in_flight",
                "Events between the local bus and NATS right now, both directions.",
                self.in_flight,
            ),
        ]
    }
}

/// A bridge's counters as a bus shows them: attached to every bus the bridge exports
/// from or imports into, and gone from its stats when the bridge is.
pub(crate) struct Source {
    pub origin: String,
    pub counters: Arc<Counters>,
}

impl Source {
    pub(crate) fn snapshot(&self) -> BridgeStats {
        self.counters.snapshot(self.origin.clone())
    }
}

impl ExternalStats for Source {
    fn collect(&self, out: &mut Vec<ExternalMetric>) {
        out.extend(self.snapshot().metrics());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_error_logs_are_rate_limited() {
        let counters = Counters::default();
        let epoch = Instant::now();
        assert_eq!(counters.decode_log.check(epoch), Some(0));
        assert_eq!(counters.decode_log.check(epoch), None);
        assert_eq!(counters.decode_log.check(epoch), None);
        assert_eq!(counters.decode_log.suppressed.load(Relaxed), 2);
        assert_eq!(counters.encode_log.check(epoch), Some(0), "a limit per kind of error");
    }

    #[test]
    fn snapshot_serializes_and_prints_every_series() {
        let counters = Counters::default();
        add(&counters.exported, 3);
        add(&counters.decode_payload, 2);
        let stats = counters.snapshot("o\"1".into());
        let json = serde_json::to_string(&stats).unwrap();
        assert_eq!(serde_json::from_str::<BridgeStats>(&json).unwrap(), stats);
        let text = stats.prometheus_text();
        assert!(text.contains("shardcast_nats_exported_total{origin=\"o\\\"1\"} 3\n"), "{text}");
        assert!(text.contains(
            "shardcast_nats_decode_errors_total{origin=\"o\\\"1\",reason=\"payload\"} 2\n"
        ));
        assert_eq!(stats.decode_errors.total(), 2);
    }
}
