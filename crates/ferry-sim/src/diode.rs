//! A diode in virtual time: one [`Sender`], one one-way [`Link`], one
//! [`Receiver`], and applications on both ends.
//!
//! The sending application is a list of sessions, each a byte string written
//! as fast as the sender takes it (and finished, or aborted by [`DiodeNet::abort`]); the receiving application is the log of every [`ReceiverEvent`]
//! with the virtual instant it happened at.
//!
//! [`DiodeNet::drop_burst`] drops exactly N consecutive symbol datagrams at a
//! chosen point, and [`BurstModel`] counts, without coding, what bursts cost
//! sessions at a given repair percentage and interleaving depth (the
//! `diode_bursts` example prints both).
//!
//! ```
//! use std::time::Duration;
//! use ferry_proto::diode::DiodeConfig;
//! use ferry_sim::LinkConfig;
//! use ferry_sim::diode::DiodeNet;
//!
//! let mut net = DiodeNet::new(DiodeConfig::default(), LinkConfig::default().random_loss(0.03), 1);
//! let data: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
//! net.send_session(data.clone());
//! net.run_for(Duration::from_secs(10));
//! assert_eq!(net.finished_sessions(), vec![data]);
//! ```

use std::collections::{BTreeMap, VecDeque};
use std::ops::Range;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_proto::diode::{
    DiodeConfig, DiodeSessionId, LossReason, Receiver, ReceiverEvent, Sender, wire,
};

use crate::link::{Link, LinkConfig};

pub mod bursts;

pub use bursts::BurstModel;

/// What the sending application does with one session.
#[derive(Debug)]
struct Outgoing {
    id: DiodeSessionId,
    data: Bytes,
    written: usize,
    /// Stop writing (without finishing) once this many bytes were written.
    pause_at: Option<usize>,
}

/// What the receiving application saw of one session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    /// Bytes delivered, in order (left empty after
    /// [`DiodeNet::discard_data`]).
    pub data: Vec<u8>,
    /// How many bytes were delivered.
    pub delivered: u64,
    /// `SessionFinished` arrived (after every byte, with a matching digest).
    pub finished: bool,
    /// `SessionLost` arrived, with its reason.
    pub lost: Option<LossReason>,
    /// Data arrived after the session was reported finished or lost.
    pub data_after_end: bool,
}

/// A sender, a one-way link and a receiver in virtual time.
#[derive(Debug)]
pub struct DiodeNet {
    now: Instant,
    sender: Sender,
    receiver: Receiver,
    link: Link,
    outgoing: VecDeque<Outgoing>,
    /// Events with the instant they happened, in order.
    log: Vec<(Instant, ReceiverEvent)>,
    /// Per session, in the order they started at the receiver.
    received: BTreeMap<DiodeSessionId, Received>,
    order: Vec<DiodeSessionId>,
    sent_order: Vec<DiodeSessionId>,
    buf: Vec<u8>,
    start: Instant,
    /// Symbol datagrams the sender handed out.
    symbols_sent: u64,
    /// Symbol datagrams (by number) dropped before the link.
    bursts: Vec<Range<u64>>,
    burst_dropped: u64,
    /// Keep delivered bytes and `Data` events.
    keep_data: bool,
}

impl DiodeNet {
    /// Both ends with `config`, joined by `link`; `seed` drives the link and
    /// the sender's session ids.
    ///
    /// # Panics
    ///
    /// Panics if `config` or `link` is invalid.
    pub fn new(config: DiodeConfig, link: LinkConfig, seed: u64) -> Self {
        Self::with_configs(config.clone(), config, link, seed)
    }

    /// Like [`new`](Self::new), with different sender and receiver settings.
    ///
    /// # Panics
    ///
    /// Panics if a config or `link` is invalid.
    pub fn with_configs(
        sender: DiodeConfig,
        receiver: DiodeConfig,
        link: LinkConfig,
        seed: u64,
    ) -> Self {
        let now = Instant::now();
        Self {
            now,
            sender: Sender::new(sender, seed, now).expect("valid sender config"),
            receiver: Receiver::new(receiver, now).expect("valid receiver config"),
            link: Link::new(link, seed ^ 0x5eed),
            outgoing: VecDeque::new(),
            log: Vec::new(),
            received: BTreeMap::new(),
            order: Vec::new(),
            sent_order: Vec::new(),
            buf: vec![0; 256 * 1024],
            start: now,
            symbols_sent: 0,
            bursts: Vec::new(),
            burst_dropped: 0,
            keep_data: true,
        }
    }

    /// The virtual clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time since the network was made.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// The sender.
    pub fn sender(&mut self) -> &mut Sender {
        &mut self.sender
    }

    /// The receiver.
    pub fn receiver(&mut self) -> &mut Receiver {
        &mut self.receiver
    }

    /// The link.
    pub fn link(&mut self) -> &mut Link {
        &mut self.link
    }

    /// Queues a session: `data` is written, then the session finished.
    pub fn send_session(&mut self, data: impl Into<Bytes>) -> DiodeSessionId {
        self.queue(data.into(), None)
    }

    /// The sending application aborts session `id` now: what it did not
    /// write is never written.
    pub fn abort(&mut self, id: DiodeSessionId) {
        self.outgoing.retain(|o| o.id != id);
        let _ = self.sender.abort(id);
    }

    /// Queues a session whose application stops writing after `at` bytes and
    /// never finishes it (the sender flushes what it has).
    pub fn send_stalled_session(&mut self, data: impl Into<Bytes>, at: usize) -> DiodeSessionId {
        self.queue(data.into(), Some(at))
    }

    fn queue(&mut self, data: Bytes, pause_at: Option<usize>) -> DiodeSessionId {
        let id = self.sender.open().expect("a free session slot");
        self.sent_order.push(id);
        self.outgoing.push_back(Outgoing {
            id,
            data,
            written: 0,
            pause_at,
        });
        id
    }

    /// Replaces the sender by a new one (a restarted process): sessions not
    /// yet sent are forgotten.
    pub fn restart_sender(&mut self, config: DiodeConfig, seed: u64) {
        self.sender = Sender::new(config, seed, self.now).expect("valid sender config");
        self.outgoing.clear();
    }

    /// Replaces the receiver by a new one (a restarted process).
    pub fn restart_receiver(&mut self, config: DiodeConfig) {
        self.receiver = Receiver::new(config, self.now).expect("valid receiver config");
    }

    /// Changes the link's conditions from now on.
    pub fn set_link(&mut self, config: LinkConfig) {
        self.link.set_config(config);
    }

    /// Drops the sender's symbol datagrams number `start .. start + len`
    /// (counted from 0 over every symbol datagram it ever sent; heartbeats and
    /// other control datagrams are not counted nor dropped) before they reach
    /// the link: one burst of exactly `len` consecutive datagrams.
    pub fn drop_burst(&mut self, start: u64, len: u64) {
        self.bursts.push(start..start.saturating_add(len));
    }

    /// From now on, delivered bytes are counted ([`Received::delivered`])
    /// but neither kept nor logged: for long transfers, whose bytes the
    /// receiver's BLAKE3 check vouches for when it reports them finished.
    pub fn discard_data(&mut self) {
        self.keep_data = false;
    }

    /// Symbol datagrams the sender handed out so far.
    pub fn symbols_sent(&self) -> u64 {
        self.symbols_sent
    }

    /// Symbol datagrams dropped by [`drop_burst`](Self::drop_burst) so far.
    pub fn burst_dropped(&self) -> u64 {
        self.burst_dropped
    }

    /// Every receiver event so far, with its virtual instant.
    pub fn log(&self) -> &[(Instant, ReceiverEvent)] {
        &self.log
    }

    /// What the receiving application saw of `id`.
    pub fn received(&self, id: DiodeSessionId) -> Option<&Received> {
        self.received.get(&id)
    }

    /// Sessions in the order the receiver started them.
    pub fn received_order(&self) -> &[DiodeSessionId] {
        &self.order
    }

    /// The data of every session reported finished, in start order.
    pub fn finished_sessions(&self) -> Vec<Vec<u8>> {
        self.order
            .iter()
            .filter_map(|id| self.received.get(id))
            .filter(|r| r.finished)
            .map(|r| r.data.clone())
            .collect()
    }

    fn feed(&mut self) {
        for out in self.outgoing.iter_mut() {
            let limit = out.pause_at.unwrap_or(out.data.len()).min(out.data.len());
            while out.written < limit {
                let n = self
                    .sender
                    .write(out.id, &out.data[out.written..limit])
                    .unwrap_or(0);
                if n == 0 {
                    break;
                }
                out.written += n;
            }
        }
        while let Some(out) = self.outgoing.front() {
            let done = match out.pause_at {
                Some(at) if out.written >= at.min(out.data.len()) => {
                    let _ = self.sender.flush(out.id);
                    true
                }
                None if out.written == out.data.len() => {
                    let _ = self.sender.finish(out.id);
                    true
                }
                _ => false,
            };
            if !done {
                break;
            }
            self.outgoing.pop_front();
        }
    }

    fn flush_sender(&mut self) {
        loop {
            self.feed();
            self.sender.encode_pending();
            let mut sent = false;
            while let Some(t) = self.sender.poll_transmit(self.now, &mut self.buf) {
                sent = true;
                for d in self.buf[..t.len].chunks(t.segment_size) {
                    if d.len() >= wire::SYMBOL_OVERHEAD {
                        let n = self.symbols_sent;
                        self.symbols_sent += 1;
                        if self.bursts.iter().any(|b| b.contains(&n)) {
                            self.burst_dropped += 1;
                            continue;
                        }
                    }
                    self.link.send(self.now, Bytes::copy_from_slice(d));
                }
            }
            while self.sender.poll_event().is_some() {}
            if !sent {
                break;
            }
        }
    }

    fn drain_receiver(&mut self) {
        self.receiver.decode_pending(self.now);
        while let Some(event) = self.receiver.poll_event() {
            self.record(event);
        }
    }

    fn record(&mut self, event: ReceiverEvent) {
        match &event {
            ReceiverEvent::SessionStarted { session } => {
                self.order.push(*session);
                self.received.entry(*session).or_default();
            }
            ReceiverEvent::Data { session, data } => {
                let r = self.received.entry(*session).or_default();
                if r.finished || r.lost.is_some() {
                    r.data_after_end = true;
                }
                r.delivered += data.len() as u64;
                if !self.keep_data {
                    return;
                }
                r.data.extend_from_slice(data);
            }
            ReceiverEvent::SessionFinished { session, .. } => {
                self.received.entry(*session).or_default().finished = true;
            }
            ReceiverEvent::SessionLost { session, reason } => {
                self.received.entry(*session).or_default().lost = Some(*reason);
            }
            ReceiverEvent::HeartbeatMissing { .. } | ReceiverEvent::HeartbeatRecovered => {}
        }
        self.log.push((self.now, event));
    }

    /// Advances to the next thing that happens, no further than `limit`.
    fn step(&mut self, limit: Instant) {
        self.flush_sender();
        let next = [
            self.sender.poll_timeout(),
            self.link.next_arrival(),
            self.receiver.poll_timeout(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(limit)
        .min(limit);
        self.now = self.now.max(next);
        while let Some(d) = self.link.pop_arrival(self.now) {
            self.receiver.handle_datagram(self.now, &d);
        }
        self.drain_receiver();
        if self.receiver.poll_timeout().is_some_and(|t| t <= self.now) {
            self.receiver.handle_timeout(self.now);
            self.drain_receiver();
        }
        self.sender.handle_timeout(self.now);
        self.flush_sender();
    }

    /// Runs until `done` holds or `duration` of virtual time passed.
    pub fn run_until(&mut self, duration: Duration, mut done: impl FnMut(&Self) -> bool) {
        let limit = self.now + duration;
        while self.now < limit && !done(self) {
            self.step(limit);
        }
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(duration, |_| false);
    }

    /// Runs until every queued session was reported finished or lost at the
    /// receiver, or `duration` passed.
    pub fn run_sessions(&mut self, duration: Duration) {
        self.run_until(duration, |net| {
            net.outgoing.is_empty()
                && net.sent_order.iter().all(|id| {
                    net.received
                        .get(id)
                        .is_some_and(|r| r.finished || r.lost.is_some())
                })
        });
    }
}
