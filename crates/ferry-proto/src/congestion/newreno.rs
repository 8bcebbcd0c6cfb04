//! NewReno (RFC 9002 §7): slow start, additive increase, halving once per
//! loss episode, collapse to the minimum window on persistent congestion.

use std::time::{Duration, Instant};

use super::{
    AckEvent, CongestionControl, Controller, LossEvent, MIN_WINDOW_PACKETS, initial_window,
    window_rate, window_used,
};

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
    /// Most bytes in flight since the last ack.
    peak_in_flight: u64,
    /// Window and threshold before the last reduction, while its losses may
    /// still prove spurious.
    before_reduction: Option<(u64, u64)>,
}

impl NewReno {
    pub(crate) fn new(mss: usize) -> Self {
        let mss = mss as u64;
        Self {
            window: initial_window(mss),
            ssthresh: u64::MAX,
            recovery_start: None,
            acked_in_ca: 0,
            mss,
            peak_in_flight: u64::MAX,
            before_reduction: None,
        }
    }

    fn min_window(&self) -> u64 {
        MIN_WINDOW_PACKETS * self.mss
    }

    fn in_recovery(&self, sent: Instant) -> bool {
        self.recovery_start.is_some_and(|start| sent <= start)
    }
}

impl Controller for NewReno {
    fn kind(&self) -> CongestionControl {
        CongestionControl::NewReno
    }

    fn window(&self) -> u64 {
        self.window
    }

    fn pacing_rate(&self, srtt: Duration) -> Option<u64> {
        // Twice the window per RTT in slow start (it doubles each RTT), 1.25
        // times after (RFC 9002 §7.7 suggests N = 1.25).
        let gain = if self.window < self.ssthresh {
            200
        } else {
            125
        };
        Some(window_rate(self.window, srtt, gain))
    }

    fn on_ack(&mut self, event: &AckEvent) {
        self.peak_in_flight = event.bytes_in_flight;
    }

    fn on_sent(&mut self, _now: Instant, _bytes: u64, bytes_in_flight: u64) {
        self.peak_in_flight = self.peak_in_flight.max(bytes_in_flight);
    }

    fn on_packet_acked(&mut self, _now: Instant, sent: Instant, bytes: u64) {
        if self.in_recovery(sent) || !window_used(self.peak_in_flight, self.window) {
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

    fn on_loss(&mut self, event: &LossEvent) {
        if self.in_recovery(event.largest_sent) {
            return;
        }
        self.recovery_start = Some(event.now);
        self.before_reduction = Some((self.window, self.ssthresh));
        self.window = (self.window / 2).max(self.min_window());
        self.ssthresh = self.window;
        self.acked_in_ca = 0;
    }

    fn undo_loss(&mut self) {
        if let Some((window, ssthresh)) = self.before_reduction.take() {
            self.window = self.window.max(window);
            self.ssthresh = ssthresh;
            self.recovery_start = None;
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        self.before_reduction = Some((self.window, self.ssthresh));
        self.ssthresh = (self.window / 2).max(self.min_window());
        self.window = self.min_window();
        self.recovery_start = Some(now);
        self.acked_in_ca = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(now: Instant, largest_sent: Instant) -> LossEvent {
        LossEvent {
            now,
            largest_sent,
            bytes_lost: 1000,
        }
    }

    #[test]
    fn slow_start_then_halving() {
        let t0 = crate::test_support::epoch();
        let mut cc = NewReno::new(1000);
        let w0 = cc.window();
        cc.on_packet_acked(t0, t0, 1000);
        assert_eq!(cc.window(), w0 + 1000);
        // A window less than half used does not grow.
        cc.on_ack(&AckEvent {
            now: t0,
            bytes_acked: 1000,
            bytes_in_flight: 1000,
            srtt: Duration::from_millis(100),
            rtt_sample: None,
            rate: None,
        });
        cc.on_packet_acked(t0, t0, 1000);
        assert_eq!(cc.window(), w0 + 1000);
        cc.on_sent(t0, 1000, w0);
        cc.on_packet_acked(t0, t0, 1000);
        assert_eq!(cc.window(), w0 + 2000);
        let rtt = Duration::from_millis(100);
        assert_eq!(cc.pacing_rate(rtt), Some((w0 + 2000) * 20));
        let t1 = t0 + Duration::from_millis(10);
        cc.on_loss(&loss(t1, t0));
        assert_eq!(cc.window(), (w0 + 2000) / 2);
        assert_eq!(cc.pacing_rate(rtt), Some((w0 + 2000) / 2 * 125 / 10));
        // A second loss from the same episode does not halve again.
        cc.on_loss(&loss(t1 + Duration::from_millis(1), t0));
        assert_eq!(cc.window(), (w0 + 2000) / 2);
        // Congestion avoidance: one MSS per window of acks.
        let w = cc.window();
        let t2 = t1 + Duration::from_millis(1);
        for _ in 0..w.div_ceil(1000) {
            cc.on_packet_acked(t2, t2, 1000);
        }
        assert_eq!(cc.window(), w + 1000);
        cc.on_timeout(t2);
        assert_eq!(cc.window(), 2000);
    }
}
