#!/usr/bin/env python3
"""Median of several `shardcast bench --json` runs, per row, as the README's tables show it.

    for i in 1 2 3; do ./target/release/shardcast bench --json run$i.json; done
    python3 scripts/bench_median.py run1.json run2.json run3.json

Per row (scenario, phase, subscribers, implementation): the median deliveries/s, the median
of each run's ratio to tokio broadcast and to the floor row *of the same run* (ratios are
only meaningful within one run on a shared machine), the median p50 in µs, the median of each
run's p50 and p99 ratios to tokio broadcast, lost (max over runs, so one lossy run
shows), and the median CPU time of the row in ms (`cpu_ns`; "—" for JSON written before
the bench measured it). With several paced rates (`shardcast bench --rates`) the phase
reads e.g. `paced @25000/s`: one row set per rate.

`bridge` rows (`shardcast bench --scenario bridge`) get a table of their own: per phase and
implementation, the median msgs/s, p50 and p99, lost (max), and the median of each run's
ratios to plain async-nats (`throughput_vs_plain`, `p99_vs_plain`). A row that did not run
(`error`) is left out of its medians and counted.

`idle` rows (`shardcast bench --scenario idle`) get a table of their own too: per
implementation, the median and the largest `idle_cpu_percent`.
"""
import json
import statistics
import sys


def key(row, sweep):
    """Row set: scenario, phase (with its rate when the runs swept `--rates`), subscribers."""
    subs = str(row["subscribers"]) + ("+1" if row["slow_subscriber"] else "")
    phase = row["phase"]
    if sweep and row.get("rate") is not None:
        phase = f"{phase} @{row['rate']}/s"
    return (row["scenario"], phase, subs)


def bridge_table(runs):
    table = {}
    bridge_rows = [row for rows in runs for row in rows if row["scenario"] == "bridge"]
    sweep = len({row.get("rate") for row in bridge_rows} - {None}) > 1
    for rows in runs:
        for row in rows:
            if row["scenario"] != "bridge":
                continue
            cell = table.setdefault((key(row, sweep)[1], row["implementation"]),
                                    {"mps": [], "p50": [], "p99": [], "lost": [], "thr": [],
                                     "p99x": [], "not_run": 0})
            if row.get("error"):
                cell["not_run"] += 1
                continue
            cell["mps"].append(row["deliveries_per_s"])
            cell["p50"].append(row["latency_ns"]["p50"] / 1e3)
            cell["p99"].append(row["latency_ns"]["p99"] / 1e3)
            cell["lost"].append(row["lost"])
            if row.get("throughput_vs_plain") is not None:
                cell["thr"].append(row["throughput_vs_plain"])
            if row.get("p99_vs_plain") is not None:
                cell["p99x"].append(row["p99_vs_plain"])
    if not table:
        return
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    print(f"bridge: median of {len(runs)} runs")
    print("| phase | implementation | msgs/s | p50 µs | p99 µs | lost (max) | thr/plain | p99/plain | not run |")
    print("|---|---|---|---|---|---|---|---|---|")
    order = {"saturation": 0, "paced": 1}
    for k in sorted(table, key=lambda k: (order.get(k[0], 2), k[1] != "plain async-nats")):
        c = table[k]
        lost = max(c["lost"]) if c["lost"] else "—"
        print(f"| {k[0]} | {k[1]} | {med(c['mps'])/1e3:.0f}k | {med(c['p50']):.0f} | "
              f"{med(c['p99']):.0f} | {lost} | {med(c['thr']):.2f} | {med(c['p99x']):.2f} | "
              f"{c['not_run']} |")


def idle_table(runs):
    table = {}
    for rows in runs:
        for row in rows:
            if row["scenario"] == "idle":
                table.setdefault(row["implementation"], []).append(row["idle_cpu_percent"])
    if not table:
        return
    print(f"idle: median of {len(runs)} runs, CPU as % of one core (target: under 1 %)")
    print("| implementation | % of a core | max |")
    print("|---|---|---|")
    for name, xs in sorted(table.items()):
        print(f"| {name} | {statistics.median(xs):.3f} | {max(xs):.3f} |")


def main(paths):
    # A row that timed out (`"timed_out": true`) has no figures: skipped.
    runs = [[row for row in json.load(open(p))["rows"] if not row.get("timed_out")]
            for p in paths]
    bridge_table(runs)
    idle_table(runs)
    runs = [[row for row in rows if row["scenario"] not in ("bridge", "idle")] for rows in runs]
    if not any(runs):
        return
    # More than one paced rate (`--rates`): rows at different rates are different row sets.
    sweep = len({row.get("rate") for rows in runs for row in rows} - {None}) > 1
    table = {}
    for rows in runs:
        by_set = {}
        for row in rows:
            by_set.setdefault(key(row, sweep), {})[row["implementation"]] = row
        for k, impls in by_set.items():
            tok = impls.get("tokio-broadcast")
            floor = impls.get("floor (no library)")
            for name, row in impls.items():
                cell = table.setdefault(k + (name,), {"dps": [], "tok": [], "floor": [],
                                                      "p50": [], "p50x": [], "p99": [],
                                                      "lost": [], "cpu": []})
                cell["dps"].append(row["deliveries_per_s"])
                if tok:
                    cell["tok"].append(row["deliveries_per_s"] / tok["deliveries_per_s"])
                if floor:
                    cell["floor"].append(row["deliveries_per_s"] / floor["deliveries_per_s"])
                cell["p50"].append(row["latency_ns"]["p50"] / 1e3)
                if tok:
                    cell["p50x"].append(row["latency_ns"]["p50"] / max(tok["latency_ns"]["p50"], 1))
                    cell["p99"].append(row["latency_ns"]["p99"] / max(tok["latency_ns"]["p99"], 1))
                cell["lost"].append(row["lost"])
                if row.get("cpu_ns") is not None:
                    cell["cpu"].append(row["cpu_ns"] / 1e6)
    med = lambda xs: statistics.median(xs) if xs else float("nan")
    print(f"median of {len(paths)} runs")
    print("| scenario | phase | subs | implementation | deliveries/s | ×tokio | ×floor | p50 µs | p50/tok | p99/tok | lost (max) | cpu ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for k in sorted(table, key=lambda k: (k[0], k[1], int(k[2].split("+")[0]), k[3])):
        c = table[k]
        floor = f"{med(c['floor']):.2f}" if c["floor"] else "—"
        cpu = f"{med(c['cpu']):.1f}" if c["cpu"] else "—"
        print(f"| {k[0]} | {k[1]} | {k[2]} | {k[3]} | {med(c['dps'])/1e6:.1f}M | "
              f"{med(c['tok']):.2f} | {floor} | {med(c['p50']):.1f} | {med(c['p50x']):.2f} | "
              f"{med(c['p99']):.2f} | {max(c['lost'])} | {cpu} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
