//! The diode tools: one-way transfer across a data diode, between TCP on each
//! side.
//!
//! ```text
//!  files ──► diode-send-file ─TCP─► diode-send ══UDP, one way══► diode-receive ─TCP─► diode-receive-file ──► files
//!  (or diode-send-dir)              (one session per             (one TCP connection
//!                                    TCP connection)              per session)
//! ```
//!
//! - [`send`] (`ferry diode-send`): a TCP server; each accepted connection
//!   becomes one diode session, sent over UDP with RaptorQ repair.
//! - [`receive`] (`ferry diode-receive`): receives the sessions and replays
//!   each on its own TCP connection to a server; a session that finishes
//!   intact (length and BLAKE3 digest checked) ends with a clean close, a
//!   lost one with a reset, so the server never mistakes a loss for an end.
//! - [`file`](mod@file) (`ferry diode-send-file`, `ferry diode-receive-file`): files
//!   over such a connection, each with its name, size and digest; received
//!   files appear under their name only once complete and checked.
//! - [`dir`] (`ferry diode-send-dir`): watches a directory and sends what
//!   lands in it.
//! - [`plan`] (`ferry diode-plan`): checks a link's parameters offline.
//! - [`config`]: the settings file (`--config`/`-c`: Ferry's keys, or
//!   Lidi's read unchanged) and the flags that override it.
//! - [`logging`]: Lidi's log flags and keys (`--log`, `--log-file`,
//!   `[send] log`), which set the process's log filter and file.
//! - [`frame`]: the file header (name, size, digest, mode, mtime);
//!   [`glob`]: `diode-send-dir --ignore`'s patterns.
//!
//! Lidi's flag names are accepted as aliases of Ferry's (`--from-tcp`,
//! `--to-tcp`, `--bind-tcp`, `--maximum-files`, ...), and the `ferry` binary
//! run through a link named `diode-send`, `diode-receive`, ... behaves as
//! `ferry diode-send`, ... (see [`crate::lidi_link`]).

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing::debug;

use crate::CliError;

pub mod config;
pub mod dir;
pub mod file;
pub mod frame;
pub mod glob;
pub mod logging;
pub mod plan;
pub mod receive;
pub mod send;

/// Binds a TCP listener; `flag` names the option that gave the address.
pub(crate) fn bind_tcp(addr: SocketAddr, flag: &str) -> Result<TcpListener, CliError> {
    TcpListener::bind(addr).map_err(|e| {
        let advice = match e.kind() {
            io::ErrorKind::AddrInUse => {
                "it is already in use: stop the program that holds it, or choose another port"
            }
            io::ErrorKind::AddrNotAvailable => {
                "it is not an address of this host: use one of its addresses, or 0.0.0.0"
            }
            io::ErrorKind::PermissionDenied => {
                "permission denied: use a port above 1023, or run with the needed privilege"
            }
            _ => "check the address",
        };
        CliError::Io {
            context: format!("cannot listen on TCP address {addr} ({flag}): {advice}"),
            source: e,
        }
    })
}

/// Closes a TCP connection with a reset (SO_LINGER 0), so that the peer sees
/// an error rather than a clean end of stream.
pub(crate) fn reset(stream: TcpStream) {
    if let Err(e) = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO)) {
        debug!(error = %e, "cannot set SO_LINGER; the connection closes normally");
    }
    drop(stream);
}

/// A random number for temporary names: the standard library's per-process
/// random hasher keys mixed with the time.
pub(crate) fn random_u64() -> u64 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    let mut h = RandomState::new().build_hasher();
    if let Ok(t) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        h.write_u128(t.as_nanos());
    }
    h.finish()
}

/// A thread accepting TCP connections until stopped.
#[derive(Debug)]
pub(crate) struct AcceptLoop {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    /// The address of the connection that wakes the loop to stop it.
    waker: Arc<Mutex<Option<SocketAddr>>>,
    thread: Option<JoinHandle<()>>,
}

impl AcceptLoop {
    /// Accepts on `listener`, handing each connection to `on_connection`
    /// (which should return quickly: spawn a thread for the work).
    pub(crate) fn spawn(
        listener: TcpListener,
        name: &str,
        mut on_connection: impl FnMut(TcpStream, SocketAddr) + Send + 'static,
    ) -> Result<Self, CliError> {
        let addr = listener.local_addr().map_err(|e| CliError::Io {
            context: "cannot read the listening address".into(),
            source: e,
        })?;
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let waker = Arc::new(Mutex::new(None));
        let wake = Arc::clone(&waker);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                for stream in listener.incoming() {
                    match stream {
                        Ok(stream) => {
                            let peer = stream.peer_addr().ok();
                            if flag.load(Ordering::SeqCst) {
                                // Connections accepted before the stop (ahead
                                // of the waker in the backlog) are served.
                                let waker = *wake.lock().unwrap_or_else(|e| e.into_inner());
                                if waker.is_none() || peer == waker {
                                    break;
                                }
                            }
                            on_connection(stream, peer.unwrap_or(addr));
                        }
                        Err(_) if flag.load(Ordering::SeqCst) => break,
                        Err(e) => {
                            // Per-connection trouble (reset before accept, out
                            // of descriptors): wait a little and go on.
                            debug!(error = %e, "accept failed");
                            std::thread::sleep(Duration::from_millis(10));
                        }
                    }
                }
            })
            .map_err(|e| CliError::Io {
                context: "cannot start a thread".into(),
                source: e,
            })?;
        Ok(Self {
            addr,
            stop,
            waker,
            thread: Some(thread),
        })
    }

    /// The address accepted on.
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Waits until the loop ends (never, unless stopped).
    pub(crate) fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Stops accepting (connections already handed out go on, and so do
    /// those accepted by the system before the stop: they are served).
    pub(crate) fn stop(&mut self) {
        // Wake the blocking accept with a connection of our own, from an
        // address known beforehand.
        let mut wake = self.addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(match wake {
                SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
                SocketAddr::V6(_) => Ipv6Addr::LOCALHOST.into(),
            });
        }
        let socket = socket2::Socket::new(
            socket2::Domain::for_address(wake),
            socket2::Type::STREAM,
            None,
        )
        .and_then(|s| {
            s.bind(&SocketAddr::new(wake.ip(), 0).into())?;
            let local = s.local_addr()?.as_socket();
            Ok((s, local))
        });
        match socket {
            Ok((socket, local)) => {
                *self.waker.lock().unwrap_or_else(|e| e.into_inner()) = local;
                self.stop.store(true, Ordering::SeqCst);
                let _ = socket.connect_timeout(&wake.into(), Duration::from_secs(1));
            }
            Err(e) => {
                debug!(error = %e, "cannot make the waking connection");
                self.stop.store(true, Ordering::SeqCst);
                let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
            }
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for AcceptLoop {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop();
        }
    }
}
