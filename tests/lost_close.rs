//! A lost Close does not leave the peer waiting: `Endpoint::close` keeps the
//! driver running until the Close was sent as often as the protocol repeats
//! it (protocol.md §6.11), so a process that exits right after still tells
//! its peer. Through a socket that drops the closing side's first Close.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use ferry_async::{AsyncUdpSocket, Endpoint, EndpointConfig, Transmit};
use ferry_proto::CloseReason;
use ferry_proto::wire::packet::PacketKind;
use ferry_tests::tapped::{Tap, TappedRuntime};
use ferry_tokio::EndpointExt;

/// Drops the first Close it is asked to send and counts the Closes.
#[derive(Debug, Default)]
struct DropsFirstClose {
    closes: AtomicUsize,
}

impl Tap for DropsFirstClose {
    fn try_send(&self, socket: &dyn AsyncUdpSocket, transmit: &Transmit<'_>) -> io::Result<()> {
        // A Close is small and goes alone; its kind byte is in clear text.
        if transmit.contents.get(1) == Some(&(PacketKind::Close as u8))
            && self.closes.fetch_add(1, Ordering::SeqCst) == 0
        {
            return Ok(());
        }
        socket.try_send(transmit)
    }
}

#[tokio::test]
async fn a_peer_learns_of_a_close_whose_first_datagram_was_lost_though_the_closer_exits_at_once() {
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let tap = Arc::new(DropsFirstClose::default());
    let runtime = TappedRuntime::tokio(tap.clone());
    let client = Endpoint::bind_with(runtime, local, EndpointConfig::default()).unwrap();
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
        tap.closes.load(Ordering::SeqCst) >= 2,
        "the Close was sent once"
    );
    // Keep-alive would notice the silence only after seconds; the repeated
    // Close arrives an RTO later. (A bound, so that a regression fails
    // instead of hanging: not a measurement.)
    let reason = tokio::time::timeout(Duration::from_secs(3), incoming.closed())
        .await
        .expect("the peer never learned of the close");
    assert_eq!(
        reason,
        CloseReason::Remote {
            code: 7,
            reason: Default::default()
        }
    );
}
