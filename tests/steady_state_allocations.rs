//! Promise: in the steady state, publishing and receiving allocate nothing. Events are
//! written into pooled segments and read in place; queues carry runs of slots in fixed
//! rings. A counting global allocator sees every allocation of every thread (publisher,
//! dispatcher, receiver) while the same round of publish, flush and receive repeats.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

use ringcast::{Bus, Event, Overflow, Subscription, Topic};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; counting has no effect on the memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn publish_and_receive_allocate_nothing_in_the_steady_state() {
    const ROUND: u64 = 1000;
    // Stats off: the per-topic table is not on the path being measured (it allocates once
    // per new topic prefix, which this test does not exercise either way).
    let bus: Bus<u64> = Bus::builder().ring_capacity(4096).stats(false).build().unwrap();
    let mut all = bus.subscribe(Subscription::all().capacity(4096)).unwrap();
    let mut even = bus
        .subscribe(
            Subscription::to("orders.>")
                .unwrap()
                .filter(|e: &Event<u64>| e.payload().is_multiple_of(2)),
        )
        .unwrap();
    let mut oldest =
        bus.subscribe(Subscription::all().capacity(100).overflow(Overflow::DropOldest)).unwrap();
    let mut publisher = bus.publisher().unwrap();
    let topic = Topic::new("orders.eu").unwrap();
    let mut round = |n: u64| {
        for i in 0..ROUND {
            publisher.publish(Event::new(topic.clone(), n * ROUND + i)).unwrap();
        }
        publisher.flush();
        let mut got = 0;
        while let Ok(d) = all.try_recv() {
            assert_eq!(d.seq(), *d.payload());
            got += 1;
        }
        while even.try_recv().is_ok() {}
        while oldest.try_recv().is_ok() {}
        got
    };
    // Warm up: the pool, the shard's batch vectors and caches reach their sizes.
    for n in 0..3 {
        assert_eq!(round(n), ROUND);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for n in 3..10 {
        assert_eq!(round(n), ROUND);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(allocations, 0, "{allocations} allocations in 7000 publishes and their receives");
}
