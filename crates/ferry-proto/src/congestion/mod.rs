//! Congestion control and pacing: how many bytes may be in flight, and how
//! fast they may leave.
//!
//! A session owns one [`Controller`], chosen by
//! [`Config::congestion`](crate::Config::congestion) through
//! [`CongestionControl`], and one [`Pacer`]. The session reports every
//! acknowledged and lost packet, ack by ack, with a delivery-rate sample
//! ([`rate`]); the controller answers with a window and a pacing rate.
//!
//! - [`NewReno`] (RFC 9002 §7): slow start, one MSS per RTT, halving per loss episode.
//! - [`Cubic`] (RFC 9438): a cubic window curve around the last loss, a
//!   Reno-friendly region, fast convergence.
//! - [`Bbr`]: a model of the path (bottleneck bandwidth and minimum RTT)
//!   from delivery-rate samples; the window is a multiple of the
//!   bandwidth-delay product, and random loss does not shrink it.
//!
//! The trait is crate-private: the three controllers cover the cases Ferry
//! targets, and a public trait would freeze the shape of the samples before
//! it has been tried on a real deployment.

use std::fmt;
use std::time::{Duration, Instant};

mod bbr;
mod cubic;
mod newreno;
mod pacer;
pub(crate) mod rate;

pub(crate) use bbr::Bbr;
pub(crate) use cubic::Cubic;
pub(crate) use newreno::NewReno;
pub(crate) use pacer::Pacer;
pub(crate) use rate::RateSample;

/// Which congestion controller a session runs. Chosen per endpoint in
/// [`Config::congestion`](crate::Config::congestion).
///
/// Measured in Ferry's simulator (100 Mbit/s, 1 MiB bottleneck queue, random
/// loss; see `docs/guide.md`), BBR keeps the link busy under random loss where
/// the loss-based controllers slow to a crawl, so it is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum CongestionControl {
    /// NewReno (RFC 9002 §7): the classic loss-based window. Doubles per RTT in
    /// slow start, then grows one packet per RTT and halves once per loss
    /// episode. Fair to TCP Reno and predictable, but each random loss halves
    /// the rate: at 1% loss on a 100 ms path it delivers about 1% of 100 Mbit/s.
    NewReno,
    /// CUBIC (RFC 9438): loss-based like NewReno, but the window follows a
    /// cubic curve in time since the last loss, so it regains a large window
    /// in seconds rather than minutes on long fat paths, and backs off by 30%
    /// instead of half. Coexists with TCP CUBIC (the Linux default). Random
    /// loss still limits it.
    Cubic,
    /// BBR: estimates the bottleneck bandwidth (a windowed maximum of delivery
    /// rate samples) and the minimum RTT, paces at that bandwidth and keeps
    /// about two bandwidth-delay products in flight. Random loss does not
    /// shrink it; a loss rate well above the path's usual one while probing
    /// for more bandwidth caps its inflight. The default: it keeps 90% and more
    /// of a lossy link busy where NewReno and CUBIC collapse, and its pacing
    /// keeps bottleneck queues short.
    #[default]
    Bbr,
}

impl CongestionControl {
    /// The controller's name, as logs and statistics show it.
    pub fn name(self) -> &'static str {
        match self {
            Self::NewReno => "newreno",
            Self::Cubic => "cubic",
            Self::Bbr => "bbr",
        }
    }

    /// A fresh controller of this kind for packets of `mss` bytes; `seed`
    /// varies its few arbitrary choices between sessions.
    pub(crate) fn build(self, mss: usize, seed: u64) -> Box<dyn Controller> {
        match self {
            Self::NewReno => Box::new(NewReno::new(mss)),
            Self::Cubic => Box::new(Cubic::new(mss)),
            Self::Bbr => Box::new(Bbr::new(mss, seed)),
        }
    }
}

impl fmt::Display for CongestionControl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The smallest window any controller allows, in packets.
pub(crate) const MIN_WINDOW_PACKETS: u64 = 2;

/// The initial window: ten packets, at least 14 720 bytes (RFC 9002 §7.2).
pub(crate) fn initial_window(mss: u64) -> u64 {
    (10 * mss).max(14_720)
}

/// What one acknowledgement told, after every packet it covered was reported
/// with [`Controller::on_packet_acked`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct AckEvent {
    pub(crate) now: Instant,
    /// Bytes newly acknowledged by this ack.
    pub(crate) bytes_acked: u64,
    /// Bytes in flight after the ack (and any losses it revealed).
    pub(crate) bytes_in_flight: u64,
    /// Smoothed RTT.
    pub(crate) srtt: Duration,
    /// The RTT sample this ack gave, if it acknowledged the newest packet.
    pub(crate) rtt_sample: Option<Duration>,
    /// A delivery-rate sample, if the ack acknowledged anything.
    pub(crate) rate: Option<RateSample>,
}

/// Packets the session declared lost at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LossEvent {
    pub(crate) now: Instant,
    /// When the newest of the lost packets was sent.
    pub(crate) largest_sent: Instant,
    /// Bytes declared lost.
    pub(crate) bytes_lost: u64,
}

/// A congestion controller for one session.
///
/// Calls come in this order for each ack: `on_packet_acked` for each newly
/// acknowledged packet, `on_loss` if the ack revealed losses, then
/// `on_ack`. Every method is cheap and never fails; the state is a fixed
/// handful of numbers.
pub(crate) trait Controller: fmt::Debug + Send + Sync {
    /// Which controller this is.
    fn kind(&self) -> CongestionControl;
    /// A packet of `bytes` left at `now`, with `bytes_in_flight` in flight
    /// (itself included).
    fn on_sent(&mut self, _now: Instant, _bytes: u64, _bytes_in_flight: u64) {}
    /// A packet sent at `sent` of `bytes` was acknowledged.
    fn on_packet_acked(&mut self, now: Instant, sent: Instant, bytes: u64);
    /// The ack as a whole (after its packets and losses were reported).
    fn on_ack(&mut self, _event: &AckEvent) {}
    /// Packets were declared lost (by the ack threshold, a repeat request or
    /// the loss timer).
    fn on_loss(&mut self, event: &LossEvent);
    /// Every loss of the last episode proved spurious (the packets were late,
    /// not lost): undo the response to it, as Linux does, keeping what was
    /// learned since.
    fn undo_loss(&mut self);
    /// Nothing was acknowledged for two retransmission timeouts: every packet
    /// in flight was declared lost (persistent congestion).
    fn on_timeout(&mut self, now: Instant);
    /// The congestion window, bytes.
    fn window(&self) -> u64;
    /// The rate packets may leave at, bytes per second; `None` to leave them
    /// unpaced.
    fn pacing_rate(&self, srtt: Duration) -> Option<u64>;
    /// The controller's estimate of the path's bottleneck bandwidth, bytes per
    /// second, if it keeps one.
    fn bandwidth(&self) -> Option<u64> {
        None
    }
}

/// Whether a loss-based window is in use: it grows only if at least half of
/// it was in flight since the last ack (RFC 9002 §7.8: a window the sender
/// does not fill says nothing about the path, and growing it invites a burst).
pub(crate) fn window_used(peak_in_flight: u64, window: u64) -> bool {
    peak_in_flight.saturating_mul(2) >= window
}

/// The pacing rate of a window-based controller: the window spread over the
/// smoothed RTT, times `gain_percent` / 100.
pub(crate) fn window_rate(window: u64, srtt: Duration, gain_percent: u64) -> u64 {
    let nanos = srtt.as_nanos().max(1_000);
    let rate = u128::from(window) * u128::from(gain_percent) * 10_000_000 / nanos;
    u64::try_from(rate).unwrap_or(u64::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn window_rate_is_window_per_rtt() {
        let r = window_rate(100_000, Duration::from_millis(100), 100);
        assert_eq!(r, 1_000_000);
        assert_eq!(
            window_rate(100_000, Duration::from_millis(100), 200),
            2_000_000
        );
        assert!(window_rate(u64::MAX, Duration::ZERO, 200) > 0);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Sent(u16),
        Acked(u16, bool),
        Lost(u16),
        Timeout,
        Wait(u16),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (1u16..1500).prop_map(Op::Sent),
            4 => ((1u16..1500), any::<bool>()).prop_map(|(b, a)| Op::Acked(b, a)),
            1 => (1u16..1500).prop_map(Op::Lost),
            1 => Just(Op::Timeout),
            2 => (0u16..500).prop_map(Op::Wait),
        ]
    }

    proptest! {
        /// Whatever acks, losses and timeouts come, no controller's window drops
        /// below the minimum, and every pacing rate is positive.
        #[test]
        fn window_never_below_minimum(
            kind in prop_oneof![
                Just(CongestionControl::NewReno),
                Just(CongestionControl::Cubic),
                Just(CongestionControl::Bbr),
            ],
            ops in proptest::collection::vec(op(), 1..300),
        ) {
            let mss = 1200u64;
            let mut cc = kind.build(mss as usize, 7);
            let mut now = crate::test_support::epoch();
            let mut in_flight = 0u64;
            let mut delivered = 0u64;
            for op in ops {
                match op {
                    Op::Sent(b) => {
                        in_flight += u64::from(b);
                        cc.on_sent(now, u64::from(b), in_flight);
                    }
                    Op::Acked(b, app) => {
                        let b = u64::from(b).min(in_flight);
                        in_flight -= b;
                        delivered += b;
                        let sent = now.checked_sub(Duration::from_millis(20)).unwrap_or(now);
                        cc.on_packet_acked(now, sent, b);
                        cc.on_ack(&AckEvent {
                            now,
                            bytes_acked: b,
                            bytes_in_flight: in_flight,
                            srtt: Duration::from_millis(20),
                            rtt_sample: Some(Duration::from_millis(20)),
                            rate: Some(RateSample {
                                delivered: b.max(1),
                                interval: Some(Duration::from_millis(20)),
                                prior_delivered: delivered.saturating_sub(in_flight + b),
                                total_delivered: delivered,
                                app_limited: app,
                            }),
                        });
                    }
                    Op::Lost(b) => {
                        let b = u64::from(b).min(in_flight);
                        in_flight -= b;
                        cc.on_loss(&LossEvent {
                            now,
                            largest_sent: now,
                            bytes_lost: b,
                        });
                    }
                    Op::Timeout => {
                        in_flight = 0;
                        cc.on_timeout(now);
                    }
                    Op::Wait(ms) => now += Duration::from_millis(u64::from(ms)),
                }
                prop_assert!(cc.window() >= MIN_WINDOW_PACKETS * mss, "{:?}", cc);
                if let Some(rate) = cc.pacing_rate(Duration::from_millis(20)) {
                    prop_assert!(rate > 0);
                }
            }
        }
    }
}
