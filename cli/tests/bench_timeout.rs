//! A row that runs past `--row-timeout` is reported as timed out and the run goes on: the
//! other rows are still printed and written, and the exit code is 3.

use std::process::Command;

#[test]
fn a_timed_out_row_is_marked_and_the_others_are_kept() {
    let dir = std::env::temp_dir().join(format!("shardcast-bench-timeout-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let json_path = dir.join("bench.json");
    // The test hook makes every crossbeam row hang, deterministically; the limit is far
    // above what a 300-event row with one subscriber takes.
    let out = Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .env("SHARDCAST_BENCH_TEST_HANG", "crossbeam-fanout")
        .args(["bench", "--scenario", "fanout", "--subscribers", "1", "--events", "300"])
        .args(["--phase", "saturation", "--only", "tokio-broadcast,crossbeam-fanout,shardcast"])
        .args(["--row-timeout", "5s", "--json"])
        .arg(&json_path)
        .output()
        .expect("runs the binary");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "stdout: {stdout}\nstderr: {stderr}");
    assert!(stdout.contains("timed out after 5s"), "stdout: {stdout}");
    assert!(stderr.contains("crossbeam-fanout"), "stderr: {stderr}");

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let rows = json["rows"].as_array().expect("rows");
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["implementation"] == name)
            .unwrap_or_else(|| panic!("no {name} row in {json}"))
    };
    let hung = row("crossbeam-fanout");
    assert_eq!(hung["timed_out"], true);
    assert!(hung.get("deliveries_per_s").is_none(), "a timed-out row has no figures: {hung}");
    assert!(hung.get("latency_ns").is_none(), "a timed-out row has no figures: {hung}");
    for name in ["tokio-broadcast", "shardcast"] {
        let r = row(name);
        assert_eq!(r["timed_out"], false, "{r}");
        assert_eq!(r["deliveries"], 300, "{r}");
    }
    // shardcast ran after the timed-out row; tokio broadcast before it.
    assert_eq!(row("shardcast")["after_timeout"], true);
    assert_eq!(row("tokio-broadcast")["after_timeout"], false);
    std::fs::remove_dir_all(&dir).ok();
}
