//! Real sockets on 127.0.0.1 through a relay.

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ferry_relay::{LinkConfig, Profile, Relay, RelayStats};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Datagrams a [`Server`] received, with their source.
type Log = Arc<Mutex<Vec<(SocketAddr, Vec<u8>)>>>;

/// A server behind the relay: records every datagram and, if `echo`, sends it back.
struct Server {
    addr: SocketAddr,
    received: Log,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    fn start(echo: bool) -> Server {
        Server::bind(loopback(), echo)
    }

    fn bind(addr: SocketAddr, echo: bool) -> Server {
        let socket = UdpSocket::bind(addr).unwrap();
        socket.set_read_timeout(Some(ms(10))).unwrap();
        let addr = socket.local_addr().unwrap();
        let received: Log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let received = Arc::clone(&received);
            let stop = Arc::clone(&stop);
            thread::spawn(move || {
                let mut buf = vec![0u8; 65_536];
                while !stop.load(Ordering::Relaxed) {
                    if let Ok((len, from)) = socket.recv_from(&mut buf) {
                        received.lock().unwrap().push((from, buf[..len].to_vec()));
                        if echo {
                            socket.send_to(&buf[..len], from).unwrap();
                        }
                    }
                }
            })
        };
        Server {
            addr,
            received,
            stop,
            thread: Some(thread),
        }
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    fn payloads(&self) -> Vec<Vec<u8>> {
        let received = self.received.lock().unwrap();
        received.iter().map(|(_, p)| p.clone()).collect()
    }

    fn sources(&self) -> HashSet<SocketAddr> {
        let received = self.received.lock().unwrap();
        received.iter().map(|(from, _)| *from).collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

fn client() -> UdpSocket {
    let socket = UdpSocket::bind(loopback()).unwrap();
    socket.set_read_timeout(Some(ms(1000))).unwrap();
    socket
}

fn relay(server: &Server, to_upstream: LinkConfig, to_client: LinkConfig) -> Relay {
    Relay::start(loopback(), server.addr, to_upstream, to_client, 7).unwrap()
}

/// Polls until `done` holds or `timeout` passes; returns whether it held.
fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(ms(2));
    }
}

/// Sends `count` datagrams made by `make`, pausing briefly every 50 so that no socket
/// buffer overflows on a loaded machine.
fn send_paced(socket: &UdpSocket, to: SocketAddr, count: u32, make: impl Fn(u32) -> Vec<u8>) {
    for i in 0..count {
        socket.send_to(&make(i), to).unwrap();
        if i % 50 == 49 {
            thread::sleep(ms(1));
        }
    }
}

fn numbered(i: u32, len: usize) -> Vec<u8> {
    let mut v = vec![(i % 251) as u8; len.max(4)];
    v[..4].copy_from_slice(&i.to_be_bytes());
    v
}

fn number_of(datagram: &[u8]) -> u32 {
    u32::from_be_bytes(datagram[..4].try_into().unwrap())
}

/// Waits until the link of one direction has released everything it accepted.
fn wait_drained(
    relay: &Relay,
    timeout: Duration,
    dir: impl Fn(&RelayStats) -> &ferry_relay::DirectionStats,
) -> bool {
    wait_until(timeout, || {
        let stats = relay.stats();
        let d = dir(&stats);
        d.link.sent == d.link.lost + d.link.queue_dropped + d.link.delivered - d.link.duplicated
    })
}

#[test]
fn perfect_link_forwards_both_ways_intact() {
    let server = Server::start(true);
    let relay = relay(&server, LinkConfig::default(), LinkConfig::default());
    let client = client();
    // 65,507 bytes is the largest UDP payload over IPv4.
    let sizes = [0usize, 1, 5, 1200, 1472, 9000, 65_507];
    let mut total = 0u64;
    for (i, &len) in sizes.iter().enumerate() {
        let payload: Vec<u8> = (0..len).map(|b| (b * 7 + i) as u8).collect();
        client.send_to(&payload, relay.local_addr()).unwrap();
        let mut buf = vec![0u8; 65_536];
        let (got, from) = client.recv_from(&mut buf).unwrap();
        assert_eq!(from, relay.local_addr());
        assert_eq!(&buf[..got], &payload[..], "size {len}");
        total += len as u64;
    }
    // A burst, answered in order on a perfect link.
    for i in 0..200 {
        client
            .send_to(&numbered(i, 100), relay.local_addr())
            .unwrap();
    }
    let mut buf = [0u8; 256];
    for i in 0..200 {
        let (got, _) = client.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..got], &numbered(i, 100)[..]);
    }
    total += 200 * 100;

    let stats = relay.stats();
    for dir in [&stats.to_upstream, &stats.to_client] {
        assert_eq!(dir.link.sent, sizes.len() as u64 + 200);
        assert_eq!(dir.link.sent_bytes, total);
        assert_eq!(dir.link.delivered_bytes, total);
        assert_eq!(dir.forwarded, dir.link.sent);
        assert_eq!((dir.link.lost, dir.blackholed, dir.send_errors), (0, 0, 0));
    }
    assert_eq!((stats.clients, stats.rejected), (1, 0));
    // The server saw the relay's upstream-facing socket, not the client.
    let sources = server.sources();
    assert_eq!(sources.len(), 1);
    assert!(!sources.contains(&client.local_addr().unwrap()));
}

#[test]
fn random_loss_drops_about_the_configured_fraction() {
    let server = Server::start(false);
    let relay = relay(
        &server,
        LinkConfig::default().random_loss(0.2),
        LinkConfig::default(),
    );
    let client = client();
    let n = 2000;
    send_paced(&client, relay.local_addr(), n, |i| numbered(i, 100));
    wait_until(ms(1500), || {
        relay.stats().to_upstream.link.sent == u64::from(n)
    });
    let stats = relay.stats().to_upstream;
    assert!(
        stats.link.sent >= 1900,
        "relay saw only {} datagrams",
        stats.link.sent
    );
    let rate = stats.link.lost as f64 / stats.link.sent as f64;
    assert!((rate - 0.2).abs() <= 0.05, "loss rate {rate}");
    assert_eq!(stats.forwarded, stats.link.sent - stats.link.lost);

    // The server sees the same thing.
    wait_until(ms(1000), || server.count() as u64 == stats.forwarded);
    let received = server.count() as f64;
    let end_to_end = 1.0 - received / f64::from(n);
    assert!(
        (end_to_end - 0.2).abs() <= 0.05,
        "end-to-end loss {end_to_end}"
    );
}

#[test]
fn duplication_and_reordering_happen_and_are_counted() {
    let server = Server::start(false);
    let to_upstream = LinkConfig::default()
        .latency(ms(1))
        .reorder(0.2, ms(5))
        .duplicate(0.1);
    let relay = relay(&server, to_upstream, LinkConfig::default());
    let client = client();
    let n = 1000;
    send_paced(&client, relay.local_addr(), n, |i| numbered(i, 64));
    wait_until(ms(1500), || {
        relay.stats().to_upstream.link.sent == u64::from(n)
    });
    assert!(wait_drained(&relay, ms(1000), |s| &s.to_upstream));
    let stats = relay.stats().to_upstream;
    let sent = stats.link.sent as f64;
    let dup_rate = stats.link.duplicated as f64 / sent;
    let reorder_rate = stats.link.reordered as f64 / sent;
    assert!((dup_rate - 0.1).abs() <= 0.05, "duplicate rate {dup_rate}");
    assert!(
        (reorder_rate - 0.2).abs() <= 0.05,
        "reorder rate {reorder_rate}"
    );
    assert_eq!(stats.forwarded, stats.link.sent + stats.link.duplicated);

    wait_until(ms(1000), || server.count() as u64 == stats.forwarded);
    let mut seen = vec![0u32; n as usize];
    let mut out_of_order = 0;
    let mut highest = None;
    for payload in server.payloads() {
        assert_eq!(payload, numbered(number_of(&payload), 64));
        let k = number_of(&payload);
        seen[k as usize] += 1;
        if highest.is_some_and(|h| k < h) {
            out_of_order += 1;
        }
        highest = highest.max(Some(k));
    }
    let twice = seen.iter().filter(|&&c| c == 2).count() as u64;
    assert!(seen.iter().all(|&c| c <= 2));
    assert!(
        twice > 0 && twice <= stats.link.duplicated,
        "{twice} duplicates seen"
    );
    assert!(out_of_order > 0, "nothing arrived out of order");
}

#[test]
fn blackhole_drops_everything_while_active_then_forwarding_resumes() {
    let server = Server::start(true);
    let relay = relay(&server, LinkConfig::default(), LinkConfig::default());
    let client = client();
    let mut buf = [0u8; 64];
    client.send_to(b"before", relay.local_addr()).unwrap();
    let (len, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"before");

    let hole = ms(400);
    let t0 = Instant::now();
    relay.blackhole(hole);
    for _ in 0..10 {
        client.send_to(b"during", relay.local_addr()).unwrap();
    }
    // Nothing can come back while the blackhole lasts.
    client.set_read_timeout(Some(ms(250))).unwrap();
    if let Ok((len, _)) = client.recv_from(&mut buf) {
        assert!(
            t0.elapsed() >= hole,
            "{:?} arrived during the blackhole",
            String::from_utf8_lossy(&buf[..len])
        );
    }
    let stats = relay.stats();
    assert!(stats.to_upstream.blackholed >= 1);
    assert_eq!(
        stats.to_upstream.blackholed,
        10 - stats.to_upstream.forwarded + 1
    );

    // Afterwards the path works again.
    thread::sleep(hole.saturating_sub(t0.elapsed()));
    client.set_read_timeout(Some(ms(1000))).unwrap();
    client.send_to(b"after", relay.local_addr()).unwrap();
    loop {
        let (len, _) = client.recv_from(&mut buf).unwrap();
        assert!(t0.elapsed() >= hole);
        if &buf[..len] == b"after" {
            break;
        }
    }
}

#[test]
fn blackhole_drops_datagrams_already_in_flight() {
    let server = Server::start(false);
    let relay = relay(
        &server,
        LinkConfig::default().latency(ms(300)),
        LinkConfig::default(),
    );
    let client = client();
    client.send_to(b"in flight", relay.local_addr()).unwrap();
    assert!(wait_until(ms(1000), || relay.stats().to_upstream.link.sent == 1));
    relay.blackhole(ms(600));
    assert!(wait_until(ms(1000), || relay
        .stats()
        .to_upstream
        .link
        .delivered
        == 1));
    let stats = relay.stats().to_upstream;
    assert_eq!(
        (
            stats.blackholed,
            stats.blackholed_in_flight,
            stats.forwarded
        ),
        (1, 1, 0)
    );
    assert_eq!(server.count(), 0);
    // Ending the blackhole early restores the path.
    relay.blackhole(Duration::ZERO);
    client.send_to(b"next", relay.local_addr()).unwrap();
    assert!(wait_until(ms(1500), || server.count() == 1));
}

#[test]
fn two_client_sockets_get_their_own_replies() {
    let server = Server::start(true);
    let relay = relay(
        &server,
        LinkConfig::default(),
        LinkConfig::default().latency(ms(2)),
    );
    let clients = [client(), client(), client()];
    let per_client = 50u32;
    for i in 0..per_client {
        for (c, socket) in clients.iter().enumerate() {
            let tag = format!("client {c} message {i}");
            socket.send_to(tag.as_bytes(), relay.local_addr()).unwrap();
        }
    }
    let mut buf = [0u8; 64];
    for (c, socket) in clients.iter().enumerate() {
        for i in 0..per_client {
            let (len, from) = socket.recv_from(&mut buf).unwrap();
            assert_eq!(from, relay.local_addr());
            assert_eq!(&buf[..len], format!("client {c} message {i}").as_bytes());
        }
    }
    // Nothing else arrives.
    for socket in &clients {
        socket.set_nonblocking(true).unwrap();
        assert!(socket.recv_from(&mut buf).is_err());
    }
    assert_eq!(relay.stats().clients, 3);
    let sources = server.sources();
    assert_eq!(sources.len(), 3);
    for socket in &clients {
        assert!(!sources.contains(&socket.local_addr().unwrap()));
    }
}

#[test]
fn latency_delays_the_round_trip() {
    let server = Server::start(true);
    let path = LinkConfig::default().latency(ms(30));
    let relay = relay(&server, path.clone(), path);
    let client = client();
    let mut buf = [0u8; 16];
    for _ in 0..3 {
        let start = Instant::now();
        client.send_to(b"ping", relay.local_addr()).unwrap();
        client.recv_from(&mut buf).unwrap();
        assert!(
            start.elapsed() >= ms(60),
            "round trip {:?}",
            start.elapsed()
        );
    }
}

#[test]
fn a_named_profile_applies_its_path() {
    let server = Server::start(true);
    let profile: Profile = "long-fat".parse().unwrap();
    let relay = Relay::with_profile(loopback(), server.addr, profile, 7).unwrap();
    let client = client();
    let mut buf = [0u8; 16];
    let start = Instant::now();
    client.send_to(b"ping", relay.local_addr()).unwrap();
    client.recv_from(&mut buf).unwrap();
    // long-fat: a 200 ms round trip, no loss.
    assert!(
        start.elapsed() >= profile.rtt(),
        "round trip {:?}",
        start.elapsed()
    );
    let stats = relay.stats();
    assert_eq!(
        (stats.to_upstream.forwarded, stats.to_client.forwarded),
        (1, 1)
    );
}

#[test]
fn corruption_flips_one_bit_per_datagram() {
    let server = Server::start(false);
    let relay = relay(
        &server,
        LinkConfig::default().corrupt(1.0),
        LinkConfig::default(),
    );
    let client = client();
    let n = 200;
    send_paced(&client, relay.local_addr(), n, |_| vec![0xA5; 64]);
    assert!(wait_until(ms(1500), || server.count() == n as usize));
    for payload in server.payloads() {
        let flipped: u32 = payload.iter().map(|b| (b ^ 0xA5).count_ones()).sum();
        assert_eq!((payload.len(), flipped), (64, 1));
    }
    let stats = relay.stats().to_upstream;
    assert_eq!(stats.link.corrupted, u64::from(n));
    assert_eq!(stats.link.sent_bytes, u64::from(n) * 64);
}

#[test]
fn set_config_changes_conditions_from_now_on() {
    let server = Server::start(false);
    let relay = relay(
        &server,
        LinkConfig::default().random_loss(1.0),
        LinkConfig::default(),
    );
    let client = client();
    send_paced(&client, relay.local_addr(), 20, |i| numbered(i, 8));
    assert!(wait_until(ms(1000), || relay.stats().to_upstream.link.lost == 20));
    relay.set_to_upstream(LinkConfig::default());
    send_paced(&client, relay.local_addr(), 20, |i| numbered(i, 8));
    assert!(wait_until(ms(1000), || server.count() == 20));
    relay.set_to_client(LinkConfig::default().random_loss(1.0));
    assert_eq!(relay.stats().to_upstream.link.lost, 20);
}

#[test]
fn invalid_config_is_rejected() {
    let server = Server::start(false);
    let err = Relay::start(
        loopback(),
        server.addr,
        LinkConfig::default().random_loss(1.5),
        LinkConfig::default(),
        0,
    )
    .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
#[should_panic(expected = "invalid LinkConfig")]
fn set_invalid_config_panics() {
    let server = Server::start(false);
    let relay = relay(&server, LinkConfig::default(), LinkConfig::default());
    relay.set_to_client(LinkConfig::default().duplicate(f64::NAN));
}

#[test]
fn drop_stops_promptly_and_frees_the_ports() {
    let server = Server::start(true);
    let relay = relay(
        &server,
        LinkConfig::default(),
        LinkConfig::default().latency(ms(50)),
    );
    let client = client();
    client.send_to(b"x", relay.local_addr()).unwrap();
    client.recv_from(&mut [0u8; 8]).unwrap();
    let listen = relay.local_addr();
    let upstream_facing: Vec<SocketAddr> = server.sources().into_iter().collect();
    // Something still in flight must not delay shutdown.
    client.send_to(b"y", relay.local_addr()).unwrap();
    let start = Instant::now();
    drop(relay);
    assert!(start.elapsed() < ms(500), "drop took {:?}", start.elapsed());
    UdpSocket::bind(listen).unwrap();
    for addr in upstream_facing {
        UdpSocket::bind(addr).unwrap();
    }
}

#[test]
fn ipv6_loopback_if_available() {
    let Ok(probe) = UdpSocket::bind("[::1]:0") else {
        return; // No IPv6 on this machine.
    };
    drop(probe);
    let server = Server::bind("[::1]:0".parse().unwrap(), true);
    let relay = Relay::start(
        "[::1]:0".parse().unwrap(),
        server.addr,
        LinkConfig::default(),
        LinkConfig::default(),
        1,
    )
    .unwrap();
    let client = UdpSocket::bind("[::1]:0").unwrap();
    client.set_read_timeout(Some(ms(1000))).unwrap();
    client.send_to(b"six", relay.local_addr()).unwrap();
    let mut buf = [0u8; 8];
    let (len, _) = client.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"six");
    assert!(server.sources().iter().all(SocketAddr::is_ipv6));
}
