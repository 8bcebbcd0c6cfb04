//! Every driver crate exports every name a program needs, the same value types
//! under the same names (`ferry_async::types`, re-exported whole by each), so
//! a program never imports `ferry_proto`. A name dropped from a driver fails to
//! compile here.

#![allow(unused_imports)]

/// The names every driver exports: its handles, and every value type.
macro_rules! every_driver_exports {
    ($($module:ident: $krate:ident),*) => {$(
        #[doc = concat!("The names `", stringify!($krate), "` exports.")]
        mod $module {
            use ::$krate::{
                // Handles (each driver's own, or the async ones).
                ClosedEvents, Endpoint, Incoming, Session, Stream, StreamIo,
                // Configuration.
                Config, ConfigError, CongestionControl, EndpointConfig, PreSharedKey, PskError,
                // Identifiers and kinds.
                SessionId, Shard, Side, StreamId, StreamKind,
                // States, close reasons, events.
                BroadcastReport, CLOSED_EVENTS_CAPACITY, CloseReason, CloseText, ClosedEvent, DROPPED_CODE,
                ENDPOINT_CLOSED_CODE, ProtocolViolation, State, StreamEnd,
                // Counters.
                EndpointStats, PeerParams, SendProgress, SessionStats, ShardStats,
                // Shards.
                MAX_SHARDS,
                // Resumption.
                Ticket, TicketFormatError, TicketMode,
                // The fallback transport.
                FallbackConfig, FallbackStats, Transport,
                // Errors.
                AckError, BindError, ConnectError, DatagramError, RecvError, SendError, StreamError,
                StreamRecvError, StreamSendError,
                // Sizes.
                WRITE_CHUNK,
            };
        }
    )*};
}

every_driver_exports!(
    tokio: ferry_tokio,
    async_std: ferry_async_std,
    smol: ferry_smol,
    blocking: ferry_blocking
);

// What each driver adds of its own.
use ferry_async_std::{AsyncStdRuntime, EndpointExt as _};
use ferry_blocking::{AcceptStreamTimeout, AcceptTimeout, ClosedEventTimeout};
use ferry_smol::{EndpointExt as _, SmolRuntime};
use ferry_tokio::{EndpointExt as _, TokioRuntime};

#[test]
fn every_driver_exports_the_same_value_types() {
    // The same types, not look-alikes: a value from one driver's crate is a
    // value of another's.
    let config: ferry_tokio::Config = ferry_blocking::Config {
        congestion: ferry_smol::CongestionControl::Cubic,
        psk: Some(ferry_async_std::PreSharedKey::from_bytes([7; 32])),
        ..ferry_smol::Config::default()
    };
    let endpoint: ferry_blocking::EndpointConfig = ferry_tokio::EndpointConfig::from(config);
    assert_eq!(
        endpoint.protocol.congestion,
        ferry_async::types::CongestionControl::Cubic
    );
    let reason: ferry_smol::CloseReason = ferry_blocking::CloseReason::Refused;
    assert_eq!(reason, ferry_proto::CloseReason::Refused);
}
