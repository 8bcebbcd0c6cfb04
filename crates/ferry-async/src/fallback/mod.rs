//! The fallback transport: the same sessions carried over TCP, one datagram
//! per binary WebSocket message, where UDP does not get through.
//!
//! The sans-IO core and the driver loop do not know about it. The driver
//! talks to an [`AsyncUdpSocket`](crate::AsyncUdpSocket); an endpoint with
//! the fallback configured ([`FallbackConfig`]) hands it a
//! `FallbackSocket` (`socket.rs`) instead, which owns the
//! runtime's UDP socket and shares a table (the `Hub`) of WebSocket
//! connections by the address the sessions see:
//!
//! - sending to an address with a connection frames each datagram of the
//!   batch as one binary message into that connection's bounded outgoing
//!   buffer, which a writer thread empties into the TCP stream in one
//!   `write` per batch; when the batch does not fit, nothing is queued and
//!   the driver waits for room (`WouldBlock`, then `poll_writable`) as for
//!   a full UDP socket, unless the connection has stalled (its writer took
//!   nothing for a second): then what does not fit is dropped and counted,
//!   so one stuck peer cannot hold up the endpoint's other sessions. Other
//!   addresses go to UDP;
//! - receiving returns UDP datagrams and datagrams read by the connections'
//!   reader threads, reported as coming from the connection's address; both
//!   register the driver's waker.
//!
//! **Congestion control does not fight TCP's.** TCP paces the bytes of a
//! fallback connection (its own congestion control and flow control), and
//! its pace becomes the session's: a full buffer holds the driver back
//! instead of losing datagrams, so Ferry's controller sees a slower path,
//! never a lossy one, and path MTU discovery never mistakes a full buffer
//! for a black hole. No Ferry packet is lost in TCP, so no Ferry
//! retransmission duplicates TCP's, and acknowledgements still drive
//! Ferry's window. Ferry's pacing runs as usual (it paces into the buffer).
//!
//! **Threads, not a runtime.** The TCP side runs on std threads with
//! blocking I/O: one accept thread for a listener, and per connection a
//! reader thread and a writer thread. This works the same under every
//! runtime (tokio, smol, async-std, the blocking driver) with no code per
//! adapter: a reader thread wakes the driver through the waker the driver
//! left when it found nothing to read, which on the blocking driver notifies
//! its poller.
//!
//! **Addresses.** A listener keys a connection by the TCP peer's address:
//! its sessions see that address as the peer's. A starter keys it by the
//! address it connected to, the listener's: its session goes on sending to
//! the same address, now over TCP. A UDP peer with the very address (IP and
//! port) of a TCP peer would be confused with it.

mod connection;
pub mod frame;
mod listener;
pub(crate) mod socket;

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, Weak};
use std::task::Waker;
use std::time::Duration;

use ferry_proto::SessionId;

pub use frame::{Decoder, Frame, FrameError, MAX_HEADER, MAX_MESSAGE};

use self::connection::Connection;
use crate::shared::Shared;

/// The path a fallback connection's HTTP upgrade asks for.
pub const WEBSOCKET_PATH: &str = "/ferry";
/// The WebSocket subprotocol a fallback connection asks for and gets.
pub const WEBSOCKET_PROTOCOL: &str = "ferry";

/// How an endpoint uses the fallback transport (WebSocket over TCP); see
/// [`EndpointConfig::fallback`](crate::EndpointConfig::fallback).
///
/// Off by default: no TCP socket, no thread. A listener turns it on with
/// [`listen`](Self::listen), a starter with [`after`](Self::after); an
/// endpoint may do both.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackConfig {
    /// Accept WebSocket connections on TCP, at the UDP socket's address and
    /// port number (or at [`listen_addr`](Self::listen_addr)). Default
    /// `false`.
    pub listen: bool,
    /// Where to accept WebSocket connections instead of the UDP socket's
    /// address (implies [`listen`](Self::listen)). Default `None`.
    pub listen_addr: Option<SocketAddr>,
    /// How long a [`connect`](crate::Endpoint::connect) waits for the
    /// listener's answer over UDP before it opens a WebSocket connection to
    /// the same address and port number and goes on over it. Default `None`:
    /// UDP only. Keep it below `handshake_timeout`.
    pub after: Option<Duration>,
    /// The most WebSocket connections open at once, accepted and opened;
    /// more are closed at once (counted in
    /// [`FallbackStats::refused`]). Default 256.
    pub max_connections: usize,
    /// The most bytes waiting in one connection's outgoing buffer (and in
    /// the queue of datagrams read from every connection, not yet taken by
    /// the driver). Beyond, the driver waits for the connection's writer
    /// (datagrams are dropped and counted only once the connection stalled
    /// for a second); a reader waits for the driver. Default 1 MiB (the
    /// writer takes the whole buffer at each write, so up to twice this is
    /// on its way); larger buffers were not faster on loopback
    /// (docs/performance.md). Taken only while the connection is slower
    /// than the session. At least
    /// [`MIN_BUFFER`]; less fails binding with
    /// [`BindError::FallbackBuffer`](crate::BindError::FallbackBuffer).
    pub buffer: usize,
}

impl Default for FallbackConfig {
    fn default() -> Self {
        Self {
            listen: false,
            listen_addr: None,
            after: None,
            max_connections: 256,
            buffer: 1 << 20,
        }
    }
}

impl FallbackConfig {
    /// Whether the endpoint needs the fallback at all.
    pub(crate) fn enabled(&self) -> bool {
        self.listen || self.listen_addr.is_some() || self.after.is_some()
    }
}

/// Which transport carries a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// UDP datagrams, the usual way.
    Udp,
    /// The fallback: one binary WebSocket message per datagram, over TCP.
    WebSocket,
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Udp => "UDP",
            Self::WebSocket => "WebSocket/TCP",
        })
    }
}

/// The fallback's counters, for the whole endpoint; all zero without it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FallbackStats {
    /// WebSocket connections opened (accepted by a listener, or opened by a
    /// starter whose UDP went unanswered).
    pub opened: u64,
    /// Connections that ended (closed by either side, or broken).
    pub closed: u64,
    /// Connections refused: over [`FallbackConfig::max_connections`], or a
    /// failed HTTP upgrade.
    pub refused: u64,
    /// Connections closed for a malformed or unwelcome frame.
    pub malformed: u64,
    /// Datagrams sent over WebSocket connections.
    pub datagrams_sent: u64,
    /// Datagrams received over WebSocket connections.
    pub datagrams_received: u64,
    /// Datagrams dropped because a stalled connection's outgoing buffer was
    /// full, or the connection was closing (the protocol repairs them as
    /// losses).
    pub datagrams_dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    opened: AtomicU64,
    closed: AtomicU64,
    refused: AtomicU64,
    malformed: AtomicU64,
    sent: AtomicU64,
    received: AtomicU64,
    dropped: AtomicU64,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What one read of a connection brought: the buffer as read, and where
/// its datagrams are in it (each with the mask to remove as it is copied
/// out, for a client's frames). Handing the buffer over whole costs no copy
/// per datagram; the driver copies each out once, unmasking as it goes.
#[derive(Debug)]
struct Chunk {
    /// The connection's address (the sessions' view of the peer).
    from: SocketAddr,
    data: Vec<u8>,
    datagrams: VecDeque<(Range<usize>, Option<[u8; 4]>)>,
}

impl Default for Chunk {
    fn default() -> Self {
        Self {
            from: SocketAddr::from(([0, 0, 0, 0], 0)),
            data: Vec::new(),
            datagrams: VecDeque::new(),
        }
    }
}

/// Datagrams read from connections, waiting for the driver.
#[derive(Debug, Default)]
struct Inbox {
    chunks: VecDeque<Chunk>,
    /// Bytes of the datagrams waiting.
    bytes: usize,
    /// The driver's waker, left when it found nothing to read.
    waker: Option<Waker>,
    /// Chunks the driver emptied, for the readers to reuse.
    free: Vec<Chunk>,
}

/// Chunks waiting at most (each holds a read buffer of 256 KiB): with
/// [`FallbackConfig::buffer`], what bounds the memory of datagrams read and
/// not yet taken.
const MAX_CHUNKS: usize = 16;

/// A `connect` that may fall back.
#[derive(Debug, Default)]
struct Watch {
    /// The last datagram sent to the destination.
    last: Vec<u8>,
    /// An ICMP unreachable report about the destination's host, held back.
    refused: Option<SocketAddr>,
}

/// The least [`FallbackConfig::buffer`]: room for the largest datagram,
/// framed.
pub const MIN_BUFFER: usize = MAX_MESSAGE + MAX_HEADER;

/// `connect`s watched at once at most (each a thread waiting
/// [`FallbackConfig::after`]); beyond, a `connect` goes over UDP only.
const MAX_WATCHED: usize = 256;

/// Chunks kept for reuse at most.
const FREE_CHUNKS: usize = MAX_CHUNKS;

/// What the fallback socket, its connections' threads and the endpoint's
/// handles share.
#[derive(Debug)]
pub(crate) struct Hub {
    config: FallbackConfig,
    conns: Mutex<HashMap<SocketAddr, Arc<Connection>>>,
    /// How many connections are in `conns`: sending checks it first, so an
    /// endpoint with no connection takes no lock per batch.
    conn_count: AtomicUsize,
    /// Connections open (in the table or not yet), against
    /// `max_connections`.
    open: AtomicUsize,
    inbox: Mutex<Inbox>,
    inbox_room: Condvar,
    /// Destinations a `connect` may fall back for, with the last datagram
    /// sent to each (the handshake, sent again over the connection once it
    /// is up).
    watched: Mutex<HashMap<SocketAddr, Watch>>,
    watched_count: AtomicUsize,
    /// ICMP unreachable reports held back while a `connect` to that host
    /// was watched, handed to the driver once its fallback failed too.
    unreachable: Mutex<Vec<SocketAddr>>,
    closed: AtomicBool,
    counters: Counters,
}

impl Hub {
    pub(crate) fn new(config: FallbackConfig) -> Arc<Self> {
        Arc::new(Self {
            config,
            conns: Mutex::new(HashMap::new()),
            conn_count: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            inbox: Mutex::new(Inbox::default()),
            inbox_room: Condvar::new(),
            watched: Mutex::new(HashMap::new()),
            watched_count: AtomicUsize::new(0),
            unreachable: Mutex::new(Vec::new()),
            closed: AtomicBool::new(false),
            counters: Counters::default(),
        })
    }

    /// Which transport carries what is sent to `addr` now.
    pub(crate) fn transport(&self, addr: SocketAddr) -> Transport {
        if self.conn_count.load(Ordering::Acquire) > 0 && lock(&self.conns).contains_key(&addr) {
            Transport::WebSocket
        } else {
            Transport::Udp
        }
    }

    /// The counters.
    pub(crate) fn stats(&self) -> FallbackStats {
        let c = &self.counters;
        FallbackStats {
            opened: c.opened.load(Ordering::Relaxed),
            closed: c.closed.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            malformed: c.malformed.load(Ordering::Relaxed),
            datagrams_sent: c.sent.load(Ordering::Relaxed),
            datagrams_received: c.received.load(Ordering::Relaxed),
            datagrams_dropped: c.dropped.load(Ordering::Relaxed),
        }
    }

    /// The connection datagrams to `addr` go through, if any.
    fn conn(&self, addr: SocketAddr) -> Option<Arc<Connection>> {
        if self.conn_count.load(Ordering::Acquire) == 0 {
            return None;
        }
        lock(&self.conns).get(&addr).cloned()
    }

    /// Takes a place for a new connection, or refuses it (counted).
    fn reserve(&self) -> bool {
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.config.max_connections).then_some(n + 1)
            })
            .is_ok();
        if !taken {
            self.counters.refused.fetch_add(1, Ordering::Relaxed);
        }
        taken
    }

    /// Gives back a place taken by [`reserve`](Self::reserve).
    fn release(&self) {
        self.open.fetch_sub(1, Ordering::AcqRel);
    }

    /// Files `conn` as the way to its address (replacing any other, which is
    /// closed).
    fn register(&self, conn: Arc<Connection>) {
        self.counters.opened.fetch_add(1, Ordering::Relaxed);
        let old = {
            let mut conns = lock(&self.conns);
            let old = conns.insert(conn.key(), conn);
            self.conn_count.store(conns.len(), Ordering::Release);
            old
        };
        if let Some(old) = old {
            old.shutdown();
        }
    }

    /// Removes `conn` from the table, if it is still there.
    fn unregister(&self, conn: &Arc<Connection>) {
        let mut conns = lock(&self.conns);
        if conns.get(&conn.key()).is_some_and(|c| Arc::ptr_eq(c, conn)) {
            conns.remove(&conn.key());
        }
        self.conn_count.store(conns.len(), Ordering::Release);
    }

    /// Queues what a connection read (`chunk`, its datagrams located), for
    /// the driver, under one lock; waits while the queue is full (the TCP
    /// stream then backs up to its sender). Returns an emptied chunk to read
    /// into next, or `None` once the endpoint is closed.
    fn deliver(&self, chunk: Chunk) -> Option<Chunk> {
        let count = chunk.datagrams.len() as u64;
        let bytes: usize = chunk.datagrams.iter().map(|(r, _)| r.len()).sum();
        let (waker, spare) = {
            let mut inbox = lock(&self.inbox);
            while inbox.bytes >= self.config.buffer || inbox.chunks.len() >= MAX_CHUNKS {
                if self.closed.load(Ordering::Acquire) {
                    return None;
                }
                inbox = self
                    .inbox_room
                    .wait_timeout(inbox, Duration::from_millis(100))
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            let was_empty = inbox.chunks.is_empty();
            inbox.bytes += bytes;
            inbox.chunks.push_back(chunk);
            let spare = inbox.free.pop().unwrap_or_default();
            (if was_empty { inbox.waker.take() } else { None }, spare)
        };
        self.counters.received.fetch_add(count, Ordering::Relaxed);
        if let Some(waker) = waker {
            waker.wake();
        }
        Some(spare)
    }

    /// Starts watching a `connect` to `remote`: if the session `id` of
    /// `shared` is still handshaking after [`FallbackConfig::after`], a
    /// thread opens a WebSocket connection to `remote` and the session goes
    /// on over it.
    pub(crate) fn watch(self: &Arc<Self>, remote: SocketAddr, shared: Weak<Shared>, id: SessionId) {
        let Some(after) = self.config.after else {
            return;
        };
        {
            let mut watched = lock(&self.watched);
            if watched.len() >= MAX_WATCHED && !watched.contains_key(&remote) {
                tracing::debug!(%remote, "too many connects watched: UDP only");
                return;
            }
            watched.entry(remote).or_default();
            self.watched_count.store(watched.len(), Ordering::Release);
        }
        let hub = self.clone();
        let spawned = std::thread::Builder::new()
            .name("ferry-fallback-dial".into())
            .spawn(move || connection::dial_when_unanswered(&hub, remote, after, &shared, id));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the fallback's thread: UDP only");
            self.unwatch(remote, false);
        }
    }

    /// Stops watching `remote`; returns the last datagram sent to it. An
    /// unreachable report held back goes to the driver unless `fell_back`.
    fn unwatch(&self, remote: SocketAddr, fell_back: bool) -> Option<Vec<u8>> {
        let watch = {
            let mut watched = lock(&self.watched);
            let watch = watched.remove(&remote);
            self.watched_count.store(watched.len(), Ordering::Release);
            watch
        }?;
        if let (Some(addr), false) = (watch.refused, fell_back) {
            lock(&self.unreachable).push(addr);
        }
        Some(watch.last).filter(|d| !d.is_empty())
    }

    /// Holds back an ICMP unreachable report about the host of a watched
    /// `connect` (its fallback may still answer); returns whether it did.
    fn hold_unreachable(&self, addr: SocketAddr) -> bool {
        if self.watched_count.load(Ordering::Acquire) == 0 {
            return false;
        }
        let mut watched = lock(&self.watched);
        match watched.iter_mut().find(|(to, _)| to.ip() == addr.ip()) {
            Some((_, watch)) => {
                watch.refused = Some(addr);
                true
            }
            None => false,
        }
    }

    /// An unreachable report held back and released.
    fn take_released_unreachable(&self) -> Option<SocketAddr> {
        lock(&self.unreachable).pop()
    }

    /// Notes the last datagram sent to a watched destination.
    fn note_sent(&self, destination: SocketAddr, last: &[u8]) {
        if self.watched_count.load(Ordering::Acquire) == 0 {
            return;
        }
        if let Some(watch) = lock(&self.watched).get_mut(&destination) {
            watch.last.clear();
            watch.last.extend_from_slice(last);
        }
    }

    /// Closes every connection (each sends what it holds, then a close
    /// frame) and stops accepting.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
        let conns: Vec<_> = {
            let mut conns = lock(&self.conns);
            self.conn_count.store(0, Ordering::Release);
            conns.drain().map(|(_, c)| c).collect()
        };
        for conn in conns {
            conn.shutdown();
        }
        self.inbox_room.notify_all();
    }

    fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// What [`wrap`] makes: the socket the driver gets, the hub, and the TCP
/// address accepting connections (if the endpoint listens).
pub(crate) type Wrapped = (Arc<dyn crate::AsyncUdpSocket>, Arc<Hub>, Option<SocketAddr>);

/// The fallback of an endpoint being bound: `udp` wrapped so that the
/// driver reaches the connections too, the hub, and the TCP address
/// accepting them (if this endpoint listens). `shards`: how many the
/// endpoint has (the fallback needs one).
pub(crate) fn wrap(
    config: &FallbackConfig,
    udp: Arc<dyn crate::AsyncUdpSocket>,
    shards: usize,
) -> Result<Wrapped, crate::BindError> {
    if shards > 1 {
        return Err(crate::BindError::FallbackSharded(shards));
    }
    if config.buffer < MIN_BUFFER {
        return Err(crate::BindError::FallbackBuffer {
            buffer: config.buffer,
            min: MIN_BUFFER,
        });
    }
    let udp_addr = udp.local_addr().map_err(|e| crate::BindError::Io {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        source: e,
    })?;
    let hub = Hub::new(config.clone());
    let socket: Arc<dyn crate::AsyncUdpSocket> =
        Arc::new(socket::FallbackSocket::new(udp, hub.clone()));
    let listening = if config.listen || config.listen_addr.is_some() {
        let addr = config.listen_addr.unwrap_or(udp_addr);
        let bound = listener::listen(&hub, addr)
            .map_err(|source| crate::BindError::FallbackListen { addr, source })?;
        Some(bound)
    } else {
        None
    };
    Ok((socket, hub, listening))
}
