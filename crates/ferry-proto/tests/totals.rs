//! What an endpoint counts over its sessions, for exporters: sessions
//! started, established and closed by reason, how long handshakes took, and
//! totals over every session it held that never go down when a session is
//! forgotten.

mod common;

use std::time::Duration;

use common::{Pair, closed, drain, receive_messages, send_copies};
use ferry_proto::{CloseReason, Histogram, SessionTotals};
use ferry_sim::LinkConfig;

#[test]
fn an_endpoint_counts_its_sessions_and_keeps_their_totals_after_they_are_forgotten() {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(20))
        .random_loss(0.02);
    let mut pair = Pair::new(7, link);
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    send_copies(&mut pair.net, client, id, &[7; 10_000], 100);
    assert_eq!(
        receive_messages(&mut pair.net, server, 100, Duration::from_secs(60)),
        100
    );
    let before: SessionTotals = pair.net.endpoint(client).session_totals();
    assert_eq!(before.messages_sent, 100);
    assert!(before.bytes_sent > 1_000_000, "{before:?}");
    assert!(before.retransmitted > 0, "2% loss: {before:?}");
    // A sample per ack of new data, each about 40 ms (20 ms each way).
    assert!(before.rtt_samples.count() > 10, "{before:?}");
    let mean = before.rtt_samples.sum() / before.rtt_samples.count() as u32;
    assert!(
        mean >= Duration::from_millis(40) && mean < Duration::from_millis(100),
        "{mean:?}"
    );

    let now = pair.net.now();
    pair.net.endpoint(client).session(id).unwrap().close(now, 3);
    pair.net.run_until(Duration::from_secs(30), |net| {
        closed(&drain(net, server)).is_some()
    });
    drain(&mut pair.net, client);
    pair.net.run_for(Duration::from_secs(5));
    assert_eq!(pair.net.endpoint(client).session_count(), 0);
    assert_eq!(pair.net.endpoint(server).session_count(), 0);

    // Forgotten, the session's counters stay in the totals.
    let after = pair.net.endpoint(client).session_totals();
    assert!(after.bytes_sent >= before.bytes_sent);
    assert_eq!(after.messages_sent, 100);
    assert!(after.rtt_samples.count() >= before.rtt_samples.count());
    let received = pair.net.endpoint(server).session_totals();
    assert_eq!(received.messages_received, 100);
    assert!(received.bytes_received >= 1_000_000);

    let c = pair.net.endpoint(client).stats().clone();
    let s = pair.net.endpoint(server).stats().clone();
    assert_eq!((c.sessions_started, c.sessions_established), (1, 1));
    assert_eq!((s.sessions_accepted, s.sessions_established), (1, 1));
    assert_eq!((c.sessions_closed.local, c.sessions_closed.total()), (1, 1));
    assert_eq!(
        (s.sessions_closed.remote, s.sessions_closed.total()),
        (1, 1)
    );
    // The starter's handshake is a round trip: about 40 ms.
    assert_eq!(c.handshake_time.count(), 1);
    assert!(c.handshake_time.sum() >= Duration::from_millis(40));
    assert_eq!(s.handshake_time.count(), 1);
}

#[test]
fn a_handshake_that_times_out_is_counted_as_a_timeout_not_as_established() {
    let mut pair = Pair::new(8, LinkConfig::default().random_loss(1.0));
    pair.connect();
    let client = pair.client;
    let mut reason = None;
    pair.net.run_until(Duration::from_secs(60), |net| {
        reason = reason.take().or(closed(&drain(net, client)));
        reason.is_some()
    });
    assert_eq!(reason, Some(CloseReason::Timeout));
    let c = pair.net.endpoint(client).stats().clone();
    assert_eq!(c.sessions_started, 1);
    assert_eq!(c.sessions_established, 0);
    assert_eq!(c.sessions_closed.timeout, 1);
    assert_eq!(c.handshake_time, Histogram::default());
}
