//! `ferry perf server`: serves `ferry perf client` tests, one per session,
//! several at once, until stopped. SIGHUP re-reads its authorized keys
//! ([`reload`](crate::session::reload)).

use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clap::Args;
use ferry_tokio::Session;
use tracing::{info, warn};

use super::wire::{Done, Progress, Received, Request, ServerMessage, VERSION};
use super::{Amount, cpu_seconds, receive, send};
use crate::CliError;
use crate::metrics::{MetricsArgs, start_line};
use crate::session::config::ListenerOptions;
use crate::session::config::keys::peer_label;
use crate::session::reload::Reload;
use crate::session::{bind, runtime};
use crate::shutdown::{GraceArgs, InFlight};

/// Most streams a test may ask for.
pub const MAX_STREAMS: u32 = 64;
/// Longest test served.
pub const MAX_DURATION: Duration = Duration::from_secs(3600);

/// Arguments of `ferry perf server`.
#[derive(Debug, Clone, Args)]
pub struct PerfServerArgs {
    /// UDP address to serve on, e.g. 0.0.0.0:7100 (port 0: any free port;
    /// printed as `listening on ADDR`).
    #[arg(long, value_name = "ADDR")]
    pub listen: SocketAddr,
    /// Serve one test, then exit.
    #[arg(long)]
    pub once: bool,
    /// Session settings (`--key-file` or `--identity` for encrypted
    /// tests).
    #[command(flatten)]
    pub session: ListenerOptions,
    /// The Prometheus endpoint.
    #[command(flatten)]
    pub metrics: MetricsArgs,
    /// How long to let tests in flight finish on a stop.
    #[command(flatten)]
    pub grace: GraceArgs,
}

/// Runs `ferry perf server`.
pub fn run(args: &PerfServerArgs, out: &mut dyn Write) -> Result<(), CliError> {
    let settings = args.session.load()?;
    runtime()?.block_on(async {
        let mut config = settings.endpoint.clone();
        config.protocol.accept_incoming = true;
        let endpoint = bind(args.listen, config, "--listen")?;
        let metrics = args.metrics.serve_endpoint(settings.metrics, &endpoint)?;
        // Before the first line: whoever reads it may signal at once.
        let shutdown = crate::shutdown::signals()?;
        let mut reload = Reload::new(&settings)?;
        writeln!(
            out,
            "listening on {}, serving ferry perf tests ({}{}){}",
            endpoint.local_addr(),
            settings.listener_note(),
            crate::session::config::listener_fallback_note(&endpoint),
            start_line(&metrics)
        )?;
        out.flush()?;
        let grace = args.grace.resolve(settings.grace_period);
        let stop = shutdown.stopped();
        tokio::pin!(stop);
        let in_flight = InFlight::new();
        loop {
            tokio::select! {
                accepted = endpoint.accept() => {
                    let Some(session) = accepted else { break };
                    let peer = session.remote_addr();
                    if let Some(key) = session.peer_identity() {
                        info!(%peer, identity = %peer_label(&key, reload.keys()), "perf test from an authenticated peer");
                    }
                    let busy = in_flight.enter();
                    let test = tokio::spawn(async move {
                        match serve(&session).await {
                            Ok(line) => info!(%peer, "{line}"),
                            Err(e) => warn!(%peer, error = %e, "perf test failed"),
                        }
                        let _ = session.closed().await;
                        drop(busy);
                    });
                    if args.once {
                        endpoint.set_accept_incoming(false);
                        let _ = test.await;
                        break;
                    }
                }
                () = reload.hangup() => {
                    reload.apply(&endpoint);
                }
                signal = &mut stop => {
                    endpoint.set_accept_incoming(false);
                    let line = crate::shutdown::stop_line(
                        signal,
                        in_flight.count() as u64,
                        ("test", "tests"),
                        grace,
                        "no new tests; those in flight may finish",
                    );
                    writeln!(out, "{line}")?;
                    out.flush()?;
                    if !in_flight.wait_idle_async(grace).await {
                        warn!(tests = in_flight.count(), "perf tests cut at the end of the grace period");
                    }
                    break;
                }
            }
        }
        endpoint.close().await;
        Ok(())
    })
}

/// Reads the request, runs the test, sends what it measured.
async fn serve(session: &Session) -> Result<String, CliError> {
    let request = session
        .recv()
        .await
        .map_err(|e| CliError::Network(format!("no request: {e}")))?;
    let request: Request = match serde_json::from_slice(&request) {
        Ok(r) => r,
        Err(e) => {
            reply(
                session,
                &ServerMessage::Refused {
                    reason: format!("unreadable request: {e}"),
                },
            )
            .await?;
            return Err(CliError::Invalid(format!("unreadable request: {e}")));
        }
    };
    if let Err(reason) = check(&request) {
        reply(
            session,
            &ServerMessage::Refused {
                reason: reason.clone(),
            },
        )
        .await?;
        return Err(CliError::Invalid(reason));
    }
    let cpu_start = cpu_seconds();
    let received = Arc::new(AtomicU64::new(0));
    let first = Arc::new(OnceLock::new());
    let started = Instant::now();
    let sending = async {
        if !request.mode.download() {
            return Ok(None);
        }
        let amount = match request.bytes {
            Some(b) => Amount::Bytes(b),
            None => Amount::For(Duration::from_millis(request.duration_ms)),
        };
        let sent = Arc::new(AtomicU64::new(0));
        // The client's window is not known here: only the congestion window
        // is sampled.
        let sampler = send(
            session,
            request.streams,
            amount,
            sent.clone(),
            Arc::default(),
        )
        .await?;
        // The figures once the client has every byte.
        let word = session
            .recv()
            .await
            .map_err(|e| CliError::Network(format!("the client went away: {e}")))?;
        let _: Received = serde_json::from_slice(&word)
            .map_err(|e| CliError::Invalid(format!("unreadable message from the client: {e}")))?;
        let figures = sampler.finish(session).await;
        Ok::<_, CliError>(Some((figures, sent.load(Ordering::Relaxed))))
    };
    let receiving = async {
        if !request.mode.upload() {
            return Ok(None);
        }
        let progress = tokio::spawn(report_progress(
            session.clone(),
            received.clone(),
            first.clone(),
            Duration::from_millis(request.interval_ms),
        ));
        let last = receive(session, request.streams, received.clone(), first.clone()).await;
        progress.abort();
        last.map(Some)
    };
    let (sent, last) = tokio::join!(sending, receiving);
    let (sent, last) = (sent?, last?);
    let elapsed = match (first.get(), last) {
        (Some(first), Some(last)) => last.saturating_duration_since(*first),
        _ => started.elapsed(),
    };
    let done = Done {
        bytes_received: received.load(Ordering::Relaxed),
        elapsed_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        bytes_sent: sent.map_or(0, |(_, bytes)| bytes),
        sender: sent.map(|(figures, _)| figures),
        cpu_seconds: cpu_start.zip(cpu_seconds()).map(|(a, b)| b - a),
    };
    reply(session, &ServerMessage::Done(done)).await?;
    Ok(format!(
        "perf test done: {}, {} streams, {} bytes received, {} bytes sent",
        request.mode, request.streams, done.bytes_received, done.bytes_sent
    ))
}

/// Why a request cannot be served.
fn check(r: &Request) -> Result<(), String> {
    if r.version != VERSION {
        return Err(format!(
            "this server speaks perf version {VERSION}, the client {}: use the same ferry release on both sides",
            r.version
        ));
    }
    if !(1..=MAX_STREAMS).contains(&r.streams) {
        return Err(format!(
            "streams must be 1 to {MAX_STREAMS}, not {}",
            r.streams
        ));
    }
    if r.bytes.is_none() && Duration::from_millis(r.duration_ms) > MAX_DURATION {
        return Err(format!("a test lasts at most {} s", MAX_DURATION.as_secs()));
    }
    if r.interval_ms < 100 {
        return Err("the interval must be at least 100 ms".into());
    }
    Ok(())
}

async fn reply(session: &Session, message: &ServerMessage) -> Result<(), CliError> {
    let text = serde_json::to_vec(message).map_err(|e| CliError::Failed(e.to_string()))?;
    session
        .send(text)
        .await
        .map_err(|e| CliError::Network(format!("cannot answer the client: {e}")))
}

/// Every `interval`, tells the client how much arrived.
async fn report_progress(
    session: Session,
    received: Arc<AtomicU64>,
    first: Arc<OnceLock<Instant>>,
    interval: Duration,
) {
    let mut tick = tokio::time::interval(interval);
    tick.tick().await;
    loop {
        tick.tick().await;
        let Some(first) = first.get() else { continue };
        let progress = Progress {
            elapsed_ms: u64::try_from(first.elapsed().as_millis()).unwrap_or(u64::MAX),
            bytes: received.load(Ordering::Relaxed),
            recv_window: session.stats().recv_window,
        };
        if reply(&session, &ServerMessage::Progress(progress))
            .await
            .is_err()
        {
            return;
        }
    }
}
