//! Why a diode session was lost, and what the receiver held of the block
//! that lost it.

use thiserror::Error;

/// The block a session was lost at: its number, how many of its symbols
/// arrived and how many it needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LostBlock {
    /// The block's number in the session (the first one not delivered).
    pub block: u64,
    /// Distinct symbols of it that arrived (source and repair).
    pub received: u32,
    /// Symbols it needed (its source symbol count `K`; RaptorQ may need one
    /// or two more). `None` when none of its symbols arrived, so its size is
    /// unknown.
    pub needed: Option<u32>,
}

impl std::fmt::Display for LostBlock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.needed {
            Some(k) => write!(
                f,
                "block {} ({} of the {k} symbols it needs arrived)",
                self.block, self.received
            ),
            None => write!(f, "block {} (none of its symbols arrived)", self.block),
        }
    }
}

/// Why a session was lost. A lost session delivers nothing more; what it
/// delivered before must be discarded by the application (the diode tools
/// reset the TCP connection or delete the temporary file). The message says
/// what to change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum LossReason {
    /// The sender moved [`blocks_in_flight`](super::DiodeConfig::blocks_in_flight)
    /// blocks past a block that could not be rebuilt: more of its datagrams
    /// were lost than its repair symbols cover (or this receiver started
    /// after the block was sent).
    #[error(
        "{0} was lost beyond the repair margin: raise `repair_percentage`, or `interleave_depth` if the link loses datagrams in bursts"
    )]
    BeyondRepairMargin(LostBlock),
    /// The first block not yet delivered received nothing for
    /// `block_expiration_timeout` (or was missing that long while later
    /// blocks arrived or a keep-alive said it was sent): the link went quiet
    /// mid-block, or the session's last blocks lost more than their margin.
    #[error(
        "{0} expired: nothing more of it arrived for `block_expiration_timeout`; check the link, or raise `repair_percentage`"
    )]
    BlockExpired(LostBlock),
    /// Nothing of the session (no symbol, no keep-alive) arrived for
    /// `session_expiration_timeout`; the block is the one it waited for.
    #[error(
        "the session expired waiting for {0}: nothing arrived for `session_expiration_timeout`; check the link and that the sender runs"
    )]
    SessionExpired(LostBlock),
    /// The sender restarted (a heartbeat with a new sender id) while the
    /// session was under way; the block is the one it waited for.
    #[error("the sender restarted while {0} was under way: send the session again")]
    SenderRestarted(LostBlock),
    /// The block could not be rebuilt because this receiver dropped some of
    /// its datagrams: it fell behind (its decoders or application lagged a
    /// whole window, or its driver reported a socket overflow with
    /// [`Receiver::report_overflow`](super::Receiver::report_overflow)).
    #[error(
        "{0} was lost because this receiver fell behind: give it more decode threads or a larger `udp_recv_buffer`, or lower the sender's `bandwidth`"
    )]
    ReceiverBehind(LostBlock),
    /// The sender aborted it.
    #[error("the sender aborted the session")]
    Aborted,
    /// Every block arrived but the length or BLAKE3 digest in the trailer does
    /// not match the bytes: a bug or tampering, never delivered as success.
    #[error(
        "the session's length or BLAKE3 digest does not match its bytes: report a bug, or look for tampering"
    )]
    DigestMismatch,
    /// `max_sessions` sessions were open: the new one was refused.
    #[error("`max_sessions` sessions were open: the session was refused; raise `max_sessions`")]
    TooManySessions,
    /// The block's coding parameters exceed what this receiver accepts
    /// (`block_size`), or contradict the block's earlier datagrams.
    #[error(
        "the session's coding parameters exceed this receiver's `block_size` or contradict each other: give both sides the same `block_size`"
    )]
    ParametersRejected,
    /// The sender interleaves more blocks than this receiver holds: it needs
    /// twice the depth in [`blocks_in_flight`](super::DiodeConfig::blocks_in_flight).
    #[error(
        "the sender interleaves {depth} blocks but this receiver holds {window} per session: raise the receiver's `interleave_depth` to at least {depth}"
    )]
    InterleaveTooDeep {
        /// The sender's `interleave_depth`.
        depth: u8,
        /// This receiver's `blocks_in_flight()`.
        window: usize,
    },
}

impl LossReason {
    /// The block the session was lost at, for the reasons that have one.
    pub fn block(&self) -> Option<LostBlock> {
        match *self {
            Self::BeyondRepairMargin(b)
            | Self::BlockExpired(b)
            | Self::SessionExpired(b)
            | Self::SenderRestarted(b)
            | Self::ReceiverBehind(b) => Some(b),
            _ => None,
        }
    }
}

/// Sessions lost, by cause (part of [`ReceiverStats`](super::ReceiverStats)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LossCounts {
    /// [`LossReason::BeyondRepairMargin`].
    pub beyond_repair_margin: u64,
    /// [`LossReason::BlockExpired`].
    pub block_expired: u64,
    /// [`LossReason::SessionExpired`].
    pub session_expired: u64,
    /// [`LossReason::SenderRestarted`].
    pub sender_restarted: u64,
    /// [`LossReason::ReceiverBehind`].
    pub receiver_behind: u64,
    /// [`LossReason::Aborted`].
    pub aborted: u64,
    /// [`LossReason::DigestMismatch`].
    pub digest_mismatch: u64,
    /// Refused at their first datagram or for their parameters:
    /// [`LossReason::TooManySessions`], [`LossReason::ParametersRejected`],
    /// [`LossReason::InterleaveTooDeep`].
    pub refused: u64,
}

impl LossCounts {
    /// Counts one loss.
    pub fn count(&mut self, reason: &LossReason) {
        let counter = match reason {
            LossReason::BeyondRepairMargin(_) => &mut self.beyond_repair_margin,
            LossReason::BlockExpired(_) => &mut self.block_expired,
            LossReason::SessionExpired(_) => &mut self.session_expired,
            LossReason::SenderRestarted(_) => &mut self.sender_restarted,
            LossReason::ReceiverBehind(_) => &mut self.receiver_behind,
            LossReason::Aborted => &mut self.aborted,
            LossReason::DigestMismatch => &mut self.digest_mismatch,
            LossReason::TooManySessions
            | LossReason::ParametersRejected
            | LossReason::InterleaveTooDeep { .. } => &mut self.refused,
        };
        *counter += 1;
    }

    /// All losses counted.
    pub fn total(&self) -> u64 {
        self.beyond_repair_margin
            + self.block_expired
            + self.session_expired
            + self.sender_restarted
            + self.receiver_behind
            + self.aborted
            + self.digest_mismatch
            + self.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_message_names_the_block_the_counts_and_what_to_do() {
        let r = LossReason::BeyondRepairMargin(LostBlock {
            block: 460,
            received: 330,
            needed: Some(371),
        });
        let m = r.to_string();
        assert!(m.contains("block 460 (330 of the 371 symbols"), "{m}");
        assert!(m.contains("`interleave_depth`"), "{m}");
        let mut counts = LossCounts::default();
        counts.count(&r);
        counts.count(&LossReason::Aborted);
        assert_eq!(counts.beyond_repair_margin, 1);
        assert_eq!(counts.total(), 2);
    }
}
