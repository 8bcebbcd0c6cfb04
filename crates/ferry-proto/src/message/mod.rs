//! Messages ("batches"): cutting them into fragments on the way out, putting them
//! back together on the way in.
//!
//! Flow control counts the *cost* of fragments: payload length plus
//! [`FRAGMENT_COST`]. Both sides compute it the same way, so the receiver can hold
//! the sender to the credit it granted.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;

use crate::config::{FRAGMENT_COST, MIN_FRAGMENT_PAYLOAD};
use crate::endpoint::pool::BufferPool;
use crate::error::ProtocolViolation;
use crate::wire::codec::varint_len;
use crate::wire::stream::StreamId;

// Early data (resumption): the first messages of a queue, sent otherwise.
mod early;

/// Flow-control cost of a fragment carrying `len` payload bytes.
pub(crate) fn fragment_cost(len: usize) -> u64 {
    len as u64 + FRAGMENT_COST
}

/// Largest payload of a fragment of message `number` (of `len` bytes), given the
/// room left in a packet after header and trailer.
pub(crate) fn fragment_size(room: usize, stream: StreamId, number: u64, len: usize) -> usize {
    let max_count = (len / MIN_FRAGMENT_PAYLOAD + 1) as u64;
    let fields = varint_len(stream.0) + varint_len(number) + 2 * varint_len(max_count);
    room.saturating_sub(fields).max(MIN_FRAGMENT_PAYLOAD)
}

#[derive(Debug)]
struct Outgoing {
    number: u64,
    data: Bytes,
    /// Fixed when the first fragment leaves (the path MTU is known by then).
    frag_size: usize,
    count: u32,
    acked: Vec<u64>,
    acked_count: u32,
    next_unsent: u32,
    /// Unreliable streams: a fragment was lost and given up.
    given_up: bool,
}

impl Outgoing {
    fn is_acked(&self, idx: u32) -> bool {
        self.acked
            .get(idx as usize / 64)
            .is_some_and(|w| w & (1 << (idx % 64)) != 0)
    }

    fn payload(&self, idx: u32) -> Bytes {
        let start = idx as usize * self.frag_size;
        let end = (start + self.frag_size).min(self.data.len());
        self.data.slice(start..end)
    }

    fn complete(&self) -> bool {
        self.count > 0 && self.acked_count == self.count
    }
}

/// A fragment chosen to be sent.
#[derive(Debug, Clone)]
pub(crate) struct Fragment {
    pub(crate) message: u64,
    pub(crate) index: u32,
    pub(crate) count: u32,
    pub(crate) payload: Bytes,
    /// Whether this is the fragment's first transmission (it then consumes credit).
    pub(crate) first: bool,
}

/// Messages queued for sending, kept until every fragment is acknowledged (or,
/// on an unreliable stream, acknowledged or lost).
#[derive(Debug, Default)]
pub(crate) struct SendQueue {
    /// The stream the messages belong to (its id is in every fragment).
    stream: StreamId,
    /// Lost fragments are given up rather than sent again.
    unreliable: bool,
    messages: VecDeque<Outgoing>,
    next_number: u64,
    buffered: usize,
    /// Index in `messages` of the first message with fragments never sent.
    cursor: usize,
    retransmit: VecDeque<(u64, u32)>,
    /// Messages released from the front, every fragment acknowledged (or,
    /// on an unreliable stream, given up): `0..acknowledged` are settled.
    acknowledged: u64,
    /// Of those, messages with a fragment given up (unreliable streams).
    given_up: u64,
    /// Messages dropped unacknowledged by [`clear`](Self::clear).
    dropped: u64,
}

/// How far the peer acknowledged what this side sent on a stream (or, from
/// [`Session::send_totals`](crate::Session::send_totals), on every stream of
/// the session): see [`Session::send_progress`](crate::Session::send_progress).
///
/// Messages settle in the order they were queued: messages
/// `0..acknowledged` are settled, and `acknowledged + dropped <= queued`,
/// the rest still waiting for the peer's acknowledgement. A message sent
/// before another never settles after it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct SendProgress {
    /// Messages queued by `send` since the stream opened.
    pub queued: u64,
    /// The first `acknowledged` of them: every fragment acknowledged by the
    /// peer's endpoint, which then holds the message for its application
    /// (acknowledged is not read: the peer's application may not have taken
    /// it yet). On an unreliable stream this also counts messages with a
    /// fragment lost and given up ([`given_up`](Self::given_up)).
    pub acknowledged: u64,
    /// Of the acknowledged messages, those of an unreliable stream with a
    /// fragment lost and not sent again: the peer may never have them.
    /// Always 0 on a reliable stream.
    pub given_up: u64,
    /// Messages dropped before their acknowledgement, by a reset of the
    /// stream, the peer's refusal of it or the session's close: they will
    /// never be acknowledged. Once a stream's sending is reset (or refused,
    /// or its session closed) nothing more is queued, so `acknowledged`
    /// stays short of `queued` by exactly `dropped`.
    pub dropped: u64,
    /// 1 once the peer acknowledged this side's finish of the stream (it
    /// then knows `queued` is the stream's final count; a finish leaves
    /// only after every message is acknowledged), else 0. In
    /// [`send_totals`](crate::Session::send_totals): how many streams.
    pub finishes_acknowledged: u64,
}

impl SendProgress {
    /// Messages neither settled nor dropped: still waiting for the peer.
    pub fn pending(&self) -> u64 {
        self.queued - self.acknowledged - self.dropped
    }

    /// Whether every message queued was acknowledged by the peer: none is
    /// pending, none was dropped, none given up.
    pub fn is_complete(&self) -> bool {
        self.acknowledged == self.queued && self.given_up == 0
    }

    /// The sum of two streams' progress.
    pub(crate) fn add(self, other: Self) -> Self {
        Self {
            queued: self.queued + other.queued,
            acknowledged: self.acknowledged + other.acknowledged,
            given_up: self.given_up + other.given_up,
            dropped: self.dropped + other.dropped,
            finishes_acknowledged: self.finishes_acknowledged + other.finishes_acknowledged,
        }
    }
}

impl SendQueue {
    /// An empty queue for `stream`.
    pub(crate) fn new(stream: StreamId, unreliable: bool) -> Self {
        Self {
            stream,
            unreliable,
            ..Self::default()
        }
    }

    /// How many messages were queued, settled and dropped.
    pub(crate) fn progress(&self) -> SendProgress {
        SendProgress {
            queued: self.next_number,
            acknowledged: self.acknowledged,
            given_up: self.given_up,
            dropped: self.dropped,
            finishes_acknowledged: 0,
        }
    }

    /// Whether a lost fragment waits to be sent again.
    pub(crate) fn has_retransmit(&self) -> bool {
        !self.retransmit.is_empty()
    }

    /// Bytes of messages not yet fully acknowledged.
    pub(crate) fn buffered(&self) -> usize {
        self.buffered
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.messages.is_empty()
    }

    /// Queues a message; returns its number.
    pub(crate) fn push(&mut self, data: Bytes) -> u64 {
        let number = self.next_number;
        self.next_number += 1;
        self.buffered += data.len();
        self.messages.push_back(Outgoing {
            number,
            data,
            frag_size: 0,
            count: 0,
            acked: Vec::new(),
            acked_count: 0,
            next_unsent: 0,
            given_up: false,
        });
        number
    }

    fn get(&self, number: u64) -> Option<&Outgoing> {
        let front = self.messages.front()?.number;
        self.messages
            .get(usize::try_from(number.checked_sub(front)?).ok()?)
    }

    fn get_mut(&mut self, number: u64) -> Option<&mut Outgoing> {
        let front = self.messages.front()?.number;
        self.messages
            .get_mut(usize::try_from(number.checked_sub(front)?).ok()?)
    }

    /// Whether fragments never sent are waiting (they need credit).
    pub(crate) fn has_unsent(&self) -> bool {
        self.cursor < self.messages.len()
    }

    /// Picks the next fragment to send: retransmissions first, then new data if its
    /// cost fits in `credit`. `room` is the payload room of one packet.
    pub(crate) fn next_fragment(&mut self, room: usize, credit: u64) -> Option<Fragment> {
        while let Some((number, index)) = self.retransmit.pop_front() {
            let Some(m) = self.get(number) else { continue };
            if m.is_acked(index) {
                continue;
            }
            return Some(Fragment {
                message: number,
                index,
                count: m.count,
                payload: m.payload(index),
                first: false,
            });
        }
        let m = self.messages.get_mut(self.cursor)?;
        if m.count == 0 {
            m.frag_size = fragment_size(room, self.stream, m.number, m.data.len());
            let count = m.data.len().div_ceil(m.frag_size).max(1);
            m.count = u32::try_from(count).expect("max_message_size bounds the count");
            m.acked = vec![0; count.div_ceil(64)];
        }
        let payload = m.payload(m.next_unsent);
        if fragment_cost(payload.len()) > credit {
            return None;
        }
        let fragment = Fragment {
            message: m.number,
            index: m.next_unsent,
            count: m.count,
            payload,
            first: true,
        };
        m.next_unsent += 1;
        if m.next_unsent == m.count {
            self.cursor += 1;
        }
        Some(fragment)
    }

    /// Cost of the next never-sent fragment, if one waits and its size is known.
    pub(crate) fn next_unsent_cost(&self, room: usize) -> Option<u64> {
        let m = self.messages.get(self.cursor)?;
        let size = if m.count == 0 {
            fragment_size(room, self.stream, m.number, m.data.len())
        } else {
            m.frag_size
        };
        let start = m.next_unsent as usize * size;
        Some(fragment_cost(
            (m.data.len() - start.min(m.data.len())).min(size),
        ))
    }

    /// Whether fragment `index` of message `number` is still queued and not
    /// acknowledged.
    pub(crate) fn is_unacked(&self, number: u64, index: u32) -> bool {
        self.get(number)
            .is_some_and(|m| index < m.count && !m.is_acked(index))
    }

    /// A fragment was acknowledged. Returns the number of messages that became
    /// fully acknowledged and were released.
    pub(crate) fn on_acked(&mut self, number: u64, index: u32) -> usize {
        self.settle(number, index, false)
    }

    /// A fragment was acknowledged, or (`given_up`) lost on an unreliable
    /// stream; releases the messages now complete at the front.
    fn settle(&mut self, number: u64, index: u32, given_up: bool) -> usize {
        let Some(m) = self.get_mut(number) else {
            return 0;
        };
        if index >= m.count || m.is_acked(index) {
            return 0;
        }
        m.acked[index as usize / 64] |= 1 << (index % 64);
        m.acked_count += 1;
        m.given_up |= given_up;
        let mut released = 0;
        while self.messages.front().is_some_and(Outgoing::complete) {
            let m = self.messages.pop_front().expect("front exists");
            self.buffered -= m.data.len();
            self.cursor = self.cursor.saturating_sub(1);
            self.acknowledged += 1;
            self.given_up += u64::from(m.given_up);
            released += 1;
        }
        released
    }

    /// A fragment's packet was lost: send it again unless acknowledged
    /// meanwhile — or, on an unreliable stream, give it up (the message can no
    /// longer arrive whole; it is released as if acknowledged, and counted
    /// as given up).
    pub(crate) fn on_lost(&mut self, number: u64, index: u32) {
        if self.unreliable {
            self.settle(number, index, true);
        } else if self.get(number).is_some_and(|m| !m.is_acked(index)) {
            self.retransmit.push_back((number, index));
        }
    }

    /// Drops everything queued (the session closed).
    pub(crate) fn clear(&mut self) {
        self.dropped += self.messages.len() as u64;
        self.messages.clear();
        self.retransmit.clear();
        self.buffered = 0;
        self.cursor = 0;
    }
}

#[derive(Debug)]
struct Incoming {
    count: u32,
    /// Fragments `0..contiguous` are all here, copied into `assembled` in
    /// order.
    contiguous: u32,
    /// The message so far: the payloads of fragments `0..contiguous`.
    assembled: Vec<u8>,
    /// Fragments that arrived ahead of a missing one, sorted by index (each
    /// above `contiguous`), each copied into its own buffer so that it holds
    /// no receive buffer of the driver's.
    ahead: VecDeque<(u32, Bytes)>,
    bytes: usize,
    cost: u64,
    /// Bytes reserved for `assembled` up front, counted in
    /// [`Reassembly::reserved`].
    reserved: usize,
}

impl Incoming {
    fn is_complete(&self) -> bool {
        self.contiguous == self.count
    }

    /// Whether fragment `index` is already here.
    fn has(&self, index: u32) -> bool {
        index < self.contiguous || self.ahead.binary_search_by_key(&index, |f| f.0).is_ok()
    }
}

/// What became of a received fragment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// New data, of this flow-control cost.
    New(u64),
    /// Already received (or already delivered): dropped.
    Duplicate,
}

/// In which order a stream releases complete messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Delivery {
    /// In order, each exactly once.
    Ordered,
    /// As soon as each is complete, each exactly once.
    Unordered,
    /// Only a message newer than every one released before; older ones, and
    /// incomplete ones once a newer is complete, are dropped.
    Latest,
}

/// Incomplete messages a latest-only stream keeps.
const LATEST_PENDING: usize = 4;

/// Reassembles messages and releases them exactly once, in the stream's order.
#[derive(Debug)]
pub(crate) struct Reassembly {
    delivery: Delivery,
    /// Messages below this one were all released (ordered, unordered) or
    /// are obsolete (latest).
    next_deliver: u64,
    /// Unordered: released messages at or above `next_deliver`.
    released_above: BTreeSet<u64>,
    /// Unordered and latest: complete messages waiting to be released.
    complete: VecDeque<u64>,
    /// Latest: messages dropped unfinished or obsolete.
    dropped: u64,
    pending: BTreeMap<u64, Incoming>,
    max_message_size: usize,
    max_fragments: u32,
    /// The furthest fragment received, in (message, fragment) order.
    highest: Option<(u64, u32)>,
    /// Bytes reserved up front for messages being assembled (each sized
    /// from its first fragment), at most `reserve_budget`: a peer announcing
    /// large messages it never sends cannot make the receiver hold more than
    /// that beyond what it did send.
    reserved: usize,
    reserve_budget: usize,
}

impl Reassembly {
    #[cfg(test)]
    pub(crate) fn new(max_message_size: usize) -> Self {
        Self::with_delivery(max_message_size, Delivery::Ordered, max_message_size)
    }

    /// A reassembly releasing messages in `delivery` order, reserving at most
    /// `reserve_budget` bytes ahead of their arrival (the stream's receive
    /// window is the natural bound: a peer keeping to it never needs more).
    pub(crate) fn with_delivery(
        max_message_size: usize,
        delivery: Delivery,
        reserve_budget: usize,
    ) -> Self {
        Self {
            delivery,
            next_deliver: 0,
            released_above: BTreeSet::new(),
            complete: VecDeque::new(),
            dropped: 0,
            pending: BTreeMap::new(),
            max_message_size,
            max_fragments: u32::try_from(max_message_size / MIN_FRAGMENT_PAYLOAD + 1)
                .unwrap_or(u32::MAX),
            highest: None,
            reserved: 0,
            reserve_budget,
        }
    }

    /// Takes in one fragment, with a fresh buffer pool.
    #[cfg(test)]
    pub(crate) fn on_fragment(
        &mut self,
        message: u64,
        index: u32,
        count: u32,
        payload: Bytes,
    ) -> Result<Accepted, ProtocolViolation> {
        self.on_fragment_with(message, index, count, payload, &BufferPool::default())
    }

    /// The next message the stream's order releases, with a fresh buffer pool.
    #[cfg(test)]
    pub(crate) fn pop_ready(&mut self) -> Option<(Bytes, u64)> {
        self.pop_ready_with(&BufferPool::default())
    }

    /// Takes in one fragment. A message's buffer comes from `pool`.
    pub(crate) fn on_fragment_with(
        &mut self,
        message: u64,
        index: u32,
        count: u32,
        payload: Bytes,
        pool: &BufferPool,
    ) -> Result<Accepted, ProtocolViolation> {
        if message < self.next_deliver || self.released_above.contains(&message) {
            return Ok(Accepted::Duplicate);
        }
        if count > self.max_fragments {
            return Err(ProtocolViolation::MessageTooLarge);
        }
        if index + 1 < count && payload.len() < MIN_FRAGMENT_PAYLOAD {
            return Err(ProtocolViolation::BadFragment);
        }
        if index >= count {
            return Err(ProtocolViolation::BadFragment);
        }
        let entry = self.pending.entry(message).or_insert_with(|| Incoming {
            count,
            contiguous: 0,
            assembled: Vec::new(),
            ahead: VecDeque::new(),
            bytes: 0,
            cost: 0,
            reserved: 0,
        });
        if entry.count != count {
            return Err(ProtocolViolation::BadFragment);
        }
        if entry.has(index) {
            return Ok(Accepted::Duplicate);
        }
        if entry.bytes + payload.len() > self.max_message_size {
            return Err(ProtocolViolation::MessageTooLarge);
        }
        let cost = fragment_cost(payload.len());
        entry.bytes += payload.len();
        entry.cost += cost;
        if index == entry.contiguous {
            if index == 0 {
                // Size the message from its first fragment (every fragment
                // but the last is as long), within the budget; beyond it the
                // buffer grows as fragments arrive.
                let estimate = payload
                    .len()
                    .saturating_mul(count as usize)
                    .min(self.max_message_size);
                if count > 1 && self.reserved + estimate <= self.reserve_budget {
                    entry.reserved = estimate;
                    self.reserved += estimate;
                    entry.assembled = pool.take(estimate);
                } else {
                    entry.assembled.reserve(payload.len());
                }
            }
            entry.assembled.extend_from_slice(&payload);
            entry.contiguous += 1;
            while entry.ahead.front().is_some_and(|f| f.0 == entry.contiguous) {
                let (_, part) = entry.ahead.pop_front().expect("front exists");
                entry.assembled.extend_from_slice(&part);
                entry.contiguous += 1;
            }
        } else {
            let pos = match entry.ahead.back() {
                Some(&(last, _)) if last < index => entry.ahead.len(),
                None => 0,
                _ => entry
                    .ahead
                    .binary_search_by_key(&index, |f| f.0)
                    .unwrap_or_else(|pos| pos),
            };
            entry
                .ahead
                .insert(pos, (index, Bytes::copy_from_slice(&payload)));
        }
        let done = entry.is_complete();
        self.highest = self.highest.max(Some((message, index)));
        if done && self.delivery != Delivery::Ordered {
            self.complete.push_back(message);
        }
        if self.delivery == Delivery::Latest && self.pending.len() > LATEST_PENDING {
            // Bounded: the oldest incomplete message goes.
            let oldest = self
                .pending
                .iter()
                .find(|(n, m)| **n != message && !m.is_complete())
                .map(|(n, _)| *n);
            if let Some(n) = oldest {
                self.forget(n);
                self.dropped += 1;
            }
        }
        Ok(Accepted::New(cost))
    }

    /// Whether message `number` was delivered already (a fragment of it is a
    /// duplicate).
    pub(crate) fn is_delivered(&self, number: u64) -> bool {
        number < self.next_deliver || self.released_above.contains(&number)
    }

    /// Whether fragment `index` of message `number` arrived already (or the
    /// whole message was delivered).
    pub(crate) fn has_fragment(&self, number: u64, index: u32) -> bool {
        self.is_delivered(number) || self.pending.get(&number).is_some_and(|m| m.has(index))
    }

    /// Whether message `number` has some fragments here but not all.
    pub(crate) fn is_assembling(&self, number: u64) -> bool {
        self.pending.get(&number).is_some_and(|m| !m.is_complete())
    }

    /// Latest-only streams: messages dropped so far (obsolete or unfinished).
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether a fragment is missing below one that arrived: the data stream
    /// has a hole the sender must repair (the analogue of out-of-order
    /// segments in TCP's receive queue). Meaningful once complete messages were
    /// taken with [`pop_ready_with`](Self::pop_ready_with).
    pub(crate) fn has_hole(&self) -> bool {
        if self.delivery == Delivery::Latest {
            // Nothing waits for a repair: there is none.
            return false;
        }
        let first_missing = match self.pending.get(&self.next_deliver) {
            Some(m) => (self.next_deliver, m.contiguous),
            None => (self.next_deliver, 0),
        };
        self.highest.is_some_and(|h| h >= first_missing)
    }

    /// The next message the stream's order releases, if one is complete, with
    /// its flow-control cost. A large message's buffer goes back to `pool`
    /// when the application drops it.
    pub(crate) fn pop_ready_with(&mut self, pool: &BufferPool) -> Option<(Bytes, u64)> {
        let m = match self.delivery {
            Delivery::Ordered => {
                let entry = self.pending.first_entry()?;
                if *entry.key() != self.next_deliver || !entry.get().is_complete() {
                    return None;
                }
                self.next_deliver += 1;
                entry.remove()
            }
            Delivery::Unordered => {
                let number = self.complete.pop_front()?;
                let m = self.pending.remove(&number)?;
                self.released_above.insert(number);
                while self.released_above.remove(&self.next_deliver) {
                    self.next_deliver += 1;
                }
                m
            }
            Delivery::Latest => loop {
                let number = self.complete.pop_front()?;
                if number < self.next_deliver {
                    continue;
                }
                // Everything older is obsolete now, complete or not.
                let older: Vec<u64> = self.pending.range(..number).map(|(n, _)| *n).collect();
                self.dropped += older.len() as u64;
                for n in older {
                    self.forget(n);
                }
                self.complete.retain(|n| *n > number);
                self.next_deliver = number + 1;
                break self.pending.remove(&number)?;
            },
        };
        self.reserved -= m.reserved;
        Some((pool.freeze(m.assembled), m.cost))
    }

    /// Drops an unfinished or obsolete message.
    fn forget(&mut self, number: u64) {
        if let Some(m) = self.pending.remove(&number) {
            self.reserved -= m.reserved;
        }
    }

    /// Messages waiting for fragments or for earlier messages.
    #[cfg(test)]
    pub(crate) fn pending_messages(&self) -> usize {
        self.pending.len()
    }
}

#[cfg(test)]
mod tests;
