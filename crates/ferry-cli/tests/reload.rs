//! SIGHUP on the built `ferry`'s listeners: the authorized keys file is
//! read again and the running listener admits the new list — a key taken
//! off gets no new session, a key added gets in — while a broken file keeps
//! the previous list, and nothing ever stops the listener.
//!
//! The listeners log at info (`-v`); each test waits for the log line of
//! the reload before it tries a session, so no step depends on timing.

#![cfg(unix)]

mod common;

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::{ferry, keygen, path, run, text};

/// Long enough for anything here; only a failure waits that long.
const PATIENCE: Duration = Duration::from_secs(30);

fn signal(child: &Child, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill({pid})");
}

/// Lines of a pipe, as they come.
fn lines(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// A running listener whose log is read as it comes; killed when dropped.
struct Listener {
    child: Child,
    addr: SocketAddr,
    log: mpsc::Receiver<String>,
    /// The log lines read so far.
    seen: Vec<String>,
}

impl Listener {
    /// Starts `ferry -v ARGS` and waits for `listening on ADDR`.
    fn start(args: &[&str]) -> Self {
        let mut child = ferry()
            .arg("-v")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the ferry binary runs");
        let stdout = lines(child.stdout.take().unwrap());
        let log = lines(child.stderr.take().unwrap());
        let first = stdout
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("ferry {args:?} printed nothing"));
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|rest| rest.split([',', ' ']).next())
            .and_then(|a| a.parse().ok())
            .unwrap_or_else(|| panic!("no address in {first:?}"));
        // The reports on stdout are not needed: drained so that it never
        // fills.
        std::thread::spawn(move || while stdout.recv().is_ok() {});
        Self {
            child,
            addr,
            log,
            seen: Vec::new(),
        }
    }

    /// Waits for a log line containing `what`, and returns it.
    fn logged(&mut self, what: &str) -> String {
        self.logged_all(&[what])
    }

    /// Waits for a log line containing each of `parts`, and returns it.
    fn logged_all(&mut self, parts: &[&str]) -> String {
        let matches = |line: &String| parts.iter().all(|p| line.contains(p));
        if let Some(line) = self.seen.iter().find(|l| matches(l)) {
            return line.clone();
        }
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.log.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no log line with {parts:?}; logged:\n{}",
                    self.seen.join("\n")
                )
            });
            self.seen.push(line.clone());
            if matches(&line) {
                return line;
            }
        }
    }

    /// Sends SIGHUP and waits for the log line, containing `what`, that
    /// answers it.
    fn hangup(&mut self, what: &str) -> String {
        // Lines logged before this SIGHUP do not answer it.
        while let Ok(line) = self.log.try_recv() {
            self.seen.push(line);
        }
        self.seen.clear();
        signal(&self.child, libc::SIGHUP);
        self.logged(what)
    }

    fn assert_running(&mut self) {
        assert!(
            self.child.try_wait().unwrap().is_none(),
            "the listener exited; logged:\n{}",
            self.seen.join("\n")
        );
    }

    /// SIGTERM: the listener stops gracefully; its exit code.
    fn stop(mut self) -> Option<i32> {
        signal(&self.child, libc::SIGTERM);
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "no exit within {PATIENCE:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server identity, alice's and bob's, and an authorized keys file.
struct Keys {
    dir: tempfile::TempDir,
    alice: String,
    bob: String,
}

impl Keys {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        keygen(dir.path(), "server.key");
        let (alice, bob) = (
            keygen(dir.path(), "alice.key"),
            keygen(dir.path(), "bob.key"),
        );
        let keys = Self { dir, alice, bob };
        keys.authorize(&format!("{} alice\n", keys.alice));
        keys
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn authorize(&self, text: &str) {
        std::fs::write(self.file("authorized_keys"), text).unwrap();
    }

    /// `ferry receive` (serving until stopped) with the server's identity
    /// and the authorized keys file.
    fn receiver(&self, dst: &Path) -> Listener {
        Listener::start(&[
            "receive",
            "--listen",
            "127.0.0.1:0",
            "--dir",
            path(dst),
            "--progress",
            "off",
            "--identity",
            path(&self.file("server.key")),
            "--authorized-keys",
            path(&self.file("authorized_keys")),
        ])
    }

    /// `ferry send FILE` to `to` as `who`: the exit code and the output.
    fn send(&self, who: &str, file: &Path, to: SocketAddr) -> (Option<i32>, String) {
        let out = run(&[
            "send",
            path(file),
            "--to",
            &to.to_string(),
            "--identity",
            path(&self.file(&format!("{who}.key"))),
            "--peer-key",
            path(&self.file("server.key.pub")),
        ]);
        let (stdout, stderr) = text(&out);
        (out.status.code(), format!("{stdout}\n{stderr}"))
    }
}

/// A file named `name` holding `content`, in a new directory.
fn source(name: &str, content: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(name);
    std::fs::write(&file, content).unwrap();
    (dir, file)
}

#[test]
fn sighup_revokes_a_removed_key_and_admits_an_added_one_without_a_restart() {
    let keys = Keys::new();
    let dst = tempfile::tempdir().unwrap();
    let mut server = keys.receiver(dst.path());
    let (_a, from_alice) = source("alice.txt", "from alice");
    let (code, output) = keys.send("alice", &from_alice, server.addr);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(
        std::fs::read_to_string(dst.path().join("alice.txt")).unwrap(),
        "from alice"
    );
    // Bob replaces alice in the file.
    keys.authorize(&format!("# bob only now\n{} bob\n", keys.bob));
    let line = server.hangup("authorized keys reloaded from");
    assert!(
        line.contains(&format!(
            "1 key (removed alice ({}…); added bob ({}…))",
            &keys.alice[..8],
            &keys.bob[..8]
        )),
        "{line}"
    );
    let (_b, again) = source("again.txt", "alice again");
    let (code, output) = keys.send("alice", &again, server.addr);
    assert_eq!(code, Some(4), "{output}");
    assert!(output.contains("refused the handshake"), "{output}");
    assert!(!dst.path().join("again.txt").exists());
    let (_c, from_bob) = source("bob.txt", "from bob");
    let (code, output) = keys.send("bob", &from_bob, server.addr);
    assert_eq!(code, Some(0), "{output}");
    assert_eq!(
        std::fs::read_to_string(dst.path().join("bob.txt")).unwrap(),
        "from bob"
    );
    server.logged_all(&[
        "session from an authenticated peer",
        &format!("bob ({}…)", &keys.bob[..8]),
    ]);
    server.assert_running();
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn sighup_with_a_broken_authorized_keys_file_keeps_the_previous_list_and_says_what_to_fix() {
    let keys = Keys::new();
    let dst = tempfile::tempdir().unwrap();
    let mut server = keys.receiver(dst.path());
    // Line 3 is not a key: the whole file is refused, bob is not let in.
    keys.authorize(&format!(
        "{} alice\n{} bob\nnot-a-key carol\n",
        keys.alice, keys.bob
    ));
    let warning = server.hangup("the previous list stays in force");
    assert!(
        warning.contains("WARN")
            && warning.contains("line 3")
            && warning.contains("(1 key)")
            && warning.contains("fix the file and send SIGHUP again"),
        "{warning}"
    );
    server.assert_running();
    let (_a, from_alice) = source("alice.txt", "from alice");
    let (code, output) = keys.send("alice", &from_alice, server.addr);
    assert_eq!(code, Some(0), "{output}");
    let (_b, from_bob) = source("bob.txt", "from bob");
    let (code, output) = keys.send("bob", &from_bob, server.addr);
    assert_eq!(code, Some(4), "{output}");
    // A missing file: the same.
    std::fs::remove_file(keys.file("authorized_keys")).unwrap();
    let warning = server.hangup("the previous list stays in force");
    assert!(
        warning.contains("cannot read the authorized keys file"),
        "{warning}"
    );
    let (code, output) = keys.send("alice", &from_alice, server.addr);
    assert_eq!(code, Some(0), "{output}");
    server.assert_running();
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn a_listener_without_authorized_keys_survives_sighup_and_says_there_is_nothing_to_reload() {
    // perf server: SIGHUP as soon as its first line is read.
    let mut server = Listener::start(&["perf", "server", "--listen", "127.0.0.1:0"]);
    let warning = server.hangup("SIGHUP: nothing to reload");
    assert!(warning.contains("--authorized-keys"), "{warning}");
    server.assert_running();
    assert_eq!(server.stop(), Some(0));
}

#[test]
fn sighup_on_forward_server_drops_the_rules_of_a_peer_that_left_the_file() {
    let keys = Keys::new();
    keys.authorize(&format!("{} alice\n{} bob\n", keys.alice, keys.bob));
    let mut server = Listener::start(&[
        "forward-server",
        "--listen",
        "127.0.0.1:0",
        "--identity",
        path(&keys.file("server.key")),
        "--authorized-keys",
        path(&keys.file("authorized_keys")),
        "--allow-peer",
        "alice=127.0.0.1:22",
        "--allow-peer",
        "bob=127.0.0.1:80",
    ]);
    keys.authorize(&format!("{} alice\n", keys.alice));
    server.hangup("authorized keys reloaded from");
    let warning = server.logged("--allow-peer bob=127.0.0.1:80");
    assert!(
        warning.contains("no key is named `bob`") && warning.contains("applies to no one"),
        "{warning}"
    );
    let now = server.logged("forward-server now connects to");
    assert!(
        now.contains(&format!(
            "127.0.0.1:22 for alice ({}…) only",
            &keys.alice[..8]
        )),
        "{now}"
    );
    server.assert_running();
    assert_eq!(server.stop(), Some(0));
}
