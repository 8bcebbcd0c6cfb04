//! The pre-shared key: parsing, generating, and wiping it.

use std::fmt;

use rand::CryptoRng;
use zeroize::{Zeroize, Zeroizing};

use super::PskError;

/// The 32-byte key both endpoints must share to authenticate each other.
///
/// Its [`Debug`] form does not show the key, and its bytes are wiped from memory
/// when it is dropped.
#[derive(Clone)]
pub struct PreSharedKey(pub(super) [u8; 32]);

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
