//! Data in: message fragments into their streams, the endpoint-wide
//! receive-memory reservations, what the application takes, and when an ack
//! is due.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::timer::Timer;
use crate::error::ProtocolViolation;
use crate::message::Accepted;
use crate::wire::packet::Data;
use crate::wire::stream::StreamId;

use super::{ACKS_PER_RTT, MIN_ACK_DELAY, SessionCore, SessionEvent, State};

impl SessionCore {
    /// The room a message needs, from one of its fragments: every fragment
    /// counted as a full packet's, and no more than the largest message.
    pub(super) fn reservation_for(&self, fragments: u32, len: usize) -> u64 {
        let fragments = u64::from(fragments);
        let per_fragment = crate::message::fragment_cost(self.mtu.max(len));
        let largest = crate::message::fragment_cost(self.config.max_message_size)
            + fragments.saturating_sub(1) * crate::config::FRAGMENT_COST;
        fragments.saturating_mul(per_fragment).min(largest)
    }

    /// Accounts a new fragment of a reliable stream against its message's
    /// reservation, making one for a message that starts; a finished message
    /// gives back what it did not use.
    pub(super) fn reserve(
        reservations: &mut HashMap<(StreamId, u64), u64>,
        reserved: &mut u64,
        key: (StreamId, u64),
        need: u64,
        cost: u64,
        assembling: bool,
    ) {
        let remaining = match reservations.remove(&key) {
            Some(left) => {
                *reserved -= left.min(*reserved);
                left
            }
            None => need,
        };
        if assembling {
            let left = remaining.saturating_sub(cost);
            reservations.insert(key, left);
            *reserved += left;
        }
    }

    /// Gives back the reservations of a stream that will receive no more.
    pub(super) fn release_reservations(&mut self, stream: StreamId) {
        let mut freed = 0;
        self.reservations.retain(|&(s, _), left| {
            if s == stream {
                freed += *left;
            }
            s != stream
        });
        self.reserved -= freed.min(self.reserved);
    }

    /// Tells the endpoint's count what this session holds now: reliable data
    /// received and not yet taken, and the room reserved for messages under
    /// way.
    pub(super) fn sync_recv_memory(&mut self) {
        let held = self.credit_received.saturating_sub(self.consumed) + self.reserved;
        self.shared.recv_memory.update(self.recv_held, held);
        self.recv_held = held;
    }

    /// The next delivered message, taken by the application: its flow-control
    /// cost returns to the peer as credit.
    pub(crate) fn recv(&mut self, stream: StreamId) -> Option<Bytes> {
        let s = self.streams.get_mut(&stream)?;
        let (data, cost) = s.inbox.pop_front()?;
        if s.kind.is_reliable() {
            s.consumed += cost;
            let window = s.window.window();
            if s.consumed + window - s.advertised >= window / 4 {
                s.credit_due = true;
            }
            self.consumed += cost;
            self.sync_recv_memory();
            let window = self.recv_window.window();
            if self.state == State::Established
                && self.consumed + window - self.advertised_max_data >= window / 4
            {
                self.acks.request_immediate();
            }
        }
        self.check_stream_end(stream);
        Some(data)
    }

    /// Reports a stream's end when it comes, and forgets a stream both sides
    /// are done with.
    pub(super) fn check_stream_end(&mut self, id: StreamId) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if let Some(end) = s.read_end() {
            s.end_reported = true;
            self.events.push_back(SessionEvent::StreamClosed(id, end));
        }
        if id != StreamId::DEFAULT && s.end_reported && s.send_done() {
            self.retired_send = self.retired_send.add(s.send_progress());
            self.streams.remove(&id);
        }
    }

    /// Whether delivered messages wait to be taken (a closed session stays
    /// readable until they are).
    pub(crate) fn has_unread(&self) -> bool {
        self.streams.values().any(|s| !s.inbox.is_empty())
    }

    pub(crate) fn on_datagram_consumed(&mut self) {
        self.datagrams_queued = self.datagrams_queued.saturating_sub(1);
    }

    /// How long an ack may wait, and after how many packets it must go. A
    /// sender with few packets per round trip gets an ack every
    /// `ack_frequency` packets; one with many gets about four acks per round
    /// trip, but one at least every `ack_frequency_bulk` packets. Acks wait
    /// at most a quarter of the RTT (at least 1 ms, at most `max_ack_delay`).
    pub(super) fn ack_policy(&mut self, now: Instant) -> (Duration, u32) {
        let srtt = self.rtt.smoothed();
        let delay = (srtt / 4).max(MIN_ACK_DELAY).min(self.config.max_ack_delay);
        let per_rtt = self.acks.arrival_rate(now, srtt);
        let frequency = (per_rtt / ACKS_PER_RTT).clamp(
            self.config.ack_frequency,
            self.config
                .ack_frequency_bulk
                .max(self.config.ack_frequency),
        );
        (delay, frequency)
    }

    pub(super) fn on_data(&mut self, now: Instant, d: Data) {
        let id = match self.peer_stream(d.stream) {
            Ok(Some(id)) => id,
            Ok(None) => {
                self.stats.duplicates += 1;
                return;
            }
            Err(v) => {
                self.violation(now, v);
                return;
            }
        };
        let message = d.message;
        let need = self.reservation_for(d.fragments, d.payload.len());
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        match stream.recv.on_fragment_with(
            d.message,
            d.fragment,
            d.fragments,
            d.payload,
            &self.shared.pool,
        ) {
            Err(v) => self.violation(now, v),
            Ok(Accepted::Duplicate) => self.stats.duplicates += 1,
            Ok(Accepted::New(cost)) => {
                if stream.kind.is_reliable() {
                    // (A stream the peer reset delivers nothing more: no room kept.)
                    let assembling =
                        stream.recv.is_assembling(message) && stream.peer_reset.is_none();
                    stream.received_cost += cost;
                    self.credit_received += cost;
                    Self::reserve(
                        &mut self.reservations,
                        &mut self.reserved,
                        (id, message),
                        need,
                        cost,
                        assembling,
                    );
                    if stream.received_cost > stream.advertised
                        || self.credit_received > self.advertised_max_data
                    {
                        self.violation(now, ProtocolViolation::FlowControl);
                        return;
                    }
                }
                if stream.peer_reset.is_some() {
                    // Abandoned by the peer: nothing more is delivered.
                    return;
                }
                let was_empty = stream.inbox.is_empty();
                while let Some((data, cost)) = stream.recv.pop_ready_with(&self.shared.pool) {
                    self.stats.messages_received += 1;
                    stream.delivered += 1;
                    stream.inbox.push_back((data, cost));
                }
                if was_empty && !stream.inbox.is_empty() {
                    self.events.push_back(if id == StreamId::DEFAULT {
                        SessionEvent::Readable
                    } else {
                        SessionEvent::StreamReadable(id)
                    });
                }
                // While data waits behind a hole, ack every packet at once (as TCP
                // sends a duplicate ack per out-of-order segment): the sender
                // learns of the loss, and of its repair, without delay.
                if stream.recv.has_hole() {
                    self.acks.request_immediate();
                }
            }
        }
    }

    /// How long a gap in the packet numbers received must last before this
    /// side asks for it again.
    pub(super) fn request_window(&self) -> Duration {
        let srtt = self.rtt.smoothed();
        self.acks
            .request_window(self.rtt.min().unwrap_or(srtt), srtt)
    }

    pub(super) fn arm_ack_timer(&mut self, now: Instant) {
        match self.acks.deadline() {
            // A deadline already past needs no timer: the ack is due and goes out
            // on the next poll.
            Some(at) if at > now => self.timers.set(Timer::Ack, at),
            _ => self.timers.clear(Timer::Ack),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::session::test_pair::{Pair, events};

    #[test]
    fn a_message_larger_than_a_packet_arrives_whole_and_once() {
        let mut pair = Pair::established(Config::default());
        let message: Bytes = (0..50_000u32).map(|i| i as u8).collect::<Vec<_>>().into();
        pair.starter
            .send(StreamId::DEFAULT, message.clone())
            .unwrap();
        pair.exchange();
        assert!(events(&mut pair.listener).contains(&SessionEvent::Readable));
        assert_eq!(pair.listener.recv(StreamId::DEFAULT), Some(message));
        assert_eq!(pair.listener.recv(StreamId::DEFAULT), None);
        assert!(!pair.listener.has_unread());
    }

    #[test]
    fn taking_a_message_returns_its_share_of_the_receive_memory() {
        let mut pair = Pair::established(Config::default());
        pair.starter
            .send(StreamId::DEFAULT, Bytes::from(vec![9; 100_000]))
            .unwrap();
        pair.exchange();
        let held = pair.listener.shared.recv_memory.used();
        assert!(held >= 100_000, "{held} bytes held before reading");
        pair.listener.recv(StreamId::DEFAULT).unwrap();
        assert_eq!(pair.listener.shared.recv_memory.used(), 0);
    }
}
