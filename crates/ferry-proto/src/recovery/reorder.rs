//! How late a packet may arrive before it counts as lost: RACK's reordering
//! window (RFC 8985 §6.2), adapted as the path shows its reordering.
//!
//! Until reordering is seen on the path, a packet is lost once three later
//! packets were acknowledged, or a quarter of the minimum RTT after a later
//! one could have been (none at all in recovery). Once a packet is seen to
//! arrive after a later one, only time decides, and the window starts at a
//! quarter of the minimum RTT. Each loss that proves spurious (the packet's
//! own acknowledgement comes after all) widens it by another quarter, at most
//! once per round trip, up to the smoothed RTT; sixteen loss episodes without
//! a spurious one bring it back to a quarter.

use std::time::Duration;

use super::sent::LossRule;

/// The window grows to at most this many quarters of the minimum RTT (and
/// never beyond the smoothed RTT).
const MAX_QUARTERS: u32 = 8;
/// Rounds (loss episodes for the sender, repeat requests for the receiver) a
/// widened window lasts without another late packet.
const PERSIST_ROUNDS: u32 = 16;

/// A reordering window in quarters of the minimum RTT, never beyond the
/// smoothed RTT: widened by a quarter for each packet found late, and back
/// to one quarter after [`PERSIST_ROUNDS`] rounds without one. The sender's
/// loss detection and the receiver's repeat requests each keep one.
#[derive(Debug, Clone, Copy)]
pub(crate) struct WindowScale {
    quarters: u32,
    /// Rounds left before `quarters` returns to 1.
    persist: u32,
}

impl Default for WindowScale {
    fn default() -> Self {
        Self {
            quarters: 1,
            persist: 0,
        }
    }
}

impl WindowScale {
    /// A packet taken for lost was only late: wait a quarter longer.
    pub(crate) fn widen(&mut self) {
        self.quarters = (self.quarters + 1).min(MAX_QUARTERS);
        self.persist = PERSIST_ROUNDS;
    }

    /// A round passed: a widened window shrinks back after enough of them.
    pub(crate) fn decay(&mut self) {
        if self.persist > 0 {
            self.persist -= 1;
            if self.persist == 0 {
                self.quarters = 1;
            }
        }
    }

    /// Whether the window is back at its first size, with nothing to undo.
    pub(crate) fn is_base(&self) -> bool {
        self.quarters == 1 && self.persist == 0
    }

    /// The window for a path of `min_rtt` and `srtt`.
    pub(crate) fn window(&self, min_rtt: Duration, srtt: Duration) -> Duration {
        (min_rtt / 4 * self.quarters).min(srtt)
    }
}

/// One session's reordering state, as a sender.
#[derive(Debug, Clone)]
pub(crate) struct ReorderWindow {
    /// A packet arrived after one sent later: the path reorders.
    seen: bool,
    /// The window, widened by spurious losses, shrunk back by episodes.
    scale: WindowScale,
    /// No second widening until a packet numbered at least this is
    /// acknowledged: once per round trip.
    widen_after: u64,
    /// The round trip of the most recently sent packet acknowledged.
    rtt: Duration,
}

impl Default for ReorderWindow {
    fn default() -> Self {
        Self {
            seen: false,
            scale: WindowScale::default(),
            widen_after: 0,
            rtt: Duration::ZERO,
        }
    }
}

impl ReorderWindow {
    /// The newest packet an ack covered was sent `rtt` ago.
    pub(crate) fn on_rtt(&mut self, rtt: Duration) {
        self.rtt = rtt;
    }

    /// A packet was acknowledged after a packet sent later than it.
    pub(crate) fn on_reordered(&mut self) {
        self.seen = true;
    }

    /// A packet declared lost was acknowledged after all. `largest_acked` and
    /// `next_pn` date it, so that the window widens once per round trip.
    pub(crate) fn on_spurious(&mut self, largest_acked: u64, next_pn: u64) {
        self.seen = true;
        if largest_acked >= self.widen_after {
            self.scale.widen();
            self.widen_after = next_pn;
        }
    }

    /// A new loss episode began.
    pub(crate) fn on_episode(&mut self) {
        self.scale.decay();
    }

    /// The window now, for a path of `min_rtt` and `srtt`.
    pub(crate) fn window(&self, min_rtt: Duration, srtt: Duration) -> Duration {
        self.scale.window(min_rtt, srtt)
    }

    /// The rule loss detection applies now, `in_recovery` while a loss
    /// episode is under way.
    pub(crate) fn rule(
        &self,
        largest_acked: u64,
        min_rtt: Duration,
        srtt: Duration,
        in_recovery: bool,
    ) -> LossRule {
        let reorder_window = if !self.seen && in_recovery {
            Duration::ZERO
        } else {
            self.window(min_rtt, srtt)
        };
        LossRule {
            largest_acked,
            rtt: self.rtt,
            reorder_window,
            by_count: !self.seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_path_that_never_reordered_also_counts_three_later_packets() {
        let w = ReorderWindow::default();
        let rule = w.rule(10, 40 * MS, 40 * MS, false);
        assert!(rule.by_count);
        assert_eq!(rule.reorder_window, 10 * MS);
        assert_eq!(
            w.rule(10, 40 * MS, 40 * MS, true).reorder_window,
            Duration::ZERO
        );
    }

    #[test]
    fn once_reordering_is_seen_only_time_declares_a_loss() {
        let mut w = ReorderWindow::default();
        w.on_reordered();
        let rule = w.rule(10, 40 * MS, 40 * MS, true);
        assert!(!rule.by_count);
        assert_eq!(rule.reorder_window, 10 * MS, "a quarter of the minimum RTT");
    }

    #[test]
    fn spurious_losses_widen_the_window_once_per_round_trip_up_to_the_srtt() {
        let mut w = ReorderWindow::default();
        w.on_spurious(5, 20);
        assert_eq!(w.window(40 * MS, 100 * MS), 20 * MS);
        w.on_spurious(6, 21);
        assert_eq!(w.window(40 * MS, 100 * MS), 20 * MS, "same round trip");
        w.on_spurious(20, 40);
        assert_eq!(w.window(40 * MS, 100 * MS), 30 * MS);
        for round in 0..20 {
            w.on_spurious(40 + round * 20, 60 + round * 20);
        }
        assert_eq!(w.window(40 * MS, 60 * MS), 60 * MS, "never beyond the srtt");
        assert_eq!(w.window(40 * MS, 1000 * MS), 80 * MS, "at most 8 quarters");
    }

    #[test]
    fn a_widened_window_shrinks_back_after_sixteen_episodes() {
        let mut w = ReorderWindow::default();
        w.on_spurious(0, 10);
        w.on_spurious(10, 20);
        assert_eq!(w.window(40 * MS, 1000 * MS), 30 * MS);
        for _ in 0..15 {
            w.on_episode();
        }
        assert_eq!(w.window(40 * MS, 1000 * MS), 30 * MS);
        w.on_episode();
        assert_eq!(w.window(40 * MS, 1000 * MS), 10 * MS);
    }
}
