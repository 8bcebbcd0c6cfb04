//! The diode suite's file rows: one file through the real command-line
//! tools, `ferry diode-send-file → diode-send → UDP → diode-receive →
//! diode-receive-file`, each in its own process, as an operator runs them.
//! At 2% loss the UDP hop crosses a lossy forwarder (`forwarder.rs`).
//!
//! The time runs from starting `diode-send-file` until the file stands
//! complete under its name in the receiving directory (the receiver renames
//! it into place only once whole and checked). A diode tool serves until it
//! is stopped, so the three servers are killed afterwards; their CPU
//! seconds (`wait4`) include their idle start, a few milliseconds.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::forwarder::Forwarder;

use crate::files::{scratch_dir, wait, write_payload};

/// What one transfer through the tools measured.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// Start of `diode-send-file` to the file in place.
    pub(crate) elapsed: Duration,
    /// CPU seconds of `diode-send-file` and `diode-send`.
    pub(crate) send_cpu: Duration,
    /// CPU seconds of `diode-receive` and `diode-receive-file`.
    pub(crate) recv_cpu: Duration,
}

/// A server tool, killed (and reaped) when dropped.
struct Server {
    child: Child,
    reaped: bool,
}

impl Server {
    /// Starts `ferry <name> <args>` and reads its stdout up to the line that
    /// says where it listens (`… on ADDR, …`), returning that address.
    fn start(
        ferry: &Path,
        name: &'static str,
        args: &[&str],
    ) -> Result<(Self, SocketAddr), String> {
        let mut child = Command::new(ferry)
            .arg(name)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start ferry {name}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let mut server = Self {
            child,
            reaped: false,
        };
        let mut lines = BufReader::new(stdout).lines();
        for line in lines.by_ref() {
            let line = line.map_err(|e| format!("reading ferry {name}'s output: {e}"))?;
            if let Some(addr) = line
                .split(" on ")
                .nth(1)
                .and_then(|rest| rest.split([',', ' ']).next())
                .and_then(|a| a.parse().ok())
            {
                // Keep draining its output so that it never blocks on a full pipe.
                std::thread::spawn(move || lines.for_each(drop));
                return Ok((server, addr));
            }
        }
        let _ = server.child.kill();
        Err(format!(
            "ferry {name} exited without saying where it listens"
        ))
    }

    /// Stops the tool and returns its CPU time.
    fn stop(mut self) -> Result<Duration, String> {
        let _ = self.child.kill();
        self.reaped = true;
        wait(&self.child).map(|(_, cpu)| cpu)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = wait(&self.child);
        }
    }
}

/// Sends one `mib` MiB file through the tools at `rate` Mbit/s, with `loss`
/// random loss on the UDP hop; an error when the file did not arrive whole
/// within `limit`.
pub(crate) fn transfer(
    ferry: &Path,
    mib: u64,
    rate: u64,
    loss: f64,
    limit: Duration,
) -> Result<Outcome, String> {
    if !ferry.is_file() {
        return Err(format!(
            "no ferry executable at {} (build it with `cargo build --release -p ferry-cli`, or set FERRY_BIN)",
            ferry.display()
        ));
    }
    let dir = scratch_dir("diode-files")?;
    let result = run(ferry, &dir, mib, rate, loss, limit);
    let _ = fs::remove_dir_all(&dir);
    result
}

fn run(
    ferry: &Path,
    dir: &Path,
    mib: u64,
    rate: u64,
    loss: f64,
    limit: Duration,
) -> Result<Outcome, String> {
    let file = dir.join("payload");
    let bytes = mib << 20;
    write_payload(&file, bytes)?;
    let inbox = dir.join("inbox");
    let inbox_arg = inbox.to_string_lossy().into_owned();
    let any = "127.0.0.1:0";
    let (files_out, files_addr) = Server::start(
        ferry,
        "diode-receive-file",
        &["--listen", any, "--dir", &inbox_arg],
    )?;
    let (receiver, udp_addr) = Server::start(
        ferry,
        "diode-receive",
        &["--listen", any, "--to", &files_addr.to_string()],
    )?;
    let relay = if loss > 0.0 {
        Some(Forwarder::start(udp_addr, loss, 11).map_err(|e| format!("forwarder: {e}"))?)
    } else {
        None
    };
    let target = relay.as_ref().map_or(udp_addr, Forwarder::local_addr);
    let rate = rate.to_string();
    let (sender, tcp_addr) = Server::start(
        ferry,
        "diode-send",
        &[
            "--listen",
            any,
            "--to",
            &target.to_string(),
            "--bandwidth",
            &rate,
        ],
    )?;
    let start = Instant::now();
    let send_file = Command::new(ferry)
        .args(["diode-send-file", "--quiet", "--to", &tcp_addr.to_string()])
        .arg(&file)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start ferry diode-send-file: {e}"))?;
    let (sent, send_file_cpu) = wait(&send_file)?;
    if !sent {
        return Err("ferry diode-send-file failed".to_owned());
    }
    let arrived = inbox.join("payload");
    let elapsed = loop {
        if fs::metadata(&arrived).is_ok_and(|m| m.len() == bytes) {
            break start.elapsed();
        }
        if start.elapsed() > limit {
            return Err(format!(
                "the file did not arrive whole within {} s (lost to the {:.0}% loss at {rate} Mbit/s?)",
                limit.as_secs(),
                loss * 100.0
            ));
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    drop(relay);
    Ok(Outcome {
        elapsed,
        send_cpu: send_file_cpu + sender.stop()?,
        recv_cpu: receiver.stop()? + files_out.stop()?,
    })
}
