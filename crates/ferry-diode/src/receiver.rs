//! The receiving side: a receive thread, decode workers, and a bounded queue
//! of events for the application.

use std::collections::{BTreeSet, VecDeque};
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_proto::diode::{DecodeJob, DiodeConfig, Receiver, ReceiverEvent, ReceiverStats};
use polling::{Event, Events, Poller};
use quinn_udp::{RecvMeta, UdpSockRef, UdpSocketState};
use tracing::{debug, error, trace};

use crate::DiodeError;
use crate::socket::{Buffer, SocketOptions, bind_udp, lock};

/// Receive batches handled before timers and events get their turn.
const RECV_BATCHES_PER_TURN: usize = 16;
/// Room for one receive: the largest UDP payload, or a GRO run.
const RECV_SLOT: usize = 65_536;
/// Events other than data that may wait, whatever their size.
const MAX_QUEUED_EVENTS: usize = 4096;

/// Counters of a [`DiodeReceiver`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiodeReceiverStats {
    /// The protocol core's counters.
    pub protocol: ReceiverStats,
    /// Receive calls that returned datagrams (each a batch, with GRO runs).
    pub receives: u64,
    /// Receive calls that failed.
    pub recv_errors: u64,
    /// Events waiting for the application now.
    pub queued_events: usize,
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
    receives: u64,
    recv_errors: u64,
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

/// The bounded queue between the receive thread and the application.
#[derive(Debug)]
struct EventQueue {
    inner: Mutex<Queue>,
    not_empty: Condvar,
    not_full: Condvar,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<ReceiverEvent>,
    bytes: usize,
    closed: bool,
}

fn event_bytes(event: &ReceiverEvent) -> usize {
    match event {
        ReceiverEvent::Data { data, .. } => data.len(),
        _ => 0,
    }
}

impl EventQueue {
    /// Queues an event, waiting while the queue is full; `false` once closed.
    fn push(&self, event: ReceiverEvent) -> bool {
        let size = event_bytes(&event);
        let mut q = lock(&self.inner);
        loop {
            if q.closed {
                return false;
            }
            let full = !q.items.is_empty()
                && (q.bytes + size > self.max_bytes || q.items.len() >= MAX_QUEUED_EVENTS);
            if !full {
                break;
            }
            q = self
                .not_full
                .wait(q)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        q.bytes += size;
        q.items.push_back(event);
        drop(q);
        self.not_empty.notify_one();
        true
    }

    fn pop(&self, deadline: Option<Instant>) -> Result<ReceiverEvent, RecvTimeoutError> {
        let mut q = lock(&self.inner);
        loop {
            if let Some(event) = q.items.pop_front() {
                q.bytes -= event_bytes(&event);
                drop(q);
                self.not_full.notify_one();
                return Ok(event);
            }
            if q.closed {
                return Err(RecvTimeoutError::Disconnected);
            }
            q = match deadline {
                None => self
                    .not_empty
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(RecvTimeoutError::Timeout);
                    }
                    self.not_empty
                        .wait_timeout(q, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    fn close(&self) {
        lock(&self.inner).closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    fn len(&self) -> usize {
        lock(&self.inner).items.len()
    }
}

#[derive(Debug)]
struct Shared {
    core: Mutex<Core>,
    poller: Poller,
    closing: AtomicBool,
    events: EventQueue,
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
/// while the decode workers lag `max_blocks_in_flight / 2` blocks behind
/// (the core would drop symbols beyond its window): the socket buffer
/// absorbs the lag instead.
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
    local_addr: SocketAddr,
}

impl DiodeReceiver {
    /// Binds a UDP socket on `addr` and starts receiving.
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
        let socket = bind_udp(addr, Buffer::Recv(options.recv_buffer))?;
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
        let poller = Poller::new().map_err(io_err("cannot create a poller for the socket on"))?;
        let (tx, rx) = mpsc::channel::<(u64, DecodeJob)>();
        let receiver = Receiver::new(config.clone(), Instant::now())?;
        let shared = Arc::new(Shared {
            core: Mutex::new(Core {
                receiver,
                jobs: Some(tx),
                next_job: 0,
                decoding: BTreeSet::new(),
                receives: 0,
                recv_errors: 0,
            }),
            poller,
            closing: AtomicBool::new(false),
            events: EventQueue {
                inner: Mutex::new(Queue::default()),
                not_empty: Condvar::new(),
                not_full: Condvar::new(),
                max_bytes: options.event_queue_bytes,
            },
        });
        // SAFETY: the socket is deleted from the poller before it is dropped
        // (at the end of `ReceiveLoop::run`).
        unsafe { shared.poller.add(&socket, Event::none(0)) }
            .map_err(io_err("cannot watch the socket on"))?;
        let this = Self {
            shared: Arc::clone(&shared),
            threads: Mutex::new(Vec::new()),
            local_addr,
        };
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..options.worker_threads() {
            let shared = Arc::clone(&shared);
            let rx = Arc::clone(&rx);
            let handle = std::thread::Builder::new()
                .name(format!("diode-decode-{i}"))
                .spawn(move || decode_worker(&shared, &rx))
                .map_err(|source| DiodeError::Thread {
                    what: "decode worker",
                    source,
                })?;
            lock(&this.threads).push(handle);
        }
        let slot = RECV_SLOT.max(udp.gro_segments() * 1500);
        let max_decoding = (config.max_blocks_in_flight / 2).max(1);
        let block_size = config.block_size;
        let receive = ReceiveLoop {
            shared,
            socket,
            udp,
            bufs: (0..quinn_udp::BATCH_SIZE).map(|_| vec![0; slot]).collect(),
            metas: vec![RecvMeta::default(); quinn_udp::BATCH_SIZE],
            max_decoding,
            block_size,
        };
        let handle = std::thread::Builder::new()
            .name("diode-receive".into())
            .spawn(move || receive.run())
            .map_err(|source| DiodeError::Thread {
                what: "receiver",
                source,
            })?;
        lock(&this.threads).push(handle);
        debug!(%local_addr, "diode receiver started");
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

    /// Counters of the protocol and the socket.
    pub fn stats(&self) -> DiodeReceiverStats {
        let core = lock(&self.shared.core);
        DiodeReceiverStats {
            protocol: core.receiver.stats().clone(),
            receives: core.receives,
            recv_errors: core.recv_errors,
            queued_events: self.shared.events.len(),
        }
    }

    /// The address the socket is bound to (with the port the system chose
    /// when bound to port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops receiving and stops the threads. Sessions in progress are
    /// abandoned (no event says so). Events already queued can still be
    /// taken; then [`recv_event`](Self::recv_event) returns `None`. Also done
    /// on drop.
    pub fn close(&self) {
        self.shared.closing.store(true, Ordering::SeqCst);
        self.shared.events.close();
        if let Err(e) = self.shared.poller.notify() {
            debug!(error = %e, "cannot wake the receive thread");
        }
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
        // The receive thread hands the events out.
        if let Err(e) = shared.poller.notify() {
            debug!(error = %e, "cannot wake the receive thread");
        }
    }
}

/// What a turn of reading found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// The socket has nothing more now.
    Drained,
    /// More may be waiting: read again after timers and events.
    Busy,
    /// The decode workers lag: leave the datagrams in the socket buffer.
    Throttled,
}

/// The receive thread.
#[derive(Debug)]
struct ReceiveLoop {
    shared: Arc<Shared>,
    socket: UdpSocket,
    udp: UdpSocketState,
    bufs: Vec<Vec<u8>>,
    metas: Vec<RecvMeta>,
    /// The decode span (see [`Core::decode_span`]) at which reading stops.
    max_decoding: usize,
    /// The largest block expected (the configured `block_size`).
    block_size: usize,
}

impl ReceiveLoop {
    fn run(mut self) {
        if let Err(e) = self.serve() {
            error!(error = %e, "the diode receiver stopped: cannot wait for datagrams");
        }
        let _ = self.shared.poller.delete(&self.socket);
        self.shared.events.close();
        debug!("diode receive thread stopped");
    }

    fn serve(&mut self) -> io::Result<()> {
        let mut events = Events::new();
        let mut pending = Vec::new();
        while !self.shared.closing.load(Ordering::SeqCst) {
            let read = self.receive();
            let deadline = {
                let mut core = lock(&self.shared.core);
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
            for event in pending.drain(..) {
                trace!(?event, "diode event");
                if !self.shared.events.push(event) {
                    return Ok(());
                }
            }
            // Sleep until a datagram (unless throttled), a worker's result,
            // `close`, or the next deadline.
            let interest = match read {
                Read::Busy => continue,
                Read::Drained => Event::readable(0),
                Read::Throttled => Event::none(0),
            };
            self.shared.poller.modify(&self.socket, interest)?;
            events.clear();
            match deadline {
                Some(deadline) => self.shared.poller.wait_deadline(&mut events, deadline)?,
                None => self.shared.poller.wait(&mut events, None)?,
            };
        }
        Ok(())
    }

    /// Reads batches of datagrams into the core.
    ///
    /// The core holds `max_blocks_in_flight` blocks per session between the
    /// wire and the application, and drops symbols beyond them while its head
    /// block is still being decoded. So reading stops while the oldest block
    /// still with a worker is `max_blocks_in_flight / 2` dispatches old (one
    /// worker may be descheduled while the others go on), and each read asks
    /// for no more than the blocks left to that limit: when the workers fall
    /// behind, datagrams wait in the socket buffer instead.
    fn receive(&mut self) -> Read {
        for _ in 0..RECV_BATCHES_PER_TURN {
            let span = lock(&self.shared.core).decode_span();
            let room = self.max_decoding.saturating_sub(span);
            if room == 0 {
                return Read::Throttled;
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
                .recv(UdpSockRef::from(&self.socket), &mut iovs, &mut self.metas)
            {
                Ok(n) => {
                    let now = Instant::now();
                    let mut core = lock(&self.shared.core);
                    core.receives += 1;
                    for (meta, buf) in self.metas[..n].iter().zip(&self.bufs) {
                        let stride = meta.stride.max(1);
                        for datagram in buf[..meta.len].chunks(stride) {
                            core.receiver.handle_datagram(now, datagram);
                        }
                    }
                    core.dispatch();
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Read::Drained,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Per-datagram trouble (a truncated read, an ICMP error
                    // surfacing): count it and go on.
                    trace!(error = %e, "receive error");
                    lock(&self.shared.core).recv_errors += 1;
                }
            }
        }
        Read::Busy
    }
}
