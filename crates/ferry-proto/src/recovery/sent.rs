//! The sender's record of packets in flight, and loss detection over it.

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::time::{Duration, Instant};

use crate::congestion::rate::PacketDelivery;
use crate::recovery::ack::REORDER_THRESHOLD;
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
    in_flight: bool,
}

/// Packets in flight, in packet-number order. Acked and lost entries leave the
/// front lazily, so every operation is proportional to what it touches.
#[derive(Debug, Default)]
pub(crate) struct SentLog {
    packets: VecDeque<SentPacket>,
    bytes_in_flight: u64,
    count_in_flight: usize,
    last_sent: Option<Instant>,
}

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
            in_flight: true,
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

    fn retire(&mut self, i: usize) -> SentPacket {
        let p = &mut self.packets[i];
        p.in_flight = false;
        self.bytes_in_flight -= u64::from(p.size);
        self.count_in_flight -= 1;
        *p
    }

    fn compact(&mut self) {
        while self.packets.front().is_some_and(|p| !p.in_flight) {
            self.packets.pop_front();
        }
    }

    /// Marks every in-flight packet in `range` as delivered and reports it.
    pub(crate) fn take_range(&mut self, range: RangeInclusive<u64>, mut f: impl FnMut(SentPacket)) {
        let mut i = self.packets.partition_point(|p| p.number < *range.start());
        while i < self.packets.len() && self.packets[i].number <= *range.end() {
            if self.packets[i].in_flight {
                f(self.retire(i));
            }
            i += 1;
        }
        self.compact();
    }

    /// Declares lost every in-flight packet sent before the largest acknowledged
    /// one by at least [`REORDER_THRESHOLD`] numbers or `delay` of time. Returns
    /// when the oldest survivor below the largest acknowledged packet would
    /// become lost by time, if there is one.
    pub(crate) fn detect_lost(
        &mut self,
        largest_acked: u64,
        now: Instant,
        delay: Duration,
        mut f: impl FnMut(SentPacket),
    ) -> Option<Instant> {
        let mut loss_time = None;
        for i in 0..self.packets.len() {
            let p = self.packets[i];
            if p.number >= largest_acked {
                break;
            }
            if !p.in_flight {
                continue;
            }
            let by_number = p.number + REORDER_THRESHOLD <= largest_acked;
            let by_time = p.time + delay <= now;
            if !(by_number || by_time) {
                // Later packets are newer in number and time: none of them is lost either.
                loss_time = Some(p.time + delay);
                break;
            }
            f(self.retire(i));
        }
        self.compact();
        loss_time
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
            if p.in_flight && matches!(p.kind, SentKind::Data { .. }) {
                f(self.retire(i));
                taken += 1;
            }
        }
        self.compact();
    }

    /// Declares every in-flight packet lost (the retransmission timer fired).
    pub(crate) fn take_all(&mut self, mut f: impl FnMut(SentPacket)) {
        for i in 0..self.packets.len() {
            if self.packets[i].in_flight {
                f(self.retire(i));
            }
        }
        self.packets.clear();
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

    #[test]
    fn ack_then_loss_by_number() {
        let t0 = crate::test_support::epoch();
        let mut log = SentLog::default();
        for n in 1..=6 {
            log.push(n, t0, 100, SentKind::Datagram, d(t0));
        }
        let mut acked = Vec::new();
        log.take_range(5..=6, |p| acked.push(p.number));
        assert_eq!(acked, vec![5, 6]);
        let mut lost = Vec::new();
        let next = log.detect_lost(6, t0, Duration::from_secs(1), |p| lost.push(p.number));
        assert_eq!(next, Some(t0 + Duration::from_secs(1)));
        // 1, 2, 3 are three or more below 6; 4 is not (yet).
        assert_eq!(lost, vec![1, 2, 3]);
        assert_eq!(log.count_in_flight(), 1);
        assert_eq!(log.bytes_in_flight(), 100);
        let mut lost = Vec::new();
        log.detect_lost(
            6,
            t0 + Duration::from_secs(1),
            Duration::from_secs(1),
            |p| lost.push(p.number),
        );
        assert_eq!(lost, vec![4], "by time");
        assert_eq!(log.bytes_in_flight(), 0);
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
