//! The sans-IO core of Ferry, a transport that moves data over UDP.
//!
//! This crate is fully deterministic: it opens no sockets, starts no threads and
//! reads no clock. The caller feeds it datagrams and the current time, and polls
//! it for datagrams to send, events, and the next deadline. The same inputs give
//! the same outputs, which is what lets `ferry-sim` replay a lossy network bit for
//! bit and lets any runtime (tokio, async-std, smol, plain threads) drive it.
//!
//! An [`Endpoint`] serves many sessions over one socket. A session carries
//! reliable, ordered messages (split into packets of at most the MTU, acked in
//! ranges, repaired by repeat requests and retransmission), unreliable datagrams,
//! keep-alive pings, and a close with a reason code. `docs/protocol.md` in the
//! repository describes the wire format byte by byte.
//!
//! # The run loop
//!
//! ```no_run
//! use std::net::UdpSocket;
//! use std::time::Instant;
//! use bytes::BytesMut;
//! use ferry_proto::{Config, Endpoint, Event};
//!
//! let socket = UdpSocket::bind("127.0.0.1:0")?;
//! let mut endpoint = Endpoint::new(Config::default(), rand_seed())?;
//! let id = endpoint.connect(Instant::now(), "127.0.0.1:4433".parse()?)?;
//! endpoint.session(id).unwrap().send(&b"hello"[..])?;
//!
//! let mut out = Vec::new();
//! let mut inbuf = vec![0u8; 65_535];
//! loop {
//!     let now = Instant::now();
//!     // 1. Send everything the endpoint has to send.
//!     while let Some(t) = endpoint.poll_transmit(now, &mut out) {
//!         socket.send_to(&out[..t.size], t.destination)?;
//!     }
//!     // 2. Hand events to the application.
//!     while let Some(event) = endpoint.poll_event() {
//!         if let Event::Closed { .. } = event {
//!             return Ok(());
//!         }
//!     }
//!     // 3. Wait for a datagram or the next deadline, whichever comes first.
//!     let deadline = endpoint.poll_timeout();
//!     let wait = deadline.map(|d| d.saturating_duration_since(now));
//!     socket.set_read_timeout(wait.filter(|w| !w.is_zero()).or(Some(std::time::Duration::from_millis(1))))?;
//!     match socket.recv_from(&mut inbuf) {
//!         Ok((n, from)) => endpoint.handle_datagram(Instant::now(), from, BytesMut::from(&inbuf[..n])),
//!         Err(_) => endpoint.handle_timeout(Instant::now()),
//!     }
//! }
//! # fn rand_seed() -> u64 { 7 }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Memory is bounded by [`Config`]: the send buffer, the windows in flight, the
//! receive window (messages not yet polled count against it), and the datagram
//! queues. No input from the network can make the endpoint panic or allocate
//! beyond those bounds.
//!
//! # Where the tests are
//!
//! Unit tests sit beside the code they test (the session's on two sessions
//! joined back to back, in `session/test_pair.rs`). The protocol's behaviour
//! tests are this crate's integration tests, run over `ferry-sim`'s virtual
//! network: `cargo test -p ferry-proto` runs them all, and `tests/README.md`
//! in the crate maps each behaviour (handshake, loss, congestion, streams,
//! keys, the diode, hostile peers, …) to its file. The fuzz properties live in
//! the repository's `fuzz/`; their corpora are replayed here on stable
//! (`tests/fuzz_corpus.rs`).

#![warn(missing_docs, unreachable_pub)]

// The layers, bottom up; each imports only from those before it. The one
// exception is the endpoint's shared resources (`endpoint::pool`,
// `endpoint::memory`): leaves that import nothing, owned by the endpoint and
// lent to its sessions and their messages through `endpoint::Shared`.
//
// Leaves: ids, errors, flow-control windows, congestion control.
mod congestion;
pub mod error;
mod flow;
mod id;
// The handshake's cryptography and the packet keys.
pub mod crypto;
// The wire format: codec, packet kinds, protection, stream ids and ops.
pub mod wire;
// What a load balancer in front of a fleet reads from a datagram.
mod route;
// What the application sees and sets: events, counters, configuration.
pub mod config;
mod event;
mod histogram;
mod peer;
mod stats;
mod ticket;
// The pieces a session is built from: messages (fragmenting and
// reassembly), one stream's state, loss recovery.
mod message;
mod recovery;
mod stream;
// One session's state machine.
mod session;
// The endpoint: routing, admission, retry tokens, the receive-memory budget,
// buffer pools, the timer index, turn-taking, the `Session` handle.
mod endpoint;
// The one-way diode engine with its RaptorQ coding; it shares nothing with
// sessions but the error types.
pub mod diode;

pub use config::{Config, CongestionControl};
pub use crypto::{
    AuthorizedKeys, Cipher, CipherPreference, Identity, KeyError, PreSharedKey, PublicKey,
    TicketMode,
};
pub use endpoint::{Endpoint, MAX_BATCH_BYTES, Session, Transmit};
pub use error::{
    ConfigError, ConnectError, DatagramError, DecisionError, DecodeError, ProtocolViolation,
    SendError, StreamError,
};
pub use event::{CloseReason, CloseText, Event, StreamEnd, TransportCode};
pub use histogram::Histogram;
pub use id::{MAX_SERVER_ID_LEN, MAX_SHARDS, ServerId, SessionId, Shard, Side};
pub use message::SendProgress;
pub use peer::PeerParams;
pub use route::{Route, route};
pub use session::State;
pub use stats::{CloseCounts, EndpointStats, SessionStats, SessionTotals};
pub use ticket::{Ticket, TicketFormatError};
pub use wire::stream::{StreamId, StreamKind};

#[cfg(test)]
mod test_support {
    /// The origin of unit tests' virtual time. `Instant` has no constructor but
    /// the clock, so tests read it once here; the library itself never does.
    pub(crate) fn epoch() -> std::time::Instant {
        std::time::Instant::now()
    }
}
