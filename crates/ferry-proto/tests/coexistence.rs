//! Coexistence, in virtual time: a Ferry flow sharing one bottleneck with a
//! CUBIC flow, for each of Ferry's controllers, and two Ferry flows of
//! different round trips through one bottleneck, for each controller.
//!
//! The flows come from different hosts (each controller is an endpoint's
//! setting): two clients, each with its own server, whose client → server
//! paths cross one shared bottleneck ([`Network::add_bottleneck`]) after their
//! own links, which carry each flow's own latency. The "CUBIC flow" is a Ferry
//! session running [`CongestionControl::Cubic`], our stand-in for a TCP CUBIC
//! flow.
//!
//! Each test prints the two flows' shares of the bottleneck (visible with
//! `--nocapture`); the whole table:
//!
//! ```text
//! cargo test -p ferry-proto --test coexistence -- --ignored --nocapture shares_table
//! ```
//!
//! Figures are fractions of virtual-time capacity from seeded runs; the
//! margins are what each pairing achieves today, in release and debug builds
//! (which take different trajectories from the same seed; the cause, likely
//! float rounding in the controllers, was not pinned down).

use std::time::Duration;

use bytes::Bytes;
use ferry_proto::{Config, CongestionControl, SendError, SessionId};
use ferry_sim::{BottleneckId, LinkConfig, Network, NodeId};

use CongestionControl::{Bbr, Cubic, NewReno};

const ALL: [CongestionControl; 3] = [Bbr, Cubic, NewReno];

/// The bottleneck's rate, bits per second.
const RATE: u64 = 20_000_000;
/// Its queue: one bandwidth-delay product at a 40 ms round trip (100 kB).
const QUEUE: usize = (RATE / 8) as usize * 40 / 1000;
/// The first flow runs alone this long before the second starts.
const HEAD_START: Duration = Duration::from_secs(1);
/// How much later the second flow joins per seed.
const JOIN_STEP: Duration = Duration::from_millis(37);
/// Then both run this long before the measurement starts.
const SETTLE: Duration = Duration::from_secs(3);
/// The measurement.
const SPAN: Duration = Duration::from_secs(16);

/// One flow: its controller and its round-trip propagation time.
#[derive(Debug, Clone, Copy)]
struct Flow {
    cc: CongestionControl,
    rtt: Duration,
}

/// What two flows got of the bottleneck over [`SPAN`].
#[derive(Debug, Clone, Copy)]
struct Shares {
    /// Each flow's goodput as a fraction of the bottleneck's rate.
    goodput: [f64; 2],
    /// Bytes the bottleneck delivered (retransmissions and headers included)
    /// as a fraction of what it could have.
    busy: f64,
}

impl Shares {
    fn total(&self) -> f64 {
        self.goodput[0] + self.goodput[1]
    }
}

/// Two flows through one bottleneck of [`RATE`] with a [`QUEUE`]: `flows[0]`
/// starts first, `flows[1]` [`HEAD_START`] later; both keep their send
/// buffers full. Acks come back over the own links only.
fn share(flows: [Flow; 2], seed: u64) -> Shares {
    let mut net = Network::new(seed);
    let bottleneck: BottleneckId =
        net.add_bottleneck(LinkConfig::default().bandwidth(RATE).queue_limit(QUEUE));
    let mut ends: Vec<(NodeId, NodeId)> = Vec::new();
    for flow in flows {
        let config = Config {
            congestion: flow.cc,
            ..Config::default()
        };
        let client = net.add_node(config.clone()).unwrap();
        let server = net
            .add_node(Config {
                accept_incoming: true,
                ..config
            })
            .unwrap();
        net.set_path(client, server, LinkConfig::default().latency(flow.rtt / 2));
        net.route_through(client, server, bottleneck);
        ends.push((client, server));
    }
    let message = Bytes::from(vec![0x5a; 64 << 10]);
    let mut sessions: Vec<(NodeId, SessionId)> = Vec::new();
    let mut delivered = [0u64; 2];
    let run = |net: &mut Network,
               sessions: &[(NodeId, SessionId)],
               delivered: &mut [u64; 2],
               d: Duration| {
        net.run_until(d, |net| {
            for &(client, id) in sessions {
                if let Some(mut s) = net.endpoint(client).session(id) {
                    loop {
                        match s.send(message.clone()) {
                            Ok(()) => {}
                            Err(SendError::Blocked) => break,
                            Err(e) => panic!("send: {e}"),
                        }
                    }
                }
            }
            for (i, &(_, server)) in ends.iter().enumerate() {
                while let Some((_, m)) = net.poll_message(server) {
                    delivered[i] += m.len() as u64;
                }
            }
            false
        });
    };
    for (i, &(client, server)) in ends.iter().enumerate() {
        let (now, to) = (net.now(), net.addr(server));
        sessions.push((client, net.endpoint(client).connect(now, to).unwrap()));
        // The seed moves when the second flow joins: loss-based controllers
        // draw nothing random, and a run's shares hang on the phase at which
        // the flows meet (a few bytes more or less anywhere gives another
        // run), so each seed is another sample of that phase.
        let d = if i == 0 {
            HEAD_START + JOIN_STEP * seed as u32
        } else {
            SETTLE
        };
        run(&mut net, &sessions, &mut delivered, d);
    }
    let before = delivered;
    let wire_before = net.bottleneck_stats(bottleneck).delivered_bytes;
    run(&mut net, &sessions, &mut delivered, SPAN);
    let capacity = RATE as f64 / 8.0 * SPAN.as_secs_f64();
    let wire = net.bottleneck_stats(bottleneck).delivered_bytes - wire_before;
    Shares {
        goodput: [0, 1].map(|i| (delivered[i] - before[i]) as f64 / capacity),
        busy: wire as f64 / capacity,
    }
}

/// The seeds each scenario runs with: each moves when the second flow joins
/// (and BBR's probing phases).
const SEEDS: [u64; 6] = [1, 2, 3, 4, 5, 6];

fn pct(share: f64) -> String {
    format!("{:.0}%", share * 100.0)
}

/// A Ferry flow running `ferry` joins a CUBIC flow already on the link; both
/// have a 40 ms round trip. Returns the `(ferry, cubic)` shares, one per
/// seed.
fn against_cubic(ferry: CongestionControl) -> Vec<Shares> {
    let rtt = Duration::from_millis(40);
    SEEDS
        .iter()
        .map(|&seed| {
            let s = share([Flow { cc: Cubic, rtt }, Flow { cc: ferry, rtt }], seed);
            let s = Shares {
                goodput: [s.goodput[1], s.goodput[0]],
                ..s
            };
            println!(
                "Ferry {ferry:<7} with CUBIC (40 ms each), seed {seed}: \
                 {ferry} {}, CUBIC {}, both {}, link busy {}",
                pct(s.goodput[0]),
                pct(s.goodput[1]),
                pct(s.total()),
                pct(s.busy),
            );
            s
        })
        .collect()
}

/// Two flows running `cc`, with 20 ms and 80 ms round trips (the short one
/// starts first). Returns the `(short, long)` shares, one per seed.
fn rtts_20_and_80(cc: CongestionControl) -> Vec<Shares> {
    let flow = |ms| Flow {
        cc,
        rtt: Duration::from_millis(ms),
    };
    SEEDS
        .iter()
        .map(|&seed| {
            let s = share([flow(20), flow(80)], seed);
            println!(
                "Two {cc:<7} flows (20 ms and 80 ms), seed {seed}: \
                 20 ms {}, 80 ms {}, both {}, link busy {}",
                pct(s.goodput[0]),
                pct(s.goodput[1]),
                pct(s.total()),
                pct(s.busy),
            );
            s
        })
        .collect()
}

/// The mean share flow `i` got over the seeds: what the pairing gives it,
/// where one run is one phase of a chaotic system.
fn mean(runs: &[Shares], i: usize) -> f64 {
    runs.iter().map(|r| r.goodput[i]).sum::<f64>() / runs.len() as f64
}

/// The smallest share flow `i` got over the seeds.
fn least(runs: &[Shares], i: usize) -> f64 {
    runs.iter()
        .map(|s| s.goodput[i])
        .fold(f64::INFINITY, f64::min)
}

/// The smallest goodput of both flows together over the seeds.
fn least_total(runs: &[Shares]) -> f64 {
    runs.iter().map(Shares::total).fold(f64::INFINITY, f64::min)
}

/// Both flows together deliver at least 90% of the rate, whatever the seed
/// (measured: 97% to 98% in every scenario).
fn assert_busy(what: &str, runs: &[Shares]) {
    let total = least_total(runs);
    assert!(total >= 0.9, "{what}: goodput {}", pct(total));
}

#[test]
fn ferry_bbr_and_a_cubic_flow_keep_the_link_busy_and_bbr_does_not_starve_cubic() {
    let runs = against_cubic(Bbr);
    assert_busy("BBR with CUBIC", &runs);
    // Not starved (measured: CUBIC 18% to 32%); its mean share is
    // `bbr_leaves_a_cubic_flow_a_fifth_of_the_link_on_average`.
    let cubic = least(&runs, 1);
    assert!(cubic >= 0.15, "CUBIC next to BBR: {}", pct(cubic));
}

/// Measured: CUBIC 21% (release) and 26% (debug) on average over seeds 1-6
/// (18% to 32%), with both
/// flows at a 1452-byte MTU. (An earlier 33% came from runs in which the
/// CUBIC flow's path MTU probes were lost in the full queue and it stayed at
/// 1200 bytes; with both flows at 1452 from the start it was 22% to 30%.)
/// BBR v1 taking about three quarters of a one-BDP buffer from a loss-based
/// flow is what its published measurements show too.
#[test]
fn bbr_leaves_a_cubic_flow_a_fifth_of_the_link_on_average() {
    let cubic = mean(&against_cubic(Bbr), 1);
    assert!(cubic >= 0.18, "CUBIC next to BBR: {}", pct(cubic));
}

#[test]
fn ferry_cubic_and_a_cubic_flow_keep_the_link_busy_and_split_it_about_evenly() {
    let runs = against_cubic(Cubic);
    assert_busy("CUBIC with CUBIC", &runs);
    // Measured: 37% to 56% (mean 46% to 52%) and 43% to 62% (mean 47% to
    // 53%).
    for i in 0..2 {
        assert!(
            mean(&runs, i) >= 0.4,
            "flow {i}: mean {}",
            pct(mean(&runs, i))
        );
        assert!(least(&runs, i) >= 0.3, "flow {i}: {}", pct(least(&runs, i)));
    }
}

#[test]
fn ferry_newreno_and_a_cubic_flow_keep_the_link_busy_and_split_it_about_evenly() {
    let runs = against_cubic(NewReno);
    assert_busy("NewReno with CUBIC", &runs);
    // Measured: NewReno 39% to 59% (mean 48% to 50%), CUBIC 40% to 59% (mean
    // 49% to 50%).
    for i in 0..2 {
        assert!(
            mean(&runs, i) >= 0.4,
            "flow {i}: mean {}",
            pct(mean(&runs, i))
        );
        assert!(least(&runs, i) >= 0.3, "flow {i}: {}", pct(least(&runs, i)));
    }
}

#[test]
fn two_bbr_flows_of_20_and_80_ms_keep_the_link_busy_and_neither_is_starved() {
    let runs = rtts_20_and_80(Bbr);
    assert_busy("two BBR flows", &runs);
    // Measured: 20 ms 26% to 32%; 80 ms 66% to 73% (BBR favours the long
    // round trip).
    assert!(least(&runs, 0) >= 0.2, "20 ms: {}", pct(least(&runs, 0)));
    assert!(least(&runs, 1) >= 0.5, "80 ms: {}", pct(least(&runs, 1)));
}

#[test]
fn two_cubic_flows_of_20_and_80_ms_keep_the_link_busy_and_neither_is_starved() {
    let runs = rtts_20_and_80(Cubic);
    assert_busy("two CUBIC flows", &runs);
    // Measured: 20 ms 51% to 70% (mean 59% to 63%), 80 ms 28% to 48% (mean
    // 35% to 39%):
    // CUBIC's growth is per unit of time, yet here the short round trip
    // still wins.
    assert!(mean(&runs, 1) >= 0.3, "80 ms: mean {}", pct(mean(&runs, 1)));
    assert!(least(&runs, 1) >= 0.25, "80 ms: {}", pct(least(&runs, 1)));
    assert!(least(&runs, 0) >= 0.45, "20 ms: {}", pct(least(&runs, 0)));
}

#[test]
fn two_newreno_flows_of_20_and_80_ms_keep_the_link_busy_and_neither_is_starved() {
    let runs = rtts_20_and_80(NewReno);
    assert_busy("two NewReno flows", &runs);
    // Measured: 20 ms 61% to 76%, 80 ms 22% to 38% (NewReno favours the
    // short round trip).
    assert!(least(&runs, 0) >= 0.5, "20 ms: {}", pct(least(&runs, 0)));
    assert!(least(&runs, 1) >= 0.2, "80 ms: {}", pct(least(&runs, 1)));
}

/// The whole table: every scenario, every controller, every seed.
#[test]
#[ignore = "prints the shares table: cargo test -p ferry-proto --test coexistence \
            -- --ignored --nocapture shares_table"]
fn shares_table() {
    println!(
        "20 Mbit/s bottleneck, 100 kB queue (1 BDP at 40 ms); second flow joins \
         after {HEAD_START:?}; shares of the rate over {SPAN:?} after {SETTLE:?}"
    );
    for cc in ALL {
        against_cubic(cc);
    }
    for cc in ALL {
        rtts_20_and_80(cc);
    }
}
