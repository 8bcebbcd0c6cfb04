//! The `ferry` command line, as a library so that tests can drive it in-process.
//!
//! `main.rs` only parses arguments, sets up logging and calls [`run`].

#![warn(missing_docs, unreachable_pub)]

use std::io::Write;

use clap::{Parser, Subcommand};

pub mod demo;

/// Move data over UDP: reliable sessions, and (soon) one-way diode transfers.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, propagate_version = true)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Transfer data between two endpoints over a simulated lossy network and
    /// check every byte. Needs no configuration and no second machine.
    Demo(demo::DemoArgs),
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
    /// The transfer did not deliver every byte intact.
    #[error("transfer failed: {0}")]
    TransferFailed(String),
}

/// Runs a parsed command, writing its human-readable report to `out`.
pub fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    match cli.command {
        Command::Demo(args) => demo::run(&args, out),
    }
}
