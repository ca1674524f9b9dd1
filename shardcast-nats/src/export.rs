//! Export: a local subscription drained by a tokio task that publishes to NATS.
//!
//! The task only takes an event off its subscription while the connection is up. While
//! it is down the subscription's queue fills and then overflows under its own policy:
//! that is the export's buffer, and the local bus never waits for NATS (unless the caller
//! chose `Overflow::Block`, whose hazard is the bus's own).

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use async_nats::Subject;
use shardcast::{Bus, Overflow, RecvError, Subscription, Topic};
use tokio::task::JoinHandle;

use crate::codec::{Codec, Json};
use crate::error::BridgeError;
use crate::headers::{self, Outgoing};
use crate::shared::{Inner, ALIAS_NAMESPACE};
use crate::stats::{add, sub};

/// How an export subscribes to the local bus and encodes payloads.
#[derive(Debug, Clone)]
pub struct ExportOptions<C = Json> {
    codec: C,
    capacity: Option<usize>,
    overflow: Overflow,
    name: Option<String>,
    include_bridged: bool,
}

impl Default for ExportOptions<Json> {
    fn default() -> Self {
        ExportOptions::new(Json)
    }
}

impl<C> ExportOptions<C> {
    /// Options with this codec and the subscription defaults.
    pub fn new(codec: C) -> Self {
        ExportOptions {
            codec,
            capacity: None,
            overflow: Overflow::default(),
            name: None,
            include_bridged: false,
        }
    }

    /// Replaces the codec.
    pub fn codec<D>(self, codec: D) -> ExportOptions<D> {
        ExportOptions {
            codec,
            capacity: self.capacity,
            overflow: self.overflow,
            name: self.name,
            include_bridged: self.include_bridged,
        }
    }

    /// The export subscription's queue capacity (default: the bus's): how many events the
    /// export holds while NATS is slow or disconnected.
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = Some(capacity);
        self
    }

    /// The export subscription's overflow policy (default `DropNewest`). Losses are
    /// counted in the bridge stats.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// The export subscription's name in the bus's stats; default `nats-export-<n>`.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Also export events that came in through a bridge (any bridge's import). Off by
    /// default: with it, two buses that export and import the same subjects loop forever.
    pub fn include_bridged(mut self, include: bool) -> Self {
        self.include_bridged = include;
        self
    }
}

/// A running export. Dropping it (or [`stop`](Self::stop)) ends the export and
/// unsubscribes from the bus; events not yet handed to NATS are dropped. It also ends
/// on its own when the bus closes, after handing every queued event to NATS.
#[must_use = "dropping the handle stops the export"]
#[derive(Debug)]
pub struct ExportHandle {
    task: JoinHandle<()>,
    export: u32,
}

impl ExportHandle {
    /// This export's number within its bridge (the `export` field of the `Shardcast` header).
    pub fn id(&self) -> u32 {
        self.export
    }

    /// Whether the export ended (bus closed).
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the export now.
    pub fn stop(self) {}

    /// Waits until the export ends on its own (the bus closed and the export handed every
    /// queued event to NATS).
    pub async fn finished(mut self) {
        let _ = (&mut self.task).await;
    }
}

impl Drop for ExportHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn start<E, C>(
    inner: &Arc<Inner>,
    bus: &Bus<E>,
    pattern: &str,
    options: ExportOptions<C>,
) -> Result<ExportHandle, BridgeError>
where
    E: Send + Sync + 'static,
    C: Codec<E>,
{
    let export = inner.next_export.fetch_add(1, Relaxed);
    let include_bridged = options.include_bridged;
    let mut subscription = Subscription::to(pattern)
        .map_err(BridgeError::Pattern)?
        .overflow(options.overflow)
        .name(options.name.unwrap_or_else(|| format!("nats-export-{export}")))
        // `$SYS` is the bus's own business, never another bus's; bridged events would loop.
        .filter(move |event| {
            !event.topic().is_system()
                && (include_bridged
                    || event.alias().is_none_or(|a| a.namespace() != ALIAS_NAMESPACE))
        });
    if let Some(capacity) = options.capacity {
        subscription = subscription.capacity(capacity);
    }
    let subscriber = bus.subscribe(subscription).map_err(BridgeError::Bus)?;
    bus.attach_stats(inner.source.clone());
    let codec = options.codec;
    let inner = Arc::clone(inner);
    let task = inner.runtime.spawn(run(Arc::clone(&inner), subscriber, codec, export));
    Ok(ExportHandle { task, export })
}

async fn run<E, C>(
    inner: Arc<Inner>,
    mut subscriber: shardcast::Subscriber<E>,
    codec: C,
    export: u32,
) where
    E: Send + Sync + 'static,
    C: Codec<E>,
{
    let counters = &inner.counters;
    let mut out = Outgoing { origin: inner.origin, export, export_seq: 0 };
    let mut recovery = Recovery::new(counters.disconnects.load(Relaxed));
    let mut last_subject: Option<(Topic, Subject)> = None;
    loop {
        recovery.note(counters.disconnects.load(Relaxed));
        if !inner.is_connected() {
            inner.connected().await;
        }
        let delivery = match subscriber.recv().await {
            Ok(delivery) => delivery,
            Err(RecvError::Lagged(n)) => {
                // Lost events keep their stream positions, so importers see the gap.
                out.export_seq += n;
                recovery.note(counters.disconnects.load(Relaxed));
                if recovery.active || !inner.is_connected() {
                    add(&counters.dropped_disconnected, n);
                } else {
                    add(&counters.export_lagged, n);
                }
                continue;
            }
            Err(RecvError::Closed) => {
                tracing::info!(origin = %inner.origin, export, "shardcast-nats export ended: bus closed or subscription disconnected");
                break;
            }
        };
        out.export_seq += 1;
        let body = match codec.encode(delivery.payload()) {
            Ok(body) => body,
            Err(error) => {
                add(&counters.encode_errors, 1);
                if let Some(suppressed) = counters.encode_log.check(inner.epoch) {
                    tracing::warn!(
                        origin = %inner.origin,
                        topic = %delivery.topic().as_str(),
                        %error,
                        suppressed,
                        "shardcast-nats export: cannot encode (at most one such event per second)"
                    );
                }
                continue;
            }
        };
        let headers = headers::encode(&out, &delivery);
        let subject = match &last_subject {
            // `Subject` clones share their bytes; `Topic`s compare by pointer first.
            Some((topic, subject)) if topic == delivery.topic() => subject.clone(),
            _ => {
                let subject = Subject::from(format!("{}.{}", inner.prefix, delivery.topic()));
                last_subject.insert((delivery.topic().clone(), subject)).1.clone()
            }
        };
        drop(delivery);
        add(&counters.export_in_flight, 1);
        let sent = inner.client.publish_with_headers(subject, headers, body).await;
        sub(&counters.export_in_flight, 1);
        match sent {
            Ok(()) => {
                add(&counters.exported, 1);
                if inner.is_connected() {
                    recovery.sent(subscriber.is_empty(), subscriber.capacity());
                }
            }
            Err(error) => {
                add(&counters.publish_errors, 1);
                tracing::warn!(origin = %inner.origin, %error, "shardcast-nats export: publish refused");
            }
        }
    }
    // Hand what was published to the socket before the task ends.
    let _ = inner.client.flush().await;
}

/// Which losses count as "while disconnected": from a disconnect until the export has
/// drained what its subscription buffered meanwhile (its queue was empty, or it sent a
/// queue's worth of events over the live connection). Losses are only reported when the
/// export next receives, which is after the reconnect, so the time they are reported at
/// cannot tell.
struct Recovery {
    disconnects_seen: u64,
    active: bool,
    sent: usize,
}

impl Recovery {
    fn new(disconnects: u64) -> Self {
        Recovery { disconnects_seen: disconnects, active: false, sent: 0 }
    }

    fn note(&mut self, disconnects: u64) {
        if disconnects != self.disconnects_seen {
            self.disconnects_seen = disconnects;
            self.active = true;
            self.sent = 0;
        }
    }

    fn sent(&mut self, queue_empty: bool, capacity: usize) {
        if self.active {
            self.sent += 1;
            if queue_empty || self.sent >= capacity {
                self.active = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Recovery;

    #[test]
    fn losses_count_as_disconnected_until_the_backlog_is_sent() {
        let mut r = Recovery::new(0);
        r.note(0);
        assert!(!r.active);
        r.note(1);
        assert!(r.active, "a disconnect happened");
        r.sent(false, 3);
        r.sent(false, 3);
        assert!(r.active);
        r.sent(false, 3);
        assert!(!r.active, "a queue's worth went out");
        r.note(1);
        assert!(!r.active, "no new disconnect");
        r.note(2);
        r.sent(true, 100);
        assert!(!r.active, "the queue is empty");
    }
}
