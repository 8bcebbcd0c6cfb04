//! The diode driver on several UDP ports (`SocketOptions::ports`), its
//! socket-buffer check, and the count of datagrams the receiver's sockets
//! dropped when it fell behind.

use std::io::Write;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferry_diode::{
    BufferSide, DiodeConfig, DiodeReceiver, DiodeSender, LossReason, ReceiverEvent, SocketOptions,
};

mod common;
use common::{PATIENCE, loopback, random_bytes};

fn config() -> DiodeConfig {
    DiodeConfig {
        mtu: 9000,
        bandwidth: 1_000_000_000,
        max_burst: 256 * 1024,
        heartbeat: Duration::from_millis(200),
        ..DiodeConfig::default()
    }
}

/// Sends `data` in one session and returns what the receiver delivered, or
/// why it lost the session.
fn transfer(
    sender: &DiodeSender,
    receiver: &DiodeReceiver,
    data: &[u8],
) -> Result<Vec<u8>, LossReason> {
    let mut session = sender.open().unwrap();
    session.write_all(data).unwrap();
    assert_eq!(session.finish().unwrap(), data.len() as u64);
    let deadline = Instant::now() + PATIENCE;
    let mut got = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_event_timeout(left) {
            Ok(ReceiverEvent::Data { data, .. }) => got.extend_from_slice(&data),
            Ok(ReceiverEvent::SessionFinished { .. }) => return Ok(got),
            Ok(ReceiverEvent::SessionLost { reason, .. }) => return Err(reason),
            Ok(_) => {}
            Err(e) => panic!("no event: {e:?} after {} bytes", got.len()),
        }
    }
}

#[test]
fn three_ports_carry_every_byte_and_each_carries_some() {
    let options = SocketOptions {
        threads: 2,
        ports: vec![0, 0, 0],
        ..SocketOptions::default()
    };
    let receiver = DiodeReceiver::bind(loopback(), config(), options.clone()).unwrap();
    let addrs = receiver.local_addrs();
    assert_eq!(addrs.len(), 3);
    let ports: Vec<u16> = addrs.iter().map(SocketAddr::port).collect();
    assert!(ports.iter().all(|&p| p != 0));
    let sender = DiodeSender::bind(
        loopback(),
        receiver.local_addr(),
        config(),
        SocketOptions {
            ports: ports.clone(),
            ..options
        },
    )
    .unwrap();
    assert_eq!(sender.destinations(), addrs);
    assert_eq!(sender.local_addrs().len(), 3);

    let data = random_bytes(7, 24_000_000);
    let got = transfer(&sender, &receiver, &data).expect("session lost");
    assert!(got == data, "bytes differ");
    // A second session on the same sockets.
    let more = random_bytes(8, 3_000_000);
    assert!(transfer(&sender, &receiver, &more).expect("second session lost") == more);

    let sent = sender.stats();
    assert_eq!(sent.ports.len(), 3);
    for port in &sent.ports {
        assert!(port.datagrams > 0, "port {} sent nothing", port.destination);
        assert_eq!(port.send_errors, 0);
    }
    assert_eq!(sent.sends, sent.ports.iter().map(|p| p.sends).sum::<u64>());
    // Round robin: the ports' shares differ by one run at most.
    let sends: Vec<u64> = sent.ports.iter().map(|p| p.sends).collect();
    let (least, most) = (sends.iter().min().unwrap(), sends.iter().max().unwrap());
    assert!(most - least <= 1, "uneven: {sends:?}");
    sender.close().unwrap();
    let received = receiver.stats();
    assert_eq!(received.ports.len(), 3);
    for port in &received.ports {
        assert!(port.datagrams > 0, "port {} received nothing", port.local);
    }
    assert_eq!(received.protocol.sessions_finished, 2);
    if cfg!(target_os = "linux") {
        assert!(received.ports.iter().all(|p| p.socket_drops.is_some()));
    }
}

#[test]
fn one_port_is_the_default() {
    let receiver = DiodeReceiver::bind(loopback(), config(), SocketOptions::default()).unwrap();
    assert_eq!(receiver.local_addrs(), vec![receiver.local_addr()]);
    let sender = DiodeSender::bind(
        loopback(),
        receiver.local_addr(),
        config(),
        SocketOptions::default(),
    )
    .unwrap();
    assert_eq!(sender.destinations(), vec![receiver.local_addr()]);
    let data = random_bytes(1, 2_000_000);
    assert!(transfer(&sender, &receiver, &data).unwrap() == data);
    assert_eq!(sender.stats().ports.len(), 1);
    assert_eq!(receiver.stats().ports.len(), 1);
    assert_eq!(receiver.stats().socket_drops, 0);
    assert_eq!(receiver.stats().sessions_lost_behind, 0);
}

#[test]
fn the_buffer_check_compares_the_grant_with_the_pace() {
    let receiver = DiodeReceiver::bind(
        loopback(),
        config(),
        SocketOptions {
            recv_buffer: 64 * 1024,
            ..SocketOptions::default()
        },
    )
    .unwrap();
    let check = receiver.buffer_check();
    assert_eq!(check.side, BufferSide::Recv);
    assert_eq!(check.requested, 64 * 1024);
    // 1 Gbit/s for 50 ms plus a 256 KiB burst, in whole MiB.
    assert_eq!(check.needed, 7 << 20);
    assert!(!check.is_enough());
    let advice = check.to_string();
    assert!(advice.contains("net.core.rmem_max"), "{advice}");
    assert!(advice.contains("udp_recv_buffer"), "{advice}");
}

/// An application that stops taking events stops the receiver, whose
/// socket then overflows: the drops are counted, and the lost session is
/// blamed on the receiver.
#[cfg(target_os = "linux")]
#[test]
fn a_receiver_that_falls_behind_counts_the_drops_and_blames_itself() {
    let receiver = DiodeReceiver::bind(
        loopback(),
        config(),
        SocketOptions {
            threads: 1,
            recv_buffer: 64 * 1024,
            event_queue_bytes: 1 << 20,
            ..SocketOptions::default()
        },
    )
    .unwrap();
    let sender = DiodeSender::bind(
        loopback(),
        receiver.local_addr(),
        config(),
        SocketOptions::default(),
    )
    .unwrap();
    // Nobody takes events while this goes out.
    let data = random_bytes(3, 32_000_000);
    let mut session = sender.open().unwrap();
    session.write_all(&data).unwrap();
    session.finish().unwrap();
    let stats = receiver.stats();
    // Whether the decode worker (one) or the application gave out first
    // depends on the machine; the socket overflowed either way.
    assert!(stats.socket_drops > 0, "{stats:?}");
    let deadline = Instant::now() + PATIENCE;
    let reason = loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_event_timeout(left).expect("no loss reported") {
            ReceiverEvent::SessionLost { reason, .. } => break reason,
            ReceiverEvent::SessionFinished { .. } => panic!("the session cannot have arrived"),
            _ => {}
        }
    };
    assert_ne!(reason, LossReason::Aborted);
    assert_eq!(receiver.stats().sessions_lost_behind, 1);
}

#[test]
fn a_dropped_receiver_frees_its_ports() {
    let options = SocketOptions {
        ports: vec![0, 0],
        ..SocketOptions::default()
    };
    let first = DiodeReceiver::bind(loopback(), config(), options).unwrap();
    let addrs = first.local_addrs();
    first.close();
    drop(first);
    let ports = addrs.iter().map(SocketAddr::port).collect();
    let again = SocketOptions {
        ports,
        ..SocketOptions::default()
    };
    let second = DiodeReceiver::bind(loopback(), config(), again).expect("rebind the same ports");
    assert_eq!(second.local_addrs(), addrs);
}
