//! The dispatcher shard loop.
//!
//! Each shard owns one ring cursor and the subscribers the bus assigned to it. Per batch it:
//! 1. waits for events in the ring (per the bus's [`WaitStrategy`]),
//! 2. loads its subscriber list once (after the Acquire load of `tail`: see `registry`),
//! 3. pushes each event into each matching subscriber's queue under that subscriber's
//!    overflow policy (only `Overflow::Block` ever makes it wait),
//! 4. releases the ring slots (its cursor), then
//! 5. wakes each subscriber it fed, once per batch, not once per event.
//!
//! When the ring is closed and drained, or if the shard panics, a guard closes the
//! registry and every queue so no receiver waits forever; a panicking shard also retires
//! its cursor and closes the ring, so the publisher sees `Closed` instead of a full ring.

use crate::bus::Shared;
use crate::event::{Delivery, Event};
use crate::queue::Pushed;
use crate::ring::Consumer;
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
        for entry in self.shared.shards[self.index].close().iter() {
            entry.queue.close();
        }
    }
}

/// Runs shard `index` until the ring is closed and drained.
pub(crate) fn run<E: Send + Sync + 'static>(shared: Arc<Shared<E>>, index: usize) {
    let finish = Finish { shared: &shared, index };
    let mut consumer = Consumer::new(Arc::clone(&shared.ring), index);
    let registry = &shared.shards[index];
    let strategy = shared.wait_strategy;
    let max_batch = MAX_BATCH.min(shared.ring.capacity() / 2).max(1);
    let mut fed: Vec<usize> = Vec::new();
    let mut fed_mark: Vec<bool> = Vec::new();
    loop {
        let available = consumer.wait(strategy);
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
        fed_mark.clear();
        fed_mark.resize(list.len(), false);
        for seq in next..end {
            consumer.read(seq, |event: &Arc<Event<E>>| {
                for (i, entry) in list.iter().enumerate() {
                    if seq < entry.start || entry.queue.is_dead() {
                        continue;
                    }
                    let delivery = Delivery(Arc::clone(event));
                    let pushed = entry.queue.push(delivery, strategy, &shared.shutdown);
                    if pushed == Pushed::Queued && !fed_mark[i] {
                        fed_mark[i] = true;
                        fed.push(i);
                    }
                }
            });
        }
        consumer.release(end);
        for i in fed.drain(..) {
            list[i].queue.notify();
        }
    }
    consumer.retire();
    drop(finish);
}
