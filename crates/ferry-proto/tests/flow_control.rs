//! Windows and buffers that grow to the path: a long fat path is not held to
//! the configured starting receive window or send buffer, and no window
//! outgrows its maximum.

use std::time::Duration;

use ferry_proto::Config;
use ferry_sim::{LinkConfig, Transfer, TransferReport};

const LINK_BPS: u64 = 200_000_000;

/// 48 MB in 256 KiB messages over 200 Mbit/s with a 100 ms RTT (a 2.5 MB
/// bandwidth-delay product), to a receiver whose windows start at 1 MiB.
fn transfer(max_recv_window: usize) -> TransferReport {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(50))
        .bandwidth(LINK_BPS)
        .queue_limit(4 << 20);
    let server = Config {
        max_message_size: 256 << 10,
        recv_window: 1 << 20,
        stream_recv_window: 1 << 20,
        max_recv_window,
        max_stream_recv_window: max_recv_window,
        ..Config::default()
    };
    let client = Config {
        max_message_size: 256 << 10,
        ..Config::default()
    };
    let messages: Vec<Vec<u8>> = (0..192).map(|i| vec![i as u8; 256 << 10]).collect();
    let report = Transfer::new(11, link)
        .client_config(client)
        .server_config(server)
        .run(messages, Duration::from_secs(600));
    assert!(report.complete(), "{report:?}");
    report
}

#[test]
fn windows_grow_to_the_bandwidth_delay_product_and_no_further_than_allowed() {
    let fixed = transfer(1 << 20);
    let tuned = transfer(16 << 20);
    println!(
        "1 MiB fixed window: {:.0} Mbit/s; auto-tuned: {:.0} Mbit/s, window {} bytes",
        fixed.goodput_bps() / 1e6,
        tuned.goodput_bps() / 1e6,
        tuned.server.recv_window
    );
    // A fixed 1 MiB window holds the flow to about 1 MiB per round trip.
    assert!(fixed.goodput_bps() < 0.5 * LINK_BPS as f64, "{fixed:?}");
    assert_eq!(fixed.server.recv_window, 1 << 20);
    // Grown, the window no longer limits it.
    assert!(
        tuned.goodput_bps() > 2.0 * fixed.goodput_bps(),
        "tuned {} vs fixed {}",
        tuned.goodput_bps(),
        fixed.goodput_bps()
    );
    assert!(tuned.server.recv_window > 2 << 20);
    assert!(tuned.server.recv_window <= 16 << 20);
}

#[test]
fn a_window_already_big_enough_does_not_grow() {
    // 20 Mbit/s with a 20 ms RTT: 50 KB in flight, far below 1 MiB.
    let link = LinkConfig::default()
        .latency(Duration::from_millis(10))
        .bandwidth(20_000_000);
    let server = Config {
        max_message_size: 256 << 10,
        recv_window: 1 << 20,
        stream_recv_window: 1 << 20,
        ..Config::default()
    };
    let client = Config {
        max_message_size: 256 << 10,
        ..Config::default()
    };
    let messages: Vec<Vec<u8>> = (0..40).map(|i| vec![i as u8; 256 << 10]).collect();
    let report = Transfer::new(12, link)
        .client_config(client)
        .server_config(server)
        .run(messages, Duration::from_secs(600));
    assert!(report.complete(), "{report:?}");
    assert_eq!(report.server.recv_window, 1 << 20);
}

/// 48 MB over 200 Mbit/s with a 100 ms RTT from a sender whose send buffers
/// start at 1 MiB.
fn send_buffer_transfer(max_send_buffer: usize) -> TransferReport {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(50))
        .bandwidth(LINK_BPS)
        .queue_limit(4 << 20);
    let client = Config {
        max_message_size: 256 << 10,
        send_buffer: 1 << 20,
        stream_send_buffer: 1 << 20,
        max_send_buffer,
        ..Config::default()
    };
    let messages: Vec<Vec<u8>> = (0..192).map(|i| vec![i as u8; 256 << 10]).collect();
    let report = Transfer::new(13, link)
        .client_config(client)
        .run(messages, Duration::from_secs(600));
    assert!(report.complete(), "{report:?}");
    report
}

#[test]
fn send_buffers_grow_with_the_congestion_window() {
    let fixed = send_buffer_transfer(1 << 20);
    let grown = send_buffer_transfer(32 << 20);
    println!(
        "1 MiB fixed send buffer: {:.0} Mbit/s; grown: {:.0} Mbit/s",
        fixed.goodput_bps() / 1e6,
        grown.goodput_bps() / 1e6,
    );
    // A fixed 1 MiB buffer holds the flow to about 1 MiB per round trip.
    assert!(fixed.goodput_bps() < 0.5 * LINK_BPS as f64, "{fixed:?}");
    assert!(
        grown.goodput_bps() > 2.0 * fixed.goodput_bps(),
        "grown {} vs fixed {}",
        grown.goodput_bps(),
        fixed.goodput_bps()
    );
}

/// Four sessions sending large messages at once to an endpoint whose
/// `max_recv_memory` holds fewer than four of them: messages that find no
/// room are dropped unacknowledged and sent again, none is lost, and the
/// sessions do not deadlock waiting for room the others hold.
#[test]
fn endpoint_memory_bound_costs_time_not_data() {
    const MESSAGE: usize = 256 << 10;
    let client = Config::default();
    let server = Config {
        accept_incoming: true,
        max_message_size: MESSAGE,
        recv_window: 512 << 10,
        stream_recv_window: 512 << 10,
        max_recv_window: 512 << 10,
        max_stream_recv_window: 512 << 10,
        max_recv_memory: 640 << 10,
        ..Config::default()
    };
    let mut net = ferry_sim::Network::new(5);
    let c = net.add_node(client).unwrap();
    let s = net.add_node(server).unwrap();
    net.set_path(
        c,
        s,
        LinkConfig::default()
            .latency(Duration::from_millis(10))
            .bandwidth(LINK_BPS),
    );
    let addr = net.addr(s);
    let ids: Vec<_> = (0..4)
        .map(|_| {
            let now = net.now();
            net.endpoint(c).connect(now, addr).unwrap()
        })
        .collect();
    for (n, id) in ids.iter().enumerate() {
        for m in 0..10u8 {
            let body = vec![n as u8 * 16 + m; MESSAGE];
            net.endpoint(c).session(*id).unwrap().send(body).unwrap();
        }
    }
    let mut got = Vec::new();
    let done = net.run_until(Duration::from_secs(120), |net| {
        while net.poll_event(s).is_some() {}
        while let Some((id, m)) = net.poll_message(s) {
            got.push((id, m));
        }
        got.len() == 40
    });
    assert!(done, "{} of 40 messages arrived", got.len());
    for (n, id) in ids.iter().enumerate() {
        let mine: Vec<_> = got
            .iter()
            .filter(|(i, _)| i == id)
            .map(|(_, m)| m)
            .collect();
        assert_eq!(mine.len(), 10);
        for (m, body) in mine.iter().enumerate() {
            assert!(
                body.iter().all(|&b| b == n as u8 * 16 + m as u8),
                "session {n} message {m}"
            );
        }
    }
    let dropped: u64 = ids
        .iter()
        .map(|id| {
            net.endpoint(s)
                .session(*id)
                .unwrap()
                .stats()
                .dropped_recv_memory
        })
        .sum();
    assert!(dropped > 0, "the bound was never reached");
}
