//! Opening a session: connect and accept, the handshake's parameters, the
//! ConnectAck, a listener's retry, and a listener's address validation with
//! its anti-amplification limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, trace, warn};

use super::timer::Timer;
use crate::config::{Config, MIN_MTU};
use crate::crypto::{CryptoError, Handshake as Noise, PacketKeys, PublicKey};
use crate::endpoint::Shared;
use crate::error::ProtocolViolation;
use crate::event::CloseReason;
use crate::id::{SessionId, Side};
use crate::wire::packet::{Ack, FEATURES, Handshake, Packet, VERSION};
use crate::wire::protection::Protection;

use super::{
    MAX_BACKOFF, MAX_HANDSHAKE_RETRY, MAX_PEER_ACK_DELAY, SessionCore, SessionEvent, State,
};

/// Binds a handshake to the protocol version and the session.
pub(crate) fn prologue(id: SessionId) -> [u8; 9] {
    let mut p = [0; 9];
    p[0] = VERSION;
    p[1..].copy_from_slice(&id.0);
    p
}

/// The handshake parameters `config` announces (without the Noise message).
pub(crate) fn own_params(config: &Config) -> Handshake {
    Handshake {
        max_udp_payload: config.mtu as u64,
        max_message_size: config.max_message_size as u64,
        initial_max_data: config.recv_window as u64,
        max_ack_delay_micros: config.max_ack_delay.as_micros() as u64,
        max_streams: config.max_streams as u64,
        initial_max_stream_data: config.stream_recv_window as u64,
        listener_id: None,
        auth: Bytes::new(),
        token: Bytes::new(),
        // Key updates, the only feature, need keys: a pre-shared key or an
        // identity.
        features: if config.psk.is_some() || config.identity.is_some() {
            FEATURES
        } else {
            0
        },
        resume: Bytes::new(),
        early: Bytes::new(),
    }
}

/// What a listener's half of an encrypted handshake hands the new session.
#[derive(Debug)]
pub(crate) struct Authenticated {
    /// The session's packet keys.
    pub(crate) keys: PacketKeys,
    /// Noise message 2, which every ConnectAck carries.
    pub(crate) message: Bytes,
    /// The starter's authenticated public key (identity handshake only).
    pub(crate) peer: Option<PublicKey>,
}

/// A listener's proof that its peer receives at the address it sends from,
/// until it comes: with a key, any packet that opens under the session's
/// keys (which need the ConnectAck); without, the answer to a path challenge
/// sent with the ConnectAck. Until then the listener sends at most
/// `amplification_factor` times what it received.
#[derive(Debug)]
pub(super) struct Validation {
    /// The challenge's token (clear sessions).
    pub(super) token: u64,
    pub(super) due: bool,
    /// Challenges sent so far (each waits twice as long for its answer).
    pub(super) tries: u32,
    /// Bytes received from and sent to the peer's address so far.
    pub(super) received: u64,
    pub(super) sent: u64,
}

impl SessionCore {
    /// A session started by this side: the connect packet goes out on the next poll.
    ///
    /// With an identity, `listener` is the pinned listener key and
    /// `timestamp` this side's clock for the listener's replay check
    /// (microseconds since the Unix epoch, 0 for none). With a `ticket`, the
    /// session resumes ([`resume`](Self::resume)): the full handshake is
    /// written only if the listener refuses the ticket.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn connect(
        id: SessionId,
        remote: SocketAddr,
        config: Arc<Config>,
        shared: Shared,
        now: Instant,
        listener: Option<PublicKey>,
        timestamp: u64,
        ticket: Option<crate::ticket::Ticket>,
        rng: &mut impl rand::CryptoRng,
    ) -> Self {
        let mut s = Self::new(id, remote, Side::Starter, config, shared, now);
        s.connect_due = true;
        s.timers
            .set(Timer::HandshakeDeadline, now + s.config.handshake_timeout);
        match ticket {
            None => (s.noise, s.auth) = s.full_handshake(listener, timestamp, rng),
            Some(ticket) => s.resume(ticket, listener, timestamp, rng),
        }
        s
    }

    /// The full handshake of a starter (none without keys): its Noise state
    /// and message 1. With an identity, `listener` is the pinned listener
    /// key and `timestamp` the date message 1 carries.
    pub(super) fn full_handshake(
        &self,
        listener: Option<PublicKey>,
        timestamp: u64,
        rng: &mut impl rand::CryptoRng,
    ) -> (Option<Box<Noise>>, Bytes) {
        let id = self.id;
        let (noise, payload) = match (&self.config.identity, listener) {
            (Some(identity), Some(listener)) => {
                let noise = Noise::initiator_with_identity(
                    identity,
                    &listener,
                    self.config.psk.as_ref(),
                    &prologue(id),
                    self.config.cipher,
                    rng,
                );
                // Message 1 carries the clock the listener's replay check
                // reads; nothing secret (its secrecy rests on static keys
                // only, not on an ephemeral one).
                (Some(noise), timestamp.to_be_bytes().to_vec())
            }
            (None, None) => (
                self.config
                    .psk
                    .as_ref()
                    .map(|psk| Noise::initiator_with(psk, &prologue(id), self.config.cipher, rng)),
                // Only the cipher offer, which the Noise handshake adds.
                Vec::new(),
            ),
            // Refused by `Endpoint::connect` before a session exists.
            _ => (None, Vec::new()),
        };
        let Some(mut noise) = noise else {
            return (None, Bytes::new());
        };
        let mut message = Vec::new();
        if noise.write_message(&payload, &mut message).is_err() {
            return (None, Bytes::new());
        }
        (Some(Box::new(noise)), message.into())
    }

    /// A session from a peer's connect packet, whose header carried
    /// the starter's id `peer_id`; `id` is the one the listener issued (already checked and,
    /// with a key, authenticated: `keys` are the session's packet keys and
    /// the Noise message 2 its ConnectAcks carry). `challenge` is `None` when
    /// the connect carried a valid retry token (the peer's address is proven),
    /// else the token of the path challenge that proves it; `len` is the
    /// connect datagram's size.
    ///
    /// It waits in [`State::Incoming`], sending nothing, until
    /// [`admit`](Self::admit) (at once, for a listener that does not let the
    /// application decide) (or a refusal, or the `HandshakeDeadline`:
    /// the application's time to decide is `handshake_timeout`).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn incoming(
        id: SessionId,
        peer_id: SessionId,
        remote: SocketAddr,
        config: Arc<Config>,
        shared: Shared,
        now: Instant,
        pn: u64,
        peer: &Handshake,
        keys: Option<Authenticated>,
        challenge: Option<u64>,
        len: usize,
    ) -> Self {
        let mut s = Self::new(id, remote, Side::Listener, config, shared, now);
        s.peer_id = peer_id;
        if let Some(Authenticated {
            keys,
            message,
            peer,
        }) = keys
        {
            s.use_keys(keys);
            s.auth = message;
            s.peer_identity = peer;
        }
        s.apply_peer_params(peer);
        s.acks
            .on_packet(pn, false, now, Duration::ZERO, 1, Duration::ZERO);
        s.state = State::Incoming;
        s.validation = challenge.map(|token| Validation {
            token,
            // Until the decision, nothing goes; then an encrypted peer
            // proves its address by its first packet.
            due: false,
            tries: 0,
            received: len as u64,
            sent: 0,
        });
        s.timers
            .set(Timer::HandshakeDeadline, now + s.config.handshake_timeout);
        s
    }

    /// The application accepted an incoming session: established, its
    /// ConnectAck due. Does nothing in any other state.
    pub(crate) fn admit(&mut self, now: Instant) {
        if self.state != State::Incoming {
            return;
        }
        self.connect_ack_due = true;
        self.establish(now);
        let encrypted = matches!(self.protection, Protection::Aead(_));
        if let Some(v) = &mut self.validation {
            // An encrypted peer proves its address by its first packet.
            v.due = !encrypted;
            // A peer that never proves its address is dropped.
            self.timers.set(
                Timer::HandshakeDeadline,
                now + self.config.handshake_timeout,
            );
        }
    }

    /// Whether the peer proved it receives at its address (always, for a starter).
    pub(crate) fn is_validated(&self) -> bool {
        self.validation.is_none()
    }

    pub(super) fn validated(&mut self) {
        if self.validation.take().is_some() {
            trace!(session = %self.id, "peer address validated");
            self.timers.clear(Timer::HandshakeDeadline);
            self.timers.clear(Timer::Handshake);
        }
    }

    /// Whether a connect packet's parameters are usable.
    pub(crate) fn valid_handshake(h: &Handshake) -> bool {
        h.max_udp_payload >= MIN_MTU as u64
            && h.max_message_size > 0
            && h.initial_max_data > 0
            && h.initial_max_stream_data > 0
    }

    pub(super) fn apply_peer_params(&mut self, h: &Handshake) {
        self.peer_params = h.into();
        self.mtu = self.config.mtu.min(h.max_udp_payload as usize);
        self.peer_max_message = usize::try_from(h.max_message_size).unwrap_or(usize::MAX);
        self.peer_max_data = self.peer_max_data.max(h.initial_max_data);
        self.peer_max_streams = h.max_streams;
        self.peer_stream_window = h.initial_max_stream_data;
        self.on_peer_features(h.features);
        for stream in self.streams.values_mut() {
            stream.peer_max_data = stream.peer_max_data.max(h.initial_max_stream_data);
        }
        // Bounded so that a peer cannot stall our timers with an absurd value.
        self.peer_max_ack_delay =
            Duration::from_micros(h.max_ack_delay_micros).min(MAX_PEER_ACK_DELAY);
        self.new_path();
    }

    pub(super) fn establish(&mut self, now: Instant) {
        self.state = State::Established;
        // A retry token is for the handshake only.
        self.retry_token = Bytes::new();
        self.timers.clear(Timer::Handshake);
        self.timers.clear(Timer::HandshakeDeadline);
        self.last_recv = now;
        self.stats.handshake_time = Some(now.saturating_duration_since(self.opened_at));
        self.arm_keepalive();
        self.events.push_back(SessionEvent::Connected);
        debug!(session = %self.id, side = ?self.side, "session established");
    }

    /// A listener's first RTT sample: the starter acks the ConnectAck at once.
    pub(super) fn sample_connect_ack_rtt(&mut self, now: Instant, ack: &Ack) {
        let Some((pn, at)) = self.connect_ack_sent else {
            return;
        };
        if !ack.ranges.iter().any(|r| r.contains(&pn)) {
            return;
        }
        self.connect_ack_sent = None;
        if self.rtt.min().is_none() {
            let largest = ack.ranges.first().map(|r| *r.end());
            let delay = if largest == Some(pn) {
                Duration::from_micros(ack.delay_micros).min(self.peer_max_ack_delay)
            } else {
                Duration::ZERO
            };
            let sample = now.saturating_duration_since(at);
            self.rtt.update(sample, delay);
            self.stats.rtt_samples.record(sample);
        }
    }

    /// A listener under a connect flood asks us to prove our address: connect
    /// again, at once, with its token. Only the first retry counts (a
    /// listener sends one per connect; an attacker who saw our connect could
    /// forge others, and they would only cost us this handshake).
    pub(super) fn on_retry(&mut self, token: Bytes) {
        if self.side != Side::Starter
            || !self.retry_token.is_empty()
            || token.is_empty()
            || token.len() > crate::wire::packet::MAX_RETRY_TOKEN
        {
            return;
        }
        debug!(session = %self.id, "listener asked for a retry");
        self.retry_token = token;
        self.connect_due = true;
        // The next connect is a new exchange: its answer is an RTT sample.
        self.connects_sent = 0;
    }

    pub(super) fn on_connect_ack(&mut self, now: Instant, pn: u64, h: &Handshake) {
        if self.side != Side::Starter {
            return;
        }
        if let Some(noise) = &mut self.noise {
            // Message 2 must open with our key, and repeat the listener's
            // parameters so that they are authenticated too.
            // The Noise layer takes the listener's cipher pick off the front
            // of the payload and checks it against both offers.
            let mut payload = Vec::new();
            let mut params = Vec::new();
            h.encode_params(&mut params);
            let read = if h.auth.is_empty() {
                Err(CryptoError::AuthenticationFailed)
            } else {
                noise.read_message(&h.auth, &mut payload)
            };
            if let Err(CryptoError::Negotiation(e)) = read {
                // Genuine (it opened with our key), but no cipher we can use:
                // no other message 2 can come, so give up now.
                warn!(session = %self.id, error = %e, "no packet cipher agreed with the listener");
                self.abandon(CloseReason::AuthenticationFailed);
                return;
            }
            if read.is_err() || payload != params {
                // Forged, or the listener holds another key: keep waiting for
                // a genuine answer until the handshake times out.
                self.auth_failures += 1;
                debug!(session = %self.id, "connect ack failed authentication");
                return;
            }
            self.peer_identity = noise.remote_identity();
            match self.noise.take().map(|noise| noise.into_keys()) {
                Some(Ok(keys)) => self.use_keys(keys),
                _ => {
                    self.abandon(CloseReason::AuthenticationFailed);
                    return;
                }
            }
        } else if !h.auth.is_empty() {
            // The listener encrypts and we hold no key.
            self.auth_failures += 1;
            return;
        }
        if !Self::valid_handshake(h) {
            self.violation(now, ProtocolViolation::BadHandshake);
            return;
        }
        let Some(listener_id) = h.listener_id else {
            self.violation(now, ProtocolViolation::BadHandshake);
            return;
        };
        self.peer_id = listener_id;
        self.apply_peer_params(h);
        if self.connects_sent == 1
            && let Some(at) = self.connect_sent_at
        {
            // Karn: only an unambiguous exchange gives an RTT sample.
            self.rtt
                .update(now.saturating_duration_since(at), Duration::ZERO);
        }
        self.acks
            .on_packet(pn, false, now, Duration::ZERO, 1, Duration::ZERO);
        // Ack the ConnectAck at once: it gives the listener its first RTT
        // sample, which its ack pacing and window growth rely on.
        self.acks.request_immediate();
        self.on_resume_answer(h);
        self.establish(now);
    }

    /// Seals and opens the session's packets with `keys` from now on.
    fn use_keys(&mut self, keys: PacketKeys) {
        let cipher = keys.cipher();
        debug!(session = %self.id, %cipher, "packets encrypted");
        self.stats.cipher = Some(cipher);
        self.protection = Protection::Aead(keys);
    }

    pub(super) fn handshake_params(&self) -> Handshake {
        let (resume, early) = self.resume_fields();
        Handshake {
            listener_id: (self.side == Side::Listener).then_some(self.id),
            auth: self.auth.clone(),
            token: self.retry_token.clone(),
            features: self.own_features(),
            resume,
            early,
            ..own_params(&self.config)
        }
    }

    pub(super) fn poll_handshake(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        if self.side != Side::Starter || !self.connect_due {
            return None;
        }
        self.connect_due = false;
        self.write_resumed_connect();
        let begun = self.begin(buf, &Packet::Connect(self.handshake_params()));
        // Pad to the MTU: proves the path carries full-size datagrams and keeps the
        // listener's answer smaller than the question.
        let target = begun.start + self.config.mtu - self.protection.overhead();
        if buf.len() < target {
            buf.resize(target, 0);
        }
        let len = self.finish(buf, begun);
        self.state = State::Handshaking;
        self.connects_sent += 1;
        self.connect_sent_at = Some(now);
        // Back off, but not past a second: a lossy path gets several tries
        // within the handshake timeout.
        let base = self.rtt.rto(Duration::ZERO, self.config.delivery_timeout);
        let wait = base * (1u32 << (self.connects_sent - 1).min(MAX_BACKOFF));
        self.timers.set(
            Timer::Handshake,
            now + wait.min(MAX_HANDSHAKE_RETRY.max(base)),
        );
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::test_pair::{Pair, drain, open};

    #[test]
    fn a_connect_is_padded_to_the_mtu_and_announces_the_configuration() {
        let config = Config::default();
        let mtu = config.mtu;
        let mut pair = Pair::connecting(config.clone());
        // The Connect already left; the starter resends it on its timer.
        let later = pair.now + Duration::from_secs(2);
        pair.starter.handle_timeout(later);
        let resent = drain(&mut pair.starter, later);
        assert_eq!(resent.len(), 1);
        assert_eq!(resent[0].len(), mtu, "padded to the MTU");
        let Packet::Connect(hs) = open(&pair.starter, &resent[0]).packet else {
            panic!("a Connect")
        };
        assert_eq!(hs.max_udp_payload, own_params(&config).max_udp_payload);
        assert_eq!(hs.initial_max_data, config.recv_window as u64);
        assert!(SessionCore::valid_handshake(&hs));
    }

    #[test]
    fn a_handshake_establishes_both_sides_and_says_so_once() {
        let mut pair = Pair::connecting(Config::default());
        pair.exchange();
        assert_eq!(pair.starter.state(), State::Established);
        assert_eq!(pair.listener.state(), State::Established);
        assert!(
            pair.listener.is_validated(),
            "the path challenge was answered"
        );
        let connected = |events: Vec<SessionEvent>| {
            events
                .iter()
                .filter(|e| **e == SessionEvent::Connected)
                .count()
        };
        assert_eq!(
            connected(crate::session::test_pair::events(&mut pair.starter)),
            1
        );
        assert_eq!(
            connected(crate::session::test_pair::events(&mut pair.listener)),
            1
        );
    }

    /// A keyed starter that forces `cipher`, its Connect's Noise message 1
    /// read by a listener's handshake, and the listener's parameters.
    fn keyed_starter(
        cipher: crate::CipherPreference,
    ) -> (SessionCore, Noise, Vec<u8>, std::time::Instant) {
        use crate::crypto::PreSharedKey;
        use crate::session::test_pair::LISTENER;
        use rand::SeedableRng;

        let psk = PreSharedKey::from_bytes([3; 32]);
        let config = Config {
            psk: Some(psk.clone()),
            cipher,
            ..Config::default()
        };
        let now = crate::test_support::epoch();
        let id = SessionId([9; 8]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let mut starter = SessionCore::connect(
            id,
            LISTENER,
            Arc::new(config),
            Shared::default(),
            now,
            None,
            0,
            None,
            &mut rng,
        );
        let connect = drain(&mut starter, now);
        let Packet::Connect(hs) = open(&starter, &connect[0]).packet else {
            panic!("a Connect")
        };
        let mut listener = Noise::responder(&psk, &prologue(id), &mut rng);
        listener.read_message(&hs.auth, &mut Vec::new()).unwrap();
        let mut params = Vec::new();
        ack_params().encode_params(&mut params);
        (starter, listener, params, now)
    }

    /// A default listener's ConnectAck parameters, naming the id it issued.
    fn ack_params() -> Handshake {
        Handshake {
            listener_id: Some(SessionId([7; 8])),
            ..own_params(&Config::default())
        }
    }

    /// Hands the starter a ConnectAck carrying Noise message 2 `auth`.
    fn connect_ack(starter: &mut SessionCore, now: std::time::Instant, auth: Vec<u8>) {
        use crate::session::test_pair::LISTENER;
        use crate::wire::packet::{Header, PacketKind};

        let ack = Handshake {
            auth: auth.into(),
            ..ack_params()
        };
        let header = Header {
            kind: PacketKind::ConnectAck,
            session: starter.id,
            number: 0,
            with_ack: false,
            key_phase: false,
        };
        starter.handle_packet(now, LISTENER, header, None, Packet::ConnectAck(ack), 100, 0);
    }

    #[test]
    fn a_keyed_starter_reports_the_cipher_the_listener_picked() {
        let (mut starter, mut listener, params, now) =
            keyed_starter(crate::CipherPreference::Aes256Gcm);
        assert_eq!(starter.stats().cipher, None, "not before the handshake");
        let mut message2 = Vec::new();
        listener.write_message(&params, &mut message2).unwrap();
        connect_ack(&mut starter, now, message2);
        assert_eq!(starter.state(), State::Established);
        assert_eq!(starter.stats().cipher, Some(crate::Cipher::Aes256Gcm));
        assert_eq!(starter.protection.cipher(), Some(crate::Cipher::Aes256Gcm));
        assert_eq!(
            starter.peer_id(),
            SessionId([7; 8]),
            "the listener's id from now on"
        );
    }

    #[test]
    fn a_genuine_connect_ack_naming_a_cipher_not_offered_ends_the_handshake_at_once() {
        use crate::Cipher;
        let (mut starter, mut listener, params, now) =
            keyed_starter(crate::CipherPreference::ChaCha20Poly1305);
        // A listener holding the key that answers a ChaCha20-Poly1305-only
        // offer with AES-256-GCM.
        let aes = Cipher::Aes256Gcm.id();
        let payload = [&[aes, 0x01, aes][..], &params].concat();
        let message2 = listener.write_message_without_negotiation(&payload);
        connect_ack(&mut starter, now, message2);
        assert_eq!(starter.state(), State::Closed);
        assert_eq!(
            crate::session::test_pair::events(&mut starter),
            [SessionEvent::Closed(CloseReason::AuthenticationFailed)]
        );
        assert_eq!(starter.stats().cipher, None);
    }

    #[test]
    fn an_incoming_session_sends_nothing_and_absorbs_repeated_connects_until_admitted() {
        use crate::session::test_pair::events;
        let config = Config {
            max_streams: 5,
            ..Config::default()
        };
        let mut pair = Pair::incoming(config.clone());
        assert_eq!(pair.listener.state(), State::Incoming);
        assert_eq!(
            pair.listener.peer_params(),
            crate::PeerParams::from(&own_params(&config))
        );
        assert!(
            events(&mut pair.listener).is_empty(),
            "the endpoint announces it"
        );
        // The starter repeats its Connect: absorbed, unanswered.
        pair.now += Duration::from_secs(2);
        pair.starter.handle_timeout(pair.now);
        pair.listener.handle_timeout(pair.now);
        pair.exchange();
        assert_eq!(pair.listener.state(), State::Incoming);
        assert_eq!(pair.starter.state(), State::Handshaking);
        assert!(pair.listener.stats().packets_received >= 1);
        assert_eq!(pair.listener.stats().packets_sent, 0);
        pair.listener.admit(pair.now);
        pair.exchange();
        assert_eq!(pair.listener.state(), State::Established);
        assert_eq!(pair.starter.state(), State::Established);
        assert!(
            pair.listener.is_validated(),
            "the path challenge was answered"
        );
        assert!(events(&mut pair.listener).contains(&SessionEvent::Connected));
    }

    #[test]
    fn an_incoming_session_left_undecided_ends_at_its_deadline_without_a_word() {
        use crate::session::test_pair::events;
        let config = Config::default();
        let mut pair = Pair::incoming(config.clone());
        let deadline = pair.now + config.handshake_timeout;
        assert_eq!(pair.listener.next_timeout(), Some(deadline));
        pair.listener.handle_timeout(deadline);
        assert_eq!(pair.listener.state(), State::Closed);
        assert_eq!(
            events(&mut pair.listener),
            [SessionEvent::Closed(CloseReason::Timeout)]
        );
        assert!(drain(&mut pair.listener, deadline).is_empty());
        // Admitting it now does nothing.
        pair.listener.admit(deadline);
        assert_eq!(pair.listener.state(), State::Closed);
    }

    #[test]
    fn parameters_below_the_minimum_are_not_a_valid_handshake() {
        let good = own_params(&Config::default());
        assert!(SessionCore::valid_handshake(&good));
        for bad in [
            Handshake {
                max_udp_payload: MIN_MTU as u64 - 1,
                ..good.clone()
            },
            Handshake {
                max_message_size: 0,
                ..good.clone()
            },
            Handshake {
                initial_max_data: 0,
                ..good.clone()
            },
            Handshake {
                initial_max_stream_data: 0,
                ..good.clone()
            },
        ] {
            assert!(!SessionCore::valid_handshake(&bad), "{bad:?}");
        }
    }

    #[test]
    fn an_unproven_listener_sends_at_most_the_amplification_factor() {
        let config = Config::default();
        let factor = u64::from(config.amplification_factor);
        let mtu = config.mtu as u64;
        let mut pair = Pair::connecting(config);
        // The starter never answers: whatever the listener has to say, it
        // says no more than `factor` times the one Connect it received.
        pair.listener
            .send(crate::StreamId::DEFAULT, Bytes::from(vec![1; 1 << 20]))
            .unwrap();
        let mut sent = 0;
        for step in 0..50 {
            let now = pair.now + Duration::from_millis(100 * step);
            pair.listener.handle_timeout(now);
            sent += drain(&mut pair.listener, now)
                .iter()
                .map(|d| d.len() as u64)
                .sum::<u64>();
        }
        assert!(sent > 0, "the ConnectAck and the challenge go");
        assert!(sent <= factor * mtu, "{sent} bytes for {mtu} received");
        assert!(!pair.listener.is_validated());
    }
}
