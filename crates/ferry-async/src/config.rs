//! Driver settings: the protocol's, the socket's, and how many shards.

use tracing::debug;

use crate::error::BindError;
use crate::fallback::FallbackConfig;

/// Settings of a driven endpoint: the protocol configuration plus the socket's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// The protocol settings (MTU, windows, timeouts, `accept_incoming`, …).
    pub protocol: ferry_proto::Config,
    /// Requested kernel receive buffer, bytes. Default 32 MiB: a server whose
    /// many sessions together send more than it reads for a moment loses
    /// less (1,000 sessions on loopback lost 10% of their packets with
    /// 8 MiB). The kernel caps it (`net.core.rmem_max` on Linux) and takes
    /// the memory only as datagrams wait. Each shard's socket asks for it.
    pub socket_recv_buffer: usize,
    /// Requested kernel send buffer, bytes. Default 8 MiB; the kernel caps it
    /// (`net.core.wmem_max` on Linux). Each shard's socket asks for it.
    pub socket_send_buffer: usize,
    /// How many shards serve the endpoint's address, so that its protocol
    /// work runs on that many cores at once. Default 1: one socket, one
    /// protocol endpoint, one driver task, as an endpoint always was. `0`
    /// asks for one per available core
    /// ([`std::thread::available_parallelism`], at most
    /// [`MAX_SHARDS`](ferry_proto::MAX_SHARDS)); more than `MAX_SHARDS` is
    /// refused with [`BindError::TooManyShards`].
    ///
    /// Each shard has its own socket on the same address (`SO_REUSEPORT`:
    /// the kernel spreads incoming datagrams over them by a hash of their
    /// source and destination), its own protocol endpoint, lock and driver
    /// task; a new session lives on one shard for its whole life, its id
    /// naming the shard. A datagram that reaches another shard's socket (the
    /// peer's address changed, or a reply to a session this side started) is
    /// handed to the owner by the driver that received it. Shards run in
    /// parallel on a multi-threaded runtime (tokio's multi-thread runtime,
    /// `ferry-blocking`: a thread per shard); on a single-threaded one they
    /// take turns.
    ///
    /// The endpoint-wide limits of [`protocol`](Self::protocol) are divided
    /// among the shards, rounding up: `max_sessions`, `max_recv_memory` (at
    /// least `recv_window` per shard) and `max_pending_handshakes` bound each
    /// shard to its share, so a shard may refuse a session while another
    /// has room (a `connect` then tries the next shard).
    /// `max_handshakes_per_source` stays per shard: a source whose ports
    /// the kernel spreads over several shards may start up to that many
    /// sessions per second on each.
    ///
    /// Sharding needs `SO_REUSEPORT` that spreads datagrams (Linux,
    /// Android); elsewhere the endpoint falls back to one shard.
    pub shards: usize,
    /// The fallback transport: the same sessions over a TCP connection as
    /// WebSocket messages, for where UDP does not get through. Off by
    /// default; see [`FallbackConfig`]. Needs one shard: with
    /// [`shards`](Self::shards) above one, binding fails with
    /// [`BindError::FallbackSharded`].
    pub fallback: FallbackConfig,
}

impl Default for EndpointConfig {
    fn default() -> Self {
        Self::from(ferry_proto::Config::default())
    }
}

impl From<ferry_proto::Config> for EndpointConfig {
    fn from(protocol: ferry_proto::Config) -> Self {
        Self {
            protocol,
            socket_recv_buffer: 32 << 20,
            socket_send_buffer: 8 << 20,
            shards: 1,
            fallback: FallbackConfig::default(),
        }
    }
}

/// Whether this platform's `SO_REUSEPORT` spreads datagrams over the sockets
/// sharing a port (elsewhere, BSDs and macOS among them, one socket gets every
/// unicast datagram, and shards would gain nothing).
pub(crate) const SHARDING: bool = cfg!(any(target_os = "linux", target_os = "android"));

impl EndpointConfig {
    /// A server's configuration: accepts sessions started by peers.
    pub fn server() -> Self {
        Self::from(ferry_proto::Config {
            accept_incoming: true,
            ..ferry_proto::Config::default()
        })
    }

    /// This configuration with `shards` shards (see [`shards`](Self::shards)).
    #[must_use]
    pub fn with_shards(self, shards: usize) -> Self {
        Self { shards, ..self }
    }

    /// How many shards an endpoint bound with this configuration has:
    /// [`shards`](Self::shards), with `0` resolved to the number of
    /// available cores (at most [`MAX_SHARDS`](ferry_proto::MAX_SHARDS)), and
    /// 1 where the platform cannot spread datagrams over sockets. Fails with
    /// [`BindError::TooManyShards`] above `MAX_SHARDS`.
    pub fn shard_count(&self) -> Result<usize, BindError> {
        let max = usize::from(ferry_proto::MAX_SHARDS);
        let count = match self.shards {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get().min(max)),
            n if n > max => {
                return Err(BindError::TooManyShards {
                    shards: n,
                    max: ferry_proto::MAX_SHARDS,
                });
            }
            n => n,
        };
        if count > 1 && !SHARDING {
            debug!(
                shards = count,
                "SO_REUSEPORT does not spread datagrams here: one shard"
            );
            return Ok(1);
        }
        Ok(count)
    }

    /// The protocol settings of each of `count` shards: the endpoint-wide
    /// limits divided among them, rounding up (see [`shards`](Self::shards)).
    pub(crate) fn shard_protocol(&self, count: usize) -> ferry_proto::Config {
        let mut protocol = self.protocol.clone();
        if count > 1 {
            protocol.max_sessions = protocol.max_sessions.div_ceil(count);
            protocol.max_pending_handshakes = protocol.max_pending_handshakes.div_ceil(count);
            protocol.max_recv_memory = protocol
                .max_recv_memory
                .div_ceil(count)
                .max(protocol.recv_window);
        }
        protocol
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_shard_is_the_default() {
        assert_eq!(EndpointConfig::default().shards, 1);
        assert_eq!(EndpointConfig::server().shard_count().unwrap(), 1);
    }

    #[test]
    fn zero_shards_is_one_per_core() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let expected = if SHARDING {
            cores.min(usize::from(ferry_proto::MAX_SHARDS))
        } else {
            1
        };
        let config = EndpointConfig::default().with_shards(0);
        assert_eq!(config.shard_count().unwrap(), expected);
    }

    #[test]
    fn more_shards_than_the_maximum_are_refused() {
        let max = ferry_proto::MAX_SHARDS;
        let config = EndpointConfig::default().with_shards(usize::from(max) + 1);
        assert!(matches!(
            config.shard_count(),
            Err(BindError::TooManyShards { shards, max: m }) if shards == usize::from(max) + 1 && m == max
        ));
        let config = EndpointConfig::default().with_shards(usize::from(max));
        assert!(config.shard_count().is_ok());
    }

    #[test]
    fn endpoint_wide_limits_are_divided_among_shards_rounding_up() {
        let config = EndpointConfig::server();
        let one = config.shard_protocol(1);
        assert_eq!(one, config.protocol);
        let three = config.shard_protocol(3);
        assert_eq!(three.max_sessions, 4096_usize.div_ceil(3));
        assert_eq!(three.max_pending_handshakes, 256_usize.div_ceil(3));
        assert_eq!(three.max_recv_memory, (2_usize << 30).div_ceil(3));
        // Never below one session's window.
        let many = config.shard_protocol(64);
        assert_eq!(many.max_recv_memory, many.recv_window.max((2 << 30) / 64));
        assert!(many.validate().is_ok());
    }
}
