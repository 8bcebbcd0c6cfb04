//! `ferry diode-send-file` and `ferry diode-receive-file`: files across the
//! diode, over the TCP connections of `diode-send` and `diode-receive`.
//!
//! # Framing
//!
//! One connection (one diode session) carries any number of files, back to
//! back, each a header and then its bytes:
//!
//! ```text
//! magic    4 bytes   "FRYF"
//! version  1 byte    1
//! name_len 2 bytes   u16, big-endian, 1..=255
//! name     name_len  UTF-8: the file's name (its final path component)
//! size     8 bytes   u64, big-endian: bytes of content
//! digest   32 bytes  BLAKE3 of the content
//! content  size bytes
//! ```
//!
//! The stream ends after the last file (the connection's clean end). A
//! stream that ends or is reset inside a header or a file's content ends the
//! connection; files completed before that are kept (each was checked on
//! its own), the one in progress is discarded.
//!
//! # Receiving
//!
//! Each file is written to a temporary file in the directory,
//! `.NAME.ferry-part-RANDOM`, and given its final name only once its size and
//! BLAKE3 digest match; a file cut short, reset or mismatched is deleted.
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

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clap::Args;
use thiserror::Error;
use tracing::{debug, info, warn};

use super::config::ConfigFile;
use super::{AcceptLoop, bind_tcp, random_u64, reset};
use crate::CliError;

/// The first bytes of every file header.
pub const MAGIC: [u8; 4] = *b"FRYF";
/// The framing's version.
pub const VERSION: u8 = 1;
/// Longest file name, in bytes.
pub const MAX_NAME: usize = 255;
/// Bytes copied at a time.
const COPY_BUF: usize = 256 * 1024;
/// How long connecting to `diode-send` may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader {
    /// The name, as sent.
    pub name: String,
    /// Bytes of content.
    pub size: u64,
    /// BLAKE3 digest of the content.
    pub digest: [u8; 32],
}

/// A header could not be read.
#[derive(Debug, Error)]
pub enum FrameError {
    /// The stream does not follow the framing.
    #[error("not a ferry file stream: {0}")]
    Malformed(&'static str),
    /// The stream ended or failed inside a header.
    #[error("the stream ended inside a file header: {0}")]
    Io(#[from] io::Error),
}

impl FileHeader {
    /// Encodes the header.
    pub fn encode(&self) -> Vec<u8> {
        let name = self.name.as_bytes();
        let mut out = Vec::with_capacity(4 + 1 + 2 + name.len() + 8 + 32);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.digest);
        out
    }

    /// Reads the next header; `None` at a clean end of stream (before its
    /// first byte).
    pub fn read(r: &mut impl Read) -> Result<Option<Self>, FrameError> {
        let mut magic = [0u8; 4];
        let mut got = 0;
        while got < magic.len() {
            match r.read(&mut magic[got..]) {
                Ok(0) if got == 0 => return Ok(None),
                Ok(0) => return Err(FrameError::Io(io::ErrorKind::UnexpectedEof.into())),
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        if magic != MAGIC {
            return Err(FrameError::Malformed("bad magic"));
        }
        let mut fixed = [0u8; 3];
        r.read_exact(&mut fixed)?;
        if fixed[0] != VERSION {
            return Err(FrameError::Malformed("unknown version"));
        }
        let name_len = usize::from(u16::from_be_bytes([fixed[1], fixed[2]]));
        if name_len == 0 || name_len > MAX_NAME {
            return Err(FrameError::Malformed("name length out of range"));
        }
        let mut name = vec![0u8; name_len];
        r.read_exact(&mut name)?;
        let name = String::from_utf8(name).map_err(|_| FrameError::Malformed("name not UTF-8"))?;
        let mut size = [0u8; 8];
        r.read_exact(&mut size)?;
        let mut digest = [0u8; 32];
        r.read_exact(&mut digest)?;
        Ok(Some(Self {
            name,
            size: u64::from_be_bytes(size),
            digest,
        }))
    }
}

/// The name a received file may take, or `None` to refuse it: the final
/// component of the path, without separators, NUL or control characters,
/// and not `.` or `..`.
pub fn sanitize_name(name: &str) -> Option<String> {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let ok = !last.is_empty()
        && last != "."
        && last != ".."
        && last.len() <= MAX_NAME
        && !last.chars().any(char::is_control);
    ok.then(|| last.to_owned())
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
    #[arg(long, value_name = "TCP_ADDR")]
    pub to: SocketAddr,
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
fn digest_file(path: &Path) -> io::Result<(u64, [u8; 32])> {
    let mut hasher = blake3::Hasher::new();
    let mut file = File::open(path)?;
    let mut buf = vec![0u8; COPY_BUF];
    let mut size = 0u64;
    loop {
        match file.read(&mut buf) {
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

/// Sends `files` in one session through the `diode-send` at `to`, and waits
/// until it says every byte is on the wire (it closes the connection
/// cleanly once the session's last datagram left).
///
/// On any failure the connection is reset, so `diode-send` aborts the
/// session and nothing of it is kept on the far side but the files already
/// complete.
pub fn send_files(to: SocketAddr, files: &[PathBuf]) -> Result<SendReport, CliError> {
    let mut names = Vec::with_capacity(files.len());
    for path in files {
        let meta = std::fs::metadata(path).map_err(|e| file_error(path, "read", e))?;
        if !meta.is_file() {
            return Err(CliError::Invalid(format!(
                "{} is not a regular file: give files (diode-send-dir sends a directory)",
                path.display()
            )));
        }
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(sanitize_name)
            .ok_or_else(|| {
                CliError::Invalid(format!(
                    "{} has no usable file name (UTF-8, no control characters, at most {MAX_NAME} bytes): rename it",
                    path.display()
                ))
            })?;
        names.push(name);
    }
    let stream = TcpStream::connect_timeout(&to, CONNECT_TIMEOUT).map_err(|e| CliError::Io {
        context: format!("cannot connect to {to}: start `ferry diode-send --listen {to}` first"),
        source: e,
    })?;
    match send_on(&stream, files, &names) {
        Ok(report) => {
            stream.shutdown(Shutdown::Write).map_err(|e| CliError::Io {
                context: format!("cannot end the stream to {to}"),
                source: e,
            })?;
            wait_for_close(&stream, to)?;
            Ok(report)
        }
        Err(e) => {
            reset(stream);
            Err(e)
        }
    }
}

fn send_on(
    stream: &TcpStream,
    files: &[PathBuf],
    names: &[String],
) -> Result<SendReport, CliError> {
    let mut out = BufWriter::with_capacity(COPY_BUF, stream);
    let mut report = SendReport::default();
    let mut buf = vec![0u8; COPY_BUF];
    let net = |e| CliError::Io {
        context: "cannot write to diode-send".into(),
        source: e,
    };
    for (path, name) in files.iter().zip(names) {
        let (size, digest) = digest_file(path).map_err(|e| file_error(path, "read", e))?;
        let header = FileHeader {
            name: name.clone(),
            size,
            digest,
        };
        out.write_all(&header.encode()).map_err(net)?;
        let mut file = File::open(path).map_err(|e| file_error(path, "open", e))?;
        let mut left = size;
        while left > 0 {
            let want = (left as usize).min(buf.len());
            let n = match file.read(&mut buf[..want]) {
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
            out.write_all(&buf[..n]).map_err(net)?;
            left -= n as u64;
        }
        report.files += 1;
        report.bytes += size;
        debug!(file = %path.display(), size, "file sent");
    }
    out.flush().map_err(net)?;
    Ok(report)
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
    let report = send_files(args.to, &args.files)?;
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
    #[arg(long, value_name = "TCP_ADDR")]
    pub listen: SocketAddr,
    /// Directory to write the received files to (created if missing).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// The settings file (checked, for one file shared by every tool).
    #[command(flatten)]
    pub config: ConfigFile,
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
}

impl ReceiveFileServer {
    /// Creates the directory if needed and starts accepting connections.
    pub fn start(args: &DiodeReceiveFileArgs) -> Result<Self, CliError> {
        args.config.load()?;
        let dir = args.dir.clone();
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
        let accept = AcceptLoop::spawn(listener, "diode-receive-file", move |stream, peer| {
            shared.connections.fetch_add(1, Ordering::SeqCst);
            let dir = dir.clone();
            let counters = Arc::clone(&shared);
            let spawned = std::thread::Builder::new()
                .name("diode-receive-file-conn".into())
                .spawn(move || {
                    receive_connection(stream, peer, &dir, &counters);
                    counters.ended.fetch_add(1, Ordering::SeqCst);
                });
            if let Err(e) = spawned {
                warn!(error = %e, %peer, "cannot start a thread for the connection; refused");
            }
        })?;
        info!(tcp = %accept.addr(), dir = %args.dir.display(), "diode-receive-file started");
        Ok(Self { accept, counters })
    }

    /// The TCP address accepting connections.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.accept.addr()
    }

    /// What was received so far.
    pub fn stats(&self) -> ReceiveFileStats {
        let c = &self.counters;
        ReceiveFileStats {
            connections: c.connections.load(Ordering::SeqCst),
            ended: c.ended.load(Ordering::SeqCst),
            saved: c.saved.load(Ordering::SeqCst),
            discarded: c.discarded.load(Ordering::SeqCst),
            refused: c.refused.load(Ordering::SeqCst),
        }
    }

    /// Stops accepting connections (those in progress go on).
    pub fn stop(mut self) {
        self.accept.stop();
    }

    /// Serves until the process ends.
    pub fn wait(self) {
        self.accept.wait();
    }
}

/// Runs `ferry diode-receive-file` until the process is stopped.
pub fn run_receive(args: &DiodeReceiveFileArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let server = ReceiveFileServer::start(args)?;
    writeln!(
        out,
        "diode-receive-file: accepting TCP on {}, writing files to {}",
        server.tcp_addr(),
        args.dir.display()
    )?;
    out.flush()?;
    server.wait();
    Ok(())
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

fn receive_connection(stream: TcpStream, peer: SocketAddr, dir: &Path, counters: &Counters) {
    let mut reader = BufReader::with_capacity(COPY_BUF, &stream);
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
        match receive_file(&mut reader, dir, &header) {
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
fn receive_file(reader: &mut impl Read, dir: &Path, header: &FileHeader) -> io::Result<Received> {
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
    let mut out = BufWriter::with_capacity(COPY_BUF, file);
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; COPY_BUF];
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
    fn header_round_trip() {
        let h = FileHeader {
            name: "données.bin".into(),
            size: 123_456_789,
            digest: [7; 32],
        };
        let bytes = h.encode();
        let mut r = &bytes[..];
        assert_eq!(FileHeader::read(&mut r).unwrap(), Some(h));
        assert!(FileHeader::read(&mut r).unwrap().is_none());
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert!(matches!(
            FileHeader::read(&mut &bad[..]),
            Err(FrameError::Malformed(_))
        ));
        assert!(matches!(
            FileHeader::read(&mut &bytes[..10]),
            Err(FrameError::Io(_))
        ));
    }

    #[test]
    fn names_keep_only_the_final_component() {
        assert_eq!(sanitize_name("a.txt").as_deref(), Some("a.txt"));
        assert_eq!(sanitize_name("dir/sub/a.txt").as_deref(), Some("a.txt"));
        assert_eq!(sanitize_name("../../etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(sanitize_name("/etc/passwd").as_deref(), Some("passwd"));
        assert_eq!(sanitize_name("C:\\x\\y.doc").as_deref(), Some("y.doc"));
        assert_eq!(sanitize_name(".hidden").as_deref(), Some(".hidden"));
        for bad in ["", ".", "..", "a/..", "dir/", "nul\0byte", "line\nbreak"] {
            assert_eq!(sanitize_name(bad), None, "{bad:?}");
        }
        assert_eq!(sanitize_name(&"x".repeat(256)), None);
    }

    #[test]
    fn numbered_names() {
        assert_eq!(split_name("report.pdf"), ("report", Some("pdf")));
        assert_eq!(split_name("archive.tar.gz"), ("archive.tar", Some("gz")));
        assert_eq!(split_name(".bashrc"), (".bashrc", None));
        assert_eq!(split_name("notes"), ("notes", None));
        assert_eq!(split_name("trailing."), ("trailing.", None));
    }
}
