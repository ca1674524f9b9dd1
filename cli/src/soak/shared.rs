//! The state the publisher, the receivers, the monitor and the main thread share: the
//! violations seen ([`Failures`]), the progress counters, and each subscriber's [`Ledger`]
//! (what the soak counted for it).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock};

use shardcast::Bus;

use super::plan::{Payload, Verdict};

/// Violations printed as they happen (all are counted, the first 100 kept for the end).
pub(super) const PRINTED_VIOLATIONS: usize = 20;

pub(super) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every violation seen: counted, printed as it happens (the first few), kept for the end.
#[derive(Default)]
pub(super) struct Failures {
    pub(super) list: Mutex<Vec<String>>,
    pub(super) count: AtomicUsize,
}

impl Failures {
    fn record(&self, what: String) {
        let n = self.count.fetch_add(1, Ordering::SeqCst);
        if n < PRINTED_VIOLATIONS {
            eprintln!("soak: violation: {what}");
        }
        let mut list = lock(&self.list);
        if list.len() < 100 {
            list.push(what);
        }
    }

    pub(super) fn any(&self) -> bool {
        self.count.load(Ordering::SeqCst) > 0
    }
}

/// What the publisher, the receivers, the monitor and the main thread share.
pub(super) struct Shared {
    pub(super) bus: Bus<Payload>,
    pub(super) failures: Failures,
    /// The publisher is done: receivers stop sleeping and stalling, and drain.
    pub(super) draining: AtomicBool,
    /// Set (under the write lock) before `Bus::close`. A receiver leaves only under the read
    /// lock with this still false, so no subscriber is dropped once the close began: the
    /// final stats snapshot still lists every subscriber that lived until the close (a
    /// registry sweep on unsubscribe forgets closed queues).
    pub(super) closing: RwLock<bool>,
    /// Events published, subscribers created, receive results: the progress check's motion.
    pub(super) published: AtomicU64,
    pub(super) created: AtomicUsize,
    pub(super) receives: AtomicU64,
    /// The publisher is in a phase that publishes (not an idle gap, not done).
    pub(super) publisher_busy: AtomicBool,
    /// Σ capacities of subscribers not dropped yet, and its peak (the memory bound).
    pub(super) live_capacity: AtomicU64,
    pub(super) peak_capacity: AtomicU64,
}

impl Shared {
    pub(super) fn new(bus: Bus<Payload>) -> Shared {
        Shared {
            bus,
            failures: Failures::default(),
            draining: AtomicBool::new(false),
            closing: RwLock::new(false),
            published: AtomicU64::new(0),
            created: AtomicUsize::new(0),
            receives: AtomicU64::new(0),
            publisher_busy: AtomicBool::new(true),
            live_capacity: AtomicU64::new(0),
            peak_capacity: AtomicU64::new(0),
        }
    }

    pub(super) fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    pub(super) fn fail(&self, what: String) {
        self.failures.record(what);
    }
}

/// What the soak counted for one subscriber, written by the publisher thread before each
/// publish. Relaxed is enough: a receiver reads it after receiving an event published later
/// (the bus's publish/dispatch/queue chain orders the two), or after the publisher is done.
#[derive(Default)]
pub(super) struct Ledger {
    pub(super) matched: AtomicU64,
    pub(super) wanted: AtomicU64,
    pub(super) panics: AtomicU64,
    /// The subscriber left: the publisher stops counting for it.
    pub(super) gone: AtomicBool,
}

#[derive(Clone, Copy, Default)]
pub(super) struct Counts {
    pub(super) matched: u64,
    pub(super) wanted: u64,
    pub(super) panics: u64,
}

impl Counts {
    pub(super) fn filtered(self) -> u64 {
        self.matched - self.wanted
    }
}

pub(super) fn bump(counter: &AtomicU64) {
    // Relaxed load and store: one writer (see `Ledger`).
    counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl Ledger {
    pub(super) fn count(&self, verdict: Verdict) {
        match verdict {
            Verdict::Unmatched => return,
            Verdict::Wanted => bump(&self.wanted),
            Verdict::Panics => bump(&self.panics),
            Verdict::Filtered => {}
        }
        bump(&self.matched);
    }

    pub(super) fn read(&self) -> Counts {
        Counts {
            matched: self.matched.load(Ordering::Relaxed),
            wanted: self.wanted.load(Ordering::Relaxed),
            panics: self.panics.load(Ordering::Relaxed),
        }
    }
}
