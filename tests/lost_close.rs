//! A lost Close does not leave the peer waiting: `Endpoint::close` keeps the
//! driver running until the Close was sent as often as the protocol repeats
//! it (protocol.md §6.11), so a process that exits right after still tells
//! its peer. Through a socket that drops the closing side's first Close.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_async::{
    AsyncTimer, AsyncUdpSocket, Endpoint, EndpointConfig, RecvMeta, Runtime, Transmit,
};
use ferry_proto::CloseReason;
use ferry_proto::wire::packet::PacketKind;
use ferry_tokio::EndpointExt;

/// A socket that drops the first Close it is asked to send and counts the
/// Closes it sent.
#[derive(Debug)]
struct DropsFirstClose {
    inner: Arc<dyn AsyncUdpSocket>,
    closes: Arc<AtomicUsize>,
}

impl AsyncUdpSocket for DropsFirstClose {
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.inner.poll_recv(cx, bufs, meta)
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.inner.poll_writable(cx)
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        // A Close is small and goes alone; its kind byte is in clear text.
        if transmit.contents.get(1) == Some(&(PacketKind::Close as u8))
            && self.closes.fetch_add(1, Ordering::SeqCst) == 0
        {
            return Ok(());
        }
        self.inner.try_send(transmit)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_gso_segments(&self) -> usize {
        self.inner.max_gso_segments()
    }

    fn gro_segments(&self) -> usize {
        self.inner.gro_segments()
    }

    fn take_unreachable(&self) -> Option<SocketAddr> {
        self.inner.take_unreachable()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }
}

/// Tokio, with every socket wrapped in [`DropsFirstClose`].
#[derive(Debug)]
struct LossyCloseRuntime {
    inner: Arc<dyn Runtime>,
    closes: Arc<AtomicUsize>,
}

impl Runtime for LossyCloseRuntime {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        self.inner.new_timer(deadline)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        self.inner.spawn(future);
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(DropsFirstClose {
            inner: self.inner.wrap_udp_socket(socket)?,
            closes: self.closes.clone(),
        }))
    }
}

#[tokio::test]
async fn a_peer_learns_of_a_close_whose_first_datagram_was_lost_though_the_closer_exits_at_once() {
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let closes = Arc::new(AtomicUsize::new(0));
    let runtime = LossyCloseRuntime {
        inner: Arc::new(ferry_tokio::TokioRuntime::current().unwrap()),
        closes: closes.clone(),
    };
    let client = Endpoint::bind_with(Arc::new(runtime), local, EndpointConfig::default()).unwrap();
    let server = Endpoint::bind(local, EndpointConfig::server()).unwrap();
    let session = client.connect(server.local_addr()).await.unwrap();
    let incoming = server.accept().await.unwrap();
    session.send(Bytes::from_static(b"done")).await.unwrap();
    assert_eq!(incoming.recv().await.unwrap(), Bytes::from_static(b"done"));
    session.close(7);
    // As a process would before it exits: the endpoint's driver stops.
    client.close().await;
    drop(session);
    drop(client);
    assert!(
        closes.load(Ordering::SeqCst) >= 2,
        "the Close was sent once"
    );
    // Keep-alive would notice the silence only after seconds; the repeated
    // Close arrives an RTO later. (A bound, so that a regression fails
    // instead of hanging: not a measurement.)
    let reason = tokio::time::timeout(Duration::from_secs(3), incoming.closed())
        .await
        .expect("the peer never learned of the close");
    assert_eq!(reason, CloseReason::Remote { code: 7 });
}
