//! Acknowledged delivery in virtual time: `Session::send_progress` says a
//! message is acknowledged only once the peer has it, never before, under
//! loss; what a silent peer or a reset leaves unacknowledged is never
//! counted as acknowledged.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use common::Pair;
use ferry_proto::{SessionId, StreamId, StreamKind};
use ferry_sim::{LinkConfig, Network, NodeId};

/// Message `i`: its index in the first four bytes.
fn message(i: u32, size: usize) -> Bytes {
    let mut m = vec![(i % 251) as u8; size.max(4)];
    m[..4].copy_from_slice(&i.to_be_bytes());
    Bytes::from(m)
}

fn index(m: &[u8]) -> u64 {
    u64::from(u32::from_be_bytes([m[0], m[1], m[2], m[3]]))
}

fn lossy() -> LinkConfig {
    LinkConfig::default()
        .latency(Duration::from_millis(10))
        .random_loss(0.1)
        .reorder(0.05, Duration::from_millis(5))
        .duplicate(0.02)
}

/// What the application at `node` took so far, per stream (reading it
/// off the network's queues and anything still in the endpoint).
fn take_delivered(
    net: &mut Network,
    node: NodeId,
    id: SessionId,
    streams: &[StreamId],
    got: &mut BTreeMap<StreamId, BTreeSet<u64>>,
) {
    while let Some((_, m)) = net.poll_message(node) {
        got.entry(StreamId::DEFAULT).or_default().insert(index(&m));
    }
    while let Some((_, stream, m)) = net.poll_stream_message(node) {
        got.entry(stream).or_default().insert(index(&m));
    }
    if let Some(mut session) = net.endpoint(node).session(id) {
        for &stream in streams {
            while let Some(m) = session.recv_on(stream) {
                got.entry(stream).or_default().insert(index(&m));
            }
        }
    }
}

#[test]
fn acknowledged_messages_are_always_ones_the_peer_already_delivered_under_loss() {
    let mut pair = Pair::new(21, lossy());
    let id = pair.establish();
    let (c, s) = (pair.client, pair.server);
    let (ordered, unordered) = {
        let mut session = pair.net.endpoint(c).session(id).unwrap();
        (
            session.open_stream(StreamKind::ReliableOrdered).unwrap(),
            session.open_stream(StreamKind::ReliableUnordered).unwrap(),
        )
    };
    let streams = [StreamId::DEFAULT, ordered, unordered];
    const COUNT: u32 = 120;
    for i in 0..COUNT {
        let mut session = pair.net.endpoint(c).session(id).unwrap();
        for (k, &stream) in streams.iter().enumerate() {
            let size = 10 + (i as usize * (37 + 50 * k)) % 2500;
            session.send_on(stream, message(i, size)).unwrap();
        }
    }
    let mut got = BTreeMap::new();
    let mut checks = 0u64;
    let mut before_complete = 0u64;
    let done = pair.net.run_until(Duration::from_secs(120), |net| {
        take_delivered(net, s, id, &streams, &mut got);
        let session = net.endpoint(c).session(id).unwrap();
        let mut complete = true;
        for &stream in &streams {
            let p = session.send_progress(stream).unwrap();
            assert_eq!(p.queued, u64::from(COUNT));
            assert_eq!((p.dropped, p.given_up), (0, 0));
            let delivered = got.get(&stream).cloned().unwrap_or_default();
            // Every message below `acknowledged` is one the peer delivered.
            for n in 0..p.acknowledged {
                assert!(
                    delivered.contains(&n),
                    "message {n} of {stream:?} counted acknowledged before the peer had it"
                );
            }
            complete &= p.is_complete();
        }
        checks += 1;
        if !complete {
            before_complete += 1;
        }
        complete
    });
    assert!(done, "every message acknowledged in time");
    assert!(
        before_complete > 10,
        "the run was watched while acks came in"
    );
    let totals = pair.net.endpoint(c).session(id).unwrap().send_totals();
    assert_eq!(totals.queued, 3 * u64::from(COUNT));
    assert!(totals.is_complete());
    let all: BTreeSet<u64> = (0..u64::from(COUNT)).collect();
    for stream in streams {
        assert_eq!(got[&stream], all, "{stream:?} delivered whole");
    }
    assert!(checks > before_complete);
}

#[test]
fn a_peer_that_goes_silent_leaves_messages_unacknowledged_until_the_session_ends() {
    let link = LinkConfig::default().latency(Duration::from_millis(10));
    let mut pair = Pair::new(22, link);
    let id = pair.establish();
    let (c, s) = (pair.client, pair.server);
    for i in 0..20 {
        let mut session = pair.net.endpoint(c).session(id).unwrap();
        session.send(message(i, 1000)).unwrap();
    }
    pair.net.run_until(Duration::from_secs(5), |net| {
        net.endpoint(c)
            .session(id)
            .unwrap()
            .send_progress(StreamId::DEFAULT)
            .unwrap()
            .is_complete()
    });
    // The peer goes silent: nothing more arrives either way.
    pair.net
        .set_path(c, s, LinkConfig::default().random_loss(1.0));
    for i in 20..30 {
        let mut session = pair.net.endpoint(c).session(id).unwrap();
        session.send(message(i, 1000)).unwrap();
    }
    let mut watched = 0;
    pair.net.run_until(Duration::from_secs(300), |net| {
        let Some(session) = net.endpoint(c).session(id) else {
            return true;
        };
        let p = session.send_progress(StreamId::DEFAULT).unwrap();
        assert_eq!(
            p.acknowledged, 20,
            "nothing sent after the cut is acknowledged"
        );
        assert!(!p.is_complete());
        watched += 1;
        false
    });
    assert!(watched > 0);
    assert!(
        pair.net.endpoint(c).session(id).is_none(),
        "the session timed out"
    );
}

#[test]
fn a_reset_counts_its_dropped_messages_and_they_never_become_acknowledged() {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(10))
        .random_loss(0.05);
    let mut pair = Pair::new(23, link);
    let id = pair.establish();
    let c = pair.client;
    let stream = {
        let mut session = pair.net.endpoint(c).session(id).unwrap();
        let stream = session.open_stream(StreamKind::ReliableOrdered).unwrap();
        for i in 0..50 {
            session.send_on(stream, message(i, 3000)).unwrap();
        }
        stream
    };
    // A little goes out and is acknowledged, then the reset drops the rest.
    pair.net.run_for(Duration::from_millis(15));
    let mut session = pair.net.endpoint(c).session(id).unwrap();
    session.reset_stream(stream, 9).unwrap();
    let at_reset = session.send_progress(stream).unwrap();
    assert_eq!(at_reset.queued, 50);
    assert!(at_reset.dropped > 0);
    assert_eq!(at_reset.pending(), 0);
    assert!(!at_reset.is_complete());
    drop(session);
    pair.net.run_for(Duration::from_secs(5));
    let session = pair.net.endpoint(c).session(id).unwrap();
    let after = session
        .send_progress(stream)
        .unwrap_or_else(|| session.send_totals());
    assert_eq!(after.acknowledged, at_reset.acknowledged);
    assert_eq!(after.dropped, at_reset.dropped);
}

#[test]
fn an_unreliable_stream_settles_lost_messages_as_given_up_not_acknowledged() {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(10))
        .random_loss(0.2);
    let mut pair = Pair::new(24, link);
    let id = pair.establish();
    let c = pair.client;
    let stream = {
        let mut session = pair.net.endpoint(c).session(id).unwrap();
        let stream = session.open_stream(StreamKind::Unreliable).unwrap();
        for i in 0..100 {
            session.send_on(stream, message(i, 500)).unwrap();
        }
        stream
    };
    let settled = pair.net.run_until(Duration::from_secs(30), |net| {
        net.endpoint(c)
            .session(id)
            .unwrap()
            .send_progress(stream)
            .unwrap()
            .pending()
            == 0
    });
    assert!(settled);
    let p = pair
        .net
        .endpoint(c)
        .session(id)
        .unwrap()
        .send_progress(stream)
        .unwrap();
    assert_eq!(p.acknowledged, 100);
    assert!(p.given_up > 0, "{p:?}");
    assert!(!p.is_complete(), "given-up messages are not acknowledged");
}
