//! A stateless UDP load balancer in front of several nodes: one public
//! address, each datagram sent to a backend chosen from its bytes alone, as
//! a fleet of Ferry servers behind one address sees it.

use std::net::SocketAddr;

use ferry_proto::{Route, ServerId, route};

use crate::network::NodeId;

/// Index of a load balancer in a [`Network`](crate::Network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BalancerId(pub usize);

/// How a load balancer ([`Network::add_balancer`](crate::Network::add_balancer)) picks the backend of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BalancePolicy {
    /// By the session id, as [`ferry_proto::route`] reads it: to the server
    /// whose [`ServerId`] the id carries, else by a hash of the id. A
    /// session stays on its server when the client's address changes.
    SessionId,
    /// By a hash of the source address, as most balancers do by default: a
    /// client whose address changes lands on another server.
    SourceAddress,
}

/// One backend of a balancer.
#[derive(Debug, Clone)]
pub(crate) struct Backend {
    pub(crate) node: NodeId,
    pub(crate) server_id: Option<ServerId>,
    pub(crate) in_service: bool,
}

/// A load balancer: its public address, its backends and its policy.
#[derive(Debug)]
pub(crate) struct Balancer {
    pub(crate) addr: SocketAddr,
    pub(crate) policy: BalancePolicy,
    pub(crate) backends: Vec<Backend>,
}

/// A 64-bit mix (SplitMix64's finaliser): spreads nearby keys apart.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

impl Balancer {
    /// The server id lengths the balancer knows per config rotation code.
    fn lens(&self) -> [Option<usize>; 3] {
        let mut lens = [None; 3];
        for b in &self.backends {
            if let Some(s) = &b.server_id {
                lens[usize::from(s.rotation())] = Some(s.as_bytes().len());
            }
        }
        lens
    }

    /// The backend in service that rendezvous hashing gives `key`: the one
    /// whose mix with the key is largest, so that a backend leaving moves
    /// only its own keys.
    fn by_hash(&self, key: u64) -> Option<NodeId> {
        self.backends
            .iter()
            .filter(|b| b.in_service)
            .max_by_key(|b| mix(key ^ mix(b.node.0 as u64 + 1)))
            .map(|b| b.node)
    }

    /// The backend `datagram` from `source` goes to, if any is in service.
    pub(crate) fn pick(&self, source: SocketAddr, datagram: &[u8]) -> Option<NodeId> {
        match self.policy {
            BalancePolicy::SourceAddress => {
                let ip = match source.ip() {
                    std::net::IpAddr::V4(ip) => u64::from(u32::from(ip)),
                    std::net::IpAddr::V6(ip) => u128::from(ip) as u64,
                };
                self.by_hash(ip << 16 | u64::from(source.port()))
            }
            BalancePolicy::SessionId => match route(datagram, self.lens()) {
                Route::Drop => None,
                Route::Hash(h) => self.by_hash(h),
                Route::Server { rotation, id, hash } => self
                    .backends
                    .iter()
                    .find(|b| {
                        b.in_service
                            && b.server_id
                                .is_some_and(|s| s.rotation() == rotation && s.as_bytes() == id)
                    })
                    .map(|b| b.node)
                    .or_else(|| self.by_hash(hash)),
            },
        }
    }
}
