//! The sender's side of resuming (see [`wire`](super::super::wire)): check
//! a receiver's offer against this file's first bytes, read (not sent), and
//! answer it.

use std::path::Path;

use bytes::Bytes;
use ferry_tokio::Stream;
use tracing::{info, warn};

use super::super::disk::{FileReader, Read};
use super::super::wire::{Content, ResumeOffer, TAG_DATA};
use super::{Failure, Sent};

/// Where sending continues after an offer.
pub(super) struct Resumed {
    /// The reader, past the prefix (or a new one, from the first byte).
    pub reader: FileReader,
    /// The first data message to send (the rest of the chunk the prefix
    /// ended in), if any.
    pub pending: Option<Bytes>,
    /// Bytes the receiver keeps (0: it starts again).
    pub offset: u64,
}

/// Reads and hashes the first `offer.offset` bytes of `reader`; if their
/// digest is the offer's, answers `Resume(offset)` and returns the reader
/// past them, else answers `Resume(0)` and returns a new reader of
/// `source` from the first byte.
pub(super) async fn answer(
    mut reader: FileReader,
    offer: ResumeOffer,
    stream: &Stream,
    source: &Path,
    chunk: usize,
) -> Result<Result<Resumed, Sent>, Failure> {
    let mut hasher = blake3::Hasher::new();
    let mut read = 0u64;
    let mut pending = None;
    if offer.offset <= reader.size() {
        while read < offer.offset {
            match reader.next().await {
                Some(Read::Data(message)) => {
                    let data = &message[1..];
                    let left = usize::try_from(offer.offset - read).unwrap_or(usize::MAX);
                    let take = data.len().min(left);
                    hasher.update(&data[..take]);
                    read += take as u64;
                    if take < data.len() {
                        let mut rest = Vec::with_capacity(1 + data.len() - take);
                        rest.push(TAG_DATA);
                        rest.extend_from_slice(&data[take..]);
                        pending = Some(Bytes::from(rest));
                    }
                }
                Some(Read::End(_)) => break,
                Some(Read::Changed) => return Ok(Err(Sent::Changed)),
                Some(Read::Failed(e)) => return Err(Failure::Read(e)),
                None => {
                    return Err(Failure::Read(std::io::Error::other(
                        "the reading thread ended unexpectedly",
                    )));
                }
            }
        }
    }
    let name = source.display();
    if read == offer.offset && hasher.finalize().as_bytes() == &offer.digest {
        info!(file = %name, offset = offer.offset, "the receiver holds the first bytes already: resuming");
        stream
            .send(Content::Resume(offer.offset).encode())
            .await
            .map_err(Failure::Send)?;
        return Ok(Ok(Resumed {
            reader,
            pending,
            offset: offer.offset,
        }));
    }
    warn!(file = %name, offset = offer.offset, "the receiver's kept prefix does not match this file: sending it whole");
    let size = reader.size();
    drop(reader);
    let reader = FileReader::open(source.to_path_buf(), chunk)
        .await
        .map_err(Failure::Read)?;
    if reader.size() != size {
        return Ok(Err(Sent::Changed));
    }
    stream
        .send(Content::Resume(0).encode())
        .await
        .map_err(Failure::Send)?;
    Ok(Ok(Resumed {
        reader,
        pending: None,
        offset: 0,
    }))
}
