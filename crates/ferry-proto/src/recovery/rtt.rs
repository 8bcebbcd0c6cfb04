//! Round-trip time estimation (RFC 6298 / RFC 9002 smoothing).

use std::time::Duration;

/// Smoothed RTT, its variation and the minimum seen, updated from ack samples.
#[derive(Debug, Clone)]
pub(crate) struct RttEstimator {
    latest: Duration,
    smoothed: Option<Duration>,
    var: Duration,
    min: Duration,
    initial: Duration,
}

impl RttEstimator {
    pub(crate) fn new(initial: Duration) -> Self {
        Self {
            latest: initial,
            smoothed: None,
            var: initial / 2,
            min: Duration::MAX,
            initial,
        }
    }

    /// Adds a sample: the time from sending a packet to receiving its ack, and the
    /// delay the peer reports it held the ack.
    pub(crate) fn update(&mut self, sample: Duration, ack_delay: Duration) {
        self.latest = sample;
        self.min = self.min.min(sample);
        // Subtract the peer's delay only where that leaves at least the minimum RTT.
        let adjusted = if sample >= self.min + ack_delay {
            sample - ack_delay
        } else {
            sample
        };
        match self.smoothed {
            None => {
                self.smoothed = Some(adjusted);
                self.var = adjusted / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(adjusted);
                self.var = (self.var * 3 + delta) / 4;
                self.smoothed = Some((srtt * 7 + adjusted) / 8);
            }
        }
    }

    /// Smoothed RTT (the initial guess before any sample).
    pub(crate) fn smoothed(&self) -> Duration {
        self.smoothed.unwrap_or(self.initial)
    }

    #[cfg(test)]
    pub(crate) fn latest(&self) -> Duration {
        self.latest
    }

    #[cfg(test)]
    pub(crate) fn var(&self) -> Duration {
        self.var
    }

    /// Smallest sample seen, or `None` before the first.
    pub(crate) fn min(&self) -> Option<Duration> {
        (self.min != Duration::MAX).then_some(self.min)
    }

    /// Retransmission timeout before backoff: srtt + 4·rttvar + the peer's ack
    /// delay, never below `floor`.
    pub(crate) fn rto(&self, max_ack_delay: Duration, floor: Duration) -> Duration {
        let granularity = Duration::from_millis(1);
        (self.smoothed() + (self.var * 4).max(granularity) + max_ack_delay).max(floor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The worked example of protocol.md §6.7.
    #[test]
    fn an_rto_after_one_20_ms_sample_is_70_ms() {
        let mut r = RttEstimator::new(Duration::from_millis(333));
        r.update(Duration::from_millis(20), Duration::ZERO);
        assert_eq!(r.smoothed(), Duration::from_millis(20));
        assert_eq!(r.var(), Duration::from_millis(10));
        let floor = Duration::from_millis(1);
        assert_eq!(
            r.rto(Duration::from_millis(10), floor),
            Duration::from_millis(70)
        );
    }

    #[test]
    fn converges() {
        let mut r = RttEstimator::new(Duration::from_millis(100));
        assert_eq!(r.smoothed(), Duration::from_millis(100));
        for _ in 0..50 {
            r.update(Duration::from_millis(20), Duration::ZERO);
        }
        assert!(r.smoothed().abs_diff(Duration::from_millis(20)) < Duration::from_millis(1));
        assert!(r.var() < Duration::from_millis(1));
        assert_eq!(r.min(), Some(Duration::from_millis(20)));
        let floor = Duration::from_millis(100);
        assert_eq!(r.rto(Duration::from_millis(10), floor), floor);
    }

    #[test]
    fn ack_delay_is_subtracted_only_when_plausible() {
        let mut r = RttEstimator::new(Duration::from_millis(100));
        r.update(Duration::from_millis(30), Duration::from_millis(10));
        assert_eq!(r.smoothed(), Duration::from_millis(30));
        r.update(Duration::from_millis(50), Duration::from_millis(10));
        assert_eq!(r.latest(), Duration::from_millis(50));
        // 50 - 10 = 40 enters the average.
        assert_eq!(
            r.smoothed(),
            (Duration::from_millis(30) * 7 + Duration::from_millis(40)) / 8
        );
    }
}
