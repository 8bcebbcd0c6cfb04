//! The handle on a driven endpoint.

use std::collections::HashSet;
use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use bytes::Bytes;
use ferry_proto::{CloseReason, EndpointStats, SessionId, State};
use rand_seed::seed;
use tracing::debug;

use crate::config::EndpointConfig;
use crate::driver::Driver;
use crate::error::{BindError, ConnectError};
use crate::manager::{BroadcastReport, CLOSED_EVENTS_CAPACITY, ClosedEvents};
use crate::runtime::Runtime;
use crate::session::Session;
use crate::shared::Shared;
use crate::socket::bind_socket;

/// Application code sent to every session when the endpoint closes.
pub const ENDPOINT_CLOSED_CODE: u64 = 0;

/// One UDP socket serving many sessions, driven by a background task.
///
/// Cheap to clone; every clone is the same endpoint. Dropping the last clone
/// closes the endpoint as [`close`](Self::close) does (without waiting).
#[derive(Debug, Clone)]
pub struct Endpoint {
    inner: Arc<EndpointRef>,
}

#[derive(Debug)]
struct EndpointRef {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
}

impl Drop for EndpointRef {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        begin_close(&mut state);
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
        state.wake_driver();
    }
}

impl Endpoint {
    /// Binds a UDP socket on `addr` and starts the driver on `runtime`.
    ///
    /// The runtime adapters (`ferry-tokio`, `ferry-smol`, `ferry-async-std`)
    /// wrap this as `Endpoint::bind(addr, config)`.
    pub fn bind_with(
        runtime: Arc<dyn Runtime>,
        addr: SocketAddr,
        config: impl Into<EndpointConfig>,
    ) -> Result<Self, BindError> {
        let config = config.into();
        config.protocol.validate()?;
        let socket = bind_socket(addr, &config)?;
        let socket = runtime
            .wrap_udp_socket(socket)
            .map_err(|e| BindError::Io { addr, source: e })?;
        let mut protocol = config.protocol.clone();
        if socket.may_fragment() && protocol.max_mtu > protocol.mtu {
            // Probes could arrive in fragments and seem to fit.
            debug!(
                max_mtu = protocol.max_mtu,
                mtu = protocol.mtu,
                "the socket cannot forbid fragmentation: path MTU discovery off"
            );
            protocol.max_mtu = protocol.mtu;
        }
        let endpoint = ferry_proto::Endpoint::with_seed(protocol, seed(addr)?)?;
        let local_addr = socket
            .local_addr()
            .map_err(|e| BindError::Io { addr, source: e })?;
        let shared = Shared::new(endpoint);
        let driver = Driver::new(shared.clone(), socket, runtime.as_ref());
        runtime.spawn(Box::pin(driver));
        Ok(Self {
            inner: Arc::new(EndpointRef { shared, local_addr }),
        })
    }

    fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// The address the socket is bound to (with the port the OS chose for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    /// Opens a session with `remote` and waits for the handshake.
    ///
    /// Fails with [`ConnectError::Failed`] carrying [`CloseReason::Timeout`] when
    /// nothing answered within `handshake_timeout`, or
    /// [`CloseReason::Refused`] when the listener refused or the network
    /// reported the port closed.
    ///
    /// **Cancel-safe** in the sense that dropping the future abandons the
    /// attempt: the half-open session is closed.
    pub async fn connect(&self, remote: SocketAddr) -> Result<Session, ConnectError> {
        let session = {
            let mut state = self.shared().lock();
            if state.closing || state.stopped {
                return Err(ConnectError::EndpointClosed);
            }
            let id = state.endpoint.connect(Instant::now(), remote)?;
            state.wake_driver();
            // A new id has no handle yet, so this makes the first one.
            Session::attach(self.shared(), &mut state, id, remote)
                .ok_or(ConnectError::EndpointClosed)?
        };
        let id = session.id();
        poll_fn(|cx| {
            let mut state = self.shared().lock();
            state.dispatch_events();
            let stopped = state.stopped;
            let w = state.waiters(id);
            if w.connected {
                return Poll::Ready(Ok(()));
            }
            if let Some(reason) = w.closed {
                return Poll::Ready(Err(ConnectError::Failed(reason)));
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

    /// The next session a peer opened, once its handshake completed; `None` once
    /// the endpoint is closed. The endpoint must accept sessions
    /// (`accept_incoming`).
    ///
    /// **Cancel-safe**: a session is taken only when the future resolves with it.
    pub async fn accept(&self) -> Option<Session> {
        poll_fn(|cx| {
            let mut state = self.shared().lock();
            while let Some(id) = state.incoming.pop_front() {
                let remote = state
                    .sessions
                    .get(&id)
                    .and_then(|w| w.remote)
                    .unwrap_or_else(|| self.local_addr());
                // `None`: a handle from `session(id)` is being dropped and
                // closes the session; skip it.
                if let Some(session) = Session::attach(self.shared(), &mut state, id, remote) {
                    return Poll::Ready(Some(session));
                }
            }
            if state.closing || state.stopped {
                return Poll::Ready(None);
            }
            state.acceptors.register(cx.waker());
            Poll::Pending
        })
        .await
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
        self.shared().lock().open_sessions()
    }

    /// How many sessions are open: the length of [`sessions`](Self::sessions).
    pub fn session_count(&self) -> usize {
        self.shared().lock().open_sessions().len()
    }

    /// The endpoint's counters: datagrams received, and those dropped as
    /// malformed or corrupted, unauthenticated, for an unknown session or
    /// from the wrong address; sessions accepted and refused. Per-session
    /// counters are in [`Session::stats`].
    pub fn stats(&self) -> EndpointStats {
        self.shared().lock().endpoint.stats().clone()
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
        let mut state = self.shared().lock();
        if !state.is_open(id) {
            return None;
        }
        let remote = state.endpoint.session(id)?.remote_addr();
        Session::attach(self.shared(), &mut state, id, remote)
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
        let mut state = self.shared().lock();
        let mut report = BroadcastReport::default();
        let ids: Vec<_> = if state.stopped {
            Vec::new()
        } else {
            state.endpoint.sessions().collect()
        };
        for id in ids {
            // Established: neither handshaking nor closing (so no close was
            // reported for it either).
            let Some(mut s) = state.endpoint.session(id) else {
                continue;
            };
            if s.state() != State::Established {
                continue;
            }
            let result = s.send(message.clone());
            report.record(id, result);
        }
        if !report.sent.is_empty() {
            state.wake_driver();
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
        let mut state = self.shared().lock();
        let mut report = BroadcastReport::default();
        let mut seen = HashSet::with_capacity(ids.len());
        for &id in ids {
            if !seen.insert(id) {
                continue;
            }
            if state.stopped {
                report.closed.push(id);
                continue;
            }
            let result = match state.endpoint.session(id) {
                Some(mut s) => s.send(message.clone()),
                None => Err(ferry_proto::SendError::UnknownSession),
            };
            let forgotten = matches!(result, Err(ferry_proto::SendError::UnknownSession))
                && state.closed_reason(id).is_none()
                && state.endpoint.closed_session_stats(id).is_none();
            if forgotten {
                report.unknown.push(id);
            } else {
                report.record(id, result);
            }
        }
        if !report.sent.is_empty() {
            state.wake_driver();
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
    /// holds at most [`CLOSED_EVENTS_CAPACITY`] events not yet taken: beyond,
    /// the oldest are dropped and the subscriber gets
    /// [`ClosedEvent::Missed`](crate::ClosedEvent::Missed) with their number,
    /// in their place. Use
    /// [`closed_events_with_capacity`](Self::closed_events_with_capacity) to
    /// choose the bound.
    pub fn closed_events(&self) -> ClosedEvents {
        self.closed_events_with_capacity(CLOSED_EVENTS_CAPACITY)
    }

    /// [`closed_events`](Self::closed_events), holding at most `capacity`
    /// events not yet taken (at least 1).
    pub fn closed_events_with_capacity(&self, capacity: usize) -> ClosedEvents {
        ClosedEvents::subscribe(self.shared().clone(), capacity)
    }

    /// Starts or stops accepting new sessions; open sessions are not affected.
    ///
    /// While stopped, peers' connects are refused: their
    /// [`connect`](Self::connect) fails with [`CloseReason::Refused`]. Sessions
    /// already waiting in the [`accept`](Self::accept) queue stay there.
    pub fn set_accept_incoming(&self, accept: bool) {
        self.shared().lock().endpoint.set_accept_incoming(accept);
    }

    /// Closes every session (their close packets leave at once), stops
    /// accepting, and waits for the driver to stop: once every session has
    /// sent its Close the three times the protocol sends it unprompted, one
    /// RTO apart (about 50 ms on a LAN; protocol.md §6.11), or ended on the
    /// peer's own Close. A process that exits sooner may leave its peer
    /// waiting for a session that is gone, if its one Close was lost.
    ///
    /// **Cancel-safe**: the close proceeds whether or not the future is awaited.
    pub async fn close(&self) {
        begin_close(&mut self.shared().lock());
        poll_fn(|cx| {
            let mut state = self.shared().lock();
            if state.stopped {
                return Poll::Ready(());
            }
            state.stop_watchers.register(cx.waker());
            Poll::Pending
        })
        .await;
    }

    /// Whether the endpoint was closed.
    pub fn is_closed(&self) -> bool {
        let state = self.shared().lock();
        state.closing || state.stopped
    }

    /// Why a session ended, if this endpoint still remembers it.
    pub fn close_reason(&self, id: SessionId) -> Option<CloseReason> {
        self.shared().lock().closed_reason(id)
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
