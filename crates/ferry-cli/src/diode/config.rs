//! The diode tools' settings: a TOML file — Ferry's keys or Lidi's, unchanged
//! — overridden by command-line flags.
//!
//! Ferry's own keys:
//!
//! ```toml
//! heartbeat = 1000              # ms between heartbeats (both sides)
//! mtu = 1500                    # the link's MTU, bytes
//! block_size = 524288           # bytes of data per RaptorQ block
//! repair_percentage = 10        # repair symbols per block, % of its source symbols
//! bandwidth = 1000              # Mbit/s: the sender's pace
//! max_burst = 262144            # bytes sent back to back before pacing holds
//! max_blocks_in_flight = 16     # blocks per session between application and wire
//! interleave_depth = 8          # consecutive blocks whose datagrams go out in turn (1: none)
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
//! Lidi's keys are read too, and mapped onto these or onto the tools'
//! addresses; the few Ferry has no use for are ignored with a warning that
//! says why. Two layouts: Lidi's (ANSSI's and the CrabeDeFrance fork's
//! `doc/configuration_file.rst`: `encoding_block_size`, `udp_addr`,
//! `[sender]`, `[receiver]`; see [`lidi`] for the table), and Lidi 2's
//! (ANSSI's development line, `config_examples/*.config.toml`: `ports`,
//! `block`, `repair`, `[send]`, `[receive]`, optionally `[common]`; see
//! [`lidi2`]), where `heartbeat` is in seconds. A setting given twice, once
//! by each name (`mtu` and `udp_mtu`, `block_size` and `block`), is refused.
//!
//! Every key is optional (the defaults are those shown); unknown keys and
//! invalid values are refused with a message naming the key (and its line).
//! A `[session]` table holds the session tools' settings (see
//! [`crate::session::config`]) and is ignored here, so that one file can
//! serve both.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use ferry_diode::{DiodeConfig, SocketOptions};
use serde::Deserialize;
use serde::de::IgnoredAny;
use tracing::warn;

use crate::CliError;

pub mod lidi;
pub mod lidi2;
mod readings;

pub use readings::KeyReading;
use readings::Readings;

/// The `--config` flag alone: for the tools that only check the file (so one
/// file can be given to every diode tool).
#[derive(Debug, Clone, Default, Args)]
pub struct ConfigFile {
    /// A TOML file of diode settings: Ferry's keys (heartbeat, mtu,
    /// block_size, repair_percentage, bandwidth, ...) or Lidi's, unchanged:
    /// Lidi's layout (encoding_block_size, udp_addr, udp_port, `[sender]`,
    /// `[receiver]`, ...) or Lidi 2's (ports, block, repair, `[send]`,
    /// `[receive]`, `[common]`, ...); `ferry config check FILE` shows how
    /// each key is read. Flags given on the command line override it.
    #[arg(short = 'c', long, value_name = "FILE")]
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

/// The `[receiver]` table: Ferry's and Lidi's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiverTable {
    block_expiration_timeout: Option<u64>,
    session_expiration_timeout: Option<u64>,
    to_tcp: Option<SocketAddr>,
    core_affinity: Option<Vec<u32>>,
    udp_packets_queue_size: Option<u64>,
    tcp_blocks_queue_size: Option<u64>,
    metrics: Option<SocketAddr>,
}

/// The file's keys: Ferry's, then Lidi's.
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
    interleave_depth: Option<usize>,
    max_sessions: Option<usize>,
    encode_threads: Option<usize>,
    decode_threads: Option<usize>,
    udp_send_buffer: Option<usize>,
    udp_recv_buffer: Option<usize>,
    receiver: Option<ReceiverTable>,
    /// The session tools' table (`crate::session::config`): not ours.
    #[allow(dead_code)]
    session: Option<IgnoredAny>,
    encoding_block_size: Option<u64>,
    repair_block_size: Option<u64>,
    udp_addr: Option<String>,
    udp_port: Option<toml::Value>,
    udp_mtu: Option<usize>,
    log_config: Option<String>,
    sender: Option<lidi::SenderTable>,
    // Lidi 2's (see [`lidi2`]): `mtu` and `heartbeat` are shared above.
    ports: Option<toml::Value>,
    block: Option<u64>,
    repair: Option<u64>,
    max_clients: Option<u64>,
    hash: Option<bool>,
    flush: Option<bool>,
    common: Option<lidi2::CommonTable>,
    send: Option<lidi2::SendTable>,
    receive: Option<lidi2::ReceiveTable>,
}

/// The top-level keys and tables the diode tools read (Ferry's and Lidi's),
/// for tools that share the file and warn about the others.
pub const TOP_LEVEL_KEYS: [&str; 31] = [
    "heartbeat",
    "mtu",
    "block_size",
    "repair_percentage",
    "bandwidth",
    "max_burst",
    "max_blocks_in_flight",
    "interleave_depth",
    "max_sessions",
    "encode_threads",
    "decode_threads",
    "udp_send_buffer",
    "udp_recv_buffer",
    "receiver",
    "encoding_block_size",
    "repair_block_size",
    "udp_addr",
    "udp_port",
    "udp_mtu",
    "log_config",
    "sender",
    "session",
    "ports",
    "block",
    "repair",
    "max_clients",
    "hash",
    "flush",
    "common",
    "send",
    "receive",
];

/// The addresses a file gives the tools (Lidi's files carry them; Ferry's
/// flags give them otherwise, and win).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Addresses {
    /// `udp_addr` with each port of `udp_port`: where `diode-receive`
    /// listens and `diode-send` sends. With several, the first gives the
    /// address ([`Addresses::udp_for_driver`]) and the sockets' `ports`
    /// ([`SocketOptions::ports`]) all of them.
    pub udp: Vec<SocketAddr>,
    /// `[sender] bind_udp`: the address `diode-send` sends from (`--bind`).
    pub bind_udp: Option<SocketAddr>,
    /// `[sender] bind_tcp`: the address `diode-send` accepts on (`--listen`).
    pub bind_tcp: Option<SocketAddr>,
    /// `[receiver] to_tcp`: where `diode-receive` replays sessions (`--to`).
    pub to_tcp: Option<SocketAddr>,
    /// `[sender] metrics`: where `diode-send` serves its Prometheus
    /// metrics (`--metrics`).
    pub send_metrics: Option<SocketAddr>,
    /// `[receiver] metrics`: where `diode-receive` serves its Prometheus
    /// metrics (`--metrics`).
    pub receive_metrics: Option<SocketAddr>,
    /// Lidi 2's `[receive] from` with each port, when diode-receive listens
    /// elsewhere than diode-send sends (`[send] to`); empty: [`Self::udp`].
    pub receive_udp: Vec<SocketAddr>,
}

impl Addresses {
    /// The UDP address the diode driver is given: the first of
    /// [`Self::udp`] (with several, the driver takes its IP and the ports
    /// from [`SocketOptions::ports`]).
    pub fn udp_for_driver(&self) -> Option<SocketAddr> {
        self.udp.first().copied()
    }

    /// The UDP address `diode-receive` listens on: the first of
    /// [`Self::receive_udp`], else of [`Self::udp`].
    pub fn listen_udp_for_driver(&self) -> Option<SocketAddr> {
        self.receive_udp.first().or(self.udp.first()).copied()
    }
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
    /// The addresses the file gives.
    pub addresses: Addresses,
    /// The log level and file Lidi 2's `[send]`/`[receive]` give.
    pub log: lidi2::Logging,
    /// How each key of the file was read, in the file's order.
    pub keys: Vec<KeyReading>,
}

impl Settings {
    /// The keys read with a warning (ignored).
    pub fn warnings(&self) -> impl Iterator<Item = &KeyReading> {
        self.keys.iter().filter(|k| k.warning.is_some())
    }

    /// Logs a warning for each key ignored.
    fn log_warnings(&self, origin: &Path) {
        for key in self.warnings() {
            warn!(
                file = %origin.display(),
                line = key.line,
                key = %key.key,
                "{}",
                key.warning.as_deref().unwrap_or_default()
            );
        }
    }
}

impl ConfigFile {
    /// Reads and checks the file (the defaults without one); logs a warning
    /// for each key it ignores.
    pub fn load(&self) -> Result<Settings, CliError> {
        load(self.config.as_deref(), &DiodeOptions::default())
    }
}

impl DiodeOptions {
    /// Reads the file, applies the flags and checks the result; logs a
    /// warning for each key of the file it ignores.
    pub fn load(&self) -> Result<Settings, CliError> {
        load(self.file.config.as_deref(), self)
    }
}

fn load(path: Option<&Path>, flags: &DiodeOptions) -> Result<Settings, CliError> {
    let Some(path) = path else {
        return settings(FileSettings::default(), flags, None, "");
    };
    let text = std::fs::read_to_string(path).map_err(|e| CliError::Io {
        context: format!(
            "cannot read the configuration file {} (check the path given to --config)",
            path.display()
        ),
        source: e,
    })?;
    let origin = path.display().to_string();
    let s = settings(deserialize(&text, &origin)?, flags, Some(path), &text)?;
    s.log_warnings(path);
    Ok(s)
}

/// Parses settings from TOML text (as in a `--config` file); `origin` names
/// it in error messages. Warnings are not logged: they are in
/// [`Settings::keys`].
pub fn parse(text: &str, origin: &str) -> Result<Settings, CliError> {
    let file = deserialize(text, origin)?;
    settings(
        file,
        &DiodeOptions::default(),
        Some(Path::new(origin)),
        text,
    )
}

fn deserialize(text: &str, origin: &str) -> Result<FileSettings, CliError> {
    let file: FileSettings = toml::from_str(text)
        .map_err(|e| CliError::Invalid(format!("in {origin}: {}", e.to_string().trim_end())))?;
    Ok(file)
}

/// Two names for one setting: refused, so that neither silently wins.
fn one_of<T>(
    r: &Readings,
    ferry: (&str, Option<T>),
    lidi: (&str, Option<T>),
) -> Result<(), CliError> {
    if ferry.1.is_some() && lidi.1.is_some() {
        return Err(r.error(
            lidi.0,
            &format!(
                "and `{}` set the same thing: keep one of them (Lidi's `{}` or Ferry's `{}`)",
                ferry.0, lidi.0, ferry.0
            ),
        ));
    }
    Ok(())
}

fn settings(
    file: FileSettings,
    flags: &DiodeOptions,
    origin: Option<&Path>,
    text: &str,
) -> Result<Settings, CliError> {
    let mut r = Readings::new(text, origin);
    let origin = origin.map_or_else(
        || "the flags".to_owned(),
        |p| format!("{} and the flags", p.display()),
    );
    let invalid = |message: String| CliError::Invalid(format!("in {origin}: {message}"));
    let l2 = lidi2::read(&mut r, &file)?;
    let receiver = file.receiver.unwrap_or_default();
    let sender = file.sender.unwrap_or_default();
    one_of(&r, ("mtu", file.mtu), ("udp_mtu", file.udp_mtu))?;
    one_of(
        &r,
        ("block_size", file.block_size.map(|_| ())),
        ("encoding_block_size", file.encoding_block_size.map(|_| ())),
    )?;
    one_of(
        &r,
        ("repair_percentage", file.repair_percentage.map(|_| ())),
        ("repair_block_size", file.repair_block_size.map(|_| ())),
    )?;
    one_of(
        &r,
        ("bandwidth", file.bandwidth.map(|_| ())),
        ("[sender] max_bandwidth", sender.max_bandwidth.map(|_| ())),
    )?;

    let mut diode = DiodeConfig::default();
    let ms = Duration::from_millis;
    // In Lidi 2's layout the top-level heartbeat is Lidi's, in seconds.
    let heartbeat = file.heartbeat.filter(|_| !l2.layout);
    if let Some(v) = heartbeat {
        r.mapped("heartbeat", format!("heartbeat = {v} ms (both sides)"));
    }
    if let Some(v) = flags
        .heartbeat
        .map(ms)
        .or(heartbeat.map(ms))
        .or(l2.heartbeat)
    {
        diode.heartbeat = v;
    }
    if let Some(v) = file.mtu {
        r.mapped("mtu", format!("mtu = {v} bytes"));
    }
    if let Some(v) = file.udp_mtu {
        r.mapped("udp_mtu", format!("mtu = {v} bytes"));
    }
    if let Some(v) = flags.mtu.or(file.mtu).or(file.udp_mtu).or(l2.mtu) {
        diode.mtu = v;
    }
    if let Some(v) = file.block_size {
        r.mapped("block_size", format!("block_size = {v} bytes"));
    }
    let encoding = match file.encoding_block_size {
        Some(v) => {
            let v = usize::try_from(v)
                .map_err(|_| r.error("encoding_block_size", "is too large for this machine"))?;
            r.mapped("encoding_block_size", format!("block_size = {v} bytes"));
            Some(v)
        }
        None => None,
    };
    if let Some(v) = flags
        .block_size
        .or(file.block_size)
        .or(encoding)
        .or(l2.block_size)
    {
        diode.block_size = v;
    }
    if let Some(v) = file.repair_percentage {
        r.mapped("repair_percentage", format!("repair_percentage = {v} %"));
    }
    let repair = match file.repair_block_size {
        Some(repair) => {
            // Relative to the block size the file meant.
            let per = encoding.or(file.block_size).unwrap_or(diode.block_size) as u64;
            let p = lidi::repair_percentage(repair, per)
                .map_err(|e| r.error("repair_block_size", &e))?;
            r.mapped(
                "repair_block_size",
                format!(
                    "repair_percentage = {p} % ({repair} repair bytes per {per} bytes of data)"
                ),
            );
            Some(p)
        }
        None => None,
    };
    if let Some(v) = flags
        .repair_percentage
        .or(file.repair_percentage)
        .or(repair)
        .or(l2.repair_percentage)
    {
        diode.repair_percentage = v;
    }
    if let Some(mbit) = file.bandwidth {
        r.mapped("bandwidth", format!("bandwidth = {mbit} Mbit/s"));
    }
    if let Some(mbit) = flags.bandwidth.or(file.bandwidth) {
        if !(mbit.is_finite() && mbit > 0.0 && mbit <= 1e9) {
            return Err(invalid(format!(
                "`bandwidth` = {mbit} must be a positive number of Mbit/s"
            )));
        }
        diode.bandwidth = (mbit * 1e6).round().max(1.0) as u64;
    } else if let Some(v) = sender.max_bandwidth {
        let (bits, as_bits) =
            lidi::bandwidth(v).map_err(|e| r.error("[sender] max_bandwidth", &e))?;
        let how = if as_bits {
            " (read as bit/s: values from 1000000 up are)"
        } else {
            ""
        };
        r.mapped(
            "[sender] max_bandwidth",
            format!("bandwidth = {} Mbit/s{how}", bits as f64 / 1e6),
        );
        diode.bandwidth = bits;
    }
    for (key, value, target) in [
        ("max_burst", file.max_burst, &mut diode.max_burst),
        (
            "max_blocks_in_flight",
            file.max_blocks_in_flight,
            &mut diode.max_blocks_in_flight,
        ),
        (
            "interleave_depth",
            file.interleave_depth,
            &mut diode.interleave_depth,
        ),
    ] {
        if let Some(v) = value {
            r.mapped(key, format!("{key} = {v}"));
            *target = v;
        }
    }
    if let Some(v) = file.max_sessions {
        r.mapped("max_sessions", format!("max_sessions = {v}"));
    }
    if let Some(v) = flags.max_sessions.or(file.max_sessions).or(l2.max_sessions) {
        diode.max_sessions = v;
    }
    for (key, value, target) in [
        (
            "[receiver] block_expiration_timeout",
            receiver.block_expiration_timeout,
            &mut diode.block_expiration_timeout,
        ),
        (
            "[receiver] session_expiration_timeout",
            receiver.session_expiration_timeout,
            &mut diode.session_expiration_timeout,
        ),
    ] {
        if let Some(v) = value {
            let name = key.trim_start_matches("[receiver] ");
            r.mapped(key, format!("{name} = {v} ms"));
            *target = Some(ms(v));
        }
    }
    diode.block_expiration_timeout = diode
        .block_expiration_timeout
        .or(l2.block_expiration_timeout);
    diode.session_expiration_timeout = diode
        .session_expiration_timeout
        .or(l2.session_expiration_timeout);
    diode.validate().map_err(|e| invalid(format!("{e}")))?;

    let addresses = merge(
        addresses(&mut r, &file.udp_addr, &file.udp_port, &sender, &receiver)?,
        l2.addresses,
    );
    if file.log_config.is_some() {
        r.ignored("log_config");
    }
    for (key, present) in [
        ("[receiver] core_affinity", receiver.core_affinity.is_some()),
        (
            "[receiver] udp_packets_queue_size",
            receiver.udp_packets_queue_size.is_some(),
        ),
        (
            "[receiver] tcp_blocks_queue_size",
            receiver.tcp_blocks_queue_size.is_some(),
        ),
    ] {
        if present {
            r.ignored(key);
        }
    }

    let defaults = SocketOptions::default();
    let buffers = SocketOptions {
        send_buffer: file.udp_send_buffer.unwrap_or(defaults.send_buffer),
        recv_buffer: file.udp_recv_buffer.unwrap_or(defaults.recv_buffer),
        // Lidi's list of ports: the first address gives the IP.
        ports: if addresses.udp.len() > 1 || addresses.receive_udp.len() > 1 {
            let udp = if addresses.udp.is_empty() {
                &addresses.receive_udp
            } else {
                &addresses.udp
            };
            udp.iter().map(SocketAddr::port).collect()
        } else {
            Vec::new()
        },
        ..defaults
    };
    for (key, given, v) in [
        ("udp_send_buffer", file.udp_send_buffer, buffers.send_buffer),
        ("udp_recv_buffer", file.udp_recv_buffer, buffers.recv_buffer),
    ] {
        if v == 0 {
            return Err(invalid(format!("`{key}` must be at least 1 (bytes)")));
        }
        if given.is_some() {
            r.mapped(key, format!("{key} = {v} bytes"));
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
    for (key, v) in [
        ("encode_threads", file.encode_threads),
        ("decode_threads", file.decode_threads),
    ] {
        if let Some(v) = v {
            r.mapped(key, format!("{key} = {v} (0: one per core)"));
        }
    }
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
        addresses,
        log: l2.log,
        keys: r.finish(),
    })
}

/// The addresses of both Lidi layouts (a key given in both is refused
/// before this): each field from whichever gives it.
fn merge(lidi: Addresses, lidi2: Addresses) -> Addresses {
    let list = |a: Vec<SocketAddr>, b: Vec<SocketAddr>| if a.is_empty() { b } else { a };
    Addresses {
        udp: list(lidi.udp, lidi2.udp),
        bind_udp: lidi.bind_udp.or(lidi2.bind_udp),
        bind_tcp: lidi.bind_tcp.or(lidi2.bind_tcp),
        to_tcp: lidi.to_tcp.or(lidi2.to_tcp),
        send_metrics: lidi.send_metrics.or(lidi2.send_metrics),
        receive_metrics: lidi.receive_metrics.or(lidi2.receive_metrics),
        receive_udp: list(lidi.receive_udp, lidi2.receive_udp),
    }
}

/// Lidi's addresses: `udp_addr` and `udp_port`, `[sender] bind_tcp` and
/// `bind_udp`, `[receiver] to_tcp`.
fn addresses(
    r: &mut Readings,
    udp_addr: &Option<String>,
    udp_port: &Option<toml::Value>,
    sender: &lidi::SenderTable,
    receiver: &ReceiverTable,
) -> Result<Addresses, CliError> {
    let mut out = Addresses::default();
    let ip = match udp_addr {
        Some(text) => Some(lidi::udp_ip(text).map_err(|e| r.error("udp_addr", &e))?),
        None => None,
    };
    let ports = match udp_port {
        Some(value) => Some(lidi::ports(value).map_err(|e| r.error("udp_port", &e))?),
        None => None,
    };
    match (ip, ports) {
        (None, None) => {}
        (None, Some(_)) => {
            return Err(r.error(
                "udp_port",
                "is set without `udp_addr`: add udp_addr, the IP address diode-receive listens on",
            ));
        }
        (Some(ip), ports) => {
            let given = ports.is_some();
            let ports = ports.unwrap_or_else(|| vec![lidi::DEFAULT_UDP_PORT]);
            out.udp = ports.iter().map(|p| SocketAddr::new(ip, *p)).collect();
            let first = out.udp[0];
            let note = if given {
                String::new()
            } else {
                format!(
                    " (no udp_port: Lidi's default port {})",
                    lidi::DEFAULT_UDP_PORT
                )
            };
            r.mapped(
                "udp_addr",
                format!("diode-send --to / diode-receive --listen {first}{note}"),
            );
            if !given {
            } else if ports.len() == 1 {
                r.mapped("udp_port", format!("port {}", ports[0]));
            } else {
                let all: Vec<String> = ports.iter().map(u16::to_string).collect();
                r.mapped(
                    "udp_port",
                    format!(
                        "ports {}: one socket and thread per port on each side, the datagrams dealt among them",
                        all.join(", ")
                    ),
                );
            }
        }
    }
    if let Some(a) = sender.bind_tcp {
        r.mapped("[sender] bind_tcp", format!("diode-send --listen {a}"));
        out.bind_tcp = Some(a);
    }
    if let Some(a) = sender.bind_udp {
        r.mapped("[sender] bind_udp", format!("diode-send --bind {a}"));
        out.bind_udp = Some(a);
    }
    if let Some(a) = receiver.to_tcp {
        r.mapped("[receiver] to_tcp", format!("diode-receive --to {a}"));
        out.to_tcp = Some(a);
    }
    if let Some(a) = sender.metrics {
        r.mapped(
            "[sender] metrics",
            format!("diode-send --metrics {a} (Prometheus, GET /metrics)"),
        );
        out.send_metrics = Some(a);
    }
    if let Some(a) = receiver.metrics {
        r.mapped(
            "[receiver] metrics",
            format!("diode-receive --metrics {a} (Prometheus, GET /metrics)"),
        );
        out.receive_metrics = Some(a);
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
