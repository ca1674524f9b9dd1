//! The dispatcher shard loop.
//!
//! Each shard owns one ring cursor and the subscribers the bus assigned to it. Per batch it:
//! 1. waits for events in the ring (per the bus's [`WaitStrategy`](crate::WaitStrategy)),
//! 2. loads its subscriber list once (after the Acquire load of `tail`: see `registry`),
//! 3. per event, in ring order: late-binds the route (`routing::BindingCache`), finds the
//!    matching subscribers (`routing::RouteCache`) and applies route and predicate
//!    filters, noting per subscriber which of the batch's events it gets,
//! 4. per segment: adds one reference per (subscriber, segment) run it will push (one
//!    read-modify-write per segment per batch, counted during step 3),
//! 5. per subscriber: pushes one entry per run (the subscriber's events of one segment, as
//!    a bitmask) into its queue under its overflow policy (only `Overflow::Block` ever
//!    makes the shard wait). Subscriber-major order keeps one queue's cache lines hot for
//!    a whole run of pushes. Each subscriber still gets its events in ring order; no order
//!    across subscribers is promised,
//! 6. wakes each subscriber it fed, once per batch, not once per event, and releases its
//!    reference on every segment that is over (see `segment`; an idle shard seals the
//!    segment it is in, see `ring`),
//! 7. releases the ring slots (its cursor; a flush that sees it move finds the batch's
//!    segments back in the pool), and adds the batch's counts to its counters.
//!
//! When the ring is closed and drained, or if the shard panics, a guard closes the
//! registry and every queue so no receiver waits forever, then retires the shard's cursor
//! (so neither the publisher, nor a flush, nor `Bus::close` waits for it again); a
//! panicking shard also closes the ring, so the publisher sees `Closed` instead of a full
//! ring.

use std::panic::{catch_unwind, AssertUnwindSafe};

use uuid::Uuid;

use crate::event::Event;
use crate::queue::Pushed;
use crate::registry::List;
use crate::ring::{Consumer, COUNT};
use crate::routing::{BindingCache, RouteCache};
use crate::segment::{SegHold, SegPtr, SegRef, Segment, SEG_LEN};
use crate::shared::Shared;
use crate::stats::counters::Tally;
use crate::stats::topics::LocalTopics;
use crate::subscription::DropReason;
use crate::sync::atomic::{self, Ordering};
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
            crate::trace::shard_panicked(self.index);
            self.shared.close_ring(crate::shared::CLOSED_BY_PANIC);
        }
        for entry in self.shared.shards[self.index].close().entries.iter() {
            entry.queue.close();
        }
        // Last: a retired cursor tells `Bus::close` (and a flush) that this shard is done,
        // its queues included.
        self.shared.ring.retire(self.index);
    }
}

fn count_drop(tally: &mut Tally, reason: DropReason, n: u64) {
    tally.dropped += n;
    match reason {
        DropReason::Newest => tally.dropped_newest += n,
        DropReason::Oldest => tally.dropped_oldest += n,
        DropReason::Disconnect => tally.dropped_disconnect += n,
        DropReason::Shutdown => tally.dropped_shutdown += n,
    }
}

/// Adds one pushed run to the per-topic counts of its events (`positions`, in order): the
/// queued events first (a prefix, or all of them), then the lost ones; evictions count
/// against the run's first event.
fn count_run<E>(batch: &mut [Routed<E>], pushed: &Pushed, positions: impl Iterator<Item = u32>) {
    let mut first = None;
    for (n, p) in positions.enumerate() {
        first.get_or_insert(p);
        let routed = &mut batch[p as usize];
        if (n as u32) < pushed.queued {
            routed.delivered += 1;
        } else if (n as u32) < pushed.queued + pushed.dropped {
            routed.dropped += 1;
        }
    }
    if let (Some(first), true) = (first, pushed.evicted > 0) {
        batch[first as usize].dropped += u64::from(pushed.evicted);
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

/// One wanted event of the batch, as the first pass left it.
struct Routed<E> {
    at: SegRef<E>,
    /// Deliveries and losses, for the per-topic counters.
    delivered: u64,
    dropped: u64,
}

/// A segment the batch read from, while this shard holds its reference on it.
struct BatchSeg<E> {
    /// The shard's own reference, plus the runs' once `push_all` took them.
    hold: SegHold<E>,
    /// Runs (queue entries) the first pass planned for it.
    runs: u32,
    /// Runs that were not pushed (their reference goes back).
    unused: u32,
    /// The last slot read.
    last_slot: u32,
    /// No event will follow in it: release the shard's reference at the end of the batch.
    over: bool,
}

/// One subscriber's run being built in the second pass.
struct Run<E> {
    seg: Option<SegPtr<E>>,
    mask: u16,
    /// Batch positions of the run's events, in order.
    positions: [u32; SEG_LEN],
    len: usize,
    /// Filter outcomes since the run began, with the number of the run's events before
    /// each (counted only if the queue is still alive at that point).
    outcomes: Vec<(u32, bool)>,
}

/// A shard's own state: its caches and the batch's bookkeeping, reused across batches.
struct Shard<'a, E> {
    shared: &'a Shared<E>,
    index: usize,
    bindings: BindingCache,
    routes: RouteCache,
    topics: LocalTopics,
    /// The most events a batch holds.
    max_batch: usize,
    /// The batch's wanted events in ring order (first pass).
    batch: Vec<Routed<E>>,
    /// The segments of the batch, in ring order.
    segs: Vec<BatchSeg<E>>,
    /// Segments started so far (a serial number for `last_run`).
    serial: u64,
    /// The segment whose reference this shard holds across batches, and its last slot read.
    held: Option<(SegHold<E>, u32)>,
    /// Per subscriber (index into the list): what happens to it for each matching event of
    /// the batch, in ring order.
    wants: Vec<Vec<Want>>,
    /// Per subscriber: the serial of the segment of its last planned run.
    last_run: Vec<u64>,
    /// Subscribers with a non-empty `wants`, in the order they were first matched.
    touched: Vec<usize>,
    /// Subscribers fed and not yet woken (only non-empty mid-batch, before a `Block` wait).
    fed: Vec<usize>,
    run: Run<E>,
    /// Whether the batch so far takes the shared-runs path (see [`Uniform`]).
    uniform: Uniform,
    /// `Uniform::Yes`: the subscribers every event of the batch matched, as the route cache
    /// gave them, and those of them that were alive (and so get every event).
    uniform_matches: Vec<u32>,
    uniform_live: Vec<u32>,
    /// `Uniform::Yes`: the serial of the segment of the batch's last planned event.
    uniform_serial: u64,
    /// `Uniform::Yes`, in `push_all`: the batch's runs, one per segment.
    seg_runs: Vec<SegRun<E>>,
}

/// The shared-runs path. A batch in which every event matches the same subscribers, none
/// of them with a route or a predicate filter (plain fan-out, `Subscription::all()` and
/// one topic, the common case), gives every one of those subscribers the same runs: one
/// per segment, the same bitmask each. Such a batch is planned and counted per segment
/// and per (segment, subscriber), never per (event, subscriber). The first event that
/// breaks the pattern turns the batch's plan so far into the general per-subscriber
/// `wants`, and the batch goes on the general way ("demote" in `route`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Uniform {
    /// No event of the batch matched a subscriber yet.
    Unknown,
    /// Every planned event goes to every subscriber in `uniform_live`.
    Yes,
    /// The general path.
    No,
}

/// One segment's part of a uniform batch.
struct SegRun<E> {
    seg: SegPtr<E>,
    mask: u16,
    /// The batch positions of its events: `first..first + len`.
    first: u32,
    len: u32,
    /// Subscribers that queued the whole run (their per-topic deliveries, added per event
    /// at the end instead of per (event, subscriber)).
    full: u64,
}

impl<E> Shard<'_, E> {
    /// Releases this shard's reference (and any unused run references `hold` has left)
    /// on a segment that is over, after `last_slot`.
    fn release_segment(hold: SegHold<E>, last_slot: u32) {
        hold.set_len(last_slot as usize + 1);
        drop(hold);
    }

    /// The ring went idle: seal the segment we hold, so its events do not outlive their
    /// deliveries while the publisher idles (see "Sealing" in `ring`).
    fn idle(&mut self, consumer: &Consumer<SegRef<E>>) {
        if self.held.is_some() {
            let tail = consumer.seal();
            if tail & COUNT == consumer.next_seq() {
                if let Some((hold, last_slot)) = self.held.take() {
                    Self::release_segment(hold, last_slot);
                }
            }
        }
    }

    /// The shard ends: nothing more will be read.
    fn release_held(&mut self) {
        if let Some((hold, last_slot)) = self.held.take() {
            Self::release_segment(hold, last_slot);
        }
    }

    /// Records `at`'s resolved route in this shard's row of its segment, for its
    /// deliveries (`Delivery::resolved_route`). Before any run holding `at` is pushed.
    fn set_route(&self, at: SegRef<E>, route: Option<u128>) {
        // SAFETY: the shard holds its reference on the segment, the row is this shard's,
        // and no queue entry for this slot is visible yet, so nobody reads it.
        unsafe {
            Segment::set_route(at.seg.0, self.index, at.slot as usize, route.map(Uuid::from_u128))
        };
    }

    /// Notes that the batch reads `at` (segment bookkeeping, before routing it).
    fn enter(&mut self, at: SegRef<E>) {
        let same = self.segs.last().is_some_and(|last| last.hold.seg().0 == at.seg.0);
        if !same {
            if let Some(last) = self.segs.last_mut() {
                last.over = true;
            }
            self.serial += 1;
            // `held` is only set between batches, so only the batch's first segment can
            // be the one held: then that reference carries on.
            let hold = match self.held.take() {
                Some((held, _)) if held.seg().0 == at.seg.0 => held,
                held => {
                    if let Some((held, last_slot)) = held {
                        Self::release_segment(held, last_slot);
                    }
                    // SAFETY: the publisher gave the segment one reference per shard when
                    // it started it, and this is the first event of it this shard reads:
                    // that reference is this shard's.
                    unsafe { SegHold::adopt(at.seg, 1) }
                }
            };
            self.segs.push(BatchSeg { hold, runs: 0, unused: 0, last_slot: 0, over: false });
        }
        let last = self.segs.last_mut().expect("a batch segment");
        last.last_slot = at.slot;
        if at.slot as usize == SEG_LEN - 1 {
            last.over = true;
        }
    }
}

impl<E: Send + Sync + 'static> Shard<'_, E> {
    /// First pass over one event: resolves its route, finds the matching subscribers of
    /// `list` and records, per subscriber, that it gets this event. `seq` is the event's
    /// ring sequence (`u64::MAX` for a `$SYS` event, which is not in the ring).
    fn route(&mut self, list: &List<E>, seq: u64, at: SegRef<E>, tally: &mut Tally) {
        // SAFETY: the shard holds its reference on the segment until the batch ends.
        let event: &Event<E> = unsafe { Segment::event(at.seg.0, at.slot as usize) };
        // As a `u128` from here on (see `registry::Entry::route`).
        let route = self.bindings.resolve(event, tally).map(|r| r.as_u128());
        let position = self.batch.len() as u32;
        let serial = self.serial;
        let mut wanted = false;
        let mut runs = 0;
        let (wants, touched, last_run) = (&mut self.wants, &mut self.touched, &mut self.last_run);
        let matches = self.routes.matches(event.topic(), list, tally);
        let uniform = match self.uniform {
            Uniform::Yes if matches == self.uniform_matches.as_slice() => true,
            Uniform::Yes => {
                // Demote: the batch's plan so far, written out per subscriber as the
                // general path would have made it.
                debug_assert_eq!(self.batch.len(), position as usize);
                for &i in &self.uniform_live {
                    let i = i as usize;
                    touched.push(i);
                    wants[i].extend((0..position).map(Want::Push));
                    last_run[i] = self.uniform_serial;
                }
                self.uniform = Uniform::No;
                false
            }
            Uniform::Unknown if !matches.is_empty() => {
                debug_assert!(self.batch.is_empty() && touched.is_empty());
                let plain = matches.iter().all(|&i| {
                    let entry = &list.entries[i as usize];
                    seq >= entry.start && entry.route.is_none() && entry.filter.is_none()
                });
                if plain {
                    self.uniform_matches.clear();
                    self.uniform_matches.extend_from_slice(matches);
                    self.uniform_live.clear();
                    // Dead queues are left out here, once per batch, as the general path
                    // does per subscriber; `push_all` checks again per run.
                    self.uniform_live.extend(
                        matches.iter().filter(|&&i| !list.entries[i as usize].queue.is_dead()),
                    );
                    self.uniform = Uniform::Yes;
                } else {
                    self.uniform = Uniform::No;
                }
                plain
            }
            Uniform::Unknown | Uniform::No => false,
        };
        if uniform {
            if self.uniform_live.is_empty() {
                self.count_topic(event, 0, 0);
                return;
            }
            self.set_route(at, route);
            if self.uniform_serial != serial {
                self.uniform_serial = serial;
                let n = self.uniform_live.len() as u32;
                self.segs.last_mut().expect("a batch segment").runs += n;
            }
            self.batch.push(Routed { at, delivered: 0, dropped: 0 });
            return;
        }
        for &i in matches {
            let i = i as usize;
            let entry = &list.entries[i];
            // Dead queues are skipped before filters run, so `filtered_out` counts live
            // subscribers only; `push_all` checks again, in order with the pushes. Looked
            // at once per subscriber per batch (until it has a want in this batch): the
            // flags share lines the receiver writes when it parks, and a receiver that
            // goes away mid-batch is a race either way.
            if seq < entry.start || (wants[i].is_empty() && entry.queue.is_dead()) {
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
                        Err(_) => {
                            crate::trace::predicate_panicked(
                                &entry.queue.meta,
                                &entry.queue.trace_limit,
                            );
                            Want::FilterPanicked
                        }
                    },
                }
            };
            if wants[i].is_empty() {
                touched.push(i);
            }
            wants[i].push(want);
            if matches!(want, Want::Push(_)) {
                wanted = true;
                if last_run[i] != serial {
                    last_run[i] = serial;
                    runs += 1;
                }
            }
        }
        if wanted {
            self.set_route(at, route);
            self.segs.last_mut().expect("a batch segment").runs += runs;
            self.batch.push(Routed { at, delivered: 0, dropped: 0 });
        } else {
            // Nothing to push: its topic is counted right here.
            self.count_topic(event, 0, 0);
        }
    }

    /// Second pass: takes the planned references, then pushes each touched subscriber's
    /// runs into its queue, one subscriber at a time.
    fn push_all(&mut self, list: &List<E>, tally: &mut Tally) {
        for seg in &mut self.segs {
            seg.hold.take(seg.runs);
        }
        if self.uniform == Uniform::Yes {
            self.push_uniform(list, tally);
            return;
        }
        let touched = std::mem::take(&mut self.touched);
        for &i in &touched {
            let wants = std::mem::take(&mut self.wants[i]);
            let queue = &list.entries[i].queue;
            for &want in &wants {
                let position = match want {
                    Want::Push(position) => position,
                    Want::Filtered => {
                        self.run.outcomes.push((self.run.len as u32, false));
                        continue;
                    }
                    Want::FilterPanicked => {
                        self.run.outcomes.push((self.run.len as u32, true));
                        continue;
                    }
                };
                let seg = self.batch[position as usize].at.seg;
                if self.run.seg.is_some_and(|s| s.0 != seg.0) {
                    self.flush_run(list, i, tally);
                }
                let run = &mut self.run;
                run.seg = Some(seg);
                run.mask |= 1 << self.batch[position as usize].at.slot;
                run.positions[run.len] = position;
                run.len += 1;
            }
            self.flush_run(list, i, tally);
            // Outcomes after the last event.
            let dead = queue.is_dead();
            for (_, panicked) in self.run.outcomes.drain(..) {
                if !dead {
                    if panicked {
                        tally.filter_panics += 1;
                    } else {
                        tally.filtered_out += 1;
                    }
                }
            }
            let mut wants = wants;
            wants.clear();
            self.wants[i] = wants;
        }
        self.touched = touched;
        self.touched.clear();
    }

    /// Pushes the run built for subscriber `i`, and counts its outcomes.
    fn flush_run(&mut self, list: &List<E>, i: usize, tally: &mut Tally) {
        let Some(seg) = self.run.seg.take() else { return };
        let run_len = std::mem::take(&mut self.run.len);
        let mask = std::mem::take(&mut self.run.mask);
        let pushed = self.push_run(list, i, seg, mask, run_len as u32, tally);
        // Filter outcomes count up to the point where the queue died, if it did: an
        // outcome with `before == j` came between the run's events `j - 1` and `j`.
        let dead_at_start = pushed.unused_ref && pushed.skipped == run_len as u32;
        let died = pushed.reason == Some(DropReason::Disconnect) || pushed.skipped > 0;
        for (before, panicked) in self.run.outcomes.drain(..) {
            let counted = !dead_at_start && (!died || before <= pushed.queued);
            if counted {
                if panicked {
                    tally.filter_panics += 1;
                } else {
                    tally.filtered_out += 1;
                }
            }
        }
        let positions = self.run.positions;
        count_run(&mut self.batch, &pushed, positions[..run_len].iter().copied());
    }

    /// Pushes one run, `seg`'s events in `mask` (`len` of them), into subscriber `i`'s
    /// queue, and counts its deliveries and losses in `tally` (not per topic: the caller
    /// does, see `count_run`).
    fn push_run(
        &mut self,
        list: &List<E>,
        i: usize,
        seg: SegPtr<E>,
        mask: u16,
        len: u32,
        tally: &mut Tally,
    ) -> Pushed {
        let queue = &list.entries[i].queue;
        // Checked per run: a `Disconnect` overflow closes the queue mid-batch.
        let pushed = if queue.is_dead() {
            Pushed { unused_ref: true, skipped: len, ..Pushed::default() }
        } else {
            let (fed, entries) = (&mut self.fed, &list.entries);
            // Before a `Block` wait: wake everyone fed so far in this batch.
            let mut flush = || {
                for j in fed.drain(..) {
                    entries[j].queue.notify();
                }
            };
            let shared = self.shared;
            queue.push_run(
                seg,
                mask,
                shared.config.wait_strategy,
                &shared.lifetime.shutdown,
                &mut flush,
            )
        };
        if pushed.unused_ref {
            if let Some(b) = self.segs.iter_mut().rev().find(|b| b.hold.seg().0 == seg.0) {
                b.unused += 1;
            }
        }
        tally.delivered += u64::from(pushed.queued);
        if pushed.evicted > 0 {
            count_drop(tally, DropReason::Oldest, u64::from(pushed.evicted));
        }
        if let Some(reason) = pushed.reason {
            count_drop(tally, reason, u64::from(pushed.dropped));
            crate::trace::lost(&queue.meta, &queue.trace_limit, reason, u64::from(pushed.dropped));
        } else if pushed.evicted > 0 {
            crate::trace::lost(
                &queue.meta,
                &queue.trace_limit,
                DropReason::Oldest,
                u64::from(pushed.evicted),
            );
        }
        if pushed.queued > 0 && self.fed.last() != Some(&i) {
            self.fed.push(i);
        }
        pushed
    }

    /// `push_all` for a uniform batch: per subscriber, one run per segment, the same for
    /// every subscriber (see [`Uniform`]).
    fn push_uniform(&mut self, list: &List<E>, tally: &mut Tally) {
        let mut seg_runs = std::mem::take(&mut self.seg_runs);
        for (p, routed) in self.batch.iter().enumerate() {
            let bit = 1u16 << routed.at.slot;
            match seg_runs.last_mut() {
                Some(run) if run.seg.0 == routed.at.seg.0 => {
                    run.mask |= bit;
                    run.len += 1;
                }
                _ => seg_runs.push(SegRun {
                    seg: routed.at.seg,
                    mask: bit,
                    first: p as u32,
                    len: 1,
                    full: 0,
                }),
            }
        }
        let live = std::mem::take(&mut self.uniform_live);
        for &i in &live {
            for run in seg_runs.iter_mut() {
                let pushed = self.push_run(list, i as usize, run.seg, run.mask, run.len, tally);
                if pushed.queued == run.len && pushed.evicted == 0 {
                    run.full += 1;
                } else {
                    count_run(&mut self.batch, &pushed, run.first..run.first + run.len);
                }
            }
        }
        for run in seg_runs.drain(..) {
            if run.full > 0 {
                for routed in &mut self.batch[run.first as usize..(run.first + run.len) as usize] {
                    routed.delivered += run.full;
                }
            }
        }
        self.uniform_live = live;
        self.seg_runs = seg_runs;
    }

    /// Ends a batch: one wake-up per subscriber fed, the per-topic counters, and the
    /// references on segments that are over (or on unused runs) let go.
    fn end(&mut self, list: &List<E>) {
        if !self.fed.is_empty() {
            // SeqCst: one fence for every queue fed, paired with each waiting receiver's
            // (`queue`, "Wake protocol"); then a plain load per queue.
            atomic::fence(Ordering::SeqCst);
        }
        for i in self.fed.drain(..) {
            list.entries[i].queue.notify_if_waiting();
        }
        let mut batch = std::mem::take(&mut self.batch);
        for routed in batch.drain(..) {
            // SAFETY: the shard still holds its reference on every batch segment.
            let event = unsafe { Segment::event(routed.at.seg.0, routed.at.slot as usize) };
            self.count_topic(event, routed.delivered, routed.dropped);
        }
        self.batch = batch; // Keeps its allocation for the next batch.
        let mut segs = std::mem::take(&mut self.segs);
        for mut seg in segs.drain(..) {
            // The runs that were pushed hold their references in their queue entries now.
            seg.hold.hand_off(seg.runs - seg.unused);
            if seg.over {
                Self::release_segment(seg.hold, seg.last_slot);
            } else {
                seg.hold.release_extra();
                self.held = Some((seg.hold, seg.last_slot));
            }
        }
        self.segs = segs;
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
        self.uniform = Uniform::Unknown;
        self.uniform_serial = 0;
        if self.wants.len() < list.entries.len() {
            // Sized for a whole batch up front: how large batches get depends on timing,
            // and the steady state must not allocate when one happens to be larger.
            let n = list.entries.len();
            let max = self.max_batch;
            self.wants.resize_with(n, || Vec::with_capacity(max));
            self.last_run.resize(n, 0);
            self.touched.reserve(n);
            self.fed.reserve(n);
            self.uniform_matches.reserve(n);
            self.uniform_live.reserve(n);
        }
    }

    /// Delivers the `$SYS` events waiting in this shard's inbox. They are not counted in
    /// stats (no feedback loop: a stats event would otherwise cause the next one). Each is
    /// alone in a segment made by the stats thread, holding one reference per shard.
    fn deliver_system_events(&mut self) {
        let inbox = &self.shared.sys_inbox[self.index];
        // Acquire: pairs with the Release store in `Shared::post_system_event`.
        if !inbox.pending.swap(false, Ordering::Acquire) {
            return;
        }
        let events = std::mem::take(&mut *inbox.events.lock());
        let list = self.shared.shards[self.index].load();
        // The ring's segment stays held across this: `$SYS` segments are separate.
        let held = self.held.take();
        self.begin(&list);
        let mut uncounted = Tally::default();
        for at in events {
            self.serial += 1;
            self.segs.push(BatchSeg {
                // SAFETY: the stats thread gave the segment one reference per shard; this
                // is the only time this shard sees it.
                hold: unsafe { SegHold::adopt(at.seg, 1) },
                runs: 0,
                unused: 0,
                last_slot: at.slot,
                over: true,
            });
            self.route(&list, u64::MAX, at, &mut uncounted);
        }
        self.push_all(&list, &mut uncounted);
        self.end(&list);
        self.held = held;
    }
}

impl<E> Drop for Shard<'_, E> {
    fn drop(&mut self) {
        // A panic mid-batch leaves holds whose counts include run references already in
        // queue entries (handed off only at the batch's end): leak them, and the shard's
        // own, rather than release what is not theirs. `Pool::drop` drops the events of
        // every segment with references left.
        for seg in self.segs.drain(..) {
            std::mem::forget(seg.hold);
        }
        if let Some((hold, _)) = self.held.take() {
            std::mem::forget(hold);
        }
    }
}

/// Runs shard `index` until the ring is closed and drained.
pub(crate) fn run<E: Send + Sync + 'static>(shared: Arc<Shared<E>>, index: usize) {
    let finish = Finish { shared: &shared, index };
    let mut consumer = Consumer::new(Arc::clone(&shared.ring), index);
    let registry = &shared.shards[index];
    let counters = &shared.counters[index];
    let strategy = shared.config.wait_strategy;
    let max_batch = MAX_BATCH.min(shared.ring.capacity() / 2).max(1);
    let mut shard = Shard {
        shared: &shared,
        index,
        bindings: BindingCache::new(shared.config.binding_capacity),
        routes: RouteCache::new(shared.config.route_cache_capacity),
        topics: LocalTopics::new(),
        max_batch: max_batch as usize,
        batch: Vec::with_capacity(max_batch as usize),
        // A batch spans at most this many segments.
        segs: Vec::with_capacity(max_batch as usize / SEG_LEN + 2),
        serial: 0,
        held: None,
        wants: Vec::new(),
        last_run: Vec::new(),
        touched: Vec::new(),
        fed: Vec::new(),
        run: Run {
            seg: None,
            mask: 0,
            positions: [0; SEG_LEN],
            len: 0,
            // At most one outcome per event of a batch (see `begin`).
            outcomes: Vec::with_capacity(max_batch as usize),
        },
        uniform: Uniform::Unknown,
        uniform_matches: Vec::new(),
        uniform_live: Vec::new(),
        uniform_serial: 0,
        seg_runs: Vec::with_capacity(max_batch as usize / SEG_LEN + 2),
    };
    // Relaxed: only a hint to stop waiting; `deliver_system_events` swaps with Acquire.
    let sys_pending = || shared.sys_inbox[index].pending.load(Ordering::Relaxed);
    loop {
        let available = consumer.wait(strategy, &sys_pending, &mut || shard.idle(&consumer));
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
            let at = consumer.read(seq, |at: &SegRef<E>| *at);
            tally.dispatched += 1;
            shard.enter(at);
            shard.route(&list, seq, at, &mut tally);
        }
        shard.push_all(&list, &mut tally);
        // Wake-ups and segment releases before the slots: a flush that sees the cursor
        // move then also sees the batch's segments back in the pool (no timing decides
        // whether the next round of publishes finds them there).
        shard.end(&list);
        consumer.release(end);
        counters.add(&tally);
    }
    shard.release_held();
    drop(consumer);
    drop(finish); // closes the queues, then retires the cursor
}
