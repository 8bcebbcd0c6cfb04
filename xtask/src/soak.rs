//! `cargo xtask soak --minutes N`: continuous transfers through the lossy
//! relay for N minutes, every byte checked, memory watched (`ferry-soak`).
//!
//! CI runs a 2-minute soak after the tests, in the dev profile the tests
//! already built; run longer soaks in release with `--release`.

use crate::run::{CommandLine, Result};

/// Arguments of `cargo xtask soak`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long to run, in minutes (fractions allowed).
    #[arg(long, default_value_t = 2.0)]
    minutes: f64,
    /// Build and run in release mode (faster transfers; a separate build).
    #[arg(long)]
    release: bool,
    /// Extra arguments for ferry-soak, after `--` (e.g. `-- --loss 0.1`).
    #[arg(last = true)]
    extra: Vec<String>,
}

/// The command that runs a soak of `minutes`.
pub fn command(minutes: f64, release: bool) -> CommandLine {
    let mut args = vec!["run", "-q", "-p", "ferry-soak"];
    if release {
        args.push("--release");
    }
    args.push("--");
    CommandLine::cargo(&args)
        .arg("--minutes")
        .arg(minutes.to_string())
}

pub fn run(args: &Args) -> Result {
    if !(args.minutes > 0.0 && args.minutes.is_finite()) {
        return Err(format!(
            "--minutes must be a positive number, not {}",
            args.minutes
        ));
    }
    let mut command = command(args.minutes, args.release);
    for extra in &args.extra {
        command = command.arg(extra.clone());
    }
    println!("==> soak: {command}");
    if command.status()? {
        Ok(())
    } else {
        Err("the soak failed: a byte was wrong, a session failed, or memory kept growing (see above)".into())
    }
}
