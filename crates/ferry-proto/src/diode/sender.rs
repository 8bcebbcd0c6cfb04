//! The sending side of a diode: byte streams in, paced datagrams out.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::time::{Duration, Instant};

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use thiserror::Error;

use super::DiodeSessionId;
use super::config::{DiodeConfig, DiodeConfigError};
use super::interleave::{GroupBlock, due_before};
use super::wire::{self, FLAG_FINAL, FLAG_START, SYMBOL_OVERHEAD, SymbolHeader};
use crate::diode::fec::{self, BlockParams};

/// A sender command could not be carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SenderError {
    /// `max_sessions` sessions are open.
    #[error("{0} diode sessions are open already: finish one, or raise `max_sessions`")]
    TooManySessions(usize),
    /// The session is not open (finished, aborted, or never opened here).
    #[error("diode session {0} is not open")]
    UnknownSession(DiodeSessionId),
}

/// What the sender tells its driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SenderEvent {
    /// The session can take more data again (a block left for the wire).
    Writable {
        /// The session.
        session: DiodeSessionId,
    },
    /// Every datagram of a finished session has been handed out.
    SessionSent {
        /// The session.
        session: DiodeSessionId,
        /// Its length in bytes.
        bytes: u64,
    },
}

/// Counters of a [`Sender`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SenderStats {
    /// Datagrams handed out (symbols, heartbeats and aborts).
    pub datagrams: u64,
    /// Bytes of those datagrams.
    pub bytes: u64,
    /// Source symbols sent.
    pub source_symbols: u64,
    /// Repair symbols sent.
    pub repair_symbols: u64,
    /// Blocks encoded and sent.
    pub blocks: u64,
    /// Heartbeats sent.
    pub heartbeats: u64,
    /// Keep-alives sent for sessions with nothing to send.
    pub keepalives: u64,
    /// Sessions opened.
    pub sessions_opened: u64,
    /// Sessions whose every datagram went out.
    pub sessions_sent: u64,
    /// Sessions aborted.
    pub sessions_aborted: u64,
}

/// A block waiting to be encoded. Runs on any thread: hand it to a worker,
/// then give the result to [`Sender::handle_encoded`]. Every job taken must
/// come back, or the sender stops at its place in the queue.
#[derive(Debug)]
pub struct EncodeJob {
    seq: u64,
    header: SymbolHeader,
    data: Vec<u8>,
    repair: usize,
}

/// An encoded block: its datagrams, each sealed, back to back.
#[derive(Debug)]
pub struct EncodedBlock {
    seq: u64,
    session: u64,
    source: usize,
    datagrams: Vec<u8>,
    stride: usize,
}

impl EncodeJob {
    /// Encodes the block into ready-to-send datagrams.
    pub fn run(self) -> EncodedBlock {
        let params = BlockParams {
            block_len: self.header.block_len,
            symbol_size: self.header.symbol_size,
        };
        let t = usize::from(self.header.symbol_size);
        let stride = t + SYMBOL_OVERHEAD;
        let source = params.source_symbols();
        let mut datagrams = Vec::with_capacity((source + self.repair) * stride);
        let mut header = self.header;
        fec::encode_block(params, &self.data, self.repair, |esi, symbol| {
            let start = datagrams.len();
            datagrams.resize(start + stride, 0);
            let d = &mut datagrams[start..];
            header.esi = esi;
            header.write(d);
            d[SymbolHeader::SYMBOL_OFFSET..SymbolHeader::SYMBOL_OFFSET + t].copy_from_slice(symbol);
            wire::seal(d);
        });
        EncodedBlock {
            seq: self.seq,
            session: self.header.session,
            source,
            datagrams,
            stride,
        }
    }

    /// Bytes of application data in the block.
    pub fn len(&self) -> usize {
        self.data.len()
    }

    /// Whether the block holds no data (never true of a job handed out).
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// One datagram, or a run of equal-sized ones, to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiodeTransmit {
    /// Bytes written to the buffer.
    pub len: usize,
    /// The size of each datagram in it: `len` is a multiple of it, and a
    /// driver with GSO sends the run in one call.
    pub segment_size: usize,
}

#[derive(Debug)]
struct SendSession {
    buffer: Vec<u8>,
    next_block: u64,
    /// Blocks sealed and not yet fully sent.
    in_flight: usize,
    finishing: bool,
    bytes: u64,
    hasher: blake3::Hasher,
    /// The application was told it cannot write: tell it when it can.
    blocked: bool,
    /// When the session last sent anything (`None` until the first poll).
    last_sent: Option<Instant>,
}

/// The sending half of a one-way transfer (sans-IO).
///
/// The application opens sessions, writes their bytes and finishes (or aborts)
/// them; the sender cuts each session into blocks, has them encoded (by
/// [`EncodeJob`]s the driver runs on its threads, or inline with
/// [`encode_pending`](Self::encode_pending)) and hands out their datagrams,
/// paced to `bandwidth`, with a heartbeat every `heartbeat` and a keep-alive
/// for each open session that had nothing to send for as long.
///
/// Blocks go out in groups of `interleave_depth` consecutive sealed blocks,
/// their datagrams interleaved (each block's spread evenly over the group),
/// so that a burst of lost datagrams costs each block of the group a share
/// of it. A group starts once `interleave_depth` blocks are sealed and
/// encoded, or earlier with fewer when [`flush`](Self::flush) or
/// [`finish`](Self::finish) sealed the last of them, or when the first
/// waited a `heartbeat` for the others: call `flush` when the application
/// pauses, or a full block waits for its group that long.
///
/// ```
/// use std::time::Instant;
/// use ferry_proto::diode::{DiodeConfig, Sender};
///
/// let now = Instant::now();
/// let mut sender = Sender::new(DiodeConfig::default(), 7, now).unwrap();
/// let session = sender.open().unwrap();
/// assert_eq!(sender.write(session, b"hello").unwrap(), 5);
/// sender.finish(session).unwrap();
/// sender.encode_pending();
/// let mut buf = vec![0; 64 * 1024];
/// let mut datagrams = 0;
/// while let Some(t) = sender.poll_transmit(now, &mut buf) {
///     datagrams += t.len / t.segment_size; // send buf[..t.len] here
/// }
/// assert!(datagrams >= 2); // a heartbeat and the symbols of one block
/// ```
#[derive(Debug)]
pub struct Sender {
    config: DiodeConfig,
    sender_id: u64,
    rng: ChaCha8Rng,
    sessions: HashMap<u64, SendSession>,
    jobs: VecDeque<EncodeJob>,
    next_seq: u64,
    /// Encoded blocks waiting for their turn, by sequence.
    encoded: BTreeMap<u64, EncodedBlock>,
    next_send: u64,
    /// The group of blocks being sent, interleaved.
    group: Vec<GroupBlock>,
    /// Blocks sealed before this sequence number go out without waiting for
    /// a whole group (a flush or finish sealed the last of them).
    release_through: u64,
    /// Since when sealed blocks wait for the rest of their group.
    group_wait: Option<Instant>,
    control: VecDeque<(u64, u64)>,
    tokens: f64,
    last_refill: Instant,
    next_heartbeat: Instant,
    events: VecDeque<SenderEvent>,
    stats: SenderStats,
}

impl Sender {
    /// A sender. `seed` feeds the generator of session ids and of this
    /// sender's id (drivers pass OS randomness); `now` starts the heartbeat.
    pub fn new(config: DiodeConfig, seed: u64, now: Instant) -> Result<Self, DiodeConfigError> {
        config.validate()?;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Ok(Self {
            sender_id: rng.next_u64(),
            rng,
            sessions: HashMap::new(),
            jobs: VecDeque::new(),
            next_seq: 0,
            encoded: BTreeMap::new(),
            next_send: 0,
            group: Vec::new(),
            release_through: 0,
            group_wait: None,
            control: VecDeque::new(),
            tokens: config.max_burst as f64,
            last_refill: now,
            next_heartbeat: now,
            events: VecDeque::new(),
            stats: SenderStats::default(),
            config,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DiodeConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &SenderStats {
        &self.stats
    }

    /// Sessions open (including finished ones whose datagrams are still
    /// going out).
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Opens a session: a new byte stream with a fresh random id.
    pub fn open(&mut self) -> Result<DiodeSessionId, SenderError> {
        if self.sessions.len() >= self.config.max_sessions {
            return Err(SenderError::TooManySessions(self.sessions.len()));
        }
        let id = loop {
            let id = self.rng.next_u64();
            if !self.sessions.contains_key(&id) {
                break id;
            }
        };
        self.sessions.insert(
            id,
            SendSession {
                buffer: Vec::new(),
                next_block: 0,
                in_flight: 0,
                finishing: false,
                bytes: 0,
                hasher: blake3::Hasher::new(),
                blocked: false,
                last_sent: None,
            },
        );
        self.stats.sessions_opened += 1;
        Ok(DiodeSessionId(id))
    }

    fn session(&mut self, id: DiodeSessionId) -> Result<&mut SendSession, SenderError> {
        match self.sessions.get_mut(&id.0) {
            Some(s) if !s.finishing => Ok(s),
            _ => Err(SenderError::UnknownSession(id)),
        }
    }

    /// How many bytes [`write`](Self::write) would take now.
    pub fn writable(&self, id: DiodeSessionId) -> usize {
        let Some(s) = self.sessions.get(&id.0).filter(|s| !s.finishing) else {
            return 0;
        };
        let free_blocks = self.config.blocks_in_flight().saturating_sub(s.in_flight);
        (free_blocks * self.config.block_size).saturating_sub(s.buffer.len())
    }

    /// Appends bytes to the session's stream; returns how many were taken,
    /// which is fewer than offered (down to 0) when
    /// [`blocks_in_flight`](DiodeConfig::blocks_in_flight) blocks wait for the
    /// wire. A [`SenderEvent::Writable`] follows once
    /// more can be taken.
    pub fn write(&mut self, id: DiodeSessionId, data: &[u8]) -> Result<usize, SenderError> {
        let block_size = self.config.block_size;
        let max_in_flight = self.config.blocks_in_flight();
        let mut taken = 0;
        loop {
            let s = self.session(id)?;
            if taken == data.len() {
                break;
            }
            if s.in_flight >= max_in_flight {
                s.blocked = true;
                break;
            }
            let n = (block_size - s.buffer.len()).min(data.len() - taken);
            let chunk = &data[taken..taken + n];
            s.buffer.extend_from_slice(chunk);
            s.hasher.update(chunk);
            s.bytes += n as u64;
            taken += n;
            if s.buffer.len() == block_size {
                self.seal(id.0, false);
            }
        }
        Ok(taken)
    }

    /// Sends what the session's current block holds now rather than when it
    /// fills, and lets every sealed block go out without waiting for a whole
    /// interleaving group: call it when the application has nothing more to
    /// write for a while. Returns whether it sealed a block or released
    /// waiting ones; `false` (and nothing done) when there was nothing to
    /// send or [`blocks_in_flight`](DiodeConfig::blocks_in_flight) blocks are
    /// already waiting; in the latter case a [`SenderEvent::Writable`] follows
    /// once there is room.
    pub fn flush(&mut self, id: DiodeSessionId) -> Result<bool, SenderError> {
        let max = self.config.blocks_in_flight();
        let waiting = self.next_send.max(self.release_through) < self.next_seq;
        let s = self.session(id)?;
        if s.in_flight >= max {
            // A Writable event follows once a block went out, for a caller
            // that waits for room (the write that sealed the last block may
            // have ended exactly at its edge, without asking for one).
            s.blocked = true;
            return Ok(false);
        }
        if s.buffer.is_empty() {
            self.release_through = self.next_seq;
            return Ok(waiting);
        }
        self.seal(id.0, false);
        self.release_through = self.next_seq;
        Ok(true)
    }

    /// Ends the session: its last block carries the stream's length and
    /// BLAKE3 digest, which the receiver checks before it reports success.
    /// [`SenderEvent::SessionSent`] follows once its last datagram went out.
    pub fn finish(&mut self, id: DiodeSessionId) -> Result<(), SenderError> {
        let s = self.session(id)?;
        let digest = s.hasher.finalize();
        let bytes = s.bytes;
        s.buffer.extend_from_slice(&bytes.to_be_bytes());
        s.buffer.extend_from_slice(digest.as_bytes());
        s.finishing = true;
        self.seal(id.0, true);
        self.release_through = self.next_seq;
        Ok(())
    }

    /// Abandons the session: what was not sent is dropped, and the receiver is
    /// told (an abort datagram, sent three times) to discard it.
    pub fn abort(&mut self, id: DiodeSessionId) -> Result<(), SenderError> {
        let Some(s) = self.sessions.remove(&id.0) else {
            return Err(SenderError::UnknownSession(id));
        };
        for _ in 0..3 {
            self.control.push_back((id.0, s.next_block));
        }
        // Its blocks in the group going out stop there, the others' go on.
        self.group.retain(|g| g.block.session != id.0);
        self.stats.sessions_aborted += 1;
        Ok(())
    }

    fn seal(&mut self, id: u64, last: bool) {
        let symbol_size = self.config.symbol_size() as u16;
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        let data = std::mem::take(&mut s.buffer);
        let block = s.next_block;
        s.next_block += 1;
        s.in_flight += 1;
        let params = BlockParams {
            block_len: data.len() as u32,
            symbol_size,
        };
        let flags = if block == 0 { FLAG_START } else { 0 } | if last { FLAG_FINAL } else { 0 };
        let repair = self.config.repair_symbols(params.source_symbols());
        self.jobs.push_back(EncodeJob {
            seq: self.next_seq,
            header: SymbolHeader {
                session: id,
                block,
                flags,
                interleave: self.config.interleave_depth as u8,
                block_len: params.block_len,
                symbol_size,
                esi: 0,
            },
            data,
            repair,
        });
        self.next_seq += 1;
    }

    /// The next block to encode, for a worker thread.
    pub fn poll_encode(&mut self) -> Option<EncodeJob> {
        while let Some(job) = self.jobs.pop_front() {
            if self.sessions.contains_key(&job.header.session) {
                return Some(job);
            }
            // Aborted: nothing to encode, but its place in the queue passes.
            self.handle_encoded(EncodedBlock {
                seq: job.seq,
                session: job.header.session,
                source: 0,
                datagrams: Vec::new(),
                stride: 1,
            });
        }
        None
    }

    /// Takes back an encoded block.
    pub fn handle_encoded(&mut self, block: EncodedBlock) {
        self.encoded.insert(block.seq, block);
    }

    /// Encodes every waiting block on the calling thread.
    pub fn encode_pending(&mut self) {
        while let Some(job) = self.poll_encode() {
            let block = job.run();
            self.handle_encoded(block);
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.last_refill);
        self.last_refill = self.last_refill.max(now);
        let cap = self.config.max_burst as f64;
        self.tokens =
            (self.tokens + elapsed.as_secs_f64() * self.config.bandwidth as f64 / 8.0).min(cap);
    }

    /// How many sealed blocks, from `next_send`, make the next group, if it
    /// may start (encoded or not): `Err(true)` when sealed blocks wait for
    /// the rest of their group, `Err(false)` when none are sealed.
    fn group_size(&self) -> Result<u64, bool> {
        let sealed = self.next_seq - self.next_send;
        let depth = self.config.interleave_depth as u64;
        if sealed == 0 {
            Err(false)
        } else if sealed >= depth {
            Ok(depth)
        } else if self.release_through > self.next_send {
            Ok((self.release_through - self.next_send).min(sealed))
        } else {
            Err(true)
        }
    }

    /// Whether the next group's blocks are all encoded.
    fn group_encoded(&self, n: u64) -> bool {
        (self.next_send..self.next_send + n).all(|seq| self.encoded.contains_key(&seq))
    }

    /// Starts the next group when its turn came, skipping aborted sessions'
    /// blocks; whether a group is going out.
    fn next_group(&mut self, now: Instant) -> bool {
        loop {
            if !self.group.is_empty() {
                return true;
            }
            let n = match self.group_size() {
                Ok(n) => n,
                Err(true) => {
                    // A partial group waits a heartbeat at most.
                    let since = *self.group_wait.get_or_insert(now);
                    if now < since + self.config.heartbeat {
                        return false;
                    }
                    self.next_seq - self.next_send
                }
                Err(false) => {
                    self.group_wait = None;
                    return false;
                }
            };
            if !self.group_encoded(n) {
                return false;
            }
            self.group_wait = None;
            for seq in self.next_send..self.next_send + n {
                let Some(block) = self.encoded.remove(&seq) else {
                    continue;
                };
                if self.sessions.contains_key(&block.session) && !block.datagrams.is_empty() {
                    let total = block.datagrams.len() / block.stride;
                    self.group.push(GroupBlock {
                        block,
                        sent: 0,
                        total,
                    });
                }
            }
            self.next_send += n;
            if n > 1 {
                tracing::trace!(blocks = self.group.len(), "diode: interleaving a group");
            }
        }
    }

    fn block_sent(&mut self, block: EncodedBlock) {
        self.stats.blocks += 1;
        let max = self.config.blocks_in_flight();
        let Some(s) = self.sessions.get_mut(&block.session) else {
            return;
        };
        s.in_flight -= 1;
        if s.finishing && s.in_flight == 0 {
            let bytes = s.bytes;
            self.sessions.remove(&block.session);
            self.stats.sessions_sent += 1;
            self.events.push_back(SenderEvent::SessionSent {
                session: DiodeSessionId(block.session),
                bytes,
            });
        } else if s.blocked && s.in_flight < max {
            s.blocked = false;
            self.events.push_back(SenderEvent::Writable {
                session: DiodeSessionId(block.session),
            });
        }
    }

    /// The next datagram, or run of equal-sized datagrams (as many as fit in
    /// `buf`), to send now; `None` when nothing is due or pacing holds the
    /// rest back until [`poll_timeout`](Self::poll_timeout).
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut [u8]) -> Option<DiodeTransmit> {
        self.refill(now);
        for s in self.sessions.values_mut() {
            s.last_sent.get_or_insert(now);
        }
        if now >= self.next_heartbeat && buf.len() >= wire::HEARTBEAT_LEN {
            let interval = self.config.heartbeat;
            self.next_heartbeat = now + interval;
            let ms = u32::try_from(interval.as_millis()).unwrap_or(u32::MAX);
            let len = wire::write_heartbeat(buf, self.sender_id, ms);
            self.count(len, 1);
            self.stats.heartbeats += 1;
            return Some(DiodeTransmit {
                len,
                segment_size: len,
            });
        }
        if buf.len() >= wire::ABORT_LEN
            && let Some((session, blocks)) = self.control.pop_front()
        {
            let len = wire::write_abort(buf, session, blocks);
            self.count(len, 1);
            return Some(DiodeTransmit {
                len,
                segment_size: len,
            });
        }
        if buf.len() >= wire::KEEPALIVE_LEN
            && let Some(len) = self.poll_keepalive(now, buf)
        {
            return Some(DiodeTransmit {
                len,
                segment_size: len,
            });
        }
        if !self.next_group(now) {
            return None;
        }
        let stride = self.group[0].block.stride;
        let by_tokens = (self.tokens / stride as f64) as usize;
        let room = (buf.len() / stride).min(by_tokens);
        let mut n = 0;
        while n < room && !self.group.is_empty() {
            let mut i = 0;
            for j in 1..self.group.len() {
                let (a, b) = (&self.group[j], &self.group[i]);
                if due_before((a.sent, a.total), (b.sent, b.total)) {
                    i = j;
                }
            }
            let g = &mut self.group[i];
            if g.block.stride != stride {
                break; // A run holds datagrams of one size only.
            }
            let from = g.sent * stride;
            buf[n * stride..(n + 1) * stride]
                .copy_from_slice(&g.block.datagrams[from..from + stride]);
            if g.sent < g.block.source {
                self.stats.source_symbols += 1;
            } else {
                self.stats.repair_symbols += 1;
            }
            g.sent += 1;
            n += 1;
            let session = g.block.session;
            if let Some(s) = self.sessions.get_mut(&session) {
                s.last_sent = Some(now);
            }
            if g.sent == g.total {
                let done = self.group.remove(i);
                self.block_sent(done.block);
            }
        }
        if n == 0 {
            return None;
        }
        self.tokens -= (n * stride) as f64;
        self.count(n * stride, n as u64);
        Some(DiodeTransmit {
            len: n * stride,
            segment_size: stride,
        })
    }

    /// A keep-alive for an open session that has had nothing to send for a
    /// heartbeat interval, so the receiver does not expire an idle stream.
    fn poll_keepalive(&mut self, now: Instant, buf: &mut [u8]) -> Option<usize> {
        let interval = self.config.heartbeat;
        let (&id, s) = self.sessions.iter_mut().find(|(_, s)| {
            s.in_flight == 0 && !s.finishing && s.last_sent.is_some_and(|t| now >= t + interval)
        })?;
        s.last_sent = Some(now);
        let len = wire::write_keepalive(buf, id, s.next_block);
        self.count(len, 1);
        self.stats.keepalives += 1;
        Some(len)
    }

    fn count(&mut self, bytes: usize, datagrams: u64) {
        self.stats.bytes += bytes as u64;
        self.stats.datagrams += datagrams;
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) (or
    /// [`poll_transmit`](Self::poll_transmit)) next: the next heartbeat, or
    /// when pacing lets the next datagram go.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut next = self.next_heartbeat;
        for s in self.sessions.values() {
            if s.in_flight == 0
                && !s.finishing
                && let Some(t) = s.last_sent
            {
                next = next.min(t + self.config.heartbeat);
            }
        }
        let group_ready = match self.group_size() {
            Ok(n) => self.group_encoded(n),
            Err(true) => {
                let since = self.group_wait.unwrap_or(self.last_refill);
                let deadline = since + self.config.heartbeat;
                if deadline > self.last_refill {
                    next = next.min(deadline);
                    false
                } else {
                    self.group_encoded(self.next_seq - self.next_send)
                }
            }
            Err(false) => false,
        };
        let waiting = !self.group.is_empty() || group_ready || !self.control.is_empty();
        if waiting {
            let stride = self.config.datagram_size() as f64;
            let missing = (stride - self.tokens).max(0.0);
            let nanos = (missing * 8e9 / self.config.bandwidth as f64).ceil() as u64;
            // At least a nanosecond once anything is missing, so that rounding
            // can never ask to be woken when nothing can be sent yet.
            let wait = Duration::from_nanos(if missing > 0.0 { nanos.max(1) } else { 0 });
            next = next.min(self.last_refill + wait);
        }
        Some(next)
    }

    /// Advances timers; then drain [`poll_transmit`](Self::poll_transmit).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.refill(now);
    }

    /// The next event for the driver.
    pub fn poll_event(&mut self) -> Option<SenderEvent> {
        self.events.pop_front()
    }

    /// Whether everything handed to the sender has gone out (no session open,
    /// nothing to encode or send).
    pub fn is_idle(&self) -> bool {
        self.sessions.is_empty()
            && self.jobs.is_empty()
            && self.encoded.is_empty()
            && self.group.is_empty()
            && self.control.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write that ends exactly at the edge of the last block in flight asks
    /// for no Writable event; a flush that then finds no room must, or its
    /// caller waits forever (found by the diode sender-restart fault test).
    #[test]
    fn a_declined_flush_gets_a_writable_event() {
        let t0 = crate::test_support::epoch();
        let config = DiodeConfig {
            block_size: 64 * 1024,
            max_blocks_in_flight: 2,
            interleave_depth: 1,
            ..DiodeConfig::default()
        };
        let mut sender = Sender::new(config, 1, t0).unwrap();
        let id = sender.open().unwrap();
        assert_eq!(sender.write(id, &vec![1; 128 * 1024]).unwrap(), 128 * 1024);
        assert_eq!(sender.writable(id), 0);
        assert!(!sender.flush(id).unwrap(), "no room: the flush declines");
        sender.encode_pending();
        let mut buf = vec![0; 65_536];
        let mut writable = false;
        for ms in 1..=1000 {
            let now = t0 + Duration::from_millis(ms);
            while sender.poll_transmit(now, &mut buf).is_some() {}
            writable |= std::iter::from_fn(|| sender.poll_event())
                .any(|e| e == SenderEvent::Writable { session: id });
            if writable {
                break;
            }
        }
        assert!(
            writable,
            "room came back, and the waiting flush hears of it"
        );
        assert!(sender.writable(id) > 0);
    }
}
