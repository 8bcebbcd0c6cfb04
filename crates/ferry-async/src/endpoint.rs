//! The handle on a driven endpoint.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use ferry_proto::{CloseReason, SessionId};
use rand_seed::seed;

use crate::config::EndpointConfig;
use crate::driver::Driver;
use crate::error::{BindError, ConnectError};
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
        let endpoint = ferry_proto::Endpoint::with_seed(config.protocol.clone(), seed(addr)?)?;
        let socket = bind_socket(addr, &config)?;
        let socket = runtime
            .wrap_udp_socket(socket)
            .map_err(|e| BindError::Io { addr, source: e })?;
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
            Session::new(self.shared().clone(), &mut state, id, remote)
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
            if let Some(id) = state.incoming.pop_front() {
                let remote = state
                    .sessions
                    .get(&id)
                    .and_then(|w| w.remote)
                    .unwrap_or_else(|| self.local_addr());
                let session = Session::new(self.shared().clone(), &mut state, id, remote);
                return Poll::Ready(Some(session));
            }
            if state.closing || state.stopped {
                return Poll::Ready(None);
            }
            state.acceptors.register(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// The ids of the sessions the endpoint holds.
    pub fn sessions(&self) -> Vec<SessionId> {
        self.shared().lock().endpoint.sessions().collect()
    }

    /// How many sessions the endpoint holds.
    pub fn session_count(&self) -> usize {
        self.shared().lock().endpoint.session_count()
    }

    /// Starts or stops accepting new sessions; open sessions are not affected.
    pub fn set_accept_incoming(&self, accept: bool) {
        self.shared().lock().endpoint.set_accept_incoming(accept);
    }

    /// Closes every session (their close packets leave at once), stops
    /// accepting, and waits for the driver to stop.
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
