//! Keep-alive: idle sessions stay up; a dead link ends both sides with `Timeout`.

mod common;

use std::time::Duration;

use common::{Pair, closed, drain};
use ferry_proto::{CloseReason, Config};
use ferry_sim::LinkConfig;

fn link() -> LinkConfig {
    LinkConfig::default().latency(Duration::from_millis(20))
}

#[test]
fn idle_session_stays_alive_on_pings() {
    let mut pair = Pair::new(1, link());
    let id = pair.establish();
    pair.net.run_for(Duration::from_secs(120));
    let (client, server) = (pair.client, pair.server);
    assert_eq!(closed(&drain(&mut pair.net, client)), None);
    assert_eq!(closed(&drain(&mut pair.net, server)), None);
    let pings = pair
        .net
        .endpoint(client)
        .session(id)
        .unwrap()
        .stats()
        .pings_sent;
    // One ping per idle interval, not a flood.
    assert!((50..=130).contains(&pings), "{pings} pings in 120 s");
}

#[test]
fn dead_link_times_out_both_sides_after_the_configured_pings() {
    let config = Config {
        ping_interval: Duration::from_millis(500),
        ping_packet_count: 4,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(2, link(), config.clone(), config.clone());
    pair.establish();
    let (client, server) = (pair.client, pair.server);
    pair.net.run_for(Duration::from_secs(3));
    let died = pair.net.now();
    let dead = LinkConfig::default().random_loss(1.0);
    pair.net.change_link(client, server, dead.clone());
    pair.net.change_link(server, client, dead);

    let mut reasons = (None, None);
    let mut times = (None, None);
    pair.net.run_until(Duration::from_secs(60), |net| {
        if reasons.0.is_none() {
            reasons.0 = closed(&drain(net, client));
            times.0 = reasons.0.as_ref().map(|_| net.now() - died);
        }
        if reasons.1.is_none() {
            reasons.1 = closed(&drain(net, server));
            times.1 = reasons.1.as_ref().map(|_| net.now() - died);
        }
        reasons.0.is_some() && reasons.1.is_some()
    });
    assert_eq!(
        reasons,
        (Some(CloseReason::Timeout), Some(CloseReason::Timeout))
    );
    // Silence is noticed after one interval, then `ping_packet_count` pings go
    // unanswered, one interval apart.
    let expected = config.ping_interval * (config.ping_packet_count + 1);
    for t in [times.0.unwrap(), times.1.unwrap()] {
        assert!(
            t >= expected - config.ping_interval && t <= expected + config.ping_interval,
            "closed after {t:?}, expected about {expected:?}"
        );
    }
    assert_eq!(pair.net.endpoint(client).session_count(), 0);
    assert_eq!(pair.net.endpoint(server).session_count(), 0);
}

#[test]
fn link_that_dies_mid_transfer_times_out() {
    let mut pair = Pair::new(3, link());
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    for _ in 0..50 {
        pair.net
            .endpoint(client)
            .session(id)
            .unwrap()
            .send(vec![7u8; 100_000])
            .unwrap();
    }
    pair.net.run_for(Duration::from_millis(200));
    let dead = LinkConfig::default().random_loss(1.0);
    pair.net.change_link(client, server, dead.clone());
    pair.net.change_link(server, client, dead);
    let mut reason = None;
    pair.net.run_until(Duration::from_secs(60), |net| {
        reason = reason.take().or(closed(&drain(net, client)));
        reason.is_some()
    });
    assert_eq!(reason, Some(CloseReason::Timeout));
    assert!(pair.net.elapsed() < Duration::from_secs(20));
}
