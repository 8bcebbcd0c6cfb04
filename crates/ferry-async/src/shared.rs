//! The state the driver and the handles share, behind one lock (one per
//! shard).

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::Waker;

use bytes::{Bytes, BytesMut};
use ferry_proto::{
    CloseReason, Endpoint, Event, SendProgress, SessionId, SessionStats, Side, StreamEnd, StreamId,
};

use crate::manager::ClosedEvent;
use crate::session::SessionRef;

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
    /// An incoming session waiting for the application's decision, queued
    /// in [`State::pending`] or held as an [`Incoming`](crate::Incoming):
    /// kept until decided, whatever happens to it.
    pub(crate) undecided: bool,
    /// Accepted through an [`Incoming`](crate::Incoming): not for the
    /// `accept` queue.
    pub(crate) decided: bool,
    /// Final counters, kept once the endpoint forgot the session.
    pub(crate) final_stats: Option<SessionStats>,
    pub(crate) readers: WakerSet,
    pub(crate) writers: WakerSet,
    pub(crate) datagram_readers: WakerSet,
    pub(crate) watchers: WakerSet,
    /// Tasks waiting in an `acknowledged` call (on the session or one of
    /// its streams), woken when the session's acknowledgements move (see
    /// [`State::wake_acknowledged`]) or it ends.
    pub(crate) acked: WakerSet,
    pub(crate) datagrams: VecDeque<Bytes>,
    /// Streams the peer opened, not yet taken by `Session::accept_stream`.
    pub(crate) incoming_streams: VecDeque<StreamId>,
    /// Tasks waiting in `Session::accept_stream`.
    pub(crate) stream_acceptors: WakerSet,
    /// What the handles of each stream wait for: every stream this side
    /// opened or the peer opened, until its last handle is gone and its end
    /// is known.
    pub(crate) streams: HashMap<StreamId, StreamWaiters>,
    /// The handles' shared part, while any handle exists: every handle on the
    /// session (from `connect`, `accept` or `Endpoint::session`) is a clone of
    /// it. A session nobody holds is forgotten once closed. A `Weak` that no
    /// longer upgrades means the last handle is being dropped: its drop is
    /// about to close the session, so no new handle may be made.
    pub(crate) handle: Option<Weak<SessionRef>>,
}

impl Waiters {
    /// Whether a handle exists (or is being dropped).
    pub(crate) fn held(&self) -> bool {
        self.handle.is_some()
    }
}

impl Waiters {
    fn wake_all(&mut self) {
        self.readers.wake();
        self.writers.wake();
        self.datagram_readers.wake();
        self.watchers.wake();
        self.acked.wake();
        self.stream_acceptors.wake();
        for stream in self.streams.values_mut() {
            stream.wake_all();
        }
    }

    /// Wakes the writers of the session and of every stream: the send buffer
    /// is shared by them all.
    fn wake_writers(&mut self) {
        self.writers.wake();
        for stream in self.streams.values_mut() {
            stream.writers.wake();
        }
    }
}

/// What the handles of one stream wait for.
#[derive(Debug, Default)]
pub(crate) struct StreamWaiters {
    /// How the peer's side ended, once the core reported it.
    pub(crate) end: Option<StreamEnd>,
    /// The last handle is gone: whatever the peer still sends is read and
    /// dropped as it arrives (so its credit returns and the stream can end),
    /// and the entry goes once the end is known.
    pub(crate) discarded: bool,
    /// This side reset its sending (a finish will never be acknowledged).
    pub(crate) reset_sent: bool,
    pub(crate) readers: WakerSet,
    pub(crate) writers: WakerSet,
    pub(crate) watchers: WakerSet,
}

impl StreamWaiters {
    fn wake_all(&mut self) {
        self.readers.wake();
        self.writers.wake();
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
    /// Incoming sessions waiting for the application's decision
    /// (`Config::decide_incoming`), for `Endpoint::incoming`.
    pub(crate) pending: VecDeque<SessionId>,
    /// Tasks waiting in `Endpoint::incoming`.
    pub(crate) deciders: WakerSet,
    pub(crate) driver: Option<Waker>,
    /// The driver is inside its poll: a handle that queues work sets
    /// `driver_kicked` instead of waking it (a wake would only schedule a
    /// second poll, on a runtime with other threads a busy one), and the
    /// driver looks at the flag, under the lock, before it sleeps.
    pub(crate) driver_polling: bool,
    /// Work was queued while the driver polled.
    pub(crate) driver_kicked: bool,
    /// `Endpoint::close` was called or the last endpoint handle dropped.
    pub(crate) closing: bool,
    /// The driver has stopped; nothing more will happen.
    pub(crate) stopped: bool,
    pub(crate) stop_watchers: WakerSet,
    /// Sessions with a task waiting in an `acknowledged` call, each with
    /// its [`send_totals`](ferry_proto::Session::send_totals) when the task
    /// last looked: the driver wakes the tasks once they differ.
    pub(crate) ack_watch: HashMap<SessionId, SendProgress>,
    /// The subscriptions to closed sessions, by subscription number.
    pub(crate) closed_subscribers: BTreeMap<u64, ClosedQueue>,
    /// The number of the next subscription.
    pub(crate) next_subscriber: u64,
    /// Datagrams for this shard's sessions that reached another shard's
    /// socket, handed over by that shard's driver and waiting for this
    /// one's (at most [`INBOX_CAPACITY`](crate::shards::INBOX_CAPACITY);
    /// always empty with one shard).
    pub(crate) inbox: VecDeque<(SocketAddr, BytesMut)>,
    /// Datagrams handed to this shard by the others, since the start.
    pub(crate) handed_over: u64,
    /// Datagrams for this shard dropped because its inbox was full.
    pub(crate) inbox_dropped: u64,
    /// The fallback transport's connections, when the endpoint has it: a
    /// session's [`Transport`](crate::Transport) is looked up there.
    pub(crate) fallback: Option<Arc<crate::fallback::Hub>>,
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
            pending: VecDeque::new(),
            deciders: WakerSet::default(),
            driver: None,
            driver_polling: false,
            driver_kicked: false,
            closing: false,
            stopped: false,
            stop_watchers: WakerSet::default(),
            ack_watch: HashMap::new(),
            closed_subscribers: BTreeMap::new(),
            next_subscriber: 0,
            inbox: VecDeque::new(),
            handed_over: 0,
            inbox_dropped: 0,
            fallback: None,
            datagram_queue,
        }
    }

    /// Asks the driver to run: commands queued output, or freed credit.
    pub(crate) fn wake_driver(&mut self) {
        if self.driver_polling {
            self.driver_kicked = true;
        } else if let Some(w) = &self.driver {
            w.wake_by_ref();
        }
    }

    pub(crate) fn waiters(&mut self, id: SessionId) -> &mut Waiters {
        self.sessions.entry(id).or_default()
    }

    /// Why the session ended, if it did (or the endpoint stopped under it).
    pub(crate) fn closed_reason(&self, id: SessionId) -> Option<CloseReason> {
        self.sessions.get(&id).and_then(|w| w.closed.clone())
    }

    /// The decision on an incoming session was made (or it left the
    /// queue): its waiters go if nothing else needs them.
    pub(crate) fn release_undecided(&mut self, id: SessionId) {
        if let Some(w) = self.sessions.get_mut(&id) {
            w.undecided = false;
            if w.closed.is_some() && !w.held() && !self.incoming.contains(&id) {
                self.sessions.remove(&id);
            }
        }
    }

    /// Whether the manager counts `id` as open: the endpoint holds it, it is
    /// neither waiting for a decision, closing nor closed, and the driver
    /// still runs.
    pub(crate) fn is_open(&mut self, id: SessionId) -> bool {
        if self.stopped || self.closed_reason(id).is_some() {
            return false;
        }
        self.endpoint.session(id).is_some_and(|s| {
            !matches!(
                s.state(),
                ferry_proto::State::Incoming
                    | ferry_proto::State::Closing
                    | ferry_proto::State::Closed
            )
        })
    }

    /// The open sessions (see [`is_open`](Self::is_open)), in id order.
    pub(crate) fn open_sessions(&mut self) -> Vec<SessionId> {
        if self.stopped {
            return Vec::new();
        }
        // One pass over the endpoint's states, no handle per session.
        self.endpoint
            .session_states()
            .filter(|(id, state)| {
                !matches!(
                    state,
                    ferry_proto::State::Incoming
                        | ferry_proto::State::Closing
                        | ferry_proto::State::Closed
                ) && self.closed_reason(*id).is_none()
            })
            .map(|(id, _)| id)
            .collect()
    }

    /// Wakes the tasks waiting in an `acknowledged` call on a session whose
    /// acknowledgements moved since they looked (its
    /// [`send_totals`](ferry_proto::Session::send_totals) changed: a message
    /// or a finish acknowledged, messages dropped or given up) or that is
    /// gone. The driver calls this after each round of datagrams and timers;
    /// a handle that resets a stream, too. Costs nothing when no task waits.
    pub(crate) fn wake_acknowledged(&mut self) {
        if self.ack_watch.is_empty() {
            return;
        }
        let (endpoint, sessions) = (&mut self.endpoint, &mut self.sessions);
        self.ack_watch.retain(|&id, seen| {
            if endpoint
                .session(id)
                .is_some_and(|s| s.send_totals() == *seen)
            {
                return true;
            }
            if let Some(w) = sessions.get_mut(&id) {
                w.acked.wake();
            }
            false
        });
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
                    if listener && !w.decided {
                        self.incoming.push_back(session);
                        self.acceptors.wake();
                    }
                }
                Event::Incoming { session } => {
                    let remote = self.endpoint.session(session).map(|s| s.remote_addr());
                    let w = self.waiters(session);
                    w.remote = remote;
                    w.undecided = true;
                    self.pending.push_back(session);
                    self.deciders.wake();
                }
                Event::Readable { session } => self.waiters(session).readers.wake(),
                Event::StreamOpened { session, stream } => {
                    let w = self.waiters(session);
                    w.streams.entry(stream).or_default();
                    w.incoming_streams.push_back(stream);
                    w.stream_acceptors.wake();
                }
                Event::StreamReadable { session, stream } => {
                    let Some(w) = self.sessions.get_mut(&session) else {
                        continue;
                    };
                    match w.streams.get_mut(&stream) {
                        Some(s) if s.discarded => {
                            // Nobody will read it: drop what came, which
                            // returns its credit to the peer.
                            if let Some(mut s) = self.endpoint.session(session) {
                                while s.recv_on(stream).is_some() {}
                            }
                            self.wake_driver();
                        }
                        Some(s) => s.readers.wake(),
                        None => {}
                    }
                }
                Event::StreamClosed {
                    session,
                    stream,
                    end,
                } => {
                    let Some(w) = self.sessions.get_mut(&session) else {
                        continue;
                    };
                    if let Some(s) = w.streams.get_mut(&stream) {
                        if s.discarded {
                            w.streams.remove(&stream);
                        } else {
                            s.end = Some(end);
                            s.wake_all();
                        }
                    }
                    // A refusal ends a wait for the stream's acknowledgement.
                    w.acked.wake();
                }
                Event::SendReady { session } => self.waiters(session).wake_writers(),
                // Read when asked for (`Session::ticket`).
                Event::Ticket { .. } => {}
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
                    let w = self.sessions.entry(session).or_default();
                    w.closed = Some(reason.clone());
                    w.final_stats = stats;
                    w.wake_all();
                    if w.undecided
                        && let Some(at) = self.pending.iter().position(|&id| id == session)
                    {
                        // Ended while queued for `Endpoint::incoming`: it
                        // leaves the queue, which so holds only requests
                        // still waiting (at most `max_pending_handshakes`).
                        self.pending.remove(at);
                        w.undecided = false;
                    }
                    if !w.held() && !w.undecided && !self.incoming.contains(&session) {
                        self.sessions.remove(&session);
                    }
                    for queue in self.closed_subscribers.values_mut() {
                        queue.push(session, reason.clone());
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
        self.deciders.wake();
        self.stop_watchers.wake();
        for queue in self.closed_subscribers.values_mut() {
            queue.wake();
        }
    }
}

/// One subscription's queue of closed sessions, bounded: when it is full the
/// oldest event is dropped and counted, and the count is handed out (as
/// [`ClosedEvent::Missed`]) before any event still queued, so the subscriber
/// learns where the gap was.
#[derive(Debug)]
pub(crate) struct ClosedQueue {
    events: VecDeque<(SessionId, CloseReason)>,
    capacity: usize,
    /// Events dropped since the subscriber last took one.
    missed: u64,
    /// The task waiting in `ClosedEvents::next`.
    waker: Option<Waker>,
}

impl ClosedQueue {
    /// A queue holding at most `capacity` events (at least one).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        Self {
            events: VecDeque::with_capacity(capacity.min(64)),
            capacity,
            missed: 0,
            waker: None,
        }
    }

    /// Queues a closed session, dropping the oldest event if full, and wakes
    /// the subscriber.
    pub(crate) fn push(&mut self, id: SessionId, reason: CloseReason) {
        if self.events.len() >= self.capacity {
            self.events.pop_front();
            self.missed = self.missed.saturating_add(1);
        }
        self.events.push_back((id, reason));
        self.wake();
    }

    /// The next event: first how many were missed, if any, then the oldest
    /// queued closed session.
    pub(crate) fn pop(&mut self) -> Option<ClosedEvent> {
        if self.missed > 0 {
            return Some(ClosedEvent::Missed(std::mem::take(&mut self.missed)));
        }
        self.events
            .pop_front()
            .map(|(id, reason)| ClosedEvent::Closed { id, reason })
    }

    /// Remembers the task to wake on the next push (the latest one only: a
    /// subscription has one reader).
    pub(crate) fn register(&mut self, waker: &Waker) {
        if !self.waker.as_ref().is_some_and(|w| w.will_wake(waker)) {
            self.waker = Some(waker.clone());
        }
    }

    /// Wakes the waiting task, if any.
    pub(crate) fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

/// The lock around [`State`]: one per shard.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Set (under the lock) when another shard's driver put a datagram in
    /// [`State::inbox`], cleared by this shard's driver before it empties
    /// the inbox: the driver looks at the inbox without taking the lock
    /// when nothing came.
    handed: AtomicBool,
}

impl Shared {
    pub(crate) fn new(endpoint: Endpoint) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State::new(endpoint)),
            handed: AtomicBool::new(false),
        })
    }

    /// Locks the state. A panic while holding the lock cannot leave the protocol
    /// state half-updated in a way that matters more than the panic itself, so a
    /// poisoned lock is entered anyway.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Notes that the inbox holds datagrams (called under the lock, after
    /// pushing them).
    pub(crate) fn mark_handed(&self) {
        self.handed.store(true, Ordering::Release);
    }

    /// Whether datagrams were handed over since the last call; clears the
    /// mark.
    pub(crate) fn take_handed(&self) -> bool {
        self.handed.swap(false, Ordering::AcqRel)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use super::*;

    fn id(n: u64) -> SessionId {
        SessionId::from(n)
    }

    fn closed(n: u64) -> ClosedEvent {
        ClosedEvent::Closed {
            id: id(n),
            reason: CloseReason::Remote {
                code: n,
                reason: Default::default(),
            },
        }
    }

    fn push(q: &mut ClosedQueue, n: u64) {
        q.push(
            id(n),
            CloseReason::Remote {
                code: n,
                reason: Default::default(),
            },
        );
    }

    #[test]
    fn events_come_out_in_order() {
        let mut q = ClosedQueue::new(4);
        assert_eq!(q.pop(), None);
        for n in 0..3 {
            push(&mut q, n);
        }
        assert_eq!(q.pop(), Some(closed(0)));
        assert_eq!(q.pop(), Some(closed(1)));
        assert_eq!(q.pop(), Some(closed(2)));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn a_full_queue_drops_the_oldest_and_reports_the_gap_first() {
        let mut q = ClosedQueue::new(3);
        for n in 0..10 {
            push(&mut q, n);
        }
        // 0..7 were dropped; the newest three remain, after the count.
        assert_eq!(q.pop(), Some(ClosedEvent::Missed(7)));
        assert_eq!(q.pop(), Some(closed(7)));
        // A new overflow after some were taken: counted afresh, reported at
        // the gap (before what is still queued).
        for n in 10..13 {
            push(&mut q, n);
        }
        assert_eq!(q.pop(), Some(ClosedEvent::Missed(2)));
        assert_eq!(q.pop(), Some(closed(10)));
        assert_eq!(q.pop(), Some(closed(11)));
        assert_eq!(q.pop(), Some(closed(12)));
        assert_eq!(q.pop(), None);
    }

    #[test]
    fn the_queue_holds_at_most_its_capacity() {
        let mut q = ClosedQueue::new(5);
        for n in 0..1000 {
            push(&mut q, n);
            assert!(q.events.len() <= 5);
        }
        assert_eq!(q.pop(), Some(ClosedEvent::Missed(995)));
        assert_eq!(q.events.len(), 5);
    }

    #[test]
    fn capacity_zero_still_keeps_the_latest_event() {
        let mut q = ClosedQueue::new(0);
        push(&mut q, 1);
        push(&mut q, 2);
        assert_eq!(q.pop(), Some(ClosedEvent::Missed(1)));
        assert_eq!(q.pop(), Some(closed(2)));
        assert_eq!(q.pop(), None);
    }

    struct Counter(AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn acknowledgement_waiters_are_woken_when_the_totals_move_or_the_session_goes() {
        let endpoint = Endpoint::new(ferry_proto::Config::default(), 1).unwrap();
        let mut state = State::new(endpoint);
        let now = std::time::Instant::now();
        let session = state
            .endpoint
            .connect(now, "127.0.0.1:9".parse().unwrap())
            .unwrap();
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let totals = state.endpoint.session(session).unwrap().send_totals();
        let register = |state: &mut State, seen: SendProgress| {
            state.ack_watch.insert(session, seen);
            state.waiters(session).acked.register(&waker);
        };
        // Nothing moved: no wake-up, still watched.
        register(&mut state, totals);
        state.wake_acknowledged();
        assert_eq!(counter.0.load(Ordering::SeqCst), 0);
        assert!(state.ack_watch.contains_key(&session));
        // The totals moved since the task looked: woken once, unwatched.
        register(
            &mut state,
            SendProgress {
                acknowledged: 1,
                ..totals
            },
        );
        state.wake_acknowledged();
        state.wake_acknowledged();
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        assert!(state.ack_watch.is_empty());
        // A session the endpoint no longer holds: woken.
        register(&mut state, totals);
        state.ack_watch.insert(SessionId::from(999), totals);
        state.wake_acknowledged();
        assert_eq!(
            counter.0.load(Ordering::SeqCst),
            1,
            "its own session did not move"
        );
        assert!(!state.ack_watch.contains_key(&SessionId::from(999)));
    }

    #[test]
    fn a_request_that_ends_while_queued_leaves_the_queue_and_its_waiters() {
        let config = ferry_proto::Config {
            accept_incoming: true,
            decide_incoming: true,
            ..ferry_proto::Config::default()
        };
        let mut state = State::new(Endpoint::new(config.clone(), 1).unwrap());
        let mut client = Endpoint::new(ferry_proto::Config::default(), 2).unwrap();
        let now = std::time::Instant::now();
        let (client_addr, server_addr) = (
            "127.0.0.1:1000".parse().unwrap(),
            "127.0.0.1:2000".parse().unwrap(),
        );
        client.connect(now, server_addr).unwrap();
        let mut buf = Vec::new();
        while let Some(t) = client.poll_transmit(now, &mut buf) {
            state
                .endpoint
                .handle_datagram(now, client_addr, BytesMut::from(&buf[..t.size]));
        }
        state.dispatch_events();
        assert_eq!(state.pending.len(), 1);
        let id = state.pending[0];
        assert!(state.sessions[&id].undecided);
        assert!(!state.is_open(id), "not open before the decision");
        // Nobody takes it: the endpoint refuses it at its deadline.
        state
            .endpoint
            .handle_timeout(now + config.handshake_timeout);
        state.dispatch_events();
        assert!(state.pending.is_empty());
        assert!(!state.sessions.contains_key(&id));
    }

    #[test]
    fn a_push_wakes_the_registered_task_once() {
        let counter = Arc::new(Counter(AtomicUsize::new(0)));
        let waker = Waker::from(counter.clone());
        let mut q = ClosedQueue::new(2);
        q.register(&waker);
        q.register(&waker);
        push(&mut q, 1);
        push(&mut q, 2);
        assert_eq!(counter.0.load(Ordering::SeqCst), 1);
        q.register(&waker);
        push(&mut q, 3);
        assert_eq!(counter.0.load(Ordering::SeqCst), 2);
    }
}
