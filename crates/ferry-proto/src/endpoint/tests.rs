//! The endpoint's own bookkeeping of incoming sessions waiting for a
//! decision: what it counts, and that it forgets.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::BytesMut;

use super::Endpoint;
use crate::config::Config;
use crate::event::{CloseReason, Event};
use crate::id::SessionId;
use crate::session::State;

const CLIENT: &str = "127.0.0.1:1000";
const SERVER: &str = "127.0.0.1:2000";

fn addr(a: &str) -> SocketAddr {
    a.parse().unwrap()
}

/// Hands every datagram `from` sends to `to`; returns how many went.
fn deliver(from: &mut Endpoint, from_addr: &str, to: &mut Endpoint, now: Instant) -> usize {
    let mut buf = Vec::new();
    let mut count = 0;
    while let Some(t) = from.poll_transmit(now, &mut buf) {
        to.handle_datagram(now, addr(from_addr), BytesMut::from(&buf[..t.size]));
        count += 1;
    }
    count
}

/// A deciding server holding one incoming session from a client.
fn pending() -> (Endpoint, Endpoint, SessionId, Instant) {
    let now = crate::test_support::epoch();
    let mut server = Endpoint::new(
        Config {
            accept_incoming: true,
            decide_incoming: true,
            ..Config::default()
        },
        1,
    )
    .unwrap();
    let mut client = Endpoint::new(Config::default(), 2).unwrap();
    client.connect(now, addr(SERVER)).unwrap();
    assert_eq!(deliver(&mut client, CLIENT, &mut server, now), 1);
    let Some(Event::Incoming { session }) = server.poll_event() else {
        panic!("an Incoming event")
    };
    (server, client, session, now)
}

#[test]
fn an_incoming_session_is_counted_while_it_waits_and_not_after_a_refusal() {
    let (mut server, mut client, id, now) = pending();
    assert_eq!(server.undecided, 1);
    assert_eq!(server.unvalidated, 1, "its address is not proven yet");
    assert_eq!(deliver(&mut server, SERVER, &mut client, now), 0);
    server.session(id).unwrap().refuse(9, "no").unwrap();
    assert_eq!(server.undecided, 0);
    assert_eq!(server.unvalidated, 0);
    assert_eq!(server.session_count(), 0);
    // The refusal is the one datagram that goes.
    assert_eq!(deliver(&mut server, SERVER, &mut client, now), 1);
    assert_eq!(deliver(&mut server, SERVER, &mut client, now), 0);
}

#[test]
fn an_accepted_session_leaves_the_count_and_its_connect_ack_goes() {
    let (mut server, mut client, id, now) = pending();
    server.session(id).unwrap().accept(now).unwrap();
    assert_eq!(server.undecided, 0);
    assert_eq!(server.session(id).unwrap().state(), State::Established);
    assert!(deliver(&mut server, SERVER, &mut client, now) >= 1);
}

#[test]
fn an_undecided_session_times_out_refused_and_counted() {
    let (mut server, mut client, id, now) = pending();
    let deadline = server.poll_timeout().expect("the decision's deadline");
    assert_eq!(deadline, now + Config::default().handshake_timeout);
    server.handle_timeout(deadline);
    assert_eq!(server.undecided, 0);
    assert!(server.session(id).is_none());
    assert_eq!(server.stats().sessions_undecided, 1);
    assert_eq!(deliver(&mut server, SERVER, &mut client, deadline), 1);
    // The client's session ends on it (its own deadline has not run).
    let reason = std::iter::from_fn(|| client.poll_event()).find_map(|e| match e {
        Event::Closed { reason, .. } => Some(reason),
        _ => None,
    });
    assert_eq!(reason, Some(CloseReason::Timeout));
}

#[test]
fn garbage_for_an_incoming_session_changes_nothing() {
    let (mut server, _client, id, now) = pending();
    for kind in 0..=255u8 {
        let mut datagram = vec![kind];
        datagram.extend_from_slice(&id.0);
        datagram.extend_from_slice(&[0; 40]);
        server.handle_datagram(now, addr(CLIENT), BytesMut::from(&datagram[..]));
    }
    assert_eq!(server.session(id).unwrap().state(), State::Incoming);
    assert_eq!(server.undecided, 1);
}

mod model {
    //! Random decisions, timeouts, repeated Connects and garbage against a
    //! deciding listener: it never panics, and its count of sessions waiting
    //! always matches the sessions in `State::Incoming`, within the bounds.

    use proptest::prelude::*;

    use super::*;

    /// One step of a run.
    #[derive(Debug, Clone)]
    enum Op {
        /// Client `n` connects (its Connect reaches the listener).
        Connect(u8),
        /// Client `n` sends whatever it has (repeated Connects, acks).
        Flush(u8),
        /// The `n`-th session listed is accepted, refused or closed.
        Accept(u8),
        Refuse(u8),
        Close(u8),
        /// Time passes, milliseconds.
        Wait(u16),
        /// Bytes from a client's address; with `ours`, over the `n`-th
        /// session's id.
        Garbage {
            n: u8,
            ours: bool,
            bytes: Vec<u8>,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0..4u8).prop_map(Op::Connect),
            (0..4u8).prop_map(Op::Flush),
            any::<u8>().prop_map(Op::Accept),
            any::<u8>().prop_map(Op::Refuse),
            any::<u8>().prop_map(Op::Close),
            (0..12_000u16).prop_map(Op::Wait),
            (
                any::<u8>(),
                any::<bool>(),
                prop::collection::vec(any::<u8>(), 0..64)
            )
                .prop_map(|(n, ours, bytes)| Op::Garbage { n, ours, bytes }),
        ]
    }

    fn client_addr(n: u8) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 3000 + u16::from(n)))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn the_count_of_undecided_sessions_always_matches_and_stays_bounded(
            ops in prop::collection::vec(op(), 1..60),
        ) {
            let config = Config {
                accept_incoming: true,
                decide_incoming: true,
                max_pending_handshakes: 2,
                max_sessions: 3,
                ..Config::default()
            };
            let mut server = Endpoint::new(config.clone(), 1).unwrap();
            let mut clients: Vec<Endpoint> = (0..4)
                .map(|n| Endpoint::new(Config::default(), 10 + n).unwrap())
                .collect();
            let mut now = crate::test_support::epoch();
            let mut buf = Vec::new();
            for op in ops {
                let ids: Vec<SessionId> = server.sessions().collect();
                let pick = |n: u8| (!ids.is_empty()).then(|| ids[usize::from(n) % ids.len()]);
                match op {
                    Op::Connect(n) | Op::Flush(n) => {
                        let client = &mut clients[usize::from(n)];
                        if matches!(op, Op::Connect(_)) {
                            let _ = client.connect(now, addr(SERVER));
                        }
                        while let Some(t) = client.poll_transmit(now, &mut buf) {
                            server.handle_datagram(
                                now,
                                client_addr(n),
                                BytesMut::from(&buf[..t.size]),
                            );
                        }
                    }
                    Op::Accept(n) => {
                        if let Some(id) = pick(n) {
                            let _ = server.session(id).unwrap().accept(now);
                        }
                    }
                    Op::Refuse(n) => {
                        if let Some(id) = pick(n) {
                            let _ = server.session(id).unwrap().refuse(7, "no");
                        }
                    }
                    Op::Close(n) => {
                        if let Some(id) = pick(n) {
                            server.session(id).unwrap().close_with_reason(now, 8, "bye");
                        }
                    }
                    Op::Wait(ms) => {
                        now += std::time::Duration::from_millis(u64::from(ms));
                        server.handle_timeout(now);
                        for client in &mut clients {
                            client.handle_timeout(now);
                        }
                    }
                    Op::Garbage { n, ours, mut bytes } => {
                        if ours && bytes.len() >= 10 && let Some(id) = pick(n) {
                            bytes[2..10].copy_from_slice(&id.0);
                        }
                        server.handle_datagram(now, client_addr(n % 4), BytesMut::from(&bytes[..]));
                    }
                }
                // The server's answers go nowhere; its events are drained.
                while server.poll_transmit(now, &mut buf).is_some() {}
                while server.poll_event().is_some() {}
                let waiting = server
                    .session_states()
                    .filter(|(_, s)| *s == State::Incoming)
                    .count();
                prop_assert_eq!(server.undecided, waiting);
                prop_assert!(waiting <= config.max_pending_handshakes);
                prop_assert!(server.session_count() <= config.max_sessions);
            }
        }
    }
}
