//! The blocking handle on an endpoint.

use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use ferry_async::{BindError, CloseReason, ConnectError, EndpointConfig, SessionId};
use thiserror::Error;
use tracing::error;

use crate::block_on::{block_on, block_on_until, deadline_after};
use crate::runtime::BlockingRuntime;
use crate::session::Session;

/// No session completed its handshake before
/// [`accept_timeout`](Endpoint::accept_timeout) gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("timed out waiting for an incoming session")]
pub struct AcceptTimeout;

/// One UDP socket serving many sessions, driven by a thread of its own.
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
    /// (named `ferry-driver`).
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
    /// reported the port closed.
    pub fn connect(&self, remote: SocketAddr) -> Result<Session, ConnectError> {
        block_on(self.inner.connect(remote)).map(Session::from_async)
    }

    /// Blocks until a peer opens a session and its handshake completes; `None`
    /// once the endpoint is closed. The endpoint must accept sessions
    /// (`accept_incoming`, as in [`EndpointConfig::server`], or
    /// [`set_accept_incoming`](Self::set_accept_incoming)).
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

    /// The ids of the sessions the endpoint holds.
    pub fn sessions(&self) -> Vec<SessionId> {
        self.inner.sessions()
    }

    /// How many sessions the endpoint holds.
    pub fn session_count(&self) -> usize {
        self.inner.session_count()
    }

    /// Starts or stops accepting new sessions; open sessions are not affected.
    pub fn set_accept_incoming(&self, accept: bool) {
        self.inner.set_accept_incoming(accept);
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
    /// stops accepting, and blocks until the driver thread has ended. The socket
    /// is closed when this returns, so its port can be bound again.
    ///
    /// Blocked calls on the endpoint's sessions return: receives fail with
    /// [`RecvError::Closed`](crate::RecvError::Closed), `accept` returns
    /// `None`. Calling `close` again, from any clone, returns once the thread
    /// has ended.
    pub fn close(&self) {
        let exit = self.runtime.exit();
        let mut close = pin!(self.inner.close());
        let mut closed = false;
        // Wait for the driver to stop and its thread to end; the thread's end
        // alone suffices should the driver have panicked.
        block_on(std::future::poll_fn(|cx| {
            if !closed {
                closed = close.as_mut().poll(cx).is_ready();
            }
            exit.poll_exited(cx)
        }));
        if let Some(thread) = self.runtime.take_thread() {
            if thread.join().is_err() {
                error!("the driver thread panicked");
            }
        }
    }

    /// The runtime, to watch the driver thread in tests.
    #[cfg(test)]
    pub(crate) fn runtime(&self) -> Arc<BlockingRuntime> {
        self.runtime.clone()
    }
}
