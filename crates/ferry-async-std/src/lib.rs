//! Ferry on async-std.
//!
//! **async-std is discontinued upstream.** This adapter is kept for users who
//! still run it. `ferry-smol` serves the same ecosystem (smol and async-std
//! share the async-io reactor, and this crate uses the very same socket and
//! timer) and is the recommended choice for new code.
//!
//! ```no_run
//! use ferry_async_std::{Endpoint, EndpointConfig, EndpointExt};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! async_std::task::block_on(async {
//!     let server = Endpoint::bind("127.0.0.1:4433".parse()?, EndpointConfig::server())?;
//!     let client = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::default())?;
//!     let session = client.connect(server.local_addr()).await?;
//!     session.send(&b"hello"[..]).await?;
//!     let incoming = server.accept().await.expect("server open");
//!     assert_eq!(&incoming.recv().await?[..], b"hello");
//!     Ok(())
//! })
//! # }
//! ```
//!
//! Each endpoint's driver is spawned with [`async_std::task::spawn`] on
//! async-std's global thread pool, so it keeps running while the caller's
//! `block_on` is busy with something else, and
//! [`bind`](EndpointExt::bind) works from any thread.
//!
//! Every value type — [`Config`], [`EndpointConfig`], [`PreSharedKey`],
//! [`CongestionControl`], ids, close reasons, events, stats, errors — is
//! [`ferry_async::types`], re-exported here whole: a program imports
//! everything from this crate, and never needs `ferry_proto`.
//!
//! Streams ([`Session::open_stream`], [`Session::accept_stream`]) are
//! described in [`ferry_async`]; a [`StreamIo`] is one as
//! `futures_io::AsyncRead` and `AsyncWrite`, for `futures_lite::io::copy`
//! and the like.
//!
//! `examples/echo.rs` runs an echo server and client:
//! `cargo run -p ferry-async-std --example echo`.

#![warn(missing_docs, unreachable_pub)]

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use ferry_async::async_io::{AsyncIoSocket, AsyncIoTimer};
use ferry_async::{AsyncTimer, AsyncUdpSocket, Runtime};

// Every value type (configuration, keys, ids, close reasons, events, stats,
// errors): one list for every driver.
pub use ferry_async::types::*;
// The async handles, shared by every async adapter (with `StreamIo`, the
// byte-stream view of a `Stream`).
pub use ferry_async::{ClosedEvents, Incoming, Session, Stream, StreamIo};

/// An endpoint driven by async-std: one UDP socket, many sessions.
///
/// See [`ferry_async::Endpoint`] for every method; this type adds
/// [`bind`](Endpoint::bind).
pub type Endpoint = ferry_async::Endpoint;

/// Binding on async-std.
pub trait EndpointExt: Sized {
    /// Binds `addr` and starts the driver on async-std's global executor.
    ///
    /// Needs no runtime context: call it from any thread.
    fn bind(addr: SocketAddr, config: impl Into<EndpointConfig>) -> Result<Self, BindError>;
}

impl EndpointExt for Endpoint {
    fn bind(addr: SocketAddr, config: impl Into<EndpointConfig>) -> Result<Self, BindError> {
        ferry_async::Endpoint::bind_with(Arc::new(AsyncStdRuntime), addr, config)
    }
}

/// The async-std [`Runtime`]: async-io's reactor (which async-std's runtime
/// drives) for the socket and timer, async-std's executor for the driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct AsyncStdRuntime;

impl Runtime for AsyncStdRuntime {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        AsyncIoTimer::at(deadline)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        // Dropping the handle detaches the task.
        drop(async_std::task::spawn(future));
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        AsyncIoSocket::wrap(socket)
    }
}
