//! A listener's memory of the identity handshakes it accepted, so that a
//! recorded message 1 replayed later opens no session.
//!
//! Message 1 of the identity handshake carries the starter's clock (its
//! *timestamp*, microseconds since the Unix epoch), encrypted and
//! authenticated under its static key. Per starter key, the listener keeps
//! the timestamps it accepted recently and a *floor*: a timestamp at or
//! below the floor, or one already seen, is a replay. Only the starter's own
//! clock is compared with itself, so the two machines' clocks need not
//! agree; several sessions of one key may start at once, and arrive in any
//! order, as long as none is older than the [`RECENT`] before it.

use std::collections::{BTreeSet, HashMap};

use crate::crypto::PublicKey;

/// Timestamps remembered per key above its floor.
pub(crate) const RECENT: usize = 32;
/// Keys remembered at most; beyond it the least recently seen is forgotten
/// (its recorded handshakes could then be replayed against this listener
/// once more: an authorized-keys list bounds the keys that can fill it).
pub(crate) const MAX_KEYS: usize = 4096;

#[derive(Debug, Default)]
struct Recent {
    floor: u64,
    seen: BTreeSet<u64>,
    last_used: u64,
}

/// What the listener remembers of each starter key's handshakes.
#[derive(Debug, Default)]
pub(crate) struct ReplayGuard {
    keys: HashMap<PublicKey, Recent>,
    clock: u64,
}

impl ReplayGuard {
    /// Whether `timestamp` from `key` is fresh, without recording it.
    /// Timestamp 0 means the starter has no clock: it is always fresh (and
    /// its handshakes are not protected against replay).
    pub(crate) fn is_fresh(&self, key: &PublicKey, timestamp: u64) -> bool {
        if timestamp == 0 {
            return true;
        }
        self.keys
            .get(key)
            .is_none_or(|r| timestamp > r.floor && !r.seen.contains(&timestamp))
    }

    /// Records an accepted handshake's timestamp.
    pub(crate) fn record(&mut self, key: PublicKey, timestamp: u64) {
        if timestamp == 0 {
            return;
        }
        self.clock += 1;
        if !self.keys.contains_key(&key)
            && self.keys.len() >= MAX_KEYS
            && let Some(oldest) = self
                .keys
                .iter()
                .min_by_key(|(_, r)| r.last_used)
                .map(|(k, _)| *k)
        {
            self.keys.remove(&oldest);
        }
        let recent = self.keys.entry(key).or_default();
        recent.last_used = self.clock;
        recent.seen.insert(timestamp);
        while recent.seen.len() > RECENT {
            if let Some(lowest) = recent.seen.pop_first() {
                recent.floor = recent.floor.max(lowest);
            }
        }
    }

    /// Keys remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> PublicKey {
        PublicKey::from_bytes([b; 32])
    }

    #[test]
    fn a_timestamp_seen_once_is_a_replay_the_second_time() {
        let mut guard = ReplayGuard::default();
        assert!(guard.is_fresh(&key(1), 100));
        guard.record(key(1), 100);
        assert!(!guard.is_fresh(&key(1), 100));
        assert!(guard.is_fresh(&key(2), 100), "keys are independent");
        assert!(guard.is_fresh(&key(1), 101));
    }

    #[test]
    fn concurrent_handshakes_of_one_key_may_arrive_out_of_order() {
        let mut guard = ReplayGuard::default();
        guard.record(key(1), 200);
        assert!(guard.is_fresh(&key(1), 150), "an older one not yet seen");
        guard.record(key(1), 150);
        assert!(!guard.is_fresh(&key(1), 150));
    }

    #[test]
    fn forgotten_timestamps_stay_refused_below_the_floor() {
        let mut guard = ReplayGuard::default();
        for t in 1..=(RECENT as u64 + 10) {
            guard.record(key(1), t);
        }
        for t in 1..=(RECENT as u64 + 10) {
            assert!(!guard.is_fresh(&key(1), t), "{t}");
        }
        assert!(guard.is_fresh(&key(1), RECENT as u64 + 11));
    }

    #[test]
    fn a_starter_without_a_clock_is_never_refused() {
        let mut guard = ReplayGuard::default();
        guard.record(key(1), 0);
        assert!(guard.is_fresh(&key(1), 0));
        assert_eq!(guard.len(), 0);
    }

    #[test]
    fn the_memory_is_bounded_by_forgetting_the_least_recent_key() {
        let mut guard = ReplayGuard::default();
        for i in 0..=MAX_KEYS {
            let mut bytes = [0u8; 32];
            bytes[..8].copy_from_slice(&(i as u64).to_le_bytes());
            guard.record(PublicKey::from_bytes(bytes), 5);
        }
        assert_eq!(guard.len(), MAX_KEYS);
        assert!(
            guard.is_fresh(&PublicKey::from_bytes([0; 32]), 5),
            "the first was forgotten"
        );
    }

    #[test]
    fn a_listener_that_forgot_the_session_still_refuses_its_replayed_connect() {
        use std::time::{Duration, Instant, SystemTime};

        use bytes::BytesMut;
        use rand::SeedableRng;

        use crate::Config;
        use crate::crypto::Identity;
        use crate::endpoint::Endpoint;

        let id = |seed| Identity::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(seed));
        let (alice, server_id) = (id(1), id(2));
        let mut client = Endpoint::new(
            Config {
                identity: Some(alice),
                listener_key: Some(server_id.public_key()),
                ..Config::default()
            },
            1,
        )
        .unwrap();
        let mut server = Endpoint::new(
            Config {
                identity: Some(server_id),
                accept_incoming: true,
                ..Config::default()
            },
            2,
        )
        .unwrap();
        let now = Instant::now();
        client.set_wall_clock(now, SystemTime::now());
        let (from, to) = (
            "192.0.2.1:1".parse().unwrap(),
            "192.0.2.2:2".parse().unwrap(),
        );
        client.connect(now, to).unwrap();
        let mut buf = Vec::new();
        let t = client.poll_transmit(now, &mut buf).unwrap();
        let connect = buf[..t.size].to_vec();
        server.handle_datagram(now, from, BytesMut::from(&connect[..]));
        assert_eq!(server.session_count(), 1);

        // Everything the endpoint knew of the session is gone, as after
        // thousands of later sessions: only the handshake's date is left.
        server.sessions.clear();
        server.aliases.clear();
        server.retired_info.clear();
        server.retired.clear();
        let later = now + Duration::from_secs(60);
        server.handle_datagram(later, from, BytesMut::from(&connect[..]));
        assert_eq!(server.session_count(), 0);
        assert_eq!(server.stats().dropped_replayed, 1);
        while server.poll_transmit(later, &mut buf).is_some() {}
        assert_eq!(server.stats().dropped_unknown_session, 0);
    }
}
