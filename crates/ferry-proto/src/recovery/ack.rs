//! Receipt tracking: which packet numbers arrived, when to acknowledge them, and
//! which to ask for again.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use crate::recovery::reorder::WindowScale;
use crate::wire::packet::MAX_RANGES;

/// Ranges every ack reports from the top (the newest packets); the rest of
/// an ack's room goes to older ranges in turn (see [`AckTracker::take_ack`]).
const TOP_RANGES: usize = MAX_RANGES * 3 / 4;

/// Ranges of received packet numbers a receiver remembers. A fast flow on a
/// path that reorders leaves a hole every few packets for the whole
/// reordering depth (some 350 packets at 70 000 packets per second and 5 ms
/// of jitter): forgetting a range there means never acknowledging its packets.
pub(crate) const RECEIVED_RANGES: usize = 16 * MAX_RANGES;

/// Late arrivals remembered for the next acks (see [`AckTracker::take_ack`]).
/// Beyond it, acks sweep every range instead.
const LATE_KEPT: usize = 4 * MAX_RANGES;

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
        // Holes filled after a burst of reordering: give the room back.
        if self.ranges.capacity() > 64 && self.ranges.len() * 8 < self.ranges.capacity() {
            self.ranges.shrink_to(self.ranges.len() * 2);
        }
        true
    }

    /// Takes `x` out; returns whether it was in.
    pub(crate) fn remove(&mut self, x: u64) -> bool {
        let i = self.ranges.partition_point(|r| r.1 < x);
        let Some(&(lo, hi)) = self.ranges.get(i) else {
            return false;
        };
        if lo > x {
            return false;
        }
        match (lo == x, hi == x) {
            (true, true) => {
                self.ranges.remove(i);
            }
            (true, false) => self.ranges[i].0 = x + 1,
            (false, true) => self.ranges[i].1 = x - 1,
            (false, false) => {
                self.ranges[i].1 = x - 1;
                self.ranges.insert(i + 1, (x + 1, hi));
                self.trim();
            }
        }
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

    /// Appends to `out` the ranges whose end lies below `below`, from the
    /// largest down, at most `n`; returns how many.
    pub(crate) fn descending_below(
        &self,
        below: u64,
        n: usize,
        out: &mut Vec<RangeInclusive<u64>>,
    ) -> usize {
        let end = self.ranges.partition_point(|r| r.1 < below);
        let before = out.len();
        out.extend(self.ranges.range(..end).rev().take(n).map(|r| r.0..=r.1));
        out.len() - before
    }

    /// Moves numbers out of `late` (those below `below`) into `out` as the
    /// ranges that hold them, each range once, until `out` holds `limit`
    /// ranges. Numbers at or above `below`, or no longer held, are dropped;
    /// what did not fit stays in `late`.
    pub(crate) fn late_ranges(
        &self,
        below: u64,
        late: &mut Vec<u64>,
        limit: usize,
        out: &mut Vec<RangeInclusive<u64>>,
    ) {
        let first = out.len();
        // Newest arrivals last: take from the end.
        while out.len() < limit {
            let Some(x) = late.pop() else { break };
            if x >= below {
                continue;
            }
            let i = self.ranges.partition_point(|r| r.1 < x);
            let Some(&(lo, hi)) = self.ranges.get(i) else {
                continue;
            };
            if lo > x || out[first..].iter().any(|r| *r.start() == lo) {
                continue;
            }
            out.push(lo..=hi);
        }
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
    /// Where the older ranges an ack reports resume (they take turns).
    ack_cursor: u64,
    largest_at: Option<Instant>,
    unacked: u32,
    /// Packets counted since `rate_epoch` began, and the count of the last
    /// whole round trip (decides ack decimation).
    rate_epoch: Option<(Instant, u32)>,
    packets_per_rtt: u32,
    deadline: Option<Instant>,
    immediate: bool,
    /// Gaps due, to be named in the next repeat request.
    nacks: Vec<(u64, u64)>,
    /// Gaps waiting out the reordering window, and what repeat requests
    /// taught: boxed, and dropped again once nothing waits in it, as a
    /// session whose packets arrive in order (most idle ones) needs none.
    reorder: Option<Box<GapWatch>>,
    /// Requested packets that arrived after all.
    late_requested: u64,
}

/// The receiver's view of reordering: gaps waiting to be named, and the
/// window they must last.
#[derive(Debug)]
struct GapWatch {
    /// Gaps seen (a later packet arrived), with when: each is named in a
    /// repeat request only once it has lasted the reordering window, so
    /// what is merely late is never asked for.
    gaps: VecDeque<(u64, u64, Instant)>,
    /// The reordering window for gaps, as the session last gave it.
    window: Duration,
    /// Numbers named in repeat requests: one arriving later was only late.
    requested: RangeSet,
    /// The window, widened when a requested packet arrives after all, shrunk
    /// back by repeat requests without one.
    scale: WindowScale,
    /// When gaps were last moved to a repeat request.
    last_request: Option<Instant>,
    /// Packets that arrived late (below the largest number), not yet in an
    /// ack: the next acks report their ranges before anything older, so the
    /// sender learns of them within the reordering window even when far
    /// more ranges are open than an ack can carry.
    late: Vec<u64>,
    /// More arrived late than `late` keeps: the acks walk every older range
    /// back to back, until their turn comes round to the top again.
    sweep: bool,
}

impl GapWatch {
    fn new() -> Self {
        Self {
            gaps: VecDeque::new(),
            window: Duration::ZERO,
            requested: RangeSet::new(MAX_RANGES),
            scale: WindowScale::default(),
            last_request: None,
            late: Vec::new(),
            sweep: false,
        }
    }

    /// Nothing waits here and nothing was learned: a requested packet would
    /// have arrived by now if it was only late.
    fn is_spent(&self, now: Instant) -> bool {
        self.gaps.is_empty()
            && self.late.is_empty()
            && !self.sweep
            && self.scale.is_base()
            && self.last_request.is_none_or(|t| now >= t + self.window * 8)
    }
}

impl AckTracker {
    pub(crate) fn new() -> Self {
        Self {
            received: RangeSet::new(RECEIVED_RANGES),
            ack_cursor: u64::MAX,
            largest_at: None,
            unacked: 0,
            rate_epoch: None,
            packets_per_rtt: 0,
            deadline: None,
            immediate: false,
            nacks: Vec::new(),
            reorder: None,
            late_requested: 0,
        }
    }

    /// The window a gap must last before it is named, for a path of
    /// `min_rtt` and `srtt`: a quarter of the minimum RTT, widened by each
    /// requested packet that arrived late, never beyond the smoothed RTT.
    pub(crate) fn request_window(&self, min_rtt: Duration, srtt: Duration) -> Duration {
        self.reorder
            .as_ref()
            .map_or_else(WindowScale::default, |w| w.scale)
            .window(min_rtt, srtt)
    }

    /// Requested packets that arrived after all (the request was spurious).
    pub(crate) fn late_requested(&self) -> u64 {
        self.late_requested
    }

    /// Records packet `pn`. `eliciting` packets (data and direct datagrams) must be
    /// acknowledged. Returns `false` when the number was already seen.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn on_packet(
        &mut self,
        pn: u64,
        eliciting: bool,
        now: Instant,
        max_ack_delay: Duration,
        ack_frequency: u32,
        window: Duration,
    ) -> bool {
        let largest = self.received.max();
        if let Some(w) = &mut self.reorder {
            w.window = window;
        }
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
        if let Some(l) = largest
            && pn > l.saturating_add(1)
        {
            // A jump: the numbers between may be lost, or only late.
            let w = self
                .reorder
                .get_or_insert_with(|| Box::new(GapWatch::new()));
            w.window = window;
            if w.gaps.len() >= MAX_RANGES {
                // The sender's own loss detection covers what this forgets.
                w.gaps.pop_front();
            }
            w.gaps.push_back((l + 1, pn - 1, now));
        }
        if let Some(w) = &mut self.reorder
            && largest.is_some_and(|l| pn < l)
        {
            if w.late.len() < LATE_KEPT {
                w.late.push(pn);
            } else if !w.sweep {
                // From the top down.
                w.sweep = true;
                self.ack_cursor = u64::MAX;
            }
        }
        if let Some(w) = &mut self.reorder
            && w.requested.remove(pn)
        {
            // Asked for again, and here it is under its own number: it was
            // late, not lost. Wait longer before asking next time.
            self.late_requested += 1;
            w.scale.widen();
        }
        self.promote(now);
        true
    }

    /// Moves the gaps that lasted the window, and are still open, to the
    /// next repeat request.
    pub(crate) fn promote(&mut self, now: Instant) {
        let Some(w) = &mut self.reorder else {
            return;
        };
        while let Some(&(lo, hi, seen)) = w.gaps.front() {
            if seen + w.window > now || self.nacks.len() >= MAX_RANGES {
                break;
            }
            w.gaps.pop_front();
            w.last_request = Some(now);
            // Never look below what we still remember.
            let lo = lo.max(self.received.min().unwrap_or(0));
            self.received.gaps(lo, hi, &mut self.nacks, MAX_RANGES);
        }
        if w.is_spent(now) {
            self.reorder = None;
        }
    }

    /// When the oldest gap will have lasted the window.
    fn gap_deadline(&self) -> Option<Instant> {
        let w = self.reorder.as_ref()?;
        w.gaps.front().map(|&(_, _, seen)| seen + w.window)
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

    /// Whether packets that need an ack arrived since the last one (or an
    /// ack was asked for): an ack worth carrying on a packet of data before
    /// it is due.
    pub(crate) fn worth_carrying(&self) -> bool {
        self.unacked > 0 || self.immediate
    }

    /// The most bytes the next ack's fields can take: a delay and a credit
    /// of at most 8 bytes each, a count, and two 8-byte values per range.
    pub(crate) fn ack_len_bound(&self) -> usize {
        let ranges = self.received.len_ranges().min(MAX_RANGES);
        8 + 8 + 2 + 16 * ranges
    }

    /// Whether packets arrived that no ack sent yet reports.
    pub(crate) fn ack_owed(&self) -> bool {
        self.immediate || self.deadline.is_some()
    }

    /// Whether an ack should be sent now.
    pub(crate) fn ack_due(&self, now: Instant) -> bool {
        self.immediate || self.deadline.is_some_and(|d| d <= now)
    }

    /// When a delayed ack falls due, or a gap must be looked at again.
    pub(crate) fn deadline(&self) -> Option<Instant> {
        let ack = if self.immediate { None } else { self.deadline };
        match (ack, self.gap_deadline()) {
            (Some(a), Some(g)) => Some(a.min(g)),
            (a, g) => a.or(g),
        }
    }

    /// Ask for an ack at the next opportunity (window updates, pings).
    pub(crate) fn request_immediate(&mut self) {
        if !self.received.is_empty() {
            self.immediate = true;
        }
    }

    /// Builds the ranges and delay of an ack and resets the timers.
    ///
    /// An ack has room for [`MAX_RANGES`] ranges. On a path that reorders at a
    /// high packet rate the newest packets alone leave more holes than that,
    /// and an ack of only the highest ranges would never reach the packets
    /// below them: the sender would take them for lost. So each ack reports
    /// the highest [`TOP_RANGES`] ranges, then the ranges of packets that
    /// arrived late since the last ack (if they do not all fit, another ack
    /// is due at once), and fills what room is left with older ranges in
    /// turn, from where the previous ack stopped, so that every range is
    /// reported within a few acks even when acks are lost.
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
        let mut ranges = self.received.descending(TOP_RANGES);
        if let Some(lowest_top) = ranges.last().map(|r| *r.start()) {
            let top = ranges.len();
            if let Some(w) = &mut self.reorder {
                self.received
                    .late_ranges(lowest_top, &mut w.late, MAX_RANGES, &mut ranges);
                if !w.late.is_empty() {
                    self.immediate = true;
                }
            }
            let late = ranges.len();
            let room = MAX_RANGES - late;
            if room > 0 {
                let turn = late;
                let below = self.ack_cursor.min(lowest_top);
                let wrapped = self.received.descending_below(below, room, &mut ranges) == 0;
                if wrapped {
                    // Back to the top: start again below the newest ranges.
                    self.received
                        .descending_below(lowest_top, room, &mut ranges);
                }
                self.ack_cursor = match ranges[turn..].last() {
                    Some(r) if *r.start() < lowest_top => *r.start(),
                    _ => u64::MAX,
                };
                if let Some(w) = &mut self.reorder
                    && w.sweep
                {
                    // Until the turn wraps, the next ack is due at once.
                    w.sweep = !wrapped && self.ack_cursor != u64::MAX;
                    self.immediate |= w.sweep;
                }
            }
            if late > top {
                // Late ranges interleave with the older ranges' turn, and
                // may name the same range.
                ranges.sort_unstable_by(|a, b| b.start().cmp(a.start()));
                ranges.dedup();
            }
        }
        Some((delay, ranges))
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
            if let Some(w) = &mut self.reorder {
                w.requested.insert_range(lo, hi);
            }
        }
        if let Some(w) = &mut self.reorder {
            w.scale.decay();
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
#[path = "ack_tests.rs"]
mod tests;
