//! `ferry-bench`: Ferry's benchmarks (the library's [`ferry_bench::run`])
//! for `cargo xtask bench [SUITE...] [--quick] [--peers]`, which builds this
//! binary in release mode and runs `ferry-bench run …`. Children re-invoke
//! it as `ferry-bench role <role> …` (hidden).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ferry_bench::{CountingAllocator, Host, RoleArgs, RunArgs};

/// Heap bytes counted for the `sessions` suite's memory figure.
#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

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
    Run(Box<BinRunArgs>),
    /// One side of a transfer, in its own process (used by the suites).
    #[command(hide = true)]
    Role(RoleArgs),
}

/// Arguments of `ferry-bench run`: the library's, and peers.
#[derive(Debug, clap::Args)]
struct BinRunArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Measure peers too (quinn in `bulk` and in the `sessions` connect
    /// rate); needs the `peers` feature.
    #[arg(long)]
    peers: bool,
}

/// What leads this binary to [`RoleArgs`].
const ROLE_PREFIX: &[&str] = &["role"];

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(mut args) => {
            args.run
                .json_dir
                .get_or_insert_with(|| PathBuf::from("target/bench"));
            let host = Host {
                peers: args.peers,
                commit: commit(),
                ..Host::new(ROLE_PREFIX)
            };
            ferry_bench::run(&args.run, &host, &mut std::io::stdout())
        }
        Command::Role(role) => role.run(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry-bench: {e}");
            ExitCode::FAILURE
        }
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
