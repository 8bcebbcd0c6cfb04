//! Loss recovery: acks and repeat requests in, losses detected by packet
//! and time thresholds, retransmission, and the retransmission timeout.

use std::time::{Duration, Instant};

use super::timer::Timer;
use crate::congestion::rate::Sampler;
use crate::congestion::{AckEvent, LossEvent};
use crate::error::ProtocolViolation;
use crate::recovery::sent::{SentKind, SentPacket};
use crate::stream::ControlKind;
use crate::wire::packet::{Ack, RepeatRequest};

use super::mtu::Check;
use super::{MAX_BACKOFF, MAX_REFUSALS, MAX_RTO, SessionCore, State};

/// A loss episode: losses declared from the first until a packet sent after
/// it began is declared lost. Its congestion response is undone if every
/// loss in it proves spurious.
#[derive(Debug, Clone, Copy)]
pub(super) struct LossEpisode {
    /// The first packet number sent after the episode began.
    first_unsent: u64,
    /// Packets declared lost in it, and how many of those were acknowledged
    /// after all.
    lost: u64,
    spurious: u64,
    /// A loss record was forgotten unacknowledged: a real loss, no undo.
    real: bool,
}

/// Tail probes wait at least this long (a timer tick on most runtimes).
const MIN_PROBE_TIMEOUT: Duration = Duration::from_millis(2);

impl SessionCore {
    pub(super) fn on_ack(&mut self, now: Instant, ack: Ack) {
        self.sample_connect_ack_rtt(now, &ack);
        if ack.max_data > self.peer_max_data {
            self.peer_max_data = ack.max_data;
            self.probes = 0;
        }
        let Some(largest) = ack.ranges.first().map(|r| *r.end()) else {
            return;
        };
        if largest >= self.next_pn {
            self.violation(now, ProtocolViolation::InvalidAck);
            return;
        }
        let largest_before = self.largest_acked;
        let mut newest: Option<SentPacket> = None;
        let mut acked_any = false;
        let mut reordered = false;
        let mut spurious = 0;
        let mut bytes_acked = 0;
        let mut sampler = Sampler::default();
        // Rare kinds, handled once the ranges are: a path MTU probe, parts
        // of fragments, and (while some fragment is in parts) whole ones.
        let mut probes = Vec::new();
        let mut parts = Vec::new();
        let mut wholes = Vec::new();
        let mut ticket_acked = false;
        let splitting = self.parts.is_some();
        for range in ack.ranges {
            let (streams, cc, delivery, pmtu) = (
                &mut self.streams,
                &mut self.cc,
                &mut self.delivery,
                &mut self.pmtu,
            );
            let mut ended = Vec::new();
            self.sent.take_range(range, |p, was_lost| {
                // Acknowledged after a packet sent later than it: the path
                // reorders.
                reordered |= largest_before.is_some_and(|l| p.number < l);
                if was_lost {
                    // Late, not lost: out of flight already, so it counts for
                    // neither the window nor the rate; its data is delivered.
                    spurious += 1;
                } else {
                    acked_any = true;
                    let size = u64::from(p.size);
                    bytes_acked += size;
                    delivery.on_acked(now, p.time, size, &p.delivery, &mut sampler);
                    cc.on_packet_acked(now, p.time, size);
                    if newest.is_none_or(|n| p.number > n.number) {
                        newest = Some(p);
                    }
                }
                match p.kind {
                    SentKind::Data {
                        stream,
                        message,
                        index,
                    } => {
                        if let Some(s) = streams.get_mut(&stream) {
                            s.send.on_acked(message, index);
                            if s.send_closed && s.send.is_empty() {
                                ended.push(stream);
                            }
                        }
                        if splitting {
                            wholes.push((stream, message, index));
                        }
                    }
                    SentKind::MtuProbe => probes.push(p.number),
                    SentKind::Part {
                        stream,
                        message,
                        index,
                        offset,
                    } => parts.push((stream, message, index, offset)),
                    SentKind::Control {
                        stream,
                        kind: ControlKind::End,
                    } => {
                        if let Some(s) = streams.get_mut(&stream) {
                            s.end_acked = true;
                            ended.push(stream);
                        }
                    }
                    SentKind::Ticket => ticket_acked = true,
                    SentKind::Control { .. } | SentKind::Datagram => {}
                }
                if p.kind != SentKind::MtuProbe {
                    pmtu.on_acked(p.number, p.size as usize);
                }
            });
            for id in ended {
                self.check_stream_end(id);
            }
        }
        for pn in probes {
            self.on_probe_acked(now, pn);
        }
        if ticket_acked {
            self.on_ticket_acked();
        }
        if !parts.is_empty() {
            self.on_parts_acked(&parts);
        }
        for (stream, message, index) in wholes {
            self.on_whole_acked(stream, message, index);
        }
        let mut rtt_sample = None;
        if let Some(p) = newest {
            let sample = now.saturating_duration_since(p.time);
            if largest_before.is_none_or(|l| p.number > l) {
                // RACK's clock: the most recently sent packet delivered.
                self.reorder.on_rtt(sample);
            }
            if p.number == largest {
                let delay = Duration::from_micros(ack.delay_micros).min(self.peer_max_ack_delay);
                self.rtt.update(sample, delay);
                self.stats.rtt_samples.record(sample);
                rtt_sample = Some(sample);
            }
        }
        if reordered {
            self.reorder.on_reordered();
        }
        if acked_any {
            self.backoff = 0;
            self.tail_probed = false;
        }
        self.largest_acked = Some(largest_before.map_or(largest, |l| l.max(largest)));
        if spurious > 0 {
            self.on_spurious_losses(spurious);
        }
        self.forget_old_losses(now);
        // Loss detection waits until every datagram that arrived with this
        // one has been handled: see `Timer::Loss`.
        self.timers.set(Timer::Loss, now);
        if acked_any {
            let min_rtt = self.rtt.min().unwrap_or_default();
            let rate = self.delivery.finish(sampler, min_rtt);
            self.cc.on_ack(&AckEvent {
                now,
                bytes_acked,
                bytes_in_flight: self.sent.bytes_in_flight(),
                srtt: self.rtt.smoothed(),
                rtt_sample,
                rate,
            });
        }
        self.after_send_progress(now);
    }

    /// `count` packets declared lost were acknowledged after all: the path
    /// reorders more than the window allowed. Widen it, and undo the
    /// congestion response if the whole episode was spurious.
    fn on_spurious_losses(&mut self, count: u64) {
        self.stats.spurious_losses += count;
        let largest = self.largest_acked.unwrap_or(0);
        self.reorder.on_spurious(largest, self.next_pn);
        if let Some(e) = self.episode.as_deref_mut() {
            e.spurious += count;
            if !e.real && e.spurious >= e.lost {
                self.cc.undo_loss();
                self.stats.congestion_undos += 1;
                self.episode = None;
            }
        }
    }

    /// Records of losses old enough that no acknowledgement will come for
    /// them now are dropped: those losses were real.
    fn forget_old_losses(&mut self, now: Instant) {
        if self.sent.lost_kept() == 0 {
            return;
        }
        let keep = self.rtt.smoothed() * 3 + self.reorder_window();
        if let Some(before) = now.checked_sub(keep)
            && self.sent.forget_lost_before(before) > 0
            && let Some(e) = self.episode.as_deref_mut()
        {
            e.real = true;
        }
    }

    /// RACK's reordering window now.
    pub(super) fn reorder_window(&self) -> Duration {
        let srtt = self.rtt.smoothed();
        self.reorder.window(self.rtt.min().unwrap_or(srtt), srtt)
    }

    pub(super) fn on_repeat_request(&mut self, now: Instant, r: RepeatRequest) {
        self.stats.repeat_requests_received += 1;
        let mut lost = Vec::new();
        for range in r.missing {
            if *range.start() >= self.next_pn {
                continue;
            }
            self.sent.lose_range(range, |p| lost.push(p));
        }
        // (Whether these losses show an MTU black hole is judged after the
        // next ack, once what arrived after them is known: `check_mtu`.)
        self.on_lost_packets(now, lost);
        self.after_send_progress(now);
    }

    pub(super) fn detect_losses(&mut self, now: Instant) {
        let Some(largest) = self.largest_acked else {
            return;
        };
        let srtt = self.rtt.smoothed();
        let in_recovery = self
            .episode
            .as_ref()
            .is_some_and(|e| largest < e.first_unsent);
        let rule = self
            .reorder
            .rule(largest, self.rtt.min().unwrap_or(srtt), srtt, in_recovery);
        let mut lost = Vec::new();
        match self.sent.detect_lost(rule, now, |p| lost.push(p)) {
            Some(at) => self.timers.set(Timer::Loss, at),
            None => self.timers.clear(Timer::Loss),
        }
        self.on_lost_packets(now, lost);
        self.check_mtu(now);
    }

    /// Whether the losses so far show an MTU black hole: then back to the
    /// base size (fragments cut larger go out in parts).
    pub(super) fn check_mtu(&mut self, now: Instant) {
        match self.pmtu.check(now, self.largest_acked, self.rto()) {
            Check::Fine => {}
            Check::Ping => self.ping_due = true,
            Check::BlackHole => {
                self.stats.mtu_black_holes += 1;
                self.mtu = self.pmtu.current();
            }
        }
    }

    /// Takes the path MTU probes out of `lost` (their loss is not
    /// congestion, and nothing is sent again), and tells path MTU discovery
    /// of every loss.
    fn take_probe_losses(&mut self, now: Instant, lost: &mut Vec<SentPacket>) {
        lost.retain(|p| {
            if p.kind == SentKind::MtuProbe {
                self.stats.mtu_probes_lost += 1;
                self.pmtu.on_probe_lost(now, p.number);
                false
            } else {
                self.pmtu.on_lost(p.number, p.size as usize);
                true
            }
        });
    }

    pub(super) fn on_lost_packets(&mut self, now: Instant, mut lost: Vec<SentPacket>) {
        self.take_probe_losses(now, &mut lost);
        let Some(newest) = lost.iter().map(|p| p.time).max() else {
            return;
        };
        let bytes_lost = self.record_losses(&lost);
        self.cc.on_loss(&LossEvent {
            now,
            largest_sent: newest,
            bytes_lost,
        });
    }

    /// Counts `lost`, queues what they carried again, and files them in the
    /// loss episode they belong to (a new one if a packet sent after the
    /// current one began is among them). Returns the bytes lost; the
    /// congestion controller is the caller's to tell.
    fn record_losses(&mut self, lost: &[SentPacket]) -> u64 {
        let Some(highest) = lost.iter().map(|p| p.number).max() else {
            return 0;
        };
        let mut bytes_lost = 0;
        for p in lost {
            self.stats.lost += 1;
            bytes_lost += u64::from(p.size);
            self.requeue(p.kind);
        }
        let count = lost.len() as u64;
        match self.episode.as_deref_mut() {
            Some(e) if highest < e.first_unsent => e.lost += count,
            _ => {
                self.episode = Some(Box::new(LossEpisode {
                    first_unsent: self.next_pn,
                    lost: count,
                    spurious: 0,
                    real: false,
                }));
                self.reorder.on_episode();
            }
        }
        bytes_lost
    }

    /// What a lost packet carried goes out again (or, on an unreliable
    /// stream, is given up).
    pub(super) fn requeue(&mut self, kind: SentKind) {
        match kind {
            SentKind::Data {
                stream,
                message,
                index,
            } => {
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.send.on_lost(message, index);
                }
            }
            SentKind::Control { stream, kind } => match kind {
                ControlKind::End => {
                    if let Some(s) = self.streams.get_mut(&stream)
                        && !s.end_acked
                    {
                        s.end_due = true;
                    }
                }
                ControlKind::Credit => {
                    if let Some(s) = self.streams.get_mut(&stream) {
                        s.credit_due = true;
                    }
                }
                ControlKind::Refuse => {
                    if self.refusals.len() < MAX_REFUSALS {
                        self.refusals.push_back(stream);
                    }
                }
            },
            SentKind::Part {
                stream,
                message,
                index,
                ..
            } => self.on_part_lost(stream, message, index),
            SentKind::Ticket => self.on_ticket_lost(),
            SentKind::Datagram | SentKind::MtuProbe => {}
        }
    }

    pub(super) fn rto(&self) -> Duration {
        let base = self
            .rtt
            .rto(self.peer_max_ack_delay, self.config.delivery_timeout);
        (base * (1u32 << self.backoff.min(MAX_BACKOFF))).min(MAX_RTO)
    }

    pub(super) fn arm_retransmit(&mut self, now: Instant) {
        if self.state != State::Established {
            return;
        }
        if self.sent.count_in_flight() > 0 {
            let from = self.sent.last_sent().unwrap_or(now);
            let wait = if self.backoff == 0 && !self.tail_probed {
                self.probe_timeout()
            } else {
                self.rto()
            };
            self.timers.set(Timer::Retransmit, from + wait);
        } else if self.blocked_on_credit() {
            if self.timers.get(Timer::Retransmit).is_none() {
                self.timers
                    .set(Timer::Retransmit, now + self.probe_interval());
            }
        } else {
            self.timers.clear(Timer::Retransmit);
        }
    }

    pub(super) fn on_retransmit_timeout(&mut self, now: Instant) {
        if self.pmtu.probing() && self.sent.count_in_flight() == 1 {
            // Only a path MTU probe is in flight, unanswered for a probe
            // timeout: lost. Not congestion, so no backoff.
            let mut lost = Vec::new();
            self.sent.take_all(|p| lost.push(p));
            self.on_lost_packets(now, lost);
            self.arm_retransmit(now);
            return;
        }
        if self.sent.count_in_flight() > 0 {
            if self.backoff == 0 && !self.tail_probed {
                self.send_tail_probe(now);
                return;
            }
            self.stats.timeouts += 1;
            let mut lost = Vec::new();
            if self.backoff == 0 {
                // First expiry: probe with the two oldest fragments. Their acks let
                // ordinary loss detection find whatever else is missing.
                self.sent.take_oldest_data(2, |p| lost.push(p));
                if lost.is_empty() {
                    self.ping_due = true;
                }
                self.on_lost_packets(now, lost);
            } else {
                // Nothing came back after a probe either: persistent congestion.
                self.sent.take_all(|p| lost.push(p));
                self.take_probe_losses(now, &mut lost);
                self.record_losses(&lost);
                self.cc.on_timeout(now);
            }
            self.backoff += 1;
            self.timers.set(Timer::Retransmit, now + self.rto());
            self.check_mtu(now);
        } else if self.blocked_on_credit() {
            // Our credit update may have been lost: a ping makes the peer ack again.
            self.ping_due = true;
            self.probes += 1;
            self.timers
                .set(Timer::Retransmit, now + self.probe_interval());
        }
    }

    /// Acks stopped coming with packets in flight: the tail of the flight may
    /// be lost, and no later packet will reveal it. Send the newest data again
    /// (or a ping), beyond the window and without a congestion response: its
    /// ack lets loss detection find what is missing, sooner than the RTO.
    fn send_tail_probe(&mut self, now: Instant) {
        self.tail_probed = true;
        self.stats.tail_probes += 1;
        let reliable = |s: &SessionCore, stream| {
            s.streams
                .get(&stream)
                .is_some_and(|st| st.kind.is_reliable())
        };
        match self.sent.newest_data().map(|p| p.kind) {
            Some(kind @ (SentKind::Data { stream, .. } | SentKind::Part { stream, .. }))
                if reliable(self, stream) =>
            {
                self.requeue(kind);
                self.probe_due = true;
            }
            _ => self.ping_due = true,
        }
        self.timers.set(Timer::Retransmit, now + self.rto());
    }

    /// How long to wait for an ack before a tail probe: QUIC's probe timeout
    /// (RFC 9002 §6.2), the smoothed RTT plus four variations and the peer's
    /// ack delay, without the RTO's floor and backoff.
    fn probe_timeout(&self) -> Duration {
        self.rtt
            .rto(self.peer_max_ack_delay, MIN_PROBE_TIMEOUT)
            .min(self.rto())
    }

    /// Wait between credit probes: doubling from the RTO up to the ping interval,
    /// so a reader that stalls for long costs one ping per interval.
    pub(super) fn probe_interval(&self) -> Duration {
        let base = self
            .rtt
            .rto(self.peer_max_ack_delay, self.config.delivery_timeout);
        (base * (1u32 << self.probes.min(MAX_BACKOFF))).min(self.config.ping_interval.max(base))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;
    use crate::session::test_pair::{LISTENER, Pair, STARTER, drain, open};
    use crate::wire::packet::Packet;
    use crate::wire::stream::StreamId;
    use bytes::Bytes;

    #[test]
    fn acks_that_arrive_together_are_all_taken_in_before_any_packet_is_declared_lost() {
        let mut pair = Pair::established(Config::default());
        let t0 = pair.now;
        for _ in 0..8 {
            pair.starter
                .send(StreamId::DEFAULT, Bytes::from(vec![7; 1000]))
                .unwrap();
        }
        let data = drain(&mut pair.starter, t0);
        assert_eq!(data.len(), 8);
        // The last four arrive first, and are acknowledged alone; then the
        // first four arrive, and a second ack covers all eight.
        let t1 = t0 + Duration::from_millis(5);
        let mut acks = Vec::new();
        for half in [&data[4..], &data[..4]] {
            for d in half {
                let r = open(&pair.listener, d);
                pair.listener
                    .handle_packet(t1, STARTER, r.header, r.ack, r.packet, r.len, 0);
            }
            // Only the acks: on this instant's zero RTT the listener also
            // asks for the gap at once, which is not what is under test.
            acks.extend(
                drain(&mut pair.listener, t1)
                    .into_iter()
                    .filter(|d| matches!(open(&pair.starter, d).packet, Packet::Ack(_))),
            );
        }
        assert_eq!(acks.len(), 2);
        // The sender was held up: both acks reach it together, long after
        // the first four packets were due. Only the first ack, taken alone,
        // would make them look lost.
        let late = t0 + Duration::from_secs(1);
        for d in &acks {
            let r = open(&pair.starter, d);
            pair.starter
                .handle_packet(late, LISTENER, r.header, r.ack, r.packet, r.len, 0);
        }
        if pair.starter.next_timeout().is_some_and(|t| t <= late) {
            pair.starter.handle_timeout(late);
        }
        let stats = pair.starter.stats();
        assert_eq!((stats.lost, stats.retransmitted), (0, 0), "{stats:?}");
    }

    #[test]
    fn an_unanswered_tail_is_probed_first_then_resent_at_doubling_intervals() {
        let mut pair = Pair::established(Config::default());
        let start = pair.now;
        pair.starter
            .send(StreamId::DEFAULT, Bytes::from_static(b"into the void"))
            .unwrap();
        assert!(!drain(&mut pair.starter, start).is_empty());
        // Nothing reaches the peer from here on: every expiry resends.
        let mut resent_at = Vec::new();
        while resent_at.len() < 6 {
            let now = pair
                .starter
                .next_timeout()
                .expect("a retransmission is armed");
            pair.starter.handle_timeout(now);
            if !drain(&mut pair.starter, now).is_empty() {
                resent_at.push(now - start);
            }
        }
        let intervals: Vec<_> = std::iter::once(resent_at[0])
            .chain(resent_at.windows(2).map(|w| w[1] - w[0]))
            .collect();
        // The tail probe comes first, before the retransmission timeout.
        assert_eq!(pair.starter.stats().tail_probes, 1);
        assert!(intervals[0] < intervals[1], "resent at {resent_at:?}");
        for w in intervals[1..].windows(2) {
            assert_eq!(w[1], w[0] * 2, "resent at {resent_at:?}");
        }
    }
}
