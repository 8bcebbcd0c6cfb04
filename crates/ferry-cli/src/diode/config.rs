//! The diode tools' settings: a TOML file with Lidi's keys, overridden by
//! command-line flags.
//!
//! ```toml
//! heartbeat = 1000              # ms between heartbeats (both sides)
//! mtu = 1500                    # the link's MTU, bytes
//! block_size = 524288           # bytes of data per RaptorQ block
//! repair_percentage = 10        # repair symbols per block, % of its source symbols
//! bandwidth = 1000              # Mbit/s: the sender's pace
//! max_burst = 262144            # bytes sent back to back before pacing holds
//! max_blocks_in_flight = 8      # blocks per session between application and wire
//! max_sessions = 16             # sessions open at once
//! encode_threads = 0            # 0: one per core
//! decode_threads = 0
//! udp_send_buffer = 8388608     # bytes
//! udp_recv_buffer = 33554432    # bytes
//!
//! [receiver]
//! block_expiration_timeout = 1000     # ms
//! session_expiration_timeout = 5000   # ms
//! ```
//!
//! Every key is optional (the defaults are those shown); unknown keys and
//! invalid values are refused with a message naming the key. A `[session]`
//! table holds the session tools' settings (see
//! [`crate::session::config`]) and is ignored here, so that one file can
//! serve both.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use ferry_diode::{DiodeConfig, SocketOptions};
use serde::Deserialize;

use crate::CliError;

/// The `--config` flag alone: for the tools that only check the file (so one
/// file can be given to every diode tool).
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFile {
    /// A TOML file of diode settings (Lidi's keys: heartbeat, mtu,
    /// block_size, repair_percentage, bandwidth, ... and a `[receiver]` table);
    /// flags given on the command line override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The diode settings of `diode-send` and `diode-receive`: the file, and
/// flags that override it.
#[derive(Debug, Clone, Default, Args)]
pub struct DiodeOptions {
    /// The settings file.
    #[command(flatten)]
    pub file: ConfigFile,
    /// The link's MTU in bytes (sender; default 1500).
    #[arg(long, value_name = "BYTES")]
    pub mtu: Option<usize>,
    /// Bytes of data per RaptorQ block (default 524288; on the receiver, the
    /// largest accepted).
    #[arg(long, value_name = "BYTES")]
    pub block_size: Option<usize>,
    /// Repair symbols per block, in percent of its source symbols (sender;
    /// default 10): the loss the transfer survives.
    #[arg(long, value_name = "PERCENT")]
    pub repair_percentage: Option<u32>,
    /// The sender's pace in Mbit/s (default 1000): at or below what the link
    /// and the receiver sustain.
    #[arg(long, value_name = "MBIT/S")]
    pub bandwidth: Option<f64>,
    /// Milliseconds between heartbeats (both sides; default 1000).
    #[arg(long, value_name = "MS")]
    pub heartbeat: Option<u64>,
    /// Sessions open at once (default 16).
    #[arg(long, value_name = "N")]
    pub max_sessions: Option<usize>,
    /// Worker threads for RaptorQ coding (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

/// The `[receiver]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiverTable {
    block_expiration_timeout: Option<u64>,
    session_expiration_timeout: Option<u64>,
}

/// The file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    heartbeat: Option<u64>,
    mtu: Option<usize>,
    block_size: Option<usize>,
    repair_percentage: Option<u32>,
    bandwidth: Option<f64>,
    max_burst: Option<usize>,
    max_blocks_in_flight: Option<usize>,
    max_sessions: Option<usize>,
    encode_threads: Option<usize>,
    decode_threads: Option<usize>,
    udp_send_buffer: Option<usize>,
    udp_recv_buffer: Option<usize>,
    receiver: Option<ReceiverTable>,
    /// The session tools' table (`crate::session::config`): not ours.
    #[allow(dead_code)]
    session: Option<serde::de::IgnoredAny>,
}

/// Everything a diode tool needs to start.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// The protocol's settings.
    pub diode: DiodeConfig,
    /// Socket and threads of a sender.
    pub sender: SocketOptions,
    /// Socket and threads of a receiver.
    pub receiver: SocketOptions,
}

impl ConfigFile {
    /// Reads and checks the file (the defaults without one).
    pub fn load(&self) -> Result<Settings, CliError> {
        let file = match &self.config {
            Some(path) => read(path)?,
            None => FileSettings::default(),
        };
        settings(file, &DiodeOptions::default(), self.config.as_deref())
    }
}

impl DiodeOptions {
    /// Reads the file, applies the flags and checks the result.
    pub fn load(&self) -> Result<Settings, CliError> {
        let file = match &self.file.config {
            Some(path) => read(path)?,
            None => FileSettings::default(),
        };
        settings(file, self, self.file.config.as_deref())
    }
}

/// Parses settings from TOML text (as in a `--config` file); `origin` names
/// it in error messages.
pub fn parse(text: &str, origin: &str) -> Result<Settings, CliError> {
    let file: FileSettings = toml::from_str(text)
        .map_err(|e| CliError::Invalid(format!("in {origin}: {}", e.to_string().trim_end())))?;
    settings(file, &DiodeOptions::default(), Some(Path::new(origin)))
}

fn read(path: &Path) -> Result<FileSettings, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| CliError::Io {
        context: format!(
            "cannot read the configuration file {} (check the path given to --config)",
            path.display()
        ),
        source: e,
    })?;
    toml::from_str(&text).map_err(|e| {
        CliError::Invalid(format!(
            "in {}: {}",
            path.display(),
            e.to_string().trim_end()
        ))
    })
}

fn settings(
    file: FileSettings,
    flags: &DiodeOptions,
    origin: Option<&Path>,
) -> Result<Settings, CliError> {
    let origin = origin.map_or_else(
        || "the flags".to_owned(),
        |p| format!("{} and the flags", p.display()),
    );
    let invalid = |message: String| CliError::Invalid(format!("in {origin}: {message}"));
    let mut diode = DiodeConfig::default();
    let ms = Duration::from_millis;
    if let Some(v) = flags.heartbeat.or(file.heartbeat) {
        diode.heartbeat = ms(v);
    }
    if let Some(v) = flags.mtu.or(file.mtu) {
        diode.mtu = v;
    }
    if let Some(v) = flags.block_size.or(file.block_size) {
        diode.block_size = v;
    }
    if let Some(v) = flags.repair_percentage.or(file.repair_percentage) {
        diode.repair_percentage = v;
    }
    if let Some(mbit) = flags.bandwidth.or(file.bandwidth) {
        if !(mbit.is_finite() && mbit > 0.0 && mbit <= 1e9) {
            return Err(invalid(format!(
                "`bandwidth` = {mbit} must be a positive number of Mbit/s"
            )));
        }
        diode.bandwidth = (mbit * 1e6).round().max(1.0) as u64;
    }
    if let Some(v) = file.max_burst {
        diode.max_burst = v;
    }
    if let Some(v) = file.max_blocks_in_flight {
        diode.max_blocks_in_flight = v;
    }
    if let Some(v) = flags.max_sessions.or(file.max_sessions) {
        diode.max_sessions = v;
    }
    if let Some(receiver) = file.receiver {
        diode.block_expiration_timeout = receiver.block_expiration_timeout.map(ms);
        diode.session_expiration_timeout = receiver.session_expiration_timeout.map(ms);
    }
    diode.validate().map_err(|e| invalid(format!("{e}")))?;
    let defaults = SocketOptions::default();
    let buffers = SocketOptions {
        send_buffer: file.udp_send_buffer.unwrap_or(defaults.send_buffer),
        recv_buffer: file.udp_recv_buffer.unwrap_or(defaults.recv_buffer),
        ..defaults
    };
    for (key, v) in [
        ("udp_send_buffer", buffers.send_buffer),
        ("udp_recv_buffer", buffers.recv_buffer),
    ] {
        if v == 0 {
            return Err(invalid(format!("`{key}` must be at least 1 (bytes)")));
        }
    }
    let threads = |key: &str, file: Option<usize>| -> Result<usize, CliError> {
        let n = flags.threads.or(file).unwrap_or(0);
        if n > 1024 {
            return Err(invalid(format!(
                "`{key}` = {n} is more threads than makes sense: use 0 for one per core"
            )));
        }
        Ok(n)
    };
    Ok(Settings {
        diode,
        sender: SocketOptions {
            threads: threads("encode_threads", file.encode_threads)?,
            ..buffers.clone()
        },
        receiver: SocketOptions {
            threads: threads("decode_threads", file.decode_threads)?,
            ..buffers
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_without_a_file() {
        let s = parse("", "empty").unwrap();
        assert_eq!(s.diode, DiodeConfig::default());
        assert_eq!(s.sender, SocketOptions::default());
    }

    #[test]
    fn every_key_is_read() {
        let s = parse(
            "heartbeat = 500\nmtu = 9000\nblock_size = 100000\nrepair_percentage = 20\n\
             bandwidth = 2.5\nmax_burst = 100000\nmax_blocks_in_flight = 4\nmax_sessions = 3\n\
             encode_threads = 2\ndecode_threads = 3\nudp_send_buffer = 1000\n\
             udp_recv_buffer = 2000\n[receiver]\nblock_expiration_timeout = 700\n\
             session_expiration_timeout = 9000\n",
            "test.toml",
        )
        .unwrap();
        assert_eq!(s.diode.heartbeat, Duration::from_millis(500));
        assert_eq!(s.diode.mtu, 9000);
        assert_eq!(s.diode.block_size, 100_000);
        assert_eq!(s.diode.repair_percentage, 20);
        assert_eq!(s.diode.bandwidth, 2_500_000);
        assert_eq!(s.diode.max_burst, 100_000);
        assert_eq!(s.diode.max_blocks_in_flight, 4);
        assert_eq!(s.diode.max_sessions, 3);
        assert_eq!(s.sender.threads, 2);
        assert_eq!(s.receiver.threads, 3);
        assert_eq!(s.sender.send_buffer, 1000);
        assert_eq!(s.receiver.recv_buffer, 2000);
        assert_eq!(
            s.diode.block_expiration_timeout,
            Some(Duration::from_millis(700))
        );
        assert_eq!(
            s.diode.session_expiration_timeout,
            Some(Duration::from_millis(9000))
        );
    }

    #[test]
    fn errors_name_the_key() {
        for (text, key) in [
            ("mtu = 10", "`mtu`"),
            ("repair_percentage = 5000", "`repair_percentage`"),
            ("bandwidth = -1", "`bandwidth`"),
            ("heartbeat = 0", "`heartbeat`"),
            ("max_sessions = 0", "`max_sessions`"),
            ("udp_recv_buffer = 0", "`udp_recv_buffer`"),
            ("mtu = \"big\"", "mtu"),
            ("colour = 3", "colour"),
            ("[receiver]\nsession_timeout = 3", "session_timeout"),
            (
                "[receiver]\nsession_expiration_timeout = 0",
                "`session_expiration_timeout`",
            ),
        ] {
            let err = parse(text, "test.toml").unwrap_err().to_string();
            assert!(err.contains(key), "{text}: {err}");
            assert!(err.contains("test.toml"), "{text}: {err}");
        }
    }

    #[test]
    fn the_session_table_is_ignored() {
        let s = parse(
            "mtu = 9000\n[session]\nmtu = 1400\nwhatever = \"x\"\n",
            "test.toml",
        )
        .unwrap();
        assert_eq!(s.diode.mtu, 9000);
    }

    #[test]
    fn flags_override_the_file() {
        let dir = std::env::temp_dir().join(format!("ferry-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("diode.toml");
        std::fs::write(&path, "repair_percentage = 20\nmtu = 9000\n").unwrap();
        let options = DiodeOptions {
            file: ConfigFile {
                config: Some(path.clone()),
            },
            repair_percentage: Some(30),
            bandwidth: Some(100.0),
            ..DiodeOptions::default()
        };
        let s = options.load().unwrap();
        assert_eq!(s.diode.repair_percentage, 30);
        assert_eq!(s.diode.mtu, 9000);
        assert_eq!(s.diode.bandwidth, 100_000_000);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
