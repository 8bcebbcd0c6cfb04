//! The session manager's types: what a broadcast did with each session, and
//! the subscription to closed sessions. The methods are on
//! [`Endpoint`](crate::Endpoint): `sessions`, `session_count`, `session`,
//! `broadcast`, `broadcast_to`, `closed_events`.

use std::future::poll_fn;
use std::sync::Arc;
use std::task::{Context, Poll};

use ferry_proto::{CloseReason, SessionId};

use crate::shared::{ClosedQueue, Shared};

/// Events a [`ClosedEvents`] subscription holds, not yet taken, before it
/// drops the oldest (see [`ClosedEvent::Missed`]): one for each of the first
/// thousand-odd sessions closed at once, as when a busy endpoint closes.
pub const CLOSED_EVENTS_CAPACITY: usize = 1024;

/// What [`Endpoint::broadcast`](crate::Endpoint::broadcast) or
/// [`Endpoint::broadcast_to`](crate::Endpoint::broadcast_to) did with each
/// session: every session tried is in exactly one list, in the order tried
/// (id order for `broadcast`, the caller's order for `broadcast_to`).
///
/// A broadcast never waits, so a session that cannot take the message now is
/// reported rather than waited for. To deliver to a `blocked` session anyway,
/// wait on it alone with [`Session::send`](crate::Session::send) (from
/// [`Endpoint::session`](crate::Endpoint::session)), or skip it and let it
/// catch up on later messages, as live streams do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BroadcastReport {
    /// Sessions that queued the message: it will be delivered unless the
    /// session closes first.
    pub sent: Vec<SessionId>,
    /// Sessions whose send buffer (`send_buffer`) is full: their peer takes
    /// messages slower than they come. Nothing was queued on them.
    pub blocked: Vec<SessionId>,
    /// Sessions for which the message exceeds the largest message accepted
    /// (the smaller of this side's and the peer's `max_message_size`).
    /// Nothing was queued on them.
    pub too_large: Vec<SessionId>,
    /// Sessions closing or closed (or the endpoint stopped): nothing can be
    /// sent on them any more.
    pub closed: Vec<SessionId>,
    /// Ids this endpoint has no session for (never had, or forgot long after
    /// it closed). Only [`broadcast_to`](crate::Endpoint::broadcast_to)
    /// reports these.
    pub unknown: Vec<SessionId>,
}

impl BroadcastReport {
    /// Whether every session tried queued the message (no session was
    /// blocked, closed, unknown, or too small for it).
    pub fn all_sent(&self) -> bool {
        self.blocked.is_empty()
            && self.too_large.is_empty()
            && self.closed.is_empty()
            && self.unknown.is_empty()
    }

    /// Files `id` in the list `filed` names.
    pub(crate) fn file(&mut self, id: SessionId, filed: Filed) {
        match filed {
            Filed::Sent => self.sent.push(id),
            Filed::Blocked => self.blocked.push(id),
            Filed::TooLarge => self.too_large.push(id),
            Filed::Closed => self.closed.push(id),
            Filed::Unknown => self.unknown.push(id),
        }
    }

    /// Puts every list in id order (the shards of an endpoint each file
    /// theirs in id order).
    pub(crate) fn sort_by_id(&mut self) {
        for list in [
            &mut self.sent,
            &mut self.blocked,
            &mut self.too_large,
            &mut self.closed,
            &mut self.unknown,
        ] {
            list.sort_unstable();
        }
    }
}

/// Which list of a [`BroadcastReport`] a session goes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Filed {
    Sent,
    Blocked,
    TooLarge,
    Closed,
    Unknown,
}

impl Filed {
    /// The list for what the core's `send` said.
    pub(crate) fn of(result: Result<(), ferry_proto::SendError>) -> Self {
        match result {
            Ok(()) => Self::Sent,
            Err(ferry_proto::SendError::Blocked) => Self::Blocked,
            Err(ferry_proto::SendError::TooLarge { .. }) => Self::TooLarge,
            Err(
                ferry_proto::SendError::Closed
                | ferry_proto::SendError::UnknownSession
                | ferry_proto::SendError::UnknownStream
                | ferry_proto::SendError::StreamClosed,
            ) => Self::Closed,
        }
    }
}

/// One item of a [`ClosedEvents`] subscription.
///
/// The reasons keep Ferry's names ([`CloseReason`]); in the words other
/// libraries use:
///
/// | You might say | Ferry says |
/// | --- | --- |
/// | graceful / normal close | [`CloseReason::Local`] or [`CloseReason::Remote`] with code 0 (this side or the peer closed; closing the endpoint and dropping the last handle also send 0: [`ENDPOINT_CLOSED_CODE`](crate::ENDPOINT_CLOSED_CODE), [`DROPPED_CODE`](crate::DROPPED_CODE)) |
/// | application error, kicked, shutdown with a status | `Local` / `Remote` with the application's non-zero code |
/// | idle timeout, peer lost, connection timed out | [`CloseReason::Timeout`] (no answer to the handshake within `handshake_timeout`, or `ping_packet_count` pings in a row unanswered) |
/// | connection refused, rejected | [`CloseReason::Refused`] (the listener does not accept sessions or is full, or the network reported the port closed during the handshake) |
/// | reset, protocol error | [`CloseReason::ProtocolError`] (a side broke the protocol, flow control included) |
/// | handshake / TLS / auth failure | [`CloseReason::AuthenticationFailed`] (the sides do not share the pre-shared key) |
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClosedEvent {
    /// A session closed. Reported once per session, when it starts closing
    /// (the same moment it leaves [`Endpoint::sessions`](crate::Endpoint::sessions)).
    Closed {
        /// The session.
        id: SessionId,
        /// Why it closed.
        reason: CloseReason,
    },
    /// The subscriber did not keep up: this many events, older than any
    /// still queued and newer than any already taken, were dropped. Ask
    /// [`Endpoint::sessions`](crate::Endpoint::sessions) for the current
    /// picture, or subscribe with a larger capacity.
    Missed(u64),
}

/// A subscription to the sessions of one endpoint that close, from
/// [`Endpoint::closed_events`](crate::Endpoint::closed_events).
///
/// Holds a bounded queue of its own (one per shard, with several: see
/// [`ClosedEvent::Missed`]); dropping it ends the subscription. It does not
/// keep the endpoint open: once the endpoint stopped and the queue is
/// drained, [`next`](Self::next) returns `None`.
///
/// With several shards, events of one shard come in the order its sessions
/// closed; the shards' events are taken in turn.
#[derive(Debug)]
pub struct ClosedEvents {
    /// Each shard, and the subscription's key in it.
    shards: Vec<(Arc<Shared>, u64)>,
    /// The shard looked at first by the next poll.
    next: usize,
}

impl ClosedEvents {
    /// Registers a subscription holding at most `capacity` events per shard.
    pub(crate) fn subscribe(shards: &[Arc<Shared>], capacity: usize) -> Self {
        let shards = shards
            .iter()
            .map(|shared| {
                let mut state = shared.lock();
                // Closes that already happened go to the earlier subscribers only.
                state.dispatch_events();
                let key = state.next_subscriber;
                state.next_subscriber += 1;
                state
                    .closed_subscribers
                    .insert(key, ClosedQueue::new(capacity));
                (shared.clone(), key)
            })
            .collect();
        Self { shards, next: 0 }
    }

    /// The next event: a session that closed (in the order they closed), or
    /// how many were missed; `None` once the endpoint stopped and every event
    /// was taken.
    ///
    /// **Cancel-safe**: an event is taken only when the future resolves with
    /// it.
    pub async fn next(&mut self) -> Option<ClosedEvent> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// [`next`](Self::next) as a poll function, for building a `Stream` or
    /// polling by hand: `Ready(Some(event))` takes the event, `Pending`
    /// registers `cx`'s waker (the latest one only) and takes nothing.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<ClosedEvent>> {
        let count = self.shards.len();
        let mut running = false;
        for k in 0..count {
            let index = (self.next + k) % count;
            let (shared, key) = &self.shards[index];
            let mut state = shared.lock();
            // Closes the endpoint noticed but the driver did not dispatch yet.
            state.dispatch_events();
            let stopped = state.stopped;
            let Some(queue) = state.closed_subscribers.get_mut(key) else {
                continue;
            };
            if let Some(event) = queue.pop() {
                self.next = (index + 1) % count;
                return Poll::Ready(Some(event));
            }
            if !stopped {
                queue.register(cx.waker());
                running = true;
            }
        }
        if running {
            Poll::Pending
        } else {
            Poll::Ready(None)
        }
    }
}

impl Drop for ClosedEvents {
    fn drop(&mut self) {
        for (shared, key) in &self.shards {
            shared.lock().closed_subscribers.remove(key);
        }
    }
}
