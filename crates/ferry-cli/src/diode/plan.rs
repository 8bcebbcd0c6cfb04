//! `ferry diode-plan`: checks a diode link's parameters offline, as Lidi's
//! `diode-config` does — what a block is made of, how likely a block and a
//! session are to be lost under a loss model, the longest burst a block
//! survives, the throughput ceiling, and the memory and socket buffers each
//! side needs.
//!
//! Everything here is a pure function of the parameters; the numbers come
//! from the engine's own [`DiodeConfig`] (symbol size, repair symbols), so
//! they match what `diode-send` does.
//!
//! The computation and its approximations are in [`model`].

use std::fmt::Write as _;
use std::io::Write;

use clap::Args;
use ferry_proto::diode::{DiodeConfig, DiodeConfigError};
use thiserror::Error;

use crate::CliError;
use crate::diode::config::DiodeOptions;

pub mod model;

pub use model::{LossModel, Plan, binomial_tail, block_loss, plan, session_loss};

/// Arguments of `ferry diode-plan`. The link's settings come from the
/// diode tools' `--config` file (or their defaults), and the flags override
/// them.
#[derive(Debug, Clone, Args)]
pub struct DiodePlanArgs {
    /// The link: the diode tools' settings file (the same file as
    /// `diode-send`'s) and the flags that override it, as the tools read
    /// them (`--mtu`, `--block-size`, `--repair-percentage`, `--bandwidth`,
    /// `--max-sessions`, ...).
    #[command(flatten)]
    pub link: DiodeOptions,
    /// Symbols beyond the source symbols a block is assumed to need
    /// (RaptorQ's decoding overhead; 0 is optimistic, 2 cautious).
    #[arg(long, value_name = "SYMBOLS", default_value_t = 1)]
    pub overhead: usize,
    /// Interleaving depth: the datagrams of this many consecutive blocks go
    /// out in turn (1: no interleaving; default: the configuration's
    /// `interleave_depth`, 8).
    #[arg(long, value_name = "BLOCKS")]
    pub depth: Option<usize>,
    /// Average loss on the link, in percent of datagrams.
    #[arg(long, value_name = "PERCENT", default_value_t = 1.0)]
    pub loss: f64,
    /// Mean length of a burst of loss, in datagrams (Gilbert–Elliott).
    /// Omit for random, independent loss.
    #[arg(long, value_name = "DATAGRAMS")]
    pub burst: Option<f64>,
    /// The size of a session (one file or TCP connection), in bytes; K, M
    /// and G suffixes are powers of 1024.
    #[arg(long, value_name = "BYTES", default_value = "1G", value_parser = parse_size)]
    pub session_size: u64,
    /// Blocks a session holds in flight on each side, as
    /// `max_blocks_in_flight` (default 16).
    #[arg(long, value_name = "N")]
    pub max_blocks_in_flight: Option<usize>,
}

/// A plan's parameters are unusable; the message names the flag.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PlanError {
    /// The diode configuration is invalid.
    #[error("{0}")]
    Config(#[from] DiodeConfigError),
    /// `--depth` is zero.
    #[error("`--depth` must be at least 1 (1: no interleaving)")]
    Depth,
    /// `--loss` outside [0, 100).
    #[error("`--loss` = {0} is outside 0..100 (percent of datagrams lost)")]
    Loss(f64),
    /// `--burst` below one datagram, or impossible with this average loss.
    #[error(
        "`--burst` = {burst} cannot go with `--loss` {loss} %: a burst is at least 1 datagram, and at least 1/(1 − loss) on average"
    )]
    Burst {
        /// Mean burst length.
        burst: f64,
        /// Average loss, percent.
        loss: f64,
    },
}

/// Parses a size: bytes, or with a K, M or G suffix (powers of 1024).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (digits, shift) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 10),
        Some('M') => (&s[..s.len() - 1], 20),
        Some('G') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    let n: u64 = digits
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a size: give bytes, or a number with K, M or G"))?;
    n.checked_mul(1 << shift)
        .ok_or_else(|| format!("`{s}` is too large"))
}

impl DiodePlanArgs {
    /// The diode configuration (`base`, the link's, with the planner's own
    /// flags applied) and the loss model the flags describe.
    pub fn model(&self, base: DiodeConfig) -> Result<(DiodeConfig, LossModel), PlanError> {
        if self.depth == Some(0) {
            return Err(PlanError::Depth);
        }
        if !(0.0..100.0).contains(&self.loss) {
            return Err(PlanError::Loss(self.loss));
        }
        let p = self.loss / 100.0;
        let loss = match self.burst {
            None => LossModel::Random { p },
            Some(burst) => {
                if !(burst >= 1.0 && burst.is_finite() && p / (burst * (1.0 - p)) <= 1.0) {
                    return Err(PlanError::Burst {
                        burst,
                        loss: self.loss,
                    });
                }
                LossModel::GilbertElliott { loss: p, burst }
            }
        };
        let config = DiodeConfig {
            max_blocks_in_flight: self
                .max_blocks_in_flight
                .unwrap_or(base.max_blocks_in_flight),
            interleave_depth: self.depth.unwrap_or(base.interleave_depth),
            ..base
        };
        Ok((config, loss))
    }
}

/// A probability as text: `0`, `3.1e-8`, `0.25`.
fn probability(p: f64) -> String {
    if p == 0.0 {
        "0".into()
    } else if p < 1e-3 {
        format!("{p:.1e}")
    } else {
        format!("{p:.4}")
    }
}

/// A byte count with its binary unit.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["bytes", "KiB", "MiB", "GiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} bytes")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The plan as the report `ferry diode-plan` prints; `asked` are the socket
/// buffers the settings ask for (send, receive).
pub fn report(
    args: &DiodePlanArgs,
    config: &DiodeConfig,
    loss: LossModel,
    plan: &Plan,
    asked: (usize, usize),
) -> String {
    let mut s = String::new();
    let model = match loss {
        LossModel::Random { .. } => format!("random loss {} %", args.loss),
        LossModel::GilbertElliott { burst, .. } => format!(
            "bursty loss (Gilbert–Elliott) {} % on average, bursts of {burst} datagrams on average",
            args.loss
        ),
    };
    let _ = writeln!(
        s,
        "block: {} bytes = {} source symbols of {} bytes + {} repair ({} %): {} datagrams of {} bytes; rebuilt with {} lost (assuming {} symbol(s) of RaptorQ overhead)",
        config.block_size,
        plan.source_symbols,
        plan.symbol_size,
        plan.repair_symbols,
        config.repair_percentage,
        plan.source_symbols + plan.repair_symbols,
        plan.datagram_size,
        plan.tolerated,
        args.overhead
    );
    let _ = writeln!(
        s,
        "loss model: {model}; interleaving depth {}",
        config.interleave_depth
    );
    let _ = writeln!(
        s,
        "a block is lost with probability {}",
        probability(plan.block_loss)
    );
    let _ = writeln!(
        s,
        "a session of {} ({} blocks) is lost with probability {}",
        bytes(args.session_size),
        plan.session_blocks,
        probability(plan.session_loss)
    );
    let _ = writeln!(
        s,
        "longest burst every block survives: {} datagrams ({:.2} ms at the pace)",
        plan.longest_burst,
        plan.longest_burst_secs * 1e3
    );
    let _ = writeln!(
        s,
        "throughput at {} Mbit/s of UDP payload: {:.1} Mbit/s of data (the rest is repair and headers); {:.1} Mbit/s of IP packets on the link",
        config.bandwidth as f64 / 1e6,
        plan.goodput_bps / 1e6,
        plan.wire_bps / 1e6
    );
    let _ = writeln!(
        s,
        "memory at most: sender {}, receiver {} ({} sessions × {} blocks in flight), plus the socket buffers",
        bytes(plan.sender_memory),
        bytes(plan.receiver_memory),
        config.max_sessions,
        config.blocks_in_flight()
    );
    let _ = writeln!(
        s,
        "socket buffers for the pace: sender {} (`udp_send_buffer`; sysctl -w net.core.wmem_max={}), receiver {} (`udp_recv_buffer`; sysctl -w net.core.rmem_max={})",
        bytes(plan.send_buffer as u64),
        plan.send_buffer,
        bytes(plan.recv_buffer as u64),
        plan.recv_buffer
    );
    for (key, asked, needed) in [
        ("udp_send_buffer", asked.0, plan.send_buffer),
        ("udp_recv_buffer", asked.1, plan.recv_buffer),
    ] {
        if asked < needed {
            let _ = writeln!(
                s,
                "warning: `{key}` asks for {} but the pace needs {}: raise it",
                bytes(asked as u64),
                bytes(needed as u64)
            );
        }
    }
    for warning in &plan.warnings {
        let _ = writeln!(s, "warning: {warning}");
    }
    s
}

/// Runs `ferry diode-plan`.
pub fn run(args: &DiodePlanArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let invalid = |e: PlanError| CliError::Invalid(e.to_string());
    let settings = args.link.load()?;
    let (config, loss) = args.model(settings.diode).map_err(invalid)?;
    let plan = plan(
        &config,
        config.interleave_depth,
        args.overhead,
        loss,
        args.session_size,
    )
    .map_err(invalid)?;
    let asked = (settings.sender.send_buffer, settings.receiver.recv_buffer);
    out.write_all(report(args, &config, loss, &plan, asked).as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_checked() {
        let args = |loss, burst| DiodePlanArgs {
            link: DiodeOptions {
                repair_percentage: Some(10),
                bandwidth: Some(100.0),
                ..DiodeOptions::default()
            },
            overhead: 1,
            depth: Some(1),
            loss,
            burst,
            session_size: 1 << 20,
            max_blocks_in_flight: None,
        };
        let base = || args(1.0, None).link.load().unwrap().diode;
        assert!(matches!(
            args(100.0, None).model(base()),
            Err(PlanError::Loss(_))
        ));
        assert!(matches!(
            args(60.0, Some(1.0)).model(base()),
            Err(PlanError::Burst { .. })
        ));
        let (config, loss) = args(1.0, Some(4.0)).model(base()).unwrap();
        assert_eq!(config.bandwidth, 100_000_000);
        let (to_bad, to_good) = loss.transitions();
        assert!((to_good - 0.25).abs() < 1e-12);
        assert!((to_bad / (to_bad + to_good) - 0.01).abs() < 1e-12);
        let mut out = Vec::new();
        run(&args(1.0, Some(4.0)), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("371 source symbols"), "{text}");
        assert!(text.contains("net.core.rmem_max="), "{text}");
        // The default buffers asked for are enough for 100 Mbit/s.
        assert!(!text.contains("asks for"), "{text}");
        assert_eq!(parse_size("2K"), Ok(2048));
        assert!(parse_size("x").is_err());
    }

    #[test]
    fn the_command_line_reaches_the_plan() {
        use clap::Parser;
        let cli = crate::Cli::try_parse_from([
            "ferry",
            "diode-plan",
            "--loss",
            "2",
            "--burst",
            "10",
            "--depth",
            "4",
            "--session-size",
            "100M",
        ])
        .unwrap();
        let mut out = Vec::new();
        crate::run(cli, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("interleaving depth 4"), "{text}");
        assert!(text.contains("(200 blocks)"), "{text}");
        assert!(text.contains("148 datagrams"), "{text}");
        let bad = crate::Cli::try_parse_from(["ferry", "diode-plan", "--depth", "0"]).unwrap();
        let err = crate::run(bad, &mut Vec::new()).unwrap_err();
        assert!(err.to_string().contains("`--depth`"), "{err}");
    }

    #[test]
    fn the_settings_file_gives_the_link_and_flags_override_it() {
        use clap::Parser;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("diode.toml");
        std::fs::write(
            &path,
            "mtu = 9000\nrepair_percentage = 20\nbandwidth = 5000\nudp_recv_buffer = 1048576\n",
        )
        .unwrap();
        let path = path.to_str().unwrap();
        let cli = crate::Cli::try_parse_from([
            "ferry",
            "diode-plan",
            "--config",
            path,
            "--repair-percentage",
            "30",
        ])
        .unwrap();
        let mut out = Vec::new();
        crate::run(cli, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        // 9000 − 81 rounded down to 8 = 8912; 524288 / 8912 → 59 symbols,
        // 30 % of them → 18 repair.
        assert!(
            text.contains("59 source symbols of 8912 bytes + 18 repair (30 %)"),
            "{text}"
        );
        assert!(text.contains("throughput at 5000 Mbit/s"), "{text}");
        assert!(
            text.contains("`udp_recv_buffer` asks for 1.0 MiB"),
            "{text}"
        );
    }
}
