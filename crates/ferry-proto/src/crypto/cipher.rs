//! The packet ciphers, and how the handshake agrees on one.
//!
//! Each side *offers* the ciphers it will use, most preferred first, inside
//! its encrypted handshake payload; the responder picks with [`negotiate`] and
//! states its pick and its own offer in message 2; the initiator checks that
//! the pick is the one [`negotiate`] gives for both offers. The bytes are in
//! the [module documentation](super) and `docs/protocol.md` §6.13.

use std::fmt;

use ring::aead::{AES_256_GCM, Algorithm, CHACHA20_POLY1305};
use thiserror::Error;

/// An AEAD that seals a session's packets once the handshake is done.
///
/// Both take a 32-byte key and a 12-byte nonce and append a 16-byte tag, so
/// the packet layout is the same whichever the session uses; both are
/// `ring`'s implementations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cipher {
    /// AES-256 in Galois/Counter Mode (NIST SP 800-38D). The faster of the two
    /// on CPUs with AES and carry-less multiplication instructions (AES-NI and
    /// PCLMULQDQ on x86-64, the ARMv8 cryptography extensions on AArch64).
    Aes256Gcm,
    /// ChaCha20-Poly1305 (RFC 8439). Fast in software on every CPU, and
    /// constant-time without special instructions; the cipher of sessions
    /// with a peer that predates negotiation.
    ChaCha20Poly1305,
}

impl Cipher {
    /// Every cipher, in no particular order.
    pub const ALL: [Cipher; 2] = [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305];

    /// The byte that names the cipher in a handshake payload. Ids are below
    /// `0x40`, which tells a negotiating responder's message 2 from one that
    /// predates negotiation (see [`encode_reply`]).
    pub const fn id(self) -> u8 {
        match self {
            Self::ChaCha20Poly1305 => 0x01,
            Self::Aes256Gcm => 0x02,
        }
    }

    /// The cipher named by `id`, if it is one this version knows.
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            0x01 => Some(Self::ChaCha20Poly1305),
            0x02 => Some(Self::Aes256Gcm),
            _ => None,
        }
    }

    /// The cipher's name as configuration files and logs spell it:
    /// `"aes-256-gcm"` or `"chacha20-poly1305"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Aes256Gcm => "aes-256-gcm",
            Self::ChaCha20Poly1305 => "chacha20-poly1305",
        }
    }

    /// `ring`'s algorithm for the cipher.
    pub(super) fn algorithm(self) -> &'static Algorithm {
        match self {
            Self::Aes256Gcm => &AES_256_GCM,
            Self::ChaCha20Poly1305 => &CHACHA20_POLY1305,
        }
    }
}

impl fmt::Display for Cipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Which packet cipher an endpoint offers in its handshakes
/// ([`Config::cipher`](crate::Config::cipher)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CipherPreference {
    /// Offer both, AES-256-GCM first when this CPU has hardware AES
    /// ([`hardware_aes`]), ChaCha20-Poly1305 first otherwise. Two `Auto`
    /// sides use AES-256-GCM when both have hardware AES, ChaCha20-Poly1305
    /// otherwise. The default.
    #[default]
    Auto,
    /// Offer AES-256-GCM only: the session uses it, or the handshake fails
    /// if the peer does not offer it (a peer that forces ChaCha20-Poly1305, or
    /// one that predates negotiation).
    Aes256Gcm,
    /// Offer ChaCha20-Poly1305 only: the session uses it, or the handshake
    /// fails if the peer forces AES-256-GCM.
    ChaCha20Poly1305,
}

impl CipherPreference {
    /// The ciphers this preference offers, most preferred first, on a CPU
    /// that has hardware AES or not (only [`Auto`](Self::Auto) looks at it).
    pub fn offer(self, hardware_aes: bool) -> Vec<Cipher> {
        match self {
            Self::Auto if hardware_aes => vec![Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305],
            Self::Auto => vec![Cipher::ChaCha20Poly1305, Cipher::Aes256Gcm],
            Self::Aes256Gcm => vec![Cipher::Aes256Gcm],
            Self::ChaCha20Poly1305 => vec![Cipher::ChaCha20Poly1305],
        }
    }

    /// The preference's name as configuration files spell it: `"auto"`,
    /// `"aes-256-gcm"` or `"chacha20-poly1305"`.
    pub const fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Aes256Gcm => Cipher::Aes256Gcm.name(),
            Self::ChaCha20Poly1305 => Cipher::ChaCha20Poly1305.name(),
        }
    }
}

impl fmt::Display for CipherPreference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether this CPU runs AES-GCM in hardware: AES-NI and PCLMULQDQ on x86 and
/// x86-64, the AES extension (which brings PMULL) on AArch64; `false` on every
/// other architecture. Detected at run time (the standard library caches the
/// answer).
pub fn hardware_aes() -> bool {
    #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
    {
        std::arch::is_x86_feature_detected!("aes")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
    }
    #[cfg(target_arch = "aarch64")]
    {
        std::arch::is_aarch64_feature_detected!("aes")
    }
    #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
    {
        false
    }
}

/// The responder's rule, given both sides' offers (each most preferred first):
///
/// 1. AES-256-GCM if both offers put it first (both sides have hardware AES,
///    or force it);
/// 2. else ChaCha20-Poly1305 if both offer it;
/// 3. else AES-256-GCM if both offer it (one side forces it, the other does
///    not mind);
/// 4. else [`NegotiationError::NoCommonCipher`].
///
/// The rule is symmetric, so the initiator, which learns the responder's
/// offer in message 2, checks the responder's pick by running it too.
pub fn negotiate(initiator: &[Cipher], responder: &[Cipher]) -> Result<Cipher, NegotiationError> {
    let both = |c: Cipher| initiator.contains(&c) && responder.contains(&c);
    if initiator.first() == Some(&Cipher::Aes256Gcm)
        && responder.first() == Some(&Cipher::Aes256Gcm)
    {
        Ok(Cipher::Aes256Gcm)
    } else if both(Cipher::ChaCha20Poly1305) {
        Ok(Cipher::ChaCha20Poly1305)
    } else if both(Cipher::Aes256Gcm) {
        Ok(Cipher::Aes256Gcm)
    } else {
        Err(NegotiationError::NoCommonCipher)
    }
}

/// Appends an offer as message 1's payload starts: one byte, the number of
/// ciphers (1 to 255), then each cipher's [`id`](Cipher::id), most preferred
/// first.
///
/// # Panics
///
/// If `offer` is empty or longer than 255 (a caller bug).
pub fn encode_offer(offer: &[Cipher], out: &mut Vec<u8>) {
    let count = u8::try_from(offer.len()).expect("at most 255 ciphers");
    assert!(count > 0, "an offer names at least one cipher");
    out.push(count);
    out.extend(offer.iter().map(|c| c.id()));
}

/// Appends the responder's answer as message 2's payload starts: the chosen
/// cipher's [`id`](Cipher::id), then the responder's own offer as
/// [`encode_offer`] writes it.
///
/// A responder that predates negotiation writes no such block (its payload
/// starts with its `max_udp_payload` varint, whose first byte is at least
/// `0x42`), and a responder answering an initiator that predates negotiation
/// writes none either.
///
/// # Panics
///
/// As [`encode_offer`].
pub fn encode_reply(chosen: Cipher, offer: &[Cipher], out: &mut Vec<u8>) {
    out.push(chosen.id());
    encode_offer(offer, out);
}

/// Reads an offer at the start of `payload`: the ciphers this version knows,
/// in the peer's order (unknown ids are skipped, repeats ignored), and the
/// bytes it took.
pub(super) fn decode_offer(payload: &[u8]) -> Result<(Vec<Cipher>, usize), NegotiationError> {
    let malformed = NegotiationError::MalformedOffer { len: payload.len() };
    let (&count, rest) = payload.split_first().ok_or(malformed.clone())?;
    let count = usize::from(count);
    if count == 0 || rest.len() < count {
        return Err(malformed);
    }
    let mut offer = Vec::with_capacity(Cipher::ALL.len());
    for cipher in rest[..count].iter().filter_map(|&id| Cipher::from_id(id)) {
        if !offer.contains(&cipher) {
            offer.push(cipher);
        }
    }
    Ok((offer, 1 + count))
}

/// What message 2's payload starts with.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Reply {
    /// A responder that predates negotiation: no block, ChaCha20-Poly1305.
    Legacy,
    /// The responder's pick (a raw id: it may be one this version does not
    /// know) and its offer, and the bytes they took.
    Chosen {
        id: u8,
        offer: Vec<Cipher>,
        len: usize,
    },
}

/// Reads the responder's answer at the start of message 2's `payload`.
pub(super) fn decode_reply(payload: &[u8]) -> Result<Reply, NegotiationError> {
    match payload.split_first() {
        None => Ok(Reply::Legacy),
        Some((&id, _)) if id >= 0x40 => Ok(Reply::Legacy),
        Some((&id, rest)) => {
            let (offer, len) = decode_offer(rest)
                .map_err(|_| NegotiationError::MalformedOffer { len: payload.len() })?;
            Ok(Reply::Chosen {
                id,
                offer,
                len: 1 + len,
            })
        }
    }
}

/// The initiator's check of the responder's answer: the pick must be a cipher
/// it offered, and the one [`negotiate`] gives for both offers (a legacy
/// responder counts as offering ChaCha20-Poly1305 alone).
pub(super) fn check_reply(ours: &[Cipher], reply: &Reply) -> Result<Cipher, NegotiationError> {
    match reply {
        Reply::Legacy => negotiate(ours, &[Cipher::ChaCha20Poly1305]),
        Reply::Chosen { id, offer, .. } => {
            let chosen = Cipher::from_id(*id)
                .filter(|c| ours.contains(c))
                .ok_or(NegotiationError::NotOffered { id: *id })?;
            let expected = negotiate(ours, offer)?;
            if chosen == expected {
                Ok(chosen)
            } else {
                Err(NegotiationError::WrongChoice { chosen, expected })
            }
        }
    }
}

/// The two sides could not agree on a packet cipher. The handshake message
/// that showed it was genuine (it authenticated), so no other will come: end
/// the handshake.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum NegotiationError {
    /// The two offers have no cipher in common: one side forces AES-256-GCM
    /// and the other ChaCha20-Poly1305, or one forces AES-256-GCM and the
    /// other predates negotiation.
    #[error(
        "the peers offer no packet cipher in common: set `cipher` to \"auto\" \
         (Config::cipher) on at least one side, or force the same cipher on both"
    )]
    NoCommonCipher,
    /// The cipher list at the start of the payload is cut short or empty.
    #[error(
        "handshake payload of {len} bytes has a malformed cipher offer: the peer runs a broken \
         implementation; end the handshake"
    )]
    MalformedOffer {
        /// The payload's length.
        len: usize,
    },
    /// The responder picked a cipher this side did not offer.
    #[error(
        "the responder picked cipher {id:#04x}, which this side did not offer: the peer runs a \
         broken or hostile implementation; end the handshake"
    )]
    NotOffered {
        /// The id the responder named.
        id: u8,
    },
    /// The responder picked an offered cipher, but not the one the rule gives
    /// for both offers: a broken peer, or an attempt to downgrade.
    #[error(
        "the responder picked {chosen} where both offers give {expected}: the peer runs a broken \
         or hostile implementation; end the handshake"
    )]
    WrongChoice {
        /// What the responder picked.
        chosen: Cipher,
        /// What [`negotiate`] gives.
        expected: Cipher,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    const AES: Cipher = Cipher::Aes256Gcm;
    const CHACHA: Cipher = Cipher::ChaCha20Poly1305;

    fn auto(hardware: bool) -> Vec<Cipher> {
        CipherPreference::Auto.offer(hardware)
    }

    #[test]
    fn two_sides_with_hardware_aes_use_aes_256_gcm() {
        assert_eq!(negotiate(&auto(true), &auto(true)), Ok(AES));
    }

    #[test]
    fn one_side_without_hardware_aes_makes_both_use_chacha20_poly1305() {
        assert_eq!(negotiate(&auto(true), &auto(false)), Ok(CHACHA));
        assert_eq!(negotiate(&auto(false), &auto(true)), Ok(CHACHA));
        assert_eq!(negotiate(&auto(false), &auto(false)), Ok(CHACHA));
    }

    #[test]
    fn a_forced_cipher_wins_over_auto_on_either_side_and_either_hardware() {
        for preference in [
            CipherPreference::Aes256Gcm,
            CipherPreference::ChaCha20Poly1305,
        ] {
            let want = preference.offer(false)[0];
            for hardware in [false, true] {
                let forced = preference.offer(hardware);
                assert_eq!(forced, [want], "forcing ignores the hardware");
                assert_eq!(negotiate(&forced, &auto(hardware)), Ok(want));
                assert_eq!(negotiate(&auto(hardware), &forced), Ok(want));
                assert_eq!(negotiate(&auto(!hardware), &forced), Ok(want));
                assert_eq!(negotiate(&forced, &forced), Ok(want));
            }
        }
    }

    #[test]
    fn two_different_forced_ciphers_have_nothing_in_common() {
        assert_eq!(
            negotiate(&[AES], &[CHACHA]),
            Err(NegotiationError::NoCommonCipher)
        );
        assert_eq!(
            negotiate(&[CHACHA], &[AES]),
            Err(NegotiationError::NoCommonCipher)
        );
        assert_eq!(
            negotiate(&[], &auto(true)),
            Err(NegotiationError::NoCommonCipher)
        );
        let message = NegotiationError::NoCommonCipher.to_string();
        assert!(message.contains("\"auto\""), "{message}");
    }

    #[test]
    fn the_rule_is_symmetric() {
        let offers = [auto(true), auto(false), vec![AES], vec![CHACHA], vec![]];
        for a in &offers {
            for b in &offers {
                assert_eq!(negotiate(a, b), negotiate(b, a), "{a:?} {b:?}");
            }
        }
    }

    #[test]
    fn ids_round_trip_and_stay_below_0x40() {
        for cipher in Cipher::ALL {
            assert!(cipher.id() < 0x40 && cipher.id() > 0);
            assert_eq!(Cipher::from_id(cipher.id()), Some(cipher));
        }
        assert_eq!(Cipher::from_id(0), None);
        assert_eq!(Cipher::from_id(0x03), None);
        assert_eq!(AES.to_string(), "aes-256-gcm");
        assert_eq!(CipherPreference::default(), CipherPreference::Auto);
        assert_eq!(
            CipherPreference::ChaCha20Poly1305.to_string(),
            "chacha20-poly1305"
        );
    }

    #[test]
    fn offers_encode_as_a_count_then_ids_and_decode_back() {
        let mut out = Vec::new();
        encode_offer(&auto(true), &mut out);
        assert_eq!(out, [0x02, 0x02, 0x01]);
        out.extend_from_slice(b"rest");
        assert_eq!(decode_offer(&out), Ok((auto(true), 3)));
        out.clear();
        encode_reply(CHACHA, &auto(false), &mut out);
        assert_eq!(out, [0x01, 0x02, 0x01, 0x02]);
        assert_eq!(
            decode_reply(&out),
            Ok(Reply::Chosen {
                id: 0x01,
                offer: auto(false),
                len: 4
            })
        );
    }

    #[test]
    fn unknown_ids_are_skipped_and_repeats_ignored() {
        assert_eq!(
            decode_offer(&[4, 0x07, 0x02, 0x02, 0x01]),
            Ok((vec![AES, CHACHA], 5))
        );
        // Nothing known: an empty offer, which `negotiate` refuses.
        assert_eq!(decode_offer(&[1, 0x3f]), Ok((vec![], 2)));
    }

    #[test]
    fn a_cut_or_empty_offer_is_malformed_not_a_panic() {
        for bad in [&[][..], &[0], &[2, 0x01], &[255]] {
            assert_eq!(
                decode_offer(bad),
                Err(NegotiationError::MalformedOffer { len: bad.len() }),
                "{bad:?}"
            );
        }
        assert_eq!(
            decode_reply(&[0x02, 0x03, 0x02]),
            Err(NegotiationError::MalformedOffer { len: 3 })
        );
        assert_eq!(
            decode_reply(&[0x02]),
            Err(NegotiationError::MalformedOffer { len: 1 })
        );
    }

    #[test]
    fn a_payload_without_a_reply_block_is_a_legacy_responder() {
        assert_eq!(decode_reply(&[]), Ok(Reply::Legacy));
        // Version 1's message 2: the parameters, from max_udp_payload 1200.
        assert_eq!(decode_reply(&[0x44, 0xb0, 0x81]), Ok(Reply::Legacy));
        assert_eq!(check_reply(&auto(true), &Reply::Legacy), Ok(CHACHA));
        assert_eq!(
            check_reply(&[AES], &Reply::Legacy),
            Err(NegotiationError::NoCommonCipher)
        );
    }

    #[test]
    fn a_reply_naming_a_cipher_that_was_not_offered_is_refused() {
        let reply = |id, offer: Vec<Cipher>| Reply::Chosen { id, offer, len: 0 };
        assert_eq!(
            check_reply(&[CHACHA], &reply(AES.id(), auto(true))),
            Err(NegotiationError::NotOffered { id: AES.id() })
        );
        assert_eq!(
            check_reply(&auto(true), &reply(0x3e, auto(true))),
            Err(NegotiationError::NotOffered { id: 0x3e })
        );
        let message = NegotiationError::NotOffered { id: 0x3e }.to_string();
        assert!(message.contains("0x3e"), "{message}");
    }

    #[test]
    fn a_reply_that_breaks_the_rule_is_refused_as_a_downgrade() {
        let reply = |id, offer: Vec<Cipher>| Reply::Chosen { id, offer, len: 0 };
        // Both have hardware AES: ChaCha20-Poly1305 is offered by both, but
        // the rule says AES-256-GCM.
        assert_eq!(
            check_reply(&auto(true), &reply(CHACHA.id(), auto(true))),
            Err(NegotiationError::WrongChoice {
                chosen: CHACHA,
                expected: AES
            })
        );
        // And the other way: AES-256-GCM when one side lacks hardware AES.
        assert_eq!(
            check_reply(&auto(false), &reply(AES.id(), auto(true))),
            Err(NegotiationError::WrongChoice {
                chosen: AES,
                expected: CHACHA
            })
        );
        assert_eq!(
            check_reply(&auto(true), &reply(AES.id(), auto(true))),
            Ok(AES)
        );
    }
}
