#!/usr/bin/env python3
"""Run one criterion bench several times and print, per row, the median of the runs'
medians and each run's ratio to a reference row (ratios are taken within a run, since this
machine is shared and noisy).

    cargo bench --bench publish --no-run
    python3 scripts/criterion_runs.py --runs 5 --bench publish --reference shardcast \\
        '^publish(_send_side)?/(shardcast|shardcast_counted_topic|shardcast_publish_to|tokio_broadcast)/1$'

Each run is `cargo bench --bench BENCH -- --warm-up-time 1 --measurement-time 3 FILTER`;
the figures are criterion's median time per iteration, read from
`target/criterion/<group>/<row>/<param>/new/estimates.json`.
"""
import argparse
import json
import os
import re
import statistics
import subprocess


def medians(root):
    found = {}
    for dirpath, _, files in os.walk(root):
        if dirpath.endswith(os.sep + "new") and "estimates.json" in files:
            rel = os.path.relpath(os.path.dirname(dirpath), root)
            with open(os.path.join(dirpath, "estimates.json")) as f:
                found[rel.replace(os.sep, "/")] = json.load(f)["median"]["point_estimate"]
    return found


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--bench", required=True)
    ap.add_argument("--reference", required=True, help="row name the ratios are taken against")
    ap.add_argument("filter")
    args = ap.parse_args()
    root = os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "criterion")
    pattern = re.compile(args.filter)
    runs = []
    for i in range(args.runs):
        start = {k: v for k, v in medians(root).items()}
        subprocess.run(
            ["cargo", "bench", "-q", "--bench", args.bench, "--", "--warm-up-time", "1",
             "--measurement-time", "3", args.filter],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        now = medians(root)
        # Only rows this run measured: matching the filter and changed since before it.
        run = {k: v for k, v in now.items() if pattern.search(k) and start.get(k) != v}
        runs.append(run)
        print(f"run {i + 1}: " + "  ".join(f"{k} {v:.1f} ns" for k, v in sorted(run.items())))
    print()
    print("| row | median ns | median ratio to reference | ratios per run |")
    print("|---|---|---|---|")
    for row in sorted({k for run in runs for k in run}):
        group, name, param = row.rsplit("/", 2)
        ref = f"{group}/{args.reference}/{param}"
        times = [run[row] for run in runs if row in run]
        ratios = [run[row] / run[ref] for run in runs if row in run and ref in run]
        per_run = ", ".join(f"{r:.2f}" for r in ratios)
        ratio = f"{statistics.median(ratios):.2f}" if ratios else "-"
        print(f"| {row} | {statistics.median(times):.1f} | {ratio} | {per_run} |")


if __name__ == "__main__":
    main()
