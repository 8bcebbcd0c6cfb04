//! One-way transfer over a data diode: no acknowledgement can come back, so
//! RaptorQ forward error correction carries the data across.
//!
//! A [`Sender`] takes byte streams (sessions), cuts each into blocks of
//! `block_size` bytes, codes every block into source and repair symbols and
//! hands out their datagrams paced to `bandwidth`, with a heartbeat every
//! `heartbeat`. A [`Receiver`] gathers symbols per block, rebuilds each block
//! once enough arrived, and delivers each session's bytes in order; the last
//! block carries the stream's length and BLAKE3 digest, checked before the
//! session is reported finished. A block that cannot be rebuilt loses its
//! session — reported, never delivered with a hole — and the next session is
//! unaffected.
//!
//! Both are sans-IO, with the [`Endpoint`](crate::Endpoint)'s shape:
//! `handle_datagram` / `poll_transmit` / `poll_event` / `poll_timeout` /
//! `handle_timeout`, time as an argument. Coding runs in jobs
//! ([`EncodeJob`], [`DecodeJob`]) that a driver may run on worker threads.
//!
//! ```
//! use std::time::Instant;
//! use ferry_proto::diode::{DiodeConfig, Receiver, ReceiverEvent, Sender};
//!
//! let now = Instant::now();
//! let mut sender = Sender::new(DiodeConfig::default(), 1, now).unwrap();
//! let mut receiver = Receiver::new(DiodeConfig::default(), now).unwrap();
//! let session = sender.open().unwrap();
//! sender.write(session, b"across the diode").unwrap();
//! sender.finish(session).unwrap();
//! sender.encode_pending();
//!
//! let mut buf = vec![0; 64 * 1024];
//! while let Some(t) = sender.poll_transmit(now, &mut buf) {
//!     for datagram in buf[..t.len].chunks(t.segment_size) {
//!         receiver.handle_datagram(now, datagram);
//!     }
//! }
//! receiver.decode_pending(now);
//! let mut got = Vec::new();
//! while let Some(event) = receiver.poll_event() {
//!     match event {
//!         ReceiverEvent::Data { data, .. } => got.extend_from_slice(&data),
//!         ReceiverEvent::SessionFinished { bytes, .. } => assert_eq!(bytes, 16),
//!         _ => {}
//!     }
//! }
//! assert_eq!(got, b"across the diode");
//! ```

pub mod config;
pub mod fec;
mod interleave;
mod loss;
mod receiver;
mod sender;
pub mod wire;

pub use config::{DiodeConfig, DiodeConfigError};
pub use interleave::interleave_order;
pub use loss::{LossCounts, LossReason, LostBlock};
pub use receiver::{DecodeJob, DecodedBlock, Receiver, ReceiverEvent, ReceiverStats};
pub use sender::{
    DiodeTransmit, EncodeJob, EncodedBlock, Sender, SenderError, SenderEvent, SenderStats,
};

/// Bytes the last block of a session carries after its data: the stream's
/// length (u64, big-endian) and its BLAKE3 digest (32 bytes).
pub const TRAILER_LEN: usize = 8 + 32;

/// A diode session's id: 64 random bits, chosen by the sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DiodeSessionId(pub u64);

impl std::fmt::Display for DiodeSessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}
