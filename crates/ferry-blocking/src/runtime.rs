//! The [`Runtime`] of the blocking driver: one thread, one poller, one future
//! per driver (an endpoint has one driver per shard).
//!
//! `ferry-async` asks a runtime for three things: a UDP socket with readiness,
//! a timer, and a way to run the driver future. Here all three meet in a
//! [`Reactor`] owned by one driver thread. `ferry-async` wraps a shard's
//! socket, makes its driver's timer and spawns the driver before it wraps the
//! next shard's socket, so the sockets wrapped since the last spawn are
//! registered with the reactor of the next thread spawned (the *pending*
//! reactor), and a timer records its deadline with whichever reactor runs on
//! the thread that polls it (the driver's own): a sharded endpoint gets a
//! thread and a poller per shard, which share nothing.
//!
//! - the **executor** polls the one future it was given; when the future is
//!   pending it sleeps in [`Poller::wait`] until a socket event, a wake-up
//!   ([`Poller::notify`]) or the earliest timer deadline, then polls again;
//! - the **socket** is registered level-triggered for reading (where the
//!   poller has level-triggered mode: epoll, kqueue, poll), so receiving
//!   until `WouldBlock` costs no `epoll_ctl`; write interest is armed only
//!   when a send would block, and dropped again once reported. Pollers
//!   without that mode arm oneshot interest per operation instead;
//! - the **timer** is a deadline: polling it before the deadline records the
//!   deadline as the executor's next wake-up time.
//!
//! # The wake-up path
//!
//! A blocking call (`Session::recv`, …) waits on its own thread until the
//! driver wakes it; the call the application makes next (the reply to the
//! message it just took, say) then wakes the driver to send. Each of those
//! wake-ups, done by sleeping and waking threads, costs a system call on one
//! side and a trip through the scheduler on the other (an inter-processor
//! interrupt when the threads are on different cores), several times what
//! the message costs to handle. So both sides spin briefly before sleeping,
//! yielding the CPU between checks, when a wake-up is likely soon:
//!
//! - the **driver**, when it has just woken a waiting handle, spins for up
//!   to [`HANDOFF_SPIN`] before it sleeps in the poller: the handle's next
//!   command (a reply, or the credit a `recv` returns) then costs the handle
//!   a store to an atomic flag — no `eventfd` write, none of the poller's
//!   system calls — and the driver acts on it at once;
//! - a **handle** waiting in `block_on` spins for up to
//!   [`WAIT_SPIN`](crate::block_on::WAIT_SPIN) before it parks, so the answer
//!   to a request that comes within a round trip wakes it without a futex.
//!
//! Both are adaptive: a spin that was not answered in time is skipped next
//! time until wake-ups come quickly again, so a quiet session or an idle
//! `accept` loop burns nothing, and a spin never delays a datagram's
//! processing by more than its length.
//!
//! Socket and timer never store the `Context`'s waker: every readiness event
//! and deadline wakes the executor, and the executor only has one future to
//! poll. They are therefore only meant for the driver future spawned right
//! after them.

use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::num::NonZeroUsize;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ferry_async::socket::{take_unreachable, udp_state};
use ferry_async::{AsyncTimer, AsyncUdpSocket, RecvMeta, Runtime, Transmit};
use polling::{Event, Events, PollMode, Poller};
use quinn_udp::{UdpSockRef, UdpSocketState};
use tracing::{debug, error};

use crate::block_on::take_handed_off;

/// The name of every driver thread.
pub(crate) const DRIVER_THREAD_NAME: &str = "ferry-driver";

/// How long the driver thread waits, spinning, for a wake-up after it woke a
/// parked handle, before it sleeps in the poller (see the module
/// documentation). Long enough for the woken thread to be scheduled and
/// answer; short enough that a handle that does not answer costs little CPU.
pub(crate) const HANDOFF_SPIN: Duration = Duration::from_micros(50);

/// Locks `mutex`, entering it even if a panic poisoned it: every value guarded
/// here stays consistent whatever line a panic interrupted.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

thread_local! {
    /// The earliest deadline of the timers found pending during the current
    /// poll of this thread's driver future.
    static NEXT_DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Which readiness a socket has asked the poller for and not yet been told of.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Interest {
    read: bool,
    write: bool,
}

/// A registered socket, as the executor sees it.
#[derive(Debug)]
struct Registration {
    /// The socket's descriptor: valid while registered (`Socket::drop`
    /// removes the registration before the socket is closed).
    fd: RawFd,
    interest: Arc<Mutex<Interest>>,
}

/// What the driver thread sleeps on.
struct Reactor {
    poller: Poller,
    /// How sockets are registered: [`PollMode::Level`] where the poller has
    /// it (read interest stays armed), [`PollMode::Oneshot`] elsewhere.
    mode: PollMode,
    /// A wake-up arrived since the executor last started polling the future.
    woken: AtomicBool,
    /// The executor is in, or about to enter, [`Poller::wait`]: a wake-up must
    /// notify the poller. While the executor is polling, a wake-up only sets
    /// `woken`, which costs no system call.
    sleeping: AtomicBool,
    /// Every registered socket, by poller key.
    sockets: Mutex<HashMap<usize, Registration>>,
    next_key: AtomicUsize,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("poller", &self.poller)
            .field("woken", &self.woken)
            .field("sleeping", &self.sleeping)
            .finish_non_exhaustive()
    }
}

impl Reactor {
    fn new() -> io::Result<Self> {
        let poller = Poller::new()?;
        let mode = if poller.supports_level() {
            PollMode::Level
        } else {
            PollMode::Oneshot
        };
        Ok(Self {
            poller,
            mode,
            woken: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            sockets: Mutex::new(HashMap::new()),
            next_key: AtomicUsize::new(0),
        })
    }

    /// A timer pending until `deadline`, polled on this thread, asks the
    /// thread's reactor to be woken then.
    fn wake_at(deadline: Instant) {
        NEXT_DEADLINE.with(|next| {
            next.set(Some(next.get().map_or(deadline, |d| d.min(deadline))));
        });
    }

    /// The interest a socket has armed from its registration on: reading,
    /// in level-triggered mode; nothing in oneshot mode.
    fn base_interest(&self) -> Interest {
        Interest {
            read: self.mode == PollMode::Level,
            write: false,
        }
    }

    /// The poller delivered `events`: their registrations are disarmed. In
    /// oneshot mode the poller disabled each source that reported; in
    /// level-triggered mode read interest stays armed, and write interest,
    /// once reported, is dropped (a socket is nearly always writable).
    fn disarm(&self, events: &Events) {
        let sockets = lock(&self.sockets);
        for event in events.iter() {
            let Some(registration) = sockets.get(&event.key) else {
                continue;
            };
            let mut interest = lock(&registration.interest);
            if self.mode != PollMode::Level {
                *interest = Interest::default();
                continue;
            }
            if event.writable && interest.write {
                // SAFETY: the descriptor stays open while registered: the
                // socket removes its registration (under the `sockets` lock,
                // held here) before it is closed.
                let fd = unsafe { BorrowedFd::borrow_raw(registration.fd) };
                match self
                    .poller
                    .modify_with_mode(fd, Event::readable(event.key), PollMode::Level)
                {
                    Ok(()) => interest.write = false,
                    Err(e) => error!(error = %e, "could not drop write interest"),
                }
            }
        }
    }

    /// Spins, yielding the CPU between checks, until a wake-up comes, for at
    /// most [`HANDOFF_SPIN`] (and not past `deadline`, the earliest timer's).
    /// Returns whether the future should be polled again at once: a wake-up
    /// came, or the deadline passed.
    fn spin_for_wake(&self, deadline: Option<Instant>) -> bool {
        let start = Instant::now();
        let end = start + HANDOFF_SPIN;
        loop {
            if self.woken.load(Ordering::SeqCst) {
                return true;
            }
            let now = Instant::now();
            if deadline.is_some_and(|d| now >= d) {
                return true;
            }
            if now >= end {
                return false;
            }
            thread::yield_now();
        }
    }

    /// Runs `future` to completion on the calling thread.
    fn run(self: &Arc<Self>, mut future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let mut events = Events::with_capacity(NonZeroUsize::new(16).expect("non-zero"));
        // Whether to spin after the next hand-off, and when the last one that
        // was not answered during a spin happened.
        let mut spin_next = true;
        let mut handed_off_at: Option<Instant> = None;
        loop {
            // A wake-up from here on is seen either by this poll or by the check
            // before sleeping.
            self.woken.store(false, Ordering::SeqCst);
            NEXT_DEADLINE.with(|next| next.set(None));
            if future.as_mut().poll(&mut cx).is_ready() {
                return;
            }
            let deadline = NEXT_DEADLINE.with(Cell::take);
            // Just woke a parked handle (a message arrived for it): its next
            // command is likely moments away, and cheaper caught awake.
            if take_handed_off() {
                if spin_next {
                    if self.spin_for_wake(deadline) {
                        continue;
                    }
                    // Not answered in time: the next hand-off sleeps at once,
                    // unless this one's answer still comes soon.
                    spin_next = false;
                }
                handed_off_at = Some(Instant::now());
            }
            // Dekker-style handshake with `Wake::wake_by_ref`: either the waker
            // sees `sleeping` and notifies the poller, or this check sees `woken`.
            self.sleeping.store(true, Ordering::SeqCst);
            if !self.woken.load(Ordering::SeqCst) {
                events.clear();
                let waited = match deadline {
                    Some(deadline) => self.poller.wait_deadline(&mut events, deadline),
                    None => self.poller.wait(&mut events, None),
                };
                match waited {
                    Ok(_) => self.disarm(&events),
                    Err(e) => {
                        // Not expected (EINTR is retried by `polling`); do not spin.
                        error!(error = %e, "waiting for socket events failed");
                        thread::sleep(Duration::from_millis(1));
                    }
                }
            }
            self.sleeping.store(false, Ordering::SeqCst);
            if let Some(at) = handed_off_at.take() {
                // A command came soon after all: spin again next time.
                spin_next = self.woken.load(Ordering::SeqCst) && at.elapsed() <= HANDOFF_SPIN;
            }
        }
    }
}

/// The driver future's waker: handles call it (through `ferry-async`'s shared
/// state) after queueing a command, and the driver calls it to yield.
impl Wake for Reactor {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.woken.swap(true, Ordering::SeqCst) && self.sleeping.load(Ordering::SeqCst) {
            if let Err(e) = self.poller.notify() {
                error!(error = %e, "could not wake the driver thread");
            }
        }
    }
}

/// A driver thread's end, which [`Endpoint::close`](crate::Endpoint::close)
/// waits for.
#[derive(Debug, Default)]
struct DriverExit {
    state: Mutex<ExitState>,
}

#[derive(Debug, Default)]
struct ExitState {
    exited: bool,
    waiters: Vec<Waker>,
}

impl DriverExit {
    fn mark_exited(&self) {
        let waiters = {
            let mut state = lock(&self.state);
            state.exited = true;
            std::mem::take(&mut state.waiters)
        };
        for w in waiters {
            w.wake();
        }
    }

    /// Ready once the driver thread has dropped the driver (and with it the
    /// socket), or was never started.
    fn poll_exited(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut state = lock(&self.state);
        if state.exited {
            return Poll::Ready(());
        }
        if !state.waiters.iter().any(|w| w.will_wake(cx.waker())) {
            state.waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}

/// Marks the driver exited when the thread's work ends, even by a panic.
struct ExitGuard(Arc<DriverExit>);

impl Drop for ExitGuard {
    fn drop(&mut self) {
        self.0.mark_exited();
    }
}

/// One spawned driver's thread.
#[derive(Debug)]
struct DriverThread {
    exit: Arc<DriverExit>,
    /// Taken by whoever joins it; `None` if it could not be started.
    thread: Option<JoinHandle<()>>,
}

/// The blocking [`Runtime`]: made for one endpoint, whose driver (each
/// shard's) gets a thread and a poller of its own.
pub(crate) struct BlockingRuntime {
    /// The reactor of the next driver spawned, which the sockets wrapped
    /// until then are registered with.
    pending: Mutex<Option<Arc<Reactor>>>,
    /// Every driver spawned, in order.
    drivers: Mutex<Vec<DriverThread>>,
    spawn_error: Mutex<Option<io::Error>>,
}

impl fmt::Debug for BlockingRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingRuntime")
            .field("drivers", &*lock(&self.drivers))
            .finish_non_exhaustive()
    }
}

impl BlockingRuntime {
    /// A runtime with the first driver's reactor made (a poller that cannot
    /// be made fails here).
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            pending: Mutex::new(Some(Arc::new(Reactor::new()?))),
            drivers: Mutex::new(Vec::new()),
            spawn_error: Mutex::new(None),
        })
    }

    /// The reactor of the next driver spawned, made if need be.
    fn pending_reactor(&self) -> io::Result<Arc<Reactor>> {
        let mut pending = lock(&self.pending);
        if let Some(reactor) = &*pending {
            return Ok(reactor.clone());
        }
        let reactor = Arc::new(Reactor::new()?);
        *pending = Some(reactor.clone());
        Ok(reactor)
    }

    /// Why a driver thread could not be started, if one could not.
    pub(crate) fn take_spawn_error(&self) -> Option<io::Error> {
        lock(&self.spawn_error).take()
    }

    /// Ready once every driver thread has dropped its driver (and socket).
    pub(crate) fn poll_exited(&self, cx: &mut Context<'_>) -> Poll<()> {
        let exits: Vec<Arc<DriverExit>> =
            lock(&self.drivers).iter().map(|d| d.exit.clone()).collect();
        let mut ready = Poll::Ready(());
        for exit in exits {
            if exit.poll_exited(cx).is_pending() {
                ready = Poll::Pending;
            }
        }
        ready
    }

    /// The driver threads' handles, once: whoever takes them may join them.
    pub(crate) fn take_threads(&self) -> Vec<JoinHandle<()>> {
        lock(&self.drivers)
            .iter_mut()
            .filter_map(|d| d.thread.take())
            .collect()
    }

    /// How many driver threads were started (tests only).
    #[cfg(test)]
    pub(crate) fn driver_threads(&self) -> usize {
        lock(&self.drivers).len()
    }

    /// Whether every driver thread has run to its end (tests only).
    #[cfg(test)]
    pub(crate) fn thread_finished(&self) -> bool {
        lock(&self.drivers)
            .iter()
            .all(|d| d.thread.as_ref().is_none_or(|thread| thread.is_finished()))
    }
}

impl Runtime for BlockingRuntime {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(Timer { deadline })
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        let exit = Arc::new(DriverExit::default());
        let mut drivers = lock(&self.drivers);
        let reactor = lock(&self.pending)
            .take()
            .map_or_else(|| Reactor::new().map(Arc::new), Ok);
        let spawned = reactor.and_then(|reactor| {
            let exit = exit.clone();
            thread::Builder::new()
                .name(DRIVER_THREAD_NAME.into())
                .spawn(move || {
                    // Dropped after `run` dropped the future, socket included.
                    let _exit = ExitGuard(exit);
                    reactor.run(future);
                    debug!("driver thread ends");
                })
        });
        let thread = match spawned {
            Ok(handle) => Some(handle),
            Err(e) => {
                // The future (and its socket) went with the closure, or was
                // dropped here.
                error!(error = %e, "could not start a driver thread");
                lock(&self.spawn_error).get_or_insert(e);
                exit.mark_exited();
                None
            }
        };
        drivers.push(DriverThread { exit, thread });
    }

    fn wrap_udp_socket(&self, socket: UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let state = udp_state(&socket)?;
        let reactor = self.pending_reactor()?;
        let key = reactor.next_key.fetch_add(1, Ordering::Relaxed);
        let base = reactor.base_interest();
        // SAFETY: the socket is deleted from the poller in `Socket::drop`, before
        // it is closed; nothing can fail between here and the `Socket` owning it.
        unsafe {
            reactor.poller.add_with_mode(
                &socket,
                Event::new(key, base.read, base.write),
                reactor.mode,
            )?;
        };
        let interest = Arc::new(Mutex::new(base));
        lock(&reactor.sockets).insert(
            key,
            Registration {
                fd: socket.as_raw_fd(),
                interest: interest.clone(),
            },
        );
        Ok(Arc::new(Socket {
            io: socket,
            state,
            key,
            interest,
            reactor,
        }))
    }
}

/// A deadline the executor of the thread that polls it sleeps until.
#[derive(Debug)]
struct Timer {
    deadline: Instant,
}

impl AsyncTimer for Timer {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.get_mut().deadline = deadline;
    }

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            Poll::Ready(())
        } else {
            Reactor::wake_at(self.deadline);
            Poll::Pending
        }
    }
}

/// A non-blocking UDP socket registered with the driver thread's poller.
struct Socket {
    io: UdpSocket,
    state: UdpSocketState,
    key: usize,
    /// The interest armed in the poller; the executor clears it when the poller
    /// reports the event.
    interest: Arc<Mutex<Interest>>,
    reactor: Arc<Reactor>,
}

impl fmt::Debug for Socket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Socket")
            .field("io", &self.io)
            .field("key", &self.key)
            .field("interest", &*lock(&self.interest))
            .finish_non_exhaustive()
    }
}

impl Drop for Socket {
    fn drop(&mut self) {
        lock(&self.reactor.sockets).remove(&self.key);
        if let Err(e) = self.reactor.poller.delete(&self.io) {
            debug!(error = %e, "could not deregister the socket");
        }
    }
}

impl Socket {
    /// Adds `want` to the armed interest; returns whether the poller had to be
    /// told (the interest was not armed yet).
    fn arm(&self, want: Interest) -> io::Result<bool> {
        let mut armed = lock(&self.interest);
        let next = Interest {
            read: armed.read || want.read,
            write: armed.write || want.write,
        };
        if next == *armed {
            return Ok(false);
        }
        self.reactor.poller.modify_with_mode(
            &self.io,
            Event::new(self.key, next.read, next.write),
            self.reactor.mode,
        )?;
        *armed = next;
        Ok(true)
    }

    fn recv(&self, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> io::Result<usize> {
        self.state.recv(UdpSockRef::from(&self.io), bufs, meta)
    }
}

fn would_block<T>(result: &io::Result<T>) -> bool {
    matches!(result, Err(e) if e.kind() == io::ErrorKind::WouldBlock)
}

impl AsyncUdpSocket for Socket {
    fn poll_recv(
        &self,
        _cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let result = self.recv(bufs, meta);
        if !would_block(&result) {
            return Poll::Ready(result);
        }
        match self.arm(Interest {
            read: true,
            write: false,
        }) {
            Err(e) => Poll::Ready(Err(e)),
            // Armed earlier and not reported since (or level-triggered, always
            // armed): the poller will report it.
            Ok(false) => Poll::Pending,
            // Armed just now: a datagram that arrived between the receive above
            // and the arming is caught by receiving once more.
            Ok(true) => {
                let result = self.recv(bufs, meta);
                if would_block(&result) {
                    Poll::Pending
                } else {
                    Poll::Ready(result)
                }
            }
        }
    }

    fn poll_writable(&self, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.arm(Interest {
            read: false,
            write: true,
        }) {
            Err(e) => Poll::Ready(Err(e)),
            // Armed just now: room that appeared between the failed send and the
            // arming is found by the caller sending once more.
            Ok(true) => Poll::Ready(Ok(())),
            // Armed earlier (so the send was retried since): wait for the poller.
            Ok(false) => Poll::Pending,
        }
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        self.state.try_send(UdpSockRef::from(&self.io), transmit)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    fn max_gso_segments(&self) -> usize {
        self.state.max_gso_segments()
    }

    fn gro_segments(&self) -> usize {
        self.state.gro_segments()
    }

    fn may_fragment(&self) -> bool {
        self.state.may_fragment()
    }

    fn take_unreachable(&self) -> Option<SocketAddr> {
        take_unreachable(&self.state, &self.io)
    }
}
