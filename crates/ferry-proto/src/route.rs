//! What a load balancer in front of a fleet of Ferry servers reads from a
//! datagram to choose the server, without keeping any state.
//!
//! Every packet a client sends after the handshake carries the id its
//! server issued, and that id carries the server's [`ServerId`]: the balancer
//! sends the packet to that server whatever address it comes from. A Connect
//! carries the client's own id, which names no server of this fleet: the
//! balancer hashes it, and the same Connect sent again lands on the same
//! server.

use crate::id::{SessionId, UNROUTABLE_ROTATION};
use crate::wire::packet::{FIXED_HEADER_LEN, PacketKind, VERSION};

/// Where a load balancer sends one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route<'a> {
    /// To the server whose id this is, under this config rotation code; a
    /// balancer that knows no such server hashes `hash` instead (the server
    /// left the fleet: whichever server gets the packet drops it, and the
    /// client's session ends by its keep-alive).
    Server {
        /// The config rotation code (0, 1 or 2) the id was issued under.
        rotation: u8,
        /// The server id's bytes.
        id: &'a [u8],
        /// What to hash if no server has this id.
        hash: u64,
    },
    /// To the server that `hash` picks among those in service (a consistent
    /// hash keeps the choice when servers come and go): a Connect, or an id
    /// without a server id.
    Hash(u64),
    /// Not a Ferry session packet (too short, another version): drop it.
    Drop,
}

/// Reads the route of `datagram` for a balancer that knows, for each config
/// rotation code 0, 1 and 2, the length of the server ids issued under it
/// (`None`: no servers use that code).
///
/// ```
/// use ferry_proto::{Route, route};
///
/// // version 1, kind Data, session id 0x41 0xab 0xcd ..., packet number 0
/// let packet = [1, 3, 0x41, 0xab, 0xcd, 5, 6, 7, 8, 9, 0];
/// assert!(matches!(
///     route(&packet, [None, Some(2), None]),
///     Route::Server { rotation: 1, id: [0xab, 0xcd], .. }
/// ));
/// ```
pub fn route(datagram: &[u8], server_id_lens: [Option<usize>; 3]) -> Route<'_> {
    if datagram.len() < FIXED_HEADER_LEN || datagram[0] != VERSION {
        return Route::Drop;
    }
    let Ok(id) = <[u8; 8]>::try_from(&datagram[2..FIXED_HEADER_LEN]) else {
        return Route::Drop;
    };
    let hash = SessionId(id).to_u64();
    if datagram[1] == PacketKind::Connect as u8 {
        return Route::Hash(hash);
    }
    let rotation = id[0] >> 6;
    if rotation == UNROUTABLE_ROTATION {
        return Route::Hash(hash);
    }
    match server_id_lens[usize::from(rotation)] {
        Some(len) if (1..=crate::MAX_SERVER_ID_LEN).contains(&len) => Route::Server {
            rotation,
            id: &datagram[3..3 + len],
            hash,
        },
        _ => Route::Hash(hash),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(kind: u8, id: [u8; 8]) -> Vec<u8> {
        let mut p = vec![VERSION, kind];
        p.extend_from_slice(&id);
        p.push(0);
        p
    }

    #[test]
    fn a_connect_is_hashed_even_when_its_id_looks_routable() {
        let id = [0x40, 1, 2, 3, 4, 5, 6, 7];
        let p = packet(PacketKind::Connect as u8, id);
        assert_eq!(
            route(&p, [None, Some(2), None]),
            Route::Hash(u64::from_be_bytes(id))
        );
        let p = packet(PacketKind::Data as u8, id);
        assert!(matches!(
            route(&p, [None, Some(2), None]),
            Route::Server {
                rotation: 1,
                id: [1, 2],
                ..
            }
        ));
    }

    #[test]
    fn unknown_rotations_and_unroutable_ids_are_hashed() {
        for first in [0x00, 0x80, 0xc0, 0xff] {
            let p = packet(PacketKind::Ack as u8, [first, 1, 2, 3, 4, 5, 6, 7]);
            assert!(matches!(route(&p, [None, Some(2), None]), Route::Hash(_)));
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_route_without_panicking(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..32),
            lens in proptest::prelude::any::<[Option<u8>; 3]>(),
        ) {
            let _ = route(&bytes, lens.map(|l| l.map(usize::from)));
        }

        #[test]
        fn every_id_a_server_issues_routes_to_it(
            seed in proptest::prelude::any::<u64>(),
            rotation in 0u8..3,
            server in proptest::collection::vec(proptest::prelude::any::<u8>(), 1..=4),
            kind in 2u8..=0x0f,
        ) {
            use rand::SeedableRng;
            let s = crate::ServerId::new(rotation, &server).unwrap();
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let id = crate::id::issue(&mut rng, Some(&s), crate::Shard::default());
            let mut lens = [None; 3];
            lens[usize::from(rotation)] = Some(server.len());
            let datagram = packet(kind, id.0);
            let r = route(&datagram, lens);
            let routed = matches!(r, Route::Server { rotation: r, id, .. } if r == rotation && id == &server[..]);
            proptest::prop_assert!(routed, "{:?}", r);
        }
    }

    #[test]
    fn short_or_foreign_datagrams_are_dropped() {
        assert_eq!(route(&[], [Some(1); 3]), Route::Drop);
        assert_eq!(route(&[VERSION, 3, 0], [Some(1); 3]), Route::Drop);
        let mut p = packet(3, [0; 8]);
        p[0] = VERSION + 1;
        assert_eq!(route(&p, [Some(1); 3]), Route::Drop);
    }
}
