//! What the endpoint tells the application, and why sessions end.

use std::fmt;

use bytes::Bytes;

use crate::error::ProtocolViolation;
use crate::id::SessionId;
use crate::wire::stream::StreamId;

/// Something the application should know about, returned by
/// [`Endpoint::poll_event`](crate::Endpoint::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The handshake completed: the session can carry messages both ways. A
    /// listener reports this for every session it accepts.
    Connected {
        /// The session.
        session: SessionId,
    },
    /// Messages arrived: take them with [`Session::recv`](crate::Session::recv)
    /// until it returns `None`. Reported when the session's queue of delivered
    /// messages goes from empty to not empty, so one event may stand for many
    /// messages. Each message is delivered whole, in order, exactly once.
    Readable {
        /// The session.
        session: SessionId,
    },
    /// The peer opened a stream (its first packet arrived).
    StreamOpened {
        /// The session.
        session: SessionId,
        /// The new stream.
        stream: StreamId,
    },
    /// Messages arrived on a stream other than stream 0: take them with
    /// [`Session::recv_on`](crate::Session::recv_on) until it returns `None`.
    StreamReadable {
        /// The session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
    },
    /// The peer's side of a stream is over: finished (every message was
    /// taken), reset, or — for a stream this side opened — refused.
    StreamClosed {
        /// The session.
        session: SessionId,
        /// The stream.
        stream: StreamId,
        /// How it ended.
        end: StreamEnd,
    },
    /// An unreliable datagram arrived.
    Datagram {
        /// The session.
        session: SessionId,
        /// The datagram's bytes.
        data: Bytes,
    },
    /// A session whose `send` returned [`SendError::Blocked`](crate::SendError::Blocked)
    /// has room again.
    SendReady {
        /// The session.
        session: SessionId,
    },
    /// The session ended. No more events follow for it.
    Closed {
        /// The session.
        session: SessionId,
        /// Why.
        reason: CloseReason,
    },
}

impl Event {
    /// The session the event is about.
    pub fn session(&self) -> SessionId {
        match self {
            Self::Connected { session }
            | Self::Readable { session }
            | Self::StreamOpened { session, .. }
            | Self::StreamReadable { session, .. }
            | Self::StreamClosed { session, .. }
            | Self::Datagram { session, .. }
            | Self::SendReady { session }
            | Self::Closed { session, .. } => *session,
        }
    }
}

/// Why a session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// This side called `close` with this application code.
    Local {
        /// The code given to `close`.
        code: u64,
    },
    /// The peer closed the session with this application code.
    Remote {
        /// The peer's code.
        code: u64,
    },
    /// The handshake got no answer within `handshake_timeout`, or the peer
    /// stopped answering pings (`ping_packet_count` in a row).
    Timeout,
    /// The listener refused the session (not accepting, or full).
    Refused,
    /// A side broke the protocol; the session cannot continue.
    ProtocolError(ProtocolViolation),
    /// The handshake failed authentication: the two sides do not hold the
    /// same pre-shared key (or one has none).
    AuthenticationFailed,
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local { code } => write!(f, "closed locally (code {code})"),
            Self::Remote { code } => write!(f, "closed by peer (code {code})"),
            Self::Timeout => f.write_str("timed out: the peer stopped answering"),
            Self::Refused => f.write_str("refused by the listener"),
            Self::ProtocolError(v) => write!(f, "protocol error: {v}"),
            Self::AuthenticationFailed => f.write_str(
                "authentication failed: both sides must be configured with the same pre-shared key",
            ),
        }
    }
}

/// Transport close codes carried in close packets (the application's codes travel
/// separately and never mix with these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u64)]
pub enum TransportCode {
    /// The receiver of the close broke the protocol.
    ProtocolViolation = 1,
    /// The listener does not accept this session.
    Refused = 2,
    /// The receiver of the close exceeded its flow-control credit.
    FlowControl = 3,
    /// The handshake failed authentication: the two sides do not share a key.
    AuthenticationFailed = 4,
}

impl TransportCode {
    pub(crate) fn for_violation(v: ProtocolViolation) -> Self {
        match v {
            ProtocolViolation::FlowControl => Self::FlowControl,
            _ => Self::ProtocolViolation,
        }
    }

    /// How a received transport code ends the local session.
    pub(crate) fn reason(code: u64) -> CloseReason {
        if code == Self::Refused as u64 {
            CloseReason::Refused
        } else if code == Self::AuthenticationFailed as u64 {
            CloseReason::AuthenticationFailed
        } else {
            CloseReason::ProtocolError(ProtocolViolation::ReportedByPeer(code))
        }
    }
}

/// How a stream ended for the side that reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamEnd {
    /// The peer finished it and every message was taken.
    Finished,
    /// The peer reset it with this code; undelivered messages were dropped.
    Reset {
        /// The peer's code.
        code: u64,
    },
    /// The peer refused a stream this side opened (its `max_streams` was
    /// reached); nothing sent on it arrived.
    Refused,
}

impl fmt::Display for StreamEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Finished => f.write_str("finished by the peer"),
            Self::Reset { code } => write!(f, "reset by the peer (code {code})"),
            Self::Refused => {
                f.write_str("refused by the peer: too many streams open; close some first")
            }
        }
    }
}
