//! The WebSocket fallback on every driver: with UDP blackholed, a session
//! falls back to a WebSocket connection over TCP and every byte arrives; a
//! full connection holds the sender back rather than losing datagrams; a
//! listener serves UDP and WebSocket sessions at once; a malformed
//! WebSocket peer is dropped without harming the others.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_async::types::{
    BindError, Config, EndpointConfig, FallbackConfig, FallbackStats, Transport,
};
use ferry_tests::harness::{Conn, Driver, Messages, Peer, within};

/// A UDP socket that reads and discards every datagram sent to it: UDP to
/// its port is blackholed, as by a firewall that drops it.
struct Blackhole {
    addr: SocketAddr,
    swallowed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl Blackhole {
    fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let addr = socket.local_addr().unwrap();
        let swallowed = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (count, done) = (swallowed.clone(), stop.clone());
        thread::spawn(move || {
            let mut buf = [0; 65_536];
            while !done.load(Ordering::Relaxed) {
                if socket.recv_from(&mut buf).is_ok() {
                    count.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Self {
            addr,
            swallowed,
            stop,
        }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A blackhole, and a listener whose WebSocket fallback listens on TCP at
/// the blackhole's port number (its UDP socket is elsewhere). Tries again
/// with another blackhole when a TCP socket of some other test holds that
/// port number.
fn listener_behind_hole(driver: Driver) -> (Blackhole, Box<dyn Peer>) {
    for _ in 0..20 {
        let hole = Blackhole::start();
        let mut config = EndpointConfig::server();
        config.fallback = FallbackConfig {
            listen_addr: Some(hole.addr),
            ..FallbackConfig::default()
        };
        match driver.try_bind("127.0.0.1:0".parse().unwrap(), config) {
            Ok(server) => return (hole, server),
            Err(BindError::FallbackListen { .. }) => continue,
            Err(e) => panic!("bind: {e}"),
        }
    }
    panic!("no port number free for both UDP and TCP");
}

/// A starter that falls back after 300 ms without an answer.
fn starter(driver: Driver) -> Box<dyn Peer> {
    let mut config = EndpointConfig::from(Config::default());
    config.fallback.after = Some(Duration::from_millis(300));
    driver.bind("127.0.0.1:0".parse().unwrap(), config)
}

/// Sends `count` messages of `max / 2` to `max` bytes on `from`; `to` checks
/// every byte of each, then answers "done". Returns the bytes sent.
fn transfer(from: &dyn Conn, to: Box<dyn Conn>, seed: u64, count: usize, max: usize) -> usize {
    let mut sizes = Messages::new(seed, max / 2);
    let plan: Vec<usize> = (0..count).map(|_| max - sizes.next_size()).collect();
    let total = plan.iter().sum();
    let expected = plan.clone();
    let receiver = thread::spawn(move || {
        for (i, &size) in expected.iter().enumerate() {
            let data = to.recv().expect("message");
            assert!(Messages::check(i, size, &data), "message {i}");
        }
        to.send(Bytes::from_static(b"done")).unwrap();
        to
    });
    for (i, &size) in plan.iter().enumerate() {
        from.send(Messages::content(i, size)).unwrap();
    }
    assert_eq!(&from.recv().unwrap()[..], b"done");
    drop(receiver.join().unwrap());
    total
}

/// Waits (at most 10 s) until the listener's counters satisfy `done`.
fn counters_reach(peer: &dyn Peer, done: impl Fn(&FallbackStats) -> bool) -> FallbackStats {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = peer.fallback_stats();
        if done(&stats) || Instant::now() > end {
            return stats;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

fn a_session_falls_back_to_websocket_when_udp_is_blackholed(driver: Driver) {
    within(120, move || {
        let (hole, server) = listener_behind_hole(driver);
        assert_eq!(server.fallback_addr(), Some(hole.addr));
        let client = starter(driver);
        let session = client
            .connect(hole.addr)
            .expect("connect through the fallback");
        assert_eq!(session.transport(), Transport::WebSocket);
        let accepted = server.accept().expect("the session");
        assert_eq!(accepted.transport(), Transport::WebSocket);
        assert!(
            hole.swallowed.load(Ordering::Relaxed) > 0,
            "UDP was tried first"
        );
        // Several MiB, every byte checked.
        let total = transfer(&*session, accepted, 1, 160, 64 << 10);
        assert!(total > 4 << 20, "{total} bytes");
        assert_eq!(client.fallback_stats().opened, 1);
        assert_eq!(server.fallback_stats().opened, 1);
        assert!(client.fallback_stats().datagrams_sent > 0);
        session.close(0);
        client.close();
        server.close();
    });
}

fn a_full_connection_holds_the_sender_back_instead_of_dropping(driver: Driver) {
    within(120, move || {
        let (_hole, server) = listener_behind_hole(driver);
        // The smallest outgoing buffer there is: full all the time.
        let mut config = EndpointConfig::from(Config::default());
        config.fallback.after = Some(Duration::from_millis(300));
        config.fallback.buffer = ferry_async::fallback::MIN_BUFFER;
        let client = driver.bind("127.0.0.1:0".parse().unwrap(), config);
        let session = client
            .connect(server.fallback_addr().unwrap())
            .expect("connect through the fallback");
        assert_eq!(session.transport(), Transport::WebSocket);
        let accepted = server.accept().expect("the session");
        let total = transfer(&*session, accepted, 4, 160, 64 << 10);
        assert!(total > 4 << 20, "{total} bytes");
        let stats = client.fallback_stats();
        assert_eq!(stats.datagrams_dropped, 0, "{stats:?}");
        assert_eq!(session.stats().lost, 0, "TCP loses nothing");
        session.close(0);
        client.close();
        server.close();
    });
}

fn a_listener_serves_a_udp_session_and_a_websocket_session_at_once(driver: Driver) {
    within(120, move || {
        let (hole, server) = listener_behind_hole(driver);
        let over_udp = starter(driver);
        let over_tcp = starter(driver);
        let udp = over_udp.connect(server.local_addr()).unwrap();
        assert_eq!(udp.transport(), Transport::Udp);
        let udp_peer = server.accept().unwrap();
        let ws = over_tcp.connect(hole.addr).unwrap();
        assert_eq!(ws.transport(), Transport::WebSocket);
        let ws_peer = server.accept().unwrap();
        assert_eq!(udp_peer.transport(), Transport::Udp);
        assert_eq!(ws_peer.transport(), Transport::WebSocket);
        let both = thread::spawn(move || {
            transfer(&*udp, udp_peer, 2, 60, 32 << 10);
            udp
        });
        transfer(&*ws, ws_peer, 3, 60, 32 << 10);
        drop(both.join().unwrap());
        assert_eq!(over_udp.fallback_stats().opened, 0);
    });
}

fn the_listener_accepts_the_fallback_on_its_own_port_number(driver: Driver) {
    within(60, move || {
        let mut config = EndpointConfig::server();
        config.fallback.listen = true;
        let server = driver.bind("127.0.0.1:0".parse().unwrap(), config);
        assert_eq!(server.fallback_addr(), Some(server.local_addr()));
        TcpStream::connect(server.local_addr()).expect("TCP on the UDP port number");
    });
}

/// Runs a client's side of the HTTP upgrade on `stream`; returns the
/// server's answer.
fn upgrade(stream: &mut TcpStream) -> String {
    write!(
        stream,
        "GET /ferry HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: ferry\r\n\r\n"
    )
    .unwrap();
    let mut answer = Vec::new();
    let mut byte = [0];
    while !answer.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
        answer.push(byte[0]);
    }
    String::from_utf8_lossy(&answer).into_owned()
}

fn a_malformed_websocket_peer_is_dropped_without_harming_other_sessions(driver: Driver) {
    within(120, move || {
        let (hole, server) = listener_behind_hole(driver);
        let client = starter(driver);
        let session = client.connect(hole.addr).unwrap();
        let accepted = server.accept().unwrap();
        // Garbage instead of an HTTP upgrade.
        let mut garbage = TcpStream::connect(hole.addr).unwrap();
        garbage.write_all(&[0xFF; 4096]).unwrap();
        // An upgrade, then a frame with a reserved bit, then one claiming
        // an exabyte.
        let mut bad = TcpStream::connect(hole.addr).unwrap();
        assert!(upgrade(&mut bad).starts_with("HTTP/1.1 101"));
        bad.write_all(&[0xC2, 0x80, 0, 0, 0, 0]).unwrap();
        let mut huge = TcpStream::connect(hole.addr).unwrap();
        assert!(upgrade(&mut huge).starts_with("HTTP/1.1 101"));
        huge.write_all(&[0x82, 0xFF, 0x0F, 0, 0, 0, 0, 0, 0, 0, 1, 2, 3, 4])
            .unwrap();
        let stats = counters_reach(&*server, |s| s.refused >= 1 && s.malformed >= 2);
        assert!(stats.refused >= 1, "{stats:?}");
        assert!(stats.malformed >= 2, "{stats:?}");
        // The good session goes on, every byte checked.
        transfer(&*session, accepted, 4, 40, 32 << 10);
        assert_eq!(session.transport(), Transport::WebSocket);
    });
}

fn a_refusal_over_udp_is_reported_once_the_fallback_failed_too(driver: Driver) {
    within(60, move || {
        // Nothing on this port number, neither UDP nor TCP: the ICMP error
        // waits while the fallback is tried, then fails the connect.
        let closed = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let client = starter(driver);
        let refused = client.connect(closed).err();
        assert_eq!(
            refused,
            Some(ferry_async::types::ConnectError::Failed(
                ferry_async::types::CloseReason::Refused
            ))
        );
        assert_eq!(client.fallback_stats().opened, 0);
    });
}

#[cfg(target_os = "linux")]
#[test]
fn a_sharded_endpoint_refuses_the_fallback_with_a_typed_error() {
    let mut config = EndpointConfig::server().with_shards(2);
    config.fallback.listen = true;
    let refused = Driver::Smol.try_bind("127.0.0.1:0".parse().unwrap(), config);
    assert!(matches!(refused.err(), Some(BindError::FallbackSharded(2))));
}

#[test]
fn a_buffer_too_small_for_the_largest_datagram_is_refused_with_a_typed_error() {
    let mut config = EndpointConfig::server();
    config.fallback.listen = true;
    config.fallback.buffer = 1000;
    let refused = Driver::Blocking.try_bind("127.0.0.1:0".parse().unwrap(), config);
    assert!(matches!(
        refused.err(),
        Some(BindError::FallbackBuffer { buffer: 1000, min }) if min > 65_535
    ));
}

ferry_tests::on_every_driver! {
    a_session_falls_back_to_websocket_when_udp_is_blackholed,
    a_full_connection_holds_the_sender_back_instead_of_dropping,
    a_listener_serves_a_udp_session_and_a_websocket_session_at_once,
    the_listener_accepts_the_fallback_on_its_own_port_number,
    a_malformed_websocket_peer_is_dropped_without_harming_other_sessions,
    a_refusal_over_udp_is_reported_once_the_fallback_failed_too,
}
