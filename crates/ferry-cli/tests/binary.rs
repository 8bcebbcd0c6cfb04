//! The built `ferry` binary: help for every tool, and the exit codes (0
//! success, 1 other failure, 2 usage, 3 network, ...: see `ferry --help`).

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
fn runtime_failures_exit_with_their_code_and_say_what_to_do() {
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
    // Connection refused: a network failure, 3.
    assert_eq!(out.status.code(), Some(3));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("ferry diode-send --listen"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

const SESSION_TOOLS: [(&str, &[&str]); 5] = [
    ("send", &["--to", "--key-file", "--config", "--progress"]),
    (
        "receive",
        &[
            "--listen",
            "--dir",
            "--overwrite",
            "--once",
            "--key-file",
            "--config",
        ],
    ),
    (
        "forward",
        &["--listen", "--to", "--target", "--key-file", "--config"],
    ),
    (
        "forward-server",
        &["--listen", "--allow", "--key-file", "--config"],
    ),
    ("config", &["check"]),
];

#[test]
fn every_session_tool_has_help_and_the_exit_codes_are_listed() {
    let top = String::from_utf8(ferry(&["--help"]).stdout).unwrap();
    for (tool, flags) in SESSION_TOOLS {
        assert!(top.contains(tool), "{tool} missing from:\n{top}");
        let out = ferry(&[tool, "--help"]);
        assert_eq!(out.status.code(), Some(0), "{tool} --help");
        let help = String::from_utf8(out.stdout).unwrap();
        for flag in flags {
            assert!(help.contains(flag), "{tool} lacks {flag}: {help}");
        }
    }
    for line in [
        "Exit codes:",
        "3    network",
        "4    authentication",
        "5    integrity",
        "6    local I/O",
        "FERRY_LOG",
        "--verbose",
        "--quiet",
    ] {
        assert!(top.contains(line), "{line} missing from:\n{top}");
    }
}

#[test]
fn wrong_arguments_get_a_helpful_message_and_exit_2() {
    for (args, hint) in [
        (&["send", "x"][..], "--to"),
        (&["send", "--to", "127.0.0.1:9"], "FILE_OR_DIR"),
        (&["send", "x", "--to", "nohost"], "HOST:PORT"),
        (&["send", "x", "--to", "h:99999"], "port"),
        (&["receive", "--listen", "127.0.0.1:0"], "--dir"),
        (&["receive", "--listen", "here", "--dir", "d"], "--listen"),
        (&["forward-server", "--listen", "127.0.0.1:0"], "--allow"),
        (&["forward", "--listen", "127.0.0.1:0"], "--to"),
        (
            &["send", "x", "--to", "127.0.0.1:9", "--progress", "fancy"],
            "lines",
        ),
        (&["config"], "check"),
        (&["-q", "-v", "config", "check", "f"], "cannot be used with"),
        (&["teleport"], "unrecognized subcommand"),
    ] {
        let out = ferry(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.contains(hint), "{args:?}: `{hint}` missing from {err}");
    }
}

#[test]
fn quiet_prints_nothing_but_errors() {
    let out = ferry(&["-q", "config", "check", "/nonexistent.toml"]);
    assert_eq!(out.status.code(), Some(6));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("/nonexistent.toml"), "{err}");
}
