//! CUBIC (RFC 9438).
//!
//! After a loss the window drops to β = 0.7 of itself and then follows
//! `W(t) = C·(t − K)³ + W_max` (in packets, `t` in seconds since the
//! reduction): concave up to the window where the loss happened, flat near
//! it, convex beyond — quick to regain a large window, careful around the
//! last known limit. Where a Reno flow would have grown faster (short RTTs,
//! small windows), the window follows that Reno estimate instead (the
//! Reno-friendly region). Fast convergence lowers `W_max` further when the
//! window shrank since the previous loss, so that a newer flow gets its share.

use std::time::{Duration, Instant};

use super::{
    AckEvent, CongestionControl, Controller, LossEvent, MIN_WINDOW_PACKETS, initial_window,
    window_rate, window_used,
};

/// The cubic curve's scale, packets per second³ (RFC 9438 §5.1).
const C: f64 = 0.4;
/// Multiplicative decrease (RFC 9438 §4.6).
const BETA: f64 = 0.7;

/// A CUBIC controller for one session.
#[derive(Debug, Clone)]
pub(crate) struct Cubic {
    window: u64,
    ssthresh: u64,
    mss: u64,
    /// Most bytes in flight since the last ack.
    peak_in_flight: u64,
    /// Packets sent before this instant belong to an episode already reacted to.
    recovery_start: Option<Instant>,
    /// The window just before the last reduction (W_max), bytes.
    w_max: f64,
    /// The window before the last reduction, for the Reno-friendly slope.
    cwnd_prior: f64,
    /// When the current congestion-avoidance epoch began.
    epoch_start: Option<Instant>,
    /// Seconds from the epoch's start for the curve to reach `w_max`.
    k: f64,
    /// The window a Reno flow would have now (W_est), bytes.
    w_est: f64,
    /// The latest smoothed RTT, for the curve's one-RTT look-ahead.
    srtt: Duration,
    /// The state before the last reduction, while its losses may still prove
    /// spurious.
    before_reduction: Option<Box<Cubic>>,
}

impl Cubic {
    pub(crate) fn new(mss: usize) -> Self {
        let mss = mss as u64;
        Self {
            window: initial_window(mss),
            ssthresh: u64::MAX,
            mss,
            peak_in_flight: u64::MAX,
            recovery_start: None,
            w_max: 0.0,
            cwnd_prior: 0.0,
            epoch_start: None,
            k: 0.0,
            w_est: 0.0,
            srtt: Duration::from_millis(100),
            before_reduction: None,
        }
    }

    fn min_window(&self) -> u64 {
        MIN_WINDOW_PACKETS * self.mss
    }

    fn in_recovery(&self, sent: Instant) -> bool {
        self.recovery_start.is_some_and(|start| sent <= start)
    }

    /// The cubic curve at `t` seconds into the epoch, bytes.
    fn w_cubic(&self, t: f64) -> f64 {
        let d = t - self.k;
        C * self.mss as f64 * d * d * d + self.w_max
    }

    /// Starts a congestion-avoidance epoch at `now`.
    fn start_epoch(&mut self, now: Instant) {
        self.epoch_start = Some(now);
        let cwnd = self.window as f64;
        if cwnd < self.w_max {
            self.k = ((self.w_max - cwnd) / (C * self.mss as f64)).cbrt();
        } else {
            self.k = 0.0;
            self.w_max = cwnd;
        }
        self.w_est = cwnd;
    }

    fn reduce(&mut self, now: Instant) {
        let mut before = self.clone();
        before.before_reduction = None;
        self.before_reduction = Some(Box::new(before));
        let cwnd = self.window as f64;
        self.cwnd_prior = cwnd;
        // Fast convergence: a window that shrank since the last loss releases
        // bandwidth to newer flows by aiming lower.
        self.w_max = if cwnd < self.w_max {
            cwnd * (1.0 + BETA) / 2.0
        } else {
            cwnd
        };
        self.window = ((cwnd * BETA) as u64).max(self.min_window());
        self.ssthresh = self.window;
        self.recovery_start = Some(now);
        self.epoch_start = None;
    }
}

impl Controller for Cubic {
    fn kind(&self) -> CongestionControl {
        CongestionControl::Cubic
    }

    fn window(&self) -> u64 {
        self.window
    }

    fn pacing_rate(&self, srtt: Duration) -> Option<u64> {
        let gain = if self.window < self.ssthresh {
            200
        } else {
            125
        };
        Some(window_rate(self.window, srtt, gain))
    }

    fn on_ack(&mut self, event: &AckEvent) {
        self.srtt = event.srtt;
        self.peak_in_flight = event.bytes_in_flight;
    }

    fn on_sent(&mut self, _now: Instant, _bytes: u64, bytes_in_flight: u64) {
        self.peak_in_flight = self.peak_in_flight.max(bytes_in_flight);
    }

    fn on_packet_acked(&mut self, now: Instant, sent: Instant, bytes: u64) {
        if self.in_recovery(sent) || !window_used(self.peak_in_flight, self.window) {
            return;
        }
        if self.window < self.ssthresh {
            self.window += bytes;
            return;
        }
        let Some(epoch) = self.epoch_start else {
            self.start_epoch(now);
            return self.on_packet_acked(now, sent, bytes);
        };
        let cwnd = self.window as f64;
        let acked = bytes as f64;
        // Reno-friendly estimate: α per RTT until it passes the window before
        // the reduction, one packet per RTT after (RFC 9438 §4.3).
        let alpha = if self.w_est < self.cwnd_prior {
            3.0 * (1.0 - BETA) / (1.0 + BETA)
        } else {
            1.0
        };
        self.w_est += alpha * acked / cwnd * self.mss as f64;
        let t = now.saturating_duration_since(epoch).as_secs_f64();
        if self.w_cubic(t) < self.w_est {
            self.window = self.window.max(self.w_est as u64);
            return;
        }
        let target = self
            .w_cubic(t + self.srtt.as_secs_f64())
            .clamp(cwnd, 1.5 * cwnd);
        let grow = (target - cwnd) * acked / cwnd;
        self.window = ((cwnd + grow) as u64).max(self.window);
    }

    fn on_loss(&mut self, event: &LossEvent) {
        if self.in_recovery(event.largest_sent) {
            return;
        }
        self.reduce(event.now);
    }

    fn undo_loss(&mut self) {
        if let Some(before) = self.before_reduction.take() {
            // Back to the curve before the reduction, keeping what the
            // window gained since.
            let window = self.window.max(before.window);
            let srtt = self.srtt;
            *self = *before;
            self.window = window;
            self.srtt = srtt;
        }
    }

    fn on_timeout(&mut self, now: Instant) {
        self.reduce(now);
        self.window = self.min_window();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(now: Instant) -> LossEvent {
        LossEvent {
            now,
            largest_sent: now,
            bytes_lost: 1000,
        }
    }

    #[test]
    fn slow_start_then_beta() {
        let t0 = crate::test_support::epoch();
        let mut cc = Cubic::new(1000);
        let w0 = cc.window();
        cc.on_packet_acked(t0, t0, 5000);
        assert_eq!(cc.window(), w0 + 5000);
        let t1 = t0 + Duration::from_millis(1);
        cc.on_loss(&loss(t1));
        assert_eq!(cc.window(), ((w0 + 5000) as f64 * BETA) as u64);
        // The same episode does not reduce twice.
        cc.on_loss(&LossEvent {
            largest_sent: t0,
            ..loss(t1)
        });
        assert_eq!(cc.window(), ((w0 + 5000) as f64 * BETA) as u64);
    }

    #[test]
    fn curve_math() {
        let t0 = crate::test_support::epoch();
        let mut cc = Cubic::new(1000);
        cc.window = 100_000;
        cc.ssthresh = 0;
        cc.reduce(t0);
        assert_eq!(cc.window, 70_000);
        assert_eq!(cc.w_max, 100_000.0);
        cc.start_epoch(t0);
        // K = cbrt(W_max (1 - β) / C) with windows in packets: cbrt(30 / 0.4).
        let k = (30.0f64 / 0.4).cbrt();
        assert!((cc.k - k).abs() < 1e-9, "{}", cc.k);
        assert!((cc.w_cubic(0.0) - 70_000.0).abs() < 1e-6);
        assert!((cc.w_cubic(k) - 100_000.0).abs() < 1e-6);
        // Symmetric around K: as far below W_max before it as above after.
        let below = 100_000.0 - cc.w_cubic(k - 1.0);
        let above = cc.w_cubic(k + 1.0) - 100_000.0;
        assert!((below - above).abs() < 1e-6 && (below - 400.0).abs() < 1e-6);
    }

    #[test]
    fn fast_convergence_lowers_w_max() {
        let t0 = crate::test_support::epoch();
        let mut cc = Cubic::new(1000);
        cc.window = 100_000;
        cc.reduce(t0);
        // A second loss before the window regained W_max.
        cc.reduce(t0 + Duration::from_secs(1));
        assert_eq!(cc.w_max, 70_000.0 * (1.0 + BETA) / 2.0);
        assert_eq!(cc.window, 49_000);
    }

    #[test]
    fn grows_back_to_w_max_in_about_k_seconds() {
        let t0 = crate::test_support::epoch();
        let mut cc = Cubic::new(1000);
        cc.window = 1_000_000;
        cc.reduce(t0);
        let k = (300.0f64 / 0.4).cbrt(); // ≈ 9.1 s
        // 100 ms RTT (Reno would need a minute), acks for a full window every RTT.
        let rtt = Duration::from_millis(100);
        let mut now = t0 + Duration::from_millis(1);
        let mut reached = None;
        while now < t0 + Duration::from_secs(15) {
            cc.on_ack(&AckEvent {
                now,
                bytes_acked: 0,
                bytes_in_flight: u64::MAX,
                srtt: rtt,
                rtt_sample: None,
                rate: None,
            });
            let w = cc.window();
            for _ in 0..w / 1000 {
                cc.on_packet_acked(now, now, 1000);
            }
            if reached.is_none() && cc.window() >= 1_000_000 {
                reached = Some((now - t0).as_secs_f64());
            }
            now += rtt;
        }
        let reached = reached.expect("reaches W_max");
        // Per-ack steps towards a flat curve lag it a little.
        assert!((reached - k).abs() < 1.5, "reached at {reached}, K = {k}");
        assert!(cc.window() > 1_000_000, "grows beyond (convex region)");
    }

    #[test]
    fn reno_friendly_region_on_short_rtt_small_window() {
        let t0 = crate::test_support::epoch();
        let mut cc = Cubic::new(1000);
        cc.window = 20_000;
        cc.reduce(t0);
        let w = cc.window();
        // With 1 ms RTT a Reno flow grows ~0.53 packets per RTT up to the old
        // window, one per RTT after (≈ 95 packets in 100 RTTs); the cubic
        // curve in 100 ms barely moves: the window follows Reno.
        let rtt = Duration::from_millis(1);
        let mut now = t0 + rtt;
        for _ in 0..100 {
            let win = cc.window();
            for _ in 0..win / 1000 {
                cc.on_packet_acked(now, now, 1000);
            }
            now += rtt;
        }
        let grown = cc.window() - w;
        assert!((85_000..=100_000).contains(&grown), "grew {grown}");
    }
}
