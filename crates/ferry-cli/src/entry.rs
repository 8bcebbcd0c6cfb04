//! The `ferry` program's `main`, in the library so that a test binary can
//! be the same program (and be run through Lidi-named links).

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::{Cli, lidi_link, run};

/// The log filter: `-v`/`-q` when given, else `FERRY_LOG`, else `RUST_LOG`,
/// else warnings and errors.
fn filter(verbose: u8, quiet: bool) -> EnvFilter {
    let level = match (quiet, verbose) {
        (true, _) => Some("error"),
        (false, 0) => None,
        (false, 1) => Some("info"),
        (false, 2) => Some("debug"),
        (false, _) => Some("trace"),
    };
    if let Some(level) = level {
        return EnvFilter::new(level);
    }
    for var in ["FERRY_LOG", "RUST_LOG"] {
        if let Ok(filter) = EnvFilter::try_from_env(var) {
            return filter;
        }
    }
    EnvFilter::new("warn")
}

/// Parses the process's arguments (as a Lidi program when run under one of
/// Lidi's names, see [`lidi_link`]), sets up logging, runs the command and
/// gives the exit code.
pub fn main() -> ExitCode {
    // Usage errors exit with 2, --help and --version with 0 (clap's codes).
    let cli = Cli::parse_from(lidi_link::args(std::env::args_os()));
    tracing_subscriber::fmt()
        .with_env_filter(filter(cli.verbose, cli.quiet))
        .with_writer(std::io::stderr)
        .init();
    let result = if cli.quiet {
        run(cli, &mut std::io::sink())
    } else {
        run(cli, &mut std::io::stdout())
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ferry: {e}");
            e.exit().into()
        }
    }
}
