//! Segments: the memory events live in, from publish until the last subscriber is done.
//!
//! The publisher writes each event in place into a [`Segment`] of [`SEG_LEN`] slots; the
//! ring carries a [`SegRef`] (segment, slot) per event, and subscriber queues carry runs
//! (segment, bitmask of slots). A segment is shared by every shard and subscriber that
//! reads it and is counted by **references**, not per event:
//!
//! - one per dispatcher shard, set by the publisher when it starts the segment, and
//!   released by that shard once it has read the segment's last event (it knows the
//!   segment is over when it reads slot `SEG_LEN - 1`, when the next event is in another
//!   segment, when it seals the segment while idle, or when the ring is closed and
//!   drained; see "Sealing" in `ring`);
//! - one per queue entry (a run of this segment's events for one subscriber), added by
//!   the shard before the entry is visible and released by whoever consumes or evicts the
//!   entry;
//! - one per owned delivery (`Delivery::to_owned`).
//!
//! A shard and an owned delivery own their references as a [`SegHold`], whose drop
//! releases them. A queue entry's reference travels as a pointer (in its slot, then in
//! the receiver's current entry, which the hot receive path reads as a plain pointer): it
//! goes in with `SegHold::into_raw` (or `hand_off`) and comes back with `SegHold::adopt`,
//! whose drop releases it. Nothing outside this file changes a count.
//!
//! The thread that brings the count to zero drops the segment's events and pushes the
//! segment onto its pool's free stack. The publisher is the free stack's only consumer (it
//! takes the whole stack with one swap), so the stack has no ABA problem. A pool grows
//! when the free stack is empty and never shrinks; it frees every segment when it is
//! dropped. The publisher holds no reference: a segment cannot reach zero while a shard
//! still has to read it, and shards release a segment only once no event will be added to
//! it.
//!
//! `$SYS` events (which do not go through the ring) use segments too, one event per
//! segment, from a second free stack (`home`) whose only consumer is the stats thread, so
//! an idle publisher never has to drain them.
//!
//! # Orderings
//! | write (Release) | read (Acquire) | what it publishes |
//! |---|---|---|
//! | every `fetch_sub`/`fetch_add` of `refs` that releases (AcqRel) | the `fetch_sub` that reaches zero (AcqRel), or the CAS from one to zero in [`SegHold::try_take`] (Acquire) | every reader's accesses to the events and the `len` store happen before the events are dropped or one is moved out |
//! | the Treiber push in [`Pool::give_back`] (Release CAS) | the publisher's `swap` in [`Writer::next_segment`] (Acquire) | the dropped events: the slots may be written again |
//!
//! Modelled in `loom-tests/tests/segment.rs`.

use std::mem::MaybeUninit;
use std::ptr::{self, NonNull};

use uuid::Uuid;

use crate::event::Event;
use crate::sync::atomic::{AtomicPtr, AtomicU32, Ordering};
use crate::sync::{Mutex, UnsafeCell};
use crossbeam_utils::CachePadded;

/// Events per segment. A queue entry covers at most this many, so a subscriber pins at
/// most `SEG_LEN` times its capacity in events (every entry holds at least one event).
pub(crate) const SEG_LEN: usize = 16;

/// The main free stack (the publisher's).
const MAIN: u32 = 0;
/// The stats thread's free stack (`$SYS` events).
const SYS: u32 = 1;

/// The counts every holder writes: on a cache line of their own, so that a release (one
/// per queue entry, by any receiver) never invalidates the line that receivers read the
/// events' addresses and routes from.
#[derive(Default)]
struct Counts {
    /// See the module docs.
    refs: AtomicU32,
    /// Events in the segment, once it is over. Stored (all with the same value) by every
    /// shard before it releases its reference; read by the thread that drops the events.
    len: AtomicU32,
    /// Link in a free stack.
    next_free: AtomicPtr<()>,
}

/// `repr(C)`: the field order below is the memory layout (written-by-many, then
/// publisher-only, then read-only after publish).
#[repr(C)]
pub(crate) struct Segment<E> {
    counts: CachePadded<Counts>,
    /// Events written and published: the publisher's own count (stored per event, so on
    /// a line of its own), read only when the pool is dropped (to drop events of segments
    /// a panicked shard never released).
    written: CachePadded<UnsafeCell<u32>>,
    /// Which free stack the segment returns to.
    home: u32,
    /// The pool it belongs to, for the release that recycles it. Every holder of a
    /// reference keeps the pool alive (the pool frees its segments only when dropped).
    pool: *const Pool<E>,
    /// The route each shard resolved for each event: row `shard`, column slot. Written by
    /// that shard before it pushes the event, read by its receivers.
    routes: Box<[UnsafeCell<Option<Uuid>>]>,
    events: [UnsafeCell<MaybeUninit<Event<E>>>; SEG_LEN],
}

impl<E> Segment<E> {
    fn new(shards: usize, home: u32, pool: *const Pool<E>) -> Self {
        Segment {
            counts: CachePadded::new(Counts::default()),
            written: CachePadded::new(UnsafeCell::new(0)),
            home,
            pool,
            routes: (0..shards * SEG_LEN).map(|_| UnsafeCell::new(None)).collect(),
            events: std::array::from_fn(|_| UnsafeCell::new(MaybeUninit::uninit())),
        }
    }

    /// The event in `slot`.
    ///
    /// # Safety
    /// `slot` holds a published event, and the caller holds a reference on the segment
    /// (or is a shard that has not released it) for as long as it uses the result.
    pub(crate) unsafe fn event<'a>(this: NonNull<Self>, slot: usize) -> &'a Event<E> {
        // SAFETY: the segment is alive (the caller's reference); the slot was initialised
        // and published before the caller could see it, and nobody writes it until the
        // segment is recycled, which the caller's reference prevents.
        unsafe { this.as_ref().events[slot].with(|v| (*v).assume_init_ref()) }
    }

    /// Shard `shard`'s resolved route for `slot`.
    ///
    /// # Safety
    /// As [`event`](Self::event), and the route was written by that shard before the
    /// caller saw the entry (the queue's Release/Acquire on its tail).
    pub(crate) unsafe fn route(this: NonNull<Self>, shard: usize, slot: usize) -> Option<Uuid> {
        // SAFETY: as documented: written before, not rewritten while referenced.
        unsafe { this.as_ref().routes[shard * SEG_LEN + slot].with(|r| *r) }
    }

    /// Shard `shard` records its resolved route for `slot`.
    ///
    /// # Safety
    /// Called by shard `shard` only, before any entry for `slot` is visible to a receiver,
    /// while the shard holds its reference.
    pub(crate) unsafe fn set_route(
        this: NonNull<Self>,
        shard: usize,
        slot: usize,
        r: Option<Uuid>,
    ) {
        // SAFETY: only this shard writes its row, and no receiver reads the cell until the
        // shard publishes an entry for the slot (after this write).
        unsafe { this.as_ref().routes[shard * SEG_LEN + slot].with_mut(|c| *c = r) }
    }

    /// Adds `n` references. The caller holds one already, so the count cannot reach zero
    /// meanwhile.
    ///
    /// # Safety
    /// The caller holds a reference on the segment.
    unsafe fn add_refs(this: NonNull<Self>, n: u32) {
        // Relaxed: like `Arc::clone`, the caller's own reference keeps the segment alive;
        // the increment is published to receivers with the entry (queue tail, Release).
        // SAFETY: the segment is alive (the caller's reference).
        unsafe { this.as_ref().counts.refs.fetch_add(n, Ordering::Relaxed) };
    }

    /// A shard records the segment's length before releasing its reference.
    ///
    /// # Safety
    /// The caller holds a reference on the segment.
    pub(crate) unsafe fn set_len(this: NonNull<Self>, len: usize) {
        // Relaxed: published by the caller's Release decrement that follows.
        // SAFETY: the segment is alive (the caller's reference).
        unsafe { this.as_ref().counts.len.store(len as u32, Ordering::Relaxed) };
    }
}

/// A pointer to a segment that may cross threads (every access goes through the protocol
/// in the module docs).
pub(crate) struct SegPtr<E>(pub(crate) NonNull<Segment<E>>);

impl<E> Clone for SegPtr<E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for SegPtr<E> {}

// SAFETY: a segment's events are shared between threads under the reference protocol of
// the module docs; `E: Send + Sync` is required wherever events cross threads (the bus).
unsafe impl<E: Send + Sync> Send for SegPtr<E> {}
// SAFETY: as above.
unsafe impl<E: Send + Sync> Sync for SegPtr<E> {}

/// What the ring carries per event: the segment and the slot. `Copy`: the ring neither
/// counts nor drops it.
pub(crate) struct SegRef<E> {
    pub(crate) seg: SegPtr<E>,
    pub(crate) slot: u32,
}

impl<E> Clone for SegRef<E> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<E> Copy for SegRef<E> {}

/// Every segment of one bus.
pub(crate) struct Pool<E> {
    shards: usize,
    /// Free stacks: `[MAIN]` is the publisher's, `[SYS]` the stats thread's.
    free: Box<[crossbeam_utils::CachePadded<AtomicPtr<Segment<E>>>]>,
    /// Every segment ever made, freed when the pool is dropped.
    all: Mutex<Vec<SegPtr<E>>>,
}

// SAFETY: the pool hands segments between threads under the module's protocol.
unsafe impl<E: Send + Sync> Send for Pool<E> {}
// SAFETY: as above.
unsafe impl<E: Send + Sync> Sync for Pool<E> {}

impl<E> Pool<E> {
    pub(crate) fn new(shards: usize) -> Self {
        Pool {
            shards,
            free: (0..2)
                .map(|_| crossbeam_utils::CachePadded::new(AtomicPtr::new(ptr::null_mut())))
                .collect(),
            all: Mutex::new(Vec::new()),
        }
    }

    fn alloc(&self, home: u32) -> NonNull<Segment<E>> {
        // `self` is inside the bus's `Arc`: its address is stable for the segment's life.
        let seg = NonNull::from(Box::leak(Box::new(Segment::new(self.shards, home, self))));
        self.all.lock().push(SegPtr(seg));
        seg
    }

    /// Takes every segment on free stack `home` (its only consumer calls this).
    fn take_free(&self, home: u32) -> *mut Segment<E> {
        // Acquire: pairs with the Release CAS in `give_back`: the events dropped before a
        // segment was pushed are dropped before we write its slots again.
        self.free[home as usize].swap(ptr::null_mut(), Ordering::Acquire)
    }

    /// Pushes a segment whose count reached zero (its events dropped) onto its free stack.
    fn give_back(&self, seg: NonNull<Segment<E>>) {
        // SAFETY: the segment is alive (pools free segments only when dropped) and ours:
        // its count is zero, so nobody else touches it until the stack's consumer takes it.
        let s = unsafe { seg.as_ref() };
        let stack = &self.free[s.home as usize];
        // Relaxed: the CAS below publishes (Release) or retries.
        let mut head = stack.load(Ordering::Relaxed);
        loop {
            // Relaxed: published by the Release CAS below.
            s.counts.next_free.store(head.cast(), Ordering::Relaxed);
            // Release: pairs with the Acquire swap in `take_free`.
            match stack.compare_exchange_weak(
                head,
                seg.as_ptr(),
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(actual) => head = actual,
            }
        }
    }
}

/// Releases `n` references on `seg`; the last one drops its events and recycles it.
///
/// # Safety
/// The caller holds `n` references on `seg` and does not use them afterwards.
unsafe fn release<E>(seg: NonNull<Segment<E>>, n: u32) {
    if n == 0 {
        return;
    }
    // SAFETY: alive: the caller's references.
    let s = unsafe { seg.as_ref() };
    // AcqRel: Release publishes our reads of the events (and a shard's `len` store) to
    // the thread that drops them; Acquire, for that thread, sees every other holder's.
    let before = s.counts.refs.fetch_sub(n, Ordering::AcqRel);
    debug_assert!(before >= n, "segment reference count underflow");
    if before != n {
        return;
    }
    // Relaxed: ordered by the AcqRel decrement (every shard stored it before its own
    // Release decrement).
    let len = s.counts.len.load(Ordering::Relaxed) as usize;
    debug_assert!(len <= SEG_LEN);
    for slot in &s.events[..len] {
        // SAFETY: the count is zero: every holder is done and no shard will read
        // again; slots `..len` hold the segment's published events, dropped once, here.
        slot.with_mut(|v| unsafe { (*v).assume_init_drop() });
    }
    // SAFETY: the pool outlives its segments, and the caller's holder kept it alive.
    unsafe { (*s.pool).give_back(seg) };
}

/// References on one segment, owned: the one place a count is taken and given back. A
/// `SegHold` holds `n` references (a shard holds its own plus, during a batch, one per
/// run it will push; everything else holds one), and dropping it releases them; the
/// last release anywhere drops the segment's events and recycles it.
///
/// A queue entry keeps its reference as a pointer in an atomic slot: [`into_raw`]
/// (or [`hand_off`], for references a batch took together) puts it there and
/// [`adopt`] takes it back, as `Arc::into_raw` and `Arc::from_raw` do.
///
/// Costs what the counts cost by hand: a hold is a pointer and a plain `u32`, taking
/// `n` references is one `fetch_add`, dropping is one `fetch_sub` (none for `n == 0`).
///
/// [`into_raw`]: Self::into_raw
/// [`hand_off`]: Self::hand_off
/// [`adopt`]: Self::adopt
pub(crate) struct SegHold<E> {
    seg: SegPtr<E>,
    n: u32,
}

impl<E> SegHold<E> {
    /// Takes ownership of `n` references the caller holds on `seg`: a shard's own (set by
    /// the publisher when it started the segment), or a queue entry's.
    ///
    /// # Safety
    /// The caller holds `n` references on `seg` and hands them to the hold (it neither
    /// uses nor releases them afterwards).
    #[inline(always)]
    pub(crate) unsafe fn adopt(seg: SegPtr<E>, n: u32) -> Self {
        SegHold { seg, n }
    }

    /// One new reference on a segment the caller holds a reference on.
    ///
    /// # Safety
    /// The caller holds a reference on `seg` during the call (so the count cannot reach
    /// zero meanwhile).
    #[inline(always)]
    pub(crate) unsafe fn share(seg: SegPtr<E>) -> Self {
        // SAFETY: the caller's reference keeps `seg` alive.
        unsafe { Segment::add_refs(seg.0, 1) };
        SegHold { seg, n: 1 }
    }

    /// The segment.
    #[inline(always)]
    pub(crate) fn seg(&self) -> SegPtr<E> {
        self.seg
    }

    /// Takes `n` more references (one `fetch_add`; nothing for 0): a batch's runs.
    #[inline(always)]
    pub(crate) fn take(&mut self, n: u32) {
        if n > 0 {
            debug_assert!(self.n > 0, "taking references needs one held");
            // SAFETY: the hold's own reference keeps the segment alive.
            unsafe { Segment::add_refs(self.seg.0, n) };
            self.n += n;
        }
    }

    /// `n` of the references went to queue entries (which the queue took with `seg()`
    /// while this hold kept them): they are no longer the hold's to release.
    #[inline(always)]
    pub(crate) fn hand_off(&mut self, n: u32) {
        debug_assert!(n <= self.n, "handing off references not held");
        self.n -= n;
    }

    /// Releases every reference but one.
    #[inline(always)]
    pub(crate) fn release_extra(&mut self) {
        debug_assert!(self.n >= 1);
        // SAFETY: the hold owns `n` references; it keeps one.
        unsafe { release(self.seg.0, self.n - 1) };
        self.n = 1;
    }

    /// A shard records the segment's length, before its drop releases its reference.
    #[inline(always)]
    pub(crate) fn set_len(&self, len: usize) {
        debug_assert!(self.n > 0);
        // SAFETY: the hold's reference keeps the segment alive.
        unsafe { Segment::set_len(self.seg.0, len) };
    }

    /// Moves the event in `slot` out if this hold has the segment's only reference, and
    /// recycles the segment (dropping its other events); otherwise hands the hold back.
    /// Only reference means every shard has stored `len` and released its own, and no
    /// queue entry or other owned delivery is left; nobody can take a new reference,
    /// since that needs one held.
    pub(crate) fn try_take(self, slot: usize) -> Result<Event<E>, Self> {
        debug_assert_eq!(self.n, 1, "an owned delivery holds one reference");
        // SAFETY: alive: our reference.
        let s = unsafe { self.seg.0.as_ref() };
        // Acquire: pairs with the Release half of every other holder's decrement in
        // `release`, as the decrement that reaches zero does: their reads of the events
        // happen before we move one out and drop the rest.
        if s.counts.refs.compare_exchange(1, 0, Ordering::Acquire, Ordering::Relaxed).is_err() {
            return Err(self);
        }
        let seg = self.seg.0;
        std::mem::forget(self); // its reference is gone: the count is zero
                                // Relaxed: ordered by the Acquire above (every shard stored it before its Release
                                // decrement).
        let len = s.counts.len.load(Ordering::Relaxed) as usize;
        debug_assert!(slot < len && len <= SEG_LEN);
        let mut taken = None;
        for (i, cell) in s.events[..len].iter().enumerate() {
            if i == slot {
                // SAFETY: the count is zero and ours: slot `slot` holds a published event,
                // read out once, here; `release` will never see this segment's count again
                // before it is recycled and written anew.
                taken = Some(cell.with_mut(|v| unsafe { (*v).assume_init_read() }));
            } else {
                // SAFETY: as in `release`: the count is zero, these slots hold published
                // events, dropped once, here.
                cell.with_mut(|v| unsafe { (*v).assume_init_drop() });
            }
        }
        // SAFETY: the pool outlives its segments, and the caller keeps it alive.
        unsafe { (*s.pool).give_back(seg) };
        Ok(taken.expect("the slot is below the segment's length"))
    }

    /// Hands the hold's one reference on, as a pointer (into a queue slot); [`adopt`]
    /// takes it back.
    ///
    /// [`adopt`]: Self::adopt
    #[inline(always)]
    pub(crate) fn into_raw(self) -> SegPtr<E> {
        debug_assert_eq!(self.n, 1, "a raw pointer carries one reference");
        let seg = self.seg;
        std::mem::forget(self);
        seg
    }
}

impl<E> Clone for SegHold<E> {
    /// One new reference (whatever `n` this hold has).
    fn clone(&self) -> Self {
        debug_assert!(self.n > 0);
        // SAFETY: this hold's reference keeps the segment alive.
        unsafe { SegHold::share(self.seg) }
    }
}

impl<E> Drop for SegHold<E> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: the hold owns `n` references and is gone after this.
        unsafe { release(self.seg.0, self.n) };
    }
}

impl<E> Drop for Pool<E> {
    fn drop(&mut self) {
        // `&mut self`: every handle that could touch a segment (publisher, shards, queues,
        // receivers, owned deliveries) held the pool and is gone. A segment with references
        // left was never released by a shard that panicked: its published events are
        // dropped here.
        for SegPtr(seg) in std::mem::take(&mut *self.all.lock()) {
            // SAFETY: made by `Box::leak` in `alloc`, listed once, freed once here.
            let mut seg = unsafe { Box::from_raw(seg.as_ptr()) };
            // Relaxed: exclusive access (see above).
            if seg.counts.refs.load(Ordering::Relaxed) != 0 {
                // SAFETY: exclusive access (`&mut self`, see above).
                let written = seg.written.with_mut(|w| unsafe { *w }) as usize;
                for slot in &mut seg.events[..written] {
                    // SAFETY: slots `..written` hold published events, and a segment with
                    // references left has not dropped them.
                    slot.with_mut(|v| unsafe { (*v).assume_init_drop() });
                }
            }
        }
    }
}

/// The publisher's side of the pool: the segment being written, and a private free list.
pub(crate) struct Writer<E> {
    pool: crate::sync::Arc<Pool<E>>,
    /// Segments taken from the free stack and not used yet (linked by `next_free`).
    local: *mut Segment<E>,
    /// The segment being written and its next free slot (`SEG_LEN`: start a new one).
    cur: Option<NonNull<Segment<E>>>,
    slot: usize,
    home: u32,
}

// SAFETY: the writer's segments are handed between threads under the module's protocol.
unsafe impl<E: Send + Sync> Send for Writer<E> {}

impl<E> Writer<E> {
    pub(crate) fn new(pool: crate::sync::Arc<Pool<E>>) -> Self {
        Writer { pool, local: ptr::null_mut(), cur: None, slot: SEG_LEN, home: MAIN }
    }

    /// The stats thread's writer, for `$SYS` events.
    pub(crate) fn for_system(pool: crate::sync::Arc<Pool<E>>) -> Self {
        Writer { home: SYS, ..Writer::new(pool) }
    }

    /// A recycled or new segment, with `refs` references.
    fn next_segment(&mut self, refs: u32) -> NonNull<Segment<E>> {
        if self.local.is_null() {
            self.local = self.pool.take_free(self.home);
        }
        let seg = match NonNull::new(self.local) {
            Some(seg) => {
                // SAFETY: taken from the free stack (Acquire): ours alone now.
                self.local =
                    unsafe { seg.as_ref() }.counts.next_free.load(Ordering::Relaxed).cast();
                seg
            }
            None => self.pool.alloc(self.home),
        };
        // SAFETY: ours alone (fresh, or recycled with a zero count).
        let s = unsafe { seg.as_ref() };
        // Relaxed (both): published with the segment's first event (the ring's Release
        // `tail` CAS, paired with the shards' Acquire loads); nobody else holds it yet.
        s.counts.refs.store(refs, Ordering::Relaxed);
        s.counts.len.store(0, Ordering::Relaxed);
        // SAFETY: `written` is the publisher's alone (read only by `Pool::drop`).
        s.written.with_mut(|w| unsafe { *w = 0 });
        seg
    }

    /// Where the next event goes: the current segment's next slot, or slot 0 of a new
    /// segment holding `refs` references. Returns the slot and whether it starts a segment.
    pub(crate) fn reserve(&mut self, refs: u32) -> (SegRef<E>, bool) {
        if self.slot == SEG_LEN || self.cur.is_none() {
            self.cur = Some(self.next_segment(refs));
            self.slot = 0;
        }
        let seg = self.cur.expect("a current segment");
        (SegRef { seg: SegPtr(seg), slot: self.slot as u32 }, self.slot == 0)
    }

    /// Writes `event` into the reserved slot (not yet published).
    pub(crate) fn write(&mut self, at: SegRef<E>, event: Event<E>) {
        // SAFETY: the slot is reserved: not published, so no reader sees it, and the
        // segment is alive (shards hold their references until it is over, and it is not
        // over before this slot is published or abandoned).
        let s = unsafe { at.seg.0.as_ref() };
        // SAFETY: as above: the slot is ours until it is published.
        s.events[at.slot as usize].with_mut(|v| unsafe { (*v).write(event) });
    }

    /// Takes back an event written into a reserved slot that was not published.
    pub(crate) fn take_back(&mut self, at: SegRef<E>) -> Event<E> {
        // SAFETY: written by `write` and never published: ours. The segment's memory lives
        // as long as the pool, even if shards recycled the segment meanwhile (a recycled
        // segment drops only its published slots, below this one).
        let s = unsafe { at.seg.0.as_ref() };
        // SAFETY: as above: initialised by `write`, never published.
        s.events[at.slot as usize].with_mut(|v| unsafe { (*v).assume_init_read() })
    }

    /// The reserved slot was published.
    pub(crate) fn commit(&mut self) {
        self.slot += 1;
        if let Some(seg) = self.cur {
            let slot = self.slot as u32;
            // SAFETY: alive (shards hold it until it is over); `written` is the
            // publisher's alone (read only by `Pool::drop`).
            unsafe { seg.as_ref() }.written.with_mut(|w| unsafe { *w = slot });
        }
    }

    /// `n` reserved slots, from the one `reserve` gave on, were published together
    /// (`Publisher::publish_batch`).
    pub(crate) fn commit_many(&mut self, n: usize) {
        debug_assert!(n >= 1 && self.slot + n <= SEG_LEN);
        self.slot += n - 1;
        self.commit();
    }

    /// The current segment was sealed (by an idle shard): the next event starts a new one.
    pub(crate) fn seal(&mut self) {
        self.slot = SEG_LEN;
    }
}
