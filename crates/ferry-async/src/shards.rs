//! An endpoint spread over shards: what a shard's driver does for the
//! others, and what the endpoint's handle adds up over them.
//!
//! With [`EndpointConfig::shards`](crate::EndpointConfig::shards) above one,
//! each shard has its own socket on the shared address (`SO_REUSEPORT`), its
//! own [`ferry_proto::Endpoint`] (made with
//! [`set_shard`](ferry_proto::Endpoint::set_shard), so that every session id
//! it issues names it), its own lock ([`Shared`]) and its own driver task.
//! The kernel picks the socket a datagram reaches by a hash of its source
//! and destination, which the shards cannot steer; so a driver reads the
//! owning shard from each datagram's header
//! ([`Shard::of_datagram`]) and hands the datagrams of other shards'
//! sessions over: a copy of each is pushed into the owner's bounded inbox
//! under the owner's lock (never holding its own), and the owner's driver is
//! woken; the owner feeds them to its endpoint in its receive section.
//! A Connect belongs to the shard whose socket it reached.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use ferry_proto::{SessionId, Shard};
use tracing::{debug, trace};

use crate::shared::{Shared, State};

/// Datagrams one shard's inbox holds for its driver, at most; more are
/// dropped (and counted in [`ShardStats::inbox_dropped`]): the protocol
/// repairs them as any loss.
pub(crate) const INBOX_CAPACITY: usize = 1024;

/// How one shard of an endpoint is doing, from
/// [`Endpoint::shard_stats`](crate::Endpoint::shard_stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShardStats {
    /// Sessions open on this shard (see
    /// [`Endpoint::sessions`](crate::Endpoint::sessions)).
    pub sessions: usize,
    /// Datagrams for this shard's sessions that reached another shard's
    /// socket and were handed over to this shard: replies to sessions this
    /// side started (the kernel's hash, not the session, picks the socket),
    /// and datagrams of peers whose address changed.
    pub handed_over: u64,
    /// Datagrams handed over to this shard but dropped because its inbox
    /// was full (its driver fell behind); the protocol retransmits them.
    pub inbox_dropped: u64,
}

/// What a shard's driver needs when the endpoint has several shards: where
/// to hand the datagrams of other shards' sessions.
#[derive(Debug)]
pub(crate) struct HandOver {
    /// This driver's shard.
    index: u8,
    /// Every shard of the endpoint, by index.
    shards: Arc<[Arc<Shared>]>,
    /// Datagrams of the last receive batch for other shards, with their
    /// owner, waiting to be handed over.
    foreign: Vec<(u8, SocketAddr, BytesMut)>,
}

impl HandOver {
    pub(crate) fn new(index: u8, shards: Arc<[Arc<Shared>]>) -> Self {
        Self {
            index,
            shards,
            foreign: Vec::new(),
        }
    }

    fn count(&self) -> u8 {
        self.shards.len() as u8
    }

    /// Hands the datagrams of `received` for this shard's sessions (and
    /// Connects) to its endpoint under its lock, then those of other shards
    /// to their owners, one owner's lock at a time.
    pub(crate) fn receive(
        &mut self,
        now: Instant,
        received: &mut Vec<(SocketAddr, BytesMut)>,
        shared: &Shared,
    ) {
        let count = self.count();
        {
            let mut state = shared.lock();
            for (from, datagram) in received.drain(..) {
                match Shard::of_datagram(&datagram, count) {
                    Some(owner) if owner != self.index => {
                        self.foreign.push((owner, from, datagram));
                    }
                    _ => state.endpoint.handle_datagram(now, from, datagram),
                }
            }
        }
        if !self.foreign.is_empty() {
            self.hand_over();
        }
    }

    /// Pushes a copy of each foreign datagram into its owner's inbox (a copy,
    /// so that an owner that falls behind holds only its own datagrams, not
    /// this driver's receive buffers), and wakes the owner's driver.
    fn hand_over(&mut self) {
        // Copied outside any lock.
        for (_, _, datagram) in &mut self.foreign {
            *datagram = BytesMut::from(&datagram[..]);
        }
        self.foreign.sort_by_key(|&(owner, ..)| owner);
        let from_shard = self.index;
        let mut items = self.foreign.drain(..).peekable();
        while let Some(&(owner, ..)) = items.peek() {
            let target = &self.shards[usize::from(owner)];
            let mut state = target.lock();
            let (mut handed, mut dropped) = (0_u64, 0_u64);
            while let Some((_, from, datagram)) = items.next_if(|&(o, ..)| o == owner) {
                if state.stopped || state.inbox.len() >= INBOX_CAPACITY {
                    dropped += 1;
                } else {
                    state.inbox.push_back((from, datagram));
                    handed += 1;
                }
            }
            state.handed_over += handed;
            if dropped > 0 && !state.stopped {
                state.inbox_dropped += dropped;
                debug!(
                    shard = owner,
                    dropped, "the shard's inbox is full: datagrams handed to it were dropped"
                );
            }
            if handed > 0 {
                trace!(
                    from_shard,
                    to_shard = owner,
                    handed,
                    "datagrams handed over"
                );
                target.mark_handed();
                state.wake_driver();
            }
        }
    }

    /// Feeds the datagrams other shards handed to this one to its endpoint;
    /// returns whether there were any. Takes the lock only when some came.
    pub(crate) fn drain_inbox(shared: &Shared) -> bool {
        if !shared.take_handed() {
            return false;
        }
        let mut state = shared.lock();
        let now = Instant::now();
        let State {
            inbox, endpoint, ..
        } = &mut *state;
        let any = !inbox.is_empty();
        for (from, datagram) in inbox.drain(..) {
            endpoint.handle_datagram(now, from, datagram);
        }
        any
    }

    /// The network reported `ip` unreachable to this shard's socket, which
    /// need not be the socket of the session concerned. As one endpoint
    /// would, the report ends a session only if it is the one session with
    /// that host, over every shard, and still handshaking (see
    /// [`ferry_proto::Endpoint::handle_unreachable`]); then it goes to the
    /// shard holding it. Takes one shard's lock at a time.
    pub(crate) fn unreachable(&self, ip: IpAddr) {
        let mut holder = None;
        for (index, shared) in self.shards.iter().enumerate() {
            let mut state = shared.lock();
            let ids: Vec<SessionId> = state.endpoint.sessions().collect();
            for id in ids {
                let Some(session) = state.endpoint.session(id) else {
                    continue;
                };
                if session.remote_addr().ip() != ip {
                    continue;
                }
                let handshaking = matches!(
                    session.state(),
                    ferry_proto::State::Init | ferry_proto::State::Handshaking
                );
                if !handshaking || holder.is_some() {
                    trace!(%ip, "unreachable report is ambiguous; ignored");
                    return;
                }
                holder = Some(index);
            }
        }
        if let Some(index) = holder {
            let mut state = self.shards[index].lock();
            state.endpoint.handle_unreachable(ip);
            state.wake_driver();
        }
    }
}
