//! Project automation for Ferry, run as `cargo xtask <command>` from anywhere in
//! the repository (the alias lives in `.cargo/config.toml`).
//!
//! - `cargo xtask ci` runs every check CI runs, in CI's order.
//! - `cargo xtask fuzz` runs the cargo-fuzz targets in `fuzz/` for a while each.
//! - `cargo xtask bench` runs the benchmark suites (release build, loopback).
//! - `cargo xtask soak --minutes N` runs transfers through the lossy relay for N
//!   minutes, checking every byte and watching memory.

mod bench;
mod ci;
mod fuzz;
mod run;
mod soak;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The command line.
#[derive(Debug, Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "Ferry's project automation",
    version
)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The xtask subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run every CI check in order: fmt, clippy, tests, docs. Stops at the first failure.
    Ci,
    /// Run cargo-fuzz targets for a while each and report new crash artifacts.
    Fuzz(fuzz::Args),
    /// Run benchmark suites (release build, loopback) and print one table of them all.
    Bench(bench::Args),
    /// Run continuous transfers through the lossy relay, checking every byte and
    /// the memory trend.
    Soak(soak::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Ci => ci::run(),
        Command::Fuzz(args) => fuzz::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::Soak(args) => soak::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("\nxtask: error: {message}");
            ExitCode::FAILURE
        }
    }
}
