//! Delivery-rate estimation (draft-cheng-iccrg-delivery-rate-estimation).
//!
//! Each packet records, when it leaves, how much had been delivered by then
//! and when; when it is acknowledged, the bytes delivered since over the time
//! they took (the longer of the send and the ack intervals) is one sample of
//! the path's delivery rate. Samples taken while the sender had too little to
//! send are flagged application-limited: they show a lower bound, not the path.

use std::time::{Duration, Instant};

/// The delivery state a packet carries from its send to its ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PacketDelivery {
    /// Bytes delivered when the packet left.
    pub(crate) delivered: u64,
    /// When that much had been delivered.
    pub(crate) delivered_time: Instant,
    /// When the first packet of the flight this packet belongs to left.
    pub(crate) first_sent_time: Instant,
    /// The sender was application-limited when the packet left.
    pub(crate) app_limited: bool,
}

/// One delivery-rate sample, taken from one ack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RateSample {
    /// Bytes delivered over `interval`.
    pub(crate) delivered: u64,
    /// The sample's interval; `None` when it was shorter than the minimum
    /// RTT (acks bunched together say nothing about the path's rate).
    pub(crate) interval: Option<Duration>,
    /// Bytes delivered when the newest acknowledged packet left: a round trip
    /// ends when this reaches the total delivered at its start.
    pub(crate) prior_delivered: u64,
    /// Bytes delivered in total, this ack included.
    pub(crate) total_delivered: u64,
    /// The newest acknowledged packet left while application-limited.
    pub(crate) app_limited: bool,
}

impl RateSample {
    /// Bytes per second, if the sample has a usable interval.
    pub(crate) fn rate(&self) -> Option<u64> {
        let nanos = self.interval?.as_nanos().max(1);
        Some(u64::try_from(u128::from(self.delivered) * 1_000_000_000 / nanos).unwrap_or(u64::MAX))
    }
}

/// What the packets of one ack contribute to its sample.
#[derive(Debug, Default)]
pub(crate) struct Sampler {
    newest: Option<Newest>,
}

#[derive(Debug, Clone, Copy)]
struct Newest {
    prior_delivered: u64,
    send_elapsed: Duration,
    ack_elapsed: Duration,
    app_limited: bool,
}

/// The sender's delivery counters.
#[derive(Debug, Default)]
pub(crate) struct RateEstimator {
    delivered: u64,
    delivered_time: Option<Instant>,
    first_sent_time: Option<Instant>,
    /// Non-zero while application-limited: the delivered count at which the
    /// last application-limited packet will be acknowledged.
    app_limited_until: u64,
}

impl RateEstimator {
    /// Bytes acknowledged in total.
    #[cfg(test)]
    pub(crate) fn delivered(&self) -> u64 {
        self.delivered
    }

    /// A packet leaves at `now` with `in_flight_before` bytes already in flight.
    pub(crate) fn on_send(&mut self, now: Instant, in_flight_before: u64) -> PacketDelivery {
        if in_flight_before == 0 {
            // A new flight: its intervals start now, not at the last ack.
            self.first_sent_time = Some(now);
            self.delivered_time = Some(now);
        }
        PacketDelivery {
            delivered: self.delivered,
            delivered_time: self.delivered_time.unwrap_or(now),
            first_sent_time: self.first_sent_time.unwrap_or(now),
            app_limited: self.app_limited_until != 0,
        }
    }

    /// The sender has nothing to send though its window has room: samples
    /// until what is in flight now is acknowledged are application-limited.
    pub(crate) fn on_app_limited(&mut self, in_flight: u64) {
        self.app_limited_until = (self.delivered + in_flight).max(1);
    }

    /// A packet of `size` bytes sent at `sent` with state `p` was acknowledged.
    pub(crate) fn on_acked(
        &mut self,
        now: Instant,
        sent: Instant,
        size: u64,
        p: &PacketDelivery,
        sampler: &mut Sampler,
    ) {
        self.delivered += size;
        self.delivered_time = Some(now);
        if sampler
            .newest
            .is_none_or(|n| p.delivered >= n.prior_delivered)
        {
            sampler.newest = Some(Newest {
                prior_delivered: p.delivered,
                send_elapsed: sent.saturating_duration_since(p.first_sent_time),
                ack_elapsed: now.saturating_duration_since(p.delivered_time),
                app_limited: p.app_limited,
            });
            self.first_sent_time = Some(sent);
        }
    }

    /// The sample of the ack whose packets went through `sampler` (`None` if
    /// it acknowledged nothing); its rate is usable if its interval is at
    /// least `min_rtt`.
    pub(crate) fn finish(&mut self, sampler: Sampler, min_rtt: Duration) -> Option<RateSample> {
        if self.app_limited_until != 0 && self.delivered > self.app_limited_until {
            self.app_limited_until = 0;
        }
        let n = sampler.newest?;
        // The longer interval: a burst of acks cannot make the path look
        // faster than the sender sent, nor a burst of sends faster than acks came.
        let interval = n.send_elapsed.max(n.ack_elapsed);
        let interval = (!interval.is_zero() && interval >= min_rtt).then_some(interval);
        Some(RateSample {
            delivered: self.delivered - n.prior_delivered,
            interval,
            prior_delivered: n.prior_delivered,
            total_delivered: self.delivered,
            app_limited: n.app_limited,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_flow_measures_its_rate() {
        let t0 = crate::test_support::epoch();
        let mut est = RateEstimator::default();
        let ms = Duration::from_millis;
        // One 1000-byte packet per ms, each acked 50 ms after it left.
        let mut sent = Vec::new();
        let mut in_flight = 0;
        let mut last = None;
        for i in 0..200u64 {
            let now = t0 + ms(i);
            while let Some(&(at, p)) = sent.first() {
                let at: Instant = at;
                if at + ms(50) > now {
                    break;
                }
                sent.remove(0);
                let mut s = Sampler::default();
                est.on_acked(now, at, 1000, &p, &mut s);
                in_flight -= 1000;
                last = est.finish(s, ms(50));
            }
            let p = est.on_send(now, in_flight);
            in_flight += 1000;
            sent.push((now, p));
        }
        let sample = last.expect("a sample");
        assert!(!sample.app_limited);
        let rate = sample.rate().unwrap();
        assert!((950_000..=1_050_000).contains(&rate), "{rate}");
        assert_eq!(sample.total_delivered, est.delivered());
    }

    #[test]
    fn app_limited_marks_samples_until_delivered() {
        let t0 = crate::test_support::epoch();
        let mut est = RateEstimator::default();
        est.on_app_limited(0);
        let p = est.on_send(t0, 0);
        assert!(p.app_limited);
        let mut s = Sampler::default();
        let later = t0 + Duration::from_millis(10);
        est.on_acked(later, t0, 500, &p, &mut s);
        let sample = est.finish(s, Duration::from_millis(10)).unwrap();
        assert!(sample.app_limited);
        assert_eq!(sample.rate(), Some(50_000));
        // Delivered passed the mark: the next packet is not application-limited.
        assert!(!est.on_send(later, 0).app_limited);
    }

    #[test]
    fn interval_shorter_than_min_rtt_is_no_sample() {
        let t0 = crate::test_support::epoch();
        let mut est = RateEstimator::default();
        let p = est.on_send(t0, 0);
        let mut s = Sampler::default();
        est.on_acked(t0 + Duration::from_millis(5), t0, 500, &p, &mut s);
        let sample = est.finish(s, Duration::from_millis(10)).unwrap();
        assert_eq!(sample.rate(), None);
        assert_eq!(sample.total_delivered, 500);
    }
}
