//! What a runtime must provide: a UDP socket with readiness, a timer, a way to
//! spawn the driver.

use std::fmt::Debug;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

pub use quinn_udp::{RecvMeta, Transmit};

/// An async runtime, as the driver sees it. `ferry-tokio`, `ferry-smol` and
/// `ferry-async-std` implement it; implement it yourself to run Ferry elsewhere.
pub trait Runtime: Send + Sync + Debug + 'static {
    /// A timer that first fires at `deadline`.
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>>;

    /// Runs `future` to completion in the background.
    ///
    /// An endpoint spawns one driver per shard. For each shard in turn, it
    /// wraps the shard's socket ([`wrap_udp_socket`](Self::wrap_udp_socket)),
    /// makes the driver's timer ([`new_timer`](Self::new_timer)), then
    /// spawns the driver, so a runtime may tie the sockets and timers made
    /// since its last spawn to the next future (as `ferry-blocking` does,
    /// with a thread and a poller per driver). Drivers of one endpoint never
    /// block each other: a runtime that runs tasks in parallel runs the
    /// shards on different cores; one that does not runs them in turn.
    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>);

    /// Registers a bound, non-blocking socket with the runtime's reactor.
    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>>;
}

/// A resettable timer.
pub trait AsyncTimer: Send + Debug {
    /// Moves the deadline.
    fn reset(self: Pin<&mut Self>, deadline: Instant);
    /// Ready once the deadline has passed.
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()>;
}

/// A UDP socket registered with a runtime. Sending and receiving go through
/// [`quinn_udp`], which batches syscalls (sendmmsg/recvmmsg, GSO/GRO where the
/// kernel has them).
pub trait AsyncUdpSocket: Send + Sync + Debug {
    /// Receives a batch of datagrams into `bufs`, describing each in `meta`;
    /// returns how many buffers were filled.
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>>;

    /// Ready when a send would not block.
    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>>;

    /// Sends now, or fails with [`io::ErrorKind::WouldBlock`].
    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()>;

    /// The address the socket is bound to.
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// Most datagrams one send may carry through segmentation offload (1 without GSO).
    fn max_gso_segments(&self) -> usize;

    /// Most datagrams one receive buffer may hold through receive offload (1 without GRO).
    fn gro_segments(&self) -> usize;

    /// Whether the network may fragment what this socket sends (it could not
    /// ask for "don't fragment"). Path MTU discovery is then off: a probe
    /// would arrive in fragments and seem to fit. By default `true`, the safe
    /// answer for a socket that does not know.
    fn may_fragment(&self) -> bool {
        true
    }

    /// The address that reported an ICMP unreachable error, if one is pending
    /// (the host that refused, or a router; the port is not known).
    fn take_unreachable(&self) -> Option<SocketAddr>;
}
