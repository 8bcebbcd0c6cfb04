//! The sending side: a driver thread, encode workers, and blocking session
//! writers.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ferry_proto::diode::{
    DiodeConfig, DiodeSessionId, EncodeJob, Sender, SenderError, SenderEvent, SenderStats,
};
use tracing::{debug, error};

use crate::DiodeError;
use crate::buffers::{BufferCheck, BufferSide};
use crate::lanes::{Lane, LaneCounters, Output, SenderPortStats};
use crate::socket::{SocketOptions, lock, seed, spread};

/// Largest payload of one GSO send.
const MAX_GSO_BYTES: usize = 64_000;
/// The longest the driver lets pacing tokens build up before it sends: it
/// waits for a whole GSO run's worth of tokens rather than waking for every
/// datagram, but never longer than this.
const MAX_BATCH_WAIT: Duration = Duration::from_millis(1);

/// Counters of a [`DiodeSender`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DiodeSenderStats {
    /// The protocol core's counters.
    pub protocol: SenderStats,
    /// Send calls to the sockets (each a run of datagrams with GSO).
    pub sends: u64,
    /// Send calls that failed; their datagrams are lost, as on the wire.
    pub send_errors: u64,
    /// Each port's counters, in the order of
    /// [`SocketOptions::ports`](crate::SocketOptions::ports) (one entry
    /// without ports).
    pub ports: Vec<SenderPortStats>,
}

/// Where a session stands, as its writer sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Open,
    Finishing,
    Sent(u64),
    Aborted,
}

#[derive(Debug)]
struct State {
    core: Sender,
    slots: HashMap<DiodeSessionId, Slot>,
    /// To the encode workers; `None` once stopping.
    jobs: Option<mpsc::Sender<EncodeJob>>,
    /// No new work: the driver makes a last pass (abort datagrams) and exits.
    stopping: bool,
    /// The driver thread has exited.
    stopped: bool,
}

impl State {
    /// Hands every block waiting to be encoded to the workers.
    fn dispatch(&mut self, shared: &Shared) {
        let mut any = false;
        while let Some(job) = self.core.poll_encode() {
            any = true;
            match &self.jobs {
                Some(tx) => {
                    if tx.send(job).is_err() {
                        break;
                    }
                }
                None => break,
            }
        }
        if any {
            // Jobs of aborted sessions pass without a worker: the driver may
            // have a block to send now.
            shared.driver.notify_one();
        }
    }

    fn check_open(&self, id: DiodeSessionId) -> Result<(), DiodeError> {
        match self.slots.get(&id) {
            Some(Slot::Open) if !self.stopping => Ok(()),
            Some(Slot::Open) => Err(DiodeError::Closed("sender")),
            _ => Err(DiodeError::SessionAborted),
        }
    }

    /// Aborts every session still open or going out.
    fn abort_all(&mut self) {
        for (id, slot) in &mut self.slots {
            if matches!(slot, Slot::Open | Slot::Finishing) {
                let _ = self.core.abort(*id);
                *slot = Slot::Aborted;
            }
        }
    }
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Wakes the driver thread.
    driver: Condvar,
    /// Wakes writers, finishers and `close`.
    app: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.app
            .wait(guard)
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The sending end of a diode on a real UDP socket.
///
/// [`bind`](Self::bind) opens the socket and starts a driver thread and a pool
/// of encode workers. [`open`](Self::open) starts a session — one byte
/// stream — and returns its [`SessionWriter`], a blocking
/// [`std::io::Write`]. The driver encodes each block on the workers and sends
/// its datagrams paced to the configured `bandwidth` (runs of equal-size
/// datagrams go to the kernel in one GSO call where the platform has it),
/// with a heartbeat every `heartbeat`.
///
/// ```no_run
/// use std::io::Write;
/// use ferry_diode::{DiodeSender, SocketOptions};
/// use ferry_proto::diode::DiodeConfig;
///
/// let sender = DiodeSender::bind(
///     "0.0.0.0:0".parse()?,
///     "192.0.2.7:5000".parse()?,
///     DiodeConfig::default(),
///     SocketOptions::default(),
/// )?;
/// let mut session = sender.open()?;
/// session.write_all(b"one way only")?;
/// let bytes = session.finish()?; // every datagram handed to the socket
/// assert_eq!(bytes, 12);
/// sender.close()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct DiodeSender {
    shared: Arc<Shared>,
    driver: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
    /// The lanes' send threads (none with one port).
    lanes: Vec<JoinHandle<()>>,
    /// Each port: its local address, destination and counters.
    ports: Vec<(SocketAddr, SocketAddr, Arc<LaneCounters>)>,
    buffer: BufferCheck,
}

impl DiodeSender {
    /// Binds a UDP socket on `local` and starts sending to `to`: heartbeats at
    /// once, sessions as they are opened.
    ///
    /// With [`SocketOptions::ports`], one socket per port sends to `to`'s IP
    /// at that port: the first socket is bound on `local`, the others on
    /// `local`'s IP at a port the system chooses.
    ///
    /// Logs a warning when the kernel grants a smaller send buffer than
    /// `bandwidth` needs (see [`buffer_check`](Self::buffer_check)).
    ///
    /// Fails with [`DiodeError::Config`] when `config` is invalid (the message
    /// names the key), [`DiodeError::AddrInUse`] and its siblings when the
    /// address cannot be bound, [`DiodeError::AddressFamily`] when `local`
    /// and `to` are of different families.
    pub fn bind(
        local: SocketAddr,
        to: SocketAddr,
        config: DiodeConfig,
        options: SocketOptions,
    ) -> Result<Self, DiodeError> {
        config.validate()?;
        if local.is_ipv4() != to.is_ipv4() && !(local.is_ipv6() && local.ip().is_unspecified()) {
            return Err(DiodeError::AddressFamily { local, to });
        }
        let destinations = spread(to, &options.ports);
        let check = BufferCheck::new(
            &config,
            BufferSide::Send,
            options.send_buffer,
            destinations.len(),
        );
        let mut lanes = Vec::new();
        let mut buffer: Option<BufferCheck> = None;
        for (i, &destination) in destinations.iter().enumerate() {
            let from = if i == 0 {
                local
            } else {
                SocketAddr::new(local.ip(), 0)
            };
            let (lane, granted) = Lane::open(from, destination, check.clone())?;
            if buffer.as_ref().is_none_or(|b| granted.granted < b.granted) {
                buffer = Some(granted);
            }
            lanes.push(lane);
        }
        let buffer = buffer.unwrap_or(check);
        let ports: Vec<_> = lanes
            .iter()
            .zip(&destinations)
            .map(|(lane, &to)| (lane.local_addr(), to, Arc::clone(&lane.counters)))
            .collect();
        let local_addr = ports[0].0;
        let (tx, rx) = mpsc::channel::<EncodeJob>();
        let heartbeat = config.heartbeat;
        let datagram = config.datagram_size();
        let bandwidth = config.bandwidth;
        let max_burst = config.max_burst;
        let core = Sender::new(config, seed(), Instant::now())?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                core,
                slots: HashMap::new(),
                jobs: Some(tx),
                stopping: false,
                stopped: false,
            }),
            driver: Condvar::new(),
            app: Condvar::new(),
        });
        let mut sender = Self {
            shared: Arc::clone(&shared),
            driver: None,
            workers: Vec::new(),
            lanes: Vec::new(),
            ports,
            buffer,
        };
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..options.worker_threads() {
            let shared = Arc::clone(&shared);
            let rx = Arc::clone(&rx);
            let handle = std::thread::Builder::new()
                .name(format!("diode-encode-{i}"))
                .spawn(move || encode_worker(&shared, &rx))
                .map_err(|source| DiodeError::Thread {
                    what: "encode worker",
                    source,
                })?;
            sender.workers.push(handle);
        }
        let (output, lane_threads) = Output::start(lanes)?;
        sender.lanes = lane_threads;
        let driver = Driver {
            shared,
            output,
            datagram,
            heartbeat,
            batch_wait: batch_wait(datagram, bandwidth, max_burst),
            sent_marks: Vec::new(),
        };
        let handle = std::thread::Builder::new()
            .name("diode-send".into())
            .spawn(move || driver.run())
            .map_err(|source| DiodeError::Thread {
                what: "sender driver",
                source,
            })?;
        sender.driver = Some(handle);
        debug!(local = %local_addr, ?destinations, "diode sender started");
        Ok(sender)
    }

    /// Opens a session: a new byte stream, one connection's worth of data.
    /// Fails with [`DiodeError::TooManySessions`] when `max_sessions` are
    /// open (a finished session counts until its last datagram left), and
    /// [`DiodeError::Closed`] when the sender is closing.
    pub fn open(&self) -> Result<SessionWriter, DiodeError> {
        let mut state = self.shared.lock();
        if state.stopping {
            return Err(DiodeError::Closed("sender"));
        }
        let id = state.core.open().map_err(|e| match e {
            SenderError::TooManySessions(n) => DiodeError::TooManySessions(n),
            SenderError::UnknownSession(_) => DiodeError::Closed("sender"),
        })?;
        state.slots.insert(id, Slot::Open);
        debug!(session = %id, "diode session opened");
        Ok(SessionWriter {
            shared: Arc::clone(&self.shared),
            id,
            done: false,
        })
    }

    /// Counters of the protocol and the sockets.
    pub fn stats(&self) -> DiodeSenderStats {
        let protocol = self.shared.lock().core.stats().clone();
        let ports: Vec<SenderPortStats> = self
            .ports
            .iter()
            .map(|(local, to, counters)| counters.stats(*local, *to))
            .collect();
        DiodeSenderStats {
            protocol,
            sends: ports.iter().map(|p| p.sends).sum(),
            send_errors: ports.iter().map(|p| p.send_errors).sum(),
            ports,
        }
    }

    /// The address the (first) socket is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.ports[0].0
    }

    /// The addresses every socket is bound to, one per port.
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.ports.iter().map(|p| p.0).collect()
    }

    /// Where the datagrams go (the first port's destination).
    pub fn destination(&self) -> SocketAddr {
        self.ports[0].1
    }

    /// Where the datagrams go, one destination per port.
    pub fn destinations(&self) -> Vec<SocketAddr> {
        self.ports.iter().map(|p| p.1).collect()
    }

    /// The send buffer granted, against what `bandwidth` needs (the smallest
    /// of the sockets' when there are several). `bind` logs it as a warning
    /// when short; its `Display` says what to do.
    pub fn buffer_check(&self) -> &BufferCheck {
        &self.buffer
    }

    /// Closes the sender gracefully: waits until every finished session has
    /// gone out, aborts the sessions still open (their writers get
    /// [`DiodeError::SessionAborted`]), sends the abort datagrams, then stops
    /// the threads. Heartbeats stop with it: the receiver will report
    /// `HeartbeatMissing`.
    pub fn close(mut self) -> Result<(), DiodeError> {
        {
            let mut state = self.shared.lock();
            while !state.stopped && state.slots.values().any(|s| *s == Slot::Finishing) {
                state = self.shared.wait(state);
            }
            for slot in state.slots.values_mut() {
                if *slot == Slot::Open {
                    *slot = Slot::Aborted;
                }
            }
            let open: Vec<DiodeSessionId> = state
                .slots
                .iter()
                .filter(|(_, s)| **s == Slot::Aborted)
                .map(|(id, _)| *id)
                .collect();
            for id in open {
                let _ = state.core.abort(id);
            }
            let shared = Arc::clone(&self.shared);
            state.dispatch(&shared);
            self.shared.driver.notify_one();
            self.shared.app.notify_all();
            while !state.stopped && !state.core.is_idle() {
                state = self.shared.wait(state);
            }
            if state.stopped {
                return Err(DiodeError::Closed("sender"));
            }
        }
        self.stop();
        Ok(())
    }

    /// Stops the threads, aborting whatever is still open or going out.
    fn stop(&mut self) {
        {
            let mut state = self.shared.lock();
            state.abort_all();
            state.stopping = true;
            state.jobs = None;
        }
        self.shared.driver.notify_one();
        self.shared.app.notify_all();
        if let Some(driver) = self.driver.take() {
            let _ = driver.join();
        }
        // The driver dropped the lanes' queues: they send what is left, then
        // end.
        for lane in self.lanes.drain(..) {
            let _ = lane.join();
        }
        for worker in self.workers.drain(..) {
            let _ = worker.join();
        }
    }
}

impl Drop for DiodeSender {
    /// Stops at once: sessions still open or going out are aborted (the
    /// receiver is told), the threads stop. Use [`close`](Self::close) to let
    /// finished sessions go out first.
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long the driver waits for pacing tokens to build up: one GSO run's
/// worth, at most [`MAX_BATCH_WAIT`] and half the burst.
fn batch_wait(datagram: usize, bandwidth: u64, max_burst: usize) -> Duration {
    let run = (MAX_GSO_BYTES / datagram).max(1) * datagram;
    let bytes = run.min(max_burst / 2);
    Duration::from_secs_f64(bytes as f64 * 8.0 / bandwidth as f64).min(MAX_BATCH_WAIT)
}

fn encode_worker(shared: &Shared, jobs: &Mutex<mpsc::Receiver<EncodeJob>>) {
    loop {
        let job = match lock(jobs).recv() {
            Ok(job) => job,
            Err(_) => return,
        };
        let Ok(block) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run())) else {
            error!("an encode job panicked: the sender cannot send anything more");
            continue;
        };
        shared.lock().core.handle_encoded(block);
        shared.driver.notify_one();
    }
}

/// The driver thread: sends what the core hands out, when pacing allows.
#[derive(Debug)]
struct Driver {
    shared: Arc<Shared>,
    output: Output,
    datagram: usize,
    heartbeat: Duration,
    batch_wait: Duration,
    /// Sessions whose last datagram went to a lane's queue, with what the
    /// lanes must have sent before the session counts as sent.
    sent_marks: Vec<(DiodeSessionId, u64, Vec<u64>)>,
}

impl Driver {
    fn run(mut self) {
        let mut buf = vec![0u8; MAX_GSO_BYTES.max(self.datagram)];
        let shared = Arc::clone(&self.shared);
        let mut state = shared.lock();
        let segments = self
            .output
            .max_gso_segments()
            .min(MAX_GSO_BYTES / self.datagram)
            .max(1);
        loop {
            let now = Instant::now();
            state.core.handle_timeout(now);
            loop {
                let room = (segments * self.datagram).min(buf.len());
                let Some(t) = state.core.poll_transmit(now, &mut buf[..room]) else {
                    break;
                };
                drop(state);
                self.output.send(&mut buf, t.len, t.segment_size);
                state = shared.lock();
            }
            let mut wake = false;
            while let Some(event) = state.core.poll_event() {
                wake = true;
                if let SenderEvent::SessionSent { session, bytes } = event {
                    match self.output.mark() {
                        None => mark_sent(&mut state, session, bytes),
                        Some(mark) => self.sent_marks.push((session, bytes, mark)),
                    }
                }
            }
            let output = &self.output;
            self.sent_marks.retain(|(session, bytes, mark)| {
                if output.reached(mark) {
                    mark_sent(&mut state, *session, *bytes);
                    wake = true;
                    false
                } else {
                    true
                }
            });
            if wake || state.core.is_idle() {
                shared.app.notify_all();
            }
            if state.stopping {
                break;
            }
            let mut next = state
                .core
                .poll_timeout()
                .unwrap_or(now + self.heartbeat)
                .max(now + self.batch_wait);
            if !self.sent_marks.is_empty() {
                // Look again soon: the lanes are sending the last runs.
                next = next.min(now + MAX_BATCH_WAIT);
            }
            let wait = next.saturating_duration_since(Instant::now());
            if !wait.is_zero() {
                state = shared
                    .driver
                    .wait_timeout(state, wait)
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .0;
            }
        }
        state.stopped = true;
        drop(state);
        shared.app.notify_all();
        debug!("diode sender driver stopped");
    }
}

/// Marks a session sent: every datagram of it is on the wire.
fn mark_sent(state: &mut State, session: DiodeSessionId, bytes: u64) {
    if let Some(slot) = state.slots.get_mut(&session) {
        debug!(%session, bytes, "diode session sent");
        *slot = Slot::Sent(bytes);
    }
}

/// One session's byte stream, to write into: a blocking [`io::Write`].
///
/// [`write`](io::Write::write) blocks while `max_blocks_in_flight` blocks of
/// the session wait for the wire (backpressure: memory stays bounded, and the
/// writer goes at the configured `bandwidth`). [`flush`](io::Write::flush)
/// sends the partly filled block now: call it when the source has nothing
/// more to give for a while, because the receiver loses a session that
/// stays silent for `session_expiration_timeout`. End with
/// [`finish`](Self::finish); dropping the writer without finishing aborts
/// the session (the receiver discards it).
#[derive(Debug)]
pub struct SessionWriter {
    shared: Arc<Shared>,
    id: DiodeSessionId,
    done: bool,
}

impl SessionWriter {
    /// The session's id, as the receiver will report it.
    pub fn id(&self) -> DiodeSessionId {
        self.id
    }

    fn write_some(&mut self, data: &[u8]) -> Result<usize, DiodeError> {
        if data.is_empty() {
            return Ok(0);
        }
        let mut state = self.shared.lock();
        loop {
            state.check_open(self.id)?;
            let n = state
                .core
                .write(self.id, data)
                .map_err(|_| DiodeError::SessionAborted)?;
            if n > 0 {
                state.dispatch(&self.shared);
                return Ok(n);
            }
            state = self.shared.wait(state);
        }
    }

    fn flush_block(&mut self) -> Result<(), DiodeError> {
        let mut state = self.shared.lock();
        loop {
            state.check_open(self.id)?;
            let flushed = state
                .core
                .flush(self.id)
                .map_err(|_| DiodeError::SessionAborted)?;
            if flushed {
                state.dispatch(&self.shared);
                return Ok(());
            }
            // `flush` declines when the block is empty (then there is room to
            // write) or when the session's blocks in flight are at their
            // limit (then there is none): wait for room and try again.
            if state.core.writable(self.id) > 0 {
                return Ok(());
            }
            state = self.shared.wait(state);
        }
    }

    /// Ends the session and waits until its last datagram was handed to the
    /// socket; returns its length in bytes. The receiver reports it finished
    /// only once the length and BLAKE3 digest carried at the end match.
    pub fn finish(mut self) -> Result<u64, DiodeError> {
        self.done = true;
        let mut state = self.shared.lock();
        if let Err(e) = state.check_open(self.id).and_then(|()| {
            state
                .core
                .finish(self.id)
                .map_err(|_| DiodeError::SessionAborted)
        }) {
            if state.slots.remove(&self.id) == Some(Slot::Open) {
                let _ = state.core.abort(self.id);
            }
            return Err(e);
        }
        state.slots.insert(self.id, Slot::Finishing);
        state.dispatch(&self.shared);
        loop {
            match state.slots.get(&self.id) {
                Some(Slot::Sent(bytes)) => {
                    let bytes = *bytes;
                    state.slots.remove(&self.id);
                    return Ok(bytes);
                }
                Some(Slot::Finishing) if !state.stopped => {}
                _ => {
                    state.slots.remove(&self.id);
                    return Err(DiodeError::SessionAborted);
                }
            }
            state = self.shared.wait(state);
        }
    }

    /// Abandons the session: what was not sent is dropped, and the receiver
    /// is told to discard what it got.
    pub fn abort(mut self) {
        self.abort_session();
    }

    fn abort_session(&mut self) {
        self.done = true;
        let mut state = self.shared.lock();
        if let Some(Slot::Open | Slot::Finishing) = state.slots.remove(&self.id) {
            let _ = state.core.abort(self.id);
            debug!(session = %self.id, "diode session aborted");
            state.dispatch(&self.shared);
            self.shared.driver.notify_one();
        }
    }
}

impl io::Write for SessionWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.write_some(buf)?)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(self.flush_block()?)
    }
}

impl Drop for SessionWriter {
    fn drop(&mut self) {
        if !self.done {
            self.abort_session();
        }
    }
}
