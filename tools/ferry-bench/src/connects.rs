//! Handshake capacity, for the sessions suite: how many sessions per second
//! one server endpoint opens over loopback, Ferry in clear and with a
//! pre-shared key, and (with `--peers`) quinn's connections the same way.
//!
//! Server and client are child processes (`connect-role server|client`),
//! each on a current-thread tokio runtime, as in the bulk suite. The server
//! binds one endpoint, prints `READY <addr> [cert]` and accepts until it has
//! taken every session. The client opens them from one endpoint with up to
//! `in_flight` connects at once; each session, once established, is closed
//! at once. The clock runs at the client from the first connect until the
//! last session was established and closed. Both sides run their default
//! configuration, except that Ferry's server lets one address start any
//! number of sessions per second (`max_handshakes_per_source: 0`: every
//! connect comes from the client's one address). CPU time is each side's from
//! the first connect (client) or from `READY` (server) to its last session,
//! so start-up is not counted.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ferry_proto::Config;
use ferry_proto::crypto::PreSharedKey;

use crate::child::{Role, field, secs, tell};
use crate::cpu::process_cpu;

/// What opens the sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Kind {
    /// Ferry on tokio, in clear.
    Clear,
    /// Ferry on tokio with a pre-shared key (Noise NNpsk0).
    Psk,
    /// quinn, TLS 1.3 with a self-signed certificate (feature `peers`).
    Quinn,
}

/// Which side a child plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Side {
    /// Binds one endpoint and accepts every session.
    Server,
    /// Opens and closes the sessions.
    Client,
}

/// Arguments of one side (a child process).
#[derive(Debug, clap::Args)]
pub(crate) struct RoleArgs {
    /// The side this child plays.
    side: Side,
    /// What opens the sessions.
    #[arg(long)]
    kind: Kind,
    /// Server: where to bind. Client: where to connect.
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Sessions opened (client) or accepted (server).
    #[arg(long)]
    count: usize,
    /// Client: most connects in flight at once.
    #[arg(long, default_value_t = 100)]
    in_flight: usize,
    /// quinn client: the server's self-signed certificate, hex DER.
    #[arg(long, default_value = "")]
    cert: String,
}

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rate {
    /// Sessions opened and closed.
    pub(crate) sessions: usize,
    /// From the first connect to the last session closed, at the client.
    pub(crate) elapsed: Duration,
    /// The client's CPU time over its connects.
    pub(crate) client_cpu: Duration,
    /// The server's CPU time over its accepts.
    pub(crate) server_cpu: Duration,
}

impl Rate {
    /// Sessions opened per second.
    pub(crate) fn per_s(&self) -> f64 {
        self.sessions as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Client plus server CPU per session, µs.
    pub(crate) fn cpu_us(&self) -> f64 {
        (self.client_cpu + self.server_cpu).as_secs_f64() / self.sessions.max(1) as f64 * 1e6
    }

    /// Each side's CPU per session.
    pub(crate) fn cpu_note(&self) -> String {
        let per = |d: Duration| d.as_secs_f64() / self.sessions.max(1) as f64 * 1e6;
        format!(
            "client {:.0} µs + server {:.0} µs per session",
            per(self.client_cpu),
            per(self.server_cpu)
        )
    }
}

/// `repeat` runs of [`measure`]; the one of median rate, and a note saying
/// so with the spread (empty for one run).
pub(crate) fn median(
    kind: Kind,
    count: usize,
    in_flight: usize,
    repeat: usize,
) -> Result<(Rate, String), String> {
    let mut runs = (0..repeat.max(1))
        .map(|_| measure(kind, count, in_flight))
        .collect::<Result<Vec<_>, _>>()?;
    runs.sort_by(|a, b| a.per_s().total_cmp(&b.per_s()));
    let note = if runs.len() > 1 {
        format!(
            "; median of {} ({:.0}–{:.0}/s)",
            runs.len(),
            runs[0].per_s(),
            runs[runs.len() - 1].per_s()
        )
    } else {
        String::new()
    };
    Ok((runs[runs.len() / 2], note))
}

/// One run: `count` sessions opened and closed, two processes.
pub(crate) fn measure(kind: Kind, count: usize, in_flight: usize) -> Result<Rate, String> {
    let common = |side: &str| {
        vec![
            side.to_owned(),
            "--kind".into(),
            crate::child::arg_name(kind),
            "--count".into(),
            count.to_string(),
            "--in-flight".into(),
            in_flight.to_string(),
        ]
    };
    let (mut server, mut client) =
        Role::spawn_pair("connect-role", &common("server"), &common("client"))?;
    let c = client.expect("RESULT")?;
    let s = server.expect("RESULT")?;
    client.wait()?;
    server.wait()?;
    let (opened, accepted) = (field::<usize>(&c, 0)?, field::<usize>(&s, 0)?);
    if opened != count || accepted != count {
        return Err(format!(
            "{kind:?}: {opened} sessions opened and {accepted} accepted of {count}"
        ));
    }
    Ok(Rate {
        sessions: count,
        elapsed: secs(&c, 1)?,
        client_cpu: secs(&c, 2)?,
        server_cpu: secs(&s, 1)?,
    })
}

/// One side, in a child process. The server prints `READY <addr> [cert]`
/// once bound and `RESULT <accepted> <cpu s>`; the client `RESULT <opened>
/// <elapsed s> <cpu s>`.
pub(crate) fn role(args: &RoleArgs) -> Result<(), String> {
    // A minute, plus the sessions at 50 a second.
    crate::child::watchdog(Duration::from_secs(60 + args.count as u64 / 50));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        match (args.kind, args.side) {
            (Kind::Quinn, Side::Server) => crate::peers::quinn_accept(args.addr, args.count).await,
            (Kind::Quinn, Side::Client) => {
                crate::peers::quinn_open(args.addr, &args.cert, args.count, args.in_flight).await
            }
            (_, Side::Server) => ferry_server(args).await,
            (_, Side::Client) => ferry_client(args).await,
        }
    })
}

/// Ferry's configuration for a side.
fn config(args: &RoleArgs, server: bool) -> ferry_async::EndpointConfig {
    ferry_async::EndpointConfig::from(Config {
        accept_incoming: server,
        psk: (args.kind == Kind::Psk).then(|| PreSharedKey::from_bytes([0x42; 32])),
        // Sessions closing linger a little; never refuse one for them.
        max_sessions: args.count.max(Config::default().max_sessions),
        // Every connect comes from the client's one address.
        max_handshakes_per_source: 0,
        ..Config::default()
    })
}

/// Binds a Ferry endpoint on tokio.
fn bind(config: ferry_async::EndpointConfig) -> Result<ferry_tokio::Endpoint, String> {
    <ferry_tokio::Endpoint as ferry_tokio::EndpointExt>::bind(
        "127.0.0.1:0".parse().expect("address"),
        config,
    )
    .map_err(|e| format!("bind: {e}"))
}

/// Accepts `count` sessions, letting each go as it comes (it is closed, or
/// closing: its client closes it once established).
async fn ferry_server(args: &RoleArgs) -> Result<(), String> {
    let server = bind(config(args, true))?;
    tell(format_args!("READY {}", server.local_addr()));
    let cpu = process_cpu();
    let mut accepted = 0;
    while accepted < args.count {
        let Some(session) = server.accept().await else {
            break;
        };
        drop(session);
        accepted += 1;
    }
    report_accepted(accepted, cpu);
    server.close().await;
    Ok(())
}

/// Opens and closes `count` sessions, `in_flight` at a time.
async fn ferry_client(args: &RoleArgs) -> Result<(), String> {
    let client = bind(config(args, false))?;
    let addr = args.addr;
    let cpu = process_cpu();
    let elapsed = open_all(args.count, args.in_flight, || {
        let client = client.clone();
        async move {
            let session = client
                .connect(addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            session.close(0);
            Ok(())
        }
    })
    .await?;
    report_opened(args.count, elapsed, cpu);
    client.close().await;
    Ok(())
}

/// Runs `open()` `count` times as tasks, at most `in_flight` at once, each
/// opening and closing one session; the time until the last finished. The
/// first failure ends it.
pub(crate) async fn open_all<F, Fut>(
    count: usize,
    in_flight: usize,
    open: F,
) -> Result<Duration, String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), String>> + Send + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    let mut started = 0;
    loop {
        while started < count && tasks.len() < in_flight.max(1) {
            tasks.spawn(open());
            started += 1;
        }
        match tasks.join_next().await {
            Some(done) => done.map_err(|e| format!("a connect task: {e}"))??,
            None => break,
        }
    }
    Ok(start.elapsed())
}

/// `RESULT <accepted> <cpu s>`, from a server; `cpu` is the process's CPU
/// time when it started accepting.
pub(crate) fn report_accepted(accepted: usize, cpu: Duration) {
    tell(format_args!(
        "RESULT {accepted} {:.6}",
        process_cpu().saturating_sub(cpu).as_secs_f64()
    ));
}

/// `RESULT <opened> <elapsed s> <cpu s>`, from a client; `cpu` is the
/// process's CPU time at its first connect.
pub(crate) fn report_opened(opened: usize, elapsed: Duration, cpu: Duration) {
    tell(format_args!(
        "RESULT {opened} {:.6} {:.6}",
        elapsed.as_secs_f64(),
        process_cpu().saturating_sub(cpu).as_secs_f64()
    ));
}
