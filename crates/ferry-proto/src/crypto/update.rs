//! Key updates: how a long session moves each direction to fresh keys.
//!
//! Like QUIC's key update (RFC 9001 §6), adapted to Ferry:
//!
//! - **Generations.** Each direction's keys come in generations. Generation
//!   0 is the handshake's: the 32-byte output of Noise's split for that
//!   direction is both its packet key (so a peer that never updates reads
//!   the same packets as before key updates existed) and its *secret*.
//!   Generation `n + 1` derives from generation `n`'s secret with HKDF-Expand
//!   (RFC 5869) over HMAC-SHA-256, `ring`'s implementation:
//!
//!   ```text
//!   secret[n+1] = HKDF-Expand(PRK = secret[n],   info = "ferry key update", L = 32)
//!   key[n+1]    = HKDF-Expand(PRK = secret[n+1], info = "ferry packet key", L = 32)
//!   ```
//!
//!   The secret is a uniformly random 32-byte value, so it serves as the
//!   pseudorandom key directly (no HKDF-Extract). Once the next generation is
//!   derived, the secret before is wiped: learning a key or secret of
//!   generation `n` reveals nothing of the generations before it; and from
//!   generation 1 on, learning a packet key does not reveal its secret, so
//!   not the generations after either (generation 0's key is its secret, for
//!   compatibility).
//!
//! - **Directions.** Each direction updates on its own: a side moves its
//!   *sending* keys when its own limits say so
//!   (`Config::key_update_packets`, `Config::key_update_interval`), and its
//!   *receiving* keys when the peer's packets show the peer moved. Neither
//!   waits for the other, and neither has to answer an update with its own.
//!
//! - **Key phase.** The low bit of the sending generation travels in the
//!   kind byte of every encrypted packet's header
//!   ([`KEY_PHASE`](crate::wire::packet::KEY_PHASE), `0x40`), which is the
//!   associated data, so it is authenticated with the packet. A receiver that
//!   sees the phase of its current receive generation opens with those keys.
//!   One that sees the other phase opens with the previous generation's keys
//!   if the packet number is below that of the packet that moved it to the
//!   current generation (a late packet: numbers only grow, across updates
//!   too), else with the next generation's, derived ahead; when that packet
//!   opens, receiving moves on ([`RecvGeneration`]). A forged packet with
//!   the other phase fails to open and moves nothing.
//!
//! - **Pacing updates.** A sender does not update again until the peer has
//!   acknowledged a packet of its current generation: the peer then holds
//!   its keys, so there is never more than one generation in flight and
//!   one phase bit is enough.
//!
//! - **Old keys.** The previous receive keys are kept for three
//!   retransmission timeouts after the move (as QUIC keeps them for three
//!   probe timeouts), long enough for every reordered late packet, then
//!   wiped. A replayed packet of an earlier generation then opens under no
//!   key; within the window it opens, and the session drops it as a
//!   duplicate by its packet number, as any replay.

use ring::hkdf;
use zeroize::Zeroize;

/// Which receive keys a packet needs (see the [module documentation](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecvGeneration {
    /// The generation before the current one: a late packet.
    Previous,
    /// The current generation.
    Current,
    /// The next generation: the peer updated its keys.
    Next,
}

/// A 32-byte traffic secret, wiped from memory when dropped.
#[derive(Clone)]
pub(super) struct Secret(pub(super) [u8; 32]);

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// HKDF-Expand-SHA-256 of `secret` with `info`, 32 bytes.
fn expand(secret: &Secret, info: &[u8]) -> Secret {
    let prk = hkdf::Prk::new_less_safe(hkdf::HKDF_SHA256, &secret.0);
    let mut out = Secret([0; 32]);
    prk.expand(&[info], hkdf::HKDF_SHA256)
        .and_then(|okm| okm.fill(&mut out.0))
        .expect("32 bytes is within HKDF-SHA-256's output limit");
    out
}

/// The secret of the generation after `secret`'s.
pub(super) fn next_secret(secret: &Secret) -> Secret {
    expand(secret, b"ferry key update")
}

/// The packet key of `secret`'s generation (from generation 1 on).
pub(super) fn packet_key(secret: &Secret) -> Secret {
    expand(secret, b"ferry packet key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derivation_is_deterministic_and_each_step_differs() {
        let s0 = Secret([7; 32]);
        let s1 = next_secret(&s0);
        assert_eq!(s1.0, next_secret(&Secret([7; 32])).0);
        assert_ne!(s1.0, s0.0);
        let k1 = packet_key(&s1);
        assert_ne!(k1.0, s1.0, "the packet key is not the secret");
        assert_ne!(next_secret(&s1).0, s1.0);
        assert_ne!(next_secret(&s1).0, k1.0);
    }

    #[test]
    fn derivation_matches_hkdf_sha256_known_answer() {
        // HKDF-Expand(PRK = 32 × 0x0b, info = "ferry key update", L = 32),
        // computed independently with Python's hmac module:
        // T(1) = HMAC-SHA256(PRK, info || 0x01).
        let s = next_secret(&Secret([0x0b; 32]));
        assert_eq!(
            hex(&s.0),
            "588679c480a347e71422d5676873489d2baba361fdf8a87af52fa835c4664aac"
        );
    }

    use crate::crypto::{Cipher, PacketKeys};
    use crate::error::DecodeError;
    use bytes::BytesMut;

    /// The two sides of one session: `a` sends with what `b` receives with.
    fn pair(cipher: Cipher) -> (PacketKeys, PacketKeys) {
        let (x, y) = ([0x11; 32], [0x22; 32]);
        (
            PacketKeys::new(cipher, &x, &y),
            PacketKeys::new(cipher, &y, &x),
        )
    }

    /// A packet `number` sealed by `keys`, its kind byte carrying the phase
    /// as the protection layer sets it.
    fn sealed(keys: &PacketKeys, number: u64) -> BytesMut {
        let phase = if keys.send_phase() { 0x40 } else { 0 };
        let mut packet = vec![1, 0x03 | phase, 9, 9, 9, 9, 9, 9, 9, 9, number as u8];
        packet.extend_from_slice(b"body of the packet");
        keys.seal(number, 11, &mut packet);
        BytesMut::from(&packet[..])
    }

    fn open(keys: &PacketKeys, number: u64, mut packet: BytesMut) -> Result<(), DecodeError> {
        let phase = packet[1] & 0x40 != 0;
        keys.open_in_phase(number, phase, 11, &mut packet)?;
        assert_eq!(&packet[11..], b"body of the packet");
        Ok(())
    }

    #[test]
    fn both_sides_derive_the_same_generations_for_both_ciphers() {
        for cipher in Cipher::ALL {
            let (mut a, mut b) = pair(cipher);
            let mut number = 0;
            for generation in 0..5u64 {
                assert_eq!(a.send_generation(), generation);
                assert_eq!(a.send_phase(), generation % 2 == 1);
                for _ in 0..3 {
                    let packet = sealed(&a, number);
                    let phase = packet[1] & 0x40 != 0;
                    let expected = if generation == b.recv_generation() {
                        RecvGeneration::Current
                    } else {
                        RecvGeneration::Next
                    };
                    assert_eq!(b.recv_generation_for(number, phase), Some(expected));
                    open(&b, number, packet).unwrap();
                    if expected == RecvGeneration::Next {
                        b.update_recv(number);
                    }
                    assert_eq!(b.recv_generation(), generation);
                    number += 1;
                }
                a.update_send();
            }
            // The other direction never moved.
            assert_eq!(b.send_generation(), 0);
            assert_eq!(a.recv_generation(), 0);
            open(&a, 0, sealed(&b, 0)).unwrap();
        }
    }

    #[test]
    fn a_packet_of_another_generation_opens_under_no_other_key() {
        let (mut a, b) = pair(Cipher::ChaCha20Poly1305);
        let old = sealed(&a, 4);
        a.update_send();
        let new = sealed(&a, 5);
        // The current key does not open a packet of the next generation, nor
        // the next key one of the current generation.
        assert_eq!(b.open(5, 11, &mut new.clone()), Err(DecodeError::Integrity));
        let mut flipped = old.clone();
        flipped[1] ^= 0x40;
        assert_eq!(open(&b, 4, flipped), Err(DecodeError::Integrity));
        // A forged packet in the other phase moves nothing.
        assert_eq!(b.recv_generation(), 0);
        open(&b, 4, old).unwrap();
        open(&b, 5, new).unwrap();
    }

    #[test]
    fn late_packets_open_under_the_previous_keys_until_they_are_discarded() {
        let (mut a, mut b) = pair(Cipher::Aes256Gcm);
        let late = sealed(&a, 40);
        a.update_send();
        b.update_recv(50);
        let first = sealed(&a, 50);
        open(&b, 50, first).unwrap();
        assert!(b.has_previous());
        assert_eq!(
            b.recv_generation_for(40, false),
            Some(RecvGeneration::Previous)
        );
        open(&b, 40, late.clone()).unwrap();
        // At or above the first number of the new generation, the other
        // phase is the generation after: the late packet cannot pass for it.
        assert_eq!(b.recv_generation_for(60, false), Some(RecvGeneration::Next));
        b.discard_previous();
        assert!(!b.has_previous());
        assert_eq!(b.recv_generation_for(40, false), None);
        // Replayed after the window: no key opens it, and the bytes stay.
        let mut replay = late.clone();
        assert_eq!(
            b.open_in_phase(40, false, 11, &mut replay),
            Err(DecodeError::Integrity)
        );
        assert_eq!(replay, late);
    }

    #[test]
    fn a_send_update_replaces_the_key_and_the_secret() {
        let (mut a, _) = pair(Cipher::ChaCha20Poly1305);
        let before = sealed(&a, 1);
        a.update_send();
        assert_ne!(sealed(&a, 1)[11..], before[11..]);
        // Derived from the handshake output as the module documentation says.
        let s1 = next_secret(&Secret([0x11; 32]));
        let k1 = packet_key(&s1);
        let receiver = PacketKeys::new(Cipher::ChaCha20Poly1305, &[0; 32], &k1.0);
        receiver.open(1, 11, &mut sealed(&a, 1)).unwrap();
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_open_and_never_panic(
            data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..200),
            number in proptest::prelude::any::<u64>(),
            phase in proptest::prelude::any::<bool>(),
            header_len in 0usize..64,
            moved in proptest::prelude::any::<bool>(),
        ) {
            let (_, mut b) = pair(Cipher::ChaCha20Poly1305);
            if moved {
                b.update_recv(number / 2);
            }
            let mut packet = BytesMut::from(&data[..]);
            proptest::prop_assert!(b.open_in_phase(number, phase, header_len, &mut packet).is_err());
            proptest::prop_assert_eq!(packet.len(), data.len());
        }
    }

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }
}
