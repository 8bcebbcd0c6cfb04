//! The starters (`ferry send`, `forward`, `perf client`) reaching their
//! listeners (`ferry receive`, `forward-server`, `perf server`) whose UDP
//! port number is blackholed: they fall back to WebSocket over TCP, say so,
//! and every byte arrives.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use common::{Server, assert_same_tree, content, make_tree, receiver, run, text};

const WAIT: Duration = Duration::from_secs(60);

/// A UDP socket that reads and drops everything sent to its port number,
/// on a number free for TCP too (the listener's fallback takes it there).
struct Blackhole {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    swallowing: Option<JoinHandle<u64>>,
}

impl Blackhole {
    fn new() -> Self {
        let hole = loop {
            let hole = UdpSocket::bind("127.0.0.1:0").unwrap();
            if TcpListener::bind(hole.local_addr().unwrap()).is_ok() {
                break hole;
            }
        };
        hole.set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = hole.local_addr().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let swallowing = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let mut buf = [0; 65_536];
                let mut swallowed = 0;
                while !stop.load(Ordering::Relaxed) {
                    if hole.recv_from(&mut buf).is_ok() {
                        swallowed += 1;
                    }
                }
                swallowed
            })
        };
        Self {
            addr,
            stop,
            swallowing: Some(swallowing),
        }
    }

    /// Stops swallowing; how many datagrams it swallowed.
    fn swallowed(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.swallowing.take().unwrap().join().unwrap()
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn send_reaches_receive_over_the_websocket_fallback_when_udp_is_blackholed() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    make_tree(src.path(), "tree", 3 << 20);
    // UDP to this port number is read and dropped; the receiver's TCP
    // fallback listens on the same number.
    let hole = Blackhole::new();
    let addr = hole.addr;
    let listen = addr.to_string();
    let server = receiver(dst.path(), &["--tcp-fallback-listen", &listen]);
    assert!(
        server
            .first
            .contains(&format!("WebSocket fallback on TCP {addr}")),
        "{}",
        server.first
    );
    let out = run(&[
        "send",
        src.path().join("tree").to_str().unwrap(),
        "--to",
        &listen,
        "--fallback-after",
        "0.5",
        "--progress",
        "lines",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("over WebSocket/TCP (UDP got no answer in 0.5 s)"),
        "{stdout}"
    );
    let (code, received, _) = server.wait(WAIT);
    assert_eq!(code, Some(0), "{received}");
    assert_same_tree(&src.path().join("tree"), &dst.path().join("tree"));
    assert!(hole.swallowed() > 0, "UDP was tried first");
}

#[test]
fn a_sender_with_the_fallback_says_it_went_over_udp_when_udp_answers() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("one.txt"), b"over UDP").unwrap();
    let server = receiver(dst.path(), &["--tcp-fallback"]);
    let out = run(&[
        "send",
        src.path().join("one.txt").to_str().unwrap(),
        "--to",
        &server.addr.to_string(),
        "--fallback-after",
        "2",
    ]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("over UDP"), "{stdout}");
    let (code, received, _) = server.wait(WAIT);
    assert_eq!(code, Some(0), "{received}");
    assert_eq!(
        std::fs::read(dst.path().join("one.txt")).unwrap(),
        b"over UDP"
    );
}

#[test]
fn forward_reaches_forward_server_over_the_websocket_fallback_when_udp_is_blackholed() {
    // The target: echoes what it read, reversed, after the client's FIN.
    let target = TcpListener::bind("127.0.0.1:0").unwrap();
    let target_addr = target.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in target.incoming() {
            let Ok(mut conn) = conn else { break };
            let mut data = Vec::new();
            if conn.read_to_end(&mut data).is_ok() {
                data.reverse();
                let _ = conn.write_all(&data);
            }
        }
    });
    let hole = Blackhole::new();
    let hole_addr = hole.addr.to_string();
    let _server = Server::start(&[
        "forward-server",
        "--listen",
        "127.0.0.1:0",
        "--tcp-fallback-listen",
        &hole_addr,
        "--allow",
        &target_addr.to_string(),
    ]);
    let forward = Server::start(&[
        "forward",
        "--listen",
        "127.0.0.1:0",
        "--to",
        &hole_addr,
        "--fallback-after",
        "0.5",
    ]);
    let mut conn = TcpStream::connect(forward.addr).unwrap();
    conn.set_read_timeout(Some(WAIT)).unwrap();
    let data = content(2 << 20, 7);
    conn.write_all(&data).unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    conn.read_to_end(&mut back).unwrap();
    let mut want = data;
    want.reverse();
    assert!(back == want, "{} bytes back", back.len());
    assert!(hole.swallowed() > 0, "UDP was tried first");
}

#[test]
fn perf_measures_over_the_websocket_fallback_when_udp_is_blackholed() {
    let hole = Blackhole::new();
    let hole_addr = hole.addr.to_string();
    let _server = Server::start(&[
        "perf",
        "server",
        "--listen",
        "127.0.0.1:0",
        "--tcp-fallback-listen",
        &hole_addr,
    ]);
    let output = run(&[
        "perf",
        "client",
        &hole_addr,
        "--fallback-after",
        "0.5",
        "-n",
        "3000000",
        "--both",
        "--json",
    ]);
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stderr}");
    let report: serde_json::Value =
        serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(report["upload"]["bytes"], 3_000_000, "{report}");
    assert_eq!(report["download"]["bytes"], 3_000_000, "{report}");
    assert!(hole.swallowed() > 0, "UDP was tried first");
}
