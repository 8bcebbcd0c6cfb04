//! Streams: independent flows of messages within one session, and their
//! byte-stream adapter.

use std::future::poll_fn;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use ferry_proto::{SessionId, State, StreamEnd, StreamId, StreamKind};

use crate::acknowledged::AckTarget;
use crate::error::{AckError, StreamRecvError, StreamSendError};
use crate::session::Session;
use crate::shared::{self, StreamWaiters};

/// Largest message one write of a [`StreamIo`] becomes (smaller still if the
/// session's `max_message_size` is).
pub const WRITE_CHUNK: usize = 64 * 1024;

/// One stream of a session: an independent flow of messages, delivered as its
/// [`StreamKind`] says, that either side may open
/// ([`Session::open_stream`]; the peer gets it from
/// [`Session::accept_stream`]). A lost packet delays only the stream whose
/// data it carried.
///
/// Each direction ends on its own: this side's with [`finish`](Self::finish)
/// (the peer reads every message sent, then the end) or
/// [`reset`](Self::reset) (what was not delivered is dropped); the peer's as
/// [`recv`](Self::recv) and [`end`](Self::end) report.
///
/// Cheap to clone (an `Arc`); every clone is the same stream, and any task
/// may use one. A stream holds its session: the session stays open while a
/// handle on any of its streams exists, even when every [`Session`] handle is
/// gone. **Dropping the last handle** of a stream finishes this side's
/// sending (as [`finish`](Self::finish) does, unless it was finished or reset
/// already) and discards whatever the peer still sends on it, so that both
/// sides can forget the stream and it stops counting against the peer's
/// `max_streams`. If it also held the session's last handle, the session
/// then closes with [`DROPPED_CODE`](crate::DROPPED_CODE), and a close drops
/// what was still queued: finish and wait for the peer (e.g.
/// [`closed`](Self::closed)) before letting go, when every message matters.
///
/// For `AsyncRead`/`AsyncWrite` (or `std::io` in `ferry-blocking`), wrap it
/// in a [`StreamIo`].
#[derive(Debug, Clone)]
pub struct Stream {
    inner: Arc<StreamRef>,
}

/// What every handle on one stream shares; dropping it ends this side's use
/// of the stream.
#[derive(Debug)]
struct StreamRef {
    session: Session,
    id: StreamId,
    kind: StreamKind,
}

impl Drop for StreamRef {
    fn drop(&mut self) {
        let sid = self.session.id();
        let mut state = self.session.shared().lock();
        if let Some(mut s) = state.endpoint.session(sid) {
            if !matches!(s.state(), State::Closing | State::Closed) {
                // Already finished or reset, or over: nothing to do.
                let _ = s.finish_stream(self.id);
            }
            while s.recv_on(self.id).is_some() {}
        }
        let gone = state.stopped || state.closed_reason(sid).is_some();
        if let Some(w) = state.sessions.get_mut(&sid)
            && let Some(s) = w.streams.get_mut(&self.id)
        {
            if gone || s.end.is_some() {
                w.streams.remove(&self.id);
            } else {
                s.discarded = true;
            }
        }
        // The end, if the messages just dropped were the last ones.
        state.dispatch_events();
        state.wake_driver();
    }
}

impl Stream {
    /// A new handle on `id`; its waiters already exist.
    pub(crate) fn new(session: Session, id: StreamId, kind: StreamKind) -> Self {
        Self {
            inner: Arc::new(StreamRef { session, id, kind }),
        }
    }

    /// The stream's id within its session, the same on both sides.
    pub fn id(&self) -> StreamId {
        self.inner.id
    }

    /// How the stream delivers its messages.
    pub fn kind(&self) -> StreamKind {
        self.inner.kind
    }

    /// The session the stream belongs to.
    pub fn session(&self) -> &Session {
        &self.inner.session
    }

    fn session_id(&self) -> SessionId {
        self.inner.session.id()
    }

    fn waiters<'a>(&self, state: &'a mut shared::State) -> &'a mut StreamWaiters {
        state
            .waiters(self.session_id())
            .streams
            .entry(self.id())
            .or_default()
    }

    /// Queues a message on the stream, waiting while the session's send buffer
    /// is full (backpressure: the buffer is shared by every stream of the
    /// session and its default stream).
    ///
    /// Resolves once the message is queued, not once it is delivered. Fails
    /// with [`StreamSendError::Finished`] after [`finish`](Self::finish) or
    /// [`reset`](Self::reset), [`StreamSendError::Refused`] if the peer
    /// refused the stream, [`StreamSendError::TooLarge`] above the session's
    /// [`max_message_size`](Session::max_message_size).
    ///
    /// **Cancel-safe**: if the future is dropped before it resolves, the
    /// message was not queued.
    pub async fn send(&self, message: impl Into<Bytes>) -> Result<(), StreamSendError> {
        let message = message.into();
        poll_fn(|cx| self.poll_send(cx, &message)).await
    }

    /// [`send`](Self::send) as a poll function: `Ready(Ok(()))` queued a clone
    /// of `message` (a [`Bytes`] clone shares the bytes); `Pending` queued
    /// nothing and registers `cx`'s waker for room in the send buffer.
    pub fn poll_send(
        &self,
        cx: &mut Context<'_>,
        message: &Bytes,
    ) -> Poll<Result<(), StreamSendError>> {
        let mut state = self.session().shared().lock();
        self.send_locked(&mut state, cx, message.clone())
    }

    fn send_locked(
        &self,
        state: &mut shared::State,
        cx: &mut Context<'_>,
        message: Bytes,
    ) -> Poll<Result<(), StreamSendError>> {
        let result = match state.endpoint.session(self.session_id()) {
            Some(mut s) => s.send_on(self.id(), message),
            None => Err(ferry_proto::SendError::Closed),
        };
        Poll::Ready(match result {
            Ok(()) => {
                state.wake_driver();
                Ok(())
            }
            Err(ferry_proto::SendError::Blocked) => {
                self.waiters(state).writers.register(cx.waker());
                return Poll::Pending;
            }
            Err(ferry_proto::SendError::TooLarge { size, max }) => {
                Err(StreamSendError::TooLarge { size, max })
            }
            Err(e) => Err(self.send_failure(state, e)),
        })
    }

    /// Why this side can send no more, from the core's error.
    fn send_failure(
        &self,
        state: &mut shared::State,
        error: ferry_proto::SendError,
    ) -> StreamSendError {
        // The Closed event, or the refusal, may still wait in the endpoint's
        // queue.
        state.dispatch_events();
        if let Some(reason) = state.closed_reason(self.session_id()) {
            return StreamSendError::Closed(reason);
        }
        if state.stopped {
            return StreamSendError::EndpointClosed;
        }
        match error {
            ferry_proto::SendError::Closed | ferry_proto::SendError::UnknownSession => {
                StreamSendError::EndpointClosed
            }
            _ if self.waiters(state).end == Some(StreamEnd::Refused) => StreamSendError::Refused,
            // Finished or reset here (and perhaps over at both ends since).
            _ => StreamSendError::Finished,
        }
    }

    /// The next message: `Ok(Some(message))`, or `Ok(None)` once the peer
    /// finished the stream and every message it sent was taken (and on every
    /// call after that). Messages come whole, as the stream's kind says:
    /// in order and exactly once on reliable ordered streams, as soon as
    /// complete on reliable unordered ones, only the newest on unreliable ones.
    ///
    /// Fails with [`StreamRecvError::Reset`] once the peer reset the stream
    /// (messages it sent that were not taken yet are dropped),
    /// [`StreamRecvError::Refused`] if the peer refused a stream this side
    /// opened, [`StreamRecvError::Closed`] once the session is closed and the
    /// stream's delivered messages were taken.
    ///
    /// **Cancel-safe**: a message is taken only when the future resolves with
    /// it.
    pub async fn recv(&self) -> Result<Option<Bytes>, StreamRecvError> {
        poll_fn(|cx| self.poll_recv(cx)).await
    }

    /// [`recv`](Self::recv) as a poll function: `Ready` takes the message (or
    /// reports the end), `Pending` takes nothing and registers `cx`'s waker.
    pub fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Result<Option<Bytes>, StreamRecvError>> {
        let mut state = self.session().shared().lock();
        // An end the core reported when the last message was taken.
        state.dispatch_events();
        let sid = self.session_id();
        if let Some(message) = state
            .endpoint
            .session(sid)
            .and_then(|mut s| s.recv_on(self.id()))
        {
            // Taking a message returns credit: the driver may owe the peer
            // an update.
            state.wake_driver();
            return Poll::Ready(Ok(Some(message)));
        }
        let closed = state.closed_reason(sid);
        let stopped = state.stopped;
        let w = self.waiters(&mut state);
        match w.end {
            Some(StreamEnd::Finished) => return Poll::Ready(Ok(None)),
            Some(StreamEnd::Reset { code }) => {
                return Poll::Ready(Err(StreamRecvError::Reset { code }));
            }
            Some(StreamEnd::Refused) => return Poll::Ready(Err(StreamRecvError::Refused)),
            None => {}
        }
        if let Some(reason) = closed {
            return Poll::Ready(Err(StreamRecvError::Closed(reason)));
        }
        if stopped {
            return Poll::Ready(Err(StreamRecvError::EndpointClosed));
        }
        w.readers.register(cx.waker());
        Poll::Pending
    }

    /// Ends this side's sending: the peer reads every message sent before,
    /// then the end ([`StreamEnd::Finished`]). Never waits; the messages
    /// still go out (and are repaired) in the background. Fails with
    /// [`StreamSendError::Finished`] if this side already finished or reset
    /// the stream.
    pub fn finish(&self) -> Result<(), StreamSendError> {
        self.end_sending(None)
    }

    /// Resolves once the peer has acknowledged every message sent on this
    /// stream before the call (each received whole by the peer's endpoint,
    /// not necessarily read yet). See [`Session::acknowledged`] for the
    /// whole session.
    ///
    /// Fails, never resolving `Ok` unless everything arrived:
    /// [`AckError::Closed`] with the reason if the session closes first,
    /// [`AckError::EndpointClosed`], [`AckError::Reset`] if this side reset
    /// the stream before every message was acknowledged,
    /// [`AckError::Refused`] if the peer refused it, [`AckError::Lost`] on
    /// an unreliable stream once a message was lost and given up (ever,
    /// since the stream opened: an unreliable stream does not repair).
    ///
    /// It has no timeout of its own: wrap it in the runtime's;
    /// `ferry-blocking` has `acknowledged_timeout`. **Cancel-safe**: it only
    /// watches; the future holds a handle on the stream until it resolves or
    /// is dropped.
    pub fn acknowledged(&self) -> impl Future<Output = Result<(), AckError>> + Send + 'static {
        self.wait_acknowledged(false, None)
    }

    /// [`finish`](Self::finish), then resolves once the peer has
    /// acknowledged every message sent on the stream and the finish itself:
    /// the peer has everything and knows it is everything (its reader gets
    /// them all, then the end). The way to end a stream when every message
    /// matters before letting go of the session.
    ///
    /// A stream already finished is only waited for. Fails as
    /// [`acknowledged`](Self::acknowledged) does, and with
    /// [`AckError::Reset`] if the stream was reset (its finish will never
    /// be acknowledged). **Cancel-safe** as to the wait: dropping the
    /// future leaves the stream finished.
    pub fn finish_acknowledged(
        &self,
    ) -> impl Future<Output = Result<(), AckError>> + Send + 'static {
        let early = match self.finish() {
            // Finished before (or reset: the wait says so).
            Ok(()) | Err(StreamSendError::Finished) => None,
            Err(StreamSendError::Closed(reason)) => Some(AckError::Closed(reason)),
            Err(StreamSendError::Refused) => Some(AckError::Refused),
            Err(_) => Some(AckError::EndpointClosed),
        };
        self.wait_acknowledged(true, early)
    }

    fn wait_acknowledged(
        &self,
        finish: bool,
        early: Option<AckError>,
    ) -> impl Future<Output = Result<(), AckError>> + Send + 'static {
        let target = AckTarget::stream(
            &mut self.session().shared().lock(),
            self.session_id(),
            self.id(),
            finish,
        );
        let stream = self.clone();
        async move {
            if let Some(e) = early {
                return Err(e);
            }
            poll_fn(|cx| target.poll(&mut stream.session().shared().lock(), cx)).await
        }
    }

    /// Abandons this side's sending with an application `code`: messages not
    /// yet delivered are dropped at both ends, and the peer's
    /// [`recv`](Self::recv) fails with [`StreamRecvError::Reset`] carrying
    /// `code`. Allowed after [`finish`](Self::finish) (to drop what is still
    /// in flight); fails with [`StreamSendError::Finished`] after a reset or
    /// once the stream is over at both ends.
    pub fn reset(&self, code: u64) -> Result<(), StreamSendError> {
        self.end_sending(Some(code))
    }

    fn end_sending(&self, reset: Option<u64>) -> Result<(), StreamSendError> {
        let mut state = self.session().shared().lock();
        let result = match state.endpoint.session(self.session_id()) {
            Some(s) if matches!(s.state(), State::Closing | State::Closed) => {
                Err(ferry_proto::SendError::Closed)
            }
            Some(mut s) => match reset {
                None => s.finish_stream(self.id()),
                Some(code) => s.reset_stream(self.id(), code),
            },
            None => Err(ferry_proto::SendError::Closed),
        };
        match result {
            Ok(()) => {
                if reset.is_some() {
                    let w = state.waiters(self.session_id());
                    // What waits for acknowledgements learns of the drop.
                    w.acked.wake();
                    w.streams.entry(self.id()).or_default().reset_sent = true;
                }
                state.wake_driver();
                Ok(())
            }
            Err(e) => Err(self.send_failure(&mut state, e)),
        }
    }

    /// How the peer's side of the stream ended, if it did: finished (and
    /// every message taken), reset, or refused. Never waits.
    pub fn end(&self) -> Option<StreamEnd> {
        let mut state = self.session().shared().lock();
        state.dispatch_events();
        self.waiters(&mut state).end
    }

    /// Resolves when the peer's side of the stream is over, with how
    /// ([`end`](Self::end)), or with `None` if the session or the endpoint
    /// closed first ([`Session::closed`] says why). A finished stream ends
    /// only once every message was taken, so this waits for the reader.
    ///
    /// **Cancel-safe**: it only watches.
    pub async fn closed(&self) -> Option<StreamEnd> {
        poll_fn(|cx| {
            let mut state = self.session().shared().lock();
            state.dispatch_events();
            let gone = state.stopped || state.closed_reason(self.session_id()).is_some();
            let w = self.waiters(&mut state);
            if let Some(end) = w.end {
                return Poll::Ready(Some(end));
            }
            if gone {
                return Poll::Ready(None);
            }
            w.watchers.register(cx.waker());
            Poll::Pending
        })
        .await
    }
}

/// A [`Stream`] as a byte stream: writes become messages, reads return the
/// bytes of the messages in order.
///
/// The runtime adapters give it the standard traits: `ferry-smol` and
/// `ferry-async-std` re-export it with `futures_io::AsyncRead` and
/// `AsyncWrite` (this crate's `futures-io` feature), `ferry-tokio` wraps it
/// in a type with `tokio::io::AsyncRead` and `AsyncWrite`, and
/// `ferry-blocking` in one with `std::io::Read` and `Write`. The poll
/// methods here are what those implementations call.
///
/// - **Writes**: each write queues one message of up to [`WRITE_CHUNK`]
///   bytes (fewer if the session's `max_message_size` is smaller) and
///   returns how many it took, waiting while the send buffer is full. Small
///   writes make small messages: wrap the writer in a buffered writer to
///   coalesce them. Flushing does nothing: queued bytes go out in the
///   background, repaired as needed. Shutting down [finishes](Stream::finish)
///   the stream (again: nothing).
/// - **Reads** return the bytes of each message in turn, keeping the rest of
///   a message that did not fit for the next read; empty messages are
///   skipped. A read returns 0 at the end of a finished stream and fails with
///   [`io::ErrorKind::ConnectionReset`] after a reset (the error's source is
///   the [`StreamRecvError`]).
///
/// Meant for reliable ordered streams: on the other kinds the bytes are
/// those of the messages as they come (reordered, or with gaps).
///
/// Reading and writing are independent: for a reader and a writer in two
/// tasks, make two adapters from clones of the stream.
#[derive(Debug)]
pub struct StreamIo {
    stream: Stream,
    /// The rest of a message partly read.
    pending: Bytes,
}

impl From<Stream> for StreamIo {
    fn from(stream: Stream) -> Self {
        Self::new(stream)
    }
}

impl StreamIo {
    /// The byte-stream adapter of `stream`.
    pub fn new(stream: Stream) -> Self {
        Self {
            stream,
            pending: Bytes::new(),
        }
    }

    /// The stream.
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// The stream back; bytes of a message read only in part are dropped.
    pub fn into_inner(self) -> Stream {
        self.stream
    }

    /// Reads up to `max` bytes without copying: a slice of the next message
    /// (empty at the end of a finished stream, or when `max` is 0).
    /// `Pending` takes nothing and registers `cx`'s waker.
    pub fn poll_read_bytes(&mut self, cx: &mut Context<'_>, max: usize) -> Poll<io::Result<Bytes>> {
        if max == 0 {
            return Poll::Ready(Ok(Bytes::new()));
        }
        while self.pending.is_empty() {
            match self.stream.poll_recv(cx) {
                Poll::Ready(Ok(Some(message))) => self.pending = message,
                Poll::Ready(Ok(None)) => return Poll::Ready(Ok(Bytes::new())),
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e.into())),
                Poll::Pending => return Poll::Pending,
            }
        }
        let n = max.min(self.pending.len());
        Poll::Ready(Ok(self.pending.split_to(n)))
    }

    /// Reads into `buf`: how many bytes, 0 at the end of a finished stream.
    pub fn poll_read(&mut self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        self.poll_read_bytes(cx, buf.len()).map_ok(|bytes| {
            buf[..bytes.len()].copy_from_slice(&bytes);
            bytes.len()
        })
    }

    /// Queues the first bytes of `buf` as one message and says how many;
    /// `Pending` (the send buffer is full) queued nothing and registers
    /// `cx`'s waker.
    pub fn poll_write(&mut self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        let mut state = self.stream.session().shared().lock();
        let max = state
            .endpoint
            .session(self.stream.session_id())
            .map_or(WRITE_CHUNK, |s| s.max_message_size())
            .clamp(1, WRITE_CHUNK);
        let n = buf.len().min(max);
        let message = Bytes::copy_from_slice(&buf[..n]);
        self.stream
            .send_locked(&mut state, cx, message)
            .map(|r| r.map(|()| n).map_err(io::Error::from))
    }

    /// Nothing to do: written bytes are queued and go out on their own.
    pub fn poll_flush(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    /// Finishes the stream (once; again is nothing): the peer reads the
    /// bytes written, then the end.
    pub fn poll_shutdown(&mut self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(match self.stream.finish() {
            Ok(()) | Err(StreamSendError::Finished) => Ok(()),
            Err(e) => Err(e.into()),
        })
    }
}

#[cfg(feature = "futures-io")]
mod futures_io_impls {
    use std::io;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::StreamIo;

    impl futures_io::AsyncRead for StreamIo {
        fn poll_read(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &mut [u8],
        ) -> Poll<io::Result<usize>> {
            StreamIo::poll_read(self.get_mut(), cx, buf)
        }
    }

    impl futures_io::AsyncWrite for StreamIo {
        fn poll_write(
            self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            StreamIo::poll_write(self.get_mut(), cx, buf)
        }

        fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            StreamIo::poll_flush(self.get_mut(), cx)
        }

        fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            StreamIo::poll_shutdown(self.get_mut(), cx)
        }
    }
}
