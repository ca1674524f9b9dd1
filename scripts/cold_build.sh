#!/usr/bin/env bash
# Cold debug build of scripts/hello-bus, with shardcast's default features and without
# them, alternating, three times each: prints each build's seconds and crate count
# (`cargo tree -e normal`, the program included). Usage: bash scripts/cold_build.sh
set -euo pipefail
cd "$(dirname "$0")/hello-bus"
cp Cargo.toml /tmp/hello-bus.Cargo.toml
trap 'cp /tmp/hello-bus.Cargo.toml Cargo.toml' EXIT
cargo fetch -q
for run in 1 2 3; do
  for features in lean default; do
    if [ "$features" = default ]; then
      sed 's/, default-features = false//' /tmp/hello-bus.Cargo.toml > Cargo.toml
    else
      cp /tmp/hello-bus.Cargo.toml Cargo.toml
    fi
    target=$(mktemp -d)
    start=$(date +%s.%N)
    cargo build -q --target-dir "$target"
    end=$(date +%s.%N)
    crates=$(cargo tree -e normal --prefix none | sort -u | wc -l)
    echo "$features run $run: $(echo "$end - $start" | bc) s, $crates crates"
    rm -rf "$target"
  done
done
