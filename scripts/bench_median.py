#!/usr/bin/env python3
"""Median of several `ringcast bench --json` runs, per row, as the README's tables show it.

    for i in 1 2 3; do ./target/release/ringcast bench --json run$i.json; done
    python3 scripts/bench_median.py run1.json run2.json run3.json

Per row (scenario, phase, subscribers, implementation): the median deliveries/s, the median
of each run's ratio to tokio broadcast and to the floor row *of the same run* (ratios are
only meaningful within one run on a shared machine), median p50/p99, and lost (max over
runs, so one lossy run shows).
"""
import json
import statistics
import sys


def key(row):
    subs = str(row["subscribers"]) + ("+1" if row["slow_subscriber"] else "")
    return (row["scenario"], row["phase"], subs)


def main(paths):
    runs = [json.load(open(p))["rows"] for p in paths]
    table = {}
    for rows in runs:
        by_set = {}
        for row in rows:
            by_set.setdefault(key(row), {})[row["implementation"]] = row
        for k, impls in by_set.items():
            tok = impls.get("tokio-broadcast")
            floor = impls.get("floor (no library)")
            for name, row in impls.items():
                cell = table.setdefault(k + (name,), {"dps": [], "tok": [], "floor": [],
                                                      "p50": [], "p99": [], "lost": []})
                cell["dps"].append(row["deliveries_per_s"])
                if tok:
                    cell["tok"].append(row["deliveries_per_s"] / tok["deliveries_per_s"])
                if floor:
                    cell["floor"].append(row["deliveries_per_s"] / floor["deliveries_per_s"])
                cell["p50"].append(row["latency_ns"]["p50"] / 1e3)
                if tok:
                    cell["p99"].append(row["latency_ns"]["p99"] / max(tok["latency_ns"]["p99"], 1))
                cell["lost"].append(row["lost"])
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    print(f"median of {len(paths)} runs")
    print("| scenario | phase | subs | implementation | deliveries/s | ×tokio | ×floor | p99/tok | lost (max) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for k in sorted(table, key=lambda k: (k[0], k[1], int(k[2].split("+")[0]), k[3])):
        c = table[k]
        floor = f"{med(c['floor']):.2f}" if c["floor"] else "—"
        print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {med(c['dps'])/1e6:.1f}M | "
              f"{med(c['tok']):.2f} | {floor} | {med(c['p99']):.2f} | {max(c['lost'])} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
