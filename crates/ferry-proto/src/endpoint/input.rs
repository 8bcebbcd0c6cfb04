//! Datagrams in: routing by session id, the address check, opening and
//! decoding, and a listener's answer to a Connect (admission, retry tokens,
//! authentication, refusal), with the stateless answers it sends.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rand::RngCore;
use tracing::{debug, trace};

use crate::config::MIN_MTU;
use crate::crypto::Handshake as NoiseHandshake;
use crate::error::DecodeError;
use crate::event::{CloseReason, CloseText, Event, TransportCode};
use crate::id::SessionId;
use crate::session::{Authenticated, SessionCore, State, own_params, prologue};
use crate::wire::packet::{Close, CloseCode, FEATURES, Handshake, Header, Packet, PacketKind};
use crate::wire::protection::Protection;

use super::slot::Slot;
use super::tickets::TicketVerdict;
use super::{Endpoint, MAX_STATELESS, Retired};

impl Endpoint {
    /// Takes in one datagram received from `from`. Never panics, whatever the
    /// bytes: a datagram that is malformed, corrupted, or for no session is
    /// dropped and counted in [`stats`](Self::stats).
    ///
    /// `data` is opened (decrypted) in place. It may be a slice of a larger
    /// receive buffer: the endpoint keeps no reference to it once the call
    /// returns (what it keeps, it copies: fragments into their message,
    /// datagrams into their own buffer), so the caller can reuse the buffer as
    /// soon as its own slices are gone.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, mut data: BytesMut) {
        self.stats.datagrams_received += 1;
        let len = data.len();
        let (header, header_len) = match Header::decode(&data) {
            Ok(h) => h,
            Err(e) => {
                trace!(%from, error = %e, "dropped malformed datagram");
                self.stats.dropped_malformed += 1;
                return;
            }
        };
        // A Connect carries the starter's id: one repeated for a session
        // already accepted goes to that session (its ConnectAck was lost).
        let id = if header.kind == PacketKind::Connect {
            match self.aliases.get(&header.session) {
                Some(&id) => id,
                None => return self.handle_connect(now, from, header, header_len, data),
            }
        } else {
            header.session
        };
        let Some(Slot { session, .. }) = self.sessions.get_mut(&id) else {
            if header.kind == PacketKind::Connect {
                // A late connect for a session already over: answered only
                // if that session was refused (the refusal was lost).
                if !self.repeat_refusal(id, from, &header, header_len, &mut data) {
                    self.stats.dropped_unknown_session += 1;
                }
            } else {
                self.stats.dropped_unknown_session += 1;
                let genuine = self.retired_info.get(&id).is_some_and(|r| {
                    r.protection
                        .open(header.number, header_len, &mut data)
                        .is_ok()
                });
                if header.kind != PacketKind::Close && genuine {
                    self.repeat_close(id, from);
                }
            }
            return;
        };
        if session.remote() != from && !session.may_migrate(header.kind) {
            self.stats.dropped_wrong_address += 1;
            return;
        }
        // The token of a path challenge, should this packet prove its key.
        let token = if session.remote() == from {
            0
        } else {
            self.rng.next_u64()
        };
        let protection = session.protection_for(header.kind);
        let encrypted = matches!(protection, Protection::Aead(_));
        let packet = protection
            .open(header.number, header_len, &mut data)
            .and_then(|()| Packet::decode_with_ack(&header, data.freeze().slice(header_len..)));
        match packet {
            Ok((ack, packet)) => {
                session.handle_packet(now, from, header, ack, packet, len, token);
                self.touched(id);
            }
            Err(DecodeError::Integrity) if encrypted => {
                trace!(session = %id, "dropped a packet that did not decrypt");
                self.stats.dropped_unauthenticated += 1;
            }
            Err(e) => {
                trace!(session = %id, error = %e, "dropped malformed packet");
                self.stats.dropped_malformed += 1;
            }
        }
    }

    /// A peer still talks to a session this side closed and forgot: it missed the
    /// close packets, so send one more.
    pub(super) fn repeat_close(&mut self, id: SessionId, from: SocketAddr) {
        let Some(Retired {
            remote,
            peer_id,
            close: Some((close, number)),
            protection,
            // A refusal is repeated to Connects only (`repeat_refusal`).
            refused: false,
            ..
        }) = self.retired_info.get_mut(&id)
        else {
            return;
        };
        if *remote != from || self.stateless.len() >= MAX_STATELESS {
            return;
        }
        let pn = *number;
        *number += 1;
        let mut buf = Vec::new();
        Packet::Close(close.clone()).encode(*peer_id, pn, &mut buf);
        protection.seal(
            pn,
            Header {
                kind: PacketKind::Close,
                session: *peer_id,
                number: pn,
                with_ack: false,
                key_phase: false,
            }
            .encoded_len(),
            &mut buf,
        );
        self.stateless.push_back((from, buf));
    }

    pub(super) fn handle_connect(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: Header,
        header_len: usize,
        mut data: BytesMut,
    ) {
        let len = data.len();
        let protection = Protection::default();
        let hs = match protection
            .open(header.number, header_len, &mut data)
            .and_then(|()| Packet::decode_body(header.kind, data.freeze().slice(header_len..)))
        {
            Ok(Packet::Connect(hs)) => hs,
            _ => {
                self.stats.dropped_malformed += 1;
                return;
            }
        };
        // The starter's id: stateless answers, retry tokens and the Noise
        // prologue use it.
        let id = header.session;
        if len < MIN_MTU {
            // Connects are padded to the MTU: a short one is not ours, and
            // answering it would amplify.
            self.stats.dropped_malformed += 1;
            return;
        }
        if self.config.accept_incoming
            && !self
                .admission
                .admit(now, from.ip(), self.config.max_handshakes_per_source)
        {
            // No answer at all: a refusal would be as much work, and would
            // reflect a spoofed flood at its victim.
            self.stats.dropped_rate_limited += 1;
            return;
        }
        let mut refusal = if !self.config.accept_incoming
            || self.sessions.len() >= self.config.max_sessions
            || (self.config.decide_incoming && self.undecided >= self.config.max_pending_handshakes)
        {
            Some(TransportCode::Refused)
        } else if !SessionCore::valid_handshake(&hs) {
            Some(TransportCode::ProtocolViolation)
        } else {
            None
        };
        // A resumption ticket, checked (not yet used): a valid one proves
        // the address as a token does; a refused one is answered so, and
        // its starter falls back to a full handshake.
        let ticket = (!hs.resume.is_empty()).then(|| self.check_ticket(now, &hs.resume));
        if refusal.is_none()
            && let Some(TicketVerdict::Refused(why)) = &ticket
        {
            debug!(%from, why, "refused a resumption ticket");
            refusal = Some(TransportCode::TicketRefused);
        }
        let ticket = match ticket {
            Some(TicketVerdict::Valid(contents)) => Some(contents),
            _ => None,
        };
        // A token proves the address; without one, a listener holding too
        // many sessions still unproven answers with a retry and keeps nothing.
        let tokened = !hs.token.is_empty();
        let proven = tokened || ticket.is_some();
        if tokened
            && !self
                .retry
                .check(now, from, id, &hs.token, self.config.handshake_timeout)
        {
            self.stats.dropped_invalid_token += 1;
            return;
        }
        if refusal.is_none() && !proven && self.unvalidated >= self.config.max_pending_handshakes {
            self.stats.retries_sent += 1;
            if self.stateless.len() < MAX_STATELESS {
                let token = self.retry.issue(now, from, id);
                self.answer_statelessly(from, id, &Packet::Retry { token });
            }
            return;
        }
        // Authentication last: the Diffie-Hellman work is spent only on a
        // connect that would otherwise be accepted.
        let mut keys = None;
        let mut resumed = None;
        let local = self.listener_id(id);
        let decide = self.config.decide_incoming;
        if refusal.is_none()
            && let Some(contents) = &ticket
        {
            match self.resume(now, id, local, &hs, contents, decide) {
                Ok(Some(r)) => resumed = Some(r),
                Ok(None) => refusal = Some(TransportCode::TicketRefused),
                Err(_) => {
                    // Message 1 does not open under the ticket's secret: a
                    // ticket taken off the wire without its secret, or
                    // altered. Refused as a ticket: a genuine starter
                    // falls back to its full handshake.
                    self.stats.dropped_unauthenticated += 1;
                    refusal = Some(TransportCode::TicketRefused);
                }
            }
        } else if refusal.is_none() {
            match self.authenticate(id, local, &hs) {
                Ok(k) => keys = k,
                Err(Unauthenticated::Failed) => {
                    self.stats.dropped_unauthenticated += 1;
                    refusal = Some(TransportCode::AuthenticationFailed);
                }
                Err(Unauthenticated::NotAuthorized(key)) => {
                    debug!(%from, peer = %key, "refused a key not in authorized_keys");
                    self.stats.dropped_unauthorized += 1;
                    refusal = Some(TransportCode::AuthenticationFailed);
                }
                Err(Unauthenticated::Replayed) => {
                    // The genuine starter is not waiting for an answer, and
                    // the replayer must learn nothing: no answer at all.
                    trace!(%from, "dropped a replayed identity handshake");
                    self.stats.dropped_replayed += 1;
                    return;
                }
            }
        }
        if let Some(code) = refusal {
            if code == TransportCode::TicketRefused {
                self.stats.tickets_refused += 1;
            }
            self.stats.sessions_refused += 1;
            let close = Packet::Close(Close {
                code: CloseCode::Transport(code as u64),
                reason: Bytes::new(),
            });
            self.answer_statelessly(from, id, &close);
            return;
        }
        if !decide {
            self.stats.sessions_accepted += 1;
        }
        let (keys, resumed) = match resumed {
            Some(r) => {
                self.stats.sessions_resumed += 1;
                (r.keys, Some((r.early, r.answer)))
            }
            None => (keys, None),
        };
        let challenge = (!proven).then(|| self.rng.next_u64());
        let mut session = SessionCore::incoming(
            local,
            id,
            from,
            self.config.clone(),
            self.shared.clone(),
            now,
            header.number,
            &hs,
            keys,
            challenge,
            len,
        );
        if !decide {
            session.admit(now);
        }
        if let Some((early, answer)) = resumed {
            session.on_resumed(now, early, answer);
        }
        if !proven {
            self.unvalidated += 1;
        }
        let mut slot = Slot::new(session, !proven);
        if decide {
            slot.counted_undecided = true;
            self.undecided += 1;
            self.events.push_back(Event::Incoming { session: local });
        }
        self.sessions.insert(local, slot);
        self.aliases.insert(id, local);
        if !decide {
            // (With a decision, once accepted: `Session::accept`.)
            self.issue_ticket(now, local);
        }
        self.touched(local);
    }

    /// Refuses the incoming session `id` (in [`State::Incoming`]) for the
    /// application, with its `code` and `reason`: the starter gets a Close
    /// carrying both, under a checksum only (it holds no keys yet, so the
    /// refusal is not authenticated), and the session ends here at once
    /// with [`CloseReason::Local`]. `false` when `id` is not an incoming
    /// session.
    pub(super) fn refuse_incoming(&mut self, id: SessionId, code: u64, reason: CloseText) -> bool {
        let Some(slot) = self.sessions.get_mut(&id) else {
            return false;
        };
        if slot.session.state() != State::Incoming {
            return false;
        }
        let (remote, starter) = (slot.session.remote(), slot.session.peer_id());
        debug!(session = %id, %remote, code, %reason, "incoming session refused by the application");
        let close = Close {
            code: CloseCode::Application(code),
            reason: reason.to_bytes(),
        };
        slot.session.abandon(CloseReason::Local { code, reason });
        slot.session.keep_refusal(close.clone());
        self.stats.sessions_refused_by_application += 1;
        self.answer_statelessly(remote, starter, &Packet::Close(close));
        true
    }

    /// An incoming session the application left undecided past its
    /// deadline ended: tell the starter, statelessly, as a transport
    /// refusal. Returns the refusal, for the session to keep.
    pub(super) fn refuse_undecided(&mut self, remote: SocketAddr, starter: SessionId) -> Close {
        debug!(%remote, "incoming session undecided within handshake_timeout: refused");
        self.stats.sessions_undecided += 1;
        let close = Close {
            code: CloseCode::Transport(TransportCode::Undecided as u64),
            reason: Bytes::new(),
        };
        self.answer_statelessly(remote, starter, &Packet::Close(close.clone()));
        close
    }

    /// A Connect repeated for a session refused while it waited for the
    /// application's decision, and since retired: the refusal was lost, so
    /// it goes again, statelessly under the checksum as the first time. Only
    /// a Connect of full size that passes its checksum, from the refused
    /// address, gets it (an answer smaller than the question). `false` when
    /// `id` is no such session.
    fn repeat_refusal(
        &mut self,
        id: SessionId,
        from: SocketAddr,
        header: &Header,
        header_len: usize,
        data: &mut BytesMut,
    ) -> bool {
        let Some(Retired {
            remote,
            peer_id,
            close: Some((close, _)),
            refused: true,
            ..
        }) = self.retired_info.get(&id)
        else {
            return false;
        };
        if *remote != from
            || data.len() < MIN_MTU
            || Protection::Checksum
                .open(header.number, header_len, data)
                .is_err()
        {
            return false;
        }
        let (starter, close) = (*peer_id, Packet::Close(close.clone()));
        trace!(session = %id, %from, "refusal repeated to a repeated Connect");
        self.answer_statelessly(from, starter, &close);
        true
    }

    /// The id this listener issues for a session whose starter chose
    /// `starter`: the same, unless ids must carry a server id or a shard (or
    /// that id is taken here).
    fn listener_id(&mut self, starter: SessionId) -> SessionId {
        let plain = self.config.server_id.is_none() && self.shard.count <= 1;
        if plain
            && !self.sessions.contains_key(&starter)
            && !self.retired_info.contains_key(&starter)
        {
            starter
        } else {
            self.fresh_id()
        }
    }

    /// Queues `packet` (a refusal or a retry) for `to` as packet number 0 of
    /// session `id` under a checksum, keeping no state; dropped when
    /// `MAX_STATELESS` answers already wait.
    pub(super) fn answer_statelessly(&mut self, to: SocketAddr, id: SessionId, packet: &Packet) {
        if self.stateless.len() >= MAX_STATELESS {
            return;
        }
        let mut buf = Vec::new();
        packet.encode(id, 0, &mut buf);
        let header_len = Header {
            kind: packet.kind(),
            session: id,
            number: 0,
            with_ack: false,
            key_phase: false,
        }
        .encoded_len();
        Protection::Checksum.seal(0, header_len, &mut buf);
        self.stateless.push_back((to, buf));
    }

    /// The listener's half of the handshake for the session whose starter
    /// chose `id` and for which this side issued `local`: with a key or an
    /// identity, message 1 must open with it (and, with an identity, name an
    /// admitted starter key with a date not seen before); the answer
    /// (message 2, repeating our parameters), the session's packet keys and
    /// the starter's key come out. Without either, a connect must carry no
    /// handshake message.
    pub(super) fn authenticate(
        &mut self,
        id: SessionId,
        local: SessionId,
        hs: &Handshake,
    ) -> Result<Option<Authenticated>, Unauthenticated> {
        let config = self.config.clone();
        let mut noise = match (&config.identity, &config.psk) {
            (None, None) => {
                return if hs.auth.is_empty() {
                    Ok(None)
                } else {
                    Err(Unauthenticated::Failed)
                };
            }
            (Some(identity), psk) => NoiseHandshake::responder_with_identity(
                identity,
                psk.as_ref(),
                &prologue(id),
                config.cipher,
                &mut self.rng,
            ),
            (None, Some(psk)) => {
                NoiseHandshake::responder_with(psk, &prologue(id), config.cipher, &mut self.rng)
            }
        };
        if hs.auth.is_empty() {
            return Err(Unauthenticated::Failed);
        }
        let mut payload = Vec::new();
        noise
            .read_message(&hs.auth, &mut payload)
            .map_err(|_| Unauthenticated::Failed)?;
        let peer = noise.remote_identity();
        let mut dated = None;
        if let Some(key) = peer {
            if config
                .authorized_keys
                .as_ref()
                .is_some_and(|list| !list.contains(&key))
            {
                return Err(Unauthenticated::NotAuthorized(key));
            }
            // The date: eight bytes; a longer payload is a later version's.
            let date = payload
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_be_bytes)
                .ok_or(Unauthenticated::Failed)?;
            if !self.replay.is_fresh(&key, date) {
                return Err(Unauthenticated::Replayed);
            }
            dated = Some((key, date));
        }
        let params = Handshake {
            listener_id: Some(local),
            // As the session's ConnectAck answers (see `own_features`).
            features: hs.features & FEATURES,
            ..own_params(&config)
        };
        let authenticated = answer(noise, &params, peer)?;
        if let Some((key, date)) = dated {
            self.replay.record(key, date);
        }
        Ok(Some(authenticated))
    }
}

/// The listener's message 2 carrying `params` (this side's parameters,
/// authenticated with it), and the session's keys made from the finished
/// handshake: what a ConnectAck to the starter `peer` carries.
pub(super) fn answer(
    mut noise: NoiseHandshake,
    params: &Handshake,
    peer: Option<crate::crypto::PublicKey>,
) -> Result<Authenticated, Unauthenticated> {
    let mut encoded = Vec::new();
    params.encode_params(&mut encoded);
    let mut message = Vec::new();
    noise
        .write_message(&encoded, &mut message)
        .map_err(|_| Unauthenticated::Failed)?;
    let keys = noise.into_keys().map_err(|_| Unauthenticated::Failed)?;
    Ok(Authenticated {
        keys,
        message: Bytes::from(message),
        peer,
    })
}

/// Why a connect's handshake message did not admit its starter.
#[derive(Debug)]
pub(super) enum Unauthenticated {
    /// It did not open with this side's keys, or is malformed.
    Failed,
    /// Genuine, but its starter key is not in `authorized_keys`.
    NotAuthorized(crate::crypto::PublicKey),
    /// Genuine, but its date was seen before: a replay.
    Replayed,
}
