//! Goodput as a fraction of link capacity, per congestion controller, in
//! virtual time.
//!
//! ```text
//! cargo run --release -p ferry-sim --example efficiency [-- --megabytes N] [--controller bbr|cubic|newreno] [--windows MiB]
//!     [--max-mtu BYTES] [--profile NAME | --no-profiles | --profiles-only]
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
//! transfer under loss. `--max-mtu B` sets `Config::max_mtu` (the simulated
//! links carry any size, so sessions send packets of that size once path MTU
//! discovery confirms it; 1200, the base, turns discovery off).
//!
//! Then, per controller, one row per network profile (`ferry_sim::Profile`:
//! jitter, reordering, burst loss, long fat, satellite, Wi-Fi, flapping), N MB
//! (ten times as much on the 1 Gbit/s long fat path): goodput as a fraction of
//! what the profile allows (`Profile::allows_bps`), beside the same transfer
//! over the same path without the impairment (`Profile::unimpaired`: same
//! bandwidth, round trip and queue, nothing else) and the ratio of the two,
//! which is what the impairment itself costs. `--profile NAME` runs that
//! profile only; `--no-profiles` skips them, `--profiles-only` skips the loss
//! grid. Every row also shows retransmissions and spurious retransmissions
//! (data the server received twice) per packet the client sent.

use std::time::{Duration, Instant};

use ferry_proto::{Config, CongestionControl};
use ferry_sim::{Efficiency, EfficiencyReport, Profile};

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn run(cell: &Efficiency) -> (EfficiencyReport, f64) {
    let started = Instant::now();
    let r = cell.run();
    assert_eq!(
        r.transfer.mismatched, 0,
        "delivered data must never be wrong"
    );
    (r, started.elapsed().as_secs_f64())
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
    if let Some(bytes) = arg("--max-mtu") {
        config.max_mtu = bytes.parse().expect("--max-mtu takes bytes");
    }
    println!(
        "Ferry efficiency: {megabytes} MB ({} MB at 1 Gbit/s) in 1 MiB messages, 1 MiB bottleneck queue, random loss both ways, packets up to {} bytes (virtual time)",
        megabytes * 10,
        config.max_mtu.max(config.mtu)
    );
    let profiles: Vec<Profile> = match arg("--profile") {
        Some(name) => vec![name.parse().unwrap_or_else(|e| panic!("{e}"))],
        None if flag("--no-profiles") => Vec::new(),
        None => Profile::all().to_vec(),
    };
    let mut cells = Vec::new();
    for rtt_ms in [10u64, 100] {
        for loss in [0.0, 0.01, 0.05, 0.10, 0.20] {
            cells.push((100_000_000u64, rtt_ms, loss, megabytes));
        }
    }
    for loss in [0.0, 0.01, 0.05] {
        cells.push((1_000_000_000, 100, loss, megabytes * 10));
    }
    if flag("--profiles-only") {
        cells.clear();
    }
    let started = Instant::now();
    for cc in controllers {
        println!();
        println!("{cc}:");
        if !cells.is_empty() {
            println!(
                "{:>9} {:>6} {:>7} {:>13} {:>8} {:>12} {:>9} {:>8} {:>8} {:>8}",
                "link",
                "loss",
                "rtt",
                "goodput",
                "of link",
                "of (1-loss)",
                "time",
                "resent",
                "spurious",
                "rto"
            );
        }
        for &(bps, rtt_ms, loss, mb) in &cells {
            let (r, real) = run(
                &Efficiency::new(cc, bps, Duration::from_millis(rtt_ms), loss)
                    .bytes(mb << 20)
                    .config(config.clone()),
            );
            let status = if r.complete { "" } else { "  INCOMPLETE" };
            println!(
                "{:>4} Mb/s {:>5.0}% {:>5}ms {:>8.2} Mb/s {:>7.1}% {:>11.1}% {:>8.1}s {:>7.1}% {:>7.2}% {:>8}{status}   ({real:.1}s real)",
                bps / 1_000_000,
                loss * 100.0,
                rtt_ms,
                r.goodput_bps / 1e6,
                r.of_capacity * 100.0,
                r.of_available * 100.0,
                r.elapsed.as_secs_f64(),
                r.retransmitted * 100.0,
                r.spurious * 100.0,
                r.transfer.client.timeouts,
            );
        }
        if profiles.is_empty() {
            continue;
        }
        println!();
        println!(
            "{cc}, network profiles ({megabytes} MB, {} MB at 1 Gbit/s), each beside the same path unimpaired:",
            megabytes * 10
        );
        println!(
            "{:>12} {:>20} {:>10} {:>13} {:>10} {:>13} {:>10} {:>9} {:>9} {:>8} {:>8} {:>6}",
            "profile",
            "path",
            "allows",
            "goodput",
            "of allowed",
            "unimpaired",
            "vs unimp.",
            "time",
            "resent",
            "spurious",
            "rto",
            "real"
        );
        // Profiles on the same path share their unimpaired transfer.
        let mut unimpaired: Vec<((u64, Duration, usize, usize), EfficiencyReport)> = Vec::new();
        for &profile in &profiles {
            let mb = if profile.bandwidth_bps() >= 1_000_000_000 {
                megabytes * 10
            } else {
                megabytes
            };
            let cell = Efficiency::profile(cc, profile)
                .bytes(mb << 20)
                .config(config.clone());
            let (r, real) = run(&cell);
            let key = (cell.bandwidth_bps, cell.rtt, cell.queue_bytes, cell.bytes);
            let clean = match unimpaired.iter().find(|(k, _)| *k == key) {
                Some((_, clean)) => clean.clone(),
                None => {
                    let (clean, _) = run(&cell.unimpaired());
                    unimpaired.push((key, clean.clone()));
                    clean
                }
            };
            let status = match (&r, &clean) {
                (r, clean) if r.complete && clean.complete => String::new(),
                (r, _) if !r.complete => format!(
                    "  INCOMPLETE ({} of {} messages; closed: {:?})",
                    r.transfer.delivered, r.transfer.expected, r.transfer.closed
                ),
                _ => "  INCOMPLETE (unimpaired)".to_owned(),
            };
            println!(
                "{:>12} {:>4} Mb/s {:>4}ms RTT {:>5.1} Mb/s {:>8.2} Mb/s {:>9.1}% {:>8.2} Mb/s {:>9.2} {:>8.1}s {:>8.2}% {:>7.2}% {:>8} {real:>5.1}s{status}",
                profile.name(),
                profile.bandwidth_bps() / 1_000_000,
                profile.rtt().as_millis(),
                profile.allows_bps() / 1e6,
                r.goodput_bps / 1e6,
                r.of_available * 100.0,
                clean.goodput_bps / 1e6,
                r.goodput_bps / clean.goodput_bps.max(f64::MIN_POSITIVE),
                r.elapsed.as_secs_f64(),
                r.retransmitted * 100.0,
                r.spurious * 100.0,
                r.transfer.client.timeouts,
            );
        }
    }
    println!();
    println!("whole table: {:.1}s real", started.elapsed().as_secs_f64());
}
