//! `ferry bench` with only the binary: a cheap suite runs end to end, its
//! children being `ferry bench-role …`, and the table is printed. No figure
//! is checked: this is a debug build on a shared machine.
//!
//! `ferry bench` is built in with the `bench` feature (`cargo test -p
//! ferry-cli --features bench`); without it, the command (and `ferry demo
//! --simulated`) says how to get it and fails as a usage error.

use std::process::Command;

#[cfg(feature = "bench")]
#[test]
fn bench_runs_a_suite_and_prints_the_table() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(["bench", "--quick", "latency", "--round-trips", "50"])
        .env("FERRY_LOG", "off")
        .output()
        .expect("the ferry binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "ferry bench failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("-- latency"), "{stdout}");
    // Rows measured in child processes (Ferry on tokio, raw UDP) are there.
    assert!(stdout.contains("ferry tokio"), "{stdout}");
    assert!(stdout.contains("ratio = value / baseline"), "{stdout}");
    // Without --json-dir, no JSON is written.
    assert!(!stdout.contains("figures written"), "{stdout}");
}

#[test]
fn the_role_subcommand_is_hidden() {
    let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
        .arg("--help")
        .output()
        .expect("the ferry binary runs");
    let help = String::from_utf8_lossy(&output.stdout);
    assert!(help.contains("bench"), "{help}");
    assert!(!help.contains("bench-role"), "{help}");
}

#[cfg(not(feature = "bench"))]
#[test]
fn without_the_feature_bench_and_simulated_say_how_to_get_them() {
    for args in [
        &["bench", "--quick", "latency", "--round-trips", "50"][..],
        &["bench"],
        &["demo", "--simulated"],
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_ferry"))
            .args(args)
            .env("FERRY_LOG", "off")
            .output()
            .expect("the ferry binary runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}");
        assert!(
            stderr.contains("not built into this binary"),
            "{args:?}: {stderr}"
        );
        assert!(stderr.contains("--features bench"), "{args:?}: {stderr}");
    }
}
