//! Ferry's benchmarks, as a library: the `ferry-bench` binary (which
//! `cargo xtask bench [SUITE...] [--quick] [--peers]` builds in release mode
//! and runs as `ferry-bench run …`) and the `ferry bench` command both call
//! [`run`]. Every suite named (all of them by default) runs in one
//! invocation; one table is printed at the end, each row beside the baseline
//! measured in the same run, and the figures can be written as JSON
//! (`bench.json` plus `<suite>.json` per suite; `cargo xtask bench` writes
//! them to `target/bench/`).
//!
//! Suites, in the order a full run takes them:
//! - `bulk`: one session moving 1 GiB over loopback per driver (tokio clear
//!   and encrypted, async-std, smol, blocking), MB/s and CPU seconds per GB,
//!   beside TCP over loopback, a raw UDP blast (plain and GSO) and, with
//!   `--peers` (feature `peers`), quinn.
//! - `files`: `ferry send` of a 1 GiB file on tmpfs to `ferry receive` (the
//!   real binary, clear and with a pre-shared key), MB/s and CPU seconds per
//!   GB on each side, beside the bulk rows of the same mode.
//! - `latency`: 64-byte round trips, p50/p99, beside a raw UDP ping-pong.
//! - `many`: 1,000 concurrent sessions of 1 MiB each, then of 16 MiB each
//!   (`--many-mib`), aggregate MB/s and CPU seconds per GB beside the
//!   one-session figures; then the CPU per GB the larger size took beyond the
//!   smaller (the steady state) and the fixed CPU per session. `--shards N`
//!   spreads both endpoints over N shards, on tokio's multi-thread runtime.
//! - `efficiency`: goodput as a fraction of link capacity in the simulator's
//!   virtual time, across loss rates and RTTs; then one row per network
//!   profile (`ferry_sim::Profile`) and congestion controller, beside the
//!   same path unimpaired and what the profile allows.
//! - `sessions`: bulk throughput with encryption against without, handshake
//!   latency against a raw UDP round trip, memory per idle session; the
//!   connect rate (sessions opened and closed per second on one server
//!   endpoint, 100 connects in flight), clear and with a pre-shared key,
//!   beside quinn's with `--peers`.
//! - `diode`: one-way transfer over loopback at 0% and 2% loss (through the
//!   project's lossy relay) against the raw speed of the `raptorq` codec.
//!
//! Transfers over sockets run sender and receiver in processes of their own:
//! the executable re-invokes itself (`std::env::current_exe()`) with the
//! arguments [`Host::role_prefix`] names, then a role's subcommand, which
//! the executable must hand to [`RoleArgs::run`]. An executable that runs
//! the suites therefore has a hidden subcommand taking [`RoleArgs`]:
//!
//! ```no_run
//! use clap::{Parser, Subcommand};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(subcommand)]
//!     command: Command,
//! }
//!
//! #[derive(Subcommand)]
//! enum Command {
//!     /// Run benchmark suites.
//!     Bench(ferry_bench::RunArgs),
//!     /// One side of a benchmark's transfer, in a child process.
//!     #[command(hide = true)]
//!     BenchRole(ferry_bench::RoleArgs),
//! }
//!
//! # fn main() -> Result<(), ferry_bench::BenchError> {
//! match Cli::parse().command {
//!     // Children are started as `<this executable> bench-role …`.
//!     Command::Bench(args) => {
//!         ferry_bench::run(&args, &ferry_bench::Host::new(&["bench-role"]), &mut std::io::stdout())
//!     }
//!     Command::BenchRole(role) => role.run(),
//! }
//! # }
//! ```
//!
//! Benchmarks use loopback only; they never run in CI and tests never
//! assert their figures.

#![warn(missing_docs, unreachable_pub)]

mod alloc;
mod bulk;
mod child;
mod connects;
mod cpu;
mod diagnostics;
mod diode;
mod diode_files;
mod efficiency;
mod fallback;
mod files;
mod forwarder;
mod latency;
mod many;
mod peers;
mod report;
mod scrape;
mod sessions;

use std::io::Write;
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::{Subcommand, ValueEnum};

pub use crate::alloc::CountingAllocator;
use crate::report::Report;

/// The executable running the suites, as far as they need to know it.
#[derive(Debug, Clone)]
pub struct Host {
    /// The arguments that lead this executable to its hidden [`RoleArgs`]
    /// subcommand: a child is started as `current_exe()`, these, then a
    /// role's own subcommand (`bulk-role`, `latency-role`, `diode-role`,
    /// `connect-role`).
    pub role_prefix: &'static [&'static str],
    /// Measure peers too (quinn in `bulk` and in the `sessions` connect
    /// rate); needs the `peers` feature.
    pub peers: bool,
    /// The commit measured, recorded in the JSON figures.
    pub commit: Option<String>,
}

impl Host {
    /// An executable whose [`RoleArgs`] subcommand is reached through
    /// `role_prefix`, measuring no peers and recording no commit.
    pub fn new(role_prefix: &'static [&'static str]) -> Self {
        Self {
            role_prefix,
            peers: false,
            commit: None,
        }
    }
}

/// Why a run failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// Peers were asked of a build without the `peers` feature.
    #[error("--peers needs the `peers` feature (`cargo xtask bench --peers` builds it)")]
    PeersUnavailable,
    /// The table could not be written (a closed pipe, a full disk).
    #[error("cannot write the table: {0}")]
    Output(#[from] std::io::Error),
    /// The JSON figures could not be written; the message names the file.
    #[error("{0}")]
    Json(String),
    /// Measurements or whole suites failed; the table shows which, and the
    /// errors went to stderr as they happened.
    #[error("{} measurement(s) or suite(s) failed: {}", .0.len(), .0.join("; "))]
    Failed(Vec<String>),
    /// A child's role failed (in the child process).
    #[error("{0}")]
    Role(String),
}

/// A suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Suite {
    Bulk,
    Files,
    Latency,
    Many,
    Efficiency,
    Sessions,
    Diode,
}

/// What to run: the suites and their sizes (`ferry-bench run` and `ferry
/// bench` take these arguments). Sizes left out take their full-run default,
/// or the smaller `--quick` one.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Suites to run, in this order (default: all).
    #[arg(value_enum)]
    suites: Vec<Suite>,
    /// Smaller sizes everywhere: a smoke run of some 20 seconds.
    #[arg(long)]
    quick: bool,
    /// Where to write the figures as JSON: `bench.json` and one file per
    /// suite [default: `ferry-bench`: target/bench; `ferry bench`: nowhere].
    #[arg(long)]
    pub json_dir: Option<PathBuf>,
    /// Ferry's MTU, and the raw UDP blasts' datagram size [default: Ferry's
    /// default MTU].
    #[arg(long)]
    mtu: Option<usize>,
    /// bulk: MiB per transfer [default: 1024; quick: 256].
    #[arg(long)]
    bulk_mib: Option<u64>,
    /// bulk, many and the sessions suite's connect rate: runs per row, the
    /// row being their median [default: 3; quick: 1].
    #[arg(long)]
    repeat: Option<usize>,
    /// files: MiB in the file `ferry send` moves [default: 1024; quick: 128].
    #[arg(long)]
    files_mib: Option<u64>,
    /// files: the `ferry` executable [default: `FERRY_BIN`, else this
    /// executable if it is `ferry`, else `ferry` beside it].
    #[arg(long)]
    ferry_bin: Option<PathBuf>,
    /// latency: round trips timed [default: 10000; quick: 2000].
    #[arg(long)]
    round_trips: Option<usize>,
    /// many: concurrent sessions [default: 1000; quick: 200].
    #[arg(long)]
    many_sessions: Option<usize>,
    /// many: MiB per session, comma-separated, a pair of rows (aggregate
    /// MB/s, CPU s/GB) each [default: 1,16; quick: 1,4].
    #[arg(long, value_delimiter = ',')]
    many_mib: Vec<u64>,
    /// many: shards of each side's endpoint (`EndpointConfig::shards`; 0 =
    /// one per core); above 1, on tokio's multi-thread runtime [default: 1].
    #[arg(long, default_value_t = 1)]
    shards: usize,
    /// many: client endpoints the sessions are dealt among, each on a port
    /// of its own (a server's shards spread sessions by client address)
    /// [default: 1].
    #[arg(long, default_value_t = 1)]
    many_clients: usize,
    /// efficiency: MB per transfer at 100 Mbit/s, and per network profile
    /// transfer below 1 Gbit/s [default: 400; quick: 20].
    #[arg(long)]
    sim_mb: Option<usize>,
    /// efficiency: MB per transfer at 1 Gbit/s, and on the long fat profile
    /// [default: 1000; quick: 100].
    #[arg(long)]
    sim_gbit_mb: Option<usize>,
    /// sessions: MiB per bulk transfer [default: 512; quick: 64].
    #[arg(long)]
    sessions_mib: Option<usize>,
    /// sessions: handshakes timed per configuration [default: 300; quick: 50].
    #[arg(long)]
    handshakes: Option<usize>,
    /// sessions: idle sessions for the memory figure [default: 10000; quick: 1000].
    #[arg(long)]
    idle_sessions: Option<usize>,
    /// sessions: sessions opened and closed per connect-rate run [default:
    /// 2000; quick: 200].
    #[arg(long)]
    connects: Option<usize>,
    /// sessions: most connects in flight at once in the connect-rate runs.
    #[arg(long, default_value_t = 100)]
    connects_in_flight: usize,
    /// diode: MiB per transfer [default: 1024; quick: 128].
    #[arg(long)]
    diode_mib: Option<u64>,
    /// diode: pacing rates to try, Mbit/s, fastest first.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "8000,6000,5000,4000,3000,2000,1000"
    )]
    diode_rates: Vec<u64>,
    /// diode: the link MTU the diode codes for.
    #[arg(long, default_value_t = 1500)]
    diode_mtu: usize,
}

impl RunArgs {
    /// `full` normally, `quick` with `--quick`, unless given.
    fn pick<T: Copy>(&self, given: Option<T>, full: T, quick: T) -> T {
        given.unwrap_or(if self.quick { quick } else { full })
    }
}

/// One side of a benchmark's transfer, in a child process: the arguments
/// of the hidden subcommand that [`Host::role_prefix`] leads to. Only the
/// suites start it.
#[derive(Debug, clap::Args)]
pub struct RoleArgs {
    #[command(subcommand)]
    role: Role,
}

/// The roles a child plays.
#[derive(Debug, Subcommand)]
enum Role {
    /// One side of a diode transfer (used by `diode`).
    #[command(name = "diode-role")]
    Diode(diode::RoleArgs),
    /// One side of a bulk transfer (used by `bulk` and `many`).
    #[command(name = "bulk-role")]
    Bulk(bulk::RoleArgs),
    /// One side of the round trips (used by `latency`).
    #[command(name = "latency-role")]
    Latency(latency::RoleArgs),
    /// One side of the connect rate (used by `sessions`).
    #[command(name = "connect-role")]
    Connect(connects::RoleArgs),
}

impl RoleArgs {
    /// Plays the role: prints `READY …` and `RESULT …` lines on stdout for
    /// the parent, anything else on stderr.
    pub fn run(&self) -> Result<(), BenchError> {
        match &self.role {
            Role::Diode(args) => diode::role(args),
            Role::Bulk(args) => bulk::role(args),
            Role::Latency(args) => latency::role(args),
            Role::Connect(args) => connects::role(args),
        }
        .map_err(BenchError::Role)
    }
}

/// Runs the suites `args` names (all by default), prints their table to
/// `out` and, if `args.json_dir` is set, writes the figures there. Progress
/// and errors go to stderr as they happen. Fails if any measurement did,
/// after printing everything that was measured.
pub fn run(args: &RunArgs, host: &Host, out: &mut dyn Write) -> Result<(), BenchError> {
    if host.peers && !cfg!(feature = "peers") {
        return Err(BenchError::PeersUnavailable);
    }
    child::set_role_prefix(host.role_prefix);
    let suites = if args.suites.is_empty() {
        Suite::value_variants().to_vec()
    } else {
        args.suites.clone()
    };
    let mtu = args.mtu.unwrap_or(ferry_proto::Config::default().mtu);
    let bulk_mib = args.pick(args.bulk_mib, 1024, 256);
    let repeat = args.pick(args.repeat, 3, 1).max(1);
    let many = many::Settings {
        sessions: args.pick(args.many_sessions, 1000, 200),
        mib_each: if !args.many_mib.is_empty() {
            args.many_mib.clone()
        } else if args.quick {
            vec![1, 4]
        } else {
            vec![1, 16]
        },
        mtu,
        single_mib: bulk_mib,
        repeat,
        shards: args.shards,
        clients: args.many_clients,
    };
    let files = files::Settings {
        mib: args.pick(args.files_mib, 1024, 128),
        repeat,
        ferry: args.ferry_bin.clone().unwrap_or_else(files::ferry_binary),
    };
    let latency = latency::Settings {
        count: args.pick(args.round_trips, 10_000, 2_000),
        warmup: args.pick(args.round_trips, 10_000, 2_000).div_ceil(10),
    };
    let efficiency = efficiency::Settings {
        mb: args.pick(args.sim_mb, 400, 20),
        gbit_mb: args.pick(args.sim_gbit_mb, 1000, 100),
    };
    let sessions = sessions::Args {
        size_mib: args.pick(args.sessions_mib, 512, 64),
        handshakes: args.pick(args.handshakes, 300, 50),
        sessions: args.pick(args.idle_sessions, 10_000, 1_000),
        connects: args.pick(args.connects, 2_000, 200),
        in_flight: args.connects_in_flight,
        repeat,
        peers: host.peers,
    };
    let diode = diode::Args {
        size_mib: args.pick(args.diode_mib, 1024, 128),
        rates: args.diode_rates.clone(),
        mtu: args.diode_mtu,
        codec_mib: if args.quick { 32 } else { 256 },
        ferry: args.ferry_bin.clone().unwrap_or_else(files::ferry_binary),
    };

    let started = Instant::now();
    let mut report = Report::default();
    let mut failures = Vec::new();
    for suite in &suites {
        eprintln!("\n==> {}", name(*suite));
        let suite_start = Instant::now();
        let table = match suite {
            Suite::Bulk => bulk::run(&bulk::Settings {
                mib: bulk_mib,
                mtu,
                peers: host.peers,
                repeat,
            }),
            Suite::Files => files::run(&files),
            Suite::Latency => latency::run(latency),
            Suite::Many => many::run(&many, &report),
            Suite::Efficiency => efficiency::run(efficiency),
            Suite::Sessions => sessions::run(&sessions),
            Suite::Diode => diode::run(&diode),
        };
        eprintln!(
            "    {} took {:.1} s",
            name(*suite),
            suite_start.elapsed().as_secs_f64()
        );
        match table {
            Ok(table) => {
                failures.extend(table.failures().iter().cloned());
                report.push(table);
            }
            Err(e) => {
                eprintln!("bench: suite {} failed: {e}", name(*suite));
                failures.push(format!("{}: {e}", name(*suite)));
            }
        }
    }
    let meta = serde_json::json!({
        "suites": suites.iter().map(|s| name(*s)).collect::<Vec<_>>(),
        "commit": host.commit,
        "version": env!("CARGO_PKG_VERSION"),
        "quick": args.quick,
        "peers": host.peers,
        "mtu": mtu,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "seconds": started.elapsed().as_secs_f64(),
        "sizes": {
            "bulk_mib": bulk_mib,
            "files_mib": files.mib,
            "repeat": repeat,
            "latency_round_trips": latency.count,
            "many_sessions": many.sessions,
            "many_mib_each": many.mib_each,
            "many_shards": many.shards,
            "many_clients": many.clients,
            "sim_mb": efficiency.mb,
            "sim_gbit_mb": efficiency.gbit_mb,
            "sessions_mib": sessions.size_mib,
            "connects": sessions.connects,
            "connects_in_flight": sessions.in_flight,
            "diode_mib": diode.size_mib,
        },
        "failures": failures,
    });
    report.print(out)?;
    if let Some(dir) = &args.json_dir {
        let path = report.write_json(dir, &meta).map_err(BenchError::Json)?;
        writeln!(
            out,
            "figures written to {} (and one file per suite beside it)",
            path.display()
        )?;
    }
    writeln!(out, "whole run: {:.1} s", started.elapsed().as_secs_f64())?;
    if failures.is_empty() {
        Ok(())
    } else {
        Err(BenchError::Failed(failures))
    }
}

fn name(suite: Suite) -> &'static str {
    match suite {
        Suite::Bulk => "bulk",
        Suite::Files => "files",
        Suite::Latency => "latency",
        Suite::Many => "many",
        Suite::Efficiency => "efficiency",
        Suite::Sessions => "sessions",
        Suite::Diode => "diode",
    }
}
