//! The `ferry` command line, as a library so that tests can drive it in-process.
//!
//! `main.rs` calls [`entry::main`], which parses arguments (under one of
//! Lidi's program names, as that program: [`lidi_link`]), sets up logging
//! and calls [`run`]; the process exits with the code [`CliError::exit`]
//! gives (see [`exit::Exit`]).
//!
//! - Reliable sessions ([`session`]): `ferry send` / `ferry receive` move
//!   files and directory trees, `ferry forward` / `ferry forward-server`
//!   carry TCP connections; their settings come from the `[session]` table
//!   of the configuration file ([`session::config`]), which `ferry config
//!   check` validates ([`config_cmd`]); `ferry keygen` makes their keys
//!   ([`keygen`]).
//! - One-way transfer across a data diode ([`diode`]).
//! - `ferry demo` ([`demo`]).
//! - With the `bench` feature: `ferry bench`, the benchmark suites of
//!   `ferry-bench`, and `ferry demo --simulated`, in the simulator's virtual
//!   time. Without it the binary links neither the suites (every runtime,
//!   RaptorQ's baselines) nor the simulator, and both commands fail with
//!   [`CliError::NotBuilt`], which says how to get them.

#![warn(missing_docs, unreachable_pub)]

use std::io::Write;

use clap::{Parser, Subcommand};

pub mod config_cmd;
pub mod demo;
pub mod diode;
pub mod entry;
pub mod exit;
pub mod keygen;
pub mod lidi_link;
pub mod metrics;
pub mod perf;
pub mod session;
pub mod shutdown;

/// Move data over UDP: reliable sessions, and one-way transfers across a data
/// diode.
#[derive(Debug, Parser)]
#[command(
    name = "ferry",
    version,
    about,
    propagate_version = true,
    after_help = exit::EXIT_CODES_HELP
)]
pub struct Cli {
    /// More log output on stderr: -v info, -vv debug, -vvv trace
    /// (overrides FERRY_LOG and RUST_LOG).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Errors only: no progress, no report, only error messages on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Send files and directories to a `ferry receive`, over one reliable
    /// session; each file is checked against its BLAKE3 digest.
    Send(session::send::SendArgs),
    /// Receive files from `ferry send` into a directory; a file appears
    /// under its name only once complete and checked.
    Receive(session::receive::ReceiveArgs),
    /// Accept TCP connections and carry each over one Ferry session to a
    /// `ferry forward-server`, which connects it on to its target.
    Forward(session::forward::ForwardArgs),
    /// Serve `ferry forward`: connect the TCP connections it carries to the
    /// targets this side allows (`--allow`).
    ForwardServer(session::forward::ForwardServerArgs),
    /// Measure a real path, memory to memory, between a `ferry perf
    /// server` and a `ferry perf client` (as iperf3 does for TCP).
    Perf(perf::PerfArgs),
    /// Create an identity for --identity: the private key goes to FILE
    /// (mode 0600), the public key to FILE.pub and stdout. `--public FILE`
    /// prints an existing key's public key; `--psk FILE` creates a
    /// pre-shared key for --key-file instead.
    Keygen(keygen::KeygenArgs),
    /// Work with configuration files.
    #[command(subcommand)]
    Config(config_cmd::ConfigCommand),
    /// Transfer data between two endpoints over a simulated lossy network and
    /// check every byte. Needs no configuration and no second machine.
    Demo(demo::DemoArgs),
    /// Diode sender: a TCP server whose every connection becomes one session
    /// sent one way over UDP, with RaptorQ repair.
    DiodeSend(diode::send::DiodeSendArgs),
    /// Diode receiver: receives sessions over UDP and replays each on its
    /// own TCP connection (reset if the session is lost).
    DiodeReceive(diode::receive::DiodeReceiveArgs),
    /// Send files, in one session, through a `ferry diode-send`.
    DiodeSendFile(diode::file::DiodeSendFileArgs),
    /// Receive files from a `ferry diode-receive` into a directory; a file
    /// appears under its name only once complete and checked.
    DiodeReceiveFile(diode::file::DiodeReceiveFileArgs),
    /// Watch a directory and send the files that land in it through a
    /// `ferry diode-send`.
    DiodeSendDir(diode::dir::DiodeSendDirArgs),
    /// Check a diode link's parameters offline: block make-up, chance of
    /// losing a block or session, longest burst survived, throughput, memory.
    DiodePlan(diode::plan::DiodePlanArgs),
    /// Measure Ferry on this machine over loopback (suites: bulk, latency,
    /// many, efficiency, sessions, diode) and print one table, each figure
    /// beside a baseline from the same run (TCP, raw UDP, the codec).
    #[cfg(feature = "bench")]
    Bench(ferry_bench::RunArgs),
    /// One side of a `bench` transfer, in a child process.
    #[cfg(feature = "bench")]
    #[command(hide = true)]
    BenchRole(ferry_bench::RoleArgs),
    /// Measure Ferry on this machine over loopback (not built into this
    /// binary: reinstall ferry with `--features bench`).
    #[cfg(not(feature = "bench"))]
    Bench(NotBuiltArgs),
}

/// The arguments of a command this build of `ferry` lacks: anything, since
/// the command fails with [`CliError::NotBuilt`] whatever it is given.
#[derive(Debug, clap::Args)]
pub struct NotBuiltArgs {
    /// Ignored.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    pub args: Vec<String>,
}

/// `n` and the noun, singular or plural: "1 file", "2 files".
pub(crate) fn counted(n: impl Into<u64>, one: &str, many: &str) -> String {
    let n = n.into();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Writing the report failed (a closed pipe, a full disk).
    #[error("cannot write output: {0}")]
    Output(#[from] std::io::Error),
    /// The demo's settings are unusable.
    #[error("invalid setting: {0}")]
    Invalid(String),
    /// A setting the command needs was given neither on the command line
    /// nor in its configuration file (a usage error: exit code 2).
    #[error("missing setting: {0}")]
    Missing(String),
    /// The transfer did not deliver every byte intact.
    #[error("transfer failed: {0}")]
    TransferFailed(String),
    /// A diode sender or receiver could not start or failed.
    #[error("{0}")]
    Diode(#[from] ferry_diode::DiodeError),
    /// The network failed: a socket could not be bound, a name resolved, the
    /// peer reached, or the session died; the message says what to do.
    #[error("{0}")]
    Network(String),
    /// The peer refused the handshake (the keys differ), or a key is unusable.
    #[error("{0}")]
    Authentication(String),
    /// Data did not match its digest.
    #[error("{0}")]
    Integrity(String),
    /// Part of the work failed; the report said which.
    #[error("{0}")]
    Failed(String),
    /// Interrupted (Ctrl-C or SIGTERM) before the work was done.
    #[error("interrupted")]
    Interrupted,
    /// Stopped by a signal, and work in flight outlived the grace period
    /// (`--grace-period`): it was cut; the message says what.
    #[error("{0}")]
    Stopped(String),
    /// The command needs a part of `ferry` this binary was built without
    /// (the `bench` feature: `ferry bench`, `ferry demo --simulated`); the
    /// message says how to build it in.
    #[error(
        "`{0}` is not built into this binary: reinstall ferry with the `bench` feature \
         (`cargo install ferry-cli --features bench`; in a checkout, \
         `cargo run -p ferry-cli --features bench -- …`)"
    )]
    NotBuilt(&'static str),
    /// A file, directory or connection could not be used; the context says
    /// which and what to do.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, and what to do about it.
        context: String,
        /// The system's error.
        source: std::io::Error,
    },
}

/// Runs a parsed command, writing its human-readable report to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Send(args) => session::send::run(&args, quiet, out),
        Command::Receive(args) => session::receive::run(&args, quiet, out),
        Command::Forward(args) => session::forward::run_forward(&args, out),
        Command::ForwardServer(args) => session::forward::run_server(&args, out),
        Command::Perf(args) => perf::run(&args, out),
        Command::Keygen(args) => keygen::run(&args, quiet, out),
        Command::Config(command) => config_cmd::run(&command, out),
        Command::Demo(args) => demo::run(&args, out),
        Command::DiodeSend(args) => diode::send::run(&args, out),
        Command::DiodeReceive(args) => diode::receive::run(&args, out),
        Command::DiodeSendFile(args) => diode::file::run_send(&args, out),
        Command::DiodeReceiveFile(args) => diode::file::run_receive(&args, out),
        Command::DiodeSendDir(args) => diode::dir::run(&args, out),
        Command::DiodePlan(args) => diode::plan::run(&args, out),
        // Children are `ferry bench-role …`.
        #[cfg(feature = "bench")]
        Command::Bench(args) => {
            ferry_bench::run(&args, &ferry_bench::Host::new(&["bench-role"]), out)
                .map_err(|e| CliError::TransferFailed(e.to_string()))
        }
        #[cfg(feature = "bench")]
        Command::BenchRole(role) => role
            .run()
            .map_err(|e| CliError::TransferFailed(e.to_string())),
        #[cfg(not(feature = "bench"))]
        Command::Bench(_) => Err(CliError::NotBuilt("ferry bench")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_agree_with_their_noun() {
        assert_eq!(super::counted(1u64, "file", "files"), "1 file");
        assert_eq!(super::counted(0u64, "file", "files"), "0 files");
        assert_eq!(
            super::counted(2u32, "directory", "directories"),
            "2 directories"
        );
    }
}
