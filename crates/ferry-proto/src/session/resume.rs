//! Resumption in a session: the listener's ticket for its starter (sent
//! reliably: it counts in flight and goes again if lost), the starter's
//! shortened handshake with a ticket (`Noise_NNpsk0` under the ticket's
//! secret on an encrypted session; in the clear, the ticket alone), its early
//! data, and its fallback to the full handshake when the listener refuses
//! the ticket.

use std::time::Instant;

use bytes::Bytes;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tracing::debug;
use zeroize::Zeroize;

use super::{SessionCore, SessionEvent, State};
use crate::crypto::{
    HANDSHAKE_OVERHEAD, Handshake as Noise, MAX_NEGOTIATION_LEN, PreSharedKey, PublicKey,
    TicketMode,
};
use crate::event::TransportCode;
use crate::id::Side;
use crate::message::fragment_cost;
use crate::recovery::sent::SentKind;
use crate::ticket::Ticket;
use crate::wire::codec::{Reader, put_varint};
use crate::wire::packet::{
    Close, CloseCode, EARLY_ACCEPTED, Handshake, MAX_HEADER_LEN, MAX_TICKET_LEN, NewTicket, Packet,
    RESUMED,
};
use crate::wire::stream::StreamId;

/// Most messages one Connect's early data may carry.
pub(crate) const MAX_EARLY_MESSAGES: usize = 64;

/// What a session keeps about resumption (boxed in the session: most have
/// none).
#[derive(Debug, Default)]
pub(crate) struct Resumption {
    /// A starter resuming, until its handshake completes or falls back.
    resuming: Option<Resuming>,
    /// The session was opened with a ticket (both sides).
    resumed: bool,
    /// A listener's answer to the ticket, in its ConnectAcks.
    answer: u8,
    /// A listener's ticket for its starter, until acknowledged.
    offer: Option<Offer>,
    /// The last ticket a starter received, and when.
    received: Option<(NewTicket, Instant)>,
}

#[derive(Debug)]
struct Resuming {
    ticket: Ticket,
    /// What the full handshake needs, should the listener refuse the
    /// ticket (it is written only then): the pinned listener key, the date
    /// of message 1, and the seed of its ephemeral key.
    pin: Option<PublicKey>,
    timestamp: u64,
    seed: [u8; 32],
    /// The Connect was written (message 1, early data).
    written: bool,
    /// Messages of stream 0 the early data carries.
    early_messages: usize,
    /// The early data of a session in the clear (with keys it travels in
    /// message 1).
    early: Bytes,
}

impl Drop for Resuming {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

#[derive(Debug)]
struct Offer {
    ticket: NewTicket,
    due: bool,
}

/// Encodes early messages: each a varint length and its bytes.
fn encode_early(messages: &[Bytes]) -> Vec<u8> {
    let mut out = Vec::new();
    for m in messages {
        put_varint(&mut out, m.len() as u64);
        out.extend_from_slice(m);
    }
    out
}

/// Reads what [`encode_early`] wrote; `None` if malformed or too many.
pub(crate) fn decode_early(bytes: &[u8]) -> Option<Vec<Bytes>> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while r.remaining() > 0 {
        if out.len() >= MAX_EARLY_MESSAGES {
            return None;
        }
        let len = usize::try_from(r.varint().ok()?).ok()?;
        out.push(Bytes::copy_from_slice(r.bytes(len).ok()?));
    }
    Some(out)
}

impl SessionCore {
    fn resumption(&mut self) -> &mut Resumption {
        self.resumption.get_or_insert_with(Box::default)
    }

    /// Whether the session was opened with a ticket.
    pub(crate) fn is_resumed(&self) -> bool {
        self.resumption.as_ref().is_some_and(|r| r.resumed)
    }

    /// Makes a starter's new session ([`connect`](Self::connect)) resume
    /// with `ticket`: on an encrypted session the resumed handshake (NNpsk0
    /// under the ticket's secret), whose message 1 is written with the
    /// first Connect, so that the messages queued by then can ride in it as
    /// early data. The full handshake (`listener` and `timestamp` as for
    /// `connect`) is written only if the listener refuses the ticket.
    pub(super) fn resume(
        &mut self,
        ticket: Ticket,
        listener: Option<PublicKey>,
        timestamp: u64,
        rng: &mut impl rand::CryptoRng,
    ) {
        if ticket.mode.is_keyed() {
            let psk = PreSharedKey::from_bytes(ticket.secret);
            self.noise = Some(Box::new(Noise::initiator_with(
                &psk,
                &super::prologue(self.id),
                self.config.cipher,
                rng,
            )));
        }
        let mut seed = [0; 32];
        rng.fill_bytes(&mut seed);
        self.resumption().resuming = Some(Resuming {
            ticket,
            pin: listener,
            timestamp,
            seed,
            written: false,
            early_messages: 0,
            early: Bytes::new(),
        });
    }

    /// Before a resuming starter's first Connect: its early data and, with
    /// keys, its Noise message 1 (carrying the early data).
    pub(super) fn write_resumed_connect(&mut self) {
        let Some(resuming) = self.resumption.as_mut().and_then(|r| r.resuming.as_mut()) else {
            return;
        };
        if resuming.written {
            return;
        }
        resuming.written = true;
        let keyed = resuming.ticket.mode.is_keyed();
        let allowed = resuming.ticket.early_data;
        // What the Connect holds without early data, and so the room left
        // in its padded datagram.
        let mut body = Vec::new();
        Packet::Connect(self.handshake_params()).encode_body(&mut body);
        let noise = if keyed {
            HANDSHAKE_OVERHEAD + MAX_NEGOTIATION_LEN + 4
        } else {
            0
        };
        let fixed = MAX_HEADER_LEN + self.protection.overhead() + body.len() + noise + 4;
        let budget = self.config.mtu.saturating_sub(fixed);
        let mut messages = if allowed {
            self.streams
                .get(&StreamId::DEFAULT)
                .map(|s| s.send.unsent_front(budget))
                .unwrap_or_default()
        } else {
            Vec::new()
        };
        messages.truncate(MAX_EARLY_MESSAGES);
        let early = encode_early(&messages);
        let Some(resuming) = self.resumption.as_mut().and_then(|r| r.resuming.as_mut()) else {
            return;
        };
        resuming.early_messages = messages.len();
        if !keyed {
            resuming.early = early.into();
            return;
        }
        if let Some(noise) = &mut self.noise {
            let mut message = Vec::new();
            if noise.write_message(&early, &mut message).is_ok() {
                self.auth = message.into();
            }
        }
    }

    /// The `resume` and `early` fields of this side's handshake packets.
    pub(super) fn resume_fields(&self) -> (Bytes, Bytes) {
        let Some(r) = &self.resumption else {
            return (Bytes::new(), Bytes::new());
        };
        match (&r.resuming, self.side) {
            (Some(resuming), Side::Starter) => {
                (resuming.ticket.sealed.clone(), resuming.early.clone())
            }
            (_, Side::Listener) if r.answer != 0 => {
                (Bytes::copy_from_slice(&[r.answer]), Bytes::new())
            }
            _ => (Bytes::new(), Bytes::new()),
        }
    }

    /// A starter's ConnectAck was genuine: the session is resumed if the
    /// listener says so, and the early data it delivered is settled as
    /// acknowledged (what it did not deliver goes normally from now on).
    pub(super) fn on_resume_answer(&mut self, h: &Handshake) {
        let Some(resuming) = self.resumption.as_mut().and_then(|r| r.resuming.take()) else {
            return;
        };
        let answer = h.resume.first().copied().unwrap_or(0);
        if answer & RESUMED == 0 {
            return;
        }
        self.resumption().resumed = true;
        if resuming.ticket.mode.has_identity() {
            self.peer_identity = resuming.ticket.listener_key;
        }
        if answer & EARLY_ACCEPTED != 0 && resuming.early_messages > 0 {
            let n = resuming.early_messages;
            if let Some(s) = self.streams.get_mut(&StreamId::DEFAULT) {
                let cost: u64 = s
                    .send
                    .unsent_front(usize::MAX)
                    .iter()
                    .take(n)
                    .map(|m| fragment_cost(m.len()))
                    .sum();
                s.send.settle_unsent(n);
                s.credit_used += cost;
                self.credit_used += cost;
            }
            debug!(session = %self.id, messages = n, "early data delivered");
        }
    }

    /// A Close while handshaking: if it refuses the ticket of a resuming
    /// starter, the session falls back to the full handshake (a new
    /// Connect at once, the early data sent normally once established) and
    /// `true` is returned. A forged refusal (it is not authenticated) costs
    /// only that fallback.
    pub(super) fn on_ticket_refused(&mut self, close: &Close) -> bool {
        if close.code != CloseCode::Transport(TransportCode::TicketRefused as u64) {
            return false;
        }
        let Some(resuming) = self.resumption.as_mut().and_then(|r| r.resuming.take()) else {
            return false;
        };
        debug!(session = %self.id, "ticket refused: full handshake");
        let mut rng = ChaCha20Rng::from_seed(resuming.seed);
        (self.noise, self.auth) = self.full_handshake(resuming.pin, resuming.timestamp, &mut rng);
        self.connect_due = true;
        // A new exchange: its answer is an RTT sample.
        self.connects_sent = 0;
        self.events.push_back(SessionEvent::ResumptionRefused);
        true
    }

    /// A listener's session opened with a valid ticket: resumed, its early
    /// data (if any, and `accepted`) delivered on stream 0 as its first
    /// messages, and `answer` in its ConnectAcks.
    pub(crate) fn on_resumed(&mut self, now: Instant, early: Vec<Bytes>, answer: u8) {
        let r = self.resumption();
        r.resumed = true;
        r.answer = answer;
        if answer & EARLY_ACCEPTED == 0 {
            return;
        }
        for (message, payload) in early.into_iter().enumerate() {
            self.on_data(
                now,
                crate::wire::packet::Data {
                    stream: StreamId::DEFAULT,
                    message: message as u64,
                    fragment: 0,
                    fragments: 1,
                    payload,
                },
            );
        }
        self.sync_recv_memory();
    }

    /// A listener gives its starter `ticket`, sent once the session is
    /// established and the starter's address proven.
    pub(crate) fn offer_ticket(&mut self, ticket: NewTicket) {
        self.resumption().offer = Some(Offer { ticket, due: true });
    }

    pub(super) fn on_ticket_acked(&mut self) {
        if let Some(r) = &mut self.resumption {
            r.offer = None;
        }
    }

    pub(super) fn on_ticket_lost(&mut self) {
        if let Some(offer) = self.resumption.as_mut().and_then(|r| r.offer.as_mut()) {
            offer.due = true;
        }
    }

    /// The ticket packet, when due.
    pub(super) fn poll_ticket(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        if self.state != State::Established || self.validation.is_some() {
            return None;
        }
        let offer = self.resumption.as_mut()?.offer.as_mut()?;
        if !offer.due {
            return None;
        }
        offer.due = false;
        let packet = Packet::Ticket(offer.ticket.clone());
        let (pn, len) = self.emit(buf, &packet);
        self.on_sent(now, pn, len, SentKind::Ticket);
        Some(len)
    }

    /// A starter received a ticket: kept (the last one wins) and announced.
    pub(super) fn on_ticket(&mut self, now: Instant, ticket: NewTicket) {
        let keyed =
            TicketMode::of(self.config.psk.as_ref(), self.config.identity.as_ref()).is_keyed();
        if self.side != Side::Starter
            || ticket.ticket.is_empty()
            || ticket.ticket.len() > MAX_TICKET_LEN
            || keyed != (ticket.secret.len() == 32)
        {
            return;
        }
        self.resumption().received = Some((ticket, now));
        self.events.push_back(SessionEvent::Ticket);
    }

    /// The last ticket the listener gave this starter, and when it came.
    pub(crate) fn received_ticket(&self) -> Option<&(NewTicket, Instant)> {
        self.resumption.as_ref()?.received.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn early_messages_read_back_and_malformed_ones_do_not() {
        let messages = vec![
            Bytes::from_static(b"hello"),
            Bytes::new(),
            Bytes::from(vec![7; 300]),
        ];
        let encoded = encode_early(&messages);
        assert_eq!(decode_early(&encoded), Some(messages));
        assert_eq!(decode_early(&encoded[..encoded.len() - 1]), None);
        assert_eq!(decode_early(&[]), Some(Vec::new()));
        assert_eq!(decode_early(&[0; MAX_EARLY_MESSAGES + 1]), None);
    }
}
