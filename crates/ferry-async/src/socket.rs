//! Creating the UDP socket: address family, buffer sizes, non-blocking mode,
//! and the quinn-udp state shared by every runtime's socket type.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;

use quinn_udp::{UdpSockRef, UdpSocketState};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tracing::debug;

use crate::config::EndpointConfig;
use crate::error::BindError;

/// Binds a non-blocking UDP socket on `addr` with the configured buffer sizes.
pub fn bind_socket(addr: SocketAddr, config: &EndpointConfig) -> Result<UdpSocket, BindError> {
    bind(addr, config, false)
}

/// Binds `count` non-blocking UDP sockets on `addr` for the shards of one
/// endpoint, all with `SO_REUSEPORT`: the kernel spreads the datagrams
/// arriving at the address over them by a hash of their source and
/// destination. With port 0, the first socket's port (the one the OS chose)
/// is the others'.
///
/// The first socket is bound without `SO_REUSEPORT` and gets it only once
/// bound, the others before their bind. So binding fails with
/// [`BindError::AddrInUse`] where any socket holds the address, as for one
/// shard, instead of joining another endpoint's sockets (Linux lets a socket
/// with `SO_REUSEPORT` join any group of the same user on the port, and its
/// choice of a port for port 0 counts such groups as free).
///
/// Only where sharding is possible (see
/// [`EndpointConfig::shard_count`]); elsewhere one socket, as
/// [`bind_socket`].
pub fn bind_shard_sockets(
    addr: SocketAddr,
    config: &EndpointConfig,
    count: usize,
) -> Result<Vec<UdpSocket>, BindError> {
    let first = bind(addr, config, false)?;
    if count <= 1 || !crate::config::SHARDING {
        return Ok(vec![first]);
    }
    let bound = first
        .local_addr()
        .map_err(|e| BindError::Io { addr, source: e })?;
    set_reuse_port(&SockRef::from(&first)).map_err(|e| BindError::Io { addr, source: e })?;
    let mut sockets = Vec::with_capacity(count);
    sockets.push(first);
    let shared = SocketAddr::new(addr.ip(), bound.port());
    for _ in 1..count {
        sockets.push(bind(shared, config, true)?);
    }
    Ok(sockets)
}

fn bind(
    addr: SocketAddr,
    config: &EndpointConfig,
    reuse_port: bool,
) -> Result<UdpSocket, BindError> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| BindError::Io { addr, source: e })?;
    if addr.is_ipv6() {
        // Accept IPv4-mapped peers too when bound to the unspecified address.
        let _ = socket.set_only_v6(false);
    }
    if reuse_port {
        set_reuse_port(&SockRef::from(&socket)).map_err(|e| BindError::Io { addr, source: e })?;
    }
    // Buffer sizes are requests: the kernel caps them (net.core.rmem_max).
    if let Err(e) = socket.set_recv_buffer_size(config.socket_recv_buffer) {
        debug!(error = %e, "could not set the receive buffer size");
    }
    if let Err(e) = socket.set_send_buffer_size(config.socket_send_buffer) {
        debug!(error = %e, "could not set the send buffer size");
    }
    socket.bind(&addr.into()).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => BindError::AddrInUse(addr),
        io::ErrorKind::AddrNotAvailable => BindError::AddrNotAvailable(addr),
        io::ErrorKind::PermissionDenied => BindError::PermissionDenied(addr),
        _ => BindError::Io { addr, source: e },
    })?;
    socket
        .set_nonblocking(true)
        .map_err(|e| BindError::Io { addr, source: e })?;
    debug!(
        %addr,
        reuse_port,
        recv_buffer = socket.recv_buffer_size().unwrap_or(0),
        send_buffer = socket.send_buffer_size().unwrap_or(0),
        "socket bound"
    );
    Ok(socket.into())
}

/// Lets other sockets of this user bind the same address, the kernel
/// spreading datagrams over them.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn set_reuse_port(socket: &SockRef<'_>) -> io::Result<()> {
    socket.set_reuse_port(true)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn set_reuse_port(_: &SockRef<'_>) -> io::Result<()> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "SO_REUSEPORT does not spread datagrams on this platform",
    ))
}

/// The quinn-udp state for `socket`, with ICMP error reporting switched on
/// where the platform has it.
pub fn udp_state(socket: &UdpSocket) -> io::Result<UdpSocketState> {
    let state = UdpSocketState::new(UdpSockRef::from(socket))?;
    if let Err(e) = state.enable_transport_errors(UdpSockRef::from(socket)) {
        debug!(error = %e, "ICMP errors will not be reported");
    }
    Ok(state)
}

/// Drains the socket's error queue up to the first "unreachable" error and
/// returns who reported it (the refusing host, or a router on the way).
pub fn take_unreachable<S: AsFd>(state: &UdpSocketState, socket: &S) -> Option<SocketAddr> {
    loop {
        match state.recv_transport_error(UdpSockRef::from(socket)) {
            Ok(Some(e)) => {
                if let (Some(addr), quinn_udp::TransportErrorPayload::Unreachable) =
                    (e.addr, e.payload)
                {
                    return Some(addr);
                }
            }
            _ => return None,
        }
    }
}

#[cfg(all(test, any(target_os = "linux", target_os = "android")))]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn local() -> SocketAddr {
        "127.0.0.1:0".parse().unwrap()
    }

    #[test]
    fn the_shards_share_one_port() {
        let sockets = bind_shard_sockets(local(), &EndpointConfig::default(), 3).unwrap();
        let ports: HashSet<_> = sockets
            .iter()
            .map(|s| s.local_addr().unwrap().port())
            .collect();
        assert_eq!(sockets.len(), 3);
        assert_eq!(ports.len(), 1);
    }

    #[test]
    fn a_sharded_bind_on_a_port_another_endpoint_holds_is_refused() {
        let config = EndpointConfig::default();
        let held = bind_shard_sockets(local(), &config, 2).unwrap();
        let addr = held[0].local_addr().unwrap();
        // Another endpoint's shards: refused, not let in among the first's.
        assert!(matches!(
            bind_shard_sockets(addr, &config, 2),
            Err(BindError::AddrInUse(a)) if a == addr
        ));
        assert!(matches!(
            bind_socket(addr, &config),
            Err(BindError::AddrInUse(_))
        ));
    }

    #[test]
    fn sharded_endpoints_on_port_zero_never_share_a_port() {
        // Linux counts a port held only by SO_REUSEPORT sockets of this user
        // as free when it picks one for port 0: a hundred endpoints whose
        // first socket had it before binding would likely see two share.
        let config = EndpointConfig::default();
        let endpoints: Vec<_> = (0..100)
            .map(|_| bind_shard_sockets(local(), &config, 2).unwrap())
            .collect();
        let ports: HashSet<_> = endpoints
            .iter()
            .map(|e| e[0].local_addr().unwrap().port())
            .collect();
        assert_eq!(ports.len(), endpoints.len());
    }
}
