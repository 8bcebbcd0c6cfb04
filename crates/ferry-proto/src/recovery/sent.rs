//! The sender's record of packets in flight, and loss detection over it.
//!
//! Loss is declared after RACK (RFC 8985): a packet is lost once a packet
//! sent after it was acknowledged and a reordering window has passed since
//! that could have happened; before any reordering was seen, also once three
//! later packets were acknowledged. A packet declared lost stays on record,
//! out of flight, for a few round trips: if its own acknowledgement comes
//! after all, the loss was spurious (it was only late), which the session
//! uses to widen its reordering window and to undo the congestion response.

use std::collections::{BTreeMap, VecDeque};
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use crate::congestion::rate::PacketDelivery;
use crate::wire::stream::StreamId;

/// What a tracked packet carried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SentKind {
    /// A fragment of a message: retransmitted if lost (given up on an
    /// unreliable stream).
    Data {
        stream: StreamId,
        message: u64,
        index: u32,
    },
    /// A stream control frame: sent again if lost.
    Control {
        stream: StreamId,
        kind: crate::stream::ControlKind,
    },
    /// An unreliable datagram: counted for congestion control, never resent.
    Datagram,
    /// A resumption ticket: sent again if lost.
    Ticket,
    /// A path MTU probe: padding only. Its loss is not congestion and
    /// nothing is resent; no record of it is kept once lost.
    MtuProbe,
    /// A part of a fragment too large for the path (a DataPart packet),
    /// starting at `offset` within the fragment: the fragment is sent again
    /// if lost.
    Part {
        stream: StreamId,
        message: u64,
        index: u32,
        offset: u16,
    },
}

impl SentKind {
    /// Whether the packet carried message data (a fragment or a part of one).
    fn is_data(self) -> bool {
        matches!(self, Self::Data { .. } | Self::Part { .. })
    }
}

/// A packet that needs an acknowledgement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SentPacket {
    pub(crate) number: u64,
    pub(crate) time: Instant,
    pub(crate) size: u32,
    pub(crate) kind: SentKind,
    /// Delivery-rate state when the packet left (see [`crate::congestion::rate`]).
    pub(crate) delivery: PacketDelivery,
    fate: Fate,
}

/// Where a tracked packet stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    InFlight,
    /// Acknowledged or declared lost: only waits to leave the front.
    Done,
}

/// What loss detection knows after an acknowledgement (RACK's state).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LossRule {
    /// The largest packet number acknowledged: every packet before it was
    /// sent before a packet that arrived.
    pub(crate) largest_acked: u64,
    /// The round-trip time of the most recently sent acknowledged packet.
    pub(crate) rtt: Duration,
    /// How much later than that a packet may still arrive.
    pub(crate) reorder_window: Duration,
    /// Whether three later packets acknowledged also declare a loss (until
    /// reordering is seen on the path).
    pub(crate) by_count: bool,
}

/// Packets in flight, in packet-number order. Acked and lost entries leave the
/// front lazily, so every operation is proportional to what it touches.
#[derive(Debug, Default)]
pub(crate) struct SentLog {
    packets: VecDeque<SentPacket>,
    bytes_in_flight: u64,
    count_in_flight: usize,
    /// Records of packets declared lost, by number, kept to tell a late one.
    lost: BTreeMap<u64, SentPacket>,
    last_sent: Option<Instant>,
}

/// Until the path is seen to reorder, a packet is also declared lost once
/// this many later packets were acknowledged.
pub(crate) const REORDER_THRESHOLD: u64 = 3;

/// Records of lost packets kept at most, whatever their age: beyond, the
/// oldest are forgotten (a loss then can no longer prove spurious).
pub(crate) const MAX_LOST_KEPT: usize = 4096;

impl SentLog {
    pub(crate) fn push(
        &mut self,
        number: u64,
        time: Instant,
        size: usize,
        kind: SentKind,
        delivery: PacketDelivery,
    ) {
        debug_assert!(self.packets.back().is_none_or(|p| p.number < number));
        self.packets.push_back(SentPacket {
            number,
            time,
            size: size as u32,
            kind,
            delivery,
            fate: Fate::InFlight,
        });
        self.bytes_in_flight += size as u64;
        self.count_in_flight += 1;
        self.last_sent = Some(time);
    }

    pub(crate) fn bytes_in_flight(&self) -> u64 {
        self.bytes_in_flight
    }

    pub(crate) fn count_in_flight(&self) -> usize {
        self.count_in_flight
    }

    /// When the newest tracked packet was sent.
    pub(crate) fn last_sent(&self) -> Option<Instant> {
        self.last_sent
    }

    /// Records of lost packets still kept.
    pub(crate) fn lost_kept(&self) -> usize {
        self.lost.len()
    }

    /// Takes packet `i` out of flight.
    fn retire(&mut self, i: usize) -> SentPacket {
        let p = &mut self.packets[i];
        debug_assert_eq!(p.fate, Fate::InFlight);
        p.fate = Fate::Done;
        self.bytes_in_flight -= u64::from(p.size);
        self.count_in_flight -= 1;
        *p
    }

    /// Declares packet `i` lost, keeping its record (but a probe's: a probe
    /// acknowledged late tells nothing about reordering or congestion).
    fn lose(&mut self, i: usize) -> SentPacket {
        let p = self.retire(i);
        if p.kind == SentKind::MtuProbe {
            return p;
        }
        self.lost.insert(p.number, p);
        if self.lost.len() > MAX_LOST_KEPT {
            self.lost.pop_first();
        }
        p
    }

    fn compact(&mut self) {
        while self.packets.front().is_some_and(|p| p.fate == Fate::Done) {
            self.packets.pop_front();
        }
    }

    /// Forgets the records of lost packets sent before `before`: too old for
    /// their acknowledgement to come now. Returns how many (losses that were
    /// real, as far as the sender will ever know).
    pub(crate) fn forget_lost_before(&mut self, before: Instant) -> usize {
        let mut forgotten = 0;
        // Numbers grow with send times: the oldest records come first.
        while self
            .lost
            .first_key_value()
            .is_some_and(|(_, p)| p.time < before)
        {
            self.lost.pop_first();
            forgotten += 1;
        }
        forgotten
    }

    /// Marks every packet in `range` as delivered and reports it, with
    /// `true` for a packet that had been declared lost (the loss was
    /// spurious).
    pub(crate) fn take_range(
        &mut self,
        range: RangeInclusive<u64>,
        mut f: impl FnMut(SentPacket, bool),
    ) {
        let mut i = self.packets.partition_point(|p| p.number < *range.start());
        while i < self.packets.len() && self.packets[i].number <= *range.end() {
            if self.packets[i].fate == Fate::InFlight {
                f(self.retire(i), false);
            }
            i += 1;
        }
        while let Some((&n, _)) = self.lost.range(range.clone()).next() {
            if let Some(p) = self.lost.remove(&n) {
                f(p, true);
            }
        }
        self.compact();
    }

    /// Declares lost every in-flight packet in `range` (the peer asked for
    /// it again).
    pub(crate) fn lose_range(&mut self, range: RangeInclusive<u64>, mut f: impl FnMut(SentPacket)) {
        let mut i = self.packets.partition_point(|p| p.number < *range.start());
        while i < self.packets.len() && self.packets[i].number <= *range.end() {
            if self.packets[i].fate == Fate::InFlight {
                f(self.lose(i));
            }
            i += 1;
        }
        self.compact();
    }

    /// Declares lost every in-flight packet `rule` says is: sent before the
    /// largest acknowledged one, and either `rule.rtt + rule.reorder_window`
    /// old, or (with `by_count`) at least [`REORDER_THRESHOLD`] numbers
    /// below it. Returns when the oldest survivor below the largest
    /// acknowledged packet would become lost by time, if there is one.
    pub(crate) fn detect_lost(
        &mut self,
        rule: LossRule,
        now: Instant,
        mut f: impl FnMut(SentPacket),
    ) -> Option<Instant> {
        let mut loss_time = None;
        for i in 0..self.packets.len() {
            let p = self.packets[i];
            if p.number >= rule.largest_acked {
                break;
            }
            if p.fate != Fate::InFlight {
                continue;
            }
            let by_count = rule.by_count && p.number + REORDER_THRESHOLD <= rule.largest_acked;
            let deadline = p.time + rule.rtt + rule.reorder_window;
            if !(by_count || deadline <= now) {
                // Later packets are newer in number and time: none of them is lost either.
                loss_time = Some(deadline);
                break;
            }
            f(self.lose(i));
        }
        self.compact();
        loss_time
    }

    /// The newest in-flight packet carrying data, left in flight: what a tail
    /// probe sends again.
    pub(crate) fn newest_data(&self) -> Option<SentPacket> {
        self.packets
            .iter()
            .rev()
            .find(|p| p.fate == Fate::InFlight && p.kind.is_data())
            .copied()
    }

    /// The oldest in-flight packets carrying data, at most `n`: declared lost to
    /// serve as probes when the retransmission timer fires.
    pub(crate) fn take_oldest_data(&mut self, n: usize, mut f: impl FnMut(SentPacket)) {
        let mut taken = 0;
        for i in 0..self.packets.len() {
            if taken == n {
                break;
            }
            let p = self.packets[i];
            if p.fate == Fate::InFlight && p.kind.is_data() {
                f(self.lose(i));
                taken += 1;
            }
        }
        self.compact();
    }

    /// Declares every in-flight packet lost (the retransmission timer fired).
    pub(crate) fn take_all(&mut self, mut f: impl FnMut(SentPacket)) {
        for i in 0..self.packets.len() {
            if self.packets[i].fate == Fate::InFlight {
                f(self.lose(i));
            }
        }
        self.compact();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(t: Instant) -> PacketDelivery {
        PacketDelivery {
            delivered: 0,
            delivered_time: t,
            first_sent_time: t,
            app_limited: false,
        }
    }

    fn rule(largest_acked: u64, rtt_ms: u64, window_ms: u64, by_count: bool) -> LossRule {
        LossRule {
            largest_acked,
            rtt: Duration::from_millis(rtt_ms),
            reorder_window: Duration::from_millis(window_ms),
            by_count,
        }
    }

    #[test]
    fn three_later_packets_or_the_window_declare_a_loss() {
        let t0 = crate::test_support::epoch();
        let mut log = SentLog::default();
        for n in 1..=6 {
            log.push(n, t0, 100, SentKind::Datagram, d(t0));
        }
        let mut acked = Vec::new();
        log.take_range(5..=6, |p, spurious| acked.push((p.number, spurious)));
        assert_eq!(acked, vec![(5, false), (6, false)]);
        let mut lost = Vec::new();
        let next = log.detect_lost(rule(6, 900, 100, true), t0, |p| lost.push(p.number));
        assert_eq!(next, Some(t0 + Duration::from_secs(1)));
        // 1, 2, 3 are three or more below 6; 4 is not (yet).
        assert_eq!(lost, vec![1, 2, 3]);
        assert_eq!(log.count_in_flight(), 1);
        assert_eq!(log.bytes_in_flight(), 100);
        let mut lost = Vec::new();
        log.detect_lost(rule(6, 900, 100, true), t0 + Duration::from_secs(1), |p| {
            lost.push(p.number)
        });
        assert_eq!(lost, vec![4], "by time");
        assert_eq!(log.bytes_in_flight(), 0);
    }

    #[test]
    fn once_reordering_is_seen_only_time_declares_a_loss() {
        let t0 = crate::test_support::epoch();
        let ms = Duration::from_millis;
        let mut log = SentLog::default();
        for n in 1..=10 {
            log.push(n, t0 + ms(n), 100, SentKind::Datagram, d(t0));
        }
        log.take_range(10..=10, |_, _| {});
        let mut lost = Vec::new();
        // Packet 1 left at 1 ms: lost at 1 + 40 + 10 ms, whatever the count.
        let next = log.detect_lost(rule(10, 40, 10, false), t0 + ms(50), |p| {
            lost.push(p.number)
        });
        assert!(lost.is_empty());
        assert_eq!(next, Some(t0 + ms(51)));
        log.detect_lost(rule(10, 40, 10, false), t0 + ms(52), |p| {
            lost.push(p.number)
        });
        assert_eq!(lost, vec![1, 2]);
    }

    #[test]
    fn a_lost_packet_acknowledged_after_all_is_reported_spurious() {
        let t0 = crate::test_support::epoch();
        let mut log = SentLog::default();
        for n in 1..=5 {
            log.push(n, t0, 100, SentKind::Datagram, d(t0));
        }
        log.take_range(5..=5, |_, _| {});
        log.detect_lost(rule(5, 0, 0, true), t0, |_| {});
        assert_eq!((log.count_in_flight(), log.lost_kept()), (0, 4));
        let mut acked = Vec::new();
        log.take_range(1..=2, |p, spurious| acked.push((p.number, spurious)));
        assert_eq!(acked, vec![(1, true), (2, true)]);
        assert_eq!(log.lost_kept(), 2);
        // Old enough records go: those losses were real.
        assert_eq!(log.forget_lost_before(t0 + Duration::from_millis(1)), 2);
        assert_eq!(log.lost_kept(), 0);
        log.take_range(3..=4, |_, _| panic!("forgotten"));
    }

    #[test]
    fn lost_records_are_bounded() {
        let t0 = crate::test_support::epoch();
        let mut log = SentLog::default();
        let n = MAX_LOST_KEPT as u64 + 10;
        for pn in 1..=n {
            log.push(pn, t0, 1, SentKind::Datagram, d(t0));
        }
        log.take_all(|_| {});
        assert_eq!(log.lost_kept(), MAX_LOST_KEPT);
        assert!(log.packets.len() <= MAX_LOST_KEPT + 1);
    }

    #[test]
    fn a_lost_probe_leaves_no_record_and_is_never_a_data_packet() {
        let t0 = crate::test_support::epoch();
        let mut log = SentLog::default();
        log.push(1, t0, 1452, SentKind::MtuProbe, d(t0));
        let part = SentKind::Part {
            stream: StreamId::DEFAULT,
            message: 0,
            index: 3,
            offset: 1170,
        };
        log.push(2, t0, 300, part, d(t0));
        assert_eq!(log.newest_data().map(|p| p.kind), Some(part));
        let mut lost = Vec::new();
        log.take_oldest_data(2, |p| lost.push(p.number));
        assert_eq!(lost, vec![2], "a part is data, a probe is not");
        log.take_all(|p| lost.push(p.number));
        assert_eq!(lost, vec![2, 1]);
        assert_eq!(log.lost_kept(), 1, "the part's record only");
        log.take_range(1..=1, |_, _| panic!("no record of the probe"));
    }

    #[test]
    fn take_all_empties() {
        let t0 = crate::test_support::epoch();
        let mut log = SentLog::default();
        log.push(1, t0, 10, SentKind::Datagram, d(t0));
        log.push(
            2,
            t0,
            10,
            SentKind::Data {
                stream: StreamId::DEFAULT,
                message: 0,
                index: 0,
            },
            d(t0),
        );
        let mut n = 0;
        log.take_all(|_| n += 1);
        assert_eq!(n, 2);
        assert_eq!(log.count_in_flight(), 0);
    }
}
