//! The driven API's contract, on every driver (tokio, async-std, smol,
//! blocking), over real sockets on loopback: messages and datagrams both
//! ways, errors at bind and connect, what closing and dropping do.
//!
//! Each scenario is a `fn(Driver)`; `on_every_driver!` (tests/harness.rs) makes
//! a `#[test]` of it per driver: `cargo test -p ferry-tests --test conformance
//! blocking::` runs them on one driver. What only one driver has stays in that
//! driver's crate: tokio's runtime shutdown (`crates/ferry-tokio/tests/`), the
//! global executors of smol and async-std (`crates/ferry-smol/tests/`,
//! `crates/ferry-async-std/tests/`), the blocking API's timeouts and threads
//! (`crates/ferry-blocking/tests/`).

use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_async::types::{
    AckError, BindError, CloseReason, Config, ConnectError, DROPPED_CODE, EndpointConfig,
    RecvError, SendError, State, StreamEnd, StreamKind,
};
use ferry_tests::harness::{Conn, Driver, Messages, Peer, within};

/// How long any single wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(5);

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A server, a client, and one established session seen from both sides.
type Pair = (Box<dyn Peer>, Box<dyn Peer>, Box<dyn Conn>, Box<dyn Conn>);

/// A server, a client and one established session seen from both sides:
/// (server, client, the client's handle, the server's handle).
fn pair(driver: Driver, server_config: EndpointConfig, client_config: EndpointConfig) -> Pair {
    let server = driver.bind(local(), server_config);
    let client = driver.bind(local(), client_config);
    let session = client.connect(server.local_addr()).unwrap();
    let incoming = server.accept().unwrap();
    (server, client, session, incoming)
}

/// Messages from empty to 1 MiB arrive intact both ways; a close reaches both
/// sides with its code, fails later receives and sends, and leaves the final
/// counters readable.
fn messages_both_ways_then_close(driver: Driver) {
    within(60, move || {
        let server = driver.bind(local(), EndpointConfig::server());
        let client = driver.bind(local(), EndpointConfig::default());
        let session = client.connect(server.local_addr()).unwrap();
        assert_eq!(session.state(), State::Established);
        let incoming = server.accept().unwrap();
        assert_eq!(incoming.id(), session.id());
        assert_eq!(incoming.remote_addr(), client.local_addr());
        assert_eq!(session.remote_addr(), server.local_addr());
        assert!(session.max_message_size() >= 1 << 20);

        for size in [0, 1, 1199, 1200, 5000, 1 << 20] {
            let m: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            session.send(m.clone().into()).unwrap();
            assert_eq!(incoming.recv().unwrap(), m);
            incoming.send(m.clone().into()).unwrap();
            assert_eq!(session.recv().unwrap(), m);
        }
        assert_eq!(server.session_count(), 1);
        assert_eq!(server.sessions(), vec![session.id()]);

        session.close(42);
        assert_eq!(
            session.closed(),
            CloseReason::Local {
                code: 42,
                reason: Default::default()
            }
        );
        assert_eq!(
            incoming.closed(),
            CloseReason::Remote {
                code: 42,
                reason: Default::default()
            }
        );
        assert_eq!(
            incoming.recv(),
            Err(RecvError::Closed(CloseReason::Remote {
                code: 42,
                reason: Default::default()
            }))
        );
        assert!(matches!(
            session.send(vec![1].into()),
            Err(SendError::Closed(CloseReason::Local { code: 42, .. }))
        ));
        assert!(
            session.stats().packets_sent > 0,
            "final stats survive the close"
        );
    });
}

/// Datagrams arrive both ways; one larger than `max_datagram_size` is refused.
/// (Formerly `datagrams`.)
fn datagrams_arrive_both_ways_and_oversized_ones_are_refused(driver: Driver) {
    within(30, move || {
        let (_server, _client, session, incoming) =
            pair(driver, EndpointConfig::server(), EndpointConfig::default());
        session.send_datagram(Bytes::from_static(b"hi")).unwrap();
        let d = incoming
            .recv_datagram(PATIENCE)
            .expect("a datagram within 5 s");
        assert_eq!(&d[..], b"hi");
        incoming.send_datagram(Bytes::from_static(b"back")).unwrap();
        assert_eq!(&session.recv_datagram(PATIENCE).unwrap()[..], b"back");
        let max = session.max_datagram_size();
        assert!(session.send_datagram(vec![0; max + 1].into()).is_err());
    });
}

/// Binding an address another endpoint holds fails with `AddrInUse`, and the
/// message says so.
fn binding_a_taken_port_says_so(driver: Driver) {
    within(30, move || {
        let first = driver.bind(local(), EndpointConfig::default());
        let Err(err) = driver.try_bind(first.local_addr(), EndpointConfig::default()) else {
            panic!("bound a port another endpoint holds");
        };
        assert!(matches!(err, BindError::AddrInUse(_)), "{err}");
        assert!(err.to_string().contains("already in use"), "{err}");
    });
}

/// An invalid protocol configuration is refused at bind.
fn invalid_config_is_refused_at_bind(driver: Driver) {
    within(30, move || {
        let config = EndpointConfig::from(Config {
            mtu: 10,
            ..Config::default()
        });
        let Err(err) = driver.try_bind(local(), config) else {
            panic!("bound with an MTU of 10");
        };
        assert!(matches!(err, BindError::Config(_)), "{err}");
    });
}

/// Connecting to a port nothing listens on fails: refused at once where the
/// kernel reports the ICMP port unreachable (Linux), after the handshake
/// timeout elsewhere.
fn connecting_to_a_closed_port_is_refused_or_times_out(driver: Driver) {
    within(30, move || {
        // Grab a free port, then close it.
        let port = UdpSocket::bind(local()).unwrap().local_addr().unwrap();
        let config = EndpointConfig::from(Config {
            handshake_timeout: Duration::from_secs(2),
            ..Config::default()
        });
        let client = driver.bind(local(), config);
        let Err(err) = client.connect(port) else {
            panic!("connected to a closed port");
        };
        // Either way, one of the two.
        assert!(
            matches!(
                err,
                ConnectError::Failed(CloseReason::Refused | CloseReason::Timeout)
            ),
            "{err}"
        );
        // Linux reports the ICMP port unreachable on loopback: refused at once;
        // elsewhere the handshake times out.
        let expected = if cfg!(target_os = "linux") {
            CloseReason::Refused
        } else {
            CloseReason::Timeout
        };
        assert_eq!(err, ConnectError::Failed(expected));
        assert!(err.to_string().contains("could not connect"), "{err}");
    });
}

/// A listener that does not accept sessions refuses a connect.
fn listener_that_does_not_accept_refuses(driver: Driver) {
    within(30, move || {
        let server = driver.bind(local(), EndpointConfig::default());
        let client = driver.bind(local(), EndpointConfig::default());
        let Err(err) = client.connect(server.local_addr()) else {
            panic!("a listener that does not accept let a session in");
        };
        assert_eq!(err, ConnectError::Failed(CloseReason::Refused));
    });
}

/// A session stays open while any handle is left; dropping the last one
/// closes it with `DROPPED_CODE` (0).
fn dropping_the_last_handle_closes_the_session(driver: Driver) {
    within(30, move || {
        let (_server, _client, session, incoming) =
            pair(driver, EndpointConfig::server(), EndpointConfig::default());
        let clone = session.clone_handle();
        drop(session);
        clone.send(vec![1, 2, 3].into()).unwrap();
        assert_eq!(&incoming.recv().unwrap()[..], &[1, 2, 3]);
        drop(clone);
        assert_eq!(DROPPED_CODE, 0);
        assert_eq!(
            incoming.closed(),
            CloseReason::Remote {
                code: DROPPED_CODE,
                reason: Default::default()
            }
        );
    });
}

/// Closing an endpoint closes each of its sessions on both sides, and it
/// connects no more.
fn closing_the_endpoint_closes_its_sessions(driver: Driver) {
    within(30, move || {
        let server = driver.bind(local(), EndpointConfig::server());
        let client = driver.bind(local(), EndpointConfig::default());
        let a = client.connect(server.local_addr()).unwrap();
        let b = client.connect(server.local_addr()).unwrap();
        let a_in = server.accept().unwrap();
        let b_in = server.accept().unwrap();
        client.close();
        assert!(client.is_closed());
        assert!(matches!(a.closed(), CloseReason::Local { .. }));
        assert!(matches!(b.closed(), CloseReason::Local { .. }));
        assert!(matches!(a_in.closed(), CloseReason::Remote { .. }));
        assert!(matches!(b_in.closed(), CloseReason::Remote { .. }));
        assert!(client.connect(server.local_addr()).is_err());
    });
}

/// Sessions work over IPv6 loopback (skipped where there is none).
/// (Formerly `ipv6_loopback`.)
fn sessions_work_over_ipv6_loopback(driver: Driver) {
    within(30, move || {
        let Ok(server) = driver.try_bind("[::1]:0".parse().unwrap(), EndpointConfig::server())
        else {
            eprintln!("no IPv6 loopback here; skipped");
            return;
        };
        let client = driver.bind("[::1]:0".parse().unwrap(), EndpointConfig::default());
        let session = client.connect(server.local_addr()).unwrap();
        let incoming = server.accept().unwrap();
        session.send(vec![6u8; 70_000].into()).unwrap();
        assert_eq!(incoming.recv().unwrap().len(), 70_000);
    });
}

/// A receive waiting (blocked, or a pending future) returns the close when
/// the peer closes the session.
fn a_blocked_recv_returns_when_the_session_closes(driver: Driver) {
    within(30, move || {
        let (_server, _client, session, incoming) =
            pair(driver, EndpointConfig::server(), EndpointConfig::default());
        let reader = {
            let incoming = incoming.clone_handle();
            thread::spawn(move || incoming.recv())
        };
        thread::sleep(Duration::from_millis(50));
        session.close(7);
        assert_eq!(
            reader.join().unwrap(),
            Err(RecvError::Closed(CloseReason::Remote {
                code: 7,
                reason: Default::default()
            }))
        );
    });
}

/// A session closed locally drains and is forgotten by the endpoint without a
/// `Closed` event; its handle still reports the final counters, not zeros.
fn stats_outlive_a_local_close(driver: Driver) {
    within(30, move || {
        let (server, client, session, incoming) =
            pair(driver, EndpointConfig::server(), EndpointConfig::default());
        session.send(vec![9u8; 100_000].into()).unwrap();
        assert_eq!(incoming.recv().unwrap().len(), 100_000);
        session.close(3);
        assert_eq!(
            session.closed(),
            CloseReason::Local {
                code: 3,
                reason: Default::default()
            }
        );
        // Wait until the endpoint let go of it (the drain period).
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.sessions().contains(&session.id()) || session.state() != State::Closed {
            assert!(Instant::now() < deadline, "the session never drained");
            thread::sleep(Duration::from_millis(10));
        }
        thread::sleep(Duration::from_millis(500));
        let stats = session.stats();
        // (100 000 bytes: 71 packets of 1452 bytes once path MTU discovery
        // confirmed them, 85 of 1200 before.)
        assert!(stats.packets_sent >= 70, "{stats:?}");
        assert!(stats.bytes_sent >= 100_000, "{stats:?}");
        drop((server, client));
    })
}

/// `acknowledged` resolves only once the peer holds every message: the
/// client sends on stream 0 and on a stream, waits for the acknowledgement,
/// then closes at once (a close drops whatever is still queued) — and the
/// server, which read nothing until then, still reads every message, byte
/// for byte, before it learns of the close. `finish_acknowledged` waits for
/// the finish too: the server's reader sees the end.
fn acknowledged_resolves_only_once_the_peer_holds_every_message(driver: Driver) {
    within(60, move || {
        let (server, client, session, incoming) =
            pair(driver, EndpointConfig::server(), EndpointConfig::default());
        const COUNT: usize = 60;
        let mut sizes = Messages::new(5, 200_000);
        let plan: Vec<usize> = (0..COUNT).map(|_| sizes.next_size()).collect();
        let stream = session.open_stream(StreamKind::ReliableOrdered).unwrap();
        for (i, &size) in plan.iter().enumerate() {
            session.send(Messages::content(i, size)).unwrap();
            stream.send(Messages::content(i, size / 2)).unwrap();
        }
        assert_eq!(stream.finish_acknowledged(PATIENCE), Ok(()));
        assert_eq!(session.acknowledged(PATIENCE), Ok(()));
        // Nothing new was sent: resolves at once, and again.
        assert_eq!(stream.acknowledged(Duration::ZERO), Ok(()));
        assert_eq!(session.acknowledged(PATIENCE), Ok(()));
        session.close(5);
        let theirs = incoming
            .accept_stream(PATIENCE)
            .unwrap()
            .expect("the client's stream");
        for (i, &size) in plan.iter().enumerate() {
            let m = incoming.recv().expect("every message acknowledged arrived");
            assert!(Messages::check(i, size, &m), "message {i}");
            let m = theirs
                .recv(PATIENCE)
                .expect("every message of the stream arrived")
                .expect("before its end");
            assert!(Messages::check(i, size / 2, &m), "stream message {i}");
        }
        assert_eq!(theirs.recv(PATIENCE), Ok(None), "the finish arrived");
        assert_eq!(
            incoming.recv(),
            Err(RecvError::Closed(CloseReason::Remote {
                code: 5,
                reason: Default::default()
            }))
        );
        drop((server, client));
    });
}

/// A peer that closes the moment it has read everything: its last acks
/// and its close reach the sender together, often in one round, after
/// which the session is gone; `acknowledged` still resolves `Ok`, from
/// what the session's messages came to when it was forgotten.
fn acknowledged_succeeds_when_the_peer_closes_as_soon_as_it_has_everything(driver: Driver) {
    within(60, move || {
        for round in 0..5 {
            let (server, client, session, incoming) =
                pair(driver, EndpointConfig::server(), EndpointConfig::default());
            let count = 20;
            for i in 0..count {
                session.send(Messages::content(i, 3_000)).unwrap();
            }
            let reader = std::thread::spawn(move || {
                for i in 0..count {
                    let m = incoming.recv().expect("every message arrives");
                    assert!(Messages::check(i, 3_000, &m), "message {i}");
                }
                incoming.close(9);
            });
            assert_eq!(session.acknowledged(PATIENCE), Ok(()), "round {round}");
            reader.join().unwrap();
            drop((server, client));
        }
    });
}

/// A peer that stops reading, with a small stream window, never
/// acknowledges what does not fit: `acknowledged` times out (on the stream
/// and on the session) instead of succeeding; once the peer reads, it
/// resolves. A peer that closes instead makes it fail with the close's
/// reason.
fn acknowledged_times_out_or_fails_while_the_peer_does_not_take_the_data(driver: Driver) {
    within(60, move || {
        let reader = EndpointConfig::from(Config {
            accept_incoming: true,
            max_message_size: 64 << 10,
            stream_recv_window: 128 << 10,
            ..Config::default()
        });
        let (server, client, session, incoming) = pair(driver, reader, EndpointConfig::default());
        // Eight times the reader's window for the stream.
        let stream = session.open_stream(StreamKind::ReliableOrdered).unwrap();
        for i in 0..16 {
            stream.send(Messages::content(i, 64_000)).unwrap();
        }
        let short = Duration::from_millis(300);
        assert_eq!(stream.acknowledged(short), Err(AckError::Timeout));
        assert_eq!(session.acknowledged(short), Err(AckError::Timeout));
        assert_eq!(stream.finish_acknowledged(short), Err(AckError::Timeout));
        // The reader reads: everything arrives and is acknowledged.
        let theirs = incoming.accept_stream(PATIENCE).unwrap().expect("a stream");
        for i in 0..16 {
            let m = theirs.recv(PATIENCE).unwrap().expect("a message");
            assert!(Messages::check(i, 64_000, &m), "message {i}");
        }
        assert_eq!(stream.finish_acknowledged(PATIENCE), Ok(()));
        assert_eq!(theirs.recv(PATIENCE), Ok(None));
        // Over at both ends once the reader lets go (its drop finishes its
        // side): the core forgets the stream, and asking again still says
        // everything arrived.
        drop(theirs);
        assert_eq!(stream.closed(), Some(StreamEnd::Finished));
        assert_eq!(stream.acknowledged(PATIENCE), Ok(()));
        assert_eq!(stream.finish_acknowledged(PATIENCE), Ok(()));

        // Again, but the reader closes the session instead of reading.
        let stream = session.open_stream(StreamKind::ReliableOrdered).unwrap();
        for i in 0..16 {
            stream.send(Messages::content(i, 64_000)).unwrap();
        }
        let closer = incoming.clone_handle();
        let close = thread::spawn(move || {
            thread::sleep(Duration::from_millis(200));
            closer.close(77);
        });
        let closed = Err(AckError::Closed(CloseReason::Remote {
            code: 77,
            reason: Default::default(),
        }));
        assert_eq!(stream.acknowledged(PATIENCE), closed);
        assert_eq!(session.acknowledged(PATIENCE), closed);
        close.join().unwrap();
        drop((server, client));
    });
}

/// A reset drops what was not acknowledged: waiting for it fails with
/// `Reset`, never `Ok`.
fn acknowledged_fails_after_a_reset_that_dropped_messages(driver: Driver) {
    within(60, move || {
        let reader = EndpointConfig::from(Config {
            accept_incoming: true,
            max_message_size: 64 << 10,
            stream_recv_window: 128 << 10,
            ..Config::default()
        });
        let (server, client, session, _incoming) = pair(driver, reader, EndpointConfig::default());
        let stream = session.open_stream(StreamKind::ReliableOrdered).unwrap();
        for i in 0..16 {
            stream.send(Messages::content(i, 64_000)).unwrap();
        }
        stream.reset(3).unwrap();
        assert_eq!(stream.acknowledged(PATIENCE), Err(AckError::Reset));
        assert_eq!(stream.finish_acknowledged(PATIENCE), Err(AckError::Reset));
        assert_eq!(session.acknowledged(PATIENCE), Err(AckError::Reset));
        drop((server, client));
    });
}

ferry_tests::on_every_driver! {
    messages_both_ways_then_close,
    datagrams_arrive_both_ways_and_oversized_ones_are_refused,
    binding_a_taken_port_says_so,
    invalid_config_is_refused_at_bind,
    connecting_to_a_closed_port_is_refused_or_times_out,
    listener_that_does_not_accept_refuses,
    dropping_the_last_handle_closes_the_session,
    closing_the_endpoint_closes_its_sessions,
    sessions_work_over_ipv6_loopback,
    a_blocked_recv_returns_when_the_session_closes,
    stats_outlive_a_local_close,
    acknowledged_resolves_only_once_the_peer_holds_every_message,
    acknowledged_succeeds_when_the_peer_closes_as_soon_as_it_has_everything,
    acknowledged_times_out_or_fails_while_the_peer_does_not_take_the_data,
    acknowledged_fails_after_a_reset_that_dropped_messages,
}

#[test]
fn every_driver_is_covered() {
    // Adding a driver means adding it to `on_every_driver!` (harness.rs).
    assert_eq!(Driver::ALL.len(), 4);
}
