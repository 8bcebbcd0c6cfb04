//! Packet protection: the layer between the codec and the session.
//!
//! Every datagram leaves through [`Protection::seal`] and arrives through
//! [`Protection::open`]. The default scheme is [`Protection::Checksum`], a
//! CRC-32 trailer that catches corruption the UDP checksum missed (or a network
//! that has none, like the simulator's corrupting links). With
//! [`Protection::Aead`] packets are encrypted and authenticated instead: the
//! header stays readable (it routes the datagram and its packet number is the
//! nonce) and becomes the associated data; the body is encrypted and the
//! trailer becomes the tag (see [`crate::crypto`]).
//!
//! Under an AEAD this layer also owns the key phase bit
//! ([`KEY_PHASE`]) of the header's kind byte: [`Protection::seal_at`] sets it
//! to the sending generation's phase before sealing (the header is the
//! associated data, so the bit is authenticated), and [`Protection::open`]
//! reads it to pick the receive keys (see [`crate::crypto::update`]). Under
//! the checksum the bit is never set, and a packet that has it is rejected.

use bytes::BytesMut;

use crate::crypto::{Cipher, PacketKeys, TAG_LEN};
use crate::error::DecodeError;
use crate::wire::packet::KEY_PHASE;

/// Where the kind byte sits in a packet: after the version byte.
const KIND_BYTE: usize = 1;

/// How packets of a session are protected.
///
/// Not `PartialEq`: comparing keys would compare secrets.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub enum Protection {
    /// A CRC-32 (IEEE) over header and body, appended as 4 big-endian bytes.
    /// Detects corruption; offers no secrecy or authenticity.
    #[default]
    Checksum,
    /// The cipher the handshake agreed on (AES-256-GCM or
    /// ChaCha20-Poly1305) with the session's keys from the handshake: the
    /// body is encrypted, header and body are authenticated, and a 16-byte
    /// tag is appended.
    Aead(PacketKeys),
}

impl Protection {
    /// The packet cipher, or `None` under the checksum.
    pub fn cipher(&self) -> Option<Cipher> {
        match self {
            Self::Checksum => None,
            Self::Aead(keys) => Some(keys.cipher()),
        }
    }

    /// Bytes the trailer adds to each packet.
    pub fn overhead(&self) -> usize {
        match self {
            Self::Checksum => 4,
            Self::Aead(_) => TAG_LEN,
        }
    }

    /// Protects the packet in `packet` (header followed by body) in place,
    /// appending the trailer.
    ///
    /// `header_len` is where the body starts and `number` the packet number:
    /// unused by the checksum, they are the associated data and nonce of an AEAD.
    ///
    /// # Panics
    ///
    /// With [`Protection::Aead`], if `header_len > packet.len()` (a caller
    /// bug), or if it is shorter than a packet's fixed header.
    pub fn seal(&self, number: u64, header_len: usize, packet: &mut Vec<u8>) {
        self.seal_at(number, 0, header_len, packet);
    }

    /// Protects the packet that starts at byte `start` of `buf` and runs to
    /// its end, in place, appending its trailer to `buf`: what
    /// [`seal`](Self::seal) does to a packet alone, for one appended after
    /// others (a batch of datagrams built in one buffer). The bytes before
    /// `start` are left as they are, and the packet's bytes come out the same
    /// as if it had been sealed alone.
    ///
    /// # Panics
    ///
    /// If `start > buf.len()`, and with [`Protection::Aead`] if
    /// `start + header_len > buf.len()` or the header is shorter than a
    /// packet's fixed header (caller bugs).
    pub fn seal_at(&self, number: u64, start: usize, header_len: usize, buf: &mut Vec<u8>) {
        match self {
            Self::Checksum => {
                let crc = crc32fast::hash(&buf[start..]);
                buf.extend_from_slice(&crc.to_be_bytes());
            }
            Self::Aead(keys) => {
                let kind = &mut buf[start + KIND_BYTE];
                *kind = (*kind & !KEY_PHASE) | if keys.send_phase() { KEY_PHASE } else { 0 };
                keys.seal_at(number, start, header_len, buf);
            }
        }
    }

    /// Checks and removes the trailer of a received packet, in place.
    ///
    /// Under an AEAD, the key phase bit of the kind byte picks the keys
    /// ([`PacketKeys::open_in_phase`]); under the checksum, a packet with the
    /// bit set fails with [`DecodeError::Integrity`].
    pub fn open(
        &self,
        number: u64,
        header_len: usize,
        packet: &mut BytesMut,
    ) -> Result<(), DecodeError> {
        match self {
            Self::Checksum => {
                let Some(body_end) = packet.len().checked_sub(4) else {
                    return Err(DecodeError::Truncated);
                };
                if body_end < header_len {
                    return Err(DecodeError::Truncated);
                }
                if packet.get(KIND_BYTE).is_some_and(|k| k & KEY_PHASE != 0) {
                    return Err(DecodeError::Integrity);
                }
                let (content, trailer) = packet.split_at(body_end);
                let expected = u32::from_be_bytes(trailer.try_into().expect("4 bytes"));
                if crc32fast::hash(content) != expected {
                    return Err(DecodeError::Integrity);
                }
                packet.truncate(body_end);
                Ok(())
            }
            Self::Aead(keys) => {
                let phase = header_len > KIND_BYTE
                    && packet.get(KIND_BYTE).is_some_and(|k| k & KEY_PHASE != 0);
                keys.open_in_phase(number, phase, header_len, packet)
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
        let mut packet = b"h\x03ader and body".to_vec();
        p.seal(0, 6, &mut packet);
        for bit in 0..packet.len() * 8 {
            let mut copy = BytesMut::from(&packet[..]);
            copy[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(p.open(0, 6, &mut copy), Err(DecodeError::Integrity));
        }
        let mut ok = BytesMut::from(&packet[..]);
        p.open(0, 6, &mut ok).unwrap();
        assert_eq!(&ok[..], b"h\x03ader and body");
    }

    /// The two sides' protections after a pre-shared-key handshake.
    fn keyed(key: u8, seed: u64) -> (Protection, Protection) {
        use crate::crypto::{Handshake, PreSharedKey};
        use rand::SeedableRng;

        let psk = PreSharedKey::from_bytes([key; 32]);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let mut i = Handshake::initiator(&psk, b"prologue", &mut rng);
        let mut r = Handshake::responder(&psk, b"prologue", &mut rng);
        let (mut m1, mut m2) = (Vec::new(), Vec::new());
        i.write_message(b"", &mut m1).unwrap();
        r.read_message(&m1, &mut Vec::new()).unwrap();
        r.write_message(b"", &mut m2).unwrap();
        i.read_message(&m2, &mut Vec::new()).unwrap();
        (
            Protection::Aead(i.into_keys().unwrap()),
            Protection::Aead(r.into_keys().unwrap()),
        )
    }

    #[test]
    fn aead_delegates_to_the_packet_keys() {
        let (sender, receiver) = keyed(5, 1);
        assert_eq!(sender.overhead(), 16);
        assert_eq!(sender.cipher(), receiver.cipher());
        assert!(sender.cipher().is_some());
        assert_eq!(Protection::Checksum.cipher(), None);

        let mut packet = b"h\x03ader and body".to_vec();
        sender.seal(3, 6, &mut packet);
        assert_eq!(packet.len(), 15 + sender.overhead());
        assert_eq!(&packet[..6], b"h\x03ader");
        assert_eq!(
            receiver.open(4, 6, &mut BytesMut::from(&packet[..])),
            Err(DecodeError::Integrity)
        );
        assert_eq!(
            sender.open(3, 6, &mut BytesMut::from(&packet[..])),
            Err(DecodeError::Integrity)
        );
        let mut ok = BytesMut::from(&packet[..]);
        receiver.open(3, 6, &mut ok).unwrap();
        assert_eq!(&ok[..], b"h\x03ader and body");
        assert_eq!(
            receiver.open(0, 10, &mut BytesMut::from(&[0u8; 25][..])),
            Err(DecodeError::Truncated)
        );
    }

    #[test]
    fn the_key_phase_bit_follows_the_sending_generation_and_only_under_keys() {
        let (mut sender, receiver) = keyed(6, 2);
        let packet = |p: &Protection, number: u64| {
            // A Data packet's header, with the phase bit set by hand: the
            // protection writes the bit itself.
            let mut packet = vec![1, 0x03 | KEY_PHASE, 0, 0, 0, 0, 0, 0, 0, 0, number as u8];
            packet.extend_from_slice(b"body");
            p.seal(number, 11, &mut packet);
            packet
        };
        let first = packet(&sender, 1);
        assert_eq!(first[KIND_BYTE], 0x03, "generation 0: phase 0");
        let Protection::Aead(keys) = &mut sender else {
            unreachable!()
        };
        keys.update_send();
        let second = packet(&sender, 2);
        assert_eq!(second[KIND_BYTE], 0x03 | KEY_PHASE, "generation 1: phase 1");
        for (number, sealed) in [(1, &first), (2, &second)] {
            let mut opened = BytesMut::from(&sealed[..]);
            receiver.open(number, 11, &mut opened).unwrap();
            assert_eq!(&opened[11..], b"body");
            // The bit is authenticated: flipped, the packet does not open.
            let mut flipped = BytesMut::from(&sealed[..]);
            flipped[KIND_BYTE] ^= KEY_PHASE;
            assert_eq!(
                receiver.open(number, 11, &mut flipped),
                Err(DecodeError::Integrity)
            );
        }
        // Under the checksum a packet never carries the bit.
        let mut clear = vec![1, 0x03 | KEY_PHASE, 0, 0, 0, 0, 0, 0, 0, 0, 1];
        Protection::Checksum.seal(1, 11, &mut clear);
        assert_eq!(
            Protection::Checksum.open(1, 11, &mut BytesMut::from(&clear[..])),
            Err(DecodeError::Integrity)
        );
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
