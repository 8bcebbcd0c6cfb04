//! The `ferry` program's `main`, in the library so that a test binary can
//! be the same program (and be run through Lidi-named links).

use std::fs::OpenOptions;
use std::process::ExitCode;
use std::sync::Mutex;

use clap::Parser;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::diode::logging::LogRequest;
use crate::{Cli, CliError, lidi_link, run};

/// Parses the process's arguments (as a Lidi program when run under one of
/// Lidi's names, see [`lidi_link`]), sets up logging, runs the command and
/// gives the exit code.
///
/// The log filter is `-v`/`-q` when given, else Lidi's `--log` (diode-send,
/// diode-receive), else `FERRY_LOG`, else `RUST_LOG`, else the
/// configuration file's Lidi 2 `log`, else warnings and errors; the log
/// goes to stderr, or to `--log-file` / the file's `log_file` (see
/// [`crate::diode::logging`]).
pub fn main() -> ExitCode {
    // Usage errors exit with 2, --help and --version with 0 (clap's codes).
    let cli = Cli::parse_from(lidi_link::args(std::env::args_os()));
    let log = LogRequest::of(&cli);
    let directive = log.directive(cli.verbose, cli.quiet, |var| std::env::var(var).ok());
    let subscriber = tracing_subscriber::fmt().with_env_filter(EnvFilter::new(directive));
    match &log.file {
        Some(path) => {
            let file = match OpenOptions::new().create(true).append(true).open(path) {
                Ok(file) => file,
                Err(e) => {
                    let e = CliError::Io {
                        context: format!("cannot open the log file {}", path.display()),
                        source: e,
                    };
                    eprintln!("ferry: {e}");
                    return e.exit().into();
                }
            };
            subscriber
                .with_ansi(false)
                .with_writer(BoxMakeWriter::new(Mutex::new(file)))
                .init();
        }
        None => subscriber.with_writer(std::io::stderr).init(),
    }
    if let Some(path) = &log.log4rs_config {
        tracing::warn!(
            "--log4rs-config {}: ignored, Ferry logs through `tracing`: set the level with --log \
             (or -v, FERRY_LOG) and the file with --log-file",
            path.display()
        );
    }
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
