//! Session identifiers, and the routing information a listener writes into
//! the ones it issues.

use std::fmt;

use rand::RngCore;

use crate::error::ConfigError;

/// Identifies one session on one of its endpoints.
///
/// Eight bytes carried in every packet header: each side routes the datagrams
/// it receives by its own id for the session, and writes the peer's id into
/// the packets it sends. The starter picks its id at random and the Connect
/// carries it; the listener answers with the id it issued in the ConnectAck,
/// and the starter's later packets carry that one. A listener issues the
/// starter's id back unless it writes routing information into its ids (a
/// [`ServerId`](crate::ServerId) for a load balancer, or the shard of an
/// endpoint spread over several cores), so by default both sides name a
/// session alike.
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

/// The most bytes a [`ServerId`] may have: the rest of an id (at least three
/// bytes and six bits) stays random.
pub const MAX_SERVER_ID_LEN: usize = 4;

/// The value of an id's two top bits that says it carries no server id (a
/// starter's id, or a listener's without one): a load balancer hashes it.
pub(crate) const UNROUTABLE_ROTATION: u8 = 0b11;

/// Which server of a fleet issued a session id, written in clear into the
/// ids a listener issues so that a stateless load balancer can send every
/// packet of the session to it, wherever the client sends from.
///
/// The layout follows QUIC-LB's unencrypted connection ids: the top two bits
/// of byte 0 hold a *config rotation* code (0, 1 or 2; 3 means no server id),
/// bytes `1..1 + len` the server id, and the rest is random (the last byte also
/// names the endpoint's shard). The rotation code lets a fleet change its id
/// length without stranding sessions: a balancer knows the length that goes
/// with each code. See [`route`](crate::route) for the balancer's side.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ServerId {
    rotation: u8,
    len: u8,
    bytes: [u8; MAX_SERVER_ID_LEN],
}

impl ServerId {
    /// A server id of 1 to [`MAX_SERVER_ID_LEN`] bytes under config rotation
    /// code `rotation` (0, 1 or 2).
    pub fn new(rotation: u8, id: &[u8]) -> Result<Self, ConfigError> {
        if rotation >= UNROUTABLE_ROTATION {
            return Err(ConfigError::TooLarge {
                field: "server_id rotation",
                value: rotation.into(),
                max: (UNROUTABLE_ROTATION - 1).into(),
            });
        }
        if id.is_empty() {
            return Err(ConfigError::Zero("server_id length"));
        }
        if id.len() > MAX_SERVER_ID_LEN {
            return Err(ConfigError::TooLarge {
                field: "server_id length",
                value: id.len() as u64,
                max: MAX_SERVER_ID_LEN as u64,
            });
        }
        let mut bytes = [0; MAX_SERVER_ID_LEN];
        bytes[..id.len()].copy_from_slice(id);
        Ok(Self {
            rotation,
            len: id.len() as u8,
            bytes,
        })
    }

    /// The config rotation code (0, 1 or 2).
    pub fn rotation(&self) -> u8 {
        self.rotation
    }

    /// The server id's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Whether `id` carries this server id.
    pub fn issued(&self, id: SessionId) -> bool {
        id.0[0] >> 6 == self.rotation && &id.0[1..1 + usize::from(self.len)] == self.as_bytes()
    }
}

impl fmt::Debug for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ServerId({self})")
    }
}

/// `rotation:hex`, as [`FromStr`](std::str::FromStr) reads it.
impl fmt::Display for ServerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.rotation)?;
        for b in self.as_bytes() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Reads `[rotation:]hex`: `0a01` (rotation 0) or `1:0a01`.
impl std::str::FromStr for ServerId {
    type Err = ConfigError;

    fn from_str(text: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::BadServerId(text.to_owned());
        let (rotation, hex) = match text.split_once(':') {
            Some((r, hex)) => (r.parse::<u8>().map_err(|_| bad())?, hex),
            None => (0, text),
        };
        if hex.is_empty() || hex.len() % 2 != 0 || !hex.is_ascii() {
            return Err(bad());
        }
        let bytes = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad()))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(rotation, &bytes)
    }
}

/// One endpoint's place among the shards of an endpoint spread over several
/// cores: every id it issues names it, so that a datagram that reached
/// another shard's socket (after the peer's address changed) is handed over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Shard {
    /// This shard's index, below `count`.
    pub index: u8,
    /// How many shards there are, 1 to [`MAX_SHARDS`].
    pub count: u8,
}

/// The most shards an endpoint may be spread over.
pub const MAX_SHARDS: u8 = 64;

impl Default for Shard {
    fn default() -> Self {
        Self { index: 0, count: 1 }
    }
}

impl Shard {
    /// The shard that issued `id`, among `count` (the id's last byte).
    pub fn of(id: SessionId, count: u8) -> u8 {
        id.0[7] % count.max(1)
    }

    /// Which of `count` shards holds the session `datagram` is for, as read
    /// from its header; `None` for a Connect (the shard whose socket it
    /// reached takes it, and its repeats reach the same socket) and for bytes
    /// too short to hold a header (whichever shard got them drops them).
    pub fn of_datagram(datagram: &[u8], count: u8) -> Option<u8> {
        use crate::wire::packet::{FIXED_HEADER_LEN, PacketKind};
        if datagram.len() < FIXED_HEADER_LEN || datagram[1] == PacketKind::Connect as u8 {
            return None;
        }
        Some(datagram[FIXED_HEADER_LEN - 1] % count.max(1))
    }
}

/// A fresh id for a session of this endpoint: random, with `server` in its
/// first bytes (or the unroutable rotation code) and `shard` in its last.
pub(crate) fn issue(rng: &mut impl RngCore, server: Option<&ServerId>, shard: Shard) -> SessionId {
    let mut id = [0; 8];
    rng.fill_bytes(&mut id);
    match server {
        Some(s) => {
            id[0] = (s.rotation << 6) | (id[0] & 0x3f);
            id[1..1 + usize::from(s.len)].copy_from_slice(s.as_bytes());
        }
        None => id[0] |= UNROUTABLE_ROTATION << 6,
    }
    if shard.count > 1 {
        // A multiple of `count` plus the index, below 256.
        let slots = 256 / u16::from(shard.count);
        let base = u16::from(id[7]) % slots * u16::from(shard.count);
        id[7] = (base + u16::from(shard.index)) as u8;
    }
    SessionId(id)
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

    use rand::SeedableRng;

    #[test]
    fn issued_ids_carry_the_server_id_and_the_shard() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let server = ServerId::new(2, &[0xab, 0xcd]).unwrap();
        for count in [1, 2, 3, 7, 64] {
            for index in 0..count {
                let shard = Shard { index, count };
                for _ in 0..50 {
                    let id = issue(&mut rng, Some(&server), shard);
                    assert!(server.issued(id));
                    assert_eq!(Shard::of(id, count), index);
                    let plain = issue(&mut rng, None, shard);
                    assert_eq!(plain.0[0] >> 6, UNROUTABLE_ROTATION);
                    assert!(!server.issued(plain));
                    assert_eq!(Shard::of(plain, count), index);
                }
            }
        }
    }

    #[test]
    fn server_ids_outside_the_layout_are_refused() {
        assert!(ServerId::new(3, &[1]).is_err());
        assert!(ServerId::new(0, &[]).is_err());
        assert!(ServerId::new(0, &[1; MAX_SERVER_ID_LEN + 1]).is_err());
        let s = ServerId::new(1, &[1, 2, 3, 4]).unwrap();
        assert_eq!((s.rotation(), s.as_bytes()), (1, &[1, 2, 3, 4][..]));
        assert_eq!(format!("{s:?}"), "ServerId(1:01020304)");
        assert_eq!("1:01020304".parse(), Ok(s));
        assert_eq!("0a01".parse(), ServerId::new(0, &[0x0a, 0x01]));
        for bad in ["", "1:", "0a0", "zz", "3:01", "x:01", "0102030405", "é1"] {
            assert!(bad.parse::<ServerId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn display_is_hex() {
        let id = SessionId::from(0x0123_4567_89ab_cdef);
        assert_eq!(id.to_string(), "0123456789abcdef");
        assert_eq!(id.to_u64(), 0x0123_4567_89ab_cdef);
    }
}
