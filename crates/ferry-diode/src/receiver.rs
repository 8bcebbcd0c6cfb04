//! The receiving side: a receive thread per port, decode workers, and a
//! bounded queue of events for the application.

use std::collections::BTreeSet;
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_proto::diode::{
    DecodeJob, DiodeConfig, DiodeSessionId, LossReason, Receiver, ReceiverEvent, ReceiverStats,
};
use polling::{Event, Events, Poller};
use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};
use tracing::{debug, error, trace, warn};

use crate::DiodeError;
use crate::buffers::{BufferCheck, BufferSide, socket_drops};
use crate::events::EventQueue;
use crate::socket::{SocketOptions, bind_udp, lock, spread};

/// Receive batches handled before timers and events get their turn.
const RECV_BATCHES_PER_TURN: usize = 16;
/// Room for one receive: the largest UDP payload, or a GRO run.
const RECV_SLOT: usize = 65_536;
/// How often the first receive thread reads the kernel's drop counts.
const DROP_CHECK: Duration = Duration::from_millis(500);
/// How long a throttled receive thread of another port than the first waits
/// before looking again, should no worker wake it (the application's
/// progress does not).
const THROTTLE_POLL: Duration = Duration::from_millis(1);

/// Counters of a [`DiodeReceiver`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiodeReceiverStats {
    /// The protocol core's counters.
    pub protocol: ReceiverStats,
    /// Receive calls that returned datagrams (each a batch, with GRO runs),
    /// over every port.
    pub receives: u64,
    /// Receive calls that failed, over every port.
    pub recv_errors: u64,
    /// Events waiting for the application now.
    pub queued_events: usize,
    /// Datagrams the kernel dropped at the receiving sockets since `bind`,
    /// over every port: their buffers were full because this receiver fell
    /// behind (or, rarely, a checksum failed). Linux only (`SO_MEMINFO`, the
    /// `drops` column of `/proc/net/udp`); 0 elsewhere. Any increase is
    /// logged as a warning.
    pub socket_drops: u64,
    /// Times reading paused because the decode workers lagged
    /// `blocks_in_flight() / 2` blocks behind (datagrams wait in the socket
    /// buffer meanwhile; it is when that fills that `socket_drops` grows).
    pub decode_throttles: u64,
    /// Times an event waited for room in the event queue: the application
    /// did not take events fast enough, and reading paused.
    pub event_queue_waits: u64,
    /// Sessions lost (a block undecodable, overrun, or expired) while the
    /// sockets had dropped datagrams since the previous loss: most likely
    /// lost because this receiver fell behind, not on the link.
    pub sessions_lost_behind: u64,
    /// Each port's counters, in the order of
    /// [`SocketOptions::ports`] (one entry without ports).
    pub ports: Vec<ReceiverPortStats>,
}

/// Counters of one port of a [`DiodeReceiver`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverPortStats {
    /// The address its socket is bound to.
    pub local: SocketAddr,
    /// Receive calls that returned datagrams.
    pub receives: u64,
    /// Datagrams received on it.
    pub datagrams: u64,
    /// Receive calls that failed.
    pub recv_errors: u64,
    /// Datagrams the kernel dropped at this socket (`None` where the
    /// platform does not say).
    pub socket_drops: Option<u64>,
}

/// A port's counters, kept under the core's lock.
#[derive(Debug, Clone, Copy, Default)]
struct PortCounters {
    receives: u64,
    datagrams: u64,
    recv_errors: u64,
}

#[derive(Debug)]
struct Core {
    receiver: Receiver,
    /// To the decode workers, each job with its dispatch number; `None` once
    /// closing.
    jobs: Option<mpsc::Sender<(u64, DecodeJob)>>,
    /// The next job's dispatch number.
    next_job: u64,
    /// Dispatch numbers of the jobs the workers have not given back.
    decoding: BTreeSet<u64>,
    ports: Vec<PortCounters>,
    decode_throttles: u64,
    sessions_lost_behind: u64,
}

impl Core {
    /// Hands every block ready to decode to the workers.
    fn dispatch(&mut self) {
        while let Some(job) = self.receiver.poll_decode() {
            if let Some(tx) = &self.jobs
                && tx.send((self.next_job, job)).is_ok()
            {
                self.decoding.insert(self.next_job);
                self.next_job += 1;
            }
        }
    }

    /// Blocks dispatched since the oldest one still being decoded: how far
    /// the head of the sessions may lag behind the newest block.
    fn decode_span(&self) -> usize {
        self.decoding
            .first()
            .map_or(0, |oldest| (self.next_job - oldest) as usize)
    }
}

/// One receiving socket.
#[derive(Debug)]
struct Port {
    socket: UdpSocket,
    local_addr: SocketAddr,
}

#[derive(Debug)]
struct Shared {
    core: Mutex<Core>,
    /// One per port, watching its socket; decode workers and `close` wake
    /// them all.
    pollers: Vec<Poller>,
    ports: Vec<Port>,
    closing: AtomicBool,
    events: EventQueue,
}

impl Shared {
    fn wake_all(&self) {
        for poller in &self.pollers {
            if let Err(e) = poller.notify() {
                debug!(error = %e, "cannot wake a receive thread");
            }
        }
    }

    /// Datagrams the kernel dropped at every socket.
    fn socket_drops(&self) -> u64 {
        self.ports
            .iter()
            .filter_map(|p| socket_drops(&p.socket))
            .sum()
    }

    /// Stops watching the sockets of ports `from..` (their threads never
    /// started).
    fn unwatch_from(&self, from: usize) {
        for (poller, port) in self.pollers.iter().zip(&self.ports).skip(from) {
            let _ = poller.delete(&port.socket);
        }
    }
}

/// The receiving end of a diode on a real UDP socket.
///
/// [`bind`](Self::bind) opens the socket and starts a receive thread and a
/// pool of decode workers. The receive thread takes datagrams in batches
/// (recvmmsg, and GRO runs split by their stride, through quinn-udp), hands
/// them to the protocol core, dispatches blocks to the workers, handles the
/// core's timers, and queues the core's events for the application, which
/// takes them with [`recv_event`](Self::recv_event):
/// `SessionStarted`, then the session's bytes in order (`Data`), then
/// `SessionFinished` once the length and BLAKE3 digest matched — or
/// `SessionLost`, after which the application must discard what that
/// session delivered.
///
/// # Decoding
///
/// A block's decode starts once its symbols are over (a datagram of another
/// block or a heartbeat arrived, or 10 ms passed), with every symbol that
/// made it, rather than as soon as the minimum arrived: the core does not
/// retry a failed attempt with symbols that came during it. Reading stops
/// while the decode workers lag `blocks_in_flight() / 2` blocks behind
/// (the core would drop symbols beyond its window): the socket buffer
/// absorbs the lag instead.
///
/// # Several ports
///
/// With [`SocketOptions::ports`], one socket per port, each read by its own
/// thread (the first one's also handles timers and events); every thread
/// feeds the one protocol core under its lock, so the core stays
/// single-threaded. Datagrams of different ports interleave: the core
/// gathers each block's symbols in any order within `blocks_in_flight()`
/// blocks.
///
/// # Falling behind
///
/// When the receiver cannot keep up, the kernel drops datagrams at the
/// socket; the driver reads that count (Linux: `SO_MEMINFO`, the `drops`
/// column of `/proc/net/udp`) into [`DiodeReceiverStats::socket_drops`],
/// logs a warning when it grows, and when a session is lost while it grew,
/// says so and counts it ([`DiodeReceiverStats::sessions_lost_behind`]): the
/// loss is this host's, not the network's. The causes are counted too:
/// [`decode_throttles`](DiodeReceiverStats::decode_throttles) (reading paused
/// for the decode workers) and
/// [`event_queue_waits`](DiodeReceiverStats::event_queue_waits) (for the
/// application).
///
/// # Backpressure
///
/// The event queue is bounded ([`SocketOptions::event_queue_bytes`]). An
/// application that does not take events stops the receive thread, which
/// then stops reading the socket: its buffer fills and the kernel drops
/// datagrams, as nothing can slow the sender down on a one-way link. Sessions
/// whose blocks could not be rebuilt are then reported lost when the
/// application comes back — never delivered with holes. Take events
/// promptly, and size `udp_recv_buffer` for the pauses you expect.
///
/// ```no_run
/// use ferry_diode::{DiodeReceiver, SocketOptions};
/// use ferry_proto::diode::{DiodeConfig, ReceiverEvent};
///
/// let receiver = DiodeReceiver::bind(
///     "0.0.0.0:5000".parse()?,
///     DiodeConfig::default(),
///     SocketOptions::default(),
/// )?;
/// while let Some(event) = receiver.recv_event() {
///     match event {
///         ReceiverEvent::Data { session, data } => { /* append to session's output */ }
///         ReceiverEvent::SessionFinished { session, bytes } => { /* keep it */ }
///         ReceiverEvent::SessionLost { session, reason } => { /* discard it */ }
///         _ => {}
///     }
/// }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct DiodeReceiver {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    buffer: BufferCheck,
}

impl DiodeReceiver {
    /// Binds a UDP socket on `addr` and starts receiving; with
    /// [`SocketOptions::ports`], one socket on `addr`'s IP per port.
    ///
    /// Logs a warning when the kernel grants a smaller receive buffer than
    /// `bandwidth` needs (see [`buffer_check`](Self::buffer_check)).
    ///
    /// Fails with [`DiodeError::Config`] when `config` is invalid (the message
    /// names the key), and [`DiodeError::AddrInUse`] and its siblings when the
    /// address cannot be bound.
    pub fn bind(
        addr: SocketAddr,
        config: DiodeConfig,
        options: SocketOptions,
    ) -> Result<Self, DiodeError> {
        config.validate()?;
        let addrs = spread(addr, &options.ports);
        let check = BufferCheck::new(&config, BufferSide::Recv, options.recv_buffer, addrs.len());
        let mut buffer: Option<BufferCheck> = None;
        let mut sockets = Vec::new();
        let mut states = Vec::new();
        let mut pollers = Vec::new();
        for &addr in &addrs {
            let (socket, granted) = bind_udp(addr, check.clone())?;
            if buffer.as_ref().is_none_or(|b| granted.granted < b.granted) {
                buffer = Some(granted);
            }
            let local_addr = socket.local_addr().map_err(|source| DiodeError::Io {
                context: "cannot read the address of the socket bound on",
                addr,
                source,
            })?;
            let io_err = |context| {
                move |source| DiodeError::Io {
                    context,
                    addr: local_addr,
                    source,
                }
            };
            let udp = UdpSocketState::new(UdpSockRef::from(&socket))
                .map_err(io_err("cannot set up the UDP socket on"))?;
            let poller =
                Poller::new().map_err(io_err("cannot create a poller for the socket on"))?;
            // SAFETY: the socket is deleted from the poller before it is
            // dropped: at the end of `ReceiveLoop::run`, or below when a
            // later step of `bind` fails.
            unsafe { poller.add(&socket, Event::none(0)) }
                .map_err(io_err("cannot watch the socket on"))?;
            sockets.push(Port { socket, local_addr });
            states.push(udp);
            pollers.push(poller);
        }
        let buffer = buffer.unwrap_or(check);
        let (tx, rx) = mpsc::channel::<(u64, DecodeJob)>();
        let receiver = Receiver::new(config.clone(), Instant::now())?;
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                receiver,
                jobs: Some(tx),
                next_job: 0,
                decoding: BTreeSet::new(),
                ports: vec![PortCounters::default(); sockets.len()],
                decode_throttles: 0,
                sessions_lost_behind: 0,
            }),
            pollers,
            ports: sockets,
            closing: AtomicBool::new(false),
            events: EventQueue::new(options.event_queue_bytes),
        });
        let this = Self {
            shared: Arc::clone(&shared),
            threads: Mutex::new(Vec::new()),
            buffer,
        };
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..options.worker_threads() {
            let worker = Arc::clone(&shared);
            let rx = Arc::clone(&rx);
            let handle = std::thread::Builder::new()
                .name(format!("diode-decode-{i}"))
                .spawn(move || decode_worker(&worker, &rx))
                .map_err(|source| DiodeError::Thread {
                    what: "decode worker",
                    source,
                });
            match handle {
                Ok(handle) => lock(&this.threads).push(handle),
                Err(e) => {
                    shared.unwatch_from(0);
                    return Err(e);
                }
            }
        }
        let max_decoding = (config.blocks_in_flight() / 2).max(1);
        let block_size = config.block_size;
        for (index, udp) in states.into_iter().enumerate() {
            let slot = RECV_SLOT.max(udp.gro_segments() * 1500);
            let receive = ReceiveLoop {
                shared: Arc::clone(&shared),
                index,
                udp,
                bufs: (0..quinn_udp::BATCH_SIZE).map(|_| vec![0; slot]).collect(),
                metas: vec![RecvMeta::default(); quinn_udp::BATCH_SIZE],
                max_decoding,
                block_size,
                throttled: false,
                drops: DropWatch::default(),
            };
            let name = if index == 0 {
                "diode-receive".to_string()
            } else {
                format!("diode-receive-{index}")
            };
            let handle = std::thread::Builder::new()
                .name(name)
                .spawn(move || receive.run())
                .map_err(|source| DiodeError::Thread {
                    what: "receiver",
                    source,
                });
            match handle {
                Ok(handle) => lock(&this.threads).push(handle),
                Err(e) => {
                    // The threads started own their sockets' watch.
                    shared.unwatch_from(index);
                    return Err(e);
                }
            }
        }
        debug!(local = ?this.local_addrs(), "diode receiver started");
        Ok(this)
    }

    /// The next event, waiting for one; `None` once the receiver is closed
    /// (events already queued are still handed out first).
    pub fn recv_event(&self) -> Option<ReceiverEvent> {
        self.shared.events.pop(None).ok()
    }

    /// The next event, waiting at most `timeout`:
    /// [`RecvTimeoutError::Timeout`] when none came, and
    /// [`RecvTimeoutError::Disconnected`] once the receiver is closed and
    /// every queued event was taken.
    pub fn recv_event_timeout(&self, timeout: Duration) -> Result<ReceiverEvent, RecvTimeoutError> {
        self.shared.events.pop(Some(Instant::now() + timeout))
    }

    /// Counters of the protocol, the sockets and the driver.
    pub fn stats(&self) -> DiodeReceiverStats {
        let (protocol, counters, decode_throttles, sessions_lost_behind) = {
            let core = lock(&self.shared.core);
            (
                core.receiver.stats().clone(),
                core.ports.clone(),
                core.decode_throttles,
                core.sessions_lost_behind,
            )
        };
        let ports: Vec<ReceiverPortStats> = self
            .shared
            .ports
            .iter()
            .zip(counters)
            .map(|(port, c)| ReceiverPortStats {
                local: port.local_addr,
                receives: c.receives,
                datagrams: c.datagrams,
                recv_errors: c.recv_errors,
                socket_drops: socket_drops(&port.socket),
            })
            .collect();
        DiodeReceiverStats {
            protocol,
            receives: ports.iter().map(|p| p.receives).sum(),
            recv_errors: ports.iter().map(|p| p.recv_errors).sum(),
            queued_events: self.shared.events.len(),
            socket_drops: ports.iter().filter_map(|p| p.socket_drops).sum(),
            decode_throttles,
            event_queue_waits: self.shared.events.waits(),
            sessions_lost_behind,
            ports,
        }
    }

    /// The address the (first) socket is bound to (with the port the system
    /// chose when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.shared.ports[0].local_addr
    }

    /// The addresses every socket is bound to, one per port, in the order of
    /// [`SocketOptions::ports`].
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.shared.ports.iter().map(|p| p.local_addr).collect()
    }

    /// The receive buffer granted, against what `bandwidth` needs (the
    /// smallest of the sockets' when there are several). `bind` logs it as a
    /// warning when short; its `Display` says what to do. The receiver reads
    /// `bandwidth` from its own configuration: give it the sender's.
    pub fn buffer_check(&self) -> &BufferCheck {
        &self.buffer
    }

    /// Stops receiving and stops the threads. Sessions in progress are
    /// abandoned (no event says so). Events already queued can still be
    /// taken; then [`recv_event`](Self::recv_event) returns `None`. Also done
    /// on drop.
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.events.close();
        self.shared.wake_all();
        lock(&self.shared.core).jobs = None;
        let threads: Vec<JoinHandle<()>> = lock(&self.threads).drain(..).collect();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

impl Drop for DiodeReceiver {
    fn drop(&mut self) {
        self.close();
    }
}

fn decode_worker(shared: &Shared, jobs: &Mutex<mpsc::Receiver<(u64, DecodeJob)>>) {
    loop {
        let (number, job) = match lock(jobs).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let block = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run()));
        {
            let mut core = lock(&shared.core);
            match block {
                Ok(block) => core.receiver.handle_decoded(Instant::now(), block),
                Err(_) => error!("a decode job panicked: its session will not complete"),
            }
            core.decoding.remove(&number);
        }
        // The first receive thread hands the events out; the others may be
        // waiting for the decode span to shrink.
        shared.wake_all();
    }
}

/// What a turn of reading found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// The socket has nothing more now.
    Drained,
    /// More may be waiting: read again after timers and events.
    Busy,
    /// The decode workers (or, for the other ports, the application) lag:
    /// leave the datagrams in the socket buffer.
    Throttled,
}

/// The kernel's drop count, watched by the first receive thread.
#[derive(Debug, Default)]
struct DropWatch {
    /// When the count was last read.
    checked: Option<Instant>,
    /// The count then.
    seen: u64,
    /// The count when the last session was lost.
    at_loss: u64,
}

/// A receive thread: one per port. The first also runs the core's timers
/// and hands its events to the application.
#[derive(Debug)]
struct ReceiveLoop {
    shared: Arc<Shared>,
    /// The port's index in `shared.ports` and `shared.pollers`.
    index: usize,
    udp: UdpSocketState,
    bufs: Vec<Vec<u8>>,
    metas: Vec<RecvMeta>,
    /// The decode span (see [`Core::decode_span`]) at which reading stops.
    max_decoding: usize,
    /// The largest block expected (the configured `block_size`).
    block_size: usize,
    /// Reading is paused for the decode workers.
    throttled: bool,
    drops: DropWatch,
}

impl ReceiveLoop {
    fn run(mut self) {
        if let Err(e) = self.serve() {
            error!(error = %e, "the diode receiver stopped: cannot wait for datagrams");
        }
        let shared = Arc::clone(&self.shared);
        let port = &shared.ports[self.index];
        let _ = shared.pollers[self.index].delete(&port.socket);
        shared.events.close();
        // Wake the other ports' threads: they stop when the queue closes.
        shared.closing.store(true, Ordering::SeqCst);
        shared.wake_all();
        debug!(port = %port.local_addr, "diode receive thread stopped");
    }

    fn serve(&mut self) -> io::Result<()> {
        let shared = Arc::clone(&self.shared);
        let poller = &shared.pollers[self.index];
        let socket = &shared.ports[self.index].socket;
        let primary = self.index == 0;
        let mut events = Events::new();
        let mut pending = Vec::new();
        while !shared.closing.load(Ordering::SeqCst) {
            let (read, got) = if !primary && shared.events.is_full() {
                (Read::Throttled, 0)
            } else {
                self.receive()
            };
            let deadline = if primary {
                let deadline = {
                    let mut core = lock(&shared.core);
                    let now = Instant::now();
                    if core.receiver.poll_timeout().is_some_and(|t| t <= now) {
                        core.receiver.handle_timeout(now);
                    }
                    core.dispatch();
                    while let Some(event) = core.receiver.poll_event() {
                        pending.push(event);
                    }
                    core.receiver.poll_timeout()
                };
                self.watch_drops(Instant::now());
                for event in pending.drain(..) {
                    trace!(?event, "diode event");
                    if let ReceiverEvent::SessionLost { session, reason } = &event {
                        self.blame(*session, *reason);
                    }
                    if !shared.events.push(event) {
                        return Ok(());
                    }
                }
                deadline
            } else {
                if got > 0 {
                    // The first thread hands out what these datagrams made.
                    shared.pollers[0].notify()?;
                }
                // Only waits below for the workers' or the application's
                // progress, which wakes it or is polled for.
                (read == Read::Throttled).then(|| Instant::now() + THROTTLE_POLL)
            };
            // Sleep until a datagram (unless throttled), a worker's result,
            // `close`, or the next deadline.
            let interest = match read {
                Read::Busy => continue,
                Read::Drained => Event::readable(0),
                Read::Throttled => Event::none(0),
            };
            poller.modify(socket, interest)?;
            events.clear();
            match deadline {
                Some(deadline) => poller.wait_deadline(&mut events, deadline)?,
                None => poller.wait(&mut events, None)?,
            };
        }
        Ok(())
    }

    /// Reads the kernel's drop counts at most every [`DROP_CHECK`] and warns
    /// when they grew.
    fn watch_drops(&mut self, now: Instant) {
        if self
            .drops
            .checked
            .is_some_and(|t| now.saturating_duration_since(t) < DROP_CHECK)
        {
            return;
        }
        self.drops.checked = Some(now);
        let total = self.shared.socket_drops();
        if total > self.drops.seen {
            let throttles = {
                let mut core = lock(&self.shared.core);
                // The blocks under way may miss these: a loss among them is
                // this receiver's, not the link's.
                core.receiver.report_overflow(total - self.drops.seen);
                core.decode_throttles
            };
            let waits = self.shared.events.waits();
            warn!(
                dropped = total - self.drops.seen,
                total,
                decode_throttles = throttles,
                event_queue_waits = waits,
                "the receiving socket overflowed: the kernel dropped datagrams because this receiver fell behind (not the network); raise `udp_recv_buffer` (and net.core.rmem_max), add `decode_threads`, take events faster, or lower the sender's `bandwidth`"
            );
        }
        self.drops.seen = total;
    }

    /// Says whether a lost session may be this host's fault: its sockets
    /// dropped datagrams since the previous loss.
    fn blame(&mut self, session: DiodeSessionId, reason: LossReason) {
        if !matches!(
            reason,
            LossReason::BeyondRepairMargin(_)
                | LossReason::BlockExpired(_)
                | LossReason::SessionExpired(_)
                | LossReason::ReceiverBehind(_)
        ) {
            return;
        }
        let total = self.shared.socket_drops();
        let dropped = total.saturating_sub(self.drops.at_loss);
        self.drops.at_loss = total;
        if dropped > 0 {
            lock(&self.shared.core).sessions_lost_behind += 1;
            warn!(
                %session,
                ?reason,
                dropped,
                "diode session lost while this host's sockets dropped datagrams: the receiver fell behind (see the socket-overflow warning for what to do)"
            );
        } else {
            debug!(
                %session,
                ?reason,
                "diode session lost with no datagram dropped on this host: lost on the link (raise `repair_percentage`) or by the sender"
            );
        }
    }

    /// Reads batches of datagrams into the core; returns how the socket
    /// stands and how many datagrams were handled.
    ///
    /// The core holds `blocks_in_flight()` blocks per session between the
    /// wire and the application, and drops symbols beyond them while its head
    /// block is still being decoded. So reading stops while the oldest block
    /// still with a worker is `blocks_in_flight() / 2` dispatches old (one
    /// worker may be descheduled while the others go on), and each read asks
    /// for no more than the blocks left to that limit: when the workers fall
    /// behind, datagrams wait in the socket buffer instead.
    fn receive(&mut self) -> (Read, usize) {
        let shared = Arc::clone(&self.shared);
        let socket = &shared.ports[self.index].socket;
        let mut got = 0;
        for _ in 0..RECV_BATCHES_PER_TURN {
            let room = {
                let mut core = lock(&shared.core);
                let room = self.max_decoding.saturating_sub(core.decode_span());
                if room == 0 && !self.throttled {
                    core.decode_throttles += 1;
                }
                room
            };
            self.throttled = room == 0;
            if room == 0 {
                return (Read::Throttled, got);
            }
            let slot = self.bufs[0].len();
            let count = (room * self.block_size)
                .div_ceil(slot)
                .clamp(1, self.bufs.len());
            let mut iovs: Vec<IoSliceMut<'_>> = self.bufs[..count]
                .iter_mut()
                .map(|b| IoSliceMut::new(b))
                .collect();
            match self
                .udp
                .recv(UdpSockRef::from(socket), &mut iovs, &mut self.metas)
            {
                Ok(n) => {
                    let now = Instant::now();
                    let mut core = lock(&shared.core);
                    let mut datagrams = 0;
                    for (meta, buf) in self.metas[..n].iter().zip(&self.bufs) {
                        let stride = meta.stride.max(1);
                        for datagram in buf[..meta.len].chunks(stride) {
                            core.receiver.handle_datagram(now, datagram);
                            datagrams += 1;
                        }
                    }
                    let port = &mut core.ports[self.index];
                    port.receives += 1;
                    port.datagrams += datagrams;
                    got += datagrams as usize;
                    core.dispatch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return (Read::Drained, got),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Per-datagram trouble (a truncated read, an ICMP error
                    // surfacing): count it and go on.
                    trace!(error = %e, "receive error");
                    lock(&shared.core).ports[self.index].recv_errors += 1;
                }
            }
        }
        (Read::Busy, got)
    }
}
