//! [`Session`]: the borrowed handle on one session of an endpoint, with the
//! per-session getters and the application's commands.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::Bytes;

use crate::error::{DatagramError, DecisionError, SendError, StreamError};
use crate::event::CloseText;
use crate::id::{SessionId, Side};
use crate::message::SendProgress;
use crate::peer::PeerParams;
use crate::session::{SessionCore, State};
use crate::stats::SessionStats;
use crate::wire::stream::{StreamId, StreamKind};

use super::Endpoint;

/// A handle on one session of an [`Endpoint`], from [`Endpoint::session`].
#[derive(Debug)]
pub struct Session<'a> {
    pub(super) endpoint: &'a mut Endpoint,
    pub(super) id: SessionId,
}

impl Session<'_> {
    fn core(&self) -> &SessionCore {
        &self.endpoint.sessions[&self.id].session
    }

    fn with<T>(&mut self, f: impl FnOnce(&mut SessionCore) -> T) -> T {
        let slot = self
            .endpoint
            .sessions
            .get_mut(&self.id)
            .expect("a session outlives its handle");
        let out = f(&mut slot.session);
        self.endpoint.refresh_with(self.id, false);
        self.endpoint.mark_ready(self.id);
        out
    }

    /// The session's id, the same on both sides.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.core().remote()
    }

    /// What the peer announced in its handshake packet: a starter's
    /// Connect (for a session this side accepts, readable while it waits in
    /// [`State::Incoming`]), a listener's ConnectAck (for a session this
    /// side started, once established; defaults before).
    pub fn peer_params(&self) -> PeerParams {
        self.core().peer_params()
    }

    /// Accepts a session waiting in [`State::Incoming`] (see
    /// [`Config::decide_incoming`](crate::Config::decide_incoming)): it is
    /// established at once, its ConnectAck leaves on the next poll, and
    /// [`Event::Connected`](crate::Event::Connected) follows, as for a
    /// session accepted without a decision.
    ///
    /// Fails with [`DecisionError::NotIncoming`] for any other session
    /// (decided already, ended, or started by this side).
    pub fn accept(&mut self, now: Instant) -> Result<(), DecisionError> {
        if self.state() != State::Incoming {
            return Err(DecisionError::NotIncoming);
        }
        self.endpoint.stats.sessions_accepted += 1;
        self.with(|s| s.admit(now));
        self.endpoint.issue_ticket(now, self.id);
        Ok(())
    }

    /// Refuses a session waiting in [`State::Incoming`] with an application
    /// `code` and a short `reason` (cut as [`CloseText::new`] does): the
    /// starter's session ends with
    /// [`CloseReason::Rejected`](crate::CloseReason::Rejected) carrying
    /// both, and this one at once with
    /// [`CloseReason::Local`](crate::CloseReason::Local). The endpoint keeps
    /// nothing of it but what a retired session leaves (its id and the
    /// refusal, which a Connect the starter repeats gets again: the first
    /// may have been lost), and counts it in
    /// [`EndpointStats::sessions_refused_by_application`](crate::EndpointStats::sessions_refused_by_application).
    ///
    /// The refusal travels under a checksum only, as the transport's own
    /// refusals do: the starter holds no keys yet, so it is not
    /// authenticated.
    ///
    /// Fails with [`DecisionError::NotIncoming`] for any other session.
    pub fn refuse(&mut self, code: u64, reason: &str) -> Result<(), DecisionError> {
        if !self
            .endpoint
            .refuse_incoming(self.id, code, CloseText::new(reason))
        {
            return Err(DecisionError::NotIncoming);
        }
        self.endpoint.refresh_with(self.id, false);
        Ok(())
    }

    /// Whether this side started the session or accepted it.
    pub fn side(&self) -> Side {
        self.core().side()
    }

    /// Where the session is in its lifecycle.
    pub fn state(&self) -> State {
        self.core().state()
    }

    /// Whether a closing session has sent its Close as many times as it
    /// will unprompted (protocol.md §6.11: once, then twice more one RTO
    /// apart), or is closed: a process that exits now leaves the peer the
    /// best chance the protocol gives of learning the session ended. A driver
    /// shutting down waits for this.
    pub fn close_sent(&self) -> bool {
        self.core().close_sent()
    }

    /// The peer's public key, authenticated by the identity handshake
    /// ([`Config::identity`](crate::Config::identity)): at a listener the
    /// starter's (check it against your own records, or let
    /// [`Config::authorized_keys`](crate::Config::authorized_keys) do it), at a
    /// starter the listener's it pinned, once the handshake is done. `None`
    /// for clear and pre-shared-key sessions, and at a starter until the
    /// listener has proved its key.
    pub fn peer_identity(&self) -> Option<crate::crypto::PublicKey> {
        self.core().peer_identity()
    }

    /// The last resumption ticket the listener gave this starter's session
    /// (announced by [`Event::Ticket`](crate::Event::Ticket)), to open a
    /// later session with [`Endpoint::connect_resumed`]. `None` before one
    /// came, at a listener, or when the listener issues none.
    pub fn ticket(&self) -> Option<crate::Ticket> {
        self.endpoint.ticket_of(self.id)
    }

    /// Whether the session was opened with a resumption ticket (the
    /// shortened handshake), at either side.
    pub fn is_resumed(&self) -> bool {
        self.core().is_resumed()
    }

    /// Counters and the current RTT estimate.
    pub fn stats(&self) -> SessionStats {
        self.core().stats()
    }

    /// Largest message [`send`](Self::send) accepts now: the smaller of this
    /// side's and (once known) the peer's `max_message_size`.
    pub fn max_message_size(&self) -> usize {
        self.core().max_message_size()
    }

    /// Largest datagram [`send_datagram`](Self::send_datagram) accepts.
    pub fn max_datagram_size(&self) -> usize {
        self.core().max_datagram_size()
    }

    /// Queues a message for reliable, ordered delivery. It is split into packets
    /// of at most the MTU and delivered whole, exactly once.
    ///
    /// Returns [`SendError::Blocked`] when the send buffer is full (retry after
    /// [`Event::SendReady`](crate::Event::SendReady)), and [`SendError::TooLarge`] for messages above
    /// [`max_message_size`](Self::max_message_size).
    pub fn send(&mut self, data: impl Into<Bytes>) -> Result<(), SendError> {
        let data = data.into();
        self.with(|s| s.send(StreamId::DEFAULT, data))
    }

    /// Opens a stream of `kind`. Nothing is sent until a message or a finish
    /// is: the peer learns of the stream with its first packet
    /// ([`Event::StreamOpened`](crate::Event::StreamOpened)). Fails with
    /// [`StreamError::TooManyStreams`] when as many streams as the peer allows
    /// are open.
    pub fn open_stream(&mut self, kind: StreamKind) -> Result<StreamId, StreamError> {
        self.with(|s| s.open_stream(kind))
    }

    /// Queues a message on `stream`, delivered as the stream's kind says. As
    /// [`send`](Self::send) otherwise (`send_on(StreamId::DEFAULT, m)` is
    /// `send(m)`); [`SendError::StreamClosed`] after
    /// [`finish_stream`](Self::finish_stream) or
    /// [`reset_stream`](Self::reset_stream).
    pub fn send_on(&mut self, stream: StreamId, data: impl Into<Bytes>) -> Result<(), SendError> {
        let data = data.into();
        self.with(|s| s.send(stream, data))
    }

    /// Takes the next message delivered on `stream`;
    /// [`Event::StreamReadable`](crate::Event::StreamReadable) says when to call this.
    pub fn recv_on(&mut self, stream: StreamId) -> Option<Bytes> {
        self.with(|s| s.recv(stream))
    }

    /// Ends this side's sending on `stream`: the peer reads every message sent,
    /// then [`Event::StreamClosed`](crate::Event::StreamClosed) with [`StreamEnd::Finished`](crate::StreamEnd::Finished).
    pub fn finish_stream(&mut self, stream: StreamId) -> Result<(), SendError> {
        self.with(|s| s.finish_stream(stream))
    }

    /// Abandons this side's sending on `stream`: undelivered messages are
    /// dropped at both ends and the peer sees [`StreamEnd::Reset`](crate::StreamEnd::Reset) with `code`.
    pub fn reset_stream(&mut self, stream: StreamId, code: u64) -> Result<(), SendError> {
        self.with(|s| s.reset_stream(stream, code))
    }

    /// How far the peer acknowledged what this side sent on `stream`: how
    /// many messages were queued, how many of them (the first ones, in
    /// order) every fragment of which the peer acknowledged, how many were
    /// dropped unacknowledged. An application that must know its data
    /// arrived waits until `acknowledged` reaches the `queued` it saw after
    /// its last `send` (the drivers' `acknowledged` calls do).
    ///
    /// - On an **unreliable** stream a lost fragment is not sent again: its
    ///   message settles anyway, counted in `acknowledged` and in
    ///   [`given_up`](SendProgress::given_up) (the peer may not have it).
    /// - After [`reset_stream`](Self::reset_stream), the peer's refusal of
    ///   the stream or the session's [`close`](Self::close), the messages
    ///   not yet acknowledged are counted in
    ///   [`dropped`](SendProgress::dropped) and `acknowledged` never reaches
    ///   `queued`.
    /// - After [`finish_stream`](Self::finish_stream), the finish leaves once
    ///   every message is acknowledged, and
    ///   [`finishes_acknowledged`](SendProgress::finishes_acknowledged)
    ///   becomes 1 once the peer acknowledged it too.
    /// - `None` for a stream the session does not know, or no longer does: a
    ///   stream is forgotten once over at both ends (this side's sending
    ///   finished and acknowledged, or reset; the peer's end reported), and
    ///   its counts are then only in [`send_totals`](Self::send_totals).
    ///
    /// Cheap: a few counters, no allocation.
    pub fn send_progress(&self, stream: StreamId) -> Option<SendProgress> {
        self.core().send_progress(stream)
    }

    /// [`send_progress`](Self::send_progress) summed over every stream the
    /// session had, forgotten ones included: everything sent is
    /// acknowledged when [`SendProgress::is_complete`] holds. Its
    /// `acknowledged` never decreases (nor does any other count).
    pub fn send_totals(&self) -> SendProgress {
        self.core().send_totals()
    }

    /// The session's open streams (stream 0 included).
    pub fn streams(&self) -> Vec<StreamId> {
        self.core().stream_ids().collect()
    }

    /// Takes the next delivered message, if any. Messages come whole, in order,
    /// exactly once; [`Event::Readable`](crate::Event::Readable) says when to call this. Taking a message
    /// returns its share of the receive window to the peer, so read promptly: a
    /// session whose messages are not taken stops its sender, not others.
    ///
    /// A closed session stays readable until its last message is taken.
    pub fn recv(&mut self) -> Option<Bytes> {
        self.with(|s| s.recv(StreamId::DEFAULT))
    }

    /// Queues an unreliable datagram: sent once, delivered or lost, never
    /// retransmitted. When the queue is full the oldest datagram is dropped.
    pub fn send_datagram(&mut self, data: impl Into<Bytes>) -> Result<(), DatagramError> {
        let data = data.into();
        self.with(|s| s.send_datagram(data))
    }

    /// Closes the session with an application `code`: a close packet leaves at
    /// once, queued data is dropped, and [`Event::Closed`](crate::Event::Closed) reports
    /// [`CloseReason::Local`](crate::CloseReason::Local). The peer sees
    /// [`CloseReason::Remote`](crate::CloseReason::Remote) with the same code.
    /// A session waiting in [`State::Incoming`] is [`refuse`](Self::refuse)d
    /// with `code` instead.
    pub fn close(&mut self, now: Instant, code: u64) {
        self.close_with_reason(now, code, "");
    }

    /// [`close`](Self::close), with a short text beside the code: the peer's
    /// [`CloseReason::Remote`](crate::CloseReason::Remote) carries both. The
    /// text is UTF-8 of at most
    /// [`MAX_CLOSE_REASON`](crate::wire::packet::MAX_CLOSE_REASON) bytes:
    /// longer text is cut at the last character boundary within the bound
    /// ([`CloseText::new`]). It travels encrypted when the session is.
    pub fn close_with_reason(&mut self, now: Instant, code: u64, reason: &str) {
        self.endpoint
            .close_session(self.id, now, code, CloseText::new(reason));
        self.endpoint.refresh_with(self.id, false);
        self.endpoint.mark_ready(self.id);
    }
}

impl Drop for Session<'_> {
    /// Forgets the session if it finished while the handle was held (a closed
    /// session whose last message was just taken).
    fn drop(&mut self) {
        self.endpoint.refresh(self.id);
    }
}
