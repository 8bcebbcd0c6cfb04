//! Ferry's benchmarks. Run them through `cargo xtask bench [SUITE...]`, which
//! builds this binary in release mode; each suite prints one table, every row
//! beside the baseline measured in the same run, and writes its figures as
//! JSON to `target/bench/<suite>.json`.
//!
//! Suites:
//! - `diode`: one-way transfer over loopback at 0% and 2% loss (through the
//!   project's lossy relay) against the raw speed of the `raptorq` codec.
//! - `sessions`: bulk throughput with encryption against without, handshake
//!   latency against a raw UDP round trip, memory per idle session.

mod alloc;
mod cpu;
mod diode;
mod report;
mod sessions;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "ferry-bench",
    about = "Ferry's benchmarks (use `cargo xtask bench`)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Where the JSON figures go.
    #[arg(long, global = true, default_value = "target/bench")]
    json_dir: PathBuf,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// The diode suite.
    Diode(diode::Args),
    /// The sessions suite: encryption's cost, handshake latency, memory per
    /// idle session.
    Sessions(sessions::Args),
    /// One side of a diode transfer, in its own process (used by `diode`).
    #[command(hide = true)]
    DiodeRole(diode::RoleArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Diode(args) => diode::run(&args).and_then(|table| table.finish(&cli.json_dir)),
        Command::Sessions(args) => {
            sessions::run(&args).and_then(|table| table.finish(&cli.json_dir))
        }
        Command::DiodeRole(args) => diode::role(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
