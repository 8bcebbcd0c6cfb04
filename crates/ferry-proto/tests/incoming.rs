//! Incoming sessions the application decides on (`Config::decide_incoming`):
//! the pending state, accept, refuse, the deadline, repeated Connects, and
//! the bounds on sessions waiting.

mod common;

use std::time::Duration;

use common::{Pair, closed, drain, receive_messages};
use ferry_proto::crypto::{Identity, PreSharedKey};
use ferry_proto::{CloseReason, CloseText, Config, DecisionError, Event, SessionId, State};
use ferry_sim::{LinkConfig, Network, NodeId};

fn link() -> LinkConfig {
    LinkConfig::default().latency(Duration::from_millis(10))
}

/// A client and a server that decides on incoming sessions, both with `psk`.
fn deciding(seed: u64, psk: Option<PreSharedKey>) -> Pair {
    let client = Config {
        psk: psk.clone(),
        max_streams: 7,
        ..Config::default()
    };
    let server = Config {
        decide_incoming: true,
        psk,
        ..Config::default()
    };
    Pair::with_configs(seed, link(), client, server)
}

/// Runs until `node` reports an incoming session; returns its id.
fn next_incoming(net: &mut Network, node: NodeId) -> SessionId {
    let mut found = None;
    net.run_until(Duration::from_secs(5), |net| {
        found = found.or(drain(net, node).iter().find_map(|e| match e {
            Event::Incoming { session } => Some(*session),
            _ => None,
        }));
        found.is_some()
    });
    found.expect("an Incoming event")
}

/// Runs until `node` reports a close; returns its reason.
fn next_close(net: &mut Network, node: NodeId, limit: Duration) -> Option<CloseReason> {
    let mut reason = None;
    net.run_until(limit, |net| {
        reason = reason.take().or(closed(&drain(net, node)));
        reason.is_some()
    });
    reason
}

fn keys() -> [Option<PreSharedKey>; 2] {
    [None, Some(PreSharedKey::from_bytes([5; 32]))]
}

#[test]
fn an_incoming_session_waits_for_the_decision_and_sends_nothing() {
    let mut pair = deciding(1, None);
    let client_id = pair.connect();
    let id = next_incoming(&mut pair.net, pair.server);
    pair.net.run_for(Duration::from_millis(500));
    let client_addr = pair.net.addr(pair.client);
    let session = pair.net.endpoint(pair.server).session(id).unwrap();
    assert_eq!(session.state(), State::Incoming);
    assert_eq!(session.remote_addr(), client_addr);
    let params = session.peer_params();
    assert_eq!(params.max_streams, 7, "what the starter announced");
    assert_eq!(params.mtu, Config::default().mtu as u64);
    assert_eq!(
        params.max_message_size,
        Config::default().max_message_size as u64
    );
    assert_eq!(params.recv_window, Config::default().recv_window as u64);
    drop(session);
    assert_eq!(
        pair.net.link_stats(pair.server, pair.client).unwrap().sent,
        0,
        "no answer before the decision"
    );
    let state = pair
        .net
        .endpoint(pair.client)
        .session(client_id)
        .unwrap()
        .state();
    assert_eq!(state, State::Handshaking);
    let stats = pair.net.endpoint(pair.server).stats().clone();
    assert_eq!(stats.sessions_accepted, 0, "not accepted yet");
    // Not an open session for the other lists either: nothing established.
    assert!(
        drain(&mut pair.net, pair.server)
            .iter()
            .all(|e| !matches!(e, Event::Connected { .. }))
    );
}

#[test]
fn an_accepted_incoming_session_is_established_on_both_sides_and_carries_messages() {
    for psk in keys() {
        let mut pair = deciding(2, psk.clone());
        let client_id = pair.connect();
        let id = next_incoming(&mut pair.net, pair.server);
        let now = pair.net.now();
        pair.net
            .endpoint(pair.server)
            .session(id)
            .unwrap()
            .accept(now)
            .unwrap();
        let (client, server) = (pair.client, pair.server);
        let mut connected = (false, false);
        let ok = pair.net.run_until(Duration::from_secs(5), |net| {
            connected.0 |= drain(net, client)
                .iter()
                .any(|e| matches!(e, Event::Connected { .. }));
            connected.1 |= drain(net, server)
                .iter()
                .any(|e| matches!(e, Event::Connected { .. }));
            connected.0 && connected.1
        });
        assert!(ok, "both sides established (key: {})", psk.is_some());
        assert_eq!(pair.net.endpoint(server).stats().sessions_accepted, 1);
        pair.net
            .endpoint(client)
            .session(client_id)
            .unwrap()
            .send(&b"hello"[..])
            .unwrap();
        assert_eq!(
            receive_messages(&mut pair.net, server, 1, Duration::from_secs(5)),
            1
        );
        // The listener's parameters reached the starter.
        let params = pair
            .net
            .endpoint(client)
            .session(client_id)
            .unwrap()
            .peer_params();
        assert_eq!(params.max_streams, Config::default().max_streams as u64);
    }
}

#[test]
fn a_refusal_reaches_the_starter_with_its_code_and_text() {
    for psk in keys() {
        let mut pair = deciding(3, psk.clone());
        pair.connect();
        let id = next_incoming(&mut pair.net, pair.server);
        pair.net
            .endpoint(pair.server)
            .session(id)
            .unwrap()
            .refuse(403, "not on the guest list")
            .unwrap();
        let reason = next_close(&mut pair.net, pair.client, Duration::from_secs(5));
        assert_eq!(
            reason,
            Some(CloseReason::Rejected {
                code: 403,
                reason: CloseText::new("not on the guest list"),
            }),
            "key: {}",
            psk.is_some()
        );
        let server = pair.net.endpoint(pair.server);
        assert_eq!(server.session_count(), 0, "the listener keeps nothing");
        assert_eq!(server.stats().sessions_refused_by_application, 1);
        assert_eq!(server.stats().sessions_accepted, 0);
        assert_eq!(
            closed(&drain(&mut pair.net, pair.server)),
            Some(CloseReason::Local {
                code: 403,
                reason: CloseText::new("not on the guest list"),
            })
        );
        let client = pair.net.endpoint(pair.client);
        assert_eq!(client.stats().sessions_closed.rejected, 1);
        assert_eq!(client.session_count(), 0);
    }
}

#[test]
fn closing_an_incoming_session_refuses_it_with_the_code() {
    let mut pair = deciding(4, None);
    pair.connect();
    let id = next_incoming(&mut pair.net, pair.server);
    let now = pair.net.now();
    pair.net
        .endpoint(pair.server)
        .session(id)
        .unwrap()
        .close_with_reason(now, 8, "shutting down");
    let reason = next_close(&mut pair.net, pair.client, Duration::from_secs(5));
    assert_eq!(
        reason,
        Some(CloseReason::Rejected {
            code: 8,
            reason: CloseText::new("shutting down"),
        })
    );
}

#[test]
fn an_undecided_session_is_refused_after_the_handshake_timeout() {
    let server = Config {
        decide_incoming: true,
        handshake_timeout: Duration::from_secs(2),
        ..Config::default()
    };
    let client = Config {
        handshake_timeout: Duration::from_secs(10),
        ..Config::default()
    };
    let mut pair = Pair::with_configs(5, link(), client, server);
    pair.connect();
    let id = next_incoming(&mut pair.net, pair.server);
    let reason = next_close(&mut pair.net, pair.client, Duration::from_secs(10));
    assert_eq!(reason, Some(CloseReason::Timeout));
    assert!(
        pair.net.elapsed() < Duration::from_secs(3),
        "the listener's deadline, not the starter's: {:?}",
        pair.net.elapsed()
    );
    let server = pair.net.endpoint(pair.server);
    assert_eq!(server.stats().sessions_undecided, 1);
    assert!(server.session(id).is_none());
    assert_eq!(
        closed(&drain(&mut pair.net, pair.server)),
        Some(CloseReason::Timeout)
    );
}

#[test]
fn a_repeated_connect_for_an_undecided_session_is_absorbed() {
    let mut pair = deciding(6, None);
    pair.connect();
    let id = next_incoming(&mut pair.net, pair.server);
    // The starter repeats its Connect with backoff while nothing answers.
    pair.net.run_for(Duration::from_secs(4));
    let connects = pair.net.link_stats(pair.client, pair.server).unwrap().sent;
    assert!(connects >= 3, "{connects} connects");
    assert_eq!(
        pair.net.link_stats(pair.server, pair.client).unwrap().sent,
        0,
        "no answer to a repeated Connect"
    );
    let server = pair.net.endpoint(pair.server);
    assert_eq!(server.session_count(), 1, "one session for them all");
    assert_eq!(server.session(id).unwrap().state(), State::Incoming);
    assert!(
        drain(&mut pair.net, pair.server)
            .iter()
            .all(|e| !matches!(e, Event::Incoming { .. })),
        "one Incoming event"
    );
    // Still decidable: the ConnectAck goes now.
    let now = pair.net.now();
    pair.net
        .endpoint(pair.server)
        .session(id)
        .unwrap()
        .accept(now)
        .unwrap();
    pair.net.run_for(Duration::from_millis(200));
    assert!(
        drain(&mut pair.net, pair.client)
            .iter()
            .any(|e| matches!(e, Event::Connected { .. }))
    );
}

#[test]
fn sessions_waiting_for_a_decision_count_against_max_pending_handshakes_and_max_sessions() {
    for (pending, sessions) in [(2, 100), (100, 2)] {
        let server = Config {
            decide_incoming: true,
            max_pending_handshakes: pending,
            max_sessions: sessions,
            ..Config::default()
        };
        let mut pair = Pair::with_configs(7, link(), Config::default(), server);
        for _ in 0..3 {
            pair.connect();
        }
        pair.net.run_for(Duration::from_millis(300));
        let incoming = drain(&mut pair.net, pair.server)
            .iter()
            .filter(|e| matches!(e, Event::Incoming { .. }))
            .count();
        assert_eq!(incoming, 2, "pending {pending}, sessions {sessions}");
        let server = pair.net.endpoint(pair.server);
        assert_eq!(server.session_count(), 2);
        assert!(server.stats().sessions_refused >= 1);
        let refused = drain(&mut pair.net, pair.client)
            .iter()
            .filter(|e| {
                matches!(
                    e,
                    Event::Closed {
                        reason: CloseReason::Refused,
                        ..
                    }
                )
            })
            .count();
        assert_eq!(refused, 1, "the third is refused by the transport");
    }
}

#[test]
fn a_session_is_decided_on_once_and_only_an_incoming_one() {
    let mut pair = deciding(8, None);
    let client_id = pair.connect();
    let id = next_incoming(&mut pair.net, pair.server);
    let now = pair.net.now();
    let server = pair.net.endpoint(pair.server);
    server.session(id).unwrap().accept(now).unwrap();
    assert_eq!(
        server.session(id).unwrap().accept(now),
        Err(DecisionError::NotIncoming)
    );
    assert_eq!(
        server.session(id).unwrap().refuse(1, "too late"),
        Err(DecisionError::NotIncoming)
    );
    assert_eq!(server.stats().sessions_accepted, 1, "counted once");
    let client = pair.net.endpoint(pair.client);
    assert_eq!(
        client.session(client_id).unwrap().accept(now),
        Err(DecisionError::NotIncoming),
        "a session this side started"
    );
}

#[test]
fn without_the_setting_a_listener_accepts_at_once() {
    let mut pair = Pair::new(9, link());
    pair.establish();
    let events = drain(&mut pair.net, pair.server);
    assert!(events.iter().all(|e| !matches!(e, Event::Incoming { .. })));
    assert_eq!(pair.net.endpoint(pair.server).stats().sessions_accepted, 1);
}

#[test]
fn a_lost_refusal_is_sent_again_to_the_repeated_connect() {
    for seed in 0..10 {
        let mut pair = deciding(20 + seed, None);
        // Every other datagram from the listener is lost.
        pair.net
            .set_link(pair.server, pair.client, link().random_loss(0.5));
        pair.connect();
        let id = next_incoming(&mut pair.net, pair.server);
        pair.net
            .endpoint(pair.server)
            .session(id)
            .unwrap()
            .refuse(451, "unavailable here")
            .unwrap();
        let reason = next_close(&mut pair.net, pair.client, Duration::from_secs(20));
        assert_eq!(
            reason,
            Some(CloseReason::Rejected {
                code: 451,
                reason: CloseText::new("unavailable here"),
            }),
            "seed {seed}"
        );
        assert!(
            pair.net.elapsed() < Config::default().handshake_timeout,
            "seed {seed}: refused before the starter's own deadline, at {:?}",
            pair.net.elapsed()
        );
        assert_eq!(
            pair.net
                .endpoint(pair.server)
                .stats()
                .sessions_refused_by_application,
            1,
            "counted once, however often it is sent"
        );
    }
}

#[test]
fn the_starters_identity_is_known_while_its_request_waits() {
    use rand::SeedableRng;
    let generate = |seed| Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed));
    let (starter, listener) = (generate(1), generate(2));
    let client = Config {
        identity: Some(starter.clone()),
        listener_key: Some(listener.public_key()),
        ..Config::default()
    };
    let server = Config {
        identity: Some(listener),
        decide_incoming: true,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(30, link(), client, server);
    pair.connect();
    let id = next_incoming(&mut pair.net, pair.server);
    let mut session = pair.net.endpoint(pair.server).session(id).unwrap();
    assert_eq!(session.state(), State::Incoming);
    assert_eq!(session.peer_identity(), Some(starter.public_key()));
    session.refuse(403, "not you").unwrap();
    drop(session);
    let reason = next_close(&mut pair.net, pair.client, Duration::from_secs(5));
    assert_eq!(
        reason,
        Some(CloseReason::Rejected {
            code: 403,
            reason: CloseText::new("not you"),
        })
    );
}
