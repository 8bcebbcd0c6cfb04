//! Sessions between identities: who gets in, who is refused, and what a
//! stranger, a revoked peer, an impostor or a replayer gets (nothing).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::BytesMut;
use common::{Pair, drain};
use ferry_proto::crypto::{AuthorizedKeys, Identity, PreSharedKey, PublicKey};
use ferry_proto::{CloseReason, Config, ConnectError, Endpoint, Event};
use ferry_sim::{LinkConfig, Transfer};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

fn identity(seed: u64) -> Identity {
    Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

/// A starter proving `me` that pins `listener`.
fn starter(me: &Identity, listener: PublicKey) -> Config {
    Config {
        identity: Some(me.clone()),
        listener_key: Some(listener),
        ..Config::default()
    }
}

/// A listener proving `me` that admits `admitted` (any key if `None`).
fn listener(me: &Identity, admitted: Option<&[PublicKey]>) -> Config {
    Config {
        identity: Some(me.clone()),
        authorized_keys: admitted.map(|keys| keys.iter().copied().collect()),
        ..Config::default()
    }
}

/// Runs a handshake to its end; the starter's close reason if it failed.
fn run(pair: &mut Pair) -> Result<(), CloseReason> {
    pair.connect();
    let (c, s) = (pair.client, pair.server);
    let mut outcome = None;
    pair.net.run_until(Duration::from_secs(30), |net| {
        for e in drain(net, c) {
            match e {
                Event::Connected { .. } => outcome = Some(Ok(())),
                Event::Closed { reason, .. } => outcome = Some(Err(reason)),
                _ => {}
            }
        }
        drain(net, s);
        outcome.is_some()
    });
    outcome.expect("the handshake ended one way or the other")
}

#[test]
fn a_listed_key_gets_in_and_each_side_knows_who_the_other_is() {
    let (alice, server) = (identity(1), identity(2));
    let mut pair = Pair::with_configs(
        1,
        LinkConfig::default(),
        starter(&alice, server.public_key()),
        listener(&server, Some(&[alice.public_key()])),
    );
    assert_eq!(run(&mut pair), Ok(()));
    let (c, s) = (pair.client, pair.server);
    let id = pair.net.endpoint(c).sessions().next().unwrap();
    let at_client = pair.net.endpoint(c).session(id).unwrap().peer_identity();
    assert_eq!(at_client, Some(server.public_key()));
    let sid = pair.net.endpoint(s).sessions().next().unwrap();
    let session = pair.net.endpoint(s).session(sid).unwrap();
    assert_eq!(session.peer_identity(), Some(alice.public_key()));
    assert!(session.stats().cipher.is_some(), "packets are encrypted");
}

#[test]
fn an_unlisted_key_is_refused_at_once_and_the_listener_keeps_nothing() {
    let (alice, mallory, server) = (identity(1), identity(3), identity(2));
    let mut pair = Pair::with_configs(
        2,
        LinkConfig::default(),
        starter(&mallory, server.public_key()),
        listener(&server, Some(&[alice.public_key()])),
    );
    assert_eq!(run(&mut pair), Err(CloseReason::AuthenticationFailed));
    assert!(pair.net.elapsed() < Duration::from_secs(1), "told at once");
    let s = pair.server;
    let stats = pair.net.endpoint(s).stats().clone();
    assert_eq!(pair.net.endpoint(s).session_count(), 0, "no state");
    assert_eq!(stats.dropped_unauthorized, 1);
    assert_eq!(stats.sessions_accepted, 0);
}

#[test]
fn a_revoked_key_gets_no_new_session_and_the_others_still_do() {
    let (alice, bob, server) = (identity(1), identity(4), identity(2));
    let both = [alice.public_key(), bob.public_key()];
    let mut pair = Pair::with_configs(
        3,
        LinkConfig::default(),
        starter(&alice, server.public_key()),
        listener(&server, Some(&both)),
    );
    assert_eq!(run(&mut pair), Ok(()));
    let s = pair.server;
    let mut list: AuthorizedKeys = both.iter().copied().collect();
    assert!(list.remove(&alice.public_key()));
    pair.net.endpoint(s).set_authorized_keys(Some(list));
    assert_eq!(run(&mut pair), Err(CloseReason::AuthenticationFailed));
    assert_eq!(pair.net.endpoint(s).stats().dropped_unauthorized, 1);
    assert_eq!(
        pair.net.endpoint(s).session_count(),
        1,
        "the first one goes on"
    );

    // Bob, still listed, gets in through the same listener.
    let b = pair
        .net
        .add_node(starter(&bob, server.public_key()))
        .unwrap();
    pair.net.set_path(b, s, LinkConfig::default());
    let (now, addr) = (pair.net.now(), pair.net.addr(s));
    pair.net.endpoint(b).connect(now, addr).unwrap();
    let ok = pair.net.run_until(Duration::from_secs(5), |net| {
        drain(net, b)
            .iter()
            .any(|e| matches!(e, Event::Connected { .. }))
    });
    assert!(ok, "a listed key still gets in");
}

#[test]
fn a_starter_that_pinned_the_wrong_listener_key_gets_nothing() {
    let (alice, server, other) = (identity(1), identity(2), identity(5));
    let mut pair = Pair::with_configs(
        4,
        LinkConfig::default(),
        starter(&alice, other.public_key()),
        listener(&server, None),
    );
    assert_eq!(run(&mut pair), Err(CloseReason::AuthenticationFailed));
    let s = pair.server;
    assert_eq!(pair.net.endpoint(s).session_count(), 0);
    assert_eq!(pair.net.endpoint(s).stats().dropped_unauthenticated, 1);
}

#[test]
fn identities_and_a_pre_shared_key_together_need_both() {
    let (alice, server) = (identity(1), identity(2));
    let with = |config: Config, byte: u8| Config {
        psk: Some(PreSharedKey::from_bytes([byte; 32])),
        ..config
    };
    let mut pair = Pair::with_configs(
        5,
        LinkConfig::default(),
        with(starter(&alice, server.public_key()), 9),
        with(listener(&server, None), 9),
    );
    assert_eq!(run(&mut pair), Ok(()));
    let mut pair = Pair::with_configs(
        6,
        LinkConfig::default(),
        with(starter(&alice, server.public_key()), 9),
        with(listener(&server, None), 8),
    );
    assert_eq!(run(&mut pair), Err(CloseReason::AuthenticationFailed));
}

#[test]
fn an_identity_on_one_side_only_fails_authentication() {
    let (alice, server) = (identity(1), identity(2));
    let mut pair = Pair::with_configs(
        7,
        LinkConfig::default(),
        Config::default(),
        listener(&server, None),
    );
    assert_eq!(run(&mut pair), Err(CloseReason::AuthenticationFailed));
    let mut pair = Pair::with_configs(
        8,
        LinkConfig::default(),
        starter(&alice, server.public_key()),
        Config::default(),
    );
    assert_eq!(run(&mut pair), Err(CloseReason::AuthenticationFailed));
}

#[test]
fn an_identity_without_a_listener_key_cannot_connect() {
    let mut client = Endpoint::new(
        Config {
            identity: Some(identity(1)),
            ..Config::default()
        },
        1,
    )
    .unwrap();
    let to: SocketAddr = "192.0.2.9:9".parse().unwrap();
    assert_eq!(
        client.connect(Instant::now(), to),
        Err(ConnectError::NoListenerKey)
    );
    let mut anonymous = Endpoint::new(Config::default(), 2).unwrap();
    assert_eq!(
        anonymous.connect_to(Instant::now(), to, identity(2).public_key()),
        Err(ConnectError::NoIdentity)
    );
}

#[test]
fn an_identity_transfer_under_loss_and_reordering_is_exact() {
    let (alice, server) = (identity(1), identity(2));
    let link = LinkConfig::default()
        .latency(Duration::from_millis(5))
        .random_loss(0.03)
        .reorder(0.05, Duration::from_millis(4));
    let messages: Vec<Vec<u8>> = (0..150u32)
        .map(|i| vec![i as u8; 1 + (i as usize * 991) % 30_000])
        .collect();
    let report = Transfer::new(9, link)
        .client_config(starter(&alice, server.public_key()))
        .server_config(listener(&server, Some(&[alice.public_key()])))
        .run(messages, Duration::from_secs(120));
    assert!(report.complete(), "{report:?}");
}

/// Every datagram `from` has to send now.
fn transmit(from: &mut Endpoint, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(t) = from.poll_transmit(now, &mut buf) {
        out.push(buf[..t.size].to_vec());
    }
    out
}

#[test]
fn a_replayed_handshake_gets_no_answer_and_leaves_no_state() {
    let (alice, server_id) = (identity(1), identity(2));
    let mut client = Endpoint::new(starter(&alice, server_id.public_key()), 1).unwrap();
    let mut server = Endpoint::new(
        Config {
            accept_incoming: true,
            ..listener(&server_id, Some(&[alice.public_key()]))
        },
        2,
    )
    .unwrap();
    let now = Instant::now();
    client.set_wall_clock(now, SystemTime::now());
    let client_addr: SocketAddr = "192.0.2.1:1000".parse().unwrap();
    let attacker: SocketAddr = "198.51.100.7:4000".parse().unwrap();
    let server_addr: SocketAddr = "192.0.2.2:2000".parse().unwrap();

    client.connect(now, server_addr).unwrap();
    let connect = transmit(&mut client, now).remove(0);
    server.handle_datagram(now, client_addr, BytesMut::from(&connect[..]));
    assert_eq!(server.session_count(), 1);
    assert!(
        !transmit(&mut server, now).is_empty(),
        "the genuine one is answered"
    );

    // The session ends and is forgotten; then the recorded connect comes back.
    let id = server.sessions().next().unwrap();
    server.session(id).unwrap().close(now, 0);
    let mut t = now;
    while server.session_count() > 0 {
        t += Duration::from_millis(100);
        server.handle_timeout(t);
        transmit(&mut server, t);
        assert!(t < now + Duration::from_secs(120), "the session drains");
    }
    for from in [attacker, client_addr] {
        server.handle_datagram(t, from, BytesMut::from(&connect[..]));
        assert!(transmit(&mut server, t).is_empty(), "no answer to a replay");
        assert_eq!(server.session_count(), 0, "and no state");
    }
    // Refused by the memory of the retired session, or once that is gone
    // by the handshake's date (the unit tests of `endpoint::replay` show
    // the latter alone).
    let stats = server.stats();
    assert_eq!(stats.dropped_replayed + stats.dropped_unknown_session, 2);

    // The genuine starter's next handshake, dated later, gets in.
    client.connect(t, server_addr).unwrap();
    for datagram in transmit(&mut client, t) {
        server.handle_datagram(t, client_addr, BytesMut::from(&datagram[..]));
    }
    assert_eq!(server.session_count(), 1);
}
