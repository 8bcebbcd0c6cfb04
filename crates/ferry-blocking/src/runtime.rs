//! The [`Runtime`] of the blocking driver: one thread, one poller, one future.
//!
//! `ferry-async` asks a runtime for three things: a UDP socket with readiness,
//! a timer, and a way to run the driver future. Here all three meet in a
//! [`Reactor`] owned by the endpoint's driver thread:
//!
//! - the **executor** polls the one future it was given; when the future is
//!   pending it sleeps in [`Poller::wait`] until a socket event, a wake-up
//!   ([`Poller::notify`]) or the earliest timer deadline, then polls again;
//! - the **socket** arms oneshot interest in the poller when an operation would
//!   block, and the executor disarms it when the poller reports the event;
//! - the **timer** is a deadline: polling it before the deadline records the
//!   deadline as the executor's next wake-up time.
//!
//! Socket and timer never store the `Context`'s waker: every readiness event
//! and deadline wakes the executor, and the executor only has one future to
//! poll. They are therefore only meant for the driver future of the runtime
//! that made them.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use ferry_async::socket::{take_unreachable, udp_state};
use ferry_async::{AsyncTimer, AsyncUdpSocket, RecvMeta, Runtime, Transmit};
use polling::{Event, Events, Poller};
use quinn_udp::{UdpSockRef, UdpSocketState};
use tracing::{debug, error};

/// The name of every driver thread.
pub(crate) const DRIVER_THREAD_NAME: &str = "ferry-driver";

/// Locks `mutex`, entering it even if a panic poisoned it: every value guarded
/// here stays consistent whatever line a panic interrupted.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Which readiness a socket has asked the poller for and not yet been told of.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Interest {
    read: bool,
    write: bool,
}

/// What the driver thread sleeps on.
struct Reactor {
    poller: Poller,
    /// A wake-up arrived since the executor last started polling the future.
    woken: AtomicBool,
    /// The executor is in, or about to enter, [`Poller::wait`]: a wake-up must
    /// notify the poller. While the executor is polling, a wake-up only sets
    /// `woken`, which costs no system call.
    sleeping: AtomicBool,
    /// The earliest deadline of the timers found pending during the current poll.
    next_deadline: Mutex<Option<Instant>>,
    /// The armed interest of every registered socket, by poller key.
    sockets: Mutex<HashMap<usize, Arc<Mutex<Interest>>>>,
    next_key: AtomicUsize,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("poller", &self.poller)
            .field("woken", &self.woken)
            .field("sleeping", &self.sleeping)
            .field("next_deadline", &*lock(&self.next_deadline))
            .finish_non_exhaustive()
    }
}

impl Reactor {
    fn new() -> io::Result<Self> {
        Ok(Self {
            poller: Poller::new()?,
            woken: AtomicBool::new(false),
            sleeping: AtomicBool::new(false),
            next_deadline: Mutex::new(None),
            sockets: Mutex::new(HashMap::new()),
            next_key: AtomicUsize::new(0),
        })
    }

    /// A timer pending until `deadline` asks to be woken then.
    fn wake_at(&self, deadline: Instant) {
        let mut next = lock(&self.next_deadline);
        *next = Some(next.map_or(deadline, |d| d.min(deadline)));
    }

    /// The poller delivered `events`: their registrations are disarmed (oneshot
    /// mode disables a source once it reported an event).
    fn disarm(&self, events: &Events) {
        let sockets = lock(&self.sockets);
        for event in events.iter() {
            if let Some(interest) = sockets.get(&event.key) {
                *lock(interest) = Interest::default();
            }
        }
    }

    /// Runs `future` to completion on the calling thread.
    fn run(self: &Arc<Self>, mut future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        let waker = Waker::from(self.clone());
        let mut cx = Context::from_waker(&waker);
        let mut events = Events::with_capacity(NonZeroUsize::new(16).expect("non-zero"));
        loop {
            // A wake-up from here on is seen either by this poll or by the check
            // before sleeping.
            self.woken.store(false, Ordering::SeqCst);
            *lock(&self.next_deadline) = None;
            if future.as_mut().poll(&mut cx).is_ready() {
                return;
            }
            let deadline = lock(&self.next_deadline).take();
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

/// The driver thread's end, which [`Endpoint::close`](crate::Endpoint::close)
/// waits for.
#[derive(Debug, Default)]
pub(crate) struct DriverExit {
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
    pub(crate) fn poll_exited(&self, cx: &mut Context<'_>) -> Poll<()> {
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

/// The blocking [`Runtime`]: made for one endpoint, whose driver gets a thread
/// of its own.
pub(crate) struct BlockingRuntime {
    reactor: Arc<Reactor>,
    exit: Arc<DriverExit>,
    thread: Mutex<Option<JoinHandle<()>>>,
    spawn_error: Mutex<Option<io::Error>>,
}

impl fmt::Debug for BlockingRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingRuntime")
            .field("reactor", &self.reactor)
            .field("exit", &self.exit)
            .finish_non_exhaustive()
    }
}

impl BlockingRuntime {
    pub(crate) fn new() -> io::Result<Self> {
        Ok(Self {
            reactor: Arc::new(Reactor::new()?),
            exit: Arc::default(),
            thread: Mutex::new(None),
            spawn_error: Mutex::new(None),
        })
    }

    /// Why the driver thread could not be started, if it could not.
    pub(crate) fn take_spawn_error(&self) -> Option<io::Error> {
        lock(&self.spawn_error).take()
    }

    pub(crate) fn exit(&self) -> &DriverExit {
        &self.exit
    }

    /// The driver thread's handle, once: whoever takes it may join it.
    pub(crate) fn take_thread(&self) -> Option<JoinHandle<()>> {
        lock(&self.thread).take()
    }

    /// Whether the driver thread has run to its end (tests only).
    #[cfg(test)]
    pub(crate) fn thread_finished(&self) -> bool {
        lock(&self.thread)
            .as_ref()
            .is_none_or(|thread| thread.is_finished())
    }
}

impl Runtime for BlockingRuntime {
    fn new_timer(&self, deadline: Instant) -> Pin<Box<dyn AsyncTimer>> {
        Box::pin(Timer {
            deadline,
            reactor: self.reactor.clone(),
        })
    }

    fn spawn(&self, future: Pin<Box<dyn Future<Output = ()> + Send>>) {
        let mut thread = lock(&self.thread);
        debug_assert!(thread.is_none(), "one driver per blocking runtime");
        let reactor = self.reactor.clone();
        let exit = self.exit.clone();
        let spawned = thread::Builder::new()
            .name(DRIVER_THREAD_NAME.into())
            .spawn(move || {
                // Dropped after `run` dropped the future, socket included.
                let _exit = ExitGuard(exit);
                reactor.run(future);
                debug!("driver thread ends");
            });
        match spawned {
            Ok(handle) => *thread = Some(handle),
            Err(e) => {
                // The future (and its socket) went with the closure.
                error!(error = %e, "could not start the driver thread");
                *lock(&self.spawn_error) = Some(e);
                self.exit.mark_exited();
            }
        }
    }

    fn wrap_udp_socket(&self, socket: UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let state = udp_state(&socket)?;
        let reactor = self.reactor.clone();
        let key = reactor.next_key.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the socket is deleted from the poller in `Socket::drop`, before
        // it is closed; nothing can fail between here and the `Socket` owning it.
        unsafe { reactor.poller.add(&socket, Event::none(key))? };
        let interest = Arc::new(Mutex::new(Interest::default()));
        lock(&reactor.sockets).insert(key, interest.clone());
        Ok(Arc::new(Socket {
            io: socket,
            state,
            key,
            interest,
            reactor,
        }))
    }
}

/// A deadline the executor sleeps until.
#[derive(Debug)]
struct Timer {
    deadline: Instant,
    reactor: Arc<Reactor>,
}

impl AsyncTimer for Timer {
    fn reset(self: Pin<&mut Self>, deadline: Instant) {
        self.get_mut().deadline = deadline;
    }

    fn poll(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if Instant::now() >= self.deadline {
            Poll::Ready(())
        } else {
            self.reactor.wake_at(self.deadline);
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
        self.reactor
            .poller
            .modify(&self.io, Event::new(self.key, next.read, next.write))?;
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
            // Armed earlier and not reported since: the poller will report it.
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

    fn take_unreachable(&self) -> Option<SocketAddr> {
        take_unreachable(&self.state, &self.io)
    }
}
