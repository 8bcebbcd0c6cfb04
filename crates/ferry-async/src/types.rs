//! Every value type a user of any Ferry driver needs, in one place.
//!
//! Each driver crate (`ferry-tokio`, `ferry-async-std`, `ferry-smol`,
//! `ferry-blocking`) re-exports this whole module at its root with
//! `pub use ferry_async::types::*;`, so a program imports everything from the
//! crate of its runtime and never needs `ferry_proto` directly:
//!
//! ```
//! use ferry_async::types::{CongestionControl, Config, EndpointConfig, PreSharedKey};
//!
//! let psk: PreSharedKey = "6b657920666f7220746865206578616d706c6520696e20746865206775696465"
//!     .parse()
//!     .expect("a 32-byte key in hex");
//! let config = EndpointConfig::from(Config {
//!     psk: Some(psk),
//!     congestion: CongestionControl::Cubic,
//!     ..Config::default()
//! });
//! # assert!(config.protocol.validate().is_ok());
//! ```
//!
//! The module holds values only: configuration, keys, identifiers, states,
//! close reasons and events, counters, errors and constants. The handles —
//! `Endpoint`, `Session`, `Stream`, `StreamIo`, `ClosedEvents` — are not here,
//! because they differ by driver: the async adapters re-export
//! [`ferry_async`](crate)'s own next to this module, and `ferry-blocking`
//! defines blocking ones of the same names.

// Configuration.
pub use crate::config::EndpointConfig;
pub use crate::fallback::FallbackConfig;
pub use ferry_proto::crypto::{
    AuthorizedKeys, Identity, KeyError, PreSharedKey, PskError, PublicKey,
};
pub use ferry_proto::{Config, ConfigError, CongestionControl};
pub use ferry_proto::{Ticket, TicketFormatError, TicketMode};

// Identifiers and kinds.
pub use ferry_proto::{SessionId, Shard, Side, StreamId, StreamKind};

// States, close reasons and events.
pub use crate::endpoint::ENDPOINT_CLOSED_CODE;
pub use crate::manager::{BroadcastReport, CLOSED_EVENTS_CAPACITY, ClosedEvent};
pub use crate::session::DROPPED_CODE;
pub use ferry_proto::{CloseReason, CloseText, PeerParams, ProtocolViolation, State, StreamEnd};

// Counters.
pub use crate::shards::ShardStats;
pub use ferry_proto::{
    CloseCounts, EndpointStats, Histogram, SendProgress, SessionStats, SessionTotals,
};

// The fallback transport.
pub use crate::fallback::{FallbackStats, Transport};

// Shards.
pub use ferry_proto::MAX_SHARDS;

// Errors, one per operation.
pub use crate::error::{
    AckError, BindError, ConnectError, DatagramError, RecvError, SendError, StreamError,
    StreamRecvError, StreamSendError,
};

// Sizes.
pub use crate::stream::WRITE_CHUNK;
