//! The sessions suite: what encryption costs in throughput and in handshake
//! latency, and what an idle session costs in memory.
//!
//! - bulk transfer over loopback (tokio), clear and encrypted, same run;
//! - handshake latency (`connect` until established) over loopback, clear
//!   and encrypted, p50 and p99 over many sequential handshakes, beside a raw
//!   UDP round trip;
//! - resumed handshakes (identities, with a ticket: Noise NNpsk0 under the
//!   ticket's secret) beside full ones, p50 and p99, and the time from
//!   `connect_resumed` to the listener's receipt of a message sent as early
//!   data;
//! - memory held per idle session with 10,000 sessions kept alive on one
//!   endpoint, in the simulator (heap bytes counted by the executable's
//!   [`CountingAllocator`](crate::CountingAllocator), else the growth of the
//!   resident set);
//! - handshake capacity ([`crate::connects`]): sessions opened and closed per
//!   second on one server endpoint over loopback, 2,000 of them with up to
//!   100 connects in flight, client and server in processes of their own,
//!   clear and with a pre-shared key, and the client plus server CPU per
//!   session; with `--peers`, quinn's connections the same way, the baseline
//!   of both Ferry rows. The keyed row against quinn is the fair comparison
//!   (both authenticate and encrypt); the clear row does neither.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_proto::crypto::{Identity, PreSharedKey};
use ferry_proto::{Config, Event};
use ferry_sim::{LinkConfig, Network};
use ferry_tokio::{Endpoint, EndpointConfig, EndpointExt};

use crate::alloc::{Measure, held_bytes};
use crate::connects;
use crate::report::Table;

/// Settings of the sessions suite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Args {
    /// MiB per bulk transfer.
    pub(crate) size_mib: usize,
    /// Handshakes timed per configuration.
    pub(crate) handshakes: usize,
    /// Idle sessions for the memory figure.
    pub(crate) sessions: usize,
    /// Sessions opened and closed per connect-rate run.
    pub(crate) connects: usize,
    /// Most connects in flight at once.
    pub(crate) in_flight: usize,
    /// Connect-rate runs per row; the row is their median.
    pub(crate) repeat: usize,
    /// quinn's connect rate too (feature `peers`).
    pub(crate) peers: bool,
}

fn config(psk: Option<&PreSharedKey>, server: bool) -> EndpointConfig {
    EndpointConfig::from(Config {
        accept_incoming: server,
        psk: psk.cloned(),
        ..Config::default()
    })
}

/// How the handshakes of a latency row authenticate.
#[derive(Clone, Copy)]
enum Auth<'a> {
    Clear,
    Psk(&'a PreSharedKey),
    /// Identities on both sides (Noise IK); the listener admits the
    /// starter's key through an authorized-keys list.
    Identities,
}

/// The listener's and the starter's configurations for `auth`.
fn configs(auth: Auth<'_>) -> (EndpointConfig, EndpointConfig) {
    match auth {
        Auth::Clear => (config(None, true), config(None, false)),
        Auth::Psk(key) => (config(Some(key), true), config(Some(key), false)),
        Auth::Identities => {
            let (listener, starter) = (
                Identity::from_private_bytes([0x51; 32]),
                Identity::from_private_bytes([0x52; 32]),
            );
            let server = Config {
                accept_incoming: true,
                authorized_keys: Some([starter.public_key()].into_iter().collect()),
                identity: Some(listener.clone()),
                ..Config::default()
            };
            let client = Config {
                listener_key: Some(listener.public_key()),
                identity: Some(starter),
                ..Config::default()
            };
            (server.into(), client.into())
        }
    }
}

pub(crate) fn run(args: &Args) -> Result<Table, String> {
    let mut table = Table::new("sessions");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let key = PreSharedKey::from_bytes([0x42; 32]);

    let clear = rt.block_on(bulk(args.size_mib, None))?;
    table.add(
        "sessions: bulk, clear",
        clear,
        "MB/s",
        None,
        format!("{} MiB, tokio, loopback", args.size_mib),
    );
    let encrypted = rt.block_on(bulk(args.size_mib, Some(&key)))?;
    table.add(
        "sessions: bulk, encrypted",
        encrypted,
        "MB/s",
        Some("sessions: bulk, clear"),
        "Noise NNpsk0, then the cipher negotiated by default (AES-256-GCM where both CPUs have hardware AES)",
    );

    let udp = udp_round_trip(args.handshakes)?;
    table.add(
        "sessions: raw UDP round trip, p50",
        micros(udp.0),
        "µs",
        None,
        "64 bytes, loopback",
    );
    for (name, auth, note) in [
        (
            "sessions: handshake, clear",
            Auth::Clear,
            "connect until established",
        ),
        (
            "sessions: handshake, encrypted",
            Auth::Psk(&key),
            "connect until established; pre-shared key (Noise NNpsk0)",
        ),
        (
            "sessions: handshake, identities",
            Auth::Identities,
            "connect until established; static keys on both sides (Noise IK), listed key",
        ),
    ] {
        let (p50, p99) = rt.block_on(handshakes(args.handshakes, auth))?;
        table.add(
            format!("{name}, p50"),
            micros(p50),
            "µs",
            Some("sessions: raw UDP round trip, p50"),
            note,
        );
        table.add(format!("{name}, p99"), micros(p99), "µs", None, "");
    }

    let [hs50, hs99, fb50, fb99] = rt.block_on(resumed(args.handshakes))?;
    table.add(
        "sessions: handshake, resumed (identities), p50",
        micros(hs50),
        "µs",
        Some("sessions: handshake, identities, p50"),
        "connect_resumed until established; a ticket from the session before (Noise NNpsk0 under its secret)",
    );
    table.add(
        "sessions: handshake, resumed (identities), p99",
        micros(hs99),
        "µs",
        None,
        "",
    );
    table.add(
        "sessions: first byte, resumed with early data, p50",
        micros(fb50),
        "µs",
        Some("sessions: handshake, identities, p50"),
        "connect_resumed until the listener received a message sent as early data",
    );
    table.add(
        "sessions: first byte, resumed with early data, p99",
        micros(fb99),
        "µs",
        None,
        "",
    );

    match idle_memory(args.sessions)? {
        Some((per_session, measure)) => {
            table.add(
                "sessions: memory per idle session",
                per_session as f64,
                "bytes",
                None,
                format!(
                    "{} sessions kept alive on one endpoint (simulator; {})",
                    args.sessions,
                    measure.describe()
                ),
            );
        }
        None => eprintln!(
            "  memory per idle session not measured: no counting allocator, no /proc/self/statm"
        ),
    }
    connect_rates(args, &mut table);
    Ok(table)
}

/// The connect-rate rows' names.
const RATE_CLEAR: &str = "sessions: connect rate, clear";
const RATE_PSK: &str = "sessions: connect rate, psk";
const RATE_QUINN: &str = "sessions: connect rate, quinn";

/// The connect-rate rows: sessions per second and CPU per session, quinn
/// (with peers) first, as the baseline of both Ferry rows. A failed run
/// fails its rows only.
fn connect_rates(args: &Args, table: &mut Table) {
    let how = format!(
        "{} sessions, up to {} connecting at once, one server endpoint, loopback",
        args.connects, args.in_flight
    );
    let quinn = args.peers.then_some(RATE_QUINN);
    let cpu = |name: &str| format!("{name} CPU");
    let runs = [
        (
            connects::Kind::Quinn,
            RATE_QUINN,
            format!(
                "quinn {}, TLS 1.3, self-signed ECDSA P-256 certificate",
                crate::peers::QUINN_VERSION
            ),
        ),
        (
            connects::Kind::Clear,
            RATE_CLEAR,
            "no authentication, no encryption: not like with like against quinn".to_owned(),
        ),
        (
            connects::Kind::Psk,
            RATE_PSK,
            "pre-shared key, Noise NNpsk0: like with like against quinn's TLS".to_owned(),
        ),
    ];
    for (kind, name, what) in runs {
        if kind == connects::Kind::Quinn && !args.peers {
            continue;
        }
        let baseline = if kind == connects::Kind::Quinn {
            None
        } else {
            quinn
        };
        match connects::median(kind, args.connects, args.in_flight, args.repeat) {
            Ok((rate, spread)) => {
                let row = table.add(
                    name,
                    rate.per_s(),
                    "sess/s",
                    baseline,
                    format!("{how}; {what}{spread}"),
                );
                if kind == connects::Kind::Psk {
                    row.also(RATE_CLEAR);
                }
                let row = table.add(
                    cpu(name),
                    rate.cpu_us(),
                    "µs",
                    baseline.map(cpu).as_deref(),
                    rate.cpu_note(),
                );
                if kind == connects::Kind::Psk {
                    row.also(cpu(RATE_CLEAR));
                }
            }
            Err(e) => table.fail(name, "sess/s", &e),
        }
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn bulk(mib: usize, psk: Option<&PreSharedKey>) -> Result<f64, String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let server =
        Endpoint::bind("127.0.0.1:0".parse().unwrap(), config(psk, true)).map_err(|x| e(&x))?;
    let client =
        Endpoint::bind("127.0.0.1:0".parse().unwrap(), config(psk, false)).map_err(|x| e(&x))?;
    let addr = server.local_addr();
    const CHUNK: usize = 1 << 20;
    let receiver = tokio::spawn(async move {
        let session = server.accept().await.expect("a session");
        let mut got = 0;
        while got < mib * CHUNK {
            got += session.recv().await.expect("message").len();
        }
    });
    let session = client.connect(addr).await.map_err(|x| e(&x))?;
    let chunk = Bytes::from(vec![0x5a; CHUNK]);
    let start = Instant::now();
    for _ in 0..mib {
        session.send(chunk.clone()).await.map_err(|x| e(&x))?;
    }
    receiver.await.map_err(|x| e(&x))?;
    Ok((mib * CHUNK) as f64 / start.elapsed().as_secs_f64() / 1e6)
}

async fn handshakes(n: usize, auth: Auth<'_>) -> Result<(Duration, Duration), String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let (server_config, client_config) = configs(auth);
    let server =
        Endpoint::bind("127.0.0.1:0".parse().unwrap(), server_config).map_err(|x| e(&x))?;
    let client =
        Endpoint::bind("127.0.0.1:0".parse().unwrap(), client_config).map_err(|x| e(&x))?;
    let addr = server.local_addr();
    let acceptor = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Some(s) = server.accept().await {
            held.push(s);
        }
    });
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let session = client.connect(addr).await.map_err(|x| e(&x))?;
        times.push(start.elapsed());
        session.close(0);
    }
    client.close().await;
    acceptor.abort();
    times.sort();
    Ok((times[n / 2], times[n * 99 / 100]))
}

/// Waits for the ticket the listener sends `session` after its handshake.
async fn ticket_of(session: &ferry_tokio::Session) -> Result<ferry_tokio::Ticket, String> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(ticket) = session.ticket() {
            return Ok(ticket);
        }
        if Instant::now() > deadline {
            return Err("no resumption ticket came".into());
        }
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
}

/// Resumed handshakes with identities, each with the ticket of the session
/// before: (handshake p50, p99, first byte of early data p50, p99).
async fn resumed(n: usize) -> Result<[Duration; 4], String> {
    let e = |e: &dyn std::fmt::Display| e.to_string();
    let (server_config, client_config) = configs(Auth::Identities);
    let server_config = EndpointConfig {
        protocol: Config {
            issue_tickets: true,
            accept_early_data: true,
            ..server_config.protocol
        },
        ..server_config
    };
    let server =
        Endpoint::bind("127.0.0.1:0".parse().unwrap(), server_config).map_err(|x| e(&x))?;
    let client =
        Endpoint::bind("127.0.0.1:0".parse().unwrap(), client_config).map_err(|x| e(&x))?;
    let addr = server.local_addr();
    let (received, mut arrivals) = tokio::sync::mpsc::unbounded_channel();
    let acceptor = tokio::spawn(async move {
        while let Some(session) = server.accept().await {
            let received = received.clone();
            tokio::spawn(async move {
                if session.recv().await.is_ok() {
                    let _ = received.send(Instant::now());
                }
                // Held until the client closes it.
                let _ = session.closed().await;
            });
        }
    });
    let first = client.connect(addr).await.map_err(|x| e(&x))?;
    let mut ticket = ticket_of(&first).await?;
    first.close(0);
    let (mut handshakes, mut first_bytes) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let start = Instant::now();
        let session = client
            .connect_resumed(&ticket, &[])
            .await
            .map_err(|x| e(&x))?;
        handshakes.push(start.elapsed());
        ticket = ticket_of(&session).await?;
        session.close(0);

        let start = Instant::now();
        let session = client
            .connect_resumed(&ticket, &[Bytes::from_static(b"first")])
            .await
            .map_err(|x| e(&x))?;
        let at = arrivals.recv().await.ok_or("the listener stopped")?;
        first_bytes.push(at.saturating_duration_since(start));
        ticket = ticket_of(&session).await?;
        session.close(0);
    }
    client.close().await;
    acceptor.abort();
    handshakes.sort();
    first_bytes.sort();
    let pick = |v: &[Duration], q: usize| v[(v.len() * q / 100).min(v.len() - 1)];
    Ok([
        pick(&handshakes, 50),
        pick(&handshakes, 99),
        pick(&first_bytes, 50),
        pick(&first_bytes, 99),
    ])
}

fn udp_round_trip(n: usize) -> Result<(Duration, Duration), String> {
    let e = |e: std::io::Error| e.to_string();
    let a = UdpSocket::bind("127.0.0.1:0").map_err(e)?;
    let b = UdpSocket::bind("127.0.0.1:0").map_err(e)?;
    let b_addr = b.local_addr().map_err(e)?;
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        for _ in 0..n {
            let (len, from) = b.recv_from(&mut buf).expect("echo recv");
            b.send_to(&buf[..len], from).expect("echo send");
        }
    });
    let mut times = Vec::with_capacity(n);
    let mut buf = [0u8; 64];
    for _ in 0..n {
        let start = Instant::now();
        a.send_to(&[7; 64], b_addr).map_err(e)?;
        a.recv_from(&mut buf).map_err(e)?;
        times.push(start.elapsed());
    }
    echo.join().map_err(|_| "echo thread panicked".to_owned())?;
    times.sort();
    Ok((times[n / 2], times[n * 99 / 100]))
}

/// Memory per session with `sessions` idle sessions on each of two
/// endpoints, kept alive for ten ping intervals; `None` if this process
/// cannot measure its memory.
fn idle_memory(sessions: usize) -> Result<Option<(usize, Measure)>, String> {
    let config = Config {
        max_sessions: sessions,
        max_handshakes_per_source: 0,
        ..Config::default()
    };
    let mut net = Network::new(1);
    let client = net.add_node(config.clone()).map_err(|e| e.to_string())?;
    let server = net
        .add_node(Config {
            accept_incoming: true,
            ..config
        })
        .map_err(|e| e.to_string())?;
    net.set_path(
        client,
        server,
        LinkConfig::default().latency(Duration::from_millis(5)),
    );
    let Some((before, measure)) = held_bytes() else {
        return Ok(None);
    };
    let addr = net.addr(server);
    for _ in 0..sessions {
        let now = net.now();
        net.endpoint(client)
            .connect(now, addr)
            .map_err(|e| e.to_string())?;
    }
    let mut connected = 0;
    net.run_until(Duration::from_secs(60), |net| {
        while let Some(e) = net.poll_event(server) {
            connected += usize::from(matches!(e, Event::Connected { .. }));
        }
        while net.poll_event(client).is_some() {}
        connected == sessions
    });
    net.run_for(Duration::from_secs(10));
    if net.endpoint(server).session_count() != sessions {
        return Err("idle sessions did not all survive".into());
    }
    Ok(held_bytes()
        .filter(|(_, m)| *m == measure)
        .map(|(after, _)| (after.saturating_sub(before) / (2 * sessions), measure)))
}
