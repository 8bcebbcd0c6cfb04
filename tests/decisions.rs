//! Who is on the other end: close texts, and incoming sessions the
//! application decides on (`Config::decide_incoming`), on every driver
//! (tokio, async-std, smol, blocking) over real sockets on loopback.

use std::net::SocketAddr;
use std::thread;
use std::time::Duration;

use ferry_async::types::{
    CloseReason, CloseText, Config, ConnectError, DROPPED_CODE, EndpointConfig,
};
use ferry_tests::harness::{Conn, Driver, Peer, within};

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A server that decides on incoming sessions.
fn deciding() -> EndpointConfig {
    EndpointConfig::from(Config {
        accept_incoming: true,
        decide_incoming: true,
        ..Config::default()
    })
}

/// A client announcing 11 streams, so that its parameters are recognisable.
fn client_config() -> EndpointConfig {
    EndpointConfig::from(Config {
        max_streams: 11,
        ..Config::default()
    })
}

/// Connects from `client` to `server` on another thread while `decide`
/// runs here; returns what the connect came to.
fn connect_while<T>(
    server: &dyn Peer,
    client: &dyn Peer,
    decide: impl FnOnce() -> T,
) -> (T, Result<Box<dyn Conn>, ConnectError>) {
    let addr = server.local_addr();
    thread::scope(|scope| {
        let connecting = scope.spawn(|| client.connect(addr));
        let decided = decide();
        (decided, connecting.join().unwrap())
    })
}

/// A text given to `close_with_reason` on one side arrives with its code in
/// the other side's close reason, and shows in its display.
fn a_close_with_a_reason_reaches_the_peer_with_its_code_and_text(driver: Driver) {
    within(30, move || {
        let server = driver.bind(local(), EndpointConfig::server());
        let client = driver.bind(local(), EndpointConfig::default());
        let session = client.connect(server.local_addr()).unwrap();
        let incoming = server.accept().unwrap();
        session.close_with_reason(7, "rotating keys, back in a minute");
        let text = CloseText::new("rotating keys, back in a minute");
        assert_eq!(
            session.closed(),
            CloseReason::Local {
                code: 7,
                reason: text.clone(),
            }
        );
        let reason = incoming.closed();
        assert_eq!(
            reason,
            CloseReason::Remote {
                code: 7,
                reason: text
            }
        );
        assert_eq!(
            reason.to_string(),
            "closed by peer (code 7): rotating keys, back in a minute"
        );
    });
}

/// The application refuses a request with a code and a text: the starter's
/// `connect` fails with both, the listener keeps nothing and counts it.
fn a_refusal_reaches_the_starter_with_its_code_and_text(driver: Driver) {
    within(30, move || {
        let server = driver.bind(local(), deciding());
        let client = driver.bind(local(), client_config());
        let ((), connected) = connect_while(server.as_ref(), client.as_ref(), || {
            let pending = server.incoming().expect("a request");
            assert_eq!(pending.remote_addr(), client.local_addr());
            assert_eq!(pending.peer_params().max_streams, 11);
            assert!(server.sessions().is_empty(), "not open before the decision");
            pending.refuse(403, "not on the guest list");
        });
        let Err(ConnectError::Failed(reason)) = connected.map(|s| s.id()) else {
            panic!("the connect fails")
        };
        assert_eq!(
            reason,
            CloseReason::Rejected {
                code: 403,
                reason: CloseText::new("not on the guest list"),
            }
        );
        assert!(
            ConnectError::Failed(reason)
                .to_string()
                .contains("(code 403): not on the guest list")
        );
        let stats = server.stats();
        assert_eq!(stats.sessions_refused_by_application, 1);
        assert_eq!(stats.sessions_accepted, 0);
        assert_eq!(server.session_count(), 0);
    });
}

/// An accepted request is an ordinary session: messages both ways, listed
/// by the endpoint, counted as accepted.
fn an_accepted_request_is_an_ordinary_session(driver: Driver) {
    within(30, move || {
        let server = driver.bind(local(), deciding());
        let client = driver.bind(local(), client_config());
        let (accepted, connected) = connect_while(server.as_ref(), client.as_ref(), || {
            let pending = server.incoming().expect("a request");
            let id = pending.id();
            let session = pending.accept().expect("accepted");
            assert_eq!(session.id(), id);
            session
        });
        let session = connected.expect("connected");
        let id = session.id();
        assert_eq!(
            accepted.id(),
            id,
            "the listener issues the starter's id back"
        );
        session.send(b"ping"[..].into()).unwrap();
        assert_eq!(accepted.recv().unwrap(), b"ping"[..]);
        accepted.send(b"pong"[..].into()).unwrap();
        assert_eq!(session.recv().unwrap(), b"pong"[..]);
        assert_eq!(server.sessions(), vec![id]);
        assert_eq!(server.stats().sessions_accepted, 1);
        // Not offered to `accept` as well: once the endpoint closes, `accept`
        // has nothing to return.
        thread::scope(|scope| {
            scope.spawn(|| {
                thread::sleep(Duration::from_millis(100));
                server.close();
            });
            assert!(
                server.accept().is_none(),
                "an accepted request is not queued"
            );
        });
    });
}

/// A request the application drops without deciding is refused with
/// `DROPPED_CODE`, as a dropped session is closed with it.
fn a_request_dropped_undecided_is_refused(driver: Driver) {
    within(30, move || {
        let server = driver.bind(local(), deciding());
        let client = driver.bind(local(), client_config());
        let ((), connected) = connect_while(server.as_ref(), client.as_ref(), || {
            drop(server.incoming().expect("a request"));
        });
        let Err(ConnectError::Failed(reason)) = connected.map(|s| s.id()) else {
            panic!("the connect fails")
        };
        assert_eq!(
            reason,
            CloseReason::Rejected {
                code: DROPPED_CODE,
                reason: CloseText::EMPTY,
            }
        );
    });
}

/// A request nobody takes is refused by the listener once its
/// `handshake_timeout` passes; the starter learns it as a timeout.
fn a_request_nobody_decides_on_times_out(driver: Driver) {
    within(30, move || {
        let server = driver.bind(
            local(),
            EndpointConfig::from(Config {
                accept_incoming: true,
                decide_incoming: true,
                handshake_timeout: Duration::from_millis(500),
                ..Config::default()
            }),
        );
        let client = driver.bind(local(), client_config());
        let connected = client.connect(server.local_addr()).map(|s| s.id());
        assert!(
            matches!(connected, Err(ConnectError::Failed(CloseReason::Timeout))),
            "{connected:?}"
        );
        assert_eq!(server.stats().sessions_undecided, 1);
        assert_eq!(server.session_count(), 0);
        // The request left the queue when it ended: nothing is offered.
        thread::scope(|scope| {
            scope.spawn(|| {
                thread::sleep(Duration::from_millis(100));
                server.close();
            });
            assert!(
                server.incoming().is_none(),
                "an ended request is not offered"
            );
        });
    });
}

ferry_tests::on_every_driver! {
    a_close_with_a_reason_reaches_the_peer_with_its_code_and_text,
    a_refusal_reaches_the_starter_with_its_code_and_text,
    an_accepted_request_is_an_ordinary_session,
    a_request_dropped_undecided_is_refused,
    a_request_nobody_decides_on_times_out,
}
