//! The Noise handshakes (NNpsk0 with a pre-shared key, IK or IKpsk2 with
//! identities) through `snow`, seeded by the caller's
//! random generator so that the same inputs give the same bytes.

use std::fmt;

use rand::{CryptoRng, SeedableRng};
use rand_chacha::ChaCha20Rng;
use snow::params::{CipherChoice, DHChoice, HashChoice, NoiseParams};
use snow::resolvers::{CryptoResolver, DefaultResolver, FallbackResolver};
use snow::types::{Dh, Hash, Random};
use tracing::debug;
use zeroize::Zeroize;

use super::cipher::{Reply, check_reply, decode_offer, decode_reply, encode_offer, encode_reply};
use super::{
    Cipher, CipherPreference, CryptoError, HANDSHAKE_OVERHEAD, Identity, MAX_HANDSHAKE_PAYLOAD,
    NOISE_MAX_MESSAGE, NOISE_PATTERN, NOISE_PATTERN_IDENTITY, NOISE_PATTERN_IDENTITY_PSK,
    PacketKeys, PreSharedKey, PublicKey, STATIC_KEY_OVERHEAD, hardware_aes, negotiate,
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

    fn resolve_cipher(&self, _: &CipherChoice) -> Option<Box<dyn snow::types::Cipher>> {
        None
    }
}

impl Drop for SeededResolver {
    fn drop(&mut self) {
        self.seed.zeroize();
    }
}

/// One side of the handshake that authenticates both endpoints with the
/// pre-shared key, agrees on a packet [`Cipher`] and derives a session's
/// [`PacketKeys`].
///
/// The flow (see the [module documentation](crate::crypto) for the why):
///
/// 1. initiator: [`write_message`](Self::write_message) → message 1 (`psk, e`),
///    `payload + 48` bytes plus its cipher offer (2 or 3 bytes);
/// 2. responder: [`read_message`](Self::read_message) of message 1. A wrong
///    pre-shared key is detected **here, by the responder**
///    ([`CryptoError::AuthenticationFailed`]); the initiator learns nothing
///    (it times out, or is told by a cleartext refusal). The responder picks
///    the cipher ([`negotiate`](super::negotiate));
/// 3. responder: [`write_message`](Self::write_message) → message 2 (`e, ee`),
///    `payload + 48` bytes plus its pick and offer (3 or 4 bytes); the
///    responder is now finished;
/// 4. initiator: [`read_message`](Self::read_message) of message 2, which
///    checks the pick; finished.
///
/// Then each side calls [`into_keys`](Self::into_keys). The cipher offers
/// travel inside the encrypted payloads, in front of the caller's payload:
/// `write_message` adds them and `read_message` takes them off, so the
/// caller sees only its own payload. A failed `read_message` changes nothing
/// (except for [`CryptoError::Negotiation`], see there), so a forged or
/// corrupted message does not spoil the handshake: the genuine one can still
/// be read afterwards. Retransmission is the caller's business: a handshake
/// writes each message once, so keep the bytes and resend them.
pub struct Handshake {
    pub(super) state: snow::HandshakeState,
    /// The ciphers this side offers, most preferred first.
    offer: Vec<Cipher>,
    /// The cipher agreed on: the responder's pick once it has read message
    /// 1, the initiator's once it has read message 2.
    cipher: Option<Cipher>,
    /// Responder: the initiator sent no offer (it predates negotiation), so
    /// message 2 carries no answer either.
    legacy_peer: bool,
    /// Whether this is the identity handshake (`IK`), whose message 1 also
    /// carries the initiator's static key.
    identity: bool,
}

/// The long-term keys a handshake runs with: a pre-shared key, static key
/// pairs, or both.
struct Keys<'a> {
    psk: Option<&'a PreSharedKey>,
    local: Option<&'a Identity>,
    remote: Option<&'a PublicKey>,
}

impl<'a> Keys<'a> {
    /// The pre-shared key alone (`NNpsk0`).
    fn psk(psk: &'a PreSharedKey) -> Self {
        Self {
            psk: Some(psk),
            local: None,
            remote: None,
        }
    }
}

impl Handshake {
    /// Starts the side that sends message 1, offering the ciphers of
    /// [`CipherPreference::Auto`].
    ///
    /// `prologue` must be the same on both sides (Ferry: the version byte
    /// followed by the 8-byte session id). `rng` provides the 32-byte seed of
    /// this side's ephemeral key: the same generator state gives the same
    /// handshake bytes.
    pub fn initiator(psk: &PreSharedKey, prologue: &[u8], rng: &mut impl CryptoRng) -> Self {
        Self::initiator_with(psk, prologue, CipherPreference::Auto, rng)
    }

    /// Starts the side that receives message 1, offering the ciphers of
    /// [`CipherPreference::Auto`]. Arguments as for
    /// [`initiator`](Self::initiator).
    pub fn responder(psk: &PreSharedKey, prologue: &[u8], rng: &mut impl CryptoRng) -> Self {
        Self::responder_with(psk, prologue, CipherPreference::Auto, rng)
    }

    /// As [`initiator`](Self::initiator), offering the ciphers of
    /// `preference` ([`CipherPreference::offer`] on this CPU).
    pub fn initiator_with(
        psk: &PreSharedKey,
        prologue: &[u8],
        preference: CipherPreference,
        rng: &mut impl CryptoRng,
    ) -> Self {
        Self::build(true, Keys::psk(psk), prologue, preference, rng)
    }

    /// As [`responder`](Self::responder), offering the ciphers of
    /// `preference` ([`CipherPreference::offer`] on this CPU).
    pub fn responder_with(
        psk: &PreSharedKey,
        prologue: &[u8],
        preference: CipherPreference,
        rng: &mut impl CryptoRng,
    ) -> Self {
        Self::build(false, Keys::psk(psk), prologue, preference, rng)
    }

    /// Starts the side that sends message 1 of the identity handshake
    /// (`Noise_IK`, or `Noise_IKpsk2` with a pre-shared key on top): this
    /// side proves `identity`, and only the holder of `listener`'s private key
    /// can answer (the starter *pins* the listener's key). Other arguments as
    /// for [`initiator`](Self::initiator).
    pub fn initiator_with_identity(
        identity: &Identity,
        listener: &PublicKey,
        psk: Option<&PreSharedKey>,
        prologue: &[u8],
        preference: CipherPreference,
        rng: &mut impl CryptoRng,
    ) -> Self {
        let keys = Keys {
            psk,
            local: Some(identity),
            remote: Some(listener),
        };
        Self::build(true, keys, prologue, preference, rng)
    }

    /// Starts the side that receives message 1 of the identity handshake,
    /// proving `identity`. After [`read_message`](Self::read_message) of
    /// message 1, [`remote_identity`](Self::remote_identity) names the
    /// starter, authenticated: check it before writing message 2.
    pub fn responder_with_identity(
        identity: &Identity,
        psk: Option<&PreSharedKey>,
        prologue: &[u8],
        preference: CipherPreference,
        rng: &mut impl CryptoRng,
    ) -> Self {
        let keys = Keys {
            psk,
            local: Some(identity),
            remote: None,
        };
        Self::build(false, keys, prologue, preference, rng)
    }

    fn build(
        initiator: bool,
        keys: Keys<'_>,
        prologue: &[u8],
        preference: CipherPreference,
        rng: &mut impl CryptoRng,
    ) -> Self {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let resolver =
            FallbackResolver::new(Box::new(SeededResolver { seed }), Box::new(DefaultResolver));
        seed.zeroize();
        let identity = keys.local.is_some();
        let pattern = match (identity, keys.psk.is_some()) {
            (false, _) => NOISE_PATTERN,
            (true, false) => NOISE_PATTERN_IDENTITY,
            (true, true) => NOISE_PATTERN_IDENTITY_PSK,
        };
        let params: NoiseParams = pattern
            .parse()
            .expect("Ferry's Noise patterns are valid Noise protocol names");
        // Every step below fails only on a bad pattern, PSK position or
        // missing primitive: fixed at compile time and covered by the tests.
        let mut builder = snow::Builder::with_resolver(params, Box::new(resolver))
            .prologue(prologue)
            .expect("a prologue is valid for every pattern");
        if let Some(psk) = keys.psk {
            // NNpsk0 mixes the key first; IKpsk2 at the end of message 2.
            let position = if identity { 2 } else { 0 };
            builder = builder
                .psk(position, &psk.0)
                .expect("the pattern's PSK position");
        }
        if let Some(local) = keys.local {
            builder = builder
                .local_private_key(local.private_bytes())
                .expect("IK takes a static key");
        }
        if let Some(remote) = keys.remote {
            builder = builder
                .remote_public_key(remote.as_bytes())
                .expect("IK's initiator knows the responder's static key");
        }
        let state = if initiator {
            builder.build_initiator()
        } else {
            builder.build_responder()
        }
        .expect("snow's default resolver provides 25519, ChaChaPoly and BLAKE2s");
        Self {
            state,
            offer: preference.offer(hardware_aes()),
            cipher: None,
            legacy_peer: false,
            identity,
        }
    }

    /// Writes this side's next handshake message, with its cipher offer (the
    /// initiator) or pick (the responder) and then `payload` encrypted in it,
    /// appending it to `out` (`payload.len() + 48` bytes, plus 2 to 4 for
    /// the ciphers).
    ///
    /// The initiator writes message 1, the responder message 2. Message 1's
    /// payload is authenticated and encrypted under the pre-shared key but has
    /// no forward secrecy and can be replayed: put nothing secret in it.
    /// Message 2's payload is forward secret.
    pub fn write_message(&mut self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), CryptoError> {
        let statics = if self.identity && self.is_initiator() {
            STATIC_KEY_OVERHEAD
        } else {
            0
        };
        let max = MAX_HANDSHAKE_PAYLOAD - statics;
        if payload.len() > max {
            return Err(CryptoError::PayloadTooLarge {
                size: payload.len(),
                max,
            });
        }
        if !self.is_my_turn() {
            return Err(CryptoError::OutOfOrder);
        }
        let mut plain = Vec::with_capacity(payload.len() + 4);
        if self.is_initiator() {
            encode_offer(&self.offer, &mut plain);
        } else if !self.legacy_peer {
            // The responder's turn comes only after it read message 1,
            // which set the cipher.
            let chosen = self.cipher.ok_or(CryptoError::OutOfOrder)?;
            encode_reply(chosen, &self.offer, &mut plain);
        }
        plain.extend_from_slice(payload);
        let start = out.len();
        out.resize(start + plain.len() + HANDSHAKE_OVERHEAD + statics, 0);
        match self.state.write_message(&plain, &mut out[start..]) {
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

    /// Reads the peer's handshake message, takes the cipher offer or pick off
    /// the front of its payload, and appends the rest to `payload`.
    ///
    /// On any error nothing is appended, and the handshake is unchanged
    /// unless the error is [`CryptoError::Negotiation`]: the message was
    /// genuine but no cipher can be agreed, and the handshake is over.
    pub fn read_message(
        &mut self,
        message: &[u8],
        payload: &mut Vec<u8>,
    ) -> Result<(), CryptoError> {
        if !(HANDSHAKE_OVERHEAD..=NOISE_MAX_MESSAGE).contains(&message.len()) {
            return Err(CryptoError::MalformedMessage {
                len: message.len(),
                min: HANDSHAKE_OVERHEAD,
            });
        }
        let mut plain = vec![0; message.len()];
        match self.state.read_message(message, &mut plain) {
            Ok(read) => plain.truncate(read),
            Err(e) => {
                return Err(match e {
                    snow::Error::State(_) => CryptoError::OutOfOrder,
                    snow::Error::Input => CryptoError::MalformedMessage {
                        len: message.len(),
                        min: HANDSHAKE_OVERHEAD,
                    },
                    // `Decrypt`, `Dh` and anything else: the message is not
                    // one the peer with our key and prologue wrote.
                    _ => CryptoError::AuthenticationFailed,
                });
            }
        }
        // What the peer's message starts with: its offer (message 1) or its
        // pick and offer (message 2); nothing from a peer that predates
        // negotiation, which then uses ChaCha20-Poly1305.
        let (cipher, taken) = if self.is_initiator() {
            let reply = decode_reply(&plain)?;
            let cipher = check_reply(&self.offer, &reply)?;
            match reply {
                Reply::Legacy => (cipher, 0),
                Reply::Chosen { len, .. } => (cipher, len),
            }
        } else if plain.is_empty() {
            // Message 2 then carries no answer either, as such an initiator
            // expects.
            self.legacy_peer = true;
            (negotiate(&[Cipher::ChaCha20Poly1305], &self.offer)?, 0)
        } else {
            let (theirs, taken) = decode_offer(&plain)?;
            (negotiate(&theirs, &self.offer)?, taken)
        };
        debug!(
            %cipher,
            initiator = self.is_initiator(),
            peer_negotiates = taken > 0,
            "packet cipher agreed"
        );
        self.cipher = Some(cipher);
        payload.extend_from_slice(&plain[taken..]);
        Ok(())
    }

    /// Writes this side's next message with `payload` as it is, without the
    /// cipher offer or answer: a peer from before negotiation, or a broken
    /// one, for tests.
    #[cfg(test)]
    pub(crate) fn write_message_without_negotiation(&mut self, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![0; payload.len() + HANDSHAKE_OVERHEAD];
        let n = self
            .state
            .write_message(payload, &mut out)
            .expect("this side's turn");
        out.truncate(n);
        out
    }

    /// The peer's authenticated static public key: in the identity handshake,
    /// the responder learns the initiator's from message 1 and the initiator
    /// knows the responder's from the start (it pinned it); `None` in the
    /// pre-shared-key handshake.
    pub fn remote_identity(&self) -> Option<PublicKey> {
        let key: [u8; 32] = self.state.get_remote_static()?.try_into().ok()?;
        Some(PublicKey::from_bytes(key))
    }

    /// The packet cipher agreed on, once this side has read the peer's
    /// message (the responder message 1, the initiator message 2).
    pub fn cipher(&self) -> Option<Cipher> {
        self.cipher
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

    /// The session's packet keys, for the agreed cipher, once the handshake
    /// is finished.
    ///
    /// Noise's split yields two keys: the initiator sends with the first and
    /// receives with the second, the responder the other way round.
    pub fn into_keys(mut self) -> Result<PacketKeys, CryptoError> {
        if !self.is_finished() {
            return Err(CryptoError::NotFinished);
        }
        let cipher = self
            .cipher
            .ok_or_else(|| CryptoError::Internal("a finished handshake without a cipher".into()))?;
        let (mut first, mut second) = self.state.dangerously_get_raw_split();
        let keys = if self.is_initiator() {
            PacketKeys::new(cipher, &first, &second)
        } else {
            PacketKeys::new(cipher, &second, &first)
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
