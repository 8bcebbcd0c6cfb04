//! `cargo xtask bench`: builds `ferry-bench` in release mode and runs suites.
//!
//! Each suite prints one table (every row beside a baseline measured in the
//! same run) and writes its figures to `target/bench/<suite>.json`. Benchmarks
//! use loopback only; they never run in CI and tests never assert their numbers.

use crate::run::{CommandLine, Result, workspace_root};

/// Suites `cargo xtask bench` knows, in the order `all` runs them.
const SUITES: &[&str] = &["sessions", "diode"];

/// Arguments of `cargo xtask bench`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Suites to run (default: all): sessions, diode.
    suites: Vec<String>,
    /// Extra arguments for every suite, after `--` (e.g. `-- --size-mib 256`).
    #[arg(last = true)]
    extra: Vec<String>,
}

pub fn run(args: &Args) -> Result {
    let suites: Vec<String> = if args.suites.is_empty() {
        SUITES.iter().map(|s| (*s).to_owned()).collect()
    } else {
        args.suites.clone()
    };
    if let Some(unknown) = suites.iter().find(|s| !SUITES.contains(&s.as_str())) {
        return Err(format!(
            "no bench suite `{unknown}`; the suites are: {}",
            SUITES.join(", ")
        ));
    }
    let json_dir = workspace_root().join("target").join("bench");
    for suite in &suites {
        let mut command =
            CommandLine::cargo(&["run", "--release", "-q", "-p", "ferry-bench", "--"])
                .arg(suite.clone())
                .arg("--json-dir")
                .arg(json_dir.display().to_string());
        for extra in &args.extra {
            command = command.arg(extra.clone());
        }
        println!("\n==> bench {suite}: {command}");
        if !command.status()? {
            return Err(format!("bench suite `{suite}` failed (see above)"));
        }
    }
    Ok(())
}
