//! Internals exposed for the criterion benches only (`benches/routing.rs`). Not API.

use crate::queue::SubQueue;
use crate::registry::{Entry, List, Slots};
use crate::routing::RouteCache;
use crate::segment::Pool;
use crate::stats::counters::Tally;
use crate::subscription::Meta;
use crate::subscription::{Matcher, Overflow};
use crate::sync::Arc;
use crate::topic::{Pattern, Topic};

/// A shard's route cache over a fixed subscriber list with one pattern each.
pub struct RouteCacheProbe {
    cache: RouteCache,
    list: List<()>,
    tally: Tally,
}

impl RouteCacheProbe {
    /// One subscriber per pattern; `capacity` 0 turns caching off.
    pub fn new(patterns: &[Pattern], capacity: usize) -> Self {
        let pool = Arc::new(Pool::new(1));
        let entries = patterns
            .iter()
            .enumerate()
            .map(|(i, p)| Entry {
                id: i as u64,
                start: 0,
                queue: Arc::new(SubQueue::<()>::new(
                    1,
                    Overflow::DropNewest,
                    Meta::default(),
                    Arc::clone(&pool),
                    None,
                )),
                matcher: Matcher::Any(std::sync::Arc::new([p.clone()])),
                route: None,
                filter: None,
            })
            .collect();
        RouteCacheProbe {
            cache: RouteCache::new(capacity),
            list: List { generation: 1, entries: Slots::from_vec(entries) },
            tally: Tally::default(),
        }
    }

    /// How many subscribers match `topic`, through the cache (the shard's real path).
    pub fn matching(&mut self, topic: &Topic) -> usize {
        self.cache.matches(topic, &self.list, &mut self.tally).len()
    }
}
