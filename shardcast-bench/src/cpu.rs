//! The process's CPU clock: user plus system time of every thread, from
//! `getrusage(RUSAGE_SELF)`.
//!
//! Wall-clock throughput hides what a library spends to get it: a spinning dispatcher and
//! a parked one can show the same p99 while one of them keeps a core busy. Rows read this
//! clock around their run ([`crate::impls::Outcome::cpu_ns`]) and the idle scenario around
//! a quiet second ([`crate::impls::idle`]).
//!
//! `std` has no process CPU clock (`std::time` only measures wall time, and
//! `/proc/self/stat` counts in 10 ms ticks), hence `libc`. Linux accounts `ru_utime` and
//! `ru_stime` from the scheduler's nanosecond runtime, reported in microseconds.

/// CPU time (user + system) the whole process has used so far, in nanoseconds.
pub fn process_cpu_ns() -> u64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: `usage` points to a writable `rusage`, and `RUSAGE_SELF` is a valid `who`;
    // getrusage writes the whole struct on success and touches nothing else.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
    assert_eq!(rc, 0, "getrusage(RUSAGE_SELF) cannot fail with valid arguments");
    // SAFETY: getrusage returned 0, so it initialised `usage` (and `zeroed` already had).
    let usage = unsafe { usage.assume_init() };
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_with_work_and_never_goes_back() {
        let before = process_cpu_ns();
        // Spin for ~20 ms of wall time: all of it is this thread's CPU.
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed() < std::time::Duration::from_millis(20) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let after = process_cpu_ns();
        assert!(after >= before + 5_000_000, "{before} -> {after}");
    }
}
