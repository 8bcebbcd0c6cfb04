//! The exit codes of `ferry`, one per kind of failure, so that scripts can
//! tell a network problem from a wrong key or a corrupted file.

use std::io;

use crate::CliError;

/// How `ferry` exits. The number is the process's exit status.
///
/// 0 and 2 are those of every clap program (success, and a usage error:
/// unknown flag, missing or malformed argument); the others say which kind
/// of failure ended the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Exit {
    /// The command did what it was asked.
    Success = 0,
    /// Any other failure: invalid settings or configuration file, files
    /// refused by the receiver, a protocol error.
    Failure = 1,
    /// The command line is wrong (clap's code): an unknown flag, a missing
    /// or malformed argument; also a command this build of `ferry` lacks
    /// ([`CliError::NotBuilt`]).
    Usage = 2,
    /// The network: a socket cannot be bound (port in use, not an address of
    /// this host), a name does not resolve, the peer does not answer or
    /// refuses, or the session died.
    Network = 3,
    /// Authentication: the peer refused the handshake because the two sides
    /// do not hold the same key (`--key-file`), the listener does not admit
    /// this side's identity (`--authorized-keys`) or is not the one pinned
    /// (`--peer-key`); or a key file is unusable.
    Authentication = 4,
    /// Integrity: data arrived that does not match its BLAKE3 digest (the
    /// file changed while it was sent, or was corrupted).
    Integrity = 5,
    /// Local file system: a file or directory cannot be read or written
    /// (permission denied, disk full, no such file).
    LocalIo = 6,
    /// Interrupted before the work was done; the shell's convention for
    /// SIGINT. `send` stopped by Ctrl-C or SIGTERM; `receive` stopped by a
    /// signal while sessions outlived the grace period (they were cut,
    /// [`CliError::Stopped`]); any command given a second signal, which
    /// exits at once (see [`crate::shutdown`]). A long-running command
    /// stopped by a signal otherwise exits with 0.
    Interrupted = 130,
}

impl Exit {
    /// The process exit status.
    pub fn code(self) -> u8 {
        self as u8
    }
}

impl From<Exit> for std::process::ExitCode {
    fn from(exit: Exit) -> Self {
        Self::from(exit.code())
    }
}

/// The exit codes as `ferry --help` lists them.
pub const EXIT_CODES_HELP: &str = "\
Exit codes:
  0    success
  1    other failure (invalid settings or configuration, files refused)
  2    usage error (unknown flag, missing or malformed argument, command not built in)
  3    network: port in use, name not resolved, peer not answering or refusing, session lost
  4    authentication: the two sides do not use the same --key-file, or do not admit each other's identity
  5    integrity: data did not match its BLAKE3 digest
  6    local I/O: permission denied, disk full, no such file
  130  interrupted: Ctrl-C or SIGTERM cut work in flight (send; receive after --grace-period), or a second signal

Stopping: SIGTERM or Ctrl-C stops a server gracefully: it stops accepting, gives the work
in flight --grace-period seconds (default 10) to finish, cuts the rest, and exits 0 (receive:
130 if sessions were cut); a second signal exits at once with 130.

Logging: -v (info), -vv (debug), -vvv (trace), -q (errors only, no report);
without them FERRY_LOG or RUST_LOG (e.g. FERRY_LOG=ferry_cli=debug) sets the filter.";

/// Whether an I/O error is the network's (a socket, a peer) rather than
/// the local file system's.
pub(crate) fn is_network(e: &io::Error) -> bool {
    use io::ErrorKind as K;
    matches!(
        e.kind(),
        K::ConnectionRefused
            | K::ConnectionReset
            | K::ConnectionAborted
            | K::NotConnected
            | K::AddrInUse
            | K::AddrNotAvailable
            | K::TimedOut
            | K::HostUnreachable
            | K::NetworkUnreachable
            | K::NetworkDown
            | K::BrokenPipe
    )
}

impl CliError {
    /// The exit code this error ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            Self::Invalid(_) | Self::TransferFailed(_) | Self::Failed(_) => Exit::Failure,
            Self::Diode(
                ferry_diode::DiodeError::AddrInUse(_)
                | ferry_diode::DiodeError::AddrNotAvailable(_)
                | ferry_diode::DiodeError::PermissionDenied(_)
                | ferry_diode::DiodeError::AddressFamily { .. }
                | ferry_diode::DiodeError::Io { .. },
            ) => Exit::Network,
            Self::Diode(_) => Exit::Failure,
            Self::Network(_) => Exit::Network,
            Self::NotBuilt(_) | Self::Missing(_) => Exit::Usage,
            Self::Authentication(_) => Exit::Authentication,
            Self::Integrity(_) => Exit::Integrity,
            Self::Interrupted | Self::Stopped(_) => Exit::Interrupted,
            Self::Io { source, .. } if is_network(source) => Exit::Network,
            Self::Output(_) | Self::Io { .. } => Exit::LocalIo,
        }
    }
}

/// Advice for a local I/O error on `path`: what to do about it.
pub(crate) fn io_advice(e: &io::Error) -> &'static str {
    match e.kind() {
        io::ErrorKind::PermissionDenied => {
            "permission denied: check the owner and mode of the file or directory, or run as a user who may use it"
        }
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            "the disk is full (or the quota reached): free some space, or choose another directory"
        }
        io::ErrorKind::NotFound => "no such file or directory: check the path",
        io::ErrorKind::ReadOnlyFilesystem => {
            "the file system is read-only: choose a writable directory"
        }
        io::ErrorKind::AlreadyExists => "it already exists",
        _ => "check the path and the disk",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct() {
        let all = [
            Exit::Success,
            Exit::Failure,
            Exit::Usage,
            Exit::Network,
            Exit::Authentication,
            Exit::Integrity,
            Exit::LocalIo,
            Exit::Interrupted,
        ];
        let mut codes: Vec<u8> = all.iter().map(|e| e.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), all.len());
        for e in all {
            assert!(
                EXIT_CODES_HELP.contains(&format!("  {}  ", e.code())),
                "{e:?} missing from the help"
            );
        }
    }

    #[test]
    fn io_errors_are_classified() {
        let refused = CliError::Io {
            context: "connect".into(),
            source: io::ErrorKind::ConnectionRefused.into(),
        };
        assert_eq!(refused.exit(), Exit::Network);
        let full = CliError::Io {
            context: "write".into(),
            source: io::ErrorKind::StorageFull.into(),
        };
        assert_eq!(full.exit(), Exit::LocalIo);
    }

    #[test]
    fn a_command_not_built_in_is_a_usage_error() {
        let err = CliError::NotBuilt("ferry bench");
        assert_eq!(err.exit(), Exit::Usage);
        let message = err.to_string();
        assert!(message.contains("`ferry bench`"), "{message}");
        assert!(message.contains("--features bench"), "{message}");
    }

    /// The system's own errors, as a full disk or a forbidden directory
    /// raise them, get advice that says what to do.
    #[test]
    fn os_errors_get_advice() {
        let enospc = io::Error::from_raw_os_error(28);
        assert!(io_advice(&enospc).contains("disk is full"), "{enospc}");
        let eacces = io::Error::from_raw_os_error(13);
        assert!(io_advice(&eacces).contains("permission denied"), "{eacces}");
        let erofs = io::Error::from_raw_os_error(30);
        assert!(io_advice(&erofs).contains("read-only"), "{erofs}");
    }
}
