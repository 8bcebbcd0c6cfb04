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
        reason = reason.or(closed(&drain(net, client)));
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
        reason = reason.or(closed(&drain(net, client)));
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
