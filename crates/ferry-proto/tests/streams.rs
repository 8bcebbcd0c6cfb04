//! Streams in virtual time: many flows in one session, each exact, and none
//! waiting for another's losses.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::Pair;
use ferry_proto::{Config, Event, StreamEnd, StreamError, StreamId, StreamKind};
use ferry_sim::LinkConfig;

/// Message `i` of a flow: its index in the first four bytes.
fn message(i: u32, size: usize) -> Bytes {
    let mut m = vec![(i % 251) as u8; size.max(4)];
    m[..4].copy_from_slice(&i.to_be_bytes());
    Bytes::from(m)
}

fn index(m: &[u8]) -> u32 {
    u32::from_be_bytes([m[0], m[1], m[2], m[3]])
}

#[test]
fn streams_interleaved_under_loss_are_each_exact() {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(5))
        .random_loss(0.05)
        .reorder(0.03, Duration::from_millis(4))
        .duplicate(0.02);
    let mut pair = Pair::new(1, link);
    let id = pair.establish();
    let (c, s) = (pair.client, pair.server);
    let ordered = pair
        .net
        .endpoint(c)
        .session(id)
        .unwrap()
        .open_stream(StreamKind::ReliableOrdered)
        .unwrap();
    let unordered = pair
        .net
        .endpoint(c)
        .session(id)
        .unwrap()
        .open_stream(StreamKind::ReliableUnordered)
        .unwrap();
    for i in 0..150u32 {
        let mut session = pair.net.endpoint(c).session(id).unwrap();
        session
            .send(message(i, 100 + (i as usize * 37) % 3000))
            .unwrap();
        session
            .send_on(ordered, message(i, 50 + (i as usize * 101) % 5000))
            .unwrap();
        session
            .send_on(unordered, message(i, 10 + (i as usize * 13) % 2000))
            .unwrap();
    }
    for stream in [ordered, unordered] {
        pair.net
            .endpoint(c)
            .session(id)
            .unwrap()
            .finish_stream(stream)
            .unwrap();
    }
    let mut got: BTreeMap<StreamId, Vec<u32>> = BTreeMap::new();
    let mut opened = Vec::new();
    let mut finished = Vec::new();
    pair.net.run_until(Duration::from_secs(60), |net| {
        while let Some((_, m)) = net.poll_message(s) {
            got.entry(StreamId::DEFAULT).or_default().push(index(&m));
        }
        while let Some((_, stream, m)) = net.poll_stream_message(s) {
            got.entry(stream).or_default().push(index(&m));
        }
        while let Some(e) = net.poll_event(s) {
            match e {
                Event::StreamOpened { stream, .. } => opened.push(stream),
                Event::StreamClosed { stream, end, .. } => finished.push((stream, end)),
                _ => {}
            }
        }
        finished.len() == 2 && got.get(&StreamId::DEFAULT).is_some_and(|v| v.len() == 150)
    });
    let all: Vec<u32> = (0..150).collect();
    assert_eq!(got[&StreamId::DEFAULT], all, "stream 0 in order");
    assert_eq!(got[&ordered], all, "the ordered stream in order");
    let mut u = got[&unordered].clone();
    u.sort_unstable();
    assert_eq!(u, all, "the unordered stream complete, each once");
    opened.sort();
    let mut expected = vec![ordered, unordered];
    expected.sort();
    assert_eq!(opened, expected);
    assert!(finished.contains(&(ordered, StreamEnd::Finished)));
    assert!(finished.contains(&(unordered, StreamEnd::Finished)));
}

/// Sends two flows, A and B, of one 1000-byte message each every 20 ms for
/// 20 s over a lossy 20 ms path (well below what the path carries, so that
/// only losses delay anything) — on one stream, or on two — and returns B's
/// delivery delays.
fn flow_b_delays(separate: bool) -> Vec<Duration> {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(20))
        .random_loss(0.03);
    let mut pair = Pair::new(7, link);
    let id = pair.establish();
    let (c, s) = (pair.client, pair.server);
    let (a, b) = if separate {
        let mut session = pair.net.endpoint(c).session(id).unwrap();
        (
            session.open_stream(StreamKind::ReliableOrdered).unwrap(),
            session.open_stream(StreamKind::ReliableOrdered).unwrap(),
        )
    } else {
        (StreamId::DEFAULT, StreamId::DEFAULT)
    };
    let mut sent_at: BTreeMap<u32, Instant> = BTreeMap::new();
    let mut delays = Vec::new();
    let collect = |net: &mut ferry_sim::Network,
                   sent_at: &BTreeMap<u32, Instant>,
                   delays: &mut Vec<Duration>| {
        let now = net.now();
        let mut take = |m: Bytes| {
            let i = index(&m);
            // Odd indices are flow B.
            if i % 2 == 1 {
                delays.push(now - sent_at[&i]);
            }
        };
        while let Some((_, m)) = net.poll_message(s) {
            take(m);
        }
        while let Some((_, _, m)) = net.poll_stream_message(s) {
            take(m);
        }
    };
    for round in 0..1000u32 {
        let now = pair.net.now();
        for (flow, stream) in [(0, a), (1, b)] {
            let i = round * 2 + flow;
            sent_at.insert(i, now);
            pair.net
                .endpoint(c)
                .session(id)
                .unwrap()
                .send_on(stream, message(i, 1000))
                .unwrap();
        }
        let until = now + Duration::from_millis(20);
        while pair.net.now() < until && pair.net.step() {
            collect(&mut pair.net, &sent_at, &mut delays);
            if pair.net.next_event_time().is_none_or(|t| t > until) {
                break;
            }
        }
        collect(&mut pair.net, &sent_at, &mut delays);
        if pair.net.now() < until {
            pair.net.run_for(until - pair.net.now());
            collect(&mut pair.net, &sent_at, &mut delays);
        }
    }
    pair.net.run_for(Duration::from_secs(5));
    collect(&mut pair.net, &sent_at, &mut delays);
    assert_eq!(delays.len(), 1000, "every message of flow B arrived");
    delays
}

#[test]
fn a_loss_on_one_stream_does_not_delay_another() {
    let shared = flow_b_delays(false);
    let separate = flow_b_delays(true);
    // Delivered later than the path's latency plus a few milliseconds: held
    // back by a loss (flow B's own, or — on a shared stream — flow A's).
    let late = |d: &[Duration]| d.iter().filter(|d| **d > Duration::from_millis(30)).count();
    // Mean delay beyond the path's 20 ms latency: what losses cost.
    let mean = |d: &[Duration]| {
        d.iter()
            .map(|d| d.saturating_sub(Duration::from_millis(20)))
            .sum::<Duration>()
            / d.len() as u32
    };
    let (late_shared, late_separate) = (late(&shared), late(&separate));
    println!(
        "flow B, 1000 messages at 3% loss: {late_shared} late on a shared stream (mean extra \
         delay {:?}), {late_separate} late on its own stream (mean extra delay {:?})",
        mean(&shared),
        mean(&separate)
    );
    // On a shared stream B waits for A's repairs as well as its own.
    assert!(
        late_separate < late_shared,
        "its own stream spares flow B the other flow's losses: {late_separate} vs {late_shared}"
    );
    assert!(
        mean(&separate) * 5 < mean(&shared) * 4,
        "mean extra delay {:?} on its own stream vs {:?} shared",
        mean(&separate),
        mean(&shared)
    );
}

#[test]
fn an_unreliable_stream_delivers_only_newer_messages_and_never_repeats() {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(5))
        .random_loss(0.1)
        .reorder(0.1, Duration::from_millis(3));
    let mut pair = Pair::new(3, link);
    let id = pair.establish();
    let (c, s) = (pair.client, pair.server);
    let stream = pair
        .net
        .endpoint(c)
        .session(id)
        .unwrap()
        .open_stream(StreamKind::Unreliable)
        .unwrap();
    for i in 0..300u32 {
        pair.net
            .endpoint(c)
            .session(id)
            .unwrap()
            .send_on(stream, message(i, 200 + (i as usize % 7) * 400))
            .unwrap();
        pair.net.run_for(Duration::from_millis(2));
    }
    pair.net.run_for(Duration::from_secs(2));
    let mut got = Vec::new();
    while let Some((_, st, m)) = pair.net.poll_stream_message(s) {
        assert_eq!(st, stream);
        got.push(index(&m));
    }
    assert!(
        got.windows(2).all(|w| w[0] < w[1]),
        "strictly newer each time"
    );
    assert!(
        got.len() > 150 && got.len() < 300,
        "{} of 300: some lost, never resent",
        got.len()
    );
    let stats = pair.net.endpoint(c).session(id).unwrap().stats();
    assert_eq!(
        stats.retransmitted, 0,
        "nothing on an unreliable stream is sent twice"
    );
}

#[test]
fn a_stalled_stream_holds_its_window_and_the_others_flow() {
    let config = Config {
        stream_recv_window: 1 << 20,
        max_message_size: 256 << 10,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(4, LinkConfig::default(), config.clone(), config);
    let id = pair.establish();
    let (c, s) = (pair.client, pair.server);
    let (slow, fast) = {
        let mut session = pair.net.endpoint(c).session(id).unwrap();
        (
            session.open_stream(StreamKind::ReliableOrdered).unwrap(),
            session.open_stream(StreamKind::ReliableOrdered).unwrap(),
        )
    };
    // The server's application reads only the fast stream.
    pair.net.set_reading(s, false);
    let chunk = Bytes::from(vec![7u8; 64 << 10]);
    for _ in 0..64 {
        let mut session = pair.net.endpoint(c).session(id).unwrap();
        session.send_on(slow, chunk.clone()).unwrap();
        session.send_on(fast, chunk.clone()).unwrap();
    }
    let mut fast_got = 0;
    pair.net.run_until(Duration::from_secs(30), |net| {
        while let Some(e) = net.endpoint(s).poll_event() {
            let _ = e;
        }
        let mut session = net.endpoint(s).session(id).unwrap();
        while session.recv_on(fast).is_some() {
            fast_got += 1;
        }
        fast_got == 64
    });
    assert_eq!(
        fast_got, 64,
        "4 MiB on the fast stream beside a stalled one"
    );
    // The stalled stream holds at most its window.
    let mut held = 0;
    let mut session = pair.net.endpoint(s).session(id).unwrap();
    while let Some(m) = session.recv_on(slow) {
        held += m.len();
    }
    assert!(held <= 1 << 20, "{held} bytes held for the stalled stream");
    assert!(held >= 512 << 10, "its window was used: {held}");
}

#[test]
fn a_stalled_stream_blocks_its_own_sends_not_the_others() {
    let config = Config {
        stream_send_buffer: 1 << 20,
        send_buffer: 4 << 20,
        stream_recv_window: 1 << 20,
        max_message_size: 64 << 10,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(8, LinkConfig::default(), config.clone(), config);
    let id = pair.establish();
    let (c, s) = (pair.client, pair.server);
    let (slow, fast) = {
        let mut session = pair.net.endpoint(c).session(id).unwrap();
        (
            session.open_stream(StreamKind::ReliableOrdered).unwrap(),
            session.open_stream(StreamKind::ReliableOrdered).unwrap(),
        )
    };
    pair.net.set_reading(s, false);
    let chunk = Bytes::from(vec![1u8; 32 << 10]);
    // The slow stream's reader never reads: its sends block at its own share.
    let mut accepted = 0;
    loop {
        match pair
            .net
            .endpoint(c)
            .session(id)
            .unwrap()
            .send_on(slow, chunk.clone())
        {
            Ok(()) => accepted += 1,
            Err(ferry_proto::SendError::Blocked) => break,
            Err(e) => panic!("{e}"),
        }
        pair.net.run_for(Duration::from_millis(1));
    }
    assert!(
        accepted <= 2 * 32 + 2,
        "{accepted} chunks queued on the stalled stream"
    );
    // The other stream still takes and delivers 8 MiB, far beyond what the
    // stalled one holds.
    let mut sent = 0;
    let mut got = 0;
    pair.net.run_until(Duration::from_secs(60), |net| {
        while sent < 256 {
            match net
                .endpoint(c)
                .session(id)
                .unwrap()
                .send_on(fast, chunk.clone())
            {
                Ok(()) => sent += 1,
                Err(ferry_proto::SendError::Blocked) => break,
                Err(e) => panic!("{e}"),
            }
        }
        while net.endpoint(s).poll_event().is_some() {}
        let mut session = net.endpoint(s).session(id).unwrap();
        while session.recv_on(fast).is_some() {
            got += 1;
        }
        got == 256
    });
    assert_eq!(got, 256, "8 MiB on the other stream");
}

#[test]
fn opening_more_streams_than_the_peer_allows_is_refused_with_a_clear_error() {
    let server = Config {
        max_streams: 2,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(5, LinkConfig::default(), Config::default(), server);
    let id = pair.establish();
    let c = pair.client;
    let mut session = pair.net.endpoint(c).session(id).unwrap();
    session.open_stream(StreamKind::ReliableOrdered).unwrap();
    session.open_stream(StreamKind::Unreliable).unwrap();
    let err = session
        .open_stream(StreamKind::ReliableUnordered)
        .unwrap_err();
    assert_eq!(err, StreamError::TooManyStreams { max: 2 });
    assert!(err.to_string().contains("finish one first"));
}

#[test]
fn a_reset_stream_reports_its_code_and_drops_what_was_not_delivered() {
    let mut pair = Pair::new(6, LinkConfig::default().latency(Duration::from_millis(10)));
    let id = pair.establish();
    let (c, s) = (pair.client, pair.server);
    let stream = {
        let mut session = pair.net.endpoint(c).session(id).unwrap();
        let stream = session.open_stream(StreamKind::ReliableOrdered).unwrap();
        session
            .send_on(stream, Bytes::from_static(b"first"))
            .unwrap();
        stream
    };
    pair.net.run_for(Duration::from_millis(100));
    pair.net
        .endpoint(c)
        .session(id)
        .unwrap()
        .reset_stream(stream, 42)
        .unwrap();
    let err = pair
        .net
        .endpoint(c)
        .session(id)
        .unwrap()
        .send_on(stream, Bytes::from_static(b"after"))
        .unwrap_err();
    assert_eq!(err, ferry_proto::SendError::StreamClosed);
    let mut end = None;
    pair.net.run_until(Duration::from_secs(5), |net| {
        while let Some(e) = net.poll_event(s) {
            if let Event::StreamClosed {
                stream: st, end: e, ..
            } = e
            {
                assert_eq!(st, stream);
                end = Some(e);
            }
        }
        end.is_some()
    });
    assert_eq!(end, Some(StreamEnd::Reset { code: 42 }));
}
