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

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use ferry_async::{AsyncUdpSocket, Endpoint, EndpointConfig, Transmit};
use ferry_tests::tapped::{Tap, TappedRuntime};
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

/// Claims GSO and refuses every batch as too large; logs every send.
#[derive(Debug, Default)]
struct Refusing {
    log: Mutex<Vec<Seen>>,
}

impl Tap for Refusing {
    fn try_send(&self, socket: &dyn AsyncUdpSocket, transmit: &Transmit<'_>) -> io::Result<()> {
        if let Some(segment_size) = transmit.segment_size {
            self.log.lock().unwrap().push(Seen::Refused {
                segment_size,
                bytes: transmit.contents.to_vec(),
            });
            return Err(io::Error::from_raw_os_error(EMSGSIZE));
        }
        socket.try_send(transmit)?;
        let sent = Seen::Sent(transmit.contents.to_vec());
        self.log.lock().unwrap().push(sent);
        Ok(())
    }

    fn max_gso_segments(&self, _: &dyn AsyncUdpSocket) -> usize {
        8
    }
}

#[tokio::test]
async fn a_batch_refused_as_too_large_goes_again_one_datagram_at_a_time() {
    let tap = Arc::new(Refusing::default());
    let local: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let client = Endpoint::bind_with(
        TappedRuntime::tokio(tap.clone()),
        local,
        EndpointConfig::default(),
    )
    .unwrap();
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

    let log = tap.log.lock().unwrap().clone();
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
