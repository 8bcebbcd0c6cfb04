//! Lidi's configuration keys, read as Ferry settings.
//!
//! Both lines of Lidi's TOML are read unchanged: ANSSI's (`ANSSI-FR/lidi`,
//! with `[sender] bind_udp` and the receiver's queue sizes) and the
//! CrabeDeFrance fork's. Lidi 2's layout (`[send]`, `[receive]`) is
//! [`super::lidi2`]'s. Each key is either mapped onto a Ferry setting or,
//! when Ferry has no use for it, ignored with a warning that says why:
//!
//! | Lidi key | Ferry |
//! |---|---|
//! | `encoding_block_size` | `block_size` |
//! | `repair_block_size` | `repair_percentage` = ⌈100 × repair ÷ encoding block⌉ |
//! | `udp_addr`, `udp_port` | `diode-send --to`, `diode-receive --listen`; a list: every port (`SocketOptions::ports`) |
//! | `udp_mtu` | `mtu` |
//! | `heartbeat` | `heartbeat` |
//! | `[sender] bind_tcp` | `diode-send --listen` |
//! | `[sender] bind_udp` | `diode-send --bind` |
//! | `[sender] max_bandwidth` | `bandwidth` (Mbit/s; ≥ 1,000,000 read as bit/s) |
//! | `[receiver] to_tcp` | `diode-receive --to` |
//! | `[receiver] block_expiration_timeout`, `session_expiration_timeout` | the same |
//! | `[sender] metrics`, `[receiver] metrics` | `diode-send --metrics`, `diode-receive --metrics` |
//! | `log_config`, `[receiver] core_affinity`, `udp_packets_queue_size`, `tcp_blocks_queue_size` | ignored, with a warning |

use std::net::{IpAddr, SocketAddr};

use serde::Deserialize;

/// Lidi's default `udp_port` when only `udp_addr` is given.
pub const DEFAULT_UDP_PORT: u16 = 5000;
/// `max_bandwidth` values at or above this are bit/s, not Mbit/s: ANSSI's
/// documentation gives Mbit/s, the fork's sample file bit/s
/// (`100000000`), and a terabit per second is no diode's pace.
pub const BIT_PER_SECOND_FROM: f64 = 1_000_000.0;

/// Lidi's `[sender]` table.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct SenderTable {
    pub(super) bind_tcp: Option<SocketAddr>,
    pub(super) bind_udp: Option<SocketAddr>,
    pub(super) max_bandwidth: Option<f64>,
    pub(super) metrics: Option<SocketAddr>,
}

/// Why each key Ferry has no use for is ignored.
pub(super) const IGNORED: [(&str, &str); 4] = [
    (
        "log_config",
        "Ferry logs through `tracing` to stderr: use -v/-vv or FERRY_LOG (e.g. FERRY_LOG=info), not a log4rs file",
    ),
    (
        "[receiver] core_affinity",
        "Ferry does not pin its threads: pin the process instead (taskset, or systemd's CPUAffinity=)",
    ),
    (
        "[receiver] udp_packets_queue_size",
        "Ferry queues datagrams in the socket itself: size it with udp_recv_buffer (bytes)",
    ),
    (
        "[receiver] tcp_blocks_queue_size",
        "Ferry bounds the blocks waiting for TCP per session: see max_blocks_in_flight",
    ),
];

/// The reason `key` is ignored.
pub(super) fn why_ignored(key: &str) -> &'static str {
    IGNORED
        .iter()
        .find(|(k, _)| *k == key)
        .map_or("Ferry has no use for it", |(_, why)| why)
}

/// `udp_port`: one port or a list of ports, each 1..=65535, at least one.
pub(super) fn ports(value: &toml::Value) -> Result<Vec<u16>, String> {
    let one = |v: &toml::Value| -> Result<u16, String> {
        match v.as_integer() {
            Some(p) if (1..=65_535).contains(&p) => Ok(p as u16),
            Some(p) => Err(format!("port {p} is outside 1..=65535")),
            None => Err(format!("{v} is not a port number")),
        }
    };
    let list = match value {
        toml::Value::Array(items) => items.iter().map(one).collect::<Result<Vec<_>, _>>()?,
        other => vec![one(other)?],
    };
    if list.is_empty() {
        return Err("the list is empty: give at least one port, e.g. udp_port = [ 5000 ]".into());
    }
    Ok(list)
}

/// `udp_addr`: an IP address, without port.
pub(super) fn udp_ip(text: &str) -> Result<IpAddr, String> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Ok(ip);
    }
    if text.parse::<SocketAddr>().is_ok() {
        return Err(format!(
            "\"{text}\" has a port: give the IP address alone, the ports go in udp_port"
        ));
    }
    Err(format!(
        "\"{text}\" is not an IP address (e.g. \"10.0.0.2\")"
    ))
}

/// `max_bandwidth` in bits per second, and whether it was read as bit/s.
pub(super) fn bandwidth(value: f64) -> Result<(u64, bool), String> {
    if !(value.is_finite() && value > 0.0) {
        return Err(format!(
            "{value} must be a positive number of Mbit/s (e.g. max_bandwidth = 100)"
        ));
    }
    if value >= BIT_PER_SECOND_FROM {
        Ok((value.round() as u64, true))
    } else {
        Ok(((value * 1e6).round().max(1.0) as u64, false))
    }
}

/// `repair_percentage` for a repair block of `repair` bytes per `encoding`
/// bytes of data, rounded up (so some repair stays some repair).
pub(super) fn repair_percentage(repair: u64, encoding: u64) -> Result<u32, String> {
    if encoding == 0 {
        return Err("encoding_block_size must be at least 1 (bytes)".into());
    }
    let percent = (u128::from(repair) * 100).div_ceil(u128::from(encoding));
    u32::try_from(percent)
        .ok()
        .filter(|p| *p <= 1000)
        .ok_or_else(|| {
            format!(
                "repair_block_size = {repair} is {percent}% of encoding_block_size = {encoding}: \
                 at most 1000% makes sense"
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_one_or_a_list() {
        assert_eq!(ports(&toml::Value::Integer(5000)), Ok(vec![5000]));
        let list = toml::Value::Array(vec![toml::Value::Integer(1), toml::Value::Integer(2)]);
        assert_eq!(ports(&list), Ok(vec![1, 2]));
        assert!(ports(&toml::Value::Array(vec![])).is_err());
        assert!(ports(&toml::Value::Integer(70_000)).is_err());
        assert!(ports(&toml::Value::String("x".into())).is_err());
    }

    #[test]
    fn bandwidth_is_mbit_unless_it_is_huge() {
        assert_eq!(bandwidth(100.0), Ok((100_000_000, false)));
        assert_eq!(bandwidth(100_000_000.0), Ok((100_000_000, true)));
        assert!(bandwidth(0.0).is_err());
    }

    #[test]
    fn repair_rounds_up() {
        assert_eq!(repair_percentage(6000, 60000), Ok(10));
        assert_eq!(repair_percentage(1, 60000), Ok(1));
        assert_eq!(repair_percentage(0, 60000), Ok(0));
        assert!(repair_percentage(1, 0).is_err());
        assert!(repair_percentage(20, 1).is_err());
    }

    #[test]
    fn addresses_have_no_port() {
        assert!(udp_ip("127.0.0.1").is_ok());
        assert!(udp_ip("::1").is_ok());
        assert!(udp_ip("127.0.0.1:5000").unwrap_err().contains("udp_port"));
        assert!(udp_ip("diode").is_err());
    }
}
