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

#![warn(missing_docs, unreachable_pub)]

#[cfg(feature = "async-io")]
pub mod async_io;
mod config;
mod driver;
mod endpoint;
mod error;
mod runtime;
mod session;
mod shared;
pub mod socket;

pub use config::EndpointConfig;
pub use endpoint::{ENDPOINT_CLOSED_CODE, Endpoint};
pub use error::{BindError, ConnectError, DatagramError, RecvError, SendError};
pub use ferry_proto::{CloseReason, Config, SessionId, SessionStats, State};
pub use runtime::{AsyncTimer, AsyncUdpSocket, RecvMeta, Runtime, Transmit};
pub use session::{DROPPED_CODE, Session};
