//! The blocking handle on a stream, and its `std::io` adapter.

use std::future::poll_fn;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use ferry_async::{AckError, StreamEnd, StreamId, StreamKind, StreamRecvError, StreamSendError};
use thiserror::Error;

use crate::block_on::{block_on, block_on_until, deadline_after};
use crate::session::Session;

/// The peer opened no stream before
/// [`accept_stream_timeout`](Session::accept_stream_timeout) gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("timed out waiting for the peer to open a stream")]
pub struct AcceptStreamTimeout;

/// One stream of a session: an independent flow of messages, delivered as its
/// [`StreamKind`] says, that either side may open
/// ([`Session::open_stream`]; the peer takes it with
/// [`Session::accept_stream`]). See [`ferry_async::Stream`].
///
/// Cheap to clone (an `Arc`); every clone is the same stream, and any thread
/// may use one. A stream keeps its session open while any handle on it
/// exists. Dropping the last handle finishes this side's sending (unless it
/// was finished or reset already) and discards whatever the peer still sends
/// on it.
///
/// The calls that wait block the calling thread; each has a `_timeout` form
/// that, on timeout, has no effect. For `std::io::Read` and `Write`, wrap
/// the stream in a [`StreamIo`].
#[derive(Debug, Clone)]
pub struct Stream {
    inner: ferry_async::Stream,
}

impl Stream {
    pub(crate) fn from_async(inner: ferry_async::Stream) -> Self {
        Self { inner }
    }

    /// The stream's id within its session, the same on both sides.
    pub fn id(&self) -> StreamId {
        self.inner.id()
    }

    /// How the stream delivers its messages.
    pub fn kind(&self) -> StreamKind {
        self.inner.kind()
    }

    /// The session the stream belongs to.
    pub fn session(&self) -> Session {
        Session::from_async(self.inner.session().clone())
    }

    /// Queues a message on the stream, blocking while the session's send
    /// buffer (shared by all its streams) is full. Fails with
    /// [`StreamSendError::Finished`] after [`finish`](Self::finish) or
    /// [`reset`](Self::reset). See [`ferry_async::Stream::send`].
    pub fn send(&self, message: impl Into<Bytes>) -> Result<(), StreamSendError> {
        block_on(self.inner.send(message))
    }

    /// [`send`](Self::send), blocking at most `timeout`; then fails with
    /// [`StreamSendError::Timeout`] and the message is not queued.
    pub fn send_timeout(
        &self,
        message: impl Into<Bytes>,
        timeout: Duration,
    ) -> Result<(), StreamSendError> {
        block_on_until(self.inner.send(message), deadline_after(timeout))
            .unwrap_or(Err(StreamSendError::Timeout))
    }

    /// Blocks until the next message: `Ok(Some(message))`, or `Ok(None)` once
    /// the peer finished the stream and every message was taken. Fails with
    /// [`StreamRecvError::Reset`] once the peer reset it. See
    /// [`ferry_async::Stream::recv`].
    pub fn recv(&self) -> Result<Option<Bytes>, StreamRecvError> {
        block_on(self.inner.recv())
    }

    /// [`recv`](Self::recv), blocking at most `timeout`; then fails with
    /// [`StreamRecvError::Timeout`] and nothing was taken.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Bytes>, StreamRecvError> {
        block_on_until(self.inner.recv(), deadline_after(timeout))
            .unwrap_or(Err(StreamRecvError::Timeout))
    }

    /// Ends this side's sending, without blocking: the peer reads every
    /// message sent before, then the end. See
    /// [`ferry_async::Stream::finish`].
    pub fn finish(&self) -> Result<(), StreamSendError> {
        self.inner.finish()
    }

    /// Blocks until the peer has acknowledged every message sent on the
    /// stream before the call (each received whole by the peer's endpoint,
    /// not necessarily read yet). Fails with [`AckError::Closed`] if the
    /// session closes first, [`AckError::Reset`] after this side's reset,
    /// [`AckError::Refused`], or [`AckError::Lost`] on an unreliable stream
    /// that gave up a lost message. See
    /// [`ferry_async::Stream::acknowledged`].
    pub fn acknowledged(&self) -> Result<(), AckError> {
        block_on(self.inner.acknowledged())
    }

    /// [`acknowledged`](Self::acknowledged), blocking at most `timeout`;
    /// then fails with [`AckError::Timeout`] (nothing is undone: call again
    /// to keep waiting).
    pub fn acknowledged_timeout(&self, timeout: Duration) -> Result<(), AckError> {
        block_on_until(self.inner.acknowledged(), deadline_after(timeout))
            .unwrap_or(Err(AckError::Timeout))
    }

    /// [`finish`](Self::finish), then blocks until the peer has acknowledged
    /// every message of the stream and the finish itself: it has everything
    /// and knows it is everything. A stream already finished is only waited
    /// for. See [`ferry_async::Stream::finish_acknowledged`].
    pub fn finish_acknowledged(&self) -> Result<(), AckError> {
        block_on(self.inner.finish_acknowledged())
    }

    /// [`finish_acknowledged`](Self::finish_acknowledged), blocking at most
    /// `timeout` for the acknowledgement; then fails with
    /// [`AckError::Timeout`], the stream finished all the same.
    pub fn finish_acknowledged_timeout(&self, timeout: Duration) -> Result<(), AckError> {
        block_on_until(self.inner.finish_acknowledged(), deadline_after(timeout))
            .unwrap_or(Err(AckError::Timeout))
    }

    /// Abandons this side's sending with an application `code`, without
    /// blocking: undelivered messages are dropped at both ends and the peer's
    /// `recv` fails with [`StreamRecvError::Reset`]. See
    /// [`ferry_async::Stream::reset`].
    pub fn reset(&self, code: u64) -> Result<(), StreamSendError> {
        self.inner.reset(code)
    }

    /// How the peer's side of the stream ended, if it did. Never blocks.
    pub fn end(&self) -> Option<StreamEnd> {
        self.inner.end()
    }

    /// Blocks until the peer's side of the stream is over, and says how;
    /// `None` if the session or the endpoint closed first.
    pub fn closed(&self) -> Option<StreamEnd> {
        block_on(self.inner.closed())
    }
}

/// A [`Stream`] as [`std::io::Read`] and [`std::io::Write`] (see
/// [`ferry_async::StreamIo`] for how bytes become messages).
///
/// Each write queues one message of up to
/// [`WRITE_CHUNK`](ferry_async::WRITE_CHUNK) bytes, blocking while the send
/// buffer is full; `flush` does nothing; [`finish`](Self::finish) ends the
/// stream. Reads block for the next bytes, return 0 once the peer finished
/// the stream and every byte was read, and fail with
/// [`io::ErrorKind::ConnectionReset`] once it reset it. For a reader and a
/// writer on two threads, make two adapters from clones of the stream.
#[derive(Debug)]
pub struct StreamIo {
    inner: ferry_async::StreamIo,
}

impl From<Stream> for StreamIo {
    fn from(stream: Stream) -> Self {
        Self::new(stream)
    }
}

impl StreamIo {
    /// The `std::io` adapter of `stream`.
    pub fn new(stream: Stream) -> Self {
        Self {
            inner: ferry_async::StreamIo::new(stream.inner),
        }
    }

    /// The stream.
    pub fn stream(&self) -> Stream {
        Stream::from_async(self.inner.stream().clone())
    }

    /// The stream back; bytes of a message read only in part are dropped.
    pub fn into_inner(self) -> Stream {
        Stream::from_async(self.inner.into_inner())
    }

    /// Finishes the stream (once; again is nothing): the peer reads every
    /// byte written, then the end.
    pub fn finish(&mut self) -> io::Result<()> {
        block_on(poll_fn(|cx| self.inner.poll_shutdown(cx)))
    }
}

impl io::Read for StreamIo {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        block_on(poll_fn(|cx| self.inner.poll_read(cx, buf)))
    }
}

impl io::Write for StreamIo {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        block_on(poll_fn(|cx| self.inner.poll_write(cx, buf)))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
