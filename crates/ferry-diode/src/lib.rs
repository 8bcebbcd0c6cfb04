//! Ferry's one-way transfer (data diode) on real UDP sockets, driven by plain
//! threads — no async runtime.
//!
//! The protocol lives in [`ferry_proto::diode`], sans-IO: RaptorQ forward
//! error correction, pacing, heartbeats, sessions checked by length and
//! BLAKE3 digest. This crate gives it sockets, threads and a clock:
//!
//! - [`DiodeSender`]: a UDP socket, a driver thread that sends the core's
//!   datagrams paced to `bandwidth` (GSO runs where the platform has them),
//!   and encode workers. [`DiodeSender::open`] starts a session and returns
//!   a [`SessionWriter`], a blocking [`std::io::Write`];
//!   [`SessionWriter::finish`] waits until its last datagram went out.
//! - [`DiodeReceiver`]: a UDP socket, a receive thread (recvmmsg and GRO),
//!   decode workers, and a bounded queue of
//!   [`ReceiverEvent`]s for the
//!   application.
//!
//! ```no_run
//! use std::io::Write;
//! use ferry_diode::{DiodeReceiver, DiodeSender, SocketOptions};
//! use ferry_proto::diode::{DiodeConfig, ReceiverEvent};
//!
//! let receiver = DiodeReceiver::bind(
//!     "127.0.0.1:0".parse()?,
//!     DiodeConfig::default(),
//!     SocketOptions::default(),
//! )?;
//! let sender = DiodeSender::bind(
//!     "127.0.0.1:0".parse()?,
//!     receiver.local_addr(),
//!     DiodeConfig::default(),
//!     SocketOptions::default(),
//! )?;
//! let mut session = sender.open()?;
//! session.write_all(b"across the diode")?;
//! session.finish()?;
//!
//! let mut got = Vec::new();
//! while let Some(event) = receiver.recv_event() {
//!     match event {
//!         ReceiverEvent::Data { data, .. } => got.extend_from_slice(&data),
//!         ReceiverEvent::SessionFinished { .. } => break,
//!         ReceiverEvent::SessionLost { .. } => got.clear(),
//!         _ => {}
//!     }
//! }
//! assert_eq!(got, b"across the diode");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Nothing can travel back on a diode, so nothing slows the sender down but
//! its own `bandwidth` setting: set it at or below what the link and the
//! receiver sustain, and the repair percentage above the loss you expect.
//!
//! [`SocketOptions::ports`] spreads the datagrams over several UDP ports
//! (a socket and a thread per port on each side). At `bind`, each side
//! compares the socket buffer the kernel granted with what `bandwidth`
//! needs ([`BufferCheck`]) and warns with the sysctl to run; the receiver
//! counts the datagrams its sockets dropped when it fell behind
//! ([`DiodeReceiverStats::socket_drops`]) and says when a lost session is
//! its own fault rather than the link's.

#![warn(missing_docs, unreachable_pub)]

mod buffers;
mod error;
mod events;
mod lanes;
mod receiver;
mod sender;
mod socket;

pub use buffers::{BufferCheck, BufferSide, RECV_BUFFER_TIME, SEND_BUFFER_TIME, buffer_needed};
pub use error::DiodeError;
pub use lanes::SenderPortStats;
pub use receiver::{DiodeReceiver, DiodeReceiverStats, ReceiverPortStats};
pub use sender::{DiodeSender, DiodeSenderStats, SessionWriter};
pub use socket::SocketOptions;

/// The diode protocol's types, re-exported for convenience.
pub use ferry_proto::diode::{DiodeConfig, DiodeConfigError, LossReason, ReceiverEvent};
