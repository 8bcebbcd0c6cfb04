//! `ferry config check` on good and bad files, and one file shared by the
//! diode and the session tools.

mod common;

use common::{run, text};

fn check(contents: &str) -> (Option<i32>, String, String) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), contents).unwrap();
    let out = run(&["config", "check", file.path().to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    (out.status.code(), stdout, stderr)
}

#[test]
fn a_good_file_is_resolved_for_both_parts() {
    let (code, stdout, stderr) = check(
        "repair_percentage = 20\nmtu = 1500\n\n[receiver]\nsession_expiration_timeout = 9000\n\n\
         [session]\nmtu = 1400\ncongestion = \"cubic\"\nping_interval = 500\nrecv_window = 67108864\n",
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for want in [
        "diode settings (top level and [receiver]): OK",
        "repair_percentage = 20 %",
        "mtu = 1500 bytes",
        "session_expiration_timeout = 9000 ms",
        "session settings ([session]): OK",
        "mtu = 1400 bytes",
        "congestion = cubic",
        "ping_interval = 500 ms",
        "recv_window = 67108864 bytes",
        "handshake_timeout = 10000 ms",
        "key_file = none",
    ] {
        assert!(stdout.contains(want), "{want} missing from\n{stdout}");
    }
}

#[test]
fn bad_files_name_the_key_and_line() {
    for (contents, want) in [
        (
            "[session]\nmtu = 1400\ncolour = 3\n",
            vec!["colour", "line 3"],
        ),
        ("[session]\n\nmtu = 100\n", vec!["`mtu`", "line 3", "548"]),
        (
            "[session]\ncongestion = \"vegas\"\n",
            vec!["vegas", "line 2"],
        ),
        (
            "[session]\nmax_recv_window = 1000\n",
            vec!["`max_recv_window`", "line 2", "recv_window"],
        ),
        ("[session]\nping_interval = 0\n", vec!["`ping_interval`"]),
        ("repair_percentage = 5000\n", vec!["`repair_percentage`"]),
        ("mtu = \n", vec!["line 1"]),
    ] {
        let (code, stdout, stderr) = check(contents);
        assert_eq!(code, Some(1), "{contents}: {stdout}\n{stderr}");
        assert!(stdout.contains("INVALID"), "{contents}: {stdout}");
        for w in want {
            assert!(
                stderr.contains(w),
                "{contents}: `{w}` missing from {stderr}"
            );
        }
    }
}

#[test]
fn a_missing_key_file_is_reported() {
    let (code, _, stderr) = check("[session]\nkey_file = \"/nonexistent/ferry.key\"\n");
    assert_eq!(code, Some(6), "{stderr}");
    assert!(stderr.contains("/nonexistent/ferry.key"), "{stderr}");
}

#[test]
fn the_diode_tools_accept_a_session_table() {
    // diode-send-file only checks the file: an unknown session key is the
    // session tools' business, so the diode tool gets past the file and
    // fails at connecting (nothing listens there), not at the file.
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), "mtu = 1500\n[session]\nmtu = 1400\n").unwrap();
    let data = tempfile::NamedTempFile::new().unwrap();
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = run(&[
        "diode-send-file",
        data.path().to_str().unwrap(),
        "--to",
        &free.to_string(),
        "--config",
        file.path().to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert!(stderr.contains("ferry diode-send --listen"), "{stderr}");
    // And the session tools refuse an unknown key in [session] by name.
    std::fs::write(file.path(), "[session]\nmtuu = 1400\n").unwrap();
    let out = run(&[
        "send",
        data.path().to_str().unwrap(),
        "--to",
        "127.0.0.1:9",
        "--config",
        file.path().to_str().unwrap(),
    ]);
    let (_, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("mtuu"), "{stderr}");
}
