//! Errors of the driven API, one enum per operation.

use std::io;
use std::net::SocketAddr;

use ferry_proto::CloseReason;
use thiserror::Error;

/// The endpoint could not be created.
#[derive(Debug, Error)]
pub enum BindError {
    /// Another socket holds the address.
    #[error("address {0} is already in use: pick another port, or stop what holds it")]
    AddrInUse(SocketAddr),
    /// No local interface has the address.
    #[error("address {0} is not available on this machine")]
    AddrNotAvailable(SocketAddr),
    /// Binding needs privileges (a port below 1024).
    #[error("permission denied binding {0}: use a port above 1023")]
    PermissionDenied(SocketAddr),
    /// The protocol configuration is invalid.
    #[error("invalid configuration: {0}")]
    Config(#[from] ferry_proto::ConfigError),
    /// The socket could not be created or registered.
    #[error("cannot open a UDP socket on {addr}: {source}")]
    Io {
        /// The address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
}

/// A session could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConnectError {
    /// The request was invalid or the endpoint is full.
    #[error(transparent)]
    Rejected(#[from] ferry_proto::ConnectError),
    /// The handshake did not complete: [`CloseReason::Timeout`] when nothing
    /// answered within `handshake_timeout`, [`CloseReason::Refused`] when the
    /// listener refused or the network reported the port closed.
    #[error("could not connect: {0}")]
    Failed(CloseReason),
    /// The endpoint was closed.
    #[error("the endpoint is closed")]
    EndpointClosed,
}

/// A message could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    /// The message is larger than either side accepts.
    #[error("message of {size} bytes exceeds max_message_size {max}: split it")]
    TooLarge {
        /// The message's size.
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// The session is closed, for this reason.
    #[error("session closed: {0}")]
    Closed(CloseReason),
    /// The endpoint was closed.
    #[error("the endpoint is closed")]
    EndpointClosed,
    /// The send buffer stayed full until the timeout (blocking driver only).
    #[error("timed out waiting for room in the send buffer")]
    Timeout,
}

/// Nothing more can be received.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecvError {
    /// The session is closed and every message it delivered was taken.
    #[error("session closed: {0}")]
    Closed(CloseReason),
    /// The endpoint was closed.
    #[error("the endpoint is closed")]
    EndpointClosed,
    /// Nothing arrived before the timeout (blocking driver only).
    #[error("timed out waiting for a message")]
    Timeout,
}

/// An unreliable datagram could not be sent.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DatagramError {
    /// The datagram does not fit in one packet.
    #[error("datagram of {size} bytes exceeds the {max}-byte limit of one packet")]
    TooLarge {
        /// The datagram's size.
        size: usize,
        /// The largest datagram the session can send.
        max: usize,
    },
    /// The session is not established yet.
    #[error("session is not established yet")]
    NotConnected,
    /// The session is closed, for this reason.
    #[error("session closed: {0}")]
    Closed(CloseReason),
    /// The endpoint was closed.
    #[error("the endpoint is closed")]
    EndpointClosed,
}
