//! Ferry on smol.
//!
//! ```no_run
//! use ferry_smol::{Endpoint, EndpointConfig, EndpointExt};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! smol::block_on(async {
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
//! Each endpoint's driver is spawned on smol's global executor
//! ([`smol::spawn`]), which runs its tasks on its own threads (one unless the
//! `SMOL_THREADS` environment variable asks for more). The driver therefore
//! keeps sending, receiving and acknowledging even while the caller's
//! `block_on` is busy with something else, and [`bind`](EndpointExt::bind)
//! works from any thread, inside a `block_on` or not.
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
//! `cargo run -p ferry-smol --example echo`.

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

/// An endpoint driven by smol: one UDP socket, many sessions.
///
/// See [`ferry_async::Endpoint`] for every method; this type adds
/// [`bind`](Endpoint::bind).
pub type Endpoint = ferry_async::Endpoint;

/// Binding on smol.
pub trait EndpointExt: Sized {
    /// Binds `addr` and starts the driver on smol's global executor.
    ///
    /// Needs no runtime context: call it from any thread.
    fn bind(addr: SocketAddr, config: impl Into<EndpointConfig>) -> Result<Self, BindError>;
}

impl EndpointExt for Endpoint {
    fn bind(addr: SocketAddr, config: impl Into<EndpointConfig>) -> Result<Self, BindError> {
        ferry_async::Endpoint::bind_with(Arc::new(SmolRuntime), addr, config)
    }
}

/// The smol [`Runtime`]: async-io's reactor for the socket and timer, smol's
/// global executor for the driver.
#[derive(Debug, Clone, Copy, Default)]
pub struct SmolRuntime;

impl Runtime for SmolRuntime {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        AsyncIoTimer::at(deadline)
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        smol::spawn(future).detach();
    }

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        AsyncIoSocket::wrap(socket)
    }
}
