//! Ferry's benchmarks. Run them through `cargo xtask bench [SUITE...]
//! [--quick] [--peers]`, which builds this binary in release mode and runs
//! `ferry-bench run …`: every suite named (all of them by default) in one
//! invocation, one table at the end with each row beside the baseline
//! measured in the same run, and the figures as JSON in
//! `target/bench/bench.json` (plus `target/bench/<suite>.json` per suite).
//!
//! Suites, in the order a full run takes them:
//! - `bulk`: one session moving 1 GiB over loopback per driver (tokio clear
//!   and encrypted, async-std, smol, blocking), MB/s and CPU seconds per GB,
//!   beside TCP over loopback, a raw UDP blast (plain and GSO) and, with
//!   `--peers`, quinn.
//! - `latency`: 64-byte round trips, p50/p99, beside a raw UDP ping-pong.
//! - `many`: 1,000 concurrent sessions of 1 MiB each, aggregate MB/s beside
//!   the one-session figure.
//! - `efficiency`: goodput as a fraction of link capacity in the simulator's
//!   virtual time, across loss rates and RTTs.
//! - `sessions`: bulk throughput with encryption against without, handshake
//!   latency against a raw UDP round trip, memory per idle session.
//! - `diode`: one-way transfer over loopback at 0% and 2% loss (through the
//!   project's lossy relay) against the raw speed of the `raptorq` codec.
//!
//! Transfers over sockets run sender and receiver in processes of their own:
//! the binary re-invokes itself with a hidden `*-role` subcommand.

mod alloc;
mod bulk;
mod child;
mod cpu;
mod diode;
mod efficiency;
mod latency;
mod many;
mod peers;
mod report;
mod sessions;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand, ValueEnum};

use crate::report::Report;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "ferry-bench",
    about = "Ferry's benchmarks (use `cargo xtask bench`)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run suites (all by default) and print one table.
    Run(RunArgs),
    /// One side of a diode transfer, in its own process (used by `diode`).
    #[command(hide = true)]
    DiodeRole(diode::RoleArgs),
    /// One side of a bulk transfer (used by `bulk` and `many`).
    #[command(hide = true)]
    BulkRole(bulk::RoleArgs),
    /// One side of the round trips (used by `latency`).
    #[command(hide = true)]
    LatencyRole(latency::RoleArgs),
}

/// A suite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Suite {
    Bulk,
    Latency,
    Many,
    Efficiency,
    Sessions,
    Diode,
}

/// Arguments of `ferry-bench run`. Sizes left out take their full-run
/// default, or the smaller `--quick` one.
#[derive(Debug, clap::Args)]
struct RunArgs {
    /// Suites to run, in this order (default: all).
    #[arg(value_enum)]
    suites: Vec<Suite>,
    /// Smaller sizes everywhere: a smoke run of some 20 seconds.
    #[arg(long)]
    quick: bool,
    /// Measure peers too (quinn in `bulk`); needs the `peers` feature.
    #[arg(long)]
    peers: bool,
    /// Where the JSON figures go.
    #[arg(long, default_value = "target/bench")]
    json_dir: PathBuf,
    /// Ferry's MTU, and the raw UDP blasts' datagram size [default: Ferry's
    /// default MTU].
    #[arg(long)]
    mtu: Option<usize>,
    /// bulk: MiB per transfer [default: 1024; quick: 256].
    #[arg(long)]
    bulk_mib: Option<u64>,
    /// bulk and many: transfers per row, the row being their median
    /// [default: 3; quick: 1].
    #[arg(long)]
    repeat: Option<usize>,
    /// latency: round trips timed [default: 10000; quick: 2000].
    #[arg(long)]
    round_trips: Option<usize>,
    /// many: concurrent sessions [default: 1000; quick: 200].
    #[arg(long)]
    many_sessions: Option<usize>,
    /// many: MiB per session [default: 1].
    #[arg(long)]
    many_mib: Option<u64>,
    /// efficiency: MB per transfer at 100 Mbit/s [default: 400; quick: 20].
    #[arg(long)]
    sim_mb: Option<usize>,
    /// efficiency: MB per transfer at 1 Gbit/s [default: 1000; quick: 100].
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run(&args),
        Command::DiodeRole(args) => diode::role(&args),
        Command::BulkRole(args) => bulk::role(&args),
        Command::LatencyRole(args) => latency::role(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &RunArgs) -> Result<(), String> {
    if args.peers && !cfg!(feature = "peers") {
        return Err(
            "--peers needs the `peers` feature (`cargo xtask bench --peers` builds it)".into(),
        );
    }
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
        mib_each: args.pick(args.many_mib, 1, 1),
        mtu,
        single_mib: bulk_mib,
        repeat,
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
    };
    let diode = diode::Args {
        size_mib: args.pick(args.diode_mib, 1024, 128),
        rates: args.diode_rates.clone(),
        mtu: args.diode_mtu,
        codec_mib: if args.quick { 32 } else { 256 },
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
                peers: args.peers,
                repeat,
            }),
            Suite::Latency => latency::run(latency),
            Suite::Many => many::run(many, &report),
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
                eprintln!("ferry-bench: suite {} failed: {e}", name(*suite));
                failures.push(format!("{}: {e}", name(*suite)));
            }
        }
    }
    let meta = serde_json::json!({
        "suites": suites.iter().map(|s| name(*s)).collect::<Vec<_>>(),
        "commit": commit(),
        "quick": args.quick,
        "peers": args.peers,
        "mtu": mtu,
        "cores": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "unix_time": SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        "seconds": started.elapsed().as_secs_f64(),
        "sizes": {
            "bulk_mib": bulk_mib,
            "repeat": repeat,
            "latency_round_trips": latency.count,
            "many_sessions": many.sessions,
            "many_mib_each": many.mib_each,
            "sim_mb": efficiency.mb,
            "sim_gbit_mb": efficiency.gbit_mb,
            "sessions_mib": sessions.size_mib,
            "diode_mib": diode.size_mib,
        },
        "failures": failures,
    });
    report.finish(&args.json_dir, &meta)?;
    println!("whole run: {:.1} s", started.elapsed().as_secs_f64());
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} measurement(s) or suite(s) failed: {}",
            failures.len(),
            failures.join("; ")
        ))
    }
}

/// The commit measured, `+dirty` with local changes; `None` outside git.
fn commit() -> Option<String> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let head = git(&["rev-parse", "--short", "HEAD"])?;
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    Some(if dirty { format!("{head}+dirty") } else { head })
}

fn name(suite: Suite) -> &'static str {
    match suite {
        Suite::Bulk => "bulk",
        Suite::Latency => "latency",
        Suite::Many => "many",
        Suite::Efficiency => "efficiency",
        Suite::Sessions => "sessions",
        Suite::Diode => "diode",
    }
}
