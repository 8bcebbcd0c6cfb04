//! Ferry on tokio.
//!
//! ```no_run
//! use ferry_tokio::{Endpoint, EndpointConfig, EndpointExt};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Endpoint::bind("127.0.0.1:4433".parse()?, EndpointConfig::server())?;
//! let client = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::default())?;
//! let session = client.connect(server.local_addr()).await?;
//! session.send(&b"hello"[..]).await?;
//! let incoming = server.accept().await.expect("server open");
//! assert_eq!(&incoming.recv().await?[..], b"hello");
//! # Ok(()) }
//! ```
//!
//! Every value type — [`Config`], [`EndpointConfig`], [`PreSharedKey`],
//! [`CongestionControl`], ids, close reasons, events, stats, errors — is
//! [`ferry_async::types`], re-exported here whole: a program imports
//! everything from this crate, and never needs `ferry_proto`.
//!
//! Streams ([`Session::open_stream`], [`Session::accept_stream`]) are
//! described in [`ferry_async`]; [`StreamIo`] makes one a
//! [`tokio::io::AsyncRead`] and [`tokio::io::AsyncWrite`], for
//! `tokio::io::copy` and the like.
//!
//! `examples/echo.rs` runs an echo server and client:
//! `cargo run -p ferry-tokio --example echo`.

#![warn(missing_docs, unreachable_pub)]

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use ferry_async::socket::{take_unreachable, udp_state};
use ferry_async::{AsyncTimer, AsyncUdpSocket, RecvMeta, Runtime, Transmit};
use quinn_udp::{UdpSockRef, UdpSocketState};
use tokio::io::Interest;

// Every value type (configuration, keys, ids, close reasons, events, stats,
// errors): one list for every driver.
pub use ferry_async::types::*;
// The async handles, shared by every async adapter.
pub use ferry_async::{ClosedEvents, Incoming, Session, Stream};

/// An endpoint driven by tokio: one UDP socket, many sessions.
///
/// See [`ferry_async::Endpoint`] for every method; this type adds
/// [`bind`](Endpoint::bind).
pub type Endpoint = ferry_async::Endpoint;

/// Binding on tokio.
pub trait EndpointExt: Sized {
    /// Binds `addr` and starts the driver on the current tokio runtime.
    ///
    /// Must be called from within a tokio runtime.
    fn bind(addr: SocketAddr, config: impl Into<EndpointConfig>) -> Result<Self, BindError>;
}

impl EndpointExt for Endpoint {
    fn bind(addr: SocketAddr, config: impl Into<EndpointConfig>) -> Result<Self, BindError> {
        let runtime = TokioRuntime::current().map_err(|e| BindError::Io { addr, source: e })?;
        ferry_async::Endpoint::bind_with(Arc::new(runtime), addr, config)
    }
}

/// The tokio [`Runtime`].
#[derive(Debug, Clone)]
pub struct TokioRuntime(tokio::runtime::Handle);

impl TokioRuntime {
    /// The runtime of the calling task; an error outside a tokio runtime.
    pub fn current() -> io::Result<Self> {
        tokio::runtime::Handle::try_current()
            .map(Self)
            .map_err(|e| io::Error::other(format!("ferry-tokio needs a tokio runtime: {e}")))
    }
}

impl Runtime for TokioRuntime {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        let _guard = self.0.enter();
        Box::pin(Sleep(Box::pin(tokio::time::sleep_until(deadline.into()))))
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        self.0.spawn(future);
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let _guard = self.0.enter();
        let state = udp_state(&socket)?;
        Ok(Arc::new(Socket {
            io: tokio::net::UdpSocket::from_std(socket)?,
            state,
        }))
    }
}

#[derive(Debug)]
struct Sleep(Pin<Box<tokio::time::Sleep>>);

impl AsyncTimer for Sleep {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.0.as_mut().reset(deadline.into());
    }

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.as_mut().poll(cx)
    }
}

struct Socket {
    io: tokio::net::UdpSocket,
    state: UdpSocketState,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("io", &self.io)
            .finish_non_exhaustive()
    }
}

impl AsyncUdpSocket for Socket {
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.io.poll_recv_ready(cx))?;
            match self.io.try_io(Interest::READABLE, || {
                self.state.recv(UdpSockRef::from(&self.io), bufs, meta)
            }) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_send_ready(cx)
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.io.try_io(Interest::WRITABLE, || {
            self.state.try_send(UdpSockRef::from(&self.io), transmit)
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }

    fn take_unreachable(&self) -> Option<SocketAddr> {
        take_unreachable(&self.state, &self.io)
    }
}

/// A [`Stream`] as a tokio byte stream: [`tokio::io::AsyncRead`] and
/// [`tokio::io::AsyncWrite`] over [`ferry_async::StreamIo`], which says how
/// bytes become messages.
///
/// Writes queue messages of up to [`WRITE_CHUNK`] bytes (waiting while the
/// send buffer is full), `flush` does nothing, `shutdown` finishes the
/// stream. Reads return the bytes of the messages in order; a read returns
/// 0 (end of file) once the peer finished the stream and fails with
/// [`std::io::ErrorKind::ConnectionReset`] once it reset it. For a reader
/// and a writer in two tasks, make two adapters from clones of the stream,
/// or use [`tokio::io::split`].
#[derive(Debug)]
pub struct StreamIo(ferry_async::StreamIo);

impl StreamIo {
    /// The byte-stream adapter of `stream`.
    pub fn new(stream: Stream) -> Self {
        Self(ferry_async::StreamIo::new(stream))
    }

    /// The stream.
    pub fn stream(&self) -> &Stream {
        self.0.stream()
    }

    /// The stream back; bytes of a message read only in part are dropped.
    pub fn into_inner(self) -> Stream {
        self.0.into_inner()
    }
}

impl From<Stream> for StreamIo {
    fn from(stream: Stream) -> Self {
        Self::new(stream)
    }
}

impl tokio::io::AsyncRead for StreamIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let bytes = ready!(self.get_mut().0.poll_read_bytes(cx, buf.remaining()))?;
        buf.put_slice(&bytes);
        Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for StreamIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().0.poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.get_mut().0.poll_shutdown(cx)
    }
}
