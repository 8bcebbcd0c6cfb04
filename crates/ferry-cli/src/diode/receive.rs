//! `ferry diode-receive`: receives diode sessions over UDP and replays each
//! on its own TCP connection.
//!
//! For each session that starts, a connection is opened to the `--to`
//! server, and the session's bytes are written to it in order as they are
//! rebuilt. When the session finishes — its length and BLAKE3 digest match
//! every byte — the connection is closed cleanly (end of stream). When it is
//! lost (blocks beyond repair, aborted by the sender, expired, the sender
//! restarted) the connection is **reset** (SO_LINGER 0), so the server sees
//! an error rather than an end of stream and must discard what it got:
//! `ferry diode-receive-file` deletes the partial file.
//!
//! Each session has its own thread and a bounded queue; a server that reads
//! slowly holds up the whole receiver (the diode receiver's queue applies
//! backpressure), and the kernel then drops datagrams: sessions get lost,
//! reported, never delivered with holes.
//!
//! Heartbeats: a warning is logged when the sender has been silent for twice
//! its heartbeat, and an information message when it is heard again.
//!
//! On SIGTERM or Ctrl-C sessions that start are no longer replayed (they
//! are discarded), those being replayed may finish for the grace period
//! (`--grace-period`); the rest are then reset, as on any stop, and the
//! program exits 0.

use std::collections::HashMap;
use std::io::Write;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use ferry_diode::{DiodeReceiver, DiodeReceiverStats, LossReason, ReceiverEvent};
use ferry_proto::diode::DiodeSessionId;
use tracing::{debug, error, info, warn};

use super::config::DiodeOptions;
use super::reset;
use crate::CliError;
use crate::metrics::{MetricsArgs, MetricsServer, ReceiverCollector};
use crate::shutdown::{GraceArgs, InFlight};

/// How long connecting to the TCP server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Messages (mostly blocks of data) queued per session.
const SESSION_QUEUE: usize = 16;

/// Arguments of `ferry diode-receive`.
#[derive(Debug, Clone, Args)]
pub struct DiodeReceiveArgs {
    /// UDP address to receive the diode's datagrams on (default: the
    /// file's `udp_addr` and first `udp_port`).
    #[arg(long, value_name = "UDP_ADDR", visible_aliases = ["from-udp", "from"],
          alias = "from_udp")]
    pub listen: Option<SocketAddr>,
    /// TCP server to replay each session to, one connection per session
    /// (e.g. `ferry diode-receive-file --listen`; default: the file's
    /// `[receiver] to_tcp`).
    #[arg(
        long,
        value_name = "TCP_ADDR",
        visible_alias = "to-tcp",
        alias = "to_tcp"
    )]
    pub to: Option<SocketAddr>,
    /// Diode settings.
    #[command(flatten)]
    pub diode: DiodeOptions,
    /// The metrics endpoint (default: the file's `[receiver] metrics`).
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// Lidi's log flags.
    #[command(flatten)]
    pub log: super::logging::LogOptions,
    /// How long to let sessions being replayed finish on a stop.
    #[command(flatten)]
    pub grace: GraceArgs,
}

/// What a session's thread is told.
#[derive(Debug)]
enum Message {
    Data(Bytes),
    Finished(u64),
    Lost(LossReason),
}

/// A running `diode-receive`.
#[derive(Debug)]
pub struct DiodeReceiveServer {
    to: SocketAddr,
    receiver: Arc<DiodeReceiver>,
    dispatcher: Option<JoinHandle<()>>,
    metrics: Option<MetricsServer>,
    /// Set on a stop: sessions that start are not replayed.
    stopping: Arc<AtomicBool>,
    /// Sessions being replayed.
    in_flight: Arc<InFlight>,
}

impl DiodeReceiveServer {
    /// Binds the UDP socket and starts replaying sessions to `args.to`.
    pub fn start(args: &DiodeReceiveArgs) -> Result<Self, CliError> {
        let settings = args.diode.load()?;
        let listen = args
            .listen
            .or(settings.addresses.listen_udp_for_driver())
            .ok_or_else(|| {
                CliError::Missing(
                    "no UDP address to receive on: give --listen ADDR:PORT, \
                     or udp_addr and udp_port in the --config file"
                        .into(),
                )
            })?;
        let to = args.to.or(settings.addresses.to_tcp).ok_or_else(|| {
            CliError::Missing(
                "no TCP server to replay sessions to: give --to ADDR:PORT \
                 (diode-receive-file's --listen), or [receiver] to_tcp in the --config file"
                    .into(),
            )
        })?;
        let receiver = Arc::new(DiodeReceiver::bind(
            listen,
            settings.diode,
            settings.receiver,
        )?);
        let metrics = match args.metrics.metrics.or(settings.addresses.receive_metrics) {
            Some(addr) => {
                let mut registry = crate::metrics::registry();
                registry.register_collector(Box::new(ReceiverCollector(Arc::downgrade(&receiver))));
                Some(crate::metrics::start(addr, registry)?)
            }
            None => None,
        };
        let events = Arc::clone(&receiver);
        let stopping = Arc::new(AtomicBool::new(false));
        let in_flight = InFlight::new();
        let (stop, counted) = (Arc::clone(&stopping), Arc::clone(&in_flight));
        let dispatcher = std::thread::Builder::new()
            .name("diode-receive-events".into())
            .spawn(move || dispatch(&events, to, &stop, &counted))
            .map_err(|e| CliError::Io {
                context: "cannot start a thread".into(),
                source: e,
            })?;
        info!(udp = %receiver.local_addr(), %to, "diode-receive started");
        Ok(Self {
            to,
            receiver,
            dispatcher: Some(dispatcher),
            metrics,
            stopping,
            in_flight,
        })
    }

    /// Where the Prometheus metrics are served, if they are.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(MetricsServer::addr)
    }

    /// The UDP address received on.
    pub fn udp_addr(&self) -> SocketAddr {
        self.receiver.local_addr()
    }

    /// The TCP server sessions are replayed to.
    pub fn tcp_to(&self) -> SocketAddr {
        self.to
    }

    /// Counters of the diode receiver.
    pub fn stats(&self) -> DiodeReceiverStats {
        self.receiver.stats()
    }

    /// Stops receiving; sessions in progress are reset.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Serves until the process ends.
    pub fn wait(mut self) {
        if let Some(dispatcher) = self.dispatcher.take() {
            let _ = dispatcher.join();
        }
    }

    /// Stops gracefully: sessions that start are no longer replayed,
    /// `announce` is told how many are being replayed, they may finish for
    /// at most `grace`, then the receiver stops and the sessions left are
    /// reset. Returns how many were cut.
    pub fn stop_gracefully(mut self, grace: Duration, announce: impl FnOnce(usize)) -> usize {
        self.stopping.store(true, Ordering::SeqCst);
        announce(self.in_flight.count());
        let cut = if self.in_flight.wait_idle(grace) {
            0
        } else {
            let cut = self.in_flight.count();
            warn!(
                sessions = cut,
                "grace period over: the sessions still being received are reset (the server discards them)"
            );
            cut
        };
        self.shutdown();
        cut
    }

    fn shutdown(&mut self) {
        self.receiver.close();
        if let Some(dispatcher) = self.dispatcher.take() {
            let _ = dispatcher.join();
        }
    }
}

impl Drop for DiodeReceiveServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Runs `ferry diode-receive` until the process is stopped.
pub fn run(args: &DiodeReceiveArgs, out: &mut dyn Write) -> Result<(), CliError> {
    // Before the first line: whoever reads it may signal at once.
    let shutdown = crate::shutdown::signals()?;
    let server = DiodeReceiveServer::start(args)?;
    write!(
        out,
        "diode-receive: receiving UDP on {}, replaying sessions to TCP {}",
        server.udp_addr(),
        server.tcp_to()
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
            "new sessions are discarded; those being received may finish",
        );
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    });
    Ok(())
}

/// Takes the receiver's events and hands each session's to its thread.
fn dispatch(
    receiver: &DiodeReceiver,
    to: SocketAddr,
    stopping: &AtomicBool,
    in_flight: &Arc<InFlight>,
) {
    let mut sessions: HashMap<DiodeSessionId, SyncSender<Message>> = HashMap::new();
    let mut threads: Vec<JoinHandle<()>> = Vec::new();
    let send = |sessions: &mut HashMap<DiodeSessionId, SyncSender<Message>>,
                session: DiodeSessionId,
                message: Message,
                last: bool| {
        let delivered = match sessions.get(&session) {
            Some(tx) => tx.send(message).is_ok(),
            None => false,
        };
        if last || !delivered {
            sessions.remove(&session);
        }
    };
    while let Some(event) = receiver.recv_event() {
        match event {
            ReceiverEvent::SessionStarted { session } => {
                if stopping.load(Ordering::SeqCst) {
                    warn!(%session, "stopping: a diode session that starts now is discarded");
                    continue;
                }
                let (tx, rx) = sync_channel(SESSION_QUEUE);
                let busy = in_flight.enter();
                let spawned = std::thread::Builder::new()
                    .name("diode-receive-conn".into())
                    .spawn(move || {
                        replay(session, to, &rx);
                        drop(busy);
                    });
                match spawned {
                    Ok(thread) => {
                        sessions.insert(session, tx);
                        threads.retain(|t| !t.is_finished());
                        threads.push(thread);
                    }
                    Err(e) => {
                        error!(%session, error = %e, "cannot start a thread: the session is discarded");
                    }
                }
            }
            ReceiverEvent::Data { session, data } => {
                send(&mut sessions, session, Message::Data(data), false);
            }
            ReceiverEvent::SessionFinished { session, bytes } => {
                send(&mut sessions, session, Message::Finished(bytes), true);
            }
            ReceiverEvent::SessionLost { session, reason } => {
                if sessions.contains_key(&session) {
                    send(&mut sessions, session, Message::Lost(reason), true);
                } else {
                    warn!(%session, ?reason, "diode session refused");
                }
            }
            ReceiverEvent::HeartbeatMissing { silent_for } => warn!(
                ?silent_for,
                "no heartbeat from the diode sender: check that it runs, and the link"
            ),
            ReceiverEvent::HeartbeatRecovered => info!("the diode sender is heard again"),
        }
    }
    // Closed: the sessions' threads see their queues end and reset.
    drop(sessions);
    for thread in threads {
        let _ = thread.join();
    }
    debug!("diode-receive stopped");
}

/// Replays one session on a TCP connection.
fn replay(session: DiodeSessionId, to: SocketAddr, messages: &Receiver<Message>) {
    let mut stream = match TcpStream::connect_timeout(&to, CONNECT_TIMEOUT) {
        Ok(stream) => Some(stream),
        Err(e) => {
            error!(
                %session, %to, error = %e,
                "cannot connect to the TCP server: the session's data is discarded. Start the server (e.g. ferry diode-receive-file) first"
            );
            None
        }
    };
    for message in messages {
        match message {
            Message::Data(data) => {
                if let Some(s) = stream.as_mut()
                    && let Err(e) = s.write_all(&data)
                {
                    warn!(%session, %to, error = %e, "writing to the TCP server failed: the rest of the session is discarded");
                    if let Some(s) = stream.take() {
                        reset(s);
                    }
                }
            }
            Message::Finished(bytes) => {
                if let Some(s) = stream.take() {
                    let _ = s.shutdown(Shutdown::Write);
                    info!(%session, bytes, "diode session received intact");
                }
                return;
            }
            Message::Lost(reason) => {
                warn!(%session, ?reason, "diode session lost: connection reset, the server discards it");
                if let Some(s) = stream.take() {
                    reset(s);
                }
                return;
            }
        }
    }
    // The receiver stopped before the session ended.
    if let Some(s) = stream.take() {
        reset(s);
    }
}
