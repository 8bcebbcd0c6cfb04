//! One stream's state in a session: its send queue, reassembly, inbox,
//! finish/reset state and credit. Ids, kinds and control operations are in
//! [`crate::wire::stream`].

use std::collections::VecDeque;

use bytes::Bytes;

use crate::event::StreamEnd;
use crate::flow::WindowTuner;
use crate::message::{Delivery, Reassembly, SendProgress, SendQueue};
use crate::wire::stream::{StreamId, StreamKind, StreamOp};

/// How a stream of this kind releases its messages.
fn delivery(kind: StreamKind) -> Delivery {
    match kind {
        StreamKind::ReliableOrdered => Delivery::Ordered,
        StreamKind::ReliableUnordered => Delivery::Unordered,
        StreamKind::Unreliable => Delivery::Latest,
    }
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
            send: SendQueue::new(id, !kind.is_reliable()),
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
                delivery(kind),
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

    /// What was sent and acknowledged, the finish included.
    pub(crate) fn send_progress(&self) -> SendProgress {
        SendProgress {
            finishes_acknowledged: u64::from(
                self.end_acked && matches!(self.end, Some(StreamOp::Finish { .. })),
            ),
            ..self.send.progress()
        }
    }

    /// Whether the sending side is over: nothing left to send or to see
    /// acknowledged.
    pub(crate) fn send_done(&self) -> bool {
        self.refused || (self.send_closed && self.end_acked && self.send.is_empty())
    }
}
