//! `ferry diode-send-dir`: watches a directory and sends the files that land
//! in it, through `diode-send`, with the framing of [`super::file`].
//!
//! The directory is listed every `--interval-ms` (default 1000 ms). A file is
//! sent once it is complete: when its size and modification time did not
//! change between two listings. Only regular files directly in the
//! directory are considered; names starting with `.` are skipped (the
//! temporary files of most writers, and of `diode-receive-file`).
//!
//! Names matching an `--ignore` glob (Lidi's flag; repeatable, e.g.
//! `--ignore '*.tmp'`) are skipped too.
//!
//! Files go `--files-per-session` (Lidi's `--maximum-files`) at a time
//! (default 100) in one session (one connection to `diode-send`), oldest
//! first; a new session starts for the next ones. Without
//! `--maximum-delay`, a session ends as soon as the files of one listing
//! are in it. With `--maximum-delay MS`, a session stays open across
//! listings, taking the files that keep landing, and is cut once it holds
//! `--files-per-session` files or has been open for MS milliseconds —
//! whichever comes first: fewer, larger sessions. Each file goes on the
//! wire as soon as it is taken; the delay bounds how long until its session
//! ends and `--after-send` applies to it. Once `diode-send` confirms a session
//! (it closes the connection cleanly after its last datagram left),
//! `--after-send` applies to each of its files:
//!
//! - `keep` (the default): the file stays, remembered as sent (by size and
//!   modification time) until the program ends — it is sent again if it
//!   changes, or after a restart;
//! - `delete`: the file is deleted;
//! - `move:DIR`: the file is moved to DIR (created if missing), under a
//!   numbered name if one of that name is there already.
//!
//! A session that fails leaves its files in place; they are tried again at
//! the next listing. A file whose name cannot be sent is skipped with a
//! warning. With `--once`, what is in the directory now is sent
//! (without waiting for sizes to settle) and the program exits: 0 if
//! everything was sent, 1 otherwise.
//!
//! On SIGTERM or Ctrl-C no new file is taken: the file in progress is
//! finished and its session ended (confirmed, `--after-send` applied) within
//! the grace period (`--grace-period`); a session still going then is cut
//! (its files stay and are sent again next time) and the program exits 0
//! (130 with `--once`: not everything was sent).

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use clap::Args;
use tracing::{debug, info, warn};

use super::config::ConfigFile;
use super::file::{FileOptions, FileSession, persist, send_name};
use super::glob::Glob;
use crate::CliError;

/// Lidi's default `--ignore` regex: names starting with `.`, which Ferry
/// skips anyway.
const LIDI_HIDDEN: &str = r"^\..*$";

/// Parses an `--ignore` pattern: a glob, or Lidi's default regex.
fn ignore_pattern(s: &str) -> Result<Glob, String> {
    if s == LIDI_HIDDEN {
        return Ok(".*".parse().expect("a valid glob"));
    }
    s.parse().map_err(|e: super::glob::GlobError| e.to_string())
}

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
    #[arg(
        long,
        value_name = "TCP_ADDR",
        visible_alias = "to-tcp",
        alias = "to_tcp"
    )]
    pub to: SocketAddr,
    /// Files per session: a new session (connection) starts after this many.
    #[arg(long, value_name = "N", default_value_t = 100,
          visible_alias = "maximum-files", alias = "maximum_files",
          value_parser = clap::value_parser!(u32).range(1..))]
    pub files_per_session: u32,
    /// Keep a session open across listings for at most this many
    /// milliseconds, taking the files that land meanwhile, then cut it
    /// (default: each listing's files go at once).
    #[arg(long, value_name = "MS", alias = "maximum_delay",
          value_parser = clap::value_parser!(u64).range(1..))]
    pub maximum_delay: Option<u64>,
    /// Skip files whose name matches this glob (`*`, `?`, `[a-z]`;
    /// repeatable). Names starting with `.` are always skipped.
    #[arg(long, value_name = "GLOB", value_parser = ignore_pattern)]
    pub ignore: Vec<Glob>,
    /// Buffer size and Lidi's --hash.
    #[command(flatten)]
    pub options: FileOptions,
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
    /// How long to let the session in progress finish on a stop.
    #[command(flatten)]
    pub grace: crate::shutdown::GraceArgs,
    /// The Prometheus endpoint: sessions and files sent (while watching).
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsArgs,
}

/// What a running `diode-send-dir` sent so far, for its metrics.
#[derive(Debug, Default)]
pub struct DirCounters {
    /// Sessions sent and confirmed by diode-send.
    pub sessions: AtomicU64,
    /// Files in them.
    pub files: AtomicU64,
    /// Bytes of those files.
    pub bytes: AtomicU64,
    /// Sessions that failed (their files are tried again).
    pub failed_sessions: AtomicU64,
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

/// Lists the regular, non-hidden files of `dir` not matching `ignore`.
fn list(dir: &Path, ignore: &[Glob]) -> Result<HashMap<PathBuf, Stamp>, CliError> {
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
        let name = name.to_string_lossy();
        if name.starts_with('.') {
            continue;
        }
        if let Some(glob) = ignore.iter().find(|g| g.matches(&name)) {
            debug!(file = %name, pattern = %glob, "ignored");
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

/// A session open to `diode-send`, and the files in it.
struct Open {
    session: FileSession,
    opened: Instant,
    files: Vec<(PathBuf, Stamp)>,
}

/// What a run has done so far.
struct Progress<'a> {
    args: &'a DiodeSendDirArgs,
    counters: &'a DirCounters,
    report: DirReport,
    /// Files sent (with `--after-send keep`), as they were.
    sent: HashMap<PathBuf, Stamp>,
    /// The last failure, for `--once`.
    failed: Option<CliError>,
}

impl Progress<'_> {
    /// Ends `open`; on confirmation, applies `--after-send` to its files.
    fn finish(&mut self, open: Open) -> Result<(), CliError> {
        let count = open.files.len();
        match open.session.finish() {
            Ok(r) => {
                self.report.sessions += 1;
                self.report.files += r.files;
                self.report.bytes += r.bytes;
                self.counters.sessions.fetch_add(1, Ordering::Relaxed);
                self.counters
                    .files
                    .fetch_add(r.files as u64, Ordering::Relaxed);
                self.counters.bytes.fetch_add(r.bytes, Ordering::Relaxed);
                info!(files = r.files, bytes = r.bytes, "session sent");
                for (path, stamp) in open.files {
                    after_send(&self.args.after_send, &path)?;
                    if self.args.after_send == AfterSend::Keep {
                        self.sent.insert(path, stamp);
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, files = count, "session failed; its files stay and are tried again");
                self.counters
                    .failed_sessions
                    .fetch_add(1, Ordering::Relaxed);
                self.failed = Some(e);
            }
        }
        Ok(())
    }
}

/// Sends the directory's files until `stop` is set (or once, with
/// `args.once`).
pub fn send_dir(args: &DiodeSendDirArgs, stop: &AtomicBool) -> Result<DirReport, CliError> {
    send_dir_with(args, stop, &Mutex::new(None), &DirCounters::default())
}

/// [`send_dir`], keeping in `current` a handle on the connection of the
/// session open, so that another thread can cut it (`shutdown`), and
/// counting what it sent into `counters` as it goes.
pub fn send_dir_with(
    args: &DiodeSendDirArgs,
    stop: &AtomicBool,
    current: &Mutex<Option<TcpStream>>,
    counters: &DirCounters,
) -> Result<DirReport, CliError> {
    args.config.load()?;
    args.options.note_hash();
    if let AfterSend::Move(to) = &args.after_send {
        std::fs::create_dir_all(to).map_err(|e| CliError::Io {
            context: format!(
                "cannot create the directory {} (--after-send move:DIR): create it, or choose another",
                to.display()
            ),
            source: e,
        })?;
    }
    let mut progress = Progress {
        args,
        counters,
        report: DirReport::default(),
        sent: HashMap::new(),
        failed: None,
    };
    let mut previous: HashMap<PathBuf, Stamp> = HashMap::new();
    let mut open: Option<Open> = None;
    let interval = Duration::from_millis(args.interval_ms);
    let max_delay = args.maximum_delay.map(Duration::from_millis);
    loop {
        let listed = list(&args.dir, &args.ignore)?;
        progress
            .sent
            .retain(|path, stamp| listed.get(path) == Some(stamp));
        let in_session = |path: &PathBuf| {
            open.as_ref()
                .is_some_and(|o| o.files.iter().any(|(p, _)| p == path))
        };
        let mut ready: Vec<(PathBuf, Stamp)> = listed
            .iter()
            .filter(|(path, stamp)| {
                (args.once || previous.get(*path) == Some(*stamp))
                    && !progress.sent.contains_key(*path)
                    && !in_session(path)
            })
            .map(|(p, s)| (p.clone(), *s))
            .collect();
        // Oldest first, then by name.
        ready.sort_by(|a, b| (a.1.1, &a.0).cmp(&(b.1.1, &b.0)));
        for (path, stamp) in ready {
            let name = match send_name(&path) {
                Ok(name) => name,
                Err(e) => {
                    warn!(error = %e, "file skipped");
                    progress.failed = Some(e);
                    continue;
                }
            };
            let mut o = match open.take() {
                Some(o) => o,
                None => match FileSession::connect(args.to, &args.options) {
                    Ok(session) => {
                        *current.lock().unwrap_or_else(|e| e.into_inner()) =
                            session.interrupter().ok();
                        Open {
                            session,
                            opened: Instant::now(),
                            files: Vec::new(),
                        }
                    }
                    Err(e) => {
                        warn!(error = %e, "cannot open a session; the files are tried again");
                        progress.failed = Some(e);
                        break;
                    }
                },
            };
            if let Err(e) = o.session.send(&path, &name) {
                warn!(error = %e, files = o.files.len() + 1, "session aborted; its files stay and are tried again");
                o.session.abort();
                progress.failed = Some(e);
                break;
            }
            o.files.push((path, stamp));
            if o.files.len() >= args.files_per_session as usize {
                progress.finish(o)?;
            } else {
                open = Some(o);
            }
            if stop.load(Ordering::SeqCst) {
                break;
            }
        }
        let stopping = args.once || stop.load(Ordering::SeqCst);
        let cut = match (&open, max_delay) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(o), Some(d)) => stopping || o.opened.elapsed() >= d,
        };
        if cut {
            if let Some(o) = open.take() {
                progress.finish(o)?;
            }
        }
        if args.once {
            if stop.load(Ordering::SeqCst) {
                return Err(CliError::Interrupted);
            }
            return match progress.failed {
                Some(e) => Err(e),
                None => Ok(progress.report),
            };
        }
        previous = listed;
        // Sleep in small steps, to notice `stop`, and no later than the open
        // session's deadline.
        let wait = match (&open, max_delay) {
            (Some(o), Some(d)) => interval.min(d.saturating_sub(o.opened.elapsed())),
            _ => interval,
        };
        let mut slept = Duration::ZERO;
        while slept < wait {
            if stop.load(Ordering::SeqCst) {
                if let Some(o) = open.take() {
                    progress.finish(o)?;
                }
                return Ok(progress.report);
            }
            let step = (wait - slept).min(Duration::from_millis(50));
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
    let counters = Arc::new(DirCounters::default());
    let metrics = match args.metrics.metrics {
        Some(addr) => {
            let mut registry = crate::metrics::registry();
            let collector = crate::metrics::DirCollector(Arc::clone(&counters));
            registry.register_collector(Box::new(collector));
            Some(crate::metrics::start(addr, registry)?)
        }
        None => None,
    };
    if !args.once {
        writeln!(
            out,
            "diode-send-dir: watching {}, sending through diode-send at {}{}",
            args.dir.display(),
            args.to,
            crate::metrics::start_line(&metrics)
        )?;
        out.flush()?;
    }
    let shutdown = crate::shutdown::signals()?;
    let grace = args.grace.resolve(None);
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicBool::new(false));
    let current = Arc::new(Mutex::new(None));
    {
        let (stop, done, current) = (stop.clone(), done.clone(), current.clone());
        std::thread::Builder::new()
            .name("diode-send-dir-stop".into())
            .spawn(move || watch_stop(shutdown, grace, &stop, &done, &current))
            .map_err(|e| CliError::Io {
                context: "cannot start a thread".into(),
                source: e,
            })?;
    }
    let report = send_dir_with(args, &stop, &current, &counters);
    done.store(true, Ordering::SeqCst);
    let report = report?;
    writeln!(
        out,
        "sent {} ({} bytes) in {}",
        crate::counted(report.files as u64, "file", "files"),
        report.bytes,
        crate::counted(report.sessions as u64, "session", "sessions")
    )?;
    Ok(())
}

/// On a signal: sets `stop`, and cuts the session in progress if the run
/// is not `done` within `grace`.
fn watch_stop(
    shutdown: &crate::shutdown::Shutdown,
    grace: Duration,
    stop: &AtomicBool,
    done: &AtomicBool,
    current: &Mutex<Option<TcpStream>>,
) {
    const STEP: Duration = Duration::from_millis(20);
    let signal = loop {
        if done.load(Ordering::SeqCst) {
            return;
        }
        if let Some(signal) = shutdown.requested() {
            break signal;
        }
        std::thread::sleep(STEP);
    };
    stop.store(true, Ordering::SeqCst);
    info!(
        signal = signal.name(),
        ?grace,
        "stopping: no new files; the session in progress may finish"
    );
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if done.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(STEP.min(deadline.saturating_duration_since(Instant::now())));
    }
    if done.load(Ordering::SeqCst) {
        return;
    }
    if let Some(stream) = current.lock().unwrap_or_else(|e| e.into_inner()).take() {
        warn!(
            "grace period over: the session in progress is cut; its files stay and are sent again next time"
        );
        let _ = stream.shutdown(std::net::Shutdown::Both);
    }
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
