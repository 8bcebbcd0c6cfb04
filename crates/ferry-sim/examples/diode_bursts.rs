//! How long a burst the diode survives, and how often bursty loss costs a
//! session, per repair percentage and interleaving depth.
//!
//! ```text
//! cargo run --release -p ferry-sim --example diode_bursts [-- --transfers N] [--megabytes M] [--repair P] [--no-engine]
//! ```
//!
//! For repair percentages 5, 10, 20, 30 and interleaving depths 1, 2, 4, 8,
//! 16 (default settings otherwise: 512 KiB blocks of 371 source symbols),
//! one row each:
//!
//! - *longest burst*: the largest N such that dropping exactly N consecutive
//!   datagrams, at any of 16 random points, loses no block (counted by
//!   `ferry_sim::diode::BurstModel` over the sender's own interleaving order),
//!   then checked with the engine itself (`DiodeNet::drop_burst`, virtual
//!   time): the session survives N and is lost at N + 1 (`engine ✓`);
//! - *sessions lost*: of N transfers (default 1000) of M MB (default 512),
//!   how many lose a block over a link with Gilbert–Elliott loss at 2 %
//!   average in bursts of 5 datagrams on average (`Loss::bursts(0.02, 5.0)`,
//!   the `ferry-netem` model), counted by the same model;
//! - the memory a receiver holds per session at this depth
//!   (`max_blocks_in_flight` = 2 × depth blocks of 512 KiB, the least the
//!   depth needs, plus their repair symbols).
//!
//! `--no-engine` skips the engine checks; `--repair P` prints the rows of
//! that repair percentage only.

use std::time::{Duration, Instant};

use ferry_proto::diode::DiodeConfig;
use ferry_sim::LinkConfig;
use ferry_sim::Loss;
use ferry_sim::diode::{BurstModel, DiodeNet};

fn arg(name: &str) -> Option<String> {
    std::env::args().skip_while(|a| a != name).nth(1)
}

/// Whether a session of `blocks` full blocks arrives when its symbol
/// datagrams `start .. start + len` are dropped.
fn engine_survives(config: &DiodeConfig, blocks: u64, start: u64, len: u64) -> bool {
    let mut net = DiodeNet::new(config.clone(), LinkConfig::default(), start);
    net.drop_burst(start, len);
    let data: Vec<u8> = (0..blocks as usize * config.block_size)
        .map(|i| (i * 31 + i / 4099) as u8)
        .collect();
    let id = net.send_session(data);
    net.run_sessions(Duration::from_secs(120));
    assert_eq!(
        net.burst_dropped(),
        len,
        "the burst fell inside the session"
    );
    net.received(id).is_some_and(|r| r.finished)
}

fn main() {
    let transfers: u32 = arg("--transfers")
        .map(|v| v.parse().expect("--transfers takes a whole number"))
        .unwrap_or(1000);
    let megabytes: u64 = arg("--megabytes")
        .map(|v| v.parse().expect("--megabytes takes a whole number"))
        .unwrap_or(512);
    let engine = !std::env::args().any(|a| a == "--no-engine");
    let only_repair: Option<u32> =
        arg("--repair").map(|v| v.parse().expect("--repair takes a percentage"));
    let started = Instant::now();
    println!(
        "Bursts of exactly N datagrams, and Gilbert–Elliott loss at 2 % average in bursts of 5: \
         sessions lost of {transfers} × {megabytes} MB\n"
    );
    println!(
        "| repair % | depth | longest burst survived | engine | sessions lost | receiver memory per session |"
    );
    println!("| ---: | ---: | ---: | :---: | ---: | ---: |");
    for repair in [5, 10, 20, 30] {
        if only_repair.is_some_and(|r| r != repair) {
            continue;
        }
        for depth in [1, 2, 4, 8, 16] {
            let config = DiodeConfig {
                repair_percentage: repair,
                interleave_depth: depth,
                max_blocks_in_flight: 2 * depth,
                ..DiodeConfig::default()
            };
            config.validate().expect("valid");
            let model = BurstModel::new(&config);
            let (burst, start) = model.longest_burst(16, 0x5eed + depth as u64);
            let check = if engine {
                let blocks = 4 * depth as u64 + 2;
                let ok = engine_survives(&config, blocks, start, burst)
                    && !engine_survives(&config, blocks, start, burst + 1);
                if ok { "✓" } else { "✗" }
            } else {
                "–"
            };
            let blocks = megabytes * 1_000_000 / config.block_size as u64;
            let lost = model.sessions_lost(Loss::bursts(0.02, 5.0), blocks, transfers, 1);
            let memory = config.blocks_in_flight() * config.block_size / (1024 * 1024);
            println!(
                "| {repair} | {depth} | {burst} | {check} | {lost} / {transfers} | {} blocks, {memory} MiB |",
                config.blocks_in_flight()
            );
        }
    }
    eprintln!("\n({:.0} s)", started.elapsed().as_secs_f64());
}
