//! Kept partial files: what `ferry receive` holds of an interrupted file,
//! so that the next `ferry send` of it continues where it stopped.
//!
//! A file of at least [`RESUME_MIN`](super::wire::RESUME_MIN) bytes whose
//! transfer is cut (the session ends, the sender stops) keeps its received
//! prefix beside its final place:
//!
//! ```text
//! DIR/.NAME.ferry-resume        the first OFFSET bytes of NAME
//! DIR/.NAME.ferry-resume.meta   "ferry-resume 1\nname NAME\nsize SIZE\noffset OFFSET\n"
//! ```
//!
//! The data is synced to disk before the record is written, and the record
//! is written atomically (a temporary file, synced, renamed): a record
//! names only bytes that are on disk.
//!
//! A receiver that is itself killed cannot keep anything when it dies, so
//! while it writes a resumable file it leaves a *checkpoint* every
//! [`CHECKPOINT_BYTES`]: it syncs the file and writes the same record with
//! one more line, `data .NAME.ferry-part-RANDOM`, naming the file being
//! written under its temporary name. The writer holds an exclusive lock
//! (`flock`) on that file for as long as it writes: a checkpoint whose file
//! is locked belongs to a live transfer and is left alone; once the
//! receiver is gone (the kernel drops its locks) the next arrival of the
//! same name and size resumes from the checkpoint, and the bytes written
//! after it are cut. At most one prefix is kept per name
//! (a new one replaces it). A prefix is used only for a file of the same
//! name and size, and only once the sender's digest of its own first
//! OFFSET bytes matches the prefix's; otherwise it is discarded. One older
//! than [`KEEP_FOR`] is discarded when its name next arrives; `ferry
//! receive --discard-partial` discards every one instead of resuming.

use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tracing::{debug, info, warn};

/// A kept prefix older than this is discarded rather than resumed.
pub const KEEP_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// How often a resumable file being written leaves a checkpoint: a
/// receiver killed mid-file makes the sender send again at most this much
/// (plus what was in flight) on top of what it lost.
pub const CHECKPOINT_BYTES: u64 = 32 << 20;

const MAGIC: &str = "ferry-resume 1";

/// Where the kept prefix of `target` and its record live.
pub fn paths(target: &Path) -> (PathBuf, PathBuf) {
    let parent = target.parent().unwrap_or(Path::new("."));
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().chars().take(64).collect::<String>())
        .unwrap_or_default();
    (
        parent.join(format!(".{name}.ferry-resume")),
        parent.join(format!(".{name}.ferry-resume.meta")),
    )
}

/// The record of a kept prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The full file name of the target (the paths may be shortened).
    pub name: String,
    /// The whole file's size, as the sender announced it.
    pub size: u64,
    /// Bytes kept (synced to disk).
    pub offset: u64,
    /// A checkpoint's data file: the temporary name (in the same directory)
    /// of the file still being written, or left by a receiver that died.
    /// `None` for a prefix kept at a cut, under its kept name.
    pub data: Option<String>,
}

impl Record {
    fn encode(&self) -> String {
        let mut text = format!(
            "{MAGIC}\nname {}\nsize {}\noffset {}\n",
            self.name, self.size, self.offset
        );
        if let Some(data) = &self.data {
            text.push_str(&format!("data {data}\n"));
        }
        text
    }

    fn decode(text: &str) -> Option<Self> {
        let mut lines = text.lines();
        if lines.next()? != MAGIC {
            return None;
        }
        let name = lines.next()?.strip_prefix("name ")?.to_owned();
        let size = lines.next()?.strip_prefix("size ")?.parse().ok()?;
        let offset = lines.next()?.strip_prefix("offset ")?.parse().ok()?;
        let data = match lines.next() {
            None => None,
            // Only a temporary name of this directory: never a path.
            Some(line) => {
                let data = line.strip_prefix("data ")?;
                let plain = data.starts_with('.')
                    && data.contains(".ferry-part-")
                    && !data.contains(['/', '\\']);
                if !plain {
                    return None;
                }
                Some(data.to_owned())
            }
        };
        (offset <= size).then_some(Self {
            name,
            size,
            offset,
            data,
        })
    }
}

fn file_name(target: &Path) -> String {
    target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Deletes the kept prefix of `target` and its record, if any.
pub fn discard(target: &Path) {
    let (data, meta) = paths(target);
    for path in [meta, data] {
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != io::ErrorKind::NotFound
        {
            warn!(file = %path.display(), error = %e, "cannot delete a kept partial file");
        }
    }
}

/// A kept prefix taken over for a new transfer: renamed to `temp`, open
/// for writing, and its first `offset` bytes hashed.
#[derive(Debug)]
pub struct Claimed {
    /// The file, now under the temporary name.
    pub file: File,
    /// The hash state after the prefix.
    pub hasher: blake3::Hasher,
    /// Bytes of the prefix.
    pub offset: u64,
}

/// Takes over the kept prefix of `target` if its record says it is of a
/// file of `size` bytes: renames it to `temp` (so that no other session
/// takes it too), deletes the record and hashes the prefix. `None` if there
/// is none usable; an unusable one (another size, too old, shorter than
/// its record, `discard_all`) is deleted. A checkpoint whose file a live
/// transfer still writes (it holds the file's lock) is left alone. Blocking.
pub fn claim(target: &Path, size: u64, temp: &Path, discard_all: bool) -> Option<Claimed> {
    let (kept, meta) = paths(target);
    let text = match std::fs::read_to_string(&meta) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            // A prefix without a record (cut before it was written) is of no
            // use.
            if kept.exists() {
                discard(target);
            }
            return None;
        }
        Err(e) => {
            warn!(file = %meta.display(), error = %e, "cannot read a kept partial's record: discarded");
            discard(target);
            return None;
        }
    };
    let record = Record::decode(&text);
    let data = match record.as_ref().and_then(|r| r.data.as_deref()) {
        Some(name) => kept.with_file_name(name),
        None => kept.clone(),
    };
    // The lock first: a live transfer's checkpoint is not ours to judge.
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&data)
    {
        Ok(file) => match try_lock(&file) {
            Ok(true) => Some(file),
            Ok(false) => {
                debug!(file = %data.display(), "the checkpointed file is still being written: left alone");
                return None;
            }
            Err(e) => {
                debug!(file = %data.display(), error = %e, "cannot lock a kept partial");
                None
            }
        },
        Err(_) => None,
    };
    let age = std::fs::metadata(&meta)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .unwrap_or_default();
    let usable = match &record {
        _ if file.is_none() => {
            info!(file = %data.display(), "kept partial missing or unreadable: its record discarded");
            false
        }
        Some(r) if discard_all => {
            info!(file = %r.name, "kept partial discarded (--discard-partial)");
            false
        }
        Some(r) if r.name != file_name(target) || r.size != size => {
            info!(file = %r.name, kept_size = r.size, size, "kept partial is of another file: discarded");
            false
        }
        Some(r) if age > KEEP_FOR => {
            info!(file = %r.name, days = age.as_secs() / 86400, "kept partial too old: discarded");
            false
        }
        Some(r) => r.offset > 0,
        None => {
            warn!(file = %meta.display(), "unreadable kept partial record: discarded");
            false
        }
    };
    let (Some(record), Some(mut file)) = (record.filter(|_| usable), file) else {
        if data != kept {
            let _ = std::fs::remove_file(&data);
        }
        discard(target);
        return None;
    };
    if let Err(e) = std::fs::rename(&data, temp) {
        debug!(file = %data.display(), error = %e, "cannot take the kept partial");
        let _ = std::fs::remove_file(&data);
        discard(target);
        return None;
    }
    let _ = std::fs::remove_file(&meta);
    let fail = |e: io::Error| {
        warn!(file = %temp.display(), error = %e, "cannot read a kept partial: discarded");
        let _ = std::fs::remove_file(temp);
    };
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut left = record.offset;
    while left > 0 {
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        match file.read(&mut buf[..want]) {
            Ok(0) => {
                warn!(file = %temp.display(), "kept partial shorter than its record: discarded");
                let _ = std::fs::remove_file(temp);
                return None;
            }
            Ok(n) => {
                hasher.update(&buf[..n]);
                left -= n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                fail(e);
                return None;
            }
        }
    }
    Some(Claimed {
        file,
        hasher,
        offset: record.offset,
    })
}

/// Keeps `temp` (synced already, `offset` bytes) as the prefix of `target`,
/// a file of `size` bytes: renames it to the kept name, then writes the
/// record atomically. Blocking.
pub fn keep(temp: &Path, target: &Path, size: u64, offset: u64) -> io::Result<()> {
    let (data, meta) = paths(target);
    std::fs::rename(temp, &data)?;
    let record = Record {
        name: file_name(target),
        size,
        offset,
        data: None,
    };
    let written = write_record(&meta, &record);
    if written.is_err() {
        let _ = std::fs::remove_file(&data);
    }
    written
}

/// Records that the first `offset` bytes of `temp` (a file of `size` bytes
/// still being written, locked by its writer, synced up to `offset`) may be
/// resumed if the writer dies. Blocking.
pub fn checkpoint(temp: &Path, target: &Path, size: u64, offset: u64) -> io::Result<()> {
    let (_, meta) = paths(target);
    let record = Record {
        name: file_name(target),
        size,
        offset,
        data: Some(file_name(temp)),
    };
    write_record(&meta, &record)
}

/// Deletes the checkpoint of `target` if it names `temp` (its writer ended:
/// the file got its name, was deleted, or was kept under its kept name).
pub fn forget_checkpoint(temp: &Path, target: &Path) {
    let (_, meta) = paths(target);
    let ours = std::fs::read_to_string(&meta)
        .ok()
        .and_then(|text| Record::decode(&text))
        .is_some_and(|r| r.data.as_deref() == Some(file_name(temp).as_str()));
    if ours {
        let _ = std::fs::remove_file(&meta);
    }
}

/// Takes the exclusive lock of `file` (`flock`) if no other open file
/// holds it: `Ok(false)` if one does. The kernel drops the lock when the
/// file is closed or its process dies. (`File::try_lock` does the same from
/// Rust 1.89, above this workspace's minimum.)
#[cfg(unix)]
pub fn try_lock(file: &File) -> io::Result<bool> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a file descriptor the `File` owns for the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.kind() == io::ErrorKind::WouldBlock {
        Ok(false)
    } else {
        Err(e)
    }
}

/// Without `flock`, no lock: checkpoints are not written
/// ([`checkpoint`] is only called on a locked file).
#[cfg(not(unix))]
pub fn try_lock(_: &File) -> io::Result<bool> {
    Err(io::Error::new(
        io::ErrorKind::Unsupported,
        "file locks need a Unix system",
    ))
}

/// Writes `record` to `meta` atomically: a temporary file, synced, renamed,
/// the directory synced.
fn write_record(meta: &Path, record: &Record) -> io::Result<()> {
    let staging = meta.with_extension(format!("meta-{:016x}", crate::diode::random_u64()));
    let written = (|| {
        let mut f = File::create_new(&staging)?;
        f.write_all(record.encode().as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&staging, meta)?;
        if let Some(dir) = meta.parent()
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&staging);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kept_prefix_is_claimed_once_for_the_same_size_only() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.bin");
        let temp = dir.path().join(".big.bin.ferry-part-1");
        std::fs::write(&temp, b"hello world").unwrap();
        keep(&temp, &target, 100, 5).unwrap();
        let (data, meta) = paths(&target);
        assert!(data.exists() && meta.exists() && !temp.exists());
        let claimed = claim(&target, 100, &temp, false).expect("claimed");
        assert_eq!(claimed.offset, 5);
        assert_eq!(claimed.hasher.finalize(), blake3::hash(b"hello"));
        assert!(!data.exists() && !meta.exists() && temp.exists());
        assert!(claim(&target, 100, &temp, false).is_none(), "only once");

        // Another size: discarded.
        std::fs::remove_file(&temp).unwrap();
        std::fs::write(&temp, b"hello world").unwrap();
        keep(&temp, &target, 100, 5).unwrap();
        assert!(claim(&target, 99, &temp, false).is_none());
        assert!(!data.exists() && !meta.exists());

        // Shorter than its record: discarded.
        std::fs::write(&temp, b"hi").unwrap();
        keep(&temp, &target, 100, 5).unwrap();
        assert!(claim(&target, 100, &temp, false).is_none());
        assert!(!temp.exists() && !data.exists());

        // --discard-partial.
        std::fs::write(&temp, b"hello").unwrap();
        keep(&temp, &target, 100, 5).unwrap();
        assert!(claim(&target, 100, &temp, true).is_none());
        assert!(!data.exists() && !meta.exists());
    }

    #[test]
    fn a_checkpoint_is_left_alone_while_its_writer_lives_and_claimed_once_it_died() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.bin");
        let writing = dir.path().join(".big.bin.ferry-part-00aa");
        let temp = dir.path().join(".big.bin.ferry-part-00bb");
        std::fs::write(&writing, b"hello world").unwrap();
        let writer = File::open(&writing).unwrap();
        assert!(try_lock(&writer).unwrap());
        checkpoint(&writing, &target, 100, 5).unwrap();
        let (_, meta) = paths(&target);
        assert!(claim(&target, 100, &temp, false).is_none(), "live");
        assert!(meta.exists() && writing.exists() && !temp.exists());

        // The writer dies: its lock goes with it.
        drop(writer);
        let claimed = claim(&target, 100, &temp, false).expect("claimed");
        assert_eq!(claimed.offset, 5);
        assert_eq!(claimed.hasher.finalize(), blake3::hash(b"hello"));
        assert!(!meta.exists() && !writing.exists() && temp.exists());
    }

    #[test]
    fn a_checkpoint_is_forgotten_only_by_its_own_writer() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.bin");
        let writing = dir.path().join(".big.bin.ferry-part-00aa");
        std::fs::write(&writing, b"hello").unwrap();
        checkpoint(&writing, &target, 100, 5).unwrap();
        let (_, meta) = paths(&target);
        forget_checkpoint(&dir.path().join(".big.bin.ferry-part-00cc"), &target);
        assert!(meta.exists(), "another writer's");
        forget_checkpoint(&writing, &target);
        assert!(!meta.exists());
    }

    #[test]
    fn a_checkpoint_whose_file_is_gone_is_discarded() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("big.bin");
        let writing = dir.path().join(".big.bin.ferry-part-00aa");
        checkpoint(&writing, &target, 100, 5).unwrap();
        let temp = dir.path().join(".big.bin.ferry-part-00bb");
        assert!(claim(&target, 100, &temp, false).is_none());
        assert!(!paths(&target).1.exists());
    }

    #[test]
    fn records_round_trip_and_garbage_is_refused() {
        let r = Record {
            name: "a b.bin".into(),
            size: 10,
            offset: 4,
            data: None,
        };
        assert_eq!(Record::decode(&r.encode()), Some(r.clone()));
        let checkpoint = Record {
            data: Some(".a b.bin.ferry-part-00ff".into()),
            ..r
        };
        assert_eq!(Record::decode(&checkpoint.encode()), Some(checkpoint));
        for bad in [
            "",
            "ferry-resume 1\nname a\nsize 1\noffset 2\n",
            "ferry-resume 2\nname a\nsize 3\noffset 2\n",
            "ferry-resume 1\nname a\nsize x\noffset 2\n",
            // A checkpoint's data names a temporary file of the directory only.
            "ferry-resume 1\nname a\nsize 3\noffset 2\ndata ../.a.ferry-part-1\n",
            "ferry-resume 1\nname a\nsize 3\noffset 2\ndata /etc/passwd\n",
            "ferry-resume 1\nname a\nsize 3\noffset 2\ndata .a.ferry-resume\n",
        ] {
            assert_eq!(Record::decode(bad), None, "{bad:?}");
        }
    }
}
