//! The messages of `ferry send` / `ferry receive` and `ferry forward`, on top
//! of a Ferry session. All integers are big-endian.
//!
//! # File transfer (version 2)
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
//! EntryHeader: "FRYS" | version 2 | kind u8 (1 file, 2 directory)
//!              | name_len u16 | name (UTF-8, relative, '/'-separated)
//!              | size u64
//! Data:        'D' (0x44) | content bytes (any number)
//! Trailer:     'T' (0x54) | BLAKE3 digest of the whole content, 32 bytes
//! Reply:       code u8 | UTF-8 text (why, for a refusal)
//! Manifest:    "FRYM" | version 2 | entries u64 | bytes u64
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
//! Version 1 carried the digest in the header (the sender read each file
//! twice) and raw content messages; the versions do not mix (see
//! [`WireError::Version`]).
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
/// content framing, [`Content`]): 2 since the digest became a trailer.
pub const FILE_VERSION: u8 = 2;
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
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_is_version_2() {
        let h = EntryHeader {
            kind: EntryKind::File,
            name: "dir/données.bin".into(),
            size: 123_456_789,
        };
        let bytes = h.encode();
        assert_eq!(&bytes[..5], b"FRYS\x02");
        assert_eq!(bytes[5], 1, "kind");
        assert_eq!(&bytes[6..8], &(h.name.len() as u16).to_be_bytes());
        assert_eq!(&bytes[bytes.len() - 8..], &123_456_789u64.to_be_bytes());
        assert_eq!(EntryHeader::decode(&bytes), Ok(h.clone()));
        assert!(EntryHeader::decode(&bytes[..bytes.len() - 1]).is_err());
        assert!(EntryHeader::decode(b"FRYS").is_err());
        assert!(EntryHeader::decode(b"").is_err());
    }

    /// A peer of version 1 (the digest in the header) gets an error that
    /// names both versions and says to upgrade.
    #[test]
    fn a_version_1_header_is_refused_with_advice_to_upgrade() {
        let mut v1 = b"FRYS\x01\x01\x00\x05a.txt".to_vec();
        v1.extend_from_slice(&5u64.to_be_bytes());
        v1.extend_from_slice(&[0; 32]);
        let err = EntryHeader::decode(&v1).unwrap_err();
        assert_eq!(
            err,
            WireError::Version {
                what: "file messages",
                peer: 1,
                ours: FILE_VERSION
            }
        );
        let text = err.to_string();
        assert!(
            text.contains("version 1") && text.contains("version 2"),
            "{text}"
        );
        assert!(text.contains("upgrade ferry on both sides"), "{text}");
        let mut manifest = Manifest {
            entries: 1,
            bytes: 5,
        }
        .encode();
        manifest[4] = 1;
        assert!(matches!(
            Manifest::decode(&manifest),
            Err(WireError::Version { peer: 1, .. })
        ));
        // The forwarding messages keep their own version.
        let f = ForwardRequest {
            target: String::new(),
        }
        .encode();
        assert_eq!(&f[..5], b"FRYT\x01");
    }

    #[test]
    fn content_messages_round_trip() {
        let data = Content::Data(Bytes::from_static(b"some bytes"));
        let bytes = data.encode();
        assert_eq!(bytes, b"Dsome bytes");
        assert_eq!(Content::decode(Bytes::from(bytes)), Ok(data));
        assert_eq!(
            Content::decode(Bytes::from_static(b"D")),
            Ok(Content::Data(Bytes::new()))
        );
        let digest = *blake3::hash(b"some bytes").as_bytes();
        let t = trailer(&digest);
        assert_eq!(t.len(), TRAILER_LEN);
        assert_eq!(t[0], b'T');
        assert_eq!(&t[1..], &digest);
        assert_eq!(Content::Trailer(digest).encode(), t);
        assert_eq!(
            Content::decode(Bytes::from(t)),
            Ok(Content::Trailer(digest))
        );
    }

    #[test]
    fn truncated_or_garbage_content_is_a_typed_error() {
        let digest = [9u8; 32];
        let t = trailer(&digest);
        for bad in [&b""[..], &t[..TRAILER_LEN - 1], b"T", b"X123", b"FRYS\x02"] {
            assert_eq!(
                Content::decode(Bytes::copy_from_slice(bad)),
                Err(WireError::Malformed("file content")),
                "{bad:?}"
            );
        }
        let mut long = t.clone();
        long.push(0);
        assert!(Content::decode(Bytes::from(long)).is_err());
    }

    #[test]
    fn digest_only_is_a_reply_code() {
        let r = Reply::new(ReplyCode::DigestOnly, "");
        assert_eq!(r.encode(), [7]);
        assert_eq!(Reply::decode(&[7]), Ok(r));
        assert!(Reply::decode(&[8]).is_err());
        assert!(Reply::decode(&[]).is_err());
    }

    #[test]
    fn small_messages_round_trip() {
        let m = Manifest {
            entries: 3,
            bytes: 1 << 40,
        };
        assert_eq!(Manifest::decode(&m.encode()), Ok(m));
        assert_eq!(decode_progress(&encode_progress(77)), Some(77));
        assert_eq!(decode_progress(&m.encode()), None);
        let r = Reply::new(ReplyCode::Exists, "a.txt exists");
        assert_eq!(Reply::decode(&r.encode()), Ok(r));
        assert!(Reply::decode(&[99]).is_err());
        let f = ForwardRequest {
            target: "db:5432".into(),
        };
        assert_eq!(ForwardRequest::decode(&f.encode()), Ok(f));
    }

    #[test]
    fn names_are_sanitised() {
        assert_eq!(sanitize_path("a.txt"), Ok(PathBuf::from("a.txt")));
        assert_eq!(sanitize_path("d/e/f.txt"), Ok(PathBuf::from("d/e/f.txt")));
        assert_eq!(sanitize_path("..."), Ok(PathBuf::from("...")));
        assert_eq!(sanitize_path(".hidden"), Ok(PathBuf::from(".hidden")));
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            ".",
            "..",
            "a\\..\\b",
            "nul\0byte",
            "line\nbreak",
            "esc\u{1b}[2J",
        ] {
            assert!(sanitize_path(bad).is_err(), "{bad:?}");
        }
        assert!(sanitize_path(&"x".repeat(256)).is_err());
        assert!(sanitize_path(&"x/".repeat(3000)).is_err());
    }

    mod properties {
        use proptest::prelude::*;

        use super::*;

        fn header() -> impl Strategy<Value = EntryHeader> {
            (
                prop_oneof![Just(EntryKind::File), Just(EntryKind::Dir)],
                "[^\\x00]{0,300}",
                any::<u64>(),
            )
                .prop_map(|(kind, name, size)| EntryHeader { kind, name, size })
        }

        proptest! {
            #[test]
            fn headers_round_trip(h in header()) {
                prop_assert_eq!(EntryHeader::decode(&h.encode()), Ok(h));
            }

            /// Whatever arrives: no panic, and what decodes encodes back to
            /// the same bytes (one meaning per message).
            #[test]
            fn decoding_any_bytes_is_safe_and_canonical(
                bytes in prop::collection::vec(any::<u8>(), 0..400),
                prefix in prop_oneof![
                    Just(&b""[..]),
                    Just(&b"FRYS\x02"[..]),
                    Just(&b"FRYM\x02"[..]),
                    Just(&b"FRYT\x01"[..]),
                    Just(&b"D"[..]),
                    Just(&b"T"[..]),
                ],
            ) {
                let bytes = [prefix, &bytes[..]].concat();
                if let Ok(h) = EntryHeader::decode(&bytes) {
                    prop_assert_eq!(h.encode(), bytes.clone());
                }
                if let Ok(m) = Manifest::decode(&bytes) {
                    prop_assert_eq!(&m.encode()[..], &bytes[..21]);
                }
                if let Ok(f) = ForwardRequest::decode(&bytes) {
                    prop_assert_eq!(f.encode(), bytes.clone());
                }
                match Content::decode(Bytes::from(bytes.clone())) {
                    Ok(c) => prop_assert_eq!(c.encode(), bytes.clone()),
                    Err(e) => prop_assert_eq!(e, WireError::Malformed("file content")),
                }
                let _ = Reply::decode(&bytes);
                let _ = decode_progress(&bytes);
            }

            #[test]
            fn content_round_trips(data in prop::collection::vec(any::<u8>(), 0..2000), digest in any::<[u8; 32]>()) {
                let d = Content::Data(Bytes::from(data));
                prop_assert_eq!(Content::decode(Bytes::from(d.encode())), Ok(d));
                let t = Content::Trailer(digest);
                prop_assert_eq!(Content::decode(Bytes::from(t.encode())), Ok(t));
            }

            #[test]
            fn small_messages_round_trip_for_any_value(
                entries in any::<u64>(),
                total in any::<u64>(),
                progress in any::<u64>(),
                target in "[^\\x00]{0,100}",
                text in ".{0,100}",
            ) {
                let m = Manifest { entries, bytes: total };
                prop_assert_eq!(Manifest::decode(&m.encode()), Ok(m));
                prop_assert_eq!(decode_progress(&encode_progress(progress)), Some(progress));
                let f = ForwardRequest { target };
                prop_assert_eq!(ForwardRequest::decode(&f.encode()), Ok(f.clone()));
                let r = Reply::new(ReplyCode::Stored, text);
                prop_assert_eq!(Reply::decode(&r.encode()), Ok(r));
            }

            /// A name that passes stays inside the receiving directory: it is
            /// relative, of plain components only, and as the sender spelt it.
            #[test]
            fn a_sanitised_name_stays_inside(name in "([a-z.]{0,3}|\\.\\.|/|\\\\|\\x00|\\n){0,12}") {
                if let Ok(path) = sanitize_path(&name) {
                    prop_assert!(path.is_relative());
                    prop_assert!(path.components().all(|c| matches!(c, Component::Normal(_))));
                    prop_assert_eq!(wire_name(&path), Some(name.clone()));
                    let inside = Path::new("/srv/in").join(&path);
                    prop_assert!(inside.starts_with("/srv/in"));
                }
            }
        }
    }

    #[test]
    fn wire_names() {
        assert_eq!(wire_name(Path::new("a/b/c")).as_deref(), Some("a/b/c"));
        assert_eq!(wire_name(Path::new("../a")), None);
        assert_eq!(wire_name(Path::new("")), None);
    }
}
