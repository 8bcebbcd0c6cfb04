//! Many sessions over one socket: routing, timers, fair transmission, events.

mod admission;
mod handle;
mod input;
pub(crate) mod memory;
pub(crate) mod pool;
mod replay;
mod retry;
mod slot;
#[cfg(test)]
mod tests;
mod tickets;
mod timer_index;
mod transmit;

pub use handle::Session;
pub use transmit::{MAX_BATCH_BYTES, Transmit};

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::Config;
use crate::crypto::{AuthorizedKeys, PublicKey};
use crate::error::{ConfigError, ConnectError};
use crate::event::{CloseText, Event};
use crate::id::{MAX_SHARDS, SessionId, Shard, issue};
use crate::message::SendProgress;
use crate::session::{SessionCore, State};
use crate::stats::{EndpointStats, SessionStats, SessionTotals};
use crate::wire::packet::Close;
use crate::wire::protection::Protection;
use admission::Admission;
use memory::RecvMemory;
use pool::BufferPool;
use replay::ReplayGuard;
use retry::RetryTokens;
use slot::Slot;
use tickets::SharedTickets;
use timer_index::TimerIndex;
use transmit::Carry;

/// Stateless answers (refusals, retries) waiting to be sent, at most; more are
/// dropped (a starter whose connect got no answer sends it again).
const MAX_STATELESS: usize = 1024;
/// Closed session ids remembered so that late packets are not mistaken for new
/// sessions and ids are never reused.
const RETIRED_IDS: usize = 4096;

/// What the endpoint remembers of a session it forgot.
#[derive(Debug)]
struct Retired {
    remote: SocketAddr,
    /// The peer's id for the session, which the repeated close carries.
    peer_id: SessionId,
    /// The starter's id, for a session this side accepted (its alias).
    alias: Option<SessionId>,
    /// The close this side sent, repeated to a peer that keeps talking, and the
    /// packet number to send it with.
    close: Option<(Close, u64)>,
    /// `close` is a stateless refusal of the session while it waited for the
    /// application's decision: a repeated Connect gets it again.
    refused: bool,
    /// How the session's packets were protected (an encrypted session's peer
    /// accepts only an encrypted close).
    protection: Protection,
    /// The session's counters when it was forgotten.
    stats: SessionStats,
    /// What its messages had come to when it was forgotten.
    send_totals: SendProgress,
}

/// What the sessions of one endpoint share, handed to each at its start.
#[derive(Debug, Clone, Default)]
pub(crate) struct Shared {
    /// Buffers of received messages, back from the application for reuse.
    pub(crate) pool: BufferPool,
    /// Received data all sessions hold, against `max_recv_memory`.
    pub(crate) recv_memory: RecvMemory,
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
///   `send_datagram`, `close` and `close_with_reason` on a [`Session`]
///   handle, with `accept` and `refuse` for an incoming session waiting for
///   the application's decision ([`Config::decide_incoming`]);
/// - **output** — [`poll_transmit`](Self::poll_transmit) (or
///   [`poll_transmit_batch`](Self::poll_transmit_batch), for segmentation
///   offload), [`poll_event`](Self::poll_event), [`poll_timeout`](Self::poll_timeout).
///
/// After any input or command, drain the outputs in this order: `poll_transmit`
/// until `None` (send each datagram, or each batch), `poll_event` until `None`, then
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
    sessions: BTreeMap<SessionId, Slot>,
    /// Each session's earliest deadline.
    timers: TimerIndex,
    ready: VecDeque<SessionId>,
    events: VecDeque<Event>,
    /// What every session shares: the buffer pool and the receive-memory
    /// budget.
    shared: Shared,
    stateless: VecDeque<(SocketAddr, Vec<u8>)>,
    /// A datagram that did not fit the last batch, first in the next.
    carry: Carry,
    retired: VecDeque<SessionId>,
    retired_info: HashMap<SessionId, Retired>,
    /// For each session this side accepted, held or retired: the starter's
    /// id (which its Connects carry) to the id this side issued.
    aliases: HashMap<SessionId, SessionId>,
    /// Which shard of a spread endpoint this is: every id it issues says so.
    shard: Shard,
    /// New sessions per source address this second.
    admission: Admission,
    /// Issues and checks the tokens of stateless retries.
    retry: RetryTokens,
    /// Sessions whose peers have not yet proved their address.
    unvalidated: usize,
    /// Incoming sessions waiting for the application's decision.
    undecided: usize,
    stats: EndpointStats,
    /// The counters of the sessions already forgotten, summed.
    closed_totals: SessionTotals,
    /// Identity handshakes accepted lately, per starter key: replays of
    /// their message 1 open nothing.
    replay: ReplayGuard,
    /// The wall clock at an instant, for the timestamps of identity
    /// handshakes ([`set_wall_clock`](Self::set_wall_clock)).
    wall_clock: Option<(Instant, SystemTime)>,
    /// The last timestamp this endpoint wrote: each is larger.
    last_timestamp: u64,
    /// The keys this listener seals its resumption tickets under and the
    /// ids of the tickets used (shared with the other shards of an
    /// endpoint).
    tickets: SharedTickets,
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
            rng,
            sessions: BTreeMap::new(),
            timers: TimerIndex::default(),
            ready: VecDeque::new(),
            events: VecDeque::new(),
            shared: Shared::default(),
            stateless: VecDeque::new(),
            carry: Carry::default(),
            retired: VecDeque::new(),
            retired_info: HashMap::new(),
            aliases: HashMap::new(),
            shard: Shard::default(),
            admission: Admission::default(),
            retry: RetryTokens::new(retry_key),
            unvalidated: 0,
            undecided: 0,
            stats: EndpointStats::default(),
            closed_totals: SessionTotals::default(),
            replay: ReplayGuard::default(),
            wall_clock: None,
            last_timestamp: 0,
            tickets: SharedTickets::new(config.ticket_lifetime.as_secs()),
            config: Arc::new(config),
        })
    }

    /// Makes this endpoint one of `shard.count` shards serving one address,
    /// each on its own socket and core: every session id it issues from now on
    /// names `shard.index`, so that a driver can hand a datagram that reached
    /// another shard's socket to this one ([`Shard::of_datagram`]). Set it
    /// before the first session; the default is one shard.
    pub fn set_shard(&mut self, shard: Shard) -> Result<(), ConfigError> {
        if shard.count == 0 {
            return Err(ConfigError::Zero("shard count"));
        }
        if shard.count > MAX_SHARDS {
            return Err(ConfigError::TooLarge {
                field: "shard count",
                value: shard.count.into(),
                max: MAX_SHARDS.into(),
            });
        }
        if shard.index >= shard.count {
            return Err(ConfigError::TooLarge {
                field: "shard index",
                value: shard.index.into(),
                max: u64::from(shard.count) - 1,
            });
        }
        self.shard = shard;
        Ok(())
    }

    /// Which shard this endpoint is.
    pub fn shard(&self) -> Shard {
        self.shard
    }

    /// A fresh id no session of this endpoint has or had, carrying the
    /// configured server id and this shard.
    fn fresh_id(&mut self) -> SessionId {
        loop {
            let id = issue(&mut self.rng, self.config.server_id.as_ref(), self.shard);
            if !self.sessions.contains_key(&id) && !self.retired_info.contains_key(&id) {
                return id;
            }
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Counters of datagrams no session took.
    pub fn stats(&self) -> &EndpointStats {
        &self.stats
    }

    /// Counters summed over every session this endpoint has held: those it
    /// forgot, and those it holds now (one pass over them). Each only
    /// grows, so exporters give them as counters.
    pub fn session_totals(&self) -> SessionTotals {
        let mut total = self.closed_totals;
        for slot in self.sessions.values() {
            total.add_session(&slot.session.stats());
        }
        total
    }

    /// Bytes of received data all sessions hold now: reliable data not yet
    /// taken by the application, and the room reserved for messages being
    /// reassembled. Never more than [`Config::max_recv_memory`].
    pub fn recv_memory(&self) -> u64 {
        self.shared.recv_memory.used()
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
        self.sessions.iter().map(|(&id, s)| (id, s.session.state()))
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

    /// What the messages of a session the endpoint has forgotten (one of the
    /// last few thousand) had come to: acknowledged, or dropped by the
    /// close. A driver answers a wait for acknowledgement that outlived the
    /// session with it: the last acks and the close can arrive together.
    pub fn closed_session_send_totals(&self, id: SessionId) -> Option<SendProgress> {
        self.retired_info.get(&id).map(|r| r.send_totals)
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
        for (id, Slot { session: s, .. }) in &self.sessions {
            if s.remote().ip() != ip {
                continue;
            }
            if !matches!(s.state(), State::Init | State::Handshaking) || handshaking.is_some() {
                return;
            }
            handshaking = Some(*id);
        }
        if let Some(id) = handshaking {
            if let Some(slot) = self.sessions.get_mut(&id) {
                slot.session.refuse();
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
    ///
    /// With an [`identity`](Config::identity), the session pins
    /// [`Config::listener_key`]; see [`connect_to`](Self::connect_to) to pin
    /// another key.
    pub fn connect(&mut self, now: Instant, remote: SocketAddr) -> Result<SessionId, ConnectError> {
        let pin = match (&self.config.identity, self.config.listener_key) {
            (Some(_), None) => return Err(ConnectError::NoListenerKey),
            (_, pin) => pin,
        };
        self.open(now, remote, pin, None)
    }

    /// Starts a session with `remote` as [`connect`](Self::connect) does,
    /// running the identity handshake with `listener_key` as the listener's
    /// pinned public key: only the holder of its private key can complete it,
    /// and [`Session::peer_identity`] names it once done. This endpoint needs
    /// an [`identity`](Config::identity).
    pub fn connect_to(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        listener_key: PublicKey,
    ) -> Result<SessionId, ConnectError> {
        if self.config.identity.is_none() {
            return Err(ConnectError::NoIdentity);
        }
        self.open(now, remote, Some(listener_key), None)
    }

    /// Gives the endpoint the wall-clock time at `now`, from which it dates
    /// the identity handshakes it starts (listeners refuse a handshake whose
    /// date they have seen: a replay). Drivers call it once at start;
    /// without it, handshakes carry no date and a listener cannot tell their
    /// replays apart (it answers them; the replayer still learns nothing).
    pub fn set_wall_clock(&mut self, now: Instant, wall: SystemTime) {
        self.wall_clock = Some((now, wall));
    }

    /// Hands a listener a new list of admitted starter keys (or `None`: any
    /// key), as [`Config::authorized_keys`] does at start: a key taken off the
    /// list gets no new session from now on; its sessions already open go on
    /// (close them with [`Session::close`] where
    /// [`Session::peer_identity`] names it).
    pub fn set_authorized_keys(&mut self, keys: Option<AuthorizedKeys>) {
        Arc::make_mut(&mut self.config).authorized_keys = keys;
    }

    /// The date message 1 of an identity handshake carries: microseconds
    /// since the Unix epoch, each larger than the last; 0 without a clock.
    fn timestamp(&mut self, now: Instant) -> u64 {
        let Some((at, wall)) = self.wall_clock else {
            return 0;
        };
        let since_epoch =
            wall.duration_since(UNIX_EPOCH).unwrap_or_default() + now.saturating_duration_since(at);
        let micros = u64::try_from(since_epoch.as_micros()).unwrap_or(u64::MAX);
        self.last_timestamp = micros.max(self.last_timestamp + 1);
        self.last_timestamp
    }

    /// Starts a session with `remote`: a full handshake pinning `pin`, or
    /// resumed with `ticket`.
    fn open(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        pin: Option<PublicKey>,
        ticket: Option<&crate::Ticket>,
    ) -> Result<SessionId, ConnectError> {
        if remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(ConnectError::InvalidRemote(remote));
        }
        if self.sessions.len() >= self.config.max_sessions {
            return Err(ConnectError::TooManySessions(self.sessions.len()));
        }
        let id = self.fresh_id();
        let timestamp = if pin.is_some() {
            self.timestamp(now)
        } else {
            0
        };
        let (config, shared) = (self.config.clone(), self.shared.clone());
        let session = SessionCore::connect(
            id,
            remote,
            config,
            shared,
            now,
            pin,
            timestamp,
            ticket.cloned(),
            &mut self.rng,
        );
        self.sessions.insert(id, Slot::new(session, false));
        self.stats.sessions_started += 1;
        self.touched(id);
        Ok(id)
    }

    /// Closes every session with `code`, as [`Session::close`] does
    /// (refusing those waiting for a decision).
    pub fn close_all(&mut self, now: Instant, code: u64) {
        let ids: Vec<_> = self.sessions.keys().copied().collect();
        for id in ids {
            self.close_session(id, now, code, CloseText::EMPTY);
            self.touched(id);
        }
    }

    /// Closes session `id` with `code` and `reason`; one waiting for the
    /// application's decision is refused with them.
    fn close_session(&mut self, id: SessionId, now: Instant, code: u64, reason: CloseText) {
        if self.refuse_incoming(id, code, reason.clone()) {
            return;
        }
        if let Some(slot) = self.sessions.get_mut(&id) {
            slot.session.close(now, code, reason);
        }
    }

    /// The earliest instant at which [`handle_timeout`](Self::handle_timeout) must be
    /// called, if any timer is armed.
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.first()
    }

    /// Runs every timer that expired at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<_> = std::iter::from_fn(|| self.timers.pop_due(now)).collect();
        for id in due {
            if let Some(slot) = self.sessions.get_mut(&id) {
                slot.timer_key = None;
                let undecided = slot.session.state() == State::Incoming;
                slot.session.handle_timeout(now);
                if undecided && slot.session.state() == State::Closed {
                    let (remote, starter) = (slot.session.remote(), slot.session.peer_id());
                    let close = self.refuse_undecided(remote, starter);
                    if let Some(slot) = self.sessions.get_mut(&id) {
                        slot.session.keep_refusal(close);
                    }
                }
                self.touched(id);
            }
        }
    }

    /// The next event for the application.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<Event> {
        let event = self.events.pop_front()?;
        if let Event::Datagram { session, .. } = event
            && let Some(slot) = self.sessions.get_mut(&session)
        {
            slot.session.on_datagram_consumed();
        }
        Some(event)
    }
}
