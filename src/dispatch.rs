//! The dispatcher shard loop.
//!
//! Each shard owns one ring cursor and the subscribers the bus assigned to it. Per batch it:
//! 1. waits for events in the ring (per the bus's [`WaitStrategy`](crate::WaitStrategy)),
//! 2. loads its subscriber list once (after the Acquire load of `tail`: see `registry`),
//! 3. per event, in ring order: late-binds the route (`routing::BindingCache`), finds the
//!    matching subscribers (`routing::RouteCache`) and applies route and predicate
//!    filters, noting per subscriber which of the batch's events it gets,
//! 4. per subscriber: pushes its events, in ring order, into its queue under its overflow
//!    policy (only `Overflow::Block` ever makes the shard wait). Subscriber-major order
//!    keeps one queue's cache lines hot for a whole run of pushes, where event-major order
//!    touched every matching queue once per event. Each subscriber still gets its events
//!    in ring order; no order across subscribers is promised,
//! 5. releases the ring slots (its cursor),
//! 6. wakes each subscriber it fed, once per batch, not once per event, and adds the
//!    batch's counts to its counters.
//!
//! When the ring is closed and drained, or if the shard panics, a guard closes the
//! registry and every queue so no receiver waits forever, then retires the shard's cursor
//! (so neither the publisher, nor a flush, nor `Bus::close` waits for it again); a
//! panicking shard also closes the ring, so the publisher sees `Closed` instead of a full
//! ring.

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
        // Last: a retired cursor tells `Bus::close` (and a flush) that this shard is done,
        // its queues included.
        self.shared.ring.retire(self.index);
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

/// What the first pass decided about one (event, subscriber) pair. Filter outcomes are
/// counted in the second pass, in order with the pushes: a queue that dies mid-batch (a
/// `Disconnect` overflow) must count neither pushes nor filter outcomes after its death,
/// exactly as when each event was handled whole before the next.
#[derive(Clone, Copy)]
enum Want {
    /// Push the event at this position of the batch.
    Push(u32),
    /// The route or the predicate filtered it out.
    Filtered,
    /// The predicate panicked.
    FilterPanicked,
}

/// One event of the batch, as the first pass left it.
struct Routed<E> {
    event: Arc<Event<E>>,
    route: Option<uuid::Uuid>,
    /// Deliveries and losses, for the per-topic counters.
    delivered: u64,
    dropped: u64,
}

/// A shard's own state: its caches and the batch's bookkeeping, reused across batches.
struct Shard<'a, E> {
    shared: &'a Shared<E>,
    index: usize,
    bindings: BindingCache,
    routes: RouteCache,
    topics: LocalTopics,
    /// The batch's events in ring order (first pass).
    batch: Vec<Routed<E>>,
    /// Per subscriber (index into the list): what happens to it for each matching event of
    /// the batch, in ring order.
    wants: Vec<Vec<Want>>,
    /// Subscribers with a non-empty `wants`, in the order they were first matched.
    touched: Vec<usize>,
    /// Subscribers fed and not yet woken (only non-empty mid-batch, before a `Block` wait).
    fed: Vec<usize>,
}

impl<E: Send + Sync + 'static> Shard<'_, E> {
    /// First pass over one event: resolves its route, finds the matching subscribers of
    /// `list` and records, per subscriber, that it gets this event. `seq` is the event's
    /// ring sequence (`u64::MAX` for a `$SYS` event, which is not in the ring).
    fn route(&mut self, list: &List<E>, seq: u64, event: &Arc<Event<E>>, tally: &mut Tally) {
        let route = self.bindings.resolve(event, tally);
        let position = self.batch.len() as u32;
        let mut wanted = false;
        let (wants, touched) = (&mut self.wants, &mut self.touched);
        for &i in self.routes.matches(event.topic(), list, tally) {
            let i = i as usize;
            let entry = &list.entries[i];
            // Dead queues are skipped before filters run, so `filtered_out` counts live
            // subscribers only; `push_all` checks again, in order with the pushes.
            if seq < entry.start || entry.queue.is_dead() {
                continue;
            }
            let want = if entry.route.is_some() && entry.route != route {
                Want::Filtered
            } else {
                match &entry.filter {
                    None => Want::Push(position),
                    Some(filter) => match catch_unwind(AssertUnwindSafe(|| filter(event))) {
                        Ok(true) => Want::Push(position),
                        Ok(false) => Want::Filtered,
                        Err(_) => Want::FilterPanicked,
                    },
                }
            };
            if wants[i].is_empty() {
                touched.push(i);
            }
            wants[i].push(want);
            wanted |= matches!(want, Want::Push(_));
        }
        if wanted {
            self.batch.push(Routed { event: Arc::clone(event), route, delivered: 0, dropped: 0 });
        } else {
            // Nothing to push: no reference taken (a shard with no taker for this event
            // must not touch its reference count), and its topic is counted right here.
            self.count_topic(event, 0, 0);
        }
    }

    /// Second pass: pushes each touched subscriber's events into its queue, one
    /// subscriber at a time, so its queue's cache lines stay hot for the whole run of
    /// pushes instead of being revisited once per event.
    fn push_all(&mut self, list: &List<E>, tally: &mut Tally) {
        let shared = self.shared;
        let strategy = shared.wait_strategy;
        let (batch, wants, fed) = (&mut self.batch, &mut self.wants, &mut self.fed);
        for &i in &self.touched {
            let queue = &list.entries[i].queue;
            for &want in &wants[i] {
                // Checked per event: a `Disconnect` overflow closes the queue mid-run.
                if queue.is_dead() {
                    break;
                }
                let position = match want {
                    Want::Push(position) => position,
                    Want::Filtered => {
                        tally.filtered_out += 1;
                        continue;
                    }
                    Want::FilterPanicked => {
                        tally.filter_panics += 1;
                        continue;
                    }
                };
                let routed = &mut batch[position as usize];
                let delivery = Delivery { event: Arc::clone(&routed.event), route: routed.route };
                // Before a `Block` wait: wake everyone fed so far in this batch.
                let mut flush = || {
                    for j in fed.drain(..) {
                        list.entries[j].queue.notify();
                    }
                };
                let pushed = queue.push(delivery, strategy, &shared.shutdown, &mut flush);
                match pushed {
                    Pushed::Queued => {
                        tally.delivered += 1;
                        routed.delivered += 1;
                    }
                    Pushed::Evicted => {
                        tally.delivered += 1;
                        routed.delivered += 1;
                        routed.dropped += 1;
                        count_drop(tally, DropReason::Oldest);
                    }
                    Pushed::Dropped(reason) => {
                        routed.dropped += 1;
                        count_drop(tally, reason);
                    }
                    Pushed::Gone => {}
                }
                // `fed.last()`, not a flag: a `Block` wait's flush drains `fed`, and what is
                // pushed after it needs its own wake-up at the end of the batch.
                if matches!(pushed, Pushed::Queued | Pushed::Evicted) && fed.last() != Some(&i) {
                    fed.push(i);
                }
            }
            wants[i].clear();
        }
        self.touched.clear();
    }

    /// Ends a batch: one wake-up per subscriber fed, the per-topic counters, and the
    /// batch's events let go.
    fn end(&mut self, list: &List<E>) {
        for i in self.fed.drain(..) {
            list.entries[i].queue.notify();
        }
        let mut batch = std::mem::take(&mut self.batch);
        for routed in batch.drain(..) {
            self.count_topic(&routed.event, routed.delivered, routed.dropped);
        }
        self.batch = batch; // Keeps its allocation for the next batch.
    }

    /// Adds one event's deliveries and losses to its topic's counters (if stats are on).
    fn count_topic(&mut self, event: &Event<E>, delivered: u64, dropped: u64) {
        if let Some(table) = &self.shared.topics {
            if !event.topic().is_system() {
                self.topics.get(table, event.topic()).add_shard(self.index, delivered, dropped);
            }
        }
    }

    /// Starts a batch over `list`.
    fn begin(&mut self, list: &List<E>) {
        debug_assert!(self.batch.is_empty() && self.touched.is_empty() && self.fed.is_empty());
        if self.wants.len() < list.entries.len() {
            self.wants.resize_with(list.entries.len(), Vec::new);
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
            self.route(&list, u64::MAX, event, &mut uncounted);
        }
        self.push_all(&list, &mut uncounted);
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
        batch: Vec::new(),
        wants: Vec::new(),
        touched: Vec::new(),
        fed: Vec::new(),
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
                shard.route(&list, seq, event, &mut tally);
            });
        }
        shard.push_all(&list, &mut tally);
        consumer.release(end);
        shard.end(&list);
        counters.add(&tally);
    }
    drop(consumer);
    drop(finish); // closes the queues, then retires the cursor
}
