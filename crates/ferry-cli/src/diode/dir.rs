//! `ferry diode-send-dir`: watches a directory and sends the files that land
//! in it, through `diode-send`, with the framing of [`super::file`].
//!
//! The directory is listed every `--interval-ms` (default 1000 ms). A file is
//! sent once it is complete: when its size and modification time did not
//! change between two listings. Only regular files directly in the
//! directory are considered; names starting with `.` are skipped (the
//! temporary files of most writers, and of `diode-receive-file`).
//!
//! Files go `--files-per-session` at a time (default 100) in one session (one
//! connection to `diode-send`), oldest first; a new session starts for the
//! next ones. Once `diode-send` confirms a session (it closes the connection
//! cleanly after its last datagram left), `--after-send` applies to each of
//! its files:
//!
//! - `keep` (the default): the file stays, remembered as sent (by size and
//!   modification time) until the program ends — it is sent again if it
//!   changes, or after a restart;
//! - `delete`: the file is deleted;
//! - `move:DIR`: the file is moved to DIR (created if missing), under a
//!   numbered name if one of that name is there already.
//!
//! A session that fails leaves its files in place; they are tried again at
//! the next listing. With `--once`, what is in the directory now is sent
//! (without waiting for sizes to settle) and the program exits: 0 if
//! everything was sent, 1 otherwise.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use clap::Args;
use tracing::{info, warn};

use super::config::ConfigFile;
use super::file::{persist, send_files};
use crate::CliError;

/// What becomes of a file once sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterSend {
    /// Left in place, remembered as sent.
    Keep,
    /// Deleted.
    Delete,
    /// Moved to this directory.
    Move(PathBuf),
}

impl FromStr for AfterSend {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "keep" => Ok(Self::Keep),
            "delete" => Ok(Self::Delete),
            _ => match s.strip_prefix("move:") {
                Some(dir) if !dir.is_empty() => Ok(Self::Move(PathBuf::from(dir))),
                _ => Err(format!(
                    "`{s}` is not one of keep, delete, move:DIR (e.g. move:/var/spool/sent)"
                )),
            },
        }
    }
}

/// Arguments of `ferry diode-send-dir`.
#[derive(Debug, Clone, Args)]
pub struct DiodeSendDirArgs {
    /// The directory to watch.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// TCP address of `ferry diode-send --listen`.
    #[arg(long, value_name = "TCP_ADDR")]
    pub to: SocketAddr,
    /// Files per session: a new session (connection) starts after this many.
    #[arg(long, value_name = "N", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub files_per_session: u32,
    /// What to do with a file once sent: keep, delete, or move:DIR.
    #[arg(long, value_name = "ACTION", default_value = "keep")]
    pub after_send: AfterSend,
    /// Send what is in the directory now, then exit.
    #[arg(long)]
    pub once: bool,
    /// Milliseconds between two listings of the directory.
    #[arg(long, value_name = "MS", default_value_t = 1000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub interval_ms: u64,
    /// The settings file (checked, for one file shared by every tool).
    #[command(flatten)]
    pub config: ConfigFile,
}

/// What a run sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DirReport {
    /// Sessions sent.
    pub sessions: usize,
    /// Files sent.
    pub files: usize,
    /// Bytes of their content.
    pub bytes: u64,
}

/// A file as listed: size and modification time.
type Stamp = (u64, Option<SystemTime>);

/// Lists the regular, non-hidden files of `dir`.
fn list(dir: &Path) -> Result<HashMap<PathBuf, Stamp>, CliError> {
    let entries = std::fs::read_dir(dir).map_err(|e| CliError::Io {
        context: format!(
            "cannot list the directory {}: check that it exists and is readable",
            dir.display()
        ),
        source: e,
    })?;
    let mut files = HashMap::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let path = entry.path();
        // Follows symbolic links: a link to a file is sent as that file.
        let Ok(meta) = std::fs::metadata(&path) else {
            continue;
        };
        if meta.is_file() {
            files.insert(path, (meta.len(), meta.modified().ok()));
        }
    }
    Ok(files)
}

/// Sends the directory's files until `stop` is set (or once, with
/// `args.once`).
pub fn send_dir(args: &DiodeSendDirArgs, stop: &AtomicBool) -> Result<DirReport, CliError> {
    args.config.load()?;
    if let AfterSend::Move(to) = &args.after_send {
        std::fs::create_dir_all(to).map_err(|e| CliError::Io {
            context: format!(
                "cannot create the directory {} (--after-send move:DIR): create it, or choose another",
                to.display()
            ),
            source: e,
        })?;
    }
    let mut report = DirReport::default();
    let mut previous: HashMap<PathBuf, Stamp> = HashMap::new();
    let mut sent: HashMap<PathBuf, Stamp> = HashMap::new();
    let interval = Duration::from_millis(args.interval_ms);
    loop {
        let listed = list(&args.dir)?;
        sent.retain(|path, stamp| listed.get(path) == Some(stamp));
        let mut ready: Vec<(&PathBuf, &Stamp)> = listed
            .iter()
            .filter(|(path, stamp)| {
                (args.once || previous.get(*path) == Some(*stamp)) && !sent.contains_key(*path)
            })
            .collect();
        // Oldest first, then by name.
        ready.sort_by(|a, b| (a.1.1, a.0).cmp(&(b.1.1, b.0)));
        let mut failed = None;
        for batch in ready.chunks(args.files_per_session as usize) {
            let paths: Vec<PathBuf> = batch.iter().map(|(p, _)| (*p).clone()).collect();
            match send_files(args.to, &paths) {
                Ok(r) => {
                    report.sessions += 1;
                    report.files += r.files;
                    report.bytes += r.bytes;
                    info!(files = r.files, bytes = r.bytes, "session sent");
                    for (path, stamp) in batch {
                        after_send(&args.after_send, path)?;
                        if args.after_send == AfterSend::Keep {
                            sent.insert((*path).clone(), **stamp);
                        }
                    }
                }
                Err(e) => {
                    warn!(error = %e, files = paths.len(), "session failed; its files stay and are tried again");
                    failed = Some(e);
                    break;
                }
            }
            if stop.load(Ordering::SeqCst) {
                break;
            }
        }
        if args.once {
            return match failed {
                Some(e) => Err(e),
                None => Ok(report),
            };
        }
        previous = listed;
        // Sleep in small steps, to notice `stop`.
        let mut slept = Duration::ZERO;
        while slept < interval {
            if stop.load(Ordering::SeqCst) {
                return Ok(report);
            }
            let step = (interval - slept).min(Duration::from_millis(50));
            std::thread::sleep(step);
            slept += step;
        }
    }
}

fn after_send(action: &AfterSend, path: &Path) -> Result<(), CliError> {
    match action {
        AfterSend::Keep => Ok(()),
        AfterSend::Delete => std::fs::remove_file(path).map_err(|e| CliError::Io {
            context: format!(
                "sent {} but cannot delete it: fix the directory's permissions (it will be sent again otherwise)",
                path.display()
            ),
            source: e,
        }),
        AfterSend::Move(to) => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let moved = |e| CliError::Io {
                context: format!(
                    "sent {} but cannot move it to {}: fix the permissions (it will be sent again otherwise)",
                    path.display(),
                    to.display()
                ),
                source: e,
            };
            let (_, moved_itself) = persist(path, to, &name).map_err(moved)?;
            if !moved_itself {
                std::fs::remove_file(path).map_err(moved)?;
            }
            Ok(())
        }
    }
}

/// Runs `ferry diode-send-dir`: until the process is stopped, or once.
pub fn run(args: &DiodeSendDirArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if !args.once {
        writeln!(
            out,
            "diode-send-dir: watching {}, sending through diode-send at {}",
            args.dir.display(),
            args.to
        )?;
        out.flush()?;
    }
    let stop = AtomicBool::new(false);
    let report = send_dir(args, &stop)?;
    writeln!(
        out,
        "sent {} ({} bytes) in {}",
        crate::counted(report.files as u64, "file", "files"),
        report.bytes,
        crate::counted(report.sessions as u64, "session", "sessions")
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_send_parses() {
        assert_eq!("keep".parse::<AfterSend>(), Ok(AfterSend::Keep));
        assert_eq!("delete".parse::<AfterSend>(), Ok(AfterSend::Delete));
        assert_eq!(
            "move:/tmp/x".parse::<AfterSend>(),
            Ok(AfterSend::Move("/tmp/x".into()))
        );
        assert!("move:".parse::<AfterSend>().is_err());
        assert!("shred".parse::<AfterSend>().is_err());
    }
}
