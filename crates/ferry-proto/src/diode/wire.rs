//! The diode's datagrams, byte by byte.
//!
//! Every field has a fixed width, so every symbol datagram of a block has the
//! same length (a driver can hand a run of them to the kernel as one GSO send)
//! and a receiver checks a datagram's length before it reads a field.
//!
//! ```text
//! symbol     0xD1 | 0x01 | session u64 | block u64 | flags u8 | block_len u32
//!            | symbol_size u16 | esi u32 | symbol (symbol_size bytes) | crc32
//! heartbeat  0xD1 | 0x02 | sender u64 | interval_ms u32 | crc32
//! abort      0xD1 | 0x03 | session u64 | blocks u64 | crc32
//! keep-alive 0xD1 | 0x04 | session u64 | blocks u64 | crc32
//! ```
//!
//! All integers are big-endian; the CRC-32 covers every byte before it. A
//! symbol's `flags` byte holds `START` (bit 0), `FINAL` (bit 1) and, in bits
//! 2–7, the interleaving depth minus one: a depth-1 datagram is byte for byte
//! what senders without interleaving sent.

use crate::error::DecodeError;

/// The first byte of every diode datagram: protocol and version in one. It
/// differs from the session protocol's version byte, so a datagram sent to
/// the wrong kind of receiver is refused at its first byte.
pub const DIODE_VERSION: u8 = 0xD1;

/// Bytes of a symbol datagram besides the symbol itself (header and CRC).
pub const SYMBOL_OVERHEAD: usize = SYMBOL_HEADER + CRC_LEN;
const SYMBOL_HEADER: usize = 1 + 1 + 8 + 8 + 1 + 4 + 2 + 4;
const CRC_LEN: usize = 4;
/// Length of a heartbeat datagram.
pub const HEARTBEAT_LEN: usize = 1 + 1 + 8 + 4 + CRC_LEN;
/// Length of an abort datagram.
pub const ABORT_LEN: usize = 1 + 1 + 8 + 8 + CRC_LEN;
/// Length of a keep-alive datagram.
pub const KEEPALIVE_LEN: usize = ABORT_LEN;

const KIND_SYMBOL: u8 = 0x01;
const KIND_HEARTBEAT: u8 = 0x02;
const KIND_ABORT: u8 = 0x03;
const KIND_KEEPALIVE: u8 = 0x04;

/// Flag: this symbol belongs to block 0, the session's first.
pub const FLAG_START: u8 = 0x01;
/// Flag: this symbol belongs to the session's last block, whose data ends
/// with the session trailer (length and digest).
pub const FLAG_FINAL: u8 = 0x02;
const KNOWN_FLAGS: u8 = FLAG_START | FLAG_FINAL;
/// Where the interleaving depth (minus one) sits in the flags byte.
const DEPTH_SHIFT: u8 = 2;

/// The header of a symbol datagram: where the symbol belongs and how its block
/// was coded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolHeader {
    /// The session (one byte stream), random and 64 bits wide.
    pub session: u64,
    /// The block's number within the session, from 0; never wraps.
    pub block: u64,
    /// [`FLAG_START`] and [`FLAG_FINAL`].
    pub flags: u8,
    /// How many blocks the sender interleaves (1 to
    /// [`MAX_INTERLEAVE_DEPTH`](super::config::MAX_INTERLEAVE_DEPTH)): the
    /// receiver must hold twice as many per session.
    pub interleave: u8,
    /// The block's length in bytes (before padding to whole symbols).
    pub block_len: u32,
    /// The symbol size the block was coded with.
    pub symbol_size: u16,
    /// The encoding symbol id: below the block's source symbol count for a
    /// source symbol, at or above it for a repair symbol.
    pub esi: u32,
}

/// One decoded diode datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DiodePacket<'a> {
    /// A source or repair symbol of one block.
    Symbol {
        /// Where it belongs.
        header: SymbolHeader,
        /// The symbol, `header.symbol_size` bytes.
        symbol: &'a [u8],
    },
    /// The sender is alive.
    Heartbeat {
        /// Random per sender start: a change means the sender restarted.
        sender: u64,
        /// The sender's heartbeat interval, in milliseconds.
        interval_ms: u32,
    },
    /// The sender gave up on a session (its application aborted it).
    Abort {
        /// The session.
        session: u64,
        /// How many blocks of it were sent before the abort.
        blocks: u64,
    },
    /// The session is open but its application has sent nothing lately.
    KeepAlive {
        /// The session.
        session: u64,
        /// How many blocks of it were sent, all of them whole.
        blocks: u64,
    },
}

impl SymbolHeader {
    /// Writes the header into the first [`SYMBOL_OVERHEAD`]` - 4` bytes of
    /// `out`; the caller copies the symbol after it and calls [`seal`].
    pub fn write(&self, out: &mut [u8]) {
        out[0] = DIODE_VERSION;
        out[1] = KIND_SYMBOL;
        out[2..10].copy_from_slice(&self.session.to_be_bytes());
        out[10..18].copy_from_slice(&self.block.to_be_bytes());
        out[18] = (self.flags & KNOWN_FLAGS) | (self.interleave.saturating_sub(1) << DEPTH_SHIFT);
        out[19..23].copy_from_slice(&self.block_len.to_be_bytes());
        out[23..25].copy_from_slice(&self.symbol_size.to_be_bytes());
        out[25..29].copy_from_slice(&self.esi.to_be_bytes());
    }

    /// Where the symbol starts in a symbol datagram.
    pub const SYMBOL_OFFSET: usize = SYMBOL_HEADER;
}

/// Writes the CRC-32 of `datagram[..len - 4]` into its last four bytes.
pub fn seal(datagram: &mut [u8]) {
    let body = datagram.len() - CRC_LEN;
    let crc = crc32fast::hash(&datagram[..body]);
    datagram[body..].copy_from_slice(&crc.to_be_bytes());
}

/// Encodes a heartbeat into `out` (at least [`HEARTBEAT_LEN`] bytes) and
/// returns its length.
pub fn write_heartbeat(out: &mut [u8], sender: u64, interval_ms: u32) -> usize {
    let d = &mut out[..HEARTBEAT_LEN];
    d[0] = DIODE_VERSION;
    d[1] = KIND_HEARTBEAT;
    d[2..10].copy_from_slice(&sender.to_be_bytes());
    d[10..14].copy_from_slice(&interval_ms.to_be_bytes());
    seal(d);
    HEARTBEAT_LEN
}

/// Encodes an abort into `out` (at least [`ABORT_LEN`] bytes) and returns its
/// length.
pub fn write_abort(out: &mut [u8], session: u64, blocks: u64) -> usize {
    write_session_control(out, KIND_ABORT, session, blocks)
}

/// Encodes a keep-alive into `out` (at least [`KEEPALIVE_LEN`] bytes) and
/// returns its length.
pub fn write_keepalive(out: &mut [u8], session: u64, blocks: u64) -> usize {
    write_session_control(out, KIND_KEEPALIVE, session, blocks)
}

fn write_session_control(out: &mut [u8], kind: u8, session: u64, blocks: u64) -> usize {
    let d = &mut out[..ABORT_LEN];
    d[0] = DIODE_VERSION;
    d[1] = kind;
    d[2..10].copy_from_slice(&session.to_be_bytes());
    d[10..18].copy_from_slice(&blocks.to_be_bytes());
    seal(d);
    ABORT_LEN
}

fn u64_at(d: &[u8], at: usize) -> u64 {
    let mut b = [0; 8];
    b.copy_from_slice(&d[at..at + 8]);
    u64::from_be_bytes(b)
}

fn u32_at(d: &[u8], at: usize) -> u32 {
    let mut b = [0; 4];
    b.copy_from_slice(&d[at..at + 4]);
    u32::from_be_bytes(b)
}

/// Decodes one datagram: checks its version, its CRC and every field's range.
/// Never panics and never allocates.
pub fn decode(datagram: &[u8]) -> Result<DiodePacket<'_>, DecodeError> {
    if datagram.len() < 2 + CRC_LEN {
        return Err(DecodeError::Truncated);
    }
    if datagram[0] != DIODE_VERSION {
        return Err(DecodeError::UnsupportedVersion(datagram[0]));
    }
    let expected_len = match datagram[1] {
        KIND_HEARTBEAT => Some(HEARTBEAT_LEN),
        KIND_ABORT => Some(ABORT_LEN),
        KIND_KEEPALIVE => Some(KEEPALIVE_LEN),
        KIND_SYMBOL => None,
        kind => return Err(DecodeError::UnknownKind(kind)),
    };
    match expected_len {
        Some(len) if datagram.len() < len => return Err(DecodeError::Truncated),
        Some(len) if datagram.len() > len => {
            return Err(DecodeError::TrailingBytes(datagram.len() - len));
        }
        None if datagram.len() < SYMBOL_OVERHEAD => return Err(DecodeError::Truncated),
        _ => {}
    }
    let body = datagram.len() - CRC_LEN;
    if crc32fast::hash(&datagram[..body]) != u32_at(datagram, body) {
        return Err(DecodeError::Integrity);
    }
    let d = &datagram[..body];
    Ok(match d[1] {
        KIND_HEARTBEAT => DiodePacket::Heartbeat {
            sender: u64_at(d, 2),
            interval_ms: u32_at(d, 10),
        },
        KIND_ABORT => DiodePacket::Abort {
            session: u64_at(d, 2),
            blocks: u64_at(d, 10),
        },
        KIND_KEEPALIVE => DiodePacket::KeepAlive {
            session: u64_at(d, 2),
            blocks: u64_at(d, 10),
        },
        _ => {
            let header = SymbolHeader {
                session: u64_at(d, 2),
                block: u64_at(d, 10),
                flags: d[18] & KNOWN_FLAGS,
                interleave: (d[18] >> DEPTH_SHIFT) + 1,
                block_len: u32_at(d, 19),
                symbol_size: u16::from_be_bytes([d[23], d[24]]),
                esi: u32_at(d, 25),
            };
            if (header.flags & FLAG_START != 0) != (header.block == 0)
                || header.block_len == 0
                || header.symbol_size == 0
            {
                return Err(DecodeError::ValueOutOfRange);
            }
            let symbol = &d[SYMBOL_HEADER..];
            if symbol.len() != usize::from(header.symbol_size) {
                return Err(DecodeError::ValueOutOfRange);
            }
            DiodePacket::Symbol { header, symbol }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn symbol_datagram(header: SymbolHeader, symbol: &[u8]) -> Vec<u8> {
        let mut d = vec![0; SYMBOL_OVERHEAD + symbol.len()];
        header.write(&mut d);
        d[SymbolHeader::SYMBOL_OFFSET..SymbolHeader::SYMBOL_OFFSET + symbol.len()]
            .copy_from_slice(symbol);
        seal(&mut d);
        d
    }

    proptest! {
        #[test]
        fn symbols_round_trip(
            session: u64,
            block in 0u64..u64::MAX,
            last: bool,
            interleave in 1u8..=64,
            block_len in 1u32..,
            esi: u32,
            symbol in proptest::collection::vec(any::<u8>(), 1..300),
        ) {
            let flags = if block == 0 { FLAG_START } else { 0 } | if last { FLAG_FINAL } else { 0 };
            let header = SymbolHeader {
                session, block, flags, interleave, block_len,
                symbol_size: symbol.len() as u16, esi,
            };
            let d = symbol_datagram(header, &symbol);
            prop_assert_eq!(decode(&d), Ok(DiodePacket::Symbol { header, symbol: &symbol }));
        }

        #[test]
        fn control_round_trips(a: u64, b: u64, interval: u32) {
            let mut buf = [0; 64];
            let n = write_heartbeat(&mut buf, a, interval);
            prop_assert_eq!(decode(&buf[..n]), Ok(DiodePacket::Heartbeat { sender: a, interval_ms: interval }));
            let n = write_abort(&mut buf, a, b);
            prop_assert_eq!(decode(&buf[..n]), Ok(DiodePacket::Abort { session: a, blocks: b }));
            let n = write_keepalive(&mut buf, a, b);
            prop_assert_eq!(decode(&buf[..n]), Ok(DiodePacket::KeepAlive { session: a, blocks: b }));
        }

        #[test]
        fn any_bytes_decode_or_fail_cleanly(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
            let _ = decode(&bytes);
        }

        #[test]
        fn a_flipped_bit_is_caught(bit in 0usize..(SYMBOL_OVERHEAD + 16) * 8) {
            let header = SymbolHeader {
                session: 7, block: 3, flags: 0, interleave: 4, block_len: 100, symbol_size: 16, esi: 2,
            };
            let mut d = symbol_datagram(header, &[9; 16]);
            d[bit / 8] ^= 1 << (bit % 8);
            prop_assert!(decode(&d).is_err());
        }
    }

    #[test]
    fn start_flag_must_match_block_zero() {
        let header = SymbolHeader {
            session: 1,
            block: 1,
            flags: FLAG_START,
            interleave: 1,
            block_len: 10,
            symbol_size: 8,
            esi: 0,
        };
        let d = symbol_datagram(header, &[0; 8]);
        assert_eq!(decode(&d), Err(DecodeError::ValueOutOfRange));
    }

    #[test]
    fn depth_one_is_the_old_format_and_the_depth_travels_in_the_flags() {
        let mut header = SymbolHeader {
            session: 1,
            block: 0,
            flags: FLAG_START | FLAG_FINAL,
            interleave: 1,
            block_len: 10,
            symbol_size: 8,
            esi: 0,
        };
        assert_eq!(symbol_datagram(header, &[0; 8])[18], 0x03);
        header.interleave = 64;
        let d = symbol_datagram(header, &[0; 8]);
        assert_eq!(d[18], 0xff);
        assert_eq!(
            decode(&d),
            Ok(DiodePacket::Symbol {
                header,
                symbol: &[0; 8]
            })
        );
    }
}
