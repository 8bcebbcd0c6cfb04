//! Resumption tickets, as a listener seals and opens them.
//!
//! A ticket is what a listener knows of a finished session that a later
//! session may resume from, sealed with ChaCha20-Poly1305 (through `ring`)
//! under a *ticket key* only this endpoint holds: 32 random bytes drawn from
//! the endpoint's generator, replaced every ticket lifetime. The endpoint
//! keeps the current key and the one before, so a ticket opens for at most
//! one lifetime after it was sealed, and a ticket of another endpoint (other
//! keys) never opens. The starter stores the sealed bytes and echoes them,
//! opaque, in its Connect.
//!
//! ```text
//! sealed: key id (1) | nonce (12) | ciphertext of the contents (126) | tag (16)   = 155 bytes
//! contents: ticket id (16) | issued, Unix seconds (8) | lifetime, seconds (4) | mode (1)
//!           | flags (1) | resumption secret (32) | starter key or zeros (32) | binding (32)
//! ```
//!
//! The associated data is `"ferry ticket 1"` followed by the key id. The key
//! id is the low byte of the key's period (Unix seconds divided by the
//! lifetime), which names one of the two keys kept. The *binding* is a
//! SHA-256 digest of the mode and the listener's pre-shared key and public
//! key at issue time: after either changes, the endpoint's tickets no longer
//! open.

use rand::CryptoRng;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest;
use thiserror::Error;
use zeroize::Zeroize;

use super::{Identity, PreSharedKey, PublicKey, TAG_LEN};

/// Bytes of a ticket's contents, in clear.
pub const CONTENTS_LEN: usize = 16 + 8 + 4 + 1 + 1 + 32 + 32 + 32;
/// Bytes of a sealed ticket: key id, nonce, contents and tag.
pub const SEALED_LEN: usize = 1 + NONCE_LEN + CONTENTS_LEN + TAG_LEN;
/// The bit of [`TicketContents::flags`] that allows early data.
pub const FLAG_EARLY_DATA: u8 = 0x01;

const AAD_PREFIX: &[u8] = b"ferry ticket 1";

/// How the session a ticket came from was keyed: a resumed session is keyed
/// the same way (or, in the clear, not at all).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TicketMode {
    /// No pre-shared key and no identity: nothing is encrypted, and the
    /// ticket stands in for the proof of the starter's address only.
    Clear = 0,
    /// A pre-shared key.
    Psk = 1,
    /// Identities (static key pairs).
    Identity = 2,
    /// Identities and a pre-shared key.
    IdentityPsk = 3,
}

impl TicketMode {
    /// The mode of sessions under `psk` and `identity`.
    pub fn of(psk: Option<&PreSharedKey>, identity: Option<&Identity>) -> Self {
        match (psk.is_some(), identity.is_some()) {
            (false, false) => Self::Clear,
            (true, false) => Self::Psk,
            (false, true) => Self::Identity,
            (true, true) => Self::IdentityPsk,
        }
    }

    /// Parses a mode byte.
    pub fn from_u8(b: u8) -> Option<Self> {
        Some(match b {
            0 => Self::Clear,
            1 => Self::Psk,
            2 => Self::Identity,
            3 => Self::IdentityPsk,
            _ => return None,
        })
    }

    /// Whether sessions of this mode are encrypted.
    pub fn is_keyed(self) -> bool {
        self != Self::Clear
    }

    /// Whether sessions of this mode run the identity handshake.
    pub fn has_identity(self) -> bool {
        matches!(self, Self::Identity | Self::IdentityPsk)
    }
}

/// The digest that ties a ticket to the listener's keys: its mode, its
/// pre-shared key and its public key.
pub fn binding(psk: Option<&PreSharedKey>, identity: Option<&Identity>) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"ferry ticket binding 1");
    ctx.update(&[TicketMode::of(psk, identity) as u8]);
    if let Some(psk) = psk {
        ctx.update(&psk.0);
    }
    if let Some(identity) = identity {
        ctx.update(identity.public_key().as_bytes());
    }
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// What a ticket holds, in clear.
#[derive(Clone, PartialEq, Eq)]
pub struct TicketContents {
    /// Random: the strike register's key (a ticket is used once).
    pub id: [u8; 16],
    /// When it was issued, in seconds since the Unix epoch (the listener's
    /// clock).
    pub issued: u64,
    /// How long after `issued` it is good, in seconds.
    pub lifetime: u32,
    /// How the resumed session is keyed.
    pub mode: TicketMode,
    /// [`FLAG_EARLY_DATA`], and bits a later version may define.
    pub flags: u8,
    /// The pre-shared key of the resumed session's handshake (keyed modes;
    /// zeros in the clear).
    pub secret: [u8; 32],
    /// The starter's public key (identity modes).
    pub starter: Option<PublicKey>,
    /// [`binding`] of the listener's keys at issue time.
    pub binding: [u8; 32],
}

impl std::fmt::Debug for TicketContents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the secret.
        f.debug_struct("TicketContents")
            .field("issued", &self.issued)
            .field("lifetime", &self.lifetime)
            .field("mode", &self.mode)
            .field("flags", &self.flags)
            .field("starter", &self.starter)
            .finish_non_exhaustive()
    }
}

impl Drop for TicketContents {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

impl TicketContents {
    /// Whether the ticket allows early data.
    pub fn allows_early_data(&self) -> bool {
        self.flags & FLAG_EARLY_DATA != 0
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id);
        out.extend_from_slice(&self.issued.to_be_bytes());
        out.extend_from_slice(&self.lifetime.to_be_bytes());
        out.push(self.mode as u8);
        out.push(self.flags);
        out.extend_from_slice(&self.secret);
        out.extend_from_slice(self.starter.as_ref().map_or(&[0; 32], |k| k.as_bytes()));
        out.extend_from_slice(&self.binding);
    }

    fn decode(b: &[u8]) -> Result<Self, TicketError> {
        if b.len() != CONTENTS_LEN {
            return Err(TicketError::Malformed);
        }
        let array = |at: usize| -> [u8; 32] { b[at..at + 32].try_into().expect("32 bytes") };
        let mode = TicketMode::from_u8(b[28]).ok_or(TicketError::Malformed)?;
        let starter = array(62);
        Ok(Self {
            id: b[..16].try_into().expect("16 bytes"),
            issued: u64::from_be_bytes(b[16..24].try_into().expect("8 bytes")),
            lifetime: u32::from_be_bytes(b[24..28].try_into().expect("4 bytes")),
            mode,
            flags: b[29],
            secret: array(30),
            starter: mode.has_identity().then(|| PublicKey::from_bytes(starter)),
            binding: array(94),
        })
    }
}

/// Why a ticket does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TicketError {
    /// Not the length or layout of a ticket.
    #[error("not a resumption ticket: wrong length or layout")]
    Malformed,
    /// It names no key this endpoint holds: sealed by another endpoint, or
    /// under a key rotated out since.
    #[error("resumption ticket sealed under a key this endpoint does not hold")]
    UnknownKey,
    /// It does not open under the key it names: forged or corrupted.
    #[error("resumption ticket does not authenticate: forged or corrupted")]
    Forged,
    /// Its lifetime is over (or it claims a time in the future).
    #[error("resumption ticket expired")]
    Expired,
}

/// A key of a period.
struct PeriodKey {
    period: u64,
    key: LessSafeKey,
}

/// The keys an endpoint seals its tickets under: the current period's and
/// the one before, each drawn at random when its period begins.
pub struct TicketKeys {
    lifetime: u64,
    current: Option<PeriodKey>,
    previous: Option<PeriodKey>,
}

impl std::fmt::Debug for TicketKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the keys.
        f.debug_struct("TicketKeys")
            .field("lifetime", &self.lifetime)
            .field("period", &self.current.as_ref().map(|k| k.period))
            .finish_non_exhaustive()
    }
}

impl TicketKeys {
    /// No key yet: the first is drawn when the first ticket is sealed.
    /// Tickets live `lifetime` seconds (at least 1), and each key seals for
    /// one lifetime.
    pub fn new(lifetime: u64) -> Self {
        Self {
            lifetime: lifetime.max(1),
            current: None,
            previous: None,
        }
    }

    /// How long tickets live, in seconds.
    pub fn lifetime(&self) -> u64 {
        self.lifetime
    }

    fn period(&self, now: u64) -> u64 {
        now / self.lifetime
    }

    /// Draws a new key when `now` (Unix seconds) starts a new period.
    fn rotate(&mut self, now: u64, rng: &mut impl CryptoRng) {
        let period = self.period(now);
        if self.current.as_ref().is_some_and(|k| k.period >= period) {
            return;
        }
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        let key = LessSafeKey::new(
            UnboundKey::new(&CHACHA20_POLY1305, &bytes).expect("32 bytes for ChaCha20-Poly1305"),
        );
        bytes.zeroize();
        let old = self.current.replace(PeriodKey { period, key });
        self.previous = old.filter(|k| k.period + 1 == period);
    }

    /// The key of `id` still in use at `now`.
    fn key(&self, id: u8, now: u64) -> Option<&LessSafeKey> {
        let period = self.period(now);
        [&self.current, &self.previous]
            .into_iter()
            .flatten()
            .find(|k| k.period as u8 == id && k.period + 1 >= period && k.period <= period)
            .map(|k| &k.key)
    }

    /// Seals `contents` under the key of `now` (Unix seconds), drawing it
    /// and the nonce from `rng`: [`SEALED_LEN`] bytes.
    pub fn seal(
        &mut self,
        contents: &TicketContents,
        now: u64,
        rng: &mut impl CryptoRng,
    ) -> Vec<u8> {
        self.rotate(now, rng);
        let current = self.current.as_ref().expect("rotate sets a key");
        let id = current.period as u8;
        let mut nonce = [0u8; NONCE_LEN];
        rng.fill_bytes(&mut nonce);
        let mut out = Vec::with_capacity(SEALED_LEN);
        out.push(id);
        out.extend_from_slice(&nonce);
        let mut body = Vec::with_capacity(CONTENTS_LEN + TAG_LEN);
        contents.encode(&mut body);
        let aad = [AAD_PREFIX, &[id]].concat();
        current
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut body,
            )
            .expect("a ticket is far below the cipher's limits");
        out.extend_from_slice(&body);
        body.zeroize();
        out
    }

    /// Opens a sealed ticket at `now` (Unix seconds): it must be one this
    /// endpoint sealed under a key it still holds, unaltered, and within its
    /// lifetime. Never panics, whatever the bytes.
    pub fn open(&self, sealed: &[u8], now: u64) -> Result<TicketContents, TicketError> {
        if sealed.len() != SEALED_LEN {
            return Err(TicketError::Malformed);
        }
        let id = sealed[0];
        let key = self.key(id, now).ok_or(TicketError::UnknownKey)?;
        let nonce: [u8; NONCE_LEN] = sealed[1..1 + NONCE_LEN].try_into().expect("nonce");
        let mut body = sealed[1 + NONCE_LEN..].to_vec();
        let aad = [AAD_PREFIX, &[id]].concat();
        let opened = key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(&aad),
                &mut body,
            )
            .map_err(|_| TicketError::Forged)
            .and_then(|plain| TicketContents::decode(plain));
        body.zeroize();
        let contents = opened?;
        let lifetime = u64::from(contents.lifetime).min(self.lifetime);
        if contents.issued > now || now >= contents.issued.saturating_add(lifetime) {
            return Err(TicketError::Expired);
        }
        Ok(contents)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const DAY: u64 = 24 * 3600;
    const T0: u64 = 1_800_000_000;

    fn contents(issued: u64) -> TicketContents {
        TicketContents {
            id: [5; 16],
            issued,
            lifetime: DAY as u32,
            mode: TicketMode::Psk,
            flags: FLAG_EARLY_DATA,
            secret: [9; 32],
            starter: None,
            binding: [1; 32],
        }
    }

    fn rng(seed: u64) -> rand_chacha::ChaCha8Rng {
        rand_chacha::ChaCha8Rng::seed_from_u64(seed)
    }

    #[test]
    fn a_sealed_ticket_opens_to_its_contents_within_its_lifetime_only() {
        let mut keys = TicketKeys::new(DAY);
        let sealed = keys.seal(&contents(T0), T0, &mut rng(1));
        assert_eq!(sealed.len(), SEALED_LEN);
        assert_eq!(keys.open(&sealed, T0).unwrap(), contents(T0));
        assert_eq!(keys.open(&sealed, T0 + DAY - 1).unwrap(), contents(T0));
        assert_eq!(keys.open(&sealed, T0 + DAY), Err(TicketError::Expired));
        assert_eq!(keys.open(&sealed, T0 - 1), Err(TicketError::Expired));
    }

    #[test]
    fn a_ticket_with_any_bit_flipped_does_not_open() {
        let mut keys = TicketKeys::new(DAY);
        let sealed = keys.seal(&contents(T0), T0, &mut rng(2));
        for i in 0..sealed.len() * 8 {
            let mut forged = sealed.clone();
            forged[i / 8] ^= 1 << (i % 8);
            assert!(keys.open(&forged, T0).is_err(), "bit {i}");
        }
        assert_eq!(keys.open(&sealed[1..], T0), Err(TicketError::Malformed));
        assert_eq!(keys.open(&[], T0), Err(TicketError::Malformed));
    }

    #[test]
    fn another_endpoints_ticket_does_not_open() {
        let mut ours = TicketKeys::new(DAY);
        let mut theirs = TicketKeys::new(DAY);
        ours.seal(&contents(T0), T0, &mut rng(3));
        let sealed = theirs.seal(&contents(T0), T0, &mut rng(4));
        assert_eq!(ours.open(&sealed, T0), Err(TicketError::Forged));
        let fresh = TicketKeys::new(DAY);
        assert_eq!(fresh.open(&sealed, T0), Err(TicketError::UnknownKey));
    }

    #[test]
    fn keys_rotate_each_lifetime_and_the_previous_one_is_kept_for_one_more() {
        let mut keys = TicketKeys::new(DAY);
        let mut r = rng(5);
        let start = T0 - T0 % DAY;
        let early = keys.seal(&contents(start + DAY - 10), start + DAY - 10, &mut r);
        // A new period: a new key; the ticket sealed under the old one
        // still opens while it lives.
        let late = keys.seal(&contents(start + DAY), start + DAY, &mut r);
        assert_ne!(early[0], late[0], "another key id");
        assert!(keys.open(&early, start + DAY + 5).is_ok());
        assert!(keys.open(&late, start + DAY + 5).is_ok());
        // Two periods on: the first key is gone.
        keys.seal(&contents(start + 2 * DAY), start + 2 * DAY, &mut r);
        assert_eq!(
            keys.open(&early, start + 2 * DAY),
            Err(TicketError::UnknownKey)
        );
    }

    #[test]
    fn the_binding_changes_with_the_listeners_keys() {
        let psk = PreSharedKey::from_bytes([1; 32]);
        let other = PreSharedKey::from_bytes([2; 32]);
        let identity = Identity::from_private_bytes([3; 32]);
        let all = [
            binding(None, None),
            binding(Some(&psk), None),
            binding(Some(&other), None),
            binding(None, Some(&identity)),
            binding(Some(&psk), Some(&identity)),
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
