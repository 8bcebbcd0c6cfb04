//! Ferry on plain threads: blocking handles, no async runtime.
//!
//! ```no_run
//! use std::thread;
//! use std::time::Duration;
//!
//! use ferry_blocking::{Endpoint, EndpointConfig};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Endpoint::bind("127.0.0.1:4433".parse()?, EndpointConfig::server())?;
//! let addr = server.local_addr();
//! // An echo server: a thread per session.
//! thread::spawn(move || {
//!     while let Some(session) = server.accept() {
//!         thread::spawn(move || {
//!             while let Ok(message) = session.recv() {
//!                 if session.send(message).is_err() {
//!                     break;
//!                 }
//!             }
//!         });
//!     }
//! });
//!
//! let client = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::default())?;
//! let session = client.connect(addr)?;
//! session.send(&b"hello"[..])?;
//! assert_eq!(&session.recv_timeout(Duration::from_secs(5))?[..], b"hello");
//! session.close(0);
//! client.close();
//! # Ok(()) }
//! ```
//!
//! Every value type — [`Config`], [`EndpointConfig`], [`PreSharedKey`],
//! [`CongestionControl`], ids, close reasons, events, stats, errors — is
//! [`ferry_async::types`], re-exported here whole: a program imports
//! everything from this crate, and never needs `ferry_proto`.
//!
//! `examples/echo.rs` runs an echo server and client
//! (`cargo run -p ferry-blocking --example echo`), `examples/bulk.rs` compares
//! a bulk transfer with TCP (`cargo run --release -p ferry-blocking --example bulk`).
//!
//! # No async runtime
//!
//! This crate pulls in no async runtime (no tokio, async-std, smol or
//! async-io). It reuses the driver, the shared state and the handle futures of
//! [`ferry_async`] through a [`ferry_async::Runtime`] of its own, built on the
//! [`polling`] crate (epoll, kqueue, event ports):
//!
//! - **The driver thread.** [`Endpoint::bind`] starts one thread per endpoint
//!   (one per shard, with [`EndpointConfig::shards`] above one: each with
//!   its own socket and poller, so the shards run on different cores),
//!   named `ferry-driver`, which runs `ferry-async`'s driver future: receive
//!   datagrams, run the protocol's timers, send, and tell waiting handles what
//!   happened. When the driver has nothing to do, the thread sleeps in the
//!   poller until the socket is readable (or writable again, under
//!   backpressure), a handle wakes it (a command was queued: the poller is
//!   notified), or the protocol's next deadline (a retransmission, an ack, a
//!   ping) comes. Having just woken a waiting handle, it first spins briefly
//!   for that handle's next command (a reply is often moments away), which
//!   then costs no system call. The thread ends, closing the socket, once the endpoint is
//!   closed — by [`Endpoint::close`], which waits for it, or by dropping the
//!   last [`Endpoint`] clone.
//! - **The calling threads.** A blocking call ([`Session::recv`],
//!   [`Session::send`] under backpressure, [`Endpoint::accept`],
//!   [`Endpoint::connect`], …) polls the matching `ferry-async` future on the
//!   calling thread and parks the thread until the driver wakes it (after a
//!   brief spin, when the thread's last wait was brief too: an answer within
//!   a round trip then wakes it without a trip through the scheduler). The
//!   `_timeout` forms give up at a deadline and then have no effect.
//!
//! Handles are `Clone + Send + Sync`: share them between threads freely.
//!
//! # Streams
//!
//! Besides its default stream ([`Session::send`], [`Session::recv`]), a
//! session carries independent [`Stream`]s, opened by either side
//! ([`Session::open_stream`]) and taken by the other
//! ([`Session::accept_stream`]). Each is reliable and ordered, reliable and
//! unordered, or unreliable latest-only ([`StreamKind`]); a lost packet
//! delays only its own stream. [`Stream::finish`] ends this side's direction
//! (the reader gets every message, then `Ok(None)`), [`Stream::reset`]
//! abandons it (the reader gets [`StreamRecvError::Reset`]); dropping the last
//! handle finishes. A [`StreamIo`] is a stream as `std::io::Read` and
//! `Write`:
//!
//! ```
//! use std::io::{Read, Write};
//! use std::thread;
//!
//! use ferry_blocking::{Endpoint, EndpointConfig, StreamIo, StreamKind};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::server())?;
//! let client = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::default())?;
//! let session = client.connect(server.local_addr())?;
//! let incoming = server.accept().expect("server open");
//!
//! // Messages on a stream the client opens.
//! let stream = session.open_stream(StreamKind::ReliableOrdered)?;
//! stream.send(&b"one"[..])?;
//! stream.send(&b"two"[..])?;
//! stream.finish()?;
//! let theirs = incoming.accept_stream().expect("session open");
//! assert_eq!(&theirs.recv()?.expect("a message")[..], b"one");
//! assert_eq!(&theirs.recv()?.expect("a message")[..], b"two");
//! assert_eq!(theirs.recv()?, None); // finished, every message read
//!
//! // Bytes on a stream the server opens, echoed by the client.
//! let mut io = StreamIo::new(incoming.open_stream(StreamKind::ReliableOrdered)?);
//! io.write_all(b"hello over a stream")?;
//! io.finish()?;
//! let echo = thread::spawn(move || -> std::io::Result<()> {
//!     let stream = session.accept_stream().expect("session open");
//!     let mut writer = StreamIo::new(stream.clone());
//!     std::io::copy(&mut StreamIo::new(stream), &mut writer)?;
//!     writer.finish()
//! });
//! let mut back = String::new();
//! io.read_to_string(&mut back)?;
//! assert_eq!(back, "hello over a stream");
//! echo.join().expect("echo thread")?;
//! # client.close();
//! # server.close();
//! # Ok(()) }
//! ```

#![warn(missing_docs, unreachable_pub)]

mod block_on;
mod endpoint;
mod events;
mod incoming;
mod runtime;
mod session;
mod stream;

pub use endpoint::{AcceptTimeout, Endpoint};
pub use events::{ClosedEventTimeout, ClosedEvents};
pub use incoming::Incoming;
// Every value type (configuration, keys, ids, close reasons, events, stats,
// errors): one list for every driver.
pub use ferry_async::types::*;
pub use session::Session;
pub use stream::{AcceptStreamTimeout, Stream, StreamIo};

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    fn local() -> std::net::SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done() {
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_handle_by_id_before_accept_is_the_session_accept_returns() {
        let server = Endpoint::bind(local(), EndpointConfig::server()).unwrap();
        let client = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
        let addr = server.local_addr();

        let a = client.connect(addr).unwrap();
        wait_until("the server lists the session", || {
            server.sessions() == [a.id()]
        });
        let early = server
            .session(a.id())
            .expect("open, waiting to be accepted");
        let accepted = server.accept().unwrap();
        assert_eq!(accepted.id(), a.id());
        // One session: dropping one handle leaves it open for the other.
        drop(early);
        a.send(&b"one session"[..]).unwrap();
        assert_eq!(
            &accepted.recv_timeout(Duration::from_secs(5)).unwrap()[..],
            b"one session"
        );

        // The only handle, taken before accept and dropped: the session
        // closes, and accept does not offer it.
        let b = client.connect(addr).unwrap();
        wait_until("the server lists the second session", || {
            server.sessions().contains(&b.id())
        });
        drop(server.session(b.id()).unwrap());
        assert_eq!(
            b.closed(),
            CloseReason::Remote {
                code: ferry_async::DROPPED_CODE,
                reason: Default::default(),
            }
        );
        assert!(server.session(b.id()).is_none());
        let c = client.connect(addr).unwrap();
        let next = server
            .accept_timeout(Duration::from_secs(5))
            .unwrap()
            .unwrap();
        assert_eq!(next.id(), c.id());
        client.close();
        server.close();
    }

    #[test]
    fn dropping_the_endpoint_ends_the_driver_thread() {
        let server = Endpoint::bind(local(), EndpointConfig::server()).unwrap();
        let client = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
        let session = client.connect(server.local_addr()).unwrap();
        let incoming = server.accept().unwrap();
        session.send(vec![1; 10_000]).unwrap();
        assert_eq!(incoming.recv().unwrap().len(), 10_000);

        let runtime = client.runtime();
        assert!(!runtime.thread_finished());
        drop(client);
        // The session handle does not keep the endpoint (or its thread) alive.
        wait_until("the client's driver thread ends", || {
            runtime.thread_finished()
        });
        assert!(matches!(session.closed(), CloseReason::Local { .. }));
        assert!(matches!(incoming.closed(), CloseReason::Remote { .. }));

        let runtime = server.runtime();
        server.close();
        assert!(runtime.thread_finished(), "close waits for the thread");
    }

    #[test]
    fn a_sharded_endpoint_has_a_driver_thread_per_shard_and_close_ends_them_all() {
        let server = Endpoint::bind(local(), EndpointConfig::server().with_shards(2)).unwrap();
        let shards = server.shard_count();
        let runtime = server.runtime();
        assert_eq!(runtime.driver_threads(), shards);
        let client = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
        let sessions: Vec<_> = (0..8)
            .map(|_| client.connect(server.local_addr()).unwrap())
            .collect();
        let incoming: Vec<_> = (0..8).map(|_| server.accept().unwrap()).collect();
        for (n, s) in sessions.iter().enumerate() {
            s.send(vec![n as u8; 3_000]).unwrap();
        }
        // Accepted from either shard, so not in connect order.
        let mut seen: Vec<u8> = incoming.iter().map(|i| i.recv().unwrap()[0]).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..8).collect::<Vec<u8>>());
        assert!(!runtime.thread_finished());
        server.close();
        assert!(runtime.thread_finished(), "close waits for every thread");
        for s in &sessions {
            assert!(matches!(s.closed(), CloseReason::Remote { .. }));
        }
        client.close();
    }
}
