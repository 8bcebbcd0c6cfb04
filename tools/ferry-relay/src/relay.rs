//! The relay: sockets, threads and the public handle.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::{self, JoinHandle, Thread};
use std::time::{Duration, Instant};

use ferry_netem::{LinkConfig, Profile};
use tracing::{debug, error, info, warn};

use crate::direction::{Blackhole, Direction, DirectionStats, frame};

/// The most client addresses one [`Relay`] serves.
///
/// Each client address gets its own upstream-facing socket for the relay's whole
/// life (clients are never evicted). Datagrams from further addresses are dropped and
/// counted in [`RelayStats::rejected`]. Note that every client costs a file
/// descriptor: with the common soft limit of 1024 open files, socket creation fails
/// before this cap is reached, with the same outcome.
pub const MAX_CLIENTS: usize = 1024;

/// Largest datagram the relay reads (larger than any UDP payload).
const MAX_DATAGRAM: usize = 65_536;
/// Read timeout of the listen socket: the longest the receive thread takes to notice
/// shutdown.
const LISTEN_READ_TIMEOUT: Duration = Duration::from_millis(20);
/// Write timeout of the listen socket, so that a full send buffer cannot block a
/// thread forever.
const WRITE_TIMEOUT: Duration = Duration::from_millis(50);
/// Shortest and longest pause of the pump between polls of the upstream-facing
/// sockets while clients exist. The pause doubles on every idle poll.
const MIN_POLL: Duration = Duration::from_micros(50);
const MAX_POLL: Duration = Duration::from_millis(1);
/// The pump's pause when there is nothing to poll and nothing in flight.
const IDLE_PARK: Duration = Duration::from_millis(50);
/// Datagrams read from one upstream-facing socket per poll, for fairness.
const RECV_BUDGET: usize = 64;

/// Counters of a [`Relay`], per direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RelayStats {
    /// Client → server.
    pub to_upstream: DirectionStats,
    /// Server → client.
    pub to_client: DirectionStats,
    /// Distinct client addresses seen (each has its own upstream-facing socket).
    pub clients: usize,
    /// Datagrams from new client addresses dropped because [`MAX_CLIENTS`] was
    /// reached or an upstream-facing socket could not be created. Not counted in
    /// [`RelayStats::to_upstream`].
    pub rejected: u64,
}

/// A lossy UDP relay between clients and one server (the upstream), for tests on
/// real sockets.
///
/// Clients send to [`Relay::local_addr`]; the relay forwards to the upstream and
/// sends the upstream's answers back to the client they are meant for, passing each
/// direction through its own [`ferry_netem::Link`]. See the
/// [crate documentation](crate) for an example.
///
/// # Clients and routing
///
/// The first datagram from a new client address creates an upstream-facing socket
/// for that client, bound to the loopback address of the upstream's family
/// (`127.0.0.1:0` or `[::1]:0`; the unspecified address if the upstream is not a
/// loopback address) and connected to the upstream. The server therefore sees one
/// distinct source address per client, and whatever it sends to that address goes
/// back to that client. At most [`MAX_CLIENTS`] clients are served.
///
/// # Faults
///
/// All faults of [`LinkConfig`] apply, per direction: loss (random or
/// Gilbert–Elliott), reordering, duplication, jitter and latency, and a bandwidth cap
/// with a tail-drop queue shared by all clients. On top of that,
/// [`Relay::blackhole`] drops everything for a while. Two details differ from the
/// bare link model:
///
/// - **Corruption** is applied by the relay with the same semantics (one random bit of
///   a non-empty payload flipped, decided before duplication, counted only for
///   datagrams the link keeps), because the link carries the relay's 4-byte routing
///   header in front of each payload and must not corrupt it.
/// - **Bandwidth and queue** accounting in the link therefore sees each datagram
///   4 bytes larger than it is (0.3 % for a 1,200-byte datagram). The byte counts in
///   [`RelayStats`] exclude the header.
///
/// # Time and repeatability
///
/// Time is the real clock. Each direction's link and corruption generator are seeded
/// from `seed`, so given the same datagrams at the same instants the relay makes the
/// same choices; but arrival instants on real sockets vary from run to run, so with
/// timing-dependent faults (bandwidth, jitter with reordering, blackholes) runs are
/// only statistically repeatable. Loss, duplication, reordering and corruption
/// decisions, which draw a fixed number of random numbers per datagram, depend only on
/// the order of datagrams within a direction. Delivery is accurate to roughly 0.1 ms
/// client → server and 1 ms server → client (see *Threads*).
///
/// # Threads
///
/// Two threads, whatever the number of clients:
///
/// - **receive**: blocks on the listen socket (20 ms read timeout), passes each
///   datagram to the client → server link and immediately sends whatever the link
///   releases (with a perfect link: the datagram itself);
/// - **pump**: polls the upstream-facing sockets (non-blocking), passes what it reads
///   to the server → client link and sends what it releases, and delivers delayed
///   datagrams of both directions on time. When idle it parks until the next scheduled
///   arrival or for a pause growing from 50 µs to 1 ms (50 ms without clients); the
///   receive thread wakes it when it schedules an earlier arrival.
///
/// Dropping the relay stops and joins both threads (within about 20 ms) and closes
/// all its sockets.
pub struct Relay {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    threads: Vec<JoinHandle<()>>,
}

impl Relay {
    /// Binds the relay on `listen` (e.g. `127.0.0.1:0`) and forwards to `upstream`
    /// (the server), applying `to_upstream` to client → server datagrams and
    /// `to_client` to server → client datagrams. All randomness derives from `seed`.
    ///
    /// # Errors
    ///
    /// [`io::ErrorKind::InvalidInput`] if either configuration fails
    /// [`LinkConfig::validate`]; otherwise any error binding the socket or starting
    /// the threads.
    pub fn start(
        listen: SocketAddr,
        upstream: SocketAddr,
        to_upstream: LinkConfig,
        to_client: LinkConfig,
        seed: u64,
    ) -> io::Result<Relay> {
        for (name, config) in [("to_upstream", &to_upstream), ("to_client", &to_client)] {
            config.validate().map_err(|e| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("invalid {name} LinkConfig: {e}"),
                )
            })?;
        }
        let socket = UdpSocket::bind(listen)?;
        enlarge_buffers(&socket);
        socket.set_read_timeout(Some(LISTEN_READ_TIMEOUT))?;
        socket.set_write_timeout(Some(WRITE_TIMEOUT))?;
        let local_addr = socket.local_addr()?;

        // Both directions' periodic outages count from here: they go dark together.
        let epoch = Instant::now();
        let shared = Arc::new(Shared {
            listen: socket,
            upstream,
            to_upstream: Mutex::new(Direction::new(
                &to_upstream,
                epoch,
                derive_seed(seed, 0),
                derive_seed(seed, 2),
            )),
            to_client: Mutex::new(Direction::new(
                &to_client,
                epoch,
                derive_seed(seed, 1),
                derive_seed(seed, 3),
            )),
            clients: (0..MAX_CLIENTS).map(|_| OnceLock::new()).collect(),
            client_count: AtomicUsize::new(0),
            rejected: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            epoch,
            pump_wake_at: AtomicU64::new(u64::MAX),
        });

        // From here on, an early return drops `relay`, which stops what was started.
        let mut relay = Relay {
            shared: Arc::clone(&shared),
            local_addr,
            threads: Vec::with_capacity(2),
        };
        let pump = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("ferry-relay-pump".to_owned())
                .spawn(move || shared.run_pump())?
        };
        let pump_thread = pump.thread().clone();
        relay.threads.push(pump);
        let receive = thread::Builder::new()
            .name("ferry-relay-recv".to_owned())
            .spawn(move || shared.run_receive(&pump_thread))?;
        relay.threads.push(receive);
        info!(listen = %local_addr, %upstream, "ferry-relay started");
        Ok(relay)
    }

    /// Starts a relay that applies a named network [`Profile`]: its
    /// [`Profile::forward`] client → server and its [`Profile::backward`] server →
    /// client (a profile's bandwidth, round trip, queue and impairment).
    ///
    /// ```no_run
    /// use ferry_relay::{Profile, Relay};
    ///
    /// let profile: Profile = "wifi".parse()?;
    /// let relay = Relay::with_profile(
    ///     "127.0.0.1:7000".parse()?,
    ///     "127.0.0.1:7001".parse()?,
    ///     profile,
    ///     1,
    /// )?;
    /// println!("{} allows {:.1} Mbit/s", profile, profile.allows_bps() / 1e6);
    /// # drop(relay);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    ///
    /// A profile's periodic outages ([`ferry_netem::Blackhole`], the `flapping`
    /// profile's) count from the moment the relay starts, in both directions at
    /// once. Unlike [`Relay::blackhole`] they drop datagrams as they enter the
    /// relay only, not those already inside it, and are counted in
    /// [`LinkStats::blackholed`](crate::LinkStats::blackholed) rather than
    /// [`DirectionStats::blackholed`].
    ///
    /// # Errors
    ///
    /// As [`Relay::start`].
    pub fn with_profile(
        listen: SocketAddr,
        upstream: SocketAddr,
        profile: Profile,
        seed: u64,
    ) -> io::Result<Relay> {
        Relay::start(
            listen,
            upstream,
            profile.forward(),
            profile.backward(),
            seed,
        )
    }

    /// The address clients send to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The server the relay forwards to.
    pub fn upstream_addr(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// Drops everything in both directions for `duration` from now (a timed
    /// blackhole): datagrams arriving at the relay, and datagrams already inside it
    /// that would be delivered before the blackhole ends.
    ///
    /// Replaces any blackhole in progress; `Duration::ZERO` ends it.
    pub fn blackhole(&self, duration: Duration) {
        let now = Instant::now();
        let blackhole = if duration.is_zero() {
            Blackhole::Off
        } else {
            now.checked_add(duration)
                .map_or(Blackhole::Forever, Blackhole::Until)
        };
        debug!(?duration, "ferry-relay blackhole");
        lock(&self.shared.to_upstream).set_blackhole(blackhole);
        lock(&self.shared.to_client).set_blackhole(blackhole);
    }

    /// Changes the conditions of the client → server direction from now on.
    /// Datagrams already in flight arrive as they were scheduled.
    ///
    /// # Panics
    ///
    /// Panics if [`LinkConfig::validate`] fails.
    pub fn set_to_upstream(&self, config: LinkConfig) {
        set_config(&self.shared.to_upstream, &config);
    }

    /// Changes the conditions of the server → client direction from now on.
    /// Datagrams already in flight arrive as they were scheduled.
    ///
    /// # Panics
    ///
    /// Panics if [`LinkConfig::validate`] fails.
    pub fn set_to_client(&self, config: LinkConfig) {
        set_config(&self.shared.to_client, &config);
    }

    /// A snapshot of the relay's counters.
    pub fn stats(&self) -> RelayStats {
        RelayStats {
            to_upstream: lock(&self.shared.to_upstream).stats(),
            to_client: lock(&self.shared.to_client).stats(),
            clients: self.shared.client_count.load(Ordering::Acquire),
            rejected: self.shared.rejected.load(Ordering::Relaxed),
        }
    }
}

impl fmt::Debug for Relay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Relay")
            .field("local_addr", &self.local_addr)
            .field("upstream", &self.shared.upstream)
            .field("clients", &self.shared.client_count.load(Ordering::Acquire))
            .finish_non_exhaustive()
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for handle in &self.threads {
            handle.thread().unpark();
        }
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                error!("a ferry-relay thread panicked");
            }
        }
        debug!(listen = %self.local_addr, "ferry-relay stopped");
    }
}

/// One client address and the socket the relay uses to talk to the server for it.
#[derive(Debug)]
struct Client {
    addr: SocketAddr,
    /// Non-blocking, connected to the upstream.
    socket: UdpSocket,
}

#[derive(Debug, Clone, Copy)]
enum Side {
    ToUpstream,
    ToClient,
}

/// State shared by the handle and the two threads.
#[derive(Debug)]
struct Shared {
    listen: UdpSocket,
    upstream: SocketAddr,
    to_upstream: Mutex<Direction>,
    to_client: Mutex<Direction>,
    /// Slot `i` holds client `i`; slots `0..client_count` are set. Only the receive
    /// thread adds clients, so readers need no lock.
    clients: Box<[OnceLock<Client>]>,
    client_count: AtomicUsize,
    rejected: AtomicU64,
    stop: AtomicBool,
    /// Origin of `pump_wake_at`.
    epoch: Instant,
    /// When the parked pump will wake, in nanoseconds since `epoch`; `u64::MAX` while
    /// it is busy. The receive thread wakes it early when it schedules an arrival
    /// before that.
    pump_wake_at: AtomicU64,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn client(&self, id: usize) -> Option<&Client> {
        self.clients.get(id).and_then(OnceLock::get)
    }

    fn nanos_since_epoch(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The receive thread: listen socket → client → server link.
    fn run_receive(&self, pump: &Thread) {
        let mut routes: HashMap<SocketAddr, Option<usize>> = HashMap::new();
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut warned_full = false;
        while !self.stopping() {
            let (len, from) = match self.listen.recv_from(&mut buf) {
                Ok(received) => received,
                Err(e) if is_timeout(&e) || is_icmp_noise(&e) => continue,
                Err(e) => {
                    warn!(error = %e, "ferry-relay: receive on the listen socket failed");
                    thread::sleep(Duration::from_millis(1));
                    continue;
                }
            };
            let id = match routes.entry(from) {
                Entry::Occupied(entry) => *entry.get(),
                Entry::Vacant(entry) => {
                    let id = self.add_client(from, &mut warned_full);
                    // Remember a rejection only for a full table, so that a failed
                    // socket creation is retried on the client's next datagram.
                    if id.is_some() || self.client_count.load(Ordering::Relaxed) >= MAX_CLIENTS {
                        entry.insert(id);
                    }
                    if id.is_some() {
                        pump.unpark();
                    }
                    id
                }
            };
            let Some(id) = id else {
                self.rejected.fetch_add(1, Ordering::Relaxed);
                continue;
            };
            let next = {
                let mut dir = lock(&self.to_upstream);
                let now = Instant::now();
                dir.ingress(now, frame(id, &buf[..len]));
                self.deliver(&mut dir, Side::ToUpstream, now);
                dir.next_arrival()
            };
            let earlier = next.is_some_and(|at| {
                self.nanos_since_epoch(at) < self.pump_wake_at.load(Ordering::SeqCst)
            });
            if earlier {
                pump.unpark();
            }
        }
    }

    /// Creates the upstream-facing socket of a new client; `None` if it cannot.
    fn add_client(&self, addr: SocketAddr, warned_full: &mut bool) -> Option<usize> {
        // Only this thread adds clients.
        let id = self.client_count.load(Ordering::Relaxed);
        if id >= MAX_CLIENTS {
            if !*warned_full {
                *warned_full = true;
                warn!(client = %addr, max = MAX_CLIENTS, "ferry-relay: too many clients, dropping datagrams from new ones");
            }
            return None;
        }
        let socket = match upstream_socket(self.upstream) {
            Ok(socket) => socket,
            Err(e) => {
                warn!(client = %addr, error = %e, "ferry-relay: cannot create an upstream socket; dropping the datagram");
                return None;
            }
        };
        debug!(client = %addr, via = ?socket.local_addr().ok(), "ferry-relay: new client");
        if self.clients[id].set(Client { addr, socket }).is_err() {
            unreachable!("client slot {id} set twice");
        }
        self.client_count.store(id + 1, Ordering::Release);
        Some(id)
    }

    /// The pump thread: upstream-facing sockets → server → client link, and delayed
    /// deliveries in both directions.
    fn run_pump(&self) {
        let mut buf = vec![0u8; MAX_DATAGRAM];
        let mut pause = MIN_POLL;
        while !self.stopping() {
            self.pump_wake_at.store(u64::MAX, Ordering::SeqCst);
            let clients = self.client_count.load(Ordering::Acquire);
            let mut busy = false;
            for id in 0..clients {
                let Some(client) = self.client(id) else {
                    continue;
                };
                for _ in 0..RECV_BUDGET {
                    match client.socket.recv(&mut buf) {
                        Ok(len) => {
                            busy = true;
                            let mut dir = lock(&self.to_client);
                            let now = Instant::now();
                            dir.ingress(now, frame(id, &buf[..len]));
                            self.deliver(&mut dir, Side::ToClient, now);
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        // The server is not (yet) listening: ICMP port unreachable.
                        Err(e) if is_icmp_noise(&e) => break,
                        Err(e) => {
                            debug!(client = %client.addr, error = %e, "ferry-relay: receive from upstream failed");
                            break;
                        }
                    }
                }
            }

            let now = Instant::now();
            let mut next_due: Option<Instant> = None;
            for (dir, side) in [
                (&self.to_upstream, Side::ToUpstream),
                (&self.to_client, Side::ToClient),
            ] {
                let mut dir = lock(dir);
                self.deliver(&mut dir, side, now);
                if let Some(at) = dir.next_arrival() {
                    next_due = Some(next_due.map_or(at, |due| due.min(at)));
                }
            }
            if busy {
                pause = MIN_POLL;
                continue;
            }

            let poll = if clients > 0 {
                let poll = pause;
                pause = (pause * 2).min(MAX_POLL);
                poll
            } else {
                IDLE_PARK
            };
            let wake = next_due.map_or(now + poll, |due| due.min(now + poll));
            self.pump_wake_at
                .store(self.nanos_since_epoch(wake), Ordering::SeqCst);
            if self.stopping() {
                break;
            }
            let now = Instant::now();
            if wake > now {
                thread::park_timeout(wake - now);
            }
        }
    }

    /// Sends every datagram of `dir` due at `now`. Holding the direction's lock while
    /// sending keeps datagrams in the order the link releases them.
    fn deliver(&self, dir: &mut Direction, side: Side, now: Instant) {
        while let Some((id, payload)) = dir.pop_due(now) {
            let Some(client) = self.client(id) else {
                dir.record_send(false);
                continue;
            };
            let result = match side {
                Side::ToUpstream => client.socket.send(&payload),
                Side::ToClient => self.listen.send_to(&payload, client.addr),
            };
            if let Err(e) = &result {
                debug!(client = %client.addr, ?side, error = %e, "ferry-relay: send failed");
            }
            dir.record_send(result.is_ok());
        }
    }
}

fn set_config(direction: &Mutex<Direction>, config: &LinkConfig) {
    if let Err(e) = config.validate() {
        panic!("invalid LinkConfig: {e}");
    }
    lock(direction).set_config(config);
}

/// A new upstream-facing socket: loopback of the upstream's family (unspecified if
/// the upstream is not on loopback), connected to the upstream, non-blocking.
fn upstream_socket(upstream: SocketAddr) -> io::Result<UdpSocket> {
    let bind: SocketAddr = match upstream {
        SocketAddr::V4(a) if a.ip().is_loopback() => (Ipv4Addr::LOCALHOST, 0).into(),
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(a) if a.ip().is_loopback() => (Ipv6Addr::LOCALHOST, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(bind)?;
    enlarge_buffers(&socket);
    socket.connect(upstream)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Socket buffers the relay asks for: enough to absorb a fast sender's burst
/// while the relay's threads catch up, so that the relay loses only what its
/// link model says (the kernel caps the request at `net.core.rmem_max` and
/// `wmem_max`).
const SOCKET_BUFFER: usize = 32 << 20;

fn enlarge_buffers(socket: &UdpSocket) {
    let socket = socket2::SockRef::from(socket);
    if let Err(e) = socket.set_recv_buffer_size(SOCKET_BUFFER) {
        debug!("relay: cannot enlarge the receive buffer: {e}");
    }
    if let Err(e) = socket.set_send_buffer_size(SOCKET_BUFFER) {
        debug!("relay: cannot enlarge the send buffer: {e}");
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Errors that only report an earlier ICMP message (a peer that was not listening).
fn is_icmp_noise(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    )
}

/// Independent seeds for the generators of one relay (SplitMix64 of `seed` and
/// `stream`).
fn derive_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed.wrapping_add(stream.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
