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
