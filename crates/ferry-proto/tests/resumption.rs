//! Resumption tickets: a resumed session in the clear, with a pre-shared key
//! and with identities; a ticket replayed, expired, forged, presented to
//! another endpoint or whose key was revoked is refused and the starter
//! falls back to a full handshake; early data delivered once, never by a
//! replayed Connect, and sent again after the handshake when the listener
//! does not take it; and the round trips a resumed session saves.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use bytes::{Bytes, BytesMut};
use common::{Pair, drain};
use ferry_proto::crypto::{Identity, PreSharedKey};
use ferry_proto::wire::packet::Header;
use ferry_proto::wire::protection::Protection;
use ferry_proto::{Config, Endpoint, Event, SessionId, Ticket, TicketMode};
use ferry_sim::{LinkConfig, NodeId};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

const RTT: Duration = Duration::from_millis(100);

fn link() -> LinkConfig {
    LinkConfig::default().latency(RTT / 2)
}

fn identity(seed: u64) -> Identity {
    Identity::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

/// A starter's and a ticket-issuing listener's configurations in `mode`.
fn configs(mode: TicketMode, early: bool) -> (Config, Config) {
    let psk = PreSharedKey::from_bytes([4; 32]);
    let (me, server) = (identity(1), identity(2));
    let mut client = Config::default();
    let mut listener = Config {
        issue_tickets: true,
        accept_early_data: early,
        ..Config::default()
    };
    if matches!(mode, TicketMode::Psk | TicketMode::IdentityPsk) {
        client.psk = Some(psk.clone());
        listener.psk = Some(psk);
    }
    if mode.has_identity() {
        client.identity = Some(me.clone());
        client.listener_key = Some(server.public_key());
        listener.identity = Some(server);
        listener.authorized_keys = Some([me.public_key()].into_iter().collect());
    }
    (client, listener)
}

fn pair(mode: TicketMode, early: bool) -> Pair {
    let (client, server) = configs(mode, early);
    Pair::with_configs(7, link(), client, server)
}

/// Establishes a session and runs until the starter holds its ticket.
fn ticket(pair: &mut Pair) -> Ticket {
    let id = pair.establish();
    let (c, s) = (pair.client, pair.server);
    let mut got = false;
    pair.net.run_until(Duration::from_secs(5), |net| {
        got |= drain(net, c)
            .iter()
            .any(|e| matches!(e, Event::Ticket { .. }));
        drain(net, s);
        got
    });
    assert!(got, "a ticket came");
    pair.net
        .endpoint(c)
        .session(id)
        .unwrap()
        .ticket()
        .expect("the session holds it")
}

/// Starts a resumed session, queuing `early` before its Connect leaves.
fn resume(pair: &mut Pair, ticket: &Ticket, early: &[&[u8]]) -> SessionId {
    let now = pair.net.now();
    let c = pair.client;
    let id = pair.net.endpoint(c).connect_resumed(now, ticket).unwrap();
    for m in early {
        pair.net
            .endpoint(c)
            .session(id)
            .unwrap()
            .send(m.to_vec())
            .unwrap();
    }
    id
}

/// Runs until the starter's session `id` is established; the time it took.
fn until_connected(pair: &mut Pair, id: SessionId) -> Duration {
    let (c, s) = (pair.client, pair.server);
    let start = pair.net.elapsed();
    let mut done = false;
    pair.net.run_until(Duration::from_secs(10), |net| {
        done |= drain(net, c)
            .iter()
            .any(|e| matches!(e, Event::Connected { session } if *session == id));
        drain(net, s);
        done
    });
    assert!(done, "the session was established");
    pair.net.elapsed() - start
}

/// The messages the listener received, in order, within `limit`.
fn received(pair: &mut Pair, count: usize, limit: Duration) -> Vec<Bytes> {
    let (c, s) = (pair.client, pair.server);
    let mut out = Vec::new();
    pair.net.run_until(limit, |net| {
        out.extend(std::iter::from_fn(|| net.poll_message(s)).map(|(_, m)| m));
        drain(net, c);
        out.len() >= count
    });
    out
}

fn is_resumed(pair: &mut Pair, node: NodeId, id: SessionId) -> bool {
    pair.net.endpoint(node).session(id).unwrap().is_resumed()
}

/// The listener's resumed session.
fn server_session(pair: &mut Pair) -> SessionId {
    let s = pair.server;
    let ids: Vec<_> = pair.net.endpoint(s).sessions().collect();
    ids.into_iter()
        .find(|&id| is_resumed(pair, s, id))
        .expect("the listener resumed a session")
}

#[test]
fn a_session_resumes_with_its_ticket_in_the_clear_with_a_key_and_with_identities() {
    for mode in [
        TicketMode::Clear,
        TicketMode::Psk,
        TicketMode::Identity,
        TicketMode::IdentityPsk,
    ] {
        let mut pair = pair(mode, false);
        let t = ticket(&mut pair);
        assert_eq!(t.mode(), mode);
        assert!(!t.allows_early_data());
        // What an application stores reads back the same.
        let t = Ticket::from_bytes(&t.to_bytes()).unwrap();
        let id = resume(&mut pair, &t, &[b"after"]);
        until_connected(&mut pair, id);
        let (c, s) = (pair.client, pair.server);
        assert!(is_resumed(&mut pair, c, id), "{mode:?}");
        let sid = server_session(&mut pair);
        assert_eq!(received(&mut pair, 1, Duration::from_secs(5)), ["after"]);
        let stats = pair.net.endpoint(s).stats().clone();
        assert_eq!(stats.sessions_resumed, 1, "{mode:?}");
        assert_eq!(stats.tickets_refused, 0, "{mode:?}");
        if mode.is_keyed() {
            let session = pair.net.endpoint(c).session(id).unwrap();
            assert!(session.stats().cipher.is_some(), "encrypted");
        }
        if mode.has_identity() {
            let client_key = configs(mode, false).0.identity.unwrap().public_key();
            let server_key = configs(mode, false).1.identity.unwrap().public_key();
            assert_eq!(
                pair.net.endpoint(s).session(sid).unwrap().peer_identity(),
                Some(client_key)
            );
            assert_eq!(
                pair.net.endpoint(c).session(id).unwrap().peer_identity(),
                Some(server_key)
            );
        }
        // A resumed session gets a fresh ticket, which resumes again.
        pair.net.run_for(Duration::from_secs(1));
        let next = pair.net.endpoint(c).session(id).unwrap().ticket();
        let next = next.expect("a fresh ticket");
        assert_ne!(next.to_bytes(), t.to_bytes());
        let again = resume(&mut pair, &next, &[]);
        until_connected(&mut pair, again);
        assert!(is_resumed(&mut pair, c, again), "{mode:?}");
    }
}

/// Resumes with `t` and expects a refusal: the session falls back to a full
/// handshake and is established, not resumed, and what was queued arrives
/// once.
fn refused_then_full(pair: &mut Pair, t: &Ticket) {
    let (c, s) = (pair.client, pair.server);
    let refused_before = pair.net.endpoint(s).stats().tickets_refused;
    let id = resume(pair, t, &[b"queued"]);
    until_connected(pair, id);
    assert!(!is_resumed(pair, c, id), "a full handshake");
    assert_eq!(
        pair.net.endpoint(s).stats().tickets_refused,
        refused_before + 1
    );
    assert_eq!(pair.net.endpoint(c).stats().resumptions_refused, 1);
    assert_eq!(received(pair, 2, Duration::from_secs(3)), ["queued"]);
}

#[test]
fn a_ticket_used_a_second_time_is_refused_and_the_starter_falls_back_to_a_full_handshake() {
    for mode in [TicketMode::Clear, TicketMode::Identity] {
        let mut pair = pair(mode, true);
        let t = ticket(&mut pair);
        let first = resume(&mut pair, &t, &[]);
        until_connected(&mut pair, first);
        let c = pair.client;
        assert!(is_resumed(&mut pair, c, first));
        refused_then_full(&mut pair, &t);
    }
}

#[test]
fn an_expired_ticket_is_refused() {
    let (client, server) = configs(TicketMode::Psk, false);
    let server = Config {
        ticket_lifetime: Duration::from_secs(2),
        ..server
    };
    let mut pair = Pair::with_configs(7, link(), client, server);
    let t = ticket(&mut pair);
    let c = pair.client;
    for id in pair.net.endpoint(c).sessions().collect::<Vec<_>>() {
        let now = pair.net.now();
        pair.net.endpoint(c).session(id).unwrap().close(now, 0);
    }
    pair.net.run_for(Duration::from_secs(3));
    // A starter whose stored ticket claims a later expiry (it is in clear
    // in the stored form) presents it: the listener goes by the sealed
    // time of issue, and refuses it.
    let mut bytes = t.to_bytes();
    bytes[10..18].copy_from_slice(&u64::MAX.to_be_bytes());
    let claimed = Ticket::from_bytes(&bytes).unwrap();
    refused_then_full(&mut pair, &claimed);
    // The ticket as it came: expired by the starter's own clock too, so it
    // is not even presented; a full handshake at once, nothing refused.
    let s = pair.server;
    let id = resume(&mut pair, &t, &[b"late"]);
    until_connected(&mut pair, id);
    assert!(!is_resumed(&mut pair, c, id));
    assert_eq!(pair.net.endpoint(s).stats().tickets_refused, 1);
    assert_eq!(pair.net.endpoint(c).stats().resumptions_refused, 1);
    assert_eq!(received(&mut pair, 1, Duration::from_secs(3)), ["late"]);
}

#[test]
fn a_forged_ticket_is_refused() {
    for mode in [TicketMode::Clear, TicketMode::Psk] {
        let mut pair = pair(mode, false);
        let t = ticket(&mut pair);
        let mut bytes = t.to_bytes();
        // The sealed ticket ends the stored form: flip a bit in it.
        let at = bytes.len() - 40;
        bytes[at] ^= 0x10;
        let forged = Ticket::from_bytes(&bytes).unwrap();
        refused_then_full(&mut pair, &forged);
    }
}

#[test]
fn a_ticket_presented_to_another_endpoint_is_refused() {
    let (client, server) = configs(TicketMode::Psk, false);
    let mut pair = Pair::with_configs(7, link(), client, server.clone());
    let t = ticket(&mut pair);
    // Another listener at the ticket's address, with the same keys but
    // ticket keys of its own.
    let mut other = Pair::with_configs(8, link(), configs(TicketMode::Psk, false).0, server);
    assert_eq!(t.listener(), other.net.addr(other.server));
    refused_then_full(&mut other, &t);
}

#[test]
fn a_revoked_identity_cannot_resume() {
    let mut pair = pair(TicketMode::Identity, false);
    let t = ticket(&mut pair);
    let s = pair.server;
    let now = pair.net.now();
    // The listener revokes the starter's key: no resumption, and no full
    // handshake either.
    pair.net
        .endpoint(s)
        .set_authorized_keys(Some(ferry_proto::AuthorizedKeys::new()));
    let c = pair.client;
    let id = pair.net.endpoint(c).connect_resumed(now, &t).unwrap();
    let mut reason = None;
    pair.net.run_until(Duration::from_secs(15), |net| {
        for e in drain(net, c) {
            if let Event::Closed { session, reason: r } = e
                && session == id
            {
                reason = Some(r);
            }
        }
        drain(net, s);
        reason.is_some()
    });
    assert_eq!(
        reason,
        Some(ferry_proto::CloseReason::AuthenticationFailed),
        "refused"
    );
    let stats = pair.net.endpoint(s).stats().clone();
    assert_eq!(stats.tickets_refused, 1);
    assert_eq!(stats.sessions_resumed, 0);
}

#[test]
fn early_data_is_delivered_once_before_the_handshake_completes() {
    for mode in [TicketMode::Clear, TicketMode::Psk, TicketMode::Identity] {
        let mut pair = pair(mode, true);
        let t = ticket(&mut pair);
        assert!(t.allows_early_data());
        let id = resume(&mut pair, &t, &[b"one", b"two"]);
        let s = pair.server;
        let got = received(&mut pair, 2, Duration::from_secs(5));
        assert_eq!(got, ["one", "two"], "{mode:?}");
        assert_eq!(pair.net.endpoint(s).stats().early_data_accepted, 1);
        // Later messages follow in order, and nothing arrives twice.
        let c = pair.client;
        pair.net
            .endpoint(c)
            .session(id)
            .unwrap()
            .send(&b"three"[..])
            .unwrap();
        assert_eq!(received(&mut pair, 2, Duration::from_secs(3)), ["three"]);
        let progress = pair.net.endpoint(c).session(id).unwrap().send_totals();
        assert_eq!(progress.acknowledged, 3, "{mode:?}: {progress:?}");
    }
}

#[test]
fn early_data_the_listener_does_not_take_arrives_after_the_handshake_once() {
    for mode in [TicketMode::Clear, TicketMode::Psk] {
        let mut pair = pair(mode, false);
        let t = ticket(&mut pair);
        assert!(!t.allows_early_data());
        // A starter that sends early data anyway (its stored ticket
        // altered where it says whether the listener allows it: the sealed
        // ticket still says no).
        let mut bytes = t.to_bytes();
        assert_eq!(bytes[19], 0, "the early-data flag of an IPv4 ticket");
        bytes[19] = 1;
        let t = Ticket::from_bytes(&bytes).unwrap();
        assert!(t.allows_early_data());
        let id = resume(&mut pair, &t, &[b"one", b"two"]);
        let start = pair.net.elapsed();
        assert_eq!(
            received(&mut pair, 2, Duration::from_secs(5)),
            ["one", "two"]
        );
        assert!(
            pair.net.elapsed() - start > RTT,
            "{mode:?}: after the handshake, not in it"
        );
        let (c, s) = (pair.client, pair.server);
        assert!(is_resumed(&mut pair, c, id));
        assert_eq!(pair.net.endpoint(s).stats().early_data_refused, 1);
        assert_eq!(pair.net.endpoint(s).stats().early_data_accepted, 0);
        // Nothing more: each arrived once.
        assert!(received(&mut pair, 1, Duration::from_secs(1)).is_empty());
    }
}

/// Sends `connect` again from the starter's address with the starter's
/// session id replaced by `fresh` (re-sealed under the checksum): a replay
/// that the endpoint does not take for a repeat of the session already
/// open.
fn replay_with_new_id(connect: &[u8], fresh: [u8; 8]) -> BytesMut {
    let mut bytes = connect.to_vec();
    bytes[2..10].copy_from_slice(&fresh);
    let (header, header_len) = Header::decode(&bytes).unwrap();
    bytes.truncate(bytes.len() - 4);
    Protection::Checksum.seal(header.number, header_len, &mut bytes);
    BytesMut::from(&bytes[..])
}

#[test]
fn a_replayed_connect_with_early_data_delivers_nothing() {
    let (client, server) = configs(TicketMode::Clear, true);
    let mut pair = Pair::with_configs(7, link(), client, server);
    let t = ticket(&mut pair);
    let (c, s) = (pair.client, pair.server);
    let client_addr = pair.net.addr(c);
    let now = pair.net.now();
    // The resumed Connect, taken off the wire by hand.
    let id = pair.net.endpoint(c).connect_resumed(now, &t).unwrap();
    pair.net
        .endpoint(c)
        .session(id)
        .unwrap()
        .send(&b"pay once"[..])
        .unwrap();
    let mut buf = Vec::new();
    let size = pair
        .net
        .endpoint(c)
        .poll_transmit(now, &mut buf)
        .unwrap()
        .size;
    let connect = buf[..size].to_vec();
    let server = pair.net.endpoint(s);
    server.handle_datagram(now, client_addr, BytesMut::from(&connect[..]));
    let mut delivered = Vec::new();
    while let Some(e) = server.poll_event() {
        if let Event::Readable { session } = e {
            while let Some(m) = server.session(session).unwrap().recv() {
                delivered.push(m);
            }
        }
    }
    assert_eq!(delivered, ["pay once"]);
    // The same Connect again (its ConnectAck lost): the session already
    // open answers it; nothing is delivered again.
    server.handle_datagram(now, client_addr, BytesMut::from(&connect[..]));
    // The same Connect as a new session (another starter id), from the same
    // address or another: the ticket was used; refused, nothing delivered.
    let elsewhere = "198.51.100.9:7000".parse().unwrap();
    server.handle_datagram(now, client_addr, replay_with_new_id(&connect, [9; 8]));
    server.handle_datagram(now, elsewhere, replay_with_new_id(&connect, [10; 8]));
    while let Some(e) = server.poll_event() {
        assert!(
            !matches!(e, Event::Readable { .. } | Event::Connected { .. }),
            "{e:?}"
        );
    }
    let stats = server.stats().clone();
    assert_eq!(stats.tickets_refused, 2);
    assert_eq!(stats.early_data_accepted, 1);
    assert_eq!(stats.sessions_resumed, 1);
}

#[test]
fn a_resumed_sessions_first_byte_arrives_within_half_a_round_trip_with_early_data_and_one_and_a_half_without()
 {
    for mode in [TicketMode::Clear, TicketMode::Identity] {
        // With early data: the Connect carries it (zero round trips).
        let mut pair = pair(mode, true);
        let t = ticket(&mut pair);
        let start = pair.net.elapsed();
        resume(&mut pair, &t, &[b"first"]);
        assert_eq!(received(&mut pair, 1, Duration::from_secs(5)), ["first"]);
        let zero_rtt = pair.net.elapsed() - start;
        // Without: after the shortened handshake (one round trip) and the
        // half round trip of the data.
        let mut pair = self::pair(mode, false);
        let t = ticket(&mut pair);
        let start = pair.net.elapsed();
        resume(&mut pair, &t, &[b"first"]);
        assert_eq!(received(&mut pair, 1, Duration::from_secs(5)), ["first"]);
        let one_rtt = pair.net.elapsed() - start;
        // A full handshake, for comparison.
        let mut pair = self::pair(mode, false);
        let start = pair.net.elapsed();
        let id = pair.connect();
        let c = pair.client;
        pair.net
            .endpoint(c)
            .session(id)
            .unwrap()
            .send(&b"first"[..])
            .unwrap();
        assert_eq!(received(&mut pair, 1, Duration::from_secs(5)), ["first"]);
        let full = pair.net.elapsed() - start;
        println!(
            "{mode:?}: first byte after {zero_rtt:?} with early data, {one_rtt:?} resumed without, {full:?} after a full handshake (RTT {RTT:?})"
        );
        assert!(zero_rtt <= RTT / 2 + RTT / 10, "{mode:?}: {zero_rtt:?}");
        assert!(one_rtt <= RTT * 3 / 2 + RTT / 10, "{mode:?}: {one_rtt:?}");
        assert!(zero_rtt < one_rtt && one_rtt <= full, "{mode:?}");
    }
}

#[test]
fn a_listener_that_does_not_issue_tickets_gives_none() {
    let (client, server) = configs(TicketMode::Clear, false);
    let mut pair = Pair::with_configs(
        7,
        link(),
        client,
        Config {
            issue_tickets: false,
            ..server
        },
    );
    let id = pair.establish();
    let c = pair.client;
    pair.net.run_for(Duration::from_secs(1));
    assert!(
        drain(&mut pair.net, c)
            .iter()
            .all(|e| !matches!(e, Event::Ticket { .. }))
    );
    assert!(pair.net.endpoint(c).session(id).unwrap().ticket().is_none());
    let s = pair.server;
    assert_eq!(pair.net.endpoint(s).stats().tickets_issued, 0);
}

#[test]
fn a_connect_with_early_data_stays_within_the_mtu_and_what_does_not_fit_goes_after() {
    for mode in [TicketMode::Clear, TicketMode::Psk, TicketMode::IdentityPsk] {
        let mut pair = pair(mode, true);
        let t = ticket(&mut pair);
        let c = pair.client;
        let now = pair.net.now();
        let id = pair.net.endpoint(c).connect_resumed(now, &t).unwrap();
        let messages: Vec<Vec<u8>> = (0..6u8).map(|i| vec![i; 400]).collect();
        for m in &messages {
            pair.net
                .endpoint(c)
                .session(id)
                .unwrap()
                .send(m.clone())
                .unwrap();
        }
        let mut buf = Vec::new();
        let connect = pair.net.endpoint(c).poll_transmit(now, &mut buf).unwrap();
        assert_eq!(
            connect.size,
            Config::default().mtu,
            "{mode:?}: padded, not over"
        );
        // The Connect left by hand: the starter sends it again on its timer,
        // and everything arrives, once, in order.
        let got = received(&mut pair, 6, Duration::from_secs(10));
        assert_eq!(got.len(), 6, "{mode:?}");
        for (g, m) in got.iter().zip(&messages) {
            assert_eq!(&g[..], &m[..], "{mode:?}");
        }
        let s = pair.server;
        assert_eq!(
            pair.net.endpoint(s).stats().early_data_accepted,
            1,
            "{mode:?}"
        );
    }
}

/// Hands every datagram `from` sends to `to` (from `from_addr`), both ways
/// until both are quiet.
fn pump(a: &mut Endpoint, a_addr: SocketAddr, b: &mut Endpoint, b_addr: SocketAddr, now: Instant) {
    let mut buf = Vec::new();
    for _ in 0..10 {
        while let Some(t) = a.poll_transmit(now, &mut buf) {
            b.handle_datagram(now, a_addr, BytesMut::from(&buf[..t.size]));
        }
        while let Some(t) = b.poll_transmit(now, &mut buf) {
            a.handle_datagram(now, b_addr, BytesMut::from(&buf[..t.size]));
        }
    }
}

#[test]
fn shards_sharing_tickets_take_each_others_once() {
    let (client_config, server_config) = configs(TicketMode::Psk, true);
    let server_config = Config {
        accept_incoming: true,
        ..server_config
    };
    let now = Instant::now();
    let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let mut client = Endpoint::new(client_config, 1).unwrap();
    let mut a = Endpoint::new(server_config.clone(), 2).unwrap();
    let mut b = Endpoint::new(server_config.clone(), 3).unwrap();
    let mut stranger = Endpoint::new(server_config, 4).unwrap();
    b.share_tickets(&a);
    for e in [&mut client, &mut a, &mut b, &mut stranger] {
        e.set_wall_clock(now, wall);
    }
    let client_addr: SocketAddr = "192.0.2.1:1000".parse().unwrap();
    let server_addr: SocketAddr = "192.0.2.2:2000".parse().unwrap();
    let id = client.connect(now, server_addr).unwrap();
    pump(&mut client, client_addr, &mut a, server_addr, now);
    let ticket = client
        .session(id)
        .unwrap()
        .ticket()
        .expect("a ticket from a");
    // The resumed Connect reaches the other shard, b: it opens there.
    for resumer in [&mut b, &mut a, &mut stranger] {
        client.connect_resumed(now, &ticket).unwrap();
        pump(&mut client, client_addr, resumer, server_addr, now);
    }
    assert_eq!(b.stats().sessions_resumed, 1, "b took a's ticket");
    assert_eq!(a.stats().sessions_resumed, 0, "and a knows it was used");
    assert_eq!(a.stats().tickets_refused, 1);
    assert_eq!(
        stranger.stats().tickets_refused,
        1,
        "another endpoint's keys"
    );
}

#[test]
fn a_keyed_ticket_taken_off_the_wire_without_its_secret_opens_nothing_and_is_not_used_up() {
    use ferry_proto::wire::packet::{Handshake, Packet};
    let mut pair = pair(TicketMode::Psk, true);
    let t = ticket(&mut pair);
    let stored = t.to_bytes();
    let sealed = &stored[stored.len() - ferry_proto::crypto::ticket::SEALED_LEN..];
    // An attacker's Connect: the ticket, and a message 1 it made up.
    let s = pair.server;
    let attacker: SocketAddr = "198.51.100.9:7000".parse().unwrap();
    let connect = Packet::Connect(Handshake {
        max_udp_payload: 1200,
        max_message_size: 1 << 20,
        initial_max_data: 1 << 25,
        max_ack_delay_micros: 10_000,
        max_streams: 100,
        initial_max_stream_data: 1 << 24,
        listener_id: None,
        auth: Bytes::from(vec![0x11; 51]),
        token: Bytes::new(),
        features: 1,
        resume: Bytes::copy_from_slice(sealed),
        early: Bytes::new(),
    });
    let mut datagram = Vec::new();
    connect.encode(SessionId([7; 8]), 0, &mut datagram);
    datagram.resize(1196, 0);
    let (header, header_len) = Header::decode(&datagram).unwrap();
    Protection::Checksum.seal(header.number, header_len, &mut datagram);
    let now = pair.net.now();
    pair.net
        .endpoint(s)
        .handle_datagram(now, attacker, BytesMut::from(&datagram[..]));
    let stats = pair.net.endpoint(s).stats().clone();
    assert_eq!(stats.tickets_refused, 1);
    assert_eq!(stats.sessions_resumed, 0);
    // The genuine starter still resumes with it, early data and all.
    let id = resume(&mut pair, &t, &[b"mine"]);
    assert_eq!(received(&mut pair, 1, Duration::from_secs(5)), ["mine"]);
    until_connected(&mut pair, id);
    let c = pair.client;
    assert!(is_resumed(&mut pair, c, id));
    assert_eq!(pair.net.endpoint(s).stats().early_data_accepted, 1);
}

#[test]
fn under_loss_and_duplication_a_resumed_session_delivers_early_and_later_messages_exactly_once_in_order()
 {
    for seed in 0..12 {
        for mode in [TicketMode::Clear, TicketMode::Psk] {
            let (client, server) = configs(mode, true);
            let mut pair = Pair::with_configs(seed, link(), client, server);
            let t = ticket(&mut pair);
            // From now on a third of the datagrams are lost, and a fifth
            // duplicated, each way: Connects (with their early data) arrive
            // twice, or not at all.
            let (c, s) = (pair.client, pair.server);
            let lossy = link().loss(ferry_sim::Loss::Random(0.3)).duplicate(0.2);
            pair.net.set_path(c, s, lossy);
            let id = resume(&mut pair, &t, &[b"a", b"b"]);
            let mut sent = false;
            let mut got = Vec::new();
            pair.net.run_until(Duration::from_secs(60), |net| {
                got.extend(std::iter::from_fn(|| net.poll_message(s)).map(|(_, m)| m));
                for e in drain(net, c) {
                    if matches!(e, Event::Connected { session } if session == id) && !sent {
                        sent = true;
                        for m in [&b"c"[..], b"d"] {
                            net.endpoint(c).session(id).unwrap().send(m).unwrap();
                        }
                    }
                }
                got.len() >= 4
            });
            // A little longer: nothing more arrives.
            pair.net.run_for(Duration::from_secs(2));
            got.extend(std::iter::from_fn(|| pair.net.poll_message(s)).map(|(_, m)| m));
            assert_eq!(got, ["a", "b", "c", "d"], "{mode:?}, seed {seed}");
        }
    }
}

/// Runs until the listener reports an incoming session, and accepts it.
fn accept_incoming(pair: &mut Pair) {
    let (c, s) = (pair.client, pair.server);
    let mut incoming = None;
    pair.net.run_until(Duration::from_secs(5), |net| {
        drain(net, c);
        incoming = drain(net, s).into_iter().find_map(|e| match e {
            Event::Incoming { session } => Some(session),
            _ => None,
        });
        incoming.is_some()
    });
    let now = pair.net.now();
    let id = incoming.expect("an incoming session");
    pair.net
        .endpoint(s)
        .session(id)
        .unwrap()
        .accept(now)
        .unwrap();
}

#[test]
fn a_listener_that_decides_issues_tickets_once_it_accepts_and_takes_no_early_data() {
    let (client, server) = configs(TicketMode::Psk, true);
    let server = Config {
        decide_incoming: true,
        ..server
    };
    let mut pair = Pair::with_configs(7, link(), client, server);
    let id = pair.connect();
    accept_incoming(&mut pair);
    until_connected(&mut pair, id);
    pair.net.run_for(Duration::from_secs(1));
    let c = pair.client;
    let t = pair.net.endpoint(c).session(id).unwrap().ticket();
    let t = t.expect("a ticket once accepted");
    let resumed = resume(&mut pair, &t, &[b"early"]);
    accept_incoming(&mut pair);
    until_connected(&mut pair, resumed);
    assert!(is_resumed(&mut pair, c, resumed));
    // Not before the decision: after the handshake, once.
    assert_eq!(received(&mut pair, 2, Duration::from_secs(3)), ["early"]);
    let s = pair.server;
    let stats = pair.net.endpoint(s).stats().clone();
    assert_eq!(stats.early_data_refused, 1);
    assert_eq!(stats.early_data_accepted, 0);
    assert_eq!(stats.tickets_issued, 2);
}
