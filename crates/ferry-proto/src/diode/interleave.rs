//! Interleaving: the order in which the sender spreads the datagrams of a
//! group of blocks over the wire, so that a burst of lost datagrams costs each
//! block a share of it.

use super::sender::EncodedBlock;

/// One block of the group going out, and how many of its datagrams went.
#[derive(Debug)]
pub(super) struct GroupBlock {
    pub(super) block: EncodedBlock,
    pub(super) sent: usize,
    pub(super) total: usize,
}

/// Whether the next datagram of a block that sent `a.0` of its `a.1` is due
/// before that of one that sent `b.0` of `b.1`: each block's datagrams are
/// spread evenly over its group, the `i`-th of `n` due at `(i + ½) / n` of it.
pub(super) fn due_before(a: (usize, usize), b: (usize, usize)) -> bool {
    ((2 * a.0 + 1) as u64 * b.1 as u64) < ((2 * b.0 + 1) as u64 * a.1 as u64)
}

/// The order in which a [`Sender`](super::Sender) interleaves the datagrams of one group of
/// blocks, `totals[i]` datagrams for block `i`: for each datagram in turn,
/// the index of its block. Each block's datagrams are spread evenly over the
/// group (ties go to the earlier block), so equal blocks take turns and a
/// burst of `B` datagrams costs each of `n` blocks about `B / n` of them.
/// Within a block, source symbols go first, then repair symbols.
///
/// ```
/// use ferry_proto::diode::interleave_order;
///
/// assert_eq!(interleave_order(&[2, 2, 2]), [0, 1, 2, 0, 1, 2]);
/// assert_eq!(interleave_order(&[4, 2]), [0, 1, 0, 0, 1, 0]);
/// ```
pub fn interleave_order(totals: &[usize]) -> Vec<usize> {
    let mut sent = vec![0; totals.len()];
    let mut order = Vec::with_capacity(totals.iter().sum());
    loop {
        let mut pick: Option<usize> = None;
        for (i, (&s, &t)) in sent.iter().zip(totals).enumerate() {
            if s < t && pick.is_none_or(|p| due_before((s, t), (sent[p], totals[p]))) {
                pick = Some(i);
            }
        }
        let Some(i) = pick else {
            return order;
        };
        sent[i] += 1;
        order.push(i);
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::diode::{DiodeConfig, Sender, wire};

    fn small(depth: usize) -> DiodeConfig {
        DiodeConfig {
            block_size: 8192,
            interleave_depth: depth,
            ..DiodeConfig::default()
        }
    }

    /// The block number of every symbol datagram sent now.
    fn sent_blocks(sender: &mut Sender, now: Instant) -> Vec<u64> {
        let mut buf = vec![0; 65_536];
        let mut blocks = Vec::new();
        while let Some(t) = sender.poll_transmit(now, &mut buf) {
            for d in buf[..t.len].chunks(t.segment_size) {
                if let Ok(wire::DiodePacket::Symbol { header, .. }) = wire::decode(d) {
                    assert_eq!(
                        usize::from(header.interleave),
                        sender.config().interleave_depth
                    );
                    blocks.push(header.block);
                }
            }
        }
        blocks
    }

    #[test]
    fn a_group_goes_out_in_interleave_order() {
        let t0 = crate::test_support::epoch();
        let mut sender = Sender::new(small(4), 1, t0).unwrap();
        let id = sender.open().unwrap();
        assert_eq!(
            sender.write(id, &[7; 3 * 8192 + 100]).unwrap(),
            3 * 8192 + 100
        );
        sender.finish(id).unwrap();
        sender.encode_pending();
        let sent = sent_blocks(&mut sender, t0);
        // Three blocks of 6 source and 1 repair symbols, and the last one
        // (100 bytes and the trailer) of 1 and 1.
        let expected: Vec<u64> = interleave_order(&[7, 7, 7, 2])
            .into_iter()
            .map(|i| i as u64)
            .collect();
        assert_eq!(sent, expected);
        // Spread evenly: the short last block's two datagrams are a quarter
        // and three quarters of the way through.
        assert_eq!(&sent[..7], [0, 1, 2, 0, 1, 2, 3]);
        assert!(sender.is_idle());
    }

    #[test]
    fn a_full_block_waits_for_its_group_until_a_flush_or_a_heartbeat() {
        let t0 = crate::test_support::epoch();
        let mut sender = Sender::new(small(4), 1, t0).unwrap();
        let id = sender.open().unwrap();
        sender.write(id, &[1; 8192]).unwrap();
        sender.encode_pending();
        assert!(
            sent_blocks(&mut sender, t0).is_empty(),
            "waits for its group"
        );
        assert!(sender.flush(id).unwrap(), "the flush releases it");
        assert_eq!(sent_blocks(&mut sender, t0).len(), 7);
        assert!(!sender.flush(id).unwrap(), "nothing left to release");

        sender.write(id, &[2; 8192]).unwrap();
        sender.encode_pending();
        let t1 = t0 + Duration::from_millis(10);
        assert!(sent_blocks(&mut sender, t1).is_empty());
        let wake = sender.poll_timeout().unwrap();
        assert!(wake <= t1 + sender.config().heartbeat, "{:?}", wake - t1);
        let later = t1 + sender.config().heartbeat;
        sender.handle_timeout(later);
        assert_eq!(
            sent_blocks(&mut sender, later).len(),
            7,
            "a heartbeat at most"
        );
    }

    #[test]
    fn an_aborted_session_leaves_its_group_at_once() {
        let t0 = crate::test_support::epoch();
        let mut sender = Sender::new(small(4), 1, t0).unwrap();
        let a = sender.open().unwrap();
        let b = sender.open().unwrap();
        sender.write(a, &[1; 2 * 8192]).unwrap();
        sender.write(b, &[2; 2 * 8192]).unwrap();
        sender.encode_pending();
        // A heartbeat, then four symbols: one of each block.
        let mut buf = vec![0; 4 * 1500];
        assert!(sender.poll_transmit(t0, &mut buf).is_some());
        assert_eq!(
            sender
                .poll_transmit(t0, &mut buf)
                .map(|t| t.len / t.segment_size),
            Some(4)
        );
        sender.abort(a).unwrap();
        let mut buf = vec![0; 65_536];
        let mut sessions = Vec::new();
        while let Some(t) = sender.poll_transmit(t0, &mut buf) {
            for d in buf[..t.len].chunks(t.segment_size) {
                if let Ok(wire::DiodePacket::Symbol { header, .. }) = wire::decode(d) {
                    sessions.push(header.session);
                }
            }
        }
        assert_eq!(sessions.len(), 2 * 7 - 2, "the rest of b's two blocks");
        assert!(sessions.iter().all(|&s| s == b.0));
    }
}
