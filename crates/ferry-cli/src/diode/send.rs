//! `ferry diode-send`: a TCP server whose every connection becomes one diode
//! session, sent one way over UDP.
//!
//! For each accepted connection the server opens a session and copies the
//! connection's bytes into it:
//!
//! - when the connection has been quiet for [`FLUSH_AFTER`] the partly
//!   filled block is sent at once rather than when it fills;
//! - at the end of the stream (the client shut down its side) the session is
//!   finished: its length and BLAKE3 digest go along, and once its last
//!   datagram left the server closes the connection cleanly — so a client
//!   that reads until the end of stream knows its data is on the wire;
//! - on a read error the session is aborted (the receiver discards it) and
//!   the connection reset.
//!
//! A connection may stay idle as long as it likes: while it sends nothing the
//! diode sender sends a small keep-alive for its session every `heartbeat`,
//! so the receiver does not expire it.
//!
//! At most `max_sessions` connections are served at once; more wait in the
//! listen backlog.
//!
//! On SIGTERM or Ctrl-C the server stops accepting (the listener closes),
//! lets the connections in flight finish sending for the grace period
//! (`--grace-period`), then aborts the sessions left (the receiver discards
//! them; their connections are reset) and exits 0.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use clap::Args;
use ferry_diode::{DiodeSender, DiodeSenderStats};
use tracing::{debug, info, warn};

use super::config::DiodeOptions;
use super::{AcceptLoop, bind_tcp, reset};
use crate::CliError;
use crate::metrics::{MetricsArgs, MetricsServer, SenderCollector};
use crate::shutdown::{GraceArgs, InFlight};

/// How long a connection may be quiet before the partly filled block is sent.
pub const FLUSH_AFTER: Duration = Duration::from_millis(5);
/// Bytes read from a connection at a time.
const READ_BUF: usize = 256 * 1024;

/// Arguments of `ferry diode-send`.
#[derive(Debug, Clone, Args)]
pub struct DiodeSendArgs {
    /// TCP address to accept connections on; each connection is one diode
    /// session (default: the file's `[sender] bind_tcp`).
    #[arg(long, value_name = "TCP_ADDR", visible_aliases = ["from-tcp", "bind-tcp"],
          aliases = ["from_tcp", "bind_tcp"])]
    pub listen: Option<SocketAddr>,
    /// UDP address of the diode receiver (`ferry diode-receive --listen`;
    /// default: the file's `udp_addr` and first `udp_port`).
    #[arg(
        long,
        value_name = "UDP_ADDR",
        visible_alias = "to-udp",
        alias = "to_udp"
    )]
    pub to: Option<SocketAddr>,
    /// Local UDP address to send from (default: the file's `[sender]
    /// bind_udp`, else any address of the destination's family, a port the
    /// system chooses).
    #[arg(long, value_name = "UDP_ADDR", visible_aliases = ["bind-udp", "to-bind"],
          aliases = ["bind_udp", "to_bind"])]
    pub bind: Option<SocketAddr>,
    /// Diode settings.
    #[command(flatten)]
    pub diode: DiodeOptions,
    /// The metrics endpoint (default: the file's `[sender] metrics`).
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Lidi's log flags.
    #[command(flatten)]
    pub log: super::logging::LogOptions,
    /// How long to let connections finish sending on a stop.
    #[command(flatten)]
    pub grace: GraceArgs,
}

/// A counting semaphore: connections served at once; closed on a stop.
#[derive(Debug)]
struct Slots {
    /// Free slots, and whether the server is stopping.
    free: Mutex<(usize, bool)>,
    freed: Condvar,
}

impl Slots {
    /// Takes a slot; false if none is free once closed (a connection
    /// accepted before the stop still gets a free one).
    fn acquire(&self) -> bool {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        while free.0 == 0 {
            if free.1 {
                return false;
            }
            free = self.freed.wait(free).unwrap_or_else(|e| e.into_inner());
        }
        free.0 -= 1;
        true
    }

    fn release(&self) {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).0 += 1;
        self.freed.notify_all();
    }

    /// No more slots: the accepting thread stops waiting for one.
    fn close(&self) {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.freed.notify_all();
    }
}

/// A running `diode-send`.
#[derive(Debug)]
pub struct DiodeSendServer {
    accept: AcceptLoop,
    sender: Arc<DiodeSender>,
    to: SocketAddr,
    metrics: Option<MetricsServer>,
    slots: Arc<Slots>,
    /// Connections being served.
    in_flight: Arc<InFlight>,
    /// Set when the grace period is over: the connections abort.
    abort: Arc<AtomicBool>,
}

impl DiodeSendServer {
    /// Binds the UDP socket and the TCP listener and starts serving.
    pub fn start(args: &DiodeSendArgs) -> Result<Self, CliError> {
        let settings = args.diode.load()?;
        let to = args
            .to
            .or(settings.addresses.udp_for_driver())
            .ok_or_else(|| {
                CliError::Missing(
                    "no UDP destination: give --to ADDR:PORT (diode-receive's --listen), \
                     or udp_addr and udp_port in the --config file"
                        .into(),
                )
            })?;
        let listen = args.listen.or(settings.addresses.bind_tcp).ok_or_else(|| {
            CliError::Missing(
                "no TCP address to accept on: give --listen ADDR:PORT, \
                 or [sender] bind_tcp in the --config file"
                    .into(),
            )
        })?;
        let bind = args.bind.or(settings.addresses.bind_udp);
        let bind = bind.unwrap_or_else(|| match to {
            SocketAddr::V4(_) => "0.0.0.0:0".parse().expect("valid address"),
            SocketAddr::V6(_) => "[::]:0".parse().expect("valid address"),
        });
        let sender = Arc::new(DiodeSender::bind(
            bind,
            to,
            settings.diode.clone(),
            settings.sender,
        )?);
        let metrics = match args.metrics.metrics.or(settings.addresses.send_metrics) {
            Some(addr) => {
                let mut registry = crate::metrics::registry();
                registry.register_collector(Box::new(SenderCollector(Arc::downgrade(&sender))));
                Some(crate::metrics::start(addr, registry)?)
            }
            None => None,
        };
        let listener = bind_tcp(listen, "--listen")?;
        let slots = Arc::new(Slots {
            free: Mutex::new((settings.diode.max_sessions, false)),
            freed: Condvar::new(),
        });
        let in_flight = InFlight::new();
        let abort = Arc::new(AtomicBool::new(false));
        let for_connections = Arc::clone(&sender);
        let (for_accept, counted, aborted) = (
            Arc::clone(&slots),
            Arc::clone(&in_flight),
            Arc::clone(&abort),
        );
        let accept = AcceptLoop::spawn(listener, "diode-send-accept", move |stream, peer| {
            if !for_accept.acquire() {
                // Stopping: not served.
                reset(stream);
                return;
            }
            let sender = Arc::clone(&for_connections);
            let slots = Arc::clone(&for_accept);
            let busy = counted.enter();
            let abort = Arc::clone(&aborted);
            let spawned = std::thread::Builder::new()
                .name("diode-send-conn".into())
                .spawn(move || {
                    serve_connection(&sender, stream, peer, &abort);
                    slots.release();
                    drop(busy);
                });
            if let Err(e) = spawned {
                warn!(error = %e, %peer, "cannot start a thread for the connection; refused");
            }
        })?;
        info!(tcp = %accept.addr(), udp = %sender.local_addr(), %to, "diode-send started");
        Ok(Self {
            accept,
            sender,
            to,
            metrics,
            slots,
            in_flight,
            abort,
        })
    }

    /// Where the Prometheus metrics are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::addr)
    }

    /// The TCP address accepting connections.
    pub fn tcp_addr(&self) -> SocketAddr {
        self.accept.addr()
    }

    /// The UDP address sent from.
    pub fn udp_addr(&self) -> SocketAddr {
        self.sender.local_addr()
    }

    /// The UDP address sent to.
    pub fn udp_to(&self) -> SocketAddr {
        self.to
    }

    /// Counters of the diode sender.
    pub fn stats(&self) -> DiodeSenderStats {
        self.sender.stats()
    }

    /// Stops accepting connections. Connections in progress go on until they
    /// end; the sender stops when the last one has.
    pub fn stop(mut self) {
        // Connections still in the backlog get a free slot, or are reset.
        self.slots.close();
        self.accept.stop();
    }

    /// Serves until the process ends.
    pub fn wait(self) {
        self.accept.wait();
    }

    /// Stops gracefully: stops accepting (the listener closes), tells
    /// `announce` how many connections are in flight, lets them finish for
    /// at most `grace`, then aborts the sessions left (the receiver discards
    /// them, their connections are reset). Returns how many were cut.
    pub fn stop_gracefully(mut self, grace: Duration, announce: impl FnOnce(usize)) -> usize {
        self.slots.close();
        self.accept.stop();
        announce(self.in_flight.count());
        if self.in_flight.wait_idle(grace) {
            return 0;
        }
        let cut = self.in_flight.count();
        warn!(
            sessions = cut,
            "grace period over: the diode sessions still sending are aborted (the receiver discards them)"
        );
        self.abort.store(true, Ordering::SeqCst);
        if !self.in_flight.wait_idle(ABORT_WAIT) {
            warn!("connections still busy after the abort: exiting anyway");
        }
        cut
    }
}

/// How long aborted connections may take to end.
const ABORT_WAIT: Duration = Duration::from_secs(5);

/// Runs `ferry diode-send` until the process is stopped.
pub fn run(args: &DiodeSendArgs, out: &mut dyn Write) -> Result<(), CliError> {
    // Before the first line: whoever reads it may signal at once.
    let shutdown = crate::shutdown::signals()?;
    let server = DiodeSendServer::start(args)?;
    write!(
        out,
        "diode-send: accepting TCP on {}, sending UDP from {} to {}",
        server.tcp_addr(),
        server.udp_addr(),
        server.udp_to()
    )?;
    // One line: whoever reads it may close the pipe after it.
    match server.metrics_addr() {
        Some(addr) => writeln!(out, ", metrics at http://{addr}/metrics")?,
        None => writeln!(out)?,
    }
    out.flush()?;
    let signal = shutdown.wait();
    let grace = args.grace.resolve(None);
    server.stop_gracefully(grace, |count| {
        let line = crate::shutdown::stop_line(
            signal,
            count as u64,
            ("session", "sessions"),
            grace,
            "no new connections; those in flight may finish sending",
        );
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    });
    Ok(())
}

/// Why a connection's session did not finish.
#[derive(Debug)]
enum Failure {
    Read(std::io::Error),
    Diode(std::io::Error),
    /// The server stopped and the grace period ran out.
    Stopped,
}

/// Copies one connection into one session.
fn serve_connection(
    sender: &DiodeSender,
    mut stream: TcpStream,
    peer: SocketAddr,
    abort: &AtomicBool,
) {
    let mut session = match sender.open() {
        Ok(session) => session,
        Err(e) => {
            warn!(%peer, error = %e, "cannot open a diode session; connection reset");
            reset(stream);
            return;
        }
    };
    let id = session.id();
    debug!(%peer, session = %id, "connection accepted");
    if let Err(e) = stream.set_read_timeout(Some(FLUSH_AFTER)) {
        warn!(%peer, error = %e, "cannot set a read timeout; connection reset");
        session.abort();
        reset(stream);
        return;
    }
    let mut buf = vec![0u8; READ_BUF];
    let mut unflushed = false;
    let outcome = loop {
        if abort.load(Ordering::SeqCst) {
            break Err(Failure::Stopped);
        }
        match stream.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if let Err(e) = session.write_all(&buf[..n]) {
                    break Err(Failure::Diode(e));
                }
                unflushed = true;
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if unflushed {
                    if let Err(e) = session.flush() {
                        break Err(Failure::Diode(e));
                    }
                    unflushed = false;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(Failure::Read(e)),
        }
    };
    match outcome {
        Ok(()) => match session.finish() {
            Ok(bytes) => {
                info!(%peer, session = %id, bytes, "diode session sent");
                // A clean close tells the client its bytes are on the wire.
                let _ = stream.shutdown(std::net::Shutdown::Both);
            }
            Err(e) => {
                warn!(%peer, session = %id, error = %e, "diode session not sent; connection reset");
                reset(stream);
            }
        },
        Err(failure) => {
            session.abort();
            match failure {
                Failure::Read(e) => warn!(
                    %peer, session = %id, error = %e,
                    "reading the connection failed: diode session aborted (the receiver discards it)"
                ),
                Failure::Diode(e) => warn!(
                    %peer, session = %id, error = %e,
                    "the diode sender failed: session aborted, connection reset"
                ),
                Failure::Stopped => warn!(
                    %peer, session = %id,
                    "stopping, grace period over: diode session aborted (the receiver discards it), connection reset"
                ),
            }
            reset(stream);
        }
    }
}
