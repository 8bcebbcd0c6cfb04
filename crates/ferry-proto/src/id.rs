//! Session identifiers.

use std::fmt;

/// Identifies one session on both of its endpoints.
///
/// Eight random bytes chosen by the starter and carried in every packet header.
/// Both sides use the same value; the listener routes incoming datagrams by it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub [u8; 8]);

impl SessionId {
    /// The identifier as a big-endian integer, handy for logs and maps.
    pub fn to_u64(self) -> u64 {
        u64::from_be_bytes(self.0)
    }
}

impl From<u64> for SessionId {
    fn from(value: u64) -> Self {
        Self(value.to_be_bytes())
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.to_u64())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({self})")
    }
}

/// Which role a session's local endpoint played in the handshake.
///
/// After the handshake both sides behave the same; the side only says who spoke first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// This endpoint sent the connect packet.
    Starter,
    /// This endpoint accepted a connect packet.
    Listener,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_hex() {
        let id = SessionId::from(0x0123_4567_89ab_cdef);
        assert_eq!(id.to_string(), "0123456789abcdef");
        assert_eq!(id.to_u64(), 0x0123_4567_89ab_cdef);
    }
}
