//! The settings file: Ferry's keys, Lidi's, and the flags.
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
         bandwidth = 2.5\nmax_burst = 100000\nmax_blocks_in_flight = 4\ninterleave_depth = 2\nmax_sessions = 3\n\
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
    assert_eq!(s.diode.interleave_depth, 2);
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

/// ANSSI's sample file (doc/configuration_file.rst), keys and layout.
const ANSSI: &str = "encoding_block_size = 60000\nrepair_block_size = 6000\n\
    udp_addr = \"127.0.0.1\"\nudp_port = [ 5000 ]\nudp_mtu = 1500\nheartbeat = 1000\n\
    log_config = \"./lidi_log4rs.yml\"\n[sender]\nbind_tcp = \"127.0.0.1:5001\"\n\
    bind_udp = \"127.0.0.1:0\"\nmax_bandwidth = 100\nmetrics = \"0.0.0.0:9001\"\n\
    [receiver]\nto_tcp = \"127.0.0.1:5002\"\nblock_expiration_timeout = 500\n\
    session_expiration_timeout = 5000\nmetrics = \"0.0.0.0:9002\"\ncore_affinity = [ 1 ]\n\
    udp_packets_queue_size = 10000\ntcp_blocks_queue_size = 1000\n";

#[test]
fn a_lidi_file_is_read_unchanged() {
    let s = parse(ANSSI, "lidi.toml").unwrap();
    assert_eq!(s.diode.block_size, 60_000);
    assert_eq!(s.diode.repair_percentage, 10);
    assert_eq!(s.diode.mtu, 1500);
    assert_eq!(s.diode.bandwidth, 100_000_000);
    assert_eq!(
        s.diode.block_expiration_timeout,
        Some(Duration::from_millis(500))
    );
    assert_eq!(
        s.addresses.udp_for_driver(),
        Some("127.0.0.1:5000".parse().unwrap())
    );
    assert_eq!(
        s.addresses.bind_tcp,
        Some("127.0.0.1:5001".parse().unwrap())
    );
    assert_eq!(s.addresses.bind_udp, Some("127.0.0.1:0".parse().unwrap()));
    assert_eq!(s.addresses.to_tcp, Some("127.0.0.1:5002".parse().unwrap()));
    assert_eq!(
        s.addresses.send_metrics,
        Some("0.0.0.0:9001".parse().unwrap())
    );
    assert_eq!(
        s.addresses.receive_metrics,
        Some("0.0.0.0:9002".parse().unwrap())
    );
    let ignored: Vec<&str> = s.warnings().map(|k| k.key.as_str()).collect();
    assert_eq!(
        ignored,
        [
            "log_config",
            "[receiver] core_affinity",
            "[receiver] udp_packets_queue_size",
            "[receiver] tcp_blocks_queue_size",
        ]
    );
    let udp_mtu = s.keys.iter().find(|k| k.key == "udp_mtu").unwrap();
    assert_eq!(udp_mtu.line, Some(5));
    assert_eq!(udp_mtu.to_string(), "line 5: udp_mtu → mtu = 1500 bytes");
}

#[test]
fn a_list_of_udp_ports_spreads_both_sides_over_them() {
    let s = parse(
        "udp_addr = \"10.0.0.2\"\nudp_port = [ 5000, 5001, 5002 ]\n",
        "lidi.toml",
    )
    .unwrap();
    assert_eq!(s.addresses.udp.len(), 3);
    assert_eq!(
        s.addresses.udp_for_driver(),
        Some("10.0.0.2:5000".parse().unwrap())
    );
    assert_eq!(s.sender.ports, [5000, 5001, 5002]);
    assert_eq!(s.receiver.ports, [5000, 5001, 5002]);
    assert_eq!(s.warnings().count(), 0);
    let key = s.keys.iter().find(|k| k.key == "udp_port").unwrap();
    assert!(key.to_string().contains("ports 5000, 5001, 5002"), "{key}");
}

#[test]
fn lidi_errors_name_the_key_and_line() {
    for (text, key, line) in [
        (
            "heartbeat = 1\nudp_port = [ 5000 ]\n",
            "`udp_port`",
            "line 2",
        ),
        ("udp_addr = \"1.2.3.4:5\"\n", "`udp_addr`", "line 1"),
        (
            "udp_addr = \"1.2.3.4\"\nudp_port = [ 0 ]\n",
            "`udp_port`",
            "line 2",
        ),
        (
            "[sender]\nmax_bandwidth = -3\n",
            "`[sender] max_bandwidth`",
            "line 2",
        ),
        (
            "encoding_block_size = 6\nrepair_block_size = 600\n",
            "`repair_block_size`",
            "line 2",
        ),
        ("mtu = 1500\nudp_mtu = 1500\n", "`udp_mtu`", "line 2"),
        (
            "[receiver]\ncore_affinity = \"one\"\n",
            "core_affinity",
            "line 2",
        ),
    ] {
        let err = parse(text, "lidi.toml").unwrap_err().to_string();
        assert!(err.contains(key), "{text}: {err}");
        assert!(err.contains(line), "{text}: {err}");
    }
    // Lidi 2's layout is read, not refused (see lidi2's tests).
    assert_eq!(
        parse("[common]\nmtu = 9000\n", "x.toml").unwrap().diode.mtu,
        9000
    );
}

#[test]
fn lidi_bandwidth_in_bit_per_second_is_understood() {
    let s = parse("[sender]\nmax_bandwidth = 100000000\n", "fork.toml").unwrap();
    assert_eq!(s.diode.bandwidth, 100_000_000);
}
