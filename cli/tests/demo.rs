//! The `shardcast` binary: `demo` reports every subscriber, usage errors exit non-zero.

use std::process::{Command, Output};

fn shardcast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardcast")).args(args).output().expect("run shardcast")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

/// The whitespace-separated fields of the table row for `name`.
fn row(stdout: &str, name: &str) -> Vec<String> {
    let line = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row for {name} in:\n{stdout}"));
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn demo_reports_every_subscriber_and_exits_0() {
    let out = shardcast(&["demo"]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "status {:?}\nstderr:\n{}", out.status, text(&out.stderr));
    // name shard capacity overflow received seqs lagged dropped
    assert_eq!(
        row(&stdout, "audit"),
        ["audit", "0", "1024", "DropNewest", "20", "0..=19", "-", "0"]
    );
    assert_eq!(
        row(&stdout, "dashboard"),
        ["dashboard", "1", "4", "DropOldest", "4", "16..=19", "16", "16"]
    );
    assert_eq!(row(&stdout, "billing"), ["billing", "0", "4", "Block", "20", "0..=19", "-", "0"]);
}

#[test]
fn help_lists_demo() {
    for args in [&["--help"][..], &["help"]] {
        let out = shardcast(args);
        assert!(out.status.success(), "{args:?}: {:?}", out.status);
        assert!(text(&out.stdout).contains("demo"), "{args:?}");
    }
}

#[test]
fn unknown_subcommand_prints_usage_and_exits_2() {
    let out = shardcast(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Usage:"), "stderr:\n{}", text(&out.stderr));
    assert!(out.stdout.is_empty());
}

#[test]
fn no_subcommand_prints_usage_and_exits_2() {
    let out = shardcast(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("Usage:"));
}
