//! A Lidi operator switching to Ferry: Lidi's configuration files (ANSSI's,
//! ANSSI's Lidi 2 layout and the CrabeDeFrance fork's) run unchanged, Lidi's
//! log settings set the log, Lidi's flag names and
//! program names work, files keep their mode and modification time, and
//! `diode-send-dir`'s `--ignore` and `--maximum-delay` do what they say.
//! Everything on loopback.

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Parser;
use ferry_cli::diode::config;
use ferry_cli::diode::dir::send_dir;
use ferry_cli::diode::file::{ReceiveFileServer, send_files};
use ferry_cli::diode::receive::DiodeReceiveServer;
use ferry_cli::diode::send::DiodeSendServer;
use ferry_cli::{Cli, Command, run};
use ferry_tests::{sample, scrape};
use tempfile::TempDir;

/// Generous bound on any wait: the tests assert outcomes, not timings.
const PATIENCE: Duration = Duration::from_secs(120);

/// A TCP port free a moment ago on 127.0.0.1.
fn free_tcp() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A UDP port free a moment ago on 127.0.0.1.
fn free_udp() -> u16 {
    UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Parses a `ferry` command line as `main` would.
fn parse(args: &[&str]) -> Command {
    Cli::try_parse_from(args)
        .unwrap_or_else(|e| panic!("{args:?}: {e}"))
        .command
}

/// Runs a `ferry` command in-process; returns its report.
fn ferry(args: &[&str]) -> String {
    let mut out = Vec::new();
    run(Cli::try_parse_from(args).unwrap(), &mut out).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    String::from_utf8(out).unwrap()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Writes `files` (name, content) into a new directory.
fn make_files(files: &[(&str, &[u8])]) -> TempDir {
    let dir = TempDir::new().unwrap();
    for (name, data) in files {
        std::fs::write(dir.path().join(name), data).unwrap();
    }
    dir
}

/// The receiving side started from a Lidi file (`diode-receive -c`), and
/// `diode-receive-file` at the file's `to_tcp`, with Lidi's flags.
struct LidiChain {
    files: ReceiveFileServer,
    receive: DiodeReceiveServer,
    send: DiodeSendServer,
    out: TempDir,
}

impl LidiChain {
    fn start(config: &Path, to_tcp: SocketAddr) -> LidiChain {
        let out = TempDir::new().unwrap();
        let dir = out.path().to_str().unwrap().to_owned();
        let to_tcp = to_tcp.to_string();
        let Command::DiodeReceiveFile(args) =
            parse(&["ferry", "diode-receive-file", "--bind-tcp", &to_tcp, &dir])
        else {
            unreachable!()
        };
        let files = ReceiveFileServer::start(&args).unwrap();
        let config = config.to_str().unwrap();
        let Command::DiodeReceive(args) = parse(&["ferry", "diode-receive", "-c", config]) else {
            unreachable!()
        };
        let receive = DiodeReceiveServer::start(&args).unwrap();
        let Command::DiodeSend(args) = parse(&["ferry", "diode-send", "-c", config]) else {
            unreachable!()
        };
        let send = DiodeSendServer::start(&args).unwrap();
        LidiChain {
            files,
            receive,
            send,
            out,
        }
    }

    fn wait_for_files(&self, n: u64) {
        wait_until("the files are saved", || self.files.stats().saved >= n);
    }

    fn stop(self) {
        self.send.stop();
        self.receive.stop();
        self.files.stop();
    }
}

/// ANSSI's sample (doc/configuration_file.rst), every key, with this
/// test's addresses and a quicker heartbeat.
fn anssi_config(udp: u16, send_tcp: SocketAddr, recv_tcp: SocketAddr) -> String {
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
fn lidi2_config(ports: &[u16], send_tcp: SocketAddr, recv_tcp: SocketAddr) -> String {
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

#[cfg(unix)]
#[test]
fn lidi_2s_log_level_and_lidis_log_file_flag_set_the_log() {
    let bin = Path::new(env!("CARGO_BIN_EXE_ferry-as-lidi"));
    let dir = TempDir::new().unwrap();
    let conf = dir.path().join("tcp.config.toml");
    std::fs::write(&conf, lidi2_config(&[free_udp()], free_tcp(), free_tcp())).unwrap();
    let conf = conf.to_str().unwrap();
    let log_file = dir.path().join("receive.log");
    let stderr = dir.path().join("stderr");
    // [receive] log = "INFO": the info line, and the warnings, go to --log-file.
    let receive = start(
        bin,
        &[
            "diode-receive",
            "-c",
            conf,
            "--log-file",
            log_file.to_str().unwrap(),
            "--log4rs-config",
            "lidi_log4rs.yml",
        ],
        &stderr,
    );
    wait_until("the log is written", || {
        std::fs::read_to_string(&log_file).is_ok_and(|l| l.contains("diode-receive started"))
    });
    drop(receive);
    let log = std::fs::read_to_string(&log_file).unwrap();
    for expected in [
        " INFO ",
        "diode-receive started",
        "--log4rs-config lidi_log4rs.yml: ignored",
        "[receive] queue_size",
    ] {
        assert!(log.contains(expected), "{expected:?} not in:\n{log}");
    }
    assert_eq!(std::fs::read_to_string(&stderr).unwrap(), "");
    // --log-level (Lidi 1's name for --log) wins over the file: errors only.
    let quiet_log = dir.path().join("quiet.log");
    let receive = start(
        bin,
        &[
            "diode-receive",
            "-c",
            conf,
            "--log-level",
            "ERROR",
            "--log-file",
            quiet_log.to_str().unwrap(),
        ],
        &stderr,
    );
    drop(receive);
    assert_eq!(std::fs::read_to_string(&quiet_log).unwrap(), "");
}

/// The in-process chain with Ferry's flags under Lidi's names.
struct Chain {
    files: ReceiveFileServer,
    receive: DiodeReceiveServer,
    send: DiodeSendServer,
    out: TempDir,
}

impl Chain {
    fn start() -> Chain {
        let out = TempDir::new().unwrap();
        let any = "127.0.0.1:0";
        let dir = out.path().to_str().unwrap().to_owned();
        let Command::DiodeReceiveFile(args) = parse(&[
            "ferry",
            "diode-receive-file",
            "--from-tcp",
            any,
            "--dir",
            &dir,
        ]) else {
            unreachable!()
        };
        let files = ReceiveFileServer::start(&args).unwrap();
        let to = files.tcp_addr().to_string();
        let Command::DiodeReceive(args) = parse(&[
            "ferry",
            "diode-receive",
            "--from",
            any,
            "--to-tcp",
            &to,
            "--heartbeat",
            "300",
        ]) else {
            unreachable!()
        };
        let receive = DiodeReceiveServer::start(&args).unwrap();
        let udp = receive.udp_addr().to_string();
        let Command::DiodeSend(args) = parse(&[
            "ferry",
            "diode-send",
            "--from-tcp",
            any,
            "--to-udp",
            &udp,
            "--bandwidth",
            "200",
            "--heartbeat",
            "300",
        ]) else {
            unreachable!()
        };
        let send = DiodeSendServer::start(&args).unwrap();
        Chain {
            files,
            receive,
            send,
            out,
        }
    }

    fn stop(self) {
        self.send.stop();
        self.receive.stop();
        self.files.stop();
    }
}

#[test]
fn lidi_flag_names_are_aliases_of_ferrys() {
    let Command::DiodeSendDir(args) = parse(&[
        "ferry",
        "diode-send-dir",
        "/spool",
        "--to-tcp",
        "127.0.0.1:5001",
        "--maximum-files",
        "7",
        "--maximum-delay",
        "2500",
        "--ignore",
        "*.tmp",
        "--ignore",
        r"^\..*$",
        "--hash",
        "--buffer-size",
        "8196",
        "-c",
        "/etc/lidi/config.toml",
    ]) else {
        unreachable!()
    };
    assert_eq!(args.to, "127.0.0.1:5001".parse().unwrap());
    assert_eq!(args.files_per_session, 7);
    assert_eq!(args.maximum_delay, Some(2500));
    assert_eq!(args.ignore.len(), 2);
    assert!(args.ignore[0].matches("x.tmp"));
    assert!(args.ignore[1].matches(".hidden"), "Lidi's default regex");
    assert!(args.options.hash);
    assert_eq!(args.options.buffer_size, 8196);
    assert_eq!(
        args.config.config.as_deref(),
        Some(Path::new("/etc/lidi/config.toml"))
    );

    let Command::DiodeSend(args) = parse(&[
        "ferry",
        "diode-send",
        "--bind-tcp",
        "127.0.0.1:5001",
        "--to-udp",
        "10.0.0.2:5000",
        "--bind-udp",
        "10.0.0.1:0",
    ]) else {
        unreachable!()
    };
    assert_eq!(args.listen, Some("127.0.0.1:5001".parse().unwrap()));
    assert_eq!(args.to, Some("10.0.0.2:5000".parse().unwrap()));
    assert_eq!(args.bind, Some("10.0.0.1:0".parse().unwrap()));

    let Command::DiodeReceive(args) = parse(&[
        "ferry",
        "diode-receive",
        "--from-udp",
        "10.0.0.2:5000",
        "--to-tcp",
        "127.0.0.1:5002",
    ]) else {
        unreachable!()
    };
    assert_eq!(args.listen, Some("10.0.0.2:5000".parse().unwrap()));
    assert_eq!(args.to, Some("127.0.0.1:5002".parse().unwrap()));

    let Command::DiodeReceiveFile(args) = parse(&[
        "ferry",
        "diode-receive-file",
        "--from-tcp",
        "127.0.0.1:7000",
        "--hash",
        "/srv/in",
    ]) else {
        unreachable!()
    };
    assert_eq!(args.listen, "127.0.0.1:7000".parse().unwrap());
    assert_eq!(args.output_dir().unwrap(), PathBuf::from("/srv/in"));

    // A regular expression other than Lidi's default is refused with advice.
    let err = Cli::try_parse_from([
        "ferry",
        "diode-send-dir",
        "/spool",
        "--to",
        "127.0.0.1:1",
        "--ignore",
        r"^.*\.tmp$",
    ])
    .unwrap_err()
    .to_string();
    assert!(err.contains("takes a glob"), "{err}");
}

#[cfg(unix)]
#[test]
fn files_arrive_with_their_mode_and_modification_time() {
    use std::os::unix::fs::PermissionsExt;
    use std::time::UNIX_EPOCH;

    let chain = Chain::start();
    let source = make_files(&[("script.sh", b"#!/bin/sh\n"), ("secret", b"s")]);
    let when = UNIX_EPOCH + Duration::new(1_000_000_000, 500_000_000);
    for (name, mode) in [("script.sh", 0o750), ("secret", 0o4600)] {
        let path = source.path().join(name);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(when).unwrap();
    }
    send_files(
        chain.send.tcp_addr(),
        &[
            source.path().join("script.sh"),
            source.path().join("secret"),
        ],
    )
    .unwrap();
    wait_until("both files are saved", || chain.files.stats().saved == 2);
    for (name, mode) in [("script.sh", 0o750), ("secret", 0o600)] {
        let meta = std::fs::metadata(chain.out.path().join(name)).unwrap();
        assert_eq!(
            meta.permissions().mode() & 0o7777,
            mode,
            "{name}: setuid is dropped"
        );
        assert_eq!(meta.modified().unwrap(), when, "{name}");
    }
    chain.stop();
}

#[test]
fn send_dir_skips_the_names_ignore_matches() {
    let chain = Chain::start();
    let source = make_files(&[
        ("keep.txt", b"k"),
        ("skip.tmp", b"t"),
        ("upload.part", b"p"),
        (".hidden", b"h"),
    ]);
    let Command::DiodeSendDir(args) = parse(&[
        "ferry",
        "diode-send-dir",
        source.path().to_str().unwrap(),
        "--to-tcp",
        &chain.send.tcp_addr().to_string(),
        "--ignore",
        "*.tmp",
        "--ignore",
        "*.pa[rt]t",
        "--once",
    ]) else {
        unreachable!()
    };
    let report = send_dir(&args, &AtomicBool::new(false)).unwrap();
    assert_eq!((report.files, report.sessions), (1, 1));
    wait_until("the file is saved", || chain.files.stats().saved == 1);
    let names: Vec<String> = std::fs::read_dir(chain.out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["keep.txt"]);
    chain.stop();
}

#[test]
fn maximum_delay_keeps_one_session_open_for_files_that_land_meanwhile() {
    let chain = Chain::start();
    let source = TempDir::new().unwrap();
    let Command::DiodeSendDir(args) = parse(&[
        "ferry",
        "diode-send-dir",
        source.path().to_str().unwrap(),
        "--to-tcp",
        &chain.send.tcp_addr().to_string(),
        "--maximum-delay",
        "3000",
        "--interval-ms",
        "50",
    ]) else {
        unreachable!()
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let watcher = std::thread::spawn(move || send_dir(&args, &flag).unwrap());

    std::fs::write(source.path().join("first"), b"1").unwrap();
    let started = Instant::now();
    std::thread::sleep(Duration::from_millis(600));
    std::fs::write(source.path().join("second"), b"2").unwrap();
    // Each file crosses as soon as it is taken, in the one open session…
    wait_until("both files are saved", || chain.files.stats().saved == 2);
    // …which is cut once it has been open for the delay, while the watcher
    // goes on.
    wait_until("the session ends", || chain.files.stats().ended == 1);
    assert!(started.elapsed() >= Duration::from_millis(2500));
    assert!(!watcher.is_finished());
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = watcher.join().unwrap();
    assert_eq!((report.files, report.sessions), (2, 1), "{report:?}");
    assert_eq!(chain.files.stats().connections, 1);
    chain.stop();
}

/// A child process, killed if the test ends before it does.
struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program` with `args`, its stderr into `stderr`; returns it once
/// it printed its first line (the servers print their addresses once
/// listening).
fn start(program: &Path, args: &[&str], stderr: &Path) -> Child {
    let mut child = Child(
        Process::new(program)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(stderr).unwrap())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(!line.is_empty(), "{} exited early", program.display());
    child
}

#[cfg(unix)]
#[test]
fn the_ferry_binary_answers_to_lidis_program_names_through_links() {
    let bin = env!("CARGO_BIN_EXE_ferry-as-lidi");
    let links = TempDir::new().unwrap();
    for name in ferry_cli::lidi_link::PROGRAMS {
        std::os::unix::fs::symlink(bin, links.path().join(name)).unwrap();
        let help = Process::new(links.path().join(name))
            .arg("--help")
            .output()
            .unwrap();
        assert!(help.status.success(), "{name}");
        let text = String::from_utf8(help.stdout).unwrap();
        assert!(
            text.contains(&format!("Usage: ferry {name}")),
            "{name}: {text}"
        );
    }
    let link = |name: &str| links.path().join(name);

    // A transfer with nothing but Lidi's names, flags and configuration.
    let (send_tcp, recv_tcp) = (free_tcp(), free_tcp());
    let conf = links.path().join("config.toml");
    std::fs::write(&conf, anssi_config(free_udp(), send_tcp, recv_tcp)).unwrap();
    let conf = conf.to_str().unwrap();
    let out = TempDir::new().unwrap();
    let log = |name: &str| links.path().join(format!("{name}.log"));
    let _files = start(
        &link("diode-receive-file"),
        &[
            "--bind-tcp",
            &recv_tcp.to_string(),
            out.path().to_str().unwrap(),
        ],
        &log("diode-receive-file"),
    );
    let _receive = start(&link("diode-receive"), &["-c", conf], &log("diode-receive"));
    let send = start(&link("diode-send"), &["-c", conf], &log("diode-send"));
    let source = make_files(&[("hello.txt", b"hello, diode")]);
    let status = Process::new(link("diode-send-file"))
        .args(["--to-tcp", &send_tcp.to_string()])
        .arg(source.path().join("hello.txt"))
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    wait_until("the file arrives", || {
        std::fs::read(out.path().join("hello.txt")).is_ok_and(|d| d == b"hello, diode")
    });
    // diode-send warned about the keys it ignores, naming each and its line.
    drop(send);
    let warnings = std::fs::read_to_string(log("diode-send")).unwrap();
    for expected in [
        "Ferry logs through `tracing`",
        "log_config",
        "Ferry does not pin its threads",
        "core_affinity",
        "line",
    ] {
        assert!(
            warnings.contains(expected),
            "{expected:?} not in:\n{warnings}"
        );
    }
}
