//! The wire format: one header and one enum of packet kinds.
//!
//! Every datagram is one packet:
//!
//! ```text
//! version (1) | kind (1) | receiver's session id (8) | packet number (varint) | [ack] | body | protection trailer
//! ```
//!
//! A packet that carries data may also carry an ack ([`ACK_FLAG`] in its kind
//! byte): the ack's fields come first, then the packet's own body. A reply
//! then acknowledges the request it answers in the same datagram.
//!
//! The protection trailer (a CRC-32, or an authentication tag on an encrypted
//! session) is handled by [`crate::wire::protection`]; this module encodes and
//! decodes the header and the body. `docs/protocol.md` describes every field byte by byte.
//!
//! Decoding never panics and never allocates more than the input justifies: every
//! count read from the wire is checked against the bytes that remain.

use std::ops::RangeInclusive;

use bytes::Bytes;

use super::stream::{StreamId, StreamOp};
use crate::error::DecodeError;
use crate::id::SessionId;
use crate::wire::codec::{Reader, put_varint, varint_len};

mod handshake;
mod header;
pub use handshake::{
    EARLY_ACCEPTED, FEATURE_RESUME, Handshake, MAX_EARLY_DATA, MAX_TICKET_LEN, NewTicket, RESUMED,
};
pub use header::Header;

/// The protocol version this crate speaks. Datagrams with another version are dropped.
pub const VERSION: u8 = 1;

/// Size of the fixed part of the header: version, kind and session id.
pub const FIXED_HEADER_LEN: usize = 10;

/// The longest header: the fixed part and an eight-byte packet number.
pub const MAX_HEADER_LEN: usize = FIXED_HEADER_LEN + 8;

/// Set in the kind byte of a packet whose body starts with an ack (see
/// [`PacketKind::may_carry_ack`]).
pub const ACK_FLAG: u8 = 0x80;

/// Set in the kind byte of an encrypted packet sealed under an odd
/// generation of its sender's keys: the key phase (see
/// [`crate::crypto::update`]). Never set on a packet under a checksum, nor
/// on Connect, ConnectAck or Retry, which always travel under one.
pub const KEY_PHASE: u8 = 0x40;

/// A bit of [`Handshake::features`]: this side follows the peer's key
/// updates (and, if configured, makes its own), see
/// [`crate::crypto::update`].
pub const FEATURE_KEY_UPDATE: u64 = 0x01;

/// The [`Handshake::features`] this version supports.
pub const FEATURES: u64 = FEATURE_KEY_UPDATE;

/// The most ranges an ack or repeat request may carry.
pub const MAX_RANGES: usize = 64;

/// The longest close reason text, in bytes.
pub const MAX_CLOSE_REASON: usize = 256;
/// Longest retry token a [`Packet::Retry`] may carry, in bytes.
pub const MAX_RETRY_TOKEN: usize = 64;

/// The kind byte of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketKind {
    /// Opens a session.
    Connect = 0x01,
    /// Accepts a session.
    ConnectAck = 0x02,
    /// One fragment of a reliable message.
    Data = 0x03,
    /// Acknowledges ranges of packet numbers and grants receive credit.
    Ack = 0x04,
    /// Names packet numbers the receiver is missing, asking for them again.
    RepeatRequest = 0x05,
    /// A keep-alive probe.
    Ping = 0x06,
    /// The answer to a ping.
    PingAck = 0x07,
    /// Ends the session.
    Close = 0x08,
    /// An unreliable datagram.
    Datagram = 0x09,
    /// Asks the peer to prove it receives at a new address.
    PathChallenge = 0x0a,
    /// The answer to a path challenge.
    PathResponse = 0x0b,
    /// Finishes, resets, refuses a stream or grants it credit.
    StreamControl = 0x0c,
    /// A listener under a connect flood: connect again with this token.
    Retry = 0x0d,
    /// A path MTU probe: padding that elicits an ack.
    Probe = 0x0e,
    /// Part of a message fragment too large for the path since it was cut.
    DataPart = 0x0f,
    /// A resumption ticket, from the listener of an established session.
    Ticket = 0x10,
}

impl PacketKind {
    /// Parses a kind byte.
    pub fn from_u8(b: u8) -> Result<Self, DecodeError> {
        Ok(match b {
            0x01 => Self::Connect,
            0x02 => Self::ConnectAck,
            0x03 => Self::Data,
            0x04 => Self::Ack,
            0x05 => Self::RepeatRequest,
            0x06 => Self::Ping,
            0x07 => Self::PingAck,
            0x08 => Self::Close,
            0x09 => Self::Datagram,
            0x0a => Self::PathChallenge,
            0x0b => Self::PathResponse,
            0x0c => Self::StreamControl,
            0x0d => Self::Retry,
            0x0e => Self::Probe,
            0x0f => Self::DataPart,
            0x10 => Self::Ticket,
            other => return Err(DecodeError::UnknownKind(other)),
        })
    }

    /// Whether a packet of this kind may carry an ack before its body: the
    /// kinds that carry data and elicit an ack themselves.
    pub fn may_carry_ack(self) -> bool {
        matches!(
            self,
            Self::Data | Self::DataPart | Self::Datagram | Self::StreamControl
        )
    }
}

/// One fragment of a reliable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Data {
    /// The stream the message belongs to ([`StreamId::DEFAULT`]: the
    /// session's default stream).
    pub stream: StreamId,
    /// Message number, counting from 0 per stream and direction.
    pub message: u64,
    /// Index of this fragment within the message.
    pub fragment: u32,
    /// How many fragments the message has (at least 1).
    pub fragments: u32,
    /// The fragment's bytes.
    pub payload: Bytes,
}

/// Part of a message fragment: bytes `offset..offset + payload.len()` of
/// fragment `fragment`, which is `fragment_len` bytes long. A sender cuts a
/// message into fragments for the path MTU it has then; a fragment that no
/// longer fits the path (the MTU fell since) travels in parts, which the
/// receiver puts back together into the fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataPart {
    /// The stream the message belongs to.
    pub stream: StreamId,
    /// Message number, as in [`Data`].
    pub message: u64,
    /// Index of the fragment within the message.
    pub fragment: u32,
    /// How many fragments the message has (at least 1).
    pub fragments: u32,
    /// The whole fragment's length, 1 to [`MAX_FRAGMENT_LEN`] bytes.
    pub fragment_len: u32,
    /// Where this part starts within the fragment.
    pub offset: u32,
    /// The part's bytes: at least one, ending within the fragment.
    pub payload: Bytes,
}

/// The longest fragment a [`DataPart`] may belong to: the largest UDP payload.
pub const MAX_FRAGMENT_LEN: usize = crate::config::MAX_MTU;

/// Acknowledges packets and grants receive credit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// How long the receiver held this ack after the largest packet arrived, in µs.
    pub delay_micros: u64,
    /// Cumulative flow-control credit: the peer may send fragments until their
    /// total cost reaches this value.
    pub max_data: u64,
    /// Acknowledged packet numbers, largest first, disjoint and not adjacent.
    pub ranges: Vec<RangeInclusive<u64>>,
}

impl Ack {
    /// Appends the ack's fields: the body of an Ack packet, or the prefix of a
    /// packet that carries one.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.delay_micros);
        put_varint(out, self.max_data);
        encode_ranges(out, &self.ranges);
    }

    /// Bytes [`encode`](Self::encode) appends.
    pub fn encoded_len(&self) -> usize {
        varint_len(self.delay_micros) + varint_len(self.max_data) + ranges_len(&self.ranges)
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            delay_micros: r.varint()?,
            max_data: r.varint()?,
            ranges: decode_ranges(r)?,
        })
    }
}

/// Asks the peer to send the data of these packet numbers again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatRequest {
    /// Missing packet numbers, largest first, disjoint and not adjacent.
    pub missing: Vec<RangeInclusive<u64>>,
}

/// Why a session is being closed, as carried on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// The application closed the session with its own code.
    Application(u64),
    /// The transport closed the session; see [`crate::TransportCode`].
    Transport(u64),
}

/// Ends a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// Who closed and why.
    pub code: CloseCode,
    /// Human-readable detail, at most [`MAX_CLOSE_REASON`] bytes.
    pub reason: Bytes,
}

/// Every kind of packet, with its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// Opens a session (padded to the sender's MTU).
    Connect(Handshake),
    /// Accepts a session.
    ConnectAck(Handshake),
    /// One fragment of a reliable message.
    Data(Data),
    /// Acknowledges packets and grants credit.
    Ack(Ack),
    /// A negative acknowledgement naming missing packets.
    RepeatRequest(RepeatRequest),
    /// A keep-alive probe.
    Ping,
    /// The answer to the ping with this packet number.
    PingAck {
        /// Packet number of the ping being answered.
        ping: u64,
    },
    /// Ends the session.
    Close(Close),
    /// An unreliable datagram.
    Datagram(Bytes),
    /// Sent to a peer's new address: answer with this token from there.
    PathChallenge {
        /// Unpredictable, chosen by the challenger.
        token: u64,
    },
    /// Proves the sender receives at the address it sends from.
    PathResponse {
        /// The challenge's token.
        token: u64,
    },
    /// A stream's finish, reset, refusal or credit.
    StreamControl {
        /// The stream.
        stream: StreamId,
        /// What about it.
        op: StreamOp,
    },
    /// A listener that holds too many unvalidated sessions answers a connect
    /// with this instead of a session: the starter connects again carrying
    /// the token, which proves its address without the listener having
    /// kept any state.
    Retry {
        /// Opaque to the starter, at most [`MAX_RETRY_TOKEN`] bytes.
        token: Bytes,
    },
    /// A path MTU probe: `padding` bytes that carry nothing, so that the
    /// datagram has the size being probed. Elicits an ack.
    Probe {
        /// Length of the body, zeros when sent; ignored when received.
        padding: usize,
    },
    /// Part of a message fragment.
    DataPart(DataPart),
    /// A resumption ticket for the starter.
    Ticket(NewTicket),
}

impl Packet {
    /// The kind byte for this packet.
    pub fn kind(&self) -> PacketKind {
        match self {
            Self::Connect(_) => PacketKind::Connect,
            Self::ConnectAck(_) => PacketKind::ConnectAck,
            Self::Data(_) => PacketKind::Data,
            Self::Ack(_) => PacketKind::Ack,
            Self::RepeatRequest(_) => PacketKind::RepeatRequest,
            Self::Ping => PacketKind::Ping,
            Self::PingAck { .. } => PacketKind::PingAck,
            Self::Close(_) => PacketKind::Close,
            Self::Datagram(_) => PacketKind::Datagram,
            Self::PathChallenge { .. } => PacketKind::PathChallenge,
            Self::PathResponse { .. } => PacketKind::PathResponse,
            Self::StreamControl { .. } => PacketKind::StreamControl,
            Self::Retry { .. } => PacketKind::Retry,
            Self::Probe { .. } => PacketKind::Probe,
            Self::DataPart(_) => PacketKind::DataPart,
            Self::Ticket(_) => PacketKind::Ticket,
        }
    }

    /// Appends the body (everything after the header) to `out`.
    pub fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Self::Connect(h) | Self::ConnectAck(h) => h.encode_body(out),
            Self::Data(d) => {
                encode_data_fields(out, d.stream, d.message, d.fragment, d.fragments);
                out.extend_from_slice(&d.payload);
            }
            Self::Ack(a) => a.encode(out),
            Self::RepeatRequest(r) => encode_ranges(out, &r.missing),
            Self::Ping => {}
            Self::PingAck { ping } => put_varint(out, *ping),
            Self::Close(c) => {
                let (flag, code) = match c.code {
                    CloseCode::Application(code) => (0u8, code),
                    CloseCode::Transport(code) => (1u8, code),
                };
                out.push(flag);
                put_varint(out, code);
                let reason = &c.reason[..c.reason.len().min(MAX_CLOSE_REASON)];
                put_varint(out, reason.len() as u64);
                out.extend_from_slice(reason);
            }
            Self::Datagram(payload) => out.extend_from_slice(payload),
            Self::PathChallenge { token } | Self::PathResponse { token } => {
                out.extend_from_slice(&token.to_be_bytes());
            }
            Self::StreamControl { stream, op } => {
                put_varint(out, stream.0);
                match *op {
                    StreamOp::Finish { messages } => {
                        out.push(0);
                        put_varint(out, messages);
                    }
                    StreamOp::Reset { code, messages } => {
                        out.push(1);
                        put_varint(out, code);
                        put_varint(out, messages);
                    }
                    StreamOp::Credit { max_data } => {
                        out.push(2);
                        put_varint(out, max_data);
                    }
                    StreamOp::Refuse => out.push(3),
                }
            }
            Self::Retry { token } => {
                put_varint(out, token.len() as u64);
                out.extend_from_slice(token);
            }
            Self::Probe { padding } => out.resize(out.len() + padding, 0),
            Self::DataPart(p) => {
                encode_data_fields(out, p.stream, p.message, p.fragment, p.fragments);
                put_varint(out, u64::from(p.fragment_len));
                put_varint(out, u64::from(p.offset));
                out.extend_from_slice(&p.payload);
            }
            Self::Ticket(t) => t.encode(out),
        }
    }

    /// Encodes header and body into `out` (no protection trailer).
    pub fn encode(&self, session: SessionId, number: u64, out: &mut Vec<u8>) {
        self.encode_with_ack(session, number, None, out);
    }

    /// Encodes header, `ack` and body into `out` (no protection trailer).
    /// The ack is left out if this kind [may not carry
    /// one](PacketKind::may_carry_ack).
    pub fn encode_with_ack(
        &self,
        session: SessionId,
        number: u64,
        ack: Option<&Ack>,
        out: &mut Vec<u8>,
    ) {
        let ack = ack.filter(|_| self.kind().may_carry_ack());
        Header {
            kind: self.kind(),
            session,
            number,
            with_ack: ack.is_some(),
            key_phase: false,
        }
        .encode(out);
        if let Some(ack) = ack {
            ack.encode(out);
        }
        self.encode_body(out);
    }

    /// Parses a body of the given kind. Payloads are zero-copy slices of `body`.
    pub fn decode_body(kind: PacketKind, body: Bytes) -> Result<Self, DecodeError> {
        let mut r = Reader::new(&body);
        let packet = match kind {
            PacketKind::Connect | PacketKind::ConnectAck => {
                let h = Handshake::decode_body(kind, &body, &mut r)?;
                if kind == PacketKind::Connect {
                    Self::Connect(h)
                } else {
                    Self::ConnectAck(h)
                }
            }
            PacketKind::Data => {
                let (stream, message, fragment, fragments) = decode_fragment_id(&mut r)?;
                let start = r.position();
                r.rest();
                Self::Data(Data {
                    stream,
                    message,
                    fragment,
                    fragments,
                    payload: body.slice(start..),
                })
            }
            PacketKind::Ack => Self::Ack(Ack::decode(&mut r)?),
            PacketKind::RepeatRequest => Self::RepeatRequest(RepeatRequest {
                missing: decode_ranges(&mut r)?,
            }),
            PacketKind::Ping => Self::Ping,
            PacketKind::PingAck => Self::PingAck { ping: r.varint()? },
            PacketKind::Close => {
                let code = match r.u8()? {
                    0 => CloseCode::Application(r.varint()?),
                    1 => CloseCode::Transport(r.varint()?),
                    other => return Err(DecodeError::InvalidCloseFlag(other)),
                };
                let len = usize::try_from(r.varint()?).map_err(|_| DecodeError::Truncated)?;
                if len > MAX_CLOSE_REASON {
                    return Err(DecodeError::ValueOutOfRange);
                }
                let start = r.position();
                r.bytes(len)?;
                Self::Close(Close {
                    code,
                    reason: body.slice(start..start + len),
                })
            }
            PacketKind::Datagram => {
                r.rest();
                Self::Datagram(body.clone())
            }
            PacketKind::PathChallenge => Self::PathChallenge {
                token: u64::from_be_bytes(r.array()?),
            },
            PacketKind::PathResponse => Self::PathResponse {
                token: u64::from_be_bytes(r.array()?),
            },
            PacketKind::StreamControl => {
                let stream = StreamId(r.varint()?);
                let op = match r.u8()? {
                    0 => StreamOp::Finish {
                        messages: r.varint()?,
                    },
                    1 => StreamOp::Reset {
                        code: r.varint()?,
                        messages: r.varint()?,
                    },
                    2 => StreamOp::Credit {
                        max_data: r.varint()?,
                    },
                    3 => StreamOp::Refuse,
                    _ => return Err(DecodeError::ValueOutOfRange),
                };
                Self::StreamControl { stream, op }
            }
            PacketKind::Retry => {
                let len = usize::try_from(r.varint()?).map_err(|_| DecodeError::Truncated)?;
                if len > MAX_RETRY_TOKEN {
                    return Err(DecodeError::ValueOutOfRange);
                }
                let start = r.position();
                r.bytes(len)?;
                Self::Retry {
                    token: body.slice(start..start + len),
                }
            }
            PacketKind::Probe => Self::Probe {
                padding: r.rest().len(),
            },
            PacketKind::DataPart => {
                let (stream, message, fragment, fragments) = decode_fragment_id(&mut r)?;
                let fragment_len = r.varint()?;
                let offset = r.varint()?;
                let start = r.position();
                let len = r.rest().len() as u64;
                if fragment_len == 0
                    || fragment_len > MAX_FRAGMENT_LEN as u64
                    || len == 0
                    || offset.saturating_add(len) > fragment_len
                {
                    return Err(DecodeError::ValueOutOfRange);
                }
                Self::DataPart(DataPart {
                    stream,
                    message,
                    fragment,
                    fragments,
                    // Both below MAX_FRAGMENT_LEN: checked above.
                    fragment_len: fragment_len as u32,
                    offset: offset as u32,
                    payload: body.slice(start..),
                })
            }
            PacketKind::Ticket => Self::Ticket(NewTicket::decode(&body, &mut r)?),
        };
        if r.remaining() != 0 {
            return Err(DecodeError::TrailingBytes(r.remaining()));
        }
        Ok(packet)
    }

    /// Parses what follows the header of `header`: the ack it carries, if
    /// its [`with_ack`](Header::with_ack) flag says so, and its body.
    pub fn decode_with_ack(
        header: &Header,
        body: Bytes,
    ) -> Result<(Option<Ack>, Self), DecodeError> {
        if !header.with_ack {
            return Ok((None, Self::decode_body(header.kind, body)?));
        }
        let mut r = Reader::new(&body);
        let ack = Ack::decode(&mut r)?;
        let start = r.position();
        Ok((
            Some(ack),
            Self::decode_body(header.kind, body.slice(start..))?,
        ))
    }

    /// Parses a whole unprotected packet: header, the ack it carries (if
    /// any) and body.
    pub fn decode(datagram: Bytes) -> Result<(Header, Option<Ack>, Self), DecodeError> {
        let (header, len) = Header::decode(&datagram)?;
        let (ack, packet) = Self::decode_with_ack(&header, datagram.slice(len..))?;
        Ok((header, ack, packet))
    }
}

/// Appends the fixed fields of a data packet (everything but the payload).
pub(crate) fn encode_data_fields(
    out: &mut Vec<u8>,
    stream: StreamId,
    message: u64,
    fragment: u32,
    fragments: u32,
) {
    put_varint(out, stream.0);
    put_varint(out, message);
    put_varint(out, u64::from(fragment));
    put_varint(out, u64::from(fragments));
}

/// Ranges are written largest first: the count of ranges, the largest number, the
/// length of the first range minus one, then for each further range a gap and a
/// length (both minus their implied minimum), as in QUIC's ACK frame.
///
/// Only the longest prefix of well-formed ranges (each below the previous with a
/// gap of at least one) is written, so encoding can never underflow.
fn encode_ranges(out: &mut Vec<u8>, ranges: &[RangeInclusive<u64>]) {
    let ranges = well_formed(ranges);
    put_varint(out, ranges.len() as u64);
    for_each_range_field(ranges, |v| put_varint(out, v));
}

/// Bytes [`encode_ranges`] appends for `ranges`.
fn ranges_len(ranges: &[RangeInclusive<u64>]) -> usize {
    let ranges = well_formed(ranges);
    let mut len = varint_len(ranges.len() as u64);
    for_each_range_field(ranges, |v| len += varint_len(v));
    len
}

/// The longest prefix of at most [`MAX_RANGES`] ranges, each below the
/// previous with a gap of at least one.
fn well_formed(ranges: &[RangeInclusive<u64>]) -> &[RangeInclusive<u64>] {
    let ranges = &ranges[..ranges.len().min(MAX_RANGES)];
    let valid = ranges
        .iter()
        .enumerate()
        .take_while(|(i, r)| {
            r.start() <= r.end() && (*i == 0 || r.end().saturating_add(1) < *ranges[i - 1].start())
        })
        .count();
    &ranges[..valid]
}

/// The values encoded after the count, in order, for well-formed `ranges`
/// (an empty set has none).
fn for_each_range_field(ranges: &[RangeInclusive<u64>], mut field: impl FnMut(u64)) {
    let Some(first) = ranges.first() else {
        return;
    };
    field(*first.end());
    field(first.end() - first.start());
    let mut smallest = *first.start();
    for r in &ranges[1..] {
        field(smallest - r.end() - 2);
        field(r.end() - r.start());
        smallest = *r.start();
    }
}

/// Reads what [`encode_data_fields`] writes: stream, message, fragment and
/// fragment count, the fragment within the count.
fn decode_fragment_id(r: &mut Reader<'_>) -> Result<(StreamId, u64, u32, u32), DecodeError> {
    let stream = StreamId(r.varint()?);
    let message = r.varint()?;
    let fragment = r.varint_u32()?;
    let fragments = r.varint_u32()?;
    if fragments == 0 || fragment >= fragments {
        return Err(DecodeError::InvalidFragment {
            fragment,
            fragments,
        });
    }
    Ok((stream, message, fragment, fragments))
}

fn decode_ranges(r: &mut Reader<'_>) -> Result<Vec<RangeInclusive<u64>>, DecodeError> {
    let count = usize::try_from(r.varint()?).map_err(|_| DecodeError::TooManyRanges)?;
    if count > MAX_RANGES {
        return Err(DecodeError::TooManyRanges);
    }
    // Each range takes at least two bytes: never allocate more than the input holds.
    let mut ranges = Vec::with_capacity(count.min(r.remaining() / 2));
    if count == 0 {
        return Ok(ranges);
    }
    let largest = r.varint()?;
    let len = r.varint()?;
    let mut smallest = largest.checked_sub(len).ok_or(DecodeError::InvalidRange)?;
    ranges.push(smallest..=largest);
    for _ in 1..count {
        let gap = r.varint()?;
        let len = r.varint()?;
        let end = smallest
            .checked_sub(gap)
            .and_then(|v| v.checked_sub(2))
            .ok_or(DecodeError::InvalidRange)?;
        smallest = end.checked_sub(len).ok_or(DecodeError::InvalidRange)?;
        ranges.push(smallest..=end);
    }
    Ok(ranges)
}

#[cfg(test)]
mod tests;
