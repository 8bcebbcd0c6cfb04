//! Sessions with a pre-shared key: authenticated, encrypted, and deaf to
//! tampering, replay and strangers.

mod common;

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::{Pair, drain};
use ferry_proto::crypto::PreSharedKey;
use ferry_proto::{CloseReason, Config, Endpoint, Event};
use ferry_sim::{LinkConfig, Transfer};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn key(byte: u8) -> PreSharedKey {
    PreSharedKey::from_bytes([byte; 32])
}

fn keyed(psk: Option<PreSharedKey>) -> Config {
    Config {
        psk,
        ..Config::default()
    }
}

#[test]
fn an_encrypted_transfer_under_loss_is_exact() {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(5))
        .random_loss(0.05)
        .duplicate(0.02)
        .reorder(0.02, Duration::from_millis(3));
    let messages: Vec<Vec<u8>> = (0..200u32)
        .map(|i| vec![i as u8; 1 + (i as usize * 997) % 20_000])
        .collect();
    let report = Transfer::new(1, link)
        .client_config(keyed(Some(key(7))))
        .server_config(keyed(Some(key(7))))
        .run(messages, Duration::from_secs(120));
    assert!(report.complete(), "{report:?}");
}

/// Runs a handshake between a client and a server with these keys; returns
/// the client's close reason (if it closed) and the server's events.
fn handshake(
    client: Option<PreSharedKey>,
    server: Option<PreSharedKey>,
) -> (Option<CloseReason>, Pair) {
    let mut pair = Pair::with_configs(2, LinkConfig::default(), keyed(client), keyed(server));
    pair.connect();
    let c = pair.client;
    let mut reason = None;
    pair.net.run_until(Duration::from_secs(30), |net| {
        for e in drain(net, c) {
            if let Event::Closed { reason: r, .. } = &e {
                reason = Some(r.clone());
            }
            assert!(
                !matches!(e, Event::Connected { .. }),
                "connected without a shared key"
            );
        }
        reason.is_some()
    });
    (reason, pair)
}

#[test]
fn a_wrong_key_fails_authentication_and_the_listener_keeps_nothing() {
    let (reason, mut pair) = handshake(Some(key(1)), Some(key(2)));
    assert_eq!(reason, Some(CloseReason::AuthenticationFailed));
    // Well before the handshake timeout: the listener said so at once.
    assert!(
        pair.net.elapsed() < Duration::from_secs(1),
        "{:?}",
        pair.net.elapsed()
    );
    let s = pair.server;
    assert!(
        drain(&mut pair.net, s).is_empty(),
        "the listener delivers nothing"
    );
    let server = pair.net.endpoint(s);
    assert_eq!(server.session_count(), 0, "and keeps no state");
    assert!(server.stats().dropped_unauthenticated >= 1);
    assert!(server.stats().sessions_refused >= 1);
}

#[test]
fn a_key_on_one_side_only_fails_authentication() {
    for (client, server) in [(Some(key(1)), None), (None, Some(key(1)))] {
        let (reason, mut pair) = handshake(client, server);
        assert_eq!(reason, Some(CloseReason::AuthenticationFailed));
        let s = pair.server;
        assert_eq!(pair.net.endpoint(s).session_count(), 0);
    }
}

#[test]
fn a_handshake_into_silence_times_out() {
    let config = Config {
        handshake_timeout: Duration::from_secs(3),
        ..keyed(Some(key(3)))
    };
    let mut pair = Pair::with_configs(
        3,
        LinkConfig::default().random_loss(1.0),
        config,
        keyed(Some(key(3))),
    );
    pair.connect();
    let c = pair.client;
    let mut reason = None;
    pair.net.run_until(Duration::from_secs(10), |net| {
        for e in drain(net, c) {
            if let Event::Closed { reason: r, .. } = e {
                reason = Some(r);
            }
        }
        reason.is_some()
    });
    assert_eq!(reason, Some(CloseReason::Timeout));
}

/// Two endpoints joined by a hand-driven wire that can tamper with, drop and
/// replay datagrams.
struct Wire {
    client: Endpoint,
    server: Endpoint,
    client_addr: SocketAddr,
    server_addr: SocketAddr,
    now: Instant,
    in_flight: VecDeque<(bool, Vec<u8>)>,
    history: Vec<(bool, Vec<u8>)>,
    rng: ChaCha8Rng,
}

impl Wire {
    fn new(seed: u64, psk: Option<PreSharedKey>) -> Self {
        Self {
            client: Endpoint::new(keyed(psk.clone()), seed).unwrap(),
            server: Endpoint::new(
                Config {
                    accept_incoming: true,
                    ..keyed(psk)
                },
                seed + 1,
            )
            .unwrap(),
            client_addr: "192.0.2.1:1000".parse().unwrap(),
            server_addr: "192.0.2.2:2000".parse().unwrap(),
            now: Instant::now(),
            in_flight: VecDeque::new(),
            history: Vec::new(),
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    fn collect(&mut self) {
        let mut buf = Vec::new();
        while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
            let _ = t;
            self.in_flight.push_back((true, buf.clone()));
        }
        while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
            let _ = t;
            self.in_flight.push_back((false, buf.clone()));
        }
    }

    fn deliver(&mut self, to_server: bool, datagram: &[u8]) {
        let data = BytesMut::from(datagram);
        if to_server {
            self.server
                .handle_datagram(self.now, self.client_addr, data);
        } else {
            self.client
                .handle_datagram(self.now, self.server_addr, data);
        }
    }

    /// One step: every datagram in flight arrives, some tampered with (one
    /// bit flipped: the original is lost), some followed by a replay of an
    /// older datagram; then time moves on a millisecond.
    fn step(&mut self, tamper: f64, replay: f64) -> (u64, u64) {
        let (mut tampered, mut replayed) = (0, 0);
        self.collect();
        while let Some((to_server, mut d)) = self.in_flight.pop_front() {
            self.history.push((to_server, d.clone()));
            if self.rng.random_bool(tamper) {
                let bit = self.rng.random_range(0..d.len() * 8);
                d[bit / 8] ^= 1 << (bit % 8);
                tampered += 1;
            }
            self.deliver(to_server, &d);
            if self.rng.random_bool(replay) {
                let i = self.rng.random_range(0..self.history.len());
                let (to, old) = self.history[i].clone();
                self.deliver(to, &old);
                replayed += 1;
            }
        }
        self.now += Duration::from_millis(1);
        self.client.handle_timeout(self.now);
        self.server.handle_timeout(self.now);
        (tampered, replayed)
    }
}

#[test]
fn tampered_and_replayed_packets_are_dropped_and_never_delivered() {
    for seed in 0..6u64 {
        let mut wire = Wire::new(seed * 10, Some(key(9)));
        let id = wire.client.connect(wire.now, wire.server_addr).unwrap();
        let messages: Vec<Bytes> = (0..60u32)
            .map(|i| Bytes::from(vec![(i as u8) ^ 0x5a; 1 + (i as usize * 131) % 5000]))
            .collect();
        for m in &messages {
            wire.client.session(id).unwrap().send(m.clone()).unwrap();
        }
        let mut got = Vec::new();
        let (mut tampered, mut replayed) = (0, 0);
        for _ in 0..20_000 {
            let (t, r) = wire.step(0.05, 0.05);
            tampered += t;
            replayed += r;
            while let Some(event) = wire.server.poll_event() {
                if let Event::Readable { session } = event {
                    while let Some(m) = wire.server.session(session).unwrap().recv() {
                        got.push(m);
                    }
                }
            }
            while wire.client.poll_event().is_some() {}
            if got.len() == messages.len() {
                break;
            }
        }
        assert_eq!(
            got, messages,
            "seed {seed}: every message once, intact, in order"
        );
        assert!(tampered > 0 && replayed > 0);
        let unauthenticated = wire.server.stats().dropped_unauthenticated
            + wire.client.stats().dropped_unauthenticated;
        let dropped: u64 = [&wire.server, &wire.client]
            .iter()
            .map(|e| {
                let s = e.stats();
                s.dropped_unauthenticated
                    + s.dropped_malformed
                    + s.dropped_unknown_session
                    + s.dropped_wrong_address
            })
            .sum();
        assert!(
            unauthenticated > 0,
            "seed {seed}: tampered packets fail to decrypt"
        );
        assert_eq!(
            dropped, tampered,
            "seed {seed}: every tampered packet is dropped and counted"
        );
        let duplicates = wire.server.session(id).unwrap().stats().duplicates;
        assert!(
            duplicates > 0,
            "seed {seed}: replays are counted as duplicates"
        );
    }
}

#[test]
fn payloads_are_not_readable_on_the_wire() {
    let mut wire = Wire::new(5, Some(key(4)));
    let id = wire.client.connect(wire.now, wire.server_addr).unwrap();
    let secret = Bytes::from_static(b"the quick brown fox jumps over the lazy dog, secretly");
    wire.client
        .session(id)
        .unwrap()
        .send(secret.clone())
        .unwrap();
    wire.client
        .session(id)
        .unwrap()
        .send_datagram(secret.clone())
        .unwrap_or(());
    for _ in 0..200 {
        wire.step(0.0, 0.0);
    }
    let seen = wire
        .history
        .iter()
        .any(|(_, d)| d.windows(16).any(|w| w == &secret[..16]));
    assert!(!seen, "plaintext on the wire");
    // Without a key the same bytes travel in clear: the test can see them.
    let mut clear = Wire::new(5, None);
    let id = clear.client.connect(clear.now, clear.server_addr).unwrap();
    clear
        .client
        .session(id)
        .unwrap()
        .send(secret.clone())
        .unwrap();
    for _ in 0..200 {
        clear.step(0.0, 0.0);
    }
    assert!(
        clear
            .history
            .iter()
            .any(|(_, d)| d.windows(16).any(|w| w == &secret[..16]))
    );
}

/// Sends `count` messages of `size` bytes from the client on `id` and runs
/// until the server took them all; returns what it got.
fn transfer_on(pair: &mut Pair, id: ferry_proto::SessionId, count: usize, size: usize) -> usize {
    for i in 0..count {
        pair.net
            .endpoint(pair.client)
            .session(id)
            .unwrap()
            .send(Bytes::from(vec![i as u8; size]))
            .unwrap();
    }
    let s = pair.server;
    let mut got = 0;
    pair.net.run_until(Duration::from_secs(60), |net| {
        while let Some((_, m)) = net.poll_message(s) {
            assert_eq!(m.len(), size);
            got += 1;
        }
        got == count
    });
    got
}

#[test]
fn an_encrypted_session_follows_its_peer_to_a_new_address() {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(10))
        .random_loss(0.01);
    let mut pair = Pair::with_configs(7, link, keyed(Some(key(5))), keyed(Some(key(5))));
    let id = pair.establish();
    assert_eq!(transfer_on(&mut pair, id, 50, 3000), 50);
    // The client's NAT rebinds mid-transfer: its packets now come from a new
    // port, and what the server sends to the old one is lost.
    for i in 0..50 {
        pair.net
            .endpoint(pair.client)
            .session(id)
            .unwrap()
            .send(Bytes::from(vec![i as u8; 3000]))
            .unwrap();
    }
    pair.net.run_for(Duration::from_millis(30));
    let new = pair.net.rebind(pair.client, 9999);
    let s = pair.server;
    let mut got = 0;
    pair.net.run_until(Duration::from_secs(60), |net| {
        while net.poll_message(s).is_some() {
            got += 1;
        }
        got == 50
    });
    assert_eq!(got, 50, "the transfer finished across the move");
    // If the data all got through before the move, the server learns of the
    // new address from the client's next packet (a probe or a keep-alive).
    pair.net.run_until(Duration::from_secs(10), |net| {
        net.endpoint(s).session(id).unwrap().remote_addr() == new
    });
    {
        let server = pair.net.endpoint(s).session(id).unwrap();
        assert_eq!(server.remote_addr(), new);
        assert_eq!(server.stats().migrations, 1);
    }
    // And it goes on both ways at the new address.
    assert_eq!(transfer_on(&mut pair, id, 20, 1000), 20);
}

#[test]
fn a_session_without_a_key_does_not_move() {
    let mut pair = Pair::new(8, LinkConfig::default());
    let id = pair.establish();
    let old = pair.net.addr(pair.client);
    pair.net.rebind(pair.client, 9998);
    pair.net
        .endpoint(pair.client)
        .session(id)
        .unwrap()
        .send(Bytes::from_static(b"from elsewhere"))
        .unwrap();
    pair.net.run_for(Duration::from_secs(2));
    let s = pair.server;
    assert!(
        pair.net.poll_message(s).is_none(),
        "unauthenticated traffic cannot move a session"
    );
    assert!(pair.net.endpoint(s).stats().dropped_wrong_address > 0);
    let server = pair.net.endpoint(s).session(id);
    assert!(server.is_none_or(|s| s.remote_addr() == old));
}
