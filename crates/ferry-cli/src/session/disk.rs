//! The disk side of `ferry send` and `ferry receive`, off the session's
//! threads.
//!
//! Each file is read ([`FileReader`]) or written ([`FileWriter`]) by a
//! blocking thread of its own (tokio's blocking pool), in chunks of up to
//! [`CHUNK`] bytes, and hashed (BLAKE3) on that same thread as it goes. The
//! thread and the session's tasks pass chunks over a bounded channel: the
//! session's driver never waits on the disk, and at most a few MiB per file
//! wait in between ([`READ_AHEAD`] chunks when reading, [`WRITE_BUDGET`]
//! bytes when writing).

use std::fs::File;
use std::io::{self, Read as _, Seek as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::partial::{self, Claimed};
use super::progress::Progress;
use super::wire::TAG_DATA;

/// Most bytes of content read at once, and sent as one message.
pub const CHUNK: usize = 1 << 20;
/// Chunks a reading thread may have read ahead of the session.
pub const READ_AHEAD: usize = 4;
/// Bytes received and not yet written, per file.
pub const WRITE_BUDGET: usize = 8 << 20;

fn thread_gone() -> io::Error {
    io::Error::other("the disk thread ended unexpectedly")
}

/// What a [`FileReader`] yields.
#[derive(Debug)]
pub enum Read {
    /// The next bytes of the file, as a whole data message: [`TAG_DATA`],
    /// then the bytes (at least one).
    Data(Bytes),
    /// The whole file was read, unchanged: the BLAKE3 digest of every byte.
    End([u8; 32]),
    /// The file changed while it was read: its size or its modification
    /// time is not what it was when opened. What was read is not the file.
    Changed,
    /// Reading failed.
    Failed(io::Error),
}

/// A file being read and hashed by a thread of its own.
#[derive(Debug)]
pub struct FileReader {
    chunks: mpsc::Receiver<Read>,
    size: u64,
}

impl FileReader {
    /// Opens `path` and starts reading it in chunks of up to `chunk` bytes
    /// (each a whole data message of `chunk + 1` bytes). Fails if the file
    /// cannot be opened. Dropping the reader stops the thread.
    pub async fn open(path: PathBuf, chunk: usize) -> io::Result<Self> {
        let chunk = chunk.clamp(1, CHUNK);
        let (opened, size) = oneshot::channel();
        let (tx, chunks) = mpsc::channel(READ_AHEAD);
        tokio::task::spawn_blocking(move || read_file(&path, chunk, opened, &tx));
        let size = size.await.map_err(|_| thread_gone())??;
        Ok(Self { chunks, size })
    }

    /// The file's size when it was opened: what the reader expects to read.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The next chunk, or how the reading ended; `None` after that.
    pub async fn next(&mut self) -> Option<Read> {
        self.chunks.recv().await
    }
}

/// The reading thread: opens, reports the size, reads, hashes, checks that
/// the file did not change.
fn read_file(
    path: &Path,
    chunk: usize,
    opened: oneshot::Sender<io::Result<u64>>,
    tx: &mpsc::Sender<Read>,
) {
    let file = match File::open(path).and_then(|f| f.metadata().map(|m| (f, m))) {
        Ok((file, meta)) if meta.is_file() => (file, meta),
        Ok(_) => {
            let _ = opened.send(Err(io::Error::other("it is no longer a regular file")));
            return;
        }
        Err(e) => {
            let _ = opened.send(Err(e));
            return;
        }
    };
    let (mut file, meta) = file;
    let size = meta.len();
    if opened.send(Ok(size)).is_err() {
        return;
    }
    let mut hasher = blake3::Hasher::new();
    let mut total = 0u64;
    loop {
        // `read_to_end` reads into the spare capacity without zeroing it
        // first, in a few large reads.
        let mut buf = Vec::with_capacity(1 + chunk);
        buf.push(TAG_DATA);
        let n = match (&mut file).take(chunk as u64).read_to_end(&mut buf) {
            Ok(n) => n,
            Err(e) => {
                let _ = tx.blocking_send(Read::Failed(e));
                return;
            }
        };
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > size {
            let _ = tx.blocking_send(Read::Changed);
            return;
        }
        hasher.update(&buf[1..]);
        if tx.blocking_send(Read::Data(Bytes::from(buf))).is_err() {
            // The sender stopped (the receiver answered early).
            return;
        }
    }
    let unchanged = file
        .metadata()
        .is_ok_and(|after| after.len() == size && after.modified().ok() == meta.modified().ok());
    let last = if unchanged && total == size {
        Read::End(*hasher.finalize().as_bytes())
    } else {
        debug!(file = %path.display(), size, total, "changed while read");
        Read::Changed
    };
    let _ = tx.blocking_send(last);
}

/// Reads until `buf` is full or the file ends; the bytes read.
fn fill_buf(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The BLAKE3 digest of a file (read on a blocking thread), `None` if it
/// cannot be read.
pub async fn digest_of(path: PathBuf) -> Option<[u8; 32]> {
    tokio::task::spawn_blocking(move || {
        let mut file = File::open(path).ok()?;
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0; CHUNK];
        loop {
            match fill_buf(&mut file, &mut buf).ok()? {
                0 => break,
                n => hasher.update(&buf[..n]),
            };
        }
        Some(*hasher.finalize().as_bytes())
    })
    .await
    .ok()
    .flatten()
}

/// How writing a file ended.
#[derive(Debug)]
pub enum Written {
    /// Checked and stored under its name: the bytes.
    Stored(u64),
    /// The content did not match the digest: the temporary file was
    /// deleted. The bytes written.
    Mismatch(u64),
    /// Without `--overwrite`, a file of that name appeared meanwhile: the
    /// temporary file was deleted.
    Exists,
    /// The disk failed: what was being done (`"write"`, `"rename into"`), on
    /// which path, and the error. The temporary file was deleted.
    Failed {
        /// What was being done.
        what: &'static str,
        /// The path it was done on.
        path: PathBuf,
        /// The error.
        error: io::Error,
    },
    /// Stopped before the end ([`FileWriter::abort`]): the temporary file
    /// was deleted.
    Aborted,
    /// Stopped before the end and kept to be resumed
    /// ([`FileWriter::keep`]): the bytes kept, synced to disk.
    Kept(u64),
}

enum Command {
    Data(Bytes, Option<OwnedSemaphorePermit>),
    Finish([u8; 32]),
    /// Keep what was written as the prefix of a file of this size.
    Keep(u64),
}

/// A file being written, under a temporary name, and hashed by a thread of
/// its own; it gets its name only once its digest is checked.
#[derive(Debug)]
pub struct FileWriter {
    commands: mpsc::Sender<Command>,
    budget: Arc<Semaphore>,
    done: JoinHandle<Written>,
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Data(b, _) => write!(f, "Data({} bytes)", b.len()),
            Self::Finish(_) => f.write_str("Finish"),
            Self::Keep(size) => write!(f, "Keep({size})"),
        }
    }
}

impl FileWriter {
    /// Creates `temp` (it must not exist) and starts the thread that writes
    /// it; once finished and checked it is named `target` (replacing a file
    /// of that name only with `overwrite`). Each chunk written adds to
    /// `progress.bytes`. Fails if `temp` cannot be created.
    pub async fn create(
        temp: PathBuf,
        target: PathBuf,
        overwrite: bool,
        progress: Arc<Progress>,
    ) -> io::Result<Self> {
        Self::start(temp, target, overwrite, progress, None, None).await
    }

    /// Like [`create`](Self::create), for a file of `size` bytes that may
    /// be resumed if the receiver dies: the file is locked while written and
    /// leaves a checkpoint every [`partial::CHECKPOINT_BYTES`]
    /// ([`partial::checkpoint`]).
    pub async fn create_resumable(
        temp: PathBuf,
        target: PathBuf,
        overwrite: bool,
        progress: Arc<Progress>,
        size: u64,
    ) -> io::Result<Self> {
        Self::start(temp, target, overwrite, progress, None, Some(size)).await
    }

    /// Like [`create_resumable`](Self::create_resumable), but continues a
    /// kept prefix already renamed to `temp` ([`partial::claim`]): writes
    /// from its `offset` on (anything beyond it is cut), hashing on from its
    /// state, and counts its bytes in `progress.bytes`.
    pub async fn resume(
        temp: PathBuf,
        target: PathBuf,
        overwrite: bool,
        progress: Arc<Progress>,
        claimed: Claimed,
        size: u64,
    ) -> io::Result<Self> {
        Self::start(temp, target, overwrite, progress, Some(claimed), Some(size)).await
    }

    async fn start(
        temp: PathBuf,
        target: PathBuf,
        overwrite: bool,
        progress: Arc<Progress>,
        claimed: Option<Claimed>,
        resumable: Option<u64>,
    ) -> io::Result<Self> {
        let (created, result) = oneshot::channel();
        // A few commands beyond the budget's chunks: Finish, empty chunks.
        let (commands, rx) = mpsc::channel(64);
        let done = tokio::task::spawn_blocking(move || {
            let mut unlocked = false;
            let opened = match claimed {
                None => File::create_new(&temp).map(|f| {
                    // The lock tells a later claim that this file is live
                    // (the claimed prefix holds its lock already); without
                    // one, no checkpoints.
                    if resumable.is_some() && !matches!(partial::try_lock(&f), Ok(true)) {
                        debug!(file = %temp.display(), "cannot lock the file: no checkpoints");
                        unlocked = true;
                    }
                    (f, blake3::Hasher::new(), 0)
                }),
                Some(c) => {
                    let Claimed {
                        mut file,
                        hasher,
                        offset,
                    } = c;
                    file.set_len(offset)
                        .and_then(|()| file.seek(io::SeekFrom::Start(offset)))
                        .map(|_| (file, hasher, offset))
                }
            };
            let (file, hasher, offset) = match opened {
                Ok(opened) => {
                    let _ = created.send(Ok(()));
                    opened
                }
                Err(e) => {
                    let _ = created.send(Err(e));
                    return Written::Aborted;
                }
            };
            progress.bytes.fetch_add(offset, Ordering::Relaxed);
            let partial = Partial {
                path: temp,
                keep: false,
                checkpointed: resumable
                    .filter(|_| !unlocked)
                    .map(|size| (target.clone(), size)),
            };
            let start = Start { hasher, offset };
            write_file(file, partial, &target, overwrite, &progress, start, rx)
        });
        result.await.map_err(|_| thread_gone())??;
        Ok(Self {
            commands,
            budget: Arc::new(Semaphore::new(WRITE_BUDGET)),
            done,
        })
    }

    /// Queues `data` to be written, waiting while [`WRITE_BUDGET`] bytes
    /// wait already. If the thread stopped (the disk failed), how it ended.
    pub async fn write(&mut self, data: Bytes) -> Result<(), Written> {
        let permit = if data.is_empty() {
            None
        } else {
            let want = data.len().min(WRITE_BUDGET) as u32;
            Some(
                self.budget
                    .clone()
                    .acquire_many_owned(want)
                    .await
                    .expect("the budget is never closed"),
            )
        };
        if self
            .commands
            .send(Command::Data(data, permit))
            .await
            .is_err()
        {
            return Err(self.end().await);
        }
        Ok(())
    }

    /// Ends the file: writes what is queued, syncs it to disk, checks its
    /// BLAKE3 digest against `digest` and, if they match, gives it its name.
    pub async fn finish(mut self, digest: [u8; 32]) -> Written {
        let _ = self.commands.send(Command::Finish(digest)).await;
        self.end().await
    }

    /// Stops writing and keeps what was written, synced, as the prefix of
    /// a file of `size` bytes, to be resumed ([`partial::keep`]).
    pub async fn keep(mut self, size: u64) -> Written {
        let _ = self.commands.send(Command::Keep(size)).await;
        self.end().await
    }

    /// Stops writing and deletes the temporary file (once this resolves, it
    /// is gone).
    pub async fn abort(mut self) {
        let (closed, _) = mpsc::channel(1);
        self.commands = closed;
        let _ = self.end().await;
    }

    async fn end(&mut self) -> Written {
        (&mut self.done).await.unwrap_or_else(|e| Written::Failed {
            what: "write",
            path: PathBuf::new(),
            error: io::Error::other(e),
        })
    }
}

/// Where a writing thread starts: the hash state and bytes of a resumed
/// prefix (none for a new file).
struct Start {
    hasher: blake3::Hasher,
    offset: u64,
}

/// The writing thread: writes and hashes each chunk, then checks and
/// renames; the temporary file is deleted unless it got its name or was
/// kept.
fn write_file(
    mut file: File,
    mut partial: Partial,
    target: &Path,
    overwrite: bool,
    progress: &Progress,
    start: Start,
    mut rx: mpsc::Receiver<Command>,
) -> Written {
    let failed = |what, path: &Path, error| Written::Failed {
        what,
        path: path.to_path_buf(),
        error,
    };
    let Start {
        mut hasher,
        offset: mut bytes,
    } = start;
    let mut checkpointed = bytes;
    while let Some(command) = rx.blocking_recv() {
        match command {
            Command::Data(data, permit) => {
                hasher.update(&data);
                if let Err(e) = file.write_all(&data) {
                    return failed("write", target, e);
                }
                bytes += data.len() as u64;
                if let Some((_, size)) = &partial.checkpointed
                    && bytes - checkpointed >= partial::CHECKPOINT_BYTES
                {
                    // Synced before the record names these bytes; a failed
                    // checkpoint only costs what a later resume could save.
                    let done = file
                        .sync_data()
                        .and_then(|()| partial::checkpoint(&partial.path, target, *size, bytes));
                    if let Err(e) = done {
                        debug!(file = %partial.path.display(), error = %e, "cannot write a checkpoint");
                    }
                    checkpointed = bytes;
                }
                progress
                    .bytes
                    .fetch_add(data.len() as u64, Ordering::Relaxed);
                drop(permit);
            }
            Command::Finish(digest) => {
                if let Err(e) = file.sync_all() {
                    return failed("write", target, e);
                }
                drop(file);
                if hasher.finalize().as_bytes() != &digest {
                    return Written::Mismatch(bytes);
                }
                return match persist(&partial.path, target, overwrite) {
                    Ok(moved) => {
                        partial.keep = moved;
                        Written::Stored(bytes)
                    }
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Written::Exists,
                    Err(e) => failed("rename into", target, e),
                };
            }
            Command::Keep(size) => {
                // Synced before the record names these bytes.
                if let Err(e) = file.sync_all() {
                    return failed("write", target, e);
                }
                drop(file);
                return match partial::keep(&partial.path, target, size, bytes) {
                    Ok(()) => {
                        partial.keep = true;
                        Written::Kept(bytes)
                    }
                    Err(e) => failed("keep the partial of", target, e),
                };
            }
        }
    }
    Written::Aborted
}

/// Deletes a temporary file unless kept, and the checkpoint that names it.
struct Partial {
    path: PathBuf,
    keep: bool,
    /// For a resumable file: its target and size, for its checkpoints.
    checkpointed: Option<(PathBuf, u64)>,
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.keep
            && let Err(e) = std::fs::remove_file(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            warn!(file = %self.path.display(), error = %e, "cannot delete a partial file");
        }
        if let Some((target, _)) = &self.checkpointed {
            partial::forget_checkpoint(&self.path, target);
        }
    }
}

/// Gives `temp` the name `target`: replacing it with `overwrite` (an atomic
/// rename), else only if it does not exist (a hard link, which fails if it
/// does). Returns whether `temp` itself was moved (else it is to be
/// removed).
pub fn persist(temp: &Path, target: &Path, overwrite: bool) -> io::Result<bool> {
    if overwrite {
        std::fs::rename(temp, target)?;
        return Ok(true);
    }
    match std::fs::hard_link(temp, target) {
        Ok(()) => Ok(false),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(e) => {
            // No hard links on this file system: check, then rename.
            debug!(error = %e, "hard link failed; renaming");
            if std::fs::symlink_metadata(target).is_ok() {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            std::fs::rename(temp, target)?;
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn persist_never_clobbers_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let temp = dir.path().join("t");
        let target = dir.path().join("a");
        std::fs::write(&temp, b"new").unwrap();
        std::fs::write(&target, b"old").unwrap();
        let err = persist(&temp, &target, false).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert!(persist(&temp, &target, true).unwrap());
        assert_eq!(std::fs::read(&target).unwrap(), b"new");
    }

    /// The reader cuts the file into whole data messages and ends with the
    /// digest of every byte.
    #[test]
    fn a_file_is_read_once_in_chunks_with_its_digest_at_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let content: Vec<u8> = (0..10_000u32).map(|i| (i * 7) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        runtime().block_on(async {
            let mut reader = FileReader::open(path, 4096).await.unwrap();
            assert_eq!(reader.size(), 10_000);
            let mut got = Vec::new();
            let mut sizes = Vec::new();
            let digest = loop {
                match reader.next().await.unwrap() {
                    Read::Data(b) => {
                        assert_eq!(b[0], TAG_DATA);
                        sizes.push(b.len() - 1);
                        got.extend_from_slice(&b[1..]);
                    }
                    Read::End(d) => break d,
                    other => panic!("{other:?}"),
                }
            };
            assert_eq!(sizes, [4096, 4096, 1808]);
            assert_eq!(got, content);
            assert_eq!(&digest, blake3::hash(&content).as_bytes());
            assert!(reader.next().await.is_none());
        });
    }

    /// A file that grows while it is read is reported changed, not sent
    /// with a digest of whatever was read.
    #[test]
    fn a_file_that_changes_while_read_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing");
        std::fs::write(&path, vec![1u8; 1000]).unwrap();
        runtime().block_on(async {
            // Ten-byte chunks: the thread stops a few chunks ahead.
            let mut reader = FileReader::open(path.clone(), 10).await.unwrap();
            assert_eq!(reader.size(), 1000);
            let mut file = std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .unwrap();
            file.write_all(b"more").unwrap();
            drop(file);
            let mut data = 0;
            loop {
                match reader.next().await.unwrap() {
                    Read::Data(b) => data += b.len() - 1,
                    Read::Changed => break,
                    other => panic!("{other:?}"),
                }
            }
            assert!(data <= 1000);
        });
    }

    #[test]
    fn a_missing_file_fails_to_open() {
        let dir = tempfile::tempdir().unwrap();
        let err = runtime()
            .block_on(FileReader::open(dir.path().join("none"), CHUNK))
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::NotFound);
    }

    /// The receiving side's verifier: a wrong digest leaves nothing under
    /// the real name, and no temporary file either.
    #[test]
    fn a_wrong_digest_leaves_no_file_under_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.bin");
        let temp = dir.path().join(".a.bin.ferry-part-1");
        let progress = Arc::new(Progress::new("test"));
        let written = runtime().block_on(async {
            let mut w = FileWriter::create(temp.clone(), target.clone(), false, progress.clone())
                .await
                .unwrap();
            w.write(Bytes::from_static(b"hello ")).await.unwrap();
            w.write(Bytes::from_static(b"world")).await.unwrap();
            assert!(temp.exists(), "written under the temporary name");
            assert!(!target.exists());
            w.finish(*blake3::hash(b"hello there").as_bytes()).await
        });
        assert!(matches!(written, Written::Mismatch(11)), "{written:?}");
        assert!(!target.exists());
        assert!(names(dir.path()).is_empty(), "{:?}", names(dir.path()));
        assert_eq!(progress.bytes.load(Ordering::Relaxed), 11);
    }

    /// A writer of `target` through `temp`, not overwriting.
    async fn writer(temp: &Path, target: &Path) -> FileWriter {
        let progress = Arc::new(Progress::new("test"));
        FileWriter::create(temp.to_owned(), target.to_owned(), false, progress)
            .await
            .unwrap()
    }

    #[test]
    fn a_right_digest_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.bin");
        let temp = dir.path().join(".a.bin.ferry-part-2");
        let content = vec![5u8; 3 * CHUNK + 17];
        let written = runtime().block_on(async {
            let mut w = writer(&temp, &target).await;
            for part in content.chunks(CHUNK) {
                w.write(Bytes::copy_from_slice(part)).await.unwrap();
            }
            w.finish(*blake3::hash(&content).as_bytes()).await
        });
        assert!(matches!(written, Written::Stored(n) if n == content.len() as u64));
        assert_eq!(std::fs::read(&target).unwrap(), content);
        assert_eq!(names(dir.path()), ["a.bin"]);
    }

    #[test]
    fn an_aborted_file_is_deleted_and_an_existing_name_kept() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.bin");
        std::fs::write(&target, b"old").unwrap();
        let rt = runtime();
        rt.block_on(async {
            let temp = dir.path().join(".a.bin.ferry-part-3");
            let mut w = writer(&temp, &target).await;
            w.write(Bytes::from_static(b"partial")).await.unwrap();
            w.abort().await;
            assert!(!temp.exists());
            let mut w = writer(&temp, &target).await;
            w.write(Bytes::from_static(b"new")).await.unwrap();
            let written = w.finish(*blake3::hash(b"new").as_bytes()).await;
            assert!(matches!(written, Written::Exists), "{written:?}");
            // The temporary name exists already: refused.
            std::fs::write(&temp, b"x").unwrap();
            let err = FileWriter::create(temp, target.clone(), false, Arc::new(Progress::new("t")))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        });
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
    }

    /// A kept prefix, claimed again, continues: the digest of the whole
    /// file checks the prefix and the new bytes together.
    #[test]
    fn a_kept_file_resumes_and_is_checked_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.bin");
        let temp = dir.path().join(".big.bin.ferry-part-4");
        let content: Vec<u8> = (0..3000u32).map(|i| (i * 13) as u8).collect();
        let rt = runtime();
        let kept = rt.block_on(async {
            let mut w = writer(&temp, &target).await;
            w.write(Bytes::copy_from_slice(&content[..1000]))
                .await
                .unwrap();
            w.keep(3000).await
        });
        assert!(matches!(kept, Written::Kept(1000)), "{kept:?}");
        assert!(!temp.exists() && !target.exists());
        let claimed = partial::claim(&target, 3000, &temp, false).unwrap();
        assert_eq!(claimed.offset, 1000);
        let progress = Arc::new(Progress::new("test"));
        let written = rt.block_on(async {
            let mut w = FileWriter::resume(
                temp.clone(),
                target.clone(),
                false,
                progress.clone(),
                claimed,
                3000,
            )
            .await
            .unwrap();
            w.write(Bytes::copy_from_slice(&content[1000..]))
                .await
                .unwrap();
            w.finish(*blake3::hash(&content).as_bytes()).await
        });
        assert!(matches!(written, Written::Stored(3000)), "{written:?}");
        assert_eq!(std::fs::read(&target).unwrap(), content);
        assert_eq!(progress.bytes.load(Ordering::Relaxed), 3000);
        assert_eq!(names(dir.path()), ["big.bin"]);
    }

    #[test]
    fn digest_of_reads_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let content = vec![9u8; CHUNK + 3];
        std::fs::write(&path, &content).unwrap();
        let rt = runtime();
        assert_eq!(
            rt.block_on(digest_of(path)),
            Some(*blake3::hash(&content).as_bytes())
        );
        assert_eq!(rt.block_on(digest_of(dir.path().join("none"))), None);
    }
}
