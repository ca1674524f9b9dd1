//! What dropped subscribers counted, kept per name and shard, so that totals over
//! subscribers never go down when one is dropped.
//!
//! # Folding
//! `Subscriber::drop` folds the subscriber's counters into its row ([`Retired::fold`]) first,
//! under the table's lock, before its receiver disconnects; `Shared::stats` reads the rows
//! and the live subscribers' counters under the same lock and skips the folded ones. So a
//! snapshot counts each subscriber exactly once: live (then a later fold reads at least as
//! much), or folded. Folding before the entry leaves the list (`Registry::remove`, which
//! follows the disconnect) matters: a subscriber removed but not yet folded would be in
//! neither place.
//!
//! # What the fold cannot see
//! The shard may push into the queue after the fold: it stops only when it sees the
//! receiver gone (`SubQueue::is_dead`, checked per run) or loads the list without the entry
//! (per batch). Those late deliveries and losses are counted by the shard's own counters at
//! once, and in the row when the queue is dropped ([`Retired::settle`]): the queue's last
//! reference goes only after every list that holds it, the shard's included, so its
//! counters are final there. The settle adds what each raw counter gained since the fold,
//! so no delivery is lost and none is counted twice.
//!
//! One transient remains, the same one a live subscriber's `delivered` has: it is
//! `matched - unqueued`, two counters the shard bumps one after the other
//! (`SubQueue::count_drops`), so a read that falls between the two stores of a loss counts
//! the lost events (at most one run, 16 events) as delivered too. If the fold is that read,
//! the row's `delivered` is that much too high until the settle corrects it.
//!
//! # Locks
//! `table`, then a `Latency`'s histogram lock (the fold merges the latency samples under
//! it). A queue may be dropped, and so settle, with a registry's writer lock held (a list
//! edit drops the old list): nothing holds `table` while it takes a writer lock, or while
//! it drops a list or a queue (`Shared::stats` drops its lists after the lock).

use std::collections::HashMap;

use super::snapshot::RetiredSubscriberStats;
use crate::sync::{Mutex, MutexGuard};

/// The row that subscribers given no name fold into, so that per-connection subscribers
/// left with their default names (`sub-<id>`) do not grow the table without bound.
pub const UNNAMED: &str = "sub-*";

/// A subscriber's counters, raw: `delivered` is `matched - unqueued` (see `SubQueue`), kept
/// apart so that each field only grows, and the settle adds non-negative differences.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) matched: u64,
    pub(crate) unqueued: u64,
    pub(crate) consumed: u64,
    pub(crate) dropped: u64,
    pub(crate) lagged_reports: u64,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.matched += other.matched;
        self.unqueued += other.unqueued;
        self.consumed += other.consumed;
        self.dropped += other.dropped;
        self.lagged_reports += other.lagged_reports;
    }

    /// What each counter gained since `before` (a read of the same queue).
    fn since(&self, before: &Counts) -> Counts {
        Counts {
            matched: self.matched.saturating_sub(before.matched),
            unqueued: self.unqueued.saturating_sub(before.unqueued),
            consumed: self.consumed.saturating_sub(before.consumed),
            dropped: self.dropped.saturating_sub(before.dropped),
            lagged_reports: self.lagged_reports.saturating_sub(before.lagged_reports),
        }
    }
}

/// A row's key: the subscriber's name ([`UNNAMED`] if it was given none) and its shard.
pub(crate) type Key = (String, usize);

#[derive(Default)]
struct Row {
    counts: Counts,
    subscribers: u64,
}

#[derive(Default)]
pub(crate) struct Table {
    rows: HashMap<Key, Row>,
    /// Folded subscribers whose queue lives on (a shard may still push to it), by id: their
    /// row and what the fold read.
    pending: HashMap<u64, (Key, Counts)>,
}

/// The retired rows of one bus.
#[derive(Default)]
pub(crate) struct Retired {
    table: Mutex<Table>,
}

impl Retired {
    /// Folds subscriber `id` into row `key`, once; `read` reads its counters under the lock
    /// (and moves, at the same instant, anything else a snapshot must count once).
    pub(crate) fn fold(&self, id: u64, key: Key, read: impl FnOnce() -> Counts) {
        let mut table = self.table.lock();
        let counts = read();
        let row = table.rows.entry(key.clone()).or_default();
        row.counts.add(&counts);
        row.subscribers += 1;
        table.pending.insert(id, (key, counts));
    }

    /// Subscriber `id`'s queue is being dropped and counted `last` in all: adds what it
    /// counted after its fold, if it was folded.
    pub(crate) fn settle(&self, id: u64, last: Counts) {
        let mut table = self.table.lock();
        if let Some((key, folded)) = table.pending.remove(&id) {
            if let Some(row) = table.rows.get_mut(&key) {
                row.counts.add(&last.since(&folded));
            }
        }
    }

    /// The table, locked, for a snapshot.
    pub(crate) fn lock(&self) -> View<'_> {
        View(self.table.lock())
    }
}

/// The table under its lock: what `Shared::stats` reads.
pub(crate) struct View<'a>(MutexGuard<'a, Table>);

impl View<'_> {
    /// Whether subscriber `id` is folded, so a snapshot must not count it as live.
    pub(crate) fn is_folded(&self, id: u64) -> bool {
        self.0.pending.contains_key(&id)
    }

    /// The rows, sorted by name, then shard.
    pub(crate) fn rows(&self) -> Vec<RetiredSubscriberStats> {
        let mut rows: Vec<RetiredSubscriberStats> = self
            .0
            .rows
            .iter()
            .map(|((name, shard), row)| {
                let c = &row.counts;
                RetiredSubscriberStats {
                    name: name.clone(),
                    shard: *shard,
                    subscribers: row.subscribers,
                    // Never below `consumed`: each fold and settle read `unqueued` before
                    // `matched` (see `SubQueue::counts`).
                    delivered: c.matched.saturating_sub(c.unqueued).max(c.consumed),
                    consumed: c.consumed,
                    dropped: c.dropped,
                    lagged_reports: c.lagged_reports,
                }
            })
            .collect();
        rows.sort_unstable_by(|a, b| (&a.name, a.shard).cmp(&(&b.name, b.shard)));
        rows
    }
}
