//! The naming rule, enforced: an async name never blocks, a blocking name says so, and a
//! blocking call made where it would stall an async runtime panics instead of hanging.
//!
//! `recv().await` and `publish(..).await` never block the thread. `recv_blocking`,
//! `recv_timeout`, `recv_many_blocking`, `publish_blocking`, `publish_to_blocking`,
//! `publish_batch_blocking`, `publish_timeout`, `flush` and `Bus::close` may park it. Parking
//! a thread that drives tokio tasks (a runtime worker, or `block_on`) stalls every task on
//! it, and on a current-thread runtime it hangs for good when the event or the room it waits
//! for has to come from one of those tasks. So, like tokio's own `blocking_recv`, each of
//! them panics there, naming the async method to use. `spawn_blocking`,
//! `block_in_place` and plain threads may block.
//!
//! The check runs only when the call is about to wait (nothing queued, no ring room, events
//! not yet dispatched), so a call that returns at once costs nothing, and it needs the
//! `tokio` feature (default): without it, or on another executor, nothing is checked.

/// Panics if the calling thread runs async tasks of a tokio runtime, where `call` would
/// park it: `instead` names the async method to await there. Call it only when about to
/// wait.
#[cold]
#[inline(never)]
#[track_caller]
pub(crate) fn forbid_in_async(call: &str, instead: &str) {
    if in_async_context() {
        panic!(
            "shardcast: `{call}` would block a thread that runs async tasks; \
             await `{instead}` instead, or call it from `spawn_blocking` or a plain thread"
        );
    }
}

#[cfg(feature = "tokio")]
fn in_async_context() -> bool {
    if tokio::runtime::Handle::try_current().is_err() {
        return false; // a plain thread
    }
    // Inside a runtime's context: a worker or `block_on` (must not block), or a
    // `spawn_blocking` thread (may). tokio tells them apart only by refusing to block, with
    // a panic (the one `blocking_recv` raises), so ask it, on a lock nobody else holds.
    std::panic::catch_unwind(|| drop(tokio::sync::Mutex::const_new(()).blocking_lock())).is_err()
}

#[cfg(not(feature = "tokio"))]
fn in_async_context() -> bool {
    false
}
