//! Streams: independent flows of messages multiplexed in one session.
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

use std::collections::VecDeque;
use std::fmt;

use bytes::Bytes;

use crate::batch::{Delivery, Reassembly, SendQueue};
use crate::flow::WindowTuner;
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
    fn bits(self) -> u64 {
        match self {
            Self::ReliableOrdered => 0,
            Self::ReliableUnordered => 1,
            Self::Unreliable => 2,
        }
    }

    pub(crate) fn delivery(self) -> Delivery {
        match self {
            Self::ReliableOrdered => Delivery::Ordered,
            Self::ReliableUnordered => Delivery::Unordered,
            Self::Unreliable => Delivery::Latest,
        }
    }

    /// Whether the stream's data is flow-controlled (and retransmitted).
    pub(crate) fn is_reliable(self) -> bool {
        self != Self::Unreliable
    }
}

/// A stream's identifier within its session, the same on both sides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// Which control frame a tracked packet carried (to send it again if lost).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ControlKind {
    End,
    Credit,
    Refuse,
}

/// One stream's state in a session.
#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) kind: StreamKind,
    // Sending.
    pub(crate) send: SendQueue,
    /// Messages queued in all (the final count once finished).
    pub(crate) sent_messages: u64,
    /// `finish` or `reset` was called: no more `send`.
    pub(crate) send_closed: bool,
    /// The finish or reset frame to send, and whether it still must go out.
    pub(crate) end: Option<StreamOp>,
    pub(crate) end_due: bool,
    pub(crate) end_acked: bool,
    /// Credit the peer granted this stream, and what first transmissions used.
    pub(crate) peer_max_data: u64,
    pub(crate) credit_used: u64,
    /// The peer refused the stream.
    pub(crate) refused: bool,
    /// `send` found the stream's own buffer full.
    pub(crate) send_blocked: bool,
    // Receiving.
    pub(crate) recv: Reassembly,
    pub(crate) inbox: VecDeque<(Bytes, u64)>,
    pub(crate) received_cost: u64,
    pub(crate) consumed: u64,
    pub(crate) advertised: u64,
    /// This side's receive window for the stream, grown toward the
    /// bandwidth-delay product.
    pub(crate) window: WindowTuner,
    pub(crate) credit_due: bool,
    /// Messages released to the inbox.
    pub(crate) delivered: u64,
    /// The peer's finish: how many messages it sent.
    pub(crate) peer_final: Option<u64>,
    /// The peer's reset code.
    pub(crate) peer_reset: Option<u64>,
    /// The end was reported to the application.
    pub(crate) end_reported: bool,
}

impl Stream {
    pub(crate) fn new(
        id: StreamId,
        kind: StreamKind,
        max_message_size: usize,
        peer_window: u64,
        own_window: WindowTuner,
    ) -> Self {
        Self {
            kind,
            send: SendQueue::new(id.0, !kind.is_reliable()),
            sent_messages: 0,
            send_closed: false,
            end: None,
            end_due: false,
            end_acked: false,
            peer_max_data: peer_window,
            credit_used: 0,
            refused: false,
            send_blocked: false,
            recv: Reassembly::with_delivery(
                max_message_size,
                kind.delivery(),
                // The most the window can grow to: a peer keeping to its
                // credit never needs more.
                usize::try_from(own_window.max())
                    .unwrap_or(usize::MAX)
                    .max(max_message_size),
            ),
            inbox: VecDeque::new(),
            received_cost: 0,
            consumed: 0,
            advertised: own_window.window(),
            window: own_window,
            credit_due: false,
            delivered: 0,
            peer_final: None,
            peer_reset: None,
            end_reported: false,
        }
    }

    /// Credit left for new data on this stream (unreliable streams have no
    /// limit).
    pub(crate) fn credit(&self) -> u64 {
        if self.kind.is_reliable() {
            self.peer_max_data.saturating_sub(self.credit_used)
        } else {
            u64::MAX
        }
    }

    /// Whether the reading side is over: the end to report, once.
    pub(crate) fn read_end(&self) -> Option<StreamEnd> {
        if self.end_reported {
            return None;
        }
        if let Some(code) = self.peer_reset {
            return Some(StreamEnd::Reset { code });
        }
        if self.refused {
            return Some(StreamEnd::Refused);
        }
        match self.peer_final {
            Some(n) if self.inbox.is_empty() && self.delivered_or_given_up() >= n => {
                Some(StreamEnd::Finished)
            }
            _ => None,
        }
    }

    /// Messages the receiving side is done with. On a latest-only stream the
    /// finish ends the stream at once (once its inbox is read): a message
    /// still missing then would be lost or obsolete anyway.
    fn delivered_or_given_up(&self) -> u64 {
        if self.kind.is_reliable() {
            self.delivered
        } else {
            u64::MAX
        }
    }

    /// Latest-only streams: messages dropped (obsolete or unfinished).
    pub(crate) fn dropped(&self) -> u64 {
        self.recv.dropped()
    }

    /// Whether the sending side is over: nothing left to send or to see
    /// acknowledged.
    pub(crate) fn send_done(&self) -> bool {
        self.refused || (self.send_closed && self.end_acked && self.send.is_empty())
    }
}
