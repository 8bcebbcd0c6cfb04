//! Opening sessions: under loss, to a silent peer, to a peer that refuses.

mod common;

use std::time::Duration;

use common::{Pair, closed, drain};
use ferry_proto::{CloseReason, Config, State};
use ferry_sim::LinkConfig;

#[test]
fn handshake_completes_under_30_percent_loss() {
    for seed in 0..30 {
        let link = LinkConfig::default()
            .latency(Duration::from_millis(25))
            .random_loss(0.3);
        let mut pair = Pair::new(seed, link);
        let id = pair.establish();
        let state = pair.net.endpoint(pair.client).session(id).unwrap().state();
        assert_eq!(state, State::Established, "seed {seed}");
        assert!(
            pair.net.elapsed() < Config::default().handshake_timeout,
            "seed {seed}: took {:?}",
            pair.net.elapsed()
        );
    }
}

#[test]
fn silent_peer_times_out_after_handshake_timeout() {
    let link = LinkConfig::default().random_loss(1.0);
    let mut pair = Pair::new(1, link);
    let id = pair.connect();
    assert_eq!(
        pair.net.endpoint(pair.client).session(id).unwrap().state(),
        State::Init
    );
    let client = pair.client;
    let mut reason = None;
    pair.net.run_until(Duration::from_secs(60), |net| {
        reason = reason.take().or(closed(&drain(net, client)));
        reason.is_some()
    });
    assert_eq!(reason, Some(CloseReason::Timeout));
    let timeout = Config::default().handshake_timeout;
    let elapsed = pair.net.elapsed();
    assert!(
        elapsed >= timeout && elapsed < timeout + Duration::from_millis(1),
        "{elapsed:?}"
    );
    // The connect was retried with backoff, not once and not in a flood.
    let sent = pair.net.link_stats(pair.client, pair.server).unwrap().sent;
    assert!((3..=12).contains(&sent), "{sent} connects");
    assert_eq!(pair.net.endpoint(client).session_count(), 0);
}

#[test]
fn listener_that_does_not_accept_refuses() {
    let mut pair = Pair::with_configs(
        2,
        LinkConfig::default().latency(Duration::from_millis(5)),
        Config::default(),
        Config::default(),
    );
    pair.net.endpoint(pair.server).set_accept_incoming(false);
    pair.connect();
    let client = pair.client;
    let mut reason = None;
    pair.net.run_until(Duration::from_secs(5), |net| {
        reason = reason.take().or(closed(&drain(net, client)));
        reason.is_some()
    });
    assert_eq!(reason, Some(CloseReason::Refused));
    assert_eq!(pair.net.endpoint(pair.server).session_count(), 0);
    assert_eq!(pair.net.endpoint(pair.server).stats().sessions_refused, 1);
}

#[test]
fn full_listener_refuses_and_keeps_its_sessions() {
    let server = Config {
        max_sessions: 2,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(3, LinkConfig::default(), Config::default(), server);
    let ids: Vec<_> = (0..3).map(|_| pair.connect()).collect();
    let client = pair.client;
    let mut events = Vec::new();
    pair.net.run_until(Duration::from_secs(5), |net| {
        events.extend(drain(net, client));
        events.len() >= 3
    });
    let refused = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                ferry_proto::Event::Closed {
                    reason: CloseReason::Refused,
                    ..
                }
            )
        })
        .count();
    assert_eq!(refused, 1, "{events:?}");
    assert_eq!(pair.net.endpoint(pair.server).session_count(), 2);
    assert_eq!(ids.len(), 3);
}

/// A listener that asks every connect for a retry (as under a connect flood)
/// still opens sessions, under loss, with and without a key, and the data
/// arrives exact.
#[test]
fn sessions_open_through_a_retry_under_loss() {
    use ferry_proto::crypto::PreSharedKey;
    for (seed, psk) in [
        (1, None),
        (2, Some(PreSharedKey::from_bytes([3; 32]))),
        (3, None),
        (4, Some(PreSharedKey::from_bytes([4; 32]))),
    ] {
        let link = LinkConfig::default()
            .latency(Duration::from_millis(20))
            .random_loss(0.2);
        let client = Config {
            psk: psk.clone(),
            ..Config::default()
        };
        let server = Config {
            max_pending_handshakes: 0,
            ..client.clone()
        };
        let messages: Vec<Vec<u8>> = (0..50u32).map(|i| vec![i as u8; 3000]).collect();
        let report = ferry_sim::Transfer::new(seed, link)
            .client_config(client)
            .server_config(server)
            .run(messages, Duration::from_secs(60));
        assert!(report.complete(), "seed {seed}: {report:?}");
    }
}

/// A clear listener proves the starter's address with a path challenge; when
/// the challenge or its answer is lost it asks again, so a session whose
/// listener speaks first (a download) does not stall.
#[test]
fn a_lost_challenge_is_sent_again() {
    for seed in 0..20 {
        let link = LinkConfig::default()
            .latency(Duration::from_millis(10))
            .random_loss(0.3);
        let mut pair = Pair::new(seed, link);
        let id = pair.establish();
        let now = pair.net.now();
        let server = pair.server;
        pair.net
            .endpoint(server)
            .session(id)
            .unwrap()
            .send(vec![7u8; 200_000])
            .unwrap();
        let client = pair.client;
        let got = common::receive_messages(&mut pair.net, client, 1, Duration::from_secs(30));
        let ss = pair
            .net
            .endpoint(server)
            .session(id)
            .map(|s| (s.state(), s.stats()));
        let cs = pair
            .net
            .endpoint(client)
            .session(id)
            .map(|s| (s.state(), s.stats()));
        assert_eq!(
            got,
            1,
            "seed {seed}: nothing after {:?}\n{ss:?}\n{cs:?}",
            pair.net.now() - now
        );
    }
}
