//! The settings of the session tools (`send`, `receive`, `forward`,
//! `forward-server`): the `[session]` table of the configuration file, and
//! the flags that override it.
//!
//! One file serves the diode tools and the session tools: the diode keys
//! stay at the top level (see [`crate::diode::config`]), the session keys
//! go in a `[session]` table. Each loader ignores the other's part; `ferry
//! config check FILE` checks both.
//!
//! ```toml
//! [session]
//! mtu = 1200                    # bytes: the UDP payload a session starts with (548..=65507)
//! max_mtu = 1452                # bytes: path MTU discovery probes up to this (1200: off)
//! congestion = "bbr"            # "bbr", "cubic" or "newreno"
//! handshake_timeout = 10000     # ms: how long connecting keeps trying
//! ping_interval = 1000          # ms: ping when nothing was received for this long
//! ping_packet_count = 5         # unanswered pings before the session times out
//! delivery_timeout = 25         # ms: the smallest retransmission timeout
//! initial_rtt = 100             # ms: round-trip time assumed before the first sample
//! max_ack_delay = 10            # ms: longest a receiver delays an ack
//! max_message_size = 16777216   # bytes: largest message
//! recv_window = 33554432        # bytes: receive credit per session at the start
//! max_recv_window = 134217728   # bytes: how far that credit may grow
//! stream_recv_window = 25165824 # bytes: receive credit per stream at the start
//! max_stream_recv_window = 100663296  # bytes: how far that may grow
//! send_buffer = 33554432        # bytes: queued and unacknowledged per session at least
//! max_send_buffer = 134217728   # bytes: how far the send buffers may grow
//! stream_send_buffer = 16777216 # bytes: the same per stream
//! send_window = 16777216        # bytes: most in flight per session
//! max_streams = 100             # streams (files, TCP connections) the peer may have open
//! max_sessions = 4096           # sessions one listener serves at once
//! max_handshakes_per_source = 1000  # new sessions per second per source address (0: no limit)
//! max_pending_handshakes = 256  # unproven starters before connects get a stateless retry
//! amplification_factor = 3      # bytes sent to an unproven address per byte received
//! max_recv_memory = 2147483648  # bytes: received data all sessions hold at once
//! udp_send_buffer = 8388608     # bytes: kernel socket send buffer requested
//! udp_recv_buffer = 33554432    # bytes: kernel socket receive buffer requested
//! key_file = "ferry.key"        # pre-shared key (64 hex digits); relative to this file
//! identity_file = "id.key"      # this side's private key (`ferry keygen id.key`); relative to this file
//! authorized_keys_file = "authorized_keys"  # listeners: the starter keys admitted (default: any)
//! peer_key = "server.pub"       # starters: the listener's public key, 64 hex digits or a file
//! cipher = "auto"               # with a key or identity: "auto", "aes-256-gcm" or "chacha20-poly1305"
//! server_id = "0:0a01"          # this server's id behind a load balancer: [rotation:]hex, 1-4 bytes
//! shards = 1                    # sockets and cores serving the address (0: one per core)
//! metrics = "127.0.0.1:9100"    # receive, forward, forward-server: serve Prometheus metrics here (default: none)
//! grace_period = 10000          # ms: on SIGTERM or Ctrl-C, how long receive, forward and
//!                               # forward-server let work in flight finish (--grace-period)
//! tcp_fallback = false          # listeners: also accept WebSocket over TCP on the UDP port number
//! tcp_fallback_listen = "0.0.0.0:443"  # listeners: accept it on this TCP address instead
//! fallback_after = 0            # ms: starters fall back to WebSocket/TCP after this long
//!                               # without an answer over UDP (0: UDP only)
//! ```
//!
//! Every key is optional; the defaults are those shown, which are
//! [`ferry_proto::Config`]'s. An unknown key in `[session]`, a value of the
//! wrong type or one that [`ferry_proto::Config::validate`] refuses is
//! reported with the key's name (and its line, when known). `--config FILE`
//! names the file; `--key-file FILE` overrides `key_file`, `--identity
//! FILE` `identity_file`, `--authorized-keys FILE` `authorized_keys_file`
//! and `--peer-key HEX_OR_FILE` `peer_key`. A listener (`receive`,
//! `forward-server`, `perf server`) ignores `peer_key`; a starter (`send`,
//! `forward`, `perf client`) ignores `authorized_keys_file`
//! ([`ListenerOptions`], [`StarterOptions`]). The key files are read by
//! [`keys`].

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use ferry_proto::error::ConfigError;
use ferry_proto::{CipherPreference, Config, CongestionControl};
use ferry_tokio::EndpointConfig;
use serde::Deserialize;
use tracing::{info, warn};

use crate::CliError;
use crate::exit::io_advice;

mod describe;
pub mod fallback;
pub mod keys;

pub use fallback::{ListenerFallback, StarterFallback, listener_fallback_note, transport_note};
pub use keys::{PeerKey, read_key};

/// Longest duration accepted for a millisecond key: one day.
pub const MAX_MS: u64 = 86_400_000;

/// The flags every session tool shares: the file, and the key.
#[derive(Debug, Clone, Default, Args)]
pub struct SessionOptions {
    /// A TOML configuration file; its `[session]` table holds the session
    /// settings (mtu, congestion, timeouts in ms, windows and buffers in
    /// bytes, key_file, identity_file, authorized_keys_file, peer_key); see
    /// `ferry config check`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The pre-shared key, 64 hexadecimal digits in a file: sessions are
    /// then authenticated and encrypted. Both sides need the same key.
    /// Overrides `key_file` of the configuration file.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// This side's identity: its private key, 64 hexadecimal digits in a
    /// file (`ferry keygen FILE` makes one). Sessions then authenticate
    /// both sides by their public keys and are encrypted; both sides need
    /// one. Combines with --key-file (both apply). Overrides
    /// `identity_file`.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

/// The session flags of a command that starts sessions (`send`,
/// `forward`, `perf client`): the shared ones, and the listener's public
/// key to pin.
#[derive(Debug, Clone, Default, Args)]
pub struct StarterOptions {
    /// The flags every session tool shares.
    #[command(flatten)]
    pub common: SessionOptions,
    /// With --identity: the listener's public key, which only that listener
    /// can answer to. Exactly 64 hexadecimal digits are the key itself;
    /// anything else is the path of a file holding it (the FILE.pub that
    /// `ferry keygen FILE` wrote there). Overrides `peer_key`.
    #[arg(long, value_name = "HEX_OR_FILE")]
    pub peer_key: Option<String>,
    /// `--fallback-after`, `--no-fallback`.
    #[command(flatten)]
    pub fallback: StarterFallback,
}

/// The session flags of a command that accepts sessions (`receive`,
/// `forward-server`, `perf server`): the shared ones, and the starter keys
/// it admits.
#[derive(Debug, Clone, Default, Args)]
pub struct ListenerOptions {
    /// The flags every session tool shares.
    #[command(flatten)]
    pub common: SessionOptions,
    /// With --identity: the starters' public keys this side admits, one per
    /// line, each optionally followed by a name for the logs (`#` starts a
    /// comment). Without it any starter with an identity gets in (and is
    /// named by its key). Overrides `authorized_keys_file`.
    #[arg(long, value_name = "FILE")]
    pub authorized_keys: Option<PathBuf>,
    /// `--tcp-fallback`, `--tcp-fallback-listen`.
    #[command(flatten)]
    pub fallback: ListenerFallback,
}

/// The congestion controller, as the file names it.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Congestion {
    Bbr,
    Cubic,
    Newreno,
}

/// The packet cipher preference, as the file names it.
#[derive(Debug, Clone, Copy, Deserialize)]
enum CipherName {
    #[serde(rename = "auto")]
    Auto,
    #[serde(rename = "aes-256-gcm")]
    Aes256Gcm,
    #[serde(rename = "chacha20-poly1305")]
    ChaCha20Poly1305,
}

/// The `[session]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionTable {
    mtu: Option<usize>,
    max_mtu: Option<usize>,
    congestion: Option<Congestion>,
    handshake_timeout: Option<u64>,
    ping_interval: Option<u64>,
    ping_packet_count: Option<u32>,
    delivery_timeout: Option<u64>,
    initial_rtt: Option<u64>,
    max_ack_delay: Option<u64>,
    max_message_size: Option<usize>,
    recv_window: Option<usize>,
    max_recv_window: Option<usize>,
    stream_recv_window: Option<usize>,
    max_stream_recv_window: Option<usize>,
    send_buffer: Option<usize>,
    max_send_buffer: Option<usize>,
    stream_send_buffer: Option<usize>,
    send_window: Option<usize>,
    max_streams: Option<usize>,
    max_sessions: Option<usize>,
    max_handshakes_per_source: Option<u32>,
    max_pending_handshakes: Option<usize>,
    amplification_factor: Option<u32>,
    max_recv_memory: Option<usize>,
    udp_send_buffer: Option<usize>,
    udp_recv_buffer: Option<usize>,
    key_file: Option<PathBuf>,
    identity_file: Option<PathBuf>,
    authorized_keys_file: Option<PathBuf>,
    peer_key: Option<String>,
    cipher: Option<CipherName>,
    server_id: Option<String>,
    shards: Option<usize>,
    metrics: Option<std::net::SocketAddr>,
    grace_period: Option<u64>,
    tcp_fallback: Option<bool>,
    tcp_fallback_listen: Option<std::net::SocketAddr>,
    fallback_after: Option<u64>,
}

/// The file as the session tools read it: the `[session]` table; every
/// other key is the diode tools'.
#[derive(Debug, Default, Deserialize)]
struct FileSettings {
    session: Option<SessionTable>,
}

/// The top-level keys the diode tools read (Ferry's and Lidi's); others are
/// warned about.
const DIODE_KEYS: &[&str] = &crate::diode::config::TOP_LEVEL_KEYS;

/// Everything a session tool needs to bind its endpoint.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionSettings {
    /// The protocol settings and the socket buffers.
    pub endpoint: EndpointConfig,
    /// Where the pre-shared key came from (`None`: no pre-shared key).
    pub key_file: Option<PathBuf>,
    /// Where this side's identity came from (`None`: none; the identity
    /// itself is `endpoint.protocol.identity`).
    pub identity_file: Option<PathBuf>,
    /// Where the listener's admitted keys came from (the list itself is
    /// `endpoint.protocol.authorized_keys`; a starter drops both).
    pub authorized_keys_file: Option<PathBuf>,
    /// A starter's pin on the listener's key (a starter moves it to
    /// `endpoint.protocol.listener_key`; a listener drops it).
    pub peer_key: Option<PeerKey>,
    /// Where the long-running commands serve Prometheus metrics
    /// (`metrics`; `--metrics` overrides it).
    pub metrics: Option<std::net::SocketAddr>,
    /// `grace_period`: how long a stop on a signal lets work in flight
    /// finish (`None`: not in the file; `--grace-period` overrides it; see
    /// [`crate::shutdown`]).
    pub grace_period: Option<Duration>,
}

/// Which key files of the configuration file are not to be read: a flag
/// overrides them, or the command's role does not use them.
#[derive(Debug, Clone, Copy, Default)]
struct Skip {
    key_file: bool,
    identity_file: bool,
    authorized_keys_file: bool,
    peer_key: bool,
}

impl StarterOptions {
    /// Reads the file and the flags as [`SessionOptions::load`] does, adds
    /// `--peer-key`, and pins the listener's key: with an identity a
    /// starter needs one, and one needs an identity.
    pub fn load(&self) -> Result<SessionSettings, CliError> {
        let mut settings = self.common.load_skipping(Skip {
            peer_key: self.peer_key.is_some(),
            authorized_keys_file: true,
            ..Skip::default()
        })?;
        if let Some(value) = &self.peer_key {
            settings.peer_key = Some(keys::read_peer_key(value, None, "--peer-key")?);
        }
        settings.authorized_keys_file = None;
        settings.endpoint.protocol.authorized_keys = None;
        self.fallback.apply(&mut settings.endpoint.fallback);
        let protocol = &mut settings.endpoint.protocol;
        match (&protocol.identity, &settings.peer_key) {
            (Some(_), Some(pin)) => protocol.listener_key = Some(pin.key),
            (Some(_), None) => {
                return Err(CliError::Missing(
                    "this side has an identity (--identity, identity_file) but does not know the \
                     listener's: give the listener's public key with --peer-key (the listener \
                     prints it with `ferry keygen --public FILE`)"
                        .into(),
                ));
            }
            (None, Some(_)) => {
                return Err(CliError::Missing(
                    "--peer-key (peer_key) needs this side's own identity: give --identity FILE \
                     (make one with `ferry keygen FILE`, and add the public key it prints to the \
                     listener's --authorized-keys)"
                        .into(),
                ));
            }
            (None, None) => {}
        }
        Ok(settings)
    }
}

impl ListenerOptions {
    /// Reads the file and the flags as [`SessionOptions::load`] does and
    /// adds `--authorized-keys`, which needs an identity.
    pub fn load(&self) -> Result<SessionSettings, CliError> {
        let mut settings = self.common.load_skipping(Skip {
            authorized_keys_file: self.authorized_keys.is_some(),
            peer_key: true,
            ..Skip::default()
        })?;
        if let Some(path) = &self.authorized_keys {
            settings.endpoint.protocol.authorized_keys =
                Some(keys::read_authorized_keys(path, "--authorized-keys")?);
            settings.authorized_keys_file = Some(path.clone());
        }
        settings.peer_key = None;
        self.fallback.apply(&mut settings.endpoint.fallback);
        let protocol = &settings.endpoint.protocol;
        match (&protocol.identity, &protocol.authorized_keys) {
            (None, Some(_)) => {
                return Err(CliError::Missing(
                    "--authorized-keys (authorized_keys_file) needs this listener's own \
                     identity: give --identity FILE (make one with `ferry keygen FILE`; starters \
                     pin the public key it prints with --peer-key)"
                        .into(),
                ));
            }
            (Some(identity), list) => {
                info!(public_key = %identity.public_key(), "this listener's identity");
                match list {
                    Some(list) if list.is_empty() => warn!(
                        file = ?settings.authorized_keys_file,
                        "the authorized keys file lists no key: every starter is refused"
                    ),
                    Some(_) => {}
                    None => info!(
                        "no authorized keys (--authorized-keys): any starter with an identity is admitted"
                    ),
                }
            }
            (None, None) => {}
        }
        Ok(settings)
    }
}

impl SessionOptions {
    /// Reads the file (the defaults without one), applies `--key-file` and
    /// `--identity`, and checks the result. A starter or a listener uses
    /// [`StarterOptions::load`] or [`ListenerOptions::load`], which also
    /// read the keys that concern their role.
    pub fn load(&self) -> Result<SessionSettings, CliError> {
        self.load_skipping(Skip::default())
    }

    fn load_skipping(&self, mut skip: Skip) -> Result<SessionSettings, CliError> {
        skip.key_file |= self.key_file.is_some();
        skip.identity_file |= self.identity.is_some();
        let mut settings = match &self.config {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| CliError::Io {
                    context: format!(
                        "cannot read the configuration file {} (check the path given to --config): {}",
                        path.display(),
                        io_advice(&e)
                    ),
                    source: e,
                })?;
                parse_skipping(&text, path, skip)?
            }
            None => SessionSettings::default(),
        };
        if let Some(key_file) = &self.key_file {
            settings.endpoint.protocol.psk = Some(read_key(key_file, "--key-file")?);
            settings.key_file = Some(key_file.clone());
        }
        if let Some(path) = &self.identity {
            settings.endpoint.protocol.identity = Some(keys::read_identity(path, "--identity")?);
            settings.identity_file = Some(path.clone());
        }
        Ok(settings)
    }
}

/// Parses the `[session]` table of `text` (the file at `origin`; relative
/// key file paths are taken from the file's directory) and reads the key
/// files it names, whatever the role: `ferry config check`'s reading.
pub fn parse(text: &str, origin: &Path) -> Result<SessionSettings, CliError> {
    parse_skipping(text, origin, Skip::default())
}

fn parse_skipping(text: &str, origin: &Path, skip: Skip) -> Result<SessionSettings, CliError> {
    let file: FileSettings = toml::from_str(text).map_err(|e| {
        CliError::Invalid(format!(
            "in {}: {}",
            origin.display(),
            e.to_string().trim_end()
        ))
    })?;
    warn_unknown_top_level(text, origin);
    let table = file.session.unwrap_or_default();
    let invalid = |key: &str, message: String| {
        let line = line_of(text, key).map_or_else(String::new, |n| format!(", line {n}"));
        CliError::Invalid(format!(
            "in {}, [session] `{key}`{line}: {message}",
            origin.display()
        ))
    };
    let mut config = Config::default();
    let mut grace_period = None;
    if let Some(v) = table.grace_period {
        let grace = Duration::from_millis(v);
        if grace > crate::shutdown::MAX_GRACE {
            return Err(invalid(
                "grace_period",
                format!("{v} ms is more than a day: give milliseconds, at most {MAX_MS}"),
            ));
        }
        grace_period = Some(grace);
    }
    let ms = |key: &str, v: Option<u64>, field: &mut Duration| -> Result<(), CliError> {
        if let Some(v) = v {
            if v > MAX_MS {
                return Err(invalid(
                    key,
                    format!("{v} ms is more than a day: give milliseconds, at most {MAX_MS}"),
                ));
            }
            *field = Duration::from_millis(v);
        }
        Ok(())
    };
    ms(
        "handshake_timeout",
        table.handshake_timeout,
        &mut config.handshake_timeout,
    )?;
    ms(
        "ping_interval",
        table.ping_interval,
        &mut config.ping_interval,
    )?;
    ms(
        "delivery_timeout",
        table.delivery_timeout,
        &mut config.delivery_timeout,
    )?;
    ms("initial_rtt", table.initial_rtt, &mut config.initial_rtt)?;
    ms(
        "max_ack_delay",
        table.max_ack_delay,
        &mut config.max_ack_delay,
    )?;
    let set = |v: Option<usize>, field: &mut usize| {
        if let Some(v) = v {
            *field = v;
        }
    };
    set(table.mtu, &mut config.mtu);
    set(table.max_mtu, &mut config.max_mtu);
    set(table.max_message_size, &mut config.max_message_size);
    set(table.recv_window, &mut config.recv_window);
    set(table.max_recv_window, &mut config.max_recv_window);
    set(table.stream_recv_window, &mut config.stream_recv_window);
    set(
        table.max_stream_recv_window,
        &mut config.max_stream_recv_window,
    );
    set(table.send_buffer, &mut config.send_buffer);
    set(table.max_send_buffer, &mut config.max_send_buffer);
    set(table.stream_send_buffer, &mut config.stream_send_buffer);
    set(table.send_window, &mut config.send_window);
    set(table.max_streams, &mut config.max_streams);
    set(table.max_sessions, &mut config.max_sessions);
    if let Some(v) = table.ping_packet_count {
        config.ping_packet_count = v;
    }
    if let Some(v) = table.max_handshakes_per_source {
        config.max_handshakes_per_source = v;
    }
    if let Some(v) = table.max_pending_handshakes {
        config.max_pending_handshakes = v;
    }
    if let Some(v) = table.amplification_factor {
        config.amplification_factor = v;
    }
    set(table.max_recv_memory, &mut config.max_recv_memory);
    if let Some(c) = table.congestion {
        config.congestion = match c {
            Congestion::Bbr => CongestionControl::Bbr,
            Congestion::Cubic => CongestionControl::Cubic,
            Congestion::Newreno => CongestionControl::NewReno,
        };
    }
    if let Some(c) = table.cipher {
        config.cipher = match c {
            CipherName::Auto => CipherPreference::Auto,
            CipherName::Aes256Gcm => CipherPreference::Aes256Gcm,
            CipherName::ChaCha20Poly1305 => CipherPreference::ChaCha20Poly1305,
        };
    }
    if let Some(text) = &table.server_id {
        config.server_id = Some(
            text.parse()
                .map_err(|e: ConfigError| invalid("server_id", e.to_string()))?,
        );
    }
    if config.max_streams == 0 {
        return Err(invalid(
            "max_streams",
            "must be at least 1: the tools use one stream per file or TCP connection".into(),
        ));
    }
    config
        .validate()
        .map_err(|e| invalid(config_key(&e), e.to_string()))?;
    let mut endpoint = EndpointConfig::from(config);
    if let Some(shards) = table.shards {
        if shards > usize::from(ferry_proto::MAX_SHARDS) {
            return Err(invalid(
                "shards",
                format!(
                    "{shards} is above the limit {}: give at most that many, or 0 for one per core",
                    ferry_proto::MAX_SHARDS
                ),
            ));
        }
        endpoint.shards = shards;
    }
    for (key, v, field) in [
        (
            "udp_send_buffer",
            table.udp_send_buffer,
            &mut endpoint.socket_send_buffer,
        ),
        (
            "udp_recv_buffer",
            table.udp_recv_buffer,
            &mut endpoint.socket_recv_buffer,
        ),
    ] {
        if let Some(v) = v {
            if v == 0 {
                return Err(invalid(key, "must be at least 1 (bytes)".into()));
            }
            *field = v;
        }
    }
    endpoint.fallback.listen = table.tcp_fallback.unwrap_or(false);
    endpoint.fallback.listen_addr = table.tcp_fallback_listen;
    if let Some(ms) = table.fallback_after {
        if ms > MAX_MS {
            return Err(invalid(
                "fallback_after",
                format!("{ms} ms is more than a day: give milliseconds, at most {MAX_MS}"),
            ));
        }
        endpoint.fallback.after = (ms > 0).then(|| Duration::from_millis(ms));
    }
    let dir = origin.parent();
    let relative = |path: PathBuf| match dir {
        Some(dir) if path.is_relative() => dir.join(path),
        _ => path,
    };
    let key_file = table.key_file.map(relative);
    if let (Some(path), false) = (&key_file, skip.key_file) {
        endpoint.protocol.psk = Some(read_key(path, "key_file")?);
    }
    let identity_file = table.identity_file.map(relative);
    if let (Some(path), false) = (&identity_file, skip.identity_file) {
        endpoint.protocol.identity = Some(keys::read_identity(path, "identity_file")?);
    }
    let authorized_keys_file = table.authorized_keys_file.map(relative);
    if let (Some(path), false) = (&authorized_keys_file, skip.authorized_keys_file) {
        endpoint.protocol.authorized_keys =
            Some(keys::read_authorized_keys(path, "authorized_keys_file")?);
    }
    let peer_key = match (&table.peer_key, skip.peer_key) {
        (Some(value), false) => Some(keys::read_peer_key(value, dir, "peer_key")?),
        _ => None,
    };
    Ok(SessionSettings {
        endpoint,
        key_file,
        identity_file,
        authorized_keys_file,
        peer_key,
        metrics: table.metrics,
        grace_period,
    })
}

/// Which key of the file a validation error is about.
fn config_key(e: &ConfigError) -> &'static str {
    match e {
        ConfigError::MtuTooSmall { .. } | ConfigError::MtuTooLarge { .. } => "mtu",
        ConfigError::ZeroDuration(key) | ConfigError::Zero(key) => key,
        ConfigError::TooLarge { field, .. } | ConfigError::MaxBelowInitial { field, .. } => field,
        ConfigError::WindowTooSmall { .. } => "recv_window",
        ConfigError::StreamWindowTooSmall { .. } => "stream_recv_window",
        ConfigError::BadServerId(_) => "server_id",
        ConfigError::NeedsIdentity("listener_key") => "peer_key",
        ConfigError::NeedsIdentity("authorized_keys") => "authorized_keys_file",
        ConfigError::NeedsIdentity(key) => key,
    }
}

/// Warns about top-level keys neither tool reads (a misspelt table name,
/// say).
fn warn_unknown_top_level(text: &str, origin: &Path) {
    let Ok(table) = text.parse::<toml::Table>() else {
        return;
    };
    for key in table.keys() {
        if key != "session" && !DIODE_KEYS.contains(&key.as_str()) {
            warn!(
                file = %origin.display(),
                key,
                "unknown top-level key ignored by the session tools (session settings go in [session])"
            );
        }
    }
}

/// The line (from 1) where `key` is set in the `[session]` table, if it is
/// written plainly there.
pub(crate) fn line_of(text: &str, key: &str) -> Option<usize> {
    let mut in_session = false;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            in_session = line.trim_start_matches('[').trim_end_matches(']').trim() == "session";
            continue;
        }
        if let Some(rest) = line.strip_prefix(key)
            && rest.trim_start().starts_with('=')
            && in_session
        {
            return Some(i + 1);
        }
        if let Some(rest) = line.strip_prefix("session.")
            && let Some(rest) = rest.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return Some(i + 1);
        }
    }
    None
}

impl SessionSettings {
    /// Whether sessions are encrypted: with a pre-shared key or an
    /// identity.
    pub fn encrypted(&self) -> bool {
        self.key_file.is_some() || self.endpoint.protocol.identity.is_some()
    }

    /// How a listener's first line describes its sessions' protection:
    /// `no encryption`, `encrypted sessions only`, or its identity and whom
    /// it admits.
    pub fn listener_note(&self) -> String {
        let c = &self.endpoint.protocol;
        match (&c.identity, &c.authorized_keys) {
            (Some(id), Some(list)) => format!(
                "identity {}…, admits {}",
                id.public_key().short(),
                crate::counted(list.len() as u64, "key", "keys")
            ),
            (Some(id), None) => format!("identity {}…, admits any key", id.public_key().short()),
            (None, _) if self.key_file.is_some() => "encrypted sessions only".into(),
            (None, _) => "no encryption".into(),
        }
    }
}

#[cfg(test)]
mod tests;
