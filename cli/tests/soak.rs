//! `shardcast soak`: a short run is clean and covers every overflow policy; a bad duration
//! is a usage error.

use std::process::{Command, Output};

fn shardcast(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardcast")).args(args).output().expect("run shardcast")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

#[test]
fn short_soak_passes_and_covers_every_overflow_policy() {
    let out = shardcast(&["soak", "--duration", "3s", "--seed", "1"]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "status {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}", out.status);
    assert!(stdout.contains("seed 1"), "the seed is printed:\n{stdout}");
    assert!(stdout.contains("soak: OK"), "{stdout}");
    let table = |policy: &str| stdout.lines().any(|l| l.starts_with(policy));
    for policy in ["DropNewest", "DropOldest", "Disconnect", "Block"] {
        assert!(table(policy), "no summary row for {policy}:\n{stdout}");
    }
}

#[test]
fn nonsense_duration_is_a_usage_error() {
    let out = shardcast(&["soak", "--duration", "nonsense"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr:\n{stderr}");
    assert!(stderr.contains("invalid value 'nonsense' for '--duration"), "stderr:\n{stderr}");
    assert!(stderr.contains("ms, s, m or h"), "stderr:\n{stderr}");
    assert!(out.stdout.is_empty());
}
