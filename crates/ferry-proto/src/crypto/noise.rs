//! The Noise NNpsk0 handshake through `snow`, seeded by the caller's
//! random generator so that the same inputs give the same bytes.

use std::fmt;

use rand::{CryptoRng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver};
use snow::types::{Cipher, Dh, Hash, Random};
use zeroize::Zeroize;

use super::{
    CryptoError, HANDSHAKE_OVERHEAD, MAX_HANDSHAKE_PAYLOAD, NOISE_PATTERN, PacketKeys, PreSharedKey,
};

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
/// The flow (see the [module documentation](crate::crypto) for the why):
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
    pub(super) state: snow::HandshakeState,
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
