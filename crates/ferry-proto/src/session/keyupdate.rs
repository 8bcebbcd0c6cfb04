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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use rand::SeedableRng;

    use super::*;
    use crate::config::Config;
    use crate::crypto::{Handshake, PreSharedKey};
    use crate::session::test_pair::{Pair, STARTER, drain, open};
    use crate::wire::packet::FEATURES;
    use crate::wire::stream::StreamId;

    /// An established pair whose packets are sealed with the keys of a real
    /// handshake, both sides announcing key updates.
    fn keyed_pair(key_update_packets: u64) -> Pair {
        let mut pair = Pair::established(Config {
            key_update_packets,
            ..Config::default()
        });
        let psk = PreSharedKey::from_bytes([3; 32]);
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(4);
        let mut i = Handshake::initiator(&psk, b"p", &mut rng);
        let mut r = Handshake::responder(&psk, b"p", &mut rng);
        let (mut m1, mut m2) = (Vec::new(), Vec::new());
        i.write_message(b"", &mut m1).unwrap();
        r.read_message(&m1, &mut Vec::new()).unwrap();
        r.write_message(b"", &mut m2).unwrap();
        i.read_message(&m2, &mut Vec::new()).unwrap();
        pair.starter.protection = Protection::Aead(i.into_keys().unwrap());
        pair.listener.protection = Protection::Aead(r.into_keys().unwrap());
        pair.starter.on_peer_features(FEATURES);
        pair.listener.on_peer_features(FEATURES);
        pair
    }

    fn keys(protection: &Protection) -> &crate::crypto::PacketKeys {
        let Protection::Aead(keys) = protection else {
            panic!("an encrypted session")
        };
        keys
    }

    /// Delivers `datagrams` from the starter to the listener.
    fn deliver(pair: &mut Pair, datagrams: &[Vec<u8>]) {
        for d in datagrams {
            let r = open(&pair.listener, d);
            pair.listener
                .handle_packet(pair.now, STARTER, r.header, r.ack, r.packet, r.len, 0);
        }
    }

    #[test]
    fn a_sender_waits_for_an_ack_of_its_new_keys_before_the_next_update() {
        let mut pair = keyed_pair(4);
        pair.starter
            .send(StreamId::DEFAULT, Bytes::from(vec![1; 2000]))
            .unwrap();
        pair.exchange();
        // Far more packets than four per generation, none acknowledged: one
        // update, and no second before the peer acknowledges the first.
        let (sent, received) = (
            pair.starter.stats.key_updates_sent,
            pair.listener.stats.key_updates_received,
        );
        assert_eq!(sent, received);
        pair.starter
            .send(StreamId::DEFAULT, Bytes::from(vec![2; 30_000]))
            .unwrap();
        let flight = drain(&mut pair.starter, pair.now);
        assert!(flight.len() > 8, "{} packets", flight.len());
        assert_eq!(pair.starter.stats.key_updates_sent, sent + 1);
        let phases: Vec<bool> = flight.iter().map(|d| d[1] & 0x40 != 0).collect();
        // One change of phase, and every packet after it carries the new one.
        let first = phases
            .iter()
            .position(|&p| p != phases[0])
            .expect("the phase changed");
        assert!(
            phases[first..].iter().all(|&p| p != phases[0]),
            "{phases:?}"
        );
        deliver(&mut pair, &flight);
        assert_eq!(pair.listener.stats.key_updates_received, received + 1);
        pair.exchange();
        assert_eq!(pair.listener.recv(StreamId::DEFAULT).unwrap().len(), 2000);
        assert_eq!(pair.listener.recv(StreamId::DEFAULT).unwrap().len(), 30_000);
        // Acknowledged: the next update may come.
        pair.starter
            .send(StreamId::DEFAULT, Bytes::from(vec![3; 10_000]))
            .unwrap();
        pair.exchange();
        assert!(pair.starter.stats.key_updates_sent >= sent + 2);
        // The receiver follows every generation that sealed a packet (the
        // last may have moved at a poll that then had nothing to send).
        let followed = keys(&pair.listener.protection).recv_generation();
        let moved = keys(&pair.starter.protection).send_generation();
        assert!(
            followed == moved || followed + 1 == moved,
            "{followed} {moved}"
        );
    }

    #[test]
    fn the_previous_receive_keys_go_three_retransmission_timeouts_after_the_move() {
        let mut pair = keyed_pair(4);
        for round in 0..3u8 {
            pair.starter
                .send(StreamId::DEFAULT, Bytes::from(vec![round; 8000]))
                .unwrap();
            pair.exchange();
        }
        assert!(pair.listener.stats.key_updates_received >= 1);
        assert!(keys(&pair.listener.protection).has_previous());
        let at = pair
            .listener
            .timers
            .get(Timer::KeyDiscard)
            .expect("the discard is armed");
        assert_eq!(at, pair.now + pair.listener.rto() * PREVIOUS_KEYS_RTOS);
        pair.listener
            .handle_timeout(at - std::time::Duration::from_millis(1));
        assert!(keys(&pair.listener.protection).has_previous());
        pair.listener.handle_timeout(at);
        assert!(!keys(&pair.listener.protection).has_previous());
    }
}
