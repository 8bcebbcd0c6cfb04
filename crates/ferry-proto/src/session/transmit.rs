//! What to send next: the order of packet kinds, the windows and the pacer,
//! fragments of messages, and the bookkeeping of every packet sent.

use std::collections::VecDeque;
use std::ops::Bound::{Excluded, Included, Unbounded};
use std::time::Instant;

use super::parts::data_fields;
use super::timer::Timer;
use crate::message::fragment_cost;
use crate::recovery::sent::SentKind;
use crate::wire::packet::{Ack, Data, FIXED_HEADER_LEN, MAX_HEADER_LEN, Packet, RepeatRequest};
use crate::wire::stream::StreamId;

use super::{
    CHALLENGE_LEN, CHECKSUM, MAX_BACKOFF, MAX_HANDSHAKE_RETRY, PACING_MIN_RTT, SEND_BUFFER_WINDOWS,
    SessionCore, SessionEvent, State,
};

/// A datagram being written at the end of the transmit buffer: its packet
/// number, and where in the buffer it starts (the buffer may hold earlier
/// datagrams of a batch).
#[derive(Debug, Clone, Copy)]
pub(super) struct Begun {
    pub(super) pn: u64,
    pub(super) start: usize,
}

impl SessionCore {
    /// How many bytes the session, and each stream, may hold queued and
    /// unacknowledged: the configured buffers, grown to three congestion
    /// windows (at most `max_send_buffer`) so that a long fat path is never
    /// held back by a buffer smaller than what it keeps in flight.
    pub(super) fn send_limits(&self) -> (usize, usize) {
        let grown = usize::try_from(self.cc.window())
            .unwrap_or(usize::MAX)
            .saturating_mul(SEND_BUFFER_WINDOWS)
            .min(self.config.max_send_buffer);
        (
            self.config.send_buffer.max(grown),
            self.config.stream_send_buffer.max(grown),
        )
    }

    /// After acks or losses: wake a blocked sender, re-arm the retransmission timer.
    pub(super) fn after_send_progress(&mut self, now: Instant) {
        let mut ready = false;
        let (session_limit, limit) = self.send_limits();
        if self.send_blocked && self.buffered() < session_limit {
            self.send_blocked = false;
            ready = true;
        }
        for stream in self.streams.values_mut() {
            if stream.send_blocked && stream.send.buffered() < limit {
                stream.send_blocked = false;
                ready = true;
            }
        }
        if ready {
            // Writers retry: the session, or a stream, has room again.
            self.events.push_back(SessionEvent::SendReady);
        }
        self.arm_retransmit(now);
    }

    pub(super) fn credit(&self) -> u64 {
        self.peer_max_data.saturating_sub(self.credit_used)
    }

    pub(super) fn payload_room(&self) -> usize {
        self.mtu - MAX_HEADER_LEN - self.protection.overhead()
    }

    /// Whether new data waits and none of it fits the credit granted: the
    /// peer's credit update may have been lost.
    pub(super) fn blocked_on_credit(&self) -> bool {
        let room = self.payload_room();
        let mut waiting = false;
        for s in self.streams.values() {
            if !s.send.has_unsent() || !s.kind.is_reliable() {
                continue;
            }
            waiting = true;
            if s.send
                .next_unsent_cost(room)
                .is_some_and(|c| c <= self.credit().min(s.credit()))
            {
                return false;
            }
        }
        waiting
    }

    /// Appends `packet` (header and body, not yet sealed) at the end of
    /// `buf`, as the next packet number.
    pub(super) fn begin(&mut self, buf: &mut Vec<u8>, packet: &Packet) -> Begun {
        let pn = self.next_pn;
        self.next_pn += 1;
        let start = buf.len();
        let ride = if packet.kind().may_carry_ack() {
            self.riding.take()
        } else {
            None
        };
        packet.encode_with_ack(self.peer_id, pn, ride.as_deref(), buf);
        if let Some(ack) = ride {
            if buf.len() - start + self.protection.overhead() > self.mtu {
                // No room beside this body (a fragment repaired whole, a
                // large datagram): the ack waits for the next packet.
                buf.truncate(start);
                packet.encode(self.peer_id, pn, buf);
                self.riding = Some(ack);
            } else {
                self.stats.acks_carried += 1;
            }
        }
        Begun { pn, start }
    }

    /// Seals the datagram `begun` started (from its start to the end of
    /// `buf`) and counts it; returns its length.
    pub(super) fn finish(&mut self, buf: &mut Vec<u8>, begun: Begun) -> usize {
        let header_len = FIXED_HEADER_LEN + crate::wire::codec::varint_len(begun.pn);
        self.protection
            .seal_at(begun.pn, begun.start, header_len, buf);
        self.count_sent(buf, begun)
    }

    /// Counts the datagram `begun` started, just sealed; returns its length.
    pub(super) fn count_sent(&mut self, buf: &[u8], begun: Begun) -> usize {
        let len = buf.len() - begun.start;
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += len as u64;
        len
    }

    pub(super) fn emit(&mut self, buf: &mut Vec<u8>, packet: &Packet) -> (u64, usize) {
        let begun = self.begin(buf, packet);
        (begun.pn, self.finish(buf, begun))
    }

    /// Writes the next datagram into `buf` (cleared first); returns its
    /// length. (The endpoint appends with
    /// [`poll_transmit_append`](Self::poll_transmit_append).)
    #[cfg(test)]
    pub(crate) fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        buf.clear();
        self.poll_transmit_append(now, buf)
    }

    /// Appends the next datagram at the end of `buf`, leaving what `buf`
    /// holds before it untouched; returns the datagram's own length. `None`
    /// leaves `buf` as it was.
    ///
    /// Until the peer's address is validated, at most `amplification_factor`
    /// times the bytes received from it leave: a forged connect cannot turn
    /// this side into an amplifier aimed at the address it names. The check
    /// assumes a full-size datagram, so it holds whatever is sent next.
    pub(crate) fn poll_transmit_append(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Option<usize> {
        if self.state == State::Incoming {
            // Nothing goes before the application's decision.
            return None;
        }
        if let Some(v) = &mut self.validation {
            let allowed = v
                .received
                .saturating_mul(u64::from(self.config.amplification_factor));
            // The challenge is small: it goes whenever it fits, so that a
            // lost one never waits for the peer to send more.
            if v.due
                && v.sent + CHALLENGE_LEN <= allowed
                && !self.connect_ack_due
                && self.state == State::Established
            {
                v.due = false;
                v.tries += 1;
                let (token, tries) = (v.token, v.tries);
                let len = self.emit(buf, &Packet::PathChallenge { token }).1;
                if let Some(v) = &mut self.validation {
                    v.sent += len as u64;
                }
                // Backing off as a connect does, at most a second apart.
                let rto = self.rto();
                let wait = rto * (1u32 << (tries - 1).min(MAX_BACKOFF));
                self.timers.set(
                    Timer::Handshake,
                    now + wait.min(MAX_HANDSHAKE_RETRY.max(rto)),
                );
                return Some(len);
            }
            if v.sent + self.mtu as u64 > allowed {
                if !self.amplification_blocked {
                    self.amplification_blocked = true;
                    self.stats.amplification_limited += 1;
                }
                return None;
            }
            self.amplification_blocked = false;
        }
        let len = self.poll_transmit_validated(now, buf)?;
        if let Some(v) = &mut self.validation {
            v.sent += len as u64;
        }
        Some(len)
    }

    pub(super) fn poll_transmit_validated(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Option<usize> {
        match self.state {
            State::Closed | State::Incoming => return None,
            State::Closing => {
                if !self.close_due {
                    return None;
                }
                if std::mem::take(&mut self.ack_before_close) {
                    // The ack owed when closing, just before the Close: a
                    // sender waiting for its data to be acknowledged learns
                    // it arrived instead of seeing it dropped by the close.
                    let ack = match self.riding.take() {
                        Some(ack) => Some(*ack),
                        None => self.take_ack(now),
                    };
                    if let Some(ack) = ack {
                        return Some(self.emit(buf, &Packet::Ack(ack)).1);
                    }
                }
                self.close_due = false;
                self.close_sent_at = Some(now);
                let close = self.close_packet.clone()?;
                return Some(self.emit(buf, &Packet::Close(close)).1);
            }
            State::Init | State::Handshaking => return self.poll_handshake(now, buf),
            State::Established => self.maybe_update_keys(now),
        }
        if self.connect_ack_due {
            self.connect_ack_due = false;
            // Under a checksum: the starter has no keys before reading it.
            let p = Packet::ConnectAck(self.handshake_params());
            let begun = self.begin(buf, &p);
            self.connect_ack_sent = Some((begun.pn, now));
            let header_len = FIXED_HEADER_LEN + crate::wire::codec::varint_len(begun.pn);
            CHECKSUM.seal_at(begun.pn, begun.start, header_len, buf);
            return Some(self.count_sent(buf, begun));
        }
        if self.acks.nack_pending() {
            let missing = self.acks.take_nacks();
            if !missing.is_empty() {
                self.stats.repeat_requests_sent += 1;
                let p = Packet::RepeatRequest(RepeatRequest { missing });
                return Some(self.emit(buf, &p).1);
            }
        }
        if self.riding.is_some()
            || (self.acks.ack_due(now) && !self.next_data_has_room(self.acks.ack_len_bound()))
        {
            // Taken to ride on a packet that could not carry it, or due
            // with no packet of data to carry it (none waits, or the next is
            // full): alone, now.
            return self.poll_ack(now, buf);
        }
        if let Some((addr, token)) = self.path_responses.pop_front() {
            if self.path_responses.is_empty() {
                // Answers are rare (one per handshake without a key, one per
                // move): an idle session keeps no buffer for them.
                self.path_responses = VecDeque::new();
            }
            self.destination = Some(addr);
            return Some(self.emit(buf, &Packet::PathResponse { token }).1);
        }
        if let Some(check) = &mut self.path
            && check.due
        {
            check.due = false;
            check.tries += 1;
            check.sent_at = Some(now);
            let (addr, token) = (check.addr, check.token);
            self.destination = Some(addr);
            return Some(self.emit(buf, &Packet::PathChallenge { token }).1);
        }
        if let Some(ping) = self.ping_acks_due.pop_front() {
            return Some(self.emit(buf, &Packet::PingAck { ping }).1);
        }
        if self.ping_due {
            self.ping_due = false;
            self.stats.pings_sent += 1;
            let (pn, len) = self.emit(buf, &Packet::Ping);
            self.last_ping = Some((pn, now));
            return Some(len);
        }
        if let Some(len) = self.poll_ticket(now, buf) {
            return Some(len);
        }
        // A due ack rides on the next packet of data; with none to send it
        // goes alone.
        self.poll_payload(now, buf)
            .or_else(|| self.poll_ack(now, buf))
    }

    /// An Ack packet: the one taken to ride that found no packet to carry
    /// it, or a due one.
    fn poll_ack(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        let ack = match self.riding.take() {
            Some(ack) => *ack,
            None if self.acks.ack_due(now) => self.take_ack(now)?,
            None => return None,
        };
        Some(self.emit(buf, &Packet::Ack(ack)).1)
    }

    /// Builds the next ack: the tracker's ranges, and the credit granted.
    fn take_ack(&mut self, now: Instant) -> Option<Ack> {
        let (delay_micros, ranges) = self.acks.take_ack(now)?;
        self.timers.clear(Timer::Ack);
        let window = self
            .recv_window
            .update(now, self.consumed, self.rtt.smoothed());
        self.advertised_max_data = self.consumed + window;
        self.stats.acks_sent += 1;
        Some(Ack {
            delay_micros,
            max_data: self.advertised_max_data,
            ranges,
        })
    }

    /// Takes the ack to carry on the packet of data about to be written, if
    /// that packet has room for it: a due one, or one not due yet (carried,
    /// it costs a few bytes where alone, later, it would cost a datagram: a
    /// reply that acknowledges its request saves an Ack packet each way). A
    /// due ack the next packet has no room for went alone already; one not
    /// due waits for its time.
    fn take_riding_ack(&mut self, now: Instant) {
        if self.riding.is_some() {
            return;
        }
        if (self.acks.ack_due(now) || self.acks.worth_carrying())
            && self.next_data_has_room(self.acks.ack_len_bound())
        {
            self.riding = self.take_ack(now).map(Box::new);
        }
    }

    /// Whether the next packet of data would leave `extra` bytes free: a
    /// datagram waits that is that much smaller than the largest, or (no
    /// repair waiting) a stream's next new fragment, within its credit, is.
    fn next_data_has_room(&self, extra: usize) -> bool {
        let room = self.payload_room();
        if let Some(d) = self.datagrams_out.front() {
            return d.len() + extra <= self.max_datagram_size();
        }
        if self.parts.is_some() || self.streams.values().any(|s| s.send.has_retransmit()) {
            return false;
        }
        let credit = self.credit();
        self.streams.values().any(|s| {
            s.send.next_unsent_cost(room).is_some_and(|cost| {
                // The cost counts more than a Data packet's fields.
                cost + extra as u64 <= room as u64
                    && (!s.kind.is_reliable() || cost <= credit.min(s.credit()))
            })
        })
    }

    /// Datagrams and message fragments, within the congestion and send windows.
    pub(super) fn poll_payload(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        let window = self.cc.window().min(self.config.send_window as u64);
        if self.probe_due {
            // A tail probe goes whatever the window: it only asks for an ack.
            self.probe_due = false;
            self.take_riding_ack(now);
            if let Some(len) = self.poll_payload_unpaced(now, buf) {
                return Some(len);
            }
        }
        // The controller may count in packets smaller than the session's
        // (it keeps its unit when path MTU discovery finds more after its
        // first step): a window of fewer than two packets of the session MTU
        // still lets two go (a jumbo packet may be larger than a least window).
        let floor = 2 * self.mtu as u64;
        if self.sent.bytes_in_flight() + self.mtu as u64 > window.max(floor)
            || self.sent.count_in_flight() >= self.config.send_window_packets
        {
            return None;
        }
        // Pacing: within the window, packets leave no faster than the
        // controller's rate. The timer wakes the session when the next may go.
        // A path whose round trip is shorter than a driver's timer tick is not
        // paced: the timer would wake too late and cap the rate at a burst per
        // tick, which BBR would then measure as the path's bandwidth. Such a
        // path (loopback, a LAN) is clocked by its acks.
        let rate = self
            .cc
            .pacing_rate(self.rtt.smoothed())
            .filter(|_| self.rtt.min().is_none_or(|m| m >= PACING_MIN_RTT));
        self.pacer.set_rate(now, rate);
        if let Some(at) = self.pacer.release_time(now, self.mtu as u64) {
            self.stats.pacing_waits += 1;
            self.timers.set(Timer::Pace, at);
            return None;
        }
        self.timers.clear(Timer::Pace);
        if let Some(len) = self.poll_mtu_probe(now, buf, window) {
            return Some(len);
        }
        self.take_riding_ack(now);
        let sent = self.poll_payload_unpaced(now, buf);
        if sent.is_none() && !self.has_data_waiting() {
            // Room in the window and nothing to send: rate samples taken until
            // what is in flight is acknowledged show the application, not the
            // path. (Data held back by the peer's flow control is not that:
            // the sender is limited by the receiver, which the model covers.)
            self.delivery.on_app_limited(self.sent.bytes_in_flight());
        }
        sent
    }

    /// Whether any stream holds data not yet sent (or due again).
    pub(super) fn has_data_waiting(&self) -> bool {
        self.streams
            .values()
            .any(|s| s.send.has_unsent() || s.send.has_retransmit())
    }

    /// Records a packet that needs an acknowledgement, just written.
    pub(super) fn on_sent(&mut self, now: Instant, pn: u64, len: usize, kind: SentKind) {
        let before = self.sent.bytes_in_flight();
        let delivery = self.delivery.on_send(now, before);
        self.sent.push(pn, now, len, kind, delivery);
        self.cc.on_sent(now, len as u64, before + len as u64);
        self.pacer.on_sent(now, len as u64);
        self.arm_retransmit(now);
    }

    /// A path MTU probe, if one is due and fits the window: padding to the
    /// size being probed. Not before the peer proved its address (a probe
    /// is larger than what the amplification limit assumes).
    fn poll_mtu_probe(&mut self, now: Instant, buf: &mut Vec<u8>, window: u64) -> Option<usize> {
        if self.validation.is_some() {
            return None;
        }
        let size = self.pmtu.probe_size(now)?;
        let in_flight = self.sent.bytes_in_flight();
        if in_flight > 0 && in_flight + size as u64 > window {
            // (Alone, a probe goes even if larger than the window: it is
            // only ever one packet.)
            return None;
        }
        let header = FIXED_HEADER_LEN + crate::wire::codec::varint_len(self.next_pn);
        let padding = size.saturating_sub(header + self.protection.overhead());
        let (pn, len) = self.emit(buf, &Packet::Probe { padding });
        debug_assert_eq!(len, size);
        self.stats.mtu_probes_sent += 1;
        self.pmtu.on_probe_sent(pn);
        self.on_sent(now, pn, len, SentKind::MtuProbe);
        Some(len)
    }

    pub(super) fn poll_payload_unpaced(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
    ) -> Option<usize> {
        // A fragment going out in parts goes on first: it is a repair, or
        // holds up its message.
        if let Some(len) = self.poll_part(now, buf) {
            return Some(len);
        }
        if let Some(data) = self.datagrams_out.pop_front() {
            let (pn, len) = self.emit(buf, &Packet::Datagram(data));
            self.stats.datagrams_sent += 1;
            self.on_sent(now, pn, len, SentKind::Datagram);
            return Some(len);
        }
        let room = self.payload_room();
        // Repairs first, whatever the stream.
        let repair = self
            .streams
            .iter()
            .find(|(_, s)| s.send.has_retransmit())
            .map(|(&id, _)| id);
        if let Some(id) = repair
            && let Some(len) = self.send_fragment(now, buf, id, room, 0)
        {
            return Some(len);
        }
        if let Some(len) = self.poll_stream_control(now, buf) {
            return Some(len);
        }
        // New data: the streams take turns, one packet each: each stream with
        // unsent data once, in id order from the one after the last served
        // (found afresh each turn: no list is built per packet).
        let start = self.last_served;
        let mut tried = None;
        loop {
            let next = match tried {
                None => self
                    .streams
                    .range((Excluded(start), Unbounded))
                    .chain(self.streams.range(..=start)),
                Some(t) if t > start => self
                    .streams
                    .range((Excluded(t), Unbounded))
                    .chain(self.streams.range(..=start)),
                Some(t) if t < start => self
                    .streams
                    .range((Excluded(t), Included(start)))
                    .chain(self.streams.range(..StreamId::DEFAULT)),
                // The last served stream was asked again: every one was.
                Some(_) => break,
            }
            .find(|(_, s)| s.send.has_unsent())
            .map(|(&id, _)| id);
            let Some(id) = next else { break };
            tried = Some(id);
            let credit = match self.streams.get(&id) {
                Some(s) if s.kind.is_reliable() => self.credit().min(s.credit()),
                Some(_) => u64::MAX,
                None => continue,
            };
            if let Some(len) = self.send_fragment(now, buf, id, room, credit) {
                self.last_served = id;
                return Some(len);
            }
        }
        None
    }

    /// Sends one fragment of stream `id` (a repair, or new data within
    /// `credit`).
    pub(super) fn send_fragment(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        id: StreamId,
        room: usize,
        credit: u64,
    ) -> Option<usize> {
        let s = self.streams.get_mut(&id)?;
        let fragment = s.send.next_fragment(room, credit)?;
        if fragment.first {
            if s.kind.is_reliable() {
                let cost = fragment_cost(fragment.payload.len());
                s.credit_used += cost;
                self.credit_used += cost;
            }
        } else {
            self.stats.retransmitted += 1;
        }
        if data_fields(id, &fragment) + fragment.payload.len() > room {
            // Cut for a larger MTU than the session has now.
            return self.send_in_parts(now, buf, id, fragment);
        }
        let (message, index) = (fragment.message, fragment.index);
        let p = Packet::Data(Data {
            stream: id,
            message,
            fragment: index,
            fragments: fragment.count,
            payload: fragment.payload,
        });
        let (pn, len) = self.emit(buf, &p);
        self.on_sent(
            now,
            pn,
            len,
            SentKind::Data {
                stream: id,
                message,
                index,
            },
        );
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;

    use crate::config::Config;
    use crate::session::test_pair::{Pair, drain};
    use crate::wire::stream::StreamId;

    use super::SessionCore;

    /// What each side of a fresh pair sends, step by step: the listener's
    /// first answer (a ConnectAck, under the checksum whatever the
    /// protection), a Connect sent again (padded), and data both ways once
    /// established. Each datagram alone if `prefix` is `None`; else each
    /// step's datagrams appended to a buffer that starts with `prefix`.
    fn steps(config: &Config, prefix: Option<&[u8]>) -> Vec<(Vec<u8>, u64)> {
        let mut out = Vec::new();
        let mut take = |session: &mut SessionCore, now| {
            let bytes = match prefix {
                None => drain(session, now).concat(),
                Some(prefix) => {
                    let mut buf = prefix.to_vec();
                    let mut total = 0;
                    while let Some(len) = session.poll_transmit_append(now, &mut buf) {
                        total += len;
                        assert_eq!(buf.len(), prefix.len() + total, "its own length");
                    }
                    assert_eq!(&buf[..prefix.len()], prefix, "earlier bytes untouched");
                    buf.split_off(prefix.len())
                }
            };
            out.push((bytes, session.stats().bytes_sent));
        };
        let mut pair = Pair::connecting(config.clone());
        let now = pair.now;
        take(&mut pair.listener, now);
        let later = now + Duration::from_secs(2);
        pair.starter.handle_timeout(later);
        take(&mut pair.starter, later);
        let mut pair = Pair::established(config.clone());
        for side in [&mut pair.starter, &mut pair.listener] {
            for i in 0..5u8 {
                side.send(
                    StreamId::DEFAULT,
                    Bytes::from(vec![i; 2000 + usize::from(i)]),
                )
                .unwrap();
            }
        }
        take(&mut pair.starter, pair.now);
        take(&mut pair.listener, pair.now);
        out
    }

    /// (Under a key, `seal_at` is tested against `seal` in the crypto
    /// module.)
    #[test]
    fn datagrams_appended_after_others_are_the_bytes_of_datagrams_written_alone() {
        let config = Config::default();
        let alone = steps(&config, None);
        assert_eq!(alone[1].0.len(), config.mtu, "a Connect, padded");
        assert!(alone[2].0.len() > 10_000, "data");
        for prefix in [&[][..], &[0xab; 1][..], &[0xcd; 1452][..]] {
            // The same bytes, and the counters count each datagram's own.
            assert_eq!(steps(&config, Some(prefix)), alone);
        }
    }
}
