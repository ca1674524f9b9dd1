//! Each shard's subscriber list: read without locks on the hot path, changed by RCU.
//!
//! The dispatcher loads the list once per batch (one `Swap::load`, a wait-free
//! reference-count increment with arc-swap). Subscribe and unsubscribe copy the list, edit
//! the copy and store it, serialised by `writer`; a shard still using the old list keeps
//! its entries alive until its batch ends, so there is no use after free. Entries of
//! subscribers that disconnected on overflow are swept out on every edit.
//!
//! # Start sequence
//! An entry records `start`, the ring's published count read (Acquire) before the new list
//! is stored. The shard delivers an event to an entry only if `seq >= start`, so a new
//! subscriber never sees an event published before it subscribed. Every event published
//! after `subscribe` returned reaches it: its publication happens after the store, the
//! shard loads `tail` (Acquire) before the list, so that load of the list sees the store.
//!
//! # Orderings
//! | write | read | what it publishes |
//! |---|---|---|
//! | `Swap::store` (arc-swap: SeqCst) in `insert`/`remove` | `Swap::load` in the shard loop, after its Acquire load of `tail` | the new list |
//! | `writer` lock (`closed`) | `writer` lock in `insert` | no subscriber is added after the shard's final sweep |
//!
//! Modelled in `loom-tests/tests/registry.rs`.

use crate::event::Delivery;
use crate::queue::SubQueue;
use crate::sync::{Arc, Mutex, Swap};

pub(crate) struct Entry<E> {
    pub(crate) id: u64,
    pub(crate) start: u64,
    pub(crate) queue: Arc<SubQueue<Delivery<E>>>,
}

impl<E> Clone for Entry<E> {
    fn clone(&self) -> Self {
        Entry { id: self.id, start: self.start, queue: Arc::clone(&self.queue) }
    }
}

pub(crate) struct Registry<E> {
    list: Swap<Vec<Entry<E>>>,
    /// `true` once the shard has finished: no more subscribers.
    writer: Mutex<bool>,
}

/// The registry's shard has stopped.
#[derive(Debug)]
pub(crate) struct RegistryClosed;

impl<E> Registry<E> {
    pub(crate) fn new() -> Self {
        Registry { list: Swap::new(Arc::new(Vec::new())), writer: Mutex::new(false) }
    }

    /// The current list: one load per dispatch batch.
    pub(crate) fn load(&self) -> Arc<Vec<Entry<E>>> {
        self.list.load()
    }

    pub(crate) fn len(&self) -> usize {
        self.list.load().len()
    }

    /// Adds a subscriber. `start` is called under the writer lock, before the new list is
    /// stored, and gives the entry's start sequence.
    pub(crate) fn insert(
        &self,
        id: u64,
        queue: Arc<SubQueue<Delivery<E>>>,
        start: impl FnOnce() -> Option<u64>,
    ) -> Result<(), RegistryClosed> {
        let closed = self.writer.lock();
        if *closed {
            return Err(RegistryClosed);
        }
        let start = start().ok_or(RegistryClosed)?;
        let mut list = self.live_entries();
        list.push(Entry { id, start, queue });
        self.list.store(Arc::new(list));
        drop(closed);
        Ok(())
    }

    /// Removes a subscriber (and sweeps dead ones).
    pub(crate) fn remove(&self, id: u64) {
        let _closed = self.writer.lock();
        let mut list = self.live_entries();
        list.retain(|e| e.id != id);
        self.list.store(Arc::new(list));
    }

    /// Marks the registry closed and returns the final list, so the shard can close every
    /// queue in it. Later `insert`s fail.
    pub(crate) fn close(&self) -> Arc<Vec<Entry<E>>> {
        let mut closed = self.writer.lock();
        *closed = true;
        self.list.load()
    }

    fn live_entries(&self) -> Vec<Entry<E>> {
        self.list.load().iter().filter(|e| !e.queue.is_dead()).cloned().collect()
    }
}
