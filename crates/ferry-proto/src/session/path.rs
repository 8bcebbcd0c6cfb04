//! Migration: a peer's authenticated packets from a new address, the path
//! challenge that checks it, and where the next datagram goes.

use std::net::SocketAddr;
use std::time::Instant;

use crate::congestion::Pacer;
use crate::wire::packet::PacketKind;
use crate::wire::protection::Protection;

use super::mtu::Confirmed;
use super::{MAX_PATH_CHALLENGES, MtuDiscovery, SessionCore, State};

/// A new address the peer's authenticated packets came from, being checked.
#[derive(Debug)]
pub(super) struct PathCheck {
    pub(super) addr: SocketAddr,
    pub(super) token: u64,
    pub(super) due: bool,
    pub(super) tries: u32,
    pub(super) sent_at: Option<Instant>,
}

impl SessionCore {
    /// A path whose capacity is unknown: a fresh controller and pacer, and
    /// its MTU searched again from the base. (Called by the handshake, with
    /// `mtu` the base it agreed, and by a migration.)
    pub(super) fn new_path(&mut self) {
        if self.state == State::Established {
            // A move: what the old path carried says nothing of the new one.
            self.mtu = self.pmtu.base();
        }
        self.pmtu = MtuDiscovery::new(self.mtu, self.config.max_mtu);
        self.cc = self.config.congestion.build(self.mtu, self.id.to_u64());
        self.pacer = Pacer::new(self.mtu);
    }

    /// Path MTU probe `pn` was acknowledged: data packets use the size it
    /// confirmed. The congestion controller counts some of its quantities
    /// (initial and least windows, growth steps) in packets of the size it
    /// was built for: it is built again for the first larger size confirmed
    /// on a path, which comes within the first round trips, when it has
    /// learned little; later sizes (a further step of the search, a search
    /// ten minutes on) keep its state.
    pub(super) fn on_probe_acked(&mut self, now: Instant, pn: u64) {
        match self.pmtu.on_probe_acked(now, pn) {
            Confirmed::Nothing => return,
            Confirmed::Grew => {}
            Confirmed::FirstGrowth => {
                let mss = self.pmtu.current();
                self.cc = self.config.congestion.build(mss, self.id.to_u64());
                self.pacer = Pacer::new(mss);
            }
        }
        self.mtu = self.pmtu.current();
    }

    /// Where the datagram [`poll_transmit_append`](Self::poll_transmit_append) just wrote
    /// goes: a path challenge or response may go elsewhere than `remote`.
    pub(crate) fn take_destination(&mut self) -> SocketAddr {
        self.destination.take().unwrap_or(self.remote)
    }

    /// Whether a packet of `kind` from an address other than the peer's may
    /// be looked at: only an encrypted, established session can move, and only
    /// for a packet that then proves its key.
    pub(crate) fn may_migrate(&self, kind: PacketKind) -> bool {
        matches!(self.protection, Protection::Aead(_))
            && self.state == State::Established
            && !matches!(kind, PacketKind::Connect | PacketKind::ConnectAck)
    }

    /// Starts (or repeats, at most once per RTO) a challenge to `addr`.
    pub(super) fn check_path(&mut self, now: Instant, addr: SocketAddr, token: u64) {
        let rto = self.rto();
        match &mut self.path {
            Some(check) if check.addr == addr => {
                let waited = check.sent_at.is_none_or(|t| now >= t + rto);
                if check.tries < MAX_PATH_CHALLENGES && waited {
                    check.due = true;
                }
            }
            _ => {
                self.path = Some(PathCheck {
                    addr,
                    token,
                    due: true,
                    tries: 0,
                    sent_at: None,
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::session::test_pair::Pair;

    #[test]
    fn a_clear_session_never_moves_to_another_address() {
        let pair = Pair::established(Config::default());
        for kind in [PacketKind::Data, PacketKind::Ack, PacketKind::Ping] {
            assert!(!pair.listener.may_migrate(kind), "{kind:?}");
        }
    }

    #[test]
    fn datagrams_go_to_the_peer_unless_a_path_check_says_otherwise() {
        let mut pair = Pair::established(Config::default());
        let remote = pair.listener.remote();
        assert_eq!(pair.listener.take_destination(), remote);
        let elsewhere: SocketAddr = "192.0.2.9:9".parse().unwrap();
        let now = pair.now;
        pair.listener.check_path(now, elsewhere, 42);
        let mut buf = Vec::new();
        pair.listener
            .poll_transmit(now, &mut buf)
            .expect("a path challenge");
        assert_eq!(pair.listener.take_destination(), elsewhere);
        assert_eq!(
            pair.listener.remote(),
            remote,
            "not moved before the answer"
        );
    }
}
