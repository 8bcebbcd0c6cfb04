//! Drivers behind one interface, and deterministic test messages.

use std::net::SocketAddr;
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::Duration;

use bytes::Bytes;
use ferry_async::types::{
    AckError, BindError, BroadcastReport, CloseReason, ClosedEvent, ConnectError, DatagramError,
    EndpointConfig, EndpointStats, FallbackStats, PublicKey, RecvError, SendError, SessionId,
    SessionStats, State, StreamEnd, StreamError, StreamId, StreamKind, StreamRecvError,
    StreamSendError, Ticket, Transport,
};
use futures_lite::future::{self, block_on};

use crate::pending::Pending;

// The blocking driver's side of the traits below.
mod blocking;

/// The drivers under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// `ferry-tokio`.
    Tokio,
    /// `ferry-async-std`.
    AsyncStd,
    /// `ferry-smol`.
    Smol,
    /// `ferry-blocking`.
    Blocking,
}

impl Driver {
    /// Every driver.
    pub const ALL: &'static [Driver] = &[
        Driver::Tokio,
        Driver::AsyncStd,
        Driver::Smol,
        Driver::Blocking,
    ];

    /// Binds an endpoint on this driver; panics if binding fails.
    pub fn bind(self, addr: SocketAddr, config: EndpointConfig) -> Box<dyn Peer> {
        self.try_bind(addr, config).expect("bind")
    }

    /// Binds an endpoint on this driver, or says why it could not.
    pub fn try_bind(
        self,
        addr: SocketAddr,
        config: EndpointConfig,
    ) -> Result<Box<dyn Peer>, BindError> {
        Ok(match self {
            Driver::Tokio => {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("tokio runtime");
                let endpoint = {
                    let _guard = rt.enter();
                    <ferry_async::Endpoint as ferry_tokio::EndpointExt>::bind(addr, config)?
                };
                Box::new(AsyncPeer {
                    endpoint,
                    _runtime: Some(Arc::new(rt)),
                })
            }
            Driver::AsyncStd => Box::new(AsyncPeer {
                endpoint: <ferry_async::Endpoint as ferry_async_std::EndpointExt>::bind(
                    addr, config,
                )?,
                _runtime: None,
            }),
            Driver::Smol => Box::new(AsyncPeer {
                endpoint: <ferry_async::Endpoint as ferry_smol::EndpointExt>::bind(addr, config)?,
                _runtime: None,
            }),
            Driver::Blocking => Box::new(ferry_blocking::Endpoint::bind(addr, config)?),
        })
    }
}

/// Runs `test` on a thread of its own and fails if it takes longer than
/// `secs`: a call that never returns (a lost wake-up) is a failure, not a
/// hung run. A panic in `test` is passed on.
pub fn within<T: Send + 'static>(secs: u64, test: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let _ = tx.send(test());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(value) => {
            worker.join().unwrap();
            value
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The test panicked: report its panic.
            std::panic::resume_unwind(worker.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test still blocked after {secs} s"),
    }
}

/// Defines, for each test function named (a `fn(Driver)`), one `#[test]` per
/// driver: a module per driver (`tokio`, `async_std`, `smol`, `blocking`)
/// holding a test of the same name that calls it with that driver. The one
/// way the cross-crate tests run a scenario on every driver:
///
/// ```text
/// fn messages_arrive(driver: Driver) { /* … */ }
///
/// ferry_tests::on_every_driver! {
///     messages_arrive,
/// }
/// // cargo test -p ferry-tests --test <file> smol::messages_arrive
/// ```
#[macro_export]
macro_rules! on_every_driver {
    ($($test:ident,)*) => {
        $crate::on_every_driver!(@on tokio: Tokio; $($test,)*);
        $crate::on_every_driver!(@on async_std: AsyncStd; $($test,)*);
        $crate::on_every_driver!(@on smol: Smol; $($test,)*);
        $crate::on_every_driver!(@on blocking: Blocking; $($test,)*);
    };
    (@on $module:ident: $driver:ident; $($test:ident,)*) => {
        #[doc = concat!("The tests of this file on the `", stringify!($driver), "` driver.")]
        mod $module {
            $(
                #[test]
                fn $test() {
                    super::$test($crate::harness::Driver::$driver);
                }
            )*
        }
    };
}

/// An endpoint, whatever drives it.
pub trait Peer: Send + Sync {
    /// Where peers send to.
    fn local_addr(&self) -> SocketAddr;
    /// Opens a session.
    fn connect(&self, addr: SocketAddr) -> Result<Box<dyn Conn>, ConnectError>;
    /// Opens a session pinning `key` as the listener's (identities).
    fn connect_to(&self, addr: SocketAddr, key: PublicKey) -> Result<Box<dyn Conn>, ConnectError>;
    /// Opens a session resuming with `ticket`, `early` as early data.
    fn connect_resumed(
        &self,
        ticket: &Ticket,
        early: &[Bytes],
    ) -> Result<Box<dyn Conn>, ConnectError>;
    /// The next incoming session.
    fn accept(&self) -> Option<Box<dyn Conn>>;
    /// The next peer asking to open a session (`decide_incoming`).
    fn incoming(&self) -> Option<Box<dyn Pending>>;
    /// How many sessions are open.
    fn session_count(&self) -> usize;
    /// The endpoint's counters.
    fn stats(&self) -> EndpointStats;
    /// The open sessions, in id order.
    fn sessions(&self) -> Vec<SessionId>;
    /// A handle on an open session.
    fn session(&self, id: SessionId) -> Option<Box<dyn Conn>>;
    /// Queues a message on every established session, never waiting.
    fn broadcast(&self, message: Bytes) -> BroadcastReport;
    /// Queues a message on the sessions `ids`, never waiting.
    fn broadcast_to(&self, ids: &[SessionId], message: Bytes) -> BroadcastReport;
    /// Subscribes to closed sessions.
    fn closed_events(&self) -> Box<dyn Subscription>;
    /// Subscribes to closed sessions, holding at most `capacity` events.
    fn closed_events_with_capacity(&self, capacity: usize) -> Box<dyn Subscription>;
    /// Starts or stops accepting sessions.
    fn set_accept_incoming(&self, accept: bool);
    /// Closes every session and stops.
    fn close(&self);
    /// Whether the endpoint is closed.
    fn is_closed(&self) -> bool;
    /// The TCP address accepting the WebSocket fallback, if it listens.
    fn fallback_addr(&self) -> Option<SocketAddr>;
    /// The fallback's counters.
    fn fallback_stats(&self) -> FallbackStats;
}

/// A subscription to closed sessions, whatever drives it.
pub trait Subscription: Send {
    /// The next event, `Ok(None)` once the endpoint stopped, `Err` when
    /// nothing came within `timeout`.
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<ClosedEvent>, String>;
}

/// A session, whatever drives it. Every call blocks the calling thread.
pub trait Conn: Send + Sync {
    /// The session's id.
    fn id(&self) -> SessionId;
    /// Another handle on the same session (the session closes when the last
    /// one is dropped).
    fn clone_handle(&self) -> Box<dyn Conn>;
    /// The peer's address.
    fn remote_addr(&self) -> SocketAddr;
    /// Which transport carries the session.
    fn transport(&self) -> Transport;
    /// The peer's authenticated public key (identities).
    fn peer_identity(&self) -> Option<PublicKey>;
    /// The last resumption ticket the listener gave this session.
    fn ticket(&self) -> Option<Ticket>;
    /// Whether the session was opened with a ticket.
    fn is_resumed(&self) -> bool;
    /// Where the session stands.
    fn state(&self) -> State;
    /// The largest message `send` takes.
    fn max_message_size(&self) -> usize;
    /// The largest datagram `send_datagram` takes.
    fn max_datagram_size(&self) -> usize;
    /// Sends a message (waits under backpressure).
    fn send(&self, message: Bytes) -> Result<(), SendError>;
    /// Receives the next message.
    fn recv(&self) -> Result<Bytes, RecvError>;
    /// Sends an unreliable datagram.
    fn send_datagram(&self, datagram: Bytes) -> Result<(), DatagramError>;
    /// The next datagram; `Err(RecvError::Timeout)` when none came within
    /// `timeout`.
    fn recv_datagram(&self, timeout: Duration) -> Result<Bytes, RecvError>;
    /// Closes with an application code.
    fn close(&self, code: u64);
    /// Closes with an application code and text.
    fn close_with_reason(&self, code: u64, reason: &str);
    /// Waits for the end of the session.
    fn closed(&self) -> CloseReason;
    /// Counters.
    fn stats(&self) -> SessionStats;
    /// Opens a stream.
    fn open_stream(&self, kind: StreamKind) -> Result<Box<dyn StreamConn>, StreamError>;
    /// The next stream the peer opened: `Ok(None)` once the session is
    /// closed, `Err` when none came within `timeout`.
    fn accept_stream(&self, timeout: Duration) -> Result<Option<Box<dyn StreamConn>>, String>;
    /// Waits at most `timeout` for the peer to acknowledge every message
    /// sent on the session so far (`Session::acknowledged`).
    fn acknowledged(&self, timeout: Duration) -> Result<(), AckError>;
}

/// A stream, whatever drives it. Every call blocks the calling thread.
pub trait StreamConn: Send + Sync {
    /// The stream's id.
    fn id(&self) -> StreamId;
    /// Its kind.
    fn kind(&self) -> StreamKind;
    /// Sends a message (waits under backpressure).
    fn send(&self, message: Bytes) -> Result<(), StreamSendError>;
    /// The next message, `Ok(None)` at the end; `Err(Timeout)` when nothing
    /// came within `timeout`.
    fn recv(&self, timeout: Duration) -> Result<Option<Bytes>, StreamRecvError>;
    /// Finishes this side's sending.
    fn finish(&self) -> Result<(), StreamSendError>;
    /// Resets this side's sending.
    fn reset(&self, code: u64) -> Result<(), StreamSendError>;
    /// How the peer's side ended, if it did.
    fn end(&self) -> Option<StreamEnd>;
    /// Waits for the peer's side to end.
    fn closed(&self) -> Option<StreamEnd>;
    /// Waits at most `timeout` for the peer to acknowledge every message
    /// sent on the stream so far (`Stream::acknowledged`).
    fn acknowledged(&self, timeout: Duration) -> Result<(), AckError>;
    /// Finishes, then waits at most `timeout` for the peer to acknowledge
    /// everything and the finish (`Stream::finish_acknowledged`).
    fn finish_acknowledged(&self, timeout: Duration) -> Result<(), AckError>;
}

struct AsyncPeer {
    endpoint: ferry_async::Endpoint,
    /// Keeps the runtime (and so the driver task) alive.
    _runtime: Option<Arc<tokio::runtime::Runtime>>,
}

impl Peer for AsyncPeer {
    fn local_addr(&self) -> SocketAddr {
        self.endpoint.local_addr()
    }

    fn connect(&self, addr: SocketAddr) -> Result<Box<dyn Conn>, ConnectError> {
        let session = block_on(self.endpoint.connect(addr))?;
        Ok(Box::new(AsyncConn(session)))
    }

    fn connect_to(&self, addr: SocketAddr, key: PublicKey) -> Result<Box<dyn Conn>, ConnectError> {
        let session = block_on(self.endpoint.connect_to(addr, key))?;
        Ok(Box::new(AsyncConn(session)))
    }

    fn connect_resumed(
        &self,
        ticket: &Ticket,
        early: &[Bytes],
    ) -> Result<Box<dyn Conn>, ConnectError> {
        let session = block_on(self.endpoint.connect_resumed(ticket, early))?;
        Ok(Box::new(AsyncConn(session)))
    }

    fn accept(&self) -> Option<Box<dyn Conn>> {
        block_on(self.endpoint.accept()).map(|s| Box::new(AsyncConn(s)) as Box<dyn Conn>)
    }

    fn incoming(&self) -> Option<Box<dyn Pending>> {
        block_on(self.endpoint.incoming()).map(|i| Box::new(i) as Box<dyn Pending>)
    }

    fn session_count(&self) -> usize {
        self.endpoint.session_count()
    }

    fn stats(&self) -> EndpointStats {
        self.endpoint.stats()
    }

    fn sessions(&self) -> Vec<SessionId> {
        self.endpoint.sessions()
    }

    fn session(&self, id: SessionId) -> Option<Box<dyn Conn>> {
        self.endpoint
            .session(id)
            .map(|s| Box::new(AsyncConn(s)) as Box<dyn Conn>)
    }

    fn broadcast(&self, message: Bytes) -> BroadcastReport {
        self.endpoint.broadcast(message)
    }

    fn broadcast_to(&self, ids: &[SessionId], message: Bytes) -> BroadcastReport {
        self.endpoint.broadcast_to(ids, message)
    }

    fn closed_events(&self) -> Box<dyn Subscription> {
        Box::new(AsyncSubscription(self.endpoint.closed_events()))
    }

    fn closed_events_with_capacity(&self, capacity: usize) -> Box<dyn Subscription> {
        Box::new(AsyncSubscription(
            self.endpoint.closed_events_with_capacity(capacity),
        ))
    }

    fn set_accept_incoming(&self, accept: bool) {
        self.endpoint.set_accept_incoming(accept);
    }

    fn close(&self) {
        block_on(self.endpoint.close());
    }

    fn is_closed(&self) -> bool {
        self.endpoint.is_closed()
    }

    fn fallback_addr(&self) -> Option<SocketAddr> {
        self.endpoint.fallback_addr()
    }

    fn fallback_stats(&self) -> FallbackStats {
        self.endpoint.fallback_stats()
    }
}

struct AsyncSubscription(ferry_async::ClosedEvents);

impl Subscription for AsyncSubscription {
    fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<ClosedEvent>, String> {
        block_on(future::or(async { Ok(self.0.next().await) }, async {
            async_io::Timer::after(timeout).await;
            Err(format!("no closed event within {timeout:?}"))
        }))
    }
}

pub(crate) struct AsyncConn(pub(crate) ferry_async::Session);

impl Conn for AsyncConn {
    fn id(&self) -> SessionId {
        self.0.id()
    }

    fn clone_handle(&self) -> Box<dyn Conn> {
        Box::new(AsyncConn(self.0.clone()))
    }

    fn remote_addr(&self) -> SocketAddr {
        self.0.remote_addr()
    }

    fn transport(&self) -> Transport {
        self.0.transport()
    }

    fn peer_identity(&self) -> Option<PublicKey> {
        self.0.peer_identity()
    }

    fn ticket(&self) -> Option<Ticket> {
        self.0.ticket()
    }

    fn is_resumed(&self) -> bool {
        self.0.is_resumed()
    }

    fn state(&self) -> State {
        self.0.state()
    }

    fn max_message_size(&self) -> usize {
        self.0.max_message_size()
    }

    fn max_datagram_size(&self) -> usize {
        self.0.max_datagram_size()
    }

    fn send(&self, message: Bytes) -> Result<(), SendError> {
        block_on(self.0.send(message))
    }

    fn recv(&self) -> Result<Bytes, RecvError> {
        block_on(self.0.recv())
    }

    fn send_datagram(&self, datagram: Bytes) -> Result<(), DatagramError> {
        self.0.send_datagram(datagram)
    }

    fn recv_datagram(&self, timeout: Duration) -> Result<Bytes, RecvError> {
        block_on(future::or(self.0.recv_datagram(), async {
            async_io::Timer::after(timeout).await;
            Err(RecvError::Timeout)
        }))
    }

    fn close(&self, code: u64) {
        self.0.close(code);
    }

    fn close_with_reason(&self, code: u64, reason: &str) {
        self.0.close_with_reason(code, reason);
    }

    fn closed(&self) -> CloseReason {
        block_on(self.0.closed())
    }

    fn stats(&self) -> SessionStats {
        self.0.stats()
    }

    fn open_stream(&self, kind: StreamKind) -> Result<Box<dyn StreamConn>, StreamError> {
        Ok(Box::new(AsyncStream(self.0.open_stream(kind)?)))
    }

    fn accept_stream(&self, timeout: Duration) -> Result<Option<Box<dyn StreamConn>>, String> {
        block_on(future::or(
            async {
                Ok(self
                    .0
                    .accept_stream()
                    .await
                    .map(|s| Box::new(AsyncStream(s)) as Box<dyn StreamConn>))
            },
            async {
                async_io::Timer::after(timeout).await;
                Err(format!("no stream opened within {timeout:?}"))
            },
        ))
    }

    fn acknowledged(&self, timeout: Duration) -> Result<(), AckError> {
        block_on(future::or(self.0.acknowledged(), ack_timeout(timeout)))
    }
}

/// The runtime's timeout around an `acknowledged` future.
async fn ack_timeout(timeout: Duration) -> Result<(), AckError> {
    async_io::Timer::after(timeout).await;
    Err(AckError::Timeout)
}

struct AsyncStream(ferry_async::Stream);

impl StreamConn for AsyncStream {
    fn id(&self) -> StreamId {
        self.0.id()
    }

    fn kind(&self) -> StreamKind {
        self.0.kind()
    }

    fn send(&self, message: Bytes) -> Result<(), StreamSendError> {
        block_on(self.0.send(message))
    }

    fn recv(&self, timeout: Duration) -> Result<Option<Bytes>, StreamRecvError> {
        block_on(future::or(self.0.recv(), async {
            async_io::Timer::after(timeout).await;
            Err(StreamRecvError::Timeout)
        }))
    }

    fn finish(&self) -> Result<(), StreamSendError> {
        self.0.finish()
    }

    fn reset(&self, code: u64) -> Result<(), StreamSendError> {
        self.0.reset(code)
    }

    fn acknowledged(&self, timeout: Duration) -> Result<(), AckError> {
        block_on(future::or(self.0.acknowledged(), ack_timeout(timeout)))
    }

    fn finish_acknowledged(&self, timeout: Duration) -> Result<(), AckError> {
        block_on(future::or(
            self.0.finish_acknowledged(),
            ack_timeout(timeout),
        ))
    }

    fn end(&self) -> Option<StreamEnd> {
        self.0.end()
    }

    fn closed(&self) -> Option<StreamEnd> {
        block_on(self.0.closed())
    }
}

/// Deterministic messages: sizes spread log-uniformly from 0 to `max` (so both
/// tiny and multi-hundred-kilobyte messages are common), contents a function of
/// the message's index and the byte's position, so a receiver can check every
/// byte without a copy of what was sent.
#[derive(Debug, Clone)]
pub struct Messages {
    state: u64,
    max: usize,
}

impl Messages {
    /// A sequence for `seed`, sizes up to `max` bytes.
    pub fn new(seed: u64, max: usize) -> Self {
        Self {
            state: seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1,
            max,
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// The size of the next message.
    pub fn next_size(&mut self) -> usize {
        let bits = (usize::BITS - self.max.leading_zeros()) as u64;
        let exp = self.next_u64() % (bits + 1);
        let ceiling = (1usize << exp).min(self.max + 1);
        (self.next_u64() % ceiling as u64) as usize
    }

    /// Message number `index` of `size` bytes.
    pub fn content(index: usize, size: usize) -> Bytes {
        (0..size)
            .map(|j| Self::byte(index, j))
            .collect::<Vec<u8>>()
            .into()
    }

    /// The expected byte at `position` of message `index`.
    pub fn byte(index: usize, position: usize) -> u8 {
        (index.wrapping_mul(31) ^ position.wrapping_mul(7) ^ (position >> 8)) as u8
    }

    /// Whether `data` is exactly message `index` of `size` bytes.
    pub fn check(index: usize, size: usize, data: &[u8]) -> bool {
        data.len() == size
            && data
                .iter()
                .enumerate()
                .all(|(j, &b)| b == Self::byte(index, j))
    }
}

/// A client and a server on `driver` with the project's lossy relay between
/// them (`link` each way, randomness from `seed`); connect the client to
/// [`Relay::local_addr`](ferry_relay::Relay::local_addr).
pub fn through_relay(
    driver: Driver,
    link: ferry_relay::LinkConfig,
    config: ferry_async::Config,
    seed: u64,
) -> (Box<dyn Peer>, Box<dyn Peer>, ferry_relay::Relay) {
    let server = driver.bind(
        "127.0.0.1:0".parse().unwrap(),
        EndpointConfig::from(ferry_async::Config {
            accept_incoming: true,
            ..config.clone()
        }),
    );
    let client = driver.bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::from(config));
    let relay = ferry_relay::Relay::start(
        "127.0.0.1:0".parse().unwrap(),
        server.local_addr(),
        link.clone(),
        link,
        seed,
    )
    .expect("start the relay");
    (client, server, relay)
}

/// Sends `count` messages of random sizes up to `max` bytes from `client` to
/// `server` (through `to`), checks every byte on a thread of the server's,
/// waits for its answer and closes; returns the client session's counters
/// (read before the close) and the server.
pub fn exchange(
    client: &dyn Peer,
    server: Box<dyn Peer>,
    to: SocketAddr,
    count: usize,
    max: usize,
) -> (SessionStats, Box<dyn Peer>) {
    let mut sizes = Messages::new(count as u64, max);
    let plan: Vec<usize> = (0..count).map(|_| sizes.next_size()).collect();
    let expected = plan.clone();
    let receiver = std::thread::spawn(move || {
        let session = server.accept().expect("session");
        for (i, &size) in expected.iter().enumerate() {
            let data = session.recv().expect("message");
            assert!(Messages::check(i, size, &data), "message {i}");
        }
        session.send(Bytes::from_static(b"done")).unwrap();
        session.closed();
        server
    });
    let session = client.connect(to).expect("connect through the relay");
    for (i, &size) in plan.iter().enumerate() {
        session.send(Messages::content(i, size)).unwrap();
    }
    assert_eq!(&session.recv().unwrap()[..], b"done");
    let stats = session.stats();
    session.close(0);
    (stats, receiver.join().unwrap())
}
