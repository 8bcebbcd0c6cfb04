//! Bounded memory: a full send buffer pushes back; a reader that stops reading
//! stops the sender instead of growing the receiver.

mod common;

use std::time::Duration;

use common::{Pair, drain, receive_messages, send_copies};
use ferry_proto::{Config, Event, SendError};
use ferry_sim::LinkConfig;

fn link() -> LinkConfig {
    LinkConfig::default()
        .latency(Duration::from_millis(10))
        .bandwidth(50_000_000)
}

#[test]
fn full_send_buffer_gives_backpressure_not_growth() {
    let config = Config {
        send_buffer: 4 << 20,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(1, link(), config, Config::default());
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    let message = vec![5u8; 256 << 10];
    let mut queued = 0;
    let blocked = loop {
        match pair
            .net
            .endpoint(client)
            .session(id)
            .unwrap()
            .send(message.clone())
        {
            Ok(()) => queued += 1,
            Err(e) => break e,
        }
        assert!(queued <= 100, "the send buffer never filled");
    };
    assert_eq!(blocked, SendError::Blocked);
    assert_eq!(queued, 16, "4 MiB buffer holds 16 messages of 256 KiB");

    // Sending resumes after SendReady, and everything arrives.
    let total = 64;
    let mut received = 0;
    let mut ready_events = 0;
    pair.net.run_until(Duration::from_secs(60), |net| {
        for e in drain(net, client) {
            if let Event::SendReady { .. } = e {
                ready_events += 1;
                while queued < total {
                    match net
                        .endpoint(client)
                        .session(id)
                        .unwrap()
                        .send(message.clone())
                    {
                        Ok(()) => queued += 1,
                        Err(SendError::Blocked) => break,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
        received += std::iter::from_fn(|| net.poll_message(server)).count();
        received == total
    });
    assert_eq!(received, total);
    assert!(ready_events > 0);
}

#[test]
fn reader_that_stops_stalls_the_sender_within_the_window() {
    let server_config = Config {
        max_message_size: 1 << 20,
        recv_window: 2 << 20,
        ..Config::default()
    };
    // 20 MB queued at once: room for it in the client's stream buffer.
    let client_config = Config {
        stream_send_buffer: 32 << 20,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(2, link(), client_config, server_config.clone());
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    pair.net.set_reading(server, false);
    send_copies(&mut pair.net, client, id, &[1u8; 500_000], 40);
    pair.net.run_for(Duration::from_secs(10));
    // The server holds at most its window: the client sent little more than that.
    let sent = pair.net.endpoint(client).session(id).unwrap().stats();
    let window = server_config.recv_window as u64;
    assert!(
        sent.bytes_sent < window + window / 5,
        "sent {} bytes into a {window}-byte window",
        sent.bytes_sent
    );
    let held = pair.net.endpoint(server).session(id).unwrap().stats();
    assert!(held.messages_received <= 4, "{held:?}");
    // Reading again drains the backlog; credit flows and the transfer completes.
    pair.net.set_reading(server, true);
    let received = receive_messages(&mut pair.net, server, 40, Duration::from_secs(120));
    assert_eq!(received, 40);
}

#[test]
fn long_stall_then_loss_recovers_promptly() {
    // The reader stops for 30 s (the sender probes for credit all that while),
    // then resumes just as the path drops a burst: probing must not have left
    // the retransmission timer backed off.
    let server_config = Config {
        max_message_size: 256 << 10,
        recv_window: 512 << 10,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(6, link(), Config::default(), server_config);
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    pair.net.set_reading(server, false);
    send_copies(&mut pair.net, client, id, &[3u8; 200_000], 20);
    pair.net.run_for(Duration::from_secs(30));
    pair.net.set_reading(server, true);
    pair.net
        .change_link(client, server, link().random_loss(1.0));
    pair.net
        .change_link(server, client, link().random_loss(1.0));
    pair.net.run_for(Duration::from_millis(300));
    pair.net.change_link(client, server, link());
    pair.net.change_link(server, client, link());
    let resumed = pair.net.now();
    let received = receive_messages(&mut pair.net, server, 20, Duration::from_secs(60));
    assert_eq!(received, 20);
    let took = pair.net.now() - resumed;
    assert!(took < Duration::from_secs(5), "recovery took {took:?}");
}

#[test]
fn credit_update_lost_is_recovered_by_probe() {
    // The reverse path loses most packets, including window updates: the sender
    // must still finish (its probes make the receiver repeat its credit).
    let server_config = Config {
        max_message_size: 256 << 10,
        recv_window: 512 << 10,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(3, link(), Config::default(), server_config);
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    pair.net
        .change_link(server, client, link().random_loss(0.5));
    send_copies(&mut pair.net, client, id, &[2u8; 200_000], 40);
    let received = receive_messages(&mut pair.net, server, 40, Duration::from_secs(300));
    assert_eq!(received, 40);
}

#[test]
fn oversized_message_is_refused_at_send() {
    let mut pair = Pair::new(4, link());
    let id = pair.establish();
    let mut s = pair.net.endpoint(pair.client).session(id).unwrap();
    let max = s.max_message_size();
    assert_eq!(max, Config::default().max_message_size);
    assert_eq!(
        s.send(vec![0u8; max + 1]),
        Err(SendError::TooLarge { size: max + 1, max })
    );
}

#[test]
fn peer_limit_applies_after_handshake() {
    let server = Config {
        max_message_size: 1000,
        recv_window: 64 << 10,
        ..Config::default()
    };
    let mut pair = Pair::with_configs(5, link(), Config::default(), server);
    let id = pair.establish();
    let mut s = pair.net.endpoint(pair.client).session(id).unwrap();
    assert_eq!(s.max_message_size(), 1000);
    assert!(matches!(
        s.send(vec![0u8; 1001]),
        Err(SendError::TooLarge { .. })
    ));
    assert_eq!(s.send(vec![0u8; 1000]), Ok(()));
}
