//! Packet protection: the layer between the codec and the session.
//!
//! Every datagram leaves through [`Protection::seal`] and arrives through
//! [`Protection::open`]. Today the only scheme is [`Protection::Checksum`], a
//! CRC-32 trailer that catches corruption the UDP checksum missed (or a network
//! that has none, like the simulator's corrupting links). Authenticated
//! encryption plugs in here as another variant: the header stays readable (it
//! routes the datagram and its packet number is the nonce) and becomes the
//! associated data; the body is encrypted and the trailer becomes the tag.

use bytes::BytesMut;

use crate::error::DecodeError;

/// How packets of a session are protected.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protection {
    /// A CRC-32 (IEEE) over header and body, appended as 4 big-endian bytes.
    /// Detects corruption; offers no secrecy or authenticity.
    #[default]
    Checksum,
}

impl Protection {
    /// Bytes the trailer adds to each packet.
    pub fn overhead(&self) -> usize {
        match self {
            Self::Checksum => 4,
        }
    }

    /// Protects the packet in `packet` (header followed by body) in place,
    /// appending the trailer.
    ///
    /// `header_len` is where the body starts and `number` the packet number:
    /// unused by the checksum, they are the associated data and nonce of an AEAD.
    pub fn seal(&self, number: u64, header_len: usize, packet: &mut Vec<u8>) {
        let _ = (number, header_len);
        match self {
            Self::Checksum => {
                let crc = crc32fast::hash(packet);
                packet.extend_from_slice(&crc.to_be_bytes());
            }
        }
    }

    /// Checks and removes the trailer of a received packet, in place.
    pub fn open(
        &self,
        number: u64,
        header_len: usize,
        packet: &mut BytesMut,
    ) -> Result<(), DecodeError> {
        let _ = number;
        match self {
            Self::Checksum => {
                let Some(body_end) = packet.len().checked_sub(4) else {
                    return Err(DecodeError::Truncated);
                };
                if body_end < header_len {
                    return Err(DecodeError::Truncated);
                }
                let (content, trailer) = packet.split_at(body_end);
                let expected = u32::from_be_bytes(trailer.try_into().expect("4 bytes"));
                if crc32fast::hash(content) != expected {
                    return Err(DecodeError::Integrity);
                }
                packet.truncate(body_end);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_detects_any_single_bit_flip() {
        let p = Protection::Checksum;
        let mut packet = b"header and body".to_vec();
        p.seal(0, 6, &mut packet);
        for bit in 0..packet.len() * 8 {
            let mut copy = BytesMut::from(&packet[..]);
            copy[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(p.open(0, 6, &mut copy), Err(DecodeError::Integrity));
        }
        let mut ok = BytesMut::from(&packet[..]);
        p.open(0, 6, &mut ok).unwrap();
        assert_eq!(&ok[..], b"header and body");
    }

    #[test]
    fn short_packets_are_truncated() {
        let p = Protection::Checksum;
        assert_eq!(
            p.open(0, 0, &mut BytesMut::from(&[1u8, 2][..])),
            Err(DecodeError::Truncated)
        );
        assert_eq!(
            p.open(0, 10, &mut BytesMut::from(&[0u8; 8][..])),
            Err(DecodeError::Truncated)
        );
    }
}
