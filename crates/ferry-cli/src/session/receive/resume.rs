//! The receiver's side of resuming (see [`wire`](super::super::wire)): for
//! a file of at least [`RESUME_MIN`](super::RESUME_MIN) bytes, offer the
//! kept prefix of that name and size (or nothing), and start writing where
//! the sender agrees to continue.

use std::path::Path;
use std::sync::Arc;

use ferry_tokio::Stream;
use tracing::{info, warn};

use super::super::disk::FileWriter;
use super::super::partial::{self, Claimed};
use super::super::progress::Progress;
use super::super::wire::{Content, ReplyCode, ResumeOffer};
use super::{Ctx, EntryOutcome, io_failure, next_content};

/// Offers what is kept of `target` (a file of `size` bytes) and returns a
/// writer of `temp` with the bytes it holds already: the prefix if the
/// sender's digest of it matched, else 0 (the prefix discarded).
pub(super) async fn start(
    stream: &Stream,
    ctx: &Ctx,
    temp: &Path,
    target: &Path,
    rel: &Path,
    size: u64,
    progress: &Arc<Progress>,
) -> Result<(FileWriter, u64), EntryOutcome> {
    let claimed = {
        let (target, temp) = (target.to_path_buf(), temp.to_path_buf());
        let discard = ctx.discard_partial;
        tokio::task::spawn_blocking(move || partial::claim(&target, size, &temp, discard))
            .await
            .ok()
            .flatten()
    };
    let offer = match &claimed {
        Some(c) => ResumeOffer {
            offset: c.offset,
            digest: *c.hasher.clone().finalize().as_bytes(),
        },
        None => ResumeOffer {
            offset: 0,
            digest: [0; 32],
        },
    };
    let create = async |claimed: Option<Claimed>| {
        let writer = match claimed {
            None => {
                FileWriter::create_resumable(
                    temp.to_path_buf(),
                    target.to_path_buf(),
                    ctx.overwrite,
                    progress.clone(),
                    size,
                )
                .await
            }
            Some(c) => {
                FileWriter::resume(
                    temp.to_path_buf(),
                    target.to_path_buf(),
                    ctx.overwrite,
                    progress.clone(),
                    c,
                    size,
                )
                .await
            }
        };
        writer.map_err(|e| {
            let _ = std::fs::remove_file(temp);
            io_failure("create", temp, &e)
        })
    };
    if let Err(e) = stream.send(offer.encode()).await {
        put_back(claimed, temp, target, size);
        return Err(EntryOutcome::Incomplete(format!("the session ended: {e}")));
    }
    let Some(mut claimed) = claimed else {
        return Ok((create(None).await?, 0));
    };
    match next_content(stream, rel).await {
        Ok(Content::Resume(at)) if at == claimed.offset => {
            info!(file = %rel.display(), offset = at, size, "resuming: the sender's first bytes match the kept prefix");
            Ok((create(Some(claimed)).await?, at))
        }
        Ok(Content::Resume(0)) => {
            warn!(file = %rel.display(), kept = claimed.offset, "the kept prefix does not match the sender's file (changed, or the prefix is corrupt): discarded, receiving it from the first byte");
            claimed.offset = 0;
            claimed.hasher = blake3::Hasher::new();
            Ok((create(Some(claimed)).await?, 0))
        }
        Ok(_) => {
            let _ = std::fs::remove_file(temp);
            Err(EntryOutcome::Refused(
                ReplyCode::Malformed,
                format!(
                    "`{}`: the sender did not answer the resume offer",
                    rel.display()
                ),
            ))
        }
        Err(outcome) => {
            put_back(Some(claimed), temp, target, size);
            Err(outcome)
        }
    }
}

/// Keeps a claimed prefix again (the transfer ended before it was used).
fn put_back(claimed: Option<Claimed>, temp: &Path, target: &Path, size: u64) {
    if let Some(c) = claimed {
        drop(c.file);
        if let Err(e) = partial::keep(temp, target, size, c.offset) {
            warn!(file = %target.display(), error = %e, "cannot keep the partial again");
            let _ = std::fs::remove_file(temp);
        }
    }
}
