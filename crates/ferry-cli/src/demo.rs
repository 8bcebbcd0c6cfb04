//! `ferry demo`: a transfer across a lossy path, checked byte for byte — over
//! real UDP sockets on loopback through Ferry's lossy relay, or (with
//! `--simulated`, in a binary built with the `bench` feature) in the
//! deterministic simulator's virtual time.

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Args;
use ferry_proto::{CloseReason, SessionStats};
use ferry_relay::{LinkConfig, LinkStats, Relay};
use ferry_tokio::{Endpoint, EndpointConfig, EndpointExt};

use crate::CliError;

/// Settings of the demo; the defaults are the embedded scenario.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Megabytes to transfer.
    #[arg(long, default_value_t = 2.0)]
    pub megabytes: f64,
    /// Random loss on each direction of the path, in percent.
    #[arg(long, default_value_t = 5.0)]
    pub loss: f64,
    /// Round-trip time of the path, in milliseconds.
    #[arg(long, default_value_t = 20)]
    pub rtt_ms: u64,
    /// Bandwidth of the path, in Mbit/s.
    #[arg(long, default_value_t = 100)]
    pub mbps: u64,
    /// Seed of the simulated network's randomness: the same seed replays the
    /// same run exactly.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Run in the simulator's virtual time instead of over real sockets: exact,
    /// repeatable by seed, and as fast as the CPU allows (in a ferry built
    /// with `--features bench`).
    #[arg(long)]
    pub simulated: bool,
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            megabytes: 2.0,
            loss: 5.0,
            rtt_ms: 20,
            mbps: 100,
            seed: 1,
            simulated: false,
        }
    }
}

/// What a demo transfer saw, over real sockets or in the simulator.
#[derive(Debug, Clone, Default)]
struct Report {
    /// The handshake completed.
    connected: bool,
    /// Messages the client queued.
    expected: usize,
    /// Messages that arrived matching the expected message at their position.
    delivered: usize,
    /// Messages that arrived not matching (wrong bytes, wrong order, extra).
    mismatched: usize,
    /// Payload bytes delivered intact.
    bytes: u64,
    /// Time from `connect` to the last message delivered (virtual when
    /// simulated).
    elapsed: Duration,
    /// How the session ended, if it did.
    closed: Option<CloseReason>,
    /// The client's session counters, last seen.
    client: SessionStats,
    /// The server's session counters, last seen.
    server: SessionStats,
    /// Client to server link counters.
    forward: LinkStats,
    /// Server to client link counters.
    backward: LinkStats,
}

impl Report {
    /// Every message arrived intact, in order, once.
    fn complete(&self) -> bool {
        self.connected && self.delivered == self.expected && self.mismatched == 0
    }

    /// Delivered payload bits per second.
    fn goodput_bps(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.bytes as f64 * 8.0 / self.elapsed.as_secs_f64()
    }
}

/// Runs the transfer in the simulator's virtual time.
type Simulate = fn(u64, LinkConfig, Vec<Vec<u8>>) -> Report;

/// The simulated transfer: `ferry_sim::Transfer`, built in with the `bench`
/// feature.
#[cfg(feature = "bench")]
fn simulator() -> Result<Simulate, CliError> {
    Ok(|seed, link, messages| {
        let r = ferry_sim::Transfer::new(seed, link).run(messages, Duration::from_secs(24 * 3600));
        Report {
            connected: r.connected,
            expected: r.expected,
            delivered: r.delivered,
            mismatched: r.mismatched,
            bytes: r.bytes,
            elapsed: r.elapsed,
            closed: r.closed,
            client: r.client,
            server: r.server,
            forward: r.forward,
            backward: r.backward,
        }
    })
}

/// Without the `bench` feature the simulator is not built in.
#[cfg(not(feature = "bench"))]
fn simulator() -> Result<Simulate, CliError> {
    Err(CliError::NotBuilt("ferry demo --simulated"))
}

/// Messages of varied sizes, filled with a pattern that depends on their index,
/// so that a misplaced or corrupted byte cannot go unnoticed.
fn messages(total: usize) -> Vec<Vec<u8>> {
    let sizes = [64 << 10, 1_000, 300 << 10, 12, 5_000, 1 << 20, 0, 70_000];
    let mut out = Vec::new();
    let mut sum = 0;
    for i in 0.. {
        if sum >= total {
            break;
        }
        let size = sizes[i % sizes.len()].min(total - sum);
        out.push((0..size).map(|j| (j * 7 + i * 13) as u8).collect());
        sum += size;
    }
    out
}

/// Runs the demo and writes the report.
pub fn run(args: &DemoArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let simulate = args.simulated.then(simulator).transpose()?;
    if !(0.0..100.0).contains(&args.loss) {
        return Err(CliError::Invalid(format!(
            "--loss {} must be at least 0 and below 100",
            args.loss
        )));
    }
    if !(args.megabytes > 0.0 && args.megabytes <= 1024.0) {
        return Err(CliError::Invalid(format!(
            "--megabytes {} must be above 0 and at most 1024",
            args.megabytes
        )));
    }
    if args.mbps == 0 {
        return Err(CliError::Invalid("--mbps must be above 0".into()));
    }
    let total = (args.megabytes * 1e6) as usize;
    let link = LinkConfig::default()
        .latency(Duration::from_millis(args.rtt_ms) / 2)
        .random_loss(args.loss / 100.0)
        .bandwidth(args.mbps * 1_000_000);
    let path = format!(
        "{} Mbit/s path, {} ms RTT, {}% loss each way (seed {})",
        args.mbps, args.rtt_ms, args.loss, args.seed
    );
    let messages = messages(total);
    let count = messages.len();
    let report = if let Some(simulate) = simulate {
        writeln!(
            out,
            "Ferry demo: {:.1} MB over a simulated {path}, in virtual time",
            total as f64 / 1e6
        )?;
        simulate(args.seed, link, messages)
    } else {
        writeln!(
            out,
            "Ferry demo: {:.1} MB over UDP on loopback through a lossy relay: {path}",
            total as f64 / 1e6
        )?;
        real_sockets(args.seed, link, messages)?
    };
    write_report(&report, count, args.simulated, out)?;
    if report.complete() {
        writeln!(out, "result: OK, every byte arrived intact and in order")?;
        Ok(())
    } else {
        writeln!(out, "result: FAILED")?;
        Err(CliError::TransferFailed(match report.closed {
            Some(reason) => format!("session ended: {reason}"),
            None => format!(
                "{} of {} messages arrived",
                report.delivered, report.expected
            ),
        }))
    }
}

/// Two endpoints in this process on tokio, the relay between them.
fn real_sockets(seed: u64, link: LinkConfig, messages: Vec<Vec<u8>>) -> Result<Report, CliError> {
    let io = |e: std::io::Error| CliError::Invalid(format!("cannot set up sockets: {e}"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(io)?;
    runtime.block_on(async move {
        let setup = |e: ferry_tokio::BindError| CliError::Invalid(e.to_string());
        let local = "127.0.0.1:0".parse().expect("valid address");
        let server = Endpoint::bind(local, EndpointConfig::server()).map_err(setup)?;
        let client = Endpoint::bind(local, EndpointConfig::default()).map_err(setup)?;
        let relay =
            Relay::start(local, server.local_addr(), link.clone(), link, seed).map_err(io)?;
        let expected: Arc<Vec<Bytes>> = Arc::new(messages.into_iter().map(Bytes::from).collect());
        let mut report = Report {
            expected: expected.len(),
            ..Report::default()
        };
        let start = Instant::now();
        let receiver = {
            let expected = expected.clone();
            tokio::spawn(async move {
                let mut seen = (0, 0, 0u64);
                let mut stats = ferry_tokio::SessionStats::default();
                if let Some(session) = server.accept().await {
                    for want in expected.iter() {
                        match session.recv().await {
                            Ok(got) if got == *want => {
                                seen.0 += 1;
                                seen.2 += got.len() as u64;
                            }
                            Ok(_) => seen.1 += 1,
                            Err(_) => break,
                        }
                    }
                    stats = session.stats();
                }
                (seen, start.elapsed(), stats, server)
            })
        };
        let session = client
            .connect(relay.local_addr())
            .await
            .map_err(|e| CliError::TransferFailed(e.to_string()))?;
        report.connected = true;
        for m in expected.iter() {
            session
                .send(m.clone())
                .await
                .map_err(|e| CliError::TransferFailed(e.to_string()))?;
        }
        let ((delivered, mismatched, bytes), elapsed, server_stats, server) = receiver
            .await
            .map_err(|e| CliError::TransferFailed(e.to_string()))?;
        report.delivered = delivered;
        report.mismatched = mismatched;
        report.bytes = bytes;
        report.elapsed = elapsed;
        report.client = session.stats();
        report.server = server_stats;
        let relay_stats = relay.stats();
        report.forward = relay_stats.to_upstream.link;
        report.backward = relay_stats.to_client.link;
        session.close(0);
        client.close().await;
        server.close().await;
        Ok(report)
    })
}

fn write_report(
    r: &Report,
    count: usize,
    simulated: bool,
    out: &mut dyn Write,
) -> std::io::Result<()> {
    let secs = r.elapsed.as_secs_f64();
    let clock = if simulated {
        "virtual time"
    } else {
        "wall time   "
    };
    writeln!(
        out,
        "  delivered     {:.1} MB in {} of {} messages, {} mismatched",
        r.bytes as f64 / 1e6,
        r.delivered,
        count,
        r.mismatched
    )?;
    writeln!(
        out,
        "  {clock}  {secs:.2} s, goodput {:.2} Mbit/s",
        r.goodput_bps() / 1e6
    )?;
    writeln!(
        out,
        "  sender        {} packets sent, {} fragments retransmitted, {} timeouts, {} repeat requests received",
        r.client.packets_sent,
        r.client.retransmitted,
        r.client.timeouts,
        r.client.repeat_requests_received
    )?;
    writeln!(
        out,
        "  receiver      {} acks sent, {} duplicates dropped",
        r.server.acks_sent, r.server.duplicates
    )?;
    writeln!(
        out,
        "  network       {} of {} datagrams lost on the way out, {} of {} on the way back",
        r.forward.lost, r.forward.sent, r.backward.lost, r.backward.sent
    )?;
    writeln!(
        out,
        "  rtt           {:.1} ms smoothed, {:.1} ms minimum",
        r.client.rtt.as_secs_f64() * 1e3,
        r.client.min_rtt.as_secs_f64() * 1e3
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_add_up() {
        let m = messages(3_000_000);
        assert_eq!(m.iter().map(Vec::len).sum::<usize>(), 3_000_000);
        assert!(
            m.iter().any(Vec::is_empty),
            "an empty message is part of the mix"
        );
    }

    #[test]
    fn bad_settings_are_refused() {
        let mut out = Vec::new();
        let args = DemoArgs {
            loss: 100.0,
            ..DemoArgs::default()
        };
        assert!(matches!(run(&args, &mut out), Err(CliError::Invalid(_))));
    }

    #[cfg(not(feature = "bench"))]
    #[test]
    fn simulated_needs_the_bench_feature() {
        let mut out = Vec::new();
        let args = DemoArgs {
            simulated: true,
            ..DemoArgs::default()
        };
        let result = run(&args, &mut out);
        assert!(
            matches!(result, Err(CliError::NotBuilt("ferry demo --simulated"))),
            "{result:?}"
        );
        assert!(out.is_empty(), "nothing is reported before the refusal");
    }
}
