//! The starter's side of a resumption ticket: what it keeps (and may store
//! on disk) to open a later session with the same listener in a shortened
//! handshake ([`Endpoint::connect_resumed`](crate::Endpoint::connect_resumed)).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use thiserror::Error;
use zeroize::Zeroize;

use crate::crypto::ticket::SEALED_LEN;
use crate::crypto::{PublicKey, TicketMode};

/// A resumption ticket a listener gave this endpoint's session
/// ([`Session::ticket`](crate::Session::ticket), announced by
/// [`Event::Ticket`](crate::Event::Ticket)): a later session with the same
/// listener opens with it in a shortened handshake, and may carry early
/// data ([`allows_early_data`](Self::allows_early_data)).
///
/// A ticket is good once: the listener refuses it the second time (the
/// session then falls back to a full handshake), and gives every resumed
/// session a fresh one. It holds the secret of the resumed handshake: keep
/// its [`to_bytes`](Self::to_bytes) form as you would keep a key.
#[derive(Clone, PartialEq, Eq)]
pub struct Ticket {
    pub(crate) listener: SocketAddr,
    pub(crate) expires: u64,
    pub(crate) mode: TicketMode,
    pub(crate) early_data: bool,
    pub(crate) listener_key: Option<PublicKey>,
    pub(crate) secret: [u8; 32],
    pub(crate) sealed: Bytes,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Not the secret.
        f.debug_struct("Ticket")
            .field("listener", &self.listener)
            .field("expires", &self.expires)
            .field("mode", &self.mode)
            .field("early_data", &self.early_data)
            .finish_non_exhaustive()
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

/// A stored ticket could not be read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum TicketFormatError {
    /// The bytes are not a ticket written by [`Ticket::to_bytes`] of this
    /// version: cut short, too long, or of another layout.
    #[error("not a stored Ferry resumption ticket (wrong length, version or layout)")]
    Malformed,
}

const FORMAT: &[u8; 3] = b"FT1";

impl Ticket {
    /// The listener's address the ticket came from, where a resumed session
    /// goes.
    pub fn listener(&self) -> SocketAddr {
        self.listener
    }

    /// When the listener stops taking the ticket (by this endpoint's clock
    /// when the ticket arrived; the listener decides by its own).
    pub fn expires(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.expires)
    }

    /// Whether the ticket is past its expiry at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        now >= self.expires()
    }

    /// How the session it came from was keyed; a resumed one is keyed alike.
    pub fn mode(&self) -> TicketMode {
        self.mode
    }

    /// Whether the listener allows early data on a session resumed with it
    /// (whether it delivers it is the listener's choice, made again when the
    /// ticket is used: see [`Config::accept_early_data`](crate::Config::accept_early_data)).
    pub fn allows_early_data(&self) -> bool {
        self.early_data
    }

    /// The listener's public key (identity modes).
    pub fn listener_key(&self) -> Option<PublicKey> {
        self.listener_key
    }

    /// The ticket as bytes, to store: read back with
    /// [`from_bytes`](Self::from_bytes). They hold the ticket's secret.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(3 + 19 + 8 + 2 + 32 + 32 + SEALED_LEN);
        out.extend_from_slice(FORMAT);
        match self.listener.ip() {
            IpAddr::V4(ip) => {
                out.push(4);
                out.extend_from_slice(&ip.octets());
            }
            IpAddr::V6(ip) => {
                out.push(6);
                out.extend_from_slice(&ip.octets());
            }
        }
        out.extend_from_slice(&self.listener.port().to_be_bytes());
        out.extend_from_slice(&self.expires.to_be_bytes());
        out.push(self.mode as u8);
        out.push(u8::from(self.early_data));
        if let Some(key) = &self.listener_key {
            out.extend_from_slice(key.as_bytes());
        }
        out.extend_from_slice(&self.secret);
        out.extend_from_slice(&self.sealed);
        out
    }

    /// Reads a ticket [`to_bytes`](Self::to_bytes) wrote. Never panics,
    /// whatever the bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TicketFormatError> {
        let mut r = bytes
            .strip_prefix(FORMAT)
            .ok_or(TicketFormatError::Malformed)?;
        let mut take = |n: usize| -> Result<&[u8], TicketFormatError> {
            let (head, tail) = r.split_at_checked(n).ok_or(TicketFormatError::Malformed)?;
            r = tail;
            Ok(head)
        };
        let ip = match take(1)?[0] {
            4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(take(4)?).expect("4"))),
            6 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(take(16)?).expect("16"))),
            _ => return Err(TicketFormatError::Malformed),
        };
        let port = u16::from_be_bytes(take(2)?.try_into().expect("2"));
        let expires = u64::from_be_bytes(take(8)?.try_into().expect("8"));
        let mode = TicketMode::from_u8(take(1)?[0]).ok_or(TicketFormatError::Malformed)?;
        let early_data = match take(1)?[0] {
            0 => false,
            1 => true,
            _ => return Err(TicketFormatError::Malformed),
        };
        let listener_key = if mode.has_identity() {
            Some(PublicKey::from_bytes(take(32)?.try_into().expect("32")))
        } else {
            None
        };
        let secret = take(32)?.try_into().expect("32");
        let sealed = Bytes::copy_from_slice(take(SEALED_LEN)?);
        if !r.is_empty() {
            return Err(TicketFormatError::Malformed);
        }
        Ok(Self {
            listener: SocketAddr::new(ip, port),
            expires,
            mode,
            early_data,
            listener_key,
            secret,
            sealed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ticket(listener: &str, mode: TicketMode) -> Ticket {
        Ticket {
            listener: listener.parse().unwrap(),
            expires: 1_800_000_000,
            mode,
            early_data: true,
            listener_key: mode.has_identity().then(|| PublicKey::from_bytes([7; 32])),
            secret: [3; 32],
            sealed: Bytes::from(vec![0xab; SEALED_LEN]),
        }
    }

    #[test]
    fn a_ticket_reads_back_from_its_bytes() {
        for (addr, mode) in [
            ("192.0.2.1:4433", TicketMode::Clear),
            ("[2001:db8::1]:9", TicketMode::Identity),
            ("10.0.0.1:1", TicketMode::IdentityPsk),
            ("10.0.0.1:2", TicketMode::Psk),
        ] {
            let t = ticket(addr, mode);
            let bytes = t.to_bytes();
            assert_eq!(Ticket::from_bytes(&bytes), Ok(t.clone()));
            for cut in 0..bytes.len() {
                assert!(Ticket::from_bytes(&bytes[..cut]).is_err(), "cut at {cut}");
            }
            let mut longer = bytes.clone();
            longer.push(0);
            assert!(Ticket::from_bytes(&longer).is_err());
        }
    }

    #[test]
    fn a_tickets_expiry_is_a_wall_clock_time() {
        let t = ticket("192.0.2.1:4433", TicketMode::Psk);
        assert_eq!(t.expires(), UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        assert!(!t.is_expired(UNIX_EPOCH + Duration::from_secs(1_799_999_999)));
        assert!(t.is_expired(t.expires()));
    }
}
