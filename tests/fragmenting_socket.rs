//! Path MTU discovery only where the socket can forbid fragmentation: on a
//! socket that says the network may fragment what it sends
//! (`AsyncUdpSocket::may_fragment`), a probe could arrive in fragments and
//! seem to fit, so the session keeps its starting size. The same transfer on
//! a socket that sets "don't fragment" (Linux loopback) grows past it.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use ferry_async::{
    AsyncTimer, AsyncUdpSocket, Endpoint, EndpointConfig, RecvMeta, Runtime, Transmit,
};
use ferry_tokio::EndpointExt;

/// A socket that says the network may fragment what it sends.
#[derive(Debug)]
struct Fragmenting(Arc<dyn AsyncUdpSocket>);

impl AsyncUdpSocket for Fragmenting {
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.0.poll_recv(cx, bufs, meta)
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.0.poll_writable(cx)
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.0.try_send(transmit)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn max_gso_segments(&self) -> usize {
        self.0.max_gso_segments()
    }

    fn gro_segments(&self) -> usize {
        self.0.gro_segments()
    }

    fn take_unreachable(&self) -> Option<SocketAddr> {
        self.0.take_unreachable()
    }

    fn may_fragment(&self) -> bool {
        true
    }
}

/// Tokio, with every socket wrapped in [`Fragmenting`].
#[derive(Debug)]
struct FragmentingRuntime(Arc<dyn Runtime>);

impl Runtime for FragmentingRuntime {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        self.0.new_timer(deadline)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        self.0.spawn(future);
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(Fragmenting(self.0.wrap_udp_socket(socket)?)))
    }
}

/// Sends 2 MB over loopback from a client bound by `bind`; the client
/// session's MTU and probes sent once every byte arrived.
async fn transfer(client: Endpoint) -> (usize, u64) {
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let server = Endpoint::bind(local, EndpointConfig::server()).unwrap();
    let session = client.connect(server.local_addr()).await.unwrap();
    let incoming = server.accept().await.unwrap();
    for _ in 0..20 {
        session.send(Bytes::from(vec![7u8; 100_000])).await.unwrap();
    }
    let mut received = 0;
    while received < 2_000_000 {
        received += incoming.recv().await.unwrap().len();
    }
    let stats = session.stats();
    (stats.mtu, stats.mtu_probes_sent)
}

#[tokio::test]
async fn a_socket_that_may_fragment_keeps_the_starting_size() {
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let runtime = FragmentingRuntime(Arc::new(ferry_tokio::TokioRuntime::current().unwrap()));
    let client = Endpoint::bind_with(Arc::new(runtime), local, EndpointConfig::default()).unwrap();
    let start = ferry_proto::Config::default().mtu;
    assert_eq!(transfer(client).await, (start, 0));
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_socket_that_forbids_fragmentation_discovers_a_larger_size() {
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let client = Endpoint::bind(local, EndpointConfig::default()).unwrap();
    let (mtu, probes) = transfer(client).await;
    assert!(mtu > ferry_proto::Config::default().mtu, "mtu {mtu}");
    assert!(probes > 0);
}
