//! `ferry receive --listen ADDR --dir DIR`: files from `ferry send` into a
//! directory.
//!
//! Serves any number of sending sessions, at once or one after the other,
//! until SIGTERM or Ctrl-C (or, with `--once`, until the first one ends).
//! On the signal it stops accepting sessions, lets those in flight finish
//! for the grace period (`--grace-period`, `grace_period`), then closes the
//! rest with [`CLOSE_SHUTDOWN`] (their partial files deleted, or kept to
//! be resumed) and exits: 0
//! if nothing was cut, 130 ([`CliError::Stopped`]) otherwise. Each file:
//!
//! - has its name checked ([`sanitize_path`]): a relative path of plain
//!   components, no `..`, no absolute path, no control characters, and no
//!   symbolic link on the way under DIR; directories are recreated under
//!   DIR only. A refused name is answered as such and its content skipped;
//! - is written to a temporary file beside its final place,
//!   `.NAME.ferry-part-RANDOM`, by a disk thread of its own that hashes
//!   (BLAKE3) as it writes ([`disk`](super::disk)); the sender's digest
//!   follows the content (a trailer), and the file is synced and renamed to
//!   its name only once its size and digest match: a file never appears
//!   incomplete. A file that does not match is deleted; one whose session
//!   ends early is deleted too, unless it has at least
//!   [`RESUME_MIN`] bytes: then its received prefix is kept
//!   ([`partial`](super::partial)) and the next `ferry send` of it resumes
//!   where it stopped (`receive/resume.rs`); while such a file is written
//!   it leaves a checkpoint every 32 MiB, so that even a receiver killed
//!   mid-file leaves something to resume;
//! - does not replace an existing file unless `--overwrite`: for a file of
//!   that name and size the receiver asks the sender for the digest only
//!   (no more content) and answers "identical" if it matches; a file with
//!   other content is refused, so the sender says so.
//!
//! A summary is printed as each session ends. SIGHUP re-reads the
//! authorized keys file ([`reload`](super::reload)) for the sessions to
//! come.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;
use ferry_proto::CloseReason;
use ferry_tokio::{Session, SessionStats, Stream, StreamRecvError};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::config::ListenerOptions;
use super::config::keys::peer_label;
use super::disk::{FileWriter, Written, digest_of};
use super::progress::{Progress, ProgressMode, View};
use super::reload::Reload;
use super::wire::{
    CLOSE_SHUTDOWN, Content, EntryHeader, EntryKind, Manifest, RESUME_MIN, Reply, ReplyCode,
    WireError, encode_progress, sanitize_path,
};
use super::{bind, runtime};
use crate::CliError;
use crate::diode::random_u64;
use crate::exit::io_advice;
use crate::metrics::{MetricsArgs, start_line};
use crate::shutdown::{Signal, secs};

mod resume;
mod summary;

/// Arguments of `ferry receive`.
#[derive(Debug, Clone, Args)]
pub struct ReceiveArgs {
    /// UDP address to receive on, e.g. 0.0.0.0:7000 (port 0: any free
    /// port; the address is printed as `listening on ADDR`).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Directory to store the files in (created if missing).
    #[arg(long, value_name = "DIR")]
    pub dir: PathBuf,
    /// Replace existing files of the same name (atomically). Without it, a
    /// file of that name with other content is refused.
    #[arg(long)]
    pub overwrite: bool,
    /// Discard kept partial files instead of resuming them: each file is
    /// received again from its first byte (and an interrupted one is still
    /// kept, for a later run without this flag).
    #[arg(long)]
    pub discard_partial: bool,
    /// Exit once the first sending session ended (the exit code says how
    /// it went), instead of serving until SIGTERM or Ctrl-C.
    #[arg(long)]
    pub once: bool,
    /// How long to let sessions finish on a stop.
    #[command(flatten)]
    pub grace: crate::shutdown::GraceArgs,
    /// How to show progress: a bar on a terminal, else a line every second.
    #[arg(long, value_enum, default_value_t = ProgressMode::Auto)]
    pub progress: ProgressMode,
    /// Session settings.
    #[command(flatten)]
    pub session: ListenerOptions,
    /// The Prometheus endpoint (default: the file's `[session] metrics`).
    #[command(flatten)]
    pub metrics: MetricsArgs,
}

#[derive(Debug)]
struct Ctx {
    dir: PathBuf,
    overwrite: bool,
    discard_partial: bool,
}

/// How one entry ended at the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
enum EntryOutcome {
    Stored {
        bytes: u64,
        dir: bool,
    },
    Identical,
    /// Refused with this code (exists, bad name, malformed).
    Refused(ReplyCode, String),
    Mismatch(String),
    LocalIo(String),
    Incomplete(String),
}

/// What one session brought.
#[derive(Debug)]
struct SessionReport {
    peer: SocketAddr,
    /// The peer's identity as named in logs (`alice (3f1c09ab…)`), when
    /// the session authenticated one.
    identity: Option<String>,
    entries: Vec<(String, EntryOutcome)>,
    elapsed: Duration,
    stats: SessionStats,
    end: CloseReason,
    /// The sender speaks another version of the file messages.
    version: Option<WireError>,
}

/// Runs `ferry receive`.
pub fn run(args: &ReceiveArgs, quiet: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let settings = args.session.load()?;
    let dir = prepare_dir(&args.dir)?;
    let ctx = Arc::new(Ctx {
        dir,
        overwrite: args.overwrite,
        discard_partial: args.discard_partial,
    });
    let mut view = View::new(args.progress.resolve(quiet));
    let runtime = runtime()?;
    runtime.block_on(async {
        let mut config = settings.endpoint.clone();
        config.protocol.accept_incoming = true;
        let endpoint = bind(args.listen, config, "--listen")?;
        let metrics = args.metrics.serve_endpoint(settings.metrics, &endpoint)?;
        // Before the first line: whoever reads it may signal at once.
        let shutdown = crate::shutdown::signals()?;
        let mut reload = Reload::new(&settings)?;
        let grace = args.grace.resolve(settings.grace_period);
        view.println(
            out,
            &format!(
                "listening on {}, storing into {} ({}{}){}",
                endpoint.local_addr(),
                ctx.dir.display(),
                settings.listener_note(),
                super::config::listener_fallback_note(&endpoint),
                start_line(&metrics)
            ),
        )?;
        let (reports, mut finished) =
            mpsc::unbounded_channel::<(u64, SessionReport, Arc<Progress>)>();
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + view.period(), view.period());
        let stop = shutdown.stopped();
        tokio::pin!(stop);
        // The sessions in flight, to close them if they outlive the grace
        // period.
        let mut open: HashMap<u64, Session> = HashMap::new();
        let mut next_id = 0u64;
        // Once stopping: the signal, and when the grace period ends.
        let mut stopping: Option<(Signal, tokio::time::Instant)> = None;
        let (mut unauthenticated, mut unauthorized) = (0, 0);
        let mut result = Ok(());
        loop {
            if stopping.is_some() && open.is_empty() {
                break;
            }
            tokio::select! {
                accepted = endpoint.accept() => {
                    let Some(session) = accepted else { break };
                    if args.once {
                        endpoint.set_accept_incoming(false);
                    }
                    // Read at once: a session that is gone names no peer.
                    let identity = session.peer_identity().map(|key| peer_label(&key, reload.keys()));
                    match &identity {
                        Some(peer) => {
                            info!(from = %session.remote_addr(), %peer, "session from an authenticated peer");
                            view.println(out, &format!("session from {}, peer {peer}", session.remote_addr()))?;
                        }
                        None => view.println(out, &format!("session from {}", session.remote_addr()))?,
                    }
                    let progress = Arc::new(Progress::new(format!("from {}", session.remote_addr())));
                    view.add(progress.clone());
                    let ctx = ctx.clone();
                    let reports = reports.clone();
                    let id = next_id;
                    next_id += 1;
                    open.insert(id, session.clone());
                    tokio::spawn(async move {
                        let report = serve_session(session, identity, ctx, progress.clone()).await;
                        let _ = reports.send((id, report, progress));
                    });
                }
                Some((id, report, progress)) = finished.recv() => {
                    open.remove(&id);
                    view.remove(&progress);
                    result = summary::summarize(&report, &mut |line| view.println(out, line))?;
                    if args.once {
                        break;
                    }
                }
                _ = tick.tick() => {
                    view.update(out)?;
                    let dropped = endpoint.stats().dropped_unauthenticated;
                    if dropped > unauthenticated {
                        warn!(
                            dropped = dropped - unauthenticated,
                            "datagrams failed authentication: a peer may use another key; check that both sides use the same --key-file, and that starters pin this side's public key (--peer-key)"
                        );
                        unauthenticated = dropped;
                    }
                    let refused = endpoint.stats().dropped_unauthorized;
                    if refused > unauthorized {
                        warn!(
                            refused = refused - unauthorized,
                            "starters refused: their keys are not in the authorized keys (-vv logs each key)"
                        );
                        unauthorized = refused;
                    }
                }
                () = reload.hangup() => {
                    reload.apply(&endpoint);
                }
                signal = &mut stop, if stopping.is_none() => {
                    endpoint.set_accept_incoming(false);
                    view.println(out, &crate::shutdown::stop_line(
                        signal,
                        open.len() as u64,
                        ("session", "sessions"),
                        grace,
                        "no new sessions; those in flight may finish",
                    ))?;
                    stopping = Some((signal, tokio::time::Instant::now() + grace));
                }
                _ = tokio::time::sleep_until(stopping.map_or_else(tokio::time::Instant::now, |s| s.1)), if stopping.is_some() => {
                    let (signal, _) = stopping.expect("stopping");
                    let cut = open.len();
                    warn!(
                        sessions = cut,
                        "grace period over: closing the sessions still in flight (their partial files are deleted, or kept to be resumed if of 1 MiB or more)"
                    );
                    for session in open.values() {
                        session.close(CLOSE_SHUTDOWN);
                    }
                    // Their summaries, as they end (at once: their streams end
                    // with the session).
                    let last = async {
                        while !open.is_empty() {
                            let Some((id, report, progress)) = finished.recv().await else { break };
                            open.remove(&id);
                            view.remove(&progress);
                            // Cut: the exit code says so, whatever each says.
                            let _ = summary::summarize(&report, &mut |line| view.println(out, line))?;
                        }
                        Ok::<_, CliError>(())
                    };
                    let _ = tokio::time::timeout(Duration::from_secs(5), last).await;
                    result = Err(CliError::Stopped(format!(
                        "stopped by {}: {} cut at the end of the {} grace period (--grace-period); their partial files were deleted (or kept, for files of 1 MiB or more, to be resumed by the next send)",
                        signal.name(),
                        crate::counted(cut as u64, "session was", "sessions were"),
                        secs(grace)
                    )));
                    break;
                }
            }
        }
        endpoint.close().await;
        match result {
            Err(CliError::Stopped(why)) => Err(CliError::Stopped(why)),
            // Nothing was cut: a server stopped on purpose did its job (the
            // summaries said how each session went).
            _ if stopping.is_some() && !args.once => Ok(()),
            result => result,
        }
    })
}

/// Creates `dir` if needed and checks that files can be created in it.
fn prepare_dir(dir: &Path) -> Result<PathBuf, CliError> {
    let fail = |e: std::io::Error| CliError::Io {
        context: format!("cannot use {} as --dir: {}", dir.display(), io_advice(&e)),
        source: e,
    };
    std::fs::create_dir_all(dir).map_err(fail)?;
    let dir = std::fs::canonicalize(dir).map_err(fail)?;
    let probe = dir.join(format!(".ferry-probe-{:016x}", random_u64()));
    std::fs::File::create_new(&probe).map_err(fail)?;
    let _ = std::fs::remove_file(&probe);
    Ok(dir)
}

/// Receives the entries of one session until it ends.
async fn serve_session(
    session: Session,
    identity: Option<String>,
    ctx: Arc<Ctx>,
    progress: Arc<Progress>,
) -> SessionReport {
    let start = Instant::now();
    let peer = session.remote_addr();
    // The default stream: the manifest in, progress reports out. A sender
    // of another version is not cut off: each of its entries is refused with
    // the reason (its header does not decode either), so that it reports
    // what to do, and the summary says it too.
    let version = Arc::new(std::sync::OnceLock::new());
    let manifest = {
        let session = session.clone();
        let progress = progress.clone();
        let version = version.clone();
        tokio::spawn(async move {
            while let Ok(message) = session.recv().await {
                match Manifest::decode(&message) {
                    Ok(m) => {
                        progress.total_entries.store(m.entries, Ordering::Relaxed);
                        progress.total_bytes.store(m.bytes, Ordering::Relaxed);
                    }
                    Err(e @ WireError::Version { .. }) => {
                        warn!(%peer, "{e}");
                        let _ = version.set(e);
                    }
                    Err(e) => debug!(%peer, error = %e, "unexpected message ignored"),
                }
            }
        })
    };
    let reporter = {
        let session = session.clone();
        let progress = progress.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                let bytes = progress.bytes.load(Ordering::Relaxed);
                if bytes != last {
                    if session.send(encode_progress(bytes)).await.is_err() {
                        break;
                    }
                    last = bytes;
                }
            }
        })
    };
    let mut tasks = JoinSet::new();
    while let Some(stream) = session.accept_stream().await {
        tasks.spawn(receive_entry(stream, ctx.clone(), progress.clone()));
    }
    let end = session.closed().await;
    let mut entries = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        if let Ok(entry) = joined {
            entries.push(entry);
        }
    }
    manifest.abort();
    reporter.abort();
    SessionReport {
        peer,
        identity,
        entries,
        elapsed: start.elapsed(),
        stats: session.stats(),
        end,
        version: version.get().cloned(),
    }
}

/// Receives one entry and answers it.
async fn receive_entry(
    stream: Stream,
    ctx: Arc<Ctx>,
    progress: Arc<Progress>,
) -> (String, EntryOutcome) {
    let header = match stream.recv().await {
        Ok(Some(message)) => match EntryHeader::decode(&message) {
            Ok(header) => header,
            Err(e) => {
                let _ = stream
                    .send(Reply::new(ReplyCode::Malformed, e.to_string()).encode())
                    .await;
                return (
                    "?".into(),
                    EntryOutcome::Refused(ReplyCode::Malformed, e.to_string()),
                );
            }
        },
        Ok(None) => {
            return (
                "?".into(),
                EntryOutcome::Incomplete("the stream ended before its header".into()),
            );
        }
        Err(e) => return ("?".into(), EntryOutcome::Incomplete(e.to_string())),
    };
    let name = format!("{:?}", header.name);
    let name = name.trim_matches('"').to_owned();
    if header.kind == EntryKind::File {
        progress.set_current(&name);
    }
    let outcome = store(&stream, &ctx, &header, &progress).await;
    let reply = match &outcome {
        EntryOutcome::Stored { .. } => Some(Reply::new(ReplyCode::Stored, "")),
        EntryOutcome::Identical => Some(Reply::new(ReplyCode::Identical, "identical")),
        EntryOutcome::Refused(code, why) => Some(Reply::new(*code, why.clone())),
        EntryOutcome::Mismatch(why) => Some(Reply::new(ReplyCode::Mismatch, why.clone())),
        EntryOutcome::LocalIo(why) => Some(Reply::new(ReplyCode::ReceiverIo, why.clone())),
        EntryOutcome::Incomplete(_) => None,
    };
    match &outcome {
        EntryOutcome::Stored { bytes, dir: false } => {
            progress.entries.fetch_add(1, Ordering::Relaxed);
            info!(file = %name, bytes, "file received");
        }
        EntryOutcome::Stored { .. } => {}
        EntryOutcome::Identical => {
            progress.entries.fetch_add(1, Ordering::Relaxed);
            info!(file = %name, "identical file already there");
        }
        EntryOutcome::Incomplete(why) => debug!(file = %name, why, "file incomplete"),
        other => warn!(file = %name, outcome = ?other, "file not stored"),
    }
    if let Some(reply) = reply {
        let _ = stream.send(reply.encode()).await;
    }
    (name, outcome)
}

/// Refuses a path that goes through a symbolic link (or a file) under
/// `dir`: received files stay under `dir`.
fn check_ancestors(dir: &Path, rel: &Path) -> Result<(), String> {
    let mut path = dir.to_path_buf();
    let parts: Vec<_> = rel.components().collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        path.push(part);
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!(
                    "`{}` is a symbolic link on the receiver: refused, files stay under the directory",
                    path.strip_prefix(dir).unwrap_or(&path).display()
                ));
            }
            Ok(meta) if !meta.is_dir() => {
                return Err(format!(
                    "`{}` exists on the receiver and is not a directory",
                    path.strip_prefix(dir).unwrap_or(&path).display()
                ));
            }
            Ok(_) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

fn io_failure(what: &str, path: &Path, e: &std::io::Error) -> EntryOutcome {
    EntryOutcome::LocalIo(format!(
        "cannot {what} {} on the receiver: {e} ({})",
        path.display(),
        io_advice(e)
    ))
}

async fn store(
    stream: &Stream,
    ctx: &Ctx,
    header: &EntryHeader,
    progress: &Arc<Progress>,
) -> EntryOutcome {
    let rel = match sanitize_path(&header.name) {
        Ok(rel) => rel,
        Err(why) => {
            return EntryOutcome::Refused(
                ReplyCode::BadName,
                format!("name {:?} refused: {why}", header.name),
            );
        }
    };
    if let Err(why) = check_ancestors(&ctx.dir, &rel) {
        return EntryOutcome::Refused(ReplyCode::BadName, why);
    }
    let target = ctx.dir.join(&rel);
    let existing = std::fs::symlink_metadata(&target).ok();
    if header.kind == EntryKind::Dir {
        return match existing {
            Some(meta) if meta.is_dir() => EntryOutcome::Stored {
                bytes: 0,
                dir: true,
            },
            Some(_) => EntryOutcome::Refused(
                ReplyCode::Exists,
                format!(
                    "`{}` exists on the receiver and is not a directory",
                    rel.display()
                ),
            ),
            None => match std::fs::create_dir_all(&target) {
                Ok(()) => EntryOutcome::Stored {
                    bytes: 0,
                    dir: true,
                },
                Err(e) => io_failure("create the directory", &target, &e),
            },
        };
    }
    if let Some(meta) = existing {
        if meta.is_dir() || meta.file_type().is_symlink() {
            return EntryOutcome::Refused(
                ReplyCode::Exists,
                format!(
                    "`{}` exists on the receiver and is not a plain file",
                    rel.display()
                ),
            );
        }
        if !ctx.overwrite {
            if meta.len() == header.size {
                return compare_existing(stream, &target, &rel).await;
            }
            return exists(&rel);
        }
    }
    let parent = target.parent().unwrap_or(&ctx.dir).to_path_buf();
    if let Err(e) = std::fs::create_dir_all(&parent) {
        return io_failure("create the directory", &parent, &e);
    }
    let file_name = rel
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(64).collect::<String>())
        .unwrap_or_default();
    let temp = parent.join(format!(".{file_name}.ferry-part-{:016x}", random_u64()));
    let (writer, offset) = if header.size >= RESUME_MIN {
        match resume::start(stream, ctx, &temp, &target, &rel, header.size, progress).await {
            Ok(started) => started,
            Err(outcome) => return outcome,
        }
    } else {
        match FileWriter::create(
            temp.clone(),
            target.clone(),
            ctx.overwrite,
            progress.clone(),
        )
        .await
        {
            Ok(writer) => (writer, 0),
            Err(e) => return io_failure("create", &temp, &e),
        }
    };
    receive_content(stream, writer, (offset, header.size), &rel, &target).await
}

fn exists(rel: &Path) -> EntryOutcome {
    EntryOutcome::Refused(
        ReplyCode::Exists,
        format!(
            "`{}` exists on the receiver with other content: remove it there, or run `ferry receive --overwrite`",
            rel.display()
        ),
    )
}

/// The next content message of a file, or how its stream ended instead.
async fn next_content(stream: &Stream, rel: &Path) -> Result<Content, EntryOutcome> {
    match stream.recv().await {
        Ok(Some(message)) => Content::decode(message).map_err(|e| {
            EntryOutcome::Refused(ReplyCode::Malformed, format!("`{}`: {e}", rel.display()))
        }),
        Ok(None) => Err(EntryOutcome::Refused(
            ReplyCode::Malformed,
            format!("`{}`: the content ended without its digest", rel.display()),
        )),
        Err(StreamRecvError::Reset { .. }) => Err(EntryOutcome::Incomplete(
            "the sender stopped sending it".into(),
        )),
        Err(e) => Err(EntryOutcome::Incomplete(format!(
            "the session ended inside it: {e}"
        ))),
    }
}

/// Takes a file's content messages into `writer` (which holds `offset`
/// bytes already) until the trailer, then has the writer check the digest
/// and name the file. On every other way out the temporary file is deleted,
/// or, if the transfer of a file of at least [`RESUME_MIN`] bytes was cut,
/// kept to be resumed.
async fn receive_content(
    stream: &Stream,
    mut writer: FileWriter,
    (offset, size): (u64, u64),
    rel: &Path,
    target: &Path,
) -> EntryOutcome {
    let mut received = offset;
    let failure = loop {
        match next_content(stream, rel).await {
            Ok(Content::Data(data)) => {
                received += data.len() as u64;
                if received > size {
                    break EntryOutcome::Mismatch(format!(
                        "`{}`: more bytes arrived than the {size} announced: deleted; send it again",
                        rel.display(),
                    ));
                }
                if let Err(written) = writer.write(data).await {
                    return written_outcome(written, rel, target);
                }
            }
            Ok(Content::Trailer(_)) if received != size => {
                break EntryOutcome::Mismatch(format!(
                    "`{}` is incomplete ({received} of {size} bytes arrived before its digest): deleted; send it again",
                    rel.display(),
                ));
            }
            Ok(Content::Trailer(digest)) => {
                return written_outcome(writer.finish(digest).await, rel, target);
            }
            Ok(Content::Resume(_)) => {
                break EntryOutcome::Refused(
                    ReplyCode::Malformed,
                    format!("`{}`: a resume without an offer", rel.display()),
                );
            }
            Err(outcome) => break outcome,
        }
    };
    if matches!(failure, EntryOutcome::Incomplete(_)) && size >= RESUME_MIN {
        match writer.keep(size).await {
            Written::Kept(kept) => {
                info!(file = %rel.display(), kept, size, "transfer cut: the received prefix is kept, to be resumed by the next send");
            }
            other => debug!(file = %rel.display(), outcome = ?other, "cannot keep the partial"),
        }
        return failure;
    }
    writer.abort().await;
    failure
}

fn written_outcome(written: Written, rel: &Path, target: &Path) -> EntryOutcome {
    match written {
        Written::Stored(bytes) => EntryOutcome::Stored { bytes, dir: false },
        Written::Mismatch(bytes) => EntryOutcome::Mismatch(format!(
            "`{}` does not match its BLAKE3 digest ({bytes} bytes arrived): deleted; send it again",
            rel.display(),
        )),
        Written::Exists => EntryOutcome::Refused(
            ReplyCode::Exists,
            format!(
                "`{}` exists on the receiver (it appeared meanwhile): remove it there, or run `ferry receive --overwrite`",
                rel.display()
            ),
        ),
        Written::Failed { what, error, .. } => io_failure(what, target, &error),
        Written::Aborted | Written::Kept(_) => EntryOutcome::Incomplete("stopped".into()),
    }
}

/// A file of that name and size is there, and is not to be overwritten:
/// asks the sender for the digest only, and compares it with the file's
/// (hashed meanwhile).
async fn compare_existing(stream: &Stream, target: &Path, rel: &Path) -> EntryOutcome {
    let ours = tokio::spawn(digest_of(target.to_path_buf()));
    let theirs = async {
        stream
            .send(Reply::new(ReplyCode::DigestOnly, "").encode())
            .await
            .map_err(|e| EntryOutcome::Incomplete(format!("the session ended: {e}")))?;
        loop {
            // Data sent before the request arrived is dropped.
            if let Content::Trailer(digest) = next_content(stream, rel).await? {
                return Ok(digest);
            }
        }
    };
    match theirs.await {
        Ok(theirs) => match ours.await {
            Ok(Some(ours)) if ours == theirs => EntryOutcome::Identical,
            _ => exists(rel),
        },
        Err(outcome) => {
            ours.abort();
            outcome
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ancestors_must_be_plain_directories() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir(root.join("ok")).unwrap();
        std::fs::write(root.join("file"), b"x").unwrap();
        assert!(check_ancestors(root, Path::new("ok/a.txt")).is_ok());
        assert!(check_ancestors(root, Path::new("new/deeper/a.txt")).is_ok());
        assert!(check_ancestors(root, Path::new("file/a.txt")).is_err());
        #[cfg(unix)]
        {
            std::os::unix::fs::symlink("/tmp", root.join("link")).unwrap();
            let err = check_ancestors(root, Path::new("link/a.txt")).unwrap_err();
            assert!(err.contains("symbolic link"), "{err}");
        }
    }
}
