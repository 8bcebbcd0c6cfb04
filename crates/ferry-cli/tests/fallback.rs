//! `ferry send` to a `ferry receive` whose UDP port number is blackholed:
//! the sender falls back to WebSocket over TCP, says so, and every byte
//! arrives.

mod common;

use std::net::{TcpListener, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{assert_same_tree, make_tree, receiver, run, text};

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn send_reaches_receive_over_the_websocket_fallback_when_udp_is_blackholed() {
    let src = tempfile::tempdir().unwrap();
    let dst = tempfile::tempdir().unwrap();
    make_tree(src.path(), "tree", 3 << 20);
    // UDP to this port number is read and dropped; the receiver's TCP
    // fallback listens on the same number.
    // A port number free for UDP and, as far as can be told, for TCP.
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
    stop.store(true, Ordering::Relaxed);
    assert!(swallowing.join().unwrap() > 0, "UDP was tried first");
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
