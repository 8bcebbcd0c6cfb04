//! Each Lidi line's configuration file, run unchanged through the tools.

use super::*;

/// ANSSI's sample (doc/configuration_file.rst), every key, with this
/// test's addresses and a quicker heartbeat.
pub(crate) fn anssi_config(udp: u16, send_tcp: SocketAddr, recv_tcp: SocketAddr) -> String {
    let (send_metrics, recv_metrics) = (free_tcp(), free_tcp());
    format!(
        r#"# Size of RaptorQ block, in bytes
encoding_block_size = 60000

# Size of repair data, in bytes
repair_block_size = 6000

udp_addr = "127.0.0.1"
udp_port = [ {udp} ]
udp_mtu = 1500
heartbeat = 300
log_config = "./lidi_log4rs.yml"

[sender]
bind_tcp = "{send_tcp}"
bind_udp = "127.0.0.1:0"
# In Mbit/s.
max_bandwidth = 100
metrics = "{send_metrics}"

[receiver]
to_tcp = "{recv_tcp}"
block_expiration_timeout = 500
session_expiration_timeout = 5000
metrics = "{recv_metrics}"
core_affinity = [ 1 ]
udp_packets_queue_size = 10000
tcp_blocks_queue_size = 1000
"#
    )
}

/// The CrabeDeFrance fork's sample: several ports, `max_bandwidth` in
/// bit/s, no `bind_udp`.
fn fork_config(udp: [u16; 3], send_tcp: SocketAddr, recv_tcp: SocketAddr) -> String {
    let [a, b, c] = udp;
    let metrics = free_tcp();
    format!(
        r#"encoding_block_size = 60000
repair_block_size = 6000
udp_addr = "127.0.0.1"
udp_port = [ {a}, {b}, {c} ]
udp_mtu = 1500
heartbeat = 300

[sender]
bind_tcp = "{send_tcp}"
# ratelimit TCP session speed (in bit/s)
max_bandwidth = 100000000

[receiver]
to_tcp = "{recv_tcp}"
core_affinity = [ 1 ]
metrics = "{metrics}"
"#
    )
}

#[test]
fn an_anssi_lidi_configuration_runs_unchanged_with_its_unused_keys_warned_about() {
    let (send_tcp, recv_tcp) = (free_tcp(), free_tcp());
    let text = anssi_config(free_udp(), send_tcp, recv_tcp);
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &text).unwrap();

    let settings = config::parse(&text, "config.toml").unwrap();
    let warned: Vec<&str> = settings.warnings().map(|k| k.key.as_str()).collect();
    assert_eq!(
        warned,
        [
            "log_config",
            "[receiver] core_affinity",
            "[receiver] udp_packets_queue_size",
            "[receiver] tcp_blocks_queue_size",
        ]
    );
    assert_eq!(settings.diode.block_size, 60_000);
    assert_eq!(settings.diode.repair_percentage, 10);
    assert_eq!(settings.diode.bandwidth, 100_000_000);

    let report = ferry(&["ferry", "config", "check", path.to_str().unwrap()]);
    for line in [
        "line 2: encoding_block_size → block_size = 60000 bytes",
        "repair_block_size → repair_percentage = 10 %",
        "udp_mtu → mtu = 1500 bytes",
        &format!("[sender] bind_tcp → diode-send --listen {send_tcp}"),
        &format!("[receiver] to_tcp → diode-receive --to {recv_tcp}"),
        "log_config: ignored (warning): Ferry logs through `tracing`",
        "[receiver] core_affinity: ignored (warning): Ferry does not pin its threads",
        "[receiver] udp_packets_queue_size: ignored (warning)",
    ] {
        assert!(report.contains(line), "{line:?} not in:\n{report}");
    }

    let chain = LidiChain::start(&path, recv_tcp);
    assert_eq!(chain.send.tcp_addr(), send_tcp);
    let source = make_files(&[("a.txt", b"one"), ("b.bin", &[7u8; 300_000])]);
    let files = vec![source.path().join("a.txt"), source.path().join("b.bin")];
    send_files(send_tcp, &files).unwrap();
    chain.wait_for_files(2);
    assert_eq!(
        std::fs::read(chain.out.path().join("a.txt")).unwrap(),
        b"one"
    );
    assert_eq!(
        std::fs::read(chain.out.path().join("b.bin")).unwrap(),
        vec![7u8; 300_000]
    );
    // The file's `metrics` keys serve Prometheus on each side.
    assert_eq!(chain.send.metrics_addr(), settings.addresses.send_metrics);
    assert_eq!(
        chain.receive.metrics_addr(),
        settings.addresses.receive_metrics
    );
    let sent = scrape(chain.send.metrics_addr().unwrap());
    assert_eq!(
        sample(&sent, "ferry_diode_send_sessions_sent_total"),
        Some(1.0),
        "{sent}"
    );
    let received = scrape(chain.receive.metrics_addr().unwrap());
    assert_eq!(
        sample(&received, "ferry_diode_receive_sessions_finished_total"),
        Some(1.0),
        "{received}"
    );
    chain.stop();
}

#[test]
fn a_fork_lidi_configuration_runs_unchanged_on_all_its_ports() {
    let (send_tcp, recv_tcp) = (free_tcp(), free_tcp());
    let ports = [free_udp(), free_udp(), free_udp()];
    let text = fork_config(ports, send_tcp, recv_tcp);
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("lidi.toml");
    std::fs::write(&path, &text).unwrap();

    let settings = config::parse(&text, "lidi.toml").unwrap();
    assert_eq!(
        settings.addresses.udp_for_driver(),
        Some(SocketAddr::from(([127, 0, 0, 1], ports[0])))
    );
    assert_eq!(settings.sender.ports, ports);
    assert_eq!(settings.receiver.ports, ports);
    assert_eq!(settings.diode.bandwidth, 100_000_000);
    let report = ferry(&["ferry", "config", "check", path.to_str().unwrap()]);
    for line in [
        &format!("ports {}, {}, {}: one socket", ports[0], ports[1], ports[2]),
        "max_bandwidth → bandwidth = 100 Mbit/s (read as bit/s",
        "[receiver] metrics → diode-receive --metrics 127.0.0.1:",
    ] {
        assert!(report.contains(line), "{line:?} not in:\n{report}");
    }

    let chain = LidiChain::start(&path, recv_tcp);
    let source = make_files(&[("report.csv", b"x,y\n1,2\n")]);
    let file = source.path().join("report.csv");
    // diode-send-file with Lidi's flags.
    let sent = ferry(&[
        "ferry",
        "diode-send-file",
        "--to-tcp",
        &send_tcp.to_string(),
        "--buffer-size",
        "8196",
        "--hash",
        file.to_str().unwrap(),
    ]);
    assert!(sent.contains("sent 1 file"), "{sent}");
    chain.wait_for_files(1);
    assert_eq!(
        std::fs::read(chain.out.path().join("report.csv")).unwrap(),
        b"x,y\n1,2\n"
    );
    chain.stop();
}

/// ANSSI's Lidi 2 sample (`config_examples/tcp.config.toml` as first
/// written: `[common]`, `[[send.from]]`, `repair` a count), with this
/// test's ports and addresses, Prometheus endpoints, and a quicker
/// heartbeat (Lidi 2's is in seconds).
pub(crate) fn lidi2_config(ports: &[u16], send_tcp: SocketAddr, recv_tcp: SocketAddr) -> String {
    let ports: Vec<String> = ports.iter().map(u16::to_string).collect();
    let ports = ports.join(", ");
    let (send_metrics, recv_metrics) = (free_tcp(), free_tcp());
    format!(
        r#"[common]
mtu = 9000
ports = [{ports}]
block = 300_000
repair = 3
max_clients = 2
hash = false
flush = false
heartbeat = 1

[send]
log = "INFO"
to = "127.0.0.1"
to_bind = "0.0.0.0:0"
mode = "mmsg"
prometheus_listen = "{send_metrics}"

[[send.from]]
tcp = "{send_tcp}"

[receive]
log = "INFO"
from = "127.0.0.1"
mode = "mmsg"
queue_size = 4096
reset_timeout = 2
abort_timeout = 60
prometheus_listen = "{recv_metrics}"

[[receive.to]]
tcp = "{recv_tcp}"
"#
    )
}

#[test]
fn an_anssi_lidi_2_configuration_runs_unchanged() {
    let (send_tcp, recv_tcp) = (free_tcp(), free_tcp());
    let ports = [free_udp(), free_udp(), free_udp(), free_udp()];
    let text = lidi2_config(&ports, send_tcp, recv_tcp);
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("tcp.config.toml");
    std::fs::write(&path, &text).unwrap();

    let settings = config::parse(&text, "tcp.config.toml").unwrap();
    assert_eq!(settings.diode.mtu, 9000);
    assert_eq!(settings.diode.block_size, 300_000);
    assert_eq!(settings.diode.repair_percentage, 10);
    assert_eq!(settings.diode.heartbeat, Duration::from_secs(1));
    assert_eq!(settings.diode.max_sessions, 2);
    assert_eq!(settings.sender.ports, ports);
    assert_eq!(settings.receiver.ports, ports);
    assert!(settings.addresses.send_metrics.is_some());
    assert!(settings.addresses.receive_metrics.is_some());
    assert_eq!(settings.log.send_level.as_deref(), Some("info"));
    let warned: Vec<&str> = settings.warnings().map(|k| k.key.as_str()).collect();
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

    let report = ferry(&["ferry", "config", "check", path.to_str().unwrap()]);
    let first = SocketAddr::from(([127, 0, 0, 1], ports[0]));
    for line in [
        "line 2: [common] mtu → mtu = 9000 bytes",
        &format!("line 3: [common] ports → ports {}, ", ports[0]),
        "line 4: [common] block → block_size = 300000 bytes",
        "line 5: [common] repair → repair_percentage = 10 % (Lidi's 3 repair datagrams per block",
        "line 6: [common] max_clients → max_sessions = 2",
        "line 7: [common] hash: ignored (warning): turns off Lidi's hash",
        "line 8: [common] flush: ignored (warning): Ferry always flushes",
        "line 9: [common] heartbeat → heartbeat = 1 s",
        "line 12: [send] log → diode-send's log level info",
        &format!("line 13: [send] to → diode-send --to {first}"),
        "line 14: [send] to_bind → diode-send --bind 0.0.0.0:0",
        "line 15: [send] mode: ignored (warning): Ferry always uses sendmmsg",
        "line 16: [send] prometheus_listen → diode-send --metrics 127.0.0.1:",
        &format!("line 19: [send.from] tcp → diode-send --listen {send_tcp}"),
        &format!("line 23: [receive] from → diode-receive --listen {first}"),
        "line 25: [receive] queue_size: ignored (warning)",
        "line 26: [receive] reset_timeout → [receiver] block_expiration_timeout = 2000 ms",
        "line 27: [receive] abort_timeout → [receiver] session_expiration_timeout = 60000 ms",
        "line 28: [receive] prometheus_listen → diode-receive --metrics 127.0.0.1:",
        &format!("line 31: [receive.to] tcp → diode-receive --to {recv_tcp}"),
    ] {
        assert!(report.contains(line), "{line:?} not in:\n{report}");
    }

    let chain = LidiChain::start(&path, recv_tcp);
    assert_eq!(chain.send.tcp_addr(), send_tcp);
    let source = make_files(&[("a.txt", b"one"), ("b.bin", &[7u8; 700_000])]);
    let files = vec![source.path().join("a.txt"), source.path().join("b.bin")];
    send_files(send_tcp, &files).unwrap();
    chain.wait_for_files(2);
    assert_eq!(
        std::fs::read(chain.out.path().join("a.txt")).unwrap(),
        b"one"
    );
    assert_eq!(
        std::fs::read(chain.out.path().join("b.bin")).unwrap(),
        vec![7u8; 700_000]
    );
    chain.stop();
}
