//! `ferry forward` and `ferry forward-server`: TCP connections carried over
//! a Ferry session, bytes both ways, half-close and reset carried, targets
//! not allowed refused.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::Duration;

use common::{Server, content, metrics_addr, sample, scrape};

/// A TCP server that reads until the client's FIN, then answers with what
/// it read reversed and "bye", then closes: it works only if half-close is
/// carried both ways.
fn reverse_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            std::thread::spawn(move || {
                let mut data = Vec::new();
                if conn.read_to_end(&mut data).is_err() {
                    return;
                }
                data.reverse();
                data.extend_from_slice(b"bye");
                let _ = conn.write_all(&data);
            });
        }
    });
    addr
}

/// A TCP server that resets every connection once it got a byte.
fn resetting_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { break };
            let mut byte = [0u8];
            let _ = conn.read(&mut byte);
            socket2::SockRef::from(&conn)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(conn);
        }
    });
    addr
}

/// A `forward-server` allowing `allowed`, and a `forward` to it with `extra`
/// flags.
fn forwarding(allowed: SocketAddr, extra: &[&str]) -> (Server, Server) {
    let server = Server::start(&[
        "forward-server",
        "--listen",
        "127.0.0.1:0",
        "--allow",
        &allowed.to_string(),
    ]);
    let to = server.addr.to_string();
    let mut args = vec!["forward", "--listen", "127.0.0.1:0", "--to", &to];
    args.extend_from_slice(extra);
    let forward = Server::start(&args);
    (server, forward)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
}

#[test]
fn bytes_and_half_close_cross_both_ways() {
    let (_server, forward) = forwarding(reverse_server(), &[]);
    // Several connections at once, each its own stream.
    let clients: Vec<_> = (0..4u64)
        .map(|i| {
            let addr = forward.addr;
            std::thread::spawn(move || {
                let data = content(300_000 + i as usize * 1000, i);
                let mut conn = connect(addr);
                conn.write_all(&data).unwrap();
                // Half-close: the server answers only after our FIN.
                conn.shutdown(Shutdown::Write).unwrap();
                let mut back = Vec::new();
                conn.read_to_end(&mut back).unwrap();
                let mut want = data;
                want.reverse();
                want.extend_from_slice(b"bye");
                assert!(back == want, "connection {i}: {} bytes back", back.len());
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
}

#[test]
fn a_reset_is_carried() {
    let target = resetting_server();
    let (_server, forward) = forwarding(target, &["--target", &target.to_string()]);
    let mut conn = connect(forward.addr);
    conn.write_all(b"x").unwrap();
    let mut buf = [0u8; 16];
    let err = conn
        .read(&mut buf)
        .expect_err("the reset arrives as an error");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}

#[test]
fn targets_not_allowed_are_refused() {
    let other = reverse_server();
    let (_server, forward) = forwarding(reverse_server(), &["--target", &other.to_string()]);
    let mut conn = connect(forward.addr);
    let _ = conn.write_all(b"hello");
    let mut buf = Vec::new();
    // Refused: the connection is reset (or closed) without a byte.
    match conn.read_to_end(&mut buf) {
        Ok(_) => assert!(buf.is_empty(), "{buf:?}"),
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
}

#[test]
fn forward_without_a_server_fails_at_start() {
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(config.path(), "[session]\nhandshake_timeout = 1500\n").unwrap();
    let free = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = common::run(&[
        "forward",
        "--listen",
        "127.0.0.1:0",
        "--to",
        &free.to_string(),
        "--config",
        config.path().to_str().unwrap(),
    ]);
    let (_, stderr) = common::text(&out);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("ferry forward-server --listen"), "{stderr}");
}

/// One round trip through `forward` at `addr`.
fn round_trip(addr: SocketAddr, data: &[u8]) -> Vec<u8> {
    let mut conn = connect(addr);
    conn.write_all(data).unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    conn.read_to_end(&mut back).unwrap();
    back
}

#[test]
fn forward_reconnects_when_the_session_dies() {
    let target = reverse_server();
    let config = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        config.path(),
        "[session]\nping_interval = 200\nhandshake_timeout = 3000\n",
    )
    .unwrap();
    let config = config.path().to_str().unwrap().to_owned();
    let server_args = |listen: &str| {
        vec![
            "forward-server".to_owned(),
            "--listen".into(),
            listen.into(),
            "--allow".into(),
            target.to_string(),
            "--config".into(),
            config.clone(),
        ]
    };
    let args = server_args("127.0.0.1:0");
    let server = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let udp = server.addr;
    let forward = Server::start(&[
        "forward",
        "--listen",
        "127.0.0.1:0",
        "--to",
        &udp.to_string(),
        "--config",
        &config,
    ]);
    assert_eq!(round_trip(forward.addr, b"abc"), b"cbabye");
    // The server goes away and comes back on the same port.
    drop(server);
    std::thread::sleep(Duration::from_millis(1500));
    let args = server_args(&udp.to_string());
    let _server = Server::start(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let mut conn = connect(forward.addr);
        conn.write_all(b"xyz").unwrap();
        conn.shutdown(Shutdown::Write).unwrap();
        let mut back = Vec::new();
        if conn.read_to_end(&mut back).is_ok() && back == b"zyxbye" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "forward did not reconnect"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn forward_server_serves_its_sessions_figures_to_prometheus() {
    let target = reverse_server();
    let server = Server::start(&[
        "forward-server",
        "--listen",
        "127.0.0.1:0",
        "--allow",
        &target.to_string(),
        "--metrics",
        "127.0.0.1:0",
    ]);
    let to = server.addr.to_string();
    let forward = Server::start(&[
        "forward",
        "--listen",
        "127.0.0.1:0",
        "--to",
        &to,
        "--metrics",
        "127.0.0.1:0",
    ]);
    let data = content(300_000, 9);
    let mut conn = connect(forward.addr);
    conn.write_all(&data).unwrap();
    conn.shutdown(Shutdown::Write).unwrap();
    let mut back = Vec::new();
    conn.read_to_end(&mut back).unwrap();
    assert_eq!(back.len(), data.len() + 3);

    let served = scrape(metrics_addr(&server));
    assert_eq!(
        sample(&served, "ferry_sessions_accepted_total"),
        Some(1.0),
        "{served}"
    );
    assert_eq!(
        sample(&served, "ferry_sessions_established_total"),
        Some(1.0),
        "{served}"
    );
    assert_eq!(
        sample(&served, "ferry_sessions_open"),
        Some(1.0),
        "{served}"
    );
    let received = sample(&served, "ferry_session_bytes_total{direction=\"received\"}").unwrap();
    assert!(received >= data.len() as f64, "{served}");
    assert_eq!(
        sample(&served, "ferry_session_handshake_seconds_count"),
        Some(1.0),
        "{served}"
    );
    let client = scrape(metrics_addr(&forward));
    assert_eq!(
        sample(&client, "ferry_sessions_started_total"),
        Some(1.0),
        "{client}"
    );
    let rtts = sample(&client, "ferry_session_rtt_seconds_count").unwrap();
    assert!(rtts > 0.0, "{client}");
}
