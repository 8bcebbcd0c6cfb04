//! Socket buffers: how much the configured pace needs, what the kernel
//! granted, and how many datagrams it dropped for want of room.

use std::fmt;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use ferry_proto::diode::DiodeConfig;
use tracing::{debug, warn};

/// How long the receiving socket's buffer should absorb datagrams at the
/// configured pace while nobody reads it: a decode worker or the receive
/// thread descheduled for a few scheduler periods (a few to ~20 ms on a busy
/// host), a RaptorQ decode of a large block, a page-cache flush in the
/// consumer. 50 ms covers these with room to spare without asking for
/// absurd sizes (6 MiB at 1 Gbit/s).
pub const RECV_BUFFER_TIME: Duration = Duration::from_millis(50);
/// How long the sending socket's buffer should hold datagrams at the pace:
/// the driver hands the kernel a burst (`max_burst`) at a time and then
/// waits for pacing; the buffer must take a burst plus what the NIC has
/// not drained yet. A short send buffer does not lose datagrams (the driver
/// blocks), it only keeps the sender below its pace.
pub const SEND_BUFFER_TIME: Duration = Duration::from_millis(10);

/// Which socket buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BufferSide {
    /// `SO_SNDBUF`, capped by `net.core.wmem_max` on Linux.
    Send,
    /// `SO_RCVBUF`, capped by `net.core.rmem_max` on Linux.
    Recv,
}

impl BufferSide {
    /// The Linux sysctl that caps this buffer.
    pub fn sysctl_key(self) -> &'static str {
        match self {
            Self::Send => "net.core.wmem_max",
            Self::Recv => "net.core.rmem_max",
        }
    }

    /// The configuration file's key that asks for this buffer.
    pub fn config_key(self) -> &'static str {
        match self {
            Self::Send => "udp_send_buffer",
            Self::Recv => "udp_recv_buffer",
        }
    }
}

/// Bytes of socket buffer one side needs for `config`'s pace, over `ports`
/// sockets (each carries its share).
///
/// `bandwidth × T + max_burst`, where `T` is [`RECV_BUFFER_TIME`] (50 ms)
/// for the receiver and [`SEND_BUFFER_TIME`] (10 ms) for the sender, divided
/// among the ports and rounded up to a whole MiB. These are bytes of
/// datagrams: the kernel also charges each datagram's bookkeeping, which is
/// why Linux doubles the size asked for (see [`BufferCheck::usable`]).
///
/// ```
/// use ferry_diode::{BufferSide, DiodeConfig, buffer_needed};
///
/// // 1 Gbit/s: 6.25 MB in 50 ms plus a 256 KiB burst, rounded up.
/// assert_eq!(buffer_needed(&DiodeConfig::default(), BufferSide::Recv, 1), 7 << 20);
/// ```
pub fn buffer_needed(config: &DiodeConfig, side: BufferSide, ports: usize) -> usize {
    let time = match side {
        BufferSide::Send => SEND_BUFFER_TIME,
        BufferSide::Recv => RECV_BUFFER_TIME,
    };
    let paced = config.bandwidth as f64 / 8.0 * time.as_secs_f64();
    let total = paced.ceil() as usize + config.max_burst;
    let each = total.div_ceil(ports.max(1));
    each.div_ceil(1 << 20).max(1) << 20
}

/// A socket buffer as asked for, granted, and needed for the pace.
///
/// [`DiodeSender::buffer_check`](crate::DiodeSender::buffer_check) and
/// [`DiodeReceiver::buffer_check`](crate::DiodeReceiver::buffer_check) give
/// it after `bind`, which logs a warning when [`is_enough`](Self::is_enough)
/// is false; its `Display` is that advice, for a program to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BufferCheck {
    /// Which buffer.
    pub side: BufferSide,
    /// Bytes asked for (`SocketOptions::send_buffer` or `recv_buffer`).
    pub requested: usize,
    /// Bytes the kernel reports (`SO_SNDBUF`/`SO_RCVBUF` read back). Linux
    /// reports twice what it grants for data (it doubles the request to
    /// account for its bookkeeping) and caps the request at the sysctl
    /// first; with several ports, the smallest of their sockets'.
    pub granted: usize,
    /// Bytes the pace needs ([`buffer_needed`]).
    pub needed: usize,
}

impl BufferCheck {
    /// A check of `side` for `config`'s pace, before the socket exists
    /// (`granted` 0).
    pub fn new(config: &DiodeConfig, side: BufferSide, requested: usize, ports: usize) -> Self {
        Self {
            side,
            requested,
            granted: 0,
            needed: buffer_needed(config, side, ports),
        }
    }

    /// Bytes of datagrams the buffer holds: on Linux half of
    /// [`granted`](Self::granted) (the doubling is for the kernel's
    /// bookkeeping), elsewhere all of it.
    pub fn usable(&self) -> usize {
        if cfg!(any(target_os = "linux", target_os = "android")) {
            self.granted / 2
        } else {
            self.granted
        }
    }

    /// Whether the buffer granted holds what the pace needs.
    pub fn is_enough(&self) -> bool {
        self.usable() >= self.needed
    }

    /// The command that lets the kernel grant [`needed`](Self::needed) bytes
    /// (Linux), e.g. `sysctl -w net.core.rmem_max=7340032`.
    pub fn sysctl(&self) -> String {
        format!("sysctl -w {}={}", self.side.sysctl_key(), self.needed)
    }

    /// Logs a warning when the buffer is short, a debug line otherwise.
    pub(crate) fn log(&self, addr: SocketAddr) {
        if self.is_enough() {
            debug!(%addr, requested = self.requested, granted = self.granted, needed = self.needed, "socket buffer");
        } else {
            warn!(%addr, requested = self.requested, granted = self.granted, needed = self.needed, "{self}");
        }
    }
}

impl fmt::Display for BufferCheck {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.side {
            BufferSide::Send => "send buffer",
            BufferSide::Recv => "receive buffer",
        };
        let effect = match self.side {
            BufferSide::Send => "the sender may not keep its pace",
            BufferSide::Recv => "datagrams will be dropped when the receiver pauses",
        };
        if self.is_enough() {
            return write!(
                f,
                "UDP {what}: {} bytes usable, {} needed for the pace",
                self.usable(),
                self.needed
            );
        }
        write!(
            f,
            "the kernel granted a UDP {what} of {} bytes usable, and the configured bandwidth needs {} ({} ms of datagrams plus a burst): {effect}; ",
            self.usable(),
            self.needed,
            match self.side {
                BufferSide::Send => SEND_BUFFER_TIME.as_millis(),
                BufferSide::Recv => RECV_BUFFER_TIME.as_millis(),
            }
        )?;
        if self.requested < self.needed {
            write!(
                f,
                "raise `{}` to {} and ",
                self.side.config_key(),
                self.needed
            )?;
        }
        write!(f, "run `{}` (or lower `bandwidth`)", self.sysctl())
    }
}

/// Datagrams the kernel dropped at this socket since it was created: its
/// receive queue was full (the receiver fell behind), or a checksum or filter
/// refused them. Linux's `SO_MEMINFO` (`SK_MEMINFO_DROPS`, the `drops`
/// column of `/proc/net/udp`); `None` elsewhere.
pub(crate) fn socket_drops(socket: &UdpSocket) -> Option<u64> {
    imp::socket_drops(socket)
}

#[cfg(all(
    any(target_os = "linux", target_os = "android"),
    any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "powerpc64",
        target_arch = "loongarch64",
        target_arch = "s390x"
    )
))]
mod imp {
    use std::net::UdpSocket;
    use std::os::fd::AsRawFd;

    /// `SO_MEMINFO` (asm-generic/socket.h; not in every libc release).
    const SO_MEMINFO: libc::c_int = 55;
    /// `SK_MEMINFO_VARS`: the number of counters `SO_MEMINFO` fills.
    const SK_MEMINFO_VARS: usize = 9;

    pub(super) fn socket_drops(socket: &UdpSocket) -> Option<u64> {
        let mut info = [0u32; SK_MEMINFO_VARS];
        let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: `info` is a writable buffer of `len` bytes and the
        // descriptor is open for the duration of the call.
        let rc = unsafe {
            libc::getsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let index = libc::SK_MEMINFO_DROPS as usize;
        (rc == 0 && len as usize > index * 4).then(|| u64::from(info[index]))
    }
}

#[cfg(not(all(
    any(target_os = "linux", target_os = "android"),
    any(
        target_arch = "x86",
        target_arch = "x86_64",
        target_arch = "arm",
        target_arch = "aarch64",
        target_arch = "riscv64",
        target_arch = "powerpc64",
        target_arch = "loongarch64",
        target_arch = "s390x"
    )
)))]
mod imp {
    pub(super) fn socket_drops(_socket: &std::net::UdpSocket) -> Option<u64> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receiver_needs_fifty_milliseconds_of_the_pace_plus_a_burst() {
        let config = DiodeConfig {
            bandwidth: 8_000_000_000, // 1 GB/s: 50 MB in 50 ms
            max_burst: 1 << 20,
            ..DiodeConfig::default()
        };
        let need = buffer_needed(&config, BufferSide::Recv, 1);
        assert_eq!(need, (50_000_000usize + (1 << 20)).div_ceil(1 << 20) << 20);
        // The sender: 10 ms.
        let send = buffer_needed(&config, BufferSide::Send, 1);
        assert_eq!(send, (10_000_000usize + (1 << 20)).div_ceil(1 << 20) << 20);
        // Spread over four ports, each socket needs a quarter.
        let each = buffer_needed(&config, BufferSide::Recv, 4);
        assert_eq!(
            each,
            (50_000_000usize + (1 << 20)).div_ceil(4).div_ceil(1 << 20) << 20
        );
        // A slow link still asks for a whole MiB.
        let slow = DiodeConfig {
            bandwidth: 1_000_000,
            max_burst: 16 * 1024,
            ..DiodeConfig::default()
        };
        assert_eq!(buffer_needed(&slow, BufferSide::Recv, 1), 1 << 20);
    }

    #[test]
    fn a_short_grant_names_the_sysctl_and_the_key() {
        let mut check = BufferCheck::new(&DiodeConfig::default(), BufferSide::Recv, 32 << 20, 1);
        // Linux's default rmem_max (212992), doubled.
        check.granted = 2 * 212_992;
        assert!(!check.is_enough());
        let advice = check.to_string();
        assert!(
            advice.contains("sysctl -w net.core.rmem_max=7340032"),
            "{advice}"
        );
        assert!(!advice.contains("udp_recv_buffer"), "{advice}");
        check.requested = 1 << 20;
        assert!(
            check
                .to_string()
                .contains("raise `udp_recv_buffer` to 7340032")
        );
        check.granted = 2 * (32 << 20);
        assert!(check.is_enough());
    }

    #[test]
    fn drops_of_a_fresh_socket_are_zero_where_the_kernel_counts_them() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        if cfg!(target_os = "linux") {
            assert_eq!(socket_drops(&socket), Some(0));
        }
    }
}
