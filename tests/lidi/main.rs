//! A Lidi operator switching to Ferry: Lidi's configuration files (ANSSI's,
//! ANSSI's Lidi 2 layout and the CrabeDeFrance fork's) run unchanged, Lidi's
//! log settings set the log, Lidi's flag names and
//! program names work, files keep their mode and modification time, and
//! `diode-send-dir`'s `--ignore` and `--maximum-delay` do what they say.
//! Everything on loopback.
//!
//! - [`configs`]: each Lidi line's configuration file, run unchanged;
//! - [`tools`]: Lidi's flag names, file mode and time, `diode-send-dir`;
//! - [`links`]: the `ferry` binary under Lidi's program names, and Lidi's
//!   log settings.

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

mod configs;
mod links;
mod tools;

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
