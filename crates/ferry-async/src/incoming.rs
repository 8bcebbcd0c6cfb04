//! Incoming sessions the application decides on
//! ([`Config::decide_incoming`](ferry_proto::Config::decide_incoming)).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ferry_proto::{PeerParams, SessionId, State};

use crate::error::ConnectError;
use crate::session::{DROPPED_CODE, Session};
use crate::shared::Shared;

/// A peer's request to open a session, waiting for the application's
/// decision: from [`Endpoint::incoming`](crate::Endpoint::incoming), with
/// [`Config::decide_incoming`](ferry_proto::Config::decide_incoming) set.
///
/// Nothing has been sent to the peer yet. Look at it
/// ([`remote_addr`](Self::remote_addr), [`peer_params`](Self::peer_params)),
/// then [`accept`](Self::accept) or [`refuse`](Self::refuse) it within
/// `handshake_timeout` (after which the endpoint refuses it). Dropping it
/// undecided refuses it with [`DROPPED_CODE`].
#[derive(Debug)]
pub struct Incoming {
    shared: Arc<Shared>,
    id: SessionId,
    remote: SocketAddr,
    params: PeerParams,
    decided: bool,
}

impl Incoming {
    pub(crate) fn new(
        shared: Arc<Shared>,
        id: SessionId,
        remote: SocketAddr,
        params: PeerParams,
    ) -> Self {
        Self {
            shared,
            id,
            remote,
            params,
            decided: false,
        }
    }

    /// The session's id, as [`Session::id`] will give it once accepted.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The peer's address (its Connect's source).
    pub fn remote_addr(&self) -> SocketAddr {
        self.remote
    }

    /// What the peer asked for in its Connect: its MTU, largest message,
    /// windows and streams.
    pub fn peer_params(&self) -> PeerParams {
        self.params
    }

    /// The peer's public key, authenticated by the identity handshake
    /// (already done on this side while the request waits); see
    /// [`ferry_proto::Session::peer_identity`]. `None` for clear and
    /// pre-shared-key sessions, and once the request is gone.
    pub fn peer_identity(&self) -> Option<ferry_proto::PublicKey> {
        let mut state = self.shared.lock();
        state
            .endpoint
            .session(self.id)
            .and_then(|s| s.peer_identity())
    }

    /// Accepts the session: it is established at once (its ConnectAck
    /// leaves), and here is its handle, as [`Endpoint::accept`](crate::Endpoint::accept)
    /// would have returned it.
    ///
    /// Fails with [`ConnectError::Failed`] when the session ended while
    /// waiting (the starter gave up: [`CloseReason::Remote`](crate::CloseReason::Remote);
    /// `handshake_timeout` passed: [`CloseReason::Timeout`](crate::CloseReason::Timeout)),
    /// or [`ConnectError::EndpointClosed`].
    pub fn accept(mut self) -> Result<Session, ConnectError> {
        self.decided = true;
        let mut state = self.shared.lock();
        if state.stopped || state.closing {
            return Err(ConnectError::EndpointClosed);
        }
        let accepted = state
            .endpoint
            .session(self.id)
            .is_some_and(|mut s| s.accept(Instant::now()).is_ok());
        if !accepted {
            state.dispatch_events();
            let reason = state.closed_reason(self.id);
            state.release_undecided(self.id);
            return Err(reason.map_or(ConnectError::EndpointClosed, ConnectError::Failed));
        }
        // Not for `accept`'s queue: this is its handle.
        state.waiters(self.id).decided = true;
        state.dispatch_events();
        state.wake_driver();
        let session = Session::attach(&self.shared, &mut state, self.id, self.remote);
        state.release_undecided(self.id);
        session.ok_or(ConnectError::EndpointClosed)
    }

    /// Refuses the session with an application `code` and a short `reason`
    /// (UTF-8, cut at a character boundary to
    /// [`MAX_CLOSE_REASON`](ferry_proto::wire::packet::MAX_CLOSE_REASON)
    /// bytes): the starter's `connect` fails with
    /// [`CloseReason::Rejected`](crate::CloseReason::Rejected) carrying both.
    /// The refusal is not authenticated (the starter holds no keys yet); if
    /// it is lost, the Connect the starter repeats gets it again.
    pub fn refuse(mut self, code: u64, reason: &str) {
        self.decided = true;
        refuse(&self.shared, self.id, code, reason);
    }
}

impl Drop for Incoming {
    fn drop(&mut self) {
        if !self.decided {
            refuse(&self.shared, self.id, DROPPED_CODE, "");
        }
    }
}

fn refuse(shared: &Shared, id: SessionId, code: u64, reason: &str) {
    let mut state = shared.lock();
    if let Some(mut s) = state.endpoint.session(id)
        && s.state() == State::Incoming
    {
        // It waits: it cannot fail.
        let _ = s.refuse(code, reason);
    }
    state.dispatch_events();
    state.release_undecided(id);
    state.wake_driver();
}
