//! The socket the driver sees when the fallback is on: the runtime's UDP
//! socket plus the hub's WebSocket connections.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use super::connection::{Connection, Queued};
use super::{FREE_CHUNKS, Hub, Inbox, frame, lock};
use crate::runtime::{AsyncUdpSocket, RecvMeta, Transmit};

/// An [`AsyncUdpSocket`] that sends to addresses with a WebSocket connection
/// over it, and to others over UDP, and receives from both (see the
/// [module documentation](super)).
#[derive(Debug)]
pub(crate) struct FallbackSocket {
    udp: Arc<dyn AsyncUdpSocket>,
    hub: Arc<Hub>,
    /// Whether the next receive looks at the connections first: the two
    /// take turns, so that neither starves the other.
    websocket_first: AtomicBool,
    /// The connection whose full buffer refused the driver's last batch:
    /// `poll_writable` waits for its room.
    blocked: std::sync::Mutex<Option<Arc<Connection>>>,
}

impl FallbackSocket {
    pub(crate) fn new(udp: Arc<dyn AsyncUdpSocket>, hub: Arc<Hub>) -> Self {
        Self {
            udp,
            hub,
            websocket_first: AtomicBool::new(false),
            blocked: std::sync::Mutex::new(None),
        }
    }

    /// Moves datagrams read from connections into `bufs` (unmasking a
    /// client's as they are copied); returns how many.
    fn take_websocket(&self, bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta]) -> usize {
        let mut inbox = lock(&self.hub.inbox);
        let mut n = 0;
        while n < bufs.len().min(meta.len()) {
            let Some(chunk) = inbox.chunks.front_mut() else {
                break;
            };
            let Some((range, mask)) = chunk.datagrams.pop_front() else {
                recycle_front(&mut inbox);
                continue;
            };
            let from = chunk.from;
            let len = range.len();
            if len <= bufs[n].len() {
                let datagram = &chunk.data[range];
                match mask {
                    Some(key) => frame::copy_unmasked(&mut bufs[n][..len], datagram, key),
                    None => bufs[n][..len].copy_from_slice(datagram),
                }
                let mut m = RecvMeta::default();
                m.addr = from;
                m.len = len;
                m.stride = len;
                meta[n] = m;
                n += 1;
            } else {
                self.hub.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
            inbox.bytes -= len;
        }
        // A chunk emptied by the last datagram taken goes back now.
        while inbox.chunks.front().is_some_and(|c| c.datagrams.is_empty()) {
            recycle_front(&mut inbox);
        }
        drop(inbox);
        if n > 0 {
            self.hub.inbox_room.notify_all();
        }
        n
    }

    /// Takes datagrams from connections, or leaves the driver's waker for
    /// the readers; the waker is left before the last look, so a datagram
    /// queued in between is not missed.
    fn poll_websocket(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<usize> {
        let n = self.take_websocket(bufs, meta);
        if n > 0 {
            return Poll::Ready(n);
        }
        {
            let mut inbox = lock(&self.hub.inbox);
            if inbox.chunks.is_empty() {
                if !inbox
                    .waker
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
                {
                    inbox.waker = Some(cx.waker().clone());
                }
                return Poll::Pending;
            }
        }
        Poll::Ready(self.take_websocket(bufs, meta))
    }
}

/// Takes the front chunk (emptied) off the queue, to be read into again.
fn recycle_front(inbox: &mut Inbox) {
    if let Some(mut done) = inbox.chunks.pop_front()
        && inbox.free.len() < FREE_CHUNKS
    {
        done.datagrams.clear();
        inbox.free.push(done);
    }
}

impl Drop for FallbackSocket {
    /// The driver stopped (after its sessions' Closes were sent): every
    /// connection sends what it holds and closes.
    fn drop(&mut self) {
        self.hub.close();
    }
}

impl AsyncUdpSocket for FallbackSocket {
    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let websocket_first = !self.websocket_first.fetch_xor(true, Ordering::Relaxed);
        if websocket_first && let Poll::Ready(n) = self.poll_websocket(cx, bufs, meta) {
            return Poll::Ready(Ok(n));
        }
        if let Poll::Ready(result) = self.udp.poll_recv(cx, bufs, meta) {
            return Poll::Ready(result);
        }
        if !websocket_first && let Poll::Ready(n) = self.poll_websocket(cx, bufs, meta) {
            return Poll::Ready(Ok(n));
        }
        Poll::Pending
    }

    fn poll_writable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let blocked = lock(&self.blocked).take();
        match blocked {
            Some(conn) => match conn.poll_room(cx) {
                Poll::Ready(()) => Poll::Ready(Ok(())),
                Poll::Pending => {
                    *lock(&self.blocked) = Some(conn);
                    Poll::Pending
                }
            },
            None => self.udp.poll_writable(cx),
        }
    }

    fn try_send(&self, transmit: &Transmit<'_>) -> io::Result<()> {
        if let Some(conn) = self.hub.conn(transmit.destination) {
            return match conn.send(&self.hub, transmit.contents, transmit.segment_size) {
                Queued::Done => Ok(()),
                Queued::Full => {
                    *lock(&self.blocked) = Some(conn);
                    Err(io::ErrorKind::WouldBlock.into())
                }
            };
        }
        if self.hub.watched_count.load(Ordering::Acquire) > 0 {
            let size = transmit
                .segment_size
                .unwrap_or(transmit.contents.len())
                .max(1);
            if let Some(last) = transmit.contents.chunks(size).last() {
                self.hub.note_sent(transmit.destination, last);
            }
        }
        self.udp.try_send(transmit)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    fn max_gso_segments(&self) -> usize {
        self.udp.max_gso_segments()
    }

    fn gro_segments(&self) -> usize {
        self.udp.gro_segments()
    }

    fn may_fragment(&self) -> bool {
        self.udp.may_fragment()
    }

    fn take_unreachable(&self) -> Option<SocketAddr> {
        if let Some(addr) = self.hub.take_released_unreachable() {
            return Some(addr);
        }
        loop {
            let addr = self.udp.take_unreachable()?;
            // A host that refuses UDP may still take the fallback: the
            // report waits until the watched `connect`'s fallback failed.
            if !self.hub.hold_unreachable(addr) {
                return Some(addr);
            }
            tracing::debug!(%addr, "UDP refused; the WebSocket fallback may still answer");
        }
    }
}
