//! Receive-window auto-tuning: credit that grows to the bandwidth-delay product.
//!
//! A receiver grants the peer `consumed + window` bytes of credit. A window
//! smaller than the path's bandwidth-delay product caps throughput at
//! `window / RTT`, however fast the link; a window far larger only lets a peer
//! make us buffer more. So each window starts at its configured size and
//! doubles, up to its configured maximum, whenever the application consumed
//! half a window in less than two round trips: a sign that credit, not the
//! link or the application, is what limits the flow. A flow the link limits
//! settles at a window of two to four times its bandwidth-delay product,
//! enough to ride out a lost packet's retransmission without stalling.

use std::time::{Duration, Instant};

/// One receive window (a session's or a stream's) and its growth.
#[derive(Debug, Clone)]
pub(crate) struct WindowTuner {
    window: u64,
    max: u64,
    /// When the current measurement began, and how much had been consumed then.
    epoch: Option<(Instant, u64)>,
}

impl WindowTuner {
    /// A window of `initial` bytes that may grow to `max` (at least `initial`).
    pub(crate) fn new(initial: u64, max: u64) -> Self {
        Self {
            window: initial,
            max: max.max(initial),
            epoch: None,
        }
    }

    /// The window now.
    pub(crate) fn window(&self) -> u64 {
        self.window
    }

    /// The most the window may grow to.
    pub(crate) fn max(&self) -> u64 {
        self.max
    }

    /// Called when credit is about to be advertised, with the total consumed
    /// so far and the smoothed RTT; grows the window when half of it was
    /// consumed within two round trips, and returns the window to grant.
    pub(crate) fn update(&mut self, now: Instant, consumed: u64, srtt: Duration) -> u64 {
        let Some((started, base)) = self.epoch else {
            self.epoch = Some((now, consumed));
            return self.window;
        };
        if consumed.saturating_sub(base) < self.window / 2 {
            return self.window;
        }
        if now.saturating_duration_since(started) < 2 * srtt && self.window < self.max {
            self.window = (self.window * 2).min(self.max);
            tracing::trace!(window = self.window, "receive window grown");
        }
        self.epoch = Some((now, consumed));
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn grows_when_credit_limits_and_stops_at_max() {
        let t0 = crate::test_support::epoch();
        let mut w = WindowTuner::new(1000, 4000);
        assert_eq!(w.update(t0, 0, 100 * MS), 1000);
        // Half a window within one RTT: credit limits, so the window doubles.
        assert_eq!(w.update(t0 + 50 * MS, 500, 100 * MS), 2000);
        assert_eq!(w.update(t0 + 60 * MS, 1500, 100 * MS), 4000);
        // Capped at the maximum.
        assert_eq!(w.update(t0 + 70 * MS, 3500, 100 * MS), 4000);
    }

    #[test]
    fn stays_when_the_link_is_slower_than_the_window() {
        let t0 = crate::test_support::epoch();
        let mut w = WindowTuner::new(1000, 1 << 30);
        w.update(t0, 0, 10 * MS);
        // Half a window per 30 ms with a 10 ms RTT: the window is not the limit.
        for i in 1..100u32 {
            assert_eq!(
                w.update(t0 + i * 30 * MS, u64::from(i) * 500, 10 * MS),
                1000
            );
        }
    }

    #[test]
    fn waits_for_half_a_window() {
        let t0 = crate::test_support::epoch();
        let mut w = WindowTuner::new(1000, 8000);
        w.update(t0, 0, 100 * MS);
        assert_eq!(w.update(t0 + MS, 499, 100 * MS), 1000);
        assert_eq!(w.update(t0 + 2 * MS, 500, 100 * MS), 2000);
    }
}
