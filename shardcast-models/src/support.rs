//! What every target shares: the verdict, the hang guard, decoding, settling a bus.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use arbitrary::{Arbitrary, Unstructured};
use shardcast::Bus;

/// Hang guard for every bounded wait: long enough never to fire on a slow, sanitized,
/// loaded machine; short enough that a hang becomes a crash instead of a stuck fuzzer.
/// Never a timing assertion.
pub const HANG: Duration = Duration::from_secs(20);

/// What a check did with an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The input ran and every comparison agreed.
    Checked,
    /// The input was too large (or too short to decode) and was not run; a fuzz target
    /// returns `Corpus::Reject` so it does not enter the corpus.
    Rejected,
}

/// A sequence decoded from all the remaining bytes, one element after another, with no
/// length or "one more?" bytes in between (what `Vec`'s `arbitrary_take_rest` spends every
/// other byte on): random bytes make long sequences, so the proptest twins, which feed
/// plain random bytes, run as many ops per input as the fuzzer does.
///
/// Only as the last field of an input; elsewhere it decodes like a `Vec`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Seq<T>(pub Vec<T>);

impl<'a, T: Arbitrary<'a>> Arbitrary<'a> for Seq<T> {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Seq(Vec::arbitrary(u)?))
    }

    fn arbitrary_take_rest(mut u: Unstructured<'a>) -> arbitrary::Result<Self> {
        let mut items = Vec::new();
        // Every element takes at least one byte while any is left (its first integer or
        // enum tag does), so this ends.
        while !u.is_empty() {
            items.push(T::arbitrary(&mut u)?);
        }
        Ok(Seq(items))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (0, None)
    }
}

/// A byte string; as the last field of an input it takes all the remaining bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bytes(pub Vec<u8>);

impl<'a> Arbitrary<'a> for Bytes {
    fn arbitrary(u: &mut Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Bytes(<&[u8]>::arbitrary(u)?.to_vec()))
    }

    fn arbitrary_take_rest(u: Unstructured<'a>) -> arbitrary::Result<Self> {
        Ok(Bytes(u.take_rest().to_vec()))
    }

    fn size_hint(_depth: usize) -> (usize, Option<usize>) {
        (0, None)
    }
}

/// Decodes `data` the way `libfuzzer_sys::fuzz_target!(|input: I| ...)` does, then runs
/// `check`. Inputs libFuzzer would skip come back [`Verdict::Rejected`].
pub(crate) fn decode_and_check<'a, I: Arbitrary<'a>>(
    data: &'a [u8],
    check: impl FnOnce(&I) -> Verdict,
) -> Verdict {
    if data.len() < I::size_hint(0).0 {
        return Verdict::Rejected;
    }
    match I::arbitrary_take_rest(Unstructured::new(data)) {
        Ok(input) => check(&input),
        Err(_) => Verdict::Rejected,
    }
}

/// Waits until every shard has dispatched everything published, so every subscriber
/// queue holds exactly what the shards will ever push for the events so far. Polls the
/// shards' counters; a shard that never catches up fails the check after [`HANG`].
pub(crate) fn settle<E: Send + Sync + 'static>(bus: &Bus<E>) {
    let deadline = Instant::now() + HANG;
    loop {
        let published = bus.published();
        let behind = bus.shard_stats().iter().any(|s| s.dispatched < published);
        if !behind {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "hang: shards did not dispatch {published} events within {HANG:?}: {:?}",
            bus.shard_stats()
        );
        std::thread::yield_now();
    }
}

/// The files directly in `dir`, sorted by name, with their bytes; none if `dir` does not
/// exist. For replaying a seed corpus or the crash regressions of a target.
pub fn corpus_files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file() && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
            (p, bytes)
        })
        .collect()
}

/// Replays every file of `fuzz/<kind>/<target>/` (`kind`: `corpus` or `regressions`)
/// through `check`, which must accept each as [`Verdict::Checked`]. With `must_exist`, an
/// empty or missing folder fails (a seed corpus must be there).
pub fn replay(kind: &str, target: &str, must_exist: bool, check: fn(&[u8]) -> Verdict) {
    let dir: PathBuf = [env!("CARGO_MANIFEST_DIR"), "..", "fuzz", kind, target].iter().collect();
    let files = corpus_files(&dir);
    assert!(!must_exist || !files.is_empty(), "no files in {}", dir.display());
    for (path, data) in files {
        eprintln!("replaying {}", path.display());
        assert_eq!(check(&data), Verdict::Checked, "{}", path.display());
    }
}
