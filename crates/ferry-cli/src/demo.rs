//! `ferry demo`: a transfer through the simulator, checked byte for byte.

use std::io::Write;
use std::time::Duration;

use clap::Args;
use ferry_sim::{LinkConfig, Transfer, TransferReport};

use crate::CliError;

/// Settings of the demo; the defaults are the embedded scenario.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    /// Megabytes to transfer.
    #[arg(long, default_value_t = 4.0)]
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
}

impl Default for DemoArgs {
    fn default() -> Self {
        Self {
            megabytes: 4.0,
            loss: 5.0,
            rtt_ms: 20,
            mbps: 100,
            seed: 1,
        }
    }
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
    writeln!(
        out,
        "Ferry demo: {:.1} MB over a simulated {} Mbit/s path, {} ms RTT, {}% loss each way (seed {})",
        total as f64 / 1e6,
        args.mbps,
        args.rtt_ms,
        args.loss,
        args.seed
    )?;
    let messages = messages(total);
    let count = messages.len();
    let report = Transfer::new(args.seed, link).run(messages, Duration::from_secs(24 * 3600));
    write_report(&report, count, out)?;
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

fn write_report(r: &TransferReport, count: usize, out: &mut dyn Write) -> std::io::Result<()> {
    let secs = r.elapsed.as_secs_f64();
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
        "  virtual time  {secs:.2} s, goodput {:.2} Mbit/s",
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
}
