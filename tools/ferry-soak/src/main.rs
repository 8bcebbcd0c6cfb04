//! Ferry's soak test, run through `cargo xtask soak --minutes N`.
//!
//! Two endpoints on tokio talk through the project's lossy relay (loss,
//! reordering, duplication) for N minutes. Several workers at once each open a
//! session, send a few megabytes of messages of random sizes on the session's
//! default stream and on a stream of its own, have the server confirm the
//! count and the bytes, close, and start over: sessions and streams come and
//! go all the time. The server checks every byte of every message (each
//! carries its own description), and the client checks the server's tally.
//!
//! Every few seconds the process samples its resident memory (RSS). At the
//! end it prints the totals and the memory trend after warm-up, and fails
//! (exit status 1) if a byte was wrong, a session failed, or memory kept
//! growing: the last quarter's RSS more than 25% + 16 MiB above the first
//! post-warm-up quarter's.

mod check;
mod memory;

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::Parser;
use ferry_relay::{LinkConfig, Relay};
use ferry_tokio::{Endpoint, EndpointConfig, EndpointExt, Session, StreamKind};

use crate::check::{Generator, Tally, parse_tally, verify};
use crate::memory::Samples;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "ferry-soak",
    about = "Ferry's soak test (use `cargo xtask soak`)"
)]
struct Args {
    /// How long to run, in minutes (fractions allowed).
    #[arg(long, default_value_t = 2.0)]
    minutes: f64,
    /// Sessions transferring at once.
    #[arg(long, default_value_t = 4)]
    workers: usize,
    /// Bytes each session sends before it closes and a new one starts.
    #[arg(long, default_value_t = 4 << 20)]
    bytes_per_session: u64,
    /// Random loss on the relay, each direction (0 to 1).
    #[arg(long, default_value_t = 0.03)]
    loss: f64,
    /// Share of datagrams the relay holds back and delivers late (0 to 1).
    #[arg(long, default_value_t = 0.02)]
    reorder: f64,
    /// Share of datagrams the relay duplicates (0 to 1).
    #[arg(long, default_value_t = 0.01)]
    duplicate: f64,
    /// Seconds between memory samples.
    #[arg(long, default_value_t = 5)]
    sample_seconds: u64,
}

/// Counters shared by the workers and the reporter.
#[derive(Debug, Default)]
struct Totals {
    sessions: AtomicU64,
    messages: AtomicU64,
    bytes: AtomicU64,
    failures: AtomicU64,
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    match run(&args).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("ferry-soak: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &Args) -> Result<bool, Box<dyn std::error::Error>> {
    let duration = Duration::from_secs_f64(args.minutes * 60.0);
    let server = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::server())?;
    let link = LinkConfig::default()
        .latency(Duration::from_millis(1))
        .random_loss(args.loss)
        .reorder(args.reorder, Duration::from_millis(3))
        .duplicate(args.duplicate);
    let relay = Relay::start(
        "127.0.0.1:0".parse()?,
        server.local_addr(),
        link.clone(),
        link,
        0x50a4,
    )?;
    let totals = Arc::new(Totals::default());
    tokio::spawn(serve(server, totals.clone()));
    let client = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::default())?;
    println!(
        "ferry soak: {:.1} min, {} sessions at once of {} bytes each, relay loss {:.0}% reorder {:.0}% duplicate {:.0}%",
        args.minutes,
        args.workers,
        args.bytes_per_session,
        args.loss * 100.0,
        args.reorder * 100.0,
        args.duplicate * 100.0
    );
    let started = Instant::now();
    let deadline = started + duration;
    let mut workers = Vec::new();
    for worker in 0..args.workers {
        workers.push(tokio::spawn(work(
            client.clone(),
            relay.local_addr(),
            worker as u64,
            args.bytes_per_session,
            deadline,
        )));
    }
    let mut samples = Samples::new();
    let interval = Duration::from_secs(args.sample_seconds.max(1));
    while Instant::now() < deadline {
        tokio::time::sleep(interval.min(deadline.saturating_duration_since(Instant::now()))).await;
        let rss = memory::rss_bytes();
        samples.push(started.elapsed(), rss);
        println!(
            "{:>7.1}s  rss {:>7.1} MiB  sessions {:>6}  messages {:>9}  {:>9.1} MB",
            started.elapsed().as_secs_f64(),
            rss.unwrap_or(0) as f64 / (1 << 20) as f64,
            totals.sessions.load(Ordering::Relaxed),
            totals.messages.load(Ordering::Relaxed),
            totals.bytes.load(Ordering::Relaxed) as f64 / 1e6,
        );
    }
    let mut client_errors = 0u64;
    for w in workers {
        match w.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("worker failed: {e}");
                client_errors += 1;
            }
            Err(e) => {
                eprintln!("worker panicked: {e}");
                client_errors += 1;
            }
        }
    }
    client.close().await;
    let elapsed = started.elapsed().as_secs_f64();
    let bytes = totals.bytes.load(Ordering::Relaxed);
    let failures = totals.failures.load(Ordering::Relaxed) + client_errors;
    let stats = relay.stats();
    println!("\nsoak finished after {elapsed:.1} s");
    println!(
        "  sessions {}, messages {}, {:.1} MB checked ({:.1} MB/s), failures {failures}",
        totals.sessions.load(Ordering::Relaxed),
        totals.messages.load(Ordering::Relaxed),
        bytes as f64 / 1e6,
        bytes as f64 / 1e6 / elapsed,
    );
    println!(
        "  relay: {} lost, {} reordered, {} duplicated",
        stats.to_upstream.link.lost + stats.to_client.link.lost,
        stats.to_upstream.link.reordered + stats.to_client.link.reordered,
        stats.to_upstream.link.duplicated + stats.to_client.link.duplicated,
    );
    let verdict = samples.verdict();
    println!("  memory: {verdict}");
    let ok = failures == 0 && bytes > 0 && verdict.flat;
    println!("  result: {}", if ok { "PASS" } else { "FAIL" });
    Ok(ok)
}

/// One worker: sessions one after another until the deadline.
async fn work(
    client: Endpoint,
    server: SocketAddr,
    worker: u64,
    bytes_per_session: u64,
    deadline: Instant,
) -> Result<(), String> {
    let mut round = 0u64;
    while Instant::now() < deadline {
        let tag = worker << 32 | round;
        let session = client
            .connect(server)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        one_session(&session, tag, bytes_per_session).await?;
        session.close(0);
        round += 1;
    }
    Ok(())
}

/// Sends about `budget` bytes on the default stream and on one stream of its
/// own, then waits for the server's tally and checks it.
async fn one_session(session: &Session, tag: u64, budget: u64) -> Result<(), String> {
    let stream = session
        .open_stream(StreamKind::ReliableOrdered)
        .map_err(|e| format!("open stream: {e}"))?;
    let mut main = Generator::new(tag, 0);
    let mut side = Generator::new(tag, 1);
    let mut sent = Tally::default();
    while sent.bytes < budget {
        let m = main.next_message();
        sent.add(m.len());
        session.send(m).await.map_err(|e| format!("send: {e}"))?;
        let m = side.next_message();
        sent.add(m.len());
        stream
            .send(m)
            .await
            .map_err(|e| format!("stream send: {e}"))?;
    }
    stream.finish().map_err(|e| format!("finish: {e}"))?;
    session
        .send(Bytes::from(format!(
            "done {} {}",
            sent.messages, sent.bytes
        )))
        .await
        .map_err(|e| format!("send done: {e}"))?;
    let answer = session.recv().await.map_err(|e| format!("tally: {e}"))?;
    let got = parse_tally(&answer).ok_or("the server's tally is unreadable")?;
    if got != sent {
        return Err(format!("server counted {got:?}, client sent {sent:?}"));
    }
    Ok(())
}

/// Accepts sessions and checks each one.
async fn serve(server: Endpoint, totals: Arc<Totals>) {
    while let Some(session) = server.accept().await {
        let totals = totals.clone();
        tokio::spawn(async move {
            match check_session(&session, &totals).await {
                Ok(()) => {
                    totals.sessions.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    eprintln!("session {}: {e}", session.id());
                    totals.failures.fetch_add(1, Ordering::Relaxed);
                    session.close(1);
                }
            }
        });
    }
}

/// Reads one session's two streams, checking every message, and answers the
/// client's `done` with its own tally.
async fn check_session(session: &Session, totals: &Totals) -> Result<(), String> {
    let side = async {
        let stream = session
            .accept_stream()
            .await
            .ok_or("the session ended before its stream opened")?;
        let mut tally = Tally::default();
        while let Some(m) = stream.recv().await.map_err(|e| format!("stream: {e}"))? {
            verify(&m, 1, tally.messages).map_err(|e| format!("stream message: {e}"))?;
            tally.add(m.len());
            totals.messages.fetch_add(1, Ordering::Relaxed);
            totals.bytes.fetch_add(m.len() as u64, Ordering::Relaxed);
        }
        Ok::<_, String>(tally)
    };
    let main = async {
        let mut tally = Tally::default();
        loop {
            let m = session.recv().await.map_err(|e| format!("recv: {e}"))?;
            if m.starts_with(b"done ") {
                return Ok::<_, String>((tally, m));
            }
            verify(&m, 0, tally.messages).map_err(|e| format!("message: {e}"))?;
            tally.add(m.len());
            totals.messages.fetch_add(1, Ordering::Relaxed);
            totals.bytes.fetch_add(m.len() as u64, Ordering::Relaxed);
        }
    };
    let (side, main) = tokio::join!(side, main);
    let (side, (main, done)) = (side?, main?);
    let total = Tally {
        messages: main.messages + side.messages,
        bytes: main.bytes + side.bytes,
    };
    let claimed = parse_tally(&done).ok_or("unreadable done")?;
    if claimed != total {
        return Err(format!(
            "client sent {claimed:?}, server received {total:?}"
        ));
    }
    session
        .send(done)
        .await
        .map_err(|e| format!("answer: {e}"))?;
    session.closed().await;
    Ok(())
}
