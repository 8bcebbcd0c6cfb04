//! The bulk suite: one session moving a gibibyte over loopback, per driver,
//! beside TCP over loopback, a raw UDP blast (the ceiling: no reliability,
//! datagrams of Ferry's MTU) and, with `--peers`, quinn.
//!
//! **Process layout.** Every transfer runs in two child processes, the bench
//! binary re-invoking itself as `bulk-role send|receive`: the receiver binds
//! and prints its address, the sender connects and sends. Each side reports
//! its own CPU time (user + system, `getrusage`), so the CPU seconds per
//! GB are the sum of two honest figures, and neither side steals the other's
//! runtime threads. The async drivers run on a current-thread runtime (tokio;
//! one row repeats the clear transfer on tokio's multi-thread runtime) or
//! their runtime's `block_on` and global executor (smol, async-std) in each
//! process; TCP and the UDP blasts use blocking `std::net` sockets, one
//! thread per side.
//!
//! **Timing.** For the reliable transports (Ferry, TCP, quinn) the sender
//! times from its first byte queued until the receiver, having counted every
//! byte, closes the session (Ferry, quinn) or the connection (TCP): the figure
//! is delivered bytes per second. The UDP blasts cannot be acknowledged, so
//! the receiver times from its first datagram to its last, and the row is the
//! bytes that arrived per second (the loss is in the note).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_proto::crypto::PreSharedKey;
use ferry_proto::{CipherPreference, Config};

use crate::child::{Role, field, secs, tell};
use crate::cpu::process_cpu;
use crate::many::tell_shards;
use crate::report::Table;

/// Bytes per message (Ferry) or per write (TCP, quinn).
mod baseline;

pub(crate) use baseline::udp_socket;

pub(crate) const CHUNK: usize = 1 << 20;

/// How often the key updates row moves to fresh keys: far more often than
/// the default (2^23 packets), so that a gibibyte crosses several updates.
const KEY_UPDATE_PACKETS: u64 = 100_000;

/// The socket buffers every transport asks for, as Ferry's drivers do.
const SOCKET_BUFFER: usize = 8 << 20;

/// What moves the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// Ferry on tokio, in clear.
    Tokio,
    /// Ferry on tokio with a pre-shared key, the cipher negotiated as by
    /// default (AES-256-GCM where the CPU has hardware AES).
    TokioPsk,
    /// Ferry on tokio with a pre-shared key, ChaCha20-Poly1305 forced.
    TokioPskChacha,
    /// Ferry on tokio with a pre-shared key, the cipher negotiated as by
    /// default, both sides updating their keys every
    /// [`KEY_UPDATE_PACKETS`] packets (some eight times a gibibyte).
    TokioPskKeyUpdates,
    /// Ferry on tokio's multi-thread runtime (a worker per core, what
    /// `#[tokio::main]` gives), in clear.
    TokioMulti,
    /// Ferry on tokio, in clear, each side serving its metrics and scraping
    /// them every 100 ms (`scrape.rs`).
    TokioScraped,
    /// Ferry on tokio, in clear, over the WebSocket fallback: the
    /// receiver's UDP port number is blackholed, so the sender falls back.
    TokioFallback,
    /// The same with Cubic, a loss-based controller, instead of BBR.
    TokioFallbackCubic,
    /// Ferry on async-std.
    AsyncStd,
    /// Ferry on smol.
    Smol,
    /// Ferry on plain threads.
    Blocking,
    /// One TCP connection, `std::net`.
    Tcp,
    /// A `send_to` loop, datagrams of the MTU.
    Udp,
    /// GSO sends (quinn-udp) and GRO receives, datagrams of the MTU.
    UdpGso,
    /// quinn, one unidirectional stream, datagrams of the MTU and windows
    /// as large as Ferry's (feature `peers`).
    Quinn,
    /// quinn with its default transport configuration: path MTU discovery
    /// (up to 1452 bytes), its own windows (feature `peers`).
    QuinnDefaults,
}

/// Which side of a transfer a child plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Side {
    Send,
    Receive,
}

/// Arguments of one side of a transfer (a child process).
#[derive(Debug, clap::Args)]
pub(crate) struct RoleArgs {
    side: Side,
    #[arg(long)]
    kind: Kind,
    /// Receive: where to bind. Send: where to send.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Concurrent sessions (Ferry only).
    #[arg(long, default_value_t = 1)]
    sessions: usize,
    /// Shards of the endpoint (Ferry only; `EndpointConfig::shards`, 0 =
    /// one per core).
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// Send: client endpoints, each on a port of its own, the sessions
    /// dealt among them (Ferry on an async runtime only): a server's shards
    /// spread sessions only as their source addresses differ.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Bytes each session moves.
    #[arg(long)]
    bytes: u64,
    /// Ferry's MTU, and the UDP blasts' datagram size.
    #[arg(long)]
    mtu: usize,
    /// quinn: the receiver's self-signed certificate, hex DER.
    #[arg(long, default_value = "")]
    cert: String,
}

/// Settings of the suite.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) mib: u64,
    pub(crate) mtu: usize,
    pub(crate) peers: bool,
    /// Transfers per row; the row is their median.
    pub(crate) repeat: usize,
}

/// What one transfer measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outcome {
    /// Bytes the receiver counted.
    pub(crate) received: u64,
    /// Bytes the sender sent.
    pub(crate) sent: u64,
    pub(crate) elapsed: Duration,
    pub(crate) send_cpu: Duration,
    pub(crate) recv_cpu: Duration,
}

impl Outcome {
    pub(crate) fn mb_per_s(&self) -> f64 {
        self.received as f64 / self.elapsed.as_secs_f64().max(1e-9) / 1e6
    }

    pub(crate) fn cpu_per_gb(&self) -> f64 {
        (self.send_cpu + self.recv_cpu).as_secs_f64() / (self.received as f64 / 1e9).max(1e-9)
    }

    pub(crate) fn cpu_note(&self) -> String {
        format!(
            "sender {:.2} s + receiver {:.2} s",
            self.send_cpu.as_secs_f64(),
            self.recv_cpu.as_secs_f64()
        )
    }
}

/// The row names other suites refer to.
pub(crate) const TCP: &str = "bulk: tcp (std)";
pub(crate) const TCP_CPU: &str = "bulk: tcp (std) CPU";
pub(crate) const UDP: &str = "bulk: raw udp send_to";
pub(crate) const UDP_GSO: &str = "bulk: raw udp gso";
pub(crate) const QUINN: &str = "bulk: quinn";
pub(crate) const QUINN_CPU: &str = "bulk: quinn CPU";
pub(crate) const QUINN_DEFAULTS: &str = "bulk: quinn, its defaults";
pub(crate) const TOKIO: &str = "bulk: ferry tokio";

pub(crate) fn run(settings: &Settings) -> Result<Table, String> {
    let mut table = Table::new("bulk");
    let bytes = settings.mib << 20;
    let size = format!("{} MiB", settings.mib);
    eprintln!(
        "bulk suite: {size} per transfer, one session, mtu {}, sender and receiver in processes of their own, median of {}",
        settings.mtu, settings.repeat
    );

    // A failed transfer fails its row only: the rest still runs.
    let measure = |table: &mut Table, kind, name: &str| match median(
        kind,
        1,
        bytes,
        settings.mtu,
        Spread::ONE,
        settings.repeat,
    ) {
        Ok(measured) => Some(measured),
        Err(e) => {
            table.fail(name, "MB/s", &e);
            None
        }
    };
    if let Some((tcp, spread)) = measure(&mut table, Kind::Tcp, TCP) {
        table.add(
            TCP,
            tcp.mb_per_s(),
            "MB/s",
            None,
            format!("{size}, one connection, blocking std::net{spread}"),
        );
        table.add(TCP_CPU, tcp.cpu_per_gb(), "s/GB", None, tcp.cpu_note());
    }

    for (kind, name, how) in [
        (Kind::Udp, UDP, "send_to loop"),
        (Kind::UdpGso, UDP_GSO, "quinn-udp GSO sends, GRO receives"),
    ] {
        let Some((udp, spread)) = measure(&mut table, kind, name) else {
            continue;
        };
        let lost = 1.0 - udp.received as f64 / udp.sent.max(1) as f64;
        table.add(
            name,
            udp.mb_per_s(),
            "MB/s",
            Some(TCP),
            format!(
                "ceiling: {how}, {}-byte datagrams, bytes received per s, {:.1}% lost{spread}",
                settings.mtu,
                lost * 100.0
            ),
        );
    }

    if settings.peers {
        if let Some((quinn, spread)) = measure(&mut table, Kind::Quinn, QUINN) {
            table
                .add(
                    QUINN,
                    quinn.mb_per_s(),
                    "MB/s",
                    Some(TCP),
                    format!(
                        "{size}, quinn {}, TLS 1.3 (its only mode), {}-byte datagrams{spread}",
                        crate::peers::QUINN_VERSION,
                        settings.mtu
                    ),
                )
                .also(UDP_GSO);
            table.add(
                QUINN_CPU,
                quinn.cpu_per_gb(),
                "s/GB",
                Some(TCP_CPU),
                quinn.cpu_note(),
            );
        }
        if let Some((quinn, spread)) = measure(&mut table, Kind::QuinnDefaults, QUINN_DEFAULTS) {
            table.add(
                QUINN_DEFAULTS,
                quinn.mb_per_s(),
                "MB/s",
                Some(QUINN),
                format!(
                    "{size}, quinn's default transport: path MTU discovery, its windows{spread}"
                ),
            );
            table.add(
                format!("{QUINN_DEFAULTS} CPU"),
                quinn.cpu_per_gb(),
                "s/GB",
                Some(QUINN_CPU),
                quinn.cpu_note(),
            );
        }
    }

    let peer = |row: &mut crate::report::Row, name: &str| {
        if settings.peers {
            row.also(name);
        }
    };
    for (kind, name, how) in [
        (Kind::Tokio, TOKIO.to_owned(), "tokio current-thread"),
        (
            Kind::TokioPsk,
            format!("{TOKIO} psk"),
            "tokio, pre-shared key: Noise NNpsk0, then the cipher negotiated by default",
        ),
        (
            Kind::TokioPskChacha,
            format!("{TOKIO} psk chacha20-poly1305"),
            "tokio, pre-shared key, ChaCha20-Poly1305 forced (what CPUs without hardware AES get)",
        ),
        (
            Kind::TokioPskKeyUpdates,
            format!("{TOKIO} psk, key updates"),
            "tokio, pre-shared key as above, both sides moving to fresh keys every 100 000 packets",
        ),
        (
            Kind::TokioMulti,
            format!("{TOKIO} multi-thread"),
            "tokio multi-thread runtime, a worker per core",
        ),
        (
            Kind::TokioScraped,
            format!("{TOKIO} metrics scraped"),
            "tokio, each side serving Prometheus metrics (ferry-metrics) scraped every 100 ms",
        ),
        (
            Kind::TokioFallback,
            format!("{TOKIO} fallback (WebSocket over TCP)"),
            "tokio, UDP blackholed: one WebSocket connection over TCP, max_mtu 16384",
        ),
        (
            Kind::TokioFallbackCubic,
            format!("{TOKIO} fallback (WebSocket over TCP), cubic"),
            "as the row above, with Cubic instead of BBR",
        ),
        (
            Kind::AsyncStd,
            "bulk: ferry async-std".to_owned(),
            "async-std block_on",
        ),
        (Kind::Smol, "bulk: ferry smol".to_owned(), "smol block_on"),
        (
            Kind::Blocking,
            "bulk: ferry blocking".to_owned(),
            "plain threads",
        ),
    ] {
        let Some((outcome, spread)) = measure(&mut table, kind, &name) else {
            continue;
        };
        let row = table.add(
            &name,
            outcome.mb_per_s(),
            "MB/s",
            Some(TCP),
            format!("{size}, {how}{spread}"),
        );
        row.also(UDP).also(UDP_GSO);
        peer(row, QUINN);
        if matches!(kind, Kind::Tokio | Kind::TokioPsk) {
            peer(row, QUINN_DEFAULTS);
        }
        if matches!(
            kind,
            Kind::TokioPsk
                | Kind::TokioPskChacha
                | Kind::TokioPskKeyUpdates
                | Kind::TokioMulti
                | Kind::TokioScraped
                | Kind::TokioFallback
                | Kind::TokioFallbackCubic
        ) {
            row.also(TOKIO);
        }
        if kind == Kind::TokioPskKeyUpdates {
            // What the updates cost: the same transfer without them.
            row.also(format!("{TOKIO} psk"));
        }
        let row = table.add(
            format!("{name} CPU"),
            outcome.cpu_per_gb(),
            "s/GB",
            Some(TCP_CPU),
            outcome.cpu_note(),
        );
        if kind == Kind::TokioPskKeyUpdates {
            row.also(format!("{TOKIO} psk CPU"));
        }
        peer(row, QUINN_CPU);
    }
    Ok(table)
}

/// `repeat` transfers (see [`transfer`]); the one of median goodput, and a
/// note saying so with the spread (empty for one transfer).
pub(crate) fn median(
    kind: Kind,
    sessions: usize,
    bytes: u64,
    mtu: usize,
    spread: Spread,
    repeat: usize,
) -> Result<(Outcome, String), String> {
    let mut runs = (0..repeat.max(1))
        .map(|_| transfer(kind, sessions, bytes, mtu, spread))
        .collect::<Result<Vec<_>, _>>()?;
    runs.sort_by(|a, b| a.mb_per_s().total_cmp(&b.mb_per_s()));
    let note = if runs.len() > 1 {
        format!(
            "; median of {} ({:.0}–{:.0} MB/s)",
            runs.len(),
            runs[0].mb_per_s(),
            runs[runs.len() - 1].mb_per_s()
        )
    } else {
        String::new()
    };
    Ok((runs[runs.len() / 2], note))
}

/// How a transfer's endpoints are laid out (Ferry only): shards per
/// endpoint, and client endpoints.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spread {
    pub(crate) shards: usize,
    pub(crate) clients: usize,
}

impl Spread {
    /// One endpoint of one shard on each side.
    pub(crate) const ONE: Self = Self {
        shards: 1,
        clients: 1,
    };
}

/// One transfer of `bytes` on each of `sessions` sessions, two processes,
/// laid out as `spread` says.
pub(crate) fn transfer(
    kind: Kind,
    sessions: usize,
    bytes: u64,
    mtu: usize,
    spread: Spread,
) -> Result<Outcome, String> {
    let common = |side: &str| {
        vec![
            side.to_owned(),
            "--kind".into(),
            crate::child::arg_name(kind),
            "--sessions".into(),
            sessions.to_string(),
            "--shards".into(),
            spread.shards.to_string(),
            "--clients".into(),
            spread.clients.to_string(),
            "--bytes".into(),
            bytes.to_string(),
            "--mtu".into(),
            mtu.to_string(),
        ]
    };
    let (mut receiver, mut sender) =
        Role::spawn_pair("bulk-role", &common("receive"), &common("send"))?;
    let s = sender.expect("RESULT")?;
    let r = receiver.expect("RESULT")?;
    sender.wait()?;
    receiver.wait()?;
    let unacknowledged = matches!(kind, Kind::Udp | Kind::UdpGso);
    let outcome = Outcome {
        received: field(&r, 0)?,
        sent: field(&s, 2)?,
        elapsed: if unacknowledged {
            secs(&r, 1)?
        } else {
            secs(&s, 0)?
        },
        send_cpu: secs(&s, 1)?,
        recv_cpu: secs(&r, 2)?,
    };
    if !unacknowledged && outcome.received != bytes * sessions as u64 {
        return Err(format!(
            "{kind:?}: the receiver counted {} bytes of {}",
            outcome.received,
            bytes * sessions as u64
        ));
    }
    Ok(outcome)
}

/// One side of a transfer, in a child process. The receiver prints
/// `READY <addr> [cert]` once bound and `RESULT <bytes> <elapsed s> <cpu s>`;
/// the sender `RESULT <elapsed s> <cpu s> <bytes sent>`.
pub(crate) fn role(args: &RoleArgs) -> Result<(), String> {
    // A minute, plus the whole transfer at 5 MB/s.
    let total = args.bytes * args.sessions as u64;
    crate::child::watchdog(Duration::from_secs(60 + total / 5_000_000));
    match (args.kind, args.side) {
        (Kind::Tcp, Side::Receive) => baseline::tcp_receive(args),
        (Kind::Tcp, Side::Send) => baseline::tcp_send(args),
        (Kind::Udp | Kind::UdpGso, Side::Receive) => baseline::udp_receive(args),
        (Kind::Udp | Kind::UdpGso, Side::Send) => baseline::udp_send(args),
        (Kind::Blocking, side) => blocking(args, side),
        (Kind::Quinn | Kind::QuinnDefaults, side) => crate::peers::quinn_role(args.side_args(side)),
        (
            Kind::Tokio
            | Kind::TokioPsk
            | Kind::TokioPskChacha
            | Kind::TokioPskKeyUpdates
            | Kind::TokioMulti
            | Kind::TokioScraped
            | Kind::TokioFallback
            | Kind::TokioFallbackCubic,
            side,
        ) => {
            let rt = if args.kind == Kind::TokioMulti {
                tokio::runtime::Builder::new_multi_thread()
            } else {
                tokio::runtime::Builder::new_current_thread()
            }
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let spawn = |f: BoxFuture| drop(tokio::spawn(f));
                let bind = |config| {
                    <ferry_tokio::Endpoint as ferry_tokio::EndpointExt>::bind(
                        "127.0.0.1:0".parse().expect("address"),
                        config,
                    )
                    .map_err(|e| e.to_string())
                };
                ferry_async(args, side, bind, &spawn).await
            })
        }
        (Kind::Smol, side) => smol::block_on(async {
            let spawn = |f: BoxFuture| smol::spawn(f).detach();
            let bind = |config| {
                <ferry_smol::Endpoint as ferry_smol::EndpointExt>::bind(
                    "127.0.0.1:0".parse().expect("address"),
                    config,
                )
                .map_err(|e| e.to_string())
            };
            ferry_async(args, side, bind, &spawn).await
        }),
        (Kind::AsyncStd, side) => async_std::task::block_on(async {
            let spawn = |f: BoxFuture| drop(async_std::task::spawn(f));
            let bind = |config| {
                <ferry_async_std::Endpoint as ferry_async_std::EndpointExt>::bind(
                    "127.0.0.1:0".parse().expect("address"),
                    config,
                )
                .map_err(|e| e.to_string())
            };
            ferry_async(args, side, bind, &spawn).await
        }),
    }
}

impl RoleArgs {
    fn side_args(&self, side: Side) -> crate::peers::QuinnRole {
        crate::peers::QuinnRole {
            send: side == Side::Send,
            addr: self.addr,
            bytes: self.bytes,
            mtu: self.mtu,
            cert: self.cert.clone(),
            defaults: self.kind == Kind::QuinnDefaults,
        }
    }
}

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// Ferry's configuration for a role.
fn ferry_config(args: &RoleArgs, server: bool) -> ferry_async::EndpointConfig {
    let psk = matches!(
        args.kind,
        Kind::TokioPsk | Kind::TokioPskChacha | Kind::TokioPskKeyUpdates
    )
    .then(|| PreSharedKey::from_bytes([0x42; 32]));
    let key_update_packets = if args.kind == Kind::TokioPskKeyUpdates {
        KEY_UPDATE_PACKETS
    } else {
        Config::default().key_update_packets
    };
    let cipher = if args.kind == Kind::TokioPskChacha {
        CipherPreference::ChaCha20Poly1305
    } else {
        CipherPreference::Auto
    };
    let mut config = ferry_async::EndpointConfig::from(Config {
        accept_incoming: server,
        mtu: args.mtu,
        max_sessions: args.sessions.max(Config::default().max_sessions),
        // The many-sessions row starts every session from one address at once.
        max_handshakes_per_source: 0,
        psk,
        cipher,
        key_update_packets,
        ..Config::default()
    })
    .with_shards(args.shards);
    if matches!(args.kind, Kind::TokioFallback | Kind::TokioFallbackCubic) {
        config = crate::fallback::config(config, server);
    }
    if args.kind == Kind::TokioFallbackCubic {
        config.protocol.congestion = ferry_async::types::CongestionControl::Cubic;
    }
    config
}

/// The sizes of the messages one session sends.
pub(crate) fn chunks(bytes: u64) -> impl Iterator<Item = usize> {
    let full = bytes / CHUNK as u64;
    let rest = (bytes % CHUNK as u64) as usize;
    std::iter::repeat_n(CHUNK, full as usize).chain((rest > 0).then_some(rest))
}

/// Ferry on an async runtime: `bind` makes the endpoint, `spawn` runs a task.
async fn ferry_async(
    args: &RoleArgs,
    side: Side,
    bind: impl Fn(ferry_async::EndpointConfig) -> Result<ferry_async::Endpoint, String>,
    spawn: &dyn Fn(BoxFuture),
) -> Result<(), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    match side {
        Side::Receive => {
            let server = bind(ferry_config(args, true))?;
            let scraper = scraper(args, &server)?;
            let to = server.fallback_addr().unwrap_or(server.local_addr());
            tell(format_args!("READY {to}"));
            let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
            let mut start = None;
            let mut ids = Vec::with_capacity(args.sessions);
            for _ in 0..args.sessions {
                let session = server.accept().await.ok_or("the endpoint closed")?;
                start.get_or_insert_with(Instant::now);
                ids.push(session.id());
                let tx = tx.clone();
                let bytes = args.bytes;
                spawn(Box::pin(async move {
                    let mut got = 0u64;
                    while got < bytes {
                        match session.recv().await {
                            Ok(m) => got += m.len() as u64,
                            Err(_) => break,
                        }
                    }
                    let _ = tx.send((got, session.stats()));
                    session.close(0);
                }));
            }
            drop(tx);
            let mut total = 0;
            let mut all = Vec::new();
            while let Some((got, stats)) = rx.recv().await {
                total += got;
                all.push(stats);
            }
            let elapsed = start.map_or(Duration::ZERO, |s| s.elapsed());
            crate::diagnostics::report_losses(all.into_iter());
            crate::diagnostics::report_endpoint(&server.stats());
            tell_shards("receiver", &ids, &server.shard_stats());
            if matches!(args.kind, Kind::TokioFallback | Kind::TokioFallbackCubic) {
                eprintln!("FALLBACK receiver {:?}", server.fallback_stats());
            }
            if let Some(scraper) = scraper {
                eprintln!("SCRAPES receiver {}", scraper.stop());
            }
            server.close().await;
            report_received(total, elapsed);
            Ok(())
        }
        Side::Send => {
            let clients = (0..args.clients.max(1))
                .map(|_| bind(ferry_config(args, false)))
                .collect::<Result<Vec<_>, _>>()?;
            let scraper = scraper(args, &clients[0])?;
            let mut sessions = Vec::with_capacity(args.sessions);
            for i in 0..args.sessions {
                let client = &clients[i % clients.len()];
                sessions.push(client.connect(args.addr).await.map_err(|x| e(&x))?);
            }
            let chunk = Bytes::from(vec![0x5a; CHUNK]);
            let start = Instant::now();
            // Every session gets its next message in turn: all move at once.
            for n in chunks(args.bytes) {
                for session in &sessions {
                    session.send(chunk.slice(..n)).await.map_err(|x| e(&x))?;
                }
            }
            for session in &sessions {
                session.closed().await;
            }
            let elapsed = start.elapsed();
            let ids: Vec<_> = sessions.iter().map(|s| s.id()).collect();
            tell_shards("sender", &ids, &clients[0].shard_stats());
            report_sent(elapsed, args.bytes * args.sessions as u64);
            if let Some(scraper) = scraper {
                eprintln!("SCRAPES sender {}", scraper.stop());
            }
            crate::diagnostics::report_losses(sessions.iter().map(|s| s.stats()));
            if matches!(args.kind, Kind::TokioFallback | Kind::TokioFallbackCubic) {
                eprintln!("FALLBACK sender {:?}", clients[0].fallback_stats());
            }
            for client in &clients {
                client.close().await;
            }
            Ok(())
        }
    }
}

/// The scraper of the scraped row's side, if this is that row.
fn scraper(
    args: &RoleArgs,
    endpoint: &ferry_async::Endpoint,
) -> Result<Option<crate::scrape::Scraper>, String> {
    if args.kind == Kind::TokioScraped {
        crate::scrape::Scraper::start(endpoint).map(Some)
    } else {
        Ok(None)
    }
}

/// Ferry on plain threads.
fn blocking(args: &RoleArgs, side: Side) -> Result<(), String> {
    use ferry_blocking::Endpoint;
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let any: SocketAddr = "127.0.0.1:0".parse().expect("address");
    match side {
        Side::Receive => {
            let server = Endpoint::bind(any, ferry_config(args, true)).map_err(|x| e(&x))?;
            tell(format_args!("READY {}", server.local_addr()));
            let mut readers = Vec::new();
            let mut start = None;
            for _ in 0..args.sessions {
                let session = server.accept().ok_or("the endpoint closed")?;
                start.get_or_insert_with(Instant::now);
                let bytes = args.bytes;
                readers.push(std::thread::spawn(move || {
                    let mut got = 0u64;
                    while got < bytes {
                        match session.recv() {
                            Ok(m) => got += m.len() as u64,
                            Err(_) => break,
                        }
                    }
                    session.close(0);
                    got
                }));
            }
            let total = readers
                .into_iter()
                .map(|r| r.join().unwrap_or(0))
                .sum::<u64>();
            let elapsed = start.map_or(Duration::ZERO, |s| s.elapsed());
            server.close();
            report_received(total, elapsed);
            Ok(())
        }
        Side::Send => {
            let client = Endpoint::bind(any, ferry_config(args, false)).map_err(|x| e(&x))?;
            let sessions = (0..args.sessions)
                .map(|_| client.connect(args.addr))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|x| e(&x))?;
            let chunk = Bytes::from(vec![0x5a; CHUNK]);
            let start = Instant::now();
            for n in chunks(args.bytes) {
                for session in &sessions {
                    session.send(chunk.slice(..n)).map_err(|x| e(&x))?;
                }
            }
            for session in &sessions {
                session.closed();
            }
            let elapsed = start.elapsed();
            report_sent(elapsed, args.bytes * args.sessions as u64);
            client.close();
            Ok(())
        }
    }
}

/// `RESULT <bytes> <elapsed s> <cpu s>`, from a receiver.
pub(crate) fn report_received(bytes: u64, elapsed: Duration) {
    tell(format_args!(
        "RESULT {bytes} {:.6} {:.3}",
        elapsed.as_secs_f64(),
        process_cpu().as_secs_f64()
    ));
}

/// `RESULT <elapsed s> <cpu s> <bytes sent>`, from a sender.
pub(crate) fn report_sent(elapsed: Duration, sent: u64) {
    tell(format_args!(
        "RESULT {:.6} {:.3} {sent}",
        elapsed.as_secs_f64(),
        process_cpu().as_secs_f64()
    ));
}
