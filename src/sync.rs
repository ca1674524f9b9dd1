//! The one place that imports concurrency primitives.
//!
//! Library code never names `std::sync::atomic`, `UnsafeCell`, `Arc`, locks or threads
//! directly: it goes through this module, which swaps in [loom]'s versions under
//! `cfg(loom)` so the models in `loom-tests/` explore every interleaving of the real code.
//! One exception: `stats::external` holds the caller's `std::sync::Arc` stats sources as
//! `std::sync::Weak`s (loom has no `Weak`); it is a list under this module's `Mutex`, not
//! a protocol between the bus's threads. Likewise `SharedPublisher`'s clones share a `std`
//! `Arc`, of which `Bus` keeps a `std` `Weak` under a `Mutex` to hand out more clones.
//!
//! One stand-in differs under loom, because its crate does not run on loom: [`Swap`] is
//! `arc_swap::ArcSwap` normally and a loom `Mutex<Arc<T>>` under loom. The models check the
//! registry protocol (generations, start sequences, closed flags), not arc-swap's own
//! internals, which arc-swap tests itself.
//!
//! Timed waits have no meaning under loom (there is no clock): the loom versions of
//! `park_timeout` and `Condvar::wait_timeout` return at once, as a spurious wake-up would,
//! and the models never rely on a timeout firing.
//!
//! [loom]: https://docs.rs/loom

#[cfg(loom)]
pub(crate) use loom::{
    hint,
    sync::{atomic, Arc},
    thread,
};
#[cfg(not(loom))]
pub(crate) use std::{
    hint,
    sync::{atomic, Arc},
    thread,
};

use std::time::Duration;

/// `UnsafeCell` with loom's `with`/`with_mut` API, so loom can check every access.
#[cfg(not(loom))]
#[derive(Debug)]
pub(crate) struct UnsafeCell<T>(std::cell::UnsafeCell<T>);

#[cfg(not(loom))]
impl<T> UnsafeCell<T> {
    pub(crate) const fn new(value: T) -> Self {
        Self(std::cell::UnsafeCell::new(value))
    }

    pub(crate) fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        f(self.0.get())
    }

    pub(crate) fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        f(self.0.get())
    }
}

#[cfg(loom)]
pub(crate) use loom::cell::UnsafeCell;

/// Parks the current thread for at most `timeout`; may return early (spuriously).
pub(crate) fn park_timeout(timeout: Duration) {
    #[cfg(not(loom))]
    std::thread::park_timeout(timeout);
    #[cfg(loom)]
    {
        let _ = timeout;
        loom::thread::yield_now();
    }
}

/// Spawns a named thread (the name is dropped under loom).
pub(crate) fn spawn_named<F>(name: String, f: F) -> std::io::Result<thread::JoinHandle<()>>
where
    F: FnOnce() + Send + 'static,
{
    #[cfg(not(loom))]
    {
        std::thread::Builder::new().name(name).spawn(f)
    }
    #[cfg(loom)]
    {
        let _ = name;
        Ok(loom::thread::spawn(f))
    }
}

/// A mutex that never poisons (parking_lot normally, loom's under loom).
#[derive(Debug, Default)]
pub(crate) struct Mutex<T>(
    #[cfg(not(loom))] parking_lot::Mutex<T>,
    #[cfg(loom)] loom::sync::Mutex<T>,
);

#[cfg(not(loom))]
pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;
#[cfg(loom)]
pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

impl<T> Mutex<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(not(loom))]
        {
            Self(parking_lot::Mutex::new(value))
        }
        #[cfg(loom)]
        {
            Self(loom::sync::Mutex::new(value))
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
        #[cfg(not(loom))]
        {
            self.0.lock()
        }
        #[cfg(loom)]
        {
            // A panic while holding one of our locks leaves the data consistent (every
            // critical section is a plain read or replace), so poisoning is ignored.
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }
    }

    /// The lock if it is free now; `None` if another thread holds it.
    pub(crate) fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        #[cfg(not(loom))]
        {
            self.0.try_lock()
        }
        #[cfg(loom)]
        {
            match self.0.try_lock() {
                Ok(guard) => Some(guard),
                Err(std::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            }
        }
    }

    /// The lock, waiting at most `timeout` for it (under loom, one attempt: no clock).
    pub(crate) fn try_lock_for(&self, timeout: Duration) -> Option<MutexGuard<'_, T>> {
        #[cfg(not(loom))]
        {
            self.0.try_lock_for(timeout)
        }
        #[cfg(loom)]
        {
            let _ = timeout;
            self.try_lock()
        }
    }
}

/// A reader-writer lock that never poisons (parking_lot normally, loom's under loom).
#[derive(Debug, Default)]
pub(crate) struct RwLock<T>(
    #[cfg(not(loom))] parking_lot::RwLock<T>,
    #[cfg(loom)] loom::sync::RwLock<T>,
);

impl<T> RwLock<T> {
    pub(crate) fn new(value: T) -> Self {
        #[cfg(not(loom))]
        {
            Self(parking_lot::RwLock::new(value))
        }
        #[cfg(loom)]
        {
            Self(loom::sync::RwLock::new(value))
        }
    }

    pub(crate) fn read(&self) -> impl std::ops::Deref<Target = T> + '_ {
        #[cfg(not(loom))]
        {
            self.0.read()
        }
        #[cfg(loom)]
        {
            self.0.read().unwrap_or_else(|e| e.into_inner())
        }
    }

    pub(crate) fn write(&self) -> impl std::ops::DerefMut<Target = T> + '_ {
        #[cfg(not(loom))]
        {
            self.0.write()
        }
        #[cfg(loom)]
        {
            self.0.write().unwrap_or_else(|e| e.into_inner())
        }
    }
}

/// A condition variable paired with [`Mutex`].
#[derive(Debug, Default)]
pub(crate) struct Condvar(#[cfg(not(loom))] parking_lot::Condvar, #[cfg(loom)] loom::sync::Condvar);

impl Condvar {
    pub(crate) fn new() -> Self {
        #[cfg(not(loom))]
        {
            Self(parking_lot::Condvar::new())
        }
        #[cfg(loom)]
        {
            Self(loom::sync::Condvar::new())
        }
    }

    /// Blocks until notified (or spuriously), releasing the guard's lock meanwhile.
    pub(crate) fn wait<'a, T>(&self, guard: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
        #[cfg(not(loom))]
        {
            let mut guard = guard;
            self.0.wait(&mut guard);
            guard
        }
        #[cfg(loom)]
        {
            self.0.wait(guard).unwrap_or_else(|e| e.into_inner())
        }
    }

    /// Like [`wait`](Self::wait), for at most `timeout`.
    pub(crate) fn wait_timeout<'a, T>(
        &self,
        guard: MutexGuard<'a, T>,
        timeout: Duration,
    ) -> MutexGuard<'a, T> {
        #[cfg(not(loom))]
        {
            let mut guard = guard;
            self.0.wait_for(&mut guard, timeout);
            guard
        }
        #[cfg(loom)]
        {
            // A spurious wake-up: callers loop and re-check their condition.
            let _ = timeout;
            guard
        }
    }

    pub(crate) fn notify_all(&self) {
        self.0.notify_all();
    }
}

/// An atomically swappable `Arc<T>`: readers take a snapshot without locking.
pub(crate) struct Swap<T>(
    #[cfg(not(loom))] arc_swap::ArcSwap<T>,
    #[cfg(loom)] loom::sync::Mutex<Arc<T>>,
);

impl<T> Swap<T> {
    pub(crate) fn new(value: Arc<T>) -> Self {
        #[cfg(not(loom))]
        {
            Self(arc_swap::ArcSwap::new(value))
        }
        #[cfg(loom)]
        {
            Self(loom::sync::Mutex::new(value))
        }
    }

    /// A snapshot of the current value. arc-swap's `load_full` is one wait-free
    /// reference-count increment; the hot path calls it once per batch.
    pub(crate) fn load(&self) -> Arc<T> {
        #[cfg(not(loom))]
        {
            self.0.load_full()
        }
        #[cfg(loom)]
        {
            Arc::clone(&self.0.lock().unwrap())
        }
    }

    /// Replaces the value. Callers serialise writers themselves (the registry's lock), so
    /// this is a plain store, not a compare-and-swap loop.
    pub(crate) fn store(&self, value: Arc<T>) {
        #[cfg(not(loom))]
        {
            self.0.store(value);
        }
        #[cfg(loom)]
        {
            *self.0.lock().unwrap() = value;
        }
    }
}
