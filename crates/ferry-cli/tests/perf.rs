//! `ferry perf`: a client and a server measure the path between them,
//! memory to memory, and the report counts exactly what was asked for.

mod common;

use std::time::Duration;

use common::{Server, run, text};

/// Runs a client against `server` with `extra` flags and `--json`; the
/// report, parsed.
fn client(server: &Server, extra: &[&str]) -> serde_json::Value {
    let to = server.addr.to_string();
    let mut args = vec!["perf", "client", &to, "--json"];
    args.extend_from_slice(extra);
    let output = run(&args);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{args:?}: {stderr}");
    serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

#[test]
fn a_sized_test_each_way_counts_exactly_the_bytes_asked_for() {
    let server = Server::start(&["perf", "server", "--listen", "127.0.0.1:0"]);
    let up = client(&server, &["-n", "3000000", "-P", "2"]);
    assert_eq!(up["upload"]["bytes"], 3_000_000, "{up}");
    assert!(up["download"].is_null());
    assert!(up["upload"]["mbit_per_s"].as_f64().unwrap() > 0.0);
    assert!(up["upload"]["sender"]["packets_sent"].as_u64().unwrap() > 2000);
    let both = client(&server, &["-n", "2000000", "--both"]);
    assert_eq!(both["upload"]["bytes"], 2_000_000, "{both}");
    assert_eq!(both["download"]["bytes"], 2_000_000, "{both}");
    // The server's sending figures come back with its report.
    assert!(both["download"]["sender"]["packets_sent"].as_u64().unwrap() > 1000);
    assert!(both["limited_by"].is_array());
}

#[test]
fn a_timed_test_prints_interval_lines_and_a_summary() {
    let server = Server::start(&["perf", "server", "--listen", "127.0.0.1:0", "--once"]);
    let to = server.addr.to_string();
    let output = run(&[
        "perf",
        "client",
        &to,
        "--time",
        "1.5",
        "--interval",
        "0.5",
        "--download",
    ]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    assert!(stdout.contains("ferry perf: download with"), "{stdout}");
    assert!(
        stdout.lines().filter(|l| l.contains(" down ")).count() >= 2,
        "{stdout}"
    );
    assert!(
        stdout.contains("download: ") && stdout.contains("Mbit/s at the receiver"),
        "{stdout}"
    );
    assert!(stdout.contains("CPU: client"), "{stdout}");
    assert!(stdout.contains("limited by: "), "{stdout}");
    // --once: the server leaves after its test.
    let (code, _, _) = server.wait(Duration::from_secs(30));
    assert_eq!(code, Some(0));
}

#[test]
fn a_request_the_server_cannot_serve_is_refused_with_the_reason() {
    let server = Server::start(&["perf", "server", "--listen", "127.0.0.1:0"]);
    let to = server.addr.to_string();
    let output = run(&["perf", "client", &to, "-P", "1000", "-n", "1000"]);
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(stderr.contains("streams must be 1 to 64"), "{stderr}");
}
