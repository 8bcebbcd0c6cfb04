//! The diode tools end to end, in one process on loopback:
//! `diode-send-file`/`diode-send-dir` → `diode-send` → (lossy relay) →
//! `diode-receive` → `diode-receive-file`, every file's digest checked.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use clap::Parser;
use ferry_cli::diode::config::{ConfigFile, DiodeOptions};
use ferry_cli::diode::dir::{AfterSend, DiodeSendDirArgs, send_dir};
use ferry_cli::diode::file::{
    DiodeReceiveFileArgs, FileHeader, FileOptions, ReceiveFileServer, ReceiveFileStats, send_files,
};
use ferry_cli::diode::receive::{DiodeReceiveArgs, DiodeReceiveServer};
use ferry_cli::diode::send::{DiodeSendArgs, DiodeSendServer};
use ferry_cli::metrics::MetricsArgs;
use ferry_cli::{Cli, run};
use ferry_relay::{LinkConfig, Relay};
use ferry_tests::{sample, scrape};
use tempfile::TempDir;

/// Generous bound on any wait: the tests assert outcomes, not timings.
const PATIENCE: Duration = Duration::from_secs(120);

fn any_port() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Pseudo-random bytes (splitmix64), reproducible by seed.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Diode settings for the tests: quick heartbeats (a lost head block is
/// given up after 300 ms), the given pace, MTU and repair.
fn options(mbit: f64, mtu: usize, repair: u32) -> DiodeOptions {
    DiodeOptions {
        mtu: Some(mtu),
        bandwidth: Some(mbit),
        repair_percentage: Some(repair),
        heartbeat: Some(300),
        threads: Some(2),
        ..DiodeOptions::default()
    }
}

/// The whole receiving side and the diode sender, with an optional relay
/// between them.
struct Chain {
    send: DiodeSendServer,
    relay: Option<Relay>,
    receive: DiodeReceiveServer,
    files: ReceiveFileServer,
    out: TempDir,
}

/// Logs to the test's output when `FERRY_LOG` is set (e.g.
/// `FERRY_LOG=debug cargo test -p ferry-tests --test diode -- --nocapture`).
fn init_log() {
    if let Ok(filter) = std::env::var("FERRY_LOG") {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
            .with_test_writer()
            .try_init();
    }
}

impl Chain {
    fn start(diode: DiodeOptions, relay: Option<LinkConfig>) -> Chain {
        init_log();
        let out = TempDir::new().unwrap();
        let files = ReceiveFileServer::start(&DiodeReceiveFileArgs {
            listen: any_port(),
            dir: Some(out.path().join("received")),
            output: None,
            options: FileOptions::default(),
            config: ConfigFile::default(),
            metrics: MetricsArgs {
                metrics: Some(any_port()),
            },
            grace: Default::default(),
        })
        .unwrap();
        let receive = DiodeReceiveServer::start(&DiodeReceiveArgs {
            listen: Some(any_port()),
            to: Some(files.tcp_addr()),
            diode: diode.clone(),
            metrics: MetricsArgs {
                metrics: Some(any_port()),
            },
            log: Default::default(),
            grace: Default::default(),
        })
        .unwrap();
        let relay = relay.map(|link| {
            Relay::start(
                any_port(),
                receive.udp_addr(),
                link,
                LinkConfig::default(),
                11,
            )
            .unwrap()
        });
        let send = DiodeSendServer::start(&DiodeSendArgs {
            listen: Some(any_port()),
            to: Some(
                relay
                    .as_ref()
                    .map_or(receive.udp_addr(), |r| r.local_addr()),
            ),
            bind: None,
            diode,
            metrics: MetricsArgs {
                metrics: Some(any_port()),
            },
            log: Default::default(),
            grace: Default::default(),
        })
        .unwrap();
        Chain {
            send,
            relay,
            receive,
            files,
            out,
        }
    }

    fn dir(&self) -> PathBuf {
        self.out.path().join("received")
    }

    /// Waits until `connections` sessions reached diode-receive-file and
    /// each was dealt with.
    fn wait_for_sessions(&self, connections: u64) -> ReceiveFileStats {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let stats = self.files.stats();
            if stats.connections >= connections && stats.ended >= connections {
                return stats;
            }
            assert!(
                Instant::now() < deadline,
                "sessions did not arrive: {stats:?}, {:?}",
                self.receive.stats()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(self) {
        self.send.stop();
        drop(self.relay);
        self.receive.stop();
        self.files.stop();
    }
}

/// Writes files into a new directory; returns it and each file's content.
fn make_files(specs: &[(&str, usize)]) -> (TempDir, BTreeMap<String, Vec<u8>>) {
    let dir = TempDir::new().unwrap();
    let mut contents = BTreeMap::new();
    for (i, (name, len)) in specs.iter().enumerate() {
        let data = random_bytes(i as u64 + 100, *len);
        std::fs::write(dir.path().join(name), &data).unwrap();
        contents.insert((*name).to_owned(), data);
    }
    (dir, contents)
}

/// What is in a directory: final names and their contents; panics on a
/// leftover temporary file.
fn read_dir(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut found = BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        assert!(
            !name.contains(".ferry-part-"),
            "temporary file left behind: {name}"
        );
        found.insert(name, std::fs::read(entry.path()).unwrap());
    }
    found
}

fn assert_same(found: &BTreeMap<String, Vec<u8>>, expected: &BTreeMap<String, Vec<u8>>) {
    let names: Vec<_> = found.keys().collect();
    let wanted: Vec<_> = expected.keys().collect();
    assert_eq!(names, wanted);
    for (name, data) in expected {
        assert_eq!(found[name].len(), data.len(), "{name}: length");
        assert!(
            blake3::hash(&found[name]) == blake3::hash(data),
            "{name}: digest differs"
        );
    }
}

fn paths(dir: &TempDir, contents: &BTreeMap<String, Vec<u8>>) -> Vec<PathBuf> {
    contents.keys().map(|n| dir.path().join(n)).collect()
}

#[test]
fn a_directory_crosses_intact() {
    let chain = Chain::start(options(600.0, 9000, 10), None);
    let (source, expected) = make_files(&[
        ("empty", 0),
        ("big.bin", 20_000_000),
        ("a.txt", 1),
        ("données.csv", 70_000),
        ("b.dat", 600_000),
    ]);
    let report = send_dir(
        &DiodeSendDirArgs {
            dir: source.path().to_owned(),
            to: chain.send.tcp_addr(),
            files_per_session: 2,
            maximum_delay: None,
            ignore: Vec::new(),
            options: FileOptions::default(),
            after_send: AfterSend::Delete,
            once: true,
            interval_ms: 1000,
            config: ConfigFile::default(),
            grace: Default::default(),
            metrics: MetricsArgs::default(),
        },
        &AtomicBool::new(false),
    )
    .unwrap();
    assert_eq!(report.files, 5);
    assert_eq!(report.sessions, 3);
    // Sent files are deleted.
    assert_eq!(std::fs::read_dir(source.path()).unwrap().count(), 0);

    let stats = chain.wait_for_sessions(3);
    assert_eq!((stats.saved, stats.discarded, stats.refused), (5, 0, 0));
    assert_same(&read_dir(&chain.dir()), &expected);

    // The same names again: nothing is overwritten, numbered copies appear.
    let (again, _) = make_files(&[("a.txt", 1), ("empty", 0)]);
    let files = vec![again.path().join("a.txt"), again.path().join("empty")];
    send_files(chain.send.tcp_addr(), &files).unwrap();
    let stats = chain.wait_for_sessions(4);
    assert_eq!(stats.saved, 7);
    let found = read_dir(&chain.dir());
    assert!(found.contains_key("a.1.txt"), "{:?}", found.keys());
    assert!(found.contains_key("empty.1"), "{:?}", found.keys());
    assert_eq!(found["a.txt"], expected["a.txt"]);
    chain.stop();
}

/// Runs `diode-send-dir` on `dir` in a thread until the returned flag is set.
fn watch(
    dir: &Path,
    to: SocketAddr,
    after_send: AfterSend,
) -> (
    std::sync::Arc<AtomicBool>,
    std::thread::JoinHandle<ferry_cli::diode::dir::DirReport>,
) {
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let args = DiodeSendDirArgs {
        dir: dir.to_owned(),
        to,
        files_per_session: 100,
        maximum_delay: None,
        ignore: Vec::new(),
        options: FileOptions::default(),
        after_send,
        once: false,
        interval_ms: 50,
        config: ConfigFile::default(),
        grace: Default::default(),
        metrics: MetricsArgs::default(),
    };
    let flag = std::sync::Arc::clone(&stop);
    let thread = std::thread::spawn(move || send_dir(&args, &flag).unwrap());
    (stop, thread)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_watched_directory_is_sent_as_files_settle() {
    let chain = Chain::start(options(400.0, 9000, 10), None);
    let spool = TempDir::new().unwrap();
    let sent = spool.path().join("sent");

    // Moved once sent; a hidden file is left alone.
    let (stop, thread) = watch(
        spool.path(),
        chain.send.tcp_addr(),
        AfterSend::Move(sent.clone()),
    );
    std::fs::write(spool.path().join("one.txt"), b"first").unwrap();
    std::fs::write(spool.path().join(".partial"), b"not yet").unwrap();
    wait_until("one.txt sent", || chain.files.stats().saved == 1);
    std::fs::write(spool.path().join("two.bin"), random_bytes(5, 300_000)).unwrap();
    wait_until("two.bin moved", || sent.join("two.bin").exists());
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let report = thread.join().unwrap();
    assert_eq!((report.files, report.sessions), (2, 2));
    assert!(sent.join("one.txt").exists());
    assert!(!spool.path().join("one.txt").exists());
    assert!(spool.path().join(".partial").exists());
    chain.wait_for_sessions(2);
    let found = read_dir(&chain.dir());
    assert_eq!(found["one.txt"], b"first");
    assert_eq!(found["two.bin"], random_bytes(5, 300_000));

    // Kept: sent once, and again only when it changes.
    let keep = TempDir::new().unwrap();
    std::fs::write(keep.path().join("kept.txt"), b"v1").unwrap();
    let (stop, thread) = watch(keep.path(), chain.send.tcp_addr(), AfterSend::Keep);
    wait_until("kept.txt sent", || chain.files.stats().saved == 3);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(chain.files.stats().connections, 3, "sent again unchanged");
    std::fs::write(keep.path().join("kept.txt"), b"version 2").unwrap();
    wait_until("kept.txt sent again", || chain.files.stats().saved == 4);
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(thread.join().unwrap().files, 2);
    assert!(keep.path().join("kept.txt").exists());
    let found = read_dir(&chain.dir());
    assert_eq!(found["kept.txt"], b"v1");
    assert_eq!(found["kept.1.txt"], b"version 2");
    chain.stop();
}

#[test]
fn files_cross_a_lossy_path() {
    let link = LinkConfig::default().random_loss(0.02);
    let chain = Chain::start(options(300.0, 1500, 10), Some(link));
    let (source, expected) = make_files(&[
        ("photo.jpg", 3_000_000),
        ("empty", 0),
        ("notes.txt", 12_345),
        ("archive.tar", 1_500_000),
    ]);
    let report = send_files(chain.send.tcp_addr(), &paths(&source, &expected)).unwrap();
    assert_eq!(report.files, 4);
    let stats = chain.wait_for_sessions(1);
    assert_eq!(
        (stats.saved, stats.discarded),
        (4, 0),
        "{stats:?} {:?} {:?} {:?}",
        chain.send.stats(),
        chain.receive.stats(),
        chain.relay.as_ref().unwrap().stats()
    );
    assert_same(&read_dir(&chain.dir()), &expected);
    let relay = chain.relay.as_ref().unwrap().stats();
    assert!(relay.to_upstream.link.lost > 0, "{relay:?}");
    assert!(chain.receive.stats().protocol.blocks_repaired > 0);
    chain.stop();
}

#[test]
fn a_session_beyond_repair_leaves_nothing_and_the_next_one_arrives() {
    let link = LinkConfig::default().random_loss(0.4);
    let chain = Chain::start(options(300.0, 1500, 10), Some(link));
    let (source, doomed) = make_files(&[("first.bin", 2_000_000), ("second.bin", 300_000)]);
    // diode-send cannot know: for it the session went out.
    send_files(chain.send.tcp_addr(), &paths(&source, &doomed)).unwrap();
    let stats = chain.wait_for_sessions(1);
    assert_eq!(stats.saved, 0, "{stats:?}");
    assert!(read_dir(&chain.dir()).is_empty());
    assert!(chain.receive.stats().protocol.sessions_lost >= 1);

    chain
        .relay
        .as_ref()
        .unwrap()
        .set_to_upstream(LinkConfig::default());
    let (source, expected) = make_files(&[("after.bin", 2_500_000), ("tiny", 10)]);
    send_files(chain.send.tcp_addr(), &paths(&source, &expected)).unwrap();
    let stats = chain.wait_for_sessions(2);
    assert_eq!(stats.saved, 2, "{stats:?}");
    assert_same(&read_dir(&chain.dir()), &expected);
    chain.stop();
}

#[test]
fn the_diode_tools_serve_what_arrived_and_what_was_lost_to_prometheus() {
    let link = LinkConfig::default().random_loss(0.4);
    let chain = Chain::start(options(300.0, 1500, 10), Some(link));
    let (source, doomed) = make_files(&[("doomed.bin", 2_000_000)]);
    send_files(chain.send.tcp_addr(), &paths(&source, &doomed)).unwrap();
    chain.wait_for_sessions(1);
    chain
        .relay
        .as_ref()
        .unwrap()
        .set_to_upstream(LinkConfig::default());
    let (source, expected) = make_files(&[("kept.bin", 1_000_000)]);
    send_files(chain.send.tcp_addr(), &paths(&source, &expected)).unwrap();
    chain.wait_for_sessions(2);

    let sent = scrape(chain.send.metrics_addr().unwrap());
    assert_eq!(
        sample(&sent, "ferry_diode_send_sessions_sent_total"),
        Some(2.0),
        "{sent}"
    );
    assert_eq!(
        sample(&sent, "ferry_diode_send_sessions_open"),
        Some(0.0),
        "{sent}"
    );
    let repair = sample(&sent, "ferry_diode_send_symbols_total{kind=\"repair\"}").unwrap();
    assert!(repair > 0.0, "{sent}");

    let received = scrape(chain.receive.metrics_addr().unwrap());
    let stats = chain.receive.stats().protocol;
    assert_eq!(
        sample(&received, "ferry_diode_receive_sessions_finished_total"),
        Some(1.0),
        "{received}"
    );
    // Each loss is under its cause, and the causes add up to the losses.
    let causes: f64 = received
        .lines()
        .filter(|l| l.starts_with("ferry_diode_receive_sessions_lost_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(causes, stats.sessions_lost as f64, "{received}");
    assert!(causes >= 1.0, "{received}");
    assert_eq!(
        sample(&received, "ferry_diode_receive_blocks_decoded_total"),
        Some(stats.blocks_decoded as f64)
    );
    assert!(sample(&received, "ferry_diode_receive_heartbeats_total").is_some());
    let files = scrape(chain.files.metrics_addr().unwrap());
    assert_eq!(
        sample(&files, "ferry_diode_files_total{outcome=\"saved\"}"),
        Some(1.0),
        "{files}"
    );
    // Each session was replayed to it; the lost one left nothing behind.
    assert_eq!(
        sample(&files, "ferry_diode_files_connections_total"),
        Some(2.0),
        "{files}"
    );
    assert_eq!(
        sample(&files, "ferry_diode_files_connections_open"),
        Some(0.0),
        "{files}"
    );
    chain.stop();
}

#[test]
fn a_session_cut_short_leaves_no_partial_file() {
    let chain = Chain::start(options(400.0, 9000, 10), None);
    let data = random_bytes(9, 5_000_000);
    let header = FileHeader {
        name: "cut.bin".into(),
        size: data.len() as u64,
        digest: *blake3::hash(&data).as_bytes(),
        mode: None,
        modified: None,
    };
    // A client that dies in the middle of a file.
    let mut stream = TcpStream::connect(chain.send.tcp_addr()).unwrap();
    stream.write_all(&header.encode()).unwrap();
    stream.write_all(&data[..2_000_000]).unwrap();
    wait_until("the partial file appears", || {
        std::fs::read_dir(chain.dir())
            .unwrap()
            .flatten()
            .any(|e| e.file_name().to_string_lossy().contains(".ferry-part-"))
    });
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);

    // diode-send aborts the session, diode-receive resets its connection,
    // diode-receive-file deletes the partial file.
    let stats = chain.wait_for_sessions(1);
    assert_eq!((stats.saved, stats.discarded), (0, 1), "{stats:?}");
    assert!(read_dir(&chain.dir()).is_empty());
    assert_eq!(chain.receive.stats().protocol.sessions_lost, 1);
    chain.stop();
}

#[test]
fn path_traversal_names_are_sanitised_or_refused() {
    let chain = Chain::start(options(400.0, 9000, 10), None);
    // A hostile client of diode-send writes its own frames.
    let frame = |name: &str, data: &[u8]| {
        let mut out = FileHeader {
            name: name.into(),
            size: data.len() as u64,
            digest: *blake3::hash(data).as_bytes(),
            mode: None,
            modified: None,
        }
        .encode();
        out.extend_from_slice(data);
        out
    };
    let mut stream = TcpStream::connect(chain.send.tcp_addr()).unwrap();
    for (name, data) in [
        ("../../escaped.txt", &b"one"[..]),
        ("/etc/passwd", b"two"),
        ("..", b"three"),
        ("sub/dir/..", b"four"),
        ("nul\0byte", b"five"),
        ("plain.txt", b"six"),
    ] {
        stream.write_all(&frame(name, data)).unwrap();
    }
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    std::io::Read::read_to_end(&mut stream, &mut rest).unwrap();

    let stats = chain.wait_for_sessions(1);
    assert_eq!((stats.saved, stats.refused), (3, 3), "{stats:?}");
    let found = read_dir(&chain.dir());
    let names: Vec<_> = found.keys().map(String::as_str).collect();
    assert_eq!(names, ["escaped.txt", "passwd", "plain.txt"]);
    assert_eq!(found["plain.txt"], b"six");
    // Nothing escaped the directory.
    assert!(!chain.out.path().join("escaped.txt").exists());
    assert!(
        !chain
            .out
            .path()
            .parent()
            .unwrap()
            .join("escaped.txt")
            .exists()
    );
    chain.stop();
}

#[test]
fn invalid_configuration_names_the_key() {
    let dir = TempDir::new().unwrap();
    for (text, key) in [
        ("colour = 3\n", "colour"),
        ("[receiver]\nsession_timeout = 5000\n", "session_timeout"),
        ("repair_percentage = 5000\n", "`repair_percentage`"),
        ("bandwidth = 0\n", "`bandwidth`"),
        ("mtu = \"jumbo\"\n", "mtu"),
    ] {
        let path = dir.path().join("diode.toml");
        std::fs::write(&path, text).unwrap();
        let path = path.to_str().unwrap();
        for command in [
            vec![
                "diode-receive",
                "--listen",
                "127.0.0.1:0",
                "--to",
                "127.0.0.1:9",
            ],
            vec![
                "diode-send",
                "--listen",
                "127.0.0.1:0",
                "--to",
                "127.0.0.1:9",
            ],
            vec!["diode-send-file", "x", "--to", "127.0.0.1:9"],
            vec![
                "diode-receive-file",
                "--listen",
                "127.0.0.1:0",
                "--dir",
                "/nonexistent",
            ],
            vec!["diode-send-dir", "/nonexistent", "--to", "127.0.0.1:9"],
        ] {
            let args = ["ferry"]
                .into_iter()
                .chain(command.iter().copied())
                .chain(["--config", path]);
            let cli = Cli::try_parse_from(args).unwrap();
            let err = run(cli, &mut Vec::new()).unwrap_err().to_string();
            assert!(err.contains(key), "{command:?} with {text:?}: {err}");
            assert!(
                err.contains("diode.toml"),
                "{command:?} with {text:?}: {err}"
            );
        }
    }
    // A flag's value is checked too.
    let cli = Cli::try_parse_from([
        "ferry",
        "diode-receive",
        "--listen",
        "127.0.0.1:0",
        "--to",
        "127.0.0.1:9",
        "--mtu",
        "100",
    ])
    .unwrap();
    let err = run(cli, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("`mtu`"), "{err}");
}

#[test]
fn startup_errors_say_what_to_do() {
    let holder = std::net::TcpListener::bind(any_port()).unwrap();
    let taken = holder.local_addr().unwrap();
    let cli = Cli::try_parse_from([
        "ferry",
        "diode-send",
        "--listen",
        &taken.to_string(),
        "--to",
        "127.0.0.1:9",
    ])
    .unwrap();
    let err = run(cli, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("already in use"), "{err}");

    let udp = std::net::UdpSocket::bind(any_port()).unwrap();
    let cli = Cli::try_parse_from([
        "ferry",
        "diode-receive",
        "--listen",
        &udp.local_addr().unwrap().to_string(),
        "--to",
        "127.0.0.1:9",
    ])
    .unwrap();
    let err = run(cli, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("already in use"), "{err}");

    let file = tempfile::NamedTempFile::new().unwrap();
    let not_a_dir = file.path().join("sub");
    let cli = Cli::try_parse_from([
        "ferry",
        "diode-receive-file",
        "--listen",
        "127.0.0.1:0",
        "--dir",
        not_a_dir.to_str().unwrap(),
    ])
    .unwrap();
    let err = run(cli, &mut Vec::new()).unwrap_err().to_string();
    assert!(err.contains("cannot create the directory"), "{err}");

    // Nothing listening: the message says what to start.
    let free = std::net::TcpListener::bind(any_port())
        .unwrap()
        .local_addr()
        .unwrap();
    let err = send_files(free, &[file.path().to_owned()])
        .unwrap_err()
        .to_string();
    assert!(err.contains("ferry diode-send --listen"), "{err}");
}

#[test]
fn every_diode_subcommand_has_help() {
    for sub in [
        "diode-send",
        "diode-receive",
        "diode-send-file",
        "diode-receive-file",
        "diode-send-dir",
    ] {
        let err = Cli::try_parse_from(["ferry", sub, "--help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp, "{sub}");
        let help = err.render().to_string();
        assert!(help.contains("--config"), "{sub}: {help}");
        assert!(help.contains("Usage: ferry"), "{sub}: {help}");
        // A usage error exits with 2.
        let err = Cli::try_parse_from(["ferry", sub, "--no-such-flag"]).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{sub}");
    }
}

/// The issue's end-to-end: 256 MiB through the relay at 2% loss. Debug-ish
/// test builds pace the sender at 200 Mbit/s (the user-space relay and the
/// receiver are not optimised there); release builds at 500:
///
/// ```sh
/// cargo test --release -p ferry-tests --test diode quarter -- --nocapture
/// ```
#[test]
fn quarter_gigabyte_through_two_percent_loss() {
    const LEN: usize = 256 << 20;
    let pace = if cfg!(debug_assertions) { 200.0 } else { 500.0 };
    let link = LinkConfig::default().random_loss(0.02);
    let chain = Chain::start(options(pace, 1500, 10), Some(link));
    let (source, expected) = make_files(&[("quarter.bin", LEN)]);
    let start = Instant::now();
    send_files(chain.send.tcp_addr(), &paths(&source, &expected)).unwrap();
    let stats = chain.wait_for_sessions(1);
    let elapsed = start.elapsed();
    let relay = chain.relay.as_ref().unwrap().stats();
    let receiver = chain.receive.stats();
    assert_eq!(
        (stats.saved, stats.discarded),
        (1, 0),
        "{stats:?}\nrelay: {relay:?}\nreceiver: {receiver:?}\nsender: {:?}",
        chain.send.stats()
    );
    assert_same(&read_dir(&chain.dir()), &expected);
    println!(
        "256 MiB through 2% loss in {:.1} s ({:.0} Mbit/s of file): relay dropped {} of {} datagrams, {} of {} blocks repaired",
        elapsed.as_secs_f64(),
        LEN as f64 * 8.0 / elapsed.as_secs_f64() / 1e6,
        relay.to_upstream.link.lost,
        relay.to_upstream.link.sent,
        receiver.protocol.blocks_repaired,
        receiver.protocol.blocks_decoded,
    );
    chain.stop();
}
