//! Endpoint and session configuration, with documented defaults and validation.

use std::time::Duration;

pub use crate::congestion::CongestionControl;
pub use crate::crypto::CipherPreference;
use crate::error::ConfigError;
pub use crate::id::ServerId;
use crate::wire::codec::VARINT_MAX;

/// The smallest MTU Ferry accepts: the IPv4 minimum reassembly size less IP and
/// UDP headers, rounded down.
pub const MIN_MTU: usize = 548;

/// The largest UDP payload over IPv4.
pub const MAX_MTU: usize = 65_507;

/// Non-final fragments must carry at least this many bytes, which bounds the
/// bookkeeping a peer can make the receiver hold per byte of credit.
pub const MIN_FRAGMENT_PAYLOAD: usize = 256;

/// The flow-control cost added to each fragment's payload length: what the
/// receiver spends to hold a fragment, charged against the receive window.
pub const FRAGMENT_COST: u64 = 32;

/// Settings for an [`Endpoint`](crate::Endpoint) and every session it serves.
///
/// Build one with struct update syntax and check it with [`Config::validate`]
/// (the endpoint does so on construction):
///
/// ```
/// use std::time::Duration;
/// use ferry_proto::Config;
///
/// let config = Config {
///     mtu: 1400,
///     ping_interval: Duration::from_secs(5),
///     accept_incoming: true,
///     ..Config::default()
/// };
/// config.validate().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The base MTU: the largest UDP payload every packet may have, in bytes,
    /// announced to the peer in the handshake. Default 1200, which crosses
    /// almost every path without IP fragmentation. A session starts at the
    /// smaller of the two sides' values; the connect packet is padded to it,
    /// so a path that cannot carry it fails the handshake instead of failing
    /// later. Path MTU discovery then looks for more, up to `max_mtu`.
    pub mtu: usize,
    /// The most path MTU discovery probes for, in bytes of UDP payload. A
    /// session sends packets of its base size (`mtu`) first, probes the path
    /// with padded packets up to this size, and sends data in the largest
    /// size a probe confirmed (falling back to the base if that size stops
    /// getting through). Default 1452: a 1500-byte Ethernet path less the
    /// IPv6 and UDP headers (40 + 8), which fits IPv4 too (20 + 8 leaves
    /// 1472) and most tunnels; 8952 suits 9000-byte jumbo frames, 65 507
    /// loopback. At or below `mtu`, no discovery: every packet has the base
    /// size. At most 65 507. Only what this side sends: a receiver takes
    /// datagrams of any size.
    pub max_mtu: usize,
    /// Largest message `send` accepts, in bytes. Default 16 MiB. The peer's limit
    /// applies too once the handshake has told it.
    pub max_message_size: usize,
    /// How long `connect` keeps trying before the session closes with
    /// [`CloseReason::Timeout`](crate::CloseReason::Timeout). Default 10 s.
    pub handshake_timeout: Duration,
    /// The smallest retransmission timeout (the seed protocol's
    /// `delivery_timeout`). The timeout otherwise follows the measured RTT and
    /// doubles after each expiry. Default 25 ms.
    pub delivery_timeout: Duration,
    /// RTT assumed before the first measurement. Default 100 ms.
    pub initial_rtt: Duration,
    /// Longest time a receiver delays an ack. Default 10 ms.
    pub max_ack_delay: Duration,
    /// Ack at once after this many unacknowledged data packets when few
    /// arrive per round trip. Default 2.
    pub ack_frequency: u32,
    /// The most unacknowledged data packets before an ack when many arrive
    /// per round trip: at high packet rates an ack per two packets costs both
    /// sides more than it tells. The receiver counts the packets of each round
    /// trip and acks about four times per round trip, every `ack_frequency`
    /// packets at least and every `ack_frequency_bulk` at most. An ack still
    /// goes out within the smaller of `max_ack_delay` and a quarter of the
    /// RTT (at least 1 ms), and at once when a packet arrives out of order or
    /// twice. Default 10; set it to `ack_frequency` to ack every
    /// `ack_frequency` packets always.
    pub ack_frequency_bulk: u32,
    /// When nothing was received for this long, send a ping. Default 1 s.
    pub ping_interval: Duration,
    /// Close the session with `Timeout` after this many unanswered pings.
    /// Default 5.
    pub ping_packet_count: u32,
    /// Bytes of messages queued and not yet acknowledged, per session, before
    /// `send` reports [`SendError::Blocked`](crate::SendError::Blocked). One
    /// message is always accepted into an empty buffer. This is the least the
    /// buffer holds: it grows with the congestion window (see
    /// `max_send_buffer`). Default 32 MiB.
    pub send_buffer: usize,
    /// How far the send buffers (`send_buffer`, and `stream_send_buffer` per
    /// stream) may grow: to three congestion windows, so that a path
    /// keeping more in flight than they hold is not slowed by them, but never
    /// beyond this. Default 128 MiB.
    pub max_send_buffer: usize,
    /// The same, per stream: a stream whose reader stopped blocks its own
    /// `send` at this, leaving the rest of `send_buffer` to the other streams.
    /// Default 16 MiB.
    pub stream_send_buffer: usize,
    /// Most bytes in flight (sent, not yet acknowledged or declared lost), per
    /// session. The congestion window is capped by this. Default 16 MiB.
    pub send_window: usize,
    /// The congestion controller every session of this endpoint runs, which
    /// also sets the rate its packets are paced at. Default
    /// [`CongestionControl::Bbr`]: in Ferry's simulator it keeps over 90% of
    /// a lossy long path busy where the loss-based NewReno and CUBIC deliver a
    /// few percent (see [`CongestionControl`] and `docs/guide.md`).
    pub congestion: CongestionControl,
    /// Most packets in flight per session. Default 16 384.
    pub send_window_packets: usize,
    /// Receive credit per session: flow-control cost (payload bytes plus
    /// [`FRAGMENT_COST`] per fragment) that may be buffered before the
    /// application polls the messages. Must hold one largest message. Default 32 MiB.
    pub recv_window: usize,
    /// Receive credit per stream, as `recv_window` is per session: one slow
    /// stream holds at most this much, and the session's other streams keep
    /// flowing. Must hold one largest message. Default 24 MiB.
    pub stream_recv_window: usize,
    /// How far a session's receive window may grow. Windows start at
    /// `recv_window` and double, up to this, whenever the application consumed
    /// half a window in less than two round trips: the window, not the link,
    /// was limiting the flow. So a long fat path gets a window of two to four
    /// times its bandwidth-delay product without tuning, and a peer can make
    /// this side buffer at most this much per session. Default 128 MiB.
    pub max_recv_window: usize,
    /// The same bound for one stream's window, which starts at
    /// `stream_recv_window`. Default 96 MiB.
    pub max_stream_recv_window: usize,
    /// Streams the peer may have open at once that it opened (announced in
    /// the handshake; one more is refused). Default 100.
    pub max_streams: usize,
    /// Unreliable datagrams queued per session in each direction; the oldest is
    /// dropped (and counted) when full. Default 256.
    pub datagram_queue: usize,
    /// Most sessions one endpoint serves at once. Default 4096.
    pub max_sessions: usize,
    /// Most new sessions one source IP address may start per second; further
    /// connects from it are dropped without an answer and counted in
    /// `EndpointStats::dropped_rate_limited`. At most 4096 addresses are
    /// counted per second: under a flood of more, newcomers are dropped until
    /// the second ends. Retransmitted connects of a session already accepted
    /// do not count. 0 turns the limit off. Default 1000.
    pub max_handshakes_per_source: u32,
    /// Sessions a listener holds whose peers have not yet proved their
    /// address (by answering the ConnectAck). Beyond it, a connect is
    /// answered statelessly with a retry token and becomes a session only
    /// when it comes back carrying it, so a flood of connects from forged
    /// addresses holds no state. 0 asks every connect for a retry (one more
    /// round trip per handshake). Default 256.
    pub max_pending_handshakes: usize,
    /// Until a peer proves its address, a listener sends it at most this many
    /// times the bytes it received from it, so that a forged connect cannot
    /// aim a larger answer at someone else. At least 1. Default 3.
    pub amplification_factor: u32,
    /// Most bytes of received data all sessions of the endpoint hold at once
    /// (message fragments being reassembled, and messages delivered but not
    /// yet taken). A data packet that would go beyond it is dropped
    /// unacknowledged and counted in `SessionStats::dropped_recv_memory`; its
    /// sender retransmits it later, so nothing is lost. Each session is
    /// further bounded by its receive window. At least `recv_window`.
    /// Default 2 GiB.
    pub max_recv_memory: usize,
    /// Whether the endpoint accepts sessions started by peers. Default `false`
    /// (a client); servers set `true`.
    pub accept_incoming: bool,
    /// Whether the application decides on each incoming session before it
    /// is established. Default `false`: a valid, authenticated Connect is
    /// accepted at once ([`Event::Connected`](crate::Event::Connected)).
    /// With `true` it creates the session in
    /// [`State::Incoming`](crate::State::Incoming), sends nothing yet, and
    /// reports [`Event::Incoming`](crate::Event::Incoming); the application
    /// looks at the peer ([`Session::remote_addr`](crate::Session::remote_addr),
    /// [`Session::peer_params`](crate::Session::peer_params)) and calls
    /// [`Session::accept`](crate::Session::accept) or
    /// [`Session::refuse`](crate::Session::refuse) within
    /// `handshake_timeout`, after which the endpoint refuses it. Sessions
    /// waiting for a decision count against `max_sessions`, and at most
    /// `max_pending_handshakes` wait at once (beyond, new Connects are
    /// refused).
    pub decide_incoming: bool,
    /// This server's id in a fleet behind a load balancer, written into every
    /// session id it issues so that the balancer keeps each session on it
    /// even when the client's address changes (see [`ServerId`] and
    /// [`route`](crate::route)). Default `None`: the listener issues each
    /// starter's own id back.
    pub server_id: Option<ServerId>,
    /// A pre-shared key: with one, every session authenticates the peer (it
    /// must hold the same key) and encrypts every packet after the handshake
    /// with fresh per-session keys (see [`crate::crypto`]). Both sides must
    /// have it, or both not: a mismatch ends the handshake with
    /// [`CloseReason::AuthenticationFailed`](crate::CloseReason::AuthenticationFailed).
    /// Default `None`: packets carry a checksum only.
    pub psk: Option<crate::crypto::PreSharedKey>,
    /// With a pre-shared key, which packet ciphers this endpoint offers in the
    /// handshake; the listener picks one both offer (see
    /// [`crate::crypto::negotiate`]) and [`SessionStats::cipher`](crate::SessionStats::cipher)
    /// tells which. Default [`CipherPreference::Auto`]: both, AES-256-GCM
    /// first if this CPU has hardware AES, so two such machines use it and any
    /// other pair ChaCha20-Poly1305. [`CipherPreference::Aes256Gcm`] or
    /// [`CipherPreference::ChaCha20Poly1305`] offers that cipher only: the
    /// session uses it, or fails with
    /// [`CloseReason::AuthenticationFailed`](crate::CloseReason::AuthenticationFailed)
    /// if the peer forces the other. Without a key it has no effect.
    pub cipher: CipherPreference,
    /// This endpoint's long-term identity, a static X25519 key pair (see
    /// [`Identity`](crate::crypto::Identity)): with one, sessions run the
    /// identity handshake (Noise `IK`, `IKpsk2` if [`psk`](Self::psk) is set
    /// too), which authenticates both sides by their public keys and
    /// encrypts every packet. Both sides need an identity, and a starter
    /// must know the listener's public key ([`listener_key`](Self::listener_key)
    /// or [`Endpoint::connect_to`](crate::Endpoint::connect_to));
    /// [`Session::peer_identity`](crate::Session::peer_identity) then names
    /// the peer. Default `None`.
    pub identity: Option<crate::crypto::Identity>,
    /// A starter's pin: the listener's public key, which only that listener
    /// can answer to. Used by [`Endpoint::connect`](crate::Endpoint::connect)
    /// when this endpoint has an [`identity`](Self::identity);
    /// [`Endpoint::connect_to`](crate::Endpoint::connect_to) takes one per
    /// session instead. Default `None`.
    pub listener_key: Option<crate::crypto::PublicKey>,
    /// A listener with an [`identity`](Self::identity): the starters' public
    /// keys it admits. A starter whose key is not listed is refused with
    /// [`CloseReason::AuthenticationFailed`](crate::CloseReason::AuthenticationFailed)
    /// and leaves no state behind. `None` admits any key that completes the
    /// handshake (each session still knows its peer's). Change it on a
    /// running endpoint with
    /// [`Endpoint::set_authorized_keys`](crate::Endpoint::set_authorized_keys)
    /// (to revoke a key). Default `None`.
    pub authorized_keys: Option<crate::crypto::AuthorizedKeys>,
    /// On an encrypted session (a pre-shared key or an identity), how many
    /// packets this side seals under one
    /// generation of its sending keys before it moves to the next (a key
    /// update, see [`crate::crypto::update`]), without a pause in the data.
    /// Default 2^23 (8 388 608, some 10 GB of full-size packets): RFC 9001's
    /// confidentiality limit for AES-GCM, the tighter of the two ciphers
    /// (ChaCha20-Poly1305's is far higher); an update costs two HKDF
    /// expansions and a key schedule, nothing on the wire. `u64::MAX`
    /// updates by time only. A side updates only if the peer announced it
    /// follows updates in the handshake (a peer from before key updates
    /// does not, and its sessions keep their first keys); the counts are
    /// [`SessionStats::key_updates_sent`](crate::SessionStats::key_updates_sent)
    /// and [`SessionStats::key_updates_received`](crate::SessionStats::key_updates_received).
    /// Without encryption it has no effect. Must not be zero.
    pub key_update_packets: u64,
    /// On an encrypted session, the longest time this side seals under one
    /// generation of its sending keys before it moves to the next, however
    /// few packets it sent: a long, slow session does not keep one key for
    /// its whole life. Default one hour. `None`: by packet count only.
    /// Without encryption it has no effect. Must not be zero.
    pub key_update_interval: Option<Duration>,
    /// A listener gives each starter whose session is established a
    /// *resumption ticket* (see [`crate::Ticket`]), with which a later
    /// session opens in a shortened handshake
    /// ([`Endpoint::connect_resumed`](crate::Endpoint::connect_resumed)).
    /// Needs the wall clock
    /// ([`Endpoint::set_wall_clock`](crate::Endpoint::set_wall_clock), which
    /// the drivers and the simulator set): without it no ticket is issued.
    /// Default `false`.
    pub issue_tickets: bool,
    /// How long a ticket this listener issues stays good, and how often the
    /// key that seals tickets is replaced (the endpoint keeps the current key
    /// and the one before, so no ticket outlives its lifetime). Default 24
    /// hours; at least one second, at most a week.
    pub ticket_lifetime: Duration,
    /// A listener delivers the *early data* (0-RTT messages) a resumed
    /// session's Connect carries, once per ticket, before the handshake
    /// completes. Early data can be replayed by whoever records the Connect
    /// while the ticket is good; the listener delivers it at most once, but
    /// only messages whose effect the application allows before the
    /// handshake should be sent so (see `docs/protocol.md`, §6.19). Without
    /// it the starter sends them again, normally, after the handshake.
    /// Default `false`.
    pub accept_early_data: bool,
}

/// The longest [`Config::ticket_lifetime`]: a week.
pub const MAX_TICKET_LIFETIME: Duration = Duration::from_secs(7 * 24 * 3600);

impl Default for Config {
    fn default() -> Self {
        Self {
            mtu: 1200,
            max_mtu: 1452,
            max_message_size: 16 << 20,
            handshake_timeout: Duration::from_secs(10),
            delivery_timeout: Duration::from_millis(25),
            initial_rtt: Duration::from_millis(100),
            max_ack_delay: Duration::from_millis(10),
            ack_frequency: 2,
            ack_frequency_bulk: 10,
            ping_interval: Duration::from_secs(1),
            ping_packet_count: 5,
            send_buffer: 32 << 20,
            max_send_buffer: 128 << 20,
            send_window: 16 << 20,
            congestion: CongestionControl::default(),
            send_window_packets: 16_384,
            stream_send_buffer: 16 << 20,
            recv_window: 32 << 20,
            stream_recv_window: 24 << 20,
            max_recv_window: 128 << 20,
            max_stream_recv_window: 96 << 20,
            max_streams: 100,
            datagram_queue: 256,
            max_sessions: 4096,
            max_handshakes_per_source: 1000,
            max_pending_handshakes: 256,
            amplification_factor: 3,
            max_recv_memory: 2 << 30,
            accept_incoming: false,
            decide_incoming: false,
            server_id: None,
            psk: None,
            cipher: CipherPreference::Auto,
            identity: None,
            listener_key: None,
            authorized_keys: None,
            key_update_packets: 1 << 23,
            key_update_interval: Some(Duration::from_secs(3600)),
            issue_tickets: false,
            ticket_lifetime: Duration::from_secs(24 * 3600),
            accept_early_data: false,
        }
    }
}

impl Config {
    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.identity.is_none() {
            if self.listener_key.is_some() {
                return Err(ConfigError::NeedsIdentity("listener_key"));
            }
            if self.authorized_keys.is_some() {
                return Err(ConfigError::NeedsIdentity("authorized_keys"));
            }
        }
        if self.mtu < MIN_MTU {
            return Err(ConfigError::MtuTooSmall {
                mtu: self.mtu,
                min: MIN_MTU,
            });
        }
        if self.mtu > MAX_MTU {
            return Err(ConfigError::MtuTooLarge {
                mtu: self.mtu,
                max: MAX_MTU,
            });
        }
        if self.max_mtu > MAX_MTU {
            return Err(ConfigError::TooLarge {
                field: "max_mtu",
                value: self.max_mtu as u64,
                max: MAX_MTU as u64,
            });
        }
        for (name, d) in [
            ("handshake_timeout", self.handshake_timeout),
            ("delivery_timeout", self.delivery_timeout),
            ("initial_rtt", self.initial_rtt),
            ("ping_interval", self.ping_interval),
            (
                "key_update_interval",
                self.key_update_interval.unwrap_or(Duration::MAX),
            ),
        ] {
            if d.is_zero() {
                return Err(ConfigError::ZeroDuration(name));
            }
        }
        for (name, v) in [
            ("ack_frequency", self.ack_frequency as usize),
            ("ack_frequency_bulk", self.ack_frequency_bulk as usize),
            ("ping_packet_count", self.ping_packet_count as usize),
            ("send_buffer", self.send_buffer),
            ("stream_send_buffer", self.stream_send_buffer),
            ("send_window", self.send_window),
            ("send_window_packets", self.send_window_packets),
            ("datagram_queue", self.datagram_queue),
            ("max_sessions", self.max_sessions),
            ("amplification_factor", self.amplification_factor as usize),
        ] {
            if v == 0 {
                return Err(ConfigError::Zero(name));
            }
        }
        if self.key_update_packets == 0 {
            return Err(ConfigError::Zero("key_update_packets"));
        }
        if self.ticket_lifetime < Duration::from_secs(1) {
            return Err(ConfigError::ZeroDuration("ticket_lifetime"));
        }
        if self.ticket_lifetime > MAX_TICKET_LIFETIME {
            return Err(ConfigError::TooLarge {
                field: "ticket_lifetime",
                value: self.ticket_lifetime.as_secs(),
                max: MAX_TICKET_LIFETIME.as_secs(),
            });
        }
        // Fragment indices travel as u32; keep every message's fragment count below that.
        let max_message = (u32::MAX as u64) * MIN_FRAGMENT_PAYLOAD as u64 / 2;
        if self.max_message_size as u64 > max_message.min(VARINT_MAX) {
            return Err(ConfigError::TooLarge {
                field: "max_message_size",
                value: self.max_message_size as u64,
                max: max_message,
            });
        }
        let needed = self.min_recv_window();
        if self.recv_window < needed {
            return Err(ConfigError::WindowTooSmall {
                recv_window: self.recv_window,
                needed,
            });
        }
        if self.stream_recv_window < needed {
            return Err(ConfigError::StreamWindowTooSmall {
                stream_recv_window: self.stream_recv_window,
                needed,
            });
        }
        for (field, max, initial, initial_field) in [
            (
                "max_send_buffer",
                self.max_send_buffer,
                self.send_buffer,
                "send_buffer",
            ),
            (
                "max_send_buffer",
                self.max_send_buffer,
                self.stream_send_buffer,
                "stream_send_buffer",
            ),
            (
                "max_recv_window",
                self.max_recv_window,
                self.recv_window,
                "recv_window",
            ),
            (
                "max_stream_recv_window",
                self.max_stream_recv_window,
                self.stream_recv_window,
                "stream_recv_window",
            ),
            (
                "max_recv_memory",
                self.max_recv_memory,
                self.recv_window,
                "recv_window",
            ),
        ] {
            if max < initial {
                return Err(ConfigError::MaxBelowInitial {
                    field,
                    max,
                    initial_field,
                    initial,
                });
            }
        }
        Ok(())
    }

    /// The smallest `recv_window` that holds one message of `max_message_size`
    /// with the per-fragment charge of its smallest legal fragments.
    pub fn min_recv_window(&self) -> usize {
        let fragments = self.max_message_size / MIN_FRAGMENT_PAYLOAD + 1;
        self.max_message_size + fragments * FRAGMENT_COST as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        Config::default().validate().unwrap();
    }

    #[test]
    fn bad_values_are_named() {
        let bad = Config {
            mtu: 100,
            ..Config::default()
        };
        assert!(matches!(
            bad.validate(),
            Err(ConfigError::MtuTooSmall { .. })
        ));
        let bad = Config {
            max_mtu: 65_508,
            ..Config::default()
        };
        let err = bad.validate().unwrap_err();
        assert!(err.to_string().contains("`max_mtu`"), "{err}");
        // At or below `mtu`, discovery is off: valid.
        Config {
            max_mtu: 0,
            ..Config::default()
        }
        .validate()
        .unwrap();
        let bad = Config {
            ping_interval: Duration::ZERO,
            ..Config::default()
        };
        assert_eq!(
            bad.validate(),
            Err(ConfigError::ZeroDuration("ping_interval"))
        );
        let bad = Config {
            recv_window: 1 << 20,
            ..Config::default()
        };
        let err = bad.validate().unwrap_err();
        assert!(err.to_string().contains("raise `recv_window`"), "{err}");
        let bad = Config {
            send_window: 0,
            ..Config::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::Zero("send_window")));
        let bad = Config {
            key_update_packets: 0,
            ..Config::default()
        };
        assert_eq!(bad.validate(), Err(ConfigError::Zero("key_update_packets")));
        let bad = Config {
            key_update_interval: Some(Duration::ZERO),
            ..Config::default()
        };
        assert_eq!(
            bad.validate(),
            Err(ConfigError::ZeroDuration("key_update_interval"))
        );
        let bad = Config {
            max_recv_window: 1 << 20,
            ..Config::default()
        };
        let err = bad.validate().unwrap_err();
        assert!(err.to_string().contains("raise `max_recv_window`"), "{err}");
    }
}
