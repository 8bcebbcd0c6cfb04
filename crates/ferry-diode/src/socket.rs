//! Creating the UDP socket, the driver's knobs, and small shared helpers.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Mutex, MutexGuard, PoisonError};

use socket2::{Domain, Protocol, Socket, Type};
use tracing::{debug, warn};

use crate::DiodeError;

/// The driver's resources: socket buffer sizes, worker threads and (for the
/// receiver) how many events may wait for the application.
///
/// ```
/// use ferry_diode::SocketOptions;
///
/// let options = SocketOptions {
///     threads: 2,
///     ..SocketOptions::default()
/// };
/// assert_eq!(options.send_buffer, 8 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketOptions {
    /// `udp_send_buffer`: the sending socket's buffer, in bytes (default
    /// 8 MiB). A request: the kernel caps it (`net.core.wmem_max` on Linux);
    /// the size granted is logged as a warning when smaller.
    pub send_buffer: usize,
    /// `udp_recv_buffer`: the receiving socket's buffer, in bytes (default
    /// 32 MiB). It absorbs the moments the receiver falls behind: datagrams
    /// beyond it are dropped by the kernel. Capped by `net.core.rmem_max` on
    /// Linux; the size granted is logged as a warning when smaller.
    pub recv_buffer: usize,
    /// `encode_threads` / `decode_threads`: worker threads that run RaptorQ
    /// coding. 0 (the default): one per available core.
    pub threads: usize,
    /// Receiver only: bytes of [`Data`](ferry_proto::diode::ReceiverEvent::Data)
    /// events that may wait for the application (default 32 MiB; at least one
    /// event always fits). Beyond it the receiving thread waits for the
    /// application, see [`DiodeReceiver`](crate::DiodeReceiver).
    pub event_queue_bytes: usize,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            send_buffer: 8 << 20,
            recv_buffer: 32 << 20,
            threads: 0,
            event_queue_bytes: 32 << 20,
        }
    }
}

impl SocketOptions {
    /// The number of worker threads to start.
    pub(crate) fn worker_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }
}

/// Which buffer to size.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Buffer {
    Send(usize),
    Recv(usize),
}

/// Binds a UDP socket on `addr` and sizes its buffer, warning when the kernel
/// grants less than asked.
pub(crate) fn bind_udp(addr: SocketAddr, buffer: Buffer) -> Result<UdpSocket, DiodeError> {
    let io_err = |context, source| DiodeError::Io {
        context,
        addr,
        source,
    };
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| io_err("cannot create a UDP socket for", e))?;
    if addr.is_ipv6() {
        // Accept IPv4-mapped peers too when bound to the unspecified address.
        let _ = socket.set_only_v6(false);
    }
    match buffer {
        Buffer::Send(size) => {
            if let Err(e) = socket.set_send_buffer_size(size) {
                debug!(error = %e, "could not set the send buffer size");
            }
            let granted = socket.send_buffer_size().unwrap_or(0);
            if granted < size {
                warn!(
                    requested = size,
                    granted,
                    "the kernel granted a smaller UDP send buffer than asked; raise net.core.wmem_max (sysctl) or lower `udp_send_buffer`"
                );
            }
        }
        Buffer::Recv(size) => {
            if let Err(e) = socket.set_recv_buffer_size(size) {
                debug!(error = %e, "could not set the receive buffer size");
            }
            let granted = socket.recv_buffer_size().unwrap_or(0);
            if granted < size {
                warn!(
                    requested = size,
                    granted,
                    "the kernel granted a smaller UDP receive buffer than asked: datagrams may be dropped under bursts; raise net.core.rmem_max (sysctl) or lower `udp_recv_buffer`"
                );
            }
        }
    }
    socket.bind(&addr.into()).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => DiodeError::AddrInUse(addr),
        io::ErrorKind::AddrNotAvailable => DiodeError::AddrNotAvailable(addr),
        io::ErrorKind::PermissionDenied => DiodeError::PermissionDenied(addr),
        _ => io_err("cannot bind UDP address", e),
    })?;
    Ok(socket.into())
}

/// An unpredictable seed: the standard library's per-process random hasher
/// keys, mixed with the time.
pub(crate) fn seed() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.write_u32(std::process::id());
    h.finish()
}

/// Locks a mutex, ignoring poisoning: the state stays consistent because
/// every critical section leaves it so before anything can panic.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
