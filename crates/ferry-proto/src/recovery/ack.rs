//! Receipt tracking: which packet numbers arrived, when to acknowledge them, and
//! which to ask for again.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use crate::wire::packet::MAX_RANGES;

/// Packets this far below the largest received number that are still missing
/// are presumed lost and named in a repeat request. Smaller gaps are left to
/// reordering.
pub(crate) const REORDER_THRESHOLD: u64 = 3;

/// A set of `u64` kept as sorted, disjoint, non-adjacent inclusive ranges, holding
/// at most `cap` ranges (the lowest are forgotten first).
#[derive(Debug, Clone)]
pub(crate) struct RangeSet {
    ranges: VecDeque<(u64, u64)>,
    cap: usize,
}

impl RangeSet {
    pub(crate) fn new(cap: usize) -> Self {
        Self {
            ranges: VecDeque::new(),
            cap: cap.max(1),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// How many disjoint ranges the set holds.
    #[cfg(test)]
    pub(crate) fn len_ranges(&self) -> usize {
        self.ranges.len()
    }

    pub(crate) fn max(&self) -> Option<u64> {
        self.ranges.back().map(|r| r.1)
    }

    pub(crate) fn min(&self) -> Option<u64> {
        self.ranges.front().map(|r| r.0)
    }

    #[cfg(test)]
    pub(crate) fn contains(&self, x: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.1 < x);
        self.ranges.get(i).is_some_and(|r| r.0 <= x)
    }

    /// Adds `x`; returns whether it was new.
    pub(crate) fn insert(&mut self, x: u64) -> bool {
        self.insert_range(x, x)
    }

    /// Adds `lo..=hi`; returns whether anything was new.
    pub(crate) fn insert_range(&mut self, lo: u64, hi: u64) -> bool {
        debug_assert!(lo <= hi);
        // Fast path: appending to, or extending, the highest range.
        if let Some(last) = self.ranges.back_mut() {
            if lo > last.1.saturating_add(1) {
                self.ranges.push_back((lo, hi));
                self.trim();
                return true;
            }
            if lo >= last.0 {
                if hi <= last.1 {
                    return false;
                }
                last.1 = hi;
                return true;
            }
        } else {
            self.ranges.push_back((lo, hi));
            return true;
        }
        // General case: merge every range that overlaps or touches lo..=hi.
        let first = self.ranges.partition_point(|r| r.1.saturating_add(1) < lo);
        let mut end = first;
        let (mut new_lo, mut new_hi) = (lo, hi);
        let mut covered = false;
        while end < self.ranges.len() && self.ranges[end].0 <= hi.saturating_add(1) {
            let r = self.ranges[end];
            if r.0 <= lo && r.1 >= hi {
                covered = true;
            }
            new_lo = new_lo.min(r.0);
            new_hi = new_hi.max(r.1);
            end += 1;
        }
        if covered {
            return false;
        }
        self.ranges.drain(first..end);
        self.ranges.insert(first, (new_lo, new_hi));
        self.trim();
        true
    }

    fn trim(&mut self) {
        while self.ranges.len() > self.cap {
            self.ranges.pop_front();
        }
    }

    /// Ranges from the largest down, at most `n` of them.
    pub(crate) fn descending(&self, n: usize) -> Vec<RangeInclusive<u64>> {
        self.ranges
            .iter()
            .rev()
            .take(n)
            .map(|r| r.0..=r.1)
            .collect()
    }

    /// The numbers in `lo..=hi` that are not in the set, as ranges, lowest first.
    pub(crate) fn gaps(&self, lo: u64, hi: u64, out: &mut Vec<(u64, u64)>, limit: usize) {
        if lo > hi {
            return;
        }
        let mut next = lo;
        let start = self.ranges.partition_point(|r| r.1 < lo);
        for r in self.ranges.iter().skip(start) {
            if out.len() >= limit || next > hi {
                return;
            }
            if r.0 > next {
                out.push((next, (r.0 - 1).min(hi)));
            }
            next = next.max(r.1.saturating_add(1));
            if r.1 == u64::MAX {
                return;
            }
        }
        if next <= hi && out.len() < limit {
            out.push((next, hi));
        }
    }
}

/// The receiving half of acknowledgement: records arrivals, decides when an ack
/// is due, and finds gaps worth a repeat request.
#[derive(Debug)]
pub(crate) struct AckTracker {
    received: RangeSet,
    largest_at: Option<Instant>,
    unacked: u32,
    /// Packets counted since `rate_epoch` began, and the count of the last
    /// whole round trip (decides ack decimation).
    rate_epoch: Option<(Instant, u32)>,
    packets_per_rtt: u32,
    deadline: Option<Instant>,
    immediate: bool,
    /// Numbers below this have already been checked for gaps.
    nack_checked: u64,
    nacks: Vec<(u64, u64)>,
}

impl AckTracker {
    pub(crate) fn new() -> Self {
        Self {
            received: RangeSet::new(4 * MAX_RANGES),
            largest_at: None,
            unacked: 0,
            rate_epoch: None,
            packets_per_rtt: 0,
            deadline: None,
            immediate: false,
            nack_checked: 0,
            nacks: Vec::new(),
        }
    }

    /// Records packet `pn`. `eliciting` packets (data and direct datagrams) must be
    /// acknowledged. Returns `false` when the number was already seen.
    pub(crate) fn on_packet(
        &mut self,
        pn: u64,
        eliciting: bool,
        now: Instant,
        max_ack_delay: Duration,
        ack_frequency: u32,
    ) -> bool {
        let largest = self.received.max();
        if !self.received.insert(pn) {
            // A duplicate: the sender may have missed our ack, so ack again soon.
            if eliciting {
                self.immediate = true;
            }
            return false;
        }
        let in_order = largest.is_none_or(|l| pn == l + 1);
        if largest.is_none_or(|l| pn > l) {
            self.largest_at = Some(now);
        }
        if eliciting {
            self.unacked += 1;
            if self.unacked >= ack_frequency || !in_order {
                self.immediate = true;
            } else if self.deadline.is_none() {
                self.deadline = Some(now + max_ack_delay);
            }
        }
        self.find_gaps();
        true
    }

    fn find_gaps(&mut self) {
        let Some(largest) = self.received.max() else {
            return;
        };
        let Some(horizon) = largest.checked_sub(REORDER_THRESHOLD) else {
            return;
        };
        if horizon < self.nack_checked {
            return;
        }
        // Never look below what we still remember.
        let lo = self.nack_checked.max(self.received.min().unwrap_or(0));
        self.received.gaps(lo, horizon, &mut self.nacks, MAX_RANGES);
        // When the list is full, resume checking after the last gap it holds, so
        // that no hole goes unnamed.
        self.nack_checked = match self.nacks.last() {
            Some(&(_, hi)) if self.nacks.len() >= MAX_RANGES => {
                hi.saturating_add(1).min(horizon + 1)
            }
            _ => horizon + 1,
        };
    }

    /// Counts one arriving packet and returns how many arrived in the last
    /// whole round trip of `srtt`: an estimate of the sender's window in
    /// packets.
    pub(crate) fn arrival_rate(&mut self, now: Instant, srtt: Duration) -> u32 {
        match &mut self.rate_epoch {
            Some((start, count)) if now.saturating_duration_since(*start) < srtt => {
                *count = count.saturating_add(1);
                // A round trip still under way counts once it beats the last.
                self.packets_per_rtt = self.packets_per_rtt.max(*count);
            }
            epoch => {
                let finished = epoch.map_or(0, |(_, count)| count);
                self.packets_per_rtt = finished;
                *epoch = Some((now, 1));
            }
        }
        self.packets_per_rtt
    }

    /// Whether an ack should be sent now.
    pub(crate) fn ack_due(&self, now: Instant) -> bool {
        self.immediate || self.deadline.is_some_and(|d| d <= now)
    }

    /// When a delayed ack falls due.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        if self.immediate { None } else { self.deadline }
    }

    /// Ask for an ack at the next opportunity (window updates, pings).
    pub(crate) fn request_immediate(&mut self) {
        if !self.received.is_empty() {
            self.immediate = true;
        }
    }

    /// Builds the ranges and delay of an ack and resets the timers.
    pub(crate) fn take_ack(&mut self, now: Instant) -> Option<(u64, Vec<RangeInclusive<u64>>)> {
        if self.received.is_empty() {
            return None;
        }
        self.immediate = false;
        self.deadline = None;
        self.unacked = 0;
        let delay = self
            .largest_at
            .map(|t| now.saturating_duration_since(t).as_micros() as u64)
            .unwrap_or(0);
        Some((delay, self.received.descending(MAX_RANGES)))
    }

    /// Whether gaps wait to be named in a repeat request.
    pub(crate) fn nack_pending(&self) -> bool {
        !self.nacks.is_empty()
    }

    /// The missing ranges to request, largest first. Ranges that were filled in
    /// meanwhile are left out.
    pub(crate) fn take_nacks(&mut self) -> Vec<RangeInclusive<u64>> {
        let mut gaps = Vec::new();
        for &(lo, hi) in &self.nacks {
            self.received.gaps(lo, hi, &mut gaps, MAX_RANGES);
        }
        self.nacks.clear();
        // Gaps found at different times may touch: merge them into disjoint,
        // non-adjacent ranges, as the wire encoding requires.
        let mut missing = RangeSet::new(MAX_RANGES);
        for (lo, hi) in gaps {
            missing.insert_range(lo, hi);
        }
        missing.descending(MAX_RANGES)
    }

    /// Number of distinct ranges remembered (for bounds checks in tests).
    #[cfg(test)]
    pub(crate) fn ranges(&self) -> usize {
        self.received.len_ranges()
    }
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn gap_is_nacked_once_past_threshold() {
        let now = crate::test_support::epoch();
        let mut t = AckTracker::new();
        let d = Duration::from_millis(10);
        for pn in [0, 1, 3, 4, 5] {
            t.on_packet(pn, true, now, d, 100);
        }
        assert!(t.nack_pending());
        assert_eq!(t.take_nacks(), vec![2..=2]);
        t.on_packet(6, true, now, d, 100);
        assert!(!t.nack_pending(), "a gap is named once");
    }

    #[test]
    fn gaps_found_apart_are_merged() {
        let now = crate::test_support::epoch();
        let mut t = AckTracker::new();
        let d = Duration::from_millis(10);
        // 5 is found missing when 8 arrives, 6 when 9 arrives: one range 5..=6.
        for pn in [0, 1, 2, 3, 4, 7, 8, 9] {
            t.on_packet(pn, true, now, d, 100);
        }
        assert_eq!(t.take_nacks(), vec![5..=6]);
    }

    #[test]
    fn no_gap_goes_unnamed_when_the_list_is_full() {
        let now = crate::test_support::epoch();
        let mut t = AckTracker::new();
        let d = Duration::from_millis(10);
        // 100 holes at once: the first 64 are named now, the rest next time.
        for pn in (0..=200).step_by(2) {
            t.on_packet(pn, true, now, d, 100);
        }
        let first = t.take_nacks();
        assert_eq!(first.len(), MAX_RANGES);
        t.on_packet(202, true, now, d, 100);
        let second = t.take_nacks();
        let named: usize = first.iter().chain(&second).count();
        assert_eq!(named, 100, "{second:?}");
    }

    #[test]
    fn filled_gap_is_not_requested() {
        let now = crate::test_support::epoch();
        let mut t = AckTracker::new();
        let d = Duration::from_millis(10);
        for pn in [0, 2, 3, 4] {
            t.on_packet(pn, true, now, d, 100);
        }
        t.on_packet(1, true, now, d, 100);
        assert!(t.take_nacks().is_empty());
    }

    #[test]
    fn ack_timing() {
        let now = crate::test_support::epoch();
        let d = Duration::from_millis(10);
        let mut t = AckTracker::new();
        t.on_packet(0, true, now, d, 2);
        assert!(!t.ack_due(now));
        assert_eq!(t.deadline(), Some(now + d));
        assert!(t.ack_due(now + d));
        t.on_packet(1, true, now, d, 2);
        assert!(t.ack_due(now), "ack_frequency reached");
        let (_, ranges) = t.take_ack(now).unwrap();
        assert_eq!(ranges, vec![0..=1]);
        assert!(!t.ack_due(now + d));
        t.on_packet(5, true, now, d, 2);
        assert!(t.ack_due(now), "out of order acks at once");
    }

    #[test]
    fn memory_is_bounded() {
        let now = crate::test_support::epoch();
        let mut t = AckTracker::new();
        for pn in (0..100_000).step_by(2) {
            t.on_packet(pn, false, now, Duration::ZERO, 1);
        }
        assert!(t.ranges() <= 4 * MAX_RANGES);
        assert!(t.take_nacks().len() <= MAX_RANGES);
    }

    proptest! {
        /// The range set behaves like a set of integers (model test).
        #[test]
        fn range_set_matches_model(ops in prop::collection::vec((0u64..200, 0u64..5), 1..200)) {
            let mut s = RangeSet::new(usize::MAX);
            let mut model = BTreeSet::new();
            for (lo, len) in ops {
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
}
