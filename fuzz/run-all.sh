#!/usr/bin/env bash
# Builds every fuzz target and runs each for N seconds (default 60) from its committed seed
# corpus and crash regressions; exits non-zero if any target crashed (or hung).
#
#   bash fuzz/run-all.sh [SECONDS] [TARGET...]
#
# Runs start from a temporary copy of fuzz/corpus/<target>, so new inputs never show up
# in git. A crash leaves its input in fuzz/artifacts/<target>/ (ignored by git): copy it
# to fuzz/regressions/<target>/ and `cargo test --test model_<target>` replays it.
# Needs a nightly toolchain and cargo-fuzz; installs both if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(topic_pattern bus_ops binding_cache config stats_text)
fi

rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked

# -a: debug assertions on (the library's `debug_assert!`s are checks too). The same
# flags for build and run, so `run` does not rebuild.
flags=(+nightly fuzz)
build=(--debug-assertions --fuzz-dir fuzz)
echo "==> building ${targets[*]}"
cargo "${flags[@]}" build "${build[@]}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=()
summary=()
for target in "${targets[@]}"; do
  corpus="$work/corpus-$target"
  mkdir -p "$corpus"
  cp -R "fuzz/corpus/$target/." "$corpus/" 2>/dev/null || true
  dirs=("$corpus")
  if [ -n "$(ls -A "fuzz/regressions/$target" 2>/dev/null)" ]; then
    dirs+=("fuzz/regressions/$target") # read-only: libFuzzer writes only to the first dir
  fi
  log="$work/$target.log"
  echo "==> $target: ${seconds}s"
  status=0
  # -timeout: a single input running this long is a hang (the checks' own hang guards
  # fire sooner, with a better message).
  cargo "${flags[@]}" run "${build[@]}" "$target" "${dirs[@]}" -- \
    -max_total_time="$seconds" -timeout=120 -print_final_stats=1 >"$log" 2>&1 || status=$?
  runs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)"
  rate="$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)"
  if [ "$status" -ne 0 ]; then
    mkdir -p "fuzz/artifacts/$target"
    cp "$log" "fuzz/artifacts/$target/fuzz.log"
    # What failed first (the input's Debug dump that follows can be long), then the end.
    grep -m 3 -A 6 -E 'panicked at|ERROR: libFuzzer|ERROR: AddressSanitizer|ERROR: LeakSanitizer' "$log" || true
    echo "..."
    tail -n 25 "$log"
    failed+=("$target")
    summary+=("$target: CRASHED (exit $status), see fuzz/artifacts/$target/ (fuzz.log, crash-*)")
  else
    summary+=("$target: ${runs:-?} runs, ${rate:-?} exec/s")
  fi
done

echo
echo "==> fuzz summary (${seconds}s each)"
printf '  %s\n' "${summary[@]}"
if [ ${#failed[@]} -ne 0 ]; then
  echo "fuzz: crashes in ${failed[*]}" >&2
  exit 1
fi
echo "fuzz: no crashes"
