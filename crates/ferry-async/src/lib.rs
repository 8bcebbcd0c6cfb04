//! The runtime-agnostic async driver of Ferry.
//!
//! An [`Endpoint`] owns one UDP socket and one sans-IO [`ferry_proto::Endpoint`],
//! and a background task — the driver — runs the loop: receive a batch of
//! datagrams, hand each to the protocol, send what it has to send (batched
//! through [`quinn_udp`]: sendmmsg/recvmmsg, GSO/GRO where the kernel has them),
//! wake the handles waiting for events, then sleep until the next datagram,
//! command or deadline. [`Session`] handles send and receive messages and
//! datagrams from any task.
//!
//! This crate knows no runtime: it is generic over the small [`Runtime`] trait
//! (a socket with readiness, a timer, spawning). Use it through an adapter:
//! `ferry-tokio`, `ferry-smol` or `ferry-async-std`, which implement the trait
//! and offer `Endpoint::bind(addr, config)`. The `async-io` feature provides the
//! socket and timer shared by the smol and async-std adapters.
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
//! without touching open ones. A server streaming ticks to its clients:
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

#[cfg(feature = "async-io")]
pub mod async_io;
mod config;
mod driver;
mod endpoint;
mod error;
mod manager;
mod runtime;
mod session;
mod shared;
pub mod socket;

pub use config::EndpointConfig;
pub use endpoint::{ENDPOINT_CLOSED_CODE, Endpoint};
pub use error::{BindError, ConnectError, DatagramError, RecvError, SendError};
pub use ferry_proto::{CloseReason, Config, SessionId, SessionStats, State};
pub use manager::{BroadcastReport, CLOSED_EVENTS_CAPACITY, ClosedEvent, ClosedEvents};
pub use runtime::{AsyncTimer, AsyncUdpSocket, RecvMeta, Runtime, Transmit};
pub use session::{DROPPED_CODE, Session};
