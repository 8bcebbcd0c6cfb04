//! Pacing: a token bucket that lets packets leave at the controller's rate,
//! with a small burst allowance so that a driver can still hand several
//! datagrams to the kernel at once (GSO, sendmmsg) and so that a timer that
//! wakes a little late does not cost throughput.

use std::time::{Duration, Instant};

/// The burst allowance covers this much time at the pacing rate…
const BURST_INTERVAL: Duration = Duration::from_millis(2);
/// …but at least this many packets…
const MIN_BURST_PACKETS: u64 = 10;
/// …and at most this many.
const MAX_BURST_PACKETS: u64 = 128;

const NANOS: u128 = 1_000_000_000;
/// The longest the pacer ever holds a packet (whatever the rate says).
const MAX_WAIT: Duration = Duration::from_secs(1);

/// Releases bytes at a rate, up to a burst at once.
#[derive(Debug, Clone)]
pub(crate) struct Pacer {
    /// Tokens in byte-nanoseconds (bytes × 10⁹), so that refilling at any rate
    /// over any interval loses nothing to rounding.
    tokens: u128,
    last: Option<Instant>,
    mss: u64,
    rate: u64,
}

impl Pacer {
    pub(crate) fn new(mss: usize) -> Self {
        let mss = mss as u64;
        Self {
            tokens: u128::from(MIN_BURST_PACKETS * mss) * NANOS,
            last: None,
            mss,
            rate: 0,
        }
    }

    /// The rate packets leave at, bytes per second (0: unpaced).
    pub(crate) fn rate(&self) -> u64 {
        self.rate
    }

    /// The most bytes the pacer releases at once.
    pub(crate) fn burst(&self) -> u64 {
        let by_time = u128::from(self.rate) * BURST_INTERVAL.as_nanos() / NANOS;
        let by_time = u64::try_from(by_time).unwrap_or(u64::MAX);
        by_time.clamp(MIN_BURST_PACKETS * self.mss, MAX_BURST_PACKETS * self.mss)
    }

    fn refill(&mut self, now: Instant) {
        let cap = u128::from(self.burst()) * NANOS;
        if let Some(last) = self.last {
            let elapsed = now.saturating_duration_since(last).as_nanos();
            self.tokens = self
                .tokens
                .saturating_add(elapsed.saturating_mul(u128::from(self.rate)));
        }
        self.tokens = self.tokens.min(cap);
        self.last = Some(now.max(self.last.unwrap_or(now)));
    }

    /// Sets the rate (bytes per second; `None` for no pacing) from `now` on.
    pub(crate) fn set_rate(&mut self, now: Instant, rate: Option<u64>) {
        let rate = rate.unwrap_or(0);
        if rate != self.rate {
            // Tokens earned so far are earned at the old rate.
            self.refill(now);
            self.rate = rate;
        }
    }

    /// When a packet of `size` bytes may leave: `None` if it may leave now.
    pub(crate) fn release_time(&mut self, now: Instant, size: u64) -> Option<Instant> {
        if self.rate == 0 {
            return None;
        }
        self.refill(now);
        let need = u128::from(size.min(self.burst())) * NANOS;
        if self.tokens >= need {
            return None;
        }
        let wait = (need - self.tokens).div_ceil(u128::from(self.rate));
        let wait = Duration::from_nanos(u64::try_from(wait).unwrap_or(u64::MAX)).min(MAX_WAIT);
        Some(now.checked_add(wait).unwrap_or(now))
    }

    /// A packet of `size` bytes left at `now`.
    pub(crate) fn on_sent(&mut self, now: Instant, size: u64) {
        if self.rate == 0 {
            return;
        }
        self.refill(now);
        self.tokens = self.tokens.saturating_sub(u128::from(size) * NANOS);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn unpaced_never_waits() {
        let t0 = crate::test_support::epoch();
        let mut p = Pacer::new(1000);
        for _ in 0..1000 {
            assert_eq!(p.release_time(t0, 1000), None);
            p.on_sent(t0, 1000);
        }
    }

    #[test]
    fn burst_then_rate() {
        let t0 = crate::test_support::epoch();
        let mut p = Pacer::new(1000);
        // 1 MB/s: a 1000-byte packet per millisecond; burst of 10 packets.
        p.set_rate(t0, Some(1_000_000));
        assert_eq!(p.burst(), 10_000);
        for _ in 0..10 {
            assert_eq!(p.release_time(t0, 1000), None);
            p.on_sent(t0, 1000);
        }
        let at = p.release_time(t0, 1000).expect("the burst is spent");
        assert_eq!(at, t0 + Duration::from_millis(1));
        // Half-way there, the wait is the rest.
        let half = t0 + Duration::from_micros(500);
        assert_eq!(p.release_time(half, 1000), Some(at));
        assert_eq!(p.release_time(at, 1000), None);
        p.on_sent(at, 1000);
        assert_eq!(
            p.release_time(at, 1000),
            Some(at + Duration::from_millis(1))
        );
        // A long idle refills only up to the burst.
        let idle = at + Duration::from_secs(10);
        for _ in 0..10 {
            assert_eq!(p.release_time(idle, 1000), None);
            p.on_sent(idle, 1000);
        }
        assert!(p.release_time(idle, 1000).is_some());
    }

    #[test]
    fn burst_scales_with_rate_within_bounds() {
        let t0 = crate::test_support::epoch();
        let mut p = Pacer::new(1000);
        p.set_rate(t0, Some(25_000_000)); // 2 ms = 50 000 bytes
        assert_eq!(p.burst(), 50_000);
        p.set_rate(t0, Some(u64::MAX));
        assert_eq!(p.burst(), 128_000);
    }

    proptest! {
        /// Over any schedule of attempts, the pacer never lets out more than
        /// the burst plus rate × elapsed time.
        #[test]
        fn never_more_than_burst_plus_rate(
            rate in 10_000u64..1_000_000_000,
            steps in proptest::collection::vec((0u64..5_000, 100u64..1500), 1..400),
        ) {
            let t0 = crate::test_support::epoch();
            let mut p = Pacer::new(1200);
            p.set_rate(t0, Some(rate));
            let burst = p.burst();
            let mut now = t0;
            let mut sent = 0u128;
            for (gap_micros, size) in steps {
                now += Duration::from_micros(gap_micros);
                match p.release_time(now, size) {
                    None => {
                        p.on_sent(now, size);
                        sent += u128::from(size);
                    }
                    Some(at) => prop_assert!(at > now),
                }
                let elapsed = (now - t0).as_nanos();
                let allowed = u128::from(burst) + elapsed * u128::from(rate) / NANOS + 1;
                // One packet may overdraw the bucket by less than its size.
                prop_assert!(sent <= allowed + 1500, "sent {sent} allowed {allowed}");
            }
        }
    }
}
