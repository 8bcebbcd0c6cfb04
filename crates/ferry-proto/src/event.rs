//! What the endpoint tells the application, and why sessions end.

use std::fmt;
use std::sync::Arc;

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
    /// A peer's Connect arrived, valid and authenticated, and waits for the
    /// application's decision (only with
    /// [`Config::decide_incoming`](crate::Config::decide_incoming)): look at
    /// it through [`Endpoint::session`](crate::Endpoint::session) (its
    /// [`remote_addr`](crate::Session::remote_addr) and
    /// [`peer_params`](crate::Session::peer_params)), then call
    /// [`accept`](crate::Session::accept) or
    /// [`refuse`](crate::Session::refuse). Undecided within
    /// `handshake_timeout`, the endpoint refuses it and reports
    /// [`Closed`](Self::Closed) with [`CloseReason::Timeout`].
    Incoming {
        /// The session, in [`State::Incoming`](crate::State::Incoming).
        session: SessionId,
    },
    /// The listener gave this starter a resumption ticket: take it with
    /// [`Session::ticket`](crate::Session::ticket) (a later one replaces
    /// it).
    Ticket {
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
            | Self::Incoming { session }
            | Self::Readable { session }
            | Self::StreamOpened { session, .. }
            | Self::StreamReadable { session, .. }
            | Self::StreamClosed { session, .. }
            | Self::Datagram { session, .. }
            | Self::SendReady { session }
            | Self::Ticket { session }
            | Self::Closed { session, .. } => *session,
        }
    }
}

/// The short text a close carries beside its code: UTF-8, at most
/// [`MAX_CLOSE_REASON`](crate::wire::packet::MAX_CLOSE_REASON) bytes.
///
/// Longer text is cut at the last UTF-8 character boundary within the bound;
/// received bytes that are not valid UTF-8 are decoded lossily (each bad
/// sequence becomes U+FFFD), then cut the same way. Cheap to clone (a shared
/// string; the empty text allocates nothing). It is the peer's word, not
/// checked by Ferry: show it, log it, but do not trust it (a refusal is not
/// even authenticated, see [`CloseReason::Rejected`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct CloseText(Option<Arc<str>>);

impl CloseText {
    /// No text.
    pub const EMPTY: Self = Self(None);

    /// `text`, cut at a character boundary to at most
    /// [`MAX_CLOSE_REASON`](crate::wire::packet::MAX_CLOSE_REASON) bytes.
    pub fn new(text: &str) -> Self {
        let text = truncate(text, crate::wire::packet::MAX_CLOSE_REASON);
        if text.is_empty() {
            Self::EMPTY
        } else {
            Self(Some(text.into()))
        }
    }

    /// The text of a received close: decoded lossily, then bounded as
    /// [`new`](Self::new) does. Never panics.
    pub fn from_wire(bytes: &[u8]) -> Self {
        Self::new(&String::from_utf8_lossy(bytes))
    }

    /// The text (empty when there is none).
    pub fn as_str(&self) -> &str {
        self.0.as_deref().unwrap_or("")
    }

    /// Whether there is no text.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// The bytes a Close packet carries.
    pub(crate) fn to_bytes(&self) -> Bytes {
        Bytes::copy_from_slice(self.as_str().as_bytes())
    }
}

/// The longest prefix of `text` of at most `max` bytes that ends on a
/// character boundary.
fn truncate(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

impl fmt::Display for CloseText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<&str> for CloseText {
    fn from(text: &str) -> Self {
        Self::new(text)
    }
}

impl From<String> for CloseText {
    fn from(text: String) -> Self {
        Self::new(&text)
    }
}

/// Why a session ended.
///
/// `Clone`, not `Copy`: the application's closes carry a [`CloseText`] (a
/// shared string, cheap to clone).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// This side closed the session with this application code (and text):
    /// `close`, `close_with_reason`, or a refusal of an incoming session.
    Local {
        /// The code given to `close`.
        code: u64,
        /// The text given to `close_with_reason` (empty for `close`).
        reason: CloseText,
    },
    /// The peer closed the session with this application code and text.
    Remote {
        /// The peer's code.
        code: u64,
        /// The peer's text (empty when it gave none).
        reason: CloseText,
    },
    /// The handshake got no answer within `handshake_timeout`, or the peer
    /// stopped answering pings (`ping_packet_count` in a row); for an
    /// incoming session, the application did not decide on it within
    /// `handshake_timeout` (the starter learns it the same way, or by its own
    /// timeout).
    Timeout,
    /// The listener's transport refused the session (not accepting, or full).
    Refused,
    /// The listener's application refused the session (see
    /// [`Config::decide_incoming`](crate::Config::decide_incoming)), with
    /// this code and text. Like [`Refused`](Self::Refused) it is not
    /// authenticated: the starter holds no keys yet, so whoever can send to
    /// it from the listener's address could forge one.
    Rejected {
        /// The listener application's code.
        code: u64,
        /// Its text (empty when it gave none).
        reason: CloseText,
    },
    /// A side broke the protocol; the session cannot continue.
    ProtocolError(ProtocolViolation),
    /// The handshake failed authentication: the two sides do not hold the
    /// same pre-shared key (or one has none).
    AuthenticationFailed,
}

impl CloseReason {
    /// The application's code, for the reasons that carry one (`Local`,
    /// `Remote`, `Rejected`).
    pub fn code(&self) -> Option<u64> {
        match self {
            Self::Local { code, .. } | Self::Remote { code, .. } | Self::Rejected { code, .. } => {
                Some(*code)
            }
            _ => None,
        }
    }

    /// The application's text, for the reasons that carry one (empty when
    /// none was given).
    pub fn text(&self) -> Option<&CloseText> {
        match self {
            Self::Local { reason, .. }
            | Self::Remote { reason, .. }
            | Self::Rejected { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// Writes `: text` after a reason, when there is text.
fn with_text(f: &mut fmt::Formatter<'_>, reason: &CloseText) -> fmt::Result {
    if reason.is_empty() {
        Ok(())
    } else {
        write!(f, ": {reason}")
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Local { code, reason } => {
                write!(f, "closed locally (code {code})")?;
                with_text(f, reason)
            }
            Self::Remote { code, reason } => {
                write!(f, "closed by peer (code {code})")?;
                with_text(f, reason)
            }
            Self::Timeout => f.write_str("timed out: the peer stopped answering"),
            Self::Refused => f.write_str("refused by the listener"),
            Self::Rejected { code, reason } => {
                write!(f, "refused by the listener's application (code {code})")?;
                with_text(f, reason)
            }
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
    /// The listener's application did not decide on the incoming session
    /// within `handshake_timeout` (see `Config::decide_incoming`).
    Undecided = 5,
    /// The listener does not take the resumption ticket the Connect carries
    /// (used before, expired, forged, another endpoint's, or its starter's
    /// key revoked): the starter falls back to a full handshake.
    TicketRefused = 6,
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
        } else if code == Self::Undecided as u64 {
            CloseReason::Timeout
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::packet::MAX_CLOSE_REASON;

    #[test]
    fn a_long_text_is_cut_at_a_character_boundary_within_the_bound() {
        // 'é' is two bytes: 200 of them are 400 bytes, cut to 256 (128 'é').
        let text = CloseText::new(&"é".repeat(200));
        assert_eq!(text.as_str().len(), MAX_CLOSE_REASON);
        assert_eq!(text.as_str(), "é".repeat(128));
        // A three-byte character across the bound is left out whole.
        let text = CloseText::new(&format!("{}€", "a".repeat(MAX_CLOSE_REASON - 1)));
        assert_eq!(text.as_str(), "a".repeat(MAX_CLOSE_REASON - 1));
        assert_eq!(CloseText::new("short").as_str(), "short");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_decoded_lossily_and_still_bounded() {
        assert_eq!(
            CloseText::from_wire(b"bad \xff byte").as_str(),
            "bad \u{fffd} byte"
        );
        // Each bad byte grows to three: the result is cut to the bound again.
        let text = CloseText::from_wire(&[0xff; MAX_CLOSE_REASON]);
        assert!(text.as_str().len() <= MAX_CLOSE_REASON);
        assert!(text.as_str().chars().all(|c| c == '\u{fffd}'));
    }

    #[test]
    fn the_empty_text_is_none_and_shows_nothing() {
        assert!(CloseText::new("").is_empty());
        assert_eq!(CloseText::new(""), CloseText::EMPTY);
        let reason = CloseReason::Remote {
            code: 7,
            reason: CloseText::EMPTY,
        };
        assert_eq!(reason.to_string(), "closed by peer (code 7)");
    }

    #[test]
    fn display_shows_the_text_when_there_is_one() {
        let reason = CloseReason::Remote {
            code: 7,
            reason: "going away".into(),
        };
        assert_eq!(reason.to_string(), "closed by peer (code 7): going away");
        let rejected = CloseReason::Rejected {
            code: 403,
            reason: "not on the list".into(),
        };
        assert_eq!(
            rejected.to_string(),
            "refused by the listener's application (code 403): not on the list"
        );
        assert_eq!(rejected.code(), Some(403));
        assert_eq!(
            rejected.text().map(CloseText::as_str),
            Some("not on the list")
        );
        assert_eq!(CloseReason::Timeout.code(), None);
    }

    #[test]
    fn an_undecided_refusal_reads_as_a_timeout() {
        assert_eq!(
            TransportCode::reason(TransportCode::Undecided as u64),
            CloseReason::Timeout
        );
        assert_eq!(
            TransportCode::reason(TransportCode::Refused as u64),
            CloseReason::Refused
        );
    }
}
