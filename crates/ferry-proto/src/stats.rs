//! Counters for sessions and endpoints.

use std::time::Duration;

use crate::congestion::CongestionControl;
use crate::crypto::Cipher;
use crate::event::CloseReason;
use crate::histogram::Histogram;

/// Per-session statistics, from [`Session::stats`](crate::Session::stats).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionStats {
    /// Messages of unreliable streams dropped at this end: superseded by a
    /// newer one, or left incomplete.
    pub unreliable_dropped: u64,
    /// Times the session moved to a new peer address (after the new path
    /// answered a challenge).
    pub migrations: u64,
    /// Datagrams sent, of every kind.
    pub packets_sent: u64,
    /// UDP payload bytes sent.
    pub bytes_sent: u64,
    /// Datagrams received and accepted for this session.
    pub packets_received: u64,
    /// UDP payload bytes received for this session.
    pub bytes_received: u64,
    /// Fragments sent again after a loss.
    pub retransmitted: u64,
    /// Packets declared lost (by acks, repeat requests or timeout).
    pub lost: u64,
    /// Packets declared lost whose own acknowledgement came after all: they
    /// were late, not lost (reordering), and were sent again for nothing.
    pub spurious_losses: u64,
    /// Loss episodes whose congestion response was undone because every
    /// loss in them proved spurious.
    pub congestion_undos: u64,
    /// Tail loss probes sent: the newest data sent again when acks stopped
    /// coming, to learn sooner than the retransmission timeout what is lost.
    pub tail_probes: u64,
    /// How late a packet may arrive, after a packet sent later than it was
    /// acknowledged, before it is declared lost (RACK's reordering window).
    pub reorder_window: Duration,
    /// Retransmission timeouts that fired.
    pub timeouts: u64,
    /// Fragments or packets received more than once, and dropped.
    pub duplicates: u64,
    /// Messages queued by `send`.
    pub messages_sent: u64,
    /// Messages delivered to the application.
    pub messages_received: u64,
    /// Unreliable datagrams sent.
    pub datagrams_sent: u64,
    /// Unreliable datagrams received.
    pub datagrams_received: u64,
    /// Unreliable datagrams dropped because a queue was full.
    pub datagrams_dropped: u64,
    /// Repeat requests (negative acks) sent.
    pub repeat_requests_sent: u64,
    /// Repeat requests received.
    pub repeat_requests_received: u64,
    /// Packets this side asked for again that then arrived under their own
    /// number: they were late, not lost (each widens the window a gap must
    /// last before it is asked for).
    pub repeat_requests_spurious: u64,
    /// Acks sent, alone or carried by a packet of data.
    pub acks_sent: u64,
    /// Of [`acks_sent`](Self::acks_sent), those carried by a packet of data
    /// (a reply acknowledging its request in the same datagram) instead of
    /// going alone.
    pub acks_carried: u64,
    /// Pings sent (keep-alive and probes).
    pub pings_sent: u64,
    /// Smoothed round-trip time.
    pub rtt: Duration,
    /// Every round-trip time sample taken, by bucket.
    pub rtt_samples: Histogram,
    /// How long the handshake took at this end: from sending the Connect
    /// (a starter) or receiving it (a listener) to the session being
    /// established; `None` until then.
    pub handshake_time: Option<Duration>,
    /// Smallest round-trip time seen (zero before the first sample).
    pub min_rtt: Duration,
    /// Current congestion window, bytes.
    pub congestion_window: u64,
    /// The congestion controller the session runs.
    pub congestion_control: CongestionControl,
    /// The rate the session's packets are paced at, bytes per second (0
    /// before the session is established).
    pub pacing_rate: u64,
    /// The controller's estimate of the path's bottleneck bandwidth, bytes
    /// per second: BBR's windowed maximum delivery rate; 0 for the loss-based
    /// controllers, which keep none, and before the first sample.
    pub estimated_bandwidth: u64,
    /// Times a packet the congestion window allowed waited for the pacer.
    pub pacing_waits: u64,
    /// Bytes sent and not yet acknowledged or declared lost.
    pub bytes_in_flight: u64,
    /// This side's session receive window now, bytes: it starts at
    /// `Config::recv_window` and grows toward `Config::max_recv_window` when
    /// the window limits the flow.
    pub recv_window: u64,
    /// Times a listener held its sending because the peer had not yet proved
    /// its address and `Config::amplification_factor` times what it sent had
    /// gone out (counted once per hold).
    pub amplification_limited: u64,
    /// Data packets dropped unacknowledged because the endpoint's sessions
    /// together held `Config::max_recv_memory` of received data (the peer
    /// sends them again).
    pub dropped_recv_memory: u64,
    /// The cipher that seals the session's packets, agreed in the handshake
    /// (see `Config::cipher`): `None` for a session without a pre-shared key
    /// (packets carry a checksum only), and until the handshake is done.
    pub cipher: Option<Cipher>,
    /// The session's MTU now, bytes of UDP payload: what its data packets
    /// may fill. The base (`Config::mtu`, or the peer's if smaller) until
    /// path MTU discovery confirms more, up to `Config::max_mtu`.
    pub mtu: usize,
    /// Path MTU probes sent: padded packets of a size being tried.
    pub mtu_probes_sent: u64,
    /// Path MTU probes lost: the path did not carry their size (or they met
    /// random loss). Not counted in `lost`, and not congestion: they cost no
    /// window and are never sent again as data.
    pub mtu_probes_lost: u64,
    /// Times the MTU fell back to the base because packets larger than it
    /// kept getting lost while smaller ones arrived (an MTU black hole, such
    /// as a route change to a tunnel).
    pub mtu_black_holes: u64,
    /// Fragments sent in parts (DataPart packets): cut for a larger MTU than
    /// the path carries after a fall back.
    pub fragments_split: u64,
    /// Key updates this side made: times it moved its sending keys to the
    /// next generation (`Config::key_update_packets`,
    /// `Config::key_update_interval`). Always 0 without a pre-shared key,
    /// or with a peer that does not follow key updates.
    pub key_updates_sent: u64,
    /// Key updates of the peer's this side followed: times a packet under
    /// the peer's next generation of keys arrived and receiving moved to it.
    pub key_updates_received: u64,
}

/// Per-endpoint statistics: what arrived that no session took.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointStats {
    /// Datagrams handed to `handle_datagram`.
    pub datagrams_received: u64,
    /// Dropped: could not be parsed, or failed the integrity check.
    pub dropped_malformed: u64,
    /// Dropped: no session has this id (and it was not a connect).
    pub dropped_unknown_session: u64,
    /// Dropped: the session exists but the datagram came from another address.
    pub dropped_wrong_address: u64,
    /// Sessions accepted from peers.
    pub sessions_accepted: u64,
    /// Connects refused by the transport: not accepting, `max_sessions`
    /// reached (or, with `Config::decide_incoming`, `max_pending_handshakes`
    /// sessions waiting for a decision), unusable handshake parameters, or
    /// failed authentication. The application's refusals are counted apart.
    pub sessions_refused: u64,
    /// Incoming sessions the application refused
    /// ([`Session::refuse`](crate::Session::refuse), with
    /// `Config::decide_incoming`).
    pub sessions_refused_by_application: u64,
    /// Incoming sessions the application did not decide on within
    /// `handshake_timeout`: the endpoint refused them.
    pub sessions_undecided: u64,
    /// Dropped: failed authentication — a handshake made with another key (or
    /// none), or a packet of an encrypted session that did not decrypt
    /// (tampered, forged, or from another session).
    pub dropped_unauthenticated: u64,
    /// Connects refused: the identity handshake was genuine but the
    /// starter's public key is not in `Config::authorized_keys` (also counted
    /// in `sessions_refused`).
    pub dropped_unauthorized: u64,
    /// Connects dropped without an answer: a genuine identity handshake whose
    /// date this listener has seen before, a replay of a recorded one.
    pub dropped_replayed: u64,
    /// Dropped without an answer: a connect for a new session from a source
    /// address that already started `max_handshakes_per_source` this second
    /// (or, under a flood of addresses, from one the listener had no room to
    /// count).
    pub dropped_rate_limited: u64,
    /// Connects answered with a retry instead of a session: the listener held
    /// `Config::max_pending_handshakes` sessions whose peers had not yet
    /// proved their address.
    pub retries_sent: u64,
    /// Connects dropped for a retry token that was forged, expired, or
    /// issued to another address or session.
    pub dropped_invalid_token: u64,
    /// Sessions this endpoint started (`connect`).
    pub sessions_started: u64,
    /// Sessions established (handshake done), started or accepted.
    pub sessions_established: u64,
    /// Sessions closed, by why.
    pub sessions_closed: CloseCounts,
    /// How long each established session's handshake took at this end
    /// ([`SessionStats::handshake_time`]).
    pub handshake_time: Histogram,
    /// Resumption tickets this listener issued ([`Config::issue_tickets`](crate::Config::issue_tickets)).
    pub tickets_issued: u64,
    /// Tickets this starter received from listeners.
    pub tickets_received: u64,
    /// Sessions this listener accepted with a ticket, in the shortened
    /// handshake.
    pub sessions_resumed: u64,
    /// Tickets this listener refused (used before, expired, forged, of
    /// another endpoint, or whose starter key was revoked): their starters
    /// fell back to a full handshake.
    pub tickets_refused: u64,
    /// Sessions this starter resumed that fell back to a full handshake
    /// because the listener refused the ticket.
    pub resumptions_refused: u64,
    /// Connects whose early data this listener delivered.
    pub early_data_accepted: u64,
    /// Connects whose early data this listener did not deliver (not
    /// allowed, ticket refused, or the strike register full): their
    /// starters sent it again after the handshake.
    pub early_data_refused: u64,
}

impl EndpointStats {
    /// Adds another endpoint's counters (a shard's) to these.
    pub fn add(&mut self, other: &EndpointStats) {
        // Named one by one: a counter added above must be added here too.
        let EndpointStats {
            datagrams_received,
            dropped_malformed,
            dropped_unknown_session,
            dropped_wrong_address,
            sessions_accepted,
            sessions_refused,
            sessions_refused_by_application,
            sessions_undecided,
            dropped_unauthenticated,
            dropped_unauthorized,
            dropped_replayed,
            dropped_rate_limited,
            retries_sent,
            dropped_invalid_token,
            sessions_started,
            sessions_established,
            sessions_closed,
            handshake_time,
            tickets_issued,
            tickets_received,
            sessions_resumed,
            tickets_refused,
            resumptions_refused,
            early_data_accepted,
            early_data_refused,
        } = other;
        self.datagrams_received += datagrams_received;
        self.dropped_malformed += dropped_malformed;
        self.dropped_unknown_session += dropped_unknown_session;
        self.dropped_wrong_address += dropped_wrong_address;
        self.sessions_accepted += sessions_accepted;
        self.sessions_refused += sessions_refused;
        self.sessions_refused_by_application += sessions_refused_by_application;
        self.sessions_undecided += sessions_undecided;
        self.dropped_unauthenticated += dropped_unauthenticated;
        self.dropped_unauthorized += dropped_unauthorized;
        self.dropped_replayed += dropped_replayed;
        self.dropped_rate_limited += dropped_rate_limited;
        self.retries_sent += retries_sent;
        self.dropped_invalid_token += dropped_invalid_token;
        self.sessions_started += sessions_started;
        self.sessions_established += sessions_established;
        self.sessions_closed.add(sessions_closed);
        self.handshake_time.add(handshake_time);
        self.tickets_issued += tickets_issued;
        self.tickets_received += tickets_received;
        self.sessions_resumed += sessions_resumed;
        self.tickets_refused += tickets_refused;
        self.resumptions_refused += resumptions_refused;
        self.early_data_accepted += early_data_accepted;
        self.early_data_refused += early_data_refused;
    }
}

/// Sessions closed, by [`CloseReason`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CloseCounts {
    /// [`CloseReason::Local`]: this side closed.
    pub local: u64,
    /// [`CloseReason::Remote`]: the peer closed.
    pub remote: u64,
    /// [`CloseReason::Timeout`].
    pub timeout: u64,
    /// [`CloseReason::Refused`].
    pub refused: u64,
    /// [`CloseReason::Rejected`]: the listener's application refused.
    pub rejected: u64,
    /// [`CloseReason::ProtocolError`].
    pub protocol_error: u64,
    /// [`CloseReason::AuthenticationFailed`].
    pub authentication_failed: u64,
}

impl CloseCounts {
    /// Counts one close.
    pub fn count(&mut self, reason: &CloseReason) {
        *match reason {
            CloseReason::Local { .. } => &mut self.local,
            CloseReason::Remote { .. } => &mut self.remote,
            CloseReason::Timeout => &mut self.timeout,
            CloseReason::Refused => &mut self.refused,
            CloseReason::Rejected { .. } => &mut self.rejected,
            CloseReason::ProtocolError(_) => &mut self.protocol_error,
            CloseReason::AuthenticationFailed => &mut self.authentication_failed,
        } += 1;
    }

    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &CloseCounts) {
        self.local += other.local;
        self.remote += other.remote;
        self.timeout += other.timeout;
        self.refused += other.refused;
        self.rejected += other.rejected;
        self.protocol_error += other.protocol_error;
        self.authentication_failed += other.authentication_failed;
    }

    /// Every close counted.
    pub fn total(&self) -> u64 {
        self.local
            + self.remote
            + self.timeout
            + self.refused
            + self.rejected
            + self.protocol_error
            + self.authentication_failed
    }

    /// Each reason's name (as exporters label it) with its count.
    pub fn by_name(&self) -> [(&'static str, u64); 7] {
        [
            ("local", self.local),
            ("remote", self.remote),
            ("timeout", self.timeout),
            ("refused", self.refused),
            ("rejected", self.rejected),
            ("protocol_error", self.protocol_error),
            ("authentication_failed", self.authentication_failed),
        ]
    }
}

/// Counters summed over every session an endpoint has held, closed ones
/// included: [`Endpoint::session_totals`](crate::Endpoint::session_totals).
/// Each only grows, so an exporter can give them as counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionTotals {
    /// [`SessionStats::packets_sent`], summed.
    pub packets_sent: u64,
    /// [`SessionStats::bytes_sent`], summed.
    pub bytes_sent: u64,
    /// [`SessionStats::packets_received`], summed.
    pub packets_received: u64,
    /// [`SessionStats::bytes_received`], summed.
    pub bytes_received: u64,
    /// [`SessionStats::messages_sent`], summed.
    pub messages_sent: u64,
    /// [`SessionStats::messages_received`], summed.
    pub messages_received: u64,
    /// [`SessionStats::datagrams_sent`], summed.
    pub datagrams_sent: u64,
    /// [`SessionStats::datagrams_received`], summed.
    pub datagrams_received: u64,
    /// [`SessionStats::retransmitted`], summed.
    pub retransmitted: u64,
    /// [`SessionStats::lost`], summed.
    pub lost: u64,
    /// [`SessionStats::spurious_losses`], summed.
    pub spurious_losses: u64,
    /// [`SessionStats::timeouts`], summed.
    pub timeouts: u64,
    /// [`SessionStats::tail_probes`], summed.
    pub tail_probes: u64,
    /// [`SessionStats::duplicates`], summed.
    pub duplicates: u64,
    /// [`SessionStats::migrations`], summed.
    pub migrations: u64,
    /// [`SessionStats::dropped_recv_memory`], summed.
    pub dropped_recv_memory: u64,
    /// [`SessionStats::rtt_samples`], summed.
    pub rtt_samples: Histogram,
    /// [`SessionStats::key_updates_sent`], summed.
    pub key_updates_sent: u64,
    /// [`SessionStats::key_updates_received`], summed.
    pub key_updates_received: u64,
}

impl SessionTotals {
    /// Adds one session's counters.
    pub fn add_session(&mut self, s: &SessionStats) {
        self.packets_sent += s.packets_sent;
        self.bytes_sent += s.bytes_sent;
        self.packets_received += s.packets_received;
        self.bytes_received += s.bytes_received;
        self.messages_sent += s.messages_sent;
        self.messages_received += s.messages_received;
        self.datagrams_sent += s.datagrams_sent;
        self.datagrams_received += s.datagrams_received;
        self.retransmitted += s.retransmitted;
        self.lost += s.lost;
        self.spurious_losses += s.spurious_losses;
        self.timeouts += s.timeouts;
        self.tail_probes += s.tail_probes;
        self.duplicates += s.duplicates;
        self.migrations += s.migrations;
        self.dropped_recv_memory += s.dropped_recv_memory;
        self.rtt_samples.add(&s.rtt_samples);
        self.key_updates_sent += s.key_updates_sent;
        self.key_updates_received += s.key_updates_received;
    }

    /// Adds another endpoint's totals (a shard's).
    pub fn add(&mut self, o: &SessionTotals) {
        self.packets_sent += o.packets_sent;
        self.bytes_sent += o.bytes_sent;
        self.packets_received += o.packets_received;
        self.bytes_received += o.bytes_received;
        self.messages_sent += o.messages_sent;
        self.messages_received += o.messages_received;
        self.datagrams_sent += o.datagrams_sent;
        self.datagrams_received += o.datagrams_received;
        self.retransmitted += o.retransmitted;
        self.lost += o.lost;
        self.spurious_losses += o.spurious_losses;
        self.timeouts += o.timeouts;
        self.tail_probes += o.tail_probes;
        self.duplicates += o.duplicates;
        self.migrations += o.migrations;
        self.dropped_recv_memory += o.dropped_recv_memory;
        self.rtt_samples.add(&o.rtt_samples);
        self.key_updates_sent += o.key_updates_sent;
        self.key_updates_received += o.key_updates_received;
    }
}
