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
//! cipher = "auto"               # with a key: "auto", "aes-256-gcm" or "chacha20-poly1305"
//! server_id = "0:0a01"          # this server's id behind a load balancer: [rotation:]hex, 1-4 bytes
//! shards = 1                    # sockets and cores serving the address (0: one per core)
//! metrics = "127.0.0.1:9100"    # receive, forward, forward-server: serve Prometheus metrics here (default: none)
//! grace_period = 10000          # ms: on SIGTERM or Ctrl-C, how long receive, forward and
//!                               # forward-server let work in flight finish (--grace-period)
//! ```
//!
//! Every key is optional; the defaults are those shown, which are
//! [`ferry_proto::Config`]'s. An unknown key in `[session]`, a value of the
//! wrong type or one that [`ferry_proto::Config::validate`] refuses is
//! reported with the key's name (and its line, when known). `--config FILE`
//! names the file and `--key-file FILE` overrides `key_file`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use ferry_proto::crypto::PreSharedKey;
use ferry_proto::error::ConfigError;
use ferry_proto::{CipherPreference, Config, CongestionControl};
use ferry_tokio::EndpointConfig;
use serde::Deserialize;
use tracing::warn;

use crate::CliError;
use crate::exit::io_advice;

/// Longest duration accepted for a millisecond key: one day.
pub const MAX_MS: u64 = 86_400_000;

/// The flags every session tool shares: the file, and the key.
#[derive(Debug, Clone, Default, Args)]
pub struct SessionOptions {
    /// A TOML configuration file; its `[session]` table holds the session
    /// settings (mtu, congestion, timeouts in ms, windows and buffers in
    /// bytes, key_file); see `ferry config check`.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The pre-shared key, 64 hexadecimal digits in a file: sessions are
    /// then authenticated and encrypted. Both sides need the same key.
    /// Overrides `key_file` of the configuration file.
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
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
    cipher: Option<CipherName>,
    server_id: Option<String>,
    shards: Option<usize>,
    metrics: Option<std::net::SocketAddr>,
    grace_period: Option<u64>,
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
    /// Where the pre-shared key came from (`None`: no encryption).
    pub key_file: Option<PathBuf>,
    /// Where the long-running commands serve Prometheus metrics
    /// (`metrics`; `--metrics` overrides it).
    pub metrics: Option<std::net::SocketAddr>,
    /// `grace_period`: how long a stop on a signal lets work in flight
    /// finish (`None`: not in the file; `--grace-period` overrides it; see
    /// [`crate::shutdown`]).
    pub grace_period: Option<Duration>,
}

impl SessionOptions {
    /// Reads the file (the defaults without one), applies `--key-file` and
    /// checks the result.
    pub fn load(&self) -> Result<SessionSettings, CliError> {
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
                parse_with_key(&text, path, self.key_file.is_none())?
            }
            None => SessionSettings::default(),
        };
        if let Some(key_file) = &self.key_file {
            settings.endpoint.protocol.psk = Some(read_key(key_file, "--key-file")?);
            settings.key_file = Some(key_file.clone());
        }
        Ok(settings)
    }
}

/// Parses the `[session]` table of `text` (the file at `origin`; a
/// relative `key_file` is taken from the file's directory) and reads the
/// key it names.
pub fn parse(text: &str, origin: &Path) -> Result<SessionSettings, CliError> {
    parse_with_key(text, origin, true)
}

fn parse_with_key(
    text: &str,
    origin: &Path,
    read_key_file: bool,
) -> Result<SessionSettings, CliError> {
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
    let mut key_file = None;
    if let Some(path) = table.key_file {
        let path = match origin.parent() {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        };
        if read_key_file {
            endpoint.protocol.psk = Some(read_key(&path, "key_file")?);
        }
        key_file = Some(path);
    }
    Ok(SessionSettings {
        endpoint,
        key_file,
        metrics: table.metrics,
        grace_period,
    })
}

/// Which key of the file a validation error is about.
fn config_key(e: &ConfigError) -> &'static str {
    match e {
        ConfigError::MtuTooSmall { .. } | ConfigError::MtuTooLarge { .. } => "mtu",
        ConfigError::ZeroDuration(key)
        | ConfigError::Zero(key)
        | ConfigError::NeedsIdentity(key) => key,
        ConfigError::TooLarge { field, .. } | ConfigError::MaxBelowInitial { field, .. } => field,
        ConfigError::WindowTooSmall { .. } => "recv_window",
        ConfigError::StreamWindowTooSmall { .. } => "stream_recv_window",
        ConfigError::BadServerId(_) => "server_id",
    }
}

/// Reads a pre-shared key file; `what` names where its path came from.
pub fn read_key(path: &Path, what: &str) -> Result<PreSharedKey, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::Io {
        context: format!(
            "cannot read the key file {} ({what}): {}",
            path.display(),
            io_advice(&e)
        ),
        source: e,
    })?;
    warn_if_readable_by_others(path);
    PreSharedKey::parse(&text).map_err(|e| {
        CliError::Authentication(format!(
            "the key file {} ({what}) is unusable: {e}; make one with `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n' > {}`",
            path.display(),
            path.display()
        ))
    })
}

#[cfg(unix)]
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        warn!(
            file = %path.display(),
            "the key file is readable by other users: `chmod 600` it"
        );
    }
}

#[cfg(not(unix))]
fn warn_if_readable_by_others(_path: &Path) {}

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
    /// The settings as `key = value` lines, with their units, as `ferry
    /// config check` prints them (the key itself is not shown).
    pub fn describe(&self) -> Vec<String> {
        let c = &self.endpoint.protocol;
        let ms = |d: Duration| d.as_millis();
        vec![
            format!("mtu = {} bytes", c.mtu),
            format!("max_mtu = {} bytes", c.max_mtu),
            format!("congestion = {}", c.congestion.name()),
            format!("handshake_timeout = {} ms", ms(c.handshake_timeout)),
            format!("ping_interval = {} ms", ms(c.ping_interval)),
            format!("ping_packet_count = {}", c.ping_packet_count),
            format!("delivery_timeout = {} ms", ms(c.delivery_timeout)),
            format!("initial_rtt = {} ms", ms(c.initial_rtt)),
            format!("max_ack_delay = {} ms", ms(c.max_ack_delay)),
            format!("max_message_size = {} bytes", c.max_message_size),
            format!("recv_window = {} bytes", c.recv_window),
            format!("max_recv_window = {} bytes", c.max_recv_window),
            format!("stream_recv_window = {} bytes", c.stream_recv_window),
            format!(
                "max_stream_recv_window = {} bytes",
                c.max_stream_recv_window
            ),
            format!("send_buffer = {} bytes", c.send_buffer),
            format!("max_send_buffer = {} bytes", c.max_send_buffer),
            format!("stream_send_buffer = {} bytes", c.stream_send_buffer),
            format!("send_window = {} bytes", c.send_window),
            format!("max_streams = {}", c.max_streams),
            format!("max_sessions = {}", c.max_sessions),
            format!(
                "max_handshakes_per_source = {} per second",
                c.max_handshakes_per_source
            ),
            format!("max_pending_handshakes = {}", c.max_pending_handshakes),
            format!("amplification_factor = {}", c.amplification_factor),
            format!("max_recv_memory = {} bytes", c.max_recv_memory),
            format!(
                "udp_send_buffer = {} bytes",
                self.endpoint.socket_send_buffer
            ),
            format!(
                "udp_recv_buffer = {} bytes",
                self.endpoint.socket_recv_buffer
            ),
            match &self.key_file {
                Some(path) => format!(
                    "key_file = {} (sessions authenticated and encrypted)",
                    path.display()
                ),
                None => "key_file = none (no encryption: packets carry a checksum only)".into(),
            },
            match (&self.key_file, c.cipher) {
                (None, cipher) => format!("cipher = {cipher} (unused without a key)"),
                (Some(_), CipherPreference::Auto) => {
                    if ferry_proto::crypto::hardware_aes() {
                        "cipher = auto (aes-256-gcm first: this CPU has hardware AES)".into()
                    } else {
                        "cipher = auto (chacha20-poly1305 first: no hardware AES on this CPU)"
                            .into()
                    }
                }
                (Some(_), cipher) => format!("cipher = {cipher} (forced)"),
            },
            match self.endpoint.shards {
                0 => "shards = 0 (one per core)".into(),
                1 => "shards = 1 (one socket, one driver)".into(),
                n => format!("shards = {n} (sockets and drivers on the address)"),
            },
            match c.server_id {
                Some(id) => format!("server_id = {id} (session ids route to this server)"),
                None => "server_id = none (not behind a load balancer that routes on ids)".into(),
            },
            match self.metrics {
                Some(addr) => format!("metrics = {addr} (Prometheus at http://{addr}/metrics)"),
                None => "metrics = none (no metrics endpoint)".into(),
            },
            format!(
                "grace_period = {} ms (on SIGTERM or Ctrl-C: receive, forward, forward-server)",
                self.grace_period
                    .unwrap_or(crate::shutdown::DEFAULT_GRACE)
                    .as_millis()
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> &'static Path {
        Path::new("test.toml")
    }

    #[test]
    fn defaults_without_a_table() {
        let s = parse(
            "mtu = 9000\n[receiver]\nblock_expiration_timeout = 5\n",
            origin(),
        )
        .unwrap();
        assert_eq!(s, SessionSettings::default());
    }

    #[test]
    fn every_key_is_read() {
        let s = parse(
            "heartbeat = 500\n[session]\nmtu = 1400\nmax_mtu = 8952\ncongestion = \"cubic\"\n\
             handshake_timeout = 3000\nping_interval = 200\nping_packet_count = 7\n\
             delivery_timeout = 30\ninitial_rtt = 50\nmax_ack_delay = 5\n\
             max_message_size = 1000000\nrecv_window = 2000000\nmax_recv_window = 4000000\n\
             stream_recv_window = 2000000\nmax_stream_recv_window = 3000000\n\
             send_buffer = 1000000\nmax_send_buffer = 5000000\nstream_send_buffer = 1000000\n\
             send_window = 999999\nmax_streams = 9\nmax_sessions = 8\n\
             max_handshakes_per_source = 0\nmax_pending_handshakes = 4\n\
             amplification_factor = 2\nmax_recv_memory = 9000000\n\
             udp_send_buffer = 1234\nudp_recv_buffer = 4321\ncipher = \"aes-256-gcm\"\n\
             server_id = \"2:beef\"\nshards = 3\ngrace_period = 2500\n\
             metrics = \"127.0.0.1:9100\"\n",
            origin(),
        )
        .unwrap();
        let c = &s.endpoint.protocol;
        assert_eq!(c.mtu, 1400);
        assert_eq!(c.max_mtu, 8952);
        assert_eq!(c.congestion, CongestionControl::Cubic);
        assert_eq!(c.handshake_timeout, Duration::from_secs(3));
        assert_eq!(c.ping_interval, Duration::from_millis(200));
        assert_eq!(c.ping_packet_count, 7);
        assert_eq!(c.delivery_timeout, Duration::from_millis(30));
        assert_eq!(c.initial_rtt, Duration::from_millis(50));
        assert_eq!(c.max_ack_delay, Duration::from_millis(5));
        assert_eq!(c.max_message_size, 1_000_000);
        assert_eq!(c.recv_window, 2_000_000);
        assert_eq!(c.max_recv_window, 4_000_000);
        assert_eq!(c.stream_recv_window, 2_000_000);
        assert_eq!(c.max_stream_recv_window, 3_000_000);
        assert_eq!(c.send_buffer, 1_000_000);
        assert_eq!(c.max_send_buffer, 5_000_000);
        assert_eq!(c.stream_send_buffer, 1_000_000);
        assert_eq!(c.send_window, 999_999);
        assert_eq!(c.max_streams, 9);
        assert_eq!(c.max_sessions, 8);
        assert_eq!(c.max_handshakes_per_source, 0);
        assert_eq!(c.max_pending_handshakes, 4);
        assert_eq!(c.amplification_factor, 2);
        assert_eq!(c.max_recv_memory, 9_000_000);
        assert_eq!(s.endpoint.socket_send_buffer, 1234);
        assert_eq!(s.endpoint.socket_recv_buffer, 4321);
        assert_eq!(c.cipher, CipherPreference::Aes256Gcm);
        assert_eq!(c.server_id, Some("2:beef".parse().unwrap()));
        assert_eq!(s.endpoint.shards, 3);
        assert_eq!(s.metrics, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(s.grace_period, Some(Duration::from_millis(2500)));
        assert_eq!(s.describe().len(), 32);
    }

    #[test]
    fn errors_name_the_key_and_line() {
        for (text, key, line) in [
            ("[session]\nmtu = 10", "`mtu`", Some("line 2")),
            (
                "[session]\n\nping_interval = 0",
                "`ping_interval`",
                Some("line 3"),
            ),
            ("[session]\nshards = 65", "`shards`", Some("line 2")),
            (
                "[session]\nserver_id = \"4:01\"",
                "`server_id`",
                Some("line 2"),
            ),
            (
                "[session]\nrecv_window = 1000",
                "`recv_window`",
                Some("line 2"),
            ),
            (
                "[session]\nmax_recv_window = 1000",
                "`max_recv_window`",
                Some("line 2"),
            ),
            (
                "[session]\nmax_streams = 0",
                "`max_streams`",
                Some("line 2"),
            ),
            (
                "[session]\nhandshake_timeout = 99999999999",
                "`handshake_timeout`",
                None,
            ),
            ("[session]\nudp_recv_buffer = 0", "`udp_recv_buffer`", None),
            (
                "[session]\ngrace_period = 86400001",
                "`grace_period`",
                Some("line 2"),
            ),
            ("[session]\ncolour = 3", "colour", Some("line 2")),
            ("[session]\ncongestion = \"vegas\"", "vegas", Some("line 2")),
            (
                "[session]\ncipher = \"aes-128-gcm\"",
                "aes-128-gcm",
                Some("line 2"),
            ),
            ("[session]\nmtu = \"big\"", "mtu", Some("line 2")),
            ("session.send_window = 0", "`send_window`", Some("line 1")),
        ] {
            let err = parse(text, origin()).unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
            assert!(err.contains("test.toml"), "{text}: {err}");
            if let Some(line) = line {
                assert!(err.contains(line), "{text}: {err}");
            }
        }
    }

    #[test]
    fn the_cipher_key_takes_each_name_and_defaults_to_auto() {
        for (name, preference) in [
            ("auto", CipherPreference::Auto),
            ("aes-256-gcm", CipherPreference::Aes256Gcm),
            ("chacha20-poly1305", CipherPreference::ChaCha20Poly1305),
        ] {
            let s = parse(&format!("[session]\ncipher = \"{name}\"\n"), origin()).unwrap();
            assert_eq!(s.endpoint.protocol.cipher, preference, "{name}");
            assert_eq!(preference.name(), name, "the file's name is the library's");
            assert!(
                s.describe()
                    .iter()
                    .any(|l| l.starts_with(&format!("cipher = {name}"))),
                "{:?}",
                s.describe()
            );
        }
        let s = parse("[session]\nmtu = 1400\n", origin()).unwrap();
        assert_eq!(s.endpoint.protocol.cipher, CipherPreference::Auto);
        // Names are exact: no other spelling, no other case.
        for bad in ["AES-256-GCM", "aes256gcm", "chacha20poly1305", ""] {
            let err = parse(&format!("[session]\ncipher = \"{bad}\"\n"), origin())
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("cipher") || err.contains("variant"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn key_file_is_relative_to_the_config_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("k.key"), format!("{}\n", "ab".repeat(32))).unwrap();
        let config = dir.path().join("ferry.toml");
        std::fs::write(&config, "[session]\nkey_file = \"k.key\"\n").unwrap();
        let options = SessionOptions {
            config: Some(config.clone()),
            key_file: None,
        };
        let s = options.load().unwrap();
        assert_eq!(s.key_file, Some(dir.path().join("k.key")));
        assert_eq!(
            s.endpoint.protocol.psk,
            Some(PreSharedKey::from_bytes([0xab; 32]))
        );
        // --key-file wins, and the file's key is then not even read.
        std::fs::write(&config, "[session]\nkey_file = \"missing.key\"\n").unwrap();
        std::fs::write(dir.path().join("other.key"), "cd".repeat(32)).unwrap();
        let options = SessionOptions {
            config: Some(config),
            key_file: Some(dir.path().join("other.key")),
        };
        let s = options.load().unwrap();
        assert_eq!(
            s.endpoint.protocol.psk,
            Some(PreSharedKey::from_bytes([0xcd; 32]))
        );
        // A bad key is an authentication problem, named as such.
        std::fs::write(dir.path().join("bad.key"), "xyz").unwrap();
        let err = read_key(&dir.path().join("bad.key"), "--key-file").unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::Authentication);
    }
}
