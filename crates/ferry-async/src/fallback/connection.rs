//! One WebSocket connection: its outgoing buffer, its reader and writer
//! threads, and the starter's side (opening one when UDP goes unanswered).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use ferry_proto::{SessionId, State};
use tracing::{debug, info, warn};
use tungstenite::client::IntoClientRequest;
use tungstenite::http::HeaderValue;

use super::frame::{self, Decoder, Frame, MAX_HEADER, MAX_MESSAGE, Masks};
use super::{Chunk, Hub, WEBSOCKET_PATH, WEBSOCKET_PROTOCOL, lock};
use crate::shared::Shared;

/// How long opening a connection, and its HTTP upgrade, may take.
const OPEN_TIMEOUT: Duration = Duration::from_secs(5);
/// The reader's buffer: room for many frames per read, and at least two of
/// the largest.
const READ_BUFFER: usize = 256 << 10;
/// How long a full outgoing buffer may go without the writer taking it
/// before the connection counts as stalled: the driver then stops waiting
/// for it (which holds up every session of the endpoint) and drops what
/// does not fit, as a full network queue would.
const STALL: Duration = Duration::from_secs(1);

/// What became of a batch handed to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Queued {
    /// Framed into the outgoing buffer (or dropped, counted: the connection
    /// is closing or stalled).
    Done,
    /// No room: nothing was queued; wait for room
    /// ([`Connection::poll_room`]) and hand the batch again.
    Full,
}

/// What the writer thread sends next.
#[derive(Debug)]
struct Out {
    /// Frames waiting, one after the other, as they go on the wire.
    buf: Vec<u8>,
    /// A client's masks (`None` on a server's connection).
    masks: Option<Masks>,
    /// Close once `buf` is sent.
    closing: bool,
    /// When the writer last took the buffer (or it last became non-empty).
    taken: Instant,
    /// The driver, waiting for room.
    waker: Option<Waker>,
}

/// A WebSocket connection in the [`Hub`]'s table.
#[derive(Debug)]
pub(super) struct Connection {
    key: SocketAddr,
    stream: TcpStream,
    out: Mutex<Out>,
    ready: Condvar,
    limit: usize,
}

impl Connection {
    /// The address sessions see for the peer.
    pub(super) fn key(&self) -> SocketAddr {
        self.key
    }

    /// Frames each datagram of `contents` (`segment_size` apart) as one
    /// message into the outgoing buffer, or, if they do not all fit,
    /// queues nothing and answers [`Queued::Full`]: the driver waits for
    /// room, and TCP's pace becomes the session's (its congestion control
    /// sees a path that is slower, not one that loses). A connection whose
    /// writer has not taken its buffer for [`STALL`] is stalled: what does
    /// not fit is dropped and counted instead, so that one stuck peer does
    /// not hold up the endpoint's other sessions. Never waits for the
    /// network.
    pub(super) fn send(&self, hub: &Hub, contents: &[u8], segment_size: Option<usize>) -> Queued {
        let size = segment_size.unwrap_or(contents.len()).max(1);
        let count = contents.len().div_ceil(size);
        let (mut sent, mut dropped) = (0, 0);
        let wake = {
            let mut out = lock(&self.out);
            let was_empty = out.buf.is_empty();
            let needed = contents.len() + count * MAX_HEADER;
            let fits = out.buf.len() + needed <= self.limit;
            if !fits && !out.closing && !was_empty && out.taken.elapsed() < STALL {
                return Queued::Full;
            }
            if was_empty {
                out.taken = Instant::now();
            }
            for datagram in contents.chunks(size) {
                if out.closing || out.buf.len() + datagram.len() + MAX_HEADER > self.limit {
                    dropped += 1;
                    continue;
                }
                let mask = out.masks.as_mut().map(Masks::next_mask);
                frame::encode_message(&mut out.buf, datagram, mask);
                sent += 1;
            }
            was_empty && !out.buf.is_empty()
        };
        if wake {
            self.ready.notify_one();
        }
        hub.counters.sent.fetch_add(sent, Ordering::Relaxed);
        if dropped > 0 {
            hub.counters.dropped.fetch_add(dropped, Ordering::Relaxed);
        }
        Queued::Done
    }

    /// Ready once the outgoing buffer is empty again (the writer took it:
    /// any batch fits, as the buffer holds at least the largest), the
    /// connection closes, or it stalls; else leaves the driver's waker for
    /// the writer.
    pub(super) fn poll_room(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut out = lock(&self.out);
        if out.buf.is_empty() || out.closing || out.taken.elapsed() >= STALL {
            return Poll::Ready(());
        }
        if !out.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            out.waker = Some(cx.waker().clone());
        }
        Poll::Pending
    }

    /// Queues a pong answering `payload`.
    fn pong(&self, payload: &[u8]) {
        {
            let mut out = lock(&self.out);
            let mask = out.masks.as_mut().map(Masks::next_mask);
            frame::encode_pong(&mut out.buf, payload, mask);
        }
        self.ready.notify_one();
    }

    /// Has the writer send what is queued, then a close frame, and end.
    pub(super) fn shutdown(&self) {
        let waker = {
            let mut out = lock(&self.out);
            out.closing = true;
            out.waker.take()
        };
        self.ready.notify_one();
        if let Some(waker) = waker {
            waker.wake();
        }
    }
}

/// Starts the reader and writer of a connection whose HTTP upgrade is done,
/// and files it in the hub. `client`: this side opened it (and masks). The
/// place in `max_connections` is already taken.
pub(super) fn start(
    hub: &Arc<Hub>,
    stream: TcpStream,
    key: SocketAddr,
    client: bool,
) -> io::Result<Arc<Connection>> {
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(None)?;
    let writer_stream = stream.try_clone()?;
    let reader_stream = stream.try_clone()?;
    let conn = Arc::new(Connection {
        key,
        stream,
        out: Mutex::new(Out {
            buf: Vec::with_capacity(64 << 10),
            masks: client.then(Masks::new),
            closing: false,
            taken: Instant::now(),
            waker: None,
        }),
        ready: Condvar::new(),
        limit: hub.config.buffer,
    });
    let writer = {
        let conn = conn.clone();
        std::thread::Builder::new()
            .name("ferry-ws-writer".into())
            .spawn(move || write_loop(&conn, writer_stream))?
    };
    hub.register(conn.clone());
    let reader = {
        let (conn, hub) = (conn.clone(), hub.clone());
        std::thread::Builder::new()
            .name("ferry-ws-reader".into())
            .spawn(move || {
                read_loop(&hub, &conn, reader_stream, !client);
                hub.unregister(&conn);
                conn.shutdown();
                let _ = writer.join();
                hub.counters.closed.fetch_add(1, Ordering::Relaxed);
                hub.release();
                debug!(peer = %conn.key, "WebSocket connection ended");
            })
    };
    if let Err(e) = reader {
        hub.unregister(&conn);
        conn.shutdown();
        return Err(e);
    }
    Ok(conn)
}

/// Sends what is queued, a batch per `write`, until closed; then a close
/// frame, and shuts the stream down (which ends the reader).
fn write_loop(conn: &Connection, mut stream: TcpStream) {
    let mut sending = Vec::with_capacity(64 << 10);
    loop {
        let (closing, waker) = {
            let mut out = lock(&conn.out);
            while out.buf.is_empty() && !out.closing {
                out = conn.ready.wait(out).unwrap_or_else(PoisonError::into_inner);
            }
            std::mem::swap(&mut out.buf, &mut sending);
            out.taken = Instant::now();
            if out.closing {
                let mask = out.masks.as_mut().map(Masks::next_mask);
                frame::encode_close(&mut sending, mask);
            }
            (out.closing, out.waker.take())
        };
        // Room again: the driver may hand its batch.
        if let Some(waker) = waker {
            waker.wake();
        }
        if let Err(e) = stream.write_all(&sending) {
            debug!(peer = %conn.key, error = %e, "WebSocket write failed");
            break;
        }
        sending.clear();
        if closing {
            break;
        }
    }
    let waker = {
        let mut out = lock(&conn.out);
        out.closing = true;
        out.waker.take()
    };
    if let Some(waker) = waker {
        waker.wake();
    }
    // The peer's reader sees the end, and so does ours.
    let _ = stream.shutdown(Shutdown::Write);
    let _ = conn.stream.shutdown(Shutdown::Read);
}

/// Reads frames until the stream ends, an error, or a close frame; hands
/// each read's datagrams to the hub with the buffer they are in (no copy
/// here; the driver copies each out, unmasking as it goes). `masked`: the
/// peer is a client.
fn read_loop(hub: &Hub, conn: &Connection, mut stream: TcpStream, masked: bool) {
    let size = READ_BUFFER.max(2 * (MAX_MESSAGE + MAX_HEADER));
    let mut decoder = Decoder::new(masked);
    let mut chunk = Chunk::default();
    chunk.data.resize(size, 0);
    // The partial frame at the end of a buffer handed over, on its way to
    // the next buffer.
    let mut tail = Vec::new();
    let (mut start, mut end) = (0, 0);
    loop {
        if end == chunk.data.len() {
            // Move the partial frame to the front (no datagram of this
            // buffer was handed over: those buffers are swapped out).
            chunk.data.copy_within(start..end, 0);
            end -= start;
            start = 0;
        }
        let n = match stream.read(&mut chunk.data[end..]) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                debug!(peer = %conn.key, error = %e, "WebSocket read failed");
                return;
            }
        };
        end += n;
        let mut closing = false;
        loop {
            match decoder.decode_lazily(&mut chunk.data[start..end]) {
                Ok(None) => break,
                Ok(Some((frame, used, mask))) => {
                    let base = start;
                    start += used;
                    match frame {
                        Frame::Message(range) => chunk
                            .datagrams
                            .push_back((base + range.start..base + range.end, mask)),
                        Frame::Assembled => {
                            // Rare (a peer that fragments): a chunk of its own.
                            let message = decoder.assembled().to_vec();
                            let own = Chunk {
                                from: conn.key,
                                datagrams: [(0..message.len(), None)].into(),
                                data: message,
                            };
                            if hub.deliver(own).is_none() {
                                return;
                            }
                        }
                        Frame::Ping(range) => {
                            conn.pong(&chunk.data[base + range.start..base + range.end]);
                        }
                        Frame::Partial | Frame::Pong => {}
                        Frame::Close => {
                            closing = true;
                            break;
                        }
                    }
                }
                Err(e) => {
                    hub.counters.malformed.fetch_add(1, Ordering::Relaxed);
                    warn!(peer = %conn.key, error = %e, "malformed WebSocket frame: connection closed");
                    closing = true;
                    break;
                }
            }
        }
        if !chunk.datagrams.is_empty() {
            // Every datagram of this read in one hand-over, in the buffer
            // as read; reading goes on in a spare one.
            tail.clear();
            tail.extend_from_slice(&chunk.data[start..end]);
            chunk.from = conn.key;
            let Some(mut next) = hub.deliver(std::mem::take(&mut chunk)) else {
                return;
            };
            next.data.resize(size, 0);
            next.data[..tail.len()].copy_from_slice(&tail);
            (start, end) = (0, tail.len());
            chunk = next;
        }
        if closing {
            return;
        }
        if start == end {
            (start, end) = (0, 0);
        }
    }
}

/// The starter's fallback: waits `after`; if session `id` is still
/// handshaking then, opens a WebSocket connection to `remote` and sends the
/// last datagram again over it (the listener takes a repeated Connect as
/// the same one).
pub(super) fn dial_when_unanswered(
    hub: &Arc<Hub>,
    remote: SocketAddr,
    after: Duration,
    shared: &Weak<Shared>,
    id: SessionId,
) {
    std::thread::sleep(after);
    let waiting = || {
        shared.upgrade().is_some_and(|shared| {
            let mut state = shared.lock();
            !state.closing
                && matches!(
                    state.endpoint.session(id).map(|s| s.state()),
                    Some(State::Init | State::Handshaking)
                )
        })
    };
    if hub.is_closed() || !waiting() || hub.conn(remote).is_some() {
        hub.unwatch(remote, true);
        return;
    }
    info!(%remote, after = ?after, "UDP got no answer: falling back to WebSocket over TCP");
    let opened = if hub.reserve() {
        let opened = open(remote).and_then(|stream| start(hub, stream, remote, true));
        if opened.is_err() {
            hub.release();
        }
        opened
    } else {
        Err(io::Error::other("too many fallback connections"))
    };
    let last = hub.unwatch(remote, opened.is_ok());
    match opened {
        Ok(conn) => {
            if let Some(last) = last {
                conn.send(hub, &last, None);
            }
            if let Some(shared) = shared.upgrade() {
                // Anything the session sends now goes over the connection.
                shared.lock().wake_driver();
            }
        }
        Err(e) => {
            warn!(%remote, error = %e, "could not open the WebSocket fallback: UDP only");
            if let Some(shared) = shared.upgrade() {
                // A refusal held back is the driver's now.
                shared.lock().wake_driver();
            }
        }
    }
}

/// Opens a TCP connection to `remote` and runs the HTTP upgrade.
///
/// No frame can come before the upgrade's answer is read whole (and the
/// handshake's reader, which may read ahead, is dropped): the listener sends
/// to this connection only in answer to what it receives on it, and nothing
/// is sent until the upgrade is done.
fn open(remote: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&remote, OPEN_TIMEOUT)?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(OPEN_TIMEOUT))?;
    stream.set_write_timeout(Some(OPEN_TIMEOUT))?;
    let mut request = format!("ws://{remote}{WEBSOCKET_PATH}")
        .into_client_request()
        .map_err(io::Error::other)?;
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static(WEBSOCKET_PROTOCOL),
    );
    let (_socket, response) = tungstenite::client::client(request, stream.try_clone()?)
        .map_err(|e| io::Error::other(format!("the WebSocket upgrade failed: {e}")))?;
    let protocol = response.headers().get("Sec-WebSocket-Protocol");
    if protocol.is_none_or(|p| p != WEBSOCKET_PROTOCOL) {
        return Err(io::Error::other(
            "the server did not agree to the `ferry` WebSocket subprotocol",
        ));
    }
    Ok(stream)
}

#[cfg(test)]
mod tests {
    use std::net::TcpListener;
    use std::task::Waker;

    use super::super::{FallbackConfig, MIN_BUFFER};
    use super::*;

    #[test]
    fn a_full_connection_refuses_a_batch_until_it_stalls_then_drops_it() {
        let hub = Hub::new(FallbackConfig {
            buffer: MIN_BUFFER,
            ..FallbackConfig::default()
        });
        // A peer that never reads: the kernel's buffers fill, then ours.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (peer, _) = listener.accept().unwrap();
        // Small kernel buffers, set by hand (which stops the kernel from
        // growing them): once full they stay full.
        socket2::SockRef::from(&stream)
            .set_send_buffer_size(4096)
            .unwrap();
        socket2::SockRef::from(&peer)
            .set_recv_buffer_size(4096)
            .unwrap();
        let key = stream.peer_addr().unwrap();
        assert!(hub.reserve());
        let conn = start(&hub, stream, key, false).unwrap();
        let batch = vec![7u8; 32_000];
        let fill = || {
            let start = Instant::now();
            while conn.send(&hub, &batch, Some(16_000)) == Queued::Done {
                assert!(start.elapsed() < Duration::from_secs(30), "never full");
            }
        };
        let mut cx = Context::from_waker(Waker::noop());
        // Fill the buffer until the writer stops taking it: it is blocked on
        // the socket, whose buffers the peer never empties.
        let start = Instant::now();
        loop {
            fill();
            let filled = Instant::now();
            while conn.poll_room(&mut cx).is_pending()
                && filled.elapsed() < Duration::from_millis(300)
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            if conn.poll_room(&mut cx).is_pending() {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30), "never blocked");
        }
        // Full, not stalled yet: nothing dropped, the driver is to wait.
        assert_eq!(hub.stats().datagrams_dropped, 0);
        assert!(conn.poll_room(&mut cx).is_pending());
        std::thread::sleep(STALL + Duration::from_millis(100));
        // Stalled: the driver may go on, and what does not fit is dropped.
        assert!(conn.poll_room(&mut cx).is_ready());
        assert_eq!(conn.send(&hub, &batch, Some(16_000)), Queued::Done);
        assert_eq!(hub.stats().datagrams_dropped, 2);
        hub.close();
    }
}
