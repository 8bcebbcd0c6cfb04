//! How long a burst the diode's interleaving survives, and how often a
//! session is lost to bursty loss, counted rather than decoded.
//!
//! A [`BurstModel`] lays out a session's datagrams in the order the
//! [`Sender`](ferry_proto::diode::Sender) sends them
//! ([`interleave_order`]: groups of `interleave_depth` blocks), lets a loss
//! pattern drop some, and counts what each block keeps: a block is lost when
//! fewer than its `K` source symbols' worth arrive, the receiver's own test
//! for attempting a decode. That is millions of datagrams a second where
//! coding them takes milliseconds a block, so it can sweep repair
//! percentages, depths and hundreds of 512 MB transfers; the engine itself
//! ([`DiodeNet`](super::DiodeNet), [`DiodeNet::drop_burst`](super::DiodeNet::drop_burst))
//! confirms its verdicts at their edges (the `diode_bursts` example and
//! `crates/ferry-proto/tests/diode.rs`).

use std::time::Instant;

use bytes::Bytes;
use ferry_proto::diode::{DiodeConfig, interleave_order};

use crate::link::{Link, LinkConfig, Loss};

/// A session's datagrams as the sender orders them, for counting losses.
#[derive(Debug, Clone)]
pub struct BurstModel {
    /// Source symbols per (full) block.
    k: usize,
    /// Datagrams per block, source and repair.
    total: usize,
    /// Datagrams of the last block, which holds only the trailer (one source
    /// symbol, and a full block's repair symbols).
    trailer_total: usize,
    depth: usize,
    /// Block index within the group of each datagram of a full group.
    order: Vec<usize>,
}

impl BurstModel {
    /// The model of sessions sent with `config`: full blocks of
    /// `block_size`, then the last block, which holds only the trailer.
    pub fn new(config: &DiodeConfig) -> Self {
        let k = config.block_size.div_ceil(config.symbol_size());
        let total = k + config.repair_symbols(k);
        let depth = config.interleave_depth;
        Self {
            k,
            total,
            trailer_total: 1 + config.repair_symbols(1),
            depth,
            order: interleave_order(&vec![total; depth]),
        }
    }

    /// Source symbols a block needs (`K`).
    pub fn needed(&self) -> usize {
        self.k
    }

    /// Datagrams each block is sent as.
    pub fn datagrams_per_block(&self) -> usize {
        self.total
    }

    /// Whether a session of `blocks` full blocks and its trailer block
    /// (`blocks * block_size` bytes, finished) loses no block when `lost(i)`
    /// says whether its `i`-th symbol datagram (from 0) is lost. Stops at
    /// the first group that loses a block.
    pub fn session_survives(&self, blocks: u64, mut lost: impl FnMut(u64) -> bool) -> bool {
        let mut at = 0u64;
        let mut received = vec![0usize; self.depth];
        let mut first = 0u64;
        let all = blocks + 1;
        while first < all {
            let n = (all - first).min(self.depth as u64) as usize;
            received[..n].fill(0);
            let with_trailer = first + n as u64 == all;
            if !with_trailer {
                for &b in &self.order {
                    received[b] += usize::from(!lost(at));
                    at += 1;
                }
            } else {
                let mut totals = vec![self.total; n];
                totals[n - 1] = self.trailer_total;
                for b in interleave_order(&totals) {
                    received[b] += usize::from(!lost(at));
                    at += 1;
                }
            }
            let needed = |b: usize| {
                if with_trailer && b == n - 1 {
                    1
                } else {
                    self.k
                }
            };
            if received[..n]
                .iter()
                .enumerate()
                .any(|(b, &r)| r < needed(b))
            {
                return false;
            }
            first += n as u64;
        }
        true
    }

    /// The longest burst of consecutive datagrams survived wherever it
    /// starts, over `positions` starting points drawn (from `seed`) in the
    /// first two groups, each checked by bisection: returns that length and
    /// the start at which the shortest fatal burst begins.
    pub fn longest_burst(&self, positions: usize, seed: u64) -> (u64, u64) {
        let group = (self.depth * self.total) as u64;
        let blocks = 4 * self.depth as u64 + 2;
        let mut x = seed | 1;
        let mut best = (u64::MAX, 0);
        for _ in 0..positions.max(1) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let start = x % (2 * group);
            // Survives `lo`, not `hi`.
            let (mut lo, mut hi) = (0u64, group + 1);
            while hi - lo > 1 {
                let mid = (lo + hi) / 2;
                if self.session_survives(blocks, |i| (start..start + mid).contains(&i)) {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
            if lo < best.0 {
                best = (lo, start);
            }
        }
        best
    }

    /// Of `transfers` sessions of `blocks` blocks each, how many lose a block
    /// over a link that loses datagrams by `loss` (its burst chain runs on
    /// from one transfer to the next, as on a real link), from `seed`.
    pub fn sessions_lost(&self, loss: Loss, blocks: u64, transfers: u32, seed: u64) -> u32 {
        let mut link = Link::new(LinkConfig::default().loss(loss), seed);
        let now = Instant::now();
        let mut lost_sessions = 0;
        for _ in 0..transfers {
            let survived = self.session_survives(blocks, |_| {
                let before = link.stats().lost;
                link.send(now, Bytes::new());
                while link.pop_arrival(now).is_some() {}
                link.stats().lost > before
            });
            lost_sessions += u32::from(!survived);
        }
        lost_sessions
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(repair: u32, depth: usize) -> DiodeConfig {
        DiodeConfig {
            repair_percentage: repair,
            interleave_depth: depth,
            max_blocks_in_flight: 2 * depth,
            ..DiodeConfig::default()
        }
    }

    #[test]
    fn a_burst_costs_each_block_of_the_group_its_share() {
        // 371 source and 38 repair symbols a block.
        let one = BurstModel::new(&config(10, 1));
        assert_eq!((one.needed(), one.datagrams_per_block()), (371, 409));
        assert_eq!(one.longest_burst(8, 1).0, 38);
        let four = BurstModel::new(&config(10, 4));
        assert_eq!(four.longest_burst(8, 1).0, 4 * 38);
    }

    #[test]
    fn random_loss_well_within_the_margin_loses_nothing() {
        let m = BurstModel::new(&config(10, 1));
        assert_eq!(m.sessions_lost(Loss::Random(0.01), 64, 4, 1), 0);
        assert_eq!(m.sessions_lost(Loss::Random(0.5), 64, 4, 1), 4);
    }
}
