//! Authenticated encryption for sessions whose two endpoints share a key or
//! know each other's public keys.
//!
//! This module holds the building blocks; it does no I/O and reads no clock,
//! and given the same inputs (including the caller's random generator) it
//! produces the same bytes.
//!
//! # Design
//!
//! **Keys.** Both endpoints are configured with the same 32-byte
//! [`PreSharedKey`]. It is never used to encrypt packets directly: each session
//! runs a [`Handshake`] that agrees on a packet [`Cipher`] and derives two
//! fresh [`PacketKeys`] for it, one per direction.
//!
//! **Handshake.** The Noise protocol framework, as implemented by the `snow`
//! crate, with the pattern `Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s`:
//!
//! ```text
//! NNpsk0:
//!   -> psk, e        message 1, initiator → responder: 32-byte ephemeral key + encrypted payload + 16-byte tag
//!   <- e, ee         message 2, responder → initiator: 32-byte ephemeral key + encrypted payload + 16-byte tag
//! ```
//!
//! Both sides use only ephemeral X25519 keys (no long-term key pairs to
//! distribute: `NN`), and the pre-shared key is mixed in before anything else
//! (`psk0`), so every byte of both messages is authenticated by it: a party
//! without the key can neither produce a message 1 that the responder accepts
//! nor a message 2 that the initiator accepts. The `ee` Diffie-Hellman gives
//! forward secrecy: the packet keys depend on two ephemeral secrets that are
//! dropped once the handshake is done, so recorded traffic stays secret even if
//! the pre-shared key leaks later. `psk0` rather than `psk2` because it
//! authenticates message 1 as well, so the responder rejects a stranger's
//! message 1 before doing any Diffie-Hellman or keeping any state for it.
//! ChaCha20-Poly1305 and BLAKE2s are fast in software on every CPU; the
//! handshake is two messages per session, so its cipher does not need
//! hardware AES the way the packets' does.
//!
//! The *prologue*, the version byte followed by the 8-byte session id, is
//! hashed into the handshake by both sides: a handshake message cannot be moved
//! to another session or protocol version.
//!
//! Both messages are [`HANDSHAKE_OVERHEAD`] (48) bytes longer than their
//! encrypted payload: 32 for the ephemeral public key and 16 for the tag over
//! the payload. The encrypted payload is the cipher negotiation (below, at
//! most [`MAX_NEGOTIATION_LEN`] = 4 bytes) followed by the caller's payload.
//! With the largest Ferry header (18 bytes) and a 1200-byte MTU, a handshake
//! message carrying up to 1200 − 18 − 48 − 4 = 1130 bytes of payload fits in
//! one datagram as its whole body (1126 if a 4-byte checksum trailer is kept
//! after it).
//!
//! **Cipher negotiation.** The packet cipher is AES-256-GCM or
//! ChaCha20-Poly1305 ([`Cipher`]), agreed in the handshake, inside the
//! encrypted payloads. Cipher ids: `0x01` ChaCha20-Poly1305, `0x02`
//! AES-256-GCM.
//!
//! ```text
//! message 1 payload:  count (1 byte, ≥ 1) | count cipher ids, most preferred first | caller's payload
//! message 2 payload:  chosen id (1 byte) | count | count cipher ids (the responder's offer) | caller's payload
//! ```
//!
//! A side offers what its [`CipherPreference`] gives: by default
//! ([`CipherPreference::Auto`]) both, AES-256-GCM first when the CPU has
//! hardware AES ([`hardware_aes`]), ChaCha20-Poly1305 first otherwise
//! (`02 02 01` or `02 01 02`); forced, that cipher alone (`01 02` or
//! `01 01`). The responder picks with [`negotiate`]: AES-256-GCM when both
//! offers put it first, else ChaCha20-Poly1305 if both offer it, else
//! AES-256-GCM if both offer it; no cipher in common ends the handshake
//! ([`NegotiationError::NoCommonCipher`]). Its answer names the pick and
//! repeats its own offer, and the initiator runs the same rule on both offers
//! and refuses any other pick ([`NegotiationError::NotOffered`],
//! [`NegotiationError::WrongChoice`]). Unknown ids in an offer are skipped,
//! so a later version can offer more.
//!
//! *No downgrade.* Both offers travel encrypted and authenticated under the
//! pre-shared key (`psk0` covers message 1, and message 2's tag covers the
//! whole transcript, message 1 included), so an attacker without the key can
//! neither remove AES-256-GCM from an offer nor change the pick; and since the
//! initiator checks the pick against both offers, not even a broken responder
//! can make it use a cipher it did not offer, or one the rule does not give
//! for the two offers as stated.
//!
//! *Peers from before negotiation.* Their message 1 payload is empty and
//! their message 2 payload starts with the `max_udp_payload` varint (a first
//! byte of at least `0x42`; cipher ids are below `0x40`). A responder reading
//! an empty message 1 payload treats it as an offer of ChaCha20-Poly1305 alone
//! and writes no answer; an initiator reading a message 2 payload that is
//! empty or starts with a byte of `0x40` or more treats it as the pick
//! ChaCha20-Poly1305 from an offer of it alone. Both are what those peers use,
//! so they interoperate; forcing AES-256-GCM refuses them. Only a holder of
//! the key can write either message, so the fallback is no downgrade path.
//!
//! **Packets.** After the handshake every packet is sealed with the agreed
//! cipher, AES-256-GCM or ChaCha20-Poly1305 (RFC 8439), `ring`'s
//! implementations, each direction with its own 32-byte key (the same key
//! derivation for both):
//!
//! - the *nonce* is the packet number: 4 zero bytes followed by the 64-bit
//!   packet number in big-endian order ([`nonce`]). Packet numbers only grow
//!   within a direction and a retransmission takes a new number, so a nonce is
//!   never used twice with the same key. The rule for the caller: never seal
//!   two different packets with the same number in one direction.
//! - the *header* (version, kind, session id, packet number) stays in clear
//!   text, because the receiver needs it to find the session and the nonce; it
//!   is the *associated data*, so it is authenticated too.
//! - the *body* is encrypted in place and the 16-byte tag ([`TAG_LEN`]) takes
//!   the place of the 4-byte CRC trailer. The layout of a datagram does not
//!   change, and is the same for both ciphers.
//!
//! **Replay.** A sealed packet is valid forever under its session's keys:
//! [`PacketKeys::open`] opens a replayed packet again. Replays are rejected a
//! layer above, by the session's packet-number tracking (a number already
//! received is a duplicate and is dropped), exactly as duplicates from the
//! network are today. [`PacketKeys::open`] must therefore be called before the
//! number is recorded as received, so a forged packet cannot mark a number as
//! seen.
//!
//! **Key updates.** Long sessions move each direction to fresh keys derived
//! from the current ones, without a pause in the data; the previous receive
//! keys are kept a few retransmission timeouts for late packets, then wiped,
//! and a packet replayed from before then opens under no key (see
//! [`update`]).
//!
//! # What an attacker without the key can and cannot do
//!
//! An attacker who can read, drop, inject and modify datagrams, but does not
//! know the pre-shared key:
//!
//! - **cannot** read packet bodies or handshake payloads, forge or alter a
//!   packet or its header, complete a handshake with either side, or learn the
//!   packet keys;
//! - **cannot** choose or downgrade the packet cipher: both offers and the
//!   pick are inside the authenticated handshake (see *No downgrade* above);
//! - **cannot** reflect a packet back to its sender, or between directions:
//!   each direction has its own key, so a packet sealed by one side's `send`
//!   key opens only with the other side's `recv` key;
//! - **cannot** decrypt recorded sessions even after stealing the pre-shared key
//!   later (forward secrecy through `ee`), *except* for message 1's payload,
//!   which is encrypted under the pre-shared key and the initiator's public
//!   ephemeral key only: put nothing secret in it;
//! - **can** see everything in the clear header (session ids, packet kinds and
//!   numbers), sizes and timing, and drop, delay, reorder or duplicate
//!   datagrams;
//! - **can** replay a captured message 1: the responder cannot tell it from a
//!   fresh one and answers it with a message 2, which the attacker cannot read
//!   and from which it cannot derive the keys. A replayed message 1 costs the
//!   responder one handshake; it proves nothing about the initiator's liveness
//!   until the first packet from the initiator opens under the new keys;
//! - **can** replay sealed packets, which this layer accepts and the session
//!   drops as duplicates (see above).
//!
//! Anyone who holds the pre-shared key can act as either side: the key
//! authenticates membership of the group that shares it, not an individual
//! peer. If it leaks, future sessions can be impersonated or intercepted (but
//! not past ones, see above); replace it on both sides.
//!
//! # Identities
//!
//! A pre-shared key names a group; an [`Identity`] names one endpoint. With
//! `Config::identity` set on both sides, the handshake is
//! [`NOISE_PATTERN_IDENTITY`] (`Noise_IK_25519_ChaChaPoly_BLAKE2s`), or
//! [`NOISE_PATTERN_IDENTITY_PSK`] (`Noise_IKpsk2_…`) with a pre-shared key as
//! well: still two messages, one round trip.
//!
//! ```text
//! IK:
//!   <- s                  the listener's static key, pinned by the starter beforehand
//!   -> e, es, s, ss       message 1: the starter's static key travels encrypted
//!   <- e, ee, se          message 2
//! ```
//!
//! Message 1 is [`STATIC_KEY_OVERHEAD`] (48) bytes longer than in the
//! pre-shared-key handshake, and its payload carries an 8-byte date after the
//! cipher offer (for the listener's replay check; `docs/protocol.md` §6.13).
//! [`Handshake::remote_identity`] gives the peer's authenticated static key:
//! the responder checks it against its [`AuthorizedKeys`] before answering,
//! so a stranger or a revoked key costs it two Diffie-Hellman operations and
//! no state. The starter's identity is hidden from everyone but the listener
//! (not forward-secretly: the listener's private key, stolen later, reveals
//! it); the packet keys are forward secret (`ee`, `se`).
//!
//! # Randomness
//!
//! The ephemeral keys need 32 bytes of randomness each. To stay
//! deterministic, [`Handshake::initiator`] and [`Handshake::responder`] draw a
//! 32-byte seed from the caller's generator and give `snow` a `ChaCha20Rng`
//! seeded with it (through a custom `snow` crypto resolver); `snow`'s own
//! X25519, ChaCha20-Poly1305 and BLAKE2s do the rest. Security rests on that
//! generator being unpredictable: seed it with at least 256 bits from the
//! operating system (a generator seeded from a `u64`, like the simulator's, is
//! fine for tests but offers only 64 bits of security).

mod cipher;
#[cfg(test)]
mod cipher_tests;
mod identity;
#[cfg(test)]
mod identity_tests;
mod keys;
mod noise;
mod psk;
#[cfg(test)]
mod tests;
pub mod ticket;
pub mod update;

use thiserror::Error;

pub use cipher::{
    Cipher, CipherPreference, NegotiationError, encode_offer, encode_reply, hardware_aes, negotiate,
};
pub use identity::{AuthorizedKeys, Identity, KeyError, PublicKey};
pub use keys::{PacketKeys, nonce};
pub use noise::Handshake;
pub use psk::PreSharedKey;
pub use ticket::TicketMode;
pub use update::RecvGeneration;

/// Bytes the authentication tag adds to each packet (the trailer of a sealed
/// packet).
pub const TAG_LEN: usize = 16;

/// Bytes Noise adds to a handshake message's encrypted payload: a 32-byte
/// ephemeral public key and a 16-byte tag. Both messages have this overhead;
/// the cipher negotiation adds up to [`MAX_NEGOTIATION_LEN`] more.
pub const HANDSHAKE_OVERHEAD: usize = 32 + TAG_LEN;

/// Most bytes the cipher negotiation puts in front of a handshake message's
/// payload: message 2's pick, count and two cipher ids (message 1 takes one
/// byte fewer).
pub const MAX_NEGOTIATION_LEN: usize = 2 + Cipher::ALL.len();

/// Noise's limit on a handshake message.
const NOISE_MAX_MESSAGE: usize = 65_535;

/// Largest payload one handshake message can carry: Noise limits a message
/// to 65535 bytes, less [`HANDSHAKE_OVERHEAD`] and [`MAX_NEGOTIATION_LEN`].
pub const MAX_HANDSHAKE_PAYLOAD: usize =
    NOISE_MAX_MESSAGE - HANDSHAKE_OVERHEAD - MAX_NEGOTIATION_LEN;

/// The Noise protocol name of Ferry's pre-shared-key handshake.
pub const NOISE_PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";

/// The Noise protocol name of Ferry's identity handshake (static keys on
/// both sides, the starter knowing the listener's).
pub const NOISE_PATTERN_IDENTITY: &str = "Noise_IK_25519_ChaChaPoly_BLAKE2s";

/// The identity handshake with a pre-shared key mixed in as well.
pub const NOISE_PATTERN_IDENTITY_PSK: &str = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";

/// Bytes the identity handshake's message 1 adds on top of
/// [`HANDSHAKE_OVERHEAD`]: the starter's static public key, encrypted (32
/// bytes and a 16-byte tag).
pub const STATIC_KEY_OVERHEAD: usize = 32 + TAG_LEN;

/// A pre-shared key could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PskError {
    /// The text does not hold exactly 64 hexadecimal digits.
    #[error(
        "pre-shared key has {found} characters, expected 64 hexadecimal digits (32 bytes): \
         create one with `ferry keygen --psk FILE` (or `PreSharedKey::generate`, stored in its hex form)"
    )]
    WrongLength {
        /// Characters found (after trimming surrounding whitespace).
        found: usize,
    },
    /// A character is not a hexadecimal digit. The character itself is not
    /// reported, since it is part of a secret.
    #[error(
        "pre-shared key has a non-hexadecimal character at position {position}: \
         use only 0-9, a-f and A-F"
    )]
    NotHex {
        /// Zero-based position of the offending character.
        position: usize,
    },
}

/// A handshake step failed.
///
/// Whatever the variant, a failed [`Handshake::read_message`] leaves the
/// handshake as it was before the call: drop the offending message and keep
/// waiting for a genuine one.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CryptoError {
    /// The message did not authenticate: the peer uses another pre-shared key
    /// or prologue (session id, version), or the message was altered in
    /// transit. Drop it; if it persists, check that both sides are configured
    /// with the same key.
    #[error(
        "handshake message failed authentication: check that both sides use the same \
         pre-shared key; otherwise the message was forged or corrupted, drop it"
    )]
    AuthenticationFailed,
    /// The message is too short or too long to be a handshake message.
    #[error(
        "handshake message of {len} bytes is malformed (expected {min} to 65535 bytes): drop it"
    )]
    MalformedMessage {
        /// The message's length.
        len: usize,
        /// The shortest valid message ([`HANDSHAKE_OVERHEAD`]).
        min: usize,
    },
    /// The payload does not fit in one handshake message.
    #[error("handshake payload of {size} bytes exceeds the {max}-byte limit: send less")]
    PayloadTooLarge {
        /// The payload's size.
        size: usize,
        /// [`MAX_HANDSHAKE_PAYLOAD`].
        max: usize,
    },
    /// `write_message` or `read_message` was called out of turn, or after the
    /// handshake finished.
    #[error(
        "handshake step out of order: the initiator writes message 1 then reads message 2, \
         the responder reads message 1 then writes message 2"
    )]
    OutOfOrder,
    /// The message was genuine (it authenticated) but the two sides cannot
    /// agree on a packet cipher, or the peer's offer or pick breaks the rules.
    /// Unlike the other errors of [`Handshake::read_message`], this one ends
    /// the handshake: no genuine message will follow. The inner error says
    /// what to change.
    #[error("no packet cipher agreed: {0}")]
    Negotiation(#[from] NegotiationError),
    /// [`Handshake::into_keys`] was called before both messages were exchanged.
    #[error("handshake not finished: exchange both messages before asking for the keys")]
    NotFinished,
    /// The Noise library reported an error Ferry does not expect. This is a bug
    /// in Ferry: please report it with the message.
    #[error("unexpected error from the Noise library ({0}): this is a bug in Ferry, report it")]
    Internal(String),
}
