//! Path MTU discovery only where the socket can forbid fragmentation: on a
//! socket that says the network may fragment what it sends
//! (`AsyncUdpSocket::may_fragment`), a probe could arrive in fragments and
//! seem to fit, so the session keeps its starting size. The same transfer on
//! a socket that sets "don't fragment" (Linux loopback) grows past it.

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use ferry_async::{AsyncUdpSocket, Endpoint, EndpointConfig};
use ferry_tests::tapped::{Tap, TappedRuntime};
use ferry_tokio::EndpointExt;

/// Says the network may fragment what the socket sends.
#[derive(Debug)]
struct Fragmenting;

impl Tap for Fragmenting {
    fn may_fragment(&self, _: &dyn AsyncUdpSocket) -> bool {
        true
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
    let runtime = TappedRuntime::tokio(Arc::new(Fragmenting));
    let client = Endpoint::bind_with(runtime, local, EndpointConfig::default()).unwrap();
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
