//! [`Histogram`]: durations counted into fixed buckets, so that the
//! histograms of many sessions (and of several endpoints) add up, and an
//! exporter can hand them to Prometheus as they are.

use std::time::Duration;

const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

const fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

/// Durations counted by bucket: how many fell at or below each of
/// [`Histogram::BOUNDS`], and above the last; with their count and sum.
///
/// Fixed bounds make histograms add ([`Histogram::add`]) — an endpoint's
/// is the sum of its sessions' — at a fixed size (17 counters), whatever
/// is recorded. From 100 µs (loopback) to 10 s (a satellite hop in a
/// storm, a handshake that retried).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Histogram {
    /// `counts[i]`: durations in `(BOUNDS[i-1], BOUNDS[i]]`; the last, above
    /// every bound.
    counts: [u64; Histogram::BOUNDS.len() + 1],
    sum: Duration,
}

impl Histogram {
    /// The buckets' upper bounds (inclusive), in increasing order.
    pub const BOUNDS: [Duration; 16] = [
        us(100),
        us(250),
        us(500),
        ms(1),
        us(2500),
        ms(5),
        ms(10),
        ms(25),
        ms(50),
        ms(100),
        ms(250),
        ms(500),
        ms(1000),
        ms(2500),
        ms(5000),
        ms(10_000),
    ];

    /// Counts one duration.
    pub fn record(&mut self, d: Duration) {
        let i = Self::BOUNDS.partition_point(|b| *b < d);
        self.counts[i] += 1;
        self.sum = self.sum.saturating_add(d);
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(other.counts) {
            *a += b;
        }
        self.sum = self.sum.saturating_add(other.sum);
    }

    /// Durations recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Their sum.
    pub fn sum(&self) -> Duration {
        self.sum
    }

    /// For each bound, how many durations were at or below it (cumulative,
    /// as Prometheus's `le` buckets are); the `+Inf` bucket is
    /// [`count`](Self::count).
    pub fn cumulative(&self) -> impl Iterator<Item = (Duration, u64)> + '_ {
        Self::BOUNDS
            .iter()
            .zip(self.counts.iter().scan(0u64, |total, n| {
                *total += n;
                Some(*total)
            }))
            .map(|(b, n)| (*b, n))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn a_duration_falls_in_the_first_bucket_that_holds_it() {
        let mut h = Histogram::default();
        h.record(us(100)); // at the bound: in it
        h.record(us(101));
        h.record(Duration::from_secs(60)); // above every bound
        let buckets: Vec<u64> = h.cumulative().map(|(_, n)| n).collect();
        assert_eq!(buckets[0], 1);
        assert_eq!(buckets[1], 2);
        assert_eq!(*buckets.last().unwrap(), 2);
        assert_eq!(h.count(), 3);
        assert_eq!(h.sum(), Duration::from_secs(60) + us(201));
    }

    proptest! {
        #[test]
        fn histograms_add_as_their_samples_do(
            a in proptest::collection::vec(0u64..20_000_000, 0..50),
            b in proptest::collection::vec(0u64..20_000_000, 0..50),
        ) {
            let (mut ha, mut hb, mut both) =
                (Histogram::default(), Histogram::default(), Histogram::default());
            for d in a.iter().map(|m| us(*m)) {
                ha.record(d);
                both.record(d);
            }
            for d in b.iter().map(|m| us(*m)) {
                hb.record(d);
                both.record(d);
            }
            ha.add(&hb);
            prop_assert_eq!(ha, both);
            prop_assert_eq!(both.count(), (a.len() + b.len()) as u64);
            // Cumulative counts never fall.
            let c: Vec<u64> = both.cumulative().map(|(_, n)| n).collect();
            prop_assert!(c.windows(2).all(|w| w[0] <= w[1]));
        }
    }
}
