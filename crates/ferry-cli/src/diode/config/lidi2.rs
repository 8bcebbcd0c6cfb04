//! Lidi 2's configuration layout (ANSSI's development line: `lidi-send`,
//! `lidi-receive`, `config_examples/*.config.toml`), read as Ferry settings.
//!
//! The shared keys sit at the top level (or, in the layout's first
//! examples, in a `[common]` table); `[send]` and `[receive]` hold each
//! side's. Each key is mapped onto a Ferry setting or, when Ferry has no
//! use for it, ignored with a warning that says why:
//!
//! | Lidi 2 key | Ferry |
//! |---|---|
//! | `mtu` | `mtu` (bytes, the link's) |
//! | `block` | `block_size` (bytes per RaptorQ block) |
//! | `repair` | `repair_percentage`: at least as many repair datagrams per block as Lidi sends (the conversion is `repair_percentage`, below) |
//! | `heartbeat` | `heartbeat`: Lidi's is in **seconds** (0: none, which Ferry cannot do: warned, default kept) |
//! | `max_clients` | `max_sessions` |
//! | `ports` with `[send] to` / `[receive] from` | `diode-send --to` / `diode-receive --listen`, every port (`SocketOptions::ports`) |
//! | `[send] to_bind` | `diode-send --bind` |
//! | `[send] from`, `[[send.from]]` | the first `tcp` entry: `diode-send --listen`; others warned about |
//! | `[receive] to`, `[[receive.to]]` | the first `tcp` entry: `diode-receive --to`; others warned about |
//! | `[receive] reset_timeout` (s) | `[receiver] block_expiration_timeout` |
//! | `[receive] abort_timeout` (s) | `[receiver] session_expiration_timeout` |
//! | `[send]`/`[receive] prometheus_listen` | `diode-send --metrics` / `diode-receive --metrics` |
//! | `[send]`/`[receive] log`, `log_file` | that side's log level, log file |
//! | `hash`, `flush`, `mode`, `queue_size`, `log4rs_config`, `[send.tls]`, `[receive.tls]` | ignored, with a warning |

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::readings::Readings;
use super::{Addresses, FileSettings, one_of};
use crate::CliError;
use endpoints::{endpoints, first_tcp};

/// Lidi 2's default UDP port list (`ports`).
pub const DEFAULT_PORT: u16 = 5000;
/// Lidi 2's default `[send] to` and `[receive] from`.
pub const DEFAULT_IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
/// Lidi 2's default `mtu`.
const DEFAULT_MTU: u64 = 1500;
/// Lidi 2's default `block`: 220,000 bytes (200,000 in the layout's first
/// examples, those with a repair count).
const DEFAULT_BLOCK: u64 = 220_000;
const DEFAULT_BLOCK_COUNTED: u64 = 200_000;
/// Repair datagrams Lidi always adds to a block.
const LIDI_MIN_REPAIR: u64 = 2;

/// The shared keys: at the top level (the newer examples) or in `[common]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct CommonTable {
    pub(super) mtu: Option<usize>,
    pub(super) ports: Option<toml::Value>,
    pub(super) block: Option<u64>,
    pub(super) repair: Option<u64>,
    pub(super) max_clients: Option<u64>,
    pub(super) hash: Option<bool>,
    pub(super) flush: Option<bool>,
    pub(super) heartbeat: Option<u64>,
}

/// `[send.tls]` and `[receive.tls]`: checked, ignored.
#[allow(dead_code)]
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsTable {
    key: Option<PathBuf>,
    certificate: Option<PathBuf>,
    ca: Option<PathBuf>,
    tls_min: Option<String>,
    tls_method: Option<String>,
    ciphers: Option<String>,
    groups: Option<String>,
}

/// `[send]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SendTable {
    log: Option<String>,
    log_file: Option<PathBuf>,
    log4rs_config: Option<PathBuf>,
    prometheus_listen: Option<SocketAddr>,
    from: Option<toml::Value>,
    to: Option<String>,
    to_bind: Option<SocketAddr>,
    mode: Option<String>,
    tls: Option<TlsTable>,
}

/// `[receive]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ReceiveTable {
    log: Option<String>,
    log_file: Option<PathBuf>,
    log4rs_config: Option<PathBuf>,
    prometheus_listen: Option<SocketAddr>,
    to: Option<toml::Value>,
    from: Option<String>,
    mode: Option<String>,
    queue_size: Option<u64>,
    reset_timeout: Option<u64>,
    abort_timeout: Option<u64>,
    tls: Option<TlsTable>,
}

/// Each side's log settings (Lidi 2's `[send]`/`[receive]` `log` and
/// `log_file`): used when the command line and the environment set none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logging {
    /// `[send] log`: diode-send's level (`error`, `warn`, `info`, ...).
    pub send_level: Option<String>,
    /// `[receive] log`: diode-receive's level.
    pub receive_level: Option<String>,
    /// `[send] log_file`: where diode-send logs instead of stderr.
    pub send_file: Option<PathBuf>,
    /// `[receive] log_file`: where diode-receive logs instead of stderr.
    pub receive_file: Option<PathBuf>,
}

/// What a Lidi 2 file sets; `None` where it says nothing.
#[derive(Debug, Default)]
pub(super) struct Lidi2 {
    /// The file uses Lidi 2's layout: its top-level `heartbeat` is seconds.
    pub(super) layout: bool,
    pub(super) mtu: Option<usize>,
    pub(super) block_size: Option<usize>,
    pub(super) repair_percentage: Option<u32>,
    pub(super) heartbeat: Option<Duration>,
    pub(super) max_sessions: Option<usize>,
    pub(super) block_expiration_timeout: Option<Duration>,
    pub(super) session_expiration_timeout: Option<Duration>,
    pub(super) addresses: Addresses,
    pub(super) log: Logging,
}

/// Whether `file` is in Lidi 2's layout.
pub(super) fn is_layout(file: &FileSettings) -> bool {
    file.common.is_some()
        || file.send.is_some()
        || file.receive.is_some()
        || file.ports.is_some()
        || file.block.is_some()
        || file.repair.is_some()
        || file.max_clients.is_some()
        || file.hash.is_some()
        || file.flush.is_some()
}

/// Whether `repair` is a count of repair datagrams per block, as in the
/// layout's first examples (a `[common]` table, `[[send.from]]` tables,
/// `hash`/`flush` shared): Lidi 2 made it a percentage when its endpoints
/// became strings (`from = [ "tcp:…" ]`) and `hash`/`flush` their options.
fn repair_is_a_count(file: &FileSettings, common: &CommonTable) -> bool {
    let tables = |v: Option<&toml::Value>| {
        v.and_then(toml::Value::as_array)
            .is_some_and(|a| a.iter().any(toml::Value::is_table))
    };
    file.common.is_some()
        || common.hash.is_some()
        || common.flush.is_some()
        || tables(file.send.as_ref().and_then(|s| s.from.as_ref()))
        || tables(file.receive.as_ref().and_then(|r| r.to.as_ref()))
}

/// A key of the shared ones: its name as read (`ports` or `[common] ports`)
/// and value.
fn shared<T>(
    r: &Readings,
    name: &str,
    top: Option<T>,
    common: Option<T>,
) -> Result<Option<(String, T)>, CliError> {
    let table = format!("[common] {name}");
    one_of(
        r,
        (name, top.as_ref().map(|_| ())),
        (&table, common.as_ref().map(|_| ())),
    )?;
    Ok(top
        .map(|v| (name.to_owned(), v))
        .or_else(|| common.map(|v| (table, v))))
}

/// Reads the Lidi 2 keys of `file` (none: nothing set).
pub(super) fn read(r: &mut Readings, file: &FileSettings) -> Result<Lidi2, CliError> {
    let mut out = Lidi2 {
        layout: is_layout(file),
        ..Lidi2::default()
    };
    if !out.layout {
        return Ok(out);
    }
    let empty = CommonTable::default();
    let common = file.common.as_ref().unwrap_or(&empty);
    let counted = repair_is_a_count(file, common);
    let mtu = shared(r, "mtu", None, common.mtu)?;
    let ports = shared(r, "ports", file.ports.clone(), common.ports.clone())?;
    let block = shared(r, "block", file.block, common.block)?;
    let repair = shared(r, "repair", file.repair, common.repair)?;
    let max_clients = shared(r, "max_clients", file.max_clients, common.max_clients)?;
    let hash = shared(r, "hash", file.hash, common.hash)?;
    let flush = shared(r, "flush", file.flush, common.flush)?;
    let heartbeat = shared(r, "heartbeat", file.heartbeat, common.heartbeat)?;

    one_of(r, ("mtu", file.mtu), ("[common] mtu", common.mtu))?;
    one_of(r, ("udp_mtu", file.udp_mtu), ("[common] mtu", common.mtu))?;
    if let Some((key, v)) = mtu {
        r.mapped(&key, format!("mtu = {v} bytes"));
        out.mtu = Some(v);
    }
    if let Some((key, v)) = &block {
        one_of(
            r,
            ("block_size", file.block_size.map(|_| ())),
            (key, Some(())),
        )?;
        one_of(
            r,
            ("encoding_block_size", file.encoding_block_size.map(|_| ())),
            (key, Some(())),
        )?;
        let v = usize::try_from(*v).map_err(|_| r.error(key, "is too large for this machine"))?;
        r.mapped(key, format!("block_size = {v} bytes"));
        out.block_size = Some(v);
    }
    if let Some((key, v)) = repair {
        one_of(
            r,
            ("repair_percentage", file.repair_percentage.map(|_| ())),
            (&key, Some(())),
        )?;
        one_of(
            r,
            ("repair_block_size", file.repair_block_size.map(|_| ())),
            (&key, Some(())),
        )?;
        let lidi_mtu = file
            .mtu
            .or(file.udp_mtu)
            .or(out.mtu)
            .map_or(DEFAULT_MTU, |m| m as u64);
        let default_block = if counted {
            DEFAULT_BLOCK_COUNTED
        } else {
            DEFAULT_BLOCK
        };
        let lidi_block = block
            .as_ref()
            .map(|(_, b)| *b)
            .or(file.block_size.map(|b| b as u64))
            .unwrap_or(default_block);
        let (p, how) =
            repair_percentage(v, counted, lidi_mtu, lidi_block).map_err(|e| r.error(&key, &e))?;
        r.mapped(&key, format!("repair_percentage = {p} % ({how})"));
        out.repair_percentage = Some(p);
    }
    if let Some((key, v)) = heartbeat {
        if v == 0 {
            r.warned(
                &key,
                None,
                "0 turns Lidi's heartbeat off; Ferry always sends one (it keeps idle sessions \
                 open and tells the receiver the sender is alive): its default, 1 s, is kept"
                    .into(),
            );
        } else {
            r.mapped(
                &key,
                format!("heartbeat = {v} s (Lidi 2 counts it in seconds)"),
            );
            out.heartbeat = Some(Duration::from_secs(v));
        }
    }
    if let Some((key, v)) = max_clients {
        one_of(
            r,
            ("max_sessions", file.max_sessions.map(|_| ())),
            (&key, Some(())),
        )?;
        if v == 0 {
            return Err(r.error(&key, "must be at least 1 (clients served at once)"));
        }
        let v = usize::try_from(v).map_err(|_| r.error(&key, "is too large"))?;
        r.mapped(
            &key,
            format!("max_sessions = {v} (connections served at once)"),
        );
        out.max_sessions = Some(v);
    }
    if let Some((key, v)) = hash {
        r.warned(&key, None, why_hash(v));
    }
    if let Some((key, v)) = flush {
        r.warned(&key, None, why_flush(v));
    }
    let ports = match ports {
        Some((key, v)) => {
            let list = super::lidi::ports(&v).map_err(|e| r.error(&key, &e))?;
            Some((key, list))
        }
        None => None,
    };
    let empty_send = SendTable::default();
    let send = file.send.as_ref().unwrap_or(&empty_send);
    let empty_receive = ReceiveTable::default();
    let receive = file.receive.as_ref().unwrap_or(&empty_receive);
    udp(r, file, &ports, send, receive, &mut out.addresses)?;
    send_side(r, file, send, &mut out)?;
    receive_side(r, file, receive, &mut out)?;
    Ok(out)
}

fn why_hash(v: bool) -> String {
    let said = if v {
        "asks Lidi to hash"
    } else {
        "turns off Lidi's hash of"
    };
    format!(
        "{said} each client's data; Ferry always checks every session's length and BLAKE3 \
         digest end to end (a mismatch loses the session), so there is nothing to set"
    )
}

fn why_flush(v: bool) -> String {
    let how = if v {
        "what flush = true asks"
    } else {
        "flush = false (wait for full blocks) is not available"
    };
    format!(
        "Ferry always flushes, {how}: diode-send sends a partly filled block once the \
         connection has been quiet for 5 ms, and diode-receive writes each block to its TCP \
         connection as soon as it is decoded; there is no setting"
    )
}

/// The sockets' addresses: `ports` with `[send] to` (where diode-send
/// sends) and with `[receive] from` (where diode-receive listens).
fn udp(
    r: &mut Readings,
    file: &FileSettings,
    ports: &Option<(String, Vec<u16>)>,
    send: &SendTable,
    receive: &ReceiveTable,
    out: &mut Addresses,
) -> Result<(), CliError> {
    if send.to.is_none() && receive.from.is_none() && ports.is_none() {
        return Ok(());
    }
    let port_key = ports.as_ref().map_or("ports", |(k, _)| k.as_str());
    one_of(
        r,
        ("udp_port", file.udp_port.as_ref().map(|_| ())),
        (port_key, ports.as_ref().map(|_| ())),
    )?;
    for side in ["[send] to", "[receive] from"] {
        let given = if side == "[send] to" {
            send.to.is_some()
        } else {
            receive.from.is_some()
        };
        one_of(
            r,
            ("udp_addr", file.udp_addr.as_ref().map(|_| ())),
            (side, given.then_some(())),
        )?;
    }
    if file.udp_addr.is_some() && ports.is_some() {
        return Err(r.error(
            port_key,
            "and `udp_addr` come from two Lidi layouts: keep Lidi 2's `ports` with \
             [send] to / [receive] from, or Lidi's udp_addr with udp_port",
        ));
    }
    if file.udp_addr.is_some() {
        // Lidi's udp_addr/udp_port give the addresses; nothing more here.
        return Ok(());
    }
    let (list, default_ports) = match ports {
        Some((key, list)) => {
            let all: Vec<String> = list.iter().map(u16::to_string).collect();
            let spread = if list.len() > 1 {
                ": one socket and thread per port on each side, the datagrams dealt among them"
            } else {
                ""
            };
            r.mapped(key, format!("ports {}{spread}", all.join(", ")));
            (list.clone(), false)
        }
        None => (vec![DEFAULT_PORT], true),
    };
    let note = if default_ports {
        format!(" (no ports: Lidi's default {DEFAULT_PORT})")
    } else {
        String::new()
    };
    let side =
        |r: &mut Readings, key: &str, host: Option<&String>| -> Result<Vec<SocketAddr>, CliError> {
            let ip = match host {
                Some(h) => resolve_ip(h).map_err(|e| r.error(key, &e))?,
                None => DEFAULT_IP,
            };
            Ok(list.iter().map(|p| SocketAddr::new(ip, *p)).collect())
        };
    let to = side(r, "[send] to", send.to.as_ref())?;
    let from = side(r, "[receive] from", receive.from.as_ref())?;
    if send.to.is_some() {
        r.mapped("[send] to", format!("diode-send --to {}{note}", to[0]));
    }
    if receive.from.is_some() {
        r.mapped(
            "[receive] from",
            format!("diode-receive --listen {}{note}", from[0]),
        );
    }
    // Both sides share `udp` unless the receiver listens elsewhere (an
    // interface's address, 0.0.0.0) than the sender sends to.
    out.udp = to;
    if from != out.udp {
        out.receive_udp = from;
    }
    Ok(())
}

/// `host`: an IP address, or a name resolved now (its first IPv4 address,
/// as Lidi takes).
fn resolve_ip(host: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(ip);
    }
    if host.parse::<SocketAddr>().is_ok() {
        return Err(format!(
            "\"{host}\" has a port: give the IP address or host name alone, the ports go in `ports`"
        ));
    }
    let found = (host, 0).to_socket_addrs().map_err(|e| {
        format!("\"{host}\" is neither an IP address nor a name that resolves: {e}")
    })?;
    found
        .map(|a| a.ip())
        .find(IpAddr::is_ipv4)
        .ok_or_else(|| format!("\"{host}\" has no IPv4 address"))
}

/// A Lidi log level (`INFO`, `warn`, any case), as Ferry's log filter
/// writes it (`info`).
///
/// # Errors
///
/// A message naming the levels, if `text` is none of them.
pub fn level(text: &str) -> Result<String, String> {
    let l = text.to_ascii_lowercase();
    match l.as_str() {
        "off" | "error" | "warn" | "info" | "debug" | "trace" => Ok(l),
        _ => Err(format!(
            "\"{text}\" is not a log level (OFF, ERROR, WARN, INFO, DEBUG or TRACE)"
        )),
    }
}

/// `mode`: checked, ignored.
fn mode(r: &mut Readings, key: &str, v: &str, syscall: &str) -> Result<(), CliError> {
    if !matches!(v, "native" | "msg" | "mmsg") {
        return Err(r.error(key, &format!("\"{v}\" is not a mode (native, msg or mmsg)")));
    }
    r.warned(
        key,
        None,
        format!("Ferry always uses {syscall}, many datagrams per system call; there is no mode to choose"),
    );
    Ok(())
}

/// A side's `log`, `log_file`, `log4rs_config` and `tls`.
fn logging(
    r: &mut Readings,
    table: &str,
    tool: &str,
    log: Option<&String>,
    file: Option<&PathBuf>,
    log4rs: bool,
    tls: bool,
) -> Result<(Option<String>, Option<PathBuf>), CliError> {
    let key = format!("[{table}] log");
    let level = match log {
        Some(v) => {
            let l = level(v).map_err(|e| r.error(&key, &e))?;
            r.mapped(
                &key,
                format!(
                    "{tool}'s log level {l} (unless -v, -q, --log, FERRY_LOG or RUST_LOG set one)"
                ),
            );
            Some(l)
        }
        None => None,
    };
    if let Some(path) = file {
        r.mapped(
            &format!("[{table}] log_file"),
            format!("{tool} logs to {} (unless --log-file)", path.display()),
        );
    }
    if log4rs {
        r.warned(
            &format!("[{table}] log4rs_config"),
            None,
            "Ferry logs through `tracing`, not log4rs: set the level with `log`, -v or FERRY_LOG, \
             and a file with `log_file` or --log-file"
                .into(),
        );
    }
    if tls {
        r.warned(
            &format!("[{table}.tls]"),
            None,
            "Ferry does not speak TLS to its clients: put a TLS proxy (stunnel, HAProxy) in front \
             of diode-send and behind diode-receive"
                .into(),
        );
    }
    Ok((level, file.cloned()))
}

fn send_side(
    r: &mut Readings,
    file: &FileSettings,
    send: &SendTable,
    out: &mut Lidi2,
) -> Result<(), CliError> {
    let sender = file.sender.as_ref();
    let (level, log_file) = logging(
        r,
        "send",
        "diode-send",
        send.log.as_ref(),
        send.log_file.as_ref(),
        send.log4rs_config.is_some(),
        send.tls.is_some(),
    )?;
    out.log.send_level = level;
    out.log.send_file = log_file;
    if let Some(v) = &send.mode {
        mode(r, "[send] mode", v, "sendmmsg with GSO")?;
    }
    if let Some(a) = send.to_bind {
        one_of(
            r,
            ("[sender] bind_udp", sender.and_then(|s| s.bind_udp)),
            ("[send] to_bind", Some(a)),
        )?;
        r.mapped("[send] to_bind", format!("diode-send --bind {a}"));
        out.addresses.bind_udp = Some(a);
    }
    if let Some(a) = send.prometheus_listen {
        one_of(
            r,
            ("[sender] metrics", sender.and_then(|s| s.metrics)),
            ("[send] prometheus_listen", Some(a)),
        )?;
        r.mapped(
            "[send] prometheus_listen",
            format!("diode-send --metrics {a} (Prometheus, GET /metrics)"),
        );
        out.addresses.send_metrics = Some(a);
    }
    if let Some(v) = &send.from {
        let list = endpoints(r, "send", "from", v)?;
        one_of(
            r,
            (
                "[sender] bind_tcp",
                sender.and_then(|s| s.bind_tcp).map(|_| ()),
            ),
            ("[send] from", Some(())),
        )?;
        out.addresses.bind_tcp = first_tcp(r, list, "diode-send", "--listen")?;
    }
    Ok(())
}

fn receive_side(
    r: &mut Readings,
    file: &FileSettings,
    receive: &ReceiveTable,
    out: &mut Lidi2,
) -> Result<(), CliError> {
    let receiver = file.receiver.as_ref();
    let (level, log_file) = logging(
        r,
        "receive",
        "diode-receive",
        receive.log.as_ref(),
        receive.log_file.as_ref(),
        receive.log4rs_config.is_some(),
        receive.tls.is_some(),
    )?;
    out.log.receive_level = level;
    out.log.receive_file = log_file;
    if let Some(v) = &receive.mode {
        mode(r, "[receive] mode", v, "recvmmsg")?;
    }
    if receive.queue_size.is_some() {
        r.warned(
            "[receive] queue_size",
            None,
            "Ferry bounds the blocks each session holds on the receiver with max_blocks_in_flight \
             (default 16), which also sets the sender's window: set that key to change it"
                .into(),
        );
    }
    let secs = |key: &str, v: u64, r: &Readings| -> Result<Duration, CliError> {
        if v == 0 {
            return Err(r.error(key, "must be at least 1 (seconds)"));
        }
        Ok(Duration::from_secs(v))
    };
    if let Some(v) = receive.reset_timeout {
        one_of(
            r,
            (
                "[receiver] block_expiration_timeout",
                receiver.and_then(|t| t.block_expiration_timeout),
            ),
            ("[receive] reset_timeout", Some(v)),
        )?;
        out.block_expiration_timeout = Some(secs("[receive] reset_timeout", v, r)?);
        r.mapped(
            "[receive] reset_timeout",
            format!(
                "[receiver] block_expiration_timeout = {} ms (a block that received nothing \
                 for {v} s is decoded with what it has)",
                v * 1000
            ),
        );
    }
    if let Some(v) = receive.abort_timeout {
        one_of(
            r,
            (
                "[receiver] session_expiration_timeout",
                receiver.and_then(|t| t.session_expiration_timeout),
            ),
            ("[receive] abort_timeout", Some(v)),
        )?;
        out.session_expiration_timeout = Some(secs("[receive] abort_timeout", v, r)?);
        r.mapped(
            "[receive] abort_timeout",
            format!(
                "[receiver] session_expiration_timeout = {} ms (a session that received nothing \
                 for {v} s is closed as lost; Ferry's sender keeps idle ones alive)",
                v * 1000
            ),
        );
    }
    if let Some(a) = receive.prometheus_listen {
        one_of(
            r,
            ("[receiver] metrics", receiver.and_then(|t| t.metrics)),
            ("[receive] prometheus_listen", Some(a)),
        )?;
        r.mapped(
            "[receive] prometheus_listen",
            format!("diode-receive --metrics {a} (Prometheus, GET /metrics)"),
        );
        out.addresses.receive_metrics = Some(a);
    }
    if let Some(v) = &receive.to {
        let list = endpoints(r, "receive", "to", v)?;
        one_of(
            r,
            (
                "[receiver] to_tcp",
                receiver.and_then(|t| t.to_tcp).map(|_| ()),
            ),
            ("[receive] to", Some(())),
        )?;
        out.addresses.to_tcp = first_tcp(r, list, "diode-receive", "--to")?;
    }
    Ok(())
}

/// The repair datagrams Lidi 2 sends per block, and Ferry's
/// `repair_percentage` that sends at least as many.
///
/// Lidi cuts a block of `block` bytes into `k = block ÷ payload` datagrams,
/// the payload being the MTU less 28 bytes of IPv4/UDP and 4 of RaptorQ,
/// rounded down to 8. `repair` is then:
///
/// - in the newer examples, a percentage of the datagrams sent (0–99):
///   `2 + ⌈(k + 2) × repair ÷ (100 − repair)⌉` repair datagrams;
/// - in the layout's first examples (`counted`), their number (at least 2).
///
/// Ferry's `repair_percentage` is repair per source symbol, rounded up;
/// its symbols are a little smaller than Lidi's, so the same bytes make at
/// least as many, and it sends at least as many repair datagrams.
pub(super) fn repair_percentage(
    repair: u64,
    counted: bool,
    mtu: u64,
    block: u64,
) -> Result<(u32, String), String> {
    let payload = mtu.saturating_sub(32) / 8 * 8;
    let k = block.checked_div(payload).unwrap_or(0);
    if k == 0 {
        return Err(format!(
            "needs at least one datagram per block: block = {block} is smaller than Lidi's \
             payload of {payload} bytes at mtu {mtu}"
        ));
    }
    let (n, unit) = if counted {
        (repair.max(LIDI_MIN_REPAIR), "repair datagrams per block")
    } else {
        if repair >= 100 {
            return Err(format!(
                "= {repair} is not a percentage below 100 (Lidi refuses it too)"
            ));
        }
        (
            LIDI_MIN_REPAIR + ((k + 2) * repair).div_ceil(100 - repair),
            "% of the datagrams",
        )
    };
    let p = (n * 100).div_ceil(k);
    let p = u32::try_from(p)
        .ok()
        .filter(|p| *p <= 1000)
        .ok_or_else(|| format!("= {repair} makes {p} % repair, above Ferry's 1000 %"))?;
    Ok((
        p,
        format!("Lidi's {repair} {unit}: {n} repair per {k} source datagrams of {payload} bytes"),
    ))
}

mod endpoints;
#[cfg(test)]
mod tests;
