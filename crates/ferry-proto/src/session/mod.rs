//! One session's state machine: handshake, reliable messages, acks, recovery,
//! keep-alive, datagrams and close. Driven by the [`Endpoint`](crate::Endpoint).

pub(crate) mod timer;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, trace};

use crate::config::{Config, MIN_MTU};
use crate::congestion::rate::{RateEstimator, Sampler};
use crate::congestion::{AckEvent, Controller, LossEvent, Pacer};
use crate::crypto::{Handshake as Noise, PacketKeys};
use crate::endpoint::memory::RecvMemory;
use crate::endpoint::pool::BufferPool;
use crate::error::{DatagramError, ProtocolViolation, SendError, StreamError};
use crate::event::StreamEnd;
use crate::event::{CloseReason, TransportCode};
use crate::flow::WindowTuner;
use crate::id::{SessionId, Side};
use crate::message::{Accepted, fragment_cost};
use crate::recovery::ack::AckTracker;
use crate::recovery::rtt::RttEstimator;
use crate::recovery::sent::{SentKind, SentLog, SentPacket};
use crate::session::timer::{Timer, Timers};
use crate::stats::SessionStats;
use crate::stream::{ControlKind, Stream};
use crate::wire::packet::{
    Ack, Close, CloseCode, Data, FIXED_HEADER_LEN, Handshake, Header, MAX_HEADER_LEN, Packet,
    PacketKind, RepeatRequest, VERSION,
};
use crate::wire::protection::Protection;
use crate::wire::stream::{StreamId, StreamKind, StreamOp};

/// The lifecycle of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Created by `connect`; the connect packet has not left yet.
    Init,
    /// The connect packet is out; waiting for the acknowledgement.
    Handshaking,
    /// Messages flow both ways.
    Established,
    /// Closed locally; the close packet is out and late packets are absorbed.
    Closing,
    /// Finished. The session is removed from its endpoint.
    Closed,
}

/// Most ping answers queued at once; a flood of pings earns no more.
const MAX_PING_ACKS: usize = 8;
/// Retransmission backoff stops doubling after this many timeouts.
const MAX_BACKOFF: u32 = 10;
/// The largest ack delay a peer may announce.
const MAX_PEER_ACK_DELAY: Duration = Duration::from_secs(1);
/// Times a close packet is repeated unprompted.
const CLOSE_REPEATS: u32 = 2;
/// Longest wait between two connect packets.
const MAX_HANDSHAKE_RETRY: Duration = Duration::from_secs(1);
/// Longest retransmission timeout after backoff.
const MAX_RTO: Duration = Duration::from_secs(60);

/// What handshake packets travel under: the keys come out of the handshake.
static CHECKSUM: Protection = Protection::Checksum;

/// Binds a handshake to the protocol version and the session.
pub(crate) fn prologue(id: SessionId) -> [u8; 9] {
    let mut p = [0; 9];
    p[0] = VERSION;
    p[1..].copy_from_slice(&id.0);
    p
}

/// The handshake parameters `config` announces (without the Noise message).
pub(crate) fn own_params(config: &Config) -> Handshake {
    Handshake {
        max_udp_payload: config.mtu as u64,
        max_message_size: config.max_message_size as u64,
        initial_max_data: config.recv_window as u64,
        max_ack_delay_micros: config.max_ack_delay.as_micros() as u64,
        max_streams: config.max_streams as u64,
        initial_max_stream_data: config.stream_recv_window as u64,
        auth: Bytes::new(),
        token: Bytes::new(),
    }
}

/// The largest path challenge: header, token and trailer.
const CHALLENGE_LEN: u64 =
    (crate::wire::packet::MAX_HEADER_LEN + 8 + crate::crypto::TAG_LEN) as u64;

/// Challenges sent to one new address before giving up on it (until the
/// peer's packets come from it again).
const MAX_PATH_CHALLENGES: u32 = 3;
/// Path responses waiting to be sent.
const MAX_PATH_RESPONSES: usize = 4;
/// Stream refusals waiting to be sent.
const MAX_REFUSALS: usize = 16;

/// Paths with a shorter minimum RTT are not paced (a timer tick on most
/// runtimes).
const PACING_MIN_RTT: Duration = Duration::from_millis(1);

/// The send buffers grow to this many congestion windows (see
/// `Config::max_send_buffer`).
const SEND_BUFFER_WINDOWS: usize = 3;

/// Acks a receiver aims to send per round trip when packets arrive faster
/// than `ack_frequency` allows (decimation).
const ACKS_PER_RTT: u32 = 4;
/// The shortest delay a decimated ack waits (below, timers cost more than
/// the acks they save).
const MIN_ACK_DELAY: Duration = Duration::from_millis(1);

/// A new stream's receive window, as configured.
fn stream_window(config: &Config) -> WindowTuner {
    WindowTuner::new(
        config.stream_recv_window as u64,
        config.max_stream_recv_window as u64,
    )
}

fn kind_index(kind: StreamKind) -> usize {
    match kind {
        StreamKind::ReliableOrdered => 0,
        StreamKind::ReliableUnordered => 1,
        StreamKind::Unreliable => 2,
    }
}

/// A listener's proof that its peer receives at the address it sends from,
/// until it comes: with a key, any packet that opens under the session's
/// keys (which need the ConnectAck); without, the answer to a path challenge
/// sent with the ConnectAck. Until then the listener sends at most
/// `amplification_factor` times what it received.
#[derive(Debug)]
struct Validation {
    /// The challenge's token (clear sessions).
    token: u64,
    due: bool,
    /// Challenges sent so far (each waits twice as long for its answer).
    tries: u32,
    /// Bytes received from and sent to the peer's address so far.
    received: u64,
    sent: u64,
}

/// A new address the peer's authenticated packets came from, being checked.
#[derive(Debug)]
struct PathCheck {
    addr: SocketAddr,
    token: u64,
    due: bool,
    tries: u32,
    sent_at: Option<Instant>,
}

/// Things a session tells its endpoint, which turns them into [`crate::Event`]s.
#[derive(Debug)]
pub(crate) enum SessionEvent {
    Connected,
    Readable,
    StreamOpened(StreamId),
    StreamReadable(StreamId),
    StreamClosed(StreamId, StreamEnd),
    Datagram(Bytes),
    SendReady,
    Closed(CloseReason),
}

#[derive(Debug)]
pub(crate) struct SessionCore {
    id: SessionId,
    remote: SocketAddr,
    side: Side,
    state: State,
    config: Arc<Config>,
    protection: Protection,
    timers: Timers,
    /// UDP payload limit for this session: the smaller of the two sides'.
    mtu: usize,
    peer_max_message: usize,
    /// The peer's longest ack delay (our own until the handshake tells).
    peer_max_ack_delay: Duration,

    // Sending.
    next_pn: u64,
    /// Every open stream, stream 0 included, by id.
    /// Boxed: a map node holds eleven entries, and most sessions have only
    /// stream 0.
    streams: BTreeMap<u64, Box<Stream>>,
    /// The next sequence number of a stream this side opens, per kind.
    next_local_seq: [u64; 3],
    /// The next sequence number of a stream the peer opens, per kind: lower
    /// ones were opened already (and may be over).
    next_peer_seq: [u64; 3],
    /// The peer's limits and initial credit for streams.
    peer_max_streams: u64,
    peer_stream_window: u64,
    /// The stream whose new data went out last (round robin).
    last_served: u64,
    /// Streams of the peer's refused: a Refuse frame is due for each.
    refusals: VecDeque<u64>,
    sent: SentLog,
    rtt: RttEstimator,
    cc: Box<dyn Controller>,
    /// Spreads packets over time at the controller's rate.
    pacer: Pacer,
    /// Delivery counters for the controller's rate samples.
    delivery: RateEstimator,
    backoff: u32,
    /// Credit probes sent since the peer last granted more credit.
    probes: u32,
    largest_acked: Option<u64>,
    /// Cumulative credit the peer granted, and how much of it first
    /// transmissions used.
    peer_max_data: u64,
    credit_used: u64,
    directs_out: VecDeque<Bytes>,
    send_blocked: bool,

    // Handshake.
    /// The starter's Noise handshake, until the ConnectAck completes it.
    /// Boxed: it is some 850 bytes, and only a handshaking starter has one.
    noise: Option<Box<Noise>>,
    /// The Noise message this side's handshake packets carry (message 1 in
    /// every Connect, message 2 in every ConnectAck), written once.
    auth: Bytes,
    /// ConnectAcks that failed authentication (forged, or another key).
    auth_failures: u32,
    connect_due: bool,
    connect_ack_due: bool,
    connects_sent: u32,
    connect_sent_at: Option<Instant>,
    /// The listener's last ConnectAck, until an ack covers it: its RTT sample.
    connect_ack_sent: Option<(u64, Instant)>,
    /// Sending is held by the amplification limit (counted once per hold).
    amplification_blocked: bool,
    /// The starter's retry token, from a listener under a connect flood.
    retry_token: Bytes,
    /// A listener's address validation, until the peer proves its address.
    validation: Option<Validation>,

    // Receiving.
    acks: AckTracker,
    credit_received: u64,
    consumed: u64,
    advertised_max_data: u64,
    /// The session's receive window, grown toward the bandwidth-delay product.
    recv_window: WindowTuner,
    directs_queued: usize,

    // Migration.
    path: Option<PathCheck>,
    path_responses: VecDeque<(SocketAddr, u64)>,
    /// Where the datagram just written goes, when not to `remote`.
    destination: Option<SocketAddr>,

    // Liveness.
    last_recv: Instant,
    pings_unanswered: u32,
    ping_due: bool,
    last_ping: Option<(u64, Instant)>,
    ping_acks_due: VecDeque<u64>,

    // Closing.
    close_packet: Option<Close>,
    close_due: bool,
    close_sent_at: Option<Instant>,
    close_repeats: u32,

    stats: SessionStats,
    pub(crate) events: VecDeque<SessionEvent>,
    /// Where received messages' buffers come from: the endpoint's pool.
    pub(crate) pool: BufferPool,
    /// The endpoint's count of received data held, and this session's share.
    pub(crate) recv_memory: RecvMemory,
    recv_held: u64,
    /// Messages being reassembled on reliable streams, by (stream, message):
    /// the part of the full size reserved when their first fragment came
    /// that their fragments have not used yet. A message admitted within
    /// `max_recv_memory` can always complete.
    reservations: HashMap<(u64, u64), u64>,
    reserved: u64,
    /// Bookkeeping for the endpoint: this session's key in its timer index, and
    /// whether it sits in the send queue.
    pub(crate) timer_key: Option<Instant>,
    pub(crate) queued: bool,
    /// Counted among the endpoint's sessions whose peer's address is unproven.
    pub(crate) counted_unvalidated: bool,
}

impl SessionCore {
    fn new(
        id: SessionId,
        remote: SocketAddr,
        side: Side,
        config: Arc<Config>,
        now: Instant,
    ) -> Self {
        let recv_window = config.recv_window as u64;
        let mtu = config.mtu;
        Self {
            id,
            remote,
            side,
            state: State::Init,
            protection: Protection::default(),
            timers: Timers::default(),
            mtu,
            peer_max_message: config.max_message_size,
            peer_max_ack_delay: config.max_ack_delay,
            next_pn: 0,
            streams: BTreeMap::from([(
                0,
                Box::new(Stream::new(
                    StreamId::DEFAULT,
                    StreamKind::ReliableOrdered,
                    config.max_message_size,
                    0,
                    stream_window(&config),
                )),
            )]),
            // Stream 0 is the starter's first reliable ordered stream.
            next_local_seq: [u64::from(side == Side::Starter), 0, 0],
            next_peer_seq: [u64::from(side == Side::Listener), 0, 0],
            peer_max_streams: 0,
            peer_stream_window: 0,
            last_served: 0,
            refusals: VecDeque::new(),
            sent: SentLog::default(),
            rtt: RttEstimator::new(config.initial_rtt),
            cc: config.congestion.build(mtu, id.to_u64()),
            pacer: Pacer::new(mtu),
            delivery: RateEstimator::default(),
            backoff: 0,
            probes: 0,
            largest_acked: None,
            peer_max_data: 0,
            credit_used: 0,
            directs_out: VecDeque::new(),
            send_blocked: false,
            noise: None,
            auth: Bytes::new(),
            auth_failures: 0,
            connect_due: false,
            connect_ack_due: false,
            connects_sent: 0,
            connect_sent_at: None,
            connect_ack_sent: None,
            amplification_blocked: false,
            retry_token: Bytes::new(),
            validation: None,
            acks: AckTracker::new(),
            credit_received: 0,
            consumed: 0,
            advertised_max_data: recv_window,
            recv_window: WindowTuner::new(recv_window, config.max_recv_window as u64),
            directs_queued: 0,
            path: None,
            path_responses: VecDeque::new(),
            destination: None,
            last_recv: now,
            pings_unanswered: 0,
            ping_due: false,
            last_ping: None,
            ping_acks_due: VecDeque::new(),
            close_packet: None,
            close_due: false,
            close_sent_at: None,
            close_repeats: 0,
            stats: SessionStats::default(),
            events: VecDeque::new(),
            pool: BufferPool::default(),
            recv_memory: RecvMemory::default(),
            recv_held: 0,
            reservations: HashMap::new(),
            reserved: 0,
            timer_key: None,
            queued: false,
            counted_unvalidated: false,
            config,
        }
    }

    /// A session started by this side: the connect packet goes out on the next poll.
    pub(crate) fn connect(
        id: SessionId,
        remote: SocketAddr,
        config: Arc<Config>,
        now: Instant,
        rng: &mut impl rand::CryptoRng,
    ) -> Self {
        let mut s = Self::new(id, remote, Side::Starter, config, now);
        if let Some(psk) = &s.config.psk {
            let mut noise = Noise::initiator(psk, &prologue(id), rng);
            let mut message = Vec::new();
            // Message 1 carries nothing secret (it has no forward secrecy).
            if noise.write_message(&[], &mut message).is_ok() {
                s.auth = message.into();
                s.noise = Some(Box::new(noise));
            }
        }
        s.connect_due = true;
        s.timers
            .set(Timer::HandshakeDeadline, now + s.config.handshake_timeout);
        s
    }

    /// A session accepted from a peer's connect packet (already checked and,
    /// with a key, authenticated: `keys` are the session's packet keys and
    /// the Noise message 2 its ConnectAcks carry). `challenge` is `None` when
    /// the connect carried a valid retry token (the peer's address is proven),
    /// else the token of the path challenge that proves it; `len` is the
    /// connect datagram's size.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn accept(
        id: SessionId,
        remote: SocketAddr,
        config: Arc<Config>,
        now: Instant,
        pn: u64,
        peer: &Handshake,
        keys: Option<(PacketKeys, Bytes)>,
        challenge: Option<u64>,
        len: usize,
    ) -> Self {
        let mut s = Self::new(id, remote, Side::Listener, config, now);
        let encrypted = keys.is_some();
        if let Some((keys, message)) = keys {
            s.protection = Protection::Aead(keys);
            s.auth = message;
        }
        s.apply_peer_params(peer);
        s.acks.on_packet(pn, false, now, Duration::ZERO, 1);
        s.connect_ack_due = true;
        s.establish(now);
        if let Some(token) = challenge {
            s.validation = Some(Validation {
                token,
                // An encrypted peer proves its address by its first packet.
                due: !encrypted,
                tries: 0,
                received: len as u64,
                sent: 0,
            });
            // A peer that never proves its address is dropped.
            s.timers
                .set(Timer::HandshakeDeadline, now + s.config.handshake_timeout);
        }
        s
    }

    /// The room a message needs, from one of its fragments: every fragment
    /// counted as a full packet's, and no more than the largest message.
    fn reservation_for(&self, fragments: u32, len: usize) -> u64 {
        let fragments = u64::from(fragments);
        let per_fragment = crate::message::fragment_cost(self.mtu.max(len));
        let largest = crate::message::fragment_cost(self.config.max_message_size)
            + fragments.saturating_sub(1) * crate::config::FRAGMENT_COST;
        fragments.saturating_mul(per_fragment).min(largest)
    }

    /// Accounts a new fragment of a reliable stream against its message's
    /// reservation, making one for a message that starts; a finished message
    /// gives back what it did not use.
    fn reserve(
        reservations: &mut HashMap<(u64, u64), u64>,
        reserved: &mut u64,
        key: (u64, u64),
        need: u64,
        cost: u64,
        assembling: bool,
    ) {
        let remaining = match reservations.remove(&key) {
            Some(left) => {
                *reserved -= left.min(*reserved);
                left
            }
            None => need,
        };
        if assembling {
            let left = remaining.saturating_sub(cost);
            reservations.insert(key, left);
            *reserved += left;
        }
    }

    /// Gives back the reservations of a stream that will receive no more.
    fn release_reservations(&mut self, stream: u64) {
        let mut freed = 0;
        self.reservations.retain(|&(s, _), left| {
            if s == stream {
                freed += *left;
            }
            s != stream
        });
        self.reserved -= freed.min(self.reserved);
    }

    /// Tells the endpoint's count what this session holds now: reliable data
    /// received and not yet taken, and the room reserved for messages under
    /// way.
    fn sync_recv_memory(&mut self) {
        let held = self.credit_received.saturating_sub(self.consumed) + self.reserved;
        self.recv_memory.update(self.recv_held, held);
        self.recv_held = held;
    }

    /// Whether the peer proved it receives at its address (always, for a starter).
    pub(crate) fn is_validated(&self) -> bool {
        self.validation.is_none()
    }

    fn validated(&mut self) {
        if self.validation.take().is_some() {
            trace!(session = %self.id, "peer address validated");
            self.timers.clear(Timer::HandshakeDeadline);
            self.timers.clear(Timer::Handshake);
        }
    }

    /// Whether a connect packet's parameters are usable.
    pub(crate) fn valid_handshake(h: &Handshake) -> bool {
        h.max_udp_payload >= MIN_MTU as u64
            && h.max_message_size > 0
            && h.initial_max_data > 0
            && h.initial_max_stream_data > 0
    }

    fn apply_peer_params(&mut self, h: &Handshake) {
        self.mtu = self.config.mtu.min(h.max_udp_payload as usize);
        self.peer_max_message = usize::try_from(h.max_message_size).unwrap_or(usize::MAX);
        self.peer_max_data = self.peer_max_data.max(h.initial_max_data);
        self.peer_max_streams = h.max_streams;
        self.peer_stream_window = h.initial_max_stream_data;
        for stream in self.streams.values_mut() {
            stream.peer_max_data = stream.peer_max_data.max(h.initial_max_stream_data);
        }
        // Bounded so that a peer cannot stall our timers with an absurd value.
        self.peer_max_ack_delay =
            Duration::from_micros(h.max_ack_delay_micros).min(MAX_PEER_ACK_DELAY);
        self.new_path();
    }

    /// A path whose capacity is unknown: a fresh controller and pacer.
    fn new_path(&mut self) {
        self.cc = self.config.congestion.build(self.mtu, self.id.to_u64());
        self.pacer = Pacer::new(self.mtu);
    }

    fn establish(&mut self, now: Instant) {
        self.state = State::Established;
        // A retry token is for the handshake only.
        self.retry_token = Bytes::new();
        self.timers.clear(Timer::Handshake);
        self.timers.clear(Timer::HandshakeDeadline);
        self.last_recv = now;
        self.arm_keepalive();
        self.events.push_back(SessionEvent::Connected);
        debug!(session = %self.id, side = ?self.side, "session established");
    }

    // ---- getters ----

    pub(crate) fn remote(&self) -> SocketAddr {
        self.remote
    }

    pub(crate) fn side(&self) -> Side {
        self.side
    }

    pub(crate) fn state(&self) -> State {
        self.state
    }

    pub(crate) fn protection(&self) -> &Protection {
        &self.protection
    }

    /// How a received packet of `kind` is protected: handshake packets, and a
    /// refusal before the handshake completed, carry only a checksum.
    pub(crate) fn protection_for(&self, kind: PacketKind) -> &Protection {
        match kind {
            PacketKind::Connect | PacketKind::ConnectAck | PacketKind::Retry => &CHECKSUM,
            PacketKind::Close if matches!(self.state, State::Init | State::Handshaking) => {
                &CHECKSUM
            }
            _ => &self.protection,
        }
    }

    /// Where the datagram [`poll_transmit`](Self::poll_transmit) just wrote
    /// goes: a path challenge or response may go elsewhere than `remote`.
    pub(crate) fn take_destination(&mut self) -> SocketAddr {
        self.destination.take().unwrap_or(self.remote)
    }

    /// Whether a packet of `kind` from an address other than the peer's may
    /// be looked at: only an encrypted, established session can move, and only
    /// for a packet that then proves its key.
    pub(crate) fn may_migrate(&self, kind: PacketKind) -> bool {
        matches!(self.protection, Protection::Aead(_))
            && self.state == State::Established
            && !matches!(kind, PacketKind::Connect | PacketKind::ConnectAck)
    }

    /// What to answer, after the session is forgotten, to a peer that keeps
    /// sending: the close packet and the next packet number, if this side closed.
    pub(crate) fn retirement(&self) -> Option<(Close, u64)> {
        self.close_packet.clone().map(|c| (c, self.next_pn))
    }

    pub(crate) fn next_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    pub(crate) fn stats(&self) -> SessionStats {
        let mut s = self.stats.clone();
        s.rtt = self.rtt.smoothed();
        s.min_rtt = self.rtt.min().unwrap_or_default();
        s.recv_window = self.recv_window.window();
        s.congestion_window = self.cc.window();
        s.congestion_control = self.cc.kind();
        s.pacing_rate = self.pacer.rate();
        s.estimated_bandwidth = self.cc.bandwidth().unwrap_or(0);
        s.unreliable_dropped = self.streams.values().map(|s| s.dropped()).sum();
        s.bytes_in_flight = self.sent.bytes_in_flight();
        s
    }

    /// Largest message `send` accepts now.
    pub(crate) fn max_message_size(&self) -> usize {
        self.config.max_message_size.min(self.peer_max_message)
    }

    /// Largest unreliable datagram that fits in one packet.
    pub(crate) fn max_datagram_size(&self) -> usize {
        self.mtu - MAX_HEADER_LEN - self.protection.overhead()
    }

    // ---- application commands ----

    pub(crate) fn send(&mut self, stream: u64, data: Bytes) -> Result<(), SendError> {
        if matches!(self.state, State::Closing | State::Closed) {
            return Err(SendError::Closed);
        }
        let max = self.max_message_size();
        if data.len() > max {
            return Err(SendError::TooLarge {
                size: data.len(),
                max,
            });
        }
        let buffered = self.buffered();
        let (session_limit, stream_limit) = self.send_limits();
        let Some(stream) = self.streams.get_mut(&stream) else {
            return Err(SendError::UnknownStream);
        };
        if stream.send_closed {
            return Err(if stream.refused {
                SendError::UnknownStream
            } else {
                SendError::StreamClosed
            });
        }
        // Per stream, then per session: a stream whose reader stopped fills
        // its own share and blocks, while the others keep sending.
        let mine = stream.send.buffered();
        if mine > 0 && mine + data.len() > stream_limit {
            stream.send_blocked = true;
            return Err(SendError::Blocked);
        }
        if buffered > 0 && buffered + data.len() > session_limit {
            self.send_blocked = true;
            return Err(SendError::Blocked);
        }
        stream.send.push(data);
        stream.sent_messages += 1;
        self.stats.messages_sent += 1;
        Ok(())
    }

    /// Bytes of messages not yet acknowledged, over every stream.
    fn buffered(&self) -> usize {
        self.streams.values().map(|s| s.send.buffered()).sum()
    }

    /// Opens a stream of `kind`; the peer learns of it with its first packet.
    pub(crate) fn open_stream(&mut self, kind: StreamKind) -> Result<StreamId, StreamError> {
        if !matches!(self.state, State::Established) {
            return Err(StreamError::NotConnected);
        }
        let open = self
            .streams
            .keys()
            .filter(|&&id| id != 0 && StreamId(id).opener() == self.side)
            .count() as u64;
        if open >= self.peer_max_streams {
            return Err(StreamError::TooManyStreams {
                max: self.peer_max_streams,
            });
        }
        let seq = &mut self.next_local_seq[kind_index(kind)];
        let id = StreamId::new(*seq, kind, self.side);
        *seq += 1;
        let stream = Stream::new(
            id,
            kind,
            self.config.max_message_size,
            self.peer_stream_window,
            stream_window(&self.config),
        );
        self.streams.insert(id.0, Box::new(stream));
        Ok(id)
    }

    /// This side sends no more on `stream`; the peer reads what was sent, then
    /// the end.
    pub(crate) fn finish_stream(&mut self, stream: StreamId) -> Result<(), SendError> {
        let s = self
            .streams
            .get_mut(&stream.0)
            .ok_or(SendError::UnknownStream)?;
        if s.send_closed {
            return Err(SendError::StreamClosed);
        }
        s.send_closed = true;
        s.end = Some(StreamOp::Finish {
            messages: s.sent_messages,
        });
        s.end_due = true;
        Ok(())
    }

    /// This side abandons sending on `stream`: what is not delivered yet is
    /// dropped at both ends, and the peer learns `code`.
    pub(crate) fn reset_stream(&mut self, stream: StreamId, code: u64) -> Result<(), SendError> {
        let s = self
            .streams
            .get_mut(&stream.0)
            .ok_or(SendError::UnknownStream)?;
        if s.send_closed && !matches!(s.end, Some(StreamOp::Finish { .. })) {
            return Err(SendError::StreamClosed);
        }
        s.send_closed = true;
        s.send.clear();
        s.end = Some(StreamOp::Reset {
            code,
            messages: s.sent_messages,
        });
        s.end_due = true;
        s.end_acked = false;
        Ok(())
    }

    /// The ids of the streams open on this session.
    pub(crate) fn stream_ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.streams.keys().map(|&id| StreamId(id))
    }

    pub(crate) fn send_datagram(&mut self, data: Bytes) -> Result<(), DatagramError> {
        if self.state != State::Established {
            return Err(DatagramError::NotConnected);
        }
        let max = self.max_datagram_size();
        if data.len() > max {
            return Err(DatagramError::TooLarge {
                size: data.len(),
                max,
            });
        }
        if self.directs_out.len() >= self.config.datagram_queue {
            self.directs_out.pop_front();
            self.stats.datagrams_dropped += 1;
        }
        self.directs_out.push_back(data);
        Ok(())
    }

    pub(crate) fn close(&mut self, now: Instant, code: u64) {
        self.close_with(
            now,
            CloseCode::Application(code),
            Bytes::new(),
            CloseReason::Local { code },
        );
    }

    fn close_with(&mut self, now: Instant, code: CloseCode, reason: Bytes, why: CloseReason) {
        if matches!(self.state, State::Closing | State::Closed) {
            return;
        }
        debug!(session = %self.id, reason = %why, "closing session");
        let contacted = self.state != State::Init;
        for stream in self.streams.values_mut() {
            stream.send.clear();
        }
        self.directs_out.clear();
        self.timers.clear_all();
        self.events.push_back(SessionEvent::Closed(why));
        if contacted {
            self.state = State::Closing;
            self.close_packet = Some(Close { code, reason });
            self.close_due = true;
            // The close is repeated a few times, one RTO apart, in case it is lost;
            // after the drain period the endpoint still answers the peer's packets
            // with it.
            let rto = self
                .rtt
                .rto(self.peer_max_ack_delay, self.config.delivery_timeout);
            self.timers.set(Timer::Retransmit, now + rto);
            let drain = (rto * (CLOSE_REPEATS + 2)).min(MAX_RTO);
            self.timers.set(Timer::Drain, now + drain);
        } else {
            self.state = State::Closed;
        }
    }

    /// The peer cannot be reached while handshaking: give up at once.
    pub(crate) fn refuse(&mut self) {
        if matches!(self.state, State::Init | State::Handshaking) {
            self.abandon(CloseReason::Refused);
        }
    }

    /// Ends the session at once, without telling the peer (it is gone or silent).
    fn abandon(&mut self, why: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        debug!(session = %self.id, reason = %why, "session abandoned");
        for stream in self.streams.values_mut() {
            stream.send.clear();
        }
        self.directs_out.clear();
        self.timers.clear_all();
        if self.state != State::Closing {
            self.events.push_back(SessionEvent::Closed(why));
        }
        self.state = State::Closed;
    }

    fn violation(&mut self, now: Instant, v: ProtocolViolation) {
        debug!(session = %self.id, violation = %v, "peer broke the protocol");
        let code = TransportCode::for_violation(v) as u64;
        self.close_with(
            now,
            CloseCode::Transport(code),
            Bytes::from(v.to_string()),
            CloseReason::ProtocolError(v),
        );
    }

    /// The next delivered message, taken by the application: its flow-control
    /// cost returns to the peer as credit.
    pub(crate) fn recv(&mut self, stream: u64) -> Option<Bytes> {
        let s = self.streams.get_mut(&stream)?;
        let (data, cost) = s.inbox.pop_front()?;
        if s.kind.is_reliable() {
            s.consumed += cost;
            let window = s.window.window();
            if s.consumed + window - s.advertised >= window / 4 {
                s.credit_due = true;
            }
            self.consumed += cost;
            self.sync_recv_memory();
            let window = self.recv_window.window();
            if self.state == State::Established
                && self.consumed + window - self.advertised_max_data >= window / 4
            {
                self.acks.request_immediate();
            }
        }
        self.check_stream_end(stream);
        Some(data)
    }

    /// Reports a stream's end when it comes, and forgets a stream both sides
    /// are done with.
    fn check_stream_end(&mut self, id: u64) {
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        if let Some(end) = s.read_end() {
            s.end_reported = true;
            self.events
                .push_back(SessionEvent::StreamClosed(StreamId(id), end));
        }
        if id != 0 && s.end_reported && s.send_done() {
            self.streams.remove(&id);
        }
    }

    /// Whether delivered messages wait to be taken (a closed session stays
    /// readable until they are).
    pub(crate) fn has_unread(&self) -> bool {
        self.streams.values().any(|s| !s.inbox.is_empty())
    }

    pub(crate) fn on_datagram_consumed(&mut self) {
        self.directs_queued = self.directs_queued.saturating_sub(1);
    }

    // ---- input ----

    /// A listener's first RTT sample: the starter acks the ConnectAck at once.
    fn sample_connect_ack_rtt(&mut self, now: Instant, ack: &Ack) {
        let Some((pn, at)) = self.connect_ack_sent else {
            return;
        };
        if !ack.ranges.iter().any(|r| r.contains(&pn)) {
            return;
        }
        self.connect_ack_sent = None;
        if self.rtt.min().is_none() {
            let largest = ack.ranges.first().map(|r| *r.end());
            let delay = if largest == Some(pn) {
                Duration::from_micros(ack.delay_micros).min(self.peer_max_ack_delay)
            } else {
                Duration::ZERO
            };
            self.rtt.update(now.saturating_duration_since(at), delay);
        }
    }

    /// How long an ack may wait, and after how many packets it must go. A
    /// sender with few packets per round trip gets an ack every
    /// `ack_frequency` packets; one with many gets about four acks per round
    /// trip, but one at least every `ack_frequency_bulk` packets. Acks wait
    /// at most a quarter of the RTT (at least 1 ms, at most `max_ack_delay`).
    fn ack_policy(&mut self, now: Instant) -> (Duration, u32) {
        let srtt = self.rtt.smoothed();
        let delay = (srtt / 4).max(MIN_ACK_DELAY).min(self.config.max_ack_delay);
        let per_rtt = self.acks.arrival_rate(now, srtt);
        let frequency = (per_rtt / ACKS_PER_RTT).clamp(
            self.config.ack_frequency,
            self.config
                .ack_frequency_bulk
                .max(self.config.ack_frequency),
        );
        (delay, frequency)
    }

    /// Handles one packet that passed the integrity check.
    pub(crate) fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: Header,
        packet: Packet,
        len: usize,
        challenge_token: u64,
    ) {
        self.stats.packets_received += 1;
        self.stats.bytes_received += len as u64;
        if let Some(v) = &mut self.validation
            && from == self.remote
        {
            v.received += len as u64;
        }
        match self.state {
            State::Closed => return,
            State::Closing => {
                if matches!(packet, Packet::Close(_)) {
                    self.state = State::Closed;
                } else if self
                    .close_sent_at
                    .is_none_or(|t| now >= t + self.rtt.smoothed())
                {
                    // The peer missed our close: say it again, at most once per RTT.
                    self.close_due = true;
                }
                return;
            }
            State::Init | State::Handshaking => {
                // Before the handshake completes only its answer (or a refusal) counts.
                match packet {
                    Packet::ConnectAck(h) => self.on_connect_ack(now, header.number, &h),
                    Packet::Retry { token } => self.on_retry(token),
                    Packet::Close(c) => self.on_close(c),
                    _ => {
                        trace!(session = %self.id, kind = ?header.kind, "dropped before handshake")
                    }
                }
                return;
            }
            State::Established => {}
        }
        if let Packet::Data(d) = &packet
            && !self.reservations.contains_key(&(d.stream, d.message))
            && !self
                .streams
                .get(&d.stream)
                .is_some_and(|s| s.recv.is_delivered(d.message))
            && self.recv_memory.used() + self.reservation_for(d.fragments, d.payload.len())
                > self.config.max_recv_memory as u64
        {
            // A new message the endpoint has no room for: drop it
            // unacknowledged, and its sender sends it again later. (Messages
            // under way have their room reserved; a late copy of one delivered
            // costs nothing, and is acknowledged.)
            self.stats.dropped_recv_memory += 1;
            return;
        }
        let eliciting = matches!(
            packet,
            Packet::Data(_) | Packet::Direct(_) | Packet::StreamControl { .. }
        );
        let (ack_delay, ack_frequency) = if eliciting {
            self.ack_policy(now)
        } else {
            (self.config.max_ack_delay, self.config.ack_frequency)
        };
        let fresh = self
            .acks
            .on_packet(header.number, eliciting, now, ack_delay, ack_frequency);
        self.arm_ack_timer(now);
        // Any packet from the peer proves it alive.
        self.last_recv = now;
        self.pings_unanswered = 0;
        self.arm_keepalive();
        if !fresh {
            self.stats.duplicates += 1;
            return;
        }
        if self.validation.is_some()
            && matches!(self.protection, Protection::Aead(_))
            && header.kind != PacketKind::Connect
            && from == self.remote
        {
            // It opened under keys that need our ConnectAck.
            self.validated();
        }
        if from != self.remote {
            // Authenticated (it decrypted) and new: the peer may have moved.
            // Answer where it is now only once that path proves it receives.
            self.check_path(now, from, challenge_token);
        }
        match packet {
            Packet::Connect(_) => {
                if self.side == Side::Listener {
                    // Our connect ack was lost: send it again.
                    self.connect_ack_due = true;
                }
            }
            Packet::ConnectAck(_) | Packet::Retry { .. } => {}
            Packet::Data(d) => {
                self.on_data(now, d);
                self.sync_recv_memory();
            }
            Packet::StreamControl { stream, op } => self.on_stream_control(now, stream, op),
            Packet::Ack(a) => self.on_ack(now, a),
            Packet::RepeatRequest(r) => self.on_repeat_request(now, r),
            Packet::Ping => {
                if self.ping_acks_due.len() >= MAX_PING_ACKS {
                    self.ping_acks_due.pop_front();
                }
                self.ping_acks_due.push_back(header.number);
                // A ping may be a probe from a sender waiting for credit.
                self.acks.request_immediate();
            }
            Packet::PingAck { ping } => {
                if let Some((pn, at)) = self.last_ping
                    && pn == ping
                {
                    self.rtt
                        .update(now.saturating_duration_since(at), Duration::ZERO);
                    self.last_ping = None;
                    // The path works: stop backing off.
                    self.backoff = 0;
                }
            }
            Packet::PathChallenge { token } => {
                if self.path_responses.len() >= MAX_PATH_RESPONSES {
                    self.path_responses.pop_front();
                }
                self.path_responses.push_back((from, token));
            }
            Packet::PathResponse { token } => {
                if self
                    .validation
                    .as_ref()
                    .is_some_and(|v| v.token == token && from == self.remote)
                {
                    self.validated();
                } else if let Some(check) = &self.path
                    && check.token == token
                    && check.addr == from
                {
                    debug!(session = %self.id, from = %self.remote, to = %from, "peer moved");
                    self.remote = from;
                    self.path = None;
                    self.stats.migrations += 1;
                    // A new path: its capacity is unknown.
                    self.new_path();
                }
            }
            Packet::Close(c) => self.on_close(c),
            Packet::Direct(data) => {
                if self.directs_queued >= self.config.datagram_queue {
                    self.stats.datagrams_dropped += 1;
                } else {
                    self.directs_queued += 1;
                    self.stats.datagrams_received += 1;
                    // A copy of its own: the received datagram may be a slice
                    // of a larger receive buffer, which it would keep alive.
                    let data = Bytes::copy_from_slice(&data);
                    self.events.push_back(SessionEvent::Datagram(data));
                }
            }
        }
    }

    /// Starts (or repeats, at most once per RTO) a challenge to `addr`.
    fn check_path(&mut self, now: Instant, addr: SocketAddr, token: u64) {
        let rto = self.rto();
        match &mut self.path {
            Some(check) if check.addr == addr => {
                let waited = check.sent_at.is_none_or(|t| now >= t + rto);
                if check.tries < MAX_PATH_CHALLENGES && waited {
                    check.due = true;
                }
            }
            _ => {
                self.path = Some(PathCheck {
                    addr,
                    token,
                    due: true,
                    tries: 0,
                    sent_at: None,
                });
            }
        }
    }

    /// A listener under a connect flood asks us to prove our address: connect
    /// again, at once, with its token. Only the first retry counts (a
    /// listener sends one per connect; an attacker who saw our connect could
    /// forge others, and they would only cost us this handshake).
    fn on_retry(&mut self, token: Bytes) {
        if self.side != Side::Starter
            || !self.retry_token.is_empty()
            || token.is_empty()
            || token.len() > crate::wire::packet::MAX_RETRY_TOKEN
        {
            return;
        }
        debug!(session = %self.id, "listener asked for a retry");
        self.retry_token = token;
        self.connect_due = true;
        // The next connect is a new exchange: its answer is an RTT sample.
        self.connects_sent = 0;
    }

    fn on_connect_ack(&mut self, now: Instant, pn: u64, h: &Handshake) {
        if self.side != Side::Starter {
            return;
        }
        if let Some(noise) = &mut self.noise {
            // Message 2 must open with our key, and repeat the listener's
            // parameters so that they are authenticated too.
            let mut payload = Vec::new();
            let mut params = Vec::new();
            h.encode_params(&mut params);
            if h.auth.is_empty()
                || noise.read_message(&h.auth, &mut payload).is_err()
                || payload != params
            {
                // Forged, or the listener holds another key: keep waiting for
                // a genuine answer until the handshake times out.
                self.auth_failures += 1;
                debug!(session = %self.id, "connect ack failed authentication");
                return;
            }
            match self.noise.take().map(|noise| noise.into_keys()) {
                Some(Ok(keys)) => self.protection = Protection::Aead(keys),
                _ => {
                    self.abandon(CloseReason::AuthenticationFailed);
                    return;
                }
            }
        } else if !h.auth.is_empty() {
            // The listener encrypts and we hold no key.
            self.auth_failures += 1;
            return;
        }
        if !Self::valid_handshake(h) {
            self.violation(now, ProtocolViolation::BadHandshake);
            return;
        }
        self.apply_peer_params(h);
        if self.connects_sent == 1
            && let Some(at) = self.connect_sent_at
        {
            // Karn: only an unambiguous exchange gives an RTT sample.
            self.rtt
                .update(now.saturating_duration_since(at), Duration::ZERO);
        }
        self.acks.on_packet(pn, false, now, Duration::ZERO, 1);
        // Ack the ConnectAck at once: it gives the listener its first RTT
        // sample, which its ack pacing and window growth rely on.
        self.acks.request_immediate();
        self.establish(now);
    }

    fn on_close(&mut self, c: Close) {
        let why = match c.code {
            CloseCode::Application(code) => CloseReason::Remote { code },
            CloseCode::Transport(code) => TransportCode::reason(code),
        };
        self.abandon(why);
    }

    /// The stream a peer's packet names: an open one, or one the peer opens
    /// now (with every lower one of its kind it has not used yet). `None` for
    /// a stream that is over (late packets are dropped) or refused; `Err` for
    /// an id the peer cannot use.
    fn peer_stream(&mut self, id: u64) -> Result<Option<u64>, ProtocolViolation> {
        if self.streams.contains_key(&id) {
            return Ok(Some(id));
        }
        let sid = StreamId(id);
        let kind = sid.kind().ok_or(ProtocolViolation::UnknownStream)?;
        let k = kind_index(kind);
        if sid.opener() == self.side {
            // Ours: over already, or never opened.
            return if sid.sequence() < self.next_local_seq[k] {
                Ok(None)
            } else {
                Err(ProtocolViolation::UnknownStream)
            };
        }
        if sid.sequence() < self.next_peer_seq[k] {
            return Ok(None);
        }
        let mut open = self
            .streams
            .keys()
            .filter(|&&i| i != 0 && StreamId(i).opener() != self.side)
            .count();
        let max = self.config.max_streams;
        // Opening stream n opens every lower one of its kind: a peer never has
        // more than `max_streams` of them opening at once, so a larger jump is
        // a violation (and the loop below stays short).
        if sid.sequence() - self.next_peer_seq[k] >= max as u64 {
            return Err(ProtocolViolation::StreamLimit);
        }
        for seq in self.next_peer_seq[k]..=sid.sequence() {
            let new = StreamId::new(seq, kind, sid.opener());
            if open >= max {
                if self.refusals.len() < MAX_REFUSALS {
                    self.refusals.push_back(new.0);
                }
                continue;
            }
            open += 1;
            let stream = Stream::new(
                new,
                kind,
                self.config.max_message_size,
                self.peer_stream_window,
                stream_window(&self.config),
            );
            self.streams.insert(new.0, Box::new(stream));
            self.events.push_back(SessionEvent::StreamOpened(new));
        }
        self.next_peer_seq[k] = sid.sequence() + 1;
        Ok(self.streams.contains_key(&id).then_some(id))
    }

    fn on_data(&mut self, now: Instant, d: Data) {
        let id = match self.peer_stream(d.stream) {
            Ok(Some(id)) => id,
            Ok(None) => {
                self.stats.duplicates += 1;
                return;
            }
            Err(v) => {
                self.violation(now, v);
                return;
            }
        };
        let message = d.message;
        let need = self.reservation_for(d.fragments, d.payload.len());
        let Some(stream) = self.streams.get_mut(&id) else {
            return;
        };
        match stream.recv.on_fragment_with(
            d.message,
            d.fragment,
            d.fragments,
            d.payload,
            &self.pool,
        ) {
            Err(v) => self.violation(now, v),
            Ok(Accepted::Duplicate) => self.stats.duplicates += 1,
            Ok(Accepted::New(cost)) => {
                if stream.kind.is_reliable() {
                    // (A stream the peer reset delivers nothing more: no room kept.)
                    let assembling =
                        stream.recv.is_assembling(message) && stream.peer_reset.is_none();
                    stream.received_cost += cost;
                    self.credit_received += cost;
                    Self::reserve(
                        &mut self.reservations,
                        &mut self.reserved,
                        (id, message),
                        need,
                        cost,
                        assembling,
                    );
                    if stream.received_cost > stream.advertised
                        || self.credit_received > self.advertised_max_data
                    {
                        self.violation(now, ProtocolViolation::FlowControl);
                        return;
                    }
                }
                if stream.peer_reset.is_some() {
                    // Abandoned by the peer: nothing more is delivered.
                    return;
                }
                let was_empty = stream.inbox.is_empty();
                while let Some((data, cost)) = stream.recv.pop_ready_with(&self.pool) {
                    self.stats.messages_received += 1;
                    stream.delivered += 1;
                    stream.inbox.push_back((data, cost));
                }
                if was_empty && !stream.inbox.is_empty() {
                    self.events.push_back(if id == 0 {
                        SessionEvent::Readable
                    } else {
                        SessionEvent::StreamReadable(StreamId(id))
                    });
                }
                // While data waits behind a hole, ack every packet at once (as TCP
                // sends a duplicate ack per out-of-order segment): the sender
                // learns of the loss, and of its repair, without delay.
                if stream.recv.has_hole() {
                    self.acks.request_immediate();
                }
            }
        }
    }

    fn on_stream_control(&mut self, now: Instant, id: u64, op: StreamOp) {
        if op == StreamOp::Refuse || matches!(op, StreamOp::Credit { .. }) {
            // About a stream this side sends on (ours, or the peer's).
            let Some(s) = self.streams.get_mut(&id) else {
                return;
            };
            match op {
                StreamOp::Credit { max_data } => {
                    s.peer_max_data = s.peer_max_data.max(max_data);
                }
                _ => {
                    s.refused = true;
                    s.send_closed = true;
                    s.send.clear();
                    self.check_stream_end(id);
                }
            }
            return;
        }
        let id = match self.peer_stream(id) {
            Ok(Some(id)) => id,
            Ok(None) => return,
            Err(v) => {
                self.violation(now, v);
                return;
            }
        };
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        match op {
            StreamOp::Finish { messages } => {
                s.peer_final.get_or_insert(messages);
            }
            StreamOp::Reset { code, .. } if s.peer_reset.is_none() => {
                s.peer_reset = Some(code);
                // What was received but will never be read returns as credit.
                if s.kind.is_reliable() {
                    let unread = s.received_cost - s.consumed;
                    s.consumed = s.received_cost;
                    self.consumed += unread;
                }
                s.inbox.clear();
                self.release_reservations(id);
                self.sync_recv_memory();
            }
            _ => {}
        }
        self.check_stream_end(id);
    }

    fn on_ack(&mut self, now: Instant, ack: Ack) {
        self.sample_connect_ack_rtt(now, &ack);
        if ack.max_data > self.peer_max_data {
            self.peer_max_data = ack.max_data;
            self.probes = 0;
        }
        let Some(largest) = ack.ranges.first().map(|r| *r.end()) else {
            return;
        };
        if largest >= self.next_pn {
            self.violation(now, ProtocolViolation::InvalidAck);
            return;
        }
        let mut newest: Option<SentPacket> = None;
        let mut acked_any = false;
        let mut bytes_acked = 0;
        let mut sampler = Sampler::default();
        for range in ack.ranges {
            let (streams, cc, delivery) = (&mut self.streams, &mut self.cc, &mut self.delivery);
            let mut ended = Vec::new();
            self.sent.take_range(range, |p| {
                acked_any = true;
                let size = u64::from(p.size);
                bytes_acked += size;
                delivery.on_acked(now, p.time, size, &p.delivery, &mut sampler);
                cc.on_packet_acked(now, p.time, size);
                match p.kind {
                    SentKind::Data {
                        stream,
                        message,
                        index,
                    } => {
                        if let Some(s) = streams.get_mut(&stream) {
                            s.send.on_acked(message, index);
                            if s.send_closed && s.send.is_empty() {
                                ended.push(stream);
                            }
                        }
                    }
                    SentKind::Control {
                        stream,
                        kind: ControlKind::End,
                    } => {
                        if let Some(s) = streams.get_mut(&stream) {
                            s.end_acked = true;
                            ended.push(stream);
                        }
                    }
                    SentKind::Control { .. } | SentKind::Direct => {}
                }
                if newest.is_none_or(|n| p.number > n.number) {
                    newest = Some(p);
                }
            });
            for id in ended {
                self.check_stream_end(id);
            }
        }
        let mut rtt_sample = None;
        if let Some(p) = newest
            && p.number == largest
        {
            let delay = Duration::from_micros(ack.delay_micros).min(self.peer_max_ack_delay);
            let sample = now.saturating_duration_since(p.time);
            self.rtt.update(sample, delay);
            rtt_sample = Some(sample);
        }
        if acked_any {
            self.backoff = 0;
        }
        self.largest_acked = Some(self.largest_acked.map_or(largest, |l| l.max(largest)));
        self.detect_losses(now);
        if acked_any {
            let min_rtt = self.rtt.min().unwrap_or_default();
            let rate = self.delivery.finish(sampler, min_rtt);
            self.cc.on_ack(&AckEvent {
                now,
                bytes_acked,
                bytes_in_flight: self.sent.bytes_in_flight(),
                srtt: self.rtt.smoothed(),
                rtt_sample,
                rate,
            });
        }
        self.after_send_progress(now);
    }

    fn on_repeat_request(&mut self, now: Instant, r: RepeatRequest) {
        self.stats.repeat_requests_received += 1;
        let mut lost = Vec::new();
        for range in r.missing {
            if *range.start() >= self.next_pn {
                continue;
            }
            self.sent.take_range(range, |p| lost.push(p));
        }
        self.on_lost_packets(now, lost);
        self.after_send_progress(now);
    }

    fn detect_losses(&mut self, now: Instant) {
        let Some(largest) = self.largest_acked else {
            return;
        };
        let delay = self.rtt.smoothed().max(self.rtt.latest()) * 9 / 8;
        let delay = delay.max(Duration::from_millis(1));
        let mut lost = Vec::new();
        match self.sent.detect_lost(largest, now, delay, |p| lost.push(p)) {
            Some(at) => self.timers.set(Timer::Loss, at),
            None => self.timers.clear(Timer::Loss),
        }
        self.on_lost_packets(now, lost);
    }

    fn on_lost_packets(&mut self, now: Instant, lost: Vec<SentPacket>) {
        let Some(newest) = lost.iter().map(|p| p.time).max() else {
            return;
        };
        let mut bytes_lost = 0;
        for p in &lost {
            self.stats.lost += 1;
            bytes_lost += u64::from(p.size);
            self.requeue(p.kind);
        }
        self.cc.on_loss(&LossEvent {
            now,
            largest_sent: newest,
            bytes_lost,
        });
    }

    /// What a lost packet carried goes out again (or, on an unreliable
    /// stream, is given up).
    fn requeue(&mut self, kind: SentKind) {
        match kind {
            SentKind::Data {
                stream,
                message,
                index,
            } => {
                if let Some(s) = self.streams.get_mut(&stream) {
                    s.send.on_lost(message, index);
                }
            }
            SentKind::Control { stream, kind } => match kind {
                ControlKind::End => {
                    if let Some(s) = self.streams.get_mut(&stream)
                        && !s.end_acked
                    {
                        s.end_due = true;
                    }
                }
                ControlKind::Credit => {
                    if let Some(s) = self.streams.get_mut(&stream) {
                        s.credit_due = true;
                    }
                }
                ControlKind::Refuse => {
                    if self.refusals.len() < MAX_REFUSALS {
                        self.refusals.push_back(stream);
                    }
                }
            },
            SentKind::Direct => {}
        }
    }

    /// How many bytes the session, and each stream, may hold queued and
    /// unacknowledged: the configured buffers, grown to three congestion
    /// windows (at most `max_send_buffer`) so that a long fat path is never
    /// held back by a buffer smaller than what it keeps in flight.
    fn send_limits(&self) -> (usize, usize) {
        let grown = usize::try_from(self.cc.window())
            .unwrap_or(usize::MAX)
            .saturating_mul(SEND_BUFFER_WINDOWS)
            .min(self.config.max_send_buffer);
        (
            self.config.send_buffer.max(grown),
            self.config.stream_send_buffer.max(grown),
        )
    }

    /// After acks or losses: wake a blocked sender, re-arm the retransmission timer.
    fn after_send_progress(&mut self, now: Instant) {
        let mut ready = false;
        let (session_limit, limit) = self.send_limits();
        if self.send_blocked && self.buffered() < session_limit {
            self.send_blocked = false;
            ready = true;
        }
        for stream in self.streams.values_mut() {
            if stream.send_blocked && stream.send.buffered() < limit {
                stream.send_blocked = false;
                ready = true;
            }
        }
        if ready {
            // Writers retry: the session, or a stream, has room again.
            self.events.push_back(SessionEvent::SendReady);
        }
        self.arm_retransmit(now);
    }

    fn rto(&self) -> Duration {
        let base = self
            .rtt
            .rto(self.peer_max_ack_delay, self.config.delivery_timeout);
        (base * (1u32 << self.backoff.min(MAX_BACKOFF))).min(MAX_RTO)
    }

    fn credit(&self) -> u64 {
        self.peer_max_data.saturating_sub(self.credit_used)
    }

    fn payload_room(&self) -> usize {
        self.mtu - MAX_HEADER_LEN - self.protection.overhead()
    }

    /// Whether new data waits and none of it fits the credit granted: the
    /// peer's credit update may have been lost.
    fn blocked_on_credit(&self) -> bool {
        let room = self.payload_room();
        let mut waiting = false;
        for s in self.streams.values() {
            if !s.send.has_unsent() || !s.kind.is_reliable() {
                continue;
            }
            waiting = true;
            if s.send
                .next_unsent_cost(room)
                .is_some_and(|c| c <= self.credit().min(s.credit()))
            {
                return false;
            }
        }
        waiting
    }

    fn arm_retransmit(&mut self, now: Instant) {
        if self.state != State::Established {
            return;
        }
        if self.sent.count_in_flight() > 0 {
            let from = self.sent.last_sent().unwrap_or(now);
            self.timers.set(Timer::Retransmit, from + self.rto());
        } else if self.blocked_on_credit() {
            if self.timers.get(Timer::Retransmit).is_none() {
                self.timers
                    .set(Timer::Retransmit, now + self.probe_interval());
            }
        } else {
            self.timers.clear(Timer::Retransmit);
        }
    }

    fn arm_keepalive(&mut self) {
        let from = if self.pings_unanswered == 0 {
            self.last_recv
        } else {
            self.last_ping.map_or(self.last_recv, |(_, t)| t)
        };
        self.timers
            .set(Timer::KeepAlive, from + self.config.ping_interval);
    }

    // ---- timers ----

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let fired: Vec<Timer> = self.timers.expired(now).collect();
        for timer in fired {
            if self.state == State::Closed {
                return;
            }
            match timer {
                Timer::Handshake if self.side == Side::Listener => {
                    if let Some(v) = &mut self.validation {
                        // The challenge or its answer was lost: ask again.
                        v.due = true;
                    }
                }
                Timer::Handshake => self.connect_due = true,
                Timer::HandshakeDeadline => self.abandon(if self.auth_failures > 0 {
                    CloseReason::AuthenticationFailed
                } else {
                    CloseReason::Timeout
                }),
                Timer::Retransmit if self.state == State::Closing => {
                    if self.close_repeats < CLOSE_REPEATS {
                        self.close_repeats += 1;
                        self.close_due = true;
                        let rto = self
                            .rtt
                            .rto(self.peer_max_ack_delay, self.config.delivery_timeout);
                        self.timers.set(Timer::Retransmit, now + rto);
                    }
                }
                Timer::Retransmit => self.on_retransmit_timeout(now),
                Timer::Loss => {
                    self.detect_losses(now);
                    self.arm_retransmit(now);
                }
                Timer::Ack => {}  // ack_due() now holds; poll_transmit sends it
                Timer::Pace => {} // the pacer has room again; poll_transmit sends
                Timer::KeepAlive => {
                    if self.pings_unanswered >= self.config.ping_packet_count {
                        self.abandon(CloseReason::Timeout);
                    } else {
                        self.ping_due = true;
                        self.pings_unanswered += 1;
                        // The next ping, or the verdict, one interval from now.
                        self.timers
                            .set(Timer::KeepAlive, now + self.config.ping_interval);
                    }
                }
                Timer::Drain => self.state = State::Closed,
            }
        }
        self.arm_ack_timer(now);
    }

    fn arm_ack_timer(&mut self, now: Instant) {
        match self.acks.deadline() {
            // A deadline already past needs no timer: the ack is due and goes out
            // on the next poll.
            Some(at) if at > now => self.timers.set(Timer::Ack, at),
            _ => self.timers.clear(Timer::Ack),
        }
    }

    fn on_retransmit_timeout(&mut self, now: Instant) {
        if self.sent.count_in_flight() > 0 {
            self.stats.timeouts += 1;
            let mut lost = Vec::new();
            if self.backoff == 0 {
                // First expiry: probe with the two oldest fragments. Their acks let
                // ordinary loss detection find whatever else is missing.
                self.sent.take_oldest_data(2, |p| lost.push(p));
                if lost.is_empty() {
                    self.ping_due = true;
                }
                self.on_lost_packets(now, lost);
            } else {
                // Nothing came back after a probe either: persistent congestion.
                self.sent.take_all(|p| lost.push(p));
                for p in &lost {
                    self.stats.lost += 1;
                    self.requeue(p.kind);
                }
                self.cc.on_timeout(now);
            }
            self.backoff += 1;
            self.timers.set(Timer::Retransmit, now + self.rto());
        } else if self.blocked_on_credit() {
            // Our credit update may have been lost: a ping makes the peer ack again.
            self.ping_due = true;
            self.probes += 1;
            self.timers
                .set(Timer::Retransmit, now + self.probe_interval());
        }
    }

    /// Wait between credit probes: doubling from the RTO up to the ping interval,
    /// so a reader that stalls for long costs one ping per interval.
    fn probe_interval(&self) -> Duration {
        let base = self
            .rtt
            .rto(self.peer_max_ack_delay, self.config.delivery_timeout);
        (base * (1u32 << self.probes.min(MAX_BACKOFF))).min(self.config.ping_interval.max(base))
    }

    // ---- output ----

    fn begin(&mut self, buf: &mut Vec<u8>, packet: &Packet) -> u64 {
        let pn = self.next_pn;
        self.next_pn += 1;
        buf.clear();
        packet.encode(self.id, pn, buf);
        pn
    }

    fn finish(&mut self, buf: &mut Vec<u8>, pn: u64) -> usize {
        let header_len = FIXED_HEADER_LEN + crate::wire::codec::varint_len(pn);
        self.protection.seal(pn, header_len, buf);
        self.stats.packets_sent += 1;
        self.stats.bytes_sent += buf.len() as u64;
        buf.len()
    }

    fn emit(&mut self, buf: &mut Vec<u8>, packet: &Packet) -> (u64, usize) {
        let pn = self.begin(buf, packet);
        (pn, self.finish(buf, pn))
    }

    fn handshake_params(&self) -> Handshake {
        Handshake {
            auth: self.auth.clone(),
            token: self.retry_token.clone(),
            ..own_params(&self.config)
        }
    }

    /// Writes the next datagram into `buf` (cleared first); returns its length.
    ///
    /// Until the peer's address is validated, at most `amplification_factor`
    /// times the bytes received from it leave: a forged connect cannot turn
    /// this side into an amplifier aimed at the address it names. The check
    /// assumes a full-size datagram, so it holds whatever is sent next.
    pub(crate) fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        if let Some(v) = &mut self.validation {
            let allowed = v
                .received
                .saturating_mul(u64::from(self.config.amplification_factor));
            // The challenge is small: it goes whenever it fits, so that a
            // lost one never waits for the peer to send more.
            if v.due
                && v.sent + CHALLENGE_LEN <= allowed
                && !self.connect_ack_due
                && self.state == State::Established
            {
                v.due = false;
                v.tries += 1;
                let (token, tries) = (v.token, v.tries);
                let len = self.emit(buf, &Packet::PathChallenge { token }).1;
                if let Some(v) = &mut self.validation {
                    v.sent += len as u64;
                }
                // Backing off as a connect does, at most a second apart.
                let rto = self.rto();
                let wait = rto * (1u32 << (tries - 1).min(MAX_BACKOFF));
                self.timers.set(
                    Timer::Handshake,
                    now + wait.min(MAX_HANDSHAKE_RETRY.max(rto)),
                );
                return Some(len);
            }
            if v.sent + self.mtu as u64 > allowed {
                if !self.amplification_blocked {
                    self.amplification_blocked = true;
                    self.stats.amplification_limited += 1;
                }
                return None;
            }
            self.amplification_blocked = false;
        }
        let len = self.poll_transmit_validated(now, buf)?;
        if let Some(v) = &mut self.validation {
            v.sent += len as u64;
        }
        Some(len)
    }

    fn poll_transmit_validated(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        match self.state {
            State::Closed => return None,
            State::Closing => {
                if !self.close_due {
                    return None;
                }
                self.close_due = false;
                self.close_sent_at = Some(now);
                let close = self.close_packet.clone()?;
                return Some(self.emit(buf, &Packet::Close(close)).1);
            }
            State::Init | State::Handshaking => return self.poll_handshake(now, buf),
            State::Established => {}
        }
        if self.connect_ack_due {
            self.connect_ack_due = false;
            // Under a checksum: the starter has no keys before reading it.
            let p = Packet::ConnectAck(self.handshake_params());
            let pn = self.begin(buf, &p);
            self.connect_ack_sent = Some((pn, now));
            let header_len = FIXED_HEADER_LEN + crate::wire::codec::varint_len(pn);
            CHECKSUM.seal(pn, header_len, buf);
            self.stats.packets_sent += 1;
            self.stats.bytes_sent += buf.len() as u64;
            return Some(buf.len());
        }
        if self.acks.nack_pending() {
            let missing = self.acks.take_nacks();
            if !missing.is_empty() {
                self.stats.repeat_requests_sent += 1;
                let p = Packet::RepeatRequest(RepeatRequest { missing });
                return Some(self.emit(buf, &p).1);
            }
        }
        if self.acks.ack_due(now) {
            if let Some((delay_micros, ranges)) = self.acks.take_ack(now) {
                self.timers.clear(Timer::Ack);
                let window = self
                    .recv_window
                    .update(now, self.consumed, self.rtt.smoothed());
                self.advertised_max_data = self.consumed + window;
                self.stats.acks_sent += 1;
                let p = Packet::Ack(Ack {
                    delay_micros,
                    max_data: self.advertised_max_data,
                    ranges,
                });
                return Some(self.emit(buf, &p).1);
            }
        }
        if let Some((addr, token)) = self.path_responses.pop_front() {
            if self.path_responses.is_empty() {
                // Answers are rare (one per handshake without a key, one per
                // move): an idle session keeps no buffer for them.
                self.path_responses = VecDeque::new();
            }
            self.destination = Some(addr);
            return Some(self.emit(buf, &Packet::PathResponse { token }).1);
        }
        if let Some(check) = &mut self.path
            && check.due
        {
            check.due = false;
            check.tries += 1;
            check.sent_at = Some(now);
            let (addr, token) = (check.addr, check.token);
            self.destination = Some(addr);
            return Some(self.emit(buf, &Packet::PathChallenge { token }).1);
        }
        if let Some(ping) = self.ping_acks_due.pop_front() {
            return Some(self.emit(buf, &Packet::PingAck { ping }).1);
        }
        if self.ping_due {
            self.ping_due = false;
            self.stats.pings_sent += 1;
            let (pn, len) = self.emit(buf, &Packet::Ping);
            self.last_ping = Some((pn, now));
            return Some(len);
        }
        self.poll_payload(now, buf)
    }

    fn poll_handshake(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        if self.side != Side::Starter || !self.connect_due {
            return None;
        }
        self.connect_due = false;
        let pn = self.begin(buf, &Packet::Connect(self.handshake_params()));
        // Pad to the MTU: proves the path carries full-size datagrams and keeps the
        // listener's answer smaller than the question.
        let target = self.config.mtu - self.protection.overhead();
        if buf.len() < target {
            buf.resize(target, 0);
        }
        let len = self.finish(buf, pn);
        self.state = State::Handshaking;
        self.connects_sent += 1;
        self.connect_sent_at = Some(now);
        // Back off, but not past a second: a lossy path gets several tries
        // within the handshake timeout.
        let base = self.rtt.rto(Duration::ZERO, self.config.delivery_timeout);
        let wait = base * (1u32 << (self.connects_sent - 1).min(MAX_BACKOFF));
        self.timers.set(
            Timer::Handshake,
            now + wait.min(MAX_HANDSHAKE_RETRY.max(base)),
        );
        Some(len)
    }

    /// Datagrams and message fragments, within the congestion and send windows.
    fn poll_payload(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        let window = self.cc.window().min(self.config.send_window as u64);
        if self.sent.bytes_in_flight() + self.mtu as u64 > window
            || self.sent.count_in_flight() >= self.config.send_window_packets
        {
            return None;
        }
        // Pacing: within the window, packets leave no faster than the
        // controller's rate. The timer wakes the session when the next may go.
        // A path whose round trip is shorter than a driver's timer tick is not
        // paced: the timer would wake too late and cap the rate at a burst per
        // tick, which BBR would then measure as the path's bandwidth. Such a
        // path (loopback, a LAN) is clocked by its acks.
        let rate = self
            .cc
            .pacing_rate(self.rtt.smoothed())
            .filter(|_| self.rtt.min().is_none_or(|m| m >= PACING_MIN_RTT));
        self.pacer.set_rate(now, rate);
        if let Some(at) = self.pacer.release_time(now, self.mtu as u64) {
            self.stats.pacing_waits += 1;
            self.timers.set(Timer::Pace, at);
            return None;
        }
        self.timers.clear(Timer::Pace);
        let sent = self.poll_payload_unpaced(now, buf);
        if sent.is_none() && !self.has_data_waiting() {
            // Room in the window and nothing to send: rate samples taken until
            // what is in flight is acknowledged show the application, not the
            // path. (Data held back by the peer's flow control is not that:
            // the sender is limited by the receiver, which the model covers.)
            self.delivery.on_app_limited(self.sent.bytes_in_flight());
        }
        sent
    }

    /// Whether any stream holds data not yet sent (or due again).
    fn has_data_waiting(&self) -> bool {
        self.streams
            .values()
            .any(|s| s.send.has_unsent() || s.send.has_retransmit())
    }

    /// Records a packet that needs an acknowledgement, just written.
    fn on_sent(&mut self, now: Instant, pn: u64, len: usize, kind: SentKind) {
        let before = self.sent.bytes_in_flight();
        let delivery = self.delivery.on_send(now, before);
        self.sent.push(pn, now, len, kind, delivery);
        self.cc.on_sent(now, len as u64, before + len as u64);
        self.pacer.on_sent(now, len as u64);
        self.arm_retransmit(now);
    }

    fn poll_payload_unpaced(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        if let Some(data) = self.directs_out.pop_front() {
            let (pn, len) = self.emit(buf, &Packet::Direct(data));
            self.stats.datagrams_sent += 1;
            self.on_sent(now, pn, len, SentKind::Direct);
            return Some(len);
        }
        let room = self.payload_room();
        // Repairs first, whatever the stream.
        let repair = self
            .streams
            .iter()
            .find(|(_, s)| s.send.has_retransmit())
            .map(|(&id, _)| id);
        if let Some(id) = repair
            && let Some(len) = self.send_fragment(now, buf, id, room, 0)
        {
            return Some(len);
        }
        if let Some(len) = self.poll_stream_control(now, buf) {
            return Some(len);
        }
        // New data: the streams take turns, one packet each: each stream with
        // unsent data once, in id order from the one after the last served
        // (found afresh each turn: no list is built per packet).
        let start = self.last_served;
        let mut tried = None;
        loop {
            let next = match tried {
                None => self
                    .streams
                    .range(start + 1..)
                    .chain(self.streams.range(..=start)),
                Some(t) if t > start => self
                    .streams
                    .range(t + 1..)
                    .chain(self.streams.range(..=start)),
                Some(t) if t < start => self
                    .streams
                    .range(t + 1..=start)
                    .chain(self.streams.range(..0)),
                // The last served stream was asked again: every one was.
                Some(_) => break,
            }
            .find(|(_, s)| s.send.has_unsent())
            .map(|(&id, _)| id);
            let Some(id) = next else { break };
            tried = Some(id);
            let credit = match self.streams.get(&id) {
                Some(s) if s.kind.is_reliable() => self.credit().min(s.credit()),
                Some(_) => u64::MAX,
                None => continue,
            };
            if let Some(len) = self.send_fragment(now, buf, id, room, credit) {
                self.last_served = id;
                return Some(len);
            }
        }
        None
    }

    /// Sends one fragment of stream `id` (a repair, or new data within
    /// `credit`).
    fn send_fragment(
        &mut self,
        now: Instant,
        buf: &mut Vec<u8>,
        id: u64,
        room: usize,
        credit: u64,
    ) -> Option<usize> {
        let s = self.streams.get_mut(&id)?;
        let fragment = s.send.next_fragment(room, credit)?;
        if fragment.first {
            if s.kind.is_reliable() {
                let cost = fragment_cost(fragment.payload.len());
                s.credit_used += cost;
                self.credit_used += cost;
            }
        } else {
            self.stats.retransmitted += 1;
        }
        let (message, index) = (fragment.message, fragment.index);
        let p = Packet::Data(Data {
            stream: id,
            message,
            fragment: index,
            fragments: fragment.count,
            payload: fragment.payload,
        });
        let (pn, len) = self.emit(buf, &p);
        self.on_sent(
            now,
            pn,
            len,
            SentKind::Data {
                stream: id,
                message,
                index,
            },
        );
        Some(len)
    }

    /// A stream's finish or reset, a credit update, or a refusal.
    fn poll_stream_control(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        let (id, op, kind) = if let Some(id) = self.refusals.pop_front() {
            (id, StreamOp::Refuse, ControlKind::Refuse)
        } else {
            let srtt = self.rtt.smoothed();
            // A finish waits for the stream's data to be sent and acknowledged
            // (so the peer can tell the stream is complete); a reset does not.
            let end_ready = |s: &Stream| {
                s.end_due && (s.send.is_empty() || matches!(s.end, Some(StreamOp::Reset { .. })))
            };
            let (&id, s) = self
                .streams
                .iter_mut()
                .find(|(_, s)| end_ready(s) || s.credit_due)?;
            if end_ready(s) {
                s.end_due = false;
                (id, s.end?, ControlKind::End)
            } else {
                s.credit_due = false;
                s.advertised = s.consumed + s.window.update(now, s.consumed, srtt);
                (
                    id,
                    StreamOp::Credit {
                        max_data: s.advertised,
                    },
                    ControlKind::Credit,
                )
            }
        };
        let (pn, len) = self.emit(buf, &Packet::StreamControl { stream: id, op });
        self.on_sent(now, pn, len, SentKind::Control { stream: id, kind });
        Some(len)
    }
}

impl Drop for SessionCore {
    fn drop(&mut self) {
        // What this session held is the endpoint's to give to others.
        self.recv_memory.update(self.recv_held, 0);
    }
}
