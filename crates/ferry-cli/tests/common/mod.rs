//! Helpers for the tests that drive the built `ferry` binary.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The binary, logging off unless the test sets it.
pub fn ferry() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ferry"));
    command.env("FERRY_LOG", "off").env_remove("RUST_LOG");
    command
}

/// Runs `ferry ARGS` to the end.
pub fn run(args: &[&str]) -> Output {
    ferry().args(args).output().expect("the ferry binary runs")
}

/// A running `ferry` that prints `listening on ADDR` first; killed when
/// dropped.
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
    /// Its first line (the one with the address).
    pub first: String,
    /// The rest of its stdout, line by line.
    pub lines: mpsc::Receiver<String>,
    stderr: Option<std::thread::JoinHandle<String>>,
}

impl Server {
    /// Starts `ferry ARGS` and waits for its address.
    pub fn start(args: &[&str]) -> Self {
        let mut child = ferry()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the ferry binary runs");
        let stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        let stderr = std::thread::spawn(move || {
            let mut s = String::new();
            let _ = stderr.read_to_string(&mut s);
            s
        });
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("ferry {args:?} printed nothing"));
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split([',', ' ']).next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        Self {
            child,
            addr,
            first,
            lines,
            stderr: Some(stderr),
        }
    }

    /// Waits for the process to exit (at most `timeout`); its code, the
    /// rest of stdout and stderr.
    pub fn wait(mut self, timeout: Duration) -> (Option<i32>, String, String) {
        let deadline = std::time::Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "ferry did not exit within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        let stderr = self.stderr.take().unwrap().join().unwrap();
        let mut out = String::new();
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
            out += &line;
            out.push('\n');
        }
        (status.code(), out, stderr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `ferry receive --once` into `dir` on a free loopback port, progress
/// off, with `extra` arguments.
pub fn receiver(dir: &Path, extra: &[&str]) -> Server {
    let mut args = vec![
        "receive",
        "--listen",
        "127.0.0.1:0",
        "--dir",
        dir.to_str().unwrap(),
        "--once",
        "--progress",
        "off",
    ];
    args.extend_from_slice(extra);
    Server::start(&args)
}

/// Bytes of a pattern that depends on `seed`: a misplaced byte shows.
/// The metrics address a server's first line gives (`metrics at
/// http://ADDR/metrics`).
pub fn metrics_addr(server: &Server) -> SocketAddr {
    server
        .first
        .split("metrics at http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no metrics address in {:?}", server.first))
}

/// `GET /metrics` from `addr`: the body (panics unless 200).
pub fn scrape(addr: SocketAddr) -> String {
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    assert!(head.contains(" 200 "), "{head}");
    body.to_owned()
}

/// The value of `series` (name and labels as printed) in a scrape.
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}

pub fn content(size: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..size)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A tree of several files under `root/name`: empty ones, a few MiB one,
/// nested directories, an empty directory.
pub fn make_tree(root: &Path, name: &str, big: usize) {
    let top = root.join(name);
    std::fs::create_dir_all(top.join("sub/deeper")).unwrap();
    std::fs::create_dir_all(top.join("empty-dir")).unwrap();
    std::fs::write(top.join("empty.txt"), b"").unwrap();
    std::fs::write(top.join("small.txt"), b"hello ferry\n").unwrap();
    std::fs::write(top.join("big.bin"), content(big, 1)).unwrap();
    std::fs::write(top.join("sub/a.bin"), content(70_000, 2)).unwrap();
    std::fs::write(top.join("sub/deeper/b.bin"), content(1_000_001, 3)).unwrap();
    std::fs::write(top.join("sub/deeper/also-empty"), b"").unwrap();
}

/// Asserts that two trees hold the same directories and files, byte for
/// byte.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let list = |root: &Path| {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                let rel = path.strip_prefix(root).unwrap().to_path_buf();
                if path.is_dir() {
                    stack.push(path);
                    out.push((rel, None));
                } else {
                    out.push((rel, Some(std::fs::read(&path).unwrap())));
                }
            }
        }
        out.sort();
        out
    };
    let (left, right) = (list(a), list(b));
    let names = |v: &[(std::path::PathBuf, Option<Vec<u8>>)]| {
        v.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>()
    };
    assert_eq!(names(&left), names(&right), "the trees differ");
    for ((path, x), (_, y)) in left.iter().zip(&right) {
        assert!(x == y, "{} differs", path.display());
    }
}

/// Writes a random-looking key file (64 hex digits) from `seed`.
pub fn key_file(path: &Path, seed: u64) {
    let hex: String = content(32, seed)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    std::fs::write(path, hex + "\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// stdout and stderr of an output, as text.
pub fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A path as the `&str` an argument list takes.
pub fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// `ferry keygen DIR/NAME`, which must succeed: the public key it printed.
pub fn keygen(dir: &Path, name: &str) -> String {
    let out = run(&["keygen", path(&dir.join(name))]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    stdout.trim().to_owned()
}
