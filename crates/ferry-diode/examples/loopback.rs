//! Throughput of the diode on loopback: one session of random bytes from a
//! `DiodeSender` to a `DiodeReceiver`, every byte checked.
//!
//! ```sh
//! cargo run --release -p ferry-diode --example loopback            # 1 GiB at 5 Gbit/s, mtu 9000
//! cargo run --release -p ferry-diode --example loopback -- 256 2000 1500 20 3
//! #                                                     MiB ^  Mbit/s ^ mtu ^ repair % ^ UDP ports
//! ```
//!
//! On loopback nothing is lost unless the receiver falls behind the pace
//! (the kernel then drops datagrams): lower the bandwidth if the session is
//! lost.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferry_diode::{DiodeConfig, DiodeReceiver, DiodeSender, ReceiverEvent, SocketOptions};

/// The stream's chunks: `total` bytes of `pattern`, repeated.
fn stream(pattern: &[u8], total: u64) -> impl Iterator<Item = &[u8]> {
    let mut left = total;
    std::iter::from_fn(move || {
        let n = left.min(pattern.len() as u64) as usize;
        left -= n as u64;
        (n > 0).then(|| &pattern[..n])
    })
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .map(|a| a.parse().expect("arguments: MiB Mbit/s mtu repair% ports"))
        .unwrap_or(default)
}

fn main() -> ExitCode {
    let mib = arg(1, 1024);
    let mbit = arg(2, 5000);
    let mtu = arg(3, 9000) as usize;
    let repair = arg(4, 10) as u32;
    let ports = arg(5, 1) as usize;
    let config = DiodeConfig {
        mtu,
        bandwidth: mbit * 1_000_000,
        repair_percentage: repair,
        max_burst: 1 << 20,
        max_blocks_in_flight: 16,
        ..DiodeConfig::default()
    };
    let any = "127.0.0.1:0".parse().unwrap();
    // One port: the default (no list). Several: ports the system chooses.
    let listen = SocketOptions {
        ports: if ports > 1 {
            vec![0; ports]
        } else {
            Vec::new()
        },
        ..SocketOptions::default()
    };
    let receiver =
        DiodeReceiver::bind(any, config.clone(), listen.clone()).expect("bind the receiver");
    let chosen = receiver.local_addrs().iter().map(|a| a.port()).collect();
    let sender = DiodeSender::bind(
        any,
        receiver.local_addr(),
        config.clone(),
        SocketOptions {
            ports: if ports > 1 { chosen } else { Vec::new() },
            ..listen
        },
    )
    .expect("bind the sender");

    let total = mib * 1024 * 1024;
    // The stream: a 16 MiB pseudo-random pattern, repeated. Its digest is
    // computed before the clock starts, so the writer only writes.
    let mut pattern = vec![0u8; 16 << 20];
    let mut x = 0x2545_f491_4f6c_dd1d_u64;
    for b in pattern.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b.copy_from_slice(&x.to_le_bytes()[..b.len()]);
    }
    let pattern = Arc::new(pattern);
    let mut expected = blake3::Hasher::new();
    for chunk in stream(&pattern, total) {
        expected.update(chunk);
    }
    let digest = expected.finalize();
    let writer_pattern = Arc::clone(&pattern);
    let writer = std::thread::spawn(move || {
        let mut session = sender.open().expect("open a session");
        for chunk in stream(&writer_pattern, total) {
            session.write_all(chunk).expect("write");
        }
        session.finish().expect("finish");
        let stats = sender.stats();
        sender.close().expect("close the sender");
        stats
    });

    let start = Instant::now();
    let mut hasher = blake3::Hasher::new();
    let mut received = 0u64;
    let mut first = None;
    let outcome = loop {
        match receiver.recv_event_timeout(Duration::from_secs(30)) {
            Ok(ReceiverEvent::Data { data, .. }) => {
                first.get_or_insert_with(Instant::now);
                received += data.len() as u64;
                hasher.update(&data);
            }
            Ok(ReceiverEvent::SessionFinished { bytes, .. }) => break Ok(bytes),
            Ok(ReceiverEvent::SessionLost { reason, .. }) => {
                break Err(format!("lost: {reason:?}"));
            }
            Ok(_) => {}
            Err(e) => break Err(format!("no event for 30 s: {e:?}")),
        }
    };
    let elapsed = start.elapsed();
    let sender_stats = writer.join().expect("writer thread");
    let stats = receiver.stats();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "{mib} MiB, mtu {mtu}, repair {repair}%, paced at {mbit} Mbit/s over {ports} UDP port(s), loopback, 0% loss"
    );
    let _ = writeln!(
        out,
        "sent {} datagrams ({} source, {} repair) in {} socket calls, {} send errors",
        sender_stats.protocol.datagrams,
        sender_stats.protocol.source_symbols,
        sender_stats.protocol.repair_symbols,
        sender_stats.sends,
        sender_stats.send_errors,
    );
    let _ = writeln!(
        out,
        "received {} datagrams in {} batches; {} blocks decoded ({} needed repair); {} dropped by the receiving sockets",
        stats.protocol.datagrams,
        stats.receives,
        stats.protocol.blocks_decoded,
        stats.protocol.blocks_repaired,
        stats.socket_drops,
    );
    match outcome {
        Ok(bytes) if bytes == total && hasher.finalize() == digest => {
            let secs = elapsed.as_secs_f64();
            let _ = writeln!(
                out,
                "{received} bytes in {secs:.2} s: {:.0} Mbit/s goodput, every byte checked",
                received as f64 * 8.0 / secs / 1e6
            );
            ExitCode::SUCCESS
        }
        Ok(bytes) => {
            let _ = writeln!(out, "FAILED: {bytes} bytes reported, content differs");
            ExitCode::FAILURE
        }
        Err(e) => {
            let _ = writeln!(out, "FAILED after {received} bytes: session {e}");
            let _ = writeln!(out, "{:?}", stats.protocol);
            ExitCode::FAILURE
        }
    }
}
