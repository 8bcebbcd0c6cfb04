//! Creating the UDP socket, the driver's knobs, and small shared helpers.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Mutex, MutexGuard, PoisonError};

use socket2::{Domain, Protocol, Socket, Type};
use tracing::debug;

use crate::DiodeError;
use crate::buffers::{BufferCheck, BufferSide};

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
    /// `udp_port`: the UDP ports to spread the datagrams over, as Lidi's
    /// `udp_port = [...]`. Empty (the default): the one port of the address
    /// given to `bind`. Otherwise that address gives the IP only, and:
    ///
    /// - the sender sends to the destination's IP at each of these ports in
    ///   turn (round robin, one GSO run of datagrams at a time), each port
    ///   with its own socket and send thread;
    /// - the receiver binds one socket per port (0: a port the system
    ///   chooses, see [`DiodeReceiver::local_addrs`](crate::DiodeReceiver::local_addrs)),
    ///   each read by its own thread, all feeding the one protocol core.
    ///
    /// Both sides must list the same ports. Several ports let the receiving
    /// host spread the flows over its NIC's queues and cores (receive-side
    /// scaling hashes the port) and give each socket its own buffer;
    /// datagrams from different ports may reorder, which the receiver
    /// tolerates within `DiodeConfig::blocks_in_flight()` blocks.
    pub ports: Vec<u16>,
}

impl Default for SocketOptions {
    fn default() -> Self {
        Self {
            send_buffer: 8 << 20,
            recv_buffer: 32 << 20,
            threads: 0,
            event_queue_bytes: 32 << 20,
            ports: Vec::new(),
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

/// Binds a UDP socket on `addr` and asks for a buffer of `buffer.requested`
/// bytes; returns the socket and the comparison of what the kernel granted
/// with what the pace needs, logged as a warning when short (see
/// [`BufferCheck`]).
pub(crate) fn bind_udp(
    addr: SocketAddr,
    mut buffer: BufferCheck,
) -> Result<(UdpSocket, BufferCheck), DiodeError> {
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
    let (set, granted) = match buffer.side {
        BufferSide::Send => (
            socket.set_send_buffer_size(buffer.requested),
            socket.send_buffer_size(),
        ),
        BufferSide::Recv => (
            socket.set_recv_buffer_size(buffer.requested),
            socket.recv_buffer_size(),
        ),
    };
    if let Err(e) = set {
        debug!(error = %e, side = ?buffer.side, "could not set the socket buffer size");
    }
    buffer.granted = granted.unwrap_or(0);
    buffer.log(addr);
    socket.bind(&addr.into()).map_err(|e| match e.kind() {
        io::ErrorKind::AddrInUse => DiodeError::AddrInUse(addr),
        io::ErrorKind::AddrNotAvailable => DiodeError::AddrNotAvailable(addr),
        io::ErrorKind::PermissionDenied => DiodeError::PermissionDenied(addr),
        _ => io_err("cannot bind UDP address", e),
    })?;
    Ok((socket.into(), buffer))
}

/// The addresses a side uses: `addr` alone when `ports` is empty, else
/// `addr`'s IP at each of `ports`.
pub(crate) fn spread(addr: SocketAddr, ports: &[u16]) -> Vec<SocketAddr> {
    if ports.is_empty() {
        return vec![addr];
    }
    ports
        .iter()
        .map(|&port| {
            let mut a = addr;
            a.set_port(port);
            a
        })
        .collect()
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
