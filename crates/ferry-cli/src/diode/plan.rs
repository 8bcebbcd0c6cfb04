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
//! # The model, and its approximations
//!
//! - A block of `K` source symbols is sent as `N = K + R` datagrams and is
//!   counted rebuilt when at least `K + overhead` of them arrive
//!   (`--overhead`, default 1, as the guide's §3.5 table): RaptorQ fails with
//!   probability below 1 % with exactly `K` symbols, 10⁻⁴ with `K + 1`,
//!   10⁻⁶ with `K + 2` (RFC 6330). So a block survives the loss of
//!   `T = R − overhead` datagrams.
//! - Random loss: each datagram is lost independently with probability `p`;
//!   a block is lost with the binomial tail `P(Bin(N, p) > T)`.
//! - Bursty loss: a Gilbert–Elliott chain in its simple (Gilbert) form: in
//!   the *bad* state every datagram is lost, in the *good* state none. The
//!   mean burst length `b` and the average loss `π` give the transitions:
//!   bad → good `1/b`, good → bad `π / (b (1 − π))`. The chain starts in its
//!   stationary state at the block's first datagram.
//! - Interleaving over `depth` blocks: the datagrams of `depth` consecutive
//!   blocks go out in turn, so one block's datagrams are every `depth`-th of
//!   the span. The block then sees the chain sampled every `depth` steps,
//!   whose transitions are the `depth`-th power of the chain's (closed form
//!   for two states); the number of its datagrams lost is computed exactly
//!   by dynamic programming over (losses so far, state). Depth 1 is no
//!   interleaving.
//! - A session of `S` bytes is `ceil(S / block_size)` blocks, each lost
//!   independently with the block probability: blocks sharing a long burst
//!   are correlated, which makes the session figure a slight overestimate.

use std::fmt::Write as _;
use std::io::Write;

use clap::Args;
use ferry_diode::{BufferSide, buffer_needed};
use ferry_proto::diode::config::IP_UDP_OVERHEAD;
use ferry_proto::diode::{DiodeConfig, DiodeConfigError};
use thiserror::Error;

use crate::CliError;
use crate::diode::config::ConfigFile;

/// Above this many steps the loss distribution is approximated by a normal
/// law rather than computed exactly (to stay within a second).
const MAX_EXACT_STEPS: usize = 50_000_000;

/// Arguments of `ferry diode-plan`. The link's settings come from the
/// diode tools' `--config` file (or their defaults), and the flags override
/// them.
#[derive(Debug, Clone, Args)]
pub struct DiodePlanArgs {
    /// The diode tools' settings file (the same file as `diode-send`'s).
    #[command(flatten)]
    pub file: ConfigFile,
    /// The link's MTU in bytes (IP packet size), as `mtu` (default 1500).
    #[arg(long, value_name = "BYTES")]
    pub mtu: Option<usize>,
    /// Bytes of data per RaptorQ block, as `block_size` (default 524288).
    #[arg(long, value_name = "BYTES")]
    pub block_size: Option<usize>,
    /// Repair symbols per block, in percent of its source symbols, as
    /// `repair_percentage` (default 10).
    #[arg(long, value_name = "PERCENT")]
    pub repair_percentage: Option<u32>,
    /// Symbols beyond the source symbols a block is assumed to need
    /// (RaptorQ's decoding overhead; 0 is optimistic, 2 cautious).
    #[arg(long, default_value_t = 1)]
    pub overhead: usize,
    /// Interleaving depth: the datagrams of this many consecutive blocks go
    /// out in turn (1: no interleaving).
    #[arg(long, default_value_t = 1)]
    pub depth: usize,
    /// Average loss on the link, in percent of datagrams.
    #[arg(long, default_value_t = 1.0)]
    pub loss: f64,
    /// Mean length of a burst of loss, in datagrams (Gilbert–Elliott).
    /// Omit for random, independent loss.
    #[arg(long)]
    pub burst: Option<f64>,
    /// The size of a session (one file or TCP connection), in bytes; K, M
    /// and G suffixes are powers of 1024.
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    pub session_size: u64,
    /// The sender's pace, in Mbit/s of UDP payload, as `bandwidth` (default
    /// 1000).
    #[arg(long, value_name = "MBIT/S")]
    pub bandwidth: Option<f64>,
    /// Blocks a session holds in flight on each side, as
    /// `max_blocks_in_flight` (default 8).
    #[arg(long, value_name = "N")]
    pub max_blocks_in_flight: Option<usize>,
    /// Sessions open at once, as `max_sessions` (default 16).
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<usize>,
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
    /// `--bandwidth` not positive.
    #[error("`--bandwidth` must be above 0 (Mbit/s)")]
    Bandwidth,
}

/// How datagrams are lost on the link.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossModel {
    /// Each datagram lost independently with probability `p` (0..1).
    Random {
        /// Loss probability.
        p: f64,
    },
    /// A Gilbert chain: bursts of `burst` datagrams on average, `loss` of
    /// all datagrams lost on average (0..1).
    GilbertElliott {
        /// Average loss probability.
        loss: f64,
        /// Mean burst length, in datagrams.
        burst: f64,
    },
}

impl LossModel {
    /// The chain's transition probabilities, good → bad and bad → good
    /// (random loss is the chain whose next state ignores the current one).
    pub fn transitions(&self) -> (f64, f64) {
        match *self {
            Self::Random { p } => (p, 1.0 - p),
            Self::GilbertElliott { loss, burst } => {
                let to_good = 1.0 / burst;
                let to_bad = if loss >= 1.0 {
                    1.0
                } else {
                    loss * to_good / (1.0 - loss)
                };
                (to_bad, to_good)
            }
        }
    }

    /// The average loss probability.
    pub fn average(&self) -> f64 {
        match *self {
            Self::Random { p } => p,
            Self::GilbertElliott { loss, .. } => loss,
        }
    }
}

/// What a plan computes.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// Bytes of data per symbol.
    pub symbol_size: usize,
    /// Bytes of UDP payload per datagram.
    pub datagram_size: usize,
    /// Source symbols per block (`K`).
    pub source_symbols: usize,
    /// Repair symbols per block (`R`).
    pub repair_symbols: usize,
    /// Datagrams a block may lose and still be rebuilt (`R − overhead`).
    pub tolerated: usize,
    /// Probability that a block cannot be rebuilt.
    pub block_loss: f64,
    /// Blocks in a session of the size asked.
    pub session_blocks: u64,
    /// Probability that a session of the size asked is lost.
    pub session_loss: f64,
    /// The longest burst of consecutive lost datagrams every block survives.
    pub longest_burst: usize,
    /// The time the longest burst lasts at the pace, in seconds.
    pub longest_burst_secs: f64,
    /// Application data delivered per second at the pace, in bits.
    pub goodput_bps: f64,
    /// The pace counted in IP packets (IPv6 and UDP headers included), in
    /// bits per second.
    pub wire_bps: f64,
    /// Bytes the sender's sessions may hold.
    pub sender_memory: u64,
    /// Bytes the receiver's sessions may hold.
    pub receiver_memory: u64,
    /// Socket send buffer the pace needs.
    pub send_buffer: usize,
    /// Socket receive buffer the pace needs.
    pub recv_buffer: usize,
    /// Things to fix or know.
    pub warnings: Vec<String>,
}

/// Computes a plan: `config`'s block, interleaved over `depth` blocks, each
/// needing `overhead` symbols beyond its source symbols, under `loss`, for
/// sessions of `session_bytes`.
pub fn plan(
    config: &DiodeConfig,
    depth: usize,
    overhead: usize,
    loss: LossModel,
    session_bytes: u64,
) -> Result<Plan, PlanError> {
    config.validate()?;
    if depth == 0 {
        return Err(PlanError::Depth);
    }
    let symbol_size = config.symbol_size();
    let datagram_size = config.datagram_size();
    let k = config.block_size.div_ceil(symbol_size);
    let r = config.repair_symbols(k);
    let n = k + r;
    let tolerated = r.saturating_sub(overhead);
    let (to_bad, to_good) = loss.transitions();
    let block_loss = block_loss(n, tolerated, to_bad, to_good, depth);
    let session_blocks = session_bytes.div_ceil(config.block_size as u64).max(1);
    let session_loss = session_loss(block_loss, session_blocks);
    let longest_burst = depth * tolerated;
    let bandwidth = config.bandwidth as f64;
    let longest_burst_secs = longest_burst as f64 * datagram_size as f64 * 8.0 / bandwidth;
    let goodput_bps = bandwidth * config.block_size as f64 / (n * datagram_size) as f64;
    let wire_bps = bandwidth * (datagram_size + IP_UDP_OVERHEAD) as f64 / datagram_size as f64;
    // Interleaving holds `depth` blocks of a session at once on each side.
    let in_flight = config.max_blocks_in_flight.max(depth) as u64;
    let sessions = config.max_sessions as u64;
    let block = config.block_size as u64;
    let encoded = (n * datagram_size) as u64;
    // Receiver: a block's symbols (repair accepted up to max(K, 16)) while
    // collecting, its data once rebuilt.
    let collected = ((k + r.min(k.max(16))) * symbol_size) as u64;
    let sender_memory = sessions * in_flight * (block + encoded);
    let receiver_memory = sessions * in_flight * collected.max(block);
    let mut warnings = Vec::new();
    if config.max_blocks_in_flight < 2 * depth {
        warnings.push(format!(
            "interleaving over {depth} blocks needs `max_blocks_in_flight` of at least {} (twice the depth: one span being received while the previous one decodes)",
            2 * depth
        ));
    }
    if tolerated == 0 && loss.average() > 0.0 {
        warnings.push(
            "no loss is tolerated: RaptorQ needs a symbol or two beyond the source symbols, so any loss may lose a block; raise `repair_percentage`".into(),
        );
    }
    if loss.average() * 100.0 >= f64::from(config.repair_percentage) * k as f64 / n as f64 {
        warnings.push(
            "the average loss is at or above what the repair symbols cover: most blocks will be lost; raise `repair_percentage`".into(),
        );
    }
    Ok(Plan {
        symbol_size,
        datagram_size,
        source_symbols: k,
        repair_symbols: r,
        tolerated,
        block_loss,
        session_blocks,
        session_loss,
        longest_burst,
        longest_burst_secs,
        goodput_bps,
        wire_bps,
        sender_memory,
        receiver_memory,
        send_buffer: buffer_needed(config, BufferSide::Send, 1),
        recv_buffer: buffer_needed(config, BufferSide::Recv, 1),
        warnings,
    })
}

/// Probability that a block of `n` datagrams loses more than `r` of them,
/// its datagrams being every `depth`-th step of a two-state loss chain
/// (good → bad `to_bad`, bad → good `to_good`; every datagram sent in the
/// bad state is lost) started in its stationary state.
pub fn block_loss(n: usize, r: usize, to_bad: f64, to_good: f64, depth: usize) -> f64 {
    let sum = to_bad + to_good;
    if to_bad <= 0.0 || sum <= 0.0 {
        return 0.0;
    }
    if r >= n {
        return 0.0;
    }
    let bad = to_bad / sum;
    // The chain sampled every `depth` steps: P^d = Π + λ^d (I − Π).
    let lambda = (1.0 - sum).powi(depth.min(i32::MAX as usize) as i32);
    let sub_to_bad = bad * (1.0 - lambda);
    let sub_stay_bad = bad + (1.0 - bad) * lambda;
    if lambda.abs() < 1e-15 {
        return binomial_tail(n, bad, r);
    }
    if n.saturating_mul(r + 1) > MAX_EXACT_STEPS {
        return markov_tail_normal(n, r, bad, lambda);
    }
    markov_tail(n, r, bad, sub_to_bad, sub_stay_bad)
}

/// `P(X > r)` for `X` the number of bad states among `n` steps of a
/// two-state chain started in its stationary state (`bad` of the time bad).
fn markov_tail(n: usize, r: usize, bad: f64, to_bad: f64, stay_bad: f64) -> f64 {
    // good[c], in_bad[c]: probability of being in that state now, with c
    // losses so far (c ≤ r); `over` gathers the mass that passed r.
    let mut good = vec![0.0f64; r + 1];
    let mut in_bad = vec![0.0f64; r + 2];
    good[0] = 1.0 - bad;
    let mut over = 0.0;
    if r == 0 {
        over += bad;
    } else {
        in_bad[1] = bad;
    }
    let mut next_good = vec![0.0f64; r + 1];
    let mut next_bad = vec![0.0f64; r + 2];
    for _ in 1..n {
        next_good.iter_mut().for_each(|x| *x = 0.0);
        next_bad.iter_mut().for_each(|x| *x = 0.0);
        for c in 0..=r {
            let g = good[c];
            let b = in_bad[c];
            next_good[c] += g * (1.0 - to_bad) + b * (1.0 - stay_bad);
            let to = g * to_bad + b * stay_bad;
            if c < r {
                next_bad[c + 1] += to;
            } else {
                over += to;
            }
        }
        std::mem::swap(&mut good, &mut next_good);
        std::mem::swap(&mut in_bad, &mut next_bad);
    }
    over.clamp(0.0, 1.0)
}

/// The normal approximation of [`markov_tail`] for very large blocks: the
/// mean `n π` and the variance of a two-state chain's occupation count.
fn markov_tail_normal(n: usize, r: usize, bad: f64, lambda: f64) -> f64 {
    let nf = n as f64;
    let mean = nf * bad;
    let factor = (1.0 + lambda) / (1.0 - lambda)
        - 2.0 * lambda * (1.0 - lambda.powf(nf)) / (nf * (1.0 - lambda).powi(2));
    let variance = (nf * bad * (1.0 - bad) * factor).max(f64::MIN_POSITIVE);
    let z = (r as f64 + 0.5 - mean) / variance.sqrt();
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// `P(X > r)` for `X ~ Binomial(n, p)`, summed from the tail so that tiny
/// probabilities keep their precision.
pub fn binomial_tail(n: usize, p: f64, r: usize) -> f64 {
    if r >= n || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    // log of the pmf at i = r + 1, then the terms upward by their ratio.
    let i0 = r + 1;
    let mut log_pmf = ln_choose(n, i0) + i0 as f64 * p.ln() + (n - i0) as f64 * (-p).ln_1p();
    let ratio_base = p / (1.0 - p);
    let mut sum = 0.0;
    let mut i = i0;
    loop {
        let term = log_pmf.exp();
        sum += term;
        if i == n {
            break;
        }
        let mean = n as f64 * p;
        if (i as f64) > mean && term < sum * 1e-17 {
            break;
        }
        log_pmf += (((n - i) as f64) / ((i + 1) as f64) * ratio_base).ln();
        i += 1;
    }
    sum.clamp(0.0, 1.0)
}

/// `ln C(n, k)`.
fn ln_choose(n: usize, k: usize) -> f64 {
    let k = k.min(n - k);
    (1..=k)
        .map(|j| (((n - k + j) as f64) / j as f64).ln())
        .sum()
}

/// The complementary error function (Numerical Recipes' `erfcc`, relative
/// error below 1.2 × 10⁻⁷ everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// Probability that at least one of `blocks` independent blocks is lost.
pub fn session_loss(block_loss: f64, blocks: u64) -> f64 {
    if block_loss >= 1.0 {
        return 1.0;
    }
    -(blocks as f64 * (-block_loss).ln_1p()).exp_m1()
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
    /// The diode configuration (`base`, from the file, with the flags
    /// applied) and the loss model the flags describe.
    pub fn model(&self, base: DiodeConfig) -> Result<(DiodeConfig, LossModel), PlanError> {
        if let Some(mbit) = self.bandwidth
            && !(mbit > 0.0 && mbit.is_finite())
        {
            return Err(PlanError::Bandwidth);
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
            mtu: self.mtu.unwrap_or(base.mtu),
            block_size: self.block_size.unwrap_or(base.block_size),
            repair_percentage: self.repair_percentage.unwrap_or(base.repair_percentage),
            bandwidth: self
                .bandwidth
                .map_or(base.bandwidth, |mbit| (mbit * 1e6).round().max(1.0) as u64),
            max_blocks_in_flight: self
                .max_blocks_in_flight
                .unwrap_or(base.max_blocks_in_flight),
            max_sessions: self.max_sessions.unwrap_or(base.max_sessions),
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
    let _ = writeln!(s, "loss model: {model}; interleaving depth {}", args.depth);
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
        config.max_blocks_in_flight.max(args.depth)
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
    let settings = args.file.load()?;
    let (config, loss) = args.model(settings.diode).map_err(invalid)?;
    let plan =
        plan(&config, args.depth, args.overhead, loss, args.session_size).map_err(invalid)?;
    let asked = (settings.sender.send_buffer, settings.receiver.recv_buffer);
    out.write_all(report(args, &config, loss, &plan, asked).as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_plan(loss: LossModel, depth: usize) -> Plan {
        plan(&DiodeConfig::default(), depth, 1, loss, 1 << 30).unwrap()
    }

    #[test]
    fn the_block_matches_the_engine() {
        let p = default_plan(LossModel::Random { p: 0.0 }, 1);
        // 1500 − 81 rounded down to 8: the guide's figures.
        assert_eq!(p.symbol_size, 1416);
        assert_eq!(p.source_symbols, 371);
        assert_eq!(p.repair_symbols, 38);
        assert_eq!(p.session_blocks, 2048);
        assert_eq!(p.tolerated, 37);
        assert_eq!(p.longest_burst, 37);
    }

    #[test]
    fn zero_loss_loses_nothing() {
        let p = default_plan(LossModel::Random { p: 0.0 }, 1);
        assert_eq!(p.block_loss, 0.0);
        assert_eq!(p.session_loss, 0.0);
        let p = default_plan(
            LossModel::GilbertElliott {
                loss: 0.0,
                burst: 5.0,
            },
            4,
        );
        assert_eq!(p.block_loss, 0.0);
    }

    #[test]
    fn the_binomial_tail_matches_the_guides_table() {
        // Guide §3.5: K = 371, 1 % loss, 5 % repair, one symbol of
        // overhead: 3 × 10⁻⁸ per block.
        let r = (371usize * 5).div_ceil(100);
        let q = binomial_tail(371 + r, 0.01, r - 1);
        assert!((2.5e-8..3.5e-8).contains(&q), "{q}");
        let config = DiodeConfig {
            repair_percentage: 5,
            ..DiodeConfig::default()
        };
        let p = plan(&config, 1, 1, LossModel::Random { p: 0.01 }, 1 << 30).unwrap();
        assert!((p.block_loss - q).abs() < 1e-20, "{} {q}", p.block_loss);
        // The guide's GiB column: 1 GiB is 2048 blocks.
        assert!((4e-5..6e-5).contains(&p.session_loss), "{}", p.session_loss);
        // A small case by hand: P(Bin(3, 0.5) > 1) = 4/8.
        assert!((binomial_tail(3, 0.5, 1) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn the_chain_without_memory_is_the_binomial() {
        let (n, r, p) = (200, 10, 0.03);
        let exact = binomial_tail(n, p, r);
        let chain = markov_tail(n, r, p, p, p);
        assert!(
            (exact - chain).abs() < 1e-12 * exact.max(1e-300) + 1e-15,
            "{exact} {chain}"
        );
        // Through the public entry: random loss is the chain with λ = 0.
        let random = LossModel::Random { p };
        let (a, b) = random.transitions();
        assert!((block_loss(n, r, a, b, 1) - exact).abs() < 1e-15);
    }

    #[test]
    fn longer_bursts_lose_more() {
        let at =
            |burst| default_plan(LossModel::GilbertElliott { loss: 0.01, burst }, 1).block_loss;
        let random = default_plan(LossModel::Random { p: 0.01 }, 1).block_loss;
        assert!(random < at(2.0), "{random} {}", at(2.0));
        assert!(at(2.0) < at(10.0));
        assert!(at(10.0) < at(50.0));
    }

    #[test]
    fn more_repair_loses_less() {
        let at = |repair_percentage| {
            let config = DiodeConfig {
                repair_percentage,
                ..DiodeConfig::default()
            };
            plan(&config, 1, 1, LossModel::Random { p: 0.03 }, 1 << 30)
                .unwrap()
                .block_loss
        };
        assert!(at(5) > at(10));
        assert!(at(10) > at(20));
        assert!(at(20) > 0.0);
    }

    #[test]
    fn interleaving_spreads_bursts() {
        let bursty = LossModel::GilbertElliott {
            loss: 0.02,
            burst: 30.0,
        };
        let one = default_plan(bursty, 1);
        let four = default_plan(bursty, 4);
        assert!(
            four.block_loss < one.block_loss,
            "{} {}",
            four.block_loss,
            one.block_loss
        );
        assert_eq!(four.longest_burst, 4 * one.longest_burst);
        // Depth makes no difference to memoryless loss.
        let random = LossModel::Random { p: 0.05 };
        let (a, b) = (default_plan(random, 1), default_plan(random, 8));
        assert!((a.block_loss - b.block_loss).abs() <= 1e-12 * a.block_loss);
    }

    #[test]
    fn a_session_is_lost_if_any_block_is() {
        assert_eq!(session_loss(0.0, 1000), 0.0);
        assert!((session_loss(0.5, 2) - 0.75).abs() < 1e-15);
        // Tiny probabilities keep their precision.
        assert!((session_loss(1e-12, 1000) - 1e-9).abs() < 1e-18);
    }

    #[test]
    fn the_normal_approximation_is_close_to_the_exact_count() {
        let (n, r, bad, lambda) = (4000, 160, 0.03, 0.5);
        let to_bad = bad * (1.0 - lambda);
        let stay = bad + (1.0 - bad) * lambda;
        let exact = markov_tail(n, r, bad, to_bad, stay);
        let approx = markov_tail_normal(n, r, bad, lambda);
        assert!(exact > 1e-4 && exact < 0.5, "{exact}");
        assert!((approx / exact - 1.0).abs() < 0.5, "{exact} {approx}");
    }

    #[test]
    fn goodput_counts_repair_and_headers() {
        let p = default_plan(LossModel::Random { p: 0.0 }, 1);
        // 1 Gbit/s × 524288 / (409 × 1449).
        let expected = 1e9 * 524_288.0 / (409.0 * p.datagram_size as f64);
        assert!((p.goodput_bps - expected).abs() < 1.0);
        assert!(p.goodput_bps < 1e9 * 371.0 / 409.0);
    }

    #[test]
    fn flags_are_checked() {
        let args = |loss, burst| DiodePlanArgs {
            file: ConfigFile::default(),
            mtu: None,
            block_size: None,
            repair_percentage: Some(10),
            overhead: 1,
            depth: 1,
            loss,
            burst,
            session_size: 1 << 20,
            bandwidth: Some(100.0),
            max_blocks_in_flight: None,
            max_sessions: None,
        };
        let base = DiodeConfig::default;
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
