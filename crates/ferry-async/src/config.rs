//! Driver settings: the protocol's, and the socket's.

/// Settings of a driven endpoint: the protocol configuration plus the socket's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndpointConfig {
    /// The protocol settings (MTU, windows, timeouts, `accept_incoming`, …).
    pub protocol: ferry_proto::Config,
    /// Requested kernel receive buffer, bytes. Default 32 MiB: a server whose
    /// many sessions together send more than it reads for a moment loses
    /// less (1,000 sessions on loopback lost 10% of their packets with
    /// 8 MiB). The kernel caps it (`net.core.rmem_max` on Linux) and takes
    /// the memory only as datagrams wait.
    pub socket_recv_buffer: usize,
    /// Requested kernel send buffer, bytes. Default 8 MiB; the kernel caps it
    /// (`net.core.wmem_max` on Linux).
    pub socket_send_buffer: usize,
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
        }
    }
}

impl EndpointConfig {
    /// A server's configuration: accepts sessions started by peers.
    pub fn server() -> Self {
        Self::from(ferry_proto::Config {
            accept_incoming: true,
            ..ferry_proto::Config::default()
        })
    }
}
