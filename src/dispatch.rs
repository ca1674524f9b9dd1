//! The dispatcher shard loop.
//!
//! Each shard owns one ring cursor and the subscribers the bus assigned to it. Per batch it:
//! 1. waits for events in the ring (per the bus's [`WaitStrategy`](crate::WaitStrategy)),
//! 2. loads its subscriber list once (after the Acquire load of `tail`: see `registry`),
//! 3. per event: late-binds the route (`routing::BindingCache`), finds the matching
//!    subscribers (`routing::RouteCache`), applies route and predicate filters, and pushes
//!    the event into each one's queue under its overflow policy (only `Overflow::Block`
//!    ever makes the shard wait),
//! 4. releases the ring slots (its cursor),
//! 5. wakes each subscriber it fed, once per batch, not once per event, and adds the
//!    batch's counts to its counters.
//!
//! When the ring is closed and drained, or if the shard panics, a guard closes the
//! registry and every queue so no receiver waits forever; a panicking shard also closes
//! the ring, so the publisher sees `Closed` instead of a full ring.

use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::bus::Shared;
use crate::event::{Delivery, Event};
use crate::queue::{DropReason, Pushed};
use crate::registry::List;
use crate::ring::Consumer;
use crate::routing::{BindingCache, RouteCache, Tally};
use crate::stats::topics::LocalTopics;
use crate::sync::atomic::Ordering;
use crate::sync::Arc;

/// Largest batch: bounds how long slots stay unreleased and how late the first wake-up is.
const MAX_BATCH: u64 = 256;

/// Closes everything this shard owns when the shard ends, normally or by panic.
struct Finish<'a, E> {
    shared: &'a Shared<E>,
    index: usize,
}

impl<E> Drop for Finish<'_, E> {
    fn drop(&mut self) {
        #[cfg(not(loom))]
        let panicking = std::thread::panicking();
        #[cfg(loom)]
        let panicking = false;
        if panicking {
            self.shared.ring.close();
        }
        for entry in self.shared.shards[self.index].close().entries.iter() {
            entry.queue.close();
        }
    }
}

fn count_drop(tally: &mut Tally, reason: DropReason) {
    tally.dropped += 1;
    match reason {
        DropReason::Newest => tally.dropped_newest += 1,
        DropReason::Oldest => tally.dropped_oldest += 1,
        DropReason::Disconnect => tally.dropped_disconnect += 1,
        DropReason::Shutdown => tally.dropped_shutdown += 1,
    }
}

/// A shard's own state: its caches and the batch's bookkeeping.
struct Shard<'a, E> {
    shared: &'a Shared<E>,
    index: usize,
    bindings: BindingCache,
    routes: RouteCache,
    topics: LocalTopics,
    /// Subscribers fed in this batch (indices into the list), each once.
    fed: Vec<usize>,
    fed_mark: Vec<bool>,
}

impl<E: Send + Sync + 'static> Shard<'_, E> {
    /// Delivers one event to the matching subscribers of `list`. `seq` is the event's ring
    /// sequence (`u64::MAX` for a `$SYS` event, which is not in the ring).
    fn deliver(&mut self, list: &List<E>, seq: u64, event: &Arc<Event<E>>, tally: &mut Tally) {
        let shared = self.shared;
        let strategy = shared.wait_strategy;
        let (delivered_before, dropped_before) = (tally.delivered, tally.dropped);
        let route = self.bindings.resolve(event, tally);
        let (fed, fed_mark) = (&mut self.fed, &mut self.fed_mark);
        for &i in self.routes.matches(event.topic(), list, tally) {
            let i = i as usize;
            let entry = &list.entries[i];
            if seq < entry.start || entry.queue.is_dead() {
                continue;
            }
            if entry.route.is_some() && entry.route != route {
                tally.filtered_out += 1;
                continue;
            }
            if let Some(filter) = &entry.filter {
                match catch_unwind(AssertUnwindSafe(|| filter(event))) {
                    Ok(true) => {}
                    Ok(false) => {
                        tally.filtered_out += 1;
                        continue;
                    }
                    Err(_) => {
                        tally.filter_panics += 1;
                        continue;
                    }
                }
            }
            let delivery = Delivery { event: Arc::clone(event), route };
            // Before a `Block` wait: wake everyone fed so far in this batch.
            let mut flush = || {
                for j in fed.drain(..) {
                    fed_mark[j] = false;
                    list.entries[j].queue.notify();
                }
            };
            let pushed = entry.queue.push(delivery, strategy, &shared.shutdown, &mut flush);
            match pushed {
                Pushed::Queued | Pushed::Evicted => {
                    tally.delivered += 1;
                    if !fed_mark[i] {
                        fed_mark[i] = true;
                        fed.push(i);
                    }
                }
                Pushed::Dropped(_) | Pushed::Gone => {}
            }
            match pushed {
                Pushed::Evicted => count_drop(tally, DropReason::Oldest),
                Pushed::Dropped(reason) => count_drop(tally, reason),
                _ => {}
            }
        }
        if let Some(table) = &shared.topics {
            if !event.topic().is_system() {
                self.topics.get(table, event.topic()).add_shard(
                    self.index,
                    tally.delivered - delivered_before,
                    tally.dropped - dropped_before,
                );
            }
        }
    }

    /// Starts a batch over `list`.
    fn begin(&mut self, list: &List<E>) {
        self.fed_mark.clear();
        self.fed_mark.resize(list.entries.len(), false);
    }

    /// Ends a batch: one wake-up per subscriber fed.
    fn end(&mut self, list: &List<E>) {
        for i in self.fed.drain(..) {
            list.entries[i].queue.notify();
        }
    }

    /// Delivers the `$SYS` events waiting in this shard's inbox. They are not counted in
    /// stats (no feedback loop: a stats event would otherwise cause the next one).
    fn deliver_system_events(&mut self) {
        let inbox = &self.shared.sys_inbox[self.index];
        // Acquire: pairs with the Release store in `Shared::post_system_event`.
        if !inbox.pending.swap(false, Ordering::Acquire) {
            return;
        }
        let events = std::mem::take(&mut *inbox.events.lock());
        let list = self.shared.shards[self.index].load();
        self.begin(&list);
        let mut uncounted = Tally::default();
        for event in &events {
            self.deliver(&list, u64::MAX, event, &mut uncounted);
        }
        self.end(&list);
    }
}

/// Runs shard `index` until the ring is closed and drained.
pub(crate) fn run<E: Send + Sync + 'static>(shared: Arc<Shared<E>>, index: usize) {
    let finish = Finish { shared: &shared, index };
    let mut consumer = Consumer::new(Arc::clone(&shared.ring), index);
    let registry = &shared.shards[index];
    let counters = &shared.counters[index];
    let strategy = shared.wait_strategy;
    let max_batch = MAX_BATCH.min(shared.ring.capacity() / 2).max(1);
    let mut shard = Shard {
        shared: &shared,
        index,
        bindings: BindingCache::new(shared.binding_capacity),
        routes: RouteCache::new(shared.route_cache_capacity),
        topics: LocalTopics::new(),
        fed: Vec::new(),
        fed_mark: Vec::new(),
    };
    // Relaxed: only a hint to stop waiting; `deliver_system_events` swaps with Acquire.
    let sys_pending = || shared.sys_inbox[index].pending.load(Ordering::Relaxed);
    loop {
        let available = consumer.wait(strategy, &sys_pending);
        shard.deliver_system_events();
        let next = consumer.next_seq();
        if available.end == next {
            if available.closed {
                break;
            }
            continue;
        }
        let end = available.end.min(next + max_batch);
        // After the Acquire load of `tail` in `wait`: see the registry's "Start sequence".
        let list = registry.load();
        shard.begin(&list);
        let mut tally = Tally::default();
        for seq in next..end {
            consumer.read(seq, |event: &Arc<Event<E>>| {
                tally.dispatched += 1;
                shard.deliver(&list, seq, event, &mut tally);
            });
        }
        consumer.release(end);
        shard.end(&list);
        counters.add(&tally);
    }
    consumer.retire();
    drop(finish);
}
