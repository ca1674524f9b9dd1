//! How a thread waits for something another thread will do: spin, yield, or park.

/// How publishers and dispatcher shards wait when they cannot make progress (ring full,
/// ring empty, a `Block` subscriber's queue full).
///
/// Busy-spinning by default collapses when threads outnumber cores, so the default,
/// [`Adaptive`](WaitStrategy::Adaptive), spins briefly, then yields, then parks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WaitStrategy {
    /// Spin on the CPU. Lowest latency; burns a core per waiting thread. Only for
    /// dedicated, isolated cores.
    BusySpin,
    /// Spin, calling `std::thread::yield_now` between checks. Never sleeps.
    Yield,
    /// Spin briefly, then yield, then park until woken. Costs nothing while idle.
    #[default]
    Adaptive,
}

/// One step of waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Step {
    Spin,
    Yield,
    Park,
}

// Under loom, spinning only multiplies the interleavings to explore: park at once. Under
// miri, which interprets every spin, a few spins keep the spin path checked and the runs
// short.
#[cfg(not(any(loom, miri)))]
const SPINS: u32 = 64;
#[cfg(not(any(loom, miri)))]
const YIELDS: u32 = 16;
#[cfg(all(miri, not(loom)))]
const SPINS: u32 = 2;
#[cfg(all(miri, not(loom)))]
const YIELDS: u32 = 2;
#[cfg(loom)]
const SPINS: u32 = 0;
#[cfg(loom)]
const YIELDS: u32 = 0;

/// Failed checks after which a waiting shard counts as idle (whatever the strategy).
pub(crate) const IDLE_AFTER: u32 = SPINS;

impl WaitStrategy {
    /// What to do on the `n`-th consecutive failed check.
    // Under loom both bounds are 0, which makes the comparisons constant.
    #[cfg_attr(loom, allow(clippy::absurd_extreme_comparisons))]
    pub(crate) fn step(self, n: u32) -> Step {
        match self {
            WaitStrategy::BusySpin => Step::Spin,
            WaitStrategy::Yield => Step::Yield,
            WaitStrategy::Adaptive if n < SPINS => Step::Spin,
            WaitStrategy::Adaptive if n < SPINS + YIELDS => Step::Yield,
            WaitStrategy::Adaptive => Step::Park,
        }
    }
}

/// Spins or yields for one step; returns `true` when the caller should park instead.
pub(crate) fn spin_or_yield(step: Step) -> bool {
    match step {
        Step::Spin => {
            crate::sync::hint::spin_loop();
            false
        }
        Step::Yield => {
            crate::sync::thread::yield_now();
            false
        }
        Step::Park => true,
    }
}
