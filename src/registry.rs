//! Each shard's subscriber list: read without locks on the hot path, changed by RCU.
//!
//! The dispatcher loads the list once per batch (one `Swap::load`, a wait-free
//! reference-count increment with arc-swap). Subscribe and unsubscribe copy the list, edit
//! the copy and store it, serialised by `writer`; a shard still using the old list keeps
//! its entries alive until its batch ends, so there is no use after free. An entry leaves
//! the list when its `Subscriber` is dropped, not when a `Disconnect` overflow closes its
//! queue: until then stats show that subscriber and its losses (the shard skips the dead
//! queue). Every edit also sweeps entries whose receiver is gone.
//!
//! # Generations
//! Every stored list carries a new `generation`. The shard's route cache is valid for one
//! generation and is keyed by the generation *of the snapshot it dispatches with*, so a
//! cached entry can never describe another list than the one in use: no ordering between
//! a separate counter and the list is needed.
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
//! | `Swap::store` (arc-swap: SeqCst) in `insert`/`remove` | `Swap::load` in the shard loop, after its Acquire load of `tail` | the new list and its generation |
//! | `writer` lock (`closed`) | `writer` lock in `insert` | no subscriber is added after the shard's final sweep |
//!
//! Modelled in `loom-tests/tests/bus.rs`.

use crate::queue::SubQueue;
use crate::subscription::{Filter, Matcher};
use crate::sync::{Arc, Mutex, Swap};

pub(crate) struct Entry<E> {
    pub(crate) id: u64,
    pub(crate) start: u64,
    pub(crate) queue: Arc<SubQueue<E>>,
    pub(crate) matcher: Matcher,
    /// The route filter, as a `u128`: the shard compares it per event, and an
    /// `Option<Uuid>` (17 bytes, align 1) spilled and reloaded at other widths stalls
    /// store forwarding.
    pub(crate) route: Option<u128>,
    pub(crate) filter: Option<Filter<E>>,
}

impl<E> Clone for Entry<E> {
    fn clone(&self) -> Self {
        Entry {
            id: self.id,
            start: self.start,
            queue: Arc::clone(&self.queue),
            matcher: self.matcher.clone(),
            route: self.route,
            filter: self.filter.clone(),
        }
    }
}

/// One immutable snapshot of a shard's subscribers.
pub(crate) struct List<E> {
    pub(crate) generation: u64,
    pub(crate) entries: Vec<Entry<E>>,
}

struct WriterState {
    /// The shard has finished: no more subscribers.
    closed: bool,
    generation: u64,
}

pub(crate) struct Registry<E> {
    list: Swap<List<E>>,
    writer: Mutex<WriterState>,
}

/// The registry's shard has stopped.
#[derive(Debug)]
pub(crate) struct RegistryClosed;

impl<E> Registry<E> {
    pub(crate) fn new() -> Self {
        Registry {
            list: Swap::new(Arc::new(List { generation: 0, entries: Vec::new() })),
            writer: Mutex::new(WriterState { closed: false, generation: 0 }),
        }
    }

    /// The current list: one load per dispatch batch.
    pub(crate) fn load(&self) -> Arc<List<E>> {
        self.list.load()
    }

    pub(crate) fn len(&self) -> usize {
        self.list.load().entries.len()
    }

    /// Adds `entry`. `start` is called under the writer lock, before the new list is
    /// stored, and gives the entry's start sequence (`None`: the bus is closing).
    pub(crate) fn insert(
        &self,
        mut entry: Entry<E>,
        start: impl FnOnce() -> Option<u64>,
    ) -> Result<(), RegistryClosed> {
        let mut state = self.writer.lock();
        if state.closed {
            return Err(RegistryClosed);
        }
        entry.start = start().ok_or(RegistryClosed)?;
        let mut entries = self.live_entries();
        entries.push(entry);
        self.publish(&mut state, entries);
        Ok(())
    }

    /// Removes a subscriber (and sweeps dead ones).
    pub(crate) fn remove(&self, id: u64) {
        let mut state = self.writer.lock();
        let mut entries = self.live_entries();
        entries.retain(|e| e.id != id);
        self.publish(&mut state, entries);
    }

    fn publish(&self, state: &mut WriterState, entries: Vec<Entry<E>>) {
        state.generation += 1;
        self.list.store(Arc::new(List { generation: state.generation, entries }));
    }

    /// Marks the registry closed and returns the final list, so the shard can close every
    /// queue in it. Later `insert`s fail.
    pub(crate) fn close(&self) -> Arc<List<E>> {
        let mut state = self.writer.lock();
        state.closed = true;
        self.list.load()
    }

    /// The entries whose `Subscriber` is alive. A queue closed by a `Disconnect` overflow
    /// stays listed until its subscriber is dropped, so stats keep showing its counts (its
    /// losses included) while the handle lives; the shard skips it (`is_dead`).
    fn live_entries(&self) -> Vec<Entry<E>> {
        self.list.load().entries.iter().filter(|e| !e.queue.receiver_gone()).cloned().collect()
    }
}
