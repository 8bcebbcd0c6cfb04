//! Faults on real sockets: a peer process killed without a close, sustained
//! heavy loss with reordering and duplication, and corrupted datagrams — on
//! every driver.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use ferry_async::{CloseReason, Config, EndpointConfig};
use ferry_relay::LinkConfig;
use ferry_tests::harness::{Driver, Peer, exchange, through_relay};

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

fn heavy_loss_is_slow_but_exact(driver: Driver) {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(1))
        .random_loss(0.30)
        .reorder(0.05, Duration::from_millis(3))
        .duplicate(0.05);
    let (client, server, relay) = through_relay(driver, link, Config::default(), 30);
    let (stats, server) = exchange(client.as_ref(), server, relay.local_addr(), 60, 32 << 10);
    let link = relay.stats();
    assert!(link.to_upstream.link.lost > 50, "{link:?}");
    assert!(link.to_upstream.link.reordered > 0, "{link:?}");
    assert!(link.to_upstream.link.duplicated > 0, "{link:?}");
    assert!(stats.retransmitted > 0, "{stats:?}");
    client.close();
    server.close();
}

fn corruption_is_dropped_and_counted(driver: Driver, config: Config) {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(1))
        .corrupt(0.01);
    let (client, server_peer, relay) = through_relay(driver, link, config, 1);
    let (_, server) = exchange(
        client.as_ref(),
        server_peer,
        relay.local_addr(),
        200,
        64 << 10,
    );
    // Every corrupted datagram was refused: as malformed (it failed the
    // checksum or did not parse), as unauthenticated (it failed decryption),
    // or as for no session (the flipped bit was in the session id). Late
    // packets of a session already forgotten count as for no session too, so
    // those bound the count from above only.
    let certain = |p: &dyn Peer| {
        let s = p.stats();
        s.dropped_malformed + s.dropped_unauthenticated
    };
    let unknown = |p: &dyn Peer| p.stats().dropped_unknown_session;
    let stats = relay.stats();
    assert_eq!(
        stats.to_upstream.send_errors + stats.to_client.send_errors,
        0
    );
    let corrupted = stats.to_upstream.link.corrupted;
    assert!(corrupted > 0, "{stats:?}");
    let server_stats = server.stats();
    assert!(
        certain(server.as_ref()) <= corrupted
            && corrupted <= certain(server.as_ref()) + unknown(server.as_ref()),
        "{corrupted} corrupted on the way to the server: {server_stats:?}"
    );
    // The client may close before the last corrupted datagram reaches it.
    assert!(certain(client.as_ref()) <= stats.to_client.link.corrupted);
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

/// What a diode receiver said about each session.
#[derive(Debug, Default)]
struct DiodeOutcome {
    data: usize,
    bytes: Vec<u8>,
    finished: Option<u64>,
    lost: Option<ferry_diode::LossReason>,
}

/// Takes receiver events until `done` holds.
fn diode_events(
    receiver: &ferry_diode::DiodeReceiver,
    outcomes: &mut std::collections::BTreeMap<u64, DiodeOutcome>,
    keep_bytes: bool,
    done: impl Fn(&std::collections::BTreeMap<u64, DiodeOutcome>) -> bool,
) {
    use ferry_diode::ReceiverEvent;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done(outcomes) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let event = receiver
            .recv_event_timeout(left)
            .unwrap_or_else(|e| panic!("no diode event ({e:?}): {outcomes:?}"));
        match event {
            ReceiverEvent::SessionStarted { session } => {
                outcomes.entry(session.0).or_default();
            }
            ReceiverEvent::Data { session, data } => {
                let o = outcomes.entry(session.0).or_default();
                o.data += data.len();
                if keep_bytes {
                    o.bytes.extend_from_slice(&data);
                }
            }
            ReceiverEvent::SessionFinished { session, bytes } => {
                outcomes.entry(session.0).or_default().finished = Some(bytes);
            }
            ReceiverEvent::SessionLost { session, reason } => {
                outcomes.entry(session.0).or_default().lost = Some(reason);
            }
            _ => {}
        }
    }
}

/// Sends one whole diode session of `len` bytes and returns its id and bytes.
fn diode_session(sender: &ferry_diode::DiodeSender, seed: u8, len: usize) -> (u64, Vec<u8>) {
    use std::io::Write;
    let data: Vec<u8> = (0..len)
        .map(|i| (i as u8).wrapping_mul(31) ^ seed)
        .collect();
    let mut session = sender.open().unwrap();
    let id = session.id().0;
    session.write_all(&data).unwrap();
    assert_eq!(session.finish().unwrap(), len as u64);
    (id, data)
}

/// The diode sender's process is killed mid-session and a new sender starts:
/// the receiver reports the interrupted session lost and the next intact.
#[test]
fn diode_sender_restarted_mid_session() {
    use ferry_diode::{DiodeReceiver, DiodeSender, LossReason, SocketOptions};
    let config = ferry_tests::diode_fault_config();
    let receiver = DiodeReceiver::bind(
        "127.0.0.1:0".parse().unwrap(),
        config.clone(),
        SocketOptions::default(),
    )
    .unwrap();
    let mut peer = PeerProcess::spawn(&["diode-send", &receiver.local_addr().to_string()]);
    assert_eq!(peer.line(), "ready");
    let mut outcomes = std::collections::BTreeMap::new();
    diode_events(&receiver, &mut outcomes, false, |o| {
        o.values().any(|s| s.data > 0)
    });
    let interrupted = *outcomes.keys().next().unwrap();
    peer.kill();

    let sender = DiodeSender::bind(
        "127.0.0.1:0".parse().unwrap(),
        receiver.local_addr(),
        config,
        SocketOptions::default(),
    )
    .unwrap();
    let (next, data) = diode_session(&sender, 7, 3_000_000);
    diode_events(&receiver, &mut outcomes, true, |o| {
        o.get(&interrupted).is_some_and(|s| s.lost.is_some())
            && o.get(&next)
                .is_some_and(|s| s.finished.is_some() || s.lost.is_some())
    });
    let lost = outcomes[&interrupted].lost;
    assert!(
        matches!(
            lost,
            Some(LossReason::SenderRestarted(_) | LossReason::SessionExpired(_))
        ),
        "{lost:?}"
    );
    assert_eq!(outcomes[&interrupted].finished, None);
    assert_eq!(outcomes[&next].lost, None);
    assert_eq!(outcomes[&next].finished, Some(data.len() as u64));
    assert!(
        outcomes[&next].bytes == data,
        "the next session's bytes differ"
    );
    sender.close().unwrap();
}

/// The diode receiver restarts mid-session on the same port: the new one
/// reports the session it joined halfway lost, and the next one intact.
#[test]
fn diode_receiver_restarted_mid_session() {
    use ferry_diode::{DiodeReceiver, DiodeSender, SocketOptions};
    use std::io::Write;
    let config = ferry_tests::diode_fault_config();
    let first = DiodeReceiver::bind(
        "127.0.0.1:0".parse().unwrap(),
        config.clone(),
        SocketOptions::default(),
    )
    .unwrap();
    let addr = first.local_addr();
    let sender = DiodeSender::bind(
        "127.0.0.1:0".parse().unwrap(),
        addr,
        config.clone(),
        SocketOptions::default(),
    )
    .unwrap();
    // 4 MB at 40 Mbit/s: under way for most of a second.
    let mut interrupted = sender.open().unwrap();
    let interrupted_id = interrupted.id().0;
    let writer = thread::spawn(move || {
        let chunk = vec![0xa5; 64 << 10];
        for _ in 0..64 {
            interrupted.write_all(&chunk).unwrap();
        }
        interrupted.finish().unwrap()
    });
    let mut outcomes = std::collections::BTreeMap::new();
    diode_events(&first, &mut outcomes, false, |o| {
        o.get(&interrupted_id).is_some_and(|s| s.data > 0)
    });
    first.close();
    drop(first);
    let second = DiodeReceiver::bind(addr, config, SocketOptions::default())
        .expect("bind the restarted receiver on the same port");
    assert_eq!(writer.join().unwrap(), 64 << 16);
    let (next, data) = diode_session(&sender, 9, 2_000_000);
    let mut outcomes = std::collections::BTreeMap::new();
    diode_events(&second, &mut outcomes, true, |o| {
        o.get(&next)
            .is_some_and(|s| s.finished.is_some() || s.lost.is_some())
            && o.get(&interrupted_id)
                .is_some_and(|s| s.lost.is_some() || s.finished.is_some())
    });
    let joined = &outcomes[&interrupted_id];
    assert!(joined.lost.is_some(), "joined halfway: {joined:?}");
    assert_eq!(joined.finished, None);
    assert_eq!(outcomes[&next].lost, None);
    assert_eq!(outcomes[&next].finished, Some(data.len() as u64));
    assert!(
        outcomes[&next].bytes == data,
        "the next session's bytes differ"
    );
    sender.close().unwrap();
}
