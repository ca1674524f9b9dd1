//! `shardcast bench` refuses bad input before it runs anything: values out of range exit 2
//! naming the flag and the range, oversized plans exit 2 with the estimate, unwritable
//! output paths exit 1 before the run. None of these cases runs a benchmark to its end: the
//! last one starts a row that cannot finish within its `--row-timeout` and checks that the
//! run stops with exit code 3, naming that row.

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardcast"))
        .arg("bench")
        .args(args)
        .output()
        .expect("runs the binary")
}

/// Asserts the exit code, that nothing was printed on stdout (no run, no table) and that
/// stderr holds every `needle`.
fn assert_refused(out: &Output, code: i32, needles: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "stderr: {stderr}");
    assert!(out.stdout.is_empty(), "stdout: {}", String::from_utf8_lossy(&out.stdout));
    for needle in needles {
        assert!(stderr.contains(needle), "{needle:?} not in stderr: {stderr}");
    }
}

#[test]
fn dispatchers_out_of_range_exit_2() {
    for value in ["0", "65", "100000"] {
        assert_refused(&bench(&["--dispatchers", value]), 2, &["--dispatchers"]);
    }
    assert_refused(&bench(&["--dispatchers", "100000"]), 2, &["1..=64"]);
}

#[test]
fn events_out_of_range_exit_2() {
    for value in ["0", "10000000000", "18446744073709551615", "18446744073709551616"] {
        assert_refused(&bench(&["--events", value]), 2, &["--events"]);
    }
    assert_refused(&bench(&["--events", "10000000000"]), 2, &["1..=1000000000"]);
}

#[test]
fn subscribers_out_of_range_exit_2() {
    assert_refused(
        &bench(&["--subscribers", "1000000", "--events", "10"]),
        2,
        &["--subscribers", "1..=10000"],
    );
    assert_refused(&bench(&["--subscribers", "1,0"]), 2, &["--subscribers"]);
}

#[test]
fn rate_out_of_range_exits_2() {
    assert_refused(&bench(&["--rate", "0"]), 2, &["--rate", "1..=1000000000"]);
}

#[test]
fn rates_out_of_range_or_beside_rate_exit_2() {
    assert_refused(&bench(&["--rates", "25000,0"]), 2, &["--rates", "1..=1000000000"]);
    assert_refused(&bench(&["--rates", "25000,x"]), 2, &["--rates"]);
    // `--rate` is the one-rate form of `--rates`: both at once is ambiguous.
    assert_refused(&bench(&["--rate", "1000", "--rates", "2000,3000"]), 2, &["--rate", "--rates"]);
}

#[test]
fn row_timeout_that_is_not_a_duration_exits_2() {
    for value in ["0s", "10", "1d", "-5s", "5 s"] {
        let arg = format!("--row-timeout={value}");
        assert_refused(&bench(&[&arg]), 2, &["--row-timeout"]);
    }
}

#[test]
fn unknown_implementation_or_phase_exits_2() {
    assert_refused(&bench(&["--only", "nope"]), 2, &["--only", "shardcast"]);
    assert_refused(&bench(&["--phase", "warmup"]), 2, &["--phase", "saturation"]);
}

#[test]
fn plan_longer_than_ten_minutes_is_refused_with_the_estimate() {
    // 10^8 events paced at 100 000/s: 1000 s per paced row.
    let out = bench(&["--events", "100000000"]);
    assert_refused(&out, 2, &["bench plan refused", "estimated time", "600 s", "--force"]);
}

#[test]
fn plan_larger_than_memory_is_refused_with_the_estimate() {
    // 64 subscribers x 10^9 events: terabytes of records, more than any test machine has.
    let out = bench(&[
        "--scenario",
        "fanout",
        "--phase",
        "saturation",
        "--subscribers",
        "64",
        "--events",
        "1000000000",
    ]);
    assert_refused(&out, 2, &["estimated memory", "MiB available", "--force"]);
}

#[test]
fn unwritable_json_path_fails_before_the_run() {
    let missing = std::env::temp_dir()
        .join(format!("shardcast-no-such-dir-{}", std::process::id()))
        .join("bench.json");
    // The default plan takes minutes: an empty stdout proves the path was checked first.
    let out = bench(&["--json", missing.to_str().unwrap()]);
    assert_refused(&out, 1, &["--json", "cannot write"]);
}

#[test]
fn unwritable_plot_path_fails_before_the_run() {
    let missing = std::env::temp_dir()
        .join(format!("shardcast-no-such-dir-plot-{}", std::process::id()))
        .join("bench.svg");
    let out = bench(&["--plot", missing.to_str().unwrap()]);
    assert_refused(&out, 1, &["--plot", "cannot write"]);
}

#[test]
fn a_row_past_its_row_timeout_is_given_up_with_exit_3_naming_it() {
    // 20 million events into one subscriber take seconds (and filling the receiver's
    // record buffer alone takes longer than 100 ms), so the row cannot finish in time.
    let started = std::time::Instant::now();
    let out = bench(&[
        "--scenario",
        "fanout",
        "--subscribers",
        "1",
        "--phase",
        "saturation",
        "--only",
        "shardcast",
        "--events",
        "20000000",
        "--row-timeout",
        "100ms",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "stderr: {stderr}");
    // The table is still printed, with the row marked (see also tests/bench_timeout.rs).
    assert!(stdout.contains("timed out after 100ms"), "stdout: {stdout}");
    for needle in
        ["`fanout saturation shardcast n=1`", "did not finish within 100ms", "--row-timeout"]
    {
        assert!(stderr.contains(needle), "{needle:?} not in stderr: {stderr}");
    }
    // It gave up at the limit, not after the row ran to its end.
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "{:?}", started.elapsed());
}
