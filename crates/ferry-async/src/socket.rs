//! Creating the UDP socket: address family, buffer sizes, non-blocking mode,
//! and the quinn-udp state shared by every runtime's socket type.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsFd;

use quinn_udp::{UdpSockRef, UdpSocketState};
use socket2::{Domain, Protocol, Socket, Type};
use tracing::debug;

use crate::config::EndpointConfig;
use crate::error::BindError;

/// Binds a non-blocking UDP socket on `addr` with the configured buffer sizes.
pub fn bind_socket(addr: SocketAddr, config: &EndpointConfig) -> Result<UdpSocket, BindError> {
    let domain = Domain::for_address(addr);
    let socket = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| BindError::Io { addr, source: e })?;
    if addr.is_ipv6() {
        // Accept IPv4-mapped peers too when bound to the unspecified address.
        let _ = socket.set_only_v6(false);
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
        recv_buffer = socket.recv_buffer_size().unwrap_or(0),
        send_buffer = socket.send_buffer_size().unwrap_or(0),
        "socket bound"
    );
    Ok(socket.into())
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
