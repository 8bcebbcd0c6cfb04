//! The metrics endpoints of the long-running commands, scraped from the
//! running binary.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{ferry, sample, scrape};

/// A stand-in for `diode-send`: takes each connection to its end, then
/// closes it cleanly (which `diode-send-dir` takes as "on the wire").
fn accepting_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            std::thread::spawn(move || {
                let mut sink = Vec::new();
                let _ = conn.read_to_end(&mut sink);
            });
        }
    });
    addr
}

#[test]
fn a_watching_send_dir_counts_the_files_and_sessions_it_sent() {
    let dir = tempfile::TempDir::new().unwrap();
    std::fs::write(dir.path().join("a.bin"), vec![1u8; 5000]).unwrap();
    std::fs::write(dir.path().join("b.bin"), vec![2u8; 7000]).unwrap();
    let to = accepting_server().to_string();
    let mut child = ferry()
        .args(["diode-send-dir", dir.path().to_str().unwrap(), "--to", &to])
        .args(["--interval-ms", "50", "--metrics", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    let metrics: SocketAddr = first
        .split("metrics at http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in {first:?}"));
    let deadline = Instant::now() + Duration::from_secs(60);
    let text = loop {
        let text = scrape(metrics);
        if sample(&text, "ferry_diode_dir_files_total") == Some(2.0) || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        sample(&text, "ferry_diode_dir_files_total"),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "ferry_diode_dir_bytes_total"),
        Some(12_000.0),
        "{text}"
    );
    let sessions = sample(&text, "ferry_diode_dir_sessions_total{outcome=\"sent\"}").unwrap();
    assert!(sessions >= 1.0, "{text}");
    assert_eq!(
        sample(&text, "ferry_diode_dir_sessions_total{outcome=\"failed\"}"),
        Some(0.0),
        "{text}"
    );
}
