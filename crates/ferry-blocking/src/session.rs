//! The blocking handle on a session.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use ferry_async::{
    AckError, CloseReason, DatagramError, RecvError, SendError, SessionId, SessionStats, State,
    StreamError, StreamKind,
};

use crate::block_on::{block_on, block_on_until, deadline_after};
use crate::stream::{AcceptStreamTimeout, Stream};

/// A session: reliable ordered messages, streams, unreliable datagrams, close.
///
/// Cheap to clone (an `Arc`); every clone is the same session (and so is
/// every handle [`Endpoint::session`](crate::Endpoint::session) returns for its
/// id), and any number of threads may use the clones (or one shared
/// reference) at once: each message is received by exactly one caller.
/// Dropping the last handle closes the session with
/// [`ferry_async::DROPPED_CODE`], unless a [`Stream`] of it is still held (a
/// stream keeps its session open).
///
/// The calls that wait block the calling thread; each has a `_timeout` form.
/// A call that times out has no effect: a message that timed out in
/// [`send_timeout`](Self::send_timeout) was not queued, and
/// [`recv_timeout`](Self::recv_timeout) took nothing.
#[derive(Debug, Clone)]
pub struct Session {
    inner: ferry_async::Session,
}

impl Session {
    pub(crate) fn from_async(inner: ferry_async::Session) -> Self {
        Self { inner }
    }

    /// The session's id, the same on both sides.
    pub fn id(&self) -> SessionId {
        self.inner.id()
    }

    /// Which transport carries the session now (UDP, or the WebSocket
    /// fallback). See [`ferry_async::Session::transport`].
    pub fn transport(&self) -> ferry_async::Transport {
        self.inner.transport()
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> SocketAddr {
        self.inner.remote_addr()
    }

    /// Where the session is in its lifecycle.
    pub fn state(&self) -> State {
        self.inner.state()
    }

    /// Counters and RTT; the final ones once the session is over.
    pub fn stats(&self) -> SessionStats {
        self.inner.stats()
    }

    /// The peer's public key, authenticated by the identity handshake; see
    /// [`ferry_async::Session::peer_identity`].
    pub fn peer_identity(&self) -> Option<ferry_async::PublicKey> {
        self.inner.peer_identity()
    }

    /// The last resumption ticket the listener gave this session; see
    /// [`ferry_async::Session::ticket`].
    pub fn ticket(&self) -> Option<ferry_async::Ticket> {
        self.inner.ticket()
    }

    /// Whether the session was opened with a resumption ticket.
    pub fn is_resumed(&self) -> bool {
        self.inner.is_resumed()
    }

    /// Largest message [`send`](Self::send) accepts (0 once the session is gone).
    pub fn max_message_size(&self) -> usize {
        self.inner.max_message_size()
    }

    /// Largest datagram [`send_datagram`](Self::send_datagram) accepts (0 once
    /// the session is gone).
    pub fn max_datagram_size(&self) -> usize {
        self.inner.max_datagram_size()
    }

    /// Queues a message for reliable, ordered delivery, blocking while the send
    /// buffer is full (backpressure: memory never grows beyond the
    /// configuration's `send_buffer`).
    ///
    /// Returns once the message is queued, not once it is delivered. Fails with
    /// [`SendError::TooLarge`] for a message above
    /// [`max_message_size`](Self::max_message_size), and
    /// [`SendError::Closed`] or [`SendError::EndpointClosed`] once the session
    /// or the endpoint is closed.
    pub fn send(&self, message: impl Into<Bytes>) -> Result<(), SendError> {
        block_on(self.inner.send(message))
    }

    /// [`send`](Self::send), blocking at most `timeout` for room in the send
    /// buffer; then fails with [`SendError::Timeout`] and the message is not
    /// queued. A zero `timeout` queues the message only if it fits now.
    pub fn send_timeout(
        &self,
        message: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<(), SendError> {
        block_on_until(self.inner.send(message), deadline_after(timeout))
            .unwrap_or(Err(SendError::Timeout))
    }

    /// Blocks until the peer has acknowledged every message sent on the
    /// session before the call, on every stream: each received whole by the
    /// peer's endpoint (not necessarily read yet). Fails with
    /// [`AckError::Closed`] (and the reason) if the session closes first,
    /// [`AckError::Reset`] or [`AckError::Lost`] if a stream of it dropped
    /// or gave up messages; never returns `Ok` unless everything arrived.
    /// See [`ferry_async::Session::acknowledged`].
    pub fn acknowledged(&self) -> Result<(), AckError> {
        block_on(self.inner.acknowledged())
    }

    /// [`acknowledged`](Self::acknowledged), blocking at most `timeout`;
    /// then fails with [`AckError::Timeout`] (the messages stay queued and
    /// may still be acknowledged later: call again to keep waiting).
    pub fn acknowledged_timeout(&self, timeout: Duration) -> Result<(), AckError> {
        block_on_until(self.inner.acknowledged(), deadline_after(timeout))
            .unwrap_or(Err(AckError::Timeout))
    }

    /// Blocks until the next message, whole and in order. Messages the peer
    /// sent before closing are all delivered before the close is reported as
    /// [`RecvError::Closed`].
    pub fn recv(&self) -> Result<Bytes, RecvError> {
        block_on(self.inner.recv())
    }

    /// [`recv`](Self::recv), blocking at most `timeout`; then fails with
    /// [`RecvError::Timeout`] and nothing was taken. A zero `timeout` takes a
    /// message only if one is waiting.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Bytes, RecvError> {
        block_on_until(self.inner.recv(), deadline_after(timeout))
            .unwrap_or(Err(RecvError::Timeout))
    }

    /// Opens a stream of `kind`, without blocking: an independent flow of
    /// messages both ways. The peer learns of it with its first message or
    /// its finish, and takes it with [`accept_stream`](Self::accept_stream).
    /// Fails with [`StreamError::TooManyStreams`] when as many of this side's
    /// streams are open as the peer allows. See
    /// [`ferry_async::Session::open_stream`].
    pub fn open_stream(&self, kind: StreamKind) -> Result<Stream, StreamError> {
        self.inner.open_stream(kind).map(Stream::from_async)
    }

    /// Blocks until the peer opens a stream, and takes it; `None` once the
    /// session (or the endpoint) is closed and every stream the peer opened
    /// was taken.
    pub fn accept_stream(&self) -> Option<Stream> {
        block_on(self.inner.accept_stream()).map(Stream::from_async)
    }

    /// [`accept_stream`](Self::accept_stream), blocking at most `timeout`:
    /// `Ok(Some(stream))`, `Ok(None)` once the session is closed, or
    /// `Err(AcceptStreamTimeout)` (nothing taken) when no stream came in
    /// time. A zero `timeout` takes a stream only if one is waiting.
    pub fn accept_stream_timeout(
        &self,
        timeout: Duration,
    ) -> Result<Option<Stream>, AcceptStreamTimeout> {
        block_on_until(self.inner.accept_stream(), deadline_after(timeout))
            .map(|stream| stream.map(Stream::from_async))
            .ok_or(AcceptStreamTimeout)
    }

    /// Sends an unreliable datagram: sent once, delivered or lost, never
    /// retransmitted. Never blocks; when the queue is full the oldest queued
    /// datagram is dropped.
    pub fn send_datagram(&self, datagram: impl Into<Bytes>) -> Result<(), DatagramError> {
        self.inner.send_datagram(datagram)
    }

    /// Blocks until the next unreliable datagram. Datagrams not taken are
    /// dropped oldest first once `datagram_queue` of them wait.
    pub fn recv_datagram(&self) -> Result<Bytes, RecvError> {
        block_on(self.inner.recv_datagram())
    }

    /// [`recv_datagram`](Self::recv_datagram), blocking at most `timeout`; then
    /// fails with [`RecvError::Timeout`] and nothing was taken.
    pub fn recv_datagram_timeout(&self, timeout: Duration) -> Result<Bytes, RecvError> {
        block_on_until(self.inner.recv_datagram(), deadline_after(timeout))
            .unwrap_or(Err(RecvError::Timeout))
    }

    /// Closes the session with an application `code`, without blocking: the
    /// close packet leaves at once and queued data is dropped. The peer sees
    /// [`CloseReason::Remote`] with the same code; calls blocked on this
    /// session return.
    pub fn close(&self, code: u64) {
        self.inner.close(code);
    }

    /// [`close`](Self::close), with a short text beside the code: the peer's
    /// [`CloseReason::Remote`] carries both. UTF-8 of at most 256 bytes:
    /// longer text is cut at the last character boundary within the bound
    /// ([`CloseText::new`](crate::CloseText::new)).
    pub fn close_with_reason(&self, code: u64, reason: &str) {
        self.inner.close_with_reason(code, reason);
    }

    /// Blocks until the session has ended, and says why.
    pub fn closed(&self) -> CloseReason {
        block_on(self.inner.closed())
    }
}
