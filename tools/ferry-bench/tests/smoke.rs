//! The benchmark binary runs end to end: every suite at tiny sizes, one
//! table printed, the JSON written and well-formed. No figure is ever
//! checked: these are debug builds on a shared machine.

use std::path::Path;
use std::process::Command;

/// Runs `ferry-bench` with `args` and `--json-dir json_dir`, checks that it
/// succeeded, and returns its stdout and stderr.
fn run(args: &[&str], json_dir: &Path) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry-bench"))
        .args(args)
        .arg("--json-dir")
        .arg(json_dir)
        .output()
        .expect("the bench binary starts");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(
        output.status.success(),
        "ferry-bench failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    (stdout, stderr)
}

#[test]
fn every_suite_runs_and_writes_its_figures() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (stdout, _) = run(
        &[
            "run",
            "bulk",
            "latency",
            "many",
            "efficiency",
            "sessions",
            "diode",
            "--quick",
            "--bulk-mib",
            "2",
            "--round-trips",
            "50",
            "--many-sessions",
            "10",
            "--many-mib",
            "1,2",
            "--sim-mb",
            "1",
            "--sim-gbit-mb",
            "2",
            "--sessions-mib",
            "2",
            "--handshakes",
            "10",
            "--idle-sessions",
            "50",
            "--connects",
            "20",
            "--connects-in-flight",
            "5",
            "--diode-mib",
            "1",
            "--diode-rates",
            "1000,300",
        ],
        dir.path(),
    );
    assert!(stdout.contains("ratio = value / baseline"), "{stdout}");
    // One pair of many rows per size, the derived rows, the connect rates.
    for row in [
        "many: 10 sessions of 1 MiB, aggregate",
        "many: 10 sessions of 2 MiB CPU",
        "many: 10 sessions, steady-state CPU",
        "sessions: connect rate, clear",
        "sessions: connect rate, psk CPU",
    ] {
        assert!(stdout.contains(row), "no row {row}\n{stdout}");
    }

    let suites = ["bulk", "latency", "many", "efficiency", "sessions", "diode"];
    let all: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("bench.json")).expect("bench.json written"),
    )
    .expect("bench.json parses");
    let rows = all["rows"].as_array().expect("rows");
    for suite in suites {
        assert!(
            rows.iter()
                .any(|r| r["suite"] == suite && r["value"].is_number()),
            "no row of {suite} in bench.json"
        );
        assert!(
            stdout.contains(&format!("-- {suite}")),
            "{suite} missing from the table"
        );
        let one: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(format!("{suite}.json")))
                .expect("the suite's file written"),
        )
        .expect("the suite's file parses");
        assert_eq!(one["suite"], suite);
    }
}

#[test]
fn the_many_suite_runs_with_sharded_endpoints() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (stdout, stderr) = run(
        &[
            "run",
            "many",
            "--quick",
            "--bulk-mib",
            "1",
            "--many-sessions",
            "10",
            "--many-mib",
            "1",
            "--shards",
            "2",
        ],
        dir.path(),
    );
    assert!(stderr.contains("2 shards per endpoint"), "{stderr}");
    assert!(
        stdout.contains("many: 10 sessions of 1 MiB, 2 shards, aggregate"),
        "{stdout}"
    );
}
