//! `cargo xtask fuzz`: runs the cargo-fuzz targets in `fuzz/` and reports crashes.
//!
//! Each target runs as `cargo +nightly fuzz run <target> <work corpus> <seeds> --
//! -max_total_time=N`. libFuzzer writes the inputs it finds to the first corpus
//! directory only, so the committed seeds in `fuzz/corpus/<target>/` stay as they
//! are while the growing corpus lives in `fuzz/target/corpus/<target>/` (ignored
//! by git, kept between runs).

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs;
use std::path::{Path, PathBuf};

use crate::run::{CommandLine, Result, secs, timed, workspace_root};

/// Arguments of `cargo xtask fuzz`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long to fuzz each target, in seconds.
    #[arg(long, value_name = "N", default_value_t = 30)]
    seconds: u64,
    /// Targets to run (default: every target in fuzz/).
    #[arg(value_name = "TARGET")]
    targets: Vec<String>,
}

/// What one target's run came to.
#[derive(Debug)]
enum Outcome {
    /// The fuzzer ran its time and found nothing.
    Clean,
    /// The fuzzer wrote these new artifacts (crashes, leaks, timeouts, OOMs).
    Found(Vec<PathBuf>),
    /// The fuzzer failed without leaving an artifact (a build error, say).
    Failed,
}

/// Runs the chosen targets one after the other; fails if any found a crash.
pub fn run(args: &Args) -> Result {
    ensure_cargo_fuzz()?;
    let available = list_targets()?;
    let targets = if args.targets.is_empty() {
        available
    } else {
        if let Some(unknown) = args.targets.iter().find(|t| !available.contains(t)) {
            return Err(format!(
                "no fuzz target `{unknown}`; the targets are: {}",
                available.join(", ")
            ));
        }
        args.targets.clone()
    };

    let fuzz_dir = workspace_root().join("fuzz");
    let mut results = Vec::new();
    for target in &targets {
        let artifacts = fuzz_dir.join("artifacts").join(target);
        let work = fuzz_dir.join("target").join("corpus").join(target);
        fs::create_dir_all(&work)
            .map_err(|e| format!("could not create {}: {e}", work.display()))?;
        let command = CommandLine::rustup_cargo(&["+nightly", "fuzz", "run", target])
            .arg(relative(&work))
            .arg(format!("fuzz/corpus/{target}"))
            .arg("--")
            .arg(format!("-max_total_time={}", args.seconds));
        println!("\n==> fuzzing {target} for {}s: {command}", args.seconds);

        let before = listing(&artifacts);
        let (status, elapsed) = timed(|| command.status());
        let new: Vec<PathBuf> = listing(&artifacts)
            .difference(&before)
            .map(|name| artifacts.join(name))
            .collect();
        let outcome = match status? {
            _ if !new.is_empty() => Outcome::Found(new),
            true => Outcome::Clean,
            false => Outcome::Failed,
        };
        report(target, &outcome);
        results.push((target, outcome, elapsed));
    }

    println!("\n{:<20} {:<10} {:>8}", "target", "result", "time");
    for (target, outcome, elapsed) in &results {
        let result = match outcome {
            Outcome::Clean => "clean".to_owned(),
            Outcome::Found(new) => format!("{} found", new.len()),
            Outcome::Failed => "FAILED".to_owned(),
        };
        println!("{target:<20} {result:<10} {:>8}", secs(*elapsed));
    }
    let bad: Vec<_> = results
        .iter()
        .filter(|(_, o, _)| !matches!(o, Outcome::Clean))
        .map(|(t, _, _)| t.as_str())
        .collect();
    if bad.is_empty() {
        Ok(())
    } else {
        Err(format!("fuzzing failed for: {}", bad.join(", ")))
    }
}

/// Prints what a target's run found and how to follow up.
fn report(target: &str, outcome: &Outcome) {
    match outcome {
        Outcome::Clean => println!("xtask: {target}: no new crash artifacts"),
        Outcome::Failed => println!(
            "xtask: {target}: the fuzzer exited with an error and left no artifact (see above)"
        ),
        Outcome::Found(new) => {
            println!(
                "xtask: {target}: {} new artifact(s); reproduce with:",
                new.len()
            );
            for path in new {
                println!("    cargo +nightly fuzz run {target} {}", relative(path));
            }
            println!(
                "  then keep each as a regression test: copy it into fuzz/regressions/{target}/"
            );
        }
    }
}

/// Fails with install instructions unless `cargo +nightly fuzz` works.
fn ensure_cargo_fuzz() -> Result {
    if CommandLine::rustup_cargo(&["+nightly", "fuzz", "--version"]).succeeds_quietly() {
        return Ok(());
    }
    if !CommandLine::rustup_cargo(&["+nightly", "--version"]).succeeds_quietly() {
        return Err("`cargo +nightly` does not work: fuzzing needs a nightly toolchain \
                    (`rustup toolchain install nightly`) and cargo-fuzz (`cargo install cargo-fuzz`)"
            .into());
    }
    println!("xtask: cargo-fuzz is missing; installing it (`cargo install cargo-fuzz --locked`)");
    if CommandLine::rustup_cargo(&["install", "cargo-fuzz", "--locked"]).status()? {
        return Ok(());
    }
    Err("`cargo +nightly fuzz` is not available and `cargo install cargo-fuzz --locked` failed (see above)".into())
}

/// The fuzz targets, as `cargo fuzz list` names them.
fn list_targets() -> Result<Vec<String>> {
    let out = CommandLine::rustup_cargo(&["+nightly", "fuzz", "list"]).output()?;
    let targets: Vec<String> = out.split_whitespace().map(str::to_owned).collect();
    if targets.is_empty() {
        return Err("`cargo fuzz list` found no fuzz targets in fuzz/".into());
    }
    Ok(targets)
}

/// The file names in `dir`; empty if it does not exist.
fn listing(dir: &Path) -> BTreeSet<OsString> {
    fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok().map(|e| e.file_name()))
                .collect()
        })
        .unwrap_or_default()
}

/// `path` relative to the workspace root, for messages and command lines.
fn relative(path: &Path) -> String {
    path.strip_prefix(workspace_root())
        .unwrap_or(path)
        .display()
        .to_string()
}
