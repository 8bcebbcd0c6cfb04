//! Authenticated encryption for sessions whose two endpoints share a key.
//!
//! This module holds the building blocks; it does no I/O and reads no clock,
//! and given the same inputs (including the caller's random generator) it
//! produces the same bytes.
//!
//! # Design
//!
//! **Keys.** Both endpoints are configured with the same 32-byte
//! [`PreSharedKey`]. It is never used to encrypt packets directly: each session
//! runs a [`Handshake`] that derives two fresh [`PacketKeys`], one per
//! direction.
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
//! ChaCha20-Poly1305 and BLAKE2s are fast in software on every CPU, and match
//! the packet cipher.
//!
//! The *prologue*, the version byte followed by the 8-byte session id, is
//! hashed into the handshake by both sides: a handshake message cannot be moved
//! to another session or protocol version.
//!
//! Both messages are [`HANDSHAKE_OVERHEAD`] (48) bytes longer than their
//! payload: 32 for the ephemeral public key and 16 for the tag over the
//! payload. With the largest Ferry header (18 bytes) and a 1200-byte MTU, a
//! handshake message carrying up to 1200 − 18 − 48 = 1134 bytes of payload fits
//! in one datagram as its whole body (1130 if a 4-byte checksum trailer is kept
//! after it).
//!
//! **Packets.** After the handshake every packet is sealed with
//! ChaCha20-Poly1305 (RFC 8439, `ring`'s implementation), each direction with its
//! own key:
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
//!   change.
//!
//! **Replay.** A sealed packet is valid forever under its session's keys:
//! [`PacketKeys::open`] opens a replayed packet again. Replays are rejected a
//! layer above, by the session's packet-number tracking (a number already
//! received is a duplicate and is dropped), exactly as duplicates from the
//! network are today. [`PacketKeys::open`] must therefore be called before the
//! number is recorded as received, so a forged packet cannot mark a number as
//! seen.
//!
//! # What an attacker without the key can and cannot do
//!
//! An attacker who can read, drop, inject and modify datagrams, but does not
//! know the pre-shared key:
//!
//! - **cannot** read packet bodies or handshake payloads, forge or alter a
//!   packet or its header, complete a handshake with either side, or learn the
//!   packet keys;
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

use std::fmt;

use bytes::BytesMut;
use std::mem::ManuallyDrop;

use rand::{CryptoRng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, Tag, UnboundKey};
use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

use crate::error::DecodeError;

/// Bytes the authentication tag adds to each packet (the trailer of a sealed
/// packet).
pub const TAG_LEN: usize = 16;

/// Bytes a handshake message adds to its payload: a 32-byte ephemeral public
/// key and a 16-byte tag. Both messages have this overhead.
pub const HANDSHAKE_OVERHEAD: usize = 32 + TAG_LEN;

/// Largest payload one handshake message can carry (Noise limits a message to
/// 65535 bytes).
pub const MAX_HANDSHAKE_PAYLOAD: usize = 65_535 - HANDSHAKE_OVERHEAD;

/// The Noise protocol name of Ferry's handshake.
pub const NOISE_PATTERN: &str = "Noise_NNpsk0_25519_ChaChaPoly_BLAKE2s";

/// A pre-shared key could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PskError {
    /// The text does not hold exactly 64 hexadecimal digits.
    #[error(
        "pre-shared key has {found} characters, expected 64 hexadecimal digits (32 bytes): \
         generate a key with `PreSharedKey::generate` and store its hex form"
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
    /// [`Handshake::into_keys`] was called before both messages were exchanged.
    #[error("handshake not finished: exchange both messages before asking for the keys")]
    NotFinished,
    /// The Noise library reported an error Ferry does not expect. This is a bug
    /// in Ferry: please report it with the message.
    #[error("unexpected error from the Noise library ({0}): this is a bug in Ferry, report it")]
    Internal(String),
}

/// The 32-byte key both endpoints must share to authenticate each other.
///
/// Its [`Debug`] form does not show the key, and its bytes are wiped from memory
/// when it is dropped.
#[derive(Clone)]
pub struct PreSharedKey([u8; 32]);

/// Compares in constant time (configurations are compared, keys must not
/// leak through timing even there).
impl PartialEq for PreSharedKey {
    fn eq(&self, other: &Self) -> bool {
        self.0
            .iter()
            .zip(other.0.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

impl Eq for PreSharedKey {}

impl PreSharedKey {
    /// Length of the key in bytes.
    pub const LEN: usize = 32;

    /// Wraps 32 key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Parses exactly 64 hexadecimal digits (either case), nothing around them.
    pub fn from_hex(hex: &str) -> Result<Self, PskError> {
        let digits = hex.as_bytes();
        if digits.len() != 2 * Self::LEN {
            return Err(PskError::WrongLength {
                found: hex.chars().count(),
            });
        }
        let mut key = [0u8; 32];
        for (i, pair) in digits.chunks_exact(2).enumerate() {
            let hi = hex_value(pair[0]).ok_or(PskError::NotHex { position: 2 * i });
            let lo = hex_value(pair[1]).ok_or(PskError::NotHex {
                position: 2 * i + 1,
            });
            match (hi, lo) {
                (Ok(hi), Ok(lo)) => key[i] = (hi << 4) | lo,
                (Err(e), _) | (_, Err(e)) => {
                    key.zeroize();
                    return Err(e);
                }
            }
        }
        Ok(Self(key))
    }

    /// Parses a key as stored in a file or an environment variable: 64
    /// hexadecimal digits, with optional whitespace (such as a final newline)
    /// around them.
    pub fn parse(text: &str) -> Result<Self, PskError> {
        Self::from_hex(text.trim())
    }

    /// Draws a new random key from `rng`, which must be a cryptographically
    /// secure generator seeded from the operating system.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        Self(key)
    }

    /// The key as 64 lowercase hexadecimal digits, the form [`parse`](Self::parse)
    /// reads. This reveals the key: write it only where the key belongs. The
    /// string is wiped when dropped.
    pub fn to_hex(&self) -> Zeroizing<String> {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut hex = Zeroizing::new(String::with_capacity(2 * Self::LEN));
        for byte in self.0 {
            hex.push(char::from(DIGITS[usize::from(byte >> 4)]));
            hex.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
        }
        hex
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

impl std::str::FromStr for PreSharedKey {
    type Err = PskError;

    /// Same as [`PreSharedKey::parse`].
    fn from_str(text: &str) -> Result<Self, PskError> {
        Self::parse(text)
    }
}

impl fmt::Debug for PreSharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PreSharedKey(<redacted>)")
    }
}

impl Drop for PreSharedKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

/// `snow`'s random source: a `ChaCha20Rng` seeded by the caller.
struct SeededRandom(ChaCha20Rng);

impl Random for SeededRandom {
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), snow::Error> {
        rand::RngCore::fill_bytes(&mut self.0, dest);
        Ok(())
    }
}

/// A `snow` resolver that supplies only the random source; the primitives come
/// from `snow`'s default resolver (through a [`FallbackResolver`]).
struct SeededResolver {
    seed: [u8; 32],
}

impl CryptoResolver for SeededResolver {
    fn resolve_rng(&self) -> Option<Box<dyn Random>> {
        Some(Box::new(SeededRandom(ChaCha20Rng::from_seed(self.seed))))
    }

    fn resolve_dh(&self, _: &DHChoice) -> Option<Box<dyn Dh>> {
        None
    }

    fn resolve_hash(&self, _: &HashChoice) -> Option<Box<dyn Hash>> {
        None
    }

    fn resolve_cipher(&self, _: &CipherChoice) -> Option<Box<dyn Cipher>> {
        None
    }
}

impl Drop for SeededResolver {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

/// One side of the handshake that authenticates both endpoints with the
/// pre-shared key and derives a session's [`PacketKeys`].
///
/// The flow (see the [module documentation](self) for the why):
///
/// 1. initiator: [`write_message`](Self::write_message) → message 1 (`psk, e`),
///    `payload + 48` bytes;
/// 2. responder: [`read_message`](Self::read_message) of message 1. A wrong
///    pre-shared key is detected **here, by the responder**
///    ([`CryptoError::AuthenticationFailed`]); the initiator learns nothing
///    (it times out, or is told by a cleartext refusal);
/// 3. responder: [`write_message`](Self::write_message) → message 2 (`e, ee`),
///    `payload + 48` bytes; the responder is now finished;
/// 4. initiator: [`read_message`](Self::read_message) of message 2; finished.
///
/// Then each side calls [`into_keys`](Self::into_keys). A failed
/// `read_message` changes nothing, so a forged or corrupted message does not
/// spoil the handshake: the genuine one can still be read afterwards.
/// Retransmission is the caller's business: a handshake writes each message
/// once, so keep the bytes and resend them.
pub struct Handshake {
    state: snow::HandshakeState,
}

impl Handshake {
    /// Starts the side that sends message 1.
    ///
    /// `prologue` must be the same on both sides (Ferry: the version byte
    /// followed by the 8-byte session id). `rng` provides the 32-byte seed of
    /// this side's ephemeral key: the same generator state gives the same
    /// handshake bytes.
    pub fn initiator(psk: &PreSharedKey, prologue: &[u8], rng: &mut impl CryptoRng) -> Self {
        Self::build(true, psk, prologue, rng)
    }

    /// Starts the side that receives message 1. Arguments as for
    /// [`initiator`](Self::initiator).
    pub fn responder(psk: &PreSharedKey, prologue: &[u8], rng: &mut impl CryptoRng) -> Self {
        Self::build(false, psk, prologue, rng)
    }

    fn build(
        initiator: bool,
        psk: &PreSharedKey,
        prologue: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let resolver =
            FallbackResolver::new(Box::new(SeededResolver { seed }), Box::new(DefaultResolver));
        seed.zeroize();
        let params: NoiseParams = NOISE_PATTERN
            .parse()
            .expect("NOISE_PATTERN is a valid Noise protocol name");
        // Every step below fails only on a bad pattern, PSK position or
        // missing primitive: fixed at compile time and covered by the tests.
        let builder = snow::Builder::with_resolver(params, Box::new(resolver))
            .psk(0, &psk.0)
            .and_then(|b| b.prologue(prologue))
            .expect("psk0 and a prologue are valid for NNpsk0");
        let state = if initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        }
        .expect("snow's default resolver provides 25519, ChaChaPoly and BLAKE2s");
        Self { state }
    }

    /// Writes this side's next handshake message, with `payload` encrypted in
    /// it, appending it to `out` (`payload.len() + 48` bytes).
    ///
    /// The initiator writes message 1, the responder message 2. Message 1's
    /// payload is authenticated and encrypted under the pre-shared key but has
    /// no forward secrecy and can be replayed: put nothing secret in it.
    /// Message 2's payload is forward secret.
    pub fn write_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        if payload.len() > MAX_HANDSHAKE_PAYLOAD {
            return Err(CryptoError::PayloadTooLarge {
                size: payload.len(),
                max: MAX_HANDSHAKE_PAYLOAD,
            });
        }
        let start = out.len();
        out.resize(start + payload.len() + HANDSHAKE_OVERHEAD, 0);
        match self.state.write_message(payload, &mut out[start..]) {
            Ok(written) => {
                out.truncate(start + written);
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(match e {
                    snow::Error::State(_) => CryptoError::OutOfOrder,
                    other => CryptoError::Internal(other.to_string()),
                })
            }
        }
    }

    /// Reads the peer's handshake message, appending its decrypted payload to
    /// `payload`.
    ///
    /// On any error nothing is appended and the handshake is unchanged.
    pub fn read_message(
        &mut self,
        message: &[u8],
        payload: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        if !(HANDSHAKE_OVERHEAD..=MAX_HANDSHAKE_PAYLOAD + HANDSHAKE_OVERHEAD)
            .contains(&message.len())
        {
            return Err(CryptoError::MalformedMessage {
                len: message.len(),
                min: HANDSHAKE_OVERHEAD,
            });
        }
        let start = payload.len();
        payload.resize(start + message.len(), 0);
        match self.state.read_message(message, &mut payload[start..]) {
            Ok(read) => {
                payload.truncate(start + read);
                Ok(())
            }
            Err(e) => {
                payload.truncate(start);
                Err(match e {
                    snow::Error::State(_) => CryptoError::OutOfOrder,
                    snow::Error::Input => CryptoError::MalformedMessage {
                        len: message.len(),
                        min: HANDSHAKE_OVERHEAD,
                    },
                    // `Decrypt`, `Dh` and anything else: the message is not
                    // one the peer with our key and prologue wrote.
                    _ => CryptoError::AuthenticationFailed,
                })
            }
        }
    }

    /// Whether this side has exchanged both messages (the responder is finished
    /// once it has written message 2, the initiator once it has read it).
    pub fn is_finished(&self) -> bool {
        self.state.is_handshake_finished()
    }

    /// Whether this is the initiator's side.
    pub fn is_initiator(&self) -> bool {
        self.state.is_initiator()
    }

    /// Whether this side's next step is [`write_message`](Self::write_message)
    /// (rather than [`read_message`](Self::read_message)).
    pub fn is_my_turn(&self) -> bool {
        !self.is_finished() && self.state.is_my_turn()
    }

    /// The session's packet keys, once the handshake is finished.
    ///
    /// Noise's split yields two keys: the initiator sends with the first and
    /// receives with the second, the responder the other way round.
    pub fn into_keys(mut self) -> Result<PacketKeys, CryptoError> {
        if !self.is_finished() {
            return Err(CryptoError::NotFinished);
        }
        let (mut first, mut second) = self.state.dangerously_get_raw_split();
        let keys = if self.is_initiator() {
            PacketKeys::new(&first, &second)
        } else {
            PacketKeys::new(&second, &first)
        };
        first.zeroize();
        second.zeroize();
        Ok(keys)
    }
}

impl fmt::Debug for Handshake {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handshake")
            .field("initiator", &self.is_initiator())
            .field("finished", &self.is_finished())
            .finish_non_exhaustive()
    }
}

/// The nonce of packet `number`: 4 zero bytes, then `number` as 8 big-endian
/// bytes. Distinct numbers give distinct nonces.
pub fn nonce(number: u64) -> [u8; 12] {
    let mut nonce = [0u8; 12];
    nonce[4..].copy_from_slice(&number.to_be_bytes());
    nonce
}

/// A session's two ChaCha20-Poly1305 keys, from [`Handshake::into_keys`]: one
/// to seal the packets this side sends, one to open those it receives.
///
/// A packet sealed with one side's keys opens only with the other side's:
/// never with the sender's own, nor with another session's. The keys are
/// wiped from memory when dropped, and [`Debug`] does not show them.
///
/// The cipher is `ring`'s ChaCha20-Poly1305 (RFC 8439, the same construction
/// as Noise's `ChaChaPoly`): several times faster per packet than a portable
/// implementation, which matters since every byte of an encrypted session goes
/// through it once on each side.
#[derive(Clone)]
pub struct PacketKeys(Box<Keys>);

/// The two keys, boxed: a `ring` key holds its whole key schedule inline.
struct Keys {
    send: ManuallyDrop<LessSafeKey>,
    recv: ManuallyDrop<LessSafeKey>,
}

impl Clone for Keys {
    fn clone(&self) -> Self {
        Self {
            send: ManuallyDrop::new(LessSafeKey::clone(&self.send)),
            recv: ManuallyDrop::new(LessSafeKey::clone(&self.recv)),
        }
    }
}

impl Drop for Keys {
    fn drop(&mut self) {
        for key in [&mut self.send, &mut self.recv] {
            let bytes = std::ptr::from_mut::<ManuallyDrop<LessSafeKey>>(key).cast::<u8>();
            for i in 0..size_of::<LessSafeKey>() {
                // SAFETY: `bytes + i` lies within `key`, which is borrowed
                // mutably here and never read again: `ManuallyDrop` keeps it
                // from being dropped (a `LessSafeKey` owns no heap memory and
                // has no `Drop` of its own; its key schedule is stored inline),
                // so the zeroed bytes are never used as a `LessSafeKey`. The
                // volatile write keeps the compiler from eliding the wipe.
                unsafe { bytes.add(i).write_volatile(0) };
            }
        }
        std::sync::atomic::compiler_fence(std::sync::atomic::Ordering::SeqCst);
    }
}

impl PacketKeys {
    fn new(send: &[u8; 32], recv: &[u8; 32]) -> Self {
        let key = |bytes: &[u8; 32]| {
            ManuallyDrop::new(LessSafeKey::new(
                UnboundKey::new(&CHACHA20_POLY1305, bytes).expect("a 32-byte key"),
            ))
        };
        Self(Box::new(Keys {
            send: key(send),
            recv: key(recv),
        }))
    }

    /// Seals `packet` (header followed by body) in place: encrypts the body
    /// `packet[header_len..]`, authenticates it together with the header
    /// `packet[..header_len]`, and appends the [`TAG_LEN`]-byte tag. The nonce
    /// is [`nonce`]`(number)`. Allocates nothing beyond the tag's room in
    /// `packet`.
    ///
    /// Never seal two different packets with the same `number`: reusing a
    /// nonce breaks both secrecy and authenticity.
    ///
    /// # Panics
    ///
    /// If `header_len > packet.len()` (a caller bug).
    pub fn seal(&self, number: u64, header_len: usize, packet: &mut Vec<u8>) {
        let (header, body) = packet.split_at_mut(header_len);
        let tag = self
            .0
            .send
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce(number)),
                Aad::from(&*header),
                body,
            )
            .expect("a packet is far below ChaCha20-Poly1305's 256 GiB limit");
        packet.extend_from_slice(tag.as_ref());
    }

    /// Opens a packet received with number `number` in place: checks the tag
    /// over header and body, decrypts the body and removes the tag.
    ///
    /// Errors: [`DecodeError::Truncated`] if the packet cannot hold
    /// `header_len` bytes and a tag, leaving `packet` unchanged;
    /// [`DecodeError::Integrity`] if the tag does not match (a forged or
    /// altered packet, the wrong number, or another session's packet), with
    /// the body overwritten by zeros so that no unauthenticated plaintext
    /// escapes (header and length stay as they were). A replayed packet opens
    /// again: the session rejects it by its packet number.
    pub fn open(
        &self,
        number: u64,
        header_len: usize,
        packet: &mut BytesMut,
    ) -> Result<(), DecodeError> {
        let Some(body_end) = packet.len().checked_sub(TAG_LEN) else {
            return Err(DecodeError::Truncated);
        };
        if body_end < header_len {
            return Err(DecodeError::Truncated);
        }
        let (content, tag) = packet.split_at_mut(body_end);
        let tag = Tag::try_from(&*tag).map_err(|_| DecodeError::Truncated)?;
        let (header, body) = content.split_at_mut(header_len);
        self.0
            .recv
            .open_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce(number)),
                Aad::from(&*header),
                tag,
                body,
                0..,
            )
            .map_err(|_| DecodeError::Integrity)?;
        packet.truncate(body_end);
        Ok(())
    }
}

impl fmt::Debug for PacketKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PacketKeys(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::RngCore;

    const PROLOGUE: &[u8] = &[1, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

    fn psk(byte: u8) -> PreSharedKey {
        PreSharedKey::from_bytes([byte; 32])
    }

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    /// The two messages of a handshake, and both sides' keys.
    struct Run {
        message1: Vec<u8>,
        message2: Vec<u8>,
        initiator: PacketKeys,
        responder: PacketKeys,
    }

    fn handshake(seed_i: u64, seed_r: u64, payload1: &[u8], payload2: &[u8]) -> Run {
        let key = psk(7);
        let mut i = Handshake::initiator(&key, PROLOGUE, &mut rng(seed_i));
        let mut r = Handshake::responder(&key, PROLOGUE, &mut rng(seed_r));
        assert!(i.is_initiator() && !r.is_initiator());
        assert!(i.is_my_turn() && !r.is_my_turn());

        let mut message1 = Vec::new();
        i.write_message(payload1, &mut message1).unwrap();
        assert_eq!(message1.len(), payload1.len() + HANDSHAKE_OVERHEAD);
        let mut got = Vec::new();
        r.read_message(&message1, &mut got).unwrap();
        assert_eq!(got, payload1);
        assert!(!r.is_finished() && r.is_my_turn());

        let mut message2 = Vec::new();
        r.write_message(payload2, &mut message2).unwrap();
        assert_eq!(message2.len(), payload2.len() + HANDSHAKE_OVERHEAD);
        assert!(r.is_finished() && !r.is_my_turn());
        got.clear();
        i.read_message(&message2, &mut got).unwrap();
        assert_eq!(got, payload2);
        assert!(i.is_finished());

        Run {
            message1,
            message2,
            initiator: i.into_keys().unwrap(),
            responder: r.into_keys().unwrap(),
        }
    }

    fn sealed(keys: &PacketKeys, number: u64, header: &[u8], body: &[u8]) -> Vec<u8> {
        let mut packet = [header, body].concat();
        keys.seal(number, header.len(), &mut packet);
        packet
    }

    fn opened(
        keys: &PacketKeys,
        number: u64,
        header_len: usize,
        packet: &[u8],
    ) -> Result<BytesMut, DecodeError> {
        let mut buf = BytesMut::from(packet);
        keys.open(number, header_len, &mut buf).map(|()| buf)
    }

    const HEADER: &[u8] = &[1, 3, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 5];

    #[test]
    fn handshake_then_packets_both_ways() {
        let run = handshake(1, 2, b"connect parameters", b"connect-ack parameters");
        for number in [0, 1, 5, 63, 64, u64::MAX] {
            let body = format!("from the initiator, packet {number}");
            let packet = sealed(&run.initiator, number, HEADER, body.as_bytes());
            assert_eq!(packet.len(), HEADER.len() + body.len() + TAG_LEN);
            assert_eq!(&packet[..HEADER.len()], HEADER, "the header stays clear");
            assert_ne!(&packet[HEADER.len()..][..body.len()], body.as_bytes());
            let got = opened(&run.responder, number, HEADER.len(), &packet).unwrap();
            assert_eq!(&got[..], [HEADER, body.as_bytes()].concat());

            let packet = sealed(&run.responder, number, HEADER, b"and back");
            let got = opened(&run.initiator, number, HEADER.len(), &packet).unwrap();
            assert_eq!(&got[..], [HEADER, b"and back"].concat());
        }
        // An empty body still carries a tag.
        let packet = sealed(&run.initiator, 9, HEADER, b"");
        assert_eq!(packet.len(), HEADER.len() + TAG_LEN);
        let got = opened(&run.responder, 9, HEADER.len(), &packet).unwrap();
        assert_eq!(&got[..], HEADER);
    }

    #[test]
    fn keys_follow_the_noise_split_convention() {
        // Noise's own transport messages (nonce 0, empty associated data) are
        // what our packets are with packet number 0 and an empty header: the
        // initiator sends with the split's first key, the responder with the
        // second.
        let key = psk(4);
        let finish = |seed_i, seed_r| {
            let mut i = Handshake::initiator(&key, PROLOGUE, &mut rng(seed_i));
            let mut r = Handshake::responder(&key, PROLOGUE, &mut rng(seed_r));
            let (mut m1, mut m2) = (Vec::new(), Vec::new());
            i.write_message(b"", &mut m1).unwrap();
            r.read_message(&m1, &mut Vec::new()).unwrap();
            r.write_message(b"", &mut m2).unwrap();
            i.read_message(&m2, &mut Vec::new()).unwrap();
            (i, r)
        };
        let (ours_i, ours_r) = finish(1, 2);
        let (noise_i, noise_r) = finish(1, 2);
        let (ours_i, ours_r) = (ours_i.into_keys().unwrap(), ours_r.into_keys().unwrap());
        let mut noise_i = noise_i.state.into_transport_mode().unwrap();
        let mut noise_r = noise_r.state.into_transport_mode().unwrap();
        let mut buf = [0u8; 64];

        let n = noise_i
            .write_message(b"to the responder", &mut buf)
            .unwrap();
        assert_eq!(buf[..n], sealed(&ours_i, 0, b"", b"to the responder"));
        let n = noise_r
            .write_message(b"to the initiator", &mut buf)
            .unwrap();
        assert_eq!(buf[..n], sealed(&ours_r, 0, b"", b"to the initiator"));
    }

    #[test]
    fn packets_match_the_portable_chacha20_poly1305() {
        // The wire format does not depend on the implementation: a packet
        // sealed here is what RustCrypto's ChaCha20-Poly1305 produces with the
        // same key, nonce and associated data, and opens with it.
        use chacha20poly1305::aead::{AeadInPlace, KeyInit};
        let (send, recv) = ([3u8; 32], [9u8; 32]);
        let ours = PacketKeys::new(&send, &recv);
        let portable = chacha20poly1305::ChaCha20Poly1305::new((&send).into());
        for (number, body) in [
            (0u64, &b""[..]),
            (1, b"x"),
            (0x0102_0304_0506, &[0xa5; 1500]),
        ] {
            let packet = sealed(&ours, number, HEADER, body);
            let mut expected = body.to_vec();
            let tag = portable
                .encrypt_in_place_detached((&nonce(number)).into(), HEADER, &mut expected)
                .unwrap();
            expected.extend_from_slice(&tag);
            assert_eq!(packet[..HEADER.len()], *HEADER);
            assert_eq!(packet[HEADER.len()..], expected[..]);
        }
        let mut body = b"from the peer".to_vec();
        let tag = chacha20poly1305::ChaCha20Poly1305::new((&recv).into())
            .encrypt_in_place_detached((&nonce(5)).into(), HEADER, &mut body)
            .unwrap();
        let mut packet = BytesMut::from(HEADER);
        packet.extend_from_slice(&body);
        packet.extend_from_slice(&tag);
        ours.open(5, HEADER.len(), &mut packet).unwrap();
        assert_eq!(&packet[HEADER.len()..], b"from the peer");
    }

    #[test]
    fn directions_do_not_mix() {
        let run = handshake(1, 2, b"", b"");
        let from_i = sealed(&run.initiator, 3, HEADER, b"body");
        let from_r = sealed(&run.responder, 3, HEADER, b"body");
        assert_ne!(from_i, from_r, "each direction has its own key");
        // Reflected back to its sender: rejected.
        assert_eq!(
            opened(&run.initiator, 3, HEADER.len(), &from_i),
            Err(DecodeError::Integrity)
        );
        assert_eq!(
            opened(&run.responder, 3, HEADER.len(), &from_r),
            Err(DecodeError::Integrity)
        );
    }

    #[test]
    fn every_session_has_fresh_keys() {
        // Same pre-shared key, different ephemeral keys: the packets of one
        // session do not open in another.
        let one = handshake(1, 2, b"", b"");
        let two = handshake(3, 4, b"", b"");
        let packet = sealed(&one.initiator, 0, HEADER, b"body");
        assert_eq!(
            opened(&two.responder, 0, HEADER.len(), &packet),
            Err(DecodeError::Integrity)
        );
        assert_ne!(one.message1[..32], two.message1[..32]);
    }

    #[test]
    fn wrong_psk_is_detected_by_the_responder_on_message_1() {
        let mut i = Handshake::initiator(&psk(1), PROLOGUE, &mut rng(1));
        let mut r = Handshake::responder(&psk(2), PROLOGUE, &mut rng(2));
        let mut message1 = Vec::new();
        i.write_message(b"hello", &mut message1).unwrap();
        let mut payload = Vec::new();
        assert_eq!(
            r.read_message(&message1, &mut payload),
            Err(CryptoError::AuthenticationFailed)
        );
        assert!(payload.is_empty());
        // The responder is still waiting for a genuine message 1.
        assert!(!r.is_my_turn());
        assert_eq!(r.into_keys().unwrap_err(), CryptoError::NotFinished);
    }

    #[test]
    fn another_prologue_is_rejected() {
        let key = psk(1);
        let mut i = Handshake::initiator(&key, PROLOGUE, &mut rng(1));
        let mut other = PROLOGUE.to_vec();
        other[8] ^= 1; // another session id
        let mut r = Handshake::responder(&key, &other, &mut rng(2));
        let mut message1 = Vec::new();
        i.write_message(b"", &mut message1).unwrap();
        assert_eq!(
            r.read_message(&message1, &mut Vec::new()),
            Err(CryptoError::AuthenticationFailed)
        );
    }

    #[test]
    fn tampered_handshake_messages_fail_and_spoil_nothing() {
        let key = psk(9);
        let mut i = Handshake::initiator(&key, PROLOGUE, &mut rng(1));
        let mut r = Handshake::responder(&key, PROLOGUE, &mut rng(2));
        let mut message1 = Vec::new();
        i.write_message(b"one", &mut message1).unwrap();
        for bit in 0..message1.len() * 8 {
            let mut bad = message1.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                r.read_message(&bad, &mut Vec::new()),
                Err(CryptoError::AuthenticationFailed),
                "bit {bit}"
            );
        }
        assert_eq!(
            r.read_message(&message1[..HANDSHAKE_OVERHEAD - 1], &mut Vec::new()),
            Err(CryptoError::MalformedMessage {
                len: HANDSHAKE_OVERHEAD - 1,
                min: HANDSHAKE_OVERHEAD
            })
        );
        assert_eq!(
            r.read_message(&[0; 70_000], &mut Vec::new()),
            Err(CryptoError::MalformedMessage {
                len: 70_000,
                min: HANDSHAKE_OVERHEAD
            })
        );
        // Cut short but still long enough: the tag no longer matches.
        assert_eq!(
            r.read_message(&message1[..message1.len() - 1], &mut Vec::new()),
            Err(CryptoError::AuthenticationFailed)
        );
        // The genuine message still works after all those failures.
        let mut payload = Vec::new();
        r.read_message(&message1, &mut payload).unwrap();
        assert_eq!(payload, b"one");

        let mut message2 = Vec::new();
        r.write_message(b"two", &mut message2).unwrap();
        for bit in 0..message2.len() * 8 {
            let mut bad = message2.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_eq!(
                i.read_message(&bad, &mut Vec::new()),
                Err(CryptoError::AuthenticationFailed),
                "bit {bit}"
            );
        }
        // Message 1 reflected back to the initiator: rejected too.
        assert_eq!(
            i.read_message(&message1, &mut Vec::new()),
            Err(CryptoError::AuthenticationFailed)
        );
        payload.clear();
        i.read_message(&message2, &mut payload).unwrap();
        assert_eq!(payload, b"two");
        let (ki, kr) = (i.into_keys().unwrap(), r.into_keys().unwrap());
        let packet = sealed(&ki, 0, HEADER, b"ok");
        assert!(opened(&kr, 0, HEADER.len(), &packet).is_ok());
    }

    #[test]
    fn steps_out_of_order_are_refused() {
        let key = psk(3);
        let mut i = Handshake::initiator(&key, PROLOGUE, &mut rng(1));
        let mut r = Handshake::responder(&key, PROLOGUE, &mut rng(2));
        let mut out = vec![0xaa];
        assert_eq!(r.write_message(b"", &mut out), Err(CryptoError::OutOfOrder));
        assert_eq!(out, [0xaa], "nothing appended on error");
        assert_eq!(
            i.read_message(&[0; 64], &mut Vec::new()),
            Err(CryptoError::OutOfOrder)
        );
        i.write_message(b"", &mut out).unwrap();
        assert_eq!(
            out.len(),
            1 + HANDSHAKE_OVERHEAD,
            "appended after what was there"
        );
        assert_eq!(i.write_message(b"", &mut out), Err(CryptoError::OutOfOrder));
        let mut payload = vec![0xbb];
        r.read_message(&out[1..], &mut payload).unwrap();
        assert_eq!(payload, [0xbb], "an empty payload appends nothing");
        assert_eq!(
            r.read_message(&out[1..], &mut Vec::new()),
            Err(CryptoError::OutOfOrder)
        );
        let mut message2 = Vec::new();
        r.write_message(b"", &mut message2).unwrap();
        assert_eq!(
            r.write_message(b"", &mut message2),
            Err(CryptoError::OutOfOrder)
        );
        assert_eq!(i.into_keys().unwrap_err(), CryptoError::NotFinished);
    }

    #[test]
    fn oversized_payload_is_refused() {
        let mut i = Handshake::initiator(&psk(1), PROLOGUE, &mut rng(1));
        let mut out = Vec::new();
        assert_eq!(
            i.write_message(&vec![0; MAX_HANDSHAKE_PAYLOAD + 1], &mut out),
            Err(CryptoError::PayloadTooLarge {
                size: MAX_HANDSHAKE_PAYLOAD + 1,
                max: MAX_HANDSHAKE_PAYLOAD
            })
        );
        assert!(out.is_empty());
        i.write_message(&vec![0; MAX_HANDSHAKE_PAYLOAD], &mut out)
            .unwrap();
        assert_eq!(out.len(), 65_535);
    }

    #[test]
    fn same_seeds_give_identical_handshakes() {
        let a = handshake(11, 12, b"p1", b"p2");
        let b = handshake(11, 12, b"p1", b"p2");
        assert_eq!(a.message1, b.message1);
        assert_eq!(a.message2, b.message2);
        assert_eq!(
            sealed(&a.initiator, 4, HEADER, b"x"),
            sealed(&b.initiator, 4, HEADER, b"x")
        );
        let c = handshake(11, 13, b"p1", b"p2");
        assert_eq!(a.message1, c.message1);
        assert_ne!(a.message2, c.message2);
    }

    #[test]
    fn tampered_packets_fail_to_open_and_release_nothing() {
        let run = handshake(1, 2, b"", b"");
        let packet = sealed(&run.initiator, 42, HEADER, b"some body bytes");
        let tag_start = packet.len() - TAG_LEN;
        for (what, index) in [
            ("version", 0),
            ("kind", 1),
            ("session id", 5),
            ("packet number", HEADER.len() - 1),
            ("body", HEADER.len() + 3),
            ("tag", tag_start),
            ("last tag byte", packet.len() - 1),
        ] {
            let mut bad = BytesMut::from(&packet[..]);
            bad[index] ^= 0x40;
            let before = bad.clone();
            assert_eq!(
                run.responder.open(42, HEADER.len(), &mut bad),
                Err(DecodeError::Integrity),
                "{what}"
            );
            assert_eq!(bad.len(), before.len(), "{what}: nothing removed");
            assert_eq!(
                bad[..HEADER.len()],
                before[..HEADER.len()],
                "{what}: header kept"
            );
            assert_eq!(bad[tag_start..], before[tag_start..], "{what}: tag kept");
            assert!(
                bad[HEADER.len()..tag_start].iter().all(|&b| b == 0),
                "{what}: no unauthenticated plaintext is released"
            );
        }
        // Header and body boundary moved: the associated data differs.
        assert_eq!(
            opened(&run.responder, 42, HEADER.len() - 1, &packet),
            Err(DecodeError::Integrity)
        );
    }

    #[test]
    fn wrong_number_fails_and_replay_opens_again() {
        let run = handshake(1, 2, b"", b"");
        let packet = sealed(&run.initiator, 7, HEADER, b"body");
        for wrong in [0, 6, 8, 7 << 32, u64::MAX] {
            assert_eq!(
                opened(&run.responder, wrong, HEADER.len(), &packet),
                Err(DecodeError::Integrity)
            );
        }
        // This layer accepts a replay; the session drops it as a duplicate
        // packet number.
        let first = opened(&run.responder, 7, HEADER.len(), &packet).unwrap();
        let again = opened(&run.responder, 7, HEADER.len(), &packet).unwrap();
        assert_eq!(first, again);
    }

    #[test]
    fn short_packets_are_truncated() {
        let run = handshake(1, 2, b"", b"");
        for (len, header_len) in [(0, 0), (15, 0), (20, 5), (26, 11), (5, 100)] {
            assert_eq!(
                opened(&run.responder, 0, header_len, &vec![0; len]),
                Err(DecodeError::Truncated),
                "{len} bytes, header {header_len}"
            );
        }
        assert_eq!(
            opened(&run.responder, 0, 11, &[0; 27]),
            Err(DecodeError::Integrity)
        );
    }

    #[test]
    fn nonce_is_the_big_endian_packet_number() {
        assert_eq!(nonce(0), [0; 12]);
        assert_eq!(nonce(0x0102), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(nonce(u64::MAX)[4..], [0xff; 8]);
    }

    #[test]
    fn psk_parsing() {
        let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
        let key = PreSharedKey::from_hex(hex).unwrap();
        assert_eq!(key.0[..4], [0x00, 0x11, 0x22, 0x33]);
        assert_eq!(key.0[28..], [0xcc, 0xdd, 0xee, 0xff]);
        assert_eq!(*key.to_hex(), hex.to_ascii_lowercase());
        let parsed = PreSharedKey::parse(&format!("  {hex}\n")).unwrap();
        assert_eq!(parsed.0, key.0);
        let from_str: PreSharedKey = format!("\t{hex}\r\n").parse().unwrap();
        assert_eq!(from_str.0, key.0);

        assert_eq!(
            PreSharedKey::from_hex(&format!(" {hex}")).unwrap_err(),
            PskError::WrongLength { found: 65 }
        );
        assert_eq!(
            PreSharedKey::parse(&hex[..62]).unwrap_err(),
            PskError::WrongLength { found: 62 }
        );
        assert_eq!(
            PreSharedKey::parse("").unwrap_err(),
            PskError::WrongLength { found: 0 }
        );
        let mut bad = hex.to_owned();
        bad.replace_range(9..10, "g");
        assert_eq!(
            PreSharedKey::parse(&bad).unwrap_err(),
            PskError::NotHex { position: 9 }
        );
        // A non-ASCII character is not a hexadecimal digit either.
        let accented = format!("é{}", &hex[2..]);
        assert_eq!(
            PreSharedKey::parse(&accented).unwrap_err(),
            PskError::NotHex { position: 0 }
        );
        let message = PskError::NotHex { position: 9 }.to_string();
        assert!(!message.contains('g'), "the key's characters stay secret");
    }

    #[test]
    fn psk_generate_and_debug() {
        let a = PreSharedKey::generate(&mut rng(1));
        let b = PreSharedKey::generate(&mut rng(1));
        let c = PreSharedKey::generate(&mut rng(2));
        assert_eq!(a.0, b.0);
        assert_ne!(a.0, c.0);
        let debug = format!("{a:?}");
        assert_eq!(debug, "PreSharedKey(<redacted>)");
        assert!(!debug.contains(&a.to_hex()[..8]));

        let run = handshake(1, 2, b"", b"");
        assert_eq!(format!("{:?}", run.initiator), "PacketKeys(<redacted>)");
        let h = Handshake::responder(&a, PROLOGUE, &mut rng(3));
        assert_eq!(
            format!("{h:?}"),
            "Handshake { initiator: false, finished: false, .. }"
        );
    }

    #[test]
    fn handshake_uses_the_callers_generator() {
        // Two seeds from one generator: two different ephemeral keys.
        let key = psk(1);
        let mut g = rng(5);
        let mut out_a = Vec::new();
        let mut out_b = Vec::new();
        Handshake::initiator(&key, PROLOGUE, &mut g)
            .write_message(b"", &mut out_a)
            .unwrap();
        Handshake::initiator(&key, PROLOGUE, &mut g)
            .write_message(b"", &mut out_b)
            .unwrap();
        assert_ne!(out_a[..32], out_b[..32]);
        // The generator advanced by exactly the 32-byte seed.
        let mut fresh = rng(5);
        let mut skip = [0u8; 64];
        fresh.fill_bytes(&mut skip);
        assert_eq!(fresh.next_u64(), g.next_u64());
    }

    proptest! {
        #[test]
        fn open_inverts_seal_and_any_flipped_bit_fails(
            header in proptest::collection::vec(any::<u8>(), 0..20),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            number in any::<u64>(),
            flip in any::<prop::sample::Index>(),
        ) {
            let run = handshake(1, 2, b"", b"");
            let packet = sealed(&run.initiator, number, &header, &body);
            prop_assert_eq!(packet.len(), header.len() + body.len() + TAG_LEN);
            let got = opened(&run.responder, number, header.len(), &packet).unwrap();
            prop_assert_eq!(&got[..], &[&header[..], &body[..]].concat()[..]);

            let bit = flip.index(packet.len() * 8);
            let mut bad = packet.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            prop_assert_eq!(
                opened(&run.responder, number, header.len(), &bad),
                Err(DecodeError::Integrity)
            );
        }

        #[test]
        fn open_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
            header_len in 0usize..250,
            number in any::<u64>(),
        ) {
            let run = handshake(1, 2, b"", b"");
            let mut buf = BytesMut::from(&bytes[..]);
            let result = run.responder.open(number, header_len, &mut buf);
            prop_assert!(result.is_err());
            // Nothing removed; at most the body was wiped.
            prop_assert_eq!(buf.len(), bytes.len());
        }

        #[test]
        fn read_message_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let key = psk(1);
            let mut r = Handshake::responder(&key, PROLOGUE, &mut rng(2));
            prop_assert!(r.read_message(&bytes, &mut Vec::new()).is_err());
            let mut i = Handshake::initiator(&key, PROLOGUE, &mut rng(1));
            i.write_message(b"", &mut Vec::new()).unwrap();
            prop_assert!(i.read_message(&bytes, &mut Vec::new()).is_err());
        }
    }
}
