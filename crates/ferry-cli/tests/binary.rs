//! The built `ferry` binary: help for every diode tool, and the exit codes
//! (0 success, 1 runtime failure, 2 usage).

use std::process::Command;

fn ferry(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferry"))
        .args(args)
        .env("FERRY_LOG", "off")
        .output()
        .expect("the ferry binary runs")
}

const DIODE_TOOLS: [&str; 5] = [
    "diode-send",
    "diode-receive",
    "diode-send-file",
    "diode-receive-file",
    "diode-send-dir",
];

#[test]
fn every_diode_tool_has_help() {
    let top = ferry(&["--help"]);
    assert!(top.status.success());
    let top = String::from_utf8(top.stdout).unwrap();
    for tool in DIODE_TOOLS {
        assert!(top.contains(tool), "{tool} missing from:\n{top}");
        let out = ferry(&[tool, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{tool} --help");
        let help = String::from_utf8(out.stdout).unwrap();
        assert!(help.contains(&format!("Usage: ferry {tool}")), "{help}");
        assert!(help.contains("--config <FILE>"), "{tool}: {help}");
    }
    let help = String::from_utf8(ferry(&["diode-send", "--help"]).stdout).unwrap();
    for flag in [
        "--listen",
        "--to",
        "--bind",
        "--repair-percentage",
        "--bandwidth",
        "--mtu",
        "--block-size",
        "--heartbeat",
    ] {
        assert!(help.contains(flag), "diode-send lacks {flag}: {help}");
    }
}

#[test]
fn usage_errors_exit_with_2() {
    for args in [
        &["diode-send", "--listen", "127.0.0.1:0"][..],
        &[
            "diode-receive",
            "--listen",
            "not-an-address",
            "--to",
            "127.0.0.1:9",
        ],
        &["diode-send-file", "--to", "127.0.0.1:9"],
        &[
            "diode-send-dir",
            "x",
            "--to",
            "127.0.0.1:9",
            "--files-per-session",
            "0",
        ],
        &[
            "diode-send-dir",
            "x",
            "--to",
            "127.0.0.1:9",
            "--after-send",
            "shred",
        ],
    ] {
        let out = ferry(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn runtime_failures_exit_with_1_and_say_what_to_do() {
    let dir = std::env::temp_dir().join(format!("ferry-binary-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("bad.toml");
    std::fs::write(&config, "[receiver]\nsession_expiry = 5000\n").unwrap();
    let out = ferry(&[
        "diode-receive",
        "--listen",
        "127.0.0.1:0",
        "--to",
        "127.0.0.1:9",
        "--config",
        config.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("session_expiry"), "{err}");

    // Nothing listens on the port given: the message says what to start.
    let file = dir.join("a.txt");
    std::fs::write(&file, b"x").unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = ferry(&[
        "diode-send-file",
        file.to_str().unwrap(),
        "--to",
        &free.to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("ferry diode-send --listen"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
