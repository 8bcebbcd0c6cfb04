//! Acknowledged delivery: what an `acknowledged` call waits for, and how it
//! decides.
//!
//! A call takes its target under the lock when it is made (not when first
//! polled): per stream, how many messages were queued
//! ([`SendProgress::queued`]). Each poll compares the core's
//! [`send_progress`](ferry_proto::Session::send_progress) with it; while
//! short, the task registers in the session's `acked` wakers and its
//! [`send_totals`](ferry_proto::Session::send_totals) in
//! [`State::ack_watch`], and the driver wakes it once those totals move
//! ([`State::wake_acknowledged`]) or the session ends. No lock is held
//! between polls.

use std::task::{Context, Poll};

use ferry_proto::{SendProgress, SessionId, State as SessionState, StreamEnd, StreamId};

use crate::error::AckError;
use crate::shared::State;

/// What one `acknowledged` call waits for.
#[derive(Debug)]
pub(crate) struct AckTarget {
    session: SessionId,
    /// Each stream waited for, with the messages queued on it at the call.
    streams: Vec<(StreamId, u64)>,
    /// One stream, whose finish the peer must acknowledge too.
    finish: bool,
    /// The session's totals at the call: a stream forgotten since (over at
    /// both ends) settled everything, and was acknowledged whole unless
    /// messages were dropped or given up since.
    start: SendProgress,
    /// A wait on one stream (its own rules for drops, refusals and resets),
    /// or on the whole session.
    one_stream: bool,
}

impl AckTarget {
    /// Every message queued so far on every stream of `session`.
    pub(crate) fn session(state: &mut State, session: SessionId) -> Self {
        let (streams, start) = match state.endpoint.session(session) {
            Some(s) => (
                s.streams()
                    .into_iter()
                    .filter_map(|id| Some((id, s.send_progress(id)?.queued)))
                    .collect(),
                s.send_totals(),
            ),
            None => (Vec::new(), SendProgress::default()),
        };
        Self {
            session,
            streams,
            finish: false,
            start,
            one_stream: false,
        }
    }

    /// Every message queued so far on `stream`, and with `finish` its
    /// finish.
    pub(crate) fn stream(
        state: &mut State,
        session: SessionId,
        stream: StreamId,
        finish: bool,
    ) -> Self {
        let (queued, start) = match state.endpoint.session(session) {
            Some(s) => (
                s.send_progress(stream).map_or(0, |p| p.queued),
                s.send_totals(),
            ),
            None => (0, SendProgress::default()),
        };
        Self {
            session,
            streams: vec![(stream, queued)],
            finish,
            start,
            one_stream: true,
        }
    }

    /// Whether the target is reached, failed, or (registering `cx`'s waker)
    /// still ahead.
    pub(crate) fn poll(
        &self,
        state: &mut State,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), AckError>> {
        // A close or a refusal may still wait in the endpoint's queue.
        state.dispatch_events();
        let id = self.session;
        let closed = state.closed_reason(id);
        let Some(session) = state.endpoint.session(id) else {
            // Forgotten: the last acks may have come with the close, in the
            // same round. What its messages came to then decides: nothing
            // dropped (by the close, a reset or a refusal) or given up since
            // the call, and the finish acknowledged if waited for.
            let settled = state
                .endpoint
                .closed_session_send_totals(id)
                .is_some_and(|t| {
                    t.dropped == self.start.dropped
                        && t.given_up == self.start.given_up
                        && (!self.finish
                            || t.finishes_acknowledged > self.start.finishes_acknowledged)
                });
            if settled {
                return Poll::Ready(Ok(()));
            }
            return Poll::Ready(Err(
                closed.map_or(AckError::EndpointClosed, AckError::Closed)
            ));
        };
        let closing = matches!(
            session.state(),
            SessionState::Closing | SessionState::Closed
        );
        let totals = session.send_totals();
        let progress: Vec<_> = self
            .streams
            .iter()
            .map(|&(stream, want)| (stream, want, session.send_progress(stream)))
            .collect();
        drop(session);
        let mut waiting = false;
        for (stream, want, progress) in progress {
            let outcome = match progress {
                Some(p) if p.given_up > 0 => Outcome::Lost,
                Some(p)
                    if p.acknowledged >= want && (!self.finish || p.finishes_acknowledged > 0) =>
                {
                    Outcome::Reached
                }
                Some(p) if p.dropped > 0 => Outcome::Dropped,
                Some(_) if self.finish && self.reset_sent(state, stream) => Outcome::Dropped,
                Some(_) => Outcome::Waiting,
                // Forgotten (before the call or since): over at both ends,
                // every message settled, acknowledged whole unless the
                // session's totals say something was dropped or given up
                // since the call; and the finish acknowledged, unless the
                // stream was reset or refused instead.
                None if totals.given_up > self.start.given_up => Outcome::Lost,
                None if totals.dropped > self.start.dropped => Outcome::Dropped,
                None if self.finish
                    && (self.reset_sent(state, stream) || self.refused(state, stream)) =>
                {
                    Outcome::Dropped
                }
                None => Outcome::Reached,
            };
            match outcome {
                Outcome::Reached => {}
                // A close drops what is still queued: the close is the
                // reason.
                _ if closing => return Poll::Ready(Err(closed_error(closed))),
                Outcome::Lost => return Poll::Ready(Err(AckError::Lost)),
                Outcome::Dropped => return Poll::Ready(Err(self.dropped(state, stream))),
                Outcome::Waiting => waiting = true,
            }
        }
        if !waiting {
            // The whole session: nothing dropped or given up on any stream
            // (forgotten ones included), else something sent did not arrive.
            if !self.one_stream && !closing {
                if totals.given_up > 0 {
                    return Poll::Ready(Err(AckError::Lost));
                }
                if totals.dropped > 0 {
                    return Poll::Ready(Err(AckError::Reset));
                }
            }
            return Poll::Ready(Ok(()));
        }
        if state.stopped {
            return Poll::Ready(Err(AckError::EndpointClosed));
        }
        // Another task may have registered at older totals: the driver
        // compares with these from now on, so it is woken now to look again
        // (else a change it waits for could go unnoticed).
        let older = state.ack_watch.insert(id, totals);
        let acked = &mut state.waiters(id).acked;
        if older.is_some_and(|older| older != totals) {
            acked.wake();
        }
        acked.register(cx.waker());
        Poll::Pending
    }

    /// Whether this side reset `stream`'s sending.
    fn reset_sent(&self, state: &mut State, stream: StreamId) -> bool {
        state
            .waiters(self.session)
            .streams
            .get(&stream)
            .is_some_and(|s| s.reset_sent)
    }

    /// Whether the peer refused `stream`.
    fn refused(&self, state: &mut State, stream: StreamId) -> bool {
        state
            .waiters(self.session)
            .streams
            .get(&stream)
            .is_some_and(|s| s.end == Some(StreamEnd::Refused))
    }

    /// Why `stream`'s messages were dropped: refused by the peer, or reset.
    fn dropped(&self, state: &mut State, stream: StreamId) -> AckError {
        if self.one_stream && self.refused(state, stream) {
            AckError::Refused
        } else {
            AckError::Reset
        }
    }
}

/// What became of one stream's messages waited for.
enum Outcome {
    Reached,
    Waiting,
    /// Dropped by a reset or a refusal.
    Dropped,
    /// Given up on an unreliable stream.
    Lost,
}

/// The error of a wait that a close cut short. The core queues the
/// `Closed` event as the session starts closing, so its reason is known;
/// without it (which should not happen) the endpoint is the one closing.
fn closed_error(closed: Option<ferry_proto::CloseReason>) -> AckError {
    closed.map_or(AckError::EndpointClosed, AckError::Closed)
}
