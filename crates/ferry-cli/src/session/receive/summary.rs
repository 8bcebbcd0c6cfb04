//! The summary `ferry receive` prints as each session ends, and the error
//! `--once` exits with when it did not go well.

use ferry_proto::CloseReason;

use super::super::mbit_per_s;
use super::super::progress::human_bytes;
use super::super::stats_line;
use super::super::wire::{CLOSE_DONE, CLOSE_SHUTDOWN};
use super::{EntryOutcome, SessionReport};
use crate::CliError;

/// Prints a session's summary; the error `--once` exits with, if it did
/// not go well.
pub(super) fn summarize(
    report: &SessionReport,
    print: &mut dyn FnMut(&str) -> std::io::Result<()>,
) -> Result<Result<(), CliError>, CliError> {
    let (mut files, mut identical, mut dirs, mut bytes) = (0, 0, 0, 0u64);
    let mut failures = Vec::new();
    let mut worst: Option<CliError> = None;
    for (name, outcome) in &report.entries {
        let (text, error): (String, fn(String) -> CliError) = match outcome {
            EntryOutcome::Stored { bytes: n, dir } => {
                if *dir {
                    dirs += 1;
                } else {
                    files += 1;
                    bytes += n;
                }
                continue;
            }
            EntryOutcome::Identical => {
                identical += 1;
                continue;
            }
            EntryOutcome::Refused(_, why) => (why.clone(), CliError::Failed),
            EntryOutcome::Mismatch(why) => (why.clone(), CliError::Integrity),
            EntryOutcome::LocalIo(why) => (why.clone(), |m| CliError::Io {
                context: m,
                source: std::io::Error::other("write failed"),
            }),
            EntryOutcome::Incomplete(why) => (why.clone(), CliError::Network),
        };
        print(&format!("not stored: {name}: {text}"))?;
        failures.push(name.clone());
        let candidate = error(String::new());
        if worst.as_ref().is_none_or(|w| rank(&candidate) > rank(w)) {
            worst = Some(candidate);
        }
    }
    let from = match &report.identity {
        Some(peer) => format!("{}, peer {peer}", report.peer),
        None => report.peer.to_string(),
    };
    print(&format!(
        "received from {from}: {} ({identical} already there and identical), {}, {} in {:.2} s ({:.1} Mbit/s)",
        crate::counted(files as u64, "file", "files"),
        crate::counted(dirs as u64, "directory", "directories"),
        human_bytes(bytes),
        report.elapsed.as_secs_f64(),
        mbit_per_s(bytes, report.elapsed),
    ))?;
    print(&format!("session: {}", stats_line(&report.stats)))?;
    let complete = matches!(
        report.end,
        CloseReason::Remote {
            code: CLOSE_DONE,
            ..
        }
    );
    if !complete {
        let text = match &report.end {
            CloseReason::Timeout => {
                "the sender stopped answering before the end (stopped, or the network between is down)".to_owned()
            }
            CloseReason::Remote { code, .. } => {
                format!("the sender closed the session before the end (code {code:#x})")
            }
            CloseReason::Local {
                code: CLOSE_SHUTDOWN,
                ..
            } => "this receiver stopped and cut it at the end of its grace period".to_owned(),
            CloseReason::Local { .. } => "this receiver closed the session".to_owned(),
            other => format!("the session ended before the end: {other}"),
        };
        print(&format!("incomplete: {text}; partial files were deleted"))?;
        return Ok(Err(CliError::Network(format!(
            "the session from {} ended before the end: {text}",
            report.peer
        ))));
    }
    if let Some(e) = &report.version {
        print(&format!("the sender {} cannot be served: {e}", report.peer))?;
        return Ok(Err(CliError::Failed(format!(
            "the sender {} cannot be served: {e}",
            report.peer
        ))));
    }
    Ok(match worst {
        None => Ok(()),
        Some(error) => {
            let message = format!(
                "{} of {} entries from {} were not stored: {}",
                failures.len(),
                report.entries.len(),
                report.peer,
                failures.join(", ")
            );
            Err(match error {
                CliError::Integrity(_) => CliError::Integrity(message),
                CliError::Io { source, .. } => CliError::Io {
                    context: message,
                    source,
                },
                CliError::Network(_) => CliError::Network(message),
                _ => CliError::Failed(message),
            })
        }
    })
}

/// Which failure the exit code reports when there are several.
fn rank(e: &CliError) -> u8 {
    match e {
        CliError::Integrity(_) => 4,
        CliError::Io { .. } => 3,
        CliError::Network(_) => 2,
        _ => 1,
    }
}
