//! Stream identifiers and stream control operations, as they travel.
//!
//! Every session has stream 0, reliable and ordered, open from the start on
//! both sides: [`Session::send`](crate::Session::send) and
//! [`Session::recv`](crate::Session::recv) use it. Either side opens more with
//! [`Session::open_stream`](crate::Session::open_stream), each of one
//! [`StreamKind`]; the peer learns of a stream with its first packet
//! ([`Event::StreamOpened`](crate::Event::StreamOpened)). Streams are
//! independent: a lost packet delays only the stream whose data it carried.
//!
//! A stream id encodes who opened it and its kind, so both sides number their
//! streams without talking: `id = sequence << 3 | kind << 1 | opener`
//! (opener 0 for the side that started the session, 1 for the listener).

use std::fmt;

use crate::id::Side;

/// How a stream delivers its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamKind {
    /// Every message arrives, whole, exactly once, in the order sent (the
    /// default; stream 0 is one).
    ReliableOrdered,
    /// Every message arrives, whole, exactly once, as soon as it is complete,
    /// whatever the order.
    ReliableUnordered,
    /// Messages are sent once and never repeated; the receiver gets a message
    /// only if it arrived whole and is newer than every one it got before
    /// (latest-only: state updates, media frames). Not flow-controlled.
    Unreliable,
}

impl StreamKind {
    /// The kind's two bits in a stream id, and its index in per-kind tables.
    pub(crate) fn bits(self) -> u64 {
        match self {
            Self::ReliableOrdered => 0,
            Self::ReliableUnordered => 1,
            Self::Unreliable => 2,
        }
    }

    /// Whether the stream's data is flow-controlled (and retransmitted).
    pub(crate) fn is_reliable(self) -> bool {
        self != Self::Unreliable
    }
}

/// A stream's identifier within its session, the same on both sides. The
/// default is stream 0, [`StreamId::DEFAULT`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u64);

impl StreamId {
    /// Stream 0: reliable, ordered, open from the start on both sides.
    pub const DEFAULT: StreamId = StreamId(0);

    pub(crate) fn new(sequence: u64, kind: StreamKind, opener: Side) -> Self {
        let side = match opener {
            Side::Starter => 0,
            Side::Listener => 1,
        };
        Self(sequence << 3 | kind.bits() << 1 | side)
    }

    /// The stream's kind; `None` for an id no kind has (a peer's mistake).
    pub fn kind(self) -> Option<StreamKind> {
        match (self.0 >> 1) & 3 {
            0 => Some(StreamKind::ReliableOrdered),
            1 => Some(StreamKind::ReliableUnordered),
            2 => Some(StreamKind::Unreliable),
            _ => None,
        }
    }

    /// Which side opened it.
    pub fn opener(self) -> Side {
        if self.0 & 1 == 0 {
            Side::Starter
        } else {
            Side::Listener
        }
    }

    /// Its number among the streams its opener opened.
    pub fn sequence(self) -> u64 {
        self.0 >> 3
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// What a stream control frame says (packet kind `StreamControl`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamOp {
    /// The sender will send no more: it sent `messages` messages in all.
    Finish {
        /// Messages sent on the stream, in all.
        messages: u64,
    },
    /// The sender abandons the stream: undelivered messages are dropped.
    Reset {
        /// The application's code.
        code: u64,
        /// Messages sent on the stream before the reset.
        messages: u64,
    },
    /// The receiver grants credit: the stream's cumulative flow-control cost
    /// may reach `max_data`.
    Credit {
        /// The new limit.
        max_data: u64,
    },
    /// The receiver refuses a stream the sender opened (too many open).
    Refuse,
}
