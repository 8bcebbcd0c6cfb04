//! The runtime-agnostic async driver of Ferry.
//!
//! An [`Endpoint`] owns one UDP socket and one sans-IO [`ferry_proto::Endpoint`]
//! (or one of each per shard, see below), and a background task — the
//! driver — runs the loop: receive a batch of
//! datagrams, hand each to the protocol, send what it has to send (batched
//! through [`quinn_udp`]: sendmmsg/recvmmsg, GSO/GRO where the kernel has them),
//! wake the handles waiting for events, then sleep until the next datagram,
//! command or deadline. [`Session`] handles send and receive messages,
//! streams and datagrams from any task.
//!
//! This crate knows no runtime: it is generic over the small [`Runtime`] trait
//! (a socket with readiness, a timer, spawning). Use it through an adapter:
//! `ferry-tokio`, `ferry-smol` or `ferry-async-std`, which implement the trait
//! and offer `Endpoint::bind(addr, config)`. The `async-io` feature provides the
//! socket and timer shared by the smol and async-std adapters.
//!
//! # Shards: one address, every core
//!
//! By default an endpoint is one socket, one protocol endpoint behind one
//! lock and one driver task: its protocol work runs on one core at a time.
//! [`EndpointConfig::shards`] spreads it: each shard has its own socket on
//! the same address (`SO_REUSEPORT`, Linux), its own protocol endpoint, lock
//! and driver task, so a multi-threaded runtime runs the shards on different
//! cores. The API stays the same: [`Endpoint::connect`] places each new
//! session on a shard in turn, [`Endpoint::accept`] takes sessions from
//! every shard, and the manager's methods cover them all. Every session id
//! names its shard; a driver that receives a datagram of another shard's
//! session (a reply to a session this side started, or a peer whose address
//! changed) hands it over. [`Endpoint::shard_stats`] counts the hand-overs.
//!
//! ```no_run
//! use std::sync::Arc;
//! use ferry_async::{Endpoint, EndpointConfig, Runtime};
//!
//! fn bind(runtime: Arc<dyn Runtime>) -> Result<Endpoint, ferry_async::BindError> {
//!     // One shard per core (0), on a runtime that runs tasks in parallel.
//!     let config = EndpointConfig::server().with_shards(0);
//!     Endpoint::bind_with(runtime, "0.0.0.0:4433".parse().unwrap(), config)
//! }
//! ```
//!
//! The [`types`] module gathers every value type a user of any driver needs
//! (configuration and keys, identifiers, close reasons and events, counters,
//! errors); every adapter, `ferry-blocking` included, re-exports it whole at
//! its root.
//!
//! # Streams
//!
//! A session carries any number of independent [`Stream`]s besides its
//! default one: either side opens one with [`Session::open_stream`], of a
//! [`StreamKind`] (reliable ordered, reliable unordered, or unreliable
//! latest-only), and the other takes it with [`Session::accept_stream`]. A
//! lost packet delays only the stream whose data it carried. Each side ends
//! its direction with [`Stream::finish`] (the reader gets every message,
//! then `Ok(None)`) or [`Stream::reset`] (the reader gets
//! [`StreamRecvError::Reset`] with the code); dropping the last handle
//! finishes. [`StreamIo`] turns a stream into bytes: `AsyncRead` and
//! `AsyncWrite` through the runtime adapters, `std::io` in `ferry-blocking`.
//!
//! ```no_run
//! use ferry_async::{Session, StreamKind};
//!
//! async fn upload(session: Session, chunks: Vec<Vec<u8>>) -> Result<(), Box<dyn std::error::Error>> {
//!     let stream = session.open_stream(StreamKind::ReliableOrdered)?;
//!     for chunk in chunks {
//!         stream.send(chunk).await?; // waits while the send buffer is full
//!     }
//!     stream.finish()?; // the peer reads every chunk, then the end
//!     Ok(())
//! }
//!
//! async fn serve(session: Session) -> Result<(), Box<dyn std::error::Error>> {
//!     // Each stream the peer opens, until the session closes.
//!     while let Some(stream) = session.accept_stream().await {
//!         let mut total = 0;
//!         while let Some(chunk) = stream.recv().await? {
//!             total += chunk.len();
//!         }
//!         // Ok(None): the peer finished and every chunk was read.
//!         stream.send(total.to_string()).await?;
//!         // Dropping the last handle finishes this side too.
//!     }
//!     Ok(())
//! }
//! ```
//!
//! # Managing many sessions
//!
//! The endpoint is also the session manager: [`Endpoint::sessions`],
//! [`Endpoint::session_count`] and [`Endpoint::session`] see the open
//! sessions (closing ones leave at once), [`Endpoint::broadcast`] and
//! [`Endpoint::broadcast_to`] queue one message on many sessions without ever
//! waiting for a slow one (the [`BroadcastReport`] says who was blocked),
//! [`Endpoint::closed_events`] reports every session that closes, with its
//! [`CloseReason`], and [`Endpoint::set_accept_incoming`] stops new sessions
//! without touching open ones; with
//! [`Config::decide_incoming`](ferry_proto::Config::decide_incoming),
//! [`Endpoint::incoming`] hands each request to the application to
//! [`accept`](Incoming::accept) or [`refuse`](Incoming::refuse) with a code
//! and a text. A server streaming ticks to its clients:
//!
//! ```no_run
//! use bytes::Bytes;
//! use ferry_async::{ClosedEvent, Endpoint};
//!
//! async fn stream(server: Endpoint, ticks: Vec<Bytes>) {
//!     for tick in ticks {
//!         let report = server.broadcast(tick);
//!         // A slow client misses this tick instead of holding up the others.
//!         for id in &report.blocked {
//!             eprintln!("session {id} is behind");
//!         }
//!     }
//! }
//!
//! async fn watch(server: Endpoint) {
//!     let mut closed = server.closed_events();
//!     while let Some(event) = closed.next().await {
//!         match event {
//!             ClosedEvent::Closed { id, reason } => eprintln!("session {id} ended: {reason}"),
//!             ClosedEvent::Missed(n) => eprintln!("{n} close events missed"),
//!         }
//!     }
//!     // The endpoint stopped.
//! }
//! ```

#![warn(missing_docs, unreachable_pub)]

mod acknowledged;
#[cfg(feature = "async-io")]
pub mod async_io;
mod config;
mod driver;
mod endpoint;
mod error;
pub mod fallback;
mod incoming;
mod manager;
mod runtime;
mod session;
mod shards;
mod shared;
pub mod socket;
mod stream;
pub mod types;

pub use config::EndpointConfig;
pub use endpoint::{ENDPOINT_CLOSED_CODE, Endpoint};
pub use error::{
    AckError, BindError, ConnectError, DatagramError, RecvError, SendError, StreamError,
    StreamRecvError, StreamSendError,
};
pub use fallback::{FallbackConfig, FallbackStats, Transport};
pub use ferry_proto::{
    AuthorizedKeys, CloseCounts, CloseReason, CloseText, Config, EndpointStats, Histogram,
    Identity, PeerParams, PublicKey, SendProgress, SessionId, SessionStats, SessionTotals, State,
    StreamEnd, StreamId, StreamKind, Ticket, TicketFormatError, TicketMode,
};
pub use incoming::Incoming;
pub use manager::{BroadcastReport, CLOSED_EVENTS_CAPACITY, ClosedEvent, ClosedEvents};
pub use runtime::{AsyncTimer, AsyncUdpSocket, RecvMeta, Runtime, Transmit};
pub use session::{DROPPED_CODE, Session};
pub use shards::ShardStats;
pub use stream::{Stream, StreamIo, WRITE_CHUNK};
