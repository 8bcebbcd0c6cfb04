//! Acks carried on packets of data (protocol.md §6.4): a reply acknowledges
//! its request in the same datagram, so a request/response round trip costs
//! one datagram each way; an ack that does not fit beside a packet's body
//! goes alone, and nothing is lost either way.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Pair, drain};
use ferry_proto::crypto::PreSharedKey;
use ferry_proto::{Config, SessionStats};
use ferry_sim::LinkConfig;

const ROUND_TRIPS: usize = 200;

fn keyed() -> Config {
    Config {
        psk: Some(PreSharedKey::from_bytes([0x42; 32])),
        ..Config::default()
    }
}

/// Runs [`ROUND_TRIPS`] request/response round trips of 64 bytes, one at a
/// time, over a 10 ms path; returns what the client and the server sent
/// during them (the handshake left out).
fn ping_pong(config: Config) -> (SessionStats, SessionStats) {
    let link = LinkConfig::default().latency(Duration::from_millis(5));
    let mut pair = Pair::with_configs(7, link, config.clone(), config);
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    let net = &mut pair.net;
    net.run_for(Duration::from_millis(100));
    let client_before = net.endpoint(client).session(id).unwrap().stats();
    let server_before = net.endpoint(server).session(id).unwrap().stats();
    for i in 0..ROUND_TRIPS {
        let request = Bytes::from(vec![i as u8; 64]);
        net.endpoint(client)
            .session(id)
            .unwrap()
            .send(request.clone())
            .unwrap();
        let answered = net.run_until(Duration::from_secs(1), |net| {
            while let Some((session, m)) = net.poll_message(server) {
                assert_eq!(m, request);
                net.endpoint(server)
                    .session(session)
                    .unwrap()
                    .send(m)
                    .unwrap();
            }
            net.poll_message(client).is_some_and(|(_, m)| m == request)
        });
        assert!(answered, "round trip {i} was not answered");
        drain(net, client);
        drain(net, server);
    }
    let client_after = net.endpoint(client).session(id).unwrap().stats();
    let server_after = net.endpoint(server).session(id).unwrap().stats();
    let delta = |after: SessionStats, before: SessionStats| SessionStats {
        packets_sent: after.packets_sent - before.packets_sent,
        acks_sent: after.acks_sent - before.acks_sent,
        acks_carried: after.acks_carried - before.acks_carried,
        ..after
    };
    (
        delta(client_after, client_before),
        delta(server_after, server_before),
    )
}

fn assert_one_datagram_each_way(config: Config) {
    let (client, server) = ping_pong(config);
    for (side, s) in [("client", &client), ("server", &server)] {
        // Without carried acks: a reply and an Ack packet each round trip
        // (the delayed ack falls due before the next request on this path;
        // measured: 399 datagrams from each side).
        assert!(
            s.packets_sent <= ROUND_TRIPS as u64 + 5,
            "{side} sent {} datagrams for {ROUND_TRIPS} round trips",
            s.packets_sent
        );
        assert!(
            s.acks_carried + 5 >= ROUND_TRIPS as u64,
            "{side}: {} of {} acks carried",
            s.acks_carried,
            s.acks_sent
        );
    }
}

#[test]
fn a_reply_carries_the_ack_of_its_request_so_a_round_trip_is_one_datagram_each_way() {
    assert_one_datagram_each_way(Config::default());
}

#[test]
fn an_encrypted_reply_carries_the_ack_of_its_request_too() {
    assert_one_datagram_each_way(keyed());
}

/// Both sides send bulk data at once over a lossy path: acks ride on the
/// packets of data that have room for them (a message's last fragment) and
/// go alone otherwise (beside full fragments and repairs, or when the
/// window holds data back); every message arrives, in order.
#[test]
fn acks_ride_on_bulk_data_both_ways_and_every_message_arrives_in_order() {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(10))
        .bandwidth(100_000_000)
        .random_loss(0.02);
    let mut pair = Pair::with_configs(3, link, keyed(), keyed());
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    let net = &mut pair.net;
    const MESSAGES: usize = 400;
    let message = |i: usize| Bytes::from(vec![(i % 251) as u8; 10_000 + i]);
    let (mut sent, mut got) = ([0usize; 2], [0usize; 2]);
    let done = net.run_until(Duration::from_secs(60), |net| {
        for (side, node) in [(0, client), (1, server)] {
            let mut session = net.endpoint(node).session(id).unwrap();
            while sent[side] < MESSAGES && session.send(message(sent[side])).is_ok() {
                sent[side] += 1;
            }
        }
        for (side, node) in [(0, server), (1, client)] {
            while let Some((_, m)) = net.poll_message(node) {
                assert_eq!(m, message(got[side]), "message {} out of order", got[side]);
                got[side] += 1;
            }
        }
        got == [MESSAGES; 2]
    });
    assert!(done, "delivered {got:?} of {MESSAGES} each way");
    for node in [client, server] {
        let s = net.endpoint(node).session(id).unwrap().stats();
        assert!(s.retransmitted > 0, "the path lost nothing: {s:?}");
        assert!(
            s.acks_carried > 0 && s.acks_carried < s.acks_sent,
            "{} of {} acks carried",
            s.acks_carried,
            s.acks_sent
        );
    }
}

/// A sender of bulk data that the receiver answers with a short reply per
/// message (as `ferry send` is answered per file), over a path that loses
/// and reorders: acks ride on the bulk data, and every message and every
/// reply arrives.
#[test]
fn a_bulk_sender_answered_per_message_over_a_lossy_reordering_path_delivers_everything() {
    for seed in 1..=4 {
        let link = LinkConfig::default()
            .latency(Duration::from_millis(2))
            .random_loss(0.05)
            .reorder(0.05, Duration::from_millis(3));
        let mut pair = Pair::with_configs(seed, link, Config::default(), Config::default());
        let id = pair.establish();
        let (client, server) = (pair.client, pair.server);
        let net = &mut pair.net;
        const MESSAGES: usize = 300;
        let message = |i: usize| Bytes::from(vec![(i % 251) as u8; 1 + (i * 7919) % 40_000]);
        let (mut sent, mut got, mut replies) = (0, 0, 0);
        let done = net.run_until(Duration::from_secs(120), |net| {
            {
                let mut session = net.endpoint(client).session(id).unwrap();
                while sent < MESSAGES && session.send(message(sent)).is_ok() {
                    sent += 1;
                }
            }
            while let Some((_, m)) = net.poll_message(server) {
                assert_eq!(m, message(got), "message {got}");
                got += 1;
                let reply = Bytes::from((got as u64).to_be_bytes().to_vec());
                net.endpoint(server)
                    .session(id)
                    .unwrap()
                    .send(reply)
                    .unwrap();
            }
            while let Some((_, m)) = net.poll_message(client) {
                replies += 1;
                assert_eq!(m[..], (replies as u64).to_be_bytes());
            }
            replies == MESSAGES
        });
        let stats = net.endpoint(client).session(id).unwrap().stats();
        assert!(stats.acks_carried > 0, "seed {seed}: no ack was carried");
        assert!(
            done,
            "seed {seed}: {got} messages and {replies} replies of {MESSAGES}: {stats:?}"
        );
    }
}
