//! One session's state machine: handshake, reliable messages, acks, recovery,
//! keep-alive, datagrams and close. Driven by the [`Endpoint`](crate::Endpoint).

mod close;
mod handshake;
mod keyupdate;
mod mtu;
mod parts;
mod path;
mod recovery;
use recovery::LossEpisode;
mod recv;
mod resume;
mod streams;
#[cfg(test)]
mod test_pair;
pub(crate) mod timer;
mod transmit;

use handshake::Validation;
pub(crate) use handshake::{Authenticated, own_params, prologue};
use keyupdate::KeyUpdate;
use mtu::MtuDiscovery;
use parts::Parts;
use path::PathCheck;
pub(crate) use resume::decode_early;
use streams::stream_window;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{debug, trace};

use crate::config::Config;
use crate::congestion::rate::RateEstimator;
use crate::congestion::{Controller, Pacer};
use crate::crypto::Handshake as Noise;
use crate::endpoint::Shared;
use crate::event::CloseReason;
use crate::event::StreamEnd;
use crate::flow::WindowTuner;
use crate::id::{SessionId, Side};
use crate::message::SendProgress;
use crate::peer::PeerParams;
use crate::recovery::ack::AckTracker;
use crate::recovery::reorder::ReorderWindow;
use crate::recovery::rtt::RttEstimator;
use crate::recovery::sent::SentLog;
use crate::stats::SessionStats;
use crate::stream::Stream;
use crate::wire::packet::{Ack, Close, Header, MAX_HEADER_LEN, Packet, PacketKind};
use crate::wire::protection::Protection;
use crate::wire::stream::{StreamId, StreamKind};
use timer::{Timer, Timers};

/// The lifecycle of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// Created by `connect`; the connect packet has not left yet.
    Init,
    /// A listener's session whose peer's Connect waits for the
    /// application's decision (`Config::decide_incoming`): nothing has been
    /// sent; `accept` establishes it, `refuse` ends it.
    Incoming,
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

/// Things a session tells its endpoint, which turns them into [`crate::Event`]s.
#[derive(Debug, PartialEq)]
pub(crate) enum SessionEvent {
    Connected,
    Readable,
    StreamOpened(StreamId),
    StreamReadable(StreamId),
    StreamClosed(StreamId, StreamEnd),
    Datagram(Bytes),
    SendReady,
    Closed(CloseReason),
    /// A starter received a resumption ticket.
    Ticket,
    /// A starter's ticket was refused: it fell back to a full handshake
    /// (counted by the endpoint; no event for the application).
    ResumptionRefused,
}

#[derive(Debug)]
pub(crate) struct SessionCore {
    /// This side's id for the session: what the peer's packets carry.
    id: SessionId,
    /// The peer's id for the session, written in every packet this side
    /// sends: the starter's own until the listener's ConnectAck names its id.
    peer_id: SessionId,
    remote: SocketAddr,
    side: Side,
    state: State,
    config: Arc<Config>,
    protection: Protection,
    /// When the keys of `protection` move to their next generation.
    key_update: KeyUpdate,
    timers: Timers,
    /// UDP payload limit for this session now: the base (the smaller of the
    /// two sides' `Config::mtu`) until path MTU discovery confirms more.
    mtu: usize,
    /// Path MTU discovery: which size to probe, which size data uses.
    pmtu: MtuDiscovery,
    /// Fragments too large for the path since they were cut, going out or
    /// coming in in parts (boxed: most sessions never have any).
    parts: Option<Box<Parts>>,
    peer_max_message: usize,
    /// What the peer announced in its handshake packet.
    peer_params: PeerParams,
    /// The peer's longest ack delay (our own until the handshake tells).
    peer_max_ack_delay: Duration,

    // Sending.
    next_pn: u64,
    /// Every open stream, stream 0 included, by id.
    /// Boxed: a map node holds eleven entries, and most sessions have only
    /// stream 0.
    streams: BTreeMap<StreamId, Box<Stream>>,
    /// What was sent on the streams no longer in `streams`, summed as each
    /// was forgotten (for [`send_totals`](Self::send_totals)).
    retired_send: SendProgress,
    /// The next sequence number of a stream this side opens, per kind.
    next_local_seq: [u64; 3],
    /// The next sequence number of a stream the peer opens, per kind: lower
    /// ones were opened already (and may be over).
    next_peer_seq: [u64; 3],
    /// The peer's limits and initial credit for streams.
    peer_max_streams: u64,
    peer_stream_window: u64,
    /// The stream whose new data went out last (round robin).
    last_served: StreamId,
    /// Streams of the peer's refused: a Refuse frame is due for each.
    refusals: VecDeque<StreamId>,
    sent: SentLog,
    /// RACK's reordering window: how late a packet may be before it is lost.
    reorder: ReorderWindow,
    /// The loss episode under way, while its losses may still prove spurious
    /// (boxed: most sessions are not in one).
    episode: Option<Box<LossEpisode>>,
    /// A tail loss probe waits to go, one packet beyond the window.
    probe_due: bool,
    /// This flight's tail probe went: the next expiry is the RTO.
    tail_probed: bool,
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
    datagrams_out: VecDeque<Bytes>,
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
    /// The peer's authenticated public key (identity handshake): the
    /// starter's, from message 1, at a listener; the pinned listener key at a
    /// starter, once message 2 proved it.
    peer_identity: Option<crate::crypto::PublicKey>,
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
    /// Tickets given or received, and a resumed handshake (boxed: rare).
    resumption: Option<Box<resume::Resumption>>,

    // Receiving.
    acks: AckTracker,
    /// An ack taken to ride on the next packet of data: carried by it if it
    /// fits, else sent alone in the same flush (boxed: an idle session keeps
    /// none, in 8 bytes).
    riding: Option<Box<Ack>>,
    credit_received: u64,
    consumed: u64,
    advertised_max_data: u64,
    /// The session's receive window, grown toward the bandwidth-delay product.
    recv_window: WindowTuner,
    datagrams_queued: usize,

    // Migration.
    path: Option<PathCheck>,
    path_responses: VecDeque<(SocketAddr, u64)>,
    /// Where the datagram just written goes, when not to `remote`.
    destination: Option<SocketAddr>,

    // Liveness.
    /// When the session was created: the Connect sent or received.
    opened_at: Instant,
    last_recv: Instant,
    pings_unanswered: u32,
    ping_due: bool,
    last_ping: Option<(u64, Instant)>,
    ping_acks_due: VecDeque<u64>,

    // Closing.
    close_packet: Option<Close>,
    /// `close_packet` is the endpoint's stateless refusal of this incoming
    /// session, answered again to a repeated Connect once it is retired.
    refused: bool,
    close_due: bool,
    close_sent_at: Option<Instant>,
    close_repeats: u32,
    /// An ack was owed when this side closed: it goes just before the
    /// Close, so that the peer learns what arrived before it hears the
    /// session is over.
    ack_before_close: bool,

    stats: SessionStats,
    /// What happened that the application should hear of, until the
    /// endpoint collects it.
    events: VecDeque<SessionEvent>,
    /// What the endpoint's sessions share: where received messages' buffers
    /// come from, and the count of received data held (this session's share
    /// is `recv_held`).
    shared: Shared,
    recv_held: u64,
    /// Messages being reassembled on reliable streams, by (stream, message):
    /// the part of the full size reserved when their first fragment came
    /// that their fragments have not used yet. A message admitted within
    /// `max_recv_memory` can always complete.
    reservations: HashMap<(StreamId, u64), u64>,
    reserved: u64,
}

impl SessionCore {
    fn new(
        id: SessionId,
        remote: SocketAddr,
        side: Side,
        config: Arc<Config>,
        shared: Shared,
        now: Instant,
    ) -> Self {
        let recv_window = config.recv_window as u64;
        let mtu = config.mtu;
        Self {
            id,
            peer_id: id,
            remote,
            side,
            state: State::Init,
            protection: Protection::default(),
            key_update: KeyUpdate::default(),
            timers: Timers::default(),
            mtu,
            pmtu: MtuDiscovery::new(mtu, config.max_mtu),
            parts: None,
            peer_max_message: config.max_message_size,
            peer_params: PeerParams::default(),
            peer_max_ack_delay: config.max_ack_delay,
            next_pn: 0,
            streams: BTreeMap::from([(
                StreamId::DEFAULT,
                Box::new(Stream::new(
                    StreamId::DEFAULT,
                    StreamKind::ReliableOrdered,
                    config.max_message_size,
                    0,
                    stream_window(&config),
                )),
            )]),
            retired_send: SendProgress::default(),
            // Stream 0 is the starter's first reliable ordered stream.
            next_local_seq: [u64::from(side == Side::Starter), 0, 0],
            next_peer_seq: [u64::from(side == Side::Listener), 0, 0],
            peer_max_streams: 0,
            peer_stream_window: 0,
            last_served: StreamId::DEFAULT,
            refusals: VecDeque::new(),
            sent: SentLog::default(),
            reorder: ReorderWindow::default(),
            episode: None,
            probe_due: false,
            tail_probed: false,
            rtt: RttEstimator::new(config.initial_rtt),
            cc: config.congestion.build(mtu, id.to_u64()),
            pacer: Pacer::new(mtu),
            delivery: RateEstimator::default(),
            backoff: 0,
            probes: 0,
            largest_acked: None,
            peer_max_data: 0,
            credit_used: 0,
            datagrams_out: VecDeque::new(),
            send_blocked: false,
            noise: None,
            auth: Bytes::new(),
            auth_failures: 0,
            peer_identity: None,
            connect_due: false,
            connect_ack_due: false,
            connects_sent: 0,
            connect_sent_at: None,
            connect_ack_sent: None,
            amplification_blocked: false,
            retry_token: Bytes::new(),
            validation: None,
            resumption: None,
            acks: AckTracker::new(),
            riding: None,
            credit_received: 0,
            consumed: 0,
            advertised_max_data: recv_window,
            recv_window: WindowTuner::new(recv_window, config.max_recv_window as u64),
            datagrams_queued: 0,
            path: None,
            path_responses: VecDeque::new(),
            destination: None,
            opened_at: now,
            last_recv: now,
            pings_unanswered: 0,
            ping_due: false,
            last_ping: None,
            ping_acks_due: VecDeque::new(),
            close_packet: None,
            refused: false,
            close_due: false,
            close_sent_at: None,
            close_repeats: 0,
            ack_before_close: false,
            stats: SessionStats::default(),
            events: VecDeque::new(),
            shared,
            recv_held: 0,
            reservations: HashMap::new(),
            reserved: 0,
            config,
        }
    }

    /// Whether events wait for the endpoint to collect.
    pub(crate) fn has_events(&self) -> bool {
        !self.events.is_empty()
    }

    /// Takes the events that wait, oldest first.
    pub(crate) fn drain_events(&mut self) -> impl Iterator<Item = SessionEvent> + '_ {
        self.events.drain(..)
    }

    pub(crate) fn remote(&self) -> SocketAddr {
        self.remote
    }

    /// The peer's id for the session (see [`SessionId`]).
    pub(crate) fn peer_id(&self) -> SessionId {
        self.peer_id
    }

    /// What the peer announced in its handshake packet (defaults until it
    /// arrived).
    pub(crate) fn peer_params(&self) -> PeerParams {
        self.peer_params
    }

    pub(crate) fn side(&self) -> Side {
        self.side
    }

    /// The peer's authenticated public key, once the identity handshake
    /// proved it.
    pub(crate) fn peer_identity(&self) -> Option<crate::crypto::PublicKey> {
        self.peer_identity
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
            PacketKind::Close
                if matches!(
                    self.state,
                    State::Init | State::Incoming | State::Handshaking
                ) =>
            {
                &CHECKSUM
            }
            _ => &self.protection,
        }
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
        s.reorder_window = self.reorder_window();
        s.repeat_requests_spurious = self.acks.late_requested();
        s.mtu = self.mtu;
        s
    }

    /// How long the handshake took, once established.
    pub(crate) fn handshake_time(&self) -> Option<std::time::Duration> {
        self.stats.handshake_time
    }

    /// Largest message `send` accepts now.
    pub(crate) fn max_message_size(&self) -> usize {
        self.config.max_message_size.min(self.peer_max_message)
    }

    /// Largest unreliable datagram that fits in one packet of the base size:
    /// a datagram of that size crosses whatever path MTU discovery finds
    /// (datagrams are never sent again, so none is sent in a size the path
    /// may stop carrying).
    pub(crate) fn max_datagram_size(&self) -> usize {
        self.pmtu.base() - MAX_HEADER_LEN - self.protection.overhead()
    }

    /// Handles one packet that passed the integrity check, and the ack it
    /// carried, if any.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn handle_packet(
        &mut self,
        now: Instant,
        from: SocketAddr,
        header: Header,
        ack: Option<Ack>,
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
            State::Incoming => {
                // Waiting for the application: a repeated Connect is
                // absorbed (the answer comes with the decision); the
                // starter's Close (it gave up) ends the session.
                match packet {
                    Packet::Close(c) => self.on_close(c),
                    _ => {
                        trace!(session = %self.id, kind = ?header.kind, "absorbed while undecided")
                    }
                }
                return;
            }
            State::Init | State::Handshaking => {
                // Before the handshake completes only its answer (or a refusal) counts.
                match packet {
                    Packet::ConnectAck(h) => self.on_connect_ack(now, header.number, &h),
                    Packet::Retry { token } => self.on_retry(token),
                    Packet::Close(c) if self.on_ticket_refused(&c) => {}
                    Packet::Close(c) => self.on_close(c),
                    _ => {
                        trace!(session = %self.id, kind = ?header.kind, "dropped before handshake")
                    }
                }
                return;
            }
            State::Established => {}
        }
        self.on_key_phase(now, &header);
        if let Packet::Data(d) = &packet
            && !self.reservations.contains_key(&(d.stream, d.message))
            && !self
                .streams
                .get(&d.stream)
                .is_some_and(|s| s.recv.is_delivered(d.message))
            && self.shared.recv_memory.used() + self.reservation_for(d.fragments, d.payload.len())
                > self.config.max_recv_memory as u64
        {
            // A new message the endpoint has no room for: drop it
            // unacknowledged, and its sender sends it again later. (Messages
            // under way have their room reserved; a late copy of one delivered
            // costs nothing, and is acknowledged.)
            self.stats.dropped_recv_memory += 1;
            return;
        }
        if let Packet::DataPart(p) = &packet
            && !self.part_admissible(p)
        {
            // No room to put its fragment together now: unacknowledged, it
            // is sent again.
            self.stats.dropped_recv_memory += 1;
            return;
        }
        let eliciting = matches!(
            packet,
            Packet::Data(_)
                | Packet::DataPart(_)
                | Packet::Datagram(_)
                | Packet::StreamControl { .. }
                | Packet::Probe { .. }
                | Packet::Ticket(_)
        );
        let (ack_delay, ack_frequency) = if eliciting {
            self.ack_policy(now)
        } else {
            (self.config.max_ack_delay, self.config.ack_frequency)
        };
        let window = self.request_window();
        let fresh = self.acks.on_packet(
            header.number,
            eliciting,
            now,
            ack_delay,
            ack_frequency,
            window,
        );
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
        if let Some(ack) = ack {
            // Before the body: what it acknowledges may free the window the
            // body's answer needs.
            self.on_ack(now, ack);
            if self.state != State::Established {
                return;
            }
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
            Packet::DataPart(p) => {
                self.on_data_part(now, p);
                self.sync_recv_memory();
            }
            Packet::Probe { .. } => {
                // A path MTU probe: its sender learns the size arrived from
                // the ack, the sooner the better.
                self.acks.request_immediate();
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
            Packet::Ticket(t) => self.on_ticket(now, t),
            Packet::Datagram(data) => {
                if self.datagrams_queued >= self.config.datagram_queue {
                    self.stats.datagrams_dropped += 1;
                } else {
                    self.datagrams_queued += 1;
                    self.stats.datagrams_received += 1;
                    // A copy of its own: the received datagram may be a slice
                    // of a larger receive buffer, which it would keep alive.
                    let data = Bytes::copy_from_slice(&data);
                    self.events.push_back(SessionEvent::Datagram(data));
                }
            }
        }
    }

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
                // An ack is due, or a gap lasted the reordering window: what
                // is due goes out on the next poll_transmit.
                Timer::Ack => {
                    self.acks.promote(now);
                    self.arm_ack_timer(now);
                }
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
                Timer::KeyDiscard => self.discard_previous_keys(),
            }
        }
        self.arm_ack_timer(now);
    }
}

impl Drop for SessionCore {
    fn drop(&mut self) {
        // What this session held is the endpoint's to give to others.
        self.shared.recv_memory.update(self.recv_held, 0);
        if let Some(parts) = &self.parts {
            self.shared.recv_memory.update(parts.held(), 0);
        }
    }
}
