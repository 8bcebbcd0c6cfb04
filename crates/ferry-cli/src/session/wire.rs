//! The messages of `ferry send` / `ferry receive` and `ferry forward`, on top
//! of a Ferry session. All integers are big-endian.
//!
//! # File transfer (version 3)
//!
//! The session's default stream carries, from sender to receiver, one
//! [`Manifest`] (how many entries and bytes will come, for the receiver's
//! progress) and, from receiver to sender, progress messages
//! ([`encode_progress`]) (bytes stored so far), so that the sender's progress
//! shows what arrived rather than what was queued.
//!
//! Each file or directory goes on a reliable ordered stream of its own. The
//! sender reads each file once: it hashes the content as it sends it, and the
//! BLAKE3 digest follows the content as a trailer.
//!
//! ```text
//! sender → receiver   EntryHeader (one message); for a file, Data messages
//!                     holding exactly `size` bytes in all, then one Trailer;
//!                     then the stream's finish
//! receiver → sender   at most one DigestOnly reply (not final), then one
//!                     final Reply: stored, identical, or why not
//! ```
//!
//! ```text
//! EntryHeader: "FRYS" | version 3 | kind u8 (1 file, 2 directory)
//!              | name_len u16 | name (UTF-8, relative, '/'-separated)
//!              | size u64
//! Data:        'D' (0x44) | content bytes (any number)
//! Trailer:     'T' (0x54) | BLAKE3 digest of the whole content, 32 bytes
//! Reply:       code u8 | UTF-8 text (why, for a refusal)
//! Manifest:    "FRYM" | version 3 | entries u64 | bytes u64
//! Progress:    "FRYP" | bytes stored u64
//! ```
//!
//! The receiver checks the trailer against the digest of what it wrote
//! before it gives the file its name. It may reply before the content ends
//! (a refused name, a file that exists with another size): the sender then
//! stops and resets the stream. When a file of that name and size exists and
//! the receiver does not overwrite, it replies [`ReplyCode::DigestOnly`]: the
//! sender then sends no more Data, reads the rest of the file only to hash
//! it, and sends the Trailer; the receiver answers
//! [`ReplyCode::Identical`] if the digests match, else
//! [`ReplyCode::Exists`]. The sender closes the session with [`CLOSE_DONE`]
//! once every final reply arrived.
//!
//! **Resuming** (version 3). For a file of at least [`RESUME_MIN`] bytes
//! the receiver's first answer is always one of: a [`ResumeOffer`]
//! (non-final, code 8: the length of a kept prefix of that name and size
//! and its BLAKE3 digest; offset 0 when there is none), `DigestOnly`, or a
//! final reply; the sender waits for it before any Data. For an offer at
//! offset > 0 the sender reads and hashes its first `offset` bytes and
//! sends [`Content::Resume`] first: `offset` if the digests match (then
//! Data from `offset` on), 0 if not (the receiver discards its prefix;
//! Data from 0). The Trailer's digest covers the whole file either way.
//!
//! ```text
//! ResumeOffer: 8 | offset u64 | BLAKE3 digest of the first offset bytes, 32 bytes
//! Resume:      'R' (0x52) | offset u64 (the offer's, or 0: start again)
//! ```
//!
//! Version 1 carried the digest in the header (the sender read each file
//! twice) and raw content messages; version 2 had no resuming (a version-2
//! sender would not wait for the offer). The versions do not mix (see
//! [`WireError::Version`]): both sides say to upgrade.
//!
//! # Forwarding (version 1)
//!
//! Each TCP connection is one reliable ordered stream. Its first message,
//! from `forward`, is a [`ForwardRequest`] naming the target (empty: the
//! server's default); the first message back is a reply (a code, 0 for connected, and why not). After
//! them, the stream's messages are the connection's bytes; a finish is a
//! TCP FIN, a reset (code [`RESET_TCP`]) a TCP reset.
//!
//! ```text
//! ForwardRequest: "FRYT" | version 1 | target (UTF-8 "host:port", or empty)
//! ForwardReply:   code u8 (0 connected) | UTF-8 text (why not)
//! ```

use std::path::{Component, Path, PathBuf};

use bytes::Bytes;

/// The version of the forwarding messages ([`ForwardRequest`]).
pub const VERSION: u8 = 1;
/// The version of the file messages ([`EntryHeader`], [`Manifest`] and the
/// content framing, [`Content`]): 2 since the digest became a trailer, 3
/// since interrupted files resume ([`ResumeOffer`]).
pub const FILE_VERSION: u8 = 3;
/// Files of at least this many bytes can be resumed: the receiver keeps
/// their received prefix when interrupted, and answers their header with a
/// [`ResumeOffer`] first (smaller files are sent again whole, without the
/// round trip).
pub const RESUME_MIN: u64 = 1 << 20;
/// Tag of a [`Content::Resume`] message.
pub const TAG_RESUME: u8 = b'R';
/// Tag of a [`Content::Data`] message.
pub const TAG_DATA: u8 = b'D';
/// Tag of a [`Content::Trailer`] message.
pub const TAG_TRAILER: u8 = b'T';
/// Bytes of a trailer message: the tag and the digest.
pub const TRAILER_LEN: usize = 33;
/// Longest relative name of a file, in bytes.
pub const MAX_NAME: usize = 4096;
/// Longest component of a name, in bytes.
pub const MAX_COMPONENT: usize = 255;
/// Session close code: the sender got every reply; all is done.
pub const CLOSE_DONE: u64 = 0x4652_5944; // "FRYD"
/// Session close code: the sender gave up (an error, or Ctrl-C or SIGTERM).
pub const CLOSE_ABORTED: u64 = 0x4652_5941; // "FRYA"
/// Session close code: the peer speaks another version of these messages.
pub const CLOSE_VERSION: u64 = 0x4652_5956; // "FRYV"
/// Session close code: this side is stopping (SIGTERM or Ctrl-C) and the
/// session outlived its grace period (`receive`, `forward-server`), or the
/// forwarder is stopping (`forward`).
pub const CLOSE_SHUTDOWN: u64 = 0x4652_5951; // "FRYQ"
/// Stream reset code: the sender stopped sending this file (the receiver
/// refused it, or the file changed or failed to read).
pub const RESET_STOPPED: u64 = 1;
/// Stream reset code of a forwarded connection: the TCP connection was
/// reset.
pub const RESET_TCP: u64 = 2;

const HEADER_MAGIC: [u8; 4] = *b"FRYS";
const MANIFEST_MAGIC: [u8; 4] = *b"FRYM";
const PROGRESS_MAGIC: [u8; 4] = *b"FRYP";
const FORWARD_MAGIC: [u8; 4] = *b"FRYT";

/// What an entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file, with content.
    File = 1,
    /// A directory (sent so that empty ones are recreated); no content.
    Dir = 2,
}

/// The first message of an entry's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeader {
    /// File or directory.
    pub kind: EntryKind,
    /// The relative name, `/`-separated, as the sender chose it.
    pub name: String,
    /// Bytes of content.
    pub size: u64,
}

/// A message could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// Not a message of this kind.
    #[error("not a ferry {0} message")]
    Malformed(&'static str),
    /// Another version of the messages.
    #[error(
        "the peer speaks version {peer} of ferry's {what}, this side version {ours}: upgrade ferry on both sides to the same version"
    )]
    Version {
        /// Which messages ("file messages", "forwarding messages").
        what: &'static str,
        /// The peer's version.
        peer: u8,
        /// This side's version.
        ours: u8,
    },
}

fn take<const N: usize>(bytes: &mut &[u8], what: &'static str) -> Result<[u8; N], WireError> {
    if bytes.len() < N {
        return Err(WireError::Malformed(what));
    }
    let (head, rest) = bytes.split_at(N);
    *bytes = rest;
    Ok(head.try_into().expect("length checked"))
}

/// Which messages a version number is of, and this side's version.
#[derive(Clone, Copy)]
struct Family {
    name: &'static str,
    version: u8,
}

const FILES: Family = Family {
    name: "file messages",
    version: FILE_VERSION,
};
const FORWARDING: Family = Family {
    name: "forwarding messages",
    version: VERSION,
};

/// Takes the magic and the version; `what` names the message.
fn magic(
    bytes: &mut &[u8],
    want: [u8; 4],
    family: Family,
    what: &'static str,
) -> Result<(), WireError> {
    if take::<4>(bytes, what)? != want {
        return Err(WireError::Malformed(what));
    }
    let [peer] = take::<1>(bytes, what)?;
    if peer != family.version {
        return Err(WireError::Version {
            what: family.name,
            peer,
            ours: family.version,
        });
    }
    Ok(())
}

impl EntryHeader {
    /// Encodes the header.
    pub fn encode(&self) -> Vec<u8> {
        let name = self.name.as_bytes();
        let mut out = Vec::with_capacity(16 + name.len());
        out.extend_from_slice(&HEADER_MAGIC);
        out.push(FILE_VERSION);
        out.push(self.kind as u8);
        out.extend_from_slice(&(name.len() as u16).to_be_bytes());
        out.extend_from_slice(name);
        out.extend_from_slice(&self.size.to_be_bytes());
        out
    }

    /// Decodes a header (the whole message).
    pub fn decode(mut bytes: &[u8]) -> Result<Self, WireError> {
        const WHAT: &str = "file header";
        let b = &mut bytes;
        magic(b, HEADER_MAGIC, FILES, WHAT)?;
        let kind = match take::<1>(b, WHAT)? {
            [1] => EntryKind::File,
            [2] => EntryKind::Dir,
            _ => return Err(WireError::Malformed(WHAT)),
        };
        let len = usize::from(u16::from_be_bytes(take::<2>(b, WHAT)?));
        if b.len() != len + 8 {
            return Err(WireError::Malformed(WHAT));
        }
        let name = String::from_utf8(b[..len].to_vec()).map_err(|_| WireError::Malformed(WHAT))?;
        *b = &b[len..];
        let size = u64::from_be_bytes(take::<8>(b, WHAT)?);
        Ok(Self { kind, name, size })
    }
}

/// A message of a file's content, after its [`EntryHeader`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// The next bytes of the content.
    Data(Bytes),
    /// The BLAKE3 digest of the whole content: the last message.
    Trailer([u8; 32]),
    /// The sender's answer to a [`ResumeOffer`], before any Data: the
    /// offer's offset (Data continues from there) or 0 (the prefix did not
    /// match: Data from the first byte).
    Resume(u64),
}

impl Content {
    /// Encodes the message (the sender builds data messages in place
    /// instead: [`TAG_DATA`], then the bytes, in one buffer).
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Self::Data(data) => {
                let mut out = Vec::with_capacity(1 + data.len());
                out.push(TAG_DATA);
                out.extend_from_slice(data);
                out
            }
            Self::Trailer(digest) => trailer(digest),
            Self::Resume(offset) => {
                let mut out = vec![TAG_RESUME];
                out.extend_from_slice(&offset.to_be_bytes());
                out
            }
        }
    }

    /// Decodes a message; the data shares `message`'s bytes.
    pub fn decode(message: Bytes) -> Result<Self, WireError> {
        const WHAT: &str = "file content";
        match message.first() {
            Some(&TAG_DATA) => Ok(Self::Data(message.slice(1..))),
            Some(&TAG_TRAILER) if message.len() == TRAILER_LEN => Ok(Self::Trailer(
                message[1..].try_into().expect("length checked"),
            )),
            Some(&TAG_RESUME) if message.len() == 9 => Ok(Self::Resume(u64::from_be_bytes(
                message[1..].try_into().expect("length checked"),
            ))),
            _ => Err(WireError::Malformed(WHAT)),
        }
    }
}

/// A trailer message: [`TAG_TRAILER`], then `digest`.
pub fn trailer(digest: &[u8; 32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(TRAILER_LEN);
    out.push(TAG_TRAILER);
    out.extend_from_slice(digest);
    out
}

/// How the receiver answers an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyCode {
    /// Stored under its name (or the directory exists now).
    Stored = 0,
    /// A file with the same content is there already: nothing to do.
    Identical = 1,
    /// Another file of that name is there, and the receiver does not
    /// overwrite (`--overwrite`).
    Exists = 2,
    /// The name is not acceptable (absolute, `..`, control characters, a
    /// symbolic link on the way).
    BadName = 3,
    /// The content did not match the digest (or the size).
    Mismatch = 4,
    /// The receiver could not write it (disk full, permission denied).
    ReceiverIo = 5,
    /// The header was not understood (perhaps another version: the text
    /// says).
    Malformed = 6,
    /// Not final: a file of that name and size exists on the receiver, which
    /// does not overwrite. The sender sends no more data, only the
    /// [`Content::Trailer`]; the final reply is [`Identical`](Self::Identical)
    /// or [`Exists`](Self::Exists).
    DigestOnly = 7,
    /// Not final: a [`ResumeOffer`] (decode it with
    /// [`ResumeOffer::decode`]; as a [`Reply`] its text is meaningless).
    Resume = 8,
}

impl ReplyCode {
    fn from_u8(code: u8) -> Option<Self> {
        Some(match code {
            0 => Self::Stored,
            1 => Self::Identical,
            2 => Self::Exists,
            3 => Self::BadName,
            4 => Self::Mismatch,
            5 => Self::ReceiverIo,
            6 => Self::Malformed,
            7 => Self::DigestOnly,
            8 => Self::Resume,
            _ => return None,
        })
    }
}

/// The receiver's answer to one entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// What happened.
    pub code: ReplyCode,
    /// Why, for the operator.
    pub text: String,
}

impl Reply {
    /// A reply.
    pub fn new(code: ReplyCode, text: impl Into<String>) -> Self {
        Self {
            code,
            text: text.into(),
        }
    }

    /// Encodes the reply.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![self.code as u8];
        out.extend_from_slice(self.text.as_bytes());
        out
    }

    /// Decodes a reply.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let (&code, text) = bytes.split_first().ok_or(WireError::Malformed("reply"))?;
        let code = ReplyCode::from_u8(code).ok_or(WireError::Malformed("reply"))?;
        Ok(Self {
            code,
            text: String::from_utf8_lossy(text).into_owned(),
        })
    }
}

/// The receiver's first answer to the header of a file of at least
/// [`RESUME_MIN`] bytes (unless it refuses it or asks for the digest only):
/// it holds the first `offset` bytes of that file, whose BLAKE3 digest is
/// `digest` (offset 0: nothing; send it all).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumeOffer {
    /// Bytes of the file the receiver holds.
    pub offset: u64,
    /// The BLAKE3 digest of those bytes.
    pub digest: [u8; 32],
}

impl ResumeOffer {
    /// Bytes of the message.
    pub const LEN: usize = 41;

    /// Encodes the offer: [`ReplyCode::Resume`], offset, digest.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::LEN);
        out.push(ReplyCode::Resume as u8);
        out.extend_from_slice(&self.offset.to_be_bytes());
        out.extend_from_slice(&self.digest);
        out
    }

    /// Decodes an offer (the whole message).
    pub fn decode(mut bytes: &[u8]) -> Result<Self, WireError> {
        const WHAT: &str = "resume offer";
        if bytes.len() != Self::LEN {
            return Err(WireError::Malformed(WHAT));
        }
        let b = &mut bytes;
        if take::<1>(b, WHAT)? != [ReplyCode::Resume as u8] {
            return Err(WireError::Malformed(WHAT));
        }
        let offset = u64::from_be_bytes(take::<8>(b, WHAT)?);
        let digest = take::<32>(b, WHAT)?;
        Ok(Self { offset, digest })
    }
}

/// What the sender will send: for the receiver's progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Manifest {
    /// Files and directories.
    pub entries: u64,
    /// Bytes of content.
    pub bytes: u64,
}

impl Manifest {
    /// Encodes the manifest.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = MANIFEST_MAGIC.to_vec();
        out.push(FILE_VERSION);
        out.extend_from_slice(&self.entries.to_be_bytes());
        out.extend_from_slice(&self.bytes.to_be_bytes());
        out
    }

    /// Decodes a manifest.
    pub fn decode(mut bytes: &[u8]) -> Result<Self, WireError> {
        let b = &mut bytes;
        magic(b, MANIFEST_MAGIC, FILES, "manifest")?;
        let entries = u64::from_be_bytes(take::<8>(b, "manifest")?);
        let bytes = u64::from_be_bytes(take::<8>(b, "manifest")?);
        Ok(Self { entries, bytes })
    }
}

/// Encodes a progress message: bytes stored so far in the session.
pub fn encode_progress(bytes: u64) -> Vec<u8> {
    let mut out = PROGRESS_MAGIC.to_vec();
    out.extend_from_slice(&bytes.to_be_bytes());
    out
}

/// Decodes a progress message.
pub fn decode_progress(mut bytes: &[u8]) -> Option<u64> {
    let b = &mut bytes;
    (take::<4>(b, "progress").ok()? == PROGRESS_MAGIC)
        .then(|| take::<8>(b, "progress").ok().map(u64::from_be_bytes))
        .flatten()
}

/// The first message of a forwarded connection's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardRequest {
    /// `host:port` to connect to; empty for the server's default.
    pub target: String,
}

impl ForwardRequest {
    /// Encodes the request.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = FORWARD_MAGIC.to_vec();
        out.push(VERSION);
        out.extend_from_slice(self.target.as_bytes());
        out
    }

    /// Decodes a request.
    pub fn decode(mut bytes: &[u8]) -> Result<Self, WireError> {
        let b = &mut bytes;
        magic(b, FORWARD_MAGIC, FORWARDING, "forward request")?;
        let target =
            String::from_utf8(b.to_vec()).map_err(|_| WireError::Malformed("forward request"))?;
        Ok(Self { target })
    }
}

/// The relative path a received name may take under the receiving
/// directory, or why it is refused: it must be relative, `/`-separated, of
/// plain components (not empty, `.` or `..`, at most 255 bytes), without
/// `\`, NUL or other control characters, at most [`MAX_NAME`] bytes.
pub fn sanitize_path(name: &str) -> Result<PathBuf, &'static str> {
    if name.is_empty() {
        return Err("the name is empty");
    }
    if name.len() > MAX_NAME {
        return Err("the name is too long");
    }
    if name.starts_with('/') {
        return Err("the name is an absolute path");
    }
    if name.contains('\\') {
        return Err("the name contains a backslash");
    }
    if name.chars().any(char::is_control) {
        return Err("the name contains a control character");
    }
    let mut path = PathBuf::new();
    for part in name.split('/') {
        match part {
            "" => return Err("the name has an empty component (`//` or a trailing `/`)"),
            "." | ".." => return Err("the name has a `.` or `..` component"),
            p if p.len() > MAX_COMPONENT => {
                return Err("a component of the name is longer than 255 bytes");
            }
            p => path.push(p),
        }
    }
    // Belt and braces: only normal components made it.
    if !path.components().all(|c| matches!(c, Component::Normal(_))) {
        return Err("the name is not a plain relative path");
    }
    Ok(path)
}

/// The name an entry is sent under: the components of `relative` joined
/// with `/`; `None` if one is not UTF-8.
pub fn wire_name(relative: &Path) -> Option<String> {
    let mut parts = Vec::new();
    for c in relative.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str()?),
            _ => return None,
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

#[cfg(test)]
mod tests;
