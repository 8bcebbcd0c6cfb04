//! Lidi 2's layout: each key's mapping, units, warnings and refusals.

use std::net::SocketAddr;
use std::time::Duration;

use super::super::{Settings, parse};
use super::endpoints::endpoint;
use super::*;

/// ANSSI-FR/lidi `config_examples/tcp.config.toml` as first written
/// (commit cf087fb): a `[common]` table, `[[send.from]]` tables, `repair`
/// a count of datagrams.
const FIRST: &str = r#"[common]
mtu = 9000
ports = [5001, 5002, 5003, 5004]
block = 300_000
repair = 3
max_clients = 2
hash = false
flush = false
heartbeat = 10

[send]
log = "INFO"
to = "127.0.0.1"
to_bind = "0.0.0.0:0"
mode = "mmsg"

[[send.from]]
tcp = "127.0.0.1:4000"

[receive]
log = "INFO"
from = "127.0.0.1"
mode = "mmsg"
queue_size = 4096
reset_timeout = 2
abort_timeout = 60

[[receive.to]]
tcp = "127.0.0.1:6000"
"#;

/// The newest `config_examples/mixed.config.toml` (commit 8247d0f): shared
/// keys at the top level, endpoints as strings, `repair` a percentage.
const NEWEST: &str = r#"mtu = 9000
ports = [5001, 5002, 5003, 5004]
block = 220_000
repair = 1
max_clients = 2
heartbeat = 10

[send]
log = "INFO"
to = "127.0.0.1"
to_bind = "0.0.0.0:0"
mode = "mmsg"
prometheus_listen = "127.0.0.1:9001"

from = [ "tcp:127.0.0.1:4000", "unix:/tmp/source_to_tcp_port_6001" ]

[receive]
log = "INFO"
from = "127.0.0.1"
mode = "mmsg"
queue_size = 4096
reset_timeout = 2
abort_timeout = 60
prometheus_listen = "127.0.0.1:9002"

to = [ "unix:/tmp/dest_from_tcp_port_4000", "tcp[flush=true]:127.0.0.1:6001" ]
"#;

fn key<'a>(s: &'a Settings, name: &str) -> &'a super::super::KeyReading {
    s.keys
        .iter()
        .find(|k| k.key == name)
        .unwrap_or_else(|| panic!("no reading of {name}: {:#?}", s.keys))
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

#[test]
fn the_first_layout_maps_every_key() {
    let s = parse(FIRST, "tcp.config.toml").unwrap();
    assert_eq!(s.diode.mtu, 9000);
    assert_eq!(s.diode.block_size, 300_000);
    // 3 repair datagrams for 300000 ÷ 8968 = 33 source ones: ⌈300 ÷ 33⌉.
    assert_eq!(s.diode.repair_percentage, 10);
    assert_eq!(s.diode.heartbeat, Duration::from_secs(10));
    assert_eq!(s.diode.max_sessions, 2);
    assert_eq!(
        s.diode.block_expiration_timeout,
        Some(Duration::from_secs(2))
    );
    assert_eq!(
        s.diode.session_expiration_timeout,
        Some(Duration::from_secs(60))
    );
    let udp: Vec<SocketAddr> = [5001, 5002, 5003, 5004]
        .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
        .to_vec();
    assert_eq!(s.addresses.udp, udp);
    assert!(s.addresses.receive_udp.is_empty());
    assert_eq!(s.sender.ports, [5001, 5002, 5003, 5004]);
    assert_eq!(s.receiver.ports, [5001, 5002, 5003, 5004]);
    assert_eq!(s.addresses.bind_udp, Some(addr("0.0.0.0:0")));
    assert_eq!(s.addresses.bind_tcp, Some(addr("127.0.0.1:4000")));
    assert_eq!(s.addresses.to_tcp, Some(addr("127.0.0.1:6000")));
    assert_eq!(s.log.send_level.as_deref(), Some("info"));
    assert_eq!(s.log.receive_level.as_deref(), Some("info"));
    let warned: Vec<&str> = s.warnings().map(|k| k.key.as_str()).collect();
    assert_eq!(
        warned,
        [
            "[common] hash",
            "[common] flush",
            "[send] mode",
            "[receive] mode",
            "[receive] queue_size",
        ]
    );
    assert_eq!(
        key(&s, "[common] block").to_string(),
        "line 4: [common] block → block_size = 300000 bytes"
    );
    assert!(
        key(&s, "[common] repair").to_string().contains(
            "repair_percentage = 10 % (Lidi's 3 repair datagrams per block: 3 repair per 33"
        ),
        "{}",
        key(&s, "[common] repair")
    );
    assert_eq!(
        key(&s, "[send.from] tcp").to_string(),
        "line 18: [send.from] tcp → diode-send --listen 127.0.0.1:4000"
    );
    assert!(
        key(&s, "[common] heartbeat")
            .to_string()
            .contains("heartbeat = 10 s")
    );
    assert!(key(&s, "[common] hash").to_string().contains("BLAKE3"));
    assert!(key(&s, "[send] mode").to_string().contains("sendmmsg"));
    assert!(
        key(&s, "[receive] queue_size")
            .to_string()
            .contains("max_blocks_in_flight")
    );
}

#[test]
fn the_newest_layout_maps_every_key() {
    let s = parse(NEWEST, "mixed.config.toml").unwrap();
    // repair 1 %: 2 + ⌈26 × 1 ÷ 99⌉ = 3 repair for 24 source datagrams.
    assert_eq!(s.diode.repair_percentage, 13);
    assert_eq!(s.diode.block_size, 220_000);
    assert_eq!(s.diode.heartbeat, Duration::from_secs(10));
    assert_eq!(s.addresses.send_metrics, Some(addr("127.0.0.1:9001")));
    assert_eq!(s.addresses.receive_metrics, Some(addr("127.0.0.1:9002")));
    assert_eq!(s.addresses.bind_tcp, Some(addr("127.0.0.1:4000")));
    assert_eq!(s.addresses.to_tcp, Some(addr("127.0.0.1:6001")));
    assert_eq!(
        key(&s, "heartbeat").to_string(),
        "line 6: heartbeat → heartbeat = 10 s (Lidi 2 counts it in seconds)"
    );
    assert_eq!(
        key(&s, "[send] prometheus_listen").to_string(),
        "line 13: [send] prometheus_listen → diode-send --metrics 127.0.0.1:9001 (Prometheus, GET /metrics)"
    );
    let from = key(&s, "[send] from").to_string();
    assert!(from.starts_with("line 15: [send] from → diode-send --listen 127.0.0.1:4000; warning: unix:/tmp/source_to_tcp_port_6001 is not served: Ferry does not use Unix sockets"), "{from}");
    let to = key(&s, "[receive] to").to_string();
    assert!(to.contains("→ diode-receive --to 127.0.0.1:6001"), "{to}");
    assert!(
        to.contains("unix:/tmp/dest_from_tcp_port_4000 is not served"),
        "{to}"
    );
    assert!(
        to.contains("Ferry always flushes, what flush = true asks"),
        "{to}"
    );
    assert!(
        key(&s, "[receive] reset_timeout")
            .to_string()
            .contains("block_expiration_timeout = 2000 ms")
    );
    assert!(
        key(&s, "[receive] abort_timeout")
            .to_string()
            .contains("session_expiration_timeout = 60000 ms")
    );
}

#[test]
fn the_receiver_may_listen_elsewhere_than_the_sender_sends() {
    let s = parse(
        "ports = [ 7000, 7001 ]\n[send]\nto = \"10.0.0.2\"\n[receive]\nfrom = \"0.0.0.0\"\n",
        "x.toml",
    )
    .unwrap();
    assert_eq!(s.addresses.udp_for_driver(), Some(addr("10.0.0.2:7000")));
    assert_eq!(
        s.addresses.listen_udp_for_driver(),
        Some(addr("0.0.0.0:7000"))
    );
    assert_eq!(s.sender.ports, [7000, 7001]);
    // Only one side: the other is Lidi's default, 127.0.0.1.
    let s = parse("[send]\nto = \"10.0.0.2\"\n", "x.toml").unwrap();
    assert_eq!(s.addresses.udp_for_driver(), Some(addr("10.0.0.2:5000")));
    assert_eq!(
        s.addresses.listen_udp_for_driver(),
        Some(addr("127.0.0.1:5000"))
    );
    assert!(
        key(&s, "[send] to")
            .to_string()
            .contains("Lidi's default 5000")
    );
}

#[test]
fn tls_log4rs_and_a_second_tcp_endpoint_are_warned_about() {
    let s = parse(
        "[send]\nfrom = [ \"tls:127.0.0.1:4000\", \"tcp:127.0.0.1:4001\", \"tcp:127.0.0.1:4002\" ]\n\
         log4rs_config = \"lidi_log4rs.yml\"\nlog_file = \"/var/log/lidi-send.log\"\n\
         [send.tls]\nkey = \"k.pem\"\ncertificate = \"c.pem\"\nca = \"ca.pem\"\n\
         [[receive.to]]\nunix = \"/tmp/x\"\n[[receive.to]]\ntcp = \"127.0.0.1:6000\"\n",
        "tls.toml",
    )
    .unwrap();
    assert_eq!(s.addresses.bind_tcp, Some(addr("127.0.0.1:4001")));
    assert_eq!(s.addresses.to_tcp, Some(addr("127.0.0.1:6000")));
    assert_eq!(
        s.log.send_file,
        Some(PathBuf::from("/var/log/lidi-send.log"))
    );
    let from = key(&s, "[send] from").to_string();
    assert!(
        from.contains("tls:127.0.0.1:4000 is not served: Ferry does not terminate TLS"),
        "{from}"
    );
    assert!(
        from.contains("tcp:127.0.0.1:4002 is not served: Ferry serves one TCP endpoint"),
        "{from}"
    );
    assert!(
        key(&s, "[send.tls]")
            .to_string()
            .contains("line 5: [send.tls]: ignored (warning)")
    );
    assert!(key(&s, "[send] log4rs_config").warning.is_some());
    assert_eq!(key(&s, "[receive.to] unix").line, Some(10));
    assert_eq!(
        key(&s, "[receive.to #2] tcp").to_string(),
        "line 12: [receive.to #2] tcp → diode-receive --to 127.0.0.1:6000"
    );
}

#[test]
fn a_heartbeat_of_zero_keeps_ferrys() {
    let s = parse("heartbeat = 0\nports = [ 5000 ]\n", "x.toml").unwrap();
    assert_eq!(s.diode.heartbeat, Duration::from_secs(1));
    assert!(key(&s, "heartbeat").warning.is_some());
    // Without Lidi 2's keys, heartbeat is Ferry's, in milliseconds.
    let s = parse("heartbeat = 300\n", "x.toml").unwrap();
    assert_eq!(s.diode.heartbeat, Duration::from_millis(300));
}

#[test]
fn one_setting_in_two_spellings_is_refused() {
    for (text, names) in [
        (
            "block_size = 1000\nblock = 1000\n",
            "`block` and `block_size`",
        ),
        (
            "max_sessions = 3\nmax_clients = 3\n",
            "`max_clients` and `max_sessions`",
        ),
        (
            "mtu = 1500\n[common]\nmtu = 1500\n",
            "`[common] mtu` and `mtu`",
        ),
        (
            "ports = [1]\n[common]\nports = [1]\n",
            "`[common] ports` and `ports`",
        ),
        (
            "[receiver]\nblock_expiration_timeout = 9\n[receive]\nreset_timeout = 2\n",
            "`[receive] reset_timeout` and `[receiver] block_expiration_timeout`",
        ),
        (
            "udp_addr = \"1.2.3.4\"\n[send]\nto = \"1.2.3.4\"\n",
            "`[send] to` and `udp_addr`",
        ),
        (
            "[sender]\nbind_tcp = \"1.2.3.4:1\"\n[send]\nfrom = [ \"tcp:1.2.3.4:1\" ]\n",
            "`[send] from` and `[sender] bind_tcp`",
        ),
    ] {
        let err = parse(text, "x.toml").unwrap_err().to_string();
        assert!(err.contains(names), "{text}: {err}");
    }
}

#[test]
fn bad_values_are_refused_with_their_line() {
    for (text, key, line) in [
        ("ports = [ 5000 ]\nrepair = 100\n", "`repair`", "line 2"),
        ("max_clients = 0\n", "`max_clients`", "line 1"),
        (
            "mtu = 1500\nblock = 100\nrepair = 1\n",
            "`repair`",
            "line 3",
        ),
        ("[send]\nlog = \"LOUD\"\n", "`[send] log`", "line 2"),
        ("[send]\nmode = \"fast\"\n", "`[send] mode`", "line 2"),
        ("[send]\nto = \"1.2.3.4:5\"\n", "`[send] to`", "line 2"),
        (
            "[send]\nfrom = [ \"ftp:1.2.3.4:5\" ]\n",
            "`[send] from`",
            "line 2",
        ),
        (
            "[send]\nfrom = [ \"tcp[zip=true]:1.2.3.4:5\" ]\n",
            "`[send] from`",
            "line 2",
        ),
        (
            "[receive]\n\nreset_timeout = 0\n",
            "`[receive] reset_timeout`",
            "line 3",
        ),
        (
            "[[receive.to]]\nssh = \"x\"\n",
            "`[receive.to] ssh`",
            "line 2",
        ),
        ("ports = [ 5000 ]\n[send]\ncolour = 1\n", "colour", "line 3"),
        ("[send.tls]\nkey = 1\n", "key", "line 2"),
    ] {
        let err = parse(text, "x.toml").unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
        assert!(err.contains(line), "{text}: {err}");
    }
}

#[test]
fn repair_converts_to_at_least_as_many_repair_datagrams() {
    // The newest default: mtu 1500, block 220000, 1 %: 150 source
    // datagrams of 1464 bytes, 2 + ⌈152 ÷ 99⌉ = 4 repair: 3 %.
    let (p, how) = repair_percentage(1, false, 1500, 220_000).unwrap();
    assert_eq!(p, 3, "{how}");
    assert_eq!(repair_percentage(0, false, 1500, 220_000).unwrap().0, 2);
    assert_eq!(repair_percentage(10, false, 1500, 220_000).unwrap().0, 13);
    // A count: at least Lidi's 2.
    assert_eq!(repair_percentage(0, true, 1500, 150 * 1464).unwrap().0, 2);
    assert_eq!(repair_percentage(30, true, 1500, 150 * 1464).unwrap().0, 20);
    assert!(repair_percentage(99, false, 1500, 1464).is_err());
    assert!(repair_percentage(1, false, 1500, 1000).is_err());
}

#[test]
fn endpoints_are_parsed_as_lidi_writes_them() {
    let e = endpoint("tcp[flush=true,hash=false]:127.0.0.1:4000").unwrap();
    assert_eq!(
        (e.kind.as_str(), e.target.as_str()),
        ("tcp", "127.0.0.1:4000")
    );
    assert_eq!(e.to_string(), "tcp[flush=true,hash=false]:127.0.0.1:4000");
    assert_eq!(endpoint("unix:/tmp/s").unwrap().target, "/tmp/s");
    assert!(endpoint("127.0.0.1:4000").is_err());
    assert!(endpoint("tcp[flush=yes]:1.2.3.4:5").is_err());
    assert_eq!(level("Warn"), Ok("warn".into()));
    assert!(level("verbose").is_err());
}
