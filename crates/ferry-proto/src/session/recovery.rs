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

use super::{MAX_BACKOFF, MAX_REFUSALS, MAX_RTO, SessionCore, State};

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
        let mut newest: Option<SentPacket> = None;
        let mut acked_any = false;
        let mut bytes_acked = 0;
        let mut sampler = Sampler::default();
        for range in ack.ranges {
            let (streams, cc, delivery) = (&mut self.streams, &mut self.cc, &mut self.delivery);
            let mut ended = Vec::new();
            self.sent.take_range(range, |p| {
                acked_any = true;
                let size = u64::from(p.size);
                bytes_acked += size;
                delivery.on_acked(now, p.time, size, &p.delivery, &mut sampler);
                cc.on_packet_acked(now, p.time, size);
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
                    }
                    SentKind::Control {
                        stream,
                        kind: ControlKind::End,
                    } => {
                        if let Some(s) = streams.get_mut(&stream) {
                            s.end_acked = true;
                            ended.push(stream);
                        }
                    }
                    SentKind::Control { .. } | SentKind::Datagram => {}
                }
                if newest.is_none_or(|n| p.number > n.number) {
                    newest = Some(p);
                }
            });
            for id in ended {
                self.check_stream_end(id);
            }
        }
        let mut rtt_sample = None;
        if let Some(p) = newest
            && p.number == largest
        {
            let delay = Duration::from_micros(ack.delay_micros).min(self.peer_max_ack_delay);
            let sample = now.saturating_duration_since(p.time);
            self.rtt.update(sample, delay);
            rtt_sample = Some(sample);
        }
        if acked_any {
            self.backoff = 0;
        }
        self.largest_acked = Some(self.largest_acked.map_or(largest, |l| l.max(largest)));
        self.detect_losses(now);
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

    pub(super) fn on_repeat_request(&mut self, now: Instant, r: RepeatRequest) {
        self.stats.repeat_requests_received += 1;
        let mut lost = Vec::new();
        for range in r.missing {
            if *range.start() >= self.next_pn {
                continue;
            }
            self.sent.take_range(range, |p| lost.push(p));
        }
        self.on_lost_packets(now, lost);
        self.after_send_progress(now);
    }

    pub(super) fn detect_losses(&mut self, now: Instant) {
        let Some(largest) = self.largest_acked else {
            return;
        };
        let delay = self.rtt.smoothed().max(self.rtt.latest()) * 9 / 8;
        let delay = delay.max(Duration::from_millis(1));
        let mut lost = Vec::new();
        match self.sent.detect_lost(largest, now, delay, |p| lost.push(p)) {
            Some(at) => self.timers.set(Timer::Loss, at),
            None => self.timers.clear(Timer::Loss),
        }
        self.on_lost_packets(now, lost);
    }

    pub(super) fn on_lost_packets(&mut self, now: Instant, lost: Vec<SentPacket>) {
        let Some(newest) = lost.iter().map(|p| p.time).max() else {
            return;
        };
        let mut bytes_lost = 0;
        for p in &lost {
            self.stats.lost += 1;
            bytes_lost += u64::from(p.size);
            self.requeue(p.kind);
        }
        self.cc.on_loss(&LossEvent {
            now,
            largest_sent: newest,
            bytes_lost,
        });
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
            SentKind::Datagram => {}
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
            self.timers.set(Timer::Retransmit, from + self.rto());
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
        if self.sent.count_in_flight() > 0 {
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
                for p in &lost {
                    self.stats.lost += 1;
                    self.requeue(p.kind);
                }
                self.cc.on_timeout(now);
            }
            self.backoff += 1;
            self.timers.set(Timer::Retransmit, now + self.rto());
        } else if self.blocked_on_credit() {
            // Our credit update may have been lost: a ping makes the peer ack again.
            self.ping_due = true;
            self.probes += 1;
            self.timers
                .set(Timer::Retransmit, now + self.probe_interval());
        }
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
    use crate::config::Config;
    use crate::session::test_pair::{Pair, drain};
    use crate::wire::stream::StreamId;
    use bytes::Bytes;

    #[test]
    fn an_unanswered_packet_is_resent_at_doubling_intervals() {
        let mut pair = Pair::established(Config::default());
        let start = pair.now;
        pair.starter
            .send(StreamId::DEFAULT, Bytes::from_static(b"into the void"))
            .unwrap();
        assert!(!drain(&mut pair.starter, start).is_empty());
        // Nothing reaches the peer from here on: every expiry resends.
        let mut resent_at = Vec::new();
        while resent_at.len() < 5 {
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
        for w in intervals.windows(2) {
            assert_eq!(w[1], w[0] * 2, "resent at {resent_at:?}");
        }
    }
}
