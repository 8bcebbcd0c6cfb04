//! The framing of files over a diode session (`diode-send-file`,
//! `diode-send-dir` → `diode-receive-file`).
//!
//! One connection (one diode session) carries any number of files, back to
//! back, each a header and then its bytes:
//!
//! ```text
//! magic    4 bytes   "FRYF"
//! version  1 byte    2 (1: without the metadata below, still read)
//! name_len 2 bytes   u16, big-endian, 1..=255
//! name     name_len  UTF-8: the file's name (its final path component)
//! size     8 bytes   u64, big-endian: bytes of content
//! digest   32 bytes  BLAKE3 of the content
//! -- version 2 only --
//! present  1 byte    bit 0: mode is known, bit 1: mtime is known
//! mode     4 bytes   u32, big-endian: the Unix permission bits
//! mtime    12 bytes  i64 seconds and u32 nanoseconds since the Unix epoch, big-endian
//! content  size bytes
//! ```
//!
//! Unknown metadata travels as zeros with its `present` bit clear; the
//! receiver then leaves that attribute as it creates it.

use std::io::{self, Read};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use thiserror::Error;

/// The first bytes of every file header.
pub const MAGIC: [u8; 4] = *b"FRYF";
/// The framing's version: 2 carries the file's mode and modification time.
pub const VERSION: u8 = 2;
/// Longest file name, in bytes.
pub const MAX_NAME: usize = 255;

const HAS_MODE: u8 = 1;
const HAS_MTIME: u8 = 2;

/// One file's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader {
    /// The name, as sent.
    pub name: String,
    /// Bytes of content.
    pub size: u64,
    /// BLAKE3 digest of the content.
    pub digest: [u8; 32],
    /// The Unix permission bits (`st_mode & 0o7777`), when known.
    pub mode: Option<u32>,
    /// The modification time, when known.
    pub modified: Option<SystemTime>,
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

/// A time as seconds (negative before 1970) and nanoseconds since the epoch.
fn to_epoch(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (d.as_secs().min(i64::MAX as u64) as i64, d.subsec_nanos()),
        Err(e) => {
            let d = e.duration();
            let (s, n) = (d.as_secs().min(i64::MAX as u64) as i64, d.subsec_nanos());
            if n == 0 {
                (-s, 0)
            } else {
                (-s - 1, 1_000_000_000 - n)
            }
        }
    }
}

fn from_epoch(secs: i64, nanos: u32) -> Option<SystemTime> {
    if nanos >= 1_000_000_000 {
        return None;
    }
    if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::new(secs as u64, nanos))
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::from_secs(secs.unsigned_abs()))?
            .checked_add(Duration::from_nanos(u64::from(nanos)))
    }
}

impl FileHeader {
    /// Encodes the header (version 2).
    pub fn encode(&self) -> Vec<u8> {
        let name = self.name.as_bytes();
        let mut out = Vec::with_capacity(4 + 1 + 2 + name.len() + 8 + 32 + 17);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&self.size.to_be_bytes());
        out.extend_from_slice(&self.digest);
        let mut present = 0;
        if self.mode.is_some() {
            present |= HAS_MODE;
        }
        if self.modified.is_some() {
            present |= HAS_MTIME;
        }
        out.push(present);
        out.extend_from_slice(&self.mode.unwrap_or(0).to_be_bytes());
        let (secs, nanos) = self.modified.map_or((0, 0), to_epoch);
        out.extend_from_slice(&secs.to_be_bytes());
        out.extend_from_slice(&nanos.to_be_bytes());
        out
    }

    /// Reads the next header (version 1 or 2); `None` at a clean end of
    /// stream (before its first byte).
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
        let version = fixed[0];
        if version != 1 && version != 2 {
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
        let (mut mode, mut modified) = (None, None);
        if version == 2 {
            let mut meta = [0u8; 17];
            r.read_exact(&mut meta)?;
            let present = meta[0];
            if present & !(HAS_MODE | HAS_MTIME) != 0 {
                return Err(FrameError::Malformed("unknown metadata flags"));
            }
            if present & HAS_MODE != 0 {
                mode = Some(u32::from_be_bytes([meta[1], meta[2], meta[3], meta[4]]) & 0o7777);
            }
            if present & HAS_MTIME != 0 {
                let secs = i64::from_be_bytes(meta[5..13].try_into().expect("8 bytes"));
                let nanos = u32::from_be_bytes(meta[13..17].try_into().expect("4 bytes"));
                // An impossible time is only metadata: dropped, not fatal.
                modified = from_epoch(secs, nanos);
            }
        }
        Ok(Some(Self {
            name,
            size: u64::from_be_bytes(size),
            digest,
            mode,
            modified,
        }))
    }
}

/// The permission bits of a file's metadata (`None` off Unix).
pub fn mode_of(meta: &std::fs::Metadata) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        Some(meta.permissions().mode() & 0o7777)
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        None
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let h = FileHeader {
            name: "données.bin".into(),
            size: 123_456_789,
            digest: [7; 32],
            mode: Some(0o640),
            modified: Some(UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789)),
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
    fn unknown_metadata_stays_unknown() {
        let h = FileHeader {
            name: "a".into(),
            size: 0,
            digest: [0; 32],
            mode: None,
            modified: None,
        };
        assert_eq!(FileHeader::read(&mut &h.encode()[..]).unwrap(), Some(h));
    }

    #[test]
    fn version_1_headers_are_still_read() {
        let mut v1 = Vec::new();
        v1.extend_from_slice(&MAGIC);
        v1.push(1);
        v1.extend_from_slice(&1u16.to_be_bytes());
        v1.push(b'x');
        v1.extend_from_slice(&5u64.to_be_bytes());
        v1.extend_from_slice(&[9; 32]);
        let h = FileHeader::read(&mut &v1[..]).unwrap().unwrap();
        assert_eq!(
            (h.name.as_str(), h.size, h.mode, h.modified),
            ("x", 5, None, None)
        );
    }

    #[test]
    fn times_before_1970_survive() {
        let t = UNIX_EPOCH - Duration::new(10, 250);
        let (s, n) = to_epoch(t);
        assert_eq!(from_epoch(s, n), Some(t));
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
}
