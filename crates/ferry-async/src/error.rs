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
    /// [`EndpointConfig::shards`](crate::EndpointConfig::shards) asks for
    /// more shards than an endpoint can have.
    #[error(
        "shards = {shards} is more than the {max} shards an endpoint can have: ask for at most {max}, or 0 for one per core"
    )]
    TooManyShards {
        /// The shards asked for.
        shards: usize,
        /// The most an endpoint can have ([`MAX_SHARDS`](ferry_proto::MAX_SHARDS)).
        max: u8,
    },
    /// The fallback transport was asked for on a sharded endpoint.
    #[error(
        "the WebSocket fallback needs one shard (shards = {0}): set shards to 1, or turn the fallback off"
    )]
    FallbackSharded(usize),
    /// [`FallbackConfig::buffer`](crate::FallbackConfig::buffer) cannot hold
    /// the largest datagram.
    #[error(
        "fallback.buffer = {buffer} bytes cannot hold the largest datagram: give at least {min}"
    )]
    FallbackBuffer {
        /// The size asked for.
        buffer: usize,
        /// The least accepted.
        min: usize,
    },
    /// The fallback's TCP listener could not be bound.
    #[error(
        "cannot accept the WebSocket fallback on TCP {addr}: {source}; pick another address (fallback.listen_addr) or free the port"
    )]
    FallbackListen {
        /// The TCP address asked for.
        addr: SocketAddr,
        /// What the OS said.
        source: io::Error,
    },
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
    /// listener refused or the network reported the port closed,
    /// [`CloseReason::Rejected`] (with its code and text) when the listener's
    /// application refused.
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

/// A stream could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StreamError {
    /// As many streams as the peer allows (its `max_streams`) are open. A
    /// stream stops counting once both sides are done with it: this side
    /// finished or reset it (or dropped its last handle) and the peer did too.
    #[error(
        "the peer allows {max} open streams and that many are open: finish or drop one, let the peer end its side, then retry"
    )]
    TooManyStreams {
        /// The peer's limit.
        max: u64,
    },
    /// The session is still handshaking.
    #[error("the session is not established yet: open streams once connect or accept returned it")]
    NotConnected,
    /// The session is closed, for this reason.
    #[error("session closed: {0}")]
    Closed(CloseReason),
    /// The endpoint was closed.
    #[error("the endpoint is closed")]
    EndpointClosed,
}

/// A message could not be sent on a stream (or the stream could not be
/// finished or reset).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StreamSendError {
    /// The message is larger than either side accepts.
    #[error("message of {size} bytes exceeds max_message_size {max}: split it")]
    TooLarge {
        /// The message's size.
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// This side already finished or reset the stream: it takes no more.
    #[error(
        "this side finished or reset the stream: it takes no more messages; open another stream"
    )]
    Finished,
    /// The peer refused the stream (more of this side's streams were open than
    /// its `max_streams`); nothing sent on it arrived.
    #[error("the peer refused the stream (too many open): open another once some have ended")]
    Refused,
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

/// What was sent could not be seen acknowledged: the error of the
/// `acknowledged` calls ([`Session::acknowledged`](crate::Session::acknowledged),
/// [`Stream::acknowledged`](crate::Stream::acknowledged),
/// [`Stream::finish_acknowledged`](crate::Stream::finish_acknowledged)). None
/// of them is a success in disguise: each means some message may not have
/// reached the peer.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AckError {
    /// The session closed, for this reason, before the peer acknowledged
    /// everything waited for (a close drops what is still queued).
    #[error("session closed before the peer acknowledged everything: {0}")]
    Closed(CloseReason),
    /// The endpoint was closed.
    #[error("the endpoint is closed")]
    EndpointClosed,
    /// Messages were dropped before the peer acknowledged them: the stream's
    /// sending was reset by this side (for a wait over the whole session, a
    /// stream of it was reset, or refused by the peer).
    #[error("messages were dropped unacknowledged: the stream was reset")]
    Reset,
    /// The peer refused the stream: what was queued on it was dropped.
    #[error("the peer refused the stream: its messages were dropped unacknowledged")]
    Refused,
    /// On an unreliable stream, a message had a fragment lost and given up
    /// (never sent again): the peer may not have it.
    #[error("a message of an unreliable stream was lost and given up, never acknowledged")]
    Lost,
    /// The peer did not acknowledge everything before the timeout (blocking
    /// driver only; with an async runtime, wrap the future in its timeout).
    #[error("timed out waiting for the peer's acknowledgement")]
    Timeout,
}

/// Nothing more can be received on a stream. (The peer finishing the stream is
/// no error: `recv` then returns `Ok(None)` once every message was taken.)
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StreamRecvError {
    /// The peer reset the stream with this code: what it sent and this side
    /// had not taken yet was dropped.
    #[error("stream reset by the peer (code {code}): messages not yet read were dropped")]
    Reset {
        /// The peer's code.
        code: u64,
    },
    /// The peer refused this stream (more of this side's streams were open
    /// than its `max_streams`): nothing was sent on it, nothing will come.
    #[error("the peer refused the stream (too many open): open another once some have ended")]
    Refused,
    /// The session is closed, for this reason, and every message it delivered
    /// on the stream was taken.
    #[error("session closed: {0}")]
    Closed(CloseReason),
    /// The endpoint was closed.
    #[error("the endpoint is closed")]
    EndpointClosed,
    /// Nothing arrived before the timeout (blocking driver only).
    #[error("timed out waiting for a message")]
    Timeout,
}

impl From<StreamRecvError> for io::Error {
    /// For byte streams: a reset is [`io::ErrorKind::ConnectionReset`], a
    /// refusal [`io::ErrorKind::ConnectionRefused`], a closed session
    /// [`io::ErrorKind::ConnectionAborted`], a closed endpoint
    /// [`io::ErrorKind::NotConnected`], a timeout [`io::ErrorKind::TimedOut`];
    /// the error itself is the source.
    fn from(e: StreamRecvError) -> Self {
        let kind = match e {
            StreamRecvError::Reset { .. } => io::ErrorKind::ConnectionReset,
            StreamRecvError::Refused => io::ErrorKind::ConnectionRefused,
            StreamRecvError::Closed(_) => io::ErrorKind::ConnectionAborted,
            StreamRecvError::EndpointClosed => io::ErrorKind::NotConnected,
            StreamRecvError::Timeout => io::ErrorKind::TimedOut,
        };
        io::Error::new(kind, e)
    }
}

impl From<StreamSendError> for io::Error {
    /// For byte streams: writing after a finish or reset is
    /// [`io::ErrorKind::BrokenPipe`], a refusal
    /// [`io::ErrorKind::ConnectionRefused`], a closed session
    /// [`io::ErrorKind::ConnectionAborted`], a closed endpoint
    /// [`io::ErrorKind::NotConnected`], a timeout [`io::ErrorKind::TimedOut`],
    /// a message too large [`io::ErrorKind::InvalidInput`]; the error itself
    /// is the source.
    fn from(e: StreamSendError) -> Self {
        let kind = match e {
            StreamSendError::TooLarge { .. } => io::ErrorKind::InvalidInput,
            StreamSendError::Finished => io::ErrorKind::BrokenPipe,
            StreamSendError::Refused => io::ErrorKind::ConnectionRefused,
            StreamSendError::Closed(_) => io::ErrorKind::ConnectionAborted,
            StreamSendError::EndpointClosed => io::ErrorKind::NotConnected,
            StreamSendError::Timeout => io::ErrorKind::TimedOut,
        };
        io::Error::new(kind, e)
    }
}
