//! The shard-local routing caches: late binding (alias → route) and topic → subscribers.
//!
//! Both live on one shard's thread and are touched by nothing else: no locks, no atomics.
//! Every shard reads every event in sequence order, so every shard's `BindingCache` goes
//! through the same states and resolves every event identically without sharing anything.
//!
//! - [`BindingCache`]: bounded (LRU) map alias → route. An event with `.binds()`, an alias
//!   and a route records the binding; an event with an alias and no route is delivered with
//!   the bound route; `.unbinds()` resolves the event first, then forgets the alias.
//! - [`RouteCache`]: per topic, the indices of the shard's subscribers whose patterns match,
//!   computed on the first event of the topic and valid for one registry generation (see
//!   `registry`). Route and predicate filters run after it, per event, so the cache can only
//!   save work, never change what is delivered (a property test compares capacity 0).

use uuid::Uuid;

use crate::event::{Alias, Binding, Event};
use crate::lru::Lru;
use crate::registry::List;
use crate::stats::counters::Tally;
use crate::topic::{BuildPrecomputed, Topic};

pub(crate) struct BindingCache {
    map: Lru<Alias, Uuid, BuildPrecomputed>,
}

impl BindingCache {
    pub(crate) fn new(capacity: usize) -> Self {
        BindingCache { map: Lru::new(capacity) }
    }

    /// The event's route: its own, or the one bound to its alias. Applies the event's
    /// `binds`/`unbinds` mark.
    #[inline(always)]
    pub(crate) fn resolve<E>(&mut self, event: &Event<E>, tally: &mut Tally) -> Option<Uuid> {
        // Inline for the common case (no alias): an `Option<Uuid>` (17 bytes, align 1)
        // returned through memory and read back at other widths stalls store forwarding.
        match event.alias() {
            None => event.route(),
            Some(alias) => self.resolve_alias(event, alias, tally),
        }
    }

    fn resolve_alias<E>(
        &mut self,
        event: &Event<E>,
        alias: &Alias,
        tally: &mut Tally,
    ) -> Option<Uuid> {
        let resolved = match (event.route(), event.binding()) {
            (Some(route), Binding::Binds) => {
                tally.binds += 1;
                if self.map.insert(alias.clone(), route).is_some() {
                    tally.binding_evictions += 1;
                }
                Some(route)
            }
            (Some(route), _) => Some(route),
            (None, _) => match self.map.get(alias) {
                Some(&route) => {
                    tally.binding_hits += 1;
                    Some(route)
                }
                None => {
                    tally.binding_misses += 1;
                    None
                }
            },
        };
        if event.binding() == Binding::Unbinds && self.map.remove(alias).is_some() {
            tally.unbinds += 1;
        }
        resolved
    }

    #[allow(dead_code)] // used by tests and stats
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }
}

pub(crate) struct RouteCache {
    map: Lru<Topic, Vec<u32>, BuildPrecomputed>,
    /// The last topic looked up and its slot in `map`: a run of events on one topic skips
    /// the hash lookup (a pointer compare instead). Valid until `map` changes.
    last: Option<(Topic, u32)>,
    /// Registry generation the cached lists belong to.
    generation: u64,
    /// Buffers of evicted or invalidated lists, reused for new ones.
    spare: Vec<Vec<u32>>,
    /// The answer when caching is off (capacity 0).
    scratch: Vec<u32>,
}

impl RouteCache {
    pub(crate) fn new(capacity: usize) -> Self {
        RouteCache {
            map: Lru::new(capacity),
            last: None,
            generation: 0,
            spare: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Slots in `list.entries` of the subscribers whose patterns match `topic`.
    pub(crate) fn matches<E>(
        &mut self,
        topic: &Topic,
        list: &List<E>,
        tally: &mut Tally,
    ) -> &[u32] {
        if self.generation != list.generation {
            self.last = None;
            if !self.map.is_empty() {
                tally.route_invalidations += 1;
                let spare = &mut self.spare;
                self.map.clear(|v| spare.push(v));
            }
            self.generation = list.generation;
        }
        if let Some((last, slot)) = &self.last {
            if last.same(topic) {
                tally.route_hits += 1;
                return self.map.value(*slot);
            }
        }
        if let Some(slot) = self.map.get_index(topic) {
            tally.route_hits += 1;
            self.last = Some((topic.clone(), slot));
            return self.map.value(slot);
        }
        tally.route_misses += 1;
        let mut matching = self.spare.pop().unwrap_or_default();
        matching.clear();
        matching.extend(
            list.entries
                .iter_slots()
                .filter(|(_, e)| e.matcher.matches(topic))
                .map(|(i, _)| i as u32),
        );
        if self.map.capacity() == 0 {
            let old = std::mem::replace(&mut self.scratch, matching);
            self.spare.push(old);
            return &self.scratch;
        }
        let (slot, evicted) = self.map.insert_slot(topic.clone(), matching);
        if let Some((_, old)) = evicted {
            self.spare.push(old);
        }
        // An eviction may have reused the last topic's slot: remember the new one instead.
        self.last = Some((topic.clone(), slot));
        self.map.value(slot)
    }
}
