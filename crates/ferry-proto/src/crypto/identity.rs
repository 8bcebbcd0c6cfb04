//! Long-term identities: an endpoint's static X25519 key pair, the public
//! keys that name peers, and the list of public keys a listener admits.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use rand::CryptoRng;
use snow::params::DHChoice;
use snow::resolvers::{CryptoResolver, DefaultResolver};
use thiserror::Error;
use zeroize::{Zeroize, Zeroizing};

/// A key (private or public) or a list of keys could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The text does not hold exactly 64 hexadecimal digits.
    #[error(
        "key has {found} characters, expected 64 hexadecimal digits (32 bytes): \
         create a key pair with `ferry keygen` (or `Identity::generate`)"
    )]
    WrongLength {
        /// Characters found (after trimming surrounding whitespace).
        found: usize,
    },
    /// A character is not a hexadecimal digit. For a private key the
    /// character itself is not reported, since it is part of a secret.
    #[error("key has a non-hexadecimal character at position {position}: use only 0-9, a-f, A-F")]
    NotHex {
        /// Zero-based position of the offending character.
        position: usize,
    },
    /// A line of an authorized-keys list is not a key followed by an
    /// optional name.
    #[error("authorized keys, line {line}: {error}")]
    Line {
        /// One-based line number.
        line: usize,
        /// What is wrong with it.
        error: Box<KeyError>,
    },
}

/// Parses exactly 64 hexadecimal digits into 32 bytes, wiping what it read
/// on error.
fn parse_hex32(hex: &str) -> Result<[u8; 32], KeyError> {
    let digits = hex.as_bytes();
    if digits.len() != 64 {
        return Err(KeyError::WrongLength {
            found: hex.chars().count(),
        });
    }
    let mut out = [0u8; 32];
    for (i, pair) in digits.chunks_exact(2).enumerate() {
        let value = |d: u8| match d {
            b'0'..=b'9' => Some(d - b'0'),
            b'a'..=b'f' => Some(d - b'a' + 10),
            b'A'..=b'F' => Some(d - b'A' + 10),
            _ => None,
        };
        match (value(pair[0]), value(pair[1])) {
            (Some(hi), Some(lo)) => out[i] = (hi << 4) | lo,
            (hi, _) => {
                out.zeroize();
                let position = if hi.is_none() { 2 * i } else { 2 * i + 1 };
                return Err(KeyError::NotHex { position });
            }
        }
    }
    Ok(out)
}

fn push_hex(bytes: &[u8], out: &mut String) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &byte in bytes {
        out.push(char::from(DIGITS[usize::from(byte >> 4)]));
        out.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
}

/// An endpoint's public X25519 key: what names it to its peers.
///
/// Shown and parsed as 64 lowercase hexadecimal digits (the line
/// `ferry keygen` prints and authorized-keys files hold). Public: it may be
/// logged and shared freely.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PublicKey([u8; 32]);

impl PublicKey {
    /// Length of the key in bytes.
    pub const LEN: usize = 32;

    /// Wraps 32 key bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Parses 64 hexadecimal digits, with optional whitespace around them.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        parse_hex32(text.trim()).map(Self)
    }

    /// The first 8 hexadecimal digits, enough to tell keys apart in a log.
    pub fn short(&self) -> String {
        let mut s = String::with_capacity(8);
        push_hex(&self.0[..4], &mut s);
        s
    }
}

impl FromStr for PublicKey {
    type Err = KeyError;

    /// Same as [`PublicKey::parse`].
    fn from_str(text: &str) -> Result<Self, KeyError> {
        Self::parse(text)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(64);
        push_hex(&self.0, &mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.short())
    }
}

/// An endpoint's long-term identity: a static X25519 key pair.
///
/// The private half never leaves it except through
/// [`private_hex`](Self::private_hex); its [`Debug`] form shows only the
/// public key, and the private bytes are wiped when it is dropped.
#[derive(Clone)]
pub struct Identity {
    private: [u8; 32],
    public: PublicKey,
}

impl Identity {
    /// Wraps 32 private-key bytes and derives the public key (X25519, through
    /// `snow`'s implementation).
    pub fn from_private_bytes(private: [u8; 32]) -> Self {
        let mut dh = DefaultResolver
            .resolve_dh(&DHChoice::Curve25519)
            .expect("snow's default resolver provides X25519");
        dh.set(&private);
        let mut public = [0u8; 32];
        public.copy_from_slice(&dh.pubkey()[..32]);
        Self {
            private,
            public: PublicKey(public),
        }
    }

    /// Draws a new key pair from `rng`, which must be a cryptographically
    /// secure generator seeded from the operating system.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut private = [0u8; 32];
        rng.fill_bytes(&mut private);
        let identity = Self::from_private_bytes(private);
        private.zeroize();
        identity
    }

    /// Parses a private key as stored in a file: 64 hexadecimal digits, with
    /// optional whitespace (such as a final newline) around them.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut private = parse_hex32(text.trim())?;
        let identity = Self::from_private_bytes(private);
        private.zeroize();
        Ok(identity)
    }

    /// The public key, to give to peers.
    pub fn public_key(&self) -> PublicKey {
        self.public
    }

    /// The private key as 64 lowercase hexadecimal digits, the form
    /// [`parse`](Self::parse) reads. This reveals the secret: write it only to
    /// a file only its owner can read. The string is wiped when dropped.
    pub fn private_hex(&self) -> Zeroizing<String> {
        let mut s = Zeroizing::new(String::with_capacity(64));
        push_hex(&self.private, &mut s);
        s
    }

    pub(super) fn private_bytes(&self) -> &[u8; 32] {
        &self.private
    }
}

impl FromStr for Identity {
    type Err = KeyError;

    /// Same as [`Identity::parse`].
    fn from_str(text: &str) -> Result<Self, KeyError> {
        Self::parse(text)
    }
}

impl PartialEq for Identity {
    /// Two identities are equal when their public keys are (the public key
    /// is derived from the private one).
    fn eq(&self, other: &Self) -> bool {
        self.public == other.public
    }
}

impl Eq for Identity {}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Identity(public {}, private <redacted>)",
            self.public.short()
        )
    }
}

impl Drop for Identity {
    fn drop(&mut self) {
        self.private.zeroize();
    }
}

/// The public keys a listener admits, each with an optional name for logs.
///
/// Read from text with [`parse`](Self::parse), one key per line as SSH's
/// `authorized_keys` does:
///
/// ```text
/// # comments and blank lines are skipped
/// 3f1c…64 hex digits…9a alice laptop
/// 88d0…64 hex digits…01
/// ```
///
/// The name is everything after the key, trimmed. Revoking a peer is
/// removing its line and handing the new list to the listener
/// ([`Endpoint::set_authorized_keys`](crate::Endpoint::set_authorized_keys)):
/// no other peer's key changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizedKeys {
    keys: BTreeMap<PublicKey, String>,
}

impl AuthorizedKeys {
    /// An empty list (admits no one).
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a list: one hexadecimal public key per line, optionally
    /// followed by a name; `#` starts a comment line.
    pub fn parse(text: &str) -> Result<Self, KeyError> {
        let mut list = Self::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (key, name) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let key = PublicKey::parse(key).map_err(|e| KeyError::Line {
                line: index + 1,
                error: Box::new(e),
            })?;
            list.insert(key, name.trim());
        }
        Ok(list)
    }

    /// Admits `key`, named `name` in logs (may be empty).
    pub fn insert(&mut self, key: PublicKey, name: &str) {
        self.keys.insert(key, name.to_owned());
    }

    /// Stops admitting `key`; whether it was listed.
    pub fn remove(&mut self, key: &PublicKey) -> bool {
        self.keys.remove(key).is_some()
    }

    /// Whether `key` is admitted.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.keys.contains_key(key)
    }

    /// The name listed with `key`, if it is listed (empty if it has none).
    pub fn name(&self, key: &PublicKey) -> Option<&str> {
        self.keys.get(key).map(String::as_str)
    }

    /// How many keys are listed.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is listed.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// The listed keys and their names, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&PublicKey, &str)> {
        self.keys.iter().map(|(k, n)| (k, n.as_str()))
    }
}

impl FromIterator<PublicKey> for AuthorizedKeys {
    fn from_iter<I: IntoIterator<Item = PublicKey>>(iter: I) -> Self {
        Self {
            keys: iter.into_iter().map(|k| (k, String::new())).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn a_private_key_round_trips_through_its_hex_form_and_keeps_its_public_key() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let id = Identity::generate(&mut rng);
        let again = Identity::parse(&format!("{}\n", id.private_hex().as_str())).unwrap();
        assert_eq!(again.public_key(), id.public_key());
        assert_ne!(id.public_key().as_bytes(), id.private_bytes());
    }

    #[test]
    fn the_public_key_is_the_x25519_base_point_multiple() {
        // RFC 7748 §6.1, Alice's key pair.
        let private =
            parse_hex32("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap();
        let id = Identity::from_private_bytes(private);
        assert_eq!(
            id.public_key().to_string(),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
    }

    #[test]
    fn debug_forms_do_not_show_the_private_key() {
        let id = Identity::generate(&mut ChaCha20Rng::seed_from_u64(2));
        let shown = format!("{id:?}");
        assert!(!shown.contains(id.private_hex().as_str()));
        assert!(shown.contains(&id.public_key().short()));
    }

    #[test]
    fn malformed_keys_are_refused_with_where_and_why() {
        assert_eq!(
            PublicKey::parse("abc"),
            Err(KeyError::WrongLength { found: 3 })
        );
        let mut bad = "0".repeat(64);
        bad.replace_range(5..6, "g");
        assert_eq!(
            PublicKey::parse(&bad),
            Err(KeyError::NotHex { position: 5 })
        );
        assert!(Identity::parse(&bad).is_err());
    }

    #[test]
    fn an_authorized_keys_list_reads_keys_names_and_comments() {
        let a = Identity::generate(&mut ChaCha20Rng::seed_from_u64(3)).public_key();
        let b = Identity::generate(&mut ChaCha20Rng::seed_from_u64(4)).public_key();
        let text = format!("# peers\n\n{a} alice laptop\n  {b}\n");
        let list = AuthorizedKeys::parse(&text).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list.name(&a), Some("alice laptop"));
        assert_eq!(list.name(&b), Some(""));
        let err = AuthorizedKeys::parse(&format!("{a}\nnot-a-key x\n")).unwrap_err();
        assert!(matches!(err, KeyError::Line { line: 2, .. }), "{err}");
    }
}
