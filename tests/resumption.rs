//! Resumed sessions on every driver (tokio, async-std, smol, blocking) over
//! real sockets on loopback: a ticket from a first session opens a second in
//! the shortened handshake, with early data; used again, it is refused and
//! the session falls back to a full handshake by itself.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_async::types::{Config, EndpointConfig, Identity, Ticket};
use ferry_tests::harness::{Conn, Driver, within};

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn identity(byte: u8) -> Identity {
    Identity::from_private_bytes([byte; 32])
}

/// Waits for the ticket the listener sends just after the handshake.
fn ticket_of(session: &dyn Conn) -> Ticket {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(t) = session.ticket() {
            return t;
        }
        assert!(Instant::now() < deadline, "no ticket came");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// An identity session leaves a ticket that resumes the next with early
/// data, which the listener delivers; the same ticket again is refused and
/// the session still opens, in a full handshake.
fn a_ticket_resumes_a_session_with_early_data_once(driver: Driver) {
    within(60, move || {
        let (alice, server_id) = (identity(1), identity(2));
        let server = driver.bind(
            local(),
            EndpointConfig::from(Config {
                accept_incoming: true,
                identity: Some(server_id.clone()),
                authorized_keys: Some([alice.public_key()].into_iter().collect()),
                issue_tickets: true,
                accept_early_data: true,
                ..Config::default()
            }),
        );
        let client = driver.bind(
            local(),
            EndpointConfig::from(Config {
                identity: Some(alice.clone()),
                listener_key: Some(server_id.public_key()),
                ..Config::default()
            }),
        );
        let first = client.connect(server.local_addr()).unwrap();
        let _accepted = server.accept().unwrap();
        let ticket = ticket_of(first.as_ref());
        assert_eq!(ticket.listener(), server.local_addr());
        assert!(ticket.allows_early_data());
        // Stored and read back, as an application would across restarts.
        let ticket = Ticket::from_bytes(&ticket.to_bytes()).unwrap();

        let resumed = client
            .connect_resumed(&ticket, &[Bytes::from_static(b"early")])
            .unwrap();
        let accepted = server.accept().unwrap();
        assert_eq!(accepted.recv().unwrap(), "early");
        assert!(resumed.is_resumed() && accepted.is_resumed());
        assert_eq!(accepted.peer_identity(), Some(alice.public_key()));
        assert_eq!(resumed.peer_identity(), Some(server_id.public_key()));
        resumed.send(Bytes::from_static(b"later")).unwrap();
        assert_eq!(accepted.recv().unwrap(), "later");
        let stats = server.stats();
        assert_eq!(stats.sessions_resumed, 1);
        assert_eq!(stats.early_data_accepted, 1);

        // Used once already: refused; a full handshake, the early message
        // sent after it, once.
        let again = client
            .connect_resumed(&ticket, &[Bytes::from_static(b"again")])
            .unwrap();
        let accepted = server.accept().unwrap();
        assert!(!again.is_resumed());
        assert_eq!(accepted.recv().unwrap(), "again");
        assert_eq!(server.stats().tickets_refused, 1);
        assert_eq!(client.stats().resumptions_refused, 1);
    });
}

ferry_tests::on_every_driver!(a_ticket_resumes_a_session_with_early_data_once,);

/// A server of four shards: tickets issued by one shard open at any other
/// (the shards share their ticket keys and strike register), so every
/// resumption from clients on other ports, dealt over the shards, resumes.
#[test]
fn tickets_resume_across_the_shards_of_a_server() {
    within(60, || {
        let driver = Driver::Tokio;
        let server = driver.bind(
            local(),
            EndpointConfig::from(Config {
                accept_incoming: true,
                issue_tickets: true,
                ..Config::default()
            })
            .with_shards(4),
        );
        let clients: Vec<_> = (0..8)
            .map(|_| driver.bind(local(), EndpointConfig::default()))
            .collect();
        let first = clients[0].connect(server.local_addr()).unwrap();
        let _first = server.accept().unwrap();
        let mut ticket = ticket_of(first.as_ref());
        let mut held = Vec::new();
        for client in &clients[1..] {
            let session = client.connect_resumed(&ticket, &[]).unwrap();
            assert!(session.is_resumed());
            held.push(server.accept().unwrap());
            ticket = ticket_of(session.as_ref());
            held.push(session);
        }
        let stats = server.stats();
        assert_eq!(stats.sessions_resumed, 7);
        assert_eq!(stats.tickets_refused, 0);
    });
}
