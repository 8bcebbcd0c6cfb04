//! The task that moves datagrams between the socket and the endpoint.
//!
//! # Locking
//!
//! The sans-IO endpoint and everything waiting on it live in one [`State`]
//! behind one lock ([`Shared`]), which every user handle takes too. The driver
//! holds that lock only while it calls into the endpoint, never across a
//! system call, so a handle's call never waits behind a `recvmmsg`, a
//! `sendmsg`, an `epoll_ctl` or a read of the socket's error queue:
//!
//! - **Receiving.** One batch is read from the socket (`recvmmsg`, GRO) into
//!   the driver's own buffers and copied into its arena without the lock;
//!   then the lock is taken, the batch's datagrams are handed to
//!   `Endpoint::handle_datagram` as slices of the arena, and the lock is
//!   released before the next read. ICMP errors are read from the error
//!   queue first, then handed to `handle_unreachable` under the lock.
//! - **Timers**: `handle_timeout` under the lock, no I/O.
//! - **Sending.** Under the lock, `Endpoint::poll_transmit_batch` writes
//!   the next GSO batch (same-size datagrams to one destination, as many as
//!   the socket's segmentation offload takes) straight into the driver's
//!   batch buffer, each datagram sealed where it lies: the driver copies
//!   nothing (a datagram that does not fit the batch is the endpoint's to
//!   keep for the next one). The lock is released, then the buffer is handed
//!   to the socket as it is. A batch the socket refused (`WouldBlock`) stays
//!   in the driver's buffer, outside the state; one refused as too large
//!   (`EMSGSIZE`: a datagram above what the path now carries) is sent again
//!   one datagram at a time, so that only the oversize ones are lost.
//! - **Events, the end, the next deadline**: `dispatch_events`,
//!   `wake_acknowledged` (tasks in an `acknowledged` call whose session's
//!   acknowledgements moved), the finished check and `poll_timeout` in one
//!   short section per round; the timer is armed after the lock is released.
//!
//! No wake-up is lost by releasing the lock: the driver stores its waker in
//! the state at the start of every poll, before its first system call, and a
//! handle that queues output (or frees credit) wakes it under the lock after
//! doing so. A wake-up that lands while the driver is inside a system call,
//! or anywhere else in its poll, makes every runtime poll the driver again
//! (tokio and async-executor reschedule a task woken while running; the
//! blocking runtime checks its `woken` flag before sleeping).
//!
//! Closing cannot end the driver before the close packets left: a close
//! queued while the driver was in a system call is seen by the finished
//! check, which pulls one more batch from the endpoint in the same locked
//! section and stops only if there is none (and none waits in the driver's
//! buffers).
//!
//! # Shards
//!
//! An endpoint with several shards ([`EndpointConfig::shards`]) has one
//! driver per shard, each with its own socket (all bound to the endpoint's
//! address with `SO_REUSEPORT`), its own protocol endpoint and its own
//! [`Shared`]: the drivers never share a lock, so a multi-threaded runtime
//! runs them on different cores. The kernel picks the socket a datagram
//! reaches by a hash of its addresses, not by session, so a driver may read
//! datagrams of another shard's sessions: replies to sessions this side
//! started, and datagrams from a peer whose address changed. Every session
//! id a shard issues names the shard ([`ferry_proto::Shard`]), so the
//! receive section sorts each batch by [`Shard::of_datagram`](ferry_proto::Shard::of_datagram):
//! its own datagrams (and Connects, which belong to whichever shard they
//! reach) go to its endpoint under its lock as above; then, with its own
//! lock released, a copy of each of the others goes into its owner's
//! bounded inbox under the owner's lock (one owner at a time, never two
//! locks at once), and the owner's driver is woken as a handle would wake
//! it. A driver empties its inbox into its endpoint at the start of its
//! receive section, before reading its socket; a full inbox drops what
//! comes (counted in [`ShardStats`](crate::ShardStats); the protocol repairs
//! it as any loss). ICMP errors, which also reach whichever socket the hash
//! picks, go to the shard holding the one handshaking session with that
//! host, if there is exactly one over every shard (see
//! [`HandOver::unreachable`]). No driver ever waits on another's socket:
//! handing over is a push under a lock no system call is made under. With
//! one shard (the default) none of this runs: no inbox, no header peek, no
//! copy.
//!
//! [`EndpointConfig::shards`]: crate::EndpointConfig::shards

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use tracing::{debug, trace};

use ferry_proto::MAX_BATCH_BYTES;

use crate::runtime::{AsyncTimer, AsyncUdpSocket, RecvMeta, Runtime, Transmit};
use crate::shards::HandOver;
use crate::shared::{Shared, State};

/// Receive batches handled per wake-up before yielding to other tasks.
const RECV_BATCHES_PER_POLL: usize = 16;
/// Send batches handled per wake-up before yielding.
const SEND_BATCHES_PER_POLL: usize = 64;
/// Room for one datagram in the receive buffers: the largest UDP payload.
const RECV_SLOT: usize = 65_536;
/// Size of the buffer received datagrams are handed to the endpoint in: each
/// receive buffer's datagrams are copied into it in one piece and handed out
/// as slices, so a datagram costs no allocation. The endpoint keeps no slice
/// past its `handle_datagram` call (it copies what it keeps), so the buffer is
/// reused as soon as the last slice is dropped.
const RECV_ARENA: usize = 1 << 19;

/// A batch of datagrams to one destination, built but not yet accepted by the
/// socket.
#[derive(Debug)]
struct Batch {
    destination: SocketAddr,
    segment_size: Option<usize>,
    /// Bytes of the batch sent already, when it goes one datagram at a time.
    sent: usize,
    /// The socket refused the batch as too large (a datagram larger than the
    /// path now allows): its datagrams go one by one, so that only the
    /// oversize ones are lost.
    one_by_one: bool,
}

impl Batch {
    /// The part of `buf` (the batch's bytes) to send next, and its segment
    /// size: the whole batch, or its next datagram.
    fn next<'a>(&self, buf: &'a [u8]) -> (&'a [u8], Option<usize>) {
        match self.segment_size {
            Some(size) if self.one_by_one => {
                let end = (self.sent + size).min(buf.len());
                (&buf[self.sent..end], None)
            }
            _ => (buf, self.segment_size),
        }
    }

    /// `len` bytes of the batch left (or were dropped); returns whether the
    /// whole batch is done.
    fn advance(&mut self, len: usize, total: usize) -> bool {
        if !self.one_by_one {
            return true;
        }
        self.sent += len;
        self.sent >= total
    }
}

/// Whether a send failed because a datagram was larger than the path or the
/// socket allows (`EMSGSIZE`).
fn too_large(e: &io::Error) -> bool {
    #[cfg(unix)]
    const EMSGSIZE: Option<i32> = Some(libc::EMSGSIZE);
    #[cfg(windows)]
    const EMSGSIZE: Option<i32> = Some(10040); // WSAEMSGSIZE
    #[cfg(not(any(unix, windows)))]
    const EMSGSIZE: Option<i32> = None;
    EMSGSIZE.is_some() && e.raw_os_error() == EMSGSIZE
}

/// Drives one endpoint: the loop of the whole driven API.
///
/// Each wake-up: drain ICMP errors, receive batches and hand each datagram to
/// the endpoint, run expired timers, send what the endpoint has to send (GSO
/// batches of same-sized datagrams to one destination, which the endpoint
/// writes into the driver's batch buffer), tell waiting handles what
/// happened, then sleep until a datagram, a command, or the next deadline.
/// The shared lock is taken only around the calls into the endpoint (see the
/// module documentation): every buffer a system call reads or fills is the
/// driver's own.
#[derive(Debug)]
pub(crate) struct Driver {
    shared: Arc<Shared>,
    socket: Arc<dyn AsyncUdpSocket>,
    timer: Pin<Box<dyn AsyncTimer>>,
    timer_deadline: Option<Instant>,
    recv_bufs: Vec<Vec<u8>>,
    recv_arena: BytesMut,
    metas: Vec<RecvMeta>,
    /// The datagrams of the last receive batch, slices of `recv_arena`,
    /// waiting for the lock to be handed to the endpoint.
    received: Vec<(SocketAddr, BytesMut)>,
    /// Addresses that reported ICMP unreachable errors, read from the
    /// socket's error queue and not yet handed to the endpoint.
    unreachable: Vec<SocketAddr>,
    /// The batch being sent, as the endpoint wrote it: the datagrams one
    /// after the other, handed to the socket as they are.
    batch_buf: Vec<u8>,
    batch: Option<Batch>,
    /// With several shards, where the datagrams of other shards' sessions
    /// go; `None` with one.
    hand_over: Option<HandOver>,
}

impl Driver {
    pub(crate) fn new(
        shared: Arc<Shared>,
        socket: Arc<dyn AsyncUdpSocket>,
        runtime: &dyn Runtime,
        hand_over: Option<HandOver>,
    ) -> Self {
        let slot = RECV_SLOT.max(socket.gro_segments() * 1500);
        Self {
            shared,
            timer: runtime.new_timer(Instant::now()),
            timer_deadline: None,
            recv_bufs: (0..quinn_udp::BATCH_SIZE).map(|_| vec![0; slot]).collect(),
            recv_arena: BytesMut::new(),
            metas: vec![RecvMeta::default(); quinn_udp::BATCH_SIZE],
            received: Vec::new(),
            unreachable: Vec::new(),
            batch_buf: Vec::with_capacity(MAX_BATCH_BYTES + RECV_SLOT),
            batch: None,
            socket,
            hand_over,
        }
    }

    /// Reads the socket's pending ICMP unreachable reports (system calls: no
    /// lock), then hands them to the endpoint under the lock.
    fn take_unreachable(&mut self, shared: &Shared) {
        while let Some(addr) = self.socket.take_unreachable() {
            debug!(%addr, "network reports destination unreachable");
            self.unreachable.push(addr);
        }
        if self.unreachable.is_empty() {
            return;
        }
        if let Some(hand_over) = &self.hand_over {
            // The session concerned may be another shard's.
            for addr in self.unreachable.drain(..) {
                hand_over.unreachable(addr.ip());
            }
            return;
        }
        let mut state = shared.lock();
        for addr in self.unreachable.drain(..) {
            state.endpoint.handle_unreachable(addr.ip());
        }
    }

    /// Receives what the socket has; returns whether anything arrived. Each
    /// batch is read and sliced without the lock, then handed over under it.
    fn receive(&mut self, cx: &mut Context<'_>, shared: &Shared) -> bool {
        self.take_unreachable(shared);
        // What other shards handed over (never anything with one shard).
        let mut progress = self.hand_over.is_some() && HandOver::drain_inbox(shared);
        for _ in 0..RECV_BATCHES_PER_POLL {
            let mut iovs: Vec<IoSliceMut<'_>> = self
                .recv_bufs
                .iter_mut()
                .map(|b| IoSliceMut::new(b))
                .collect();
            match self.socket.poll_recv(cx, &mut iovs, &mut self.metas) {
                Poll::Ready(Ok(n)) => {
                    let now = Instant::now();
                    self.slice_received(n);
                    match &mut self.hand_over {
                        None => {
                            let mut state = shared.lock();
                            for (from, datagram) in self.received.drain(..) {
                                state.endpoint.handle_datagram(now, from, datagram);
                            }
                        }
                        Some(hand_over) => hand_over.receive(now, &mut self.received, shared),
                    }
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    // UDP errors are per datagram (an ICMP error surfacing, a
                    // truncated read): note them and keep going.
                    trace!(error = %e, "receive error");
                    if e.kind() == io::ErrorKind::ConnectionRefused {
                        self.take_unreachable(shared);
                    }
                    progress = true;
                }
                Poll::Pending => break,
            }
        }
        progress
    }

    /// Copies the first `n` receive buffers into the arena, each in one
    /// piece, and queues one slice of it per datagram in `received`.
    fn slice_received(&mut self, n: usize) {
        for (meta, buf) in self.metas[..n].iter().zip(&self.recv_bufs) {
            let stride = meta.stride.max(1);
            let arena = &mut self.recv_arena;
            if arena.capacity() < meta.len {
                // Reclaims the buffer when no slice of it is left (the
                // endpoint dropped the last batch's), allocates a new one
                // otherwise.
                arena.reserve(RECV_ARENA.max(meta.len));
            }
            arena.extend_from_slice(&buf[..meta.len]);
            let mut datagrams = arena.split();
            while !datagrams.is_empty() {
                let datagram = datagrams.split_to(stride.min(datagrams.len()));
                self.received.push((meta.addr, datagram));
            }
        }
    }

    /// Runs the endpoint's expired timers; returns whether any was due.
    fn run_timers(shared: &Shared) -> bool {
        let mut state = shared.lock();
        let now = Instant::now();
        if state.endpoint.poll_timeout().is_some_and(|t| t <= now) {
            state.endpoint.handle_timeout(now);
            true
        } else {
            false
        }
    }

    /// Sends what the endpoint has to send; returns whether anything was sent.
    /// Each batch is pulled from the endpoint under the lock, then sent
    /// without it.
    fn transmit(&mut self, cx: &mut Context<'_>, shared: &Shared) -> bool {
        let mut progress = false;
        for _ in 0..SEND_BATCHES_PER_POLL {
            if self.batch.is_none() {
                let mut state = shared.lock();
                if !self.build_batch(&mut state, Instant::now()) {
                    break;
                }
            }
            let batch = self.batch.as_mut().expect("built above");
            let (contents, segment_size) = batch.next(&self.batch_buf);
            let transmit = Transmit {
                destination: batch.destination,
                ecn: None,
                contents,
                segment_size,
                src_ip: None,
            };
            let len = contents.len();
            match self.socket.try_send(&transmit) {
                Ok(()) => {
                    if batch.advance(len, self.batch_buf.len()) {
                        self.batch = None;
                    }
                    progress = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    match self.socket.poll_writable(cx) {
                        Poll::Ready(Ok(())) => continue,
                        Poll::Ready(Err(e)) => {
                            debug!(error = %e, "socket not writable; batch dropped");
                            self.batch = None;
                        }
                        Poll::Pending => return progress,
                    }
                }
                Err(e) if segment_size.is_some() && too_large(&e) => {
                    // One datagram may be too large for the path (its MTU
                    // shrank): the others still fit on their own.
                    debug!(error = %e, destination = %batch.destination, "batch refused as too large; sending its datagrams one by one");
                    batch.one_by_one = true;
                    progress = true;
                }
                Err(e) => {
                    // Lost like any datagram: the protocol repairs it.
                    debug!(error = %e, destination = %batch.destination, len, "send failed; dropped");
                    if batch.advance(len, self.batch_buf.len()) {
                        self.batch = None;
                    }
                    progress = true;
                }
            }
        }
        progress
    }

    /// Has the endpoint write the next batch into the driver's batch buffer:
    /// same destination, same size (the last may be shorter), up to the
    /// socket's segmentation offload limit. Called under the lock; the
    /// endpoint writes and seals the datagrams where the socket reads them.
    fn build_batch(&mut self, state: &mut State, now: Instant) -> bool {
        let max = self.socket.max_gso_segments();
        let Some(t) = state
            .endpoint
            .poll_transmit_batch(now, &mut self.batch_buf, max)
        else {
            return false;
        };
        debug_assert_eq!(t.size, self.batch_buf.len());
        self.batch = Some(Batch {
            destination: t.destination,
            segment_size: t.segment_size,
            sent: 0,
            one_by_one: false,
        });
        true
    }

    /// Closing is done once every session has sent its Close as often as
    /// the protocol repeats it unprompted (or ended): a lost Close must not
    /// leave the peer waiting for a session that is gone.
    fn finished(state: &mut State) -> bool {
        if !state.closing {
            return false;
        }
        let ids: Vec<_> = state.endpoint.sessions().collect();
        ids.into_iter()
            .all(|id| state.endpoint.session(id).is_none_or(|s| s.close_sent()))
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let shared = this.shared.clone();
        {
            // Before any system call: a handle that queues something from
            // here on wakes this poll's waker.
            let mut state = shared.lock();
            if !state
                .driver
                .as_ref()
                .is_some_and(|w| w.will_wake(cx.waker()))
            {
                state.driver = Some(cx.waker().clone());
            }
            state.driver_polling = true;
            state.driver_kicked = false;
        }
        let mut rounds = 0;
        loop {
            let mut progress = this.receive(cx, &shared);
            progress |= Self::run_timers(&shared);
            progress |= this.transmit(cx, &shared);
            let mut state = shared.lock();
            state.dispatch_events();
            state.wake_acknowledged();
            if this.batch.is_none() && Self::finished(&mut state) {
                // The send phase found nothing more, but a close may have
                // queued packets since (while this driver was in a system
                // call): stop only if the endpoint still has nothing.
                if this.build_batch(&mut state, Instant::now()) {
                    progress = true;
                } else {
                    debug!("endpoint closed; driver stops");
                    state.stop();
                    return Poll::Ready(());
                }
            }
            rounds += 1;
            // Work a handle queued during this round, after the phase that
            // would have seen it: another round.
            progress |= std::mem::take(&mut state.driver_kicked);
            if !progress {
                // Decided under the lock: from here on handles wake the
                // waker, so nothing queued now goes unnoticed.
                state.driver_polling = false;
                let deadline = state.endpoint.poll_timeout();
                drop(state);
                this.arm_timer(cx, deadline);
                return Poll::Pending;
            }
            if rounds >= 8 {
                // Busy: let other tasks run, then come back at once.
                state.driver_polling = false;
                drop(state);
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            drop(state);
        }
    }
}

impl Driver {
    /// Sleeps until `deadline` (the endpoint's next timer), if any.
    fn arm_timer(&mut self, cx: &mut Context<'_>, deadline: Option<Instant>) {
        match deadline {
            Some(deadline) => {
                if self.timer_deadline != Some(deadline) {
                    self.timer.as_mut().reset(deadline);
                    self.timer_deadline = Some(deadline);
                }
                if self.timer.as_mut().poll(cx).is_ready() {
                    self.timer_deadline = None;
                    cx.waker().wake_by_ref();
                }
            }
            None => self.timer_deadline = None,
        }
    }
}

impl Drop for Driver {
    /// A driver dropped unfinished (its runtime shut down) leaves nothing
    /// waiting forever: every handle learns the endpoint is gone.
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        if !state.stopped {
            state.stop();
        }
    }
}
