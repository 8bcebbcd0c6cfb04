//! The state the driver and the handles share, behind one lock.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use bytes::Bytes;
use ferry_proto::{CloseReason, Endpoint, Event, SessionId, SessionStats, Side};

/// Wakers of the tasks waiting for one thing.
#[derive(Debug, Default)]
pub(crate) struct WakerSet(Vec<Waker>);

impl WakerSet {
    pub(crate) fn register(&mut self, waker: &Waker) {
        if !self.0.iter().any(|w| w.will_wake(waker)) {
            self.0.push(waker.clone());
        }
    }

    pub(crate) fn wake(&mut self) {
        for w in self.0.drain(..) {
            w.wake();
        }
    }
}

/// What the handles of one session wait for.
#[derive(Debug, Default)]
pub(crate) struct Waiters {
    pub(crate) connected: bool,
    /// The peer's address, recorded when the handshake completed.
    pub(crate) remote: Option<SocketAddr>,
    pub(crate) closed: Option<CloseReason>,
    /// Final counters, kept once the endpoint forgot the session.
    pub(crate) final_stats: Option<SessionStats>,
    pub(crate) readers: WakerSet,
    pub(crate) writers: WakerSet,
    pub(crate) datagram_readers: WakerSet,
    pub(crate) watchers: WakerSet,
    pub(crate) datagrams: VecDeque<Bytes>,
    /// Whether a handle exists; a session nobody holds is forgotten once closed.
    pub(crate) held: bool,
}

impl Waiters {
    fn wake_all(&mut self) {
        self.readers.wake();
        self.writers.wake();
        self.datagram_readers.wake();
        self.watchers.wake();
    }
}

/// The endpoint and everything waiting on it.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) endpoint: Endpoint,
    pub(crate) sessions: HashMap<SessionId, Waiters>,
    pub(crate) incoming: VecDeque<SessionId>,
    pub(crate) acceptors: WakerSet,
    pub(crate) driver: Option<Waker>,
    /// `Endpoint::close` was called or the last endpoint handle dropped.
    pub(crate) closing: bool,
    /// The driver has stopped; nothing more will happen.
    pub(crate) stopped: bool,
    pub(crate) stop_watchers: WakerSet,
    datagram_queue: usize,
}

impl State {
    pub(crate) fn new(endpoint: Endpoint) -> Self {
        let datagram_queue = endpoint.config().datagram_queue;
        Self {
            endpoint,
            sessions: HashMap::new(),
            incoming: VecDeque::new(),
            acceptors: WakerSet::default(),
            driver: None,
            closing: false,
            stopped: false,
            stop_watchers: WakerSet::default(),
            datagram_queue,
        }
    }

    /// Asks the driver to run: commands queued output, or freed credit.
    pub(crate) fn wake_driver(&mut self) {
        if let Some(w) = &self.driver {
            w.wake_by_ref();
        }
    }

    pub(crate) fn waiters(&mut self, id: SessionId) -> &mut Waiters {
        self.sessions.entry(id).or_default()
    }

    /// Why the session ended, if it did (or the endpoint stopped under it).
    pub(crate) fn closed_reason(&self, id: SessionId) -> Option<CloseReason> {
        self.sessions.get(&id).and_then(|w| w.closed)
    }

    /// Hands every pending endpoint event to whoever waits for it.
    pub(crate) fn dispatch_events(&mut self) {
        while let Some(event) = self.endpoint.poll_event() {
            match event {
                Event::Connected { session } => {
                    let (listener, remote) = match self.endpoint.session(session) {
                        Some(s) => (s.side() == Side::Listener, Some(s.remote_addr())),
                        None => (false, None),
                    };
                    let w = self.waiters(session);
                    w.connected = true;
                    w.remote = remote;
                    w.watchers.wake();
                    if listener {
                        self.incoming.push_back(session);
                        self.acceptors.wake();
                    }
                }
                Event::Readable { session } => self.waiters(session).readers.wake(),
                // Streams beyond stream 0 are not exposed by the drivers yet.
                Event::StreamOpened { .. }
                | Event::StreamReadable { .. }
                | Event::StreamClosed { .. } => {}
                Event::SendReady { session } => self.waiters(session).writers.wake(),
                Event::Datagram { session, data } => {
                    let limit = self.datagram_queue;
                    let w = self.waiters(session);
                    if w.datagrams.len() >= limit {
                        w.datagrams.pop_front();
                    }
                    w.datagrams.push_back(data);
                    w.datagram_readers.wake();
                }
                Event::Closed { session, reason } => {
                    let stats = self.endpoint.closed_session_stats(session).cloned();
                    let w = self.waiters(session);
                    w.closed = Some(reason);
                    w.final_stats = stats;
                    w.wake_all();
                    if !w.held && !self.incoming.contains(&session) {
                        self.sessions.remove(&session);
                    }
                }
            }
        }
    }

    /// The driver stopped: every waiter learns it.
    pub(crate) fn stop(&mut self) {
        self.stopped = true;
        for w in self.sessions.values_mut() {
            w.wake_all();
        }
        self.acceptors.wake();
        self.stop_watchers.wake();
    }
}

/// The lock around [`State`].
#[derive(Debug)]
pub(crate) struct Shared(Mutex<State>);

impl Shared {
    pub(crate) fn new(endpoint: Endpoint) -> Arc<Self> {
        Arc::new(Self(Mutex::new(State::new(endpoint))))
    }

    /// Locks the state. A panic while holding the lock cannot leave the protocol
    /// state half-updated in a way that matters more than the panic itself, so a
    /// poisoned lock is entered anyway.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
