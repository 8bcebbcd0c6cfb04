//! Goodput as a fraction of link capacity, per congestion controller, in
//! virtual time.
//!
//! ```text
//! cargo run --release -p ferry-sim --example efficiency [-- --megabytes N] [--controller bbr|cubic|newreno] [--windows MiB]
//! ```
//!
//! For each controller a client sends N MB (default 100; ten times as much on
//! the 1 Gbit/s path) of 1 MiB messages to a server over a bottleneck with a
//! 1 MiB queue, at each random loss rate (both directions) and round-trip
//! time. The table shows goodput as a fraction of the link's capacity and of
//! what the loss leaves of it, `(1 − loss) × capacity`. `--windows M` sets the
//! flow-control windows and send buffers (`recv_window`, `stream_recv_window`,
//! `send_buffer`, `stream_send_buffer`) to M MiB and `send_window` to half of
//! that: at 1 Gbit/s and 100 ms the defaults (32 MiB, about 2.7 BDP) limit the
//! transfer under loss.

use std::time::{Duration, Instant};

use ferry_proto::{Config, CongestionControl};
use ferry_sim::Efficiency;

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn main() {
    let megabytes: usize = arg("--megabytes")
        .map(|v| v.parse().expect("--megabytes takes a whole number"))
        .unwrap_or(100);
    let controllers: Vec<CongestionControl> = match arg("--controller").as_deref() {
        None => vec![
            CongestionControl::Bbr,
            CongestionControl::Cubic,
            CongestionControl::NewReno,
        ],
        Some("bbr") => vec![CongestionControl::Bbr],
        Some("cubic") => vec![CongestionControl::Cubic],
        Some("newreno") => vec![CongestionControl::NewReno],
        Some(other) => panic!("unknown controller {other}: bbr, cubic or newreno"),
    };
    let mut config = Config::default();
    if let Some(mib) = arg("--windows") {
        let bytes = mib.parse::<usize>().expect("--windows takes MiB") << 20;
        config.recv_window = bytes;
        config.stream_recv_window = bytes;
        config.send_buffer = bytes;
        config.stream_send_buffer = bytes;
        config.send_window = bytes / 2;
    }
    println!(
        "Ferry efficiency: {megabytes} MB ({} MB at 1 Gbit/s) in 1 MiB messages, 1 MiB bottleneck queue, random loss both ways (virtual time)",
        megabytes * 10
    );
    let mut cells = Vec::new();
    for rtt_ms in [10u64, 100] {
        for loss in [0.0, 0.01, 0.05, 0.10, 0.20] {
            cells.push((100_000_000u64, rtt_ms, loss, megabytes));
        }
    }
    for loss in [0.0, 0.01, 0.05] {
        cells.push((1_000_000_000, 100, loss, megabytes * 10));
    }
    for cc in controllers {
        println!();
        println!("{cc}:");
        println!(
            "{:>9} {:>6} {:>7} {:>13} {:>8} {:>12} {:>9} {:>8} {:>8}",
            "link", "loss", "rtt", "goodput", "of link", "of (1-loss)", "time", "resent", "rto"
        );
        for &(bps, rtt_ms, loss, mb) in &cells {
            let started = Instant::now();
            let r = Efficiency::new(cc, bps, Duration::from_millis(rtt_ms), loss)
                .bytes(mb << 20)
                .config(config.clone())
                .run();
            assert_eq!(
                r.transfer.mismatched, 0,
                "delivered data must never be wrong"
            );
            let status = if r.complete { "" } else { "  INCOMPLETE" };
            println!(
                "{:>4} Mb/s {:>5.0}% {:>5}ms {:>8.2} Mb/s {:>7.1}% {:>11.1}% {:>8.1}s {:>7.1}% {:>8}{status}   ({:.1}s real)",
                bps / 1_000_000,
                loss * 100.0,
                rtt_ms,
                r.goodput_bps / 1e6,
                r.of_capacity * 100.0,
                r.of_available * 100.0,
                r.elapsed.as_secs_f64(),
                r.retransmitted * 100.0,
                r.transfer.client.timeouts,
                started.elapsed().as_secs_f64(),
            );
        }
    }
}
