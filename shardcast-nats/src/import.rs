//! Import: a NATS subscription read by a tokio task that decodes each message and
//! publishes it into the local bus through the bus's `Publisher`, which the task owns.
//!
//! The task waits for ring space with [`Publisher::publish_async`], so a full bus never
//! blocks the executor: the task stops reading, and the NATS client's own subscription
//! buffer absorbs the rest (async-nats reports a slow consumer past it).

use std::collections::HashMap;
use std::sync::Arc;

use async_nats::Message;
use futures_util::StreamExt;
use shardcast::stats::ExternalStats;
use shardcast::{Alias, Event, Pattern, PublishError, Publisher, SharedPublisher, Topic, Uuid};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::codec::{Codec, Json};
use crate::error::{BridgeError, DecodeError, ImportError};
use crate::headers;
use crate::shared::{Inner, ALIAS_NAMESPACE};
use crate::stats::{add, sub, Counters};

/// How an import decodes messages.
#[derive(Debug, Clone)]
pub struct ImportOptions<C = Json> {
    codec: C,
    max_payload: usize,
    queue: usize,
}

impl Default for ImportOptions<Json> {
    fn default() -> Self {
        ImportOptions::new(Json)
    }
}

impl<C> ImportOptions<C> {
    /// The default largest body an import accepts: 1 MiB (the NATS server's default limit).
    pub const DEFAULT_MAX_PAYLOAD: usize = 1 << 20;

    /// Options with this codec and the defaults.
    pub fn new(codec: C) -> Self {
        ImportOptions { codec, max_payload: Self::DEFAULT_MAX_PAYLOAD, queue: 1024 }
    }

    /// Replaces the codec.
    pub fn codec<D>(self, codec: D) -> ImportOptions<D> {
        ImportOptions { codec, max_payload: self.max_payload, queue: self.queue }
    }

    /// Largest body accepted, in bytes; larger messages are counted and dropped.
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.max_payload = bytes;
        self
    }

    /// Local events waiting in the import's [`ImportSender`] queue, at least 1 (0 makes
    /// [`Bridge::import`](crate::Bridge::import) fail); default 1024.
    pub fn queue(mut self, messages: usize) -> Self {
        self.queue = messages;
        self
    }
}

mod sealed {
    pub trait Sealed {}
    impl<E> Sealed for shardcast::Publisher<E> {}
    impl<E> Sealed for shardcast::SharedPublisher<E> {}
}

/// What an import publishes through (sealed):
/// - the bus's [`Publisher`]: the import owns the bus's one publisher until
///   [`ImportHandle::stop`] gives it back, and local code publishes through
///   [`ImportHandle::sender`];
/// - a clone of the bus's [`SharedPublisher`]: the rest of the daemon keeps publishing
///   into the same bus through its own clones, and the bus stays open while any is alive.
pub trait ImportPublisher<E>: sealed::Sealed + Send + 'static {
    /// Shows the bridge's counters in the bus's stats.
    #[doc(hidden)]
    fn attach_stats(&self, source: Arc<dyn ExternalStats>);

    /// Publishes `event`, waiting for ring space without blocking the executor.
    #[doc(hidden)]
    fn publish_imported(
        &mut self,
        event: Event<E>,
    ) -> impl std::future::Future<Output = Result<u64, PublishError<Event<E>>>> + Send;
}

impl<E: Send + Sync + 'static> ImportPublisher<E> for Publisher<E> {
    fn attach_stats(&self, source: Arc<dyn ExternalStats>) {
        Publisher::attach_stats(self, source);
    }

    fn publish_imported(
        &mut self,
        event: Event<E>,
    ) -> impl std::future::Future<Output = Result<u64, PublishError<Event<E>>>> + Send {
        self.publish(event)
    }
}

impl<E: Send + Sync + 'static> ImportPublisher<E> for SharedPublisher<E> {
    fn attach_stats(&self, source: Arc<dyn ExternalStats>) {
        SharedPublisher::attach_stats(self, source);
    }

    fn publish_imported(
        &mut self,
        event: Event<E>,
    ) -> impl std::future::Future<Output = Result<u64, PublishError<Event<E>>>> + Send {
        self.publish(event)
    }
}

/// A running import. Dropping it ends the import and drops the publisher it was given:
/// the bus's `Publisher`, which closes the bus, or a `SharedPublisher` clone.
/// [`stop`](Self::stop) gives the publisher back instead.
#[must_use = "dropping the handle stops the import (and closes the bus if it owns its Publisher)"]
pub struct ImportHandle<E, P = Publisher<E>> {
    task: JoinHandle<P>,
    stop: Option<oneshot::Sender<()>>,
    local: mpsc::Sender<Event<E>>,
}

/// Publishes local events into a bus whose publisher an import owns, interleaved with
/// the imported ones, through the import's task and a bounded queue. Cheap to clone.
pub struct ImportSender<E> {
    tx: mpsc::Sender<Event<E>>,
}

impl<E> Clone for ImportSender<E> {
    fn clone(&self) -> Self {
        ImportSender { tx: self.tx.clone() }
    }
}

impl<E> std::fmt::Debug for ImportSender<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportSender").field("closed", &self.tx.is_closed()).finish()
    }
}

impl<E> ImportSender<E> {
    /// Queues `event` for publishing; waits while the import's queue is full.
    ///
    /// # Errors
    /// The import ended (stopped, or its bus closed); the event is handed back.
    pub async fn publish(&self, event: Event<E>) -> Result<(), shardcast::PublishError<Event<E>>> {
        self.tx.send(event).await.map_err(|e| shardcast::PublishError(e.0))
    }
}

impl<E, P> ImportHandle<E, P> {
    /// A handle to publish local events into this import's bus (its publisher is owned
    /// by the import). Events sent through it are never marked as bridged, so exports
    /// carry them.
    pub fn sender(&self) -> ImportSender<E> {
        ImportSender { tx: self.local.clone() }
    }

    /// Ends the import and returns the publisher it was given. The import stops reading
    /// NATS after the message it is publishing, then publishes what its [`ImportSender`]s
    /// queued until the last of them is dropped (a publish waits for ring space, so this
    /// waits as long as the bus's slowest shard does). `None` if the import's task
    /// panicked.
    pub async fn stop(mut self) -> Option<P> {
        if let Some(stop) = self.stop.take() {
            // The task may have ended already (its bus closed); then there is no one to tell.
            let _ = stop.send(());
        }
        let (closed, _) = mpsc::channel(1);
        drop(std::mem::replace(&mut self.local, closed));
        (&mut self.task).await.ok()
    }
}

impl<E, P> Drop for ImportHandle<E, P> {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl<E, P> std::fmt::Debug for ImportHandle<E, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportHandle").field("finished", &self.task.is_finished()).finish()
    }
}

pub(crate) async fn start<E, C, P>(
    inner: &Arc<Inner>,
    publisher: P,
    pattern: &str,
    options: ImportOptions<C>,
) -> Result<ImportHandle<E, P>, ImportError<E, P>>
where
    E: Send + Sync + 'static,
    C: Codec<E>,
    P: ImportPublisher<E>,
{
    // Every fallible step comes before the publisher moves to the task, so a failure
    // hands it back and the bus stays open.
    let fail = |error, publisher| Err(ImportError::new(error, publisher));
    if options.queue == 0 {
        return fail(BridgeError::Config("import queue", "at least 1"), publisher);
    }
    let pattern = match Pattern::new(pattern) {
        Ok(pattern) => pattern,
        Err(e) => return fail(BridgeError::Pattern(e), publisher),
    };
    let subject = format!("{}.{}", inner.prefix.as_str(), pattern.as_str());
    let nats = match inner.client.subscribe(subject).await {
        Ok(nats) => nats,
        Err(e) => return fail(BridgeError::Subscribe(e), publisher),
    };
    publisher.attach_stats(inner.source.clone());
    let (local, local_rx) = mpsc::channel(options.queue);
    let (stop, stop_rx) = oneshot::channel();
    let decoder = Decoder {
        inner: Arc::clone(inner),
        codec: options.codec,
        max_payload: options.max_payload,
        streams: Streams::default(),
        alias: None,
    };
    let task = inner.runtime.spawn(decoder.run(nats, local_rx, stop_rx, publisher));
    Ok(ImportHandle { task, stop: Some(stop), local })
}

/// The most (origin, export) streams whose last position an import remembers; past it the
/// table is cleared (and a gap spanning the clear goes uncounted).
const MAX_STREAMS: usize = 4096;

/// Last `export-seq` seen per (origin, export): where imports find lost events.
#[derive(Default)]
struct Streams {
    last: HashMap<(Uuid, u32), u64>,
}

impl Streams {
    /// Records `seq` for its stream; returns how many events are missing before it.
    fn gap(&mut self, origin: Uuid, export: u32, seq: u64) -> u64 {
        if self.last.len() >= MAX_STREAMS && !self.last.contains_key(&(origin, export)) {
            self.last.clear();
        }
        // The first message of a stream opens it (earlier ones predate this import); a
        // position at or below the last one means the exporter restarted its stream.
        match self.last.insert((origin, export), seq) {
            Some(last) if seq > last => seq - last - 1,
            _ => 0,
        }
    }
}

struct Decoder<C> {
    inner: Arc<Inner>,
    codec: C,
    max_payload: usize,
    streams: Streams,
    /// The alias of the last origin seen: most messages come from the same bridge.
    alias: Option<(Uuid, Alias)>,
}

enum Outcome<E> {
    Publish(Event<E>),
    Own,
}

impl<C> Decoder<C> {
    async fn run<E, P>(
        mut self,
        mut nats: async_nats::Subscriber,
        mut local: mpsc::Receiver<Event<E>>,
        mut stop: oneshot::Receiver<()>,
        mut publisher: P,
    ) -> P
    where
        C: Codec<E>,
        E: Send + Sync + 'static,
        P: ImportPublisher<E>,
    {
        let counters = Arc::clone(&self.inner.counters);
        loop {
            let message = tokio::select! {
                // Told to stop, or the handle is gone (then this task is being aborted).
                _ = &mut stop => break,
                message = nats.next() => match message {
                    Some(message) => message,
                    // The client closed for good: only local events are left.
                    None => break,
                },
                Some(event) = local.recv() => {
                    if publisher.publish_imported(event).await.is_err() {
                        return publisher;
                    }
                    continue;
                }
            };
            add(&counters.import_in_flight, 1);
            match self.decode(message) {
                Ok(Outcome::Publish(event)) => match publisher.publish_imported(event).await {
                    Ok(_) => add(&counters.imported, 1),
                    Err(_) => {
                        add(&counters.import_bus_closed, 1);
                        sub(&counters.import_in_flight, 1);
                        return publisher;
                    }
                },
                Ok(Outcome::Own) => add(&counters.import_own, 1),
                Err(error) => self.count(&counters, &error),
            }
            sub(&counters.import_in_flight, 1);
        }
        // Unsubscribe from NATS, then publish local events until every sender is gone.
        drop(nats);
        while let Some(event) = local.recv().await {
            if publisher.publish_imported(event).await.is_err() {
                break;
            }
        }
        publisher
    }

    fn decode<E>(&mut self, message: Message) -> Result<Outcome<E>, DecodeError>
    where
        C: Codec<E>,
    {
        let prefix = self.inner.prefix.as_str();
        let rest = message
            .subject
            .as_str()
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix('.'))
            .ok_or_else(|| {
                DecodeError::BadTopic(format!("{:?} lacks the prefix", message.subject.as_str()))
            })?;
        let topic = Topic::new(rest).map_err(|e| DecodeError::BadTopic(e.to_string()))?;
        let incoming = headers::decode(message.headers.as_ref())?;
        if incoming.origin == self.inner.origin {
            return Ok(Outcome::Own);
        }
        let missed = self.streams.gap(incoming.origin, incoming.export, incoming.export_seq);
        add(&self.inner.counters.import_missed, missed);
        if message.payload.len() > self.max_payload {
            return Err(DecodeError::Oversized {
                len: message.payload.len(),
                max: self.max_payload,
            });
        }
        let payload = self.codec.decode(message.payload).map_err(DecodeError::Payload)?;
        let alias = match &self.alias {
            Some((origin, alias)) if *origin == incoming.origin => alias.clone(),
            _ => {
                let origin = incoming.origin.to_string();
                let alias = Alias::new(ALIAS_NAMESPACE, &origin)
                    .map_err(|_| DecodeError::BadHeader(headers::ORIGIN, origin))?;
                self.alias.insert((incoming.origin, alias)).1.clone()
            }
        };
        let mut event = Event::new(topic, payload).with_alias(alias);
        if let Some(route) = incoming.route {
            event = event.with_route(route);
        }
        Ok(Outcome::Publish(event))
    }

    fn count(&self, counters: &Counters, error: &DecodeError) {
        let counter = match error {
            DecodeError::MissingHeader(_) | DecodeError::BadHeader(..) => &counters.decode_header,
            DecodeError::BadTopic(_) => &counters.decode_topic,
            DecodeError::Oversized { .. } => &counters.decode_oversized,
            DecodeError::Payload(_) => &counters.decode_payload,
        };
        add(counter, 1);
        if let Some(suppressed) = counters.decode_log.check(self.inner.epoch) {
            tracing::warn!(
                origin = %self.inner.origin,
                reason = error.reason(),
                %error,
                suppressed,
                "shardcast-nats import: message dropped (at most one such event per second)"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_counted_per_stream_from_its_first_message() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut streams = Streams::default();
        assert_eq!(streams.gap(a, 0, 5), 0, "the first message opens the stream");
        assert_eq!(streams.gap(a, 0, 6), 0);
        assert_eq!(streams.gap(a, 0, 9), 2);
        assert_eq!(streams.gap(a, 1, 3), 0, "another export of the same origin");
        assert_eq!(streams.gap(b, 0, 1), 0);
        assert_eq!(streams.gap(a, 0, 1), 0, "a restarted stream");
        assert_eq!(streams.gap(a, 0, 3), 1);
    }
}
