//! Faults on real sockets: a peer process killed without a close, sustained
//! heavy loss with reordering and duplication, and corrupted datagrams — on
//! every driver.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use ferry_async::{CloseReason, Config, EndpointConfig};
use ferry_relay::{LinkConfig, Relay};
use ferry_tests::harness::{Driver, Messages, Peer};

/// Keep-alive tight enough that a dead peer is noticed within about a second.
fn keepalive() -> Config {
    Config {
        ping_interval: Duration::from_millis(200),
        ping_packet_count: 3,
        ..Config::default()
    }
}

/// The peer process, killed when dropped even if the test fails first.
struct PeerProcess {
    child: Child,
    lines: BufReader<ChildStdout>,
}

impl PeerProcess {
    fn spawn(args: &[&str]) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ferry-test-peer"))
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .expect("start ferry-test-peer");
        let lines = BufReader::new(child.stdout.take().expect("stdout"));
        Self { child, lines }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.lines.read_line(&mut line).expect("read the peer");
        assert!(!line.is_empty(), "the peer process exited early");
        line.trim().to_owned()
    }

    /// `kill -9`: no close, no goodbye.
    fn kill(&mut self) {
        self.child.kill().expect("kill the peer");
        self.child.wait().expect("reap the peer");
    }
}

impl Drop for PeerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn killed_client_times_out_the_server(driver: Driver) {
    let server = driver.bind(
        "127.0.0.1:0".parse().unwrap(),
        EndpointConfig::from(Config {
            accept_incoming: true,
            ..keepalive()
        }),
    );
    let mut peer = PeerProcess::spawn(&["connect", &server.local_addr().to_string()]);
    let session = server.accept().expect("the peer's session");
    assert_eq!(&session.recv().unwrap()[..], b"hello");
    assert_eq!(peer.line(), "ready");
    peer.kill();
    assert_eq!(session.closed(), CloseReason::Timeout);
    assert_eq!(server.session_count(), 0);
    server.close();
}

fn killed_server_times_out_the_client(driver: Driver) {
    let mut peer = PeerProcess::spawn(&["listen"]);
    let line = peer.line();
    let addr = line
        .strip_prefix("addr ")
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("the peer said {line:?}"));
    let client = driver.bind(
        "127.0.0.1:0".parse().unwrap(),
        EndpointConfig::from(keepalive()),
    );
    let session = client.connect(addr).expect("connect to the peer");
    session.send(Bytes::from_static(b"hello")).unwrap();
    assert_eq!(peer.line(), "ready");
    peer.kill();
    assert_eq!(session.closed(), CloseReason::Timeout);
    client.close();
}

macro_rules! killed_peers {
    ($($client:ident, $server:ident: $driver:ident,)*) => {$(
        /// The client process is killed: the server's session ends with
        /// `Timeout` after its unanswered pings.
        #[test]
        fn $client() {
            killed_client_times_out_the_server(Driver::$driver);
        }

        /// The server process is killed: the client's session ends with
        /// `Timeout`.
        #[test]
        fn $server() {
            killed_server_times_out_the_client(Driver::$driver);
        }
    )*};
}

killed_peers! {
    killed_client_tokio, killed_server_tokio: Tokio,
    killed_client_async_std, killed_server_async_std: AsyncStd,
    killed_client_smol, killed_server_smol: Smol,
    killed_client_blocking, killed_server_blocking: Blocking,
}

/// A client and a server with the relay between them.
fn through_relay(
    driver: Driver,
    link: LinkConfig,
    config: Config,
    seed: u64,
) -> (Box<dyn Peer>, Box<dyn Peer>, Relay) {
    let server = driver.bind(
        "127.0.0.1:0".parse().unwrap(),
        EndpointConfig::from(Config {
            accept_incoming: true,
            ..config.clone()
        }),
    );
    let client = driver.bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::from(config));
    let relay = Relay::start(
        "127.0.0.1:0".parse().unwrap(),
        server.local_addr(),
        link.clone(),
        link,
        seed,
    )
    .unwrap();
    (client, server, relay)
}

/// Sends `count` messages of random sizes up to `max` bytes from client to
/// server, checks every byte, and waits for the server's answer.
fn exchange(
    client: &dyn Peer,
    server: Box<dyn Peer>,
    relay: &Relay,
    count: usize,
    max: usize,
) -> (Box<dyn ferry_tests::harness::Conn>, Box<dyn Peer>) {
    let mut sizes = Messages::new(count as u64, max);
    let plan: Vec<usize> = (0..count).map(|_| sizes.next_size()).collect();
    let expected = plan.clone();
    let receiver = thread::spawn(move || {
        let session = server.accept().expect("session");
        for (i, &size) in expected.iter().enumerate() {
            let data = session.recv().expect("message");
            assert!(Messages::check(i, size, &data), "message {i}");
        }
        session.send(Bytes::from_static(b"done")).unwrap();
        session.closed();
        server
    });
    let session = client
        .connect(relay.local_addr())
        .expect("connect through the relay");
    for (i, &size) in plan.iter().enumerate() {
        session.send(Messages::content(i, size)).unwrap();
    }
    assert_eq!(&session.recv().unwrap()[..], b"done");
    session.close(0);
    (session, receiver.join().unwrap())
}

fn heavy_loss_is_slow_but_exact(driver: Driver) {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(1))
        .random_loss(0.30)
        .reorder(0.05, Duration::from_millis(3))
        .duplicate(0.05);
    let (client, server, relay) = through_relay(driver, link, Config::default(), 30);
    let (session, server) = exchange(client.as_ref(), server, &relay, 60, 32 << 10);
    let stats = relay.stats();
    assert!(stats.to_upstream.link.lost > 50, "{stats:?}");
    assert!(stats.to_upstream.link.reordered > 0, "{stats:?}");
    assert!(stats.to_upstream.link.duplicated > 0, "{stats:?}");
    assert!(session.stats().retransmitted > 0);
    client.close();
    server.close();
}

fn corruption_is_dropped_and_counted(driver: Driver, config: Config) {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(1))
        .corrupt(0.01);
    let (client, server_peer, relay) = through_relay(driver, link, config, 1);
    let (_session, server) = exchange(client.as_ref(), server_peer, &relay, 200, 64 << 10);
    // Every corrupted datagram was refused: as malformed (it failed the
    // checksum or did not parse), as unauthenticated (it failed decryption),
    // or as for no session (the flipped bit was in the session id).
    let dropped = |p: &dyn Peer| {
        let s = p.stats();
        s.dropped_malformed + s.dropped_unauthenticated + s.dropped_unknown_session
    };
    let stats = relay.stats();
    assert_eq!(
        stats.to_upstream.send_errors + stats.to_client.send_errors,
        0
    );
    assert!(stats.to_upstream.link.corrupted > 0, "{stats:?}");
    assert_eq!(
        dropped(server.as_ref()),
        stats.to_upstream.link.corrupted,
        "server: {:?}",
        server.stats()
    );
    // The client may close before the last corrupted datagram reaches it.
    assert!(dropped(client.as_ref()) <= stats.to_client.link.corrupted);
    client.close();
    server.close();
}

macro_rules! lossy_links {
    ($($loss:ident, $corrupt:ident: $driver:ident,)*) => {$(
        /// 30% loss with reordering and duplication: every byte arrives, in order.
        #[test]
        fn $loss() {
            heavy_loss_is_slow_but_exact(Driver::$driver);
        }

        /// One bit flipped in 1% of datagrams: each one dropped and counted,
        /// the transfer exact.
        #[test]
        fn $corrupt() {
            corruption_is_dropped_and_counted(Driver::$driver, Config::default());
        }
    )*};
}

lossy_links! {
    heavy_loss_tokio, corruption_tokio: Tokio,
    heavy_loss_async_std, corruption_async_std: AsyncStd,
    heavy_loss_smol, corruption_smol: Smol,
    heavy_loss_blocking, corruption_blocking: Blocking,
}

/// With encryption, a flipped bit fails the AEAD tag instead of the checksum.
#[test]
fn corruption_of_encrypted_sessions_is_dropped_and_counted() {
    let config = Config {
        psk: Some(ferry_proto::crypto::PreSharedKey::from_bytes([7; 32])),
        ..Config::default()
    };
    corruption_is_dropped_and_counted(Driver::Tokio, config);
}
