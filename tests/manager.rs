//! The session manager on every driver: listing, getting and counting the open
//! sessions, broadcasting to all or some without waiting for a slow reader,
//! closed-session events with their reasons, closed sessions leaving the
//! manager, and a server that stops accepting while its sessions go on.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_async::{
    CloseReason, ClosedEvent, Config, ConnectError, ENDPOINT_CLOSED_CODE, EndpointConfig, SessionId,
};
use ferry_relay::{LinkConfig, Relay};
use ferry_tests::harness::{Conn, Driver, Messages, Peer, Subscription};

/// How long any single wait may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(5);

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn server_config(config: Config) -> EndpointConfig {
    EndpointConfig::from(Config {
        accept_incoming: true,
        ..config
    })
}

/// A server and a client endpoint on `driver`.
fn endpoints(driver: Driver, server: Config, client: Config) -> (Box<dyn Peer>, Box<dyn Peer>) {
    (
        driver.bind(local(), server_config(server)),
        driver.bind(local(), EndpointConfig::from(client)),
    )
}

/// Handles on sessions, whatever drives them.
type Conns = Vec<Box<dyn Conn>>;

/// Opens `n` sessions from `client` to `server`, one at a time: the client's
/// handles and the server's, pairwise the same session.
fn open(client: &dyn Peer, server: &dyn Peer, n: usize) -> (Conns, Conns) {
    let addr = server.local_addr();
    (0..n)
        .map(|_| {
            let mine = client.connect(addr).expect("connect");
            let theirs = server.accept().expect("accept");
            assert_eq!(mine.id(), theirs.id());
            (mine, theirs)
        })
        .unzip()
}

fn ids(conns: &[Box<dyn Conn>]) -> Vec<SessionId> {
    conns.iter().map(|c| c.id()).collect()
}

fn sorted(mut ids: Vec<SessionId>) -> Vec<SessionId> {
    ids.sort();
    ids
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting: {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

fn next_event(events: &mut Box<dyn Subscription>) -> ClosedEvent {
    events
        .recv_timeout(PATIENCE)
        .expect("a closed event")
        .expect("the endpoint still runs")
}

fn closed(id: SessionId, reason: CloseReason) -> ClosedEvent {
    ClosedEvent::Closed { id, reason }
}

/// 20 sessions: listed (in id order) and counted on both sides, each
/// reachable by id with a handle on the same session, which can be dropped
/// without closing it; unknown ids give nothing.
fn list_get_count(driver: Driver) {
    let (server, client) = endpoints(driver, Config::default(), Config::default());
    let (mine, theirs) = open(&*client, &*server, 20);
    let all = sorted(ids(&mine));
    assert_eq!(server.session_count(), 20);
    assert_eq!(server.sessions(), all);
    assert_eq!(client.session_count(), 20);
    assert_eq!(client.sessions(), all);

    for (i, (c, s)) in mine.iter().zip(&theirs).enumerate() {
        let got = server.session(c.id()).expect("an open session by id");
        assert_eq!(got.id(), c.id());
        got.send(Bytes::from(format!("via the manager {i}")))
            .unwrap();
        assert_eq!(
            c.recv().unwrap(),
            Bytes::from(format!("via the manager {i}"))
        );
        // The accepted handle and the one by id are the same session.
        c.send(Bytes::from(format!("reply {i}"))).unwrap();
        assert_eq!(s.recv().unwrap(), Bytes::from(format!("reply {i}")));
        drop(got);
        let again = client.session(c.id()).expect("by id on the client");
        drop(again);
    }
    // Dropping handles from `session(id)` closed nothing.
    assert_eq!(server.session_count(), 20);
    assert_eq!(client.session_count(), 20);
    for c in &mine {
        c.send(Bytes::from_static(b"still open")).unwrap();
    }
    for s in &theirs {
        assert_eq!(&s.recv().unwrap()[..], b"still open");
    }
    assert!(server.session(SessionId::from(0x5eed)).is_none());
    client.close();
    server.close();
}

/// Sessions leave `sessions()`, `session_count()` and `session(id)` as soon as
/// they close: closed here (even with handles still held), closed by the peer,
/// dropped by the peer, or the peer endpoint closed.
fn closed_sessions_vanish(driver: Driver) {
    let (server, client) = endpoints(driver, Config::default(), Config::default());
    let (mut mine, theirs) = open(&*client, &*server, 20);
    let all = ids(&mine);

    for s in &theirs[..5] {
        s.close(9);
    }
    // At once, though the server still holds the handles.
    assert_eq!(server.session_count(), 15);
    assert_eq!(server.sessions(), sorted(all[5..].to_vec()));
    for id in &all[..5] {
        assert!(server.session(*id).is_none(), "closed {id} is gone");
    }

    for c in &mine[5..10] {
        c.close(3);
    }
    let listed = client.sessions();
    assert!(
        all[5..10].iter().all(|id| !listed.contains(id)),
        "closed locally: gone at once"
    );
    wait_until("the peer's closes reach the server", || {
        server.session_count() == 10
    });
    wait_until("the server's closes reach the client", || {
        client.session_count() == 10
    });
    assert_eq!(server.sessions(), sorted(all[10..].to_vec()));
    for id in &all[5..10] {
        assert!(server.session(*id).is_none());
    }

    drop(mine.drain(10..15));
    wait_until("dropped sessions close on the server", || {
        server.session_count() == 5
    });
    assert_eq!(server.sessions(), sorted(all[15..].to_vec()));
    wait_until("the server's closes reach the client", || {
        client.session_count() == 5
    });
    assert_eq!(client.sessions(), sorted(all[15..].to_vec()));

    client.close();
    assert_eq!(client.session_count(), 0);
    assert!(client.sessions().is_empty());
    wait_until("the client endpoint's close reaches the server", || {
        server.session_count() == 0
    });
    assert!(server.sessions().is_empty());
    assert!(theirs.iter().all(|s| server.session(s.id()).is_none()));
    server.close();
}

/// A broadcast to every session, one to a subset (with a duplicate, a closed
/// session and an unknown id), one too large for anyone, and a last one to
/// all: each receiver gets exactly what was meant for it, in order.
fn broadcast_to_all_and_a_subset(driver: Driver) {
    let server_limits = Config {
        max_message_size: 64 << 10,
        ..Config::default()
    };
    let (server, client) = endpoints(driver, server_limits, Config::default());
    let (mine, _theirs) = open(&*client, &*server, 8);
    let all = ids(&mine);
    let gone = all[7];
    mine[7].close(1);
    wait_until("the closed session leaves the server", || {
        !server.sessions().contains(&gone)
    });
    let live = sorted(all[..7].to_vec());

    let first = Messages::content(1, 20_000);
    let report = server.broadcast(first.clone());
    assert_eq!(sorted(report.sent.clone()), live, "{report:?}");
    assert!(report.all_sent(), "{report:?}");

    let subset = [all[1], all[3], all[5]];
    let unknown = SessionId::from(0xdead_beef);
    let second = Messages::content(2, 3_000);
    let report = server.broadcast_to(&[all[1], all[3], all[5], all[3], gone, unknown], second);
    assert_eq!(report.sent, subset, "{report:?}");
    assert_eq!(report.closed, [gone], "{report:?}");
    assert_eq!(report.unknown, [unknown], "{report:?}");
    assert!(report.blocked.is_empty() && report.too_large.is_empty());
    assert!(!report.all_sent());

    let report = server.broadcast(Bytes::from(vec![7u8; 100 << 10]));
    assert!(report.sent.is_empty(), "{report:?}");
    assert_eq!(sorted(report.too_large.clone()), live, "{report:?}");

    let last = Messages::content(3, 1);
    assert_eq!(sorted(server.broadcast(last).sent), live);

    for (i, c) in mine[..7].iter().enumerate() {
        let got = c.recv().unwrap();
        assert!(Messages::check(1, 20_000, &got), "session {i}: first");
        if subset.contains(&c.id()) {
            let got = c.recv().unwrap();
            assert!(Messages::check(2, 3_000, &got), "session {i}: second");
        }
        let got = c.recv().unwrap();
        assert!(
            Messages::check(3, 1, &got),
            "session {i}: the last message, and nothing between"
        );
    }
    client.close();
    server.close();
}

const ROUNDS: usize = 40;
const TICK: usize = 8 << 10;

/// One reader never reads: its session is soon reported `blocked` while the
/// three others get every message; once it reads, it gets exactly the
/// messages reported `sent` to it, and waiting on its session alone
/// (`Session::send`) works.
fn stalled_reader_is_blocked(driver: Driver) {
    let server_limits = Config {
        send_buffer: 32 << 10,
        max_message_size: 16 << 10,
        ..Config::default()
    };
    let client_limits = Config {
        max_message_size: 16 << 10,
        recv_window: 32 << 10,
        ..Config::default()
    };
    let (server, client) = endpoints(driver, server_limits, client_limits);
    let (mut mine, theirs) = open(&*client, &*server, 4);
    let stalled = mine.remove(0);
    let fast_ids = ids(&mine);
    let readers: Vec<_> = mine
        .into_iter()
        .map(|c| {
            thread::spawn(move || {
                for round in 0..ROUNDS {
                    let got = c.recv().expect("a tick");
                    assert!(Messages::check(round, TICK, &got), "round {round}");
                    c.send(Bytes::from(format!("ack {round}"))).unwrap();
                }
                c
            })
        })
        .collect();

    let mut sent_to_stalled = Vec::new();
    let mut blocked_rounds = Vec::new();
    for round in 0..ROUNDS {
        let report = server.broadcast(Messages::content(round, TICK));
        for id in &fast_ids {
            assert!(report.sent.contains(id), "round {round}: {report:?}");
        }
        if report.sent.contains(&stalled.id()) {
            sent_to_stalled.push(round);
        } else {
            assert_eq!(report.blocked, [stalled.id()], "round {round}");
            blocked_rounds.push(round);
        }
        for s in &theirs[1..] {
            assert_eq!(s.recv().unwrap(), Bytes::from(format!("ack {round}")));
        }
    }
    assert!(
        blocked_rounds.len() >= 10 && blocked_rounds.ends_with(&[ROUNDS - 2, ROUNDS - 1]),
        "the stalled reader must end up blocked: blocked in {blocked_rounds:?}"
    );
    let readers: Vec<_> = readers.into_iter().map(|r| r.join().unwrap()).collect();

    // The stalled reader catches up: exactly what was reported sent to it.
    for &round in &sent_to_stalled {
        let got = stalled.recv().unwrap();
        assert!(Messages::check(round, TICK, &got), "round {round}");
    }
    // Waiting for one session: the async (or blocking) send of its handle.
    let handle = server.session(stalled.id()).expect("still open");
    handle.send(Bytes::from_static(b"caught up")).unwrap();
    assert_eq!(&stalled.recv().unwrap()[..], b"caught up");
    drop(readers);
    client.close();
    server.close();
}

/// Closed events carry the reason: a local close with a code, the peer's
/// close, the endpoint's close; every subscriber sees every event, a late one
/// only what follows; the subscription ends once the endpoint stopped.
fn closed_events_report_reasons(driver: Driver) {
    let (server, client) = endpoints(driver, Config::default(), Config::default());
    let mut server_events = server.closed_events();
    let mut second = server.closed_events();
    let mut client_events = client.closed_events();
    let (mine, theirs) = open(&*client, &*server, 3);
    let [a, b, c] = [mine[0].id(), mine[1].id(), mine[2].id()];

    theirs[0].close(42);
    assert_eq!(
        next_event(&mut server_events),
        closed(
            a,
            CloseReason::Local {
                code: 42,
                reason: Default::default()
            }
        )
    );
    assert_eq!(
        next_event(&mut client_events),
        closed(
            a,
            CloseReason::Remote {
                code: 42,
                reason: Default::default()
            }
        )
    );

    mine[1].close(7);
    assert_eq!(
        next_event(&mut client_events),
        closed(
            b,
            CloseReason::Local {
                code: 7,
                reason: Default::default()
            }
        )
    );
    assert_eq!(
        next_event(&mut server_events),
        closed(
            b,
            CloseReason::Remote {
                code: 7,
                reason: Default::default()
            }
        )
    );
    assert_eq!(
        next_event(&mut second),
        closed(
            a,
            CloseReason::Local {
                code: 42,
                reason: Default::default()
            }
        )
    );
    assert_eq!(
        next_event(&mut second),
        closed(
            b,
            CloseReason::Remote {
                code: 7,
                reason: Default::default()
            }
        )
    );

    let mut late = server.closed_events();
    assert!(
        late.recv_timeout(Duration::from_millis(50)).is_err(),
        "a late subscriber sees nothing that closed before it"
    );

    client.close();
    let endpoint_closed = ENDPOINT_CLOSED_CODE;
    assert_eq!(
        next_event(&mut client_events),
        closed(
            c,
            CloseReason::Local {
                code: endpoint_closed,
                reason: Default::default(),
            }
        )
    );
    assert_eq!(
        client_events.recv_timeout(PATIENCE),
        Ok(None),
        "the client endpoint stopped"
    );
    for events in [&mut server_events, &mut second, &mut late] {
        assert_eq!(
            next_event(events),
            closed(
                c,
                CloseReason::Remote {
                    code: endpoint_closed,
                    reason: Default::default(),
                }
            )
        );
    }
    server.close();
    for events in [&mut server_events, &mut second, &mut late] {
        assert_eq!(events.recv_timeout(PATIENCE), Ok(None));
    }
}

/// A subscriber that does not keep up is told how many events it missed, in
/// their place, then gets the newest ones.
fn slow_subscriber_is_told_what_it_missed(driver: Driver) {
    let (server, client) = endpoints(driver, Config::default(), Config::default());
    let mut events = server.closed_events_with_capacity(4);
    let (_mine, theirs) = open(&*client, &*server, 10);
    for (code, s) in theirs.iter().enumerate() {
        s.close(code as u64);
    }
    assert_eq!(next_event(&mut events), ClosedEvent::Missed(6));
    for (code, s) in theirs.iter().enumerate().skip(6) {
        assert_eq!(
            next_event(&mut events),
            closed(
                s.id(),
                CloseReason::Local {
                    code: code as u64,
                    reason: Default::default()
                }
            )
        );
    }
    assert!(events.recv_timeout(Duration::from_millis(50)).is_err());
    client.close();
    server.close();
}

/// A blackhole longer than the keep-alive limit: both sides report `Timeout`
/// and the session leaves both managers.
fn closed_event_on_timeout(driver: Driver) {
    let keepalive = Config {
        ping_interval: Duration::from_millis(200),
        ping_packet_count: 3,
        ..Config::default()
    };
    let (server, client) = endpoints(driver, keepalive.clone(), keepalive);
    let relay = Relay::start(
        local(),
        server.local_addr(),
        LinkConfig::default(),
        LinkConfig::default(),
        11,
    )
    .unwrap();
    let mut server_events = server.closed_events();
    let mut client_events = client.closed_events();
    let session = client.connect(relay.local_addr()).expect("connect");
    let incoming = server.accept().expect("accept");
    session.send(Bytes::from_static(b"before")).unwrap();
    assert_eq!(&incoming.recv().unwrap()[..], b"before");
    relay.blackhole(Duration::from_secs(3));
    assert_eq!(
        next_event(&mut client_events),
        closed(session.id(), CloseReason::Timeout)
    );
    assert_eq!(
        next_event(&mut server_events),
        closed(session.id(), CloseReason::Timeout)
    );
    assert_eq!(client.session_count(), 0);
    assert_eq!(server.session_count(), 0);
    assert!(server.session(session.id()).is_none());
    client.close();
    server.close();
}

/// `set_accept_incoming(false)`: new connects are refused (`Refused`, as the
/// connect error and as a closed event) while the open sessions keep
/// exchanging messages; accepting again works.
fn stop_accepting_keeps_existing_sessions(driver: Driver) {
    let (server, client) = endpoints(driver, Config::default(), Config::default());
    let (mine, theirs) = open(&*client, &*server, 3);
    server.set_accept_incoming(false);
    let mut client_events = client.closed_events();

    match client.connect(server.local_addr()) {
        Err(ConnectError::Failed(CloseReason::Refused)) => {}
        Err(e) => panic!("expected a refusal, got {e}"),
        Ok(_) => panic!("expected a refusal, got a session"),
    }
    match next_event(&mut client_events) {
        ClosedEvent::Closed { id, reason } => {
            assert_eq!(reason, CloseReason::Refused);
            assert!(!ids(&mine).contains(&id));
        }
        other => panic!("expected the refused session, got {other:?}"),
    }
    assert_eq!(server.session_count(), 3);
    assert_eq!(client.session_count(), 3);

    for (i, (c, s)) in mine.iter().zip(&theirs).enumerate() {
        let m = Messages::content(i, 10_000);
        c.send(m.clone()).unwrap();
        assert_eq!(s.recv().unwrap(), m);
        s.send(m.clone()).unwrap();
        assert_eq!(c.recv().unwrap(), m);
    }
    let report = server.broadcast(Bytes::from_static(b"to all"));
    assert_eq!(sorted(report.sent), sorted(ids(&mine)));
    for c in &mine {
        assert_eq!(&c.recv().unwrap()[..], b"to all");
    }

    server.set_accept_incoming(true);
    let (more, _more_theirs) = open(&*client, &*server, 1);
    assert_eq!(server.session_count(), 4);
    let expected: BTreeSet<_> = ids(&mine).into_iter().chain(ids(&more)).collect();
    assert_eq!(
        server.sessions().into_iter().collect::<BTreeSet<_>>(),
        expected
    );
    client.close();
    server.close();
}

ferry_tests::on_every_driver! {
    list_get_count,
    closed_sessions_vanish,
    broadcast_to_all_and_a_subset,
    stalled_reader_is_blocked,
    closed_events_report_reasons,
    slow_subscriber_is_told_what_it_missed,
    closed_event_on_timeout,
    stop_accepting_keeps_existing_sessions,
}

#[test]
fn every_driver_is_covered() {
    // Adding a driver means adding it to `on_every_driver!` (harness.rs).
    assert_eq!(Driver::ALL.len(), 4);
}
