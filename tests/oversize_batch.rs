//! A GSO batch the socket refuses as too large (`EMSGSIZE`, as Linux answers
//! a send whose segments exceed the path's MTU after it shrank) is sent
//! again one datagram at a time: the datagrams that fit still leave, instead
//! of the whole batch being lost.
//!
//! The client's socket claims segmentation offload and refuses every batch
//! of two datagrams or more with `EMSGSIZE`, while it passes single
//! datagrams to the real socket. Every refused batch must be followed by
//! each of its datagrams, alone, in order, byte for byte; and the transfer
//! must complete.

#![cfg(target_os = "linux")]

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use ferry_async::{
    AsyncTimer, AsyncUdpSocket, Endpoint, EndpointConfig, RecvMeta, Runtime, Transmit,
};
use ferry_tokio::EndpointExt;

/// Linux's `EMSGSIZE`.
const EMSGSIZE: i32 = 90;

/// A send the client's socket saw.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Seen {
    /// A batch of datagrams of this size, refused as too large.
    Refused { segment_size: usize, bytes: Vec<u8> },
    /// One datagram, passed on to the real socket and accepted.
    Sent(Vec<u8>),
}

/// A socket that claims GSO and refuses every batch as too large.
#[derive(Debug)]
struct Refusing {
    inner: Arc<dyn AsyncUdpSocket>,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl AsyncUdpSocket for Refusing {
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
        if let Some(segment_size) = transmit.segment_size {
            self.log.lock().unwrap().push(Seen::Refused {
                segment_size,
                bytes: transmit.contents.to_vec(),
            });
            return Err(io::Error::from_raw_os_error(EMSGSIZE));
        }
        self.inner.try_send(transmit)?;
        let sent = Seen::Sent(transmit.contents.to_vec());
        self.log.lock().unwrap().push(sent);
        Ok(())
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    fn max_gso_segments(&self) -> usize {
        8
    }

    fn gro_segments(&self) -> usize {
        self.inner.gro_segments()
    }

    fn may_fragment(&self) -> bool {
        self.inner.may_fragment()
    }

    fn take_unreachable(&self) -> Option<SocketAddr> {
        self.inner.take_unreachable()
    }
}

/// Tokio, with the socket wrapped in [`Refusing`].
#[derive(Debug)]
struct RefusingRuntime {
    inner: Arc<dyn Runtime>,
    log: Arc<Mutex<Vec<Seen>>>,
}

impl Runtime for RefusingRuntime {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        self.inner.new_timer(deadline)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        self.inner.spawn(future);
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(Refusing {
            inner: self.inner.wrap_udp_socket(socket)?,
            log: self.log.clone(),
        }))
    }
}

#[tokio::test]
async fn a_batch_refused_as_too_large_goes_again_one_datagram_at_a_time() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let runtime = RefusingRuntime {
        inner: Arc::new(ferry_tokio::TokioRuntime::current().unwrap()),
        log: log.clone(),
    };
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let client = Endpoint::bind_with(Arc::new(runtime), local, EndpointConfig::default()).unwrap();
    let server = Endpoint::bind(local, EndpointConfig::server()).unwrap();
    let session = client.connect(server.local_addr()).await.unwrap();
    let incoming = server.accept().await.unwrap();
    let messages: Vec<Bytes> = (0..40u8).map(|i| Bytes::from(vec![i; 20_000])).collect();
    for m in &messages {
        session.send(m.clone()).await.unwrap();
    }
    for m in &messages {
        assert_eq!(&incoming.recv().await.unwrap(), m);
    }

    let log = log.lock().unwrap().clone();
    let mut refused = 0;
    let mut sends = log.iter();
    while let Some(send) = sends.next() {
        let Seen::Refused {
            segment_size,
            bytes,
        } = send
        else {
            continue;
        };
        refused += 1;
        for (i, datagram) in bytes.chunks(*segment_size).enumerate() {
            let next = sends.next();
            assert!(
                matches!(next, Some(Seen::Sent(d)) if d[..] == *datagram),
                "datagram {i} of a refused batch of {} bytes in {segment_size}-byte \
                 datagrams was not sent next, alone: {:?}",
                bytes.len(),
                next.map(|s| match s {
                    Seen::Refused { bytes, .. } => format!("a refused batch of {}", bytes.len()),
                    Seen::Sent(d) => format!("a datagram of {}", d.len()),
                })
            );
        }
    }
    assert!(refused > 0, "no batch was built: {} sends", log.len());
}
