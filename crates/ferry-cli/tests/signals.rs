//! SIGTERM and Ctrl-C: the built `ferry` stops gracefully (stops accepting,
//! lets the work in flight finish for `--grace-period`, exits 0), cuts what
//! outlives the grace period, and exits at once on a second signal (130).
//!
//! The transfers in flight are held in flight by a UDP relay of the test's
//! own that stops forwarding after a number of bytes, until released: no
//! test depends on timing (the time bounds only keep a failure from hanging).

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use common::{Server, content, ferry};

/// Long enough for anything in these tests to happen; only a failure waits
/// that long.
const PATIENCE: Duration = Duration::from_secs(30);

fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill({pid})");
}

/// Waits for a line of `lines` that starts with `prefix`, and returns it.
fn line_starting(lines: &mpsc::Receiver<String>, prefix: &str) -> String {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.starts_with(prefix) => return line,
            Ok(_) => {}
            Err(_) => panic!("no line starting with {prefix:?}"),
        }
    }
}

/// Starts `ferry ARGS` with its stdout as lines.
fn spawn(args: &[&str]) -> (Child, mpsc::Receiver<String>) {
    let mut child = ferry()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the ferry binary runs");
    let stdout = child.stdout.take().unwrap();
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, lines)
}

/// Waits for `child` to exit (at most [`PATIENCE`]): its code, and stderr.
fn exit_of(mut child: Child) -> (Option<i32>, String) {
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("ferry did not exit within {PATIENCE:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut stderr);
    }
    (status.code(), stderr)
}

/// The address after `prefix` in a line such as `diode-send: accepting TCP
/// on ADDR, ...`.
fn addr_after(line: &str, prefix: &str) -> SocketAddr {
    line.split_once(prefix)
        .and_then(|(_, rest)| rest.split([',', ' ']).next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address after {prefix:?} in {line:?}"))
}

/// A UDP relay between a sender and `ferry receive` that forwards both ways
/// until `hold_after` bytes went towards the receiver, then drops
/// everything (or, `down_only`, what goes back to the sender: the sender
/// stalls, but its close gets through) until released.
struct Relay {
    addr: SocketAddr,
    state: Arc<RelayState>,
}

struct RelayState {
    up: AtomicU64,
    hold_after: u64,
    down_only: bool,
    holding: AtomicBool,
    released: AtomicBool,
    done: AtomicBool,
    client: Mutex<Option<SocketAddr>>,
}

impl RelayState {
    fn passing(&self, up: bool) -> bool {
        (up && self.down_only)
            || self.released.load(Ordering::SeqCst)
            || !self.holding.load(Ordering::SeqCst)
    }
}

impl Relay {
    fn start(to: SocketAddr, hold_after: u64, down_only: bool) -> Relay {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(to).unwrap();
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        }
        let addr = front.local_addr().unwrap();
        let state = Arc::new(RelayState {
            up: AtomicU64::new(0),
            hold_after,
            down_only,
            holding: AtomicBool::new(false),
            released: AtomicBool::new(false),
            done: AtomicBool::new(false),
            client: Mutex::new(None),
        });
        let (front2, back2) = (front.try_clone().unwrap(), back.try_clone().unwrap());
        let up = Arc::clone(&state);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !up.done.load(Ordering::SeqCst) {
                let Ok((n, from)) = front.recv_from(&mut buf) else {
                    continue;
                };
                *up.client.lock().unwrap() = Some(from);
                if !up.passing(true) {
                    continue;
                }
                let total = up.up.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
                if total >= up.hold_after {
                    up.holding.store(true, Ordering::SeqCst);
                }
                let _ = back.send(&buf[..n]);
            }
        });
        let down = Arc::clone(&state);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 65536];
            while !down.done.load(Ordering::SeqCst) {
                let Ok(n) = back2.recv(&mut buf) else {
                    continue;
                };
                let client = *down.client.lock().unwrap();
                if let Some(client) = client
                    && down.passing(false)
                {
                    let _ = front2.send_to(&buf[..n], client);
                }
            }
        });
        Relay { addr, state }
    }

    /// Waits until the relay holds the transfer up.
    fn wait_holding(&self) {
        let deadline = Instant::now() + PATIENCE;
        while !self.state.holding.load(Ordering::SeqCst) {
            assert!(Instant::now() < deadline, "the transfer never got going");
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    fn release(&self) {
        self.state.released.store(true, Ordering::SeqCst);
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.state.done.store(true, Ordering::SeqCst);
    }
}

const FILE_SIZE: usize = 4 << 20;

/// `ferry receive` into `dir`, and `ferry send` of a 4 MiB file to it
/// through a relay that holds the transfer up after 1 MiB (`down_only`: see
/// [`Relay`]).
fn transfer_held_up(
    dir: &Path,
    src: &Path,
    extra: &[&str],
    down_only: bool,
) -> (Server, Child, Relay) {
    std::fs::write(src, content(FILE_SIZE, 7)).unwrap();
    let mut args = vec![
        "receive",
        "--listen",
        "127.0.0.1:0",
        "--dir",
        dir.to_str().unwrap(),
        "--progress",
        "off",
    ];
    args.extend_from_slice(extra);
    let receive = Server::start(&args);
    let relay = Relay::start(receive.addr, 1 << 20, down_only);
    let send = ferry()
        .args([
            "send",
            src.to_str().unwrap(),
            "--to",
            &relay.addr.to_string(),
            "--progress",
            "off",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    relay.wait_holding();
    (receive, send, relay)
}

#[test]
fn receive_terminated_during_a_transfer_finishes_the_file_and_exits_0() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, src) = (tmp.path().join("in"), tmp.path().join("file.bin"));
    let (receive, send, relay) = transfer_held_up(&dir, &src, &[], false);
    signal(&receive.child, libc::SIGTERM);
    let stopping = line_starting(&receive.lines, "stopping");
    assert!(
        stopping.starts_with("stopping (SIGTERM): 1 session in flight"),
        "{stopping}"
    );
    relay.release();
    let (code, stderr) = exit_of(send);
    assert_eq!(code, Some(0), "the sender: {stderr}");
    let (code, out, stderr) = receive.wait(PATIENCE);
    assert_eq!(code, Some(0), "{out}\n{stderr}");
    assert!(out.contains("received from"), "{out}");
    assert!(
        std::fs::read(dir.join("file.bin")).unwrap() == content(FILE_SIZE, 7),
        "the file differs"
    );
}

#[test]
fn receive_cuts_a_transfer_that_outlives_the_grace_period_and_exits_130() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, src) = (tmp.path().join("in"), tmp.path().join("file.bin"));
    let (receive, mut send, _relay) =
        transfer_held_up(&dir, &src, &["--grace-period", "0.2"], false);
    signal(&receive.child, libc::SIGTERM);
    let (code, out, stderr) = receive.wait(PATIENCE);
    assert_eq!(code, Some(130), "{out}\n{stderr}");
    assert!(out.contains("incomplete: this receiver stopped"), "{out}");
    assert!(stderr.contains("1 session was cut"), "{stderr}");
    // The file does not appear; its received prefix is kept, to be resumed
    // (`tests/resume.rs`), and no temporary file stays.
    let mut left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(
        left,
        [".file.bin.ferry-resume", ".file.bin.ferry-resume.meta"]
    );
    let _ = send.kill();
    let _ = send.wait();
}

#[test]
fn send_terminated_closes_its_session_and_exits_130() {
    let tmp = tempfile::tempdir().unwrap();
    let (dir, src) = (tmp.path().join("in"), tmp.path().join("file.bin"));
    let (receive, send, _relay) = transfer_held_up(&dir, &src, &["--once"], true);
    signal(&send, libc::SIGTERM);
    let (code, stderr) = exit_of(send);
    assert_eq!(code, Some(130), "{stderr}");
    // The receiver learns it from the close, not by a timeout: code 3.
    let (code, out, stderr) = receive.wait(PATIENCE);
    assert_eq!(code, Some(3), "{out}\n{stderr}");
    assert!(out.contains("the sender closed the session"), "{out}");
}

#[test]
fn an_idle_forward_server_exits_0_on_sigterm() {
    let server = Server::start(&[
        "forward-server",
        "--listen",
        "127.0.0.1:0",
        "--allow",
        "127.0.0.1:9",
    ]);
    signal(&server.child, libc::SIGTERM);
    let (code, out, stderr) = server.wait(PATIENCE);
    assert_eq!(code, Some(0), "{out}\n{stderr}");
    assert!(
        out.contains("stopping (SIGTERM): 0 connections in flight"),
        "{out}"
    );
}

#[test]
fn diode_send_terminated_stops_accepting_and_lets_its_connection_finish() {
    let sink = UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let stop_sink = Arc::new(AtomicBool::new(false));
    let (to, count, stop) = (
        sink.local_addr().unwrap(),
        received.clone(),
        stop_sink.clone(),
    );
    let sink_thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; 65536];
        while !stop.load(Ordering::SeqCst) {
            if let Ok(n) = sink.recv(&mut buf) {
                count.fetch_add(n as u64, Ordering::SeqCst);
            }
        }
    });
    let (child, lines) = spawn(&[
        "diode-send",
        "--listen",
        "127.0.0.1:0",
        "--to",
        &to.to_string(),
    ]);
    let tcp = addr_after(&line_starting(&lines, "diode-send:"), "accepting TCP on ");
    // Small enough for the test's socket buffer to hold all of its
    // datagrams, however late the test reads them.
    let data = content(64 << 10, 3);
    let mut client = TcpStream::connect(tcp).unwrap();
    client.write_all(&data[..32 << 10]).unwrap();
    signal(&child, libc::SIGTERM);
    let stopping = line_starting(&lines, "stopping");
    assert!(
        stopping.starts_with("stopping (SIGTERM): 1 session in flight"),
        "{stopping}"
    );
    // The listener is closed: no new connection.
    let refused = TcpStream::connect(tcp);
    assert!(refused.is_err(), "a new connection was accepted");
    // The connection in flight finishes: a clean close once on the wire.
    client.write_all(&data[32 << 10..]).unwrap();
    client.shutdown(std::net::Shutdown::Write).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut rest = Vec::new();
    client
        .read_to_end(&mut rest)
        .expect("a clean close, not a reset");
    let (code, stderr) = exit_of(child);
    assert_eq!(code, Some(0), "{stderr}");
    let deadline = Instant::now() + PATIENCE;
    while received.load(Ordering::SeqCst) < data.len() as u64 {
        assert!(
            Instant::now() < deadline,
            "the session's bytes did not go out: {} of {}",
            received.load(Ordering::SeqCst),
            data.len()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    stop_sink.store(true, Ordering::SeqCst);
    sink_thread.join().unwrap();
}

#[test]
fn a_second_signal_exits_at_once_with_130() {
    let tmp = tempfile::tempdir().unwrap();
    let (child, lines) = spawn(&[
        "diode-receive-file",
        "--listen",
        "127.0.0.1:0",
        "--dir",
        tmp.path().to_str().unwrap(),
        "--grace-period",
        "600",
    ]);
    let tcp = addr_after(
        &line_starting(&lines, "diode-receive-file:"),
        "accepting TCP on ",
    );
    // A connection in progress, which the first signal waits for.
    let _client = TcpStream::connect(tcp).unwrap();
    signal(&child, libc::SIGTERM);
    let stopping = line_starting(&lines, "stopping");
    assert!(
        stopping.starts_with("stopping (SIGTERM): 1 connection in flight, waiting up to 600 s"),
        "{stopping}"
    );
    signal(&child, libc::SIGINT);
    let (code, stderr) = exit_of(child);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("SIGINT again: exiting at once"), "{stderr}");
}

#[test]
fn an_idle_diode_receive_exits_0_on_sigterm() {
    let (child, lines) = spawn(&[
        "diode-receive",
        "--listen",
        "127.0.0.1:0",
        "--to",
        "127.0.0.1:9",
    ]);
    line_starting(&lines, "diode-receive:");
    signal(&child, libc::SIGTERM);
    let stopping = line_starting(&lines, "stopping");
    assert!(
        stopping.starts_with("stopping (SIGTERM): 0 sessions in flight"),
        "{stopping}"
    );
    let (code, stderr) = exit_of(child);
    assert_eq!(code, Some(0), "{stderr}");
}

#[test]
fn forward_terminated_lets_its_open_connection_finish_and_exits_0() {
    // The target: echoes one connection until its end.
    let echo = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let target = echo.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut conn, _) = echo.accept().unwrap();
        let mut back = conn.try_clone().unwrap();
        let _ = std::io::copy(&mut conn, &mut back);
        let _ = back.shutdown(std::net::Shutdown::Write);
    });
    let server = Server::start(&[
        "forward-server",
        "--listen",
        "127.0.0.1:0",
        "--allow",
        &target.to_string(),
    ]);
    let forward = Server::start(&[
        "forward",
        "--listen",
        "127.0.0.1:0",
        "--to",
        &server.addr.to_string(),
    ]);
    let mut client = TcpStream::connect(forward.addr).unwrap();
    client.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut echoed = [0u8; 5];
    client.write_all(b"hello").unwrap();
    client.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"hello");
    signal(&forward.child, libc::SIGTERM);
    let stopping = line_starting(&forward.lines, "stopping");
    assert!(
        stopping.starts_with("stopping (SIGTERM): 1 connection in flight"),
        "{stopping}"
    );
    assert!(
        TcpStream::connect(forward.addr).is_err(),
        "a new connection was accepted"
    );
    // The open connection still carries bytes, both ways, to its end.
    client.write_all(b"again").unwrap();
    client.read_exact(&mut echoed).unwrap();
    assert_eq!(&echoed, b"again");
    client.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    client.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty());
    let (code, out, stderr) = forward.wait(PATIENCE);
    assert_eq!(code, Some(0), "{out}\n{stderr}");
    assert!(out.contains("forwarded 1 connections"), "{out}");
}
