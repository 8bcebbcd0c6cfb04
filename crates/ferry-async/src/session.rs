//! The handle on one session.

use std::future::poll_fn;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use ferry_proto::{CloseReason, SessionId, SessionStats, State, StreamKind};

use crate::acknowledged::AckTarget;
use crate::error::{AckError, DatagramError, RecvError, SendError, StreamError};
use crate::fallback::Transport;
use crate::shared::Shared;
use crate::stream::Stream;

/// Application code sent when the last handle of a session is dropped without
/// closing it.
pub const DROPPED_CODE: u64 = 0;

/// A session: reliable ordered messages, streams, unreliable datagrams, close.
///
/// Cheap to clone (an `Arc`); every clone is the same session, and so is
/// every handle [`Endpoint::session`](crate::Endpoint::session) returns for
/// its id. Dropping the last handle closes the session with [`DROPPED_CODE`],
/// unless a [`Stream`] of the session is still held: a stream keeps its
/// session open. All methods can be called from any task; the async ones are
/// cancel-safe as documented on each.
///
/// [`send`](Self::send) and [`recv`](Self::recv) use the session's default
/// stream (stream 0, reliable and ordered); [`open_stream`](Self::open_stream)
/// and [`accept_stream`](Self::accept_stream) give more, each independent of
/// the others.
#[derive(Debug, Clone)]
pub struct Session {
    inner: Arc<SessionRef>,
}

/// What every handle on one session shares; the shared state keeps a `Weak`
/// to it (`Waiters::handle`), so that every handle on a session is a clone of
/// one `Arc` and the session closes when the last one goes.
#[derive(Debug)]
pub(crate) struct SessionRef {
    shared: Arc<Shared>,
    id: SessionId,
    remote: SocketAddr,
}

impl Drop for SessionRef {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if let Some(mut s) = state.endpoint.session(self.id)
            && !matches!(s.state(), State::Closing | State::Closed)
        {
            s.close(Instant::now(), DROPPED_CODE);
        }
        // Report the close now (to `closed_events` subscribers), not on the
        // driver's next turn.
        state.dispatch_events();
        // Handed out (by `Endpoint::session`) before `accept` took it: the
        // application let it go, so `accept` must not offer it again.
        state.incoming.retain(|&id| id != self.id);
        let closed = state.closed_reason(self.id).is_some();
        let this: *const SessionRef = self;
        if let Some(w) = state.sessions.get_mut(&self.id)
            && w.handle
                .as_ref()
                .is_some_and(|h| std::ptr::eq(h.as_ptr(), this))
        {
            if closed {
                state.sessions.remove(&self.id);
            } else {
                w.handle = None;
            }
        }
        state.wake_driver();
    }
}

impl Session {
    /// A handle on `id`, made while the caller holds the lock (`state`), so
    /// the driver cannot forget the session between its creation and this
    /// handle's: a clone of the live handles if there are any, else the
    /// first one.
    ///
    /// `None` when the last handle is being dropped (its drop, waiting for the
    /// lock, is about to close the session): a closing session gets no new
    /// handle.
    pub(crate) fn attach(
        shared: &Arc<Shared>,
        state: &mut crate::shared::State,
        id: SessionId,
        remote: SocketAddr,
    ) -> Option<Self> {
        let w = state.waiters(id);
        if let Some(handle) = &w.handle {
            return handle.upgrade().map(|inner| Self { inner });
        }
        let inner = Arc::new(SessionRef {
            shared: shared.clone(),
            id,
            remote,
        });
        w.handle = Some(Arc::downgrade(&inner));
        Some(Self { inner })
    }

    pub(crate) fn shared(&self) -> &Shared {
        &self.inner.shared
    }

    /// This side's id for the session. The peer's may differ: a listener
    /// with a server id or several shards issues its own (which names the
    /// shard holding the session). [`Endpoint::session`](crate::Endpoint::session)
    /// takes this one.
    pub fn id(&self) -> SessionId {
        self.inner.id
    }

    /// Which transport carries the session now: [`Transport::Udp`], or
    /// [`Transport::WebSocket`] once it fell back to a WebSocket connection
    /// (see [`FallbackConfig`](crate::FallbackConfig)).
    pub fn transport(&self) -> Transport {
        let mut state = self.shared().lock();
        let remote = state
            .endpoint
            .session(self.inner.id)
            .map_or(self.inner.remote, |s| s.remote_addr());
        state
            .fallback
            .as_ref()
            .map_or(Transport::Udp, |hub| hub.transport(remote))
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.inner.remote
    }

    /// The peer's public key, authenticated by the identity handshake; see
    /// [`ferry_proto::Session::peer_identity`]. `None` for clear and
    /// pre-shared-key sessions, and once the session is gone.
    pub fn peer_identity(&self) -> Option<ferry_proto::PublicKey> {
        let mut state = self.shared().lock();
        state
            .endpoint
            .session(self.id())
            .and_then(|s| s.peer_identity())
    }

    /// The last resumption ticket the listener gave this session, to open
    /// a later one with [`Endpoint::connect_resumed`](crate::Endpoint::connect_resumed); see
    /// [`ferry_proto::Session::ticket`]. `None` before one came (a listener
    /// sends it just after the handshake), at a listener, and once the
    /// session is gone.
    pub fn ticket(&self) -> Option<ferry_proto::Ticket> {
        let mut state = self.shared().lock();
        state.endpoint.session(self.id()).and_then(|s| s.ticket())
    }

    /// Whether the session was opened with a resumption ticket (the
    /// shortened handshake).
    pub fn is_resumed(&self) -> bool {
        let mut state = self.shared().lock();
        state
            .endpoint
            .session(self.id())
            .is_some_and(|s| s.is_resumed())
    }

    /// Where the session is in its lifecycle.
    pub fn state(&self) -> State {
        let mut state = self.shared().lock();
        state
            .endpoint
            .session(self.id())
            .map_or(State::Closed, |s| s.state())
    }

    /// Counters and RTT; the final ones once the session is over.
    pub fn stats(&self) -> SessionStats {
        let mut state = self.shared().lock();
        if let Some(s) = state.endpoint.session(self.id()) {
            return s.stats();
        }
        // Gone from the endpoint: the counters it kept (a session closed
        // locally drains and is forgotten without a `Closed` event), else
        // those recorded at its `Closed` event.
        if let Some(stats) = state.endpoint.closed_session_stats(self.id()) {
            return stats.clone();
        }
        state
            .sessions
            .get(&self.id())
            .and_then(|w| w.final_stats.clone())
            .unwrap_or_default()
    }

    /// Largest message [`send`](Self::send) accepts.
    pub fn max_message_size(&self) -> usize {
        let mut state = self.shared().lock();
        state
            .endpoint
            .session(self.id())
            .map_or(0, |s| s.max_message_size())
    }

    /// Largest datagram [`send_datagram`](Self::send_datagram) accepts.
    pub fn max_datagram_size(&self) -> usize {
        let mut state = self.shared().lock();
        state
            .endpoint
            .session(self.id())
            .map_or(0, |s| s.max_datagram_size())
    }

    /// Why the session cannot be used, once the endpoint said it cannot.
    fn gone(state: &mut crate::shared::State, id: SessionId) -> Option<CloseReason> {
        // The Closed event may still wait in the endpoint's queue.
        state.dispatch_events();
        state.closed_reason(id)
    }

    /// Queues a message for reliable, ordered delivery, waiting while the send
    /// buffer is full (backpressure: memory never grows beyond `send_buffer`).
    ///
    /// Resolves once the message is queued, not once it is delivered.
    /// **Cancel-safe**: if the future is dropped before it resolves, the message
    /// was not queued.
    pub async fn send(&self, message: impl Into<Bytes>) -> Result<(), SendError> {
        let message = message.into();
        poll_fn(|cx| {
            let mut state = self.shared().lock();
            let id = self.id();
            let result = match state.endpoint.session(id) {
                Some(mut s) => s.send(message.clone()),
                None => Err(ferry_proto::SendError::Closed),
            };
            match result {
                Ok(()) => {
                    state.wake_driver();
                    Poll::Ready(Ok(()))
                }
                Err(ferry_proto::SendError::Blocked) => {
                    state.waiters(id).writers.register(cx.waker());
                    Poll::Pending
                }
                Err(ferry_proto::SendError::TooLarge { size, max }) => {
                    Poll::Ready(Err(SendError::TooLarge { size, max }))
                }
                Err(
                    ferry_proto::SendError::Closed
                    | ferry_proto::SendError::UnknownSession
                    // Stream 0 is never finished or reset by this API.
                    | ferry_proto::SendError::UnknownStream
                    | ferry_proto::SendError::StreamClosed,
                ) => {
                    let reason = Self::gone(&mut state, id);
                    Poll::Ready(Err(
                        reason.map_or(SendError::EndpointClosed, SendError::Closed)
                    ))
                }
            }
        })
        .await
    }

    /// Resolves once the peer has acknowledged every message sent on the
    /// session before this call — on stream 0 and on every other stream —
    /// each fragment of it received by the peer's endpoint (which delivers
    /// it to its application: acknowledged is not yet read). The target is
    /// taken when the call is made, not when the future is first polled:
    /// messages sent afterwards are not waited for.
    ///
    /// Fails, never resolving `Ok` unless everything arrived:
    /// [`AckError::Closed`] with the reason if the session closes first
    /// (a close drops what is still queued), [`AckError::EndpointClosed`],
    /// [`AckError::Reset`] if a stream of the session lost messages to a
    /// reset (this side's) or a refusal (the peer's), [`AckError::Lost`] if
    /// an unreliable stream of it gave up a lost message. Those two count
    /// over the session's life, so one reset with messages pending makes
    /// every later call fail: wait on each [`Stream`] then
    /// ([`Stream::acknowledged`]).
    ///
    /// A peer that closes the session as soon as it has everything sends
    /// the acknowledgement it owes just before its close, and the call
    /// resolves `Ok` even when both arrive in one round and the session is
    /// gone by the time it looks (it reads what the session's messages came
    /// to when it was forgotten).
    ///
    /// It has no timeout of its own: wrap it in the runtime's (e.g.
    /// `tokio::time::timeout`); `ferry-blocking` has `acknowledged_timeout`.
    /// The driver wakes it as acknowledgements arrive, and no lock is held
    /// while it waits.
    ///
    /// **Cancel-safe**: it only watches. The future holds a handle on the
    /// session (keeping it open) until it resolves or is dropped.
    pub fn acknowledged(&self) -> impl Future<Output = Result<(), AckError>> + Send + 'static {
        let target = AckTarget::session(&mut self.shared().lock(), self.id());
        let session = self.clone();
        async move { poll_fn(|cx| target.poll(&mut session.shared().lock(), cx)).await }
    }

    /// The next message, whole and in order. Messages the peer sent before
    /// closing are all delivered before the close is reported.
    ///
    /// **Cancel-safe**: a message is taken only when the future resolves with it.
    pub async fn recv(&self) -> Result<Bytes, RecvError> {
        poll_fn(|cx| {
            let mut state = self.shared().lock();
            let id = self.id();
            if let Some(message) = state.endpoint.session(id).and_then(|mut s| s.recv()) {
                // Taking a message returns credit: the driver may owe the peer an ack.
                state.wake_driver();
                return Poll::Ready(Ok(message));
            }
            if let Some(reason) = state.closed_reason(id) {
                return Poll::Ready(Err(RecvError::Closed(reason)));
            }
            if state.stopped {
                return Poll::Ready(Err(RecvError::EndpointClosed));
            }
            state.waiters(id).readers.register(cx.waker());
            Poll::Pending
        })
        .await
    }

    /// Opens a stream of `kind`: an independent flow of messages both ways
    /// (see [`Stream`]). Never waits; the peer learns of the stream with its
    /// first message or its finish, and gets it from
    /// [`accept_stream`](Self::accept_stream).
    ///
    /// Fails with [`StreamError::TooManyStreams`] when as many of this side's
    /// streams are open as the peer allows (its `max_streams`), and
    /// [`StreamError::NotConnected`] while the session is handshaking (a
    /// handle from [`Endpoint::session`](crate::Endpoint::session) may be).
    pub fn open_stream(&self, kind: StreamKind) -> Result<Stream, StreamError> {
        let mut state = self.shared().lock();
        let id = self.id();
        let result = match state.endpoint.session(id) {
            Some(mut s) => s.open_stream(kind),
            None => Err(ferry_proto::StreamError::UnknownSession),
        };
        match result {
            Ok(stream) => {
                state.waiters(id).streams.entry(stream).or_default();
                Ok(Stream::new(self.clone(), stream, kind))
            }
            Err(ferry_proto::StreamError::TooManyStreams { max }) => {
                Err(StreamError::TooManyStreams { max })
            }
            Err(ferry_proto::StreamError::NotConnected)
                if state
                    .endpoint
                    .session(id)
                    .is_some_and(|s| matches!(s.state(), State::Init | State::Handshaking)) =>
            {
                Err(StreamError::NotConnected)
            }
            Err(_) => match Self::gone(&mut state, id) {
                Some(reason) => Err(StreamError::Closed(reason)),
                None => Err(StreamError::EndpointClosed),
            },
        }
    }

    /// The next stream the peer opened, in the order they reached this side
    /// (streams of one kind in the order the peer opened them); `None`
    /// once the session (or the endpoint) is closed and every stream the peer
    /// opened before was taken.
    ///
    /// A stream not taken keeps what the peer sends on it (up to its flow
    /// control window) and counts against this side's `max_streams`.
    ///
    /// **Cancel-safe**: a stream is taken only when the future resolves with
    /// it.
    pub async fn accept_stream(&self) -> Option<Stream> {
        poll_fn(|cx| self.poll_accept_stream(cx)).await
    }

    /// [`accept_stream`](Self::accept_stream) as a poll function:
    /// `Ready(Some(stream))` takes the stream, `Pending` takes nothing and
    /// registers `cx`'s waker.
    pub fn poll_accept_stream(&self, cx: &mut Context<'_>) -> Poll<Option<Stream>> {
        let mut state = self.shared().lock();
        let id = self.id();
        state.dispatch_events();
        let over = state.stopped || state.closed_reason(id).is_some();
        let w = state.waiters(id);
        if let Some(stream) = w.incoming_streams.pop_front() {
            let kind = stream.kind().unwrap_or(StreamKind::ReliableOrdered);
            return Poll::Ready(Some(Stream::new(self.clone(), stream, kind)));
        }
        if over {
            return Poll::Ready(None);
        }
        w.stream_acceptors.register(cx.waker());
        Poll::Pending
    }

    /// Sends an unreliable datagram: sent once, delivered or lost, never
    /// retransmitted. Returns at once; when the queue is full the oldest queued
    /// datagram is dropped.
    pub fn send_datagram(&self, datagram: impl Into<Bytes>) -> Result<(), DatagramError> {
        let datagram = datagram.into();
        let mut state = self.shared().lock();
        let id = self.id();
        let result = match state.endpoint.session(id) {
            Some(mut s) => s.send_datagram(datagram),
            None => Err(ferry_proto::DatagramError::UnknownSession),
        };
        match result {
            Ok(()) => {
                state.wake_driver();
                Ok(())
            }
            Err(ferry_proto::DatagramError::TooLarge { size, max }) => {
                Err(DatagramError::TooLarge { size, max })
            }
            Err(ferry_proto::DatagramError::NotConnected)
                if state
                    .endpoint
                    .session(id)
                    .is_some_and(|s| matches!(s.state(), State::Init | State::Handshaking)) =>
            {
                Err(DatagramError::NotConnected)
            }
            Err(_) => match Self::gone(&mut state, id) {
                Some(reason) => Err(DatagramError::Closed(reason)),
                None => Err(DatagramError::EndpointClosed),
            },
        }
    }

    /// The next unreliable datagram. Datagrams not taken are dropped oldest
    /// first once `datagram_queue` of them wait.
    ///
    /// **Cancel-safe**: a datagram is taken only when the future resolves with it.
    pub async fn recv_datagram(&self) -> Result<Bytes, RecvError> {
        poll_fn(|cx| {
            let mut state = self.shared().lock();
            let id = self.id();
            let w = state.waiters(id);
            if let Some(d) = w.datagrams.pop_front() {
                return Poll::Ready(Ok(d));
            }
            if let Some(reason) = w.closed.clone() {
                return Poll::Ready(Err(RecvError::Closed(reason)));
            }
            w.datagram_readers.register(cx.waker());
            if state.stopped {
                return Poll::Ready(Err(RecvError::EndpointClosed));
            }
            Poll::Pending
        })
        .await
    }

    /// Closes the session with an application `code`: the close packet leaves at
    /// once and queued data is dropped. The peer sees
    /// [`CloseReason::Remote`] with the same code.
    pub fn close(&self, code: u64) {
        self.close_with_reason(code, "");
    }

    /// [`close`](Self::close), with a short text beside the code: the peer's
    /// [`CloseReason::Remote`] carries both. UTF-8 of at most
    /// [`MAX_CLOSE_REASON`](ferry_proto::wire::packet::MAX_CLOSE_REASON)
    /// bytes: longer text is cut at the last character boundary within the
    /// bound ([`CloseText::new`](ferry_proto::CloseText::new)).
    pub fn close_with_reason(&self, code: u64, reason: &str) {
        let mut state = self.shared().lock();
        if let Some(mut s) = state.endpoint.session(self.id()) {
            s.close_with_reason(Instant::now(), code, reason);
        }
        state.dispatch_events();
        state.wake_driver();
    }

    /// Resolves when the session has ended, with the reason.
    ///
    /// **Cancel-safe**: it only watches.
    pub async fn closed(&self) -> CloseReason {
        poll_fn(|cx| {
            let mut state = self.shared().lock();
            let id = self.id();
            if let Some(reason) = state.closed_reason(id) {
                return Poll::Ready(reason);
            }
            if state.stopped {
                return Poll::Ready(CloseReason::Local {
                    code: DROPPED_CODE,
                    reason: ferry_proto::CloseText::EMPTY,
                });
            }
            state.waiters(id).watchers.register(cx.waker());
            Poll::Pending
        })
        .await
    }
}
