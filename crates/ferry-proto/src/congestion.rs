//! Congestion control: how many bytes may be in flight.
//!
//! One controller today, [`NewReno`]-style (RFC 9002 §7): slow start, additive
//! increase, halving once per loss episode, collapse to the minimum window on a
//! retransmission timeout. The session caps its window by `Config::send_window`.

use std::time::Instant;

/// A congestion controller for one session.
#[derive(Debug, Clone)]
pub(crate) struct NewReno {
    window: u64,
    ssthresh: u64,
    /// Packets sent before this instant belong to an episode already reacted to.
    recovery_start: Option<Instant>,
    /// Bytes acknowledged in congestion avoidance since the window last grew.
    acked_in_ca: u64,
    mss: u64,
}

impl NewReno {
    pub(crate) fn new(mss: usize) -> Self {
        let mss = mss as u64;
        Self {
            window: (10 * mss).max(14_720),
            ssthresh: u64::MAX,
            recovery_start: None,
            acked_in_ca: 0,
            mss,
        }
    }

    pub(crate) fn window(&self) -> u64 {
        self.window
    }

    fn min_window(&self) -> u64 {
        2 * self.mss
    }

    fn in_recovery(&self, sent: Instant) -> bool {
        self.recovery_start.is_some_and(|start| sent <= start)
    }

    /// `bytes` of a packet sent at `sent` were acknowledged.
    pub(crate) fn on_ack(&mut self, sent: Instant, bytes: u64, app_limited: bool) {
        if self.in_recovery(sent) || app_limited {
            return;
        }
        if self.window < self.ssthresh {
            self.window += bytes;
        } else {
            self.acked_in_ca += bytes;
            if self.acked_in_ca >= self.window {
                self.acked_in_ca -= self.window;
                self.window += self.mss;
            }
        }
    }

    /// Packets were declared lost; `latest_sent` is when the newest of them left.
    pub(crate) fn on_loss(&mut self, now: Instant, latest_sent: Instant) {
        if self.in_recovery(latest_sent) {
            return;
        }
        self.recovery_start = Some(now);
        self.window = (self.window / 2).max(self.min_window());
        self.ssthresh = self.window;
        self.acked_in_ca = 0;
    }

    /// The retransmission timer expired: nothing got through for a whole RTO.
    pub(crate) fn on_timeout(&mut self, now: Instant) {
        self.ssthresh = (self.window / 2).max(self.min_window());
        self.window = self.min_window();
        self.recovery_start = Some(now);
        self.acked_in_ca = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn slow_start_then_halving() {
        let t0 = crate::test_support::epoch();
        let mut cc = NewReno::new(1000);
        let w0 = cc.window();
        cc.on_ack(t0, 1000, false);
        assert_eq!(cc.window(), w0 + 1000);
        let t1 = t0 + Duration::from_millis(10);
        cc.on_loss(t1, t0);
        assert_eq!(cc.window(), (w0 + 1000) / 2);
        // A second loss from the same episode does not halve again.
        cc.on_loss(t1 + Duration::from_millis(1), t0);
        assert_eq!(cc.window(), (w0 + 1000) / 2);
        // Congestion avoidance: one MSS per window of acks.
        let w = cc.window();
        let t2 = t1 + Duration::from_millis(1);
        for _ in 0..w.div_ceil(1000) {
            cc.on_ack(t2, 1000, false);
        }
        assert_eq!(cc.window(), w + 1000);
        cc.on_timeout(t2);
        assert_eq!(cc.window(), 2000);
    }
}
