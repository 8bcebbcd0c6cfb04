//! The session tools: reliable transfer over a Ferry session (with a return
//! path, unlike the [diode](crate::diode) tools).
//!
//! ```text
//!  files ──► ferry send ══ one Ferry session, one stream per file ══► ferry receive ──► DIR
//!  TCP   ──► ferry forward ══ one session, one stream per connection ══► ferry forward-server ──► TCP target
//! ```
//!
//! - [`send`] and [`receive`]: files and directory trees, each file read
//!   once, checked against its BLAKE3 digest (a trailer after the content)
//!   and stored atomically under its name.
//! - [`disk`]: their file reading and writing (and hashing), on blocking
//!   threads beside the session.
//! - [`partial`]: the prefixes `receive` keeps of interrupted files, to
//!   resume them.
//! - [`forward`]: TCP connections carried over one session, half-close and
//!   reset included.
//! - [`config`]: the `[session]` table of the configuration file and the
//!   `--config` / `--key-file` / `--identity` / `--authorized-keys` /
//!   `--peer-key` flags; [`config::keys`] reads the key files and names
//!   peers.
//! - [`reload`]: SIGHUP on a listener re-reads its authorized keys.
//! - [`wire`]: the messages the tools exchange over the session.
//! - [`progress`]: progress bars and lines.

use std::net::SocketAddr;
use std::time::Duration;

use ferry_proto::{CloseReason, PublicKey};
use ferry_tokio::{BindError, ConnectError, Endpoint, EndpointConfig, EndpointExt, SessionStats};

use crate::CliError;

pub mod config;
pub mod disk;
pub mod forward;
pub mod partial;
pub mod progress;
pub mod receive;
pub mod reload;
pub mod send;
pub mod wire;

/// The tokio runtime the session tools run on: two worker threads.
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::Io {
            context: "cannot start the async runtime".into(),
            source: e,
        })
}

/// Resolves `HOST:PORT` (the first address); `flag` names the option.
pub(crate) async fn resolve(target: &str, flag: &str) -> Result<SocketAddr, CliError> {
    if let Ok(addr) = target.parse() {
        return Ok(addr);
    }
    if !target.contains(':') {
        return Err(CliError::Invalid(format!(
            "{flag} {target}: give HOST:PORT, e.g. 192.0.2.10:7000 or files.example.org:7000"
        )));
    }
    let mut addrs = tokio::net::lookup_host(target).await.map_err(|e| {
        CliError::Network(format!(
            "cannot resolve {target} ({flag}): {e}; check the host name, or give an IP address"
        ))
    })?;
    addrs.next().ok_or_else(|| {
        CliError::Network(format!(
            "{target} ({flag}) resolves to no address: check the host name"
        ))
    })
}

/// The unspecified address of `peer`'s family, port 0: where a client
/// binds.
pub(crate) fn client_addr(peer: SocketAddr) -> SocketAddr {
    match peer {
        SocketAddr::V4(_) => (std::net::Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (std::net::Ipv6Addr::UNSPECIFIED, 0).into(),
    }
}

/// Binds an endpoint; `flag` names the option that gave the address.
pub(crate) fn bind(
    addr: SocketAddr,
    config: EndpointConfig,
    flag: &str,
) -> Result<Endpoint, CliError> {
    Endpoint::bind(addr, config).map_err(|e| match e {
        BindError::AddrInUse(a) => CliError::Network(format!(
            "cannot listen on UDP {a} ({flag}): the port is already in use; stop the program that holds it, or choose another port"
        )),
        BindError::AddrNotAvailable(a) => CliError::Network(format!(
            "cannot listen on UDP {a} ({flag}): it is not an address of this host; use one of its addresses, or 0.0.0.0"
        )),
        BindError::PermissionDenied(a) => CliError::Network(format!(
            "cannot listen on UDP {a} ({flag}): permission denied; use a port above 1023, or run with the needed privilege"
        )),
        BindError::Config(e) => CliError::Invalid(format!("invalid session settings: {e}")),
        e @ (BindError::TooManyShards { .. }
        | BindError::FallbackSharded(_)
        | BindError::FallbackBuffer { .. }) => {
            CliError::Invalid(e.to_string())
        }
        BindError::FallbackListen { addr, source } => CliError::Network(format!(
            "cannot accept the WebSocket fallback on TCP {addr} ({flag}): {source}; free the port, or give --tcp-fallback-listen another address"
        )),
        BindError::Io { addr, source } => CliError::Network(format!(
            "cannot open a UDP socket on {addr} ({flag}): {source}"
        )),
    })
}

/// What a failed connect means, and what to do; `server` is the command
/// that should run at `peer`, `identity` this side's public key if it has
/// an identity.
pub(crate) fn connect_error(
    peer: &str,
    e: ConnectError,
    handshake_timeout: Duration,
    server: &str,
    identity: Option<PublicKey>,
) -> CliError {
    match e {
        ConnectError::Failed(CloseReason::AuthenticationFailed) => match identity {
            Some(key) => CliError::Authentication(format!(
                "the peer {peer} refused the handshake: either this side's public key {key} is \
                 not in its --authorized-keys (add it there, with a name, and send it SIGHUP), or \
                 --peer-key is not its public key (`ferry keygen --public FILE` there prints \
                 it), or it has no --identity, or the two sides' --key-file differ"
            )),
            None => CliError::Authentication(format!(
                "the peer {peer} refused the handshake: check that both sides use the same \
                 --key-file (or that neither uses one), and that it has no --identity (if it \
                 has one, give this side --identity and --peer-key too)"
            )),
        },
        ConnectError::Failed(CloseReason::Timeout) => CliError::Network(format!(
            "no answer from {peer} within {} s: check the address and port, that `{server}` runs there, and that no firewall drops UDP between the two",
            handshake_timeout.as_secs_f64()
        )),
        ConnectError::Failed(CloseReason::Refused) => CliError::Network(format!(
            "{peer} refused the session: nothing listens on that UDP port (start `{server}` there), or it serves max_sessions already"
        )),
        ConnectError::Failed(reason) => {
            CliError::Network(format!("cannot open a session with {peer}: {reason}"))
        }
        ConnectError::Rejected(e) => {
            CliError::Invalid(format!("cannot open a session with {peer}: {e}"))
        }
        ConnectError::EndpointClosed => CliError::Network(format!(
            "cannot open a session with {peer}: the endpoint closed"
        )),
    }
}

/// What a session lost before the end means.
pub(crate) fn lost_error(peer: &str, reason: Option<CloseReason>) -> CliError {
    match reason {
        Some(CloseReason::Timeout) => CliError::Network(format!(
            "the session with {peer} timed out: the peer stopped answering (stopped, or the network between is down); run the command again"
        )),
        Some(CloseReason::Remote {
            code: wire::CLOSE_VERSION,
            ..
        }) => CliError::Failed(format!(
            "the peer {peer} speaks another version of ferry's file messages (this side: version {}) and closed the session: upgrade ferry on both sides to the same version",
            wire::FILE_VERSION
        )),
        Some(CloseReason::Remote {
            code: wire::CLOSE_SHUTDOWN,
            ..
        }) => CliError::Network(format!(
            "the peer {peer} is stopping (SIGTERM or Ctrl-C there) and closed the session before the end: run the command again once it is back"
        )),
        Some(CloseReason::Remote { code, reason }) => CliError::Network(format!(
            "the peer {peer} closed the session before the end (code {code}{}): see its output",
            if reason.is_empty() {
                String::new()
            } else {
                format!(": {reason}")
            }
        )),
        Some(CloseReason::AuthenticationFailed) => CliError::Authentication(format!(
            "the peer {peer} refused the handshake: check that both sides use the same --key-file, \
             and with identities that each side admits the other's key (--authorized-keys, --peer-key)"
        )),
        Some(reason) => CliError::Network(format!(
            "the session with {peer} ended before the end: {reason}"
        )),
        None => CliError::Network(format!("the session with {peer} ended before the end")),
    }
}

/// The transport part of a summary: retransmissions, loss (told apart from
/// packets that were only late: reordered, declared lost, then acknowledged),
/// RTT.
pub(crate) fn stats_line(stats: &SessionStats) -> String {
    tracing::debug!(?stats, "session statistics");
    let lost = stats.lost.saturating_sub(stats.spurious_losses);
    let loss = if stats.packets_sent > 0 {
        lost as f64 * 100.0 / stats.packets_sent as f64
    } else {
        0.0
    };
    format!(
        "{} fragments retransmitted, {} of {} packets sent lost ({loss:.2}%) and {} only late, {} duplicates received, rtt {:.1} ms",
        stats.retransmitted,
        lost,
        stats.packets_sent,
        stats.spurious_losses,
        stats.duplicates,
        stats.rtt.as_secs_f64() * 1e3
    )
}

/// Bytes over a duration, in Mbit/s.
pub(crate) fn mbit_per_s(bytes: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64().max(1e-6);
    bytes as f64 * 8.0 / secs / 1e6
}
