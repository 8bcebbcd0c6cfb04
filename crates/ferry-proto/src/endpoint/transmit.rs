//! Output: the datagrams the endpoint sends, one at a time or in batches of
//! same-size datagrams to one destination, built in the caller's buffer for
//! segmentation offload (GSO) without a copy.

use std::net::SocketAddr;
use std::time::Instant;

use super::Endpoint;

/// Most bytes one [`Transmit`] of [`Endpoint::poll_transmit_batch`] holds
/// (unless its first datagram alone is larger): what Linux accepts in one
/// send with segmentation offload (a UDP payload of at most 65,507 bytes,
/// rounded down).
pub const MAX_BATCH_BYTES: usize = 64_000;

/// Datagrams to send, written into the buffer given to
/// [`Endpoint::poll_transmit`] or [`Endpoint::poll_transmit_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// Where to send them.
    pub destination: SocketAddr,
    /// Bytes of the buffer to send: the datagrams one after the other.
    pub size: usize,
    /// When the buffer holds two datagrams or more (a batch, for segmentation
    /// offload), the size of each: every datagram has this size but the
    /// last, which may be shorter. `None` when the buffer holds exactly one
    /// datagram of `size` bytes (always, from
    /// [`poll_transmit`](Endpoint::poll_transmit)).
    pub segment_size: Option<usize>,
}

/// A datagram a session wrote that did not fit the batch being built (it
/// goes elsewhere, or is larger than the batch's datagrams): it leaves first
/// in the next transmit.
#[derive(Debug, Default)]
pub(super) struct Carry {
    /// Where it goes, while a datagram waits in `buf`.
    destination: Option<SocketAddr>,
    /// Its bytes (the allocation is kept between uses).
    buf: Vec<u8>,
}

/// The batch being built: its destination and the size of its datagrams.
#[derive(Debug, Clone, Copy)]
struct Batch {
    destination: SocketAddr,
    segment_size: usize,
    datagrams: usize,
}

impl Batch {
    /// Whether another datagram of the batch's size may not be added.
    fn full(&self, len: usize, max_datagrams: usize) -> bool {
        self.datagrams >= max_datagrams || len + self.segment_size > MAX_BATCH_BYTES
    }
}

impl Endpoint {
    /// Writes the next datagram to send into `buf` (which is cleared first) and
    /// says where it goes. Sessions take turns, one datagram each.
    ///
    /// This is [`poll_transmit_batch`](Self::poll_transmit_batch) with batches
    /// of one: `segment_size` is always `None`.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        self.poll_transmit_batch(now, buf, 1)
    }

    /// Writes the next datagrams to send into `buf` (which is cleared first),
    /// one after the other, and says where they go: up to `max_datagrams` of
    /// them (at least one; [`MAX_BATCH_BYTES`] in all), all to one
    /// destination and all of the first one's size, except the last, which
    /// may be shorter (a shorter datagram ends the batch). That is what a
    /// socket sends in one system call with segmentation offload (GSO):
    /// `segment_size` is the size of each datagram when there are two or
    /// more, `None` for one.
    ///
    /// The datagrams are written and sealed where they lie in `buf`: a driver
    /// hands `buf[..size]` to the kernel as it is. A session fills the batch
    /// as long as it has datagrams to send within its windows, then the next
    /// session continues it if its peer is the same destination; sessions
    /// take turns batch by batch. A datagram a session wrote that does not
    /// fit (a path check to another address, a path MTU probe larger than the
    /// batch's datagrams) is kept and leaves first in the next call.
    /// Answers without a session (refusals, retries) leave alone.
    ///
    /// ```
    /// use std::time::Instant;
    /// use ferry_proto::{Config, Endpoint};
    ///
    /// let now = Instant::now();
    /// let mut client = Endpoint::new(Config::default(), 1).unwrap();
    /// client.connect(now, "192.0.2.1:4433".parse().unwrap()).unwrap();
    /// let mut buf = Vec::new();
    /// while let Some(t) = client.poll_transmit_batch(now, &mut buf, 16) {
    ///     // With segmentation offload: one send of `buf[..t.size]`, cut
    ///     // by the kernel every `t.segment_size` bytes. Without: one send
    ///     // per datagram.
    ///     for datagram in buf[..t.size].chunks(t.segment_size.unwrap_or(t.size)) {
    ///         assert_eq!(datagram.len(), 1200); // the Connect, padded
    ///     }
    /// }
    /// ```
    #[must_use]
    pub fn poll_transmit_batch(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        max_datagrams: usize,
    ) -> Option<Transmit> {
        buf.clear();
        let max_datagrams = max_datagrams.max(1);
        let mut batch = None;
        if let Some(destination) = self.carry.destination.take() {
            buf.extend_from_slice(&self.carry.buf);
            batch = Some(Batch {
                destination,
                segment_size: buf.len(),
                datagrams: 1,
            });
        } else if let Some((destination, bytes)) = self.stateless.pop_front() {
            buf.extend_from_slice(&bytes);
            return Some(Transmit {
                destination,
                size: bytes.len(),
                segment_size: None,
            });
        }
        let mut ended = false;
        while let Some(&id) = self.ready.front() {
            if ended || batch.is_some_and(|b| b.full(buf.len(), max_datagrams)) {
                break;
            }
            let Some(slot) = self.sessions.get_mut(&id) else {
                self.ready.pop_front();
                continue;
            };
            if batch.is_some_and(|b| b.destination != slot.session.remote()) {
                // Another peer: its turn comes in the next batch. (Its next
                // datagram may still go elsewhere than its peer, a path check:
                // that is found when it is written.)
                break;
            }
            self.ready.pop_front();
            slot.queued = false;
            let mut sent = false;
            loop {
                if batch.is_some_and(|b| b.full(buf.len(), max_datagrams)) {
                    break;
                }
                let start = buf.len();
                let written = slot.session.poll_transmit_append(now, buf);
                let destination = slot.session.take_destination();
                let Some(len) = written else { break };
                sent = true;
                let Some(b) = &mut batch else {
                    batch = Some(Batch {
                        destination,
                        segment_size: len,
                        datagrams: 1,
                    });
                    continue;
                };
                if destination != b.destination || len > b.segment_size {
                    // Out of the batch, and first in the next one.
                    self.carry.buf.clear();
                    self.carry.buf.extend_from_slice(&buf[start..]);
                    self.carry.destination = Some(destination);
                    buf.truncate(start);
                    ended = true;
                    break;
                }
                b.datagrams += 1;
                if len < b.segment_size {
                    // A shorter datagram can only end a batch.
                    ended = true;
                    break;
                }
            }
            if sent {
                // It may have more: its next turn is after the others'.
                slot.queued = true;
                self.ready.push_back(id);
            }
            self.refresh(id);
        }
        let b = batch?;
        Some(Transmit {
            destination: b.destination,
            size: buf.len(),
            segment_size: (b.datagrams > 1).then_some(b.segment_size),
        })
    }
}
