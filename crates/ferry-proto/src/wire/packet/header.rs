//! The header every packet starts with: version, kind byte (with the
//! carried-ack flag and the key phase bit), session id, packet number.

use crate::error::DecodeError;
use crate::id::SessionId;
use crate::wire::codec::{Reader, put_varint, varint_len};

use super::{ACK_FLAG, FIXED_HEADER_LEN, KEY_PHASE, PacketKind, VERSION};

/// The header every packet starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// What the body holds.
    pub kind: PacketKind,
    /// The session this packet belongs to, by the receiver's id for it (a
    /// Connect's: the starter's own; after the ConnectAck, each side's
    /// packets carry the other's id).
    pub session: SessionId,
    /// Per-direction packet number: grows by one for every packet sent, never reused.
    pub number: u64,
    /// The body starts with an ack ([`ACK_FLAG`]; only on kinds that
    /// [may carry one](PacketKind::may_carry_ack)).
    pub with_ack: bool,
    /// The key phase ([`KEY_PHASE`]): the low bit of the generation of the
    /// keys that sealed the packet. The sender's protection sets it when
    /// sealing; always `false` under a checksum.
    pub key_phase: bool,
}

impl Header {
    /// Encoded length of this header.
    pub fn encoded_len(&self) -> usize {
        FIXED_HEADER_LEN + varint_len(self.number)
    }

    /// Appends the header to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(VERSION);
        let ack = if self.with_ack { ACK_FLAG } else { 0 };
        let phase = if self.key_phase { KEY_PHASE } else { 0 };
        out.push(self.kind as u8 | ack | phase);
        out.extend_from_slice(&self.session.0);
        put_varint(out, self.number);
    }

    /// Parses a header and returns it with its length.
    pub fn decode(buf: &[u8]) -> Result<(Self, usize), DecodeError> {
        let mut r = Reader::new(buf);
        let version = r.u8()?;
        if version != VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let byte = r.u8()?;
        let kind = PacketKind::from_u8(byte & !(ACK_FLAG | KEY_PHASE))
            .map_err(|_| DecodeError::UnknownKind(byte))?;
        let with_ack = byte & ACK_FLAG != 0;
        let key_phase = byte & KEY_PHASE != 0;
        if with_ack && !kind.may_carry_ack() {
            return Err(DecodeError::UnknownKind(byte));
        }
        if key_phase
            && matches!(
                kind,
                PacketKind::Connect | PacketKind::ConnectAck | PacketKind::Retry
            )
        {
            return Err(DecodeError::UnknownKind(byte));
        }
        let session = SessionId(r.array()?);
        let number = r.varint()?;
        Ok((
            Self {
                kind,
                session,
                number,
                with_ack,
                key_phase,
            },
            r.position(),
        ))
    }
}
