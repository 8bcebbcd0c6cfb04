//! The blocking handle on an endpoint.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ferry_async::{
    BindError, BroadcastReport, CloseReason, ConnectError, EndpointConfig, EndpointStats,
    SessionId, SessionTotals, ShardStats,
};
use thiserror::Error;
use tracing::error;

use crate::block_on::{block_on, block_on_until, deadline_after};
use crate::events::ClosedEvents;
use crate::incoming::Incoming;
use crate::runtime::BlockingRuntime;
use crate::session::Session;

/// No session completed its handshake before
/// [`accept_timeout`](Endpoint::accept_timeout) gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("timed out waiting for an incoming session")]
pub struct AcceptTimeout;

/// One UDP socket serving many sessions, driven by a thread of its own (or
/// one socket and one thread per shard, with
/// [`EndpointConfig::shards`] above one).
///
/// Cheap to clone (two `Arc`s); every clone is the same endpoint, and any thread
/// may use it. Dropping the last clone closes the endpoint as
/// [`close`](Self::close) does, without waiting: the driver thread sends the
/// close packets and ends on its own.
#[derive(Debug, Clone)]
pub struct Endpoint {
    inner: ferry_async::Endpoint,
    runtime: Arc<BlockingRuntime>,
}

impl Endpoint {
    /// Binds a UDP socket on `addr` and starts the endpoint's driver thread
    /// (named `ferry-driver`): one of each per shard (see
    /// [`EndpointConfig::shards`]).
    ///
    /// Fails with [`BindError::AddrInUse`] and the like when the socket cannot
    /// be bound, [`BindError::Config`] when the protocol configuration is
    /// invalid, and [`BindError::Io`] when the poller or the thread cannot be
    /// created.
    pub fn bind(addr: SocketAddr, config: impl Into<EndpointConfig>) -> Result<Self, BindError> {
        let config = config.into();
        let runtime =
            Arc::new(BlockingRuntime::new().map_err(|e| BindError::Io { addr, source: e })?);
        let inner = ferry_async::Endpoint::bind_with(runtime.clone(), addr, config)?;
        if let Some(e) = runtime.take_spawn_error() {
            return Err(BindError::Io { addr, source: e });
        }
        Ok(Self { inner, runtime })
    }

    /// The address the socket is bound to (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr()
    }

    /// Opens a session with `remote`, blocking until the handshake completes.
    ///
    /// The wait is bounded by the configuration's `handshake_timeout`: then
    /// this fails with [`ConnectError::Failed`] carrying
    /// [`CloseReason::Timeout`]. It fails sooner, with
    /// [`CloseReason::Refused`], when the listener refused or the network
    /// reported the port closed, or with [`CloseReason::Rejected`] (the
    /// code and text of the listener's application) when its application
    /// refused.
    pub fn connect(&self, remote: SocketAddr) -> Result<Session, ConnectError> {
        block_on(self.inner.connect(remote)).map(Session::from_async)
    }

    /// Opens a session with `remote` running the identity handshake with
    /// `listener_key` pinned, and blocks until it is established; see
    /// [`ferry_async::Endpoint::connect_to`].
    pub fn connect_to(
        &self,
        remote: SocketAddr,
        listener_key: ferry_async::PublicKey,
    ) -> Result<Session, ConnectError> {
        block_on(self.inner.connect_to(remote, listener_key)).map(Session::from_async)
    }

    /// Opens a session with the listener `ticket` came from
    /// ([`Session::ticket`]), resuming, with `early` as early data, and
    /// blocks until it is established; see
    /// [`ferry_async::Endpoint::connect_resumed`].
    pub fn connect_resumed(
        &self,
        ticket: &ferry_async::Ticket,
        early: &[bytes::Bytes],
    ) -> Result<Session, ConnectError> {
        block_on(self.inner.connect_resumed(ticket, early)).map(Session::from_async)
    }

    /// Blocks until a peer opens a session and its handshake completes; `None`
    /// once the endpoint is closed. The endpoint must accept sessions
    /// (`accept_incoming`, as in [`EndpointConfig::server`], or
    /// [`set_accept_incoming`](Self::set_accept_incoming)). With
    /// [`Config::decide_incoming`](crate::Config::decide_incoming), sessions
    /// come from [`incoming`](Self::incoming) instead.
    pub fn accept(&self) -> Option<Session> {
        block_on(self.inner.accept()).map(Session::from_async)
    }

    /// [`accept`](Self::accept), waiting at most `timeout`: `Ok(Some(session))`
    /// for a new session, `Ok(None)` once the endpoint is closed (as `accept`),
    /// and `Err(AcceptTimeout)` when no session came in time. A zero `timeout`
    /// takes a session only if one is already waiting.
    pub fn accept_timeout(&self, timeout: Duration) -> Result<Option<Session>, AcceptTimeout> {
        block_on_until(self.inner.accept(), deadline_after(timeout))
            .map(|session| session.map(Session::from_async))
            .ok_or(AcceptTimeout)
    }

    /// Blocks until a peer asks to open a session, for the application to
    /// decide on ([`Incoming::accept`] or [`Incoming::refuse`]); `None` once
    /// the endpoint is closed. Only with
    /// [`Config::decide_incoming`](crate::Config::decide_incoming) (and
    /// `accept_incoming`); without it sessions come from
    /// [`accept`](Self::accept). See [`ferry_async::Endpoint::incoming`].
    pub fn incoming(&self) -> Option<Incoming> {
        block_on(self.inner.incoming()).map(Incoming::from_async)
    }

    /// [`incoming`](Self::incoming), waiting at most `timeout`:
    /// `Ok(Some(incoming))` for a request, `Ok(None)` once the endpoint is
    /// closed, and `Err(AcceptTimeout)` when none came in time.
    pub fn incoming_timeout(&self, timeout: Duration) -> Result<Option<Incoming>, AcceptTimeout> {
        block_on_until(self.inner.incoming(), deadline_after(timeout))
            .map(|incoming| incoming.map(Incoming::from_async))
            .ok_or(AcceptTimeout)
    }

    /// The TCP address accepting the WebSocket fallback, when this endpoint
    /// listens for it. See [`ferry_async::Endpoint::fallback_addr`].
    pub fn fallback_addr(&self) -> Option<SocketAddr> {
        self.inner.fallback_addr()
    }

    /// The fallback transport's counters (all zero without it). See
    /// [`ferry_async::Endpoint::fallback_stats`].
    pub fn fallback_stats(&self) -> ferry_async::FallbackStats {
        self.inner.fallback_stats()
    }

    /// How many shards serve the endpoint, each with a driver thread of its
    /// own (see [`EndpointConfig::shards`]).
    pub fn shard_count(&self) -> usize {
        self.inner.shard_count()
    }

    /// Each shard's open sessions and hand-overs, by shard index. See
    /// [`ferry_async::Endpoint::shard_stats`].
    pub fn shard_stats(&self) -> Vec<ShardStats> {
        self.inner.shard_stats()
    }

    /// The ids of the open sessions, in id order: handshaking or
    /// established, not closing (a session leaves the list as soon as it
    /// starts closing), including those waiting in the
    /// [`accept`](Self::accept) queue. Empty once the endpoint stopped. See
    /// [`ferry_async::Endpoint::sessions`].
    pub fn sessions(&self) -> Vec<SessionId> {
        self.inner.sessions()
    }

    /// How many sessions are open: the length of [`sessions`](Self::sessions).
    pub fn session_count(&self) -> usize {
        self.inner.session_count()
    }

    /// The endpoint's counters (datagrams received and dropped, sessions
    /// accepted and refused). See [`ferry_async::Endpoint::stats`].
    pub fn stats(&self) -> EndpointStats {
        self.inner.stats()
    }

    /// Counters summed over every session this endpoint has held, closed
    /// ones included. See [`ferry_async::Endpoint::session_totals`].
    pub fn session_totals(&self) -> SessionTotals {
        self.inner.session_totals()
    }

    /// A handle on the open session `id`; `None` if it is not open (never
    /// existed here, or is closing or closed).
    ///
    /// The handle is the same session as every other handle on it, so
    /// dropping it closes nothing while those live. For a session still
    /// waiting in the accept queue it is the first handle: dropping it
    /// without another closes the session, as dropping any last handle does.
    /// See [`ferry_async::Endpoint::session`].
    pub fn session(&self, id: SessionId) -> Option<Session> {
        self.inner.session(id).map(Session::from_async)
    }

    /// Queues `message` on every established session without ever blocking:
    /// each session either queues it (the bytes are shared, not copied) or is
    /// reported [`blocked`](BroadcastReport::blocked) (its send buffer is full)
    /// or [`too_large`](BroadcastReport::too_large), so one slow client does not
    /// hold up the others. To wait for room on one session, use
    /// [`Session::send`] on it (a handle from [`session`](Self::session)). See
    /// [`ferry_async::Endpoint::broadcast`].
    pub fn broadcast(&self, message: impl Into<Bytes>) -> BroadcastReport {
        self.inner.broadcast(message)
    }

    /// Queues `message` on each session of `ids` without ever blocking, as
    /// [`broadcast`](Self::broadcast) does; every id ends up in exactly one list
    /// of the report (`sent`, `blocked`, `too_large`, `closed` or `unknown`), and
    /// ids listed twice are sent to once. See
    /// [`ferry_async::Endpoint::broadcast_to`].
    pub fn broadcast_to(&self, ids: &[SessionId], message: impl Into<Bytes>) -> BroadcastReport {
        self.inner.broadcast_to(ids, message)
    }

    /// Subscribes to the sessions that close from now on: the returned
    /// [`ClosedEvents`] yields the id and [`CloseReason`] of every session of
    /// this endpoint that closes after this call, then `None` once the endpoint
    /// is closed. Each subscription sees every event and holds at most
    /// [`CLOSED_EVENTS_CAPACITY`](ferry_async::CLOSED_EVENTS_CAPACITY) of them;
    /// beyond, the oldest are dropped and reported as
    /// [`ClosedEvent::Missed`](crate::ClosedEvent::Missed). See
    /// [`ferry_async::Endpoint::closed_events`].
    pub fn closed_events(&self) -> ClosedEvents {
        ClosedEvents::from_async(self.inner.closed_events())
    }

    /// [`closed_events`](Self::closed_events), holding at most `capacity`
    /// events not yet taken (at least 1).
    pub fn closed_events_with_capacity(&self, capacity: usize) -> ClosedEvents {
        ClosedEvents::from_async(self.inner.closed_events_with_capacity(capacity))
    }

    /// Starts or stops accepting new sessions; open sessions are not affected.
    /// While stopped, peers' connects are refused with
    /// [`CloseReason::Refused`].
    pub fn set_accept_incoming(&self, accept: bool) {
        self.inner.set_accept_incoming(accept);
    }

    /// Hands the listener a new list of admitted starter keys; see
    /// [`ferry_async::Endpoint::set_authorized_keys`].
    pub fn set_authorized_keys(&self, keys: Option<ferry_async::AuthorizedKeys>) {
        self.inner.set_authorized_keys(keys);
    }

    /// Why a session ended, if this endpoint still remembers it.
    pub fn close_reason(&self, id: SessionId) -> Option<CloseReason> {
        self.inner.close_reason(id)
    }

    /// Whether the endpoint was closed (by [`close`](Self::close), or because
    /// its driver stopped).
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// Closes every session (their close packets leave at once; the peers see
    /// [`CloseReason::Remote`] with code [`ferry_async::ENDPOINT_CLOSED_CODE`]),
    /// stops accepting, and blocks until the driver thread (every shard's)
    /// has ended. The sockets are closed when this returns, so the port can
    /// be bound again.
    ///
    /// Blocked calls on the endpoint's sessions return: receives fail with
    /// [`RecvError::Closed`](crate::RecvError::Closed), `accept` returns
    /// `None`. Calling `close` again, from any clone, returns once the thread
    /// has ended.
    pub fn close(&self) {
        let runtime = &self.runtime;
        let mut close = pin!(self.inner.close());
        let mut closed = false;
        // Wait for the drivers to stop and their threads to end; a thread's
        // end alone suffices should its driver have panicked.
        block_on(std::future::poll_fn(|cx| {
            if !closed {
                closed = close.as_mut().poll(cx).is_ready();
            }
            runtime.poll_exited(cx)
        }));
        for thread in self.runtime.take_threads() {
            if thread.join().is_err() {
                error!("a driver thread panicked");
            }
        }
    }

    /// The runtime, to watch the driver thread in tests.
    #[cfg(test)]
    pub(crate) fn runtime(&self) -> Arc<BlockingRuntime> {
        self.runtime.clone()
    }
}
