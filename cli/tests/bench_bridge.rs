//! `shardcast bench --scenario bridge` runs plain async-nats and the shardcast-nats bridge
//! against a `nats-server` it starts itself, prints both in one table with the ratios and
//! the targets, and writes them to `--json`. When the server cannot start, the
//! bridge rows say why and the other scenarios still run.

use std::process::{Command, Output};

fn bench(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .arg("bench")
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("runs the binary")
}

fn nats_server_on_path() -> bool {
    Command::new("nats-server").arg("--version").output().is_ok_and(|o| o.status.success())
}

#[test]
fn bridge_rows_compare_shardcast_nats_with_plain_async_nats() {
    if !nats_server_on_path() {
        eprintln!("SKIPPED: nats-server is not on PATH (Debian/Ubuntu package nats-server)");
        return;
    }
    let json_path =
        std::env::temp_dir().join(format!("shardcast-bench-bridge-{}.json", std::process::id()));
    let json_arg = json_path.to_str().expect("a UTF-8 temp dir");
    let out = bench(
        &["--scenario", "bridge", "--events", "500", "--rate", "5000", "--json", json_arg],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.starts_with("scenario"), "stdout is the table only: {stdout}");
    assert!(stdout.contains("thr/plain") && stdout.contains("p99/plain"), "{stdout}");
    for phase in ["saturation", "paced"] {
        for imp in ["plain async-nats", "shardcast-nats"] {
            let line = stdout
                .lines()
                .find(|l| l.starts_with("bridge") && l.contains(phase) && l.contains(imp))
                .unwrap_or_else(|| panic!("no {phase} {imp} row in {stdout}"));
            assert!(!line.contains("not run"), "{line}");
        }
    }
    assert!(stdout.contains("throughput (saturation) >= 0.80x plain:"), "{stdout}");
    assert!(stdout.contains("p99 (paced)              <= 1.20x plain:"), "{stdout}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json_path);
    let rows = json["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 4, "{json}");
    for row in rows {
        assert_eq!(row["scenario"], "bridge", "{row}");
        assert!(row["error"].is_null(), "{row}");
        assert_eq!(row["payload_bytes"], 1024, "{row}");
        // 500 events fit every queue on the way: nothing is lost, on either side.
        assert_eq!(row["expected_deliveries"], 500, "{row}");
        assert_eq!(row["deliveries"], 500, "{row}");
        assert_eq!(row["lost"], 0, "{row}");
        let lat = &row["latency_ns"];
        assert!(lat["p50"].as_u64() <= lat["p99"].as_u64(), "{row}");
        assert!(row["throughput_vs_plain"].is_f64(), "{row}");
        assert!(row["p99_vs_plain"].is_f64(), "{row}");
        if row["implementation"] == "plain async-nats" {
            assert_eq!(row["throughput_vs_plain"], 1.0, "{row}");
        }
    }
}

#[test]
fn bridge_rows_say_why_when_nats_server_cannot_start_and_the_rest_runs() {
    let out = bench(
        &[
            "--scenario",
            "fanout,bridge",
            "--subscribers",
            "1",
            "--only",
            "shardcast",
            "--events",
            "100",
        ],
        &[("SHARDCAST_NATS_SERVER", "/nonexistent/nats-server")],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    let fanout = stdout.lines().filter(|l| l.starts_with("fanout")).count();
    assert_eq!(fanout, 2, "the fanout rows run: {stdout}");
    let bridge: Vec<&str> = stdout.lines().filter(|l| l.starts_with("bridge ")).collect();
    assert_eq!(bridge.len(), 4, "{stdout}");
    for line in bridge {
        assert!(line.contains("not run: cannot start nats-server"), "{line}");
        assert!(line.contains("/nonexistent/nats-server"), "{line}");
    }
    assert!(stdout.contains("throughput (saturation) >= 0.80x plain: not measured"), "{stdout}");
}
