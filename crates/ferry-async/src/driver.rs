//! The task that moves datagrams between the socket and the endpoint.

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::BytesMut;
use tracing::{debug, trace};

use crate::runtime::{AsyncTimer, AsyncUdpSocket, RecvMeta, Runtime, Transmit};
use crate::shared::{Shared, State};

/// Receive batches handled per wake-up before yielding to other tasks.
const RECV_BATCHES_PER_POLL: usize = 16;
/// Send batches handled per wake-up before yielding.
const SEND_BATCHES_PER_POLL: usize = 64;
/// Largest payload a GSO batch may carry.
const MAX_GSO_BYTES: usize = 64_000;
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
}

/// Drives one endpoint: the loop of the whole driven API.
///
/// Each wake-up: drain ICMP errors, receive batches and hand each datagram to
/// the endpoint, run expired timers, send what the endpoint has to send (GSO
/// batches of same-sized datagrams to one destination), tell waiting handles
/// what happened, then sleep until a datagram, a command, or the next deadline.
#[derive(Debug)]
pub(crate) struct Driver {
    shared: Arc<Shared>,
    socket: Arc<dyn AsyncUdpSocket>,
    timer: Pin<Box<dyn AsyncTimer>>,
    timer_deadline: Option<Instant>,
    recv_bufs: Vec<Vec<u8>>,
    recv_arena: BytesMut,
    metas: Vec<RecvMeta>,
    batch_buf: Vec<u8>,
    batch: Option<Batch>,
    scratch: Vec<u8>,
    /// A datagram taken from the endpoint that did not fit the last batch.
    carry: Option<(SocketAddr, usize)>,
    carry_buf: Vec<u8>,
}

impl Driver {
    pub(crate) fn new(
        shared: Arc<Shared>,
        socket: Arc<dyn AsyncUdpSocket>,
        runtime: &dyn Runtime,
    ) -> Self {
        let slot = RECV_SLOT.max(socket.gro_segments() * 1500);
        Self {
            shared,
            timer: runtime.new_timer(Instant::now()),
            timer_deadline: None,
            recv_bufs: (0..quinn_udp::BATCH_SIZE).map(|_| vec![0; slot]).collect(),
            recv_arena: BytesMut::new(),
            metas: vec![RecvMeta::default(); quinn_udp::BATCH_SIZE],
            batch_buf: Vec::with_capacity(MAX_GSO_BYTES + RECV_SLOT),
            batch: None,
            scratch: Vec::with_capacity(RECV_SLOT),
            carry: None,
            carry_buf: Vec::with_capacity(RECV_SLOT),
            socket,
        }
    }

    /// Receives what the socket has; returns whether anything arrived.
    fn receive(&mut self, cx: &mut Context<'_>, state: &mut State) -> bool {
        while let Some(addr) = self.socket.take_unreachable() {
            debug!(%addr, "network reports destination unreachable");
            state.endpoint.handle_unreachable(addr.ip());
        }
        let mut progress = false;
        for _ in 0..RECV_BATCHES_PER_POLL {
            let mut iovs: Vec<IoSliceMut<'_>> = self
                .recv_bufs
                .iter_mut()
                .map(|b| IoSliceMut::new(b))
                .collect();
            match self.socket.poll_recv(cx, &mut iovs, &mut self.metas) {
                Poll::Ready(Ok(n)) => {
                    let now = Instant::now();
                    for (meta, buf) in self.metas[..n].iter().zip(&self.recv_bufs) {
                        let stride = meta.stride.max(1);
                        let arena = &mut self.recv_arena;
                        if arena.capacity() < meta.len {
                            // Reclaims the buffer when no slice of it is left,
                            // allocates a new one otherwise.
                            arena.reserve(RECV_ARENA.max(meta.len));
                        }
                        arena.extend_from_slice(&buf[..meta.len]);
                        let mut datagrams = arena.split();
                        while !datagrams.is_empty() {
                            let datagram = datagrams.split_to(stride.min(datagrams.len()));
                            state.endpoint.handle_datagram(now, meta.addr, datagram);
                        }
                    }
                    progress = true;
                }
                Poll::Ready(Err(e)) => {
                    // UDP errors are per datagram (an ICMP error surfacing, a
                    // truncated read): note them and keep going.
                    trace!(error = %e, "receive error");
                    if e.kind() == io::ErrorKind::ConnectionRefused {
                        while let Some(addr) = self.socket.take_unreachable() {
                            state.endpoint.handle_unreachable(addr.ip());
                        }
                    }
                    progress = true;
                }
                Poll::Pending => break,
            }
        }
        progress
    }

    /// Sends what the endpoint has to send; returns whether anything was sent.
    fn transmit(&mut self, cx: &mut Context<'_>, state: &mut State) -> bool {
        let mut progress = false;
        let now = Instant::now();
        for _ in 0..SEND_BATCHES_PER_POLL {
            if self.batch.is_none() && !self.build_batch(state, now) {
                break;
            }
            let batch = self.batch.as_ref().expect("built above");
            let transmit = Transmit {
                destination: batch.destination,
                ecn: None,
                contents: &self.batch_buf,
                segment_size: batch.segment_size,
                src_ip: None,
            };
            match self.socket.try_send(&transmit) {
                Ok(()) => {
                    self.batch = None;
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
                Err(e) => {
                    // Lost like any datagram: the protocol repairs it.
                    debug!(error = %e, destination = %batch.destination, "send failed; batch dropped");
                    self.batch = None;
                    progress = true;
                }
            }
        }
        progress
    }

    /// Gathers the next datagrams into one batch: same destination, same size
    /// (the last may be shorter), up to the socket's segmentation offload limit.
    fn build_batch(&mut self, state: &mut State, now: Instant) -> bool {
        self.batch_buf.clear();
        let (destination, size) = match self.carry.take() {
            Some((destination, size)) => {
                self.batch_buf.extend_from_slice(&self.carry_buf[..size]);
                (destination, size)
            }
            None => match state.endpoint.poll_transmit(now, &mut self.batch_buf) {
                Some(t) => (t.destination, t.size),
                None => return false,
            },
        };
        let max_segments = self
            .socket
            .max_gso_segments()
            .min(MAX_GSO_BYTES / size.max(1))
            .max(1);
        let mut segments = 1;
        while segments < max_segments {
            let Some(t) = state.endpoint.poll_transmit(now, &mut self.scratch) else {
                break;
            };
            if t.destination != destination || t.size > size {
                self.carry_buf.clear();
                self.carry_buf.extend_from_slice(&self.scratch[..t.size]);
                self.carry = Some((t.destination, t.size));
                break;
            }
            self.batch_buf.extend_from_slice(&self.scratch[..t.size]);
            segments += 1;
            if t.size < size {
                // A shorter datagram can only end a batch.
                break;
            }
        }
        self.batch = Some(Batch {
            destination,
            segment_size: (segments > 1).then_some(size),
        });
        true
    }

    /// Closing is done once every session has at least sent its close packet.
    fn finished(state: &mut State) -> bool {
        if !state.closing {
            return false;
        }
        let ids: Vec<_> = state.endpoint.sessions().collect();
        ids.into_iter().all(|id| {
            state.endpoint.session(id).is_none_or(|s| {
                matches!(
                    s.state(),
                    ferry_proto::State::Closing | ferry_proto::State::Closed
                )
            })
        })
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let shared = this.shared.clone();
        let mut state = shared.lock();
        if !state
            .driver
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            state.driver = Some(cx.waker().clone());
        }
        let mut rounds = 0;
        loop {
            let mut progress = this.receive(cx, &mut state);
            let now = Instant::now();
            if state.endpoint.poll_timeout().is_some_and(|t| t <= now) {
                state.endpoint.handle_timeout(now);
                progress = true;
            }
            progress |= this.transmit(cx, &mut state);
            state.dispatch_events();
            if this.batch.is_none() && this.carry.is_none() && Self::finished(&mut state) {
                debug!("endpoint closed; driver stops");
                state.stop();
                return Poll::Ready(());
            }
            rounds += 1;
            if !progress {
                break;
            }
            if rounds >= 8 {
                // Busy: let other tasks run, then come back at once.
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        match state.endpoint.poll_timeout() {
            Some(deadline) => {
                if this.timer_deadline != Some(deadline) {
                    this.timer.as_mut().reset(deadline);
                    this.timer_deadline = Some(deadline);
                }
                if this.timer.as_mut().poll(cx).is_ready() {
                    this.timer_deadline = None;
                    cx.waker().wake_by_ref();
                }
            }
            None => this.timer_deadline = None,
        }
        Poll::Pending
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
