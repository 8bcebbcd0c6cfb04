//! Key updates in a session: when this side moves its sending keys to the
//! next generation, when it follows the peer's move, and when it forgets
//! the peer's previous keys. The keys and the wire bit are in
//! [`crate::crypto::update`] and [`crate::wire::protection`].

use std::time::Instant;

use tracing::debug;

use crate::crypto::RecvGeneration;
use crate::id::Side;
use crate::wire::packet::{FEATURE_KEY_UPDATE, Header, PacketKind};
use crate::wire::protection::Protection;

use super::timer::Timer;
use super::{SessionCore, own_params};

/// The previous receive keys are kept this many retransmission timeouts
/// after receiving moved on (QUIC keeps them three probe timeouts).
const PREVIOUS_KEYS_RTOS: u32 = 3;

/// A session's key update bookkeeping (the keys themselves are in its
/// [`Protection`]).
#[derive(Debug, Default)]
pub(super) struct KeyUpdate {
    /// The features the peer announced in the handshake. Without
    /// [`FEATURE_KEY_UPDATE`] this side never updates (the peer would drop
    /// everything sealed under keys it cannot derive).
    peer_features: u64,
    /// The number of the first packet sealed under the current sending
    /// generation: once the peer acknowledges it or a later one, it holds
    /// the generation's keys, and the next update may come.
    send_start: u64,
    /// When the current sending generation began (its first packet, or the
    /// handshake's).
    send_since: Option<Instant>,
}

impl SessionCore {
    /// Takes in the peer's handshake features.
    pub(super) fn on_peer_features(&mut self, features: u64) {
        self.key_update.peer_features = features;
    }

    /// The features this side's handshake packets announce: all it
    /// supports in a Connect (none without a key: key updates, the only
    /// one, need keys); in a ConnectAck, those of the starter's it
    /// supports too, so that a starter from before a feature gets a
    /// ConnectAck it reads as before (the listener's half of the handshake,
    /// in the endpoint, answers the same).
    pub(super) fn own_features(&self) -> u64 {
        let own = own_params(&self.config).features;
        match self.side {
            Side::Starter => own,
            Side::Listener => own & self.key_update.peer_features,
        }
    }

    /// Before a packet is sealed: moves sending to the next generation if
    /// the current one sealed `Config::key_update_packets` packets or
    /// lasted `Config::key_update_interval`, the peer follows updates, and
    /// it acknowledged a packet of the current generation.
    pub(super) fn maybe_update_keys(&mut self, now: Instant) {
        let Protection::Aead(keys) = &mut self.protection else {
            return;
        };
        let ku = &mut self.key_update;
        if ku.peer_features & FEATURE_KEY_UPDATE == 0 {
            return;
        }
        let since = *ku.send_since.get_or_insert(now);
        let sealed = self.next_pn.saturating_sub(ku.send_start);
        let due = sealed >= self.config.key_update_packets
            || self
                .config
                .key_update_interval
                .is_some_and(|interval| now.saturating_duration_since(since) >= interval);
        // The peer holds the current generation's keys once it acknowledged
        // one of its packets: only then may the next come.
        let confirmed = self.largest_acked.is_some_and(|l| l >= ku.send_start);
        if !due || !confirmed {
            return;
        }
        keys.update_send();
        ku.send_start = self.next_pn;
        ku.send_since = Some(now);
        self.stats.key_updates_sent += 1;
        debug!(
            session = %self.id,
            generation = keys.send_generation(),
            first_packet = self.next_pn,
            sealed,
            "sending keys updated"
        );
    }

    /// After a packet under the session's keys opened: if it was sealed
    /// under the peer's next generation, receiving moves to it, and the
    /// previous keys are forgotten a few retransmission timeouts later.
    pub(super) fn on_key_phase(&mut self, now: Instant, header: &Header) {
        if matches!(
            header.kind,
            PacketKind::Connect | PacketKind::ConnectAck | PacketKind::Retry
        ) {
            return;
        }
        let next = matches!(&self.protection, Protection::Aead(keys)
            if keys.recv_generation_for(header.number, header.key_phase)
                == Some(RecvGeneration::Next));
        if !next {
            return;
        }
        let keep = self.rto() * PREVIOUS_KEYS_RTOS;
        let Protection::Aead(keys) = &mut self.protection else {
            return;
        };
        keys.update_recv(header.number);
        self.stats.key_updates_received += 1;
        debug!(
            session = %self.id,
            generation = keys.recv_generation(),
            first_packet = header.number,
            ?keep,
            "receiving keys updated"
        );
        self.timers.set(Timer::KeyDiscard, now + keep);
    }

    /// The window for the peer's late packets under its previous keys is
    /// over: they are wiped.
    pub(super) fn discard_previous_keys(&mut self) {
        if let Protection::Aead(keys) = &mut self.protection
            && keys.has_previous()
        {
            keys.discard_previous();
            debug!(session = %self.id, "previous receiving keys discarded");
        }
    }
}
