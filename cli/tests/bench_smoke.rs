//! `shardcast bench` runs every scenario with every implementation and writes JSON in the
//! documented schema.

use std::process::Command;

#[test]
fn bench_runs_every_scenario_and_writes_versioned_json() {
    let dir = std::env::temp_dir().join(format!("shardcast-bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json_path = dir.join("bench.json");
    let svg_path = dir.join("bench.svg");
    let out = Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .args(["bench", "--events", "300", "--subscribers", "1,4", "--rate", "50000", "--json"])
        .arg(&json_path)
        .arg("--plot")
        .arg(&svg_path)
        .output()
        .expect("runs the binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("scenario"), "stdout is the table only: {stdout}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    assert_eq!(json["version"], 1);
    let rows = json["rows"].as_array().expect("rows");
    let impls = [
        "tokio-broadcast",
        "broadcast+worker+mpsc",
        "crossbeam-fanout",
        "async-broadcast",
        "disruptor",
        "shardcast",
        "floor (no library)",
    ];
    for (scenario, phase) in [
        ("fanout", "saturation"),
        ("fanout", "paced"),
        ("filtered", "saturation"),
        ("filtered", "paced"),
        ("slow", "paced"),
        ("slow", "paced+slow"),
    ] {
        for imp in impls {
            // The disruptor has no per-subscriber filter: all-match scenarios only.
            // The floor has no bound on lag: it does not run with the slow subscriber.
            let expected = usize::from(imp != "disruptor" || scenario != "filtered")
                * usize::from(imp != "floor (no library)" || phase != "paced+slow")
                * if scenario == "fanout" { 2 } else { 1 };
            let n = rows
                .iter()
                .filter(|r| {
                    r["scenario"] == scenario && r["phase"] == phase && r["implementation"] == imp
                })
                .count();
            assert_eq!(n, expected, "{scenario} {phase} {imp}");
        }
    }
    // `idle` runs only when named.
    assert!(rows.iter().all(|r| r["scenario"] != "idle"), "idle ran by default");
    for row in rows {
        for field in ["subscribers", "events", "deliveries", "expected_deliveries", "lost"] {
            assert!(row[field].is_u64(), "{field} in {row}");
        }
        for field in ["count", "p50", "p99", "p999", "max"] {
            assert!(row["latency_ns"][field].is_u64(), "latency_ns.{field} in {row}");
        }
        assert!(row["deliveries_per_s"].is_f64(), "{row}");
        // Every row did some work: its publisher alone spends CPU.
        assert!(row["cpu_ns"].as_u64().is_some_and(|ns| ns > 0), "cpu_ns in {row}");
        assert!(row["slow_subscriber"].is_boolean(), "{row}");
        assert!(row["mode"] == "async", "{row}");
        let lat = &row["latency_ns"];
        assert!(lat["p50"].as_u64() <= lat["p99"].as_u64(), "{row}");
        assert!(lat["p99"].as_u64() <= lat["max"].as_u64(), "{row}");
        // Saturation runs are lossless by construction, for every implementation.
        if row["phase"] == "saturation" {
            assert_eq!(row["lost"], 0, "{row}");
            assert_eq!(row["deliveries"], row["expected_deliveries"], "{row}");
        }
        if row["implementation"] == "tokio-broadcast" {
            assert_eq!(row["throughput_vs_tokio"], 1.0, "{row}");
        }
    }
    assert!(std::fs::read_to_string(&svg_path).unwrap().contains("<svg"));
    let _ = std::fs::remove_dir_all(&dir);
}

/// Runs `shardcast bench ARGS --json <tmp>` and returns its stdout and JSON rows.
fn bench_json(name: &str, args: &[&str]) -> (String, Vec<serde_json::Value>) {
    let dir = std::env::temp_dir().join(format!("shardcast-bench-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json_path = dir.join("bench.json");
    let out = Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .arg("bench")
        .args(args)
        .arg("--json")
        .arg(&json_path)
        .output()
        .expect("runs the binary");
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let rows = json["rows"].as_array().expect("rows").clone();
    (String::from_utf8_lossy(&out.stdout).into_owned(), rows)
}

#[test]
fn rates_run_each_paced_phase_once_per_rate() {
    let rates = [25_000u64, 50_000];
    let (stdout, rows) = bench_json(
        "rates",
        &[
            "--scenario",
            "fanout,slow",
            "--subscribers",
            "1,2",
            "--events",
            "300",
            "--rates",
            "25000,50000",
            "--only",
            "shardcast,tokio-broadcast",
        ],
    );
    let imps = ["shardcast", "tokio-broadcast"];
    for imp in imps {
        let count = |scenario: &str, phase: &str, rate: Option<u64>| {
            rows.iter()
                .filter(|r| {
                    r["scenario"] == scenario
                        && r["phase"] == phase
                        && r["implementation"] == imp
                        && r["rate"].as_u64() == rate
                })
                .count()
        };
        // Saturation does not depend on the rate: it runs once per subscriber count.
        assert_eq!(count("fanout", "saturation", None), 2, "{imp}");
        for rate in rates {
            assert_eq!(count("fanout", "paced", Some(rate)), 2, "{imp} at {rate}");
            assert_eq!(count("slow", "paced", Some(rate)), 1, "{imp} at {rate}");
            assert_eq!(count("slow", "paced+slow", Some(rate)), 1, "{imp} at {rate}");
        }
    }
    assert_eq!(rows.len(), 2 * (2 + 2 * (2 + 1 + 1)));
    for row in rows.iter().filter(|r| r["implementation"] == "tokio-broadcast") {
        // Each rate's rows are compared with tokio broadcast at that same rate.
        assert_eq!(row["throughput_vs_tokio"], 1.0, "{row}");
        if row["latency_ns"]["p50"].as_u64() > Some(0) {
            assert_eq!(row["p50_vs_tokio"], 1.0, "{row}");
        }
    }
    assert!(stdout.contains("rate sweep"), "{stdout}");
    for rate in rates {
        let labelled = stdout.lines().filter(|l| l.trim_start().starts_with(&rate.to_string()));
        // The sweep section: fanout at 2 subscriber counts, slow twice, per implementation.
        assert_eq!(labelled.count(), 2 * (2 + 2), "rate {rate} in {stdout}");
    }
}

#[test]
fn idle_measures_cpu_of_64_quiet_subscribers() {
    let (stdout, rows) = bench_json("idle", &["--scenario", "idle"]);
    let names: Vec<&str> = rows.iter().filter_map(|r| r["implementation"].as_str()).collect();
    assert_eq!(names, ["tokio-broadcast", "shardcast"], "{rows:?}");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    for row in &rows {
        assert_eq!(row["scenario"], "idle", "{row}");
        assert_eq!(row["subscribers"], 64, "{row}");
        assert_eq!(row["mode"], "async", "{row}");
        // A parked library may really spend nothing measurable: only the types and the
        // bounds are checked, never a timing.
        let cpu_ns = row["cpu_ns"].as_u64().expect("cpu_ns");
        let window_ns = row["window_ns"].as_u64().expect("window_ns");
        assert!(window_ns >= 1_000_000_000, "a 1 s window: {row}");
        let percent = row["idle_cpu_percent"].as_f64().expect("idle_cpu_percent");
        assert!((0.0..=100.0 * cores).contains(&percent), "{row}");
        let expected = cpu_ns as f64 * 100.0 / window_ns as f64;
        assert!((percent - expected).abs() < 1e-9, "{row}");
    }
    assert!(stdout.contains("% of a core") && stdout.contains("target: under 1 %"), "{stdout}");
}
