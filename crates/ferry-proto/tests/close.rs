//! Closing from either side, and what each side reports.

mod common;

use std::time::Duration;

use common::{Pair, closed, drain};
use ferry_proto::crypto::PreSharedKey;
use ferry_proto::wire::packet::MAX_CLOSE_REASON;
use ferry_proto::{CloseReason, CloseText, Config, SendError, State};
use ferry_sim::LinkConfig;

fn close_from(client_closes: bool, link: LinkConfig, seed: u64) {
    let mut pair = Pair::new(seed, link);
    let id = pair.establish();
    let (closer, other) = if client_closes {
        (pair.client, pair.server)
    } else {
        (pair.server, pair.client)
    };
    let now = pair.net.now();
    let mut session = pair.net.endpoint(closer).session(id).unwrap();
    session.close(now, 42);
    assert_eq!(session.state(), State::Closing);
    assert_eq!(session.send(vec![1]), Err(SendError::Closed));
    drop(session);
    let mut reasons = (None, None);
    pair.net.run_until(Duration::from_secs(30), |net| {
        reasons.0 = reasons.0.take().or(closed(&drain(net, closer)));
        reasons.1 = reasons.1.take().or(closed(&drain(net, other)));
        reasons.1.is_some()
    });
    assert_eq!(
        reasons.0,
        Some(CloseReason::Local {
            code: 42,
            reason: Default::default()
        })
    );
    assert_eq!(
        reasons.1,
        Some(CloseReason::Remote {
            code: 42,
            reason: Default::default()
        }),
        "seed {seed}"
    );
    assert_eq!(pair.net.endpoint(other).session_count(), 0);
    // The closing side forgets the session after its drain period.
    pair.net.run_for(Duration::from_secs(5));
    assert_eq!(pair.net.endpoint(closer).session_count(), 0);
    assert!(pair.net.endpoint(closer).session(id).is_none());
}

#[test]
fn client_closes() {
    close_from(
        true,
        LinkConfig::default().latency(Duration::from_millis(10)),
        1,
    );
}

#[test]
fn server_closes() {
    close_from(
        false,
        LinkConfig::default().latency(Duration::from_millis(10)),
        2,
    );
}

#[test]
fn close_survives_loss() {
    // A lost close packet is repeated when the peer's next packet (a ping, at the
    // latest) reaches the closing side.
    for seed in 0..20 {
        let link = LinkConfig::default()
            .latency(Duration::from_millis(10))
            .random_loss(0.3);
        close_from(seed % 2 == 0, link, 100 + seed);
    }
}

#[test]
fn close_all_closes_every_session() {
    let mut pair = Pair::new(4, LinkConfig::default());
    let ids: Vec<_> = (0..5).map(|_| pair.connect()).collect();
    pair.net.run_for(Duration::from_millis(100));
    assert_eq!(pair.net.endpoint(pair.server).session_count(), 5);
    let now = pair.net.now();
    pair.net.endpoint(pair.client).close_all(now, 9);
    pair.net.run_for(Duration::from_secs(3));
    let events = drain(&mut pair.net, pair.server);
    let remote = events
        .iter()
        .filter(|e| {
            matches!(
                e,
                ferry_proto::Event::Closed {
                    reason: CloseReason::Remote { code: 9, .. },
                    ..
                }
            )
        })
        .count();
    assert_eq!(remote, ids.len());
    assert_eq!(pair.net.endpoint(pair.server).session_count(), 0);
    assert_eq!(pair.net.endpoint(pair.client).session_count(), 0);
}

#[test]
fn closed_session_stays_readable_until_drained() {
    let mut pair = Pair::new(5, LinkConfig::default().latency(Duration::from_millis(10)));
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    pair.net.set_reading(server, false);
    common::send_copies(&mut pair.net, client, id, &[9u8; 5000], 3);
    pair.net.run_for(Duration::from_secs(1));
    let now = pair.net.now();
    pair.net.endpoint(client).session(id).unwrap().close(now, 7);
    pair.net.run_for(Duration::from_secs(1));
    // The server learnt of the close, yet still holds the three messages.
    let events: Vec<_> = std::iter::from_fn(|| pair.net.endpoint(server).poll_event()).collect();
    assert_eq!(
        closed(&events),
        Some(CloseReason::Remote {
            code: 7,
            reason: Default::default()
        })
    );
    let mut session = pair
        .net
        .endpoint(server)
        .session(id)
        .expect("still readable");
    assert_eq!(session.state(), State::Closed);
    let messages: Vec<_> = std::iter::from_fn(|| session.recv()).collect();
    assert_eq!(messages.len(), 3);
    assert!(messages.iter().all(|m| m.len() == 5000));
    drop(session);
    // Once drained, it is gone.
    assert!(pair.net.endpoint(server).session(id).is_none());
    assert_eq!(pair.net.endpoint(server).session_count(), 0);
}

#[test]
fn a_close_with_a_reason_reaches_the_peer_with_its_code_and_text_clear_and_encrypted() {
    for psk in [None, Some(PreSharedKey::from_bytes([6; 32]))] {
        let config = Config {
            psk: psk.clone(),
            ..Config::default()
        };
        let mut pair = Pair::with_configs(
            11,
            LinkConfig::default()
                .latency(Duration::from_millis(10))
                .random_loss(0.2),
            config.clone(),
            config,
        );
        let id = pair.establish();
        let now = pair.net.now();
        // Too long, with a two-byte character across the bound: cut before it.
        let text = format!("{}é and more", "x".repeat(MAX_CLOSE_REASON - 1));
        pair.net
            .endpoint(pair.client)
            .session(id)
            .unwrap()
            .close_with_reason(now, 21, &text);
        let expected = "x".repeat(MAX_CLOSE_REASON - 1);
        let (server, client) = (pair.server, pair.client);
        let mut reasons = (None, None);
        pair.net.run_until(Duration::from_secs(30), |net| {
            reasons.0 = reasons.0.take().or(closed(&drain(net, client)));
            reasons.1 = reasons.1.take().or(closed(&drain(net, server)));
            reasons.1.is_some()
        });
        assert_eq!(
            reasons.0,
            Some(CloseReason::Local {
                code: 21,
                reason: CloseText::new(&expected),
            })
        );
        let reason = reasons.1.expect("the peer learned the session closed");
        assert_eq!(
            reason,
            CloseReason::Remote {
                code: 21,
                reason: CloseText::new(&expected),
            },
            "key: {}",
            psk.is_some()
        );
        assert_eq!(
            reason.to_string(),
            format!("closed by peer (code 21): {expected}")
        );
    }
}
