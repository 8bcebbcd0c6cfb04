//! Many sessions over one socket: routing, timers, fair transmission, events.

mod admission;
pub(crate) mod memory;
pub(crate) mod pool;
mod retry;

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use tracing::trace;

use crate::config::{Config, MIN_MTU};
use crate::crypto::{Handshake as NoiseHandshake, PacketKeys};
use crate::endpoint::admission::Admission;
use crate::endpoint::memory::RecvMemory;
use crate::endpoint::pool::BufferPool;
use crate::endpoint::retry::RetryTokens;
use crate::error::{ConfigError, ConnectError, DatagramError, DecodeError, SendError, StreamError};
use crate::event::{Event, TransportCode};
use crate::id::{SessionId, Side};
use crate::session::{SessionCore, SessionEvent, State, own_params, prologue};
use crate::stats::{EndpointStats, SessionStats};
use crate::wire::packet::{Close, CloseCode, Handshake, Header, Packet, PacketKind};
use crate::wire::protection::Protection;
use crate::wire::stream::{StreamId, StreamKind};

/// Stateless answers (refusals, retries) waiting to be sent, at most; more are
/// dropped (a starter whose connect got no answer sends it again).
const MAX_STATELESS: usize = 1024;
/// Closed session ids remembered so that late packets are not mistaken for new
/// sessions and ids are never reused.
const RETIRED_IDS: usize = 4096;

/// A datagram to send, written into the buffer given to
/// [`Endpoint::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send it.
    pub destination: SocketAddr,
    /// Bytes of the buffer to send.
    pub size: usize,
    /// With segmentation offload, the size of each datagram in the buffer; `None`
    /// when the buffer holds exactly one datagram (always, for now).
    pub segment_size: Option<usize>,
}

/// What the endpoint remembers of a session it forgot.
#[derive(Debug)]
struct Retired {
    remote: SocketAddr,
    /// The close this side sent, repeated to a peer that keeps talking, and the
    /// packet number to send it with.
    close: Option<(Close, u64)>,
    /// How the session's packets were protected (an encrypted session's peer
    /// accepts only an encrypted close).
    protection: Protection,
    /// The session's counters when it was forgotten.
    stats: SessionStats,
}

/// One UDP socket's worth of sessions: the sans-IO heart of Ferry.
///
/// The endpoint owns no socket and reads no clock. Its methods fall into four
/// kinds, as in quinn-proto:
///
/// - **getters** — [`session_count`](Self::session_count), [`sessions`](Self::sessions),
///   [`stats`](Self::stats), [`config`](Self::config), and [`session`](Self::session)
///   for a handle with the per-session getters;
/// - **input** — [`handle_datagram`](Self::handle_datagram) for every datagram the
///   socket receives, [`handle_timeout`](Self::handle_timeout) when the deadline of
///   [`poll_timeout`](Self::poll_timeout) passes;
/// - **application commands** — [`connect`](Self::connect), and `send`,
///   `send_datagram` and `close` on a [`Session`] handle;
/// - **output** — [`poll_transmit`](Self::poll_transmit), [`poll_event`](Self::poll_event),
///   [`poll_timeout`](Self::poll_timeout).
///
/// After any input or command, drain the outputs in this order: `poll_transmit`
/// until `None` (send each datagram), `poll_event` until `None`, then
/// `poll_timeout` to know when to call `handle_timeout` if nothing arrives first.
///
/// ```
/// use std::time::Instant;
/// use ferry_proto::{Config, Endpoint, Event};
///
/// let now = Instant::now();
/// let mut server = Endpoint::new(Config { accept_incoming: true, ..Config::default() }, 1).unwrap();
/// let mut client = Endpoint::new(Config::default(), 2).unwrap();
/// let (client_addr, server_addr) = ("127.0.0.1:1000".parse().unwrap(), "127.0.0.1:2000".parse().unwrap());
///
/// let id = client.connect(now, server_addr).unwrap();
/// client.session(id).unwrap().send(&b"hello"[..]).unwrap();
///
/// // A lossless "network": hand every datagram straight to the other side.
/// let mut buf = Vec::new();
/// for _ in 0..4 {
///     while let Some(t) = client.poll_transmit(now, &mut buf) {
///         server.handle_datagram(now, client_addr, buf[..t.size].into());
///     }
///     while let Some(t) = server.poll_transmit(now, &mut buf) {
///         client.handle_datagram(now, server_addr, buf[..t.size].into());
///     }
/// }
/// assert_eq!(server.poll_event(), Some(Event::Connected { session: id }));
/// assert_eq!(server.poll_event(), Some(Event::Readable { session: id }));
/// assert_eq!(server.session(id).unwrap().recv(), Some("hello".into()));
/// ```
#[derive(Debug)]
pub struct Endpoint {
    config: Arc<Config>,
    rng: ChaCha8Rng,
    sessions: BTreeMap<SessionId, SessionCore>,
    timeouts: BTreeSet<(Instant, SessionId)>,
    ready: VecDeque<SessionId>,
    events: VecDeque<Event>,
    /// Buffers of received messages, back from the application for reuse.
    pool: BufferPool,
    stateless: VecDeque<(SocketAddr, Vec<u8>)>,
    retired: VecDeque<SessionId>,
    retired_info: HashMap<SessionId, Retired>,
    /// New sessions per source address this second.
    admission: Admission,
    /// Received data all sessions hold, against `max_recv_memory`.
    recv_memory: RecvMemory,
    /// Issues and checks the tokens of stateless retries.
    retry: RetryTokens,
    /// Sessions whose peers have not yet proved their address.
    unvalidated: usize,
    stats: EndpointStats,
}

impl Endpoint {
    /// Creates an endpoint. `seed` feeds the generator of session ids and of
    /// the handshakes' ephemeral keys: the simulator and tests use fixed seeds
    /// to replay runs exactly. Drivers use [`with_seed`](Self::with_seed) with
    /// 32 bytes from the operating system: 64 bits are not enough for keys.
    pub fn new(config: Config, seed: u64) -> Result<Self, ConfigError> {
        Self::build(config, ChaCha8Rng::seed_from_u64(seed))
    }

    /// Creates an endpoint whose generator (session ids, ephemeral keys) is
    /// seeded with 32 bytes, which must come from a cryptographically secure
    /// source (the operating system's).
    pub fn with_seed(config: Config, seed: [u8; 32]) -> Result<Self, ConfigError> {
        Self::build(config, ChaCha8Rng::from_seed(seed))
    }

    fn build(config: Config, mut rng: ChaCha8Rng) -> Result<Self, ConfigError> {
        config.validate()?;
        let mut retry_key = [0; 32];
        rng.fill_bytes(&mut retry_key);
        Ok(Self {
            config: Arc::new(config),
            rng,
            sessions: BTreeMap::new(),
            timeouts: BTreeSet::new(),
            ready: VecDeque::new(),
            events: VecDeque::new(),
            pool: BufferPool::default(),
            stateless: VecDeque::new(),
            retired: VecDeque::new(),
            retired_info: HashMap::new(),
            admission: Admission::default(),
            recv_memory: RecvMemory::default(),
            retry: RetryTokens::new(retry_key),
            unvalidated: 0,
            stats: EndpointStats::default(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters of datagrams no session took.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// Bytes of received data all sessions hold now: reliable data not yet
    /// taken by the application, and the room reserved for messages being
    /// reassembled. Never more than [`Config::max_recv_memory`].
    pub fn recv_memory(&self) -> u64 {
        self.recv_memory.used()
    }

    /// Sessions held: open ones, and closed ones whose delivered messages have
    /// not all been taken yet.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// The ids of every session the endpoint holds, in id order: handshaking,
    /// established, closing, and closed ones whose delivered messages wait to
    /// be taken. [`session_states`](Self::session_states) tells them apart.
    pub fn sessions(&self) -> impl Iterator<Item = SessionId> + '_ {
        self.sessions.keys().copied()
    }

    /// Every session the endpoint holds with its state, in id order, without
    /// a handle per session.
    pub fn session_states(&self) -> impl Iterator<Item = (SessionId, State)> + '_ {
        self.sessions.iter().map(|(&id, s)| (id, s.state()))
    }

    /// A handle on one session, or `None` if the endpoint holds none with this id
    /// (never had it, or it closed and its messages were all taken).
    pub fn session(&mut self, id: SessionId) -> Option<Session<'_>> {
        self.sessions
            .contains_key(&id)
            .then_some(Session { endpoint: self, id })
    }

    /// The final counters of a session the endpoint has forgotten (one of the
    /// last few thousand), for reports after the fact.
    pub fn closed_session_stats(&self, id: SessionId) -> Option<&SessionStats> {
        self.retired_info.get(&id).map(|r| &r.stats)
    }

    /// The network reports that a datagram to host `ip` could not be delivered
    /// (an ICMP port or host unreachable error, as drivers learn from the
    /// socket's error queue, which names the host but not the port).
    ///
    /// When every session with that host is still handshaking, none of them can
    /// have been answered, and the error must concern one of their connect
    /// packets: if there is exactly one, it ends at once with
    /// [`CloseReason::Refused`](crate::CloseReason::Refused) instead of waiting
    /// for `handshake_timeout`. In every other case the report is ambiguous and
    /// ignored: established sessions do not end on ICMP errors (they can be
    /// transient), and keep-alive decides their fate.
    pub fn handle_unreachable(&mut self, ip: IpAddr) {
        let mut handshaking = None;
        for (id, s) in &self.sessions {
            if s.remote().ip() != ip {
                continue;
            }
            if !matches!(s.state(), State::Init | State::Handshaking) || handshaking.is_some() {
                return;
            }
            handshaking = Some(*id);
        }
        if let Some(id) = handshaking {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.refuse();
            }
            self.touched(id);
        }
    }

    /// Starts or stops accepting sessions from peers. Sessions already open are
    /// not affected.
    pub fn set_accept_incoming(&mut self, accept: bool) {
        Arc::make_mut(&mut self.config).accept_incoming = accept;
    }

    /// Starts a session with `remote`. The connect packet leaves on the next
    /// [`poll_transmit`](Self::poll_transmit); [`Event::Connected`] or
    /// [`Event::Closed`] follows. Messages may be queued at once.
    pub fn connect(&mut self, now: Instant, remote: SocketAddr) -> Result<SessionId, ConnectError> {
        if remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(ConnectError::InvalidRemote(remote));
        }
        if self.sessions.len() >= self.config.max_sessions {
            return Err(ConnectError::TooManySessions(self.sessions.len()));
        }
        let id = loop {
            let id = SessionId::from(self.rng.next_u64());
            if !self.sessions.contains_key(&id) && !self.retired_info.contains_key(&id) {
                break id;
            }
        };
        let mut session = SessionCore::connect(id, remote, self.config.clone(), now, &mut self.rng);
        session.pool = self.pool.clone();
        session.recv_memory = self.recv_memory.clone();
        self.sessions.insert(id, session);
        self.touched(id);
        Ok(id)
    }

    /// Closes every session with `code`, as [`Session::close`] does.
    pub fn close_all(&mut self, now: Instant, code: u64) {
        let ids: Vec<_> = self.sessions.keys().copied().collect();
        for id in ids {
            if let Some(s) = self.sessions.get_mut(&id) {
                s.close(now, code);
            }
            self.touched(id);
        }
    }

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
        let id = header.session;
        let Some(session) = self.sessions.get_mut(&id) else {
            if header.kind == PacketKind::Connect {
                self.handle_connect(now, from, header, header_len, data);
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
            .and_then(|()| Packet::decode_body(header.kind, data.freeze().slice(header_len..)));
        match packet {
            Ok(packet) => {
                session.handle_packet(now, from, header, packet, len, token);
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
    fn repeat_close(&mut self, id: SessionId, from: SocketAddr) {
        let Some(Retired {
            remote,
            close: Some((close, number)),
            protection,
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
        Packet::Close(close.clone()).encode(id, pn, &mut buf);
        protection.seal(
            pn,
            Header {
                kind: PacketKind::Close,
                session: id,
                number: pn,
            }
            .encoded_len(),
            &mut buf,
        );
        self.stateless.push_back((from, buf));
    }

    fn handle_connect(
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
        let id = header.session;
        if self.retired_info.contains_key(&id) {
            // A late retransmission of a connect for a session already over.
            self.stats.dropped_unknown_session += 1;
            return;
        }
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
        let mut refusal =
            if !self.config.accept_incoming || self.sessions.len() >= self.config.max_sessions {
                Some(TransportCode::Refused)
            } else if !SessionCore::valid_handshake(&hs) {
                Some(TransportCode::ProtocolViolation)
            } else {
                None
            };
        // A token proves the address; without one, a listener holding too
        // many sessions still unproven answers with a retry and keeps nothing.
        let proven = !hs.token.is_empty();
        if proven
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
        if refusal.is_none() {
            match self.authenticate(id, &hs) {
                Ok(k) => keys = k,
                Err(()) => {
                    self.stats.dropped_unauthenticated += 1;
                    refusal = Some(TransportCode::AuthenticationFailed);
                }
            }
        }
        if let Some(code) = refusal {
            self.stats.sessions_refused += 1;
            let close = Packet::Close(Close {
                code: CloseCode::Transport(code as u64),
                reason: Bytes::new(),
            });
            self.answer_statelessly(from, id, &close);
            return;
        }
        self.stats.sessions_accepted += 1;
        let challenge = (!proven).then(|| self.rng.next_u64());
        let mut session = SessionCore::accept(
            id,
            from,
            self.config.clone(),
            now,
            header.number,
            &hs,
            keys,
            challenge,
            len,
        );
        if !proven {
            self.unvalidated += 1;
            session.counted_unvalidated = true;
        }
        session.pool = self.pool.clone();
        session.recv_memory = self.recv_memory.clone();
        self.sessions.insert(id, session);
        self.touched(id);
    }

    /// Queues `packet` (a refusal or a retry) for `to` as packet number 0 of
    /// session `id` under a checksum, keeping no state; dropped when
    /// `MAX_STATELESS` answers already wait.
    fn answer_statelessly(&mut self, to: SocketAddr, id: SessionId, packet: &Packet) {
        if self.stateless.len() >= MAX_STATELESS {
            return;
        }
        let mut buf = Vec::new();
        packet.encode(id, 0, &mut buf);
        let header_len = Header {
            kind: packet.kind(),
            session: id,
            number: 0,
        }
        .encoded_len();
        Protection::Checksum.seal(0, header_len, &mut buf);
        self.stateless.push_back((to, buf));
    }

    /// The listener's half of the handshake: with a key, message 1 must open
    /// with it; the answer (message 2, repeating our parameters) and the
    /// session's packet keys come out. Without a key, a connect must carry no
    /// handshake message. `Err` is a failed authentication.
    fn authenticate(
        &mut self,
        id: SessionId,
        hs: &Handshake,
    ) -> Result<Option<(PacketKeys, Bytes)>, ()> {
        let Some(psk) = &self.config.psk else {
            return if hs.auth.is_empty() {
                Ok(None)
            } else {
                Err(())
            };
        };
        if hs.auth.is_empty() {
            return Err(());
        }
        let mut noise = NoiseHandshake::responder(psk, &prologue(id), &mut self.rng);
        let mut payload = Vec::new();
        noise.read_message(&hs.auth, &mut payload).map_err(|_| ())?;
        let mut params = Vec::new();
        own_params(&self.config).encode_params(&mut params);
        let mut message = Vec::new();
        noise.write_message(&params, &mut message).map_err(|_| ())?;
        let keys = noise.into_keys().map_err(|_| ())?;
        Ok(Some((keys, Bytes::from(message))))
    }

    /// Writes the next datagram to send into `buf` (which is cleared first) and
    /// says where it goes. Sessions take turns, one datagram each.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if let Some((destination, bytes)) = self.stateless.pop_front() {
            buf.clear();
            buf.extend_from_slice(&bytes);
            return Some(Transmit {
                destination,
                size: bytes.len(),
                segment_size: None,
            });
        }
        while let Some(id) = self.ready.pop_front() {
            let Some(session) = self.sessions.get_mut(&id) else {
                continue;
            };
            session.queued = false;
            let sent = session.poll_transmit(now, buf);
            let destination = session.take_destination();
            if sent.is_some() {
                session.queued = true;
                self.ready.push_back(id);
            }
            self.refresh(id);
            if let Some(size) = sent {
                return Some(Transmit {
                    destination,
                    size,
                    segment_size: None,
                });
            }
        }
        None
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) must be
    /// called, if any timer is armed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timeouts.first().map(|&(t, _)| t)
    }

    /// Runs every timer that expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let mut due = Vec::new();
        while let Some(&(t, id)) = self.timeouts.first() {
            if t > now {
                break;
            }
            self.timeouts.pop_first();
            due.push(id);
        }
        for id in due {
            if let Some(session) = self.sessions.get_mut(&id) {
                session.timer_key = None;
                session.handle_timeout(now);
                self.touched(id);
            }
        }
    }

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        if let Event::Datagram { session, .. } = event
            && let Some(s) = self.sessions.get_mut(&session)
        {
            s.on_datagram_consumed();
        }
        Some(event)
    }

    /// After anything happened to a session: collect its events, re-index its
    /// timer, queue it to send, or forget it once closed.
    fn touched(&mut self, id: SessionId) {
        self.refresh(id);
        self.mark_ready(id);
    }

    fn refresh(&mut self, id: SessionId) {
        self.refresh_with(id, true);
    }

    fn mark_ready(&mut self, id: SessionId) {
        if let Some(session) = self.sessions.get_mut(&id)
            && !session.queued
        {
            session.queued = true;
            self.ready.push_back(id);
        }
    }

    /// Moves a session's events to the endpoint's queue, naming the session.
    fn move_events(to: &mut VecDeque<Event>, from: &mut VecDeque<SessionEvent>, id: SessionId) {
        to.extend(from.drain(..).map(|e| match e {
            SessionEvent::Connected => Event::Connected { session: id },
            SessionEvent::Readable => Event::Readable { session: id },
            SessionEvent::StreamOpened(stream) => Event::StreamOpened {
                session: id,
                stream,
            },
            SessionEvent::StreamReadable(stream) => Event::StreamReadable {
                session: id,
                stream,
            },
            SessionEvent::StreamClosed(stream, end) => Event::StreamClosed {
                session: id,
                stream,
                end,
            },
            SessionEvent::Datagram(data) => Event::Datagram { session: id, data },
            SessionEvent::SendReady => Event::SendReady { session: id },
            SessionEvent::Closed(reason) => Event::Closed {
                session: id,
                reason,
            },
        }));
    }

    /// `forget` allows removing a finished session; a live [`Session`] handle
    /// passes `false` so that its session outlives it (its drop forgets it).
    fn refresh_with(&mut self, id: SessionId, forget: bool) {
        let Some(session) = self.sessions.get_mut(&id) else {
            return;
        };
        if session.counted_unvalidated
            && (session.is_validated() || session.state() == State::Closed)
        {
            session.counted_unvalidated = false;
            self.unvalidated -= 1;
        }
        // Most calls (a packet sent, an ack taken in) have no event to move.
        if !session.events.is_empty() {
            Self::move_events(&mut self.events, &mut session.events, id);
        }
        let next = session.next_timeout();
        if session.timer_key != next {
            if let Some(old) = session.timer_key.take() {
                self.timeouts.remove(&(old, id));
            }
            if let Some(at) = next {
                self.timeouts.insert((at, id));
            }
            session.timer_key = next;
        }
        // A closed session stays until its delivered messages are taken.
        if forget && session.state() == State::Closed && !session.has_unread() {
            if let Some(old) = session.timer_key.take() {
                self.timeouts.remove(&(old, id));
            }
            let retired = Retired {
                remote: session.remote(),
                close: session.retirement(),
                protection: session.protection().clone(),
                stats: session.stats(),
            };
            self.sessions.remove(&id);
            self.retire(id, retired);
        }
    }

    fn retire(&mut self, id: SessionId, retired: Retired) {
        if self.retired.len() >= RETIRED_IDS
            && let Some(old) = self.retired.pop_front()
        {
            self.retired_info.remove(&old);
        }
        self.retired.push_back(id);
        self.retired_info.insert(id, retired);
    }
}

/// A handle on one session of an [`Endpoint`], from [`Endpoint::session`].
#[derive(Debug)]
pub struct Session<'a> {
    endpoint: &'a mut Endpoint,
    id: SessionId,
}

impl Session<'_> {
    fn core(&self) -> &SessionCore {
        &self.endpoint.sessions[&self.id]
    }

    fn with<T>(&mut self, f: impl FnOnce(&mut SessionCore) -> T) -> T {
        let session = self
            .endpoint
            .sessions
            .get_mut(&self.id)
            .expect("a session outlives its handle");
        let out = f(session);
        self.endpoint.refresh_with(self.id, false);
        self.endpoint.mark_ready(self.id);
        out
    }

    /// The session's id, the same on both sides.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.core().remote()
    }

    /// Whether this side started the session or accepted it.
    pub fn side(&self) -> Side {
        self.core().side()
    }

    /// Where the session is in its lifecycle.
    pub fn state(&self) -> State {
        self.core().state()
    }

    /// Counters and the current RTT estimate.
    pub fn stats(&self) -> SessionStats {
        self.core().stats()
    }

    /// Largest message [`send`](Self::send) accepts now: the smaller of this
    /// side's and (once known) the peer's `max_message_size`.
    pub fn max_message_size(&self) -> usize {
        self.core().max_message_size()
    }

    /// Largest datagram [`send_datagram`](Self::send_datagram) accepts.
    pub fn max_datagram_size(&self) -> usize {
        self.core().max_datagram_size()
    }

    /// Queues a message for reliable, ordered delivery. It is split into packets
    /// of at most the MTU and delivered whole, exactly once.
    ///
    /// Returns [`SendError::Blocked`] when the send buffer is full (retry after
    /// [`Event::SendReady`]), and [`SendError::TooLarge`] for messages above
    /// [`max_message_size`](Self::max_message_size).
    pub fn send(&mut self, data: impl Into<Bytes>) -> Result<(), SendError> {
        let data = data.into();
        self.with(|s| s.send(0, data))
    }

    /// Opens a stream of `kind`. Nothing is sent until a message or a finish
    /// is: the peer learns of the stream with its first packet
    /// ([`Event::StreamOpened`]). Fails with
    /// [`StreamError::TooManyStreams`] when as many streams as the peer allows
    /// are open.
    pub fn open_stream(&mut self, kind: StreamKind) -> Result<StreamId, StreamError> {
        self.with(|s| s.open_stream(kind))
    }

    /// Queues a message on `stream`, delivered as the stream's kind says. As
    /// [`send`](Self::send) otherwise (`send_on(StreamId::DEFAULT, m)` is
    /// `send(m)`); [`SendError::StreamClosed`] after
    /// [`finish_stream`](Self::finish_stream) or
    /// [`reset_stream`](Self::reset_stream).
    pub fn send_on(&mut self, stream: StreamId, data: impl Into<Bytes>) -> Result<(), SendError> {
        let data = data.into();
        self.with(|s| s.send(stream.0, data))
    }

    /// Takes the next message delivered on `stream`;
    /// [`Event::StreamReadable`] says when to call this.
    pub fn recv_on(&mut self, stream: StreamId) -> Option<Bytes> {
        self.with(|s| s.recv(stream.0))
    }

    /// Ends this side's sending on `stream`: the peer reads every message sent,
    /// then [`Event::StreamClosed`] with [`StreamEnd::Finished`](crate::StreamEnd::Finished).
    pub fn finish_stream(&mut self, stream: StreamId) -> Result<(), SendError> {
        self.with(|s| s.finish_stream(stream))
    }

    /// Abandons this side's sending on `stream`: undelivered messages are
    /// dropped at both ends and the peer sees [`StreamEnd::Reset`](crate::StreamEnd::Reset) with `code`.
    pub fn reset_stream(&mut self, stream: StreamId, code: u64) -> Result<(), SendError> {
        self.with(|s| s.reset_stream(stream, code))
    }

    /// The session's open streams (stream 0 included).
    pub fn streams(&self) -> Vec<StreamId> {
        self.core().stream_ids().collect()
    }

    /// Takes the next delivered message, if any. Messages come whole, in order,
    /// exactly once; [`Event::Readable`] says when to call this. Taking a message
    /// returns its share of the receive window to the peer, so read promptly: a
    /// session whose messages are not taken stops its sender, not others.
    ///
    /// A closed session stays readable until its last message is taken.
    pub fn recv(&mut self) -> Option<Bytes> {
        self.with(|s| s.recv(0))
    }

    /// Queues an unreliable datagram: sent once, delivered or lost, never
    /// retransmitted. When the queue is full the oldest datagram is dropped.
    pub fn send_datagram(&mut self, data: impl Into<Bytes>) -> Result<(), DatagramError> {
        let data = data.into();
        self.with(|s| s.send_datagram(data))
    }

    /// Closes the session with an application `code`: a close packet leaves at
    /// once, queued data is dropped, and [`Event::Closed`] reports
    /// [`CloseReason::Local`](crate::CloseReason::Local). The peer sees
    /// [`CloseReason::Remote`](crate::CloseReason::Remote) with the same code.
    pub fn close(&mut self, now: Instant, code: u64) {
        self.with(|s| s.close(now, code));
    }
}

impl Drop for Session<'_> {
    /// Forgets the session if it finished while the handle was held (a closed
    /// session whose last message was just taken).
    fn drop(&mut self) {
        self.endpoint.refresh(self.id);
    }
}
