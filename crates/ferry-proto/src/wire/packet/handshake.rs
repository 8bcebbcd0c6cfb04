//! The parameters of Connect and ConnectAck, and their encoding.

use bytes::Bytes;

use super::PacketKind;
use crate::error::DecodeError;
use crate::id::SessionId;
use crate::wire::codec::{Reader, put_varint};

/// A bit of [`Handshake::features`] as encoded: a resumption field follows
/// (set and taken off by the codec, never by the caller).
pub const FEATURE_RESUME: u64 = 0x02;

/// The longest `resume` field (a sealed ticket, or the listener's answer).
pub const MAX_TICKET_LEN: usize = 256;

/// The longest early data a Connect's `early` field may carry.
pub const MAX_EARLY_DATA: usize = crate::config::MAX_MTU;

/// A bit of a ConnectAck's `resume` answer: the listener took the ticket,
/// and the session is resumed.
pub const RESUMED: u8 = 0x01;

/// A bit of a ConnectAck's `resume` answer: the listener delivered the
/// early data the Connect carried.
pub const EARLY_ACCEPTED: u8 = 0x02;

/// Appends a varint length and `bytes`.
fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// Reads a varint length, at most `max`, and that many bytes of `body`, as a
/// slice of it.
fn take_bytes(body: &Bytes, r: &mut Reader<'_>, max: usize) -> Result<Bytes, DecodeError> {
    let len = usize::try_from(r.varint()?).map_err(|_| DecodeError::Truncated)?;
    if len > max {
        return Err(DecodeError::ValueOutOfRange);
    }
    let start = r.position();
    r.bytes(len)?;
    Ok(body.slice(start..start + len))
}

/// Parameters each side announces in the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handshake {
    /// The largest UDP payload this side accepts.
    pub max_udp_payload: u64,
    /// The largest message this side accepts.
    pub max_message_size: u64,
    /// Receive credit granted before the first ack: the cumulative flow-control
    /// cost the peer may send.
    pub initial_max_data: u64,
    /// Longest time this side delays an ack, in microseconds; the peer adds it to
    /// its retransmission timeout.
    pub max_ack_delay_micros: u64,
    /// Streams the peer may have open at once that it opened.
    pub max_streams: u64,
    /// Receive credit each stream grants before its first credit update.
    pub initial_max_stream_data: u64,
    /// In a ConnectAck only (and there always): the id the listener issued
    /// for the session, which the starter writes in every later packet's
    /// header. `None` in a Connect, whose header carries the starter's id.
    pub listener_id: Option<SessionId>,
    /// With a pre-shared key: the Noise handshake message (message 1 in a
    /// Connect, message 2 in a ConnectAck, see [`crate::crypto`]). Empty
    /// without encryption, and then not encoded at all.
    pub auth: Bytes,
    /// In a Connect only: the token of the listener's [`Packet::Retry`](super::Packet::Retry),
    /// proving the starter receives at its address. Empty otherwise, and
    /// then not encoded.
    pub token: Bytes,
    /// Optional features this side supports, as bits ([`FEATURES`](super::FEATURES)): a
    /// starter announces every one it supports, a listener those of the
    /// starter's it supports too. Encoded after `token` only when not zero
    /// (older decoders ignore what follows `token`), and then also at the
    /// end of [`encode_params`](Self::encode_params), so that message 2
    /// authenticates the listener's answer. Unknown bits are ignored.
    pub features: u64,
    /// Resumption (§6.19 of `docs/protocol.md`). In a Connect: the sealed
    /// ticket the starter resumes with. In a ConnectAck: the listener's
    /// answer, one byte of bits ([`RESUMED`], [`EARLY_ACCEPTED`]). Empty
    /// otherwise. Encoded after `features`, with the bit [`FEATURE_RESUME`]
    /// set there to say so (older decoders ignore what follows `token`).
    pub resume: Bytes,
    /// In a Connect on a session without keys: the early data, messages of
    /// the default stream each as a varint length and its bytes. (With keys
    /// it travels inside Noise message 1 instead.) Encoded after `resume`.
    pub early: Bytes,
}

impl Handshake {
    /// The parameters without `auth` and `token`, encoded: what message 2's
    /// payload repeats so that the listener's parameters are authenticated.
    /// `features` comes last, only when not zero.
    ///
    /// With a `resume` field, `features` is written with [`FEATURE_RESUME`]
    /// set and `resume` follows it, so that message 2 authenticates the
    /// listener's answer to a resumption too.
    pub fn encode_params(&self, out: &mut Vec<u8>) {
        self.encode_fixed(out);
        let features = self.wire_features();
        if features != 0 {
            put_varint(out, features);
        }
        if !self.resume.is_empty() {
            put_bytes(out, &self.resume);
        }
    }

    /// `features` as written: with [`FEATURE_RESUME`] when a resumption
    /// field follows.
    fn wire_features(&self) -> u64 {
        if self.resume.is_empty() && self.early.is_empty() {
            self.features & !FEATURE_RESUME
        } else {
            self.features | FEATURE_RESUME
        }
    }

    /// The body of a Connect or ConnectAck: the fixed fields, then each
    /// optional field up to the last one present.
    pub(super) fn encode_body(&self, out: &mut Vec<u8>) {
        self.encode_fixed(out);
        let features = self.wire_features();
        let resuming = features & FEATURE_RESUME != 0;
        if !self.auth.is_empty() || !self.token.is_empty() || features != 0 {
            put_bytes(out, &self.auth);
        }
        if !self.token.is_empty() || features != 0 {
            put_bytes(out, &self.token);
        }
        if features != 0 {
            put_varint(out, features);
        }
        if resuming {
            put_bytes(out, &self.resume);
            put_bytes(out, &self.early);
        }
    }

    /// Reads a Connect's or ConnectAck's body from `r` (over `body`).
    pub(super) fn decode_body(
        kind: PacketKind,
        body: &Bytes,
        r: &mut Reader<'_>,
    ) -> Result<Self, DecodeError> {
        let mut h = Handshake {
            max_udp_payload: r.varint()?,
            max_message_size: r.varint()?,
            initial_max_data: r.varint()?,
            max_ack_delay_micros: r.varint()?,
            max_streams: r.varint()?,
            initial_max_stream_data: r.varint()?,
            listener_id: None,
            auth: Bytes::new(),
            token: Bytes::new(),
            features: 0,
            resume: Bytes::new(),
            early: Bytes::new(),
        };
        if kind == PacketKind::ConnectAck {
            let id = r.bytes(8)?;
            h.listener_id = Some(SessionId(
                id.try_into().map_err(|_| DecodeError::Truncated)?,
            ));
        }
        // The Noise message and the retry token, if any (each at most
        // the rest of the datagram, so they allocate nothing the input
        // does not hold). Zero padding reads as empty fields.
        if r.remaining() > 0 {
            h.auth = take_bytes(body, r, usize::MAX)?;
        }
        if r.remaining() > 0 {
            h.token = take_bytes(body, r, usize::MAX)?;
        }
        // Announced features, if any; a Connect's zero padding reads
        // as none, and so does whatever is not a varint there.
        if r.remaining() > 0 {
            match r.varint() {
                Ok(features) => h.features = features,
                Err(_) => {
                    r.rest();
                }
            }
        }
        if h.features & FEATURE_RESUME != 0 {
            h.features &= !FEATURE_RESUME;
            h.resume = take_bytes(body, r, MAX_TICKET_LEN)?;
            h.early = take_bytes(body, r, MAX_EARLY_DATA)?;
        }
        // Connect is padded; the rest is ignored.
        r.rest();
        Ok(h)
    }

    /// The fields before `auth`: the varints and, in a ConnectAck, the
    /// listener's id.
    fn encode_fixed(&self, out: &mut Vec<u8>) {
        put_varint(out, self.max_udp_payload);
        put_varint(out, self.max_message_size);
        put_varint(out, self.initial_max_data);
        put_varint(out, self.max_ack_delay_micros);
        put_varint(out, self.max_streams);
        put_varint(out, self.initial_max_stream_data);
        if let Some(id) = self.listener_id {
            out.extend_from_slice(&id.0);
        }
    }
}

/// The body of a [`Packet::Ticket`](super::Packet::Ticket): a resumption
/// ticket the listener gives the starter of an established session.
#[derive(Clone, PartialEq, Eq)]
pub struct NewTicket {
    /// How long the ticket is good, in seconds from now.
    pub lifetime: u64,
    /// Bit 0x01: the listener allows early data with it.
    pub flags: u8,
    /// The resumed handshake's secret (32 bytes) on an encrypted session,
    /// which carries the packet encrypted; empty on a session in the clear
    /// (which has nothing to keep secret).
    pub secret: Bytes,
    /// The sealed ticket, opaque to the starter, at most
    /// [`MAX_TICKET_LEN`] bytes.
    pub ticket: Bytes,
}

impl std::fmt::Debug for NewTicket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the secret.
        f.debug_struct("NewTicket")
            .field("lifetime", &self.lifetime)
            .field("flags", &self.flags)
            .field("secret_len", &self.secret.len())
            .field("ticket_len", &self.ticket.len())
            .finish()
    }
}

impl NewTicket {
    pub(super) fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.lifetime);
        out.push(self.flags);
        put_bytes(out, &self.secret);
        put_bytes(out, &self.ticket);
    }

    pub(super) fn decode(body: &Bytes, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let lifetime = r.varint()?;
        let flags = r.u8()?;
        let secret = take_bytes(body, r, 32)?;
        if !secret.is_empty() && secret.len() != 32 {
            return Err(DecodeError::ValueOutOfRange);
        }
        let ticket = take_bytes(body, r, MAX_TICKET_LEN)?;
        Ok(Self {
            lifetime,
            flags,
            secret,
            ticket,
        })
    }
}
