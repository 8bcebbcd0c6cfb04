//! Socket and timer for runtimes built on `async-io` (smol, async-std).

use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use async_io::{Async, Timer};
use quinn_udp::{UdpSockRef, UdpSocketState};

use crate::runtime::{AsyncTimer, AsyncUdpSocket, RecvMeta, Transmit};
use crate::socket::{take_unreachable, udp_state};

/// A UDP socket registered with async-io's reactor.
pub struct AsyncIoSocket {
    io: Async<UdpSocket>,
    state: UdpSocketState,
}

impl fmt::Debug for AsyncIoSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncIoSocket")
            .field("io", &self.io)
            .finish_non_exhaustive()
    }
}

impl AsyncIoSocket {
    /// Registers `socket` (already bound) with the reactor.
    pub fn wrap(socket: UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let state = udp_state(&socket)?;
        Ok(Arc::new(Self {
            io: Async::new(socket)?,
            state,
        }))
    }
}

impl AsyncUdpSocket for AsyncIoSocket {
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        loop {
            ready!(self.io.poll_readable(cx))?;
            match self
                .state
                .recv(UdpSockRef::from(self.io.get_ref()), bufs, meta)
            {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return Poll::Ready(result),
            }
        }
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.io.poll_writable(cx)
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.state
            .try_send(UdpSockRef::from(self.io.get_ref()), transmit)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.get_ref().local_addr()
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
        take_unreachable(&self.state, self.io.get_ref())
    }
}

/// async-io's timer as an [`AsyncTimer`].
#[derive(Debug)]
pub struct AsyncIoTimer(Timer);

impl AsyncIoTimer {
    /// A timer firing at `deadline`.
    pub fn at(deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(Self(Timer::at(deadline)))
    }
}

impl AsyncTimer for AsyncIoTimer {
    fn reset(mut self: Pin<&mut Self>, deadline: Instant) {
        self.0.set_at(deadline);
    }

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(&mut self.0).poll(cx).map(|_| ())
    }
}
