//! What a session knows of its peer from the handshake.

use std::time::Duration;

use crate::wire::packet::Handshake;

/// The parameters a peer announced in its handshake packet (a starter's
/// Connect, a listener's ConnectAck), as it sent them: the session uses the
/// smaller of each and this side's own.
///
/// A listener deciding on an incoming session (see
/// [`Config::decide_incoming`](crate::Config::decide_incoming)) reads the
/// starter's here, through [`Session::peer_params`](crate::Session::peer_params).
/// They are what the peer asked for, not a proof of anything: without a
/// pre-shared key they are not authenticated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PeerParams {
    /// The peer's base MTU: the largest UDP payload it receives, bytes.
    pub mtu: u64,
    /// The largest message the peer accepts, bytes.
    pub max_message_size: u64,
    /// The peer's initial session receive window, bytes.
    pub recv_window: u64,
    /// The peer's initial receive window per stream, bytes.
    pub stream_recv_window: u64,
    /// How many streams the peer lets this side have open at once.
    pub max_streams: u64,
    /// The longest the peer delays an ack (as announced, before this side
    /// bounds it).
    pub max_ack_delay: Duration,
}

impl From<&Handshake> for PeerParams {
    fn from(h: &Handshake) -> Self {
        Self {
            mtu: h.max_udp_payload,
            max_message_size: h.max_message_size,
            recv_window: h.initial_max_data,
            stream_recv_window: h.initial_max_stream_data,
            max_streams: h.max_streams,
            max_ack_delay: Duration::from_micros(h.max_ack_delay_micros),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::session::own_params;

    #[test]
    fn the_parameters_are_read_as_announced() {
        let config = Config {
            max_streams: 9,
            ..Config::default()
        };
        let p = PeerParams::from(&own_params(&config));
        assert_eq!(p.mtu, config.mtu as u64);
        assert_eq!(p.max_message_size, config.max_message_size as u64);
        assert_eq!(p.recv_window, config.recv_window as u64);
        assert_eq!(p.stream_recv_window, config.stream_recv_window as u64);
        assert_eq!(p.max_streams, 9);
        assert_eq!(p.max_ack_delay, config.max_ack_delay);
    }
}
