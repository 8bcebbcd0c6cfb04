//! `ferry send FILE_OR_DIR... --to HOST:PORT`: files and directory trees
//! over one reliable session to a `ferry receive`.
//!
//! A file given on the command line arrives under its file name; a
//! directory under its name with its whole tree (symbolic links and special
//! files inside it are skipped, with a warning). Each file is read once, by
//! a disk thread of its own ([`disk`](super::disk)) that hashes it (BLAKE3)
//! as it goes, and sent on a stream of its own: its relative name and size,
//! the content, then the digest as a trailer (see [`wire`](super::wire)); up
//! to [`WINDOW`] files await the receiver's reply at once. The command ends once the receiver answered
//! every file, then prints a summary; it fails if any file was not stored
//! (the exit code says why: see [`crate::exit::Exit`]).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use ferry_tokio::{Session, Stream, StreamError, StreamKind, StreamSendError};
use tokio::sync::{Semaphore, oneshot};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use super::config::StarterOptions;
use super::disk::{CHUNK, FileReader, Read};
use super::progress::{Progress, ProgressMode, View, human_bytes};
use super::wire::{
    CLOSE_ABORTED, CLOSE_DONE, EntryHeader, EntryKind, Manifest, RESET_STOPPED, RESUME_MIN, Reply,
    ReplyCode, ResumeOffer, decode_progress, trailer, wire_name,
};
use super::{
    bind, client_addr, connect_error, lost_error, mbit_per_s, resolve, runtime, stats_line,
};
use crate::CliError;
use crate::exit::io_advice;

mod resume;

/// Files awaiting the receiver's reply at once.
pub const WINDOW: usize = 16;

/// Arguments of `ferry send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    /// Files and directories to send; each arrives under its own name
    /// (a directory with its whole tree).
    #[arg(required = true, value_name = "FILE_OR_DIR")]
    pub paths: Vec<PathBuf>,
    /// The receiver: HOST:PORT of a `ferry receive --listen`.
    #[arg(long, value_name = "HOST:PORT", value_parser = super::forward::host_port)]
    pub to: String,
    /// How to show progress: a bar on a terminal, else a line every second.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Session settings.
    #[command(flatten)]
    pub session: StarterOptions,
}

/// One file or directory to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Where it is here.
    pub source: PathBuf,
    /// The relative name it is sent under, `/`-separated.
    pub name: String,
    /// File or directory.
    pub kind: EntryKind,
    /// Its size when listed.
    pub size: u64,
}

fn read_error(path: &Path, e: std::io::Error) -> CliError {
    CliError::Io {
        context: format!("cannot read {}: {}", path.display(), io_advice(&e)),
        source: e,
    }
}

/// Lists what `paths` name: files, and directories with their trees
/// (directories before their content, names sorted).
pub fn collect(paths: &[PathBuf]) -> Result<Vec<Entry>, CliError> {
    let mut entries = Vec::new();
    let mut names = std::collections::HashSet::new();
    for path in paths {
        let meta = std::fs::metadata(path).map_err(|e| read_error(path, e))?;
        let base = match path.file_name() {
            Some(name) => PathBuf::from(name),
            None => std::fs::canonicalize(path)
                .ok()
                .and_then(|p| p.file_name().map(PathBuf::from))
                .ok_or_else(|| {
                    CliError::Invalid(format!(
                        "cannot send {}: it has no name (the root directory?); send what is inside it",
                        path.display()
                    ))
                })?,
        };
        let name = wire_name(&base).ok_or_else(|| {
            CliError::Invalid(format!(
                "cannot send {}: its name is not valid UTF-8; rename it",
                path.display()
            ))
        })?;
        if !names.insert(name.clone()) {
            return Err(CliError::Invalid(format!(
                "two of the paths given would arrive under the same name `{name}`: send them separately"
            )));
        }
        if meta.is_dir() {
            entries.push(Entry {
                source: path.clone(),
                name,
                kind: EntryKind::Dir,
                size: 0,
            });
            walk(path, &base, &mut entries)?;
        } else if meta.is_file() {
            entries.push(Entry {
                source: path.clone(),
                name,
                kind: EntryKind::File,
                size: meta.len(),
            });
        } else {
            return Err(CliError::Invalid(format!(
                "cannot send {}: it is neither a file nor a directory",
                path.display()
            )));
        }
    }
    Ok(entries)
}

fn walk(dir: &Path, relative: &Path, entries: &mut Vec<Entry>) -> Result<(), CliError> {
    let mut children: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| read_error(dir, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| read_error(dir, e))?;
    children.sort_by_key(|c| c.file_name());
    for child in children {
        let path = child.path();
        let rel = relative.join(child.file_name());
        let Some(name) = wire_name(&rel) else {
            warn!(file = %path.display(), "name is not valid UTF-8: skipped");
            continue;
        };
        let meta = std::fs::symlink_metadata(&path).map_err(|e| read_error(&path, e))?;
        if meta.file_type().is_symlink() {
            warn!(file = %path.display(), "symbolic link inside a directory: skipped (name the target itself to send it)");
        } else if meta.is_dir() {
            entries.push(Entry {
                source: path.clone(),
                name,
                kind: EntryKind::Dir,
                size: 0,
            });
            walk(&path, &rel, entries)?;
        } else if meta.is_file() {
            entries.push(Entry {
                source: path,
                name,
                kind: EntryKind::File,
                size: meta.len(),
            });
        } else {
            warn!(file = %path.display(), "neither a file nor a directory: skipped");
        }
    }
    Ok(())
}

/// How one entry ended, at this side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver's answer.
    Replied(Reply),
    /// It could not be read here.
    ReadFailed(String),
    /// It changed while it was sent: its size or modification time was no
    /// longer what it was when it was opened (the receiver deleted what it
    /// got).
    Changed,
}

/// What a sending did.
#[derive(Debug, Clone, Default)]
pub struct SendReport {
    /// Every entry and how it ended.
    pub outcomes: Vec<(Entry, Outcome)>,
    /// Bytes of content sent.
    pub bytes: u64,
    /// Bytes of content not sent because the receiver kept them from an
    /// interrupted transfer (resumed).
    pub resumed: u64,
    /// From connect to the last reply.
    pub elapsed: Duration,
    /// The session's counters at the end.
    pub stats: ferry_tokio::SessionStats,
}

/// Runs `ferry send`.
pub fn run(args: &SendArgs, quiet: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let entries = collect(&args.paths)?;
    let settings = args.session.load()?;
    let files = entries.iter().filter(|e| e.kind == EntryKind::File).count();
    let total: u64 = entries.iter().map(|e| e.size).sum();
    let mut view = View::new(args.progress.resolve(quiet));
    let runtime = runtime()?;
    let report = runtime.block_on(async {
        let peer = resolve(&args.to, "--to").await?;
        let endpoint = bind(client_addr(peer), settings.endpoint.clone(), "the local address")?;
        let timeout = settings.endpoint.protocol.handshake_timeout;
        let identity = settings.endpoint.protocol.identity.as_ref().map(|i| i.public_key());
        // SIGTERM as Ctrl-C: the session is closed (aborted), exit 130.
        let shutdown = crate::shutdown::signals()?;
        let session = tokio::select! {
            r = endpoint.connect(peer) => r.map_err(|e| connect_error(&args.to, e, timeout, "ferry receive --listen", identity))?,
            _ = shutdown.stopped() => return Err(CliError::Interrupted),
        };
        let mut notes = Vec::new();
        if args.to != peer.to_string() {
            notes.push(peer.to_string());
        }
        if settings.encrypted() {
            notes.push("encrypted".to_owned());
        }
        if let Some(pin) = &settings.peer_key {
            notes.push(format!("listener key {}…", pin.key.short()));
        }
        let transport =
            super::config::transport_note(&session, settings.endpoint.fallback.after);
        tracing::info!(to = %args.to, "session open {transport}");
        if settings.endpoint.fallback.after.is_some() {
            notes.push(transport);
        }
        let notes = if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join(", "))
        };
        view.println(
            out,
            &format!(
                "sending {} ({}) to {}{notes}",
                crate::counted(files as u64, "file", "files"),
                human_bytes(total),
                args.to
            ),
        )?;
        let progress = Arc::new(Progress::new(format!("to {}", args.to)));
        progress.total_entries.store(files as u64, Ordering::Relaxed);
        progress.total_bytes.store(total, Ordering::Relaxed);
        view.add(progress.clone());
        let work = transfer(session.clone(), entries, progress.clone(), &args.to);
        tokio::pin!(work);
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + view.period(), view.period());
        let result = loop {
            tokio::select! {
                r = &mut work => break r,
                _ = tick.tick() => view.update(out)?,
                _ = shutdown.stopped() => {
                    session.close(CLOSE_ABORTED);
                    endpoint.close().await;
                    return Err(CliError::Interrupted);
                }
            }
        };
        view.remove(&progress);
        match &result {
            Ok(_) => session.close(CLOSE_DONE),
            Err(_) => session.close(CLOSE_ABORTED),
        }
        endpoint.close().await;
        result
    })?;
    summarize(&report, &args.to, out)
}

/// Sends every entry on `session` and collects the replies.
async fn transfer(
    session: Session,
    entries: Vec<Entry>,
    progress: Arc<Progress>,
    peer: &str,
) -> Result<SendReport, CliError> {
    let start = Instant::now();
    let manifest = Manifest {
        entries: entries.len() as u64,
        bytes: entries.iter().map(|e| e.size).sum(),
    };
    session.send(manifest.encode()).await.map_err(|e| match e {
        ferry_tokio::SendError::Closed(reason) => lost_error(peer, Some(reason)),
        e => CliError::Network(format!("the session with {peer} failed: {e}")),
    })?;
    // The receiver's reports of bytes stored.
    let listener = {
        let session = session.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            while let Ok(message) = session.recv().await {
                if let Some(bytes) = decode_progress(&message) {
                    progress.bytes.fetch_max(bytes, Ordering::Relaxed);
                }
            }
        })
    };
    let permits = Arc::new(Semaphore::new(WINDOW));
    let mut replies: JoinSet<(usize, Outcome)> = JoinSet::new();
    let mut outcomes: Vec<Option<Outcome>> = vec![None; entries.len()];
    let mut bytes = 0u64;
    let mut resumed = 0u64;
    let chunk = CHUNK.min(session.max_message_size().saturating_sub(1));
    for (i, entry) in entries.iter().enumerate() {
        let permit = permits
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed");
        if entry.kind == EntryKind::File {
            progress.set_current(&entry.name);
        }
        let (size, reader) = match entry.kind {
            EntryKind::Dir => (0, None),
            EntryKind::File => match FileReader::open(entry.source.clone(), chunk).await {
                Ok(reader) => (reader.size(), Some(reader)),
                Err(e) => {
                    warn!(file = %entry.source.display(), error = %e, "cannot read: skipped");
                    outcomes[i] = Some(Outcome::ReadFailed(format!("{e}: {}", io_advice(&e))));
                    continue;
                }
            },
        };
        if size != entry.size {
            progress
                .total_bytes
                .fetch_add(size.wrapping_sub(entry.size), Ordering::Relaxed);
        }
        let stream = open_stream(&session, &mut replies, &mut outcomes, peer).await?;
        let header = EntryHeader {
            kind: entry.kind,
            name: entry.name.clone(),
            size,
        };
        stream
            .send(header.encode())
            .await
            .map_err(|e| send_lost(e, peer))?;
        let digest_only = Arc::new(AtomicBool::new(false));
        // A file that can be resumed: the receiver answers first (an offer,
        // the digest only, or a final reply) and the content waits for it.
        let (first_tx, first_rx) = if reader.is_some() && size >= RESUME_MIN {
            let (tx, rx) = oneshot::channel();
            (Some(tx), Some(rx))
        } else {
            (None, None)
        };
        let reply = {
            let stream = stream.clone();
            let progress = progress.clone();
            let digest_only = digest_only.clone();
            replies.spawn(async move {
                let outcome = Outcome::Replied(read_reply(&stream, &digest_only, first_tx).await);
                if let Outcome::Replied(r) = &outcome
                    && r.code != ReplyCode::Stored
                {
                    // Bytes that will not be stored: out of the total.
                    let _ = progress.total_bytes.fetch_update(
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                        |t| Some(t.saturating_sub(size)),
                    );
                }
                progress
                    .entries
                    .fetch_add(u64::from(header.kind == EntryKind::File), Ordering::Relaxed);
                drop(permit);
                (i, outcome)
            })
        };
        let Some(reader) = reader else {
            stream.finish().map_err(|e| send_lost(e, peer))?;
            continue;
        };
        let started = match first_rx {
            None => Ok(Ok((reader, None))),
            Some(first) => match first.await {
                Ok(Some(offer)) if offer.offset > 0 => {
                    resume::answer(reader, offer, &stream, &entry.source, chunk)
                        .await
                        .map(|r| {
                            r.map(|r| {
                                resumed += r.offset;
                                (r.reader, r.pending)
                            })
                        })
                }
                Ok(_) => Ok(Ok((reader, None))),
                // A final reply came first (refused).
                Err(_) => Ok(Err(Sent::Stopped)),
            },
        };
        let sent = match started {
            Ok(Ok((reader, pending))) => {
                send_content(reader, pending, &stream, &reply, &digest_only).await
            }
            Ok(Err(sent)) => Ok(sent),
            Err(failure) => Err(failure),
        };
        match sent {
            Ok(Sent::All(n)) => {
                bytes += n;
                stream.finish().map_err(|e| send_lost(e, peer))?;
            }
            Ok(Sent::Stopped) => {
                let _ = stream.reset(RESET_STOPPED);
            }
            Ok(Sent::Changed) => {
                let _ = stream.reset(RESET_STOPPED);
                reply.abort();
                outcomes[i] = Some(Outcome::Changed);
            }
            Err(Failure::Read(e)) => {
                let _ = stream.reset(RESET_STOPPED);
                reply.abort();
                outcomes[i] = Some(Outcome::ReadFailed(format!("{e}: {}", io_advice(&e))));
            }
            Err(Failure::Send(e)) => return Err(send_lost(e, peer)),
        }
    }
    while let Some(joined) = replies.join_next().await {
        if let Ok((i, outcome)) = joined {
            outcomes[i].get_or_insert(outcome);
        }
    }
    listener.abort();
    let outcomes = entries
        .into_iter()
        .zip(outcomes)
        .map(|(e, o)| {
            (
                e,
                o.unwrap_or_else(|| Outcome::ReadFailed("no reply".into())),
            )
        })
        .collect();
    Ok(SendReport {
        outcomes,
        bytes,
        resumed,
        elapsed: start.elapsed(),
        stats: session.stats(),
    })
}

fn send_lost(e: StreamSendError, peer: &str) -> CliError {
    match e {
        StreamSendError::Closed(reason) => lost_error(peer, Some(reason)),
        e => CliError::Network(format!("the session with {peer} failed: {e}")),
    }
}

/// Opens a stream, waiting for replies while the peer allows no more.
async fn open_stream(
    session: &Session,
    replies: &mut JoinSet<(usize, Outcome)>,
    outcomes: &mut [Option<Outcome>],
    peer: &str,
) -> Result<Stream, CliError> {
    loop {
        match session.open_stream(StreamKind::ReliableOrdered) {
            Ok(stream) => return Ok(stream),
            Err(StreamError::TooManyStreams { max }) => {
                debug!(
                    max,
                    "the receiver allows no more streams: waiting for a reply"
                );
                match replies.join_next().await {
                    Some(Ok((i, outcome))) => {
                        outcomes[i].get_or_insert(outcome);
                    }
                    Some(Err(_)) => {}
                    // Streams of files already answered still count until
                    // both sides let them go.
                    None => tokio::time::sleep(Duration::from_millis(10)).await,
                }
            }
            Err(StreamError::Closed(reason)) => return Err(lost_error(peer, Some(reason))),
            Err(e) => {
                return Err(CliError::Network(format!(
                    "cannot open a stream to {peer}: {e}"
                )));
            }
        }
    }
}

/// The receiver's final reply on `stream`; a [`ReplyCode::DigestOnly`]
/// before it sets `digest_only`. Its first non-final answer (a resume
/// offer, or `None` for the digest only) goes to `first`.
async fn read_reply(
    stream: &Stream,
    digest_only: &AtomicBool,
    mut first: Option<oneshot::Sender<Option<ResumeOffer>>>,
) -> Reply {
    loop {
        return match stream.recv().await {
            Ok(Some(message)) => match Reply::decode(&message) {
                Ok(r) if r.code == ReplyCode::DigestOnly => {
                    debug!(
                        "the receiver has a file of that name and size: sending the digest only"
                    );
                    digest_only.store(true, Ordering::Relaxed);
                    if let Some(first) = first.take() {
                        let _ = first.send(None);
                    }
                    continue;
                }
                Ok(r) if r.code == ReplyCode::Resume => match ResumeOffer::decode(&message) {
                    Ok(offer) if first.is_some() => {
                        if let Some(first) = first.take() {
                            let _ = first.send(Some(offer));
                        }
                        continue;
                    }
                    Ok(_) => Reply::new(ReplyCode::Malformed, "an unexpected resume offer"),
                    Err(e) => Reply::new(ReplyCode::Malformed, format!("unreadable reply: {e}")),
                },
                Ok(r) => r,
                Err(e) => Reply::new(ReplyCode::Malformed, format!("unreadable reply: {e}")),
            },
            Ok(None) => Reply::new(
                ReplyCode::Malformed,
                "the receiver ended the stream without a reply",
            ),
            Err(e) => Reply::new(ReplyCode::Malformed, format!("no reply: {e}")),
        };
    }
}

enum Sent {
    /// Every byte (the count sent: fewer if the receiver asked for the
    /// digest only), then the digest.
    All(u64),
    /// The receiver answered before the end (refused, or has it).
    Stopped,
    /// The file changed while it was read.
    Changed,
}

enum Failure {
    Read(std::io::Error),
    Send(StreamSendError),
}

/// Sends `pending` (the rest of a chunk a resumed prefix ended in) and
/// what `reader` reads, then the digest trailer; once `digest_only` is set,
/// the digest only. Dropping the reader (on any way out) stops its
/// thread.
async fn send_content(
    mut reader: FileReader,
    pending: Option<bytes::Bytes>,
    stream: &Stream,
    reply: &tokio::task::AbortHandle,
    digest_only: &AtomicBool,
) -> Result<Sent, Failure> {
    let mut sent = 0u64;
    if let Some(message) = pending
        && !digest_only.load(Ordering::Relaxed)
    {
        let n = message.len() as u64 - 1;
        stream.send(message).await.map_err(Failure::Send)?;
        sent += n;
    }
    loop {
        if reply.is_finished() {
            return Ok(Sent::Stopped);
        }
        match reader.next().await {
            Some(Read::Data(message)) => {
                if digest_only.load(Ordering::Relaxed) {
                    continue;
                }
                let n = message.len() as u64 - 1;
                stream.send(message).await.map_err(Failure::Send)?;
                sent += n;
            }
            Some(Read::End(digest)) => {
                stream.send(trailer(&digest)).await.map_err(Failure::Send)?;
                return Ok(Sent::All(sent));
            }
            Some(Read::Changed) => return Ok(Sent::Changed),
            Some(Read::Failed(e)) => return Err(Failure::Read(e)),
            None => {
                return Err(Failure::Read(std::io::Error::other(
                    "the reading thread ended unexpectedly",
                )));
            }
        }
    }
}

/// Writes the summary; an error if any entry was not stored.
fn summarize(report: &SendReport, to: &str, out: &mut dyn Write) -> Result<(), CliError> {
    let mut stored = (0, 0, 0);
    let mut failures = Vec::new();
    let mut worst = None;
    for (entry, outcome) in &report.outcomes {
        let failure = match outcome {
            Outcome::Replied(r) => match r.code {
                ReplyCode::Stored if entry.kind == EntryKind::Dir => {
                    stored.2 += 1;
                    None
                }
                ReplyCode::Stored => {
                    stored.0 += 1;
                    None
                }
                ReplyCode::Identical => {
                    stored.1 += 1;
                    None
                }
                ReplyCode::Mismatch => Some((5, format!("the receiver found it corrupted: {}", r.text))),
                ReplyCode::Malformed => Some((1, format!("the receiver could not read it (does it run another version of ferry?): {}", r.text))),
                _ => Some((1, format!("the receiver refused it: {}", r.text))),
            },
            Outcome::ReadFailed(e) => Some((6, format!("cannot read it: {e}"))),
            Outcome::Changed => Some((
                5,
                "it changed while it was sent (its size or modification time changed while it was read): send it again once it is still".into(),
            )),
        };
        if let Some((rank, text)) = failure {
            writeln!(out, "not sent: {}: {text}", entry.name)?;
            failures.push(entry.name.clone());
            worst = Some(worst.map_or(rank, |w: i32| w.max(rank)));
        }
    }
    writeln!(
        out,
        "sent {} ({} already there and identical), {}, {} in {:.2} s ({:.1} Mbit/s) to {to}",
        crate::counted(stored.0 as u64, "file", "files"),
        stored.1,
        crate::counted(stored.2 as u64, "directory", "directories"),
        human_bytes(report.bytes),
        report.elapsed.as_secs_f64(),
        mbit_per_s(report.bytes, report.elapsed),
    )?;
    if report.resumed > 0 {
        writeln!(
            out,
            "resumed {} ({} bytes) the receiver kept from an interrupted transfer, sent {} ({} bytes)",
            human_bytes(report.resumed),
            report.resumed,
            human_bytes(report.bytes),
            report.bytes,
        )?;
    }
    writeln!(out, "session: {}", stats_line(&report.stats))?;
    out.flush()?;
    if failures.is_empty() {
        return Ok(());
    }
    let message = format!(
        "{} of {} entries were not stored: {}",
        failures.len(),
        report.outcomes.len(),
        failures.join(", ")
    );
    Err(match worst {
        Some(5) => CliError::Integrity(message),
        Some(6) => CliError::Io {
            context: message,
            source: std::io::Error::other("read failed"),
        },
        _ => CliError::Failed(message),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collect_lists_trees_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("top");
        std::fs::create_dir_all(root.join("b/empty")).unwrap();
        std::fs::write(root.join("a.txt"), b"hello").unwrap();
        std::fs::write(root.join("b/c.bin"), b"").unwrap();
        let single = dir.path().join("single.txt");
        std::fs::write(&single, b"x").unwrap();
        let entries = collect(&[root.clone(), single]).unwrap();
        let names: Vec<_> = entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "top",
                "top/a.txt",
                "top/b",
                "top/b/c.bin",
                "top/b/empty",
                "single.txt"
            ]
        );
        assert_eq!(entries[1].size, 5);
        let err = collect(&[root.clone(), root]).unwrap_err();
        assert!(err.to_string().contains("same name"), "{err}");
        let err = collect(&[dir.path().join("missing")]).unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::LocalIo);
    }
}
