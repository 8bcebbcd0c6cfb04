//! Endpoints spread over shards (`EndpointConfig::shards`): one address, one
//! socket, protocol endpoint and driver per shard, the same API.
//!
//! Real sockets on loopback; every check is on bytes, ids and counters, never
//! on time. The kernel picks the socket (so the shard) a datagram reaches by
//! a hash of its addresses: a server's sessions spread over its shards only
//! as their clients' addresses do, so the tests that need several shards used
//! open sessions from many client endpoints (one address each), and the
//! tests that need a datagram to reach the wrong shard make it so for certain
//! (a sharded client, whose every reply reaches one socket) or try a fresh
//! address until it happens (a client moving).

use std::collections::HashSet;
use std::future::Future;
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_async::types::{
    BindError, CloseReason, ClosedEvent, Config, EndpointConfig, MAX_SHARDS, PreSharedKey,
    SessionId, Shard, ShardStats,
};
use ferry_async::{AsyncTimer, AsyncUdpSocket, Runtime, Session};
use ferry_tests::harness::{Driver, Messages, Peer, within};
use ferry_tokio::{Endpoint, EndpointExt, TokioRuntime};

/// Sessions of the many-session tests, and the client endpoints they come
/// from (one address each: the kernel spreads addresses, not sessions).
const SESSIONS: usize = 64;
const CLIENTS: usize = 16;
/// Round trips per session.
const ROUNDS: usize = 4;

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Runs `test` on a tokio multi-thread runtime of four workers, failing if it
/// is still running after three minutes (a lost wake-up, a lost datagram
/// never repaired).
fn on_tokio<T, F>(test: impl FnOnce() -> F + Send + 'static) -> T
where
    T: Send + 'static,
    F: Future<Output = T> + Send + 'static,
{
    within(180, move || {
        ::tokio::runtime::Builder::new_multi_thread()
            .worker_threads(4)
            .enable_all()
            .build()
            .expect("tokio runtime")
            .block_on(test())
    })
}

/// Accepts `count` sessions and echoes every message on each, a task per
/// session; returns the ids accepted.
async fn echo(server: Endpoint, count: usize) -> Vec<SessionId> {
    let mut ids = Vec::with_capacity(count);
    for _ in 0..count {
        let session = server.accept().await.expect("a session");
        ids.push(session.id());
        ::tokio::spawn(async move {
            while let Ok(message) = session.recv().await {
                if session.send(message).await.is_err() {
                    break;
                }
            }
        });
    }
    ids
}

/// `ROUNDS` messages of up to 32 KiB, each checked byte by byte in its echo.
async fn exchange(session: &Session, n: usize) {
    let mut sizes = Messages::new(n as u64, 32 << 10);
    for round in 0..ROUNDS {
        let index = n * ROUNDS + round;
        let size = sizes.next_size();
        session
            .send(Messages::content(index, size))
            .await
            .expect("send");
        let echoed = session.recv().await.expect("echo");
        assert!(
            Messages::check(index, size, &echoed),
            "session {n} round {round}"
        );
    }
}

/// [`exchange`] on a blocking session: `send` and `recv` are its calls.
fn exchange_blocking(n: usize, send: impl Fn(Bytes), recv: impl Fn() -> Bytes) {
    let mut sizes = Messages::new(n as u64, 32 << 10);
    for round in 0..ROUNDS {
        let index = n * ROUNDS + round;
        let size = sizes.next_size();
        send(Messages::content(index, size));
        let echoed = recv();
        assert!(
            Messages::check(index, size, &echoed),
            "session {n} round {round}"
        );
    }
}

/// The shards (of `count`) that `ids` name.
fn shards_of(ids: &[SessionId], count: usize) -> HashSet<u8> {
    ids.iter().map(|&id| Shard::of(id, count as u8)).collect()
}

fn handed_over(stats: &[ShardStats]) -> u64 {
    stats.iter().map(|s| s.handed_over).sum()
}

fn a_sharded_server_serves_every_byte_of_many_sessions(shards: usize) {
    on_tokio(move || async move {
        let server = Endpoint::bind(local(), EndpointConfig::server().with_shards(shards)).unwrap();
        assert_eq!(server.shard_count(), shards);
        let addr = server.local_addr();
        let accepted = ::tokio::spawn(echo(server.clone(), SESSIONS));
        let clients: Vec<Endpoint> = (0..CLIENTS)
            .map(|_| Endpoint::bind(local(), EndpointConfig::default()).unwrap())
            .collect();
        let tasks: Vec<_> = (0..SESSIONS)
            .map(|n| {
                let client = clients[n % CLIENTS].clone();
                ::tokio::spawn(async move {
                    let session = client.connect(addr).await.expect("connect");
                    exchange(&session, n).await;
                    session
                })
            })
            .collect();
        let mut sessions = Vec::new();
        for task in tasks {
            sessions.push(task.await.expect("client task"));
        }
        let ids = accepted.await.expect("acceptor");
        assert_eq!(ids.len(), SESSIONS);
        assert_eq!(server.session_count(), SESSIONS);
        let stats = server.shard_stats();
        assert_eq!(stats.len(), shards);
        assert_eq!(stats.iter().map(|s| s.sessions).sum::<usize>(), SESSIONS);
        // Sixteen client addresses, hashed over the shards' sockets: all on
        // one shard would be a chance of 2^-30 or less.
        let used = shards_of(&ids, shards);
        assert!(used.len() > 1, "every session on shard {used:?}");
        for session in &sessions {
            session.close(0);
        }
        for client in &clients {
            client.close().await;
        }
        server.close().await;
    });
}

#[test]
fn a_server_of_two_shards_serves_64_concurrent_sessions_from_16_clients() {
    a_sharded_server_serves_every_byte_of_many_sessions(2);
}

#[test]
fn a_server_of_four_shards_serves_64_concurrent_sessions_from_16_clients() {
    a_sharded_server_serves_every_byte_of_many_sessions(4);
}

#[test]
fn a_client_of_four_shards_gets_its_replies_through_hand_overs() {
    on_tokio(|| async {
        let server = Endpoint::bind(local(), EndpointConfig::server()).unwrap();
        let client = Endpoint::bind(local(), EndpointConfig::default().with_shards(4)).unwrap();
        let addr = server.local_addr();
        let accepted = ::tokio::spawn(echo(server.clone(), 16));
        let tasks: Vec<_> = (0..16)
            .map(|n| {
                let client = client.clone();
                ::tokio::spawn(async move {
                    let session = client.connect(addr).await.expect("connect");
                    exchange(&session, n).await;
                    session
                })
            })
            .collect();
        let mut ids = Vec::new();
        let mut sessions = Vec::new();
        for task in tasks {
            let session = task.await.expect("client task");
            ids.push(session.id());
            sessions.push(session);
        }
        accepted.await.expect("acceptor");
        // Connects go to the shards in turn.
        assert_eq!(shards_of(&ids, 4).len(), 4);
        // Every reply comes from one address to one address: one socket
        // gets them all, and the other three shards' come by hand-over.
        let stats = client.shard_stats();
        assert!(handed_over(&stats) > 0, "{stats:?}");
        assert_eq!(
            stats.iter().filter(|s| s.handed_over > 0).count(),
            3,
            "{stats:?}"
        );
        for session in &sessions {
            session.close(0);
        }
        client.close().await;
        server.close().await;
    });
}

/// A UDP forwarder between one client and a server that, when told, sends
/// from a new port, as a NAT rebinding does: the server then sees the
/// client's session come from a new address (and the kernel may hand its
/// datagrams to another shard's socket). The old ports keep forwarding what
/// the server still sends them.
struct Rebinder {
    listen: Arc<UdpSocket>,
    server: SocketAddr,
    /// The port datagrams to the server leave from now.
    upstream: Arc<Mutex<Arc<UdpSocket>>>,
    /// The client's address, once it sent something.
    client: Arc<Mutex<Option<SocketAddr>>>,
    stop: Arc<AtomicBool>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Rebinder {
    fn start(server: SocketAddr) -> Self {
        let listen = Arc::new(UdpSocket::bind(local()).unwrap());
        listen
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let first = Arc::new(UdpSocket::bind(local()).unwrap());
        let this = Self {
            listen: listen.clone(),
            server,
            upstream: Arc::new(Mutex::new(first.clone())),
            client: Arc::new(Mutex::new(None)),
            stop: Arc::new(AtomicBool::new(false)),
            threads: Mutex::new(Vec::new()),
        };
        this.forward_back(first);
        let (upstream, client, stop) = (
            this.upstream.clone(),
            this.client.clone(),
            this.stop.clone(),
        );
        this.threads.lock().unwrap().push(thread::spawn(move || {
            let mut buf = vec![0; 65_536];
            while !stop.load(Ordering::Relaxed) {
                let Ok((len, from)) = listen.recv_from(&mut buf) else {
                    continue;
                };
                *client.lock().unwrap() = Some(from);
                let socket = upstream.lock().unwrap().clone();
                let _ = socket.send_to(&buf[..len], server);
            }
        }));
        this
    }

    /// Where the client sends.
    fn addr(&self) -> SocketAddr {
        self.listen.local_addr().unwrap()
    }

    /// Sends to the server from a new port from now on.
    fn rebind(&self) {
        let socket = Arc::new(UdpSocket::bind(local()).unwrap());
        self.forward_back(socket.clone());
        *self.upstream.lock().unwrap() = socket;
    }

    /// Forwards what the server sends to `socket` to the client.
    fn forward_back(&self, socket: Arc<UdpSocket>) {
        socket
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let (listen, client, stop, server) = (
            self.listen.clone(),
            self.client.clone(),
            self.stop.clone(),
            self.server,
        );
        self.threads.lock().unwrap().push(thread::spawn(move || {
            let mut buf = vec![0; 65_536];
            while !stop.load(Ordering::Relaxed) {
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let to = *client.lock().unwrap();
                if let (true, Some(to)) = (from == server, to) {
                    let _ = listen.send_to(&buf[..len], to);
                }
            }
        }));
    }
}

impl Drop for Rebinder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.lock().unwrap().drain(..) {
            let _ = thread.join();
        }
    }
}

/// Sessions move only when encrypted (a new address must prove the key).
fn encrypted(config: Config) -> Config {
    Config {
        psk: Some(PreSharedKey::from_bytes([0x5a; 32])),
        ..config
    }
}

#[test]
fn a_datagram_that_reaches_another_shards_socket_reaches_its_session() {
    on_tokio(|| async {
        let server_config = EndpointConfig::from(encrypted(Config {
            accept_incoming: true,
            ..Config::default()
        }))
        .with_shards(4);
        let server = Endpoint::bind(local(), server_config).unwrap();
        let rebinder = Rebinder::start(server.local_addr());
        let client =
            Endpoint::bind(local(), EndpointConfig::from(encrypted(Config::default()))).unwrap();
        let accepted = ::tokio::spawn(echo(server.clone(), 1));
        let session = client.connect(rebinder.addr()).await.expect("connect");
        let server_id = accepted.await.expect("acceptor")[0];

        // Each move is a new source address; the kernel sends a quarter of
        // them, at random, to the session's own shard's socket. Move until
        // one reached another (a chance of 4^-63 never to), then go on.
        let mut moved = 0;
        let mut index = 0;
        let mut after_hand_over = None;
        while after_hand_over.is_none_or(|rounds| rounds > 0) {
            assert!(moved < 64, "no move reached another shard");
            rebinder.rebind();
            moved += 1;
            for _ in 0..4 {
                let size = 8 << 10;
                session
                    .send(Messages::content(index, size))
                    .await
                    .expect("send");
                let echoed = session.recv().await.expect("echo");
                assert!(Messages::check(index, size, &echoed), "message {index}");
                index += 1;
            }
            after_hand_over = match after_hand_over {
                None if handed_over(&server.shard_stats()) > 0 => Some(3),
                None => None,
                Some(rounds) => Some(rounds - 1),
            };
        }
        let stats = server
            .session(server_id)
            .expect("the session is open")
            .stats();
        assert!(stats.migrations > 0, "{stats:?}");
        session.close(0);
        client.close().await;
        server.close().await;
        drop(rebinder);
    });
}

#[test]
fn the_blocking_driver_with_two_shards_serves_many_sessions() {
    within(180, || {
        let config = EndpointConfig::server().with_shards(2);
        let server = ferry_blocking::Endpoint::bind(local(), config).unwrap();
        assert_eq!(server.shard_count(), 2);
        let addr = server.local_addr();
        let acceptor = {
            let server = server.clone();
            thread::spawn(move || {
                let mut ids = Vec::new();
                let mut echoes = Vec::new();
                for _ in 0..SESSIONS {
                    let session = server.accept().expect("a session");
                    ids.push(session.id());
                    echoes.push(thread::spawn(move || {
                        while let Ok(m) = session.recv() {
                            if session.send(m).is_err() {
                                break;
                            }
                        }
                    }));
                }
                (ids, echoes)
            })
        };
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| ferry_blocking::Endpoint::bind(local(), EndpointConfig::default()).unwrap())
            .collect();
        let threads: Vec<_> = (0..SESSIONS)
            .map(|n| {
                let client = clients[n % CLIENTS].clone();
                thread::spawn(move || {
                    let session = client.connect(addr).expect("connect");
                    exchange_blocking(
                        n,
                        |m| session.send(m).expect("send"),
                        || session.recv().expect("echo"),
                    );
                    session
                })
            })
            .collect();
        let sessions: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("client"))
            .collect();
        let (ids, echoes) = acceptor.join().expect("acceptor");
        assert_eq!(server.session_count(), SESSIONS);
        assert_eq!(shards_of(&ids, 2).len(), 2, "both shards got sessions");
        for session in &sessions {
            session.close(0);
        }
        for echo in echoes {
            echo.join().expect("echo thread");
        }
        for client in &clients {
            client.close();
        }
        server.close();
    });
}

#[test]
fn zero_shards_is_one_per_core_and_more_than_the_maximum_is_refused() {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    let endpoint =
        ferry_blocking::Endpoint::bind(local(), EndpointConfig::server().with_shards(0)).unwrap();
    assert_eq!(endpoint.shard_count(), cores.min(usize::from(MAX_SHARDS)));
    assert_eq!(endpoint.shard_stats().len(), endpoint.shard_count());
    endpoint.close();

    let too_many = usize::from(MAX_SHARDS) + 1;
    let refused =
        ferry_blocking::Endpoint::bind(local(), EndpointConfig::server().with_shards(too_many))
            .unwrap_err();
    assert!(
        matches!(refused, BindError::TooManyShards { shards, max } if shards == too_many && max == MAX_SHARDS),
        "{refused}"
    );
    let refused = on_tokio(move || async move {
        Endpoint::bind(local(), EndpointConfig::default().with_shards(too_many)).unwrap_err()
    });
    assert!(
        matches!(refused, BindError::TooManyShards { .. }),
        "{refused}"
    );
}

/// Tokio, counting the driver tasks alive.
#[derive(Debug)]
struct CountingRuntime {
    inner: TokioRuntime,
    alive: Arc<AtomicUsize>,
}

/// Counts one task alive until dropped.
struct Alive(Arc<AtomicUsize>);

impl Drop for Alive {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Runtime for CountingRuntime {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        self.inner.new_timer(deadline)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        self.alive.fetch_add(1, Ordering::SeqCst);
        let alive = Alive(self.alive.clone());
        self.inner.spawn(Box::pin(async move {
            let _alive = alive;
            future.await;
        }));
    }

    fn wrap_udp_socket(&self, socket: UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        self.inner.wrap_udp_socket(socket)
    }
}

#[test]
fn closing_a_sharded_endpoint_closes_every_shards_sessions_and_ends_every_driver() {
    on_tokio(|| async {
        let server = Endpoint::bind(local(), EndpointConfig::server()).unwrap();
        let alive = Arc::new(AtomicUsize::new(0));
        let runtime = Arc::new(CountingRuntime {
            inner: TokioRuntime::current().unwrap(),
            alive: alive.clone(),
        });
        let client = ferry_async::Endpoint::bind_with(
            runtime,
            local(),
            EndpointConfig::default().with_shards(4),
        )
        .unwrap();
        assert_eq!(alive.load(Ordering::SeqCst), 4, "a driver per shard");
        let addr = server.local_addr();
        let accepted = ::tokio::spawn(echo(server.clone(), 12));
        let mut sessions = Vec::new();
        for n in 0..12 {
            let session = client.connect(addr).await.expect("connect");
            exchange(&session, n).await;
            sessions.push(session);
        }
        let ids: Vec<_> = sessions.iter().map(Session::id).collect();
        assert_eq!(shards_of(&ids, 4).len(), 4, "sessions on every shard");
        let server_ids = accepted.await.expect("acceptor");
        let mut closed_here = client.closed_events();
        let mut closed_there = server.closed_events();

        client.close().await;
        assert!(client.is_closed());
        assert!(client.sessions().is_empty());
        assert!(client.accept().await.is_none());
        for session in &sessions {
            assert_eq!(
                session.closed().await,
                CloseReason::Local {
                    code: 0,
                    reason: Default::default()
                }
            );
        }
        // Every shard's session reported closed, then the subscription ends.
        let mut reported = HashSet::new();
        while let Some(event) = closed_here.next().await {
            match event {
                ClosedEvent::Closed { id, .. } => assert!(reported.insert(id)),
                ClosedEvent::Missed(n) => panic!("{n} events missed"),
            }
        }
        assert_eq!(reported, ids.iter().copied().collect());
        // The peer learned of every one.
        let mut remote = HashSet::new();
        while remote.len() < server_ids.len() {
            match closed_there.next().await.expect("the server runs") {
                ClosedEvent::Closed { id, reason } => {
                    assert_eq!(
                        reason,
                        CloseReason::Remote {
                            code: 0,
                            reason: Default::default()
                        }
                    );
                    remote.insert(id);
                }
                ClosedEvent::Missed(n) => panic!("{n} events missed"),
            }
        }
        assert_eq!(remote, server_ids.iter().copied().collect());
        // Every driver task ends (and drops its socket).
        while alive.load(Ordering::SeqCst) > 0 {
            ::tokio::time::sleep(Duration::from_millis(1)).await;
        }
        server.close().await;
    });
}

#[test]
fn the_session_manager_covers_every_shard() {
    on_tokio(|| async {
        let server = Endpoint::bind(local(), EndpointConfig::server().with_shards(4)).unwrap();
        let addr = server.local_addr();
        let clients: Vec<Endpoint> = (0..CLIENTS)
            .map(|_| Endpoint::bind(local(), EndpointConfig::default()).unwrap())
            .collect();
        let mut sessions = Vec::new();
        let mut accepted = Vec::new();
        for client in &clients {
            sessions.push(client.connect(addr).await.expect("connect"));
            accepted.push(server.accept().await.expect("a session"));
        }
        let mut ids: Vec<_> = accepted.iter().map(Session::id).collect();
        assert!(shards_of(&ids, 4).len() > 1);
        ids.sort_unstable();
        assert_eq!(server.sessions(), ids, "every shard's, in id order");
        for &id in &ids {
            assert_eq!(server.session(id).expect("open").id(), id);
        }

        let report = server.broadcast(Bytes::from_static(b"to all"));
        assert_eq!(report.sent, ids);
        assert!(report.all_sent());
        for session in &sessions {
            assert_eq!(&session.recv().await.unwrap()[..], b"to all");
        }

        // The caller's order, whichever shards; an unknown id is reported.
        let unknown = SessionId::from(7);
        let mut order: Vec<_> = ids.iter().rev().copied().collect();
        order.push(unknown);
        let report = server.broadcast_to(&order, Bytes::from_static(b"to some"));
        assert_eq!(report.sent, order[..ids.len()]);
        assert_eq!(report.unknown, [unknown]);

        // A session the peer closed: its shard remembers why.
        sessions[0].close(9);
        let gone = accepted[0].id();
        assert_eq!(
            accepted[0].closed().await,
            CloseReason::Remote {
                code: 9,
                reason: Default::default()
            }
        );
        assert_eq!(
            server.close_reason(gone),
            Some(CloseReason::Remote {
                code: 9,
                reason: Default::default()
            })
        );
        assert_eq!(server.session_count(), CLIENTS - 1);
        assert!(server.session(gone).is_none());

        // Refusing new sessions holds for every shard (each client's
        // connects reach the shard its address hashes to).
        server.set_accept_incoming(false);
        for client in &clients {
            let refused = client.connect(addr).await.unwrap_err();
            assert!(
                matches!(
                    refused,
                    ferry_async::ConnectError::Failed(CloseReason::Refused)
                ),
                "{refused}"
            );
        }
        let stats = server.stats();
        assert_eq!(stats.sessions_accepted, CLIENTS as u64);
        assert_eq!(stats.sessions_refused, CLIENTS as u64);
        for client in &clients {
            client.close().await;
        }
        server.close().await;
    });
}

#[test]
fn a_sharded_clients_connect_to_a_closed_port_is_refused_whichever_socket_hears_of_it() {
    // The ICMP port unreachable reaches the socket the kernel's hash picks,
    // not the one that sent the Connect: four connects, one per shard (in
    // turn), each refused at once rather than after the handshake timeout.
    if !cfg!(target_os = "linux") {
        return;
    }
    within(60, || {
        let config = EndpointConfig::from(Config {
            handshake_timeout: Duration::from_secs(20),
            ..Config::default()
        })
        .with_shards(4);
        let client = ferry_blocking::Endpoint::bind(local(), config).unwrap();
        for _ in 0..4 {
            // A free port, closed again.
            let port = UdpSocket::bind(local()).unwrap().local_addr().unwrap();
            let refused = client.connect(port).unwrap_err();
            assert_eq!(
                refused,
                ferry_async::ConnectError::Failed(CloseReason::Refused)
            );
        }
        client.close();
    });
}

/// Sharded endpoints on each driver (on smol and async-std, whose executors
/// may run the shards' drivers on one thread, taking turns): sixteen
/// sessions from four clients of two shards each to a server of two shards,
/// every byte echoed.
fn sharded_endpoints_talk(driver: Driver) {
    within(180, move || {
        let server: Arc<Box<dyn Peer>> =
            Arc::new(driver.bind(local(), EndpointConfig::server().with_shards(2)));
        let addr = server.local_addr();
        let acceptor = {
            let server = server.clone();
            thread::spawn(move || {
                (0..16)
                    .map(|_| {
                        let session = server.accept().expect("a session");
                        thread::spawn(move || {
                            while let Ok(m) = session.recv() {
                                if session.send(m).is_err() {
                                    break;
                                }
                            }
                        })
                    })
                    .collect::<Vec<_>>()
            })
        };
        let clients: Vec<Arc<Box<dyn Peer>>> = (0..4)
            .map(|_| Arc::new(driver.bind(local(), EndpointConfig::default().with_shards(2))))
            .collect();
        let threads: Vec<_> = (0..16)
            .map(|n| {
                let client = clients[n % clients.len()].clone();
                thread::spawn(move || {
                    let session = client.connect(addr).expect("connect");
                    exchange_blocking(
                        n,
                        |m| session.send(m).expect("send"),
                        || session.recv().expect("echo"),
                    );
                    session
                })
            })
            .collect();
        let sessions: Vec<_> = threads
            .into_iter()
            .map(|t| t.join().expect("client"))
            .collect();
        assert_eq!(server.session_count(), 16);
        for session in &sessions {
            session.close(0);
        }
        for echo in acceptor.join().expect("acceptor") {
            echo.join().expect("echo thread");
        }
        for client in &clients {
            client.close();
        }
        server.close();
    });
}

ferry_tests::on_every_driver! {
    sharded_endpoints_talk,
}
