//! `ferry diode-send-file` and `ferry diode-receive-file`: files across the
//! diode, over the TCP connections of `diode-send` and `diode-receive`.
//!
//! # Framing
//!
//! One connection (one diode session) carries any number of files, back to
//! back, each a header ([`FileHeader`]: name, size, BLAKE3 digest, mode and
//! modification time — see [`super::frame`]) and then its bytes. The stream
//! ends after the last file (the connection's clean end). A stream that ends
//! or is reset inside a header or a file's content ends the connection;
//! files completed before that are kept (each was checked on its own), the
//! one in progress is discarded.
//!
//! # Receiving
//!
//! Each file is written to a temporary file in the directory,
//! `.NAME.ferry-part-RANDOM`, and given its final name only once its size and
//! BLAKE3 digest match; a file cut short, reset or mismatched is deleted.
//! Before it is named, it gets the sender's modification time and
//! permission bits (`rwx` for user, group and others; setuid, setgid and
//! sticky are never restored across a diode). Metadata the sender did not
//! know is left as created.
//!
//! Names are checked: only the final component of a path is kept (`a/b/c`
//! and `../../c` both become `c`, `\` counting as a separator too), and a
//! name that is empty, `.` or `..`, contains NUL or another control
//! character, or is longer than 255 bytes is refused — the file's bytes are
//! skipped and the next file is read.
//!
//! An existing file is never overwritten: the new one gets a numbered name,
//! `report.1.pdf`, `report.2.pdf`, … (`notes.1` without an extension), and a
//! warning is logged.
//!
//! On SIGTERM or Ctrl-C `diode-receive-file` stops accepting connections,
//! lets those in progress end for the grace period (`--grace-period`), then
//! cuts the rest (their partial files are deleted) and exits 0.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use tracing::{debug, info, warn};

use super::config::ConfigFile;
use super::{AcceptLoop, bind_tcp, random_u64, reset};
use crate::CliError;

use super::frame::mode_of;
pub use super::frame::{FileHeader, FrameError, MAGIC, MAX_NAME, VERSION, sanitize_name};

/// Bytes copied at a time unless `--buffer-size` says otherwise.
pub const DEFAULT_BUFFER: usize = 256 * 1024;
/// How long connecting to `diode-send` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The flags every file tool shares with Lidi's.
#[derive(Debug, Clone, Args)]
pub struct FileOptions {
    /// Bytes read from files and written to the connection at a time
    /// (Lidi's --buffer-size).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_BUFFER,
          alias = "buffer_size",
          value_parser = buffer_size)]
    pub buffer_size: usize,
    /// Accepted for Lidi: Ferry always sends and checks a BLAKE3 digest of
    /// every file, end to end.
    #[arg(long)]
    pub hash: bool,
}

/// Parses `--buffer-size`: 1 byte to 1 GiB.
fn buffer_size(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1 << 30).contains(&n) => Ok(n),
        Ok(n) => Err(format!("{n} is outside 1..=1073741824 bytes")),
        Err(e) => Err(format!("`{s}` is not a number of bytes: {e}")),
    }
}

impl Default for FileOptions {
    fn default() -> Self {
        Self {
            buffer_size: DEFAULT_BUFFER,
            hash: false,
        }
    }
}

impl FileOptions {
    /// Notes `--hash` (a no-op: digests are always on).
    pub(crate) fn note_hash(&self) {
        if self.hash {
            info!("--hash: Ferry always checks every file's BLAKE3 digest end to end");
        }
    }
}

// ---------------------------------------------------------------------------
// Sending

/// Arguments of `ferry diode-send-file`.
#[derive(Debug, Clone, Args)]
pub struct DiodeSendFileArgs {
    /// Files to send, in one session; each arrives under its file name.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// TCP address of `ferry diode-send --listen`.
    #[arg(
        long,
        value_name = "TCP_ADDR",
        visible_alias = "to-tcp",
        alias = "to_tcp"
    )]
    pub to: SocketAddr,
    /// Buffer size and Lidi's --hash.
    #[command(flatten)]
    pub options: FileOptions,
    /// The settings file (checked, for one file shared by every tool).
    #[command(flatten)]
    pub config: ConfigFile,
}

/// What a sending did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Files sent.
    pub files: usize,
    /// Bytes of their content.
    pub bytes: u64,
}

fn file_error(path: &Path, what: &str, e: io::Error) -> CliError {
    CliError::Io {
        context: format!("cannot {what} {}", path.display()),
        source: e,
    }
}

/// Hashes a file; returns its size and digest.
fn digest_file(path: &Path, buf: &mut [u8]) -> io::Result<(u64, [u8; 32])> {
    let mut hasher = blake3::Hasher::new();
    let mut file = File::open(path)?;
    let mut size = 0u64;
    loop {
        match file.read(buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&buf[..n]);
                size += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok((size, *hasher.finalize().as_bytes()))
}

/// The name `path` is sent under, or why it cannot be sent.
pub fn send_name(path: &Path) -> Result<String, CliError> {
    let meta = std::fs::metadata(path).map_err(|e| file_error(path, "read", e))?;
    if !meta.is_file() {
        return Err(CliError::Invalid(format!(
            "{} is not a regular file: give files (diode-send-dir sends a directory)",
            path.display()
        )));
    }
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(sanitize_name)
        .ok_or_else(|| {
            CliError::Invalid(format!(
                "{} has no usable file name (UTF-8, no control characters, at most {MAX_NAME} bytes): rename it",
                path.display()
            ))
        })
}

/// One session to `diode-send`, open: files are sent into it one by one,
/// then it is [finished](Self::finish) (or [aborted](Self::abort)).
#[derive(Debug)]
pub struct FileSession {
    to: SocketAddr,
    out: BufWriter<TcpStream>,
    buf: Vec<u8>,
    report: SendReport,
}

impl FileSession {
    /// Connects to the `diode-send` at `to`: a new session.
    pub fn connect(to: SocketAddr, options: &FileOptions) -> Result<Self, CliError> {
        let stream =
            TcpStream::connect_timeout(&to, CONNECT_TIMEOUT).map_err(|e| CliError::Io {
                context: format!(
                    "cannot connect to {to}: start `ferry diode-send --listen {to}` first"
                ),
                source: e,
            })?;
        let size = options.buffer_size.max(1);
        Ok(Self {
            to,
            out: BufWriter::with_capacity(size, stream),
            buf: vec![0u8; size],
            report: SendReport::default(),
        })
    }

    /// What was sent so far.
    pub fn report(&self) -> SendReport {
        self.report
    }

    /// Sends one file under `name` (see [`send_name`]) and flushes it to
    /// `diode-send`, which puts it on the wire even while the session stays
    /// open. After an error the stream is broken: [abort](Self::abort) the
    /// session.
    pub fn send(&mut self, path: &Path, name: &str) -> Result<u64, CliError> {
        let meta = std::fs::metadata(path).map_err(|e| file_error(path, "read", e))?;
        let (size, digest) =
            digest_file(path, &mut self.buf).map_err(|e| file_error(path, "read", e))?;
        let header = FileHeader {
            name: name.to_owned(),
            size,
            digest,
            mode: mode_of(&meta),
            modified: meta.modified().ok(),
        };
        let net = |e| CliError::Io {
            context: "cannot write to diode-send".into(),
            source: e,
        };
        self.out.write_all(&header.encode()).map_err(net)?;
        let mut file = File::open(path).map_err(|e| file_error(path, "open", e))?;
        let mut left = size;
        while left > 0 {
            let want = (left as usize).min(self.buf.len());
            let n = match file.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(CliError::Invalid(format!(
                        "{} shrank while it was being sent: send it again once it is complete",
                        path.display()
                    )));
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(file_error(path, "read", e)),
            };
            self.out.write_all(&self.buf[..n]).map_err(net)?;
            left -= n as u64;
        }
        // On its way now, even if the session stays open for more files.
        self.out.flush().map_err(net)?;
        self.report.files += 1;
        self.report.bytes += size;
        debug!(file = %path.display(), size, "file sent");
        Ok(size)
    }

    /// Ends the session and waits until `diode-send` says every byte is on
    /// the wire (it closes the connection cleanly once the session's last
    /// datagram left).
    pub fn finish(self) -> Result<SendReport, CliError> {
        let to = self.to;
        let report = self.report;
        let stream = match self.out.into_inner() {
            Ok(stream) => stream,
            Err(e) => {
                let (e, out) = e.into_parts();
                reset(out.into_parts().0);
                return Err(CliError::Io {
                    context: "cannot write to diode-send".into(),
                    source: e,
                });
            }
        };
        if let Err(e) = stream.shutdown(Shutdown::Write) {
            reset(stream);
            return Err(CliError::Io {
                context: format!("cannot end the stream to {to}"),
                source: e,
            });
        }
        wait_for_close(&stream, to)?;
        Ok(report)
    }

    /// A handle on the connection, to cut it from another thread
    /// (`shutdown`): the session's blocked writes and waits then fail.
    pub fn interrupter(&self) -> io::Result<TcpStream> {
        self.out.get_ref().try_clone()
    }

    /// Resets the connection: `diode-send` aborts the session, and nothing
    /// of it is kept on the far side but the files already complete.
    pub fn abort(self) {
        let (stream, _) = self.out.into_parts();
        reset(stream);
    }
}

/// Sends `files` in one session through the `diode-send` at `to`, and waits
/// until it says every byte is on the wire.
///
/// On any failure the connection is reset, so `diode-send` aborts the
/// session and nothing of it is kept on the far side but the files already
/// complete.
pub fn send_files(to: SocketAddr, files: &[PathBuf]) -> Result<SendReport, CliError> {
    send_files_with(to, files, &FileOptions::default())
}

/// [`send_files`] with a buffer size.
pub fn send_files_with(
    to: SocketAddr,
    files: &[PathBuf],
    options: &FileOptions,
) -> Result<SendReport, CliError> {
    let names = files
        .iter()
        .map(|p| send_name(p))
        .collect::<Result<Vec<_>, _>>()?;
    let mut session = FileSession::connect(to, options)?;
    for (path, name) in files.iter().zip(&names) {
        if let Err(e) = session.send(path, name) {
            session.abort();
            return Err(e);
        }
    }
    session.finish()
}

/// Waits for `diode-send` to close the connection: cleanly once the session
/// went out, with a reset if it was aborted.
fn wait_for_close(mut stream: &TcpStream, to: SocketAddr) -> Result<(), CliError> {
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(CliError::Io {
                    context: format!(
                        "diode-send at {to} did not confirm the session (it aborted it; see its log), send again"
                    ),
                    source: e,
                });
            }
        }
    }
}

/// Runs `ferry diode-send-file`.
pub fn run_send(args: &DiodeSendFileArgs, out: &mut dyn Write) -> Result<(), CliError> {
    args.config.load()?;
    args.options.note_hash();
    let report = send_files_with(args.to, &args.files, &args.options)?;
    writeln!(
        out,
        "sent {} ({} bytes) through diode-send at {}",
        crate::counted(report.files as u64, "file", "files"),
        report.bytes,
        args.to
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Receiving

/// Arguments of `ferry diode-receive-file`.
#[derive(Debug, Clone, Args)]
pub struct DiodeReceiveFileArgs {
    /// TCP address to accept `ferry diode-receive`'s connections on.
    #[arg(long, value_name = "TCP_ADDR", visible_aliases = ["from-tcp", "bind-tcp", "from"],
          aliases = ["from_tcp", "bind_tcp"])]
    pub listen: SocketAddr,
    /// Directory to write the received files to (created if missing).
    #[arg(long = "dir", value_name = "DIR", required_unless_present = "output")]
    pub dir: Option<PathBuf>,
    /// The directory, as Lidi gives it: without `--dir`.
    #[arg(value_name = "DIR", conflicts_with = "dir")]
    pub output: Option<PathBuf>,
    /// Buffer size and Lidi's --hash.
    #[command(flatten)]
    pub options: FileOptions,
    /// The settings file (checked, for one file shared by every tool).
    #[command(flatten)]
    pub config: ConfigFile,
    /// How long to let connections in progress end on a stop.
    #[command(flatten)]
    pub grace: crate::shutdown::GraceArgs,
    /// The Prometheus endpoint: files saved, discarded, refused.
    #[command(flatten)]
    pub metrics: crate::metrics::MetricsArgs,
}

/// Counters of a [`ReceiveFileServer`].
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    ended: AtomicU64,
    saved: AtomicU64,
    discarded: AtomicU64,
    refused: AtomicU64,
}

impl Counters {
    fn stats(&self) -> ReceiveFileStats {
        ReceiveFileStats {
            connections: self.connections.load(Ordering::SeqCst),
            ended: self.ended.load(Ordering::SeqCst),
            saved: self.saved.load(Ordering::SeqCst),
            discarded: self.discarded.load(Ordering::SeqCst),
            refused: self.refused.load(Ordering::SeqCst),
        }
    }
}

/// What a [`ReceiveFileServer`] did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReceiveFileStats {
    /// Connections (sessions) accepted.
    pub connections: u64,
    /// Of those, connections that ended (cleanly or not) and were dealt with.
    pub ended: u64,
    /// Files saved under their name, complete and checked.
    pub saved: u64,
    /// Files deleted: cut short, reset, or not matching their digest.
    pub discarded: u64,
    /// Files refused for their name.
    pub refused: u64,
}

/// A running `diode-receive-file`.
#[derive(Debug)]
pub struct ReceiveFileServer {
    accept: AcceptLoop,
    counters: Arc<Counters>,
    /// The connections in progress, to cut them on a stop.
    open: Arc<Mutex<HashMap<u64, TcpStream>>>,
    in_flight: Arc<crate::shutdown::InFlight>,
    metrics: Option<crate::metrics::MetricsServer>,
}

impl ReceiveFileServer {
    /// Creates the directory if needed and starts accepting connections.
    pub fn start(args: &DiodeReceiveFileArgs) -> Result<Self, CliError> {
        args.config.load()?;
        args.options.note_hash();
        let buffer = args.options.buffer_size.max(1);
        let dir = args.output_dir()?;
        let dir_shown = dir.clone();
        std::fs::create_dir_all(&dir).map_err(|e| CliError::Io {
            context: format!(
                "cannot create the directory {}: create it, or choose another --dir",
                dir.display()
            ),
            source: e,
        })?;
        // Fail now rather than at the first file if the directory is not
        // writable.
        let probe = dir.join(format!(".ferry-probe-{:016x}", random_u64()));
        File::create_new(&probe).map_err(|e| CliError::Io {
            context: format!(
                "cannot write in the directory {}: fix its permissions, or choose another --dir",
                dir.display()
            ),
            source: e,
        })?;
        let _ = std::fs::remove_file(&probe);
        let listener = bind_tcp(args.listen, "--listen")?;
        let counters = Arc::new(Counters::default());
        let shared = Arc::clone(&counters);
        let open = Arc::new(Mutex::new(HashMap::new()));
        let in_flight = crate::shutdown::InFlight::new();
        let (registry, counted) = (Arc::clone(&open), Arc::clone(&in_flight));
        let accept = AcceptLoop::spawn(listener, "diode-receive-file", move |stream, peer| {
            let id = shared.connections.fetch_add(1, Ordering::SeqCst);
            let dir = dir.clone();
            let counters = Arc::clone(&shared);
            let busy = counted.enter();
            if let Ok(clone) = stream.try_clone() {
                lock(&registry).insert(id, clone);
            }
            let registry = Arc::clone(&registry);
            let spawned = std::thread::Builder::new()
                .name("diode-receive-file-conn".into())
                .spawn(move || {
                    receive_connection(stream, peer, &dir, buffer, &counters);
                    lock(&registry).remove(&id);
                    counters.ended.fetch_add(1, Ordering::SeqCst);
                    drop(busy);
                });
            if let Err(e) = spawned {
                warn!(error = %e, %peer, "cannot start a thread for the connection; refused");
            }
        })?;
        info!(tcp = %accept.addr(), dir = %dir_shown.display(), "diode-receive-file started");
        let metrics = match args.metrics.metrics {
            Some(addr) => {
                let mut registry = crate::metrics::registry();
                let source = Arc::clone(&counters);
                registry.register_collector(Box::new(crate::metrics::FilesCollector::new(
                    move || source.stats(),
                )));
                Some(crate::metrics::start(addr, registry)?)
            }
            None => None,
        };
        Ok(Self {
            accept,
            counters,
            open,
            in_flight,
            metrics,
        })
    }

    /// The TCP address accepting connections.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.accept.addr()
    }

    /// What was received so far.
    pub fn stats(&self) -> ReceiveFileStats {
        self.counters.stats()
    }

    /// Where the Prometheus metrics are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics
            .as_ref()
            .map(crate::metrics::MetricsServer::addr)
    }

    /// Stops accepting connections (those in progress go on).
    pub fn stop(mut self) {
        self.accept.stop();
    }

    /// Serves until the process ends.
    pub fn wait(self) {
        self.accept.wait();
    }

    /// Stops gracefully: stops accepting, tells `announce` how many
    /// connections are in progress, lets them end for at most `grace`, then
    /// cuts the rest (their partial files are deleted). Returns how many
    /// were cut.
    pub fn stop_gracefully(mut self, grace: Duration, announce: impl FnOnce(usize)) -> usize {
        self.accept.stop();
        announce(self.in_flight.count());
        if self.in_flight.wait_idle(grace) {
            return 0;
        }
        let cut = self.in_flight.count();
        warn!(
            connections = cut,
            "grace period over: the connections still in progress are cut, their partial files deleted"
        );
        for stream in lock(&self.open).values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
        if !self.in_flight.wait_idle(Duration::from_secs(5)) {
            warn!("connections still busy after being cut: exiting anyway");
        }
        cut
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `ferry diode-receive-file` until the process is stopped.
pub fn run_receive(args: &DiodeReceiveFileArgs, out: &mut dyn Write) -> Result<(), CliError> {
    // Before the first line: whoever reads it may signal at once.
    let shutdown = crate::shutdown::signals()?;
    let server = ReceiveFileServer::start(args)?;
    writeln!(
        out,
        "diode-receive-file: accepting TCP on {}, writing files to {}{}",
        server.tcp_addr(),
        args.output_dir()?.display(),
        crate::metrics::start_line(&server.metrics)
    )?;
    out.flush()?;
    let signal = shutdown.wait();
    let grace = args.grace.resolve(None);
    server.stop_gracefully(grace, |count| {
        let line = crate::shutdown::stop_line(
            signal,
            count as u64,
            ("connection", "connections"),
            grace,
            "no new connections; files in progress may complete",
        );
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    });
    Ok(())
}

impl DiodeReceiveFileArgs {
    /// The directory files are written to: `--dir`, or the positional
    /// `DIR` Lidi's diode-receive-file takes.
    pub fn output_dir(&self) -> Result<PathBuf, CliError> {
        self.dir
            .clone()
            .or_else(|| self.output.clone())
            .ok_or_else(|| {
                CliError::Invalid("no directory to write files to: give --dir DIR (or DIR)".into())
            })
    }
}

/// Gives the file the sender's modification time and permission bits
/// (`rwx` only: setuid, setgid and sticky are not restored). Failure only
/// costs the metadata: logged, not fatal.
fn restore_metadata(file: &File, header: &FileHeader) {
    if let Some(t) = header.modified {
        if let Err(e) = file.set_modified(t) {
            warn!(name = %header.name, error = %e, "cannot set the modification time");
        }
    }
    #[cfg(unix)]
    if let Some(mode) = header.mode {
        use std::os::unix::fs::PermissionsExt;
        let perms = std::fs::Permissions::from_mode(mode & 0o777);
        if let Err(e) = file.set_permissions(perms) {
            warn!(name = %header.name, error = %e, "cannot set the permissions");
        }
    }
}

/// A temporary file, deleted when dropped unless kept.
#[derive(Debug)]
struct Partial {
    path: PathBuf,
    keep: bool,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.keep {
            if let Err(e) = std::fs::remove_file(&self.path) {
                warn!(file = %self.path.display(), error = %e, "cannot delete a partial file");
            }
        }
    }
}

/// How one file ended.
#[derive(Debug)]
enum Received {
    Saved(PathBuf),
    Mismatch,
    Refused,
}

fn receive_connection(
    stream: TcpStream,
    peer: SocketAddr,
    dir: &Path,
    buffer: usize,
    counters: &Counters,
) {
    let mut reader = BufReader::with_capacity(buffer, &stream);
    let mut files = 0u64;
    loop {
        let header = match FileHeader::read(&mut reader) {
            Ok(Some(header)) => header,
            Ok(None) => {
                debug!(%peer, files, "connection ended cleanly");
                return;
            }
            Err(e) => {
                warn!(%peer, error = %e, "connection ended early: nothing more is kept from it");
                return;
            }
        };
        match receive_file(&mut reader, dir, &header, buffer) {
            Ok(Received::Saved(path)) => {
                files += 1;
                counters.saved.fetch_add(1, Ordering::SeqCst);
                info!(file = %path.display(), size = header.size, "file received");
            }
            Ok(Received::Mismatch) => {
                counters.discarded.fetch_add(1, Ordering::SeqCst);
                warn!(name = %header.name, "file does not match its digest (changed while it was sent?): deleted");
            }
            Ok(Received::Refused) => {
                counters.refused.fetch_add(1, Ordering::SeqCst);
                warn!(name = ?header.name, "file refused: its name is not a plain file name; skipped");
            }
            Err(e) => {
                counters.discarded.fetch_add(1, Ordering::SeqCst);
                warn!(%peer, name = %header.name, error = %e, "connection ended inside a file (session lost or cut): partial file deleted");
                return;
            }
        }
    }
}

/// Receives one file's content after its header.
fn receive_file(
    reader: &mut impl Read,
    dir: &Path,
    header: &FileHeader,
    buffer: usize,
) -> io::Result<Received> {
    let Some(name) = sanitize_name(&header.name) else {
        let skipped = io::copy(&mut reader.take(header.size), &mut io::sink())?;
        if skipped < header.size {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        return Ok(Received::Refused);
    };
    if name != header.name {
        warn!(sent = ?header.name, saved_as = %name, "file name reduced to its final component");
    }
    let short: String = name.chars().take(64).collect();
    let partial = Partial {
        path: dir.join(format!(".{short}.ferry-part-{:016x}", random_u64())),
        keep: false,
    };
    let file = File::create_new(&partial.path)?;
    let mut out = BufWriter::with_capacity(buffer, file);
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; buffer];
    let mut left = header.size;
    while left > 0 {
        let want = (left as usize).min(buf.len());
        let n = match reader.read(&mut buf[..want]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])?;
        left -= n as u64;
    }
    if hasher.finalize().as_bytes() != &header.digest {
        return Ok(Received::Mismatch);
    }
    let file = out.into_inner().map_err(|e| e.into_error())?;
    restore_metadata(&file, header);
    file.sync_all()?;
    drop(file);
    let mut partial = partial;
    let (path, moved) = persist(&partial.path, dir, &name)?;
    // Unless moved, the content lives under its final name too now: the
    // guard removes the temporary name.
    partial.keep = moved;
    Ok(Received::Saved(path))
}

/// Gives `temp`'s content the name `name` in `dir`, or a numbered variant
/// if that exists; never overwrites. Returns the final path, and whether
/// `temp` itself was moved there (otherwise it is still to be removed).
pub(crate) fn persist(temp: &Path, dir: &Path, name: &str) -> io::Result<(PathBuf, bool)> {
    let (stem, ext) = split_name(name);
    for n in 0..100_000u32 {
        let candidate = match (n, ext) {
            (0, _) => name.to_owned(),
            (n, Some(ext)) => format!("{stem}.{n}.{ext}"),
            (n, None) => format!("{stem}.{n}"),
        };
        let target = dir.join(&candidate);
        // A hard link fails if the target exists: no race with another
        // writer, no overwrite.
        let moved = match std::fs::hard_link(temp, &target) {
            Ok(()) => false,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => {
                // No hard links on this file system: check, then rename.
                if target.exists() {
                    continue;
                }
                debug!(error = %e, "hard link failed; renaming");
                std::fs::rename(temp, &target)?;
                true
            }
        };
        if n > 0 {
            warn!(name, saved_as = %candidate, "a file of that name exists: saved under a numbered name");
        }
        return Ok((target, moved));
    }
    Err(io::Error::other(format!(
        "no free name for {name}: clear out the numbered copies"
    )))
}

/// `report.pdf` → (`report`, `pdf`); `.bashrc` and `notes` have no extension.
fn split_name(name: &str) -> (&str, Option<&str>) {
    match name.rfind('.') {
        Some(i) if i > 0 && i + 1 < name.len() => (&name[..i], Some(&name[i + 1..])),
        _ => (name, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbered_names() {
        assert_eq!(split_name("report.pdf"), ("report", Some("pdf")));
        assert_eq!(split_name("archive.tar.gz"), ("archive.tar", Some("gz")));
        assert_eq!(split_name(".bashrc"), (".bashrc", None));
        assert_eq!(split_name("notes"), ("notes", None));
        assert_eq!(split_name("trailing."), ("trailing.", None));
    }
}
