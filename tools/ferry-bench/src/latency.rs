//! The latency suite: 64-byte request/response round trips over one Ferry
//! session, p50 and p99 after a warm-up, beside a raw UDP ping-pong in the
//! same runtime style: Ferry on tokio against tokio's `UdpSocket`, Ferry's
//! blocking driver against a blocking `std::net::UdpSocket`.
//!
//! As in the bulk suite, the echoing side and the timing side are processes
//! of their own (`latency-role serve|ping`), each on a current-thread tokio
//! runtime or plain threads; one round trip is timed at a time.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_proto::Config;

use crate::child::{Role, field, tell};
use crate::report::Table;

/// Bytes per request and per response.
const SIZE: usize = 64;

/// What carries the round trips.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    FerryTokio,
    UdpTokio,
    FerryBlocking,
    UdpStd,
}

/// Which side a child plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Side {
    /// Echoes every request.
    Serve,
    /// Sends requests one at a time and times each round trip.
    Ping,
}

/// Arguments of one side (a child process).
#[derive(Debug, clap::Args)]
pub(crate) struct RoleArgs {
    side: Side,
    #[arg(long)]
    kind: Kind,
    /// Serve: where to bind. Ping: where the server is.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Round trips timed.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Round trips before timing starts.
    #[arg(long, default_value_t = 1_000)]
    warmup: usize,
}

/// Round trips timed, and the warm-up before them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) count: usize,
    pub(crate) warmup: usize,
}

pub(crate) fn run(settings: Settings) -> Result<Table, String> {
    let mut table = Table::new("latency");
    eprintln!(
        "latency suite: {} round trips of {SIZE} bytes each way after {} warm-up, two processes",
        settings.count, settings.warmup
    );
    for (base, ferry, style, driver) in [
        (Kind::UdpTokio, Kind::FerryTokio, "tokio", "tokio"),
        (Kind::UdpStd, Kind::FerryBlocking, "blocking", "blocking"),
    ] {
        let udp = |p: &str| format!("latency: raw udp {style} {p}");
        let ferry_name = |p: &str| format!("latency: ferry {driver} {p}");
        match round_trips(base, settings) {
            Ok((p50, p99)) => {
                table.add(
                    udp("p50"),
                    p50,
                    "µs",
                    None,
                    format!("{SIZE}-byte ping-pong, {style} UdpSocket"),
                );
                table.add(udp("p99"), p99, "µs", None, "");
            }
            Err(e) => table.fail(udp("p50"), "µs", &e),
        }
        match round_trips(ferry, settings) {
            Ok((p50, p99)) => {
                table.add(
                    ferry_name("p50"),
                    p50,
                    "µs",
                    Some(&udp("p50")),
                    format!("{SIZE}-byte message and reply on one session"),
                );
                table.add(ferry_name("p99"), p99, "µs", Some(&udp("p99")), "");
            }
            Err(e) => table.fail(ferry_name("p50"), "µs", &e),
        }
    }
    Ok(table)
}

/// p50 and p99 in microseconds, from two child processes.
fn round_trips(kind: Kind, settings: Settings) -> Result<(f64, f64), String> {
    let kind = crate::child::arg_name(kind);
    let (server, mut client) = Role::spawn_pair(
        "latency-role",
        &["serve".into(), "--kind".into(), kind.clone()],
        &[
            "ping".into(),
            "--kind".into(),
            kind,
            "--count".into(),
            settings.count.to_string(),
            "--warmup".into(),
            settings.warmup.to_string(),
        ],
    )?;
    let result = client.expect("RESULT")?;
    client.wait()?;
    server.wait()?;
    Ok((field(&result, 0)?, field(&result, 1)?))
}

/// One side of the round trips, in a child process: the server prints
/// `READY <addr>`, the client `RESULT <p50 µs> <p99 µs>`.
pub(crate) fn role(args: &RoleArgs) -> Result<(), String> {
    // A minute, plus a millisecond per round trip.
    crate::child::watchdog(
        Duration::from_secs(60) + Duration::from_millis((args.count + args.warmup) as u64),
    );
    match args.kind {
        Kind::UdpStd => udp_std(args),
        Kind::FerryBlocking => ferry_blocking(args),
        Kind::UdpTokio | Kind::FerryTokio => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                if args.kind == Kind::UdpTokio {
                    udp_tokio(args).await
                } else {
                    ferry_tokio(args).await
                }
            })
        }
    }
}

/// Times `count` round trips after `warmup` untimed ones; `trip` does one.
fn timed(args: &RoleArgs, mut trip: impl FnMut() -> Result<(), String>) -> Result<(), String> {
    for _ in 0..args.warmup {
        trip()?;
    }
    let mut times = Vec::with_capacity(args.count);
    for _ in 0..args.count {
        let start = Instant::now();
        trip()?;
        times.push(start.elapsed());
    }
    report(times);
    Ok(())
}

fn report(mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| {
        times
            .get(((times.len() as f64 * q) as usize).min(times.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1e6)
    };
    tell(format_args!("RESULT {:.3} {:.3}", at(0.50), at(0.99)));
}

/// A stalled exchange fails rather than hangs.
const STALL: Duration = Duration::from_secs(10);

fn udp_std(args: &RoleArgs) -> Result<(), String> {
    let e = |e: std::io::Error| e.to_string();
    match args.side {
        Side::Serve => {
            let socket = UdpSocket::bind(args.addr).map_err(e)?;
            tell(format_args!("READY {}", socket.local_addr().map_err(e)?));
            let mut buf = [0u8; 2048];
            loop {
                let (len, from) = socket.recv_from(&mut buf).map_err(e)?;
                if len == 1 {
                    return Ok(());
                }
                socket.send_to(&buf[..len], from).map_err(e)?;
            }
        }
        Side::Ping => {
            let socket = UdpSocket::bind("127.0.0.1:0").map_err(e)?;
            socket.connect(args.addr).map_err(e)?;
            socket.set_read_timeout(Some(STALL)).map_err(e)?;
            let request = [7u8; SIZE];
            let mut buf = [0u8; 2048];
            timed(args, || {
                socket.send(&request).map_err(e)?;
                socket.recv(&mut buf).map_err(e)?;
                Ok(())
            })?;
            socket.send(&[0]).map_err(e)?;
            Ok(())
        }
    }
}

async fn udp_tokio(args: &RoleArgs) -> Result<(), String> {
    let e = |e: std::io::Error| e.to_string();
    match args.side {
        Side::Serve => {
            let socket = tokio::net::UdpSocket::bind(args.addr).await.map_err(e)?;
            tell(format_args!("READY {}", socket.local_addr().map_err(e)?));
            let mut buf = [0u8; 2048];
            loop {
                let (len, from) = socket.recv_from(&mut buf).await.map_err(e)?;
                if len == 1 {
                    return Ok(());
                }
                socket.send_to(&buf[..len], from).await.map_err(e)?;
            }
        }
        Side::Ping => {
            let socket = tokio::net::UdpSocket::bind("127.0.0.1:0")
                .await
                .map_err(e)?;
            socket.connect(args.addr).await.map_err(e)?;
            let request = [7u8; SIZE];
            let mut buf = [0u8; 2048];
            let mut times = Vec::with_capacity(args.count);
            for i in 0..args.warmup + args.count {
                let start = Instant::now();
                socket.send(&request).await.map_err(e)?;
                tokio::time::timeout(STALL, socket.recv(&mut buf))
                    .await
                    .map_err(|_| "a round trip stalled".to_owned())?
                    .map_err(e)?;
                if i >= args.warmup {
                    times.push(start.elapsed());
                }
            }
            socket.send(&[0]).await.map_err(e)?;
            report(times);
            Ok(())
        }
    }
}

fn config(server: bool) -> ferry_async::EndpointConfig {
    ferry_async::EndpointConfig::from(Config {
        accept_incoming: server,
        ..Config::default()
    })
}

async fn ferry_tokio(args: &RoleArgs) -> Result<(), String> {
    use ferry_tokio::{Endpoint, EndpointExt};
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    match args.side {
        Side::Serve => {
            let server = Endpoint::bind(args.addr, config(true)).map_err(|x| e(&x))?;
            tell(format_args!("READY {}", server.local_addr()));
            let session = server.accept().await.ok_or("the endpoint closed")?;
            // Until the client closes the session.
            while let Ok(request) = session.recv().await {
                session.send(request).await.map_err(|x| e(&x))?;
            }
            server.close().await;
            Ok(())
        }
        Side::Ping => {
            let client = Endpoint::bind(any, config(false)).map_err(|x| e(&x))?;
            let session = client.connect(args.addr).await.map_err(|x| e(&x))?;
            let request = Bytes::from(vec![7u8; SIZE]);
            let mut times = Vec::with_capacity(args.count);
            for i in 0..args.warmup + args.count {
                let start = Instant::now();
                session.send(request.clone()).await.map_err(|x| e(&x))?;
                tokio::time::timeout(STALL, session.recv())
                    .await
                    .map_err(|_| "a round trip stalled".to_owned())?
                    .map_err(|x| e(&x))?;
                if i >= args.warmup {
                    times.push(start.elapsed());
                }
            }
            report(times);
            session.close(0);
            client.close().await;
            Ok(())
        }
    }
}

fn ferry_blocking(args: &RoleArgs) -> Result<(), String> {
    use ferry_blocking::Endpoint;
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    match args.side {
        Side::Serve => {
            let server = Endpoint::bind(args.addr, config(true)).map_err(|x| e(&x))?;
            tell(format_args!("READY {}", server.local_addr()));
            let session = server.accept().ok_or("the endpoint closed")?;
            while let Ok(request) = session.recv() {
                session.send(request).map_err(|x| e(&x))?;
            }
            server.close();
            Ok(())
        }
        Side::Ping => {
            let client = Endpoint::bind(any, config(false)).map_err(|x| e(&x))?;
            let session = client.connect(args.addr).map_err(|x| e(&x))?;
            let request = Bytes::from(vec![7u8; SIZE]);
            timed(args, || {
                session.send(request.clone()).map_err(|x| e(&x))?;
                session.recv_timeout(STALL).map_err(|x| e(&x))?;
                Ok(())
            })?;
            session.close(0);
            client.close();
            Ok(())
        }
    }
}
