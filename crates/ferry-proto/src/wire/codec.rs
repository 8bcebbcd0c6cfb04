//! Primitive wire encoding: variable-length integers and a bounds-checked reader.
//!
//! Integers use the two-bit-prefix variable-length encoding of QUIC (RFC 9000 §16):
//! the two most significant bits of the first byte give the total length (1, 2, 4
//! or 8 bytes) and the remaining bits hold the value, big-endian. Values up to
//! 2^62 − 1 can be encoded.

use crate::error::DecodeError;

/// The largest value a variable-length integer can hold (2^62 − 1).
pub const VARINT_MAX: u64 = (1 << 62) - 1;

/// How many bytes `value` takes as a variable-length integer.
///
/// Values above [`VARINT_MAX`] are clamped by [`put_varint`]; they report 8 here.
pub const fn varint_len(value: u64) -> usize {
    if value < 1 << 6 {
        1
    } else if value < 1 << 14 {
        2
    } else if value < 1 << 30 {
        4
    } else {
        8
    }
}

/// Appends `value` as a variable-length integer.
///
/// # Panics
///
/// Debug builds panic on values above [`VARINT_MAX`]; every caller in this crate
/// bounds its values first (packet numbers, message numbers, lengths).
pub fn put_varint(out: &mut Vec<u8>, value: u64) {
    debug_assert!(value <= VARINT_MAX, "varint out of range: {value}");
    let value = value.min(VARINT_MAX);
    match varint_len(value) {
        1 => out.push(value as u8),
        2 => out.extend_from_slice(&((value as u16) | 0x4000).to_be_bytes()),
        4 => out.extend_from_slice(&((value as u32) | 0x8000_0000).to_be_bytes()),
        _ => out.extend_from_slice(&(value | 0xc000_0000_0000_0000).to_be_bytes()),
    }
}

/// A cursor over untrusted bytes: every read is bounds-checked and fails with
/// [`DecodeError::Truncated`] instead of panicking.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading at the beginning of `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    /// Bytes consumed so far.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8, DecodeError> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError::Truncated)?;
        self.pos += 1;
        Ok(b)
    }

    /// Reads exactly `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.remaining() < n {
            return Err(DecodeError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Reads a fixed-size array.
    pub fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.bytes(N)?);
        Ok(a)
    }

    /// Reads a variable-length integer.
    pub fn varint(&mut self) -> Result<u64, DecodeError> {
        let first = self.u8()?;
        let len = 1usize << (first >> 6);
        let mut value = u64::from(first & 0x3f);
        for &b in self.bytes(len - 1)? {
            value = (value << 8) | u64::from(b);
        }
        Ok(value)
    }

    /// Reads a variable-length integer that must fit in `u32`.
    pub fn varint_u32(&mut self) -> Result<u32, DecodeError> {
        u32::try_from(self.varint()?).map_err(|_| DecodeError::ValueOutOfRange)
    }

    /// Everything not read yet.
    pub fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn boundaries() {
        for (value, len) in [
            (0, 1),
            (63, 1),
            (64, 2),
            (16_383, 2),
            (16_384, 4),
            ((1 << 30) - 1, 4),
            (1 << 30, 8),
            (VARINT_MAX, 8),
        ] {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            assert_eq!(out.len(), len, "{value}");
            assert_eq!(varint_len(value), len);
            assert_eq!(Reader::new(&out).varint().unwrap(), value);
        }
    }

    #[test]
    fn truncated_varint_is_an_error() {
        assert_eq!(
            Reader::new(&[0x80, 1]).varint(),
            Err(DecodeError::Truncated)
        );
        assert_eq!(Reader::new(&[]).u8(), Err(DecodeError::Truncated));
    }

    proptest! {
        #[test]
        fn varint_round_trip(value in 0..=VARINT_MAX) {
            let mut out = Vec::new();
            put_varint(&mut out, value);
            let mut r = Reader::new(&out);
            prop_assert_eq!(r.varint().unwrap(), value);
            prop_assert_eq!(r.remaining(), 0);
        }
    }
}
