//! The errors of the diode driver.

use std::io;
use std::net::SocketAddr;

use ferry_proto::diode::DiodeConfigError;
use thiserror::Error;

/// A diode sender or receiver could not be started, or a session could not
/// be carried out. Each message says what to do about it.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum DiodeError {
    /// Another socket already holds the address.
    #[error(
        "UDP address {0} is already in use: stop the program that holds it, or choose another port"
    )]
    AddrInUse(SocketAddr),
    /// The address does not belong to this host.
    #[error(
        "cannot bind UDP address {0}: it is not an address of this host; use one of its addresses, or 0.0.0.0"
    )]
    AddrNotAvailable(SocketAddr),
    /// The system refused the address (a privileged port, a firewall rule).
    #[error(
        "permission denied binding UDP address {0}: use a port above 1023, or run with the needed privilege"
    )]
    PermissionDenied(SocketAddr),
    /// The local and the destination address are of different families.
    #[error(
        "cannot send from {local} to {to}: one is IPv4 and the other IPv6; bind an address of the destination's family"
    )]
    AddressFamily {
        /// The local address.
        local: SocketAddr,
        /// The destination.
        to: SocketAddr,
    },
    /// The diode configuration is unusable; the message names the key.
    #[error("invalid diode configuration: {0}")]
    Config(#[from] DiodeConfigError),
    /// `max_sessions` sessions are open at the sender.
    #[error(
        "{0} diode sessions are open already: finish one first, or raise `max_sessions` (on both sides)"
    )]
    TooManySessions(usize),
    /// The session was aborted (by its writer, or because the sender was
    /// closed or dropped while it was open).
    #[error("the diode session was aborted: open a new session to send again")]
    SessionAborted,
    /// The sender or receiver was closed, or its driver thread stopped.
    #[error("the diode {0} is closed: create a new one to go on")]
    Closed(&'static str),
    /// A thread could not be started.
    #[error("cannot start the diode's {what} thread: {source}; lower the number of worker threads")]
    Thread {
        /// Which thread.
        what: &'static str,
        /// The system's error.
        source: io::Error,
    },
    /// Another input/output error, on the socket or the poller.
    #[error("{context} {addr}: {source}")]
    Io {
        /// What was being done.
        context: &'static str,
        /// The address concerned.
        addr: SocketAddr,
        /// The system's error.
        source: io::Error,
    },
}

impl From<DiodeError> for io::Error {
    fn from(e: DiodeError) -> Self {
        let kind = match &e {
            DiodeError::SessionAborted | DiodeError::Closed(_) => io::ErrorKind::BrokenPipe,
            DiodeError::AddrInUse(_) => io::ErrorKind::AddrInUse,
            DiodeError::AddrNotAvailable(_) => io::ErrorKind::AddrNotAvailable,
            DiodeError::PermissionDenied(_) => io::ErrorKind::PermissionDenied,
            DiodeError::Io { source, .. } => source.kind(),
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}
