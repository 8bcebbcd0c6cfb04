//! Sockets a test can tap: a runtime whose every socket passes its sends,
//! and what it says of itself, through a [`Tap`] the test writes, and leaves
//! the rest to the runtime's own socket. `fragmenting_socket.rs`,
//! `oversize_batch.rs`, `lost_close.rs` and `driver_lock.rs` use it.

use std::fmt::Debug;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use ferry_async::{AsyncTimer, AsyncUdpSocket, RecvMeta, Runtime, Transmit};

/// What a test changes of a socket. Each method is handed the real socket;
/// the defaults pass everything through.
pub trait Tap: Debug + Send + Sync + 'static {
    /// Receives a batch, as `AsyncUdpSocket::poll_recv`.
    fn poll_recv(
        &self,
        socket: &dyn AsyncUdpSocket,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        socket.poll_recv(cx, bufs, meta)
    }

    /// Sends `transmit`, or not.
    fn try_send(&self, socket: &dyn AsyncUdpSocket, transmit: &Transmit<'_>) -> io::Result<()> {
        socket.try_send(transmit)
    }

    /// How many datagrams one send may carry (segmentation offload).
    fn max_gso_segments(&self, socket: &dyn AsyncUdpSocket) -> usize {
        socket.max_gso_segments()
    }

    /// Whether the network may fragment what the socket sends.
    fn may_fragment(&self, socket: &dyn AsyncUdpSocket) -> bool {
        socket.may_fragment()
    }
}

/// A runtime's socket, tapped.
#[derive(Debug)]
struct TappedSocket<T> {
    inner: Arc<dyn AsyncUdpSocket>,
    tap: Arc<T>,
}

impl<T: Tap> AsyncUdpSocket for TappedSocket<T> {
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.tap.poll_recv(&*self.inner, cx, bufs, meta)
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_writable(cx)
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.tap.try_send(&*self.inner, transmit)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_gso_segments(&self) -> usize {
        self.tap.max_gso_segments(&*self.inner)
    }

    fn gro_segments(&self) -> usize {
        self.inner.gro_segments()
    }

    fn take_unreachable(&self) -> Option<SocketAddr> {
        self.inner.take_unreachable()
    }

    fn may_fragment(&self) -> bool {
        self.tap.may_fragment(&*self.inner)
    }
}

/// `inner`, with every socket it makes tapped by `tap`.
#[derive(Debug)]
pub struct TappedRuntime<T> {
    inner: Arc<dyn Runtime>,
    tap: Arc<T>,
}

impl<T: Tap> TappedRuntime<T> {
    /// `inner`, tapped by `tap`.
    pub fn new(inner: Arc<dyn Runtime>, tap: Arc<T>) -> Arc<Self> {
        Arc::new(Self { inner, tap })
    }

    /// Tokio's runtime (the current one), tapped by `tap`.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime.
    pub fn tokio(tap: Arc<T>) -> Arc<Self> {
        Self::new(
            Arc::new(ferry_tokio::TokioRuntime::current().expect("inside tokio")),
            tap,
        )
    }
}

impl<T: Tap> Runtime for TappedRuntime<T> {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        self.inner.new_timer(deadline)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        self.inner.spawn(future);
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(TappedSocket {
            inner: self.inner.wrap_udp_socket(socket)?,
            tap: self.tap.clone(),
        }))
    }
}
