//! The planner's model: pure functions from the engine's parameters and a
//! loss model to the chance of losing a block or a session.
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

use ferry_diode::{BufferSide, buffer_needed};
use ferry_proto::diode::DiodeConfig;
use ferry_proto::diode::config::IP_UDP_OVERHEAD;

use super::PlanError;

/// Above this many steps the loss distribution is approximated by a normal
/// law rather than computed exactly (to stay within a second).
const MAX_EXACT_STEPS: usize = 50_000_000;

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
    // The engine's window (`DiodeConfig::blocks_in_flight`): at least two
    // interleaved groups, one being received while the previous decodes.
    let in_flight = config.max_blocks_in_flight.max(2 * depth) as u64;
    let sessions = config.max_sessions as u64;
    let block = config.block_size as u64;
    let encoded = (n * datagram_size) as u64;
    // Receiver: a block's symbols (repair accepted up to max(K, 16)) while
    // collecting, its data once rebuilt.
    let collected = ((k + r.min(k.max(16))) * symbol_size) as u64;
    let sender_memory = sessions * in_flight * (block + encoded);
    let receiver_memory = sessions * in_flight * collected.max(block);
    let mut warnings = Vec::new();
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
}
