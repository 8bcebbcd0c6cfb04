//! Unit tests of `ack.rs`: the range set, ack timing, gaps named in repeat
//! requests, and what each ack reports.
use super::*;
use proptest::prelude::*;
use std::collections::BTreeSet;

#[test]
fn arrival_rate_counts_packets_per_round_trip() {
    let t0 = crate::test_support::epoch();
    let rtt = Duration::from_millis(10);
    let mut t = AckTracker::new();
    // 50 packets in each 10 ms round trip.
    let mut last = 0;
    for i in 0..500u32 {
        last = t.arrival_rate(t0 + Duration::from_micros(200 * u64::from(i)), rtt);
    }
    assert!((49..=51).contains(&last), "{last}");
    // After a pause the rate falls back to what the last round trip saw.
    let later = t0 + Duration::from_secs(1);
    assert!(t.arrival_rate(later, rtt) <= 51);
    assert_eq!(t.arrival_rate(later + 2 * rtt, rtt), 1);
}

#[test]
fn insert_merges() {
    let mut s = RangeSet::new(100);
    for x in [5, 7, 6, 1, 2, 10] {
        assert!(s.insert(x));
    }
    assert!(!s.insert(6));
    assert_eq!(s.descending(10), vec![10..=10, 5..=7, 1..=2]);
    let mut gaps = Vec::new();
    s.gaps(0, 11, &mut gaps, 10);
    assert_eq!(gaps, vec![(0, 0), (3, 4), (8, 9), (11, 11)]);
}

#[test]
fn cap_forgets_lowest() {
    let mut s = RangeSet::new(2);
    s.insert(1);
    s.insert(3);
    s.insert(5);
    assert_eq!(s.descending(10), vec![5..=5, 3..=3]);
}

const W: Duration = Duration::from_millis(5);

#[test]
fn a_gap_is_named_once_it_lasted_the_window() {
    let t0 = crate::test_support::epoch();
    let mut t = AckTracker::new();
    let d = Duration::from_millis(10);
    for pn in [0, 1, 3, 4, 5] {
        t.on_packet(pn, true, t0, d, 100, W);
    }
    assert!(!t.nack_pending(), "2 may only be late");
    assert_eq!(t.deadline(), Some(t0 + W));
    t.promote(t0 + W - Duration::from_millis(1));
    assert!(!t.nack_pending());
    t.promote(t0 + W);
    assert_eq!(t.take_nacks(), vec![2..=2]);
    t.on_packet(6, true, t0 + W, d, 100, W);
    t.promote(t0 + 3 * W);
    assert!(!t.nack_pending(), "a gap is named once");
}

#[test]
fn a_gap_filled_within_the_window_is_never_asked_for() {
    let t0 = crate::test_support::epoch();
    let mut t = AckTracker::new();
    let d = Duration::from_millis(10);
    for pn in [0, 2, 3, 4] {
        t.on_packet(pn, true, t0, d, 100, W);
    }
    t.on_packet(1, true, t0 + Duration::from_millis(3), d, 100, W);
    t.promote(t0 + 10 * W);
    assert!(t.take_nacks().is_empty());
}

#[test]
fn gaps_are_named_largest_first() {
    let t0 = crate::test_support::epoch();
    let mut t = AckTracker::new();
    let d = Duration::from_millis(10);
    for pn in [0, 1, 2, 3, 4, 7, 8, 10] {
        t.on_packet(pn, true, t0, d, 100, Duration::ZERO);
    }
    assert_eq!(t.take_nacks(), vec![9..=9, 5..=6]);
}

#[test]
fn no_gap_goes_unnamed_when_the_list_is_full() {
    let now = crate::test_support::epoch();
    let mut t = AckTracker::new();
    let d = Duration::from_millis(10);
    // 100 holes at once: the first 64 are named now, the rest next time.
    for pn in (0..=200).step_by(2) {
        t.on_packet(pn, true, now, d, 100, Duration::ZERO);
    }
    let first = t.take_nacks();
    assert_eq!(first.len(), MAX_RANGES);
    t.on_packet(201, true, now, d, 100, Duration::ZERO);
    let second = t.take_nacks();
    let named: usize = first.iter().chain(&second).count();
    assert_eq!(named, 100, "{second:?}");
}

#[test]
fn a_requested_packet_that_arrives_late_widens_the_window() {
    let t0 = crate::test_support::epoch();
    let ms = Duration::from_millis;
    let mut t = AckTracker::new();
    let window = t.request_window(ms(40), ms(100));
    assert_eq!(window, ms(10), "a quarter of the minimum RTT");
    for pn in [0, 2] {
        t.on_packet(pn, true, t0, ms(10), 100, window);
    }
    t.promote(t0 + window);
    assert_eq!(t.take_nacks(), vec![1..=1]);
    t.on_packet(1, true, t0 + ms(12), ms(10), 100, window);
    assert_eq!(t.late_requested(), 1);
    assert_eq!(t.request_window(ms(40), ms(100)), ms(20));
    assert_eq!(
        t.request_window(ms(40), ms(15)),
        ms(15),
        "never beyond the srtt"
    );
}

/// Holes in every second number from 0 to 600, one ack taken: far more
/// ranges are open than an ack carries.
fn many_open_ranges(now: Instant) -> AckTracker {
    let mut t = AckTracker::new();
    for pn in (0..600).step_by(2) {
        t.on_packet(
            pn,
            true,
            now,
            Duration::from_millis(10),
            1,
            Duration::from_secs(1),
        );
    }
    t.take_ack(now).unwrap();
    t
}

#[test]
fn a_late_packet_is_acknowledged_in_the_next_ack_however_many_ranges_are_open() {
    let now = crate::test_support::epoch();
    let mut t = many_open_ranges(now);
    // 21 arrives late, far below the newest ranges: it joins 20 and 22.
    t.on_packet(
        21,
        true,
        now,
        Duration::from_millis(10),
        1,
        Duration::from_secs(1),
    );
    let (_, ranges) = t.take_ack(now).unwrap();
    assert!(ranges.contains(&(20..=22)), "{ranges:?}");
    for w in ranges.windows(2) {
        assert!(*w[1].end() + 1 < *w[0].start(), "{ranges:?}");
    }
}

#[test]
fn late_packets_beyond_one_ack_make_the_next_ack_due_at_once() {
    let now = crate::test_support::epoch();
    let mut t = many_open_ranges(now);
    let late: Vec<u64> = (1..200).step_by(4).collect(); // 50 packets
    for &pn in &late {
        t.on_packet(
            pn,
            true,
            now,
            Duration::from_millis(10),
            1000,
            Duration::from_secs(1),
        );
    }
    let mut acked = BTreeSet::new();
    let mut acks = 0;
    while t.ack_due(now) {
        acks += 1;
        acked.extend(t.take_ack(now).unwrap().1.into_iter().flatten());
    }
    // Each ack has room for this many beside the newest ranges.
    assert_eq!(acks, late.len().div_ceil(MAX_RANGES - TOP_RANGES));
    assert!(late.iter().all(|pn| acked.contains(pn)));
}

#[test]
fn more_late_packets_than_are_kept_make_the_acks_sweep_every_range() {
    let now = crate::test_support::epoch();
    let mut t = AckTracker::new();
    let d = Duration::from_millis(10);
    let window = Duration::from_secs(1);
    for pn in (0..2000).step_by(2) {
        t.on_packet(pn, true, now, d, 1, window);
    }
    t.take_ack(now).unwrap();
    // 1000 ranges, below what the receiver remembers. Every hole below
    // the newest ranges filled but one in four: more late arrivals than
    // LATE_KEPT.
    for pn in (1..1800).step_by(2).filter(|pn| pn % 8 != 1) {
        t.on_packet(pn, true, now, d, 1_000_000, window);
    }
    let mut acked = BTreeSet::new();
    let mut acks = 0;
    while t.ack_due(now) {
        acks += 1;
        assert!(acks <= 40, "the sweep ends when its turn wraps");
        acked.extend(t.take_ack(now).unwrap().1.into_iter().flatten());
    }
    let received: BTreeSet<u64> = (0..2000)
        .filter(|pn| pn % 2 == 0 || (*pn < 1800 && pn % 8 != 1))
        .collect();
    let missed: Vec<_> = received.difference(&acked).collect();
    assert!(
        missed.is_empty(),
        "{acks} acks, missed {} from {:?} to {:?}",
        missed.len(),
        missed.first(),
        missed.last()
    );
}

#[test]
fn every_remembered_range_is_acknowledged_within_a_few_acks() {
    let now = crate::test_support::epoch();
    let d = Duration::from_millis(10);
    let mut t = AckTracker::new();
    // 300 holes: far more ranges than one ack carries.
    for pn in (0..600).step_by(2) {
        t.on_packet(pn, true, now, d, 1, Duration::ZERO);
    }
    let mut acked = BTreeSet::new();
    for _ in 0..20 {
        let (_, ranges) = t.take_ack(now).unwrap();
        assert!(ranges.len() <= MAX_RANGES);
        // Descending, disjoint and not adjacent, as the wire requires.
        for w in ranges.windows(2) {
            assert!(*w[1].end() + 1 < *w[0].start(), "{ranges:?}");
        }
        assert_eq!(*ranges[0].end(), 598, "the newest always");
        acked.extend(ranges.into_iter().flatten());
    }
    let received: BTreeSet<u64> = (0..600).step_by(2).collect();
    assert_eq!(acked, received);
}

#[test]
fn ack_timing() {
    let now = crate::test_support::epoch();
    let d = Duration::from_millis(10);
    let mut t = AckTracker::new();
    t.on_packet(0, true, now, d, 2, W);
    assert!(!t.ack_due(now));
    assert_eq!(t.deadline(), Some(now + d));
    assert!(t.ack_due(now + d));
    t.on_packet(1, true, now, d, 2, W);
    assert!(t.ack_due(now), "ack_frequency reached");
    let (_, ranges) = t.take_ack(now).unwrap();
    assert_eq!(ranges, vec![0..=1]);
    assert!(!t.ack_due(now + d));
    t.on_packet(5, true, now, d, 2, W);
    assert!(t.ack_due(now), "out of order acks at once");
}

#[test]
fn memory_is_bounded() {
    let now = crate::test_support::epoch();
    let mut t = AckTracker::new();
    for pn in (0..100_000).step_by(2) {
        t.on_packet(pn, false, now, Duration::ZERO, 1, Duration::ZERO);
    }
    assert!(t.ranges() <= RECEIVED_RANGES);
    assert!(t.take_nacks().len() <= MAX_RANGES);
}

proptest! {
    /// The range set behaves like a set of integers (model test).
    #[test]
    fn range_set_matches_model(ops in prop::collection::vec((0u64..200, 0u64..5), 1..200)) {
        let mut s = RangeSet::new(usize::MAX);
        let mut model = BTreeSet::new();
        for (i, (lo, len)) in ops.into_iter().enumerate() {
            if i % 5 == 4 {
                // Now and then a removal.
                prop_assert_eq!(s.remove(lo), model.remove(&lo));
                continue;
            }
            let hi = lo + len;
            let new = (lo..=hi).any(|x| !model.contains(&x));
            prop_assert_eq!(s.insert_range(lo, hi), new);
            model.extend(lo..=hi);
            for x in 0..210 {
                prop_assert_eq!(s.contains(x), model.contains(&x));
            }
            // Ranges are disjoint and not adjacent.
            let ranges = s.descending(usize::MAX);
            for w in ranges.windows(2) {
                prop_assert!(*w[1].end() + 1 < *w[0].start());
            }
            let mut gaps = Vec::new();
            s.gaps(0, 205, &mut gaps, usize::MAX);
            let expected: Vec<u64> = (0..=205).filter(|x| !model.contains(x)).collect();
            let got: Vec<u64> = gaps.iter().flat_map(|&(a, b)| a..=b).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
