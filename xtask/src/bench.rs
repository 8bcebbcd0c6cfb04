//! `cargo xtask bench`: builds `ferry-bench` in release mode and runs suites,
//! all of them in one invocation of the binary (`ferry-bench run`), which
//! prints one table at the end (every row beside a baseline measured in the
//! same run) and writes the figures to `target/bench/bench.json` and
//! `target/bench/<suite>.json`. Benchmarks use loopback only; they never run
//! in CI and tests never assert their numbers.

use crate::run::{CommandLine, Result, workspace_root};

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Suites to run (default: all, in this order): bulk, files, latency,
    /// many, efficiency, sessions, diode.
    suites: Vec<String>,
    /// Smaller sizes everywhere: a smoke run.
    #[arg(long)]
    quick: bool,
    /// Measure peers too (quinn in the bulk suite and the sessions suite's
    /// connect rate): builds ferry-bench with
    /// its `peers` feature, which compiles quinn.
    #[arg(long)]
    peers: bool,
    /// Extra arguments for `ferry-bench run`, after `--` (e.g. `-- --bulk-mib
    /// 256`; `cargo run -p ferry-bench -- run --help` lists them).
    #[arg(last = true)]
    extra: Vec<String>,
}

pub fn run(args: &Args) -> Result {
    let json_dir = workspace_root().join("target").join("bench");
    // The files suite runs the real `ferry` binary, found beside ferry-bench.
    let build = CommandLine::cargo(&["build", "--release", "-q", "-p", "ferry-cli"]);
    println!("==> bench: {build}");
    if !build.status()? {
        return Err("building ferry-cli failed (see above)".into());
    }
    let mut command = CommandLine::cargo(&["run", "--release", "-q", "-p", "ferry-bench"]);
    if args.peers {
        command = command.arg("--features").arg("peers");
    }
    command = command.arg("--").arg("run");
    for suite in &args.suites {
        command = command.arg(suite.clone());
    }
    command = command
        .arg("--json-dir")
        .arg(json_dir.display().to_string());
    if args.quick {
        command = command.arg("--quick");
    }
    if args.peers {
        command = command.arg("--peers");
    }
    for extra in &args.extra {
        command = command.arg(extra.clone());
    }
    println!("==> bench: {command}");
    if !command.status()? {
        return Err("the benchmarks failed (see above)".into());
    }
    Ok(())
}
