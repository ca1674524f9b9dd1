//! Each shard's subscriber list: read without locks on the hot path, changed by RCU, one
//! chunk at a time.
//!
//! The dispatcher loads the list once per batch (one `Swap::load`, a wait-free
//! reference-count increment with arc-swap). The list is a spine of fixed-size chunks of
//! slots ([`Slots`]); subscribe and unsubscribe copy the one chunk they change and the
//! spine (pointers to the other chunks, shared), and store the new list, serialised by
//! `writer`. A change thus costs `O(CHUNK + N / CHUNK)` reference-count increments, not a
//! copy of every entry: with 50 000 subscribers, about 500 instead of 50 000. A shard still
//! using the old list keeps its chunks alive until its batch ends, so there is no use after
//! free.
//!
//! A subscriber keeps its slot for life: an index the shard's route cache holds stays valid
//! for that list. A freed slot is a hole until a later subscriber takes it (the writer
//! reuses the most recently freed slot first), so the slots never outnumber the most
//! subscribers the shard ever had at once, rounded up to a chunk. An entry leaves the list
//! when its `Subscriber` is dropped, not when a `Disconnect` overflow closes its queue:
//! until then stats show that subscriber and its losses (the shard skips the dead queue).
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
//! | `Swap::store` (arc-swap: SeqCst) in `insert`/`remove` | `Swap::load` in the shard loop, after its Acquire load of `tail` | the new list, its chunks and its generation |
//! | `writer` lock (`closed`) | `writer` lock in `insert` | no subscriber is added after the shard's final sweep |
//!
//! Modelled in `loom-tests/tests/bus.rs`; the slot bookkeeping is checked against a plain
//! vector by this module's randomized test.

use std::collections::HashMap;

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

/// Slots per chunk: a change copies one chunk and the spine, at most `CHUNK + N / CHUNK`
/// pointers. 256 measured best of 128 and 256 from 1 000 to 100 000 subscribers
/// (`examples/subscribe_churn.rs`; docs/perf/journal.md, attempt 31).
const CHUNK: usize = 256;

/// A chunk of slots, shared between the lists that did not change it. A `std` `Arc`, also
/// under loom: a chunk is immutable once made and reaches the shard only inside a list,
/// which `Swap` publishes; counting it is not a protocol between threads, and loom would
/// only multiply the interleavings it explores.
type Chunk<E> = std::sync::Arc<Vec<Option<Entry<E>>>>;

/// A shard's subscribers by slot: `slots[i]` is the subscriber in slot `i`, or a hole. The
/// route cache and the dispatcher address subscribers by slot (`list.entries[i]`), so a
/// slot is never reused within one list.
pub(crate) struct Slots<E> {
    chunks: Vec<Chunk<E>>,
    /// Slots in use or holes: `chunks` hold exactly this many (the last chunk may be short).
    slots: usize,
    /// Subscribers (slots not holes).
    live: usize,
}

impl<E> Slots<E> {
    /// A list of `entries`, in slots `0..entries.len()`.
    pub(crate) fn from_vec(entries: Vec<Entry<E>>) -> Self {
        let (slots, live) = (entries.len(), entries.len());
        let mut chunks = Vec::new();
        let mut entries = entries.into_iter().map(Some).peekable();
        while entries.peek().is_some() {
            chunks.push(std::sync::Arc::new(entries.by_ref().take(CHUNK).collect()));
        }
        Slots { chunks, slots, live }
    }

    /// Slots, holes included: every slot index is below it.
    pub(crate) fn len(&self) -> usize {
        self.slots
    }

    /// The subscriber in slot `i`, if any.
    pub(crate) fn get(&self, i: usize) -> Option<&Entry<E>> {
        self.chunks.get(i / CHUNK).and_then(|c| c.get(i % CHUNK)).and_then(Option::as_ref)
    }

    /// Every subscriber, in slot order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Entry<E>> {
        self.chunks.iter().flat_map(|c| c.iter().flatten())
    }

    /// Every subscriber with its slot, in slot order.
    pub(crate) fn iter_slots(&self) -> impl Iterator<Item = (usize, &Entry<E>)> {
        self.chunks.iter().enumerate().flat_map(|(k, c)| {
            c.iter().enumerate().filter_map(move |(j, e)| e.as_ref().map(|e| (k * CHUNK + j, e)))
        })
    }

    /// This list with slot `i` set to `entry` (or made a hole): copies one chunk and the
    /// spine. `i` is at most `len()` (one past the end grows the list by a slot).
    fn with(&self, i: usize, entry: Option<Entry<E>>) -> Self {
        debug_assert!(i <= self.slots);
        let mut chunks = self.chunks.clone();
        if i / CHUNK == chunks.len() {
            chunks.push(std::sync::Arc::new(Vec::with_capacity(CHUNK)));
        }
        let mut chunk: Vec<Option<Entry<E>>> = Vec::with_capacity(CHUNK);
        chunk.extend(chunks[i / CHUNK].iter().cloned());
        if i % CHUNK == chunk.len() {
            chunk.push(None);
        }
        let live =
            self.live + usize::from(entry.is_some()) - usize::from(chunk[i % CHUNK].is_some());
        chunk[i % CHUNK] = entry;
        chunks[i / CHUNK] = std::sync::Arc::new(chunk);
        Slots { chunks, slots: self.slots.max(i + 1), live }
    }
}

impl<E> std::ops::Index<usize> for Slots<E> {
    type Output = Entry<E>;

    /// The subscriber in slot `i`: for slots the route cache or the batch got from this
    /// list, which are never holes.
    #[inline]
    fn index(&self, i: usize) -> &Entry<E> {
        match self.get(i) {
            Some(entry) => entry,
            None => unreachable!("slot {i} is a hole in this list"),
        }
    }
}

/// One immutable snapshot of a shard's subscribers.
pub(crate) struct List<E> {
    pub(crate) generation: u64,
    pub(crate) entries: Slots<E>,
}

struct WriterState {
    /// The shard has finished: no more subscribers.
    closed: bool,
    generation: u64,
    /// Where each subscriber is, by id.
    slot_of: HashMap<u64, usize>,
    /// Holes, the most recently freed last (reused first: its chunk is the likeliest to be
    /// warm).
    free: Vec<usize>,
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
            list: Swap::new(Arc::new(List { generation: 0, entries: Slots::from_vec(Vec::new()) })),
            writer: Mutex::new(WriterState {
                closed: false,
                generation: 0,
                slot_of: HashMap::new(),
                free: Vec::new(),
            }),
        }
    }

    /// The current list: one load per dispatch batch.
    pub(crate) fn load(&self) -> Arc<List<E>> {
        self.list.load()
    }

    /// Subscribers now.
    pub(crate) fn len(&self) -> usize {
        self.list.load().entries.live
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
        let list = self.list.load();
        let slot = state.free.pop().unwrap_or(list.entries.len());
        state.slot_of.insert(entry.id, slot);
        let entries = list.entries.with(slot, Some(entry));
        self.publish(&mut state, entries);
        Ok(())
    }

    /// Removes a subscriber: its slot becomes a hole.
    pub(crate) fn remove(&self, id: u64) {
        let mut state = self.writer.lock();
        let Some(slot) = state.slot_of.remove(&id) else {
            return;
        };
        let entries = self.list.load().entries.with(slot, None);
        state.free.push(slot);
        self.publish(&mut state, entries);
    }

    fn publish(&self, state: &mut WriterState, entries: Slots<E>) {
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
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::segment::Pool;
    use crate::subscription::{Matcher, Meta, Overflow};

    fn entry(id: u64, pool: &Arc<Pool<()>>) -> Entry<()> {
        let queue = SubQueue::new(1, Overflow::DropNewest, Meta::default(), Arc::clone(pool), None);
        Entry {
            id,
            start: 0,
            queue: Arc::new(queue),
            matcher: Matcher::All,
            route: None,
            filter: None,
        }
    }

    /// Random subscribes and removes, checked after each against a plain map of id to slot:
    /// every subscriber is at its slot, slots never move, holes are reused, every earlier
    /// snapshot is unchanged, and the slots never outnumber the most subscribers at once
    /// (rounded up to a chunk).
    #[test]
    fn slots_match_a_plain_model_under_churn() {
        let pool = Arc::new(Pool::new(1));
        let registry: Registry<()> = Registry::new();
        let mut model: HashMap<u64, usize> = HashMap::new();
        // Every thousandth list, with its (slot, id) pairs then.
        type Snapshot = (Arc<List<()>>, Vec<(usize, u64)>);
        let mut snapshots: Vec<Snapshot> = Vec::new();
        let (mut next_id, mut most) = (0u64, 0usize);
        let mut rng = 0x9E37_79B9_7F4A_7C15u64;
        // Miri interprets every step: a few chunks' worth there.
        let steps = if cfg!(miri) { 600 } else { 20_000 };
        for step in 0..steps {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            // Grow to a few chunks, then churn around that size.
            let subscribe =
                model.is_empty() || (rng % 100) < if step < steps / 2 { 60 } else { 50 };
            if subscribe {
                registry.insert(entry(next_id, &pool), || Some(0)).unwrap();
                next_id += 1;
            } else {
                let ids: Vec<u64> = model.keys().copied().collect();
                let id = ids[(rng >> 32) as usize % ids.len()];
                registry.remove(id);
                model.remove(&id);
            }
            let list = registry.load();
            if subscribe {
                let slot = list.entries.iter_slots().find(|(_, e)| e.id == next_id - 1).unwrap().0;
                model.insert(next_id - 1, slot);
            }
            most = most.max(model.len());
            assert_eq!(list.entries.live, model.len());
            assert_eq!(registry.len(), model.len());
            for (&id, &slot) in &model {
                assert_eq!(list.entries[slot].id, id, "subscriber {id} moved from slot {slot}");
            }
            let listed: Vec<(usize, u64)> =
                list.entries.iter_slots().map(|(i, e)| (i, e.id)).collect();
            assert_eq!(listed.len(), model.len());
            assert!(listed.windows(2).all(|w| w[0].0 < w[1].0), "slot order");
            assert_eq!(list.entries.iter().count(), model.len());
            assert!(list.entries.len() <= most.div_ceil(CHUNK) * CHUNK, "holes are reused");
            if step % (steps / 20) == 0 {
                snapshots.push((list, listed));
            }
        }
        for (list, listed) in snapshots {
            let now: Vec<(usize, u64)> =
                list.entries.iter_slots().map(|(i, e)| (i, e.id)).collect();
            assert_eq!(now, listed, "a stored list changed");
        }
    }
}
