//! What a bridge's exports and imports share, below all three of them: the connection with
//! its origin id and counters ([`Inner`], one per [`Bridge`](crate::Bridge) and its clones)
//! and the alias namespace that marks an imported event.

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

use async_nats::Client;
use shardcast::{Topic, Uuid};
use tokio::sync::Notify;

use crate::stats::{Counters, Source};

/// The alias namespace that marks an event imported from NATS; the key is the origin id
/// of the bridge that exported it.
pub const ALIAS_NAMESPACE: &str = "shardcast-nats";

/// One connection and what goes with it, shared by a bridge, its clones, and every export
/// and import task they started.
pub(crate) struct Inner {
    pub client: Client,
    pub origin: Uuid,
    pub prefix: Topic,
    pub counters: Arc<Counters>,
    /// The counters as the buses this bridge serves show them (each holds it weakly).
    pub source: Arc<Source>,
    pub state_changed: Arc<Notify>,
    pub runtime: tokio::runtime::Handle,
    pub next_export: AtomicU32,
    /// Start of the decode-error log rate limit's clock.
    pub epoch: Instant,
}

impl Inner {
    pub(crate) fn is_connected(&self) -> bool {
        self.counters.connected.load(Relaxed)
    }

    /// Returns once the connection is up.
    pub(crate) async fn connected(&self) {
        loop {
            // Created before the check: `notify_waiters` after this line reaches it.
            let changed = self.state_changed.notified();
            if self.is_connected() {
                return;
            }
            changed.await;
        }
    }
}
