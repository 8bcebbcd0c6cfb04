//! Path MTU discovery in the simulator: sessions start at the base size
//! (`Config::mtu`, 1200), probe up to `Config::max_mtu` and send data in the
//! largest size the path carries; a path whose MTU falls mid-transfer (a
//! black hole for large packets) costs time, not data; lost probes are not
//! congestion.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Pair, mixed_messages};
use ferry_proto::crypto::PreSharedKey;
use ferry_proto::{Config, CongestionControl, SessionId, SessionStats};
use ferry_sim::{LinkConfig, Network, NodeId, Transfer};

const MS: Duration = Duration::from_millis(1);

/// 100 Mbit/s, 20 ms round trip, an IPv4 path of this MTU (headers
/// included: `ip_mtu(1500)` carries 1472 bytes of UDP payload).
fn path(ip_mtu: usize) -> LinkConfig {
    LinkConfig::default()
        .latency(10 * MS)
        .bandwidth(100_000_000)
        .ip_mtu(ip_mtu)
}

fn stats(net: &mut Network, node: NodeId, id: SessionId) -> SessionStats {
    net.endpoint(node).session(id).expect("the session").stats()
}

#[test]
fn a_session_on_an_ethernet_path_reaches_1452_within_two_round_trips_and_the_transfer_takes_fewer_packets()
 {
    let mut pair = Pair::new(1, path(1500));
    let id = pair.establish();
    for node in [pair.client, pair.server] {
        assert_eq!(stats(&mut pair.net, node, id).mtu, 1200, "the base first");
    }
    let (client, server) = (pair.client, pair.server);
    let reached = pair.net.run_until(40 * MS, |net| {
        stats(net, client, id).mtu == 1452 && stats(net, server, id).mtu == 1452
    });
    assert!(reached, "{:?}", stats(&mut pair.net, client, id));
    let s = stats(&mut pair.net, client, id);
    assert_eq!((s.mtu_probes_sent, s.mtu_probes_lost), (1, 0), "{s:?}");

    // The same 10 MB with discovery and without.
    let messages = mixed_messages(2, 10 << 20, 1 << 20);
    let run = |max_mtu| {
        let config = Config {
            max_mtu,
            ..Config::default()
        };
        let r = Transfer::new(3, path(1500))
            .config(config)
            .run(messages.clone(), Duration::from_secs(600));
        assert!(r.complete(), "{r:#?}");
        r
    };
    let (found, fixed) = (run(1452), run(1200));
    assert_eq!((found.client.mtu, fixed.client.mtu), (1452, 1200));
    assert_eq!(found.forward.too_big, 0);
    let ratio = found.client.packets_sent as f64 / fixed.client.packets_sent as f64;
    // 1452 − 22 bytes of payload per packet instead of 1200 − 22: 17.6% fewer.
    assert!(ratio < 0.85, "{ratio}: {found:#?}");
}

#[test]
fn an_ipv4_bound_of_1472_fills_an_ethernet_frame_exactly() {
    let config = Config {
        max_mtu: 1472,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(4, path(1500), config.clone(), config);
    let id = pair.establish();
    pair.net.run_for(100 * MS);
    let s = stats(&mut pair.net, pair.client, id);
    assert_eq!((s.mtu, s.mtu_probes_lost), (1472, 0), "{s:?}");
    // One byte more would not cross.
    let config = Config {
        max_mtu: 1473,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(4, path(1500), config.clone(), config);
    let id = pair.establish();
    pair.net.run_for(Duration::from_secs(2));
    let s = stats(&mut pair.net, pair.client, id);
    assert!(s.mtu <= 1472 && s.mtu + 20 > 1472, "{s:?}");
    assert_eq!(s.mtu_probes_lost, 3, "{s:?}");
}

#[test]
fn a_path_of_mtu_1280_settles_just_below_its_1252_bytes_of_payload() {
    let messages = mixed_messages(5, 4 << 20, 1 << 20);
    let r = Transfer::new(5, path(1280)).run(messages, Duration::from_secs(600));
    assert!(r.complete(), "{r:#?}");
    let s = &r.client;
    assert!(s.mtu <= 1252 && s.mtu + 20 > 1252, "{s:?}");
    assert!(s.mtu_probes_lost >= 3, "{s:?}");
    // Every datagram the path dropped for its size was a probe: no data
    // packet was ever larger than what was confirmed.
    assert_eq!(
        r.forward.too_big + r.backward.too_big,
        s.mtu_probes_lost + r.server.mtu_probes_lost
    );
    assert_eq!((s.lost, s.retransmitted, s.mtu_black_holes), (0, 0, 0));
}

#[test]
fn lost_probes_are_not_congestion_no_window_shrinks_and_no_loss_is_counted() {
    for congestion in [
        CongestionControl::NewReno,
        CongestionControl::Cubic,
        CongestionControl::Bbr,
    ] {
        let config = Config {
            congestion,
            ..Config::default()
        };
        // A path that carries nothing above the base: every probe is lost.
        let mut pair = Pair::with_configs(6, path(1228), config.clone(), config);
        let id = pair.establish();
        let before = stats(&mut pair.net, pair.client, id);
        pair.net.run_for(Duration::from_secs(5));
        let s = stats(&mut pair.net, pair.client, id);
        assert_eq!(s.mtu, 1200);
        assert!(s.mtu_probes_lost >= 9, "{congestion}: {s:?}");
        assert_eq!(s.mtu_probes_lost, s.mtu_probes_sent, "{congestion}: {s:?}");
        assert_eq!(
            (s.lost, s.timeouts, s.spurious_losses, s.retransmitted),
            (0, 0, 0, 0),
            "{congestion}: {s:?}"
        );
        assert!(
            s.congestion_window >= before.congestion_window,
            "{congestion}: the window went from {} to {}",
            before.congestion_window,
            s.congestion_window
        );
    }
}

#[test]
fn a_loss_based_transfer_beside_lost_probes_keeps_its_window() {
    // NewReno halves its window per loss episode: had a lost probe counted,
    // the 1280 path (nine or more lost probes) would cost it as much as
    // random loss does. It runs as fast as with discovery off.
    let messages = mixed_messages(7, 8 << 20, 1 << 20);
    let run = |max_mtu| {
        let config = Config {
            congestion: CongestionControl::NewReno,
            max_mtu,
            ..Config::default()
        };
        let r = Transfer::new(7, path(1228))
            .config(config)
            .run(messages.clone(), Duration::from_secs(600));
        assert!(r.complete(), "{r:#?}");
        r
    };
    let (probing, off) = (run(1452), run(1200));
    assert!(probing.client.mtu_probes_lost >= 9, "{:?}", probing.client);
    assert_eq!(off.client.mtu_probes_sent, 0);
    // (Both lose packets to the bottleneck's queue in slow start: those
    // are congestion.)
    let slower = off.goodput_bps() / probing.goodput_bps();
    assert!(slower < 1.02, "{slower}: {:?}", probing.client);
}

/// Sends `messages` on a fresh session over an Ethernet path whose MTU
/// becomes `to` (IP MTU) both ways after `after`; returns the client's
/// statistics once every message arrived, and checks them byte for byte.
fn transfer_across_an_mtu_drop(
    seed: u64,
    config: Config,
    messages: &[Vec<u8>],
    after: Duration,
    to: usize,
) -> SessionStats {
    let mut pair = Pair::with_configs(seed, path(1500), config.clone(), config);
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    for m in messages {
        pair.net
            .endpoint(client)
            .session(id)
            .unwrap()
            .send(Bytes::from(m.clone()))
            .unwrap();
    }
    pair.net.run_for(after);
    assert_eq!(stats(&mut pair.net, client, id).mtu, 1452);
    pair.net.change_link(client, server, path(to));
    pair.net.change_link(server, client, path(to));
    let mut got = Vec::new();
    pair.net.run_until(Duration::from_secs(600), |net| {
        got.extend(std::iter::from_fn(|| net.poll_message(server)).map(|(_, m)| m));
        got.len() == messages.len()
    });
    assert_eq!(
        got.len(),
        messages.len(),
        "{:?}",
        stats(&mut pair.net, client, id)
    );
    for (i, (got, sent)) in got.iter().zip(messages).enumerate() {
        assert!(got[..] == sent[..], "message {i} differs");
    }
    stats(&mut pair.net, client, id)
}

#[test]
fn a_path_whose_mtu_drops_mid_transfer_falls_back_and_delivers_every_byte() {
    // Large messages: the drop leaves many fragments cut at 1452 in flight
    // and queued, which now go in parts.
    let messages = mixed_messages(8, 12 << 20, 1 << 20);
    let s = transfer_across_an_mtu_drop(8, Config::default(), &messages, 300 * MS, 1280);
    assert_eq!(s.mtu_black_holes, 1, "{s:?}");
    assert!(s.fragments_split > 0, "{s:?}");
    assert!(s.mtu <= 1252, "{s:?}");
}

#[test]
fn a_black_hole_is_found_under_every_controller_and_with_encryption() {
    let messages = mixed_messages(9, 6 << 20, 1 << 20);
    for (congestion, psk) in [
        (CongestionControl::NewReno, None),
        (CongestionControl::Cubic, None),
        (
            CongestionControl::Bbr,
            Some(PreSharedKey::from_bytes([3; 32])),
        ),
    ] {
        let config = Config {
            congestion,
            psk,
            ..Config::default()
        };
        let s = transfer_across_an_mtu_drop(9, config, &messages, 200 * MS, 1400);
        assert_eq!(s.mtu_black_holes, 1, "{congestion}: {s:?}");
    }
}

#[test]
fn after_a_black_hole_the_search_starts_again_and_finds_what_the_path_carries_now() {
    let messages = mixed_messages(10, 4 << 20, 1 << 20);
    let mut pair = Pair::new(10, path(1500));
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    pair.net.run_for(100 * MS);
    for m in &messages {
        let mut s = pair.net.endpoint(client).session(id).unwrap();
        s.send(Bytes::from(m.clone())).unwrap();
    }
    pair.net.run_for(50 * MS);
    pair.net.change_link(client, server, path(1400));
    pair.net.change_link(server, client, path(1400));
    pair.net.run_for(Duration::from_secs(10));
    let s = stats(&mut pair.net, client, id);
    assert_eq!((s.mtu_black_holes, s.mtu), (1, 1200), "{s:?}");
    // The cooldown over, a new search settles below the new limit, 1372.
    pair.net.run_for(Duration::from_secs(60));
    let s = stats(&mut pair.net, client, id);
    assert!(s.mtu <= 1372 && s.mtu + 20 > 1372, "{s:?}");
}

#[test]
fn an_outage_that_drops_every_packet_is_not_a_black_hole() {
    let messages = mixed_messages(11, 10 << 20, 1 << 20);
    let mut pair = Pair::new(11, path(1500));
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    for m in &messages {
        let mut s = pair.net.endpoint(client).session(id).unwrap();
        s.send(Bytes::from(m.clone())).unwrap();
    }
    pair.net.run_for(200 * MS);
    // Half a second of nothing either way, then the path as it was.
    let dark = path(1500).random_loss(1.0);
    pair.net.change_link(client, server, dark.clone());
    pair.net.change_link(server, client, dark);
    pair.net.run_for(500 * MS);
    pair.net.change_link(client, server, path(1500));
    pair.net.change_link(server, client, path(1500));
    let got = common::receive_messages(
        &mut pair.net,
        server,
        messages.len(),
        Duration::from_secs(120),
    );
    assert_eq!(got, messages.len());
    let s = stats(&mut pair.net, client, id);
    assert_eq!((s.mtu_black_holes, s.mtu), (0, 1452), "{s:?}");
    assert!(s.timeouts > 0, "the outage was felt: {s:?}");
}

#[test]
fn a_session_that_moves_searches_its_new_path_from_the_base() {
    let keyed = Config {
        psk: Some(PreSharedKey::from_bytes([5; 32])),
        ..Config::default()
    };
    let mut pair = Pair::with_configs(12, path(1500), keyed.clone(), keyed);
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    pair.net.run_for(100 * MS);
    assert_eq!(stats(&mut pair.net, server, id).mtu, 1452);
    let probes = stats(&mut pair.net, server, id).mtu_probes_sent;
    let new = pair.net.rebind(client, 9999);
    pair.net
        .endpoint(client)
        .session(id)
        .unwrap()
        .send(Bytes::from(vec![1; 5000]))
        .unwrap();
    let moved = pair.net.run_until(Duration::from_secs(5), |net| {
        net.endpoint(server).session(id).unwrap().remote_addr() == new
    });
    assert!(moved);
    let s = stats(&mut pair.net, server, id);
    assert_eq!(s.migrations, 1);
    assert_eq!(s.mtu, 1200, "the new path starts at the base");
    pair.net.run_for(100 * MS);
    let s = stats(&mut pair.net, server, id);
    assert_eq!((s.mtu, s.mtu_probes_sent), (1452, probes + 1), "{s:?}");
}

#[test]
fn discovery_is_off_when_max_mtu_is_not_above_mtu() {
    let config = Config {
        max_mtu: 1200,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(13, path(1500), config.clone(), config);
    let id = pair.establish();
    pair.net.run_for(Duration::from_secs(1));
    let s = stats(&mut pair.net, pair.client, id);
    assert_eq!((s.mtu, s.mtu_probes_sent), (1200, 0));
    // A larger base, agreed with a peer that has it too, is used as is.
    let config = Config {
        mtu: 1400,
        max_mtu: 1400,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(13, path(1500), config.clone(), config);
    let id = pair.establish();
    pair.net.run_for(Duration::from_secs(1));
    let s = stats(&mut pair.net, pair.client, id);
    assert_eq!((s.mtu, s.mtu_probes_sent), (1400, 0));
}

#[test]
fn jumbo_frames_and_loopback_sized_bounds_are_reached() {
    for (ip_mtu, max_mtu) in [(9000, 8952), (65_535, 65_507)] {
        let config = Config {
            max_mtu,
            ..Config::default()
        };
        let messages = mixed_messages(14, 4 << 20, 1 << 20);
        let r = Transfer::new(14, path(ip_mtu))
            .config(config)
            .run(messages, Duration::from_secs(600));
        assert!(r.complete(), "{r:#?}");
        assert_eq!(r.client.mtu, max_mtu, "{:?}", r.client);
    }
}
