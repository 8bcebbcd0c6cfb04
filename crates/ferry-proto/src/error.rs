//! Errors, one enum per operation. Each message says what happened and what to do.

use thiserror::Error;

/// A datagram could not be parsed. The datagram is dropped and counted; the
/// session it claims to belong to is not affected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum DecodeError {
    /// The datagram ended in the middle of a field.
    #[error("datagram truncated: a field runs past its end")]
    Truncated,
    /// The version byte is not one this build speaks.
    #[error("unsupported protocol version {0}: upgrade the older peer")]
    UnsupportedVersion(u8),
    /// The kind byte names no packet kind.
    #[error("unknown packet kind 0x{0:02x}")]
    UnknownKind(u8),
    /// A field holds a value outside its allowed range.
    #[error("a field holds a value outside its allowed range")]
    ValueOutOfRange,
    /// A data packet's fragment index is not below its fragment count.
    #[error("fragment {fragment} of {fragments} is impossible")]
    InvalidFragment {
        /// Index read from the wire.
        fragment: u32,
        /// Count read from the wire.
        fragments: u32,
    },
    /// An ack or repeat request describes ranges below packet number zero.
    #[error("ack ranges run below packet number zero")]
    InvalidRange,
    /// An ack or repeat request claims more ranges than allowed.
    #[error("too many ranges in an ack or repeat request")]
    TooManyRanges,
    /// A close packet's flag byte is neither application nor transport.
    #[error("invalid close flag {0}")]
    InvalidCloseFlag(u8),
    /// Bytes follow a complete body.
    #[error("{0} unexpected bytes after the packet body")]
    TrailingBytes(usize),
    /// The checksum or authentication tag did not match: the datagram was
    /// corrupted or forged.
    #[error("integrity check failed: datagram corrupted in transit")]
    Integrity,
}

/// A [`Config`](crate::Config) value is unusable. Fix the named field.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A setting of the identity handshake was given without this side's
    /// own identity.
    #[error(
        "`{0}` needs this endpoint's own identity: set `identity` too \
         (create one with `ferry keygen` or `Identity::generate`)"
    )]
    NeedsIdentity(&'static str),
    /// The MTU is too small to carry the header and a useful payload.
    #[error("mtu {mtu} is below the minimum {min}: raise `mtu` (1200 works on almost every path)")]
    MtuTooSmall {
        /// Configured value.
        mtu: usize,
        /// Smallest allowed value.
        min: usize,
    },
    /// The MTU is larger than a UDP datagram can be.
    #[error("mtu {mtu} is above the UDP maximum {max}: lower `mtu`")]
    MtuTooLarge {
        /// Configured value.
        mtu: usize,
        /// Largest allowed value.
        max: usize,
    },
    /// A duration that must be positive is zero.
    #[error("`{0}` must be greater than zero")]
    ZeroDuration(&'static str),
    /// A size or count that must be positive is zero.
    #[error("`{0}` must be greater than zero")]
    Zero(&'static str),
    /// A value exceeds what the wire format can carry.
    #[error("`{field}` is {value}, above the limit {max}")]
    TooLarge {
        /// The field.
        field: &'static str,
        /// Configured value.
        value: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// The receive window cannot hold one largest message, so a message could
    /// never complete.
    #[error(
        "recv_window {recv_window} cannot hold one message of max_message_size plus its \
         bookkeeping ({needed} bytes): raise `recv_window` or lower `max_message_size`"
    )]
    WindowTooSmall {
        /// Configured receive window.
        recv_window: usize,
        /// What one largest message needs.
        needed: usize,
    },
    /// The per-stream receive window cannot hold one largest message.
    #[error(
        "stream_recv_window {stream_recv_window} cannot hold one message of max_message_size \
         plus its bookkeeping ({needed} bytes): raise `stream_recv_window` or lower `max_message_size`"
    )]
    StreamWindowTooSmall {
        /// Configured per-stream window.
        stream_recv_window: usize,
        /// What one largest message needs.
        needed: usize,
    },
    /// A window's maximum is below the size it starts at.
    #[error(
        "`{field}` {max} is below `{initial_field}` {initial}, where the window starts: \
         raise `{field}` or lower `{initial_field}`"
    )]
    MaxBelowInitial {
        /// The maximum's field.
        field: &'static str,
        /// Its configured value.
        max: usize,
        /// The initial window's field.
        initial_field: &'static str,
        /// Its configured value.
        initial: usize,
    },
    /// A server id written as text is not `[rotation:]hex`.
    #[error(
        "server id {0:?} is not `[rotation:]hex`: write 1 to 4 bytes in hex, optionally after \
         a config rotation code 0, 1 or 2 and a colon (for example `0a01` or `1:0a01`)"
    )]
    BadServerId(String),
}

/// A message could not be queued on a session.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SendError {
    /// The send buffer is full. Nothing was queued; retry after
    /// [`Event::SendReady`](crate::Event::SendReady) for this session.
    #[error("send buffer full: wait for SendReady and retry")]
    Blocked,
    /// The message is larger than either side accepts.
    #[error("message of {size} bytes exceeds max_message_size {max}: split it")]
    TooLarge {
        /// The message's size.
        size: usize,
        /// The limit in force.
        max: usize,
    },
    /// The session is closing or closed; open a new one.
    #[error("session is closed")]
    Closed,
    /// No session has this id on this endpoint.
    #[error("no such session")]
    UnknownSession,
    /// The session has no such stream (never opened, or over).
    #[error("no such stream: open it first, or it has ended")]
    UnknownStream,
    /// The stream was finished or reset by this side: it takes no more.
    #[error("stream finished or reset: open another")]
    StreamClosed,
}

/// A stream could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StreamError {
    /// As many streams as the peer allows are open; wait for one to end.
    #[error("the peer allows {max} open streams and that many are open: finish one first")]
    TooManyStreams {
        /// The peer's limit.
        max: u64,
    },
    /// The session is not established (or is over).
    #[error("the session is not established")]
    NotConnected,
    /// No session has this id on this endpoint.
    #[error("no such session")]
    UnknownSession,
}

/// An unreliable datagram could not be queued.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DatagramError {
    /// The datagram does not fit in one packet.
    #[error("datagram of {size} bytes exceeds the {max}-byte limit of one packet")]
    TooLarge {
        /// The datagram's size.
        size: usize,
        /// The largest datagram this session can send.
        max: usize,
    },
    /// The session is not established (still handshaking, or closed).
    #[error("session is not established: wait for Connected, or open a new session")]
    NotConnected,
    /// No session has this id on this endpoint.
    #[error("no such session")]
    UnknownSession,
}

/// A session could not be started.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConnectError {
    /// The endpoint already serves `max_sessions` sessions.
    #[error("endpoint already has {0} sessions: close some or raise `max_sessions`")]
    TooManySessions(usize),
    /// The remote address cannot be reached by UDP (port 0 or unspecified).
    #[error("invalid remote address {0}: give an IP address and a non-zero port")]
    InvalidRemote(std::net::SocketAddr),
    /// This endpoint has an identity but no listener key to pin: the identity
    /// handshake needs the listener's public key before it starts.
    #[error(
        "no listener key to connect with: set `listener_key` to the listener's public key \
         (or use `connect_to`); the listener prints it with `ferry keygen --public`"
    )]
    NoListenerKey,
    /// A listener key was given but this endpoint has no identity to prove.
    #[error("connecting with a listener key needs this endpoint's own identity: set `identity`")]
    NoIdentity,
    /// The ticket was issued for sessions keyed otherwise than this
    /// endpoint's are (a pre-shared key, an identity, or neither): should
    /// the listener refuse it, the full handshake it falls back to could not
    /// run.
    #[error(
        "the ticket is for {ticket:?} sessions, but this endpoint's configuration gives {config:?} ones: \
         resume with an endpoint configured as the one that got the ticket"
    )]
    TicketMismatch {
        /// The ticket's mode.
        ticket: crate::crypto::TicketMode,
        /// This endpoint's.
        config: crate::crypto::TicketMode,
    },
    /// A message to send as early data is larger than `max_message_size`.
    #[error("early message of {size} bytes exceeds max_message_size {max}: split it")]
    EarlyDataTooLarge {
        /// The message's size.
        size: usize,
        /// The limit in force.
        max: usize,
    },
}

/// An incoming session could not be accepted or refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecisionError {
    /// The session does not wait for a decision: it was accepted or refused
    /// already, it ended (its starter gave up, or `handshake_timeout`
    /// passed: see [`Event::Closed`](crate::Event::Closed)), or this side
    /// started it. Decide on sessions reported by
    /// [`Event::Incoming`](crate::Event::Incoming), once each.
    #[error(
        "the session is not waiting for a decision (decided already, ended, or not incoming): decide once on each Event::Incoming"
    )]
    NotIncoming,
}

/// Why the session broke the protocol. Carried in
/// [`CloseReason::ProtocolError`](crate::CloseReason::ProtocolError).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Error)]
pub enum ProtocolViolation {
    /// The peer sent more than the receive credit it was granted.
    #[error("peer exceeded its flow-control credit")]
    FlowControl,
    /// A message grew beyond `max_message_size`.
    #[error("peer sent a message larger than max_message_size")]
    MessageTooLarge,
    /// Fragments of one message disagree on the fragment count, or a non-final
    /// fragment is implausibly small.
    #[error("peer sent inconsistent fragments")]
    BadFragment,
    /// The peer sent data on a stream this session does not have.
    #[error("peer sent data on an unknown stream")]
    UnknownStream,
    /// Data named a stream so far beyond the streams opened before it that
    /// more than `max_streams` would be open at once.
    #[error("the peer opened more streams at once than max_streams allows")]
    StreamLimit,
    /// The peer acknowledged a packet number that was never sent.
    #[error("peer acknowledged a packet that was never sent")]
    InvalidAck,
    /// The peer's handshake parameters are unusable.
    #[error("peer sent unusable handshake parameters")]
    BadHandshake,
    /// The peer closed the session, reporting that this side broke the protocol.
    #[error("peer reported a protocol violation (transport code {0})")]
    ReportedByPeer(u64),
}
