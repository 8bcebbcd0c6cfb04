//! `ferry perf`: measure a real path between two machines, memory to
//! memory, as iperf3 does for TCP.
//!
//! ```text
//! host-b$ ferry perf server --listen 0.0.0.0:7100
//! host-a$ ferry perf client host-b:7100 --time 10 --streams 4 [--download | --both]
//! ```
//!
//! - [`server`]: serves any number of tests, one per session.
//! - [`client`]: runs one test and prints a line per interval, then a
//!   summary (throughput at the receiver, retransmissions, RTT, CPU of both
//!   sides, and what limited the run when the figures tell), or `--json`.
//! - [`wire`]: the control messages on stream 0.
//! - This module: the sending and counting both sides share, and the
//!   sampler that tells a full congestion or receive window.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Subcommand};
use ferry_tokio::{Session, SessionStats, Stream, StreamKind};

use crate::CliError;

pub mod client;
pub mod server;
pub mod wire;

use wire::SenderFigures;

/// Bytes of each message the sending side writes.
pub const MESSAGE: usize = 256 * 1024;
/// How often a sending side samples its session's windows.
const SAMPLE_EVERY: Duration = Duration::from_millis(50);

/// Arguments of `ferry perf`.
#[derive(Debug, Clone, Args)]
pub struct PerfArgs {
    /// Which side.
    #[command(subcommand)]
    pub role: PerfRole,
}

/// The two sides of `ferry perf`.
#[derive(Debug, Clone, Subcommand)]
pub enum PerfRole {
    /// Serve tests until stopped.
    Server(server::PerfServerArgs),
    /// Run one test against a `ferry perf server`.
    Client(client::PerfClientArgs),
}

/// Runs `ferry perf`.
pub fn run(args: &PerfArgs, out: &mut dyn std::io::Write) -> Result<(), CliError> {
    match &args.role {
        PerfRole::Server(args) => server::run(args, out),
        PerfRole::Client(args) => client::run(args, out),
    }
}

/// One message's worth of bytes, shared by every send (no copy).
fn payload() -> Bytes {
    // Not all zeros, in case a path compresses; content is not checked.
    Bytes::from(
        (0..MESSAGE)
            .map(|i| (i * 31 % 251) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// How long or how much a side sends.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Amount {
    For(Duration),
    Bytes(u64),
}

/// Sends on `streams` new streams of `session` until `amount` is reached,
/// then finishes them; counts the bytes queued into `sent`. Returns once
/// everything is queued, with the sampler of the session's windows still
/// running: [`Sampler::finish`] it once the receiver has everything (its
/// figures then cover the whole transfer). `peer_window` gives the peer's
/// receive window, when known.
pub(crate) async fn send(
    session: &Session,
    streams: u32,
    amount: Amount,
    sent: Arc<AtomicU64>,
    peer_window: Arc<AtomicU64>,
) -> Result<Sampler, CliError> {
    let data = payload();
    let done = Arc::new(AtomicBool::new(false));
    let sampler = Sampler {
        done: done.clone(),
        task: tokio::spawn(sample(session.clone(), done, peer_window)),
    };
    let per_stream = match amount {
        Amount::Bytes(total) => Some(total.div_ceil(u64::from(streams.max(1)))),
        Amount::For(_) => None,
    };
    let deadline = match amount {
        Amount::For(d) => Some(Instant::now() + d),
        Amount::Bytes(_) => None,
    };
    let mut tasks = Vec::new();
    for _ in 0..streams.max(1) {
        let stream = session
            .open_stream(StreamKind::ReliableOrdered)
            .map_err(|e| CliError::Network(format!("cannot open a stream: {e}")))?;
        let (data, sent) = (data.clone(), sent.clone());
        tasks.push(tokio::spawn(async move {
            send_stream(&stream, &data, per_stream, deadline, &sent).await
        }));
    }
    for task in tasks {
        if let Ok(Err(e)) | Err(e) = task.await.map_err(|e| e.to_string()) {
            return Err(CliError::Network(format!("sending failed: {e}")));
        }
    }
    Ok(sampler)
}

/// The sending side's sampling of its session, until finished.
#[derive(Debug)]
pub(crate) struct Sampler {
    done: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<SenderFigures>,
}

impl Sampler {
    /// Stops sampling and adds the session's figures now.
    pub(crate) async fn finish(self, session: &Session) -> SenderFigures {
        self.done.store(true, Ordering::SeqCst);
        let mut figures = self.task.await.unwrap_or_default();
        let s = session.stats();
        figures.packets_sent = s.packets_sent;
        figures.retransmitted = s.retransmitted;
        figures.lost = s.lost.saturating_sub(s.spurious_losses);
        figures.rtt_us = u64::try_from(s.rtt.as_micros()).unwrap_or(u64::MAX);
        figures.congestion_window = s.congestion_window;
        figures
    }
}

async fn send_stream(
    stream: &Stream,
    data: &Bytes,
    limit: Option<u64>,
    deadline: Option<Instant>,
    sent: &AtomicU64,
) -> Result<(), String> {
    let mut mine = 0u64;
    loop {
        if deadline.is_some_and(|d| Instant::now() >= d) {
            break;
        }
        let chunk = match limit {
            Some(limit) if mine >= limit => break,
            Some(limit) => data.slice(..data.len().min((limit - mine) as usize)),
            None => data.clone(),
        };
        let n = chunk.len() as u64;
        stream.send(chunk).await.map_err(|e| e.to_string())?;
        mine += n;
        sent.fetch_add(n, Ordering::Relaxed);
    }
    stream.finish().map_err(|e| e.to_string())
}

/// Every [`SAMPLE_EVERY`] until `done`: is the congestion window full, the
/// peer's receive window?
async fn sample(
    session: Session,
    done: Arc<AtomicBool>,
    peer_window: Arc<AtomicU64>,
) -> SenderFigures {
    let mut f = SenderFigures::default();
    let mut tick = tokio::time::interval(SAMPLE_EVERY);
    tick.tick().await;
    while !done.load(Ordering::SeqCst) {
        tick.tick().await;
        let s: SessionStats = session.stats();
        f.samples += 1;
        if s.bytes_in_flight * 10 >= s.congestion_window * 9 {
            f.cwnd_full += 1;
        }
        let window = peer_window.load(Ordering::Relaxed);
        if window > 0 && s.bytes_in_flight * 10 >= window * 9 {
            f.rwnd_full += 1;
        }
    }
    f
}

/// Reads every stream the peer opens, counting bytes into `received`, until
/// `streams` of them ended; `first` is set at the first byte. Returns when
/// the last ended.
pub(crate) async fn receive(
    session: &Session,
    streams: u32,
    received: Arc<AtomicU64>,
    first: Arc<std::sync::OnceLock<Instant>>,
) -> Result<Instant, CliError> {
    let mut tasks = Vec::new();
    for _ in 0..streams.max(1) {
        let Some(stream) = session.accept_stream().await else {
            return Err(CliError::Network(
                "the session ended before every stream began".into(),
            ));
        };
        let (received, first) = (received.clone(), first.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                match stream.recv().await {
                    Ok(Some(data)) => {
                        first.get_or_init(Instant::now);
                        received.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    Ok(None) => return Ok(Instant::now()),
                    Err(e) => return Err(e.to_string()),
                }
            }
        }));
    }
    let mut last = Instant::now();
    for task in tasks {
        match task.await.map_err(|e| e.to_string()) {
            Ok(Ok(at)) => last = last.max(at),
            Ok(Err(e)) | Err(e) => {
                return Err(CliError::Network(format!("receiving failed: {e}")));
            }
        }
    }
    Ok(last)
}

/// CPU seconds this process used so far (user and system, every thread).
pub(crate) fn cpu_seconds() -> Option<f64> {
    #[cfg(unix)]
    {
        let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
        // SAFETY: getrusage fills the struct it is given; RUSAGE_SELF is valid.
        let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) };
        if rc != 0 {
            return None;
        }
        // SAFETY: filled by the successful call above.
        let usage = unsafe { usage.assume_init() };
        let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        Some(secs(usage.ru_utime) + secs(usage.ru_stime))
    }
    #[cfg(not(unix))]
    {
        None
    }
}
