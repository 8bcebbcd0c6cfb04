//! `ferry perf client HOST:PORT`: runs one test against a `ferry perf
//! server` and reports it.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use clap::Args;
use ferry_tokio::Session;
use serde::Serialize;

use super::wire::{Done, Mode, Progress, Received, Request, SenderFigures, ServerMessage, VERSION};
use super::{Amount, cpu_seconds, receive, send};
use crate::CliError;
use crate::session::config::StarterOptions;
use crate::session::forward::host_port;
use crate::session::{bind, client_addr, connect_error, mbit_per_s, resolve, runtime};

/// Arguments of `ferry perf client`.
#[derive(Debug, Clone, Args)]
pub struct PerfClientArgs {
    /// The `ferry perf server` (its UDP HOST:PORT).
    #[arg(value_name = "HOST:PORT", value_parser = host_port)]
    pub server: String,
    /// Which way the data flows.
    #[arg(long, value_enum, default_value_t = Mode::Upload)]
    pub mode: Mode,
    /// Server to client (`--mode download`).
    #[arg(long, conflicts_with_all = ["mode", "both"])]
    pub download: bool,
    /// Both ways at once (`--mode both`).
    #[arg(long, conflicts_with = "mode")]
    pub both: bool,
    /// Seconds each side sends.
    #[arg(
        long = "time",
        short = 't',
        value_name = "SECS",
        default_value_t = 10.0
    )]
    pub time: f64,
    /// Bytes each side sends, instead of a time.
    #[arg(long, short = 'n', value_name = "BYTES", conflicts_with = "time")]
    pub bytes: Option<u64>,
    /// Streams each sending side uses.
    #[arg(long, short = 'P', value_name = "N", default_value_t = 1)]
    pub streams: u32,
    /// Seconds between interval lines.
    #[arg(long, short = 'i', value_name = "SECS", default_value_t = 1.0)]
    pub interval: f64,
    /// Print one JSON object at the end instead of lines.
    #[arg(long)]
    pub json: bool,
    /// Session settings (`--key-file`, or `--identity` and `--peer-key`,
    /// for an encrypted test).
    #[command(flatten)]
    pub session: StarterOptions,
}

impl PerfClientArgs {
    fn mode(&self) -> Mode {
        if self.download {
            Mode::Download
        } else if self.both {
            Mode::Both
        } else {
            self.mode
        }
    }
}

/// One interval line.
#[derive(Debug, Clone, Serialize)]
pub struct Interval {
    /// `up` (client to server) or `down`.
    pub direction: &'static str,
    /// Start and end of the interval, seconds since the first byte.
    pub start: f64,
    /// End.
    pub end: f64,
    /// Bytes that arrived in it.
    pub bytes: u64,
    /// Their rate.
    pub mbit_per_s: f64,
}

/// One direction's result, as the receiver measured it.
#[derive(Debug, Clone, Serialize)]
pub struct Direction {
    /// Bytes received.
    pub bytes: u64,
    /// First byte to last, seconds.
    pub seconds: f64,
    /// Bytes over seconds.
    pub mbit_per_s: f64,
    /// How the sender's session went.
    pub sender: SenderFigures,
}

/// What `--json` prints.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The server tested.
    pub server: String,
    /// Which way.
    pub mode: Mode,
    /// Streams per sending side.
    pub streams: u32,
    /// Encrypted with a pre-shared key.
    pub encrypted: bool,
    /// Client to server.
    pub upload: Option<Direction>,
    /// Server to client.
    pub download: Option<Direction>,
    /// Lines, in order.
    pub intervals: Vec<Interval>,
    /// CPU seconds of the client process.
    pub client_cpu_seconds: Option<f64>,
    /// CPU seconds of the server process.
    pub server_cpu_seconds: Option<f64>,
    /// Wall-clock seconds of the test.
    pub seconds: f64,
    /// What held the run back, when the figures tell.
    pub limited_by: Vec<String>,
}

/// Runs `ferry perf client`.
pub fn run(args: &PerfClientArgs, out: &mut dyn Write) -> Result<(), CliError> {
    if !(args.time.is_finite() && args.time > 0.0 && args.time <= 3600.0) {
        return Err(CliError::Invalid(
            "--time must be between 0 and 3600 seconds".into(),
        ));
    }
    if !(args.interval.is_finite() && args.interval >= 0.1) {
        return Err(CliError::Invalid(
            "--interval must be at least 0.1 seconds".into(),
        ));
    }
    let settings = args.session.load()?;
    let mode = args.mode();
    runtime()?.block_on(async {
        let peer = resolve(&args.server, "HOST:PORT").await?;
        let endpoint = bind(
            client_addr(peer),
            settings.endpoint.clone(),
            "the local address",
        )?;
        let timeout = settings.endpoint.protocol.handshake_timeout;
        let session = endpoint.connect(peer).await.map_err(|e| {
            let identity = settings
                .endpoint
                .protocol
                .identity
                .as_ref()
                .map(|i| i.public_key());
            connect_error(
                &args.server,
                e,
                timeout,
                "ferry perf server --listen",
                identity,
            )
        })?;
        let request = Request {
            version: VERSION,
            mode,
            streams: args.streams,
            duration_ms: (args.time * 1000.0) as u64,
            bytes: args.bytes,
            interval_ms: (args.interval * 1000.0) as u64,
        };
        let encrypted = settings.encrypted();
        let after = settings.endpoint.fallback.after;
        let transport = crate::session::config::transport_note(&session, after);
        tracing::info!(server = %args.server, "session open {transport}");
        if !args.json {
            writeln!(
                out,
                "ferry perf: {mode} with {} ({} stream{}, {}, {}{})",
                args.server,
                args.streams,
                if args.streams == 1 { "" } else { "s" },
                args.bytes
                    .map_or_else(|| format!("{} s", args.time), |b| format!("{b} bytes")),
                if encrypted { "encrypted" } else { "clear" },
                if after.is_some() {
                    format!(", {transport}")
                } else {
                    String::new()
                }
            )?;
        }
        let text = serde_json::to_vec(&request).map_err(|e| CliError::Failed(e.to_string()))?;
        session
            .send(text)
            .await
            .map_err(|e| CliError::Network(format!("cannot send the request: {e}")))?;
        let report = test(&session, args, &request, encrypted, out).await;
        session.close(0);
        endpoint.close().await;
        let report = report?;
        if args.json {
            let text = serde_json::to_string_pretty(&report)
                .map_err(|e| CliError::Failed(e.to_string()))?;
            writeln!(out, "{text}")?;
        } else {
            summary(&report, out)?;
        }
        Ok(())
    })
}

async fn test(
    session: &Session,
    args: &PerfClientArgs,
    request: &Request,
    encrypted: bool,
    out: &mut dyn Write,
) -> Result<Report, CliError> {
    let started = Instant::now();
    let cpu_start = cpu_seconds();
    let amount = match request.bytes {
        Some(b) => Amount::Bytes(b),
        None => Amount::For(Duration::from_millis(request.duration_ms)),
    };
    let peer_window = Arc::new(AtomicU64::new(0));
    let upload = request.mode.upload().then(|| {
        let (session, window) = (session.clone(), peer_window.clone());
        let streams = request.streams;
        tokio::spawn(async move { send(&session, streams, amount, Arc::default(), window).await })
    });
    let received = Arc::new(AtomicU64::new(0));
    let first = Arc::new(OnceLock::new());
    let download = request.mode.download().then(|| {
        let (session, received, first) = (session.clone(), received.clone(), first.clone());
        let streams = request.streams;
        tokio::spawn(async move {
            let last = receive(&session, streams, received.clone(), first).await?;
            // The server's figures as a sender are final from here.
            let word = Received {
                bytes: received.load(Ordering::Relaxed),
            };
            let text = serde_json::to_vec(&word).map_err(|e| CliError::Failed(e.to_string()))?;
            session
                .send(text)
                .await
                .map_err(|e| CliError::Network(format!("cannot tell the server: {e}")))?;
            Ok::<_, CliError>(last)
        })
    });
    let mut intervals = Vec::new();
    let mut done: Option<Done> = None;
    let mut last_up = (0.0, 0u64);
    let mut last_down = (0.0, 0u64);
    let mut tick = tokio::time::interval(Duration::from_millis(request.interval_ms));
    tick.tick().await;
    while done.is_none() {
        tokio::select! {
            message = session.recv() => {
                let message = message.map_err(|e| CliError::Network(format!(
                    "the server went away before the end: {e}")))?;
                let message: ServerMessage = serde_json::from_slice(&message)
                    .map_err(|e| CliError::Network(format!("unreadable answer from the server: {e}")))?;
                match message {
                    ServerMessage::Progress(Progress { elapsed_ms, bytes, recv_window }) => {
                        peer_window.store(recv_window, Ordering::Relaxed);
                        let end = elapsed_ms as f64 / 1e3;
                        let line = interval("up", last_up, (end, bytes));
                        last_up = (end, bytes);
                        print_interval(&line, args.json, out)?;
                        intervals.push(line);
                    }
                    ServerMessage::Done(d) => done = Some(d),
                    ServerMessage::Refused { reason } => {
                        return Err(CliError::Failed(format!("the server refused the test: {reason}")));
                    }
                }
            }
            _ = tick.tick(), if download.is_some() => {
                if let Some(first) = first.get() {
                    let end = first.elapsed().as_secs_f64();
                    let bytes = received.load(Ordering::Relaxed);
                    let line = interval("down", last_down, (end, bytes));
                    last_down = (end, bytes);
                    print_interval(&line, args.json, out)?;
                    intervals.push(line);
                }
            }
        }
    }
    let done = done.expect("the loop ends on Done");
    let upload = match upload {
        Some(task) => {
            // Done came after the server received everything.
            let sampler = task.await.map_err(|e| CliError::Failed(e.to_string()))??;
            let sender = sampler.finish(session).await;
            let seconds = done.elapsed_ms as f64 / 1e3;
            Some(Direction {
                bytes: done.bytes_received,
                seconds,
                mbit_per_s: mbit_per_s(done.bytes_received, Duration::from_millis(done.elapsed_ms)),
                sender,
            })
        }
        None => None,
    };
    let download = match download {
        Some(task) => {
            let last = task.await.map_err(|e| CliError::Failed(e.to_string()))??;
            let elapsed = first
                .get()
                .map_or(Duration::ZERO, |f| last.saturating_duration_since(*f));
            let bytes = received.load(Ordering::Relaxed);
            Some(Direction {
                bytes,
                seconds: elapsed.as_secs_f64(),
                mbit_per_s: mbit_per_s(bytes, elapsed),
                sender: done.sender.unwrap_or_default(),
            })
        }
        None => None,
    };
    let seconds = started.elapsed().as_secs_f64();
    let client_cpu = cpu_start.zip(cpu_seconds()).map(|(a, b)| b - a);
    let mut report = Report {
        server: args.server.clone(),
        mode: request.mode,
        streams: request.streams,
        encrypted,
        upload,
        download,
        intervals,
        client_cpu_seconds: client_cpu,
        server_cpu_seconds: done.cpu_seconds,
        seconds,
        limited_by: Vec::new(),
    };
    report.limited_by = limits(&report);
    Ok(report)
}

fn interval(
    direction: &'static str,
    (start, before): (f64, u64),
    (end, bytes): (f64, u64),
) -> Interval {
    let n = bytes.saturating_sub(before);
    Interval {
        direction,
        start,
        end,
        bytes: n,
        mbit_per_s: mbit_per_s(n, Duration::from_secs_f64((end - start).max(1e-6))),
    }
}

fn print_interval(line: &Interval, json: bool, out: &mut dyn Write) -> Result<(), CliError> {
    if !json {
        writeln!(
            out,
            "[{:6.1}-{:6.1} s] {:4} {:10.1} Mbit/s",
            line.start, line.end, line.direction, line.mbit_per_s
        )?;
        out.flush()?;
    }
    Ok(())
}

/// What held the run back, from the figures: a side's CPU, loss, a full
/// receive or congestion window. Empty when none stands out.
pub fn limits(r: &Report) -> Vec<String> {
    let mut found = Vec::new();
    for (side, cpu) in [
        ("client", r.client_cpu_seconds),
        ("server", r.server_cpu_seconds),
    ] {
        if let Some(cpu) = cpu {
            let cores = cpu / r.seconds.max(1e-6);
            if cores >= 0.9 {
                found.push(format!(
                    "CPU: the {side} process used {cores:.2} cores (its endpoint's driver runs on one)"
                ));
            }
        }
    }
    for (name, d) in [("upload", &r.upload), ("download", &r.download)] {
        let Some(d) = d else { continue };
        let s = &d.sender;
        if s.packets_sent > 0 && s.retransmitted * 100 > s.packets_sent {
            found.push(format!(
                "loss ({name}): {:.1}% of packets sent again",
                s.retransmitted as f64 * 100.0 / s.packets_sent as f64
            ));
        }
        if s.samples > 0 && s.rwnd_full * 2 > s.samples {
            found.push(format!(
                "the receive window ({name}): full in {}% of samples; raise recv_window / max_recv_window",
                s.rwnd_full * 100 / s.samples
            ));
        } else if s.samples > 0 && s.cwnd_full * 2 > s.samples {
            found.push(format!(
                "the congestion window ({name}): full in {}% of samples, the path's capacity as the controller sees it",
                s.cwnd_full * 100 / s.samples
            ));
        }
    }
    found
}

fn summary(r: &Report, out: &mut dyn Write) -> Result<(), CliError> {
    for (name, d) in [("upload", &r.upload), ("download", &r.download)] {
        let Some(d) = d else { continue };
        let s = &d.sender;
        writeln!(
            out,
            "{name}: {:.1} Mbit/s at the receiver ({} bytes in {:.2} s); {} fragments sent again, {} packets lost of {} ({:.2}%), rtt {:.2} ms, congestion window {} bytes",
            d.mbit_per_s,
            d.bytes,
            d.seconds,
            s.retransmitted,
            s.lost,
            s.packets_sent,
            if s.packets_sent > 0 {
                s.lost as f64 * 100.0 / s.packets_sent as f64
            } else {
                0.0
            },
            s.rtt_us as f64 / 1e3,
            s.congestion_window
        )?;
    }
    let cpu = |c: Option<f64>| c.map_or_else(|| "unknown".to_owned(), |c| format!("{c:.2} s"));
    writeln!(
        out,
        "CPU: client {}, server {} over {:.2} s",
        cpu(r.client_cpu_seconds),
        cpu(r.server_cpu_seconds),
        r.seconds
    )?;
    if r.limited_by.is_empty() {
        writeln!(
            out,
            "limited by: nothing Ferry could see (the path's pace, or the other traffic on it)"
        )?;
    } else {
        for limit in &r.limited_by {
            writeln!(out, "limited by: {limit}")?;
        }
    }
    Ok(())
}
