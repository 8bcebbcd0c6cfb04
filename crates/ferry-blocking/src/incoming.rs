//! Incoming sessions the application decides on, blocking.

use std::net::SocketAddr;

use ferry_async::{ConnectError, PeerParams, SessionId};

use crate::session::Session;

/// A peer's request to open a session, waiting for the application's
/// decision: from [`Endpoint::incoming`](crate::Endpoint::incoming), with
/// [`Config::decide_incoming`](crate::Config::decide_incoming) set.
///
/// Nothing has been sent to the peer yet. Look at it, then
/// [`accept`](Self::accept) or [`refuse`](Self::refuse) it within
/// `handshake_timeout` (after which the endpoint refuses it). Dropping it
/// undecided refuses it with [`DROPPED_CODE`](crate::DROPPED_CODE).
#[derive(Debug)]
pub struct Incoming {
    inner: ferry_async::Incoming,
}

impl Incoming {
    pub(crate) fn from_async(inner: ferry_async::Incoming) -> Self {
        Self { inner }
    }

    /// The session's id, as [`Session::id`] will give it once accepted.
    pub fn id(&self) -> SessionId {
        self.inner.id()
    }

    /// The peer's address (its Connect's source).
    pub fn remote_addr(&self) -> SocketAddr {
        self.inner.remote_addr()
    }

    /// What the peer asked for in its Connect: its MTU, largest message,
    /// windows and streams.
    pub fn peer_params(&self) -> PeerParams {
        self.inner.peer_params()
    }

    /// The peer's public key, authenticated by the identity handshake; see
    /// [`ferry_async::Incoming::peer_identity`].
    pub fn peer_identity(&self) -> Option<ferry_async::PublicKey> {
        self.inner.peer_identity()
    }

    /// Accepts the session: it is established at once (its ConnectAck
    /// leaves), and here is its handle. Does not block. Fails as
    /// [`ferry_async::Incoming::accept`] does: the session ended while
    /// waiting, or the endpoint closed.
    pub fn accept(self) -> Result<Session, ConnectError> {
        self.inner.accept().map(Session::from_async)
    }

    /// Refuses the session with an application `code` and a short `reason`
    /// (cut at a character boundary to 256 bytes, as
    /// [`CloseText::new`](crate::CloseText::new) does): the starter's `connect` fails with
    /// [`CloseReason::Rejected`](crate::CloseReason::Rejected) carrying both.
    /// Not authenticated; if lost, the Connect the starter repeats gets it
    /// again.
    pub fn refuse(self, code: u64, reason: &str) {
        self.inner.refuse(code, reason);
    }
}
