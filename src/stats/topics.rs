//! Per-topic counters, aggregated by topic prefix in a bounded table.
//!
//! `orders.eu.created` counts under its first `levels` tokens (`orders.eu` at the default
//! 2). The table holds at most `capacity` prefixes; past that, new prefixes fold into
//! [`OVERFLOW`], so cardinality stays bounded whatever topics users invent. Inserts take a
//! write lock, so racing inserts at the cap converge to at most `capacity + 1` entries
//! (the `+ 1` is the overflow entry).
//!
//! The hot path never takes the lock: the publisher and each shard keep a small local map
//! from `Topic` (hash precomputed) to the prefix's counters ([`LocalTopics`]) and go to the
//! shared table only on a local miss. `published` has one writer (the publisher); each
//! shard writes its own padded `delivered`/`dropped` slot; snapshots sum the slots.

use std::collections::HashMap;

use crossbeam_utils::CachePadded;

use crate::sync::atomic::{AtomicU64, Ordering};
use crate::sync::{Arc, RwLock};
use crate::topic::{BuildPrecomputed, Topic};

/// The entry that new prefixes fold into once the table is full.
pub const OVERFLOW: &str = "__overflow__";

/// Local caches are cleared when they grow past this (they are only caches). Small in unit
/// tests, so that they clear often.
const LOCAL_LIMIT: usize = if cfg!(test) { 8 } else { 4096 };

#[derive(Default)]
struct ShardSlot {
    delivered: AtomicU64,
    dropped: AtomicU64,
}

pub(crate) struct TopicCounters {
    published: CachePadded<AtomicU64>,
    shards: Box<[CachePadded<ShardSlot>]>,
}

impl TopicCounters {
    fn new(shards: usize) -> Self {
        TopicCounters {
            published: CachePadded::new(AtomicU64::new(0)),
            shards: (0..shards).map(|_| CachePadded::new(ShardSlot::default())).collect(),
        }
    }

    /// Publisher only (single writer).
    pub(crate) fn add_published(&self) {
        // Relaxed: single writer, a plain counter with no partner.
        let c = &*self.published;
        c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    /// Shard `shard` only (single writer per slot).
    pub(crate) fn add_shard(&self, shard: usize, delivered: u64, dropped: u64) {
        let slot = &self.shards[shard];
        // Relaxed: single writer per slot, plain counters with no partner.
        if delivered != 0 {
            slot.delivered
                .store(slot.delivered.load(Ordering::Relaxed) + delivered, Ordering::Relaxed);
        }
        if dropped != 0 {
            slot.dropped.store(slot.dropped.load(Ordering::Relaxed) + dropped, Ordering::Relaxed);
        }
    }

    fn totals(&self) -> (u64, u64, u64) {
        let (mut delivered, mut dropped) = (0, 0);
        for slot in self.shards.iter() {
            // Relaxed: independent monotonic counters.
            delivered += slot.delivered.load(Ordering::Relaxed);
            dropped += slot.dropped.load(Ordering::Relaxed);
        }
        (self.published.load(Ordering::Relaxed), delivered, dropped)
    }
}

pub(crate) struct TopicTable {
    levels: usize,
    capacity: usize,
    shards: usize,
    map: RwLock<HashMap<Box<str>, Arc<TopicCounters>>>,
    overflow: Arc<TopicCounters>,
}

impl TopicTable {
    pub(crate) fn new(levels: usize, capacity: usize, shards: usize) -> Self {
        TopicTable {
            levels,
            capacity,
            shards,
            map: RwLock::new(HashMap::new()),
            overflow: Arc::new(TopicCounters::new(shards)),
        }
    }

    /// The counters of `topic`'s prefix, inserting it if there is room.
    pub(crate) fn counters(&self, topic: &Topic) -> Arc<TopicCounters> {
        let prefix = prefix(topic, self.levels);
        // `__overflow__` is a valid topic token: such a prefix counts in the overflow row,
        // so no two rows ever share a name.
        if prefix == OVERFLOW {
            return Arc::clone(&self.overflow);
        }
        if let Some(c) = self.map.read().get(prefix) {
            return Arc::clone(c);
        }
        let mut map = self.map.write();
        if let Some(c) = map.get(prefix) {
            return Arc::clone(c);
        }
        if map.len() >= self.capacity {
            return Arc::clone(&self.overflow);
        }
        let c = Arc::new(TopicCounters::new(self.shards));
        map.insert(prefix.into(), Arc::clone(&c));
        c
    }

    /// `(prefix, published, delivered, dropped)`, sorted by prefix; the overflow entry last
    /// if it counted anything.
    pub(crate) fn snapshot(&self) -> Vec<(String, u64, u64, u64)> {
        let mut rows: Vec<_> = self
            .map
            .read()
            .iter()
            .map(|(prefix, c)| {
                let (p, d, x) = c.totals();
                (prefix.to_string(), p, d, x)
            })
            .collect();
        rows.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let (p, d, x) = self.overflow.totals();
        if p + d + x != 0 {
            rows.push((OVERFLOW.to_owned(), p, d, x));
        }
        rows
    }

    #[allow(dead_code)] // used by tests
    pub(crate) fn len(&self) -> usize {
        self.map.read().len()
    }
}

/// The first `levels` tokens of `topic`.
fn prefix(topic: &Topic, levels: usize) -> &str {
    let s = topic.as_str();
    if levels >= topic.token_count() {
        return s;
    }
    // `levels >= 1` (the builder checks); the end of token `levels - 1` is the byte before
    // the `levels`-th dot.
    let end = s.match_indices('.').nth(levels - 1).map_or(s.len(), |(i, _)| i);
    &s[..end]
}

/// A thread's own cache from topic to its prefix counters: no lock on the hot path, and
/// for a run of events on one topic (the common case) not even a hash lookup.
///
/// The counters are held once, in `counters`; the map and `last` hold indices into it, so
/// a change of topic touches no reference count. (It did: with a `last` that held its own
/// `Arc`, every change of topic incremented and decremented a count that the publisher's
/// and every shard's cache shared, a line bounced between cores per event on an
/// interleaved stream.)
pub(crate) struct LocalTopics {
    map: HashMap<Topic, usize, BuildPrecomputed>,
    counters: Vec<Arc<TopicCounters>>,
    last: Option<(Topic, usize)>,
}

impl LocalTopics {
    pub(crate) fn new() -> Self {
        LocalTopics { map: HashMap::default(), counters: Vec::new(), last: None }
    }

    pub(crate) fn get(&mut self, table: &TopicTable, topic: &Topic) -> &TopicCounters {
        let index = match &self.last {
            Some((t, index)) if t.same(topic) => *index,
            _ => {
                let index = match self.map.get(topic) {
                    Some(&index) => index,
                    None => {
                        if self.map.len() >= LOCAL_LIMIT {
                            self.map.clear();
                            self.counters.clear();
                        }
                        self.counters.push(table.counters(topic));
                        let index = self.counters.len() - 1;
                        self.map.insert(topic.clone(), index);
                        index
                    }
                };
                self.last = Some((topic.clone(), index));
                index
            }
        };
        &self.counters[index]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        let t = |s| Topic::new(s).unwrap();
        assert_eq!(prefix(&t("orders.eu.created"), 2), "orders.eu");
        assert_eq!(prefix(&t("orders.eu.created"), 1), "orders");
        assert_eq!(prefix(&t("orders"), 2), "orders");
        assert_eq!(prefix(&t("a.b"), 2), "a.b");
        assert_eq!(prefix(&t("a.b.c.d"), 3), "a.b.c");
    }

    #[test]
    fn racing_inserts_at_the_cap_stay_bounded() {
        let table = std::sync::Arc::new(TopicTable::new(2, 16, 1));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let table = std::sync::Arc::clone(&table);
                std::thread::spawn(move || {
                    // Under miri, fewer (still far past the cap of 16).
                    for i in 0..if cfg!(miri) { 40 } else { 200 } {
                        let topic = Topic::new(&format!("t{t}.p{i}.x")).unwrap();
                        table.counters(&topic).add_published();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(table.len(), 16);
        let rows = table.snapshot();
        assert!(rows.len() <= 17, "{}", rows.len());
        assert_eq!(rows.last().unwrap().0, OVERFLOW);
        // Each named prefix belongs to one thread, so its single-writer count is exact.
        let named: u64 = rows.iter().filter(|r| r.0 != OVERFLOW).map(|r| r.1).sum();
        assert_eq!(named, 16);
    }

    #[test]
    fn local_cache_hands_out_each_topics_own_counters_across_clears() {
        let table = TopicTable::new(3, 64, 1);
        let topics: Vec<Topic> =
            (0..20).map(|i| Topic::new(&format!("local.t{i}.x")).unwrap()).collect();
        let mut local = LocalTopics::new();
        let mut want = vec![0u64; topics.len()];
        // Runs of one topic, then jumps: hits on `last`, hits in the map, misses, and a
        // clear every LOCAL_LIMIT (8) distinct topics.
        for step in 0..300usize {
            let i = (step / 3 * 7) % topics.len();
            let counters = local.get(&table, &topics[i]);
            assert!(std::ptr::eq(counters, &*table.counters(&topics[i])), "step {step}");
            counters.add_published();
            want[i] += 1;
        }
        for (i, topic) in topics.iter().enumerate() {
            assert_eq!(table.counters(topic).totals().0, want[i], "{topic:?}");
        }
    }
}
