//! The driver holds the endpoint's lock only while it calls into the
//! protocol, never across a system call: a handle's call completes while the
//! driver is stuck inside a receive or a send.
//!
//! The client's socket is wrapped so that one chosen call (the next receive,
//! or the next send) stops and waits for the test to let it go. While the
//! driver is held there, the test calls the session's handles from its own
//! thread; they must complete before the socket call is released (the release
//! comes only after them, so a driver holding the lock across the call would
//! deadlock, caught by `within`). Then the bytes and their order are checked.
//! Nothing here depends on timing: every wait is for an event that must come.

use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::sync::{Arc, Condvar, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use ferry_async::{AsyncUdpSocket, Endpoint, EndpointConfig, RecvMeta, Session, Transmit};
use ferry_tests::harness::within;
use ferry_tests::tapped::{Tap, TappedRuntime};
use futures_lite::future::block_on;

/// Which socket call the gate stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    Receive,
    Send,
}

/// Where the gate is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum GateState {
    /// Every call passes.
    Open,
    /// The next call of this kind stops.
    Armed(Call),
    /// A call of this kind is stopped, inside the socket, until released.
    Holding(Call),
    /// The stopped call may go on.
    Released,
}

/// Stops one chosen socket call until the test releases it.
#[derive(Debug)]
struct Gate {
    state: Mutex<GateState>,
    changed: Condvar,
}

impl Gate {
    fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(GateState::Open),
            changed: Condvar::new(),
        })
    }

    /// Called by the socket at the start of `call`: waits there while the gate
    /// holds it.
    fn pass(&self, call: Call) {
        let mut state = self.state.lock().unwrap();
        if *state != GateState::Armed(call) {
            return;
        }
        *state = GateState::Holding(call);
        self.changed.notify_all();
        while *state != GateState::Released {
            state = self.changed.wait(state).unwrap();
        }
        *state = GateState::Open;
        self.changed.notify_all();
    }

    fn arm(&self, call: Call) {
        *self.state.lock().unwrap() = GateState::Armed(call);
    }

    /// Waits until the driver is stopped inside `call`.
    fn wait_holding(&self, call: Call) {
        let mut state = self.state.lock().unwrap();
        while *state != GateState::Holding(call) {
            state = self.changed.wait(state).unwrap();
        }
    }

    fn state(&self) -> GateState {
        *self.state.lock().unwrap()
    }

    /// Lets the stopped call go on, and waits until it has.
    fn release(&self) {
        let mut state = self.state.lock().unwrap();
        *state = GateState::Released;
        self.changed.notify_all();
        while *state == GateState::Released {
            state = self.changed.wait(state).unwrap();
        }
    }
}

impl Tap for Gate {
    fn poll_recv(
        &self,
        socket: &dyn AsyncUdpSocket,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        self.pass(Call::Receive);
        socket.poll_recv(cx, bufs, meta)
    }

    fn try_send(&self, socket: &dyn AsyncUdpSocket, transmit: &Transmit<'_>) -> io::Result<()> {
        self.pass(Call::Send);
        socket.try_send(transmit)
    }
}

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// A connected pair: the client's socket behind `gate`. The runtimes are
/// returned to keep them alive; each endpoint has its own, so a driver held
/// in the gate stops nothing of the other's.
struct Pair {
    client: Endpoint,
    server: Endpoint,
    session: Session,
    incoming: Session,
    gate: Arc<Gate>,
    _runtimes: Vec<tokio::runtime::Runtime>,
}

fn tokio_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn pair() -> Pair {
    let gate = Gate::new();
    let client_rt = tokio_runtime();
    let server_rt = tokio_runtime();
    let server = {
        let _guard = server_rt.enter();
        <Endpoint as ferry_tokio::EndpointExt>::bind(local(), EndpointConfig::server()).unwrap()
    };
    let client = {
        let _guard = client_rt.enter();
        let runtime = TappedRuntime::tokio(gate.clone());
        Endpoint::bind_with(runtime, local(), EndpointConfig::default()).unwrap()
    };
    let session = block_on(client.connect(server.local_addr())).unwrap();
    let incoming = block_on(server.accept()).unwrap();
    Pair {
        client,
        server,
        session,
        incoming,
        gate,
        _runtimes: vec![client_rt, server_rt],
    }
}

fn close(pair: Pair) {
    block_on(pair.client.close());
    block_on(pair.server.close());
}

fn session_calls_complete_while_the_driver_is_inside_a_socket_receive() {
    let pair = pair();
    pair.gate.arm(Call::Receive);
    // The driver's next poll (this message arriving wakes it, if nothing
    // else does first) stops inside the receive.
    block_on(pair.incoming.send(Bytes::from_static(b"to the client"))).unwrap();
    pair.gate.wait_holding(Call::Receive);

    // Every call below takes the endpoint's lock.
    let stats = pair.session.stats();
    assert_eq!(pair.client.sessions(), [pair.session.id()]);
    block_on(
        pair.session
            .send(Bytes::from_static(b"sent during the receive")),
    )
    .unwrap();
    pair.session
        .send_datagram(Bytes::from_static(b"a datagram"))
        .unwrap();
    let stream = pair
        .session
        .open_stream(ferry_async::StreamKind::ReliableOrdered)
        .unwrap();
    block_on(stream.send(Bytes::from_static(b"on a stream"))).unwrap();
    stream.finish().unwrap();
    // The driver never left the receive while they ran.
    assert_eq!(pair.gate.state(), GateState::Holding(Call::Receive));
    assert!(stats.packets_received > 0, "the handshake was received");

    pair.gate.release();
    // The wake-ups of the calls above were not lost: all of it goes out.
    assert_eq!(
        &block_on(pair.session.recv()).unwrap()[..],
        b"to the client"
    );
    assert_eq!(
        &block_on(pair.incoming.recv()).unwrap()[..],
        b"sent during the receive"
    );
    let theirs = block_on(pair.incoming.accept_stream()).unwrap();
    assert_eq!(
        block_on(theirs.recv()).unwrap().as_deref(),
        Some(&b"on a stream"[..])
    );
    assert_eq!(block_on(theirs.recv()).unwrap(), None);
    close(pair);
}

fn session_calls_complete_while_the_driver_is_inside_a_socket_send() {
    let pair = pair();
    pair.gate.arm(Call::Send);
    // The driver wakes to send this, and stops inside the send.
    block_on(pair.session.send(Bytes::from_static(b"first"))).unwrap();
    pair.gate.wait_holding(Call::Send);

    // Queued behind the batch held in the socket, without waiting for it.
    block_on(pair.session.send(Bytes::from_static(b"second"))).unwrap();
    block_on(pair.session.send(Bytes::from_static(b"third"))).unwrap();
    let _ = pair.session.stats();
    assert_eq!(pair.session.state(), ferry_async::State::Established);
    assert_eq!(pair.gate.state(), GateState::Holding(Call::Send));

    pair.gate.release();
    for expected in [&b"first"[..], b"second", b"third"] {
        assert_eq!(&block_on(pair.incoming.recv()).unwrap()[..], expected);
    }
    // And the other way, through the driver's receive.
    block_on(pair.incoming.send(Bytes::from_static(b"reply"))).unwrap();
    assert_eq!(&block_on(pair.session.recv()).unwrap()[..], b"reply");
    close(pair);
}

#[test]
fn session_calls_are_not_blocked_behind_the_drivers_socket_receive() {
    within(
        60,
        session_calls_complete_while_the_driver_is_inside_a_socket_receive,
    );
}

#[test]
fn session_calls_are_not_blocked_behind_the_drivers_socket_send() {
    within(
        60,
        session_calls_complete_while_the_driver_is_inside_a_socket_send,
    );
}
