//! The sender's sockets, one per destination port (a *lane*). With one port
//! the driver thread sends on it itself, as fast as before; with several,
//! each lane has its own send thread and the driver deals it runs of
//! datagrams in turn.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use quinn_udp::{Transmit, UdpSockRef, UdpSocketState};
use tracing::{debug, warn};

use crate::DiodeError;
use crate::buffers::BufferCheck;
use crate::socket::bind_udp;

/// Runs a lane's send thread may have waiting before the driver waits for
/// it: enough to ride out a short stall of one thread, little enough that
/// "sent" stays close to "on the wire".
const LANE_QUEUE: usize = 4;

/// Counters of one port of a [`DiodeSender`](crate::DiodeSender).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SenderPortStats {
    /// The local address of this port's socket.
    pub local: SocketAddr,
    /// Where its datagrams go.
    pub destination: SocketAddr,
    /// Send calls (each a run of datagrams with GSO).
    pub sends: u64,
    /// Send calls that failed; their datagrams are lost, as on the wire.
    pub send_errors: u64,
    /// Datagrams handed to the socket (failed sends included).
    pub datagrams: u64,
}

/// A lane's counters, shared with the handle for stats.
#[derive(Debug, Default)]
pub(crate) struct LaneCounters {
    sends: AtomicU64,
    send_errors: AtomicU64,
    datagrams: AtomicU64,
    /// Runs this lane has finished with (sent or failed).
    done: AtomicU64,
}

impl LaneCounters {
    pub(crate) fn stats(&self, local: SocketAddr, destination: SocketAddr) -> SenderPortStats {
        SenderPortStats {
            local,
            destination,
            sends: self.sends.load(Ordering::Relaxed),
            send_errors: self.send_errors.load(Ordering::Relaxed),
            datagrams: self.datagrams.load(Ordering::Relaxed),
        }
    }
}

/// One socket and its destination.
#[derive(Debug)]
pub(crate) struct Lane {
    socket: UdpSocket,
    udp: UdpSocketState,
    to: SocketAddr,
    warned: bool,
    pub(crate) counters: Arc<LaneCounters>,
}

impl Lane {
    /// Binds a blocking socket on `local` to send to `to`.
    pub(crate) fn open(
        local: SocketAddr,
        to: SocketAddr,
        buffer: BufferCheck,
    ) -> Result<(Self, BufferCheck), DiodeError> {
        let (socket, check) = bind_udp(local, buffer)?;
        let local_addr = socket.local_addr().map_err(|source| DiodeError::Io {
            context: "cannot read the address of the socket bound on",
            addr: local,
            source,
        })?;
        let udp =
            UdpSocketState::new(UdpSockRef::from(&socket)).map_err(|source| DiodeError::Io {
                context: "cannot set up the UDP socket on",
                addr: local_addr,
                source,
            })?;
        // quinn-udp made it non-blocking; a lane does nothing but send, so it
        // may as well block when the socket buffer is full.
        socket
            .set_nonblocking(false)
            .map_err(|source| DiodeError::Io {
                context: "cannot make blocking the socket on",
                addr: local_addr,
                source,
            })?;
        Ok((
            Self {
                socket,
                udp,
                to,
                warned: false,
                counters: Arc::default(),
            },
            check,
        ))
    }

    /// The address the socket is bound to.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.socket.local_addr().unwrap_or(self.to)
    }

    /// Most datagrams one GSO send may carry.
    pub(crate) fn max_gso_segments(&self) -> usize {
        self.udp.max_gso_segments()
    }

    /// Sends a run of datagrams; returns whether the socket took it.
    pub(crate) fn send(&mut self, contents: &[u8], segment_size: usize) -> bool {
        let ok = self.try_send(contents, segment_size);
        let c = &self.counters;
        c.sends.fetch_add(1, Ordering::Relaxed);
        c.datagrams.fetch_add(
            contents.len().div_ceil(segment_size.max(1)) as u64,
            Ordering::Relaxed,
        );
        if !ok {
            c.send_errors.fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    fn try_send(&mut self, contents: &[u8], segment_size: usize) -> bool {
        let transmit = Transmit {
            destination: self.to,
            ecn: None,
            contents,
            segment_size: (contents.len() > segment_size).then_some(segment_size),
            src_ip: None,
        };
        loop {
            match self.udp.try_send(UdpSockRef::from(&self.socket), &transmit) {
                Ok(()) => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // A blocking socket should not say this; be patient.
                    std::thread::sleep(Duration::from_micros(100));
                }
                Err(e) => {
                    if !self.warned {
                        self.warned = true;
                        warn!(
                            error = %e,
                            to = %self.to,
                            "cannot send diode datagrams (lost, as on the wire): check the route to the destination, and that `mtu` is not above the link's"
                        );
                    } else {
                        debug!(error = %e, "send failed; datagrams lost");
                    }
                    return false;
                }
            }
        }
    }
}

/// A run of datagrams on its way to a lane's thread.
#[derive(Debug)]
struct Run {
    buf: Vec<u8>,
    len: usize,
    segment_size: usize,
}

/// Where the driver's runs go.
#[derive(Debug)]
pub(crate) enum Output {
    /// One port: the driver sends itself.
    Direct(Lane),
    /// Several: round robin over the lanes' threads.
    Spread(Spread),
}

/// The driver's end of the lanes' threads.
#[derive(Debug)]
pub(crate) struct Spread {
    queues: Vec<mpsc::SyncSender<Run>>,
    counters: Vec<Arc<LaneCounters>>,
    /// Runs handed to each lane.
    queued: Vec<u64>,
    next: usize,
    /// Buffers the lanes are done with.
    free: mpsc::Receiver<Vec<u8>>,
    /// The lanes' smallest GSO limit.
    gso: usize,
}

impl Output {
    /// Starts a send thread per lane when there are several; returns the
    /// output and the threads to join (they end once the output is dropped
    /// and their queues are sent).
    pub(crate) fn start(mut lanes: Vec<Lane>) -> Result<(Self, Vec<JoinHandle<()>>), DiodeError> {
        if lanes.len() == 1 {
            return Ok((Self::Direct(lanes.remove(0)), Vec::new()));
        }
        let (free_tx, free) = mpsc::channel();
        let gso = lanes.iter().map(Lane::max_gso_segments).min().unwrap_or(1);
        let mut spread = Spread {
            gso,
            queues: Vec::new(),
            counters: Vec::new(),
            queued: vec![0; lanes.len()],
            next: 0,
            free,
        };
        let mut threads = Vec::new();
        for (i, mut lane) in lanes.into_iter().enumerate() {
            let (tx, rx) = mpsc::sync_channel::<Run>(LANE_QUEUE);
            spread.counters.push(Arc::clone(&lane.counters));
            spread.queues.push(tx);
            let free = free_tx.clone();
            let handle = std::thread::Builder::new()
                .name(format!("diode-send-{i}"))
                .spawn(move || {
                    while let Ok(run) = rx.recv() {
                        lane.send(&run.buf[..run.len], run.segment_size);
                        lane.counters.done.fetch_add(1, Ordering::Release);
                        let _ = free.send(run.buf);
                    }
                })
                .map_err(|source| DiodeError::Thread {
                    what: "sender port",
                    source,
                })?;
            threads.push(handle);
        }
        Ok((Self::Spread(spread), threads))
    }

    /// Sends the first `len` bytes of `buf`, runs of `segment_size`: at once
    /// on the one lane, or handed to the next lane's thread (then `buf` is
    /// swapped for a free buffer of the same length). Returns false when the
    /// datagrams are known lost.
    pub(crate) fn send(&mut self, buf: &mut Vec<u8>, len: usize, segment_size: usize) -> bool {
        match self {
            Self::Direct(lane) => lane.send(&buf[..len], segment_size),
            Self::Spread(spread) => {
                let size = buf.len();
                let spare = spread.free.try_recv().unwrap_or_else(|_| vec![0; size]);
                let full = std::mem::replace(buf, spare);
                let i = spread.next;
                spread.next = (i + 1) % spread.queues.len();
                let run = Run {
                    buf: full,
                    len,
                    segment_size,
                };
                if spread.queues[i].send(run).is_err() {
                    return false;
                }
                spread.queued[i] += 1;
                true
            }
        }
    }

    /// Most datagrams one send may carry.
    pub(crate) fn max_gso_segments(&self) -> usize {
        match self {
            Self::Direct(lane) => lane.max_gso_segments(),
            Self::Spread(spread) => spread.gso,
        }
    }

    /// What must have gone out for everything handed over so far to be on
    /// the wire: `None` when it already is (one lane sends at once).
    pub(crate) fn mark(&self) -> Option<Vec<u64>> {
        match self {
            Self::Direct(_) => None,
            Self::Spread(spread) => Some(spread.queued.clone()),
        }
    }

    /// Whether every lane got as far as `mark`.
    pub(crate) fn reached(&self, mark: &[u64]) -> bool {
        match self {
            Self::Direct(_) => true,
            Self::Spread(spread) => spread
                .counters
                .iter()
                .zip(mark)
                .all(|(c, &m)| c.done.load(Ordering::Acquire) >= m),
        }
    }
}
