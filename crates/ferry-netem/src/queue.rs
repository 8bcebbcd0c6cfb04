//! The bottleneck of a bandwidth-capped link: datagrams serialised one at a
//! time at the cap, tail-dropped when the backlog would exceed the queue limit.

use std::time::{Duration, Instant};

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// The state of a link's bottleneck queue: when it finishes serialising what it
/// accepted, and the rounding remainder carried from one datagram to the next.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bottleneck {
    /// When the bottleneck finishes serialising everything accepted so far.
    busy_until: Option<Instant>,
    /// Sub-nanosecond remainder of the serialisation schedule, in units of
    /// `1 / bandwidth_bps` ns, carried while the bottleneck stays busy so that
    /// back-to-back datagrams accumulate no rounding drift.
    serialization_carry: u128,
}

impl Bottleneck {
    /// Puts a datagram of `len` bytes into the bottleneck queue of a link of
    /// `bps` bits per second whose queue holds `limit` bytes, returning when it
    /// has been fully serialised, or `None` if it is tail-dropped.
    pub(crate) fn enqueue(
        &mut self,
        now: Instant,
        len: usize,
        bps: u64,
        limit: usize,
    ) -> Option<Instant> {
        let bps = u128::from(bps);
        let (start, backlog_bytes, carry) = match self.busy_until {
            Some(busy) if busy > now => {
                let backlog = (busy - now).as_nanos().saturating_mul(bps) / (8 * NANOS_PER_SEC);
                (busy, backlog, self.serialization_carry)
            }
            _ => (now, 0, 0),
        };
        let limit = limit as u128;
        if backlog_bytes.saturating_add(len as u128) > limit {
            return None;
        }
        let numerator = (len as u128) * 8 * NANOS_PER_SEC + carry;
        let departure = start + duration_from_nanos_u128(numerator / bps);
        self.serialization_carry = numerator % bps;
        self.busy_until = Some(departure);
        Some(departure)
    }
}

fn duration_from_nanos_u128(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // Always < 1e9, fits in u32.
    let subsec = (nanos % NANOS_PER_SEC) as u32;
    Duration::new(secs, subsec)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use crate::testing::*;
    use crate::{Link, LinkConfig};

    #[test]
    fn bandwidth_cap_drains_in_one_second() {
        let t0 = base();
        let config = LinkConfig::default()
            .bandwidth(10_000_000)
            .queue_limit(2_000_000);
        let mut link = Link::new(config, 5);
        for i in 0..1000u32 {
            link.send(t0, numbered(i, 1250));
        }
        assert_eq!(link.stats().queue_dropped, 0);
        let got = drain_all(&mut link);
        assert_eq!(got.len(), 1000);
        for (i, (at, b)) in got.iter().enumerate() {
            assert_eq!(number_of(b), i as u32);
            assert_eq!(*at, t0 + ms(i as u64 + 1));
        }
        assert_eq!(got.last().unwrap().0, t0 + Duration::from_secs(1));
    }

    #[test]
    fn bandwidth_has_no_rounding_drift() {
        // 1 byte at 3 bit/s = 8/3 s per datagram; 3 back-to-back datagrams take exactly 8 s.
        let t0 = base();
        let mut link = Link::new(LinkConfig::default().bandwidth(3), 0);
        for _ in 0..3 {
            link.send(t0, Bytes::from_static(b"a"));
        }
        let got = drain_all(&mut link);
        assert_eq!(got[2].0, t0 + Duration::from_secs(8));
    }

    #[test]
    fn paced_below_capacity_is_not_queued() {
        let t0 = base();
        let config = LinkConfig::default()
            .bandwidth(10_000_000)
            .latency(ms(5))
            .queue_limit(1250);
        let mut link = Link::new(config, 5);
        for i in 0..100u64 {
            link.send(t0 + ms(2 * i), numbered(i as u32, 1250));
        }
        assert_eq!(link.stats().queue_dropped, 0);
        let got = drain_all(&mut link);
        for (i, (at, _)) in got.iter().enumerate() {
            assert_eq!(*at, t0 + ms(2 * i as u64 + 1 + 5));
        }
    }

    #[test]
    fn queue_limit_tail_drops() {
        let t0 = base();
        // 10 datagrams of 1250 bytes fill the queue exactly.
        let config = LinkConfig::default()
            .bandwidth(10_000_000)
            .queue_limit(12_500);
        let mut link = Link::new(config, 9);
        for i in 0..20u32 {
            link.send(t0, numbered(i, 1250));
        }
        assert_eq!(link.stats().queue_dropped, 10);
        assert_eq!(link.in_flight(), 10);
        // One serialisation time later there is room for exactly one more.
        link.send(t0 + ms(1), numbered(20, 1250));
        link.send(t0 + ms(1), numbered(21, 1250));
        assert_eq!(link.stats().queue_dropped, 11);
        let got = drain_all(&mut link);
        let order: Vec<u32> = got.iter().map(|(_, b)| number_of(b)).collect();
        let mut expected: Vec<u32> = (0..10).collect();
        expected.push(20);
        assert_eq!(order, expected);
        // A datagram larger than the whole queue is always dropped.
        link.send(t0 + Duration::from_secs(10), Bytes::from(vec![0; 12_501]));
        assert_eq!(link.stats().queue_dropped, 12);
        // Without a bandwidth cap the queue never fills.
        let mut free = Link::new(LinkConfig::default().queue_limit(10), 9);
        free.send(t0, Bytes::from(vec![0; 100]));
        assert_eq!(free.stats().queue_dropped, 0);
    }
}
