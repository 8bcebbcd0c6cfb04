//! Fragments too large for the path. A message is cut into fragments for
//! the MTU the session has when its first fragment leaves, and each
//! fragment keeps its bytes (the receiver may hold any of them). When the
//! MTU falls back since (an MTU black hole, or a new path; see `mtu.rs`), a
//! fragment that no longer fits a packet leaves in parts (DataPart packets)
//! of the base size, which the receiver puts back together into the
//! fragment, then takes in as if it had come whole.
//!
//! A fragment's parts are cut the same way every time (at the base size,
//! which does not change), so the sender tracks which are acknowledged, a
//! bit each, and sends again only those lost. The receiver holds at most
//! [`MAX_INCOMING`] fragments being put back together, counted in the
//! endpoint's receive memory; a part of another waits, unacknowledged.

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use tracing::trace;

use crate::error::ProtocolViolation;
use crate::message::Fragment;
use crate::recovery::sent::SentKind;
use crate::wire::codec::varint_len;
use crate::wire::packet::{Data, DataPart, MAX_HEADER_LEN, Packet};
use crate::wire::stream::StreamId;

use super::SessionCore;

/// Fragments a receiver puts back together at once: a part of another is
/// dropped unacknowledged (its sender sends it again later).
pub(crate) const MAX_INCOMING: usize = 16;

/// Fragments in parts a sender tracks before it forgets those acknowledged
/// otherwise (sent whole again, or their stream gone).
const PRUNE_SPLITS: usize = 1024;

/// A fragment: stream, message, index.
type Key = (StreamId, u64, u32);

/// A fragment sent in parts, until every part is acknowledged.
#[derive(Debug)]
struct Split {
    /// The fragment's length, and the length of its parts (the last may be
    /// shorter): fixed when it is first split.
    len: usize,
    part: usize,
    /// Parts acknowledged, a bit each.
    acked: Vec<u64>,
    /// Queued to be sent again after the loss of a part, and not yet sent:
    /// the loss of another part needs no second retransmission.
    requeued: bool,
}

impl Split {
    fn parts(&self) -> usize {
        self.len.div_ceil(self.part)
    }

    fn is_acked(&self, k: usize) -> bool {
        self.acked
            .get(k / 64)
            .is_some_and(|w| w & (1 << (k % 64)) != 0)
    }

    /// Marks part `k` acknowledged; returns whether every part is.
    fn ack(&mut self, k: usize) -> bool {
        if let Some(w) = self.acked.get_mut(k / 64) {
            *w |= 1 << (k % 64);
        }
        (0..self.parts()).all(|k| self.is_acked(k))
    }
}

/// The fragment whose parts go out now.
#[derive(Debug)]
struct Sending {
    key: Key,
    count: u32,
    payload: Bytes,
    /// The next part to consider.
    next: usize,
}

/// A fragment being put back together.
#[derive(Debug)]
struct Incoming {
    key: Key,
    count: u32,
    data: Vec<u8>,
    /// Byte ranges received, sorted, disjoint and not adjacent.
    have: Vec<(usize, usize)>,
}

impl Incoming {
    fn add(&mut self, start: usize, end: usize) {
        let (mut start, mut end) = (start, end);
        self.have.retain(|&(s, e)| {
            let apart = e < start || s > end;
            if !apart {
                start = start.min(s);
                end = end.max(e);
            }
            apart
        });
        let at = self.have.partition_point(|&(s, _)| s < start);
        self.have.insert(at, (start, end));
    }

    fn is_complete(&self) -> bool {
        self.have == [(0, self.data.len())]
    }
}

/// Both directions' fragments in parts (boxed in the session, which has
/// none most of its life).
#[derive(Debug, Default)]
pub(super) struct Parts {
    splits: HashMap<Key, Split>,
    sending: Option<Sending>,
    incoming: Vec<Incoming>,
    /// Bytes `incoming` holds, counted in the endpoint's receive memory.
    held: u64,
}

impl Parts {
    fn is_empty(&self) -> bool {
        self.splits.is_empty() && self.sending.is_none() && self.incoming.is_empty()
    }

    /// The bytes held for fragments being put back together.
    pub(super) fn held(&self) -> u64 {
        self.held
    }
}

/// The fields of a Data packet of `f` but its payload.
pub(super) fn data_fields(stream: StreamId, f: &Fragment) -> usize {
    varint_len(stream.0)
        + varint_len(f.message)
        + varint_len(u64::from(f.index))
        + varint_len(u64::from(f.count))
}

impl SessionCore {
    /// Starts sending `fragment` of stream `id` in parts, and sends the first.
    pub(super) fn send_in_parts(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        id: StreamId,
        fragment: Fragment,
    ) -> Option<usize> {
        let key = (id, fragment.message, fragment.index);
        let len = fragment.payload.len();
        // A part of the base size: what every packet may be.
        let room = self.pmtu.base() - MAX_HEADER_LEN - self.protection.overhead();
        let fields = data_fields(id, &fragment) + 2 * varint_len(len as u64);
        let part = room.saturating_sub(fields).max(1);
        let streams = &self.streams;
        let parts = self.parts.get_or_insert_with(Default::default);
        if parts.splits.len() >= PRUNE_SPLITS {
            parts
                .splits
                .retain(|&(s, m, i), _| streams.get(&s).is_some_and(|st| st.send.is_unacked(m, i)));
        }
        let split = parts.splits.entry(key).or_insert_with(|| Split {
            len,
            part,
            acked: vec![0; len.div_ceil(part).div_ceil(64)],
            requeued: false,
        });
        split.requeued = false;
        trace!(session = %self.id, stream = %id, message = fragment.message, index = fragment.index, len, "fragment sent in parts");
        parts.sending = Some(Sending {
            key,
            count: fragment.count,
            payload: fragment.payload,
            next: 0,
        });
        self.stats.fragments_split += 1;
        self.poll_part(now, buf)
    }

    /// The next part not yet acknowledged of the fragment going out in
    /// parts, if one is.
    pub(super) fn poll_part(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        let parts = self.parts.as_deref_mut()?;
        let sending = parts.sending.as_mut()?;
        let next = parts.splits.get(&sending.key).and_then(|split| {
            let k = (sending.next..split.parts()).find(|&k| !split.is_acked(k))?;
            Some((k, split.parts(), split.part, split.len))
        });
        let Some((k, total, part, len)) = next else {
            parts.sending = None;
            return None;
        };
        let offset = k * part;
        let payload = sending.payload.slice(offset..(offset + part).min(len));
        let (stream, message, index) = sending.key;
        let count = sending.count;
        sending.next = k + 1;
        if sending.next >= total {
            parts.sending = None;
        }
        let p = Packet::DataPart(DataPart {
            stream,
            message,
            fragment: index,
            fragments: count,
            // Below MAX_FRAGMENT_LEN: the fragment left whole once.
            fragment_len: len as u32,
            offset: offset as u32,
            payload,
        });
        let (pn, size) = self.emit(buf, &p);
        self.on_sent(
            now,
            pn,
            size,
            SentKind::Part {
                stream,
                message,
                index,
                offset: offset as u16,
            },
        );
        Some(size)
    }

    /// The parts of `acked` were acknowledged: the fragments every part of
    /// which now is count as acknowledged.
    pub(super) fn on_parts_acked(&mut self, acked: &[(StreamId, u64, u32, u16)]) {
        let mut ended = Vec::new();
        for &(stream, message, index, offset) in acked {
            let Some(parts) = self.parts.as_deref_mut() else {
                return;
            };
            let key = (stream, message, index);
            let Some(split) = parts.splits.get_mut(&key) else {
                continue;
            };
            if !split.ack(usize::from(offset) / split.part) {
                continue;
            }
            parts.splits.remove(&key);
            if let Some(s) = self.streams.get_mut(&stream) {
                s.send.on_acked(message, index);
                if s.send_closed && s.send.is_empty() {
                    ended.push(stream);
                }
            }
        }
        for id in ended {
            self.check_stream_end(id);
        }
        self.tidy_parts();
    }

    /// Fragment `key` was acknowledged whole: its parts are moot.
    pub(super) fn on_whole_acked(&mut self, stream: StreamId, message: u64, index: u32) {
        if let Some(parts) = self.parts.as_deref_mut()
            && parts.splits.remove(&(stream, message, index)).is_some()
        {
            self.tidy_parts();
        }
    }

    /// A part of fragment `key` was lost: the fragment goes out again (its
    /// parts not yet acknowledged), once for all its parts lost meanwhile.
    pub(super) fn on_part_lost(&mut self, stream: StreamId, message: u64, index: u32) {
        if let Some(split) = self
            .parts
            .as_deref_mut()
            .and_then(|p| p.splits.get_mut(&(stream, message, index)))
        {
            if split.requeued {
                return;
            }
            split.requeued = true;
        }
        if let Some(s) = self.streams.get_mut(&stream) {
            s.send.on_lost(message, index);
        }
    }

    /// Whether fragment `key` arrived already, or never will be wanted (its
    /// stream is over): a part of it is a duplicate.
    fn fragment_done(&self, (stream, message, index): Key) -> bool {
        if let Some(s) = self.streams.get(&stream) {
            return s.recv.has_fragment(message, index);
        }
        let Some(kind) = stream.kind() else {
            return true;
        };
        let k = kind.bits() as usize;
        if stream.opener() == self.side {
            stream.sequence() < self.next_local_seq[k]
        } else {
            stream.sequence() < self.next_peer_seq[k]
        }
    }

    /// Whether part `p` can be taken in: it belongs to a fragment being put
    /// back together, or to one done, or there is room for a new one (a
    /// free place of [`MAX_INCOMING`], and the fragment's length within the
    /// endpoint's receive memory). Checked before the packet is
    /// acknowledged: a part refused is sent again.
    pub(super) fn part_admissible(&mut self, p: &DataPart) -> bool {
        let key = (p.stream, p.message, p.fragment);
        if self.fragment_done(key) {
            return true;
        }
        let Some(parts) = self.parts.as_deref() else {
            return self.room_for_part(p);
        };
        if parts.incoming.iter().any(|i| i.key == key) {
            return true;
        }
        if parts.incoming.len() >= MAX_INCOMING {
            // Forget fragments that arrived whole meanwhile, or whose stream
            // is over.
            let stale: Vec<Key> = parts
                .incoming
                .iter()
                .map(|i| i.key)
                .filter(|&k| self.fragment_done(k))
                .collect();
            for k in stale {
                self.drop_incoming(k);
            }
        }
        self.parts
            .as_deref()
            .is_none_or(|parts| parts.incoming.len() < MAX_INCOMING)
            && self.room_for_part(p)
    }

    fn room_for_part(&self, p: &DataPart) -> bool {
        self.shared.recv_memory.used() + u64::from(p.fragment_len)
            <= self.config.max_recv_memory as u64
    }

    /// Forgets the fragment `key` being put back together.
    fn drop_incoming(&mut self, key: Key) {
        if let Some(parts) = self.parts.as_deref_mut()
            && let Some(i) = parts.incoming.iter().position(|i| i.key == key)
        {
            let gone = parts.incoming.swap_remove(i);
            let held = parts.held - gone.data.len() as u64;
            self.shared.recv_memory.update(parts.held, held);
            parts.held = held;
        }
        self.tidy_parts();
    }

    /// Takes in a part (admitted by [`part_admissible`](Self::part_admissible)):
    /// once its fragment is whole, the fragment goes on as a Data packet's.
    pub(super) fn on_data_part(&mut self, now: Instant, p: DataPart) {
        let key = (p.stream, p.message, p.fragment);
        if self.fragment_done(key) {
            self.stats.duplicates += 1;
            return;
        }
        let len = p.fragment_len as usize;
        let parts = self.parts.get_or_insert_with(Default::default);
        let i = match parts.incoming.iter().position(|i| i.key == key) {
            Some(i) => i,
            None => {
                parts.incoming.push(Incoming {
                    key,
                    count: p.fragments,
                    data: vec![0; len],
                    have: Vec::new(),
                });
                let held = parts.held + len as u64;
                self.shared.recv_memory.update(parts.held, held);
                parts.held = held;
                parts.incoming.len() - 1
            }
        };
        let incoming = &mut parts.incoming[i];
        if incoming.count != p.fragments || incoming.data.len() != len {
            // Another cut of the same fragment: a sender keeps its bytes.
            self.violation(now, ProtocolViolation::BadFragment);
            return;
        }
        // Within the fragment: the decoder checked `offset + len <= fragment_len`.
        let start = p.offset as usize;
        let end = start + p.payload.len();
        incoming.data[start..end].copy_from_slice(&p.payload);
        incoming.add(start, end);
        if !incoming.is_complete() {
            return;
        }
        let whole = parts.incoming.swap_remove(i);
        let held = parts.held - len as u64;
        self.shared.recv_memory.update(parts.held, held);
        parts.held = held;
        self.tidy_parts();
        let (stream, message, fragment) = whole.key;
        self.on_data(
            now,
            Data {
                stream,
                message,
                fragment,
                fragments: whole.count,
                payload: Bytes::from(whole.data),
            },
        );
    }

    /// Frees the parts' state once nothing is in parts.
    fn tidy_parts(&mut self) {
        if self.parts.as_deref().is_some_and(Parts::is_empty) {
            self.parts = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::session::SessionEvent;
    use crate::session::test_pair::{Pair, STARTER, drain, events};
    use crate::wire::packet::{Header, PacketKind};

    fn incoming(len: usize) -> Incoming {
        Incoming {
            key: (StreamId::DEFAULT, 0, 0),
            count: 1,
            data: vec![0; len],
            have: Vec::new(),
        }
    }

    #[test]
    fn parts_in_any_order_and_overlapping_complete_a_fragment_once_every_byte_is_here() {
        let mut f = incoming(100);
        f.add(50, 80);
        f.add(0, 20);
        assert!(!f.is_complete());
        f.add(10, 50);
        assert_eq!(f.have, vec![(0, 80)]);
        f.add(90, 100);
        assert!(!f.is_complete());
        f.add(79, 91);
        assert!(f.is_complete());
    }

    #[test]
    fn a_split_fragment_is_acknowledged_once_every_part_is() {
        let mut s = Split {
            len: 1420,
            part: 1170,
            acked: vec![0],
            requeued: false,
        };
        assert_eq!(s.parts(), 2);
        assert!(!s.ack(1));
        assert!(!s.ack(1), "twice the same part");
        assert!(s.ack(0));
        // A fragment of many parts (a jumbo fragment after a fall back).
        let mut s = Split {
            len: 65_507,
            part: 500,
            acked: vec![0; 3],
            requeued: false,
        };
        let n = s.parts();
        assert_eq!(n, 132);
        assert!((0..n - 1).all(|k| !s.ack(k)));
        assert!(s.ack(n - 1));
    }

    #[test]
    fn a_fragment_cut_for_a_larger_mtu_goes_out_in_parts_after_a_fall_back_and_arrives_whole() {
        let mut pair = Pair::established(Config::default());
        let now = pair.now;
        let message: Bytes = (0..20_000u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<_>>()
            .into();
        pair.starter
            .send(StreamId::DEFAULT, message.clone())
            .unwrap();
        // The message is cut for 1452 bytes, and its first fragment leaves;
        // then the MTU falls back to the base.
        pair.starter.mtu = 1452;
        let mut buf = Vec::new();
        let first = pair.starter.poll_transmit(now, &mut buf).unwrap();
        assert!(first > 1400, "{first}");
        pair.starter.mtu = pair.starter.pmtu.base();
        let rest = drain(&mut pair.starter, now);
        assert!(rest.iter().all(|d| d.len() <= 1200));
        assert!(pair.starter.stats().fragments_split >= 4);
        // The first fragment is lost; every part arrives.
        for d in rest {
            let r = crate::session::test_pair::open(&pair.listener, &d);
            pair.listener
                .handle_packet(now, STARTER, r.header, r.ack, r.packet, r.len, 0);
        }
        pair.exchange();
        // The lost fragment goes again, in parts too.
        let later = now + std::time::Duration::from_secs(2);
        pair.starter.handle_timeout(later);
        pair.now = later;
        pair.exchange();
        assert!(events(&mut pair.listener).contains(&SessionEvent::Readable));
        assert_eq!(pair.listener.recv(StreamId::DEFAULT), Some(message));
        // Once the parts are acknowledged, the sender forgets them.
        assert!(pair.starter.parts.is_none());
        assert_eq!(pair.listener.shared.recv_memory.used(), 0);
    }

    #[test]
    fn a_receiver_puts_together_at_most_sixteen_fragments_and_leaves_parts_of_others_unacknowledged()
     {
        let mut pair = Pair::established(Config::default());
        let now = pair.now;
        let id = pair.listener.id;
        let part = |message: u64, offset: u32| DataPart {
            stream: StreamId::DEFAULT,
            message,
            fragment: 0,
            fragments: 2,
            fragment_len: 2000,
            offset,
            payload: Bytes::from(vec![message as u8; 1000]),
        };
        let deliver = |pair: &mut Pair, pn: u64, p: DataPart| {
            let header = Header {
                kind: PacketKind::DataPart,
                session: id,
                number: pn,
                with_ack: false,
                key_phase: false,
            };
            pair.listener
                .handle_packet(now, STARTER, header, None, Packet::DataPart(p), 1100, 0);
        };
        for m in 0..20 {
            deliver(&mut pair, 100 + m, part(m, 0));
        }
        let parts = pair.listener.parts.as_deref().unwrap();
        assert_eq!(parts.incoming.len(), MAX_INCOMING);
        assert_eq!(pair.listener.stats().dropped_recv_memory, 4);
        let held = pair.listener.shared.recv_memory.used();
        assert_eq!(held, MAX_INCOMING as u64 * 2000);
        // The second half of message 3's first fragment completes it: it is
        // taken in as a fragment (its message reserves its room as any
        // does), and the parts' room is freed.
        deliver(&mut pair, 200, part(3, 1000));
        let parts = pair.listener.parts.as_deref().unwrap();
        assert_eq!(parts.incoming.len(), MAX_INCOMING - 1);
        assert_eq!(parts.held(), held - 2000);
        // A part of a fragment already here is a duplicate.
        let dups = pair.listener.stats().duplicates;
        deliver(&mut pair, 201, part(3, 0));
        assert_eq!(pair.listener.stats().duplicates, dups + 1);
        // Another cut of a fragment under way breaks the protocol.
        let mut bad = part(4, 1000);
        bad.fragment_len = 3000;
        deliver(&mut pair, 202, bad);
        assert!(matches!(pair.listener.state(), crate::State::Closing));
    }
}
