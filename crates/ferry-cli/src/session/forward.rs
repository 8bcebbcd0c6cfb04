//! `ferry forward` and `ferry forward-server`: TCP connections carried over
//! one Ferry session, one stream per connection.
//!
//! ```text
//!  TCP client ──► forward --listen TCP_ADDR ══ Ferry session ══► forward-server --listen UDP_ADDR ──► TCP target
//!                 --to HOST:PORT [--target HOST:PORT]            --allow HOST:PORT [--allow ...]
//! ```
//!
//! `forward` accepts TCP connections and opens a Ferry session to the
//! server at start (so that a wrong address or key is reported at once);
//! for each connection it opens a stream whose first message names the
//! target (`--target`, or none: the server's default), and once the server
//! answered that it connected, copies bytes both ways. If the session dies,
//! `forward` reconnects (waiting 1 s, then up to 30 s between attempts);
//! connections accepted meanwhile wait for it up to twice the handshake
//! timeout, then are reset.
//!
//! `forward-server` is **not an open proxy**: it connects only to the
//! targets given with `--allow HOST:PORT` (repeatable), for every peer, and
//! `--allow-peer PEER=HOST:PORT` (repeatable), for the peer identity PEER
//! only; at least one of either ([`allow`]). The first `--allow` is the
//! default, used when `forward` names no target. Anyone holding the key
//! (or, without `--key-file` or `--identity`, anyone who can reach the UDP
//! port) can reach the `--allow` targets: use `--key-file`, or identities
//! and `--authorized-keys`, on both sides.
//!
//! Both directions are carried separately: the end of one (a TCP FIN)
//! finishes its stream and becomes a FIN on the other side, while the other
//! direction goes on (half-close). A reset of the TCP connection on either
//! side resets the stream ([`RESET_TCP`]) and the other side's TCP
//! connection (SO_LINGER 0); so does the loss of the session.
//!
//! On SIGHUP `forward-server` re-reads its authorized keys file
//! ([`reload`](super::reload)) and resolves its `--allow-peer` rules
//! against the new list ([`Allowed::reloaded`]); each session keeps the
//! rules in force when it was accepted.
//!
//! On SIGTERM or Ctrl-C both stop accepting (`forward` its TCP listener,
//! `forward-server` new sessions, and new connections on its open
//! sessions), let the forwarded connections in flight finish for the grace
//! period (`--grace-period`, `grace_period`), then close their sessions with
//! [`CLOSE_SHUTDOWN`] — which resets the connections still open — and exit
//! 0.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use clap::Args;
use ferry_tokio::{Endpoint, Session, Stream, StreamKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::config::keys::peer_label;
use super::config::{ListenerOptions, StarterOptions};
use super::progress::human_bytes;
use super::reload::Reload;
use super::wire::{CLOSE_SHUTDOWN, ForwardRequest, RESET_TCP, VERSION};
use super::{bind, client_addr, connect_error, resolve, runtime};
use crate::CliError;
use crate::metrics::{MetricsArgs, start_line};
use crate::shutdown::{Busy, GraceArgs, InFlight, Signal};

pub mod allow;

use allow::{Allowed, PeerRule};

/// How long `forward-server` tries to connect to a target.
pub const TARGET_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait between two reconnection attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Bytes read from a TCP connection at a time.
const READ_BUF: usize = 64 * 1024;

/// Checks the form `HOST:PORT` (for clap).
pub fn host_port(s: &str) -> Result<String, String> {
    let (host, port) = s.rsplit_once(':').ok_or_else(|| {
        format!("`{s}` is not HOST:PORT (e.g. 127.0.0.1:5432 or db.example.org:5432)")
    })?;
    if host.is_empty() {
        return Err(format!("`{s}` has no host: give HOST:PORT"));
    }
    port.parse::<u16>()
        .map_err(|_| format!("`{s}`: the port `{port}` is not a number from 0 to 65535"))?;
    Ok(s.to_owned())
}

/// Arguments of `ferry forward`.
#[derive(Debug, Clone, Args)]
pub struct ForwardArgs {
    /// TCP address to accept connections on, e.g. 127.0.0.1:5432 (port 0:
    /// any free port; the address is printed as `listening on ADDR`).
    #[arg(long, value_name = "TCP_ADDR")]
    pub listen: SocketAddr,
    /// The `ferry forward-server` to carry them to (its UDP HOST:PORT).
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port)]
    pub to: String,
    /// The TCP target the server should connect to, as its `--allow` names
    /// it (default: the server's first `--allow`).
    #[arg(long, value_name = "HOST:PORT", value_parser = host_port)]
    pub target: Option<String>,
    /// Session settings.
    #[command(flatten)]
    pub session: StarterOptions,
    /// The Prometheus endpoint (default: the file's `[session] metrics`).
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// How long to let connections finish on a stop.
    #[command(flatten)]
    pub grace: GraceArgs,
}

/// Arguments of `ferry forward-server`.
#[derive(Debug, Clone, Args)]
pub struct ForwardServerArgs {
    /// UDP address to receive sessions on, e.g. 0.0.0.0:7001 (port 0: any
    /// free port; the address is printed as `listening on ADDR`).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// A TCP target that every `forward` may reach (repeatable; this or
    /// --allow-peer at least once). The first is the default when `forward`
    /// names none. Nothing else is reachable: this is no open proxy.
    #[arg(long = "allow", value_name = "HOST:PORT", required_unless_present = "allow_peer", value_parser = host_port)]
    pub allow: Vec<String>,
    /// A TCP target only the peer identity PEER may reach (repeatable):
    /// PEER is a name from --authorized-keys (every key listed under it) or
    /// a public key (64 hexadecimal digits). Needs --identity.
    #[arg(long = "allow-peer", value_name = "PEER=HOST:PORT", value_parser = allow::peer_rule)]
    pub allow_peer: Vec<PeerRule>,
    /// Session settings.
    #[command(flatten)]
    pub session: ListenerOptions,
    /// The Prometheus endpoint (default: the file's `[session] metrics`).
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// How long to let connections finish on a stop.
    #[command(flatten)]
    pub grace: GraceArgs,
}

/// Bytes and connections carried.
#[derive(Debug, Default)]
struct Counters {
    connections: AtomicU64,
    up: AtomicU64,
    down: AtomicU64,
}

impl Counters {
    fn line(&self) -> String {
        format!(
            "{} connections, {} out, {} back",
            self.connections.load(Ordering::Relaxed),
            human_bytes(self.up.load(Ordering::Relaxed)),
            human_bytes(self.down.load(Ordering::Relaxed)),
        )
    }
}

/// Runs `ferry forward`.
pub fn run_forward(args: &ForwardArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let settings = args.session.load()?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let peer = resolve(&args.to, "--to").await?;
        let endpoint = bind(client_addr(peer), settings.endpoint.clone(), "the local address")?;
        let timeout = settings.endpoint.protocol.handshake_timeout;
        let identity = settings.endpoint.protocol.identity.as_ref().map(|i| i.public_key());
        let shutdown = crate::shutdown::signals()?;
        let grace = args.grace.resolve(settings.grace_period);
        let session = tokio::select! {
            r = endpoint.connect(peer) => r
                .map_err(|e| connect_error(&args.to, e, timeout, "ferry forward-server --listen", identity))?,
            _ = shutdown.stopped() => return Ok(()),
        };
        info!(
            to = %args.to,
            "session open {}",
            super::config::transport_note(&session, settings.endpoint.fallback.after)
        );
        let listener = crate::diode::bind_tcp(args.listen, "--listen")?;
        listener.set_nonblocking(true).map_err(|e| CliError::Io {
            context: "cannot set up the TCP listener".into(),
            source: e,
        })?;
        let listener = tokio::net::TcpListener::from_std(listener).map_err(|e| CliError::Io {
            context: "cannot set up the TCP listener".into(),
            source: e,
        })?;
        let local = listener.local_addr().map_err(|e| CliError::Io {
            context: "cannot read the listening address".into(),
            source: e,
        })?;
        let metrics = args.metrics.serve_endpoint(settings.metrics, &endpoint)?;
        writeln!(
            out,
            "listening on {local}, forwarding to {} over a Ferry session to {}{}",
            args.target.as_deref().unwrap_or("the server's default target"),
            args.to,
            start_line(&metrics)
        )?;
        out.flush()?;
        let (publish, current) = watch::channel(Some(session));
        let supervisor = tokio::spawn(keep_session(
            endpoint.clone(),
            peer,
            args.to.clone(),
            timeout,
            identity,
            publish,
            current.clone(),
        ));
        let counters = Arc::new(Counters::default());
        let open = InFlight::new();
        let stop = shutdown.stopped();
        tokio::pin!(stop);
        let signal = loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, from)) => {
                        counters.connections.fetch_add(1, Ordering::Relaxed);
                        let current = current.clone();
                        let target = args.target.clone().unwrap_or_default();
                        let counters = counters.clone();
                        let busy = open.enter();
                        tokio::spawn(async move {
                            forward_connection(tcp, from, current, target, timeout * 2, counters).await;
                            drop(busy);
                        });
                    }
                    Err(e) => {
                        debug!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                },
                signal = &mut stop => break signal,
            }
        };
        // No more connections: they are refused from now on.
        drop(listener);
        drain(out, signal, &open, grace).await?;
        supervisor.abort();
        if let Some(session) = current.borrow().clone() {
            session.close(CLOSE_SHUTDOWN);
        }
        endpoint.close().await;
        writeln!(out, "forwarded {}", counters.line())?;
        Ok(())
    })
}

/// Keeps a session with the server open: reconnects when it dies.
async fn keep_session(
    endpoint: Endpoint,
    peer: SocketAddr,
    name: String,
    timeout: Duration,
    identity: Option<ferry_proto::PublicKey>,
    publish: watch::Sender<Option<Session>>,
    mut current: watch::Receiver<Option<Session>>,
) {
    loop {
        let session = current.borrow_and_update().clone();
        if let Some(session) = session {
            let reason = session.closed().await;
            warn!(server = %name, %reason, "the session with the forward-server ended: reconnecting");
            let _ = publish.send(None);
        }
        let mut backoff = Duration::from_secs(1);
        loop {
            match endpoint.connect(peer).await {
                Ok(session) => {
                    info!(
                        server = %name,
                        transport = %session.transport(),
                        "session with the forward-server open again"
                    );
                    let _ = publish.send(Some(session));
                    break;
                }
                Err(e) => {
                    let e =
                        connect_error(&name, e, timeout, "ferry forward-server --listen", identity);
                    warn!(error = %e, retry_in = ?backoff, "cannot reconnect");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }
}

/// Carries one accepted TCP connection.
async fn forward_connection(
    tcp: TcpStream,
    from: SocketAddr,
    mut current: watch::Receiver<Option<Session>>,
    target: String,
    wait: Duration,
    counters: Arc<Counters>,
) {
    let session = match tokio::time::timeout(wait, current.wait_for(Option::is_some)).await {
        Ok(Ok(session)) => session.clone().expect("waited for Some"),
        _ => {
            warn!(%from, "no session with the forward-server: connection reset");
            reset(&tcp);
            return;
        }
    };
    let stream = match session.open_stream(StreamKind::ReliableOrdered) {
        Ok(stream) => stream,
        Err(e) => {
            warn!(%from, error = %e, "cannot open a stream: connection reset");
            reset(&tcp);
            return;
        }
    };
    let request = ForwardRequest {
        target: target.clone(),
    };
    if let Err(e) = stream.send(request.encode()).await {
        warn!(%from, error = %e, "cannot send the request: connection reset");
        reset(&tcp);
        return;
    }
    match stream.recv().await {
        Ok(Some(reply)) if reply.first() == Some(&0) => {
            debug!(%from, target, "connected through the forward-server");
        }
        Ok(Some(reply)) => {
            warn!(
                %from,
                why = %String::from_utf8_lossy(reply.get(1..).unwrap_or_default()),
                "the forward-server refused the connection: reset"
            );
            let _ = stream.reset(RESET_TCP);
            reset(&tcp);
            return;
        }
        other => {
            warn!(%from, outcome = ?other, "no answer from the forward-server: connection reset");
            let _ = stream.reset(RESET_TCP);
            reset(&tcp);
            return;
        }
    }
    pump(tcp, stream, &counters.up, &counters.down).await;
}

/// Runs `ferry forward-server`.
pub fn run_server(args: &ForwardServerArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let settings = args.session.load()?;
    let mut allow = Arc::new(Allowed::new(
        &args.allow,
        &args.allow_peer,
        settings.endpoint.protocol.authorized_keys.as_ref(),
        settings.endpoint.protocol.identity.is_some(),
    )?);
    let runtime = runtime()?;
    runtime.block_on(async {
        let mut config = settings.endpoint.clone();
        config.protocol.accept_incoming = true;
        let endpoint = bind(args.listen, config, "--listen")?;
        let metrics = args.metrics.serve_endpoint(settings.metrics, &endpoint)?;
        // Before the first line: whoever reads it may signal at once.
        let shutdown = crate::shutdown::signals()?;
        let mut reload = Reload::new(&settings)?;
        let grace = args.grace.resolve(settings.grace_period);
        writeln!(
            out,
            "listening on {}, connecting to {} only ({}{}){}",
            endpoint.local_addr(),
            allow.describe(),
            settings.listener_note(),
            super::config::listener_fallback_note(&endpoint),
            start_line(&metrics)
        )?;
        out.flush()?;
        let counters = Arc::new(Counters::default());
        let open = InFlight::new();
        // The open sessions, to close them with a reason.
        let sessions = Arc::new(std::sync::Mutex::new(HashMap::<u64, Session>::new()));
        let mut next_id = 0u64;
        let stop = shutdown.stopped();
        tokio::pin!(stop);
        let signal = loop {
            tokio::select! {
                accepted = endpoint.accept() => {
                    let Some(session) = accepted else { break None };
                    let identity = session.peer_identity();
                    match identity {
                        Some(key) => info!(
                            from = %session.remote_addr(),
                            peer = %peer_label(&key, reload.keys()),
                            "forward session opened by an authenticated peer"
                        ),
                        None => info!(peer = %session.remote_addr(), "forward session opened"),
                    }
                    let allow = allow.clone();
                    let counters = counters.clone();
                    let open = open.clone();
                    let id = next_id;
                    next_id += 1;
                    lock(&sessions).insert(id, session.clone());
                    let sessions = sessions.clone();
                    tokio::spawn(async move {
                        while let Some(stream) = session.accept_stream().await {
                            counters.connections.fetch_add(1, Ordering::Relaxed);
                            let busy = open.enter();
                            tokio::spawn(serve_stream(stream, allow.clone(), identity, counters.clone(), busy));
                        }
                        let reason = session.closed().await;
                        lock(&sessions).remove(&id);
                        info!(peer = %session.remote_addr(), %reason, "forward session ended");
                    });
                }
                () = reload.hangup() => {
                    if reload.apply(&endpoint) {
                        allow = Arc::new(allow.reloaded(reload.keys()));
                    }
                }
                signal = &mut stop => break Some(signal),
            }
        };
        if let Some(signal) = signal {
            endpoint.set_accept_incoming(false);
            drain(out, signal, &open, grace).await?;
            for session in lock(&sessions).values() {
                session.close(CLOSE_SHUTDOWN);
            }
        }
        endpoint.close().await;
        writeln!(out, "forwarded {}", counters.line())?;
        Ok(())
    })
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// On a stop: waits up to `grace` for the connections in flight to end.
async fn drain(
    out: &mut dyn Write,
    signal: Signal,
    open: &InFlight,
    grace: Duration,
) -> Result<(), CliError> {
    let count = open.count() as u64;
    let line = crate::shutdown::stop_line(
        signal,
        count,
        ("connection", "connections"),
        grace,
        "no new connections; those in flight may finish",
    );
    writeln!(out, "{line}")?;
    out.flush()?;
    if !open.wait_idle_async(grace).await {
        warn!(
            connections = open.count(),
            "grace period over: the connections still open are reset"
        );
    }
    Ok(())
}

/// Serves one stream of a forward session: connect, answer, copy.
async fn serve_stream(
    stream: Stream,
    allow: Arc<Allowed>,
    peer: Option<ferry_proto::PublicKey>,
    counters: Arc<Counters>,
    busy: Busy,
) {
    let refuse = |why: String| {
        let mut reply = vec![1u8];
        reply.extend_from_slice(why.as_bytes());
        reply
    };
    if crate::shutdown::signals().is_ok_and(|s| s.requested().is_some()) {
        drop(busy);
        let _ = stream.recv().await;
        let _ = stream
            .send(refuse("the forward-server is stopping".into()))
            .await;
        let _ = stream.finish();
        return;
    }
    let _busy = busy;
    let request = match stream.recv().await {
        Ok(Some(message)) => ForwardRequest::decode(&message),
        _ => return,
    };
    let target = match request {
        Ok(request) => match allow.check(&request.target, peer.as_ref()) {
            Ok(target) => target,
            Err(why) => {
                warn!(target = ?request.target, "refused: {why}");
                let _ = stream.send(refuse(why)).await;
                let _ = stream.finish();
                return;
            }
        },
        Err(e) => {
            let _ = stream
                .send(refuse(format!("{e} (this side speaks version {VERSION})")))
                .await;
            let _ = stream.finish();
            return;
        }
    };
    let tcp = match tokio::time::timeout(TARGET_CONNECT_TIMEOUT, TcpStream::connect(&target)).await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            warn!(target, error = %e, "cannot connect to the target");
            let _ = stream
                .send(refuse(format!("cannot connect to {target}: {e}")))
                .await;
            let _ = stream.finish();
            return;
        }
        Err(_) => {
            warn!(target, "no answer from the target");
            let _ = stream
                .send(refuse(format!(
                    "no answer from {target} within {} s",
                    TARGET_CONNECT_TIMEOUT.as_secs()
                )))
                .await;
            let _ = stream.finish();
            return;
        }
    };
    if stream.send(vec![0u8]).await.is_err() {
        return;
    }
    debug!(target, "connected");
    pump(tcp, stream, &counters.down, &counters.up).await;
}

/// Closes a TCP connection with a reset (SO_LINGER 0).
fn reset(tcp: &TcpStream) {
    if let Err(e) = socket2::SockRef::from(tcp).set_linger(Some(Duration::ZERO)) {
        debug!(error = %e, "cannot set SO_LINGER; the connection closes normally");
    }
}

/// Copies bytes both ways between `tcp` and `stream` until both directions
/// ended; a reset on either side resets the other. `sent` counts bytes
/// from TCP into the stream, `received` the other way.
async fn pump(tcp: TcpStream, stream: Stream, sent: &AtomicU64, received: &AtomicU64) {
    let (mut rd, mut wr) = tcp.into_split();
    let outcome = {
        let up = async {
            let chunk = READ_BUF.min(stream.session().max_message_size()).max(1);
            let mut buf = BytesMut::with_capacity(chunk);
            loop {
                buf.reserve(chunk);
                match (&mut rd).take(chunk as u64).read_buf(&mut buf).await {
                    Ok(0) => {
                        // FIN from the TCP side: finish the stream.
                        let _ = stream.finish();
                        return Ok(());
                    }
                    Ok(n) => {
                        sent.fetch_add(n as u64, Ordering::Relaxed);
                        if stream.send(buf.split().freeze()).await.is_err() {
                            return Err(());
                        }
                    }
                    Err(e) => {
                        debug!(error = %e, "TCP read failed: resetting the stream");
                        return Err(());
                    }
                }
            }
        };
        let down = async {
            loop {
                match stream.recv().await {
                    Ok(Some(bytes)) => {
                        received.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                        if wr.write_all(&bytes).await.is_err() {
                            return Err(());
                        }
                    }
                    Ok(None) => {
                        // The peer finished: FIN on our TCP side.
                        let _ = wr.shutdown().await;
                        return Ok(());
                    }
                    Err(e) => {
                        debug!(error = %e, "stream ended abnormally: resetting the TCP connection");
                        return Err(());
                    }
                }
            }
        };
        tokio::pin!(up, down);
        let (mut up_done, mut down_done) = (false, false);
        loop {
            tokio::select! {
                r = &mut up, if !up_done => {
                    if r.is_err() { break Err(()) }
                    up_done = true;
                }
                r = &mut down, if !down_done => {
                    if r.is_err() { break Err(()) }
                    down_done = true;
                }
            }
            if up_done && down_done {
                break Ok(());
            }
        }
    };
    if outcome.is_err() {
        let _ = stream.reset(RESET_TCP);
        reset(rd.as_ref());
        // Dropping the write half would send a FIN before the reset.
        wr.forget();
    }
    drop(rd);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_port_is_checked() {
        assert!(host_port("127.0.0.1:80").is_ok());
        assert!(host_port("db.example.org:5432").is_ok());
        assert!(host_port("[::1]:22").is_ok());
        assert!(host_port("nohost").is_err());
        assert!(host_port(":80").is_err());
        assert!(host_port("h:99999").is_err());
    }
}
