//! The files suite: `ferry send` of one large file to `ferry receive` over
//! loopback, the command line's own speed, beside the bulk rows of the same
//! mode (clear against `bulk: ferry tokio`, encrypted against `bulk: ferry
//! tokio psk`): the gap between them is what the command line loses of the
//! engine's speed.
//!
//! The file lives in `/dev/shm` when there is one (tmpfs: the disk is not
//! measured), else in the system's temporary directory. Both commands are the
//! real `ferry` binary (see [`Settings::ferry`]), each in its own process;
//! the time runs from starting the sender until the receiver, having checked
//! the file's digest and renamed it into place, exits. CPU seconds are each
//! process's own (`wait4`'s resource usage), reported per side.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bulk::TOKIO;
use crate::report::Table;

/// Settings of the suite.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// MiB in the file.
    pub(crate) mib: u64,
    /// Transfers per row; the row is their median.
    pub(crate) repeat: usize,
    /// The `ferry` executable.
    pub(crate) ferry: PathBuf,
}

/// What one transfer measured.
#[derive(Debug, Clone, Copy)]
struct Outcome {
    elapsed: Duration,
    send_cpu: Duration,
    recv_cpu: Duration,
}

/// The `ferry` executable to measure: `FERRY_BIN` if set; this executable if
/// it is `ferry` itself (`ferry bench`); else `ferry` beside it (`cargo
/// xtask bench` builds both into `target/release`).
pub(crate) fn ferry_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("FERRY_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ferry"));
    if exe.file_stem().is_some_and(|s| s == "ferry") {
        return exe;
    }
    exe.with_file_name(format!("ferry{}", std::env::consts::EXE_SUFFIX))
}

pub(crate) fn run(settings: &Settings) -> Result<Table, String> {
    let mut table = Table::new("files");
    if !settings.ferry.is_file() {
        return Err(format!(
            "no ferry executable at {} (build it with `cargo build --release -p ferry-cli`, or set FERRY_BIN)",
            settings.ferry.display()
        ));
    }
    let dir = scratch_dir("files")?;
    let result = measure_all(settings, &dir, &mut table);
    let _ = fs::remove_dir_all(&dir);
    result?;
    Ok(table)
}

fn measure_all(settings: &Settings, dir: &Path, table: &mut Table) -> Result<(), String> {
    let bytes = settings.mib << 20;
    let file = dir.join("payload");
    write_payload(&file, bytes)?;
    let key = dir.join("key");
    fs::write(&key, "5e".repeat(32)).map_err(|e| format!("cannot write the key file: {e}"))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600))
            .map_err(|e| format!("cannot restrict the key file: {e}"))?;
    }
    eprintln!(
        "files suite: ferry send of one {} MiB file in {} to ferry receive, median of {}",
        settings.mib,
        dir.display(),
        settings.repeat
    );
    for (mode, baseline, key) in [
        ("clear", TOKIO.to_owned(), None),
        ("psk", format!("{TOKIO} psk"), Some(key.as_path())),
    ] {
        let name = format!("files: ferry send {mode}");
        let mut runs = Vec::new();
        for _ in 0..settings.repeat.max(1) {
            match transfer(&settings.ferry, dir, &file, key) {
                Ok(outcome) => runs.push(outcome),
                Err(e) => {
                    table.fail(&name, "MB/s", &e);
                    break;
                }
            }
        }
        if runs.len() < settings.repeat.max(1) {
            continue;
        }
        runs.sort_by_key(|o| o.elapsed);
        let median = runs[runs.len() / 2];
        let spread = if runs.len() > 1 {
            format!(
                ", median of {} ({:.0}–{:.0} MB/s)",
                runs.len(),
                mb_per_s(bytes, runs[runs.len() - 1].elapsed),
                mb_per_s(bytes, runs[0].elapsed)
            )
        } else {
            String::new()
        };
        table.add(
            &name,
            mb_per_s(bytes, median.elapsed),
            "MB/s",
            Some(&baseline),
            format!(
                "{} MiB file on tmpfs, start of send to end of receive (digest checked, renamed){spread}",
                settings.mib
            ),
        );
        let gb = bytes as f64 / 1e9;
        table.add(
            format!("{name} CPU"),
            (median.send_cpu + median.recv_cpu).as_secs_f64() / gb,
            "s/GB",
            Some(&format!("{baseline} CPU")),
            format!(
                "sender {:.2} s/GB + receiver {:.2} s/GB",
                median.send_cpu.as_secs_f64() / gb,
                median.recv_cpu.as_secs_f64() / gb
            ),
        );
    }
    Ok(())
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64().max(1e-9) / 1e6
}

/// A fresh directory on tmpfs if there is one, named for `label`.
pub(crate) fn scratch_dir(label: &str) -> Result<PathBuf, String> {
    let shm = Path::new("/dev/shm");
    let base = if shm.is_dir() {
        shm.to_path_buf()
    } else {
        std::env::temp_dir()
    };
    let dir = base.join(format!("ferry-bench-{label}-{}", std::process::id()));
    fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    Ok(dir)
}

/// `bytes` of incompressible-looking data (xorshift), written in 1 MiB
/// pieces.
pub(crate) fn write_payload(path: &Path, bytes: u64) -> Result<(), String> {
    let mut out = fs::File::create(path).map_err(|e| format!("cannot create the file: {e}"))?;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let mut chunk = vec![0u8; 1 << 20];
    let mut left = bytes;
    while left > 0 {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = left.min(chunk.len() as u64) as usize;
        out.write_all(&chunk[..n])
            .map_err(|e| format!("cannot write the file: {e}"))?;
        left -= n as u64;
    }
    Ok(())
}

/// One transfer: a receiver on a free port, then the sender. The time ends
/// when both have exited (the receiver last, once the file is in place).
fn transfer(ferry: &Path, dir: &Path, file: &Path, key: Option<&Path>) -> Result<Outcome, String> {
    let into = dir.join("received");
    let _ = fs::remove_dir_all(&into);
    let mut receive = Command::new(ferry);
    receive.args([
        "receive",
        "--listen",
        "127.0.0.1:0",
        "--once",
        "--progress",
        "off",
    ]);
    receive.arg("--dir").arg(&into);
    if let Some(key) = key {
        receive.arg("--key-file").arg(key);
    }
    let mut receiver = receive
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start ferry receive: {e}"))?;
    let address = match listening_address(&mut receiver) {
        Ok(a) => a,
        Err(e) => {
            let _ = receiver.kill();
            let _ = wait(&receiver);
            return Err(e);
        }
    };
    let mut send = Command::new(ferry);
    send.args(["send", "--progress", "off", "--quiet", "--to", &address]);
    if let Some(key) = key {
        send.arg("--key-file").arg(key);
    }
    send.arg(file);
    let start = Instant::now();
    let sender = send
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("cannot start ferry send: {e}"))?;
    let (send_ok, send_cpu) = wait(&sender)?;
    if !send_ok {
        // The receiver would wait for a session forever.
        let _ = receiver.kill();
    }
    let (receive_ok, recv_cpu) = wait(&receiver)?;
    let elapsed = start.elapsed();
    if !(send_ok && receive_ok) {
        return Err(format!(
            "the transfer failed (ferry send {}, ferry receive {})",
            if send_ok { "succeeded" } else { "failed" },
            if receive_ok { "succeeded" } else { "failed" }
        ));
    }
    let arrived = fs::metadata(into.join(file.file_name().unwrap_or_default()))
        .map_err(|e| format!("the received file is missing: {e}"))?
        .len();
    let expected = fs::metadata(file).map_err(|e| e.to_string())?.len();
    if arrived != expected {
        return Err(format!("received {arrived} bytes of {expected}"));
    }
    Ok(Outcome {
        elapsed,
        send_cpu,
        recv_cpu,
    })
}

/// Reads the receiver's stdout up to its `listening on ADDR` line.
fn listening_address(receiver: &mut Child) -> Result<String, String> {
    let stdout = receiver
        .stdout
        .take()
        .ok_or("ferry receive has no stdout")?;
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.map_err(|e| format!("reading ferry receive's output: {e}"))?;
        if let Some(rest) = line.split("listening on ").nth(1) {
            let address = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .trim_end_matches(',')
                .to_owned();
            // Keep draining its output so that it never blocks on a full pipe.
            std::thread::spawn(move || lines.for_each(drop));
            return Ok(address);
        }
    }
    Err("ferry receive exited without saying where it listens".to_owned())
}

/// Waits for `child` (which must not be waited for otherwise): whether it
/// exited with success, and its CPU time, user plus system.
pub(crate) fn wait(child: &Child) -> Result<(bool, Duration), String> {
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `usage` are valid and writable for the call;
        // `pid` is our own child, not yet reaped.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("waiting for child {pid}: {e}"));
        }
    }
    let ok = libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0;
    Ok((ok, crate::cpu::cpu_time(&usage)))
}
