//! Goodput as a fraction of link capacity, in virtual time.
//!
//! ```text
//! cargo run --release -p ferry-sim --example efficiency [-- --megabytes N]
//! ```
//!
//! A client sends N MB (default 100) of 1 MiB messages to a server over a
//! 100 Mbit/s bottleneck with a 1 MiB queue, at each loss rate (random, both
//! directions) and round-trip time, and the table shows how much of the link's
//! capacity became delivered data.

use std::time::{Duration, Instant};

use ferry_sim::{LinkConfig, Transfer};

const LINK_BPS: u64 = 100_000_000;

fn main() {
    let megabytes: usize = std::env::args()
        .skip_while(|a| a != "--megabytes")
        .nth(1)
        .map(|v| v.parse().expect("--megabytes takes a whole number"))
        .unwrap_or(100);
    let messages: Vec<Vec<u8>> = (0..megabytes).map(|i| vec![i as u8; 1 << 20]).collect();
    println!(
        "Ferry efficiency: {megabytes} MB in 1 MiB messages over a {} Mbit/s link, 1 MiB queue (virtual time)",
        LINK_BPS / 1_000_000
    );
    println!(
        "{:>6} {:>7} {:>12} {:>9} {:>12} {:>10} {:>8}",
        "loss", "rtt", "goodput", "of link", "time", "resent", "rto"
    );
    for rtt_ms in [10u64, 100] {
        for loss in [0.0, 0.01, 0.05, 0.10, 0.20] {
            let link = LinkConfig::default()
                .latency(Duration::from_millis(rtt_ms / 2))
                .random_loss(loss)
                .bandwidth(LINK_BPS)
                .queue_limit(1 << 20);
            let started = Instant::now();
            let report = Transfer::new(rtt_ms ^ (loss * 1000.0) as u64, link)
                .run(messages.clone(), Duration::from_secs(6 * 3600));
            assert_eq!(report.mismatched, 0, "delivered data must never be wrong");
            let status = if report.complete() {
                ""
            } else {
                "  INCOMPLETE"
            };
            println!(
                "{:>5.0}% {:>5}ms {:>7.2} Mb/s {:>8.1}% {:>11.1}s {:>9.1}% {:>8}{status}   ({:.2}s real)",
                loss * 100.0,
                rtt_ms,
                report.goodput_bps() / 1e6,
                report.goodput_bps() / LINK_BPS as f64 * 100.0,
                report.elapsed.as_secs_f64(),
                report.client.retransmitted as f64 / report.client.packets_sent.max(1) as f64
                    * 100.0,
                report.client.timeouts,
                started.elapsed().as_secs_f64(),
            );
        }
    }
}
