//! A plain model of one shard's late binding (alias → route): a `HashMap` of bindings and
//! a `VecDeque` recency list, written from the docs of `Event::binds`, `Event::unbinds`,
//! `BusBuilder::binding_capacity` and `ShardStats`.
//!
//! Aliases are small indices here: the model needs equality, not the `Alias` type.

use std::collections::{HashMap, VecDeque};

use shardcast::Uuid;

/// The binding mark an event carries (the last of `.binds()` / `.unbinds()` called).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Neither.
    None,
    /// `.binds()`: with an alias and a route, records alias → route.
    Binds,
    /// `.unbinds()`: resolve the event, then forget the alias.
    Unbinds,
}

/// The five binding counters of `ShardStats`, as the model predicts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindingCounts {
    /// Bindings recorded (`.binds()` events with an alias and a route).
    pub binds: u64,
    /// Bindings removed by an `.unbinds()` event (only when one existed).
    pub unbinds: u64,
    /// Alias-only events resolved through a binding.
    pub binding_hits: u64,
    /// Alias-only events whose alias had no binding.
    pub binding_misses: u64,
    /// Bindings evicted, least recently used first, to stay within capacity.
    pub binding_evictions: u64,
}

/// One shard's binding cache, modelled.
#[derive(Debug, Clone)]
pub struct LateBindingModel {
    capacity: usize,
    bound: HashMap<usize, Uuid>,
    /// Most recently used at the front.
    recency: VecDeque<usize>,
    /// What the shard's counters should say.
    pub counts: BindingCounts,
}

impl LateBindingModel {
    /// At most `capacity` bindings; 0 keeps none.
    pub fn new(capacity: usize) -> Self {
        LateBindingModel {
            capacity,
            bound: HashMap::new(),
            recency: VecDeque::new(),
            counts: BindingCounts::default(),
        }
    }

    /// Bindings held now.
    pub fn len(&self) -> usize {
        self.bound.len()
    }

    /// Whether no binding is held.
    pub fn is_empty(&self) -> bool {
        self.bound.is_empty()
    }

    fn touch(&mut self, alias: usize) {
        self.recency.retain(|&a| a != alias);
        self.recency.push_front(alias);
    }

    /// The route an event is delivered with, applying its mark.
    pub fn resolve(
        &mut self,
        alias: Option<usize>,
        route: Option<Uuid>,
        mark: Mark,
    ) -> Option<Uuid> {
        let Some(alias) = alias else {
            return route;
        };
        let resolved = match (route, mark) {
            (Some(route), Mark::Binds) => {
                self.counts.binds += 1;
                if self.bound.insert(alias, route).is_some() {
                    // Re-binding replaces in place: no eviction, but it is a use.
                    self.touch(alias);
                } else {
                    self.recency.push_front(alias);
                    if self.bound.len() > self.capacity {
                        // With capacity 0 the new binding itself is the one to go.
                        let oldest = self.recency.pop_back().expect("recency tracks bound");
                        self.bound.remove(&oldest);
                        self.counts.binding_evictions += 1;
                    }
                }
                Some(route)
            }
            (Some(route), _) => Some(route),
            (None, _) => match self.bound.get(&alias).copied() {
                Some(route) => {
                    self.counts.binding_hits += 1;
                    self.touch(alias);
                    Some(route)
                }
                None => {
                    self.counts.binding_misses += 1;
                    None
                }
            },
        };
        if mark == Mark::Unbinds && self.bound.remove(&alias).is_some() {
            self.recency.retain(|&a| a != alias);
            self.counts.unbinds += 1;
        }
        debug_assert_eq!(self.bound.len(), self.recency.len());
        resolved
    }
}
