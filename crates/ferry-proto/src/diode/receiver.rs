//! The receiving side of a diode: datagrams in, verified byte streams out.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::config::{DiodeConfig, DiodeConfigError, MAX_SOURCE_SYMBOLS};
use super::loss::{LossCounts, LossReason, LostBlock};
use super::wire::{self, DiodePacket, FLAG_FINAL, SymbolHeader};
use super::{DiodeSessionId, TRAILER_LEN};
use crate::diode::fec::{Added, BlockParams, BlockSymbols};

/// What the receiver tells the application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverEvent {
    /// A new session's first datagram arrived.
    SessionStarted {
        /// The session.
        session: DiodeSessionId,
    },
    /// The next bytes of a session, in order.
    Data {
        /// The session.
        session: DiodeSessionId,
        /// The bytes.
        data: Bytes,
    },
    /// The session ended and its length and digest match every byte
    /// delivered: success.
    SessionFinished {
        /// The session.
        session: DiodeSessionId,
        /// Its length in bytes.
        bytes: u64,
    },
    /// The session is lost: discard what it delivered. May come without a
    /// `SessionStarted` for a session refused at its first datagram.
    SessionLost {
        /// The session.
        session: DiodeSessionId,
        /// Why.
        reason: LossReason,
    },
    /// Nothing arrived from the sender for twice the heartbeat interval.
    HeartbeatMissing {
        /// How long nothing arrived.
        silent_for: Duration,
    },
    /// The sender is heard again after a [`HeartbeatMissing`](Self::HeartbeatMissing).
    HeartbeatRecovered,
}

/// Counters of a [`Receiver`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiverStats {
    /// Datagrams handed in.
    pub datagrams: u64,
    /// Bytes of those datagrams.
    pub bytes: u64,
    /// Dropped: malformed, wrong version or failed CRC.
    pub invalid: u64,
    /// Dropped: a symbol already held, or beyond the repair symbols accepted.
    pub duplicate_symbols: u64,
    /// Dropped: a symbol of a block already delivered or decoded.
    pub late_symbols: u64,
    /// Dropped: datagrams of sessions lost, refused, aborted or finished.
    pub dropped_closed_session: u64,
    /// Blocks rebuilt.
    pub blocks_decoded: u64,
    /// Of those, blocks that needed repair symbols.
    pub blocks_repaired: u64,
    /// Decode attempts that failed for want of symbols (retried with more).
    pub decode_failures: u64,
    /// Heartbeats received.
    pub heartbeats: u64,
    /// Times the sender fell silent: each
    /// [`ReceiverEvent::HeartbeatMissing`] raised.
    pub heartbeats_missing: u64,
    /// Keep-alives received for open sessions.
    pub keepalives: u64,
    /// Sessions started.
    pub sessions_started: u64,
    /// Sessions finished with a matching digest.
    pub sessions_finished: u64,
    /// Sessions lost (including those refused at their first datagram).
    pub sessions_lost: u64,
    /// Those, by cause.
    pub losses: LossCounts,
    /// Datagrams the driver reported lost before they reached the receiver
    /// ([`Receiver::report_overflow`]).
    pub overflowed: u64,
}

/// A block whose symbols wait to be decoded. Runs on any thread: hand it to a
/// worker, then give the result to [`Receiver::handle_decoded`].
#[derive(Debug)]
pub struct DecodeJob {
    session: u64,
    block: u64,
    symbols: BlockSymbols,
}

/// The outcome of a [`DecodeJob`].
#[derive(Debug)]
pub struct DecodedBlock {
    session: u64,
    block: u64,
    repaired: bool,
    result: Result<Vec<u8>, BlockSymbols>,
}

impl DecodeJob {
    /// Rebuilds the block (RaptorQ decoding when source symbols are missing).
    pub fn run(self) -> DecodedBlock {
        DecodedBlock {
            session: self.session,
            block: self.block,
            repaired: !self.symbols.has_all_source(),
            result: self.symbols.decode(),
        }
    }
}

#[derive(Debug)]
enum BlockState {
    Collecting {
        symbols: BlockSymbols,
        /// A job holds some of the symbols.
        decoding: bool,
        /// Symbols held when the last attempt failed (retry only with more).
        failed_at: usize,
        last_symbol: Instant,
    },
    Decoded(Vec<u8>),
}

#[derive(Debug)]
struct RecvBlock {
    params: BlockParams,
    /// Distinct symbols that arrived.
    received: u32,
    last: bool,
    first_symbol: Instant,
    state: BlockState,
}

#[derive(Debug)]
struct RecvSession {
    next_block: u64,
    blocks: BTreeMap<u64, RecvBlock>,
    last_activity: Instant,
    /// When a new symbol of any of its blocks last arrived: with interleaving
    /// a block's own symbols come `interleave_depth` datagrams apart, so the
    /// head block expires only once the whole group went quiet.
    last_symbol: Instant,
    /// When the head block became the head.
    head_since: Instant,
    /// When a keep-alive first said that blocks past the head were sent.
    behind_since: Option<Instant>,
    delivered: u64,
    hasher: blake3::Hasher,
    /// Blocks some of whose datagrams this receiver dropped or missed because
    /// it fell behind: their loss is [`LossReason::ReceiverBehind`].
    behind: Option<std::ops::Range<u64>>,
}

impl RecvSession {
    /// What the session holds of its head block (the first not delivered).
    fn head_loss(&self) -> LostBlock {
        let block = self.next_block;
        match self.blocks.get(&block) {
            Some(b) => LostBlock {
                block,
                received: b.received,
                needed: Some(b.params.source_symbols() as u32),
            },
            None => LostBlock {
                block,
                received: 0,
                needed: None,
            },
        }
    }

    /// The head block was lost beyond its margin or expired: the reason,
    /// unless this receiver's falling behind explains it.
    fn head_lost(&self, cause: fn(LostBlock) -> LossReason) -> LossReason {
        let head = self.head_loss();
        if self
            .behind
            .as_ref()
            .is_some_and(|r| r.contains(&head.block))
        {
            LossReason::ReceiverBehind(head)
        } else {
            cause(head)
        }
    }

    fn mark_behind(&mut self, blocks: std::ops::Range<u64>) {
        self.behind = Some(match self.behind.take() {
            Some(r) => r.start.min(blocks.start)..r.end.max(blocks.end),
            None => blocks,
        });
    }
}

/// The receiving half of a one-way transfer (sans-IO).
///
/// Feed it every datagram with [`handle_datagram`](Self::handle_datagram),
/// run its [`DecodeJob`]s (on worker threads, or inline with
/// [`decode_pending`](Self::decode_pending)), call
/// [`handle_timeout`](Self::handle_timeout) at
/// [`poll_timeout`](Self::poll_timeout), and drain
/// [`poll_event`](Self::poll_event) after each call: each session's bytes come
/// in order, then `SessionFinished` once its digest matched — or
/// `SessionLost`, after which nothing more of it is delivered.
#[derive(Debug)]
pub struct Receiver {
    config: DiodeConfig,
    sessions: HashMap<u64, RecvSession>,
    /// Sessions that ended here, so their late datagrams do not start them
    /// again; the oldest are forgotten beyond a bound.
    closed: HashSet<u64>,
    closed_order: VecDeque<u64>,
    decodable: VecDeque<(u64, u64)>,
    events: VecDeque<ReceiverEvent>,
    last_heard: Instant,
    silent: bool,
    sender_id: Option<u64>,
    stats: ReceiverStats,
}

impl Receiver {
    /// A receiver; `now` starts the heartbeat watch.
    pub fn new(config: DiodeConfig, now: Instant) -> Result<Self, DiodeConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            sessions: HashMap::new(),
            closed: HashSet::new(),
            closed_order: VecDeque::new(),
            decodable: VecDeque::new(),
            events: VecDeque::new(),
            last_heard: now,
            silent: false,
            sender_id: None,
            stats: ReceiverStats::default(),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &DiodeConfig {
        &self.config
    }

    /// Counters.
    pub fn stats(&self) -> &ReceiverStats {
        &self.stats
    }

    /// Sessions in progress.
    pub fn session_count(&self) -> usize {
        self.sessions.len()
    }

    /// Blocks held (collecting symbols, decoding, or decoded and waiting to be
    /// delivered), over all sessions: at most `max_sessions ×`
    /// [`blocks_in_flight()`](DiodeConfig::blocks_in_flight) (`max(max_blocks_in_flight,
    /// 2 × interleave_depth)`), each at most `block_size + 40` bytes of
    /// source symbols plus as many of repair symbols. This is the receiver's
    /// memory bound.
    pub fn blocks_held(&self) -> usize {
        self.sessions.values().map(|s| s.blocks.len()).sum()
    }

    fn closed_capacity(&self) -> usize {
        self.config.max_sessions.saturating_mul(16).max(64)
    }

    /// Takes one datagram. Never panics; anything malformed or unwanted is
    /// dropped and counted in [`stats`](Self::stats).
    pub fn handle_datagram(&mut self, now: Instant, datagram: &[u8]) {
        self.stats.datagrams += 1;
        self.stats.bytes += datagram.len() as u64;
        let packet = match wire::decode(datagram) {
            Ok(p) => p,
            Err(_) => {
                self.stats.invalid += 1;
                return;
            }
        };
        self.last_heard = now;
        if self.silent {
            self.silent = false;
            self.events.push_back(ReceiverEvent::HeartbeatRecovered);
        }
        match packet {
            DiodePacket::Heartbeat { sender, .. } => {
                self.stats.heartbeats += 1;
                if self.sender_id.is_some_and(|old| old != sender) {
                    let mut lost: Vec<(u64, LossReason)> = self
                        .sessions
                        .iter()
                        .map(|(&id, s)| (id, LossReason::SenderRestarted(s.head_loss())))
                        .collect();
                    lost.sort_unstable_by_key(|(id, _)| *id);
                    for (id, reason) in lost {
                        self.lose(id, reason);
                    }
                }
                self.sender_id = Some(sender);
            }
            DiodePacket::Abort { session, .. } => {
                if self.sessions.contains_key(&session) {
                    self.lose(session, LossReason::Aborted);
                } else if !self.closed.contains(&session) {
                    // Aborted before we saw any of it: remember, say nothing.
                    self.remember_closed(session);
                }
            }
            DiodePacket::KeepAlive { session, blocks } => {
                // A keep-alive never starts a session: only data does.
                if let Some(s) = self.sessions.get_mut(&session) {
                    self.stats.keepalives += 1;
                    s.last_activity = now;
                    if blocks > s.next_block {
                        s.behind_since.get_or_insert(now);
                    }
                } else {
                    self.stats.dropped_closed_session += 1;
                }
            }
            DiodePacket::Symbol { header, symbol } => self.handle_symbol(now, header, symbol),
        }
    }

    fn handle_symbol(&mut self, now: Instant, header: SymbolHeader, symbol: &[u8]) {
        let id = header.session;
        if self.closed.contains(&id) {
            self.stats.dropped_closed_session += 1;
            return;
        }
        let params = BlockParams {
            block_len: header.block_len,
            symbol_size: header.symbol_size,
        };
        let max_len = self.config.block_size + TRAILER_LEN;
        let acceptable = params.is_codable()
            && header.block_len as usize <= max_len
            && (header.flags & FLAG_FINAL != 0
                || header.block_len as usize <= self.config.block_size);
        let window = self.config.blocks_in_flight();
        let too_deep = usize::from(header.interleave) * 2 > window;
        if !self.sessions.contains_key(&id) {
            if !acceptable {
                self.refuse(id, LossReason::ParametersRejected);
                return;
            }
            if too_deep {
                self.refuse(
                    id,
                    LossReason::InterleaveTooDeep {
                        depth: header.interleave,
                        window,
                    },
                );
                return;
            }
            if self.sessions.len() >= self.config.max_sessions {
                self.refuse(id, LossReason::TooManySessions);
                return;
            }
            self.sessions.insert(
                id,
                RecvSession {
                    next_block: 0,
                    blocks: BTreeMap::new(),
                    last_activity: now,
                    last_symbol: now,
                    head_since: now,
                    behind_since: None,
                    delivered: 0,
                    hasher: blake3::Hasher::new(),
                    behind: None,
                },
            );
            self.stats.sessions_started += 1;
            self.events.push_back(ReceiverEvent::SessionStarted {
                session: DiodeSessionId(id),
            });
        }
        if !acceptable {
            self.lose(id, LossReason::ParametersRejected);
            return;
        }
        if too_deep {
            let depth = header.interleave;
            self.lose(id, LossReason::InterleaveTooDeep { depth, window });
            return;
        }
        let window = window as u64;
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        s.last_activity = now;
        if header.block < s.next_block {
            self.stats.late_symbols += 1;
            return;
        }
        if header.block >= s.next_block.saturating_add(window) {
            // The sender is a window ahead of the head block: unless the head
            // can still be rebuilt, it never will be.
            let head = s.next_block;
            let head_alive = s.blocks.get(&head).is_some_and(|b| match &b.state {
                BlockState::Decoded(_) => true,
                BlockState::Collecting {
                    symbols, decoding, ..
                } => *decoding || symbols.is_decodable(),
            });
            if head_alive {
                // The application or the decoders lag: this symbol cannot be
                // held. Its block may fail later; never silently, and then
                // for this reason.
                self.stats.late_symbols += 1;
                s.mark_behind(header.block..header.block + 1);
            } else {
                let reason = s.head_lost(LossReason::BeyondRepairMargin);
                self.lose(id, reason);
            }
            return;
        }
        let last = header.flags & FLAG_FINAL != 0;
        // As many repair symbols as source symbols, or as a full block of
        // this receiver's `block_size` has (short blocks get that many), and
        // never more than RaptorQ's largest block: a datagram's tiny symbol
        // size cannot make the receiver track millions of ids.
        let full = self
            .config
            .block_size
            .div_ceil(usize::from(params.symbol_size))
            .min(MAX_SOURCE_SYMBOLS);
        let max_repair = params.source_symbols().max(full).max(16);
        let block = s.blocks.entry(header.block).or_insert_with(|| RecvBlock {
            params,
            received: 0,
            last,
            first_symbol: now,
            state: BlockState::Collecting {
                symbols: BlockSymbols::new(params, max_repair),
                decoding: false,
                failed_at: 0,
                last_symbol: now,
            },
        });
        if block.params != params || block.last != last {
            self.lose(id, LossReason::ParametersRejected);
            return;
        }
        let BlockState::Collecting {
            symbols,
            decoding,
            failed_at,
            last_symbol,
        } = &mut block.state
        else {
            self.stats.late_symbols += 1;
            return;
        };
        match symbols.add(header.esi, symbol) {
            Added::New => block.received += 1,
            Added::Duplicate | Added::OutOfRange => {
                self.stats.duplicate_symbols += 1;
                return;
            }
        }
        *last_symbol = now;
        s.last_symbol = now;
        if !*decoding && symbols.is_decodable() && symbols.len() > *failed_at {
            *decoding = true;
            self.decodable.push_back((id, header.block));
        }
    }

    /// The next block ready to decode, for a worker thread.
    pub fn poll_decode(&mut self) -> Option<DecodeJob> {
        while let Some((id, block)) = self.decodable.pop_front() {
            let Some(b) = self
                .sessions
                .get_mut(&id)
                .and_then(|s| s.blocks.get_mut(&block))
            else {
                continue;
            };
            if let BlockState::Collecting { symbols, .. } = &mut b.state {
                return Some(DecodeJob {
                    session: id,
                    block,
                    symbols: symbols.take(),
                });
            }
        }
        None
    }

    /// Takes back a decoded block; then drain [`poll_event`](Self::poll_event).
    pub fn handle_decoded(&mut self, now: Instant, decoded: DecodedBlock) {
        let Some(s) = self.sessions.get_mut(&decoded.session) else {
            return;
        };
        let Some(b) = s.blocks.get_mut(&decoded.block) else {
            return;
        };
        let BlockState::Collecting {
            symbols,
            decoding,
            failed_at,
            ..
        } = &mut b.state
        else {
            return;
        };
        match decoded.result {
            Ok(data) => {
                b.state = BlockState::Decoded(data);
                self.stats.blocks_decoded += 1;
                self.stats.blocks_repaired += u64::from(decoded.repaired);
                self.deliver(now, decoded.session);
            }
            Err(attempt) => {
                self.stats.decode_failures += 1;
                let tried = attempt.len();
                symbols.merge(attempt);
                *failed_at = tried;
                // Symbols that arrived during the attempt: try again at once.
                if symbols.is_decodable() && symbols.len() > tried {
                    self.decodable.push_back((decoded.session, decoded.block));
                } else {
                    *decoding = false;
                }
            }
        }
    }

    /// Decodes every ready block on the calling thread.
    pub fn decode_pending(&mut self, now: Instant) {
        while let Some(job) = self.poll_decode() {
            let done = job.run();
            self.handle_decoded(now, done);
        }
    }

    /// Hands decoded blocks at the head of the session to the application.
    fn deliver(&mut self, now: Instant, id: u64) {
        let outcome = {
            let Some(s) = self.sessions.get_mut(&id) else {
                return;
            };
            loop {
                let head = s.next_block;
                if !matches!(
                    s.blocks.get(&head),
                    Some(RecvBlock {
                        state: BlockState::Decoded(_),
                        ..
                    })
                ) {
                    return;
                }
                let Some(RecvBlock {
                    state: BlockState::Decoded(mut data),
                    last,
                    ..
                }) = s.blocks.remove(&head)
                else {
                    return;
                };
                s.next_block += 1;
                s.head_since = now;
                s.behind_since = None;
                if !last {
                    s.hasher.update(&data);
                    s.delivered += data.len() as u64;
                    self.events.push_back(ReceiverEvent::Data {
                        session: DiodeSessionId(id),
                        data: Bytes::from(data),
                    });
                    continue;
                }
                // The last block: data, then the trailer (length and digest).
                if data.len() < TRAILER_LEN {
                    break Err(LossReason::DigestMismatch);
                }
                let trailer = data.split_off(data.len() - TRAILER_LEN);
                s.hasher.update(&data);
                s.delivered += data.len() as u64;
                let mut len = [0; 8];
                len.copy_from_slice(&trailer[..8]);
                if u64::from_be_bytes(len) != s.delivered
                    || s.hasher.finalize().as_bytes()[..] != trailer[8..]
                {
                    break Err(LossReason::DigestMismatch);
                }
                if !data.is_empty() {
                    self.events.push_back(ReceiverEvent::Data {
                        session: DiodeSessionId(id),
                        data: Bytes::from(data),
                    });
                }
                break Ok(s.delivered);
            }
        };
        match outcome {
            Err(reason) => self.lose(id, reason),
            Ok(bytes) => {
                self.sessions.remove(&id);
                self.remember_closed(id);
                self.stats.sessions_finished += 1;
                self.events.push_back(ReceiverEvent::SessionFinished {
                    session: DiodeSessionId(id),
                    bytes,
                });
            }
        }
    }

    fn remember_closed(&mut self, id: u64) {
        if self.closed.insert(id) {
            self.closed_order.push_back(id);
            while self.closed_order.len() > self.closed_capacity() {
                if let Some(old) = self.closed_order.pop_front() {
                    self.closed.remove(&old);
                }
            }
        }
    }

    /// The driver lost `datagrams` before they reached the receiver (its
    /// socket's buffer overflowed, or its queue did): the blocks under way in
    /// every open session, and the window after them, may miss symbols for
    /// that reason, so a loss among them is reported as
    /// [`LossReason::ReceiverBehind`].
    pub fn report_overflow(&mut self, datagrams: u64) {
        self.stats.overflowed += datagrams;
        let window = self.config.blocks_in_flight() as u64;
        for s in self.sessions.values_mut() {
            let head = s.next_block;
            s.mark_behind(head..head.saturating_add(window));
        }
    }

    fn lose(&mut self, id: u64, reason: LossReason) {
        if self.sessions.remove(&id).is_some() {
            tracing::debug!(session = %DiodeSessionId(id), %reason, "diode session lost");
            self.stats.sessions_lost += 1;
            self.stats.losses.count(&reason);
            self.events.push_back(ReceiverEvent::SessionLost {
                session: DiodeSessionId(id),
                reason,
            });
        }
        self.remember_closed(id);
    }

    fn refuse(&mut self, id: u64, reason: LossReason) {
        tracing::debug!(session = %DiodeSessionId(id), %reason, "diode session refused");
        self.remember_closed(id);
        self.stats.sessions_lost += 1;
        self.stats.losses.count(&reason);
        self.stats.dropped_closed_session += 1;
        self.events.push_back(ReceiverEvent::SessionLost {
            session: DiodeSessionId(id),
            reason,
        });
    }

    fn heartbeat_deadline(&self) -> Instant {
        self.last_heard + self.config.heartbeat.saturating_mul(2)
    }

    /// The head block's expiry, if it waits for symbols.
    fn head_deadline(&self, s: &RecvSession) -> Option<Instant> {
        let expiry = self.config.block_expiration_timeout();
        match s.blocks.get(&s.next_block) {
            // Missing, but a later block arrived or a keep-alive said the
            // head was sent: its datagrams were all lost, or are late. An idle
            // session (nothing later) is left to the session timeout.
            None => {
                let later = s.blocks.values().next().map(|b| b.first_symbol);
                let evidence = match (later, s.behind_since) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                evidence.map(|t| t.max(s.head_since) + expiry)
            }
            Some(RecvBlock {
                state:
                    BlockState::Collecting {
                        decoding: false,
                        last_symbol,
                        ..
                    },
                ..
            }) => Some((*last_symbol).max(s.last_symbol).max(s.head_since) + expiry),
            Some(_) => None,
        }
    }

    /// When to call [`handle_timeout`](Self::handle_timeout) next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let session_expiry = self.config.session_expiration_timeout();
        let mut next = (!self.silent).then(|| self.heartbeat_deadline());
        for s in self.sessions.values() {
            let candidates = [
                Some(s.last_activity + session_expiry),
                self.head_deadline(s),
            ];
            for t in candidates.into_iter().flatten() {
                next = Some(next.map_or(t, |n: Instant| n.min(t)));
            }
        }
        next
    }

    /// Expires blocks, sessions and the heartbeat watch.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.silent && now >= self.heartbeat_deadline() {
            self.silent = true;
            self.stats.heartbeats_missing += 1;
            self.events.push_back(ReceiverEvent::HeartbeatMissing {
                silent_for: now.saturating_duration_since(self.last_heard),
            });
        }
        let session_expiry = self.config.session_expiration_timeout();
        let mut lost = Vec::new();
        for (&id, s) in &self.sessions {
            if now >= s.last_activity + session_expiry {
                lost.push((id, LossReason::SessionExpired(s.head_loss())));
            } else if self.head_deadline(s).is_some_and(|d| now >= d) {
                lost.push((id, s.head_lost(LossReason::BlockExpired)));
            }
        }
        lost.sort_unstable_by_key(|(id, _)| *id);
        for (id, reason) in lost {
            self.lose(id, reason);
        }
    }

    /// The next event. Drain after every call that takes input.
    pub fn poll_event(&mut self) -> Option<ReceiverEvent> {
        self.events.pop_front()
    }
}
