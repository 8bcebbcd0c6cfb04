//! The handle on a driven endpoint: one shard, or several behind one
//! address.

use std::collections::HashSet;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use ferry_proto::{
    AuthorizedKeys, CloseReason, EndpointStats, PublicKey, SessionId, SessionTotals, Shard, State,
    Ticket,
};
use rand_seed::seed;
use tracing::debug;

use crate::config::EndpointConfig;
use crate::driver::Driver;
use crate::error::{BindError, ConnectError};
use crate::fallback::{FallbackStats, Hub};
use crate::incoming::Incoming;
use crate::manager::{BroadcastReport, CLOSED_EVENTS_CAPACITY, ClosedEvents, Filed};
use crate::runtime::Runtime;
use crate::session::Session;
use crate::shards::{HandOver, ShardStats};
use crate::shared::{Shared, State as SharedState, WakerSet};
use crate::socket::bind_shard_sockets;

/// Application code sent to every session when the endpoint closes.
pub const ENDPOINT_CLOSED_CODE: u64 = 0;

/// One UDP address serving many sessions, driven by a background task (one
/// per shard, see [`EndpointConfig::shards`]).
///
/// Cheap to clone; every clone is the same endpoint. Dropping the last clone
/// closes the endpoint as [`close`](Self::close) does (without waiting).
///
/// With several shards the endpoint is still one: [`connect`](Self::connect)
/// places each new session on a shard in turn, [`accept`](Self::accept)
/// takes sessions from every shard, and every other method covers every
/// shard (or, given a session id, the shard the id names).
#[derive(Debug, Clone)]
pub struct Endpoint {
    inner: Arc<EndpointRef>,
}

#[derive(Debug)]
struct EndpointRef {
    /// Every shard, by index: one with the default configuration.
    shards: Arc<[Arc<Shared>]>,
    local_addr: SocketAddr,
    /// The shard the next `connect` tries first.
    next_connect: AtomicUsize,
    /// The shard the next `accept` looks at first.
    next_accept: AtomicUsize,
    /// The fallback transport's connections, and the TCP address accepting
    /// them, when configured.
    fallback: Option<(Arc<Hub>, Option<SocketAddr>)>,
}

impl Drop for EndpointRef {
    fn drop(&mut self) {
        for shared in self.shards.iter() {
            begin_close(&mut shared.lock());
        }
    }
}

fn begin_close(state: &mut crate::shared::State) {
    if !state.closing {
        state.closing = true;
        state.endpoint.set_accept_incoming(false);
        state
            .endpoint
            .close_all(Instant::now(), ENDPOINT_CLOSED_CODE);
        state.dispatch_events();
        state.acceptors.wake();
        state.deciders.wake();
        state.wake_driver();
    }
}

impl Endpoint {
    /// Binds a UDP socket on `addr` (one per shard) and starts the driver on
    /// `runtime` (one per shard).
    ///
    /// The runtime adapters (`ferry-tokio`, `ferry-smol`, `ferry-async-std`)
    /// wrap this as `Endpoint::bind(addr, config)`. Shard by shard, the
    /// socket is wrapped, the driver's timer made, then the driver spawned,
    /// before the next shard's socket is wrapped: a runtime may tie the
    /// sockets and timers made since its last spawn to the next one
    /// (`ferry-blocking` gives each driver a thread and a poller of its own).
    ///
    /// Fails with [`BindError::TooManyShards`] when the configuration asks for
    /// more than [`MAX_SHARDS`](ferry_proto::MAX_SHARDS) shards.
    pub fn bind_with(
        runtime: Arc<dyn Runtime>,
        addr: SocketAddr,
        config: impl Into<EndpointConfig>,
    ) -> Result<Self, BindError> {
        let config = config.into();
        config.protocol.validate()?;
        let count = config.shard_count()?;
        let mut sockets = bind_shard_sockets(addr, &config, count)?.into_iter();
        let count = sockets.len();
        let first = sockets.next().expect("at least one socket");
        let first = runtime
            .wrap_udp_socket(first)
            .map_err(|e| BindError::Io { addr, source: e })?;
        let local_addr = first
            .local_addr()
            .map_err(|e| BindError::Io { addr, source: e })?;
        let (first, fallback) = if config.fallback.enabled() {
            let (socket, hub, listening) = crate::fallback::wrap(&config.fallback, first, count)?;
            (socket, Some((hub, listening)))
        } else {
            (first, None)
        };
        let mut protocol = config.shard_protocol(count);
        if first.may_fragment() && protocol.max_mtu > protocol.mtu {
            // Probes could arrive in fragments and seem to fit.
            debug!(
                max_mtu = protocol.max_mtu,
                mtu = protocol.mtu,
                "the socket cannot forbid fragmentation: path MTU discovery off"
            );
            protocol.max_mtu = protocol.mtu;
        }
        let mut shards: Vec<Arc<Shared>> = Vec::with_capacity(count);
        for index in 0..count {
            let mut endpoint =
                ferry_proto::Endpoint::with_seed(protocol.clone(), seed(local_addr)?)?;
            // Dates the identity handshakes it starts (the listener's replay
            // check).
            endpoint.set_wall_clock(std::time::Instant::now(), std::time::SystemTime::now());
            if count > 1 {
                endpoint.set_shard(Shard {
                    index: index as u8,
                    count: count as u8,
                })?;
            }
            if let Some(first) = shards.first() {
                // One endpoint's shards seal tickets alike and record their
                // use together: a ticket issued by one opens at any, once.
                endpoint.share_tickets(&first.lock().endpoint);
            }
            let shared = Shared::new(endpoint);
            shared.lock().fallback = fallback.as_ref().map(|(hub, _)| hub.clone());
            shards.push(shared);
        }
        let shards: Arc<[Arc<Shared>]> = shards.into();
        let endpoint = Self {
            inner: Arc::new(EndpointRef {
                shards: shards.clone(),
                local_addr,
                next_connect: AtomicUsize::new(0),
                next_accept: AtomicUsize::new(0),
                fallback,
            }),
        };
        // From here on, an error drops `endpoint`, which closes the shards
        // already started (their drivers stop) and the others.
        let mut socket = Some(first);
        for (index, shared) in shards.iter().enumerate() {
            let socket = match socket.take() {
                Some(socket) => socket,
                None => runtime
                    .wrap_udp_socket(sockets.next().expect("one socket per shard"))
                    .map_err(|e| BindError::Io { addr, source: e })?,
            };
            let hand_over = (count > 1).then(|| HandOver::new(index as u8, shards.clone()));
            let driver = Driver::new(shared.clone(), socket, runtime.as_ref(), hand_over);
            runtime.spawn(Box::pin(driver));
        }
        if count > 1 {
            debug!(%local_addr, shards = count, "endpoint bound, sharded");
        }
        Ok(endpoint)
    }

    fn shards(&self) -> &[Arc<Shared>] {
        &self.inner.shards
    }

    /// The shard holding session `id` (the shard its id names).
    fn shard_of(&self, id: SessionId) -> &Arc<Shared> {
        let shards = self.shards();
        match shards {
            [one] => one,
            _ => &shards[usize::from(Shard::of(id, shards.len() as u8))],
        }
    }

    /// The address the sockets are bound to (with the port the OS chose for
    /// port 0): every shard's.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// The TCP address accepting the WebSocket fallback, when this endpoint
    /// listens for it ([`FallbackConfig::listen`](crate::FallbackConfig::listen)).
    pub fn fallback_addr(&self) -> Option<SocketAddr> {
        self.inner.fallback.as_ref().and_then(|(_, addr)| *addr)
    }

    /// The fallback transport's counters (all zero without it).
    pub fn fallback_stats(&self) -> FallbackStats {
        self.inner
            .fallback
            .as_ref()
            .map(|(hub, _)| hub.stats())
            .unwrap_or_default()
    }

    /// How many shards serve the endpoint: [`EndpointConfig::shards`] as
    /// resolved ([`EndpointConfig::shard_count`]).
    pub fn shard_count(&self) -> usize {
        self.shards().len()
    }

    /// Opens a session with `remote` and waits for the handshake.
    ///
    /// Fails with [`ConnectError::Failed`] carrying [`CloseReason::Timeout`] when
    /// nothing answered within `handshake_timeout`,
    /// [`CloseReason::Refused`] when the listener refused or the network
    /// reported the port closed, or [`CloseReason::Rejected`] with the code
    /// and text of the listener's application when it refused (see
    /// [`Incoming::refuse`]).
    ///
    /// With several shards, each new session goes to the next shard in turn
    /// (or the one after, should that one hold its share of `max_sessions`).
    ///
    /// **Cancel-safe** in the sense that dropping the future abandons the
    /// attempt: the half-open session is closed.
    pub async fn connect(&self, remote: SocketAddr) -> Result<Session, ConnectError> {
        self.open(remote, Start::Pin(None)).await
    }

    /// Opens a session with the listener `ticket` came from
    /// ([`Session::ticket`]), resuming: the shortened handshake of
    /// [`ferry_proto::Endpoint::connect_resumed`], with `early` queued on
    /// stream 0 before the Connect leaves, so that, if the ticket allows
    /// early data, the listener may deliver them before the handshake
    /// completes (those it does not take go normally, once each). Waits for
    /// the handshake as [`connect`](Self::connect) does. A refused ticket
    /// costs a full handshake, made by itself.
    ///
    /// Send as early data only what the application allows to take effect
    /// before the handshake: see `Config::accept_early_data`.
    pub async fn connect_resumed(
        &self,
        ticket: &Ticket,
        early: &[Bytes],
    ) -> Result<Session, ConnectError> {
        self.open(ticket.listener(), Start::Resume(ticket, early))
            .await
    }

    /// Opens a session with `remote` as [`connect`](Self::connect) does,
    /// running the identity handshake with `listener_key` pinned as the
    /// listener's public key (this endpoint needs `Config::identity`); see
    /// [`ferry_proto::Endpoint::connect_to`]. [`Session::peer_identity`]
    /// then names the listener.
    pub async fn connect_to(
        &self,
        remote: SocketAddr,
        listener_key: PublicKey,
    ) -> Result<Session, ConnectError> {
        self.open(remote, Start::Pin(Some(listener_key))).await
    }

    async fn open(&self, remote: SocketAddr, start: Start<'_>) -> Result<Session, ConnectError> {
        let (shared, session) = self.start_session(remote, start)?;
        let id = session.id();
        if let Some((hub, _)) = &self.inner.fallback {
            hub.watch(remote, Arc::downgrade(shared), id);
        }
        poll_fn(|cx| {
            let mut state = shared.lock();
            state.dispatch_events();
            let stopped = state.stopped;
            let w = state.waiters(id);
            if w.connected {
                return Poll::Ready(Ok(()));
            }
            if let Some(reason) = &w.closed {
                return Poll::Ready(Err(ConnectError::Failed(reason.clone())));
            }
            if stopped {
                return Poll::Ready(Err(ConnectError::EndpointClosed));
            }
            w.watchers.register(cx.waker());
            Poll::Pending
        })
        .await?;
        Ok(session)
    }

    /// Starts a session with `remote` on the next shard with room; returns
    /// the shard and the session's first handle.
    fn start_session(
        &self,
        remote: SocketAddr,
        start: Start<'_>,
    ) -> Result<(&Arc<Shared>, Session), ConnectError> {
        let shards = self.shards();
        let first = match shards.len() {
            1 => 0,
            n => self.inner.next_connect.fetch_add(1, Ordering::Relaxed) % n,
        };
        let mut held = 0;
        for k in 0..shards.len() {
            let shared = &shards[(first + k) % shards.len()];
            let mut state = shared.lock();
            if state.closing || state.stopped {
                return Err(ConnectError::EndpointClosed);
            }
            let started = match start {
                Start::Pin(Some(key)) => state.endpoint.connect_to(Instant::now(), remote, key),
                Start::Pin(None) => state.endpoint.connect(Instant::now(), remote),
                Start::Resume(ticket, early) => {
                    let max = state.endpoint.config().max_message_size;
                    if let Some(m) = early.iter().find(|m| m.len() > max) {
                        return Err(ferry_proto::ConnectError::EarlyDataTooLarge {
                            size: m.len(),
                            max,
                        }
                        .into());
                    }
                    state
                        .endpoint
                        .connect_resumed(Instant::now(), ticket)
                        .inspect(|&id| {
                            // Queued before the driver writes the Connect
                            // (it waits for this lock): early data.
                            if let Some(mut s) = state.endpoint.session(id) {
                                for m in early {
                                    let _ = s.send(m.clone());
                                }
                            }
                        })
                }
            };
            let id = match started {
                Ok(id) => id,
                Err(ferry_proto::ConnectError::TooManySessions(n)) if shards.len() > 1 => {
                    // This shard holds its share: try the next.
                    held += n;
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            state.wake_driver();
            // A new id has no handle yet, so this makes the first one.
            let session = Session::attach(shared, &mut state, id, remote)
                .ok_or(ConnectError::EndpointClosed)?;
            return Ok((shared, session));
        }
        Err(ferry_proto::ConnectError::TooManySessions(held).into())
    }

    /// The next session a peer opened, once its handshake completed; `None` once
    /// the endpoint is closed. The endpoint must accept sessions
    /// (`accept_incoming`). With
    /// [`Config::decide_incoming`](ferry_proto::Config::decide_incoming),
    /// sessions come from [`incoming`](Self::incoming) instead, and are
    /// never offered here.
    ///
    /// With several shards, the shards are looked at in turn, a different
    /// one first each time, so that none waits behind another.
    ///
    /// **Cancel-safe**: a session is taken only when the future resolves with it.
    pub async fn accept(&self) -> Option<Session> {
        poll_fn(|cx| self.poll_accept(cx)).await
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<Option<Session>> {
        self.poll_shards(
            cx,
            |shared, state| {
                while let Some(id) = state.incoming.pop_front() {
                    let remote = state
                        .sessions
                        .get(&id)
                        .and_then(|w| w.remote)
                        .unwrap_or_else(|| self.local_addr());
                    // `None`: a handle from `session(id)` is being dropped
                    // and closes the session; skip it.
                    if let Some(session) = Session::attach(shared, state, id, remote) {
                        return Some(session);
                    }
                }
                None
            },
            |state| &mut state.acceptors,
        )
    }

    /// Looks in every shard for what `take` finds under its lock, a
    /// different shard first each time so that none waits behind another.
    /// Finding nothing, registers the task's waker in each shard's
    /// `waiters` (under the lock the shard was looked at under, so that what
    /// is queued from then on wakes it) and stays pending, or ends with
    /// `None` once the endpoint is closing.
    fn poll_shards<T>(
        &self,
        cx: &mut Context<'_>,
        mut take: impl FnMut(&Arc<Shared>, &mut SharedState) -> Option<T>,
        waiters: impl Fn(&mut SharedState) -> &mut WakerSet,
    ) -> Poll<Option<T>> {
        let shards = self.shards();
        let first = match shards.len() {
            1 => 0,
            n => self.inner.next_accept.fetch_add(1, Ordering::Relaxed) % n,
        };
        let mut over = false;
        for k in 0..shards.len() {
            let shared = &shards[(first + k) % shards.len()];
            let mut state = shared.lock();
            if let Some(found) = take(shared, &mut state) {
                return Poll::Ready(Some(found));
            }
            over |= state.closing || state.stopped;
            waiters(&mut state).register(cx.waker());
        }
        if over {
            return Poll::Ready(None);
        }
        Poll::Pending
    }

    /// The next peer asking to open a session, for the application to
    /// decide on ([`Incoming::accept`] or [`Incoming::refuse`]); `None` once
    /// the endpoint is closed. Only with
    /// [`Config::decide_incoming`](ferry_proto::Config::decide_incoming)
    /// (and `accept_incoming`): without it sessions are accepted at once and
    /// come from [`accept`](Self::accept), and this waits until the endpoint
    /// closes.
    ///
    /// A request the application does not take here, or takes and does not
    /// decide on, within `handshake_timeout` is refused by the endpoint.
    ///
    /// **Cancel-safe**: a request is taken only when the future resolves
    /// with it.
    pub async fn incoming(&self) -> Option<Incoming> {
        poll_fn(|cx| self.poll_incoming(cx)).await
    }

    fn poll_incoming(&self, cx: &mut Context<'_>) -> Poll<Option<Incoming>> {
        self.poll_shards(
            cx,
            |shared, state| {
                while let Some(id) = state.pending.pop_front() {
                    let waiting = state
                        .endpoint
                        .session(id)
                        .filter(|s| s.state() == State::Incoming)
                        .map(|s| (s.remote_addr(), s.peer_params()));
                    match waiting {
                        Some((remote, params)) if !state.closing && !state.stopped => {
                            return Some(Incoming::new(shared.clone(), id, remote, params));
                        }
                        // Ended while queued (the starter gave up, or it
                        // timed out), or the endpoint is closing (which
                        // refuses it).
                        _ => state.release_undecided(id),
                    }
                }
                None
            },
            |state| &mut state.deciders,
        )
    }

    /// The ids of the open sessions, in id order.
    ///
    /// Open means handshaking or established: a session leaves the list as
    /// soon as it starts closing (a local [`Session::close`], the peer's
    /// close, a timeout, a refusal, a protocol error, the endpoint's
    /// [`close`](Self::close)), even though the protocol keeps a closing
    /// session a little longer to absorb late packets and handles on it keep
    /// answering [`Session::closed`]. Sessions waiting in the
    /// [`accept`](Self::accept) queue are listed. Empty once the endpoint
    /// stopped.
    pub fn sessions(&self) -> Vec<SessionId> {
        match self.shards() {
            [one] => one.lock().open_sessions(),
            shards => {
                let mut ids: Vec<SessionId> = shards
                    .iter()
                    .flat_map(|shared| shared.lock().open_sessions())
                    .collect();
                ids.sort_unstable();
                ids
            }
        }
    }

    /// How many sessions are open: the length of [`sessions`](Self::sessions).
    pub fn session_count(&self) -> usize {
        self.shards()
            .iter()
            .map(|shared| shared.lock().open_sessions().len())
            .sum()
    }

    /// The endpoint's counters: datagrams received, and those dropped as
    /// malformed or corrupted, unauthenticated, for an unknown session or
    /// from the wrong address; sessions accepted and refused. Per-session
    /// counters are in [`Session::stats`]. With several shards, the sum of
    /// theirs (a datagram handed from one shard to another counts once, at
    /// the shard that took it); [`shard_stats`](Self::shard_stats) tells
    /// them apart.
    pub fn stats(&self) -> EndpointStats {
        match self.shards() {
            [one] => one.lock().endpoint.stats().clone(),
            shards => {
                let mut total = EndpointStats::default();
                for shared in shards {
                    total.add(shared.lock().endpoint.stats());
                }
                total
            }
        }
    }

    /// Counters summed over every session this endpoint has held, closed
    /// ones included (bytes and packets each way, retransmissions, losses,
    /// round-trip samples): what an exporter gives as counters. Taken
    /// under the driver's lock, one pass over the open sessions; with
    /// several shards, the sum of theirs.
    pub fn session_totals(&self) -> SessionTotals {
        let mut total = SessionTotals::default();
        for shared in self.shards() {
            total.add(&shared.lock().endpoint.session_totals());
        }
        total
    }

    /// Each shard's open sessions and hand-overs, by shard index (one entry
    /// with the default single shard, whose hand-overs are always zero).
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        self.shards()
            .iter()
            .map(|shared| {
                let mut state = shared.lock();
                ShardStats {
                    sessions: state.open_sessions().len(),
                    handed_over: state.handed_over,
                    inbox_dropped: state.inbox_dropped,
                }
            })
            .collect()
    }

    /// A handle on the open session `id`; `None` if it is not open (never
    /// existed here, or is closing or closed: see [`sessions`](Self::sessions)).
    ///
    /// The handle is the same session as every other handle on it (a clone of
    /// the one [`connect`](Self::connect) or [`accept`](Self::accept) returned),
    /// so dropping it closes nothing while those live. For a session still
    /// waiting in the accept queue it is the first handle: `accept` will return
    /// the same session while it lives, and dropping it without another handle
    /// closes the session with [`DROPPED_CODE`](crate::DROPPED_CODE), as
    /// dropping any last handle does (and `accept` then skips it).
    pub fn session(&self, id: SessionId) -> Option<Session> {
        let shared = self.shard_of(id);
        let mut state = shared.lock();
        if !state.is_open(id) {
            return None;
        }
        let remote = state.endpoint.session(id)?.remote_addr();
        Session::attach(shared, &mut state, id, remote)
    }

    /// Queues `message` on every established session at once, without ever
    /// waiting: a server streaming to many clients is not held up by one slow
    /// client. Sessions still handshaking are skipped.
    ///
    /// Each session either queues the message (a cheap [`Bytes`] clone: the
    /// bytes are shared, not copied) and is listed in
    /// [`BroadcastReport::sent`], or is listed in
    /// [`blocked`](BroadcastReport::blocked) (its send buffer is full: its
    /// peer reads slower than the others) or
    /// [`too_large`](BroadcastReport::too_large) (the message exceeds what
    /// the session accepts). To wait for room on one session, use
    /// [`Session::send`] on it (a handle from [`session`](Self::session)).
    pub fn broadcast(&self, message: impl Into<Bytes>) -> BroadcastReport {
        let message = message.into();
        let mut report = BroadcastReport::default();
        for shared in self.shards() {
            let mut state = shared.lock();
            let ids: Vec<_> = if state.stopped {
                Vec::new()
            } else {
                state.endpoint.sessions().collect()
            };
            let mut sent = false;
            for id in ids {
                // Established: neither handshaking nor closing (so no close was
                // reported for it either).
                let Some(mut s) = state.endpoint.session(id) else {
                    continue;
                };
                if s.state() != State::Established {
                    continue;
                }
                let filed = Filed::of(s.send(message.clone()));
                sent |= filed == Filed::Sent;
                report.file(id, filed);
            }
            if sent {
                state.wake_driver();
            }
        }
        if self.shards().len() > 1 {
            // Each shard's in id order; all of them in id order.
            report.sort_by_id();
        }
        report
    }

    /// Queues `message` on each session of `ids`, without ever waiting, as
    /// [`broadcast`](Self::broadcast) does; ids listed twice are sent to once.
    ///
    /// Every id ends up in exactly one list of the report: `sent` (queued; a
    /// session still handshaking queues it too, as [`Session::send`] would),
    /// `blocked` (send buffer full), `too_large`, `closed` (closing or closed,
    /// or the endpoint stopped: [`close_reason`](Self::close_reason) may say
    /// why) or `unknown` (no such session here, or one closed so long ago
    /// that the endpoint forgot it).
    pub fn broadcast_to(&self, ids: &[SessionId], message: impl Into<Bytes>) -> BroadcastReport {
        let message = message.into();
        let shards = self.shards();
        // Each id once, grouped by shard, in the caller's order.
        let mut seen = HashSet::with_capacity(ids.len());
        let mut by_shard: Vec<Vec<(usize, SessionId)>> = vec![Vec::new(); shards.len()];
        for (position, &id) in ids.iter().enumerate() {
            if seen.insert(id) {
                let shard = match shards.len() {
                    1 => 0,
                    n => usize::from(Shard::of(id, n as u8)),
                };
                by_shard[shard].push((position, id));
            }
        }
        let mut filed = Vec::with_capacity(seen.len());
        for (shared, ids) in shards.iter().zip(&by_shard) {
            if ids.is_empty() {
                continue;
            }
            let mut state = shared.lock();
            let mut sent = false;
            for &(position, id) in ids {
                let f = if state.stopped {
                    Filed::Closed
                } else {
                    let result = match state.endpoint.session(id) {
                        Some(mut s) => s.send(message.clone()),
                        None => Err(ferry_proto::SendError::UnknownSession),
                    };
                    let forgotten = matches!(result, Err(ferry_proto::SendError::UnknownSession))
                        && state.closed_reason(id).is_none()
                        && state.endpoint.closed_session_stats(id).is_none();
                    if forgotten {
                        Filed::Unknown
                    } else {
                        Filed::of(result)
                    }
                };
                sent |= f == Filed::Sent;
                filed.push((position, id, f));
            }
            if sent {
                state.wake_driver();
            }
        }
        if shards.len() > 1 {
            filed.sort_unstable_by_key(|&(position, ..)| position);
        }
        let mut report = BroadcastReport::default();
        for (_, id, f) in filed {
            report.file(id, f);
        }
        report
    }

    /// Subscribes to the sessions that close from now on: the returned
    /// [`ClosedEvents`] yields a
    /// [`ClosedEvent::Closed`](crate::ClosedEvent::Closed) with the id and
    /// the [`CloseReason`] of every session of this endpoint that closes after
    /// this call, whoever closed it, then `None` once the endpoint stopped.
    ///
    /// Any number of subscriptions may exist; each sees every event. Each
    /// holds at most [`CLOSED_EVENTS_CAPACITY`] events not yet taken (per
    /// shard, with several): beyond, the oldest are dropped and the
    /// subscriber gets [`ClosedEvent::Missed`](crate::ClosedEvent::Missed)
    /// with their number, in their place. Use
    /// [`closed_events_with_capacity`](Self::closed_events_with_capacity) to
    /// choose the bound.
    pub fn closed_events(&self) -> ClosedEvents {
        self.closed_events_with_capacity(CLOSED_EVENTS_CAPACITY)
    }

    /// [`closed_events`](Self::closed_events), holding at most `capacity`
    /// events not yet taken (at least 1; per shard, with several).
    pub fn closed_events_with_capacity(&self, capacity: usize) -> ClosedEvents {
        ClosedEvents::subscribe(self.shards(), capacity)
    }

    /// Starts or stops accepting new sessions; open sessions are not affected.
    ///
    /// While stopped, peers' connects are refused: their
    /// [`connect`](Self::connect) fails with [`CloseReason::Refused`]. Sessions
    /// already waiting in the [`accept`](Self::accept) queue stay there.
    pub fn set_accept_incoming(&self, accept: bool) {
        for shared in self.shards() {
            shared.lock().endpoint.set_accept_incoming(accept);
        }
    }

    /// Hands the listener a new list of admitted starter keys (`None`: any
    /// key), on every shard; see
    /// [`ferry_proto::Endpoint::set_authorized_keys`]. A key taken off the
    /// list opens no new session; its open sessions go on until closed.
    pub fn set_authorized_keys(&self, keys: Option<AuthorizedKeys>) {
        for shared in self.shards() {
            shared.lock().endpoint.set_authorized_keys(keys.clone());
        }
    }

    /// Closes every session (their close packets leave at once), stops
    /// accepting, and waits for the driver (every shard's) to stop: once
    /// every session has sent its Close the three times the protocol sends
    /// it unprompted, one RTO apart (about 50 ms on a LAN; protocol.md
    /// §6.11), or ended on the peer's own Close. A process that exits sooner
    /// may leave its peer waiting for a session that is gone, if its one
    /// Close was lost.
    ///
    /// **Cancel-safe**: the close proceeds whether or not the future is awaited.
    pub async fn close(&self) {
        for shared in self.shards() {
            begin_close(&mut shared.lock());
        }
        poll_fn(|cx| {
            let mut running = false;
            for shared in self.shards() {
                let mut state = shared.lock();
                if !state.stopped {
                    state.stop_watchers.register(cx.waker());
                    running = true;
                }
            }
            if running {
                Poll::Pending
            } else {
                Poll::Ready(())
            }
        })
        .await;
    }

    /// Whether the endpoint was closed (or a driver stopped under it).
    pub fn is_closed(&self) -> bool {
        self.shards().iter().any(|shared| {
            let state = shared.lock();
            state.closing || state.stopped
        })
    }

    /// Why a session ended, if this endpoint still remembers it.
    pub fn close_reason(&self, id: SessionId) -> Option<CloseReason> {
        self.shard_of(id).lock().closed_reason(id)
    }
}

mod rand_seed {
    use std::io;
    use std::net::SocketAddr;

    use crate::error::BindError;

    /// 32 bytes from the operating system's secure generator: session ids
    /// and the handshakes' ephemeral keys come from it.
    pub(super) fn seed(addr: SocketAddr) -> Result<[u8; 32], BindError> {
        let mut seed = [0; 32];
        getrandom::fill(&mut seed).map_err(|e| BindError::Io {
            addr,
            source: io::Error::other(format!("the operating system gave no random bytes: {e}")),
        })?;
        Ok(seed)
    }
}

/// How a session starts: a full handshake (pinning a listener key, or
/// `Config::listener_key`), or resumed with a ticket and early messages.
#[derive(Clone, Copy)]
enum Start<'a> {
    Pin(Option<PublicKey>),
    Resume(&'a Ticket, &'a [Bytes]),
}
