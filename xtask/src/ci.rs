//! `cargo xtask ci`: every check CI runs, in order, stopping at the first failure.

use std::time::Duration;

use crate::run::{CommandLine, Result, secs, timed, workspace_root};

/// One check: a name for the summary and the command that performs it.
#[derive(Debug)]
struct Step {
    name: &'static str,
    command: CommandLine,
    /// Whether the step runs tests whose counts go into the final tally.
    tests: bool,
}

/// Passed and failed test counts read from cargo test's and nextest's summaries.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    passed: u64,
    failed: u64,
}

impl Tally {
    /// Adds the counts of every summary line among `lines`: cargo test's
    /// `test result: ok. 3 passed; 0 failed; …` and nextest's
    /// `Summary [ 1.2s] 98 tests run: 98 passed, 1 skipped`.
    fn add(&mut self, lines: &[String]) {
        for line in lines {
            if !(line.contains("test result:") || line.contains("tests run:")) {
                continue;
            }
            let words: Vec<&str> = line
                .split(|c: char| c.is_whitespace() || c == ';' || c == ',')
                .filter(|w| !w.is_empty())
                .collect();
            for pair in words.windows(2) {
                let Ok(n) = pair[0].parse::<u64>() else {
                    continue;
                };
                match pair[1] {
                    "passed" => self.passed += n,
                    "failed" => self.failed += n,
                    _ => {}
                }
            }
        }
    }
}

/// What became of a step.
#[derive(Debug)]
enum Outcome {
    Passed(Duration),
    Failed(Duration),
    NotRun,
}

/// The cargo features the workspace steps enable: `ferry bench` and `ferry demo
/// --simulated` in the `ferry` binary, so that their tests run (the tests crate
/// enables it too, for `tests/cli.rs`). Not `--all-features`, which would also
/// compile quinn for ferry-bench's `peers`.
const FEATURES: &str = "ferry-cli/bench";

/// The checks, in order. Tests run under cargo-nextest when it is installed (plus
/// `cargo test --doc`, since nextest does not run doc tests), else under `cargo test`.
///
/// The workspace steps build `ferry` with [`FEATURES`]; two small steps check
/// the binary as it is installed by default, without them: clippy on it, and
/// the tests of what it says instead of `ferry bench` and `demo --simulated`.
fn steps() -> Vec<Step> {
    let step = |name, args: &[&str]| Step {
        name,
        command: CommandLine::cargo(args),
        tests: args
            .first()
            .is_some_and(|a| *a == "test" || *a == "nextest"),
    };
    let mut steps = vec![
        step("fmt", &["fmt", "--all", "--check"]),
        step(
            "clippy",
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--features",
                FEATURES,
                "--",
                "-D",
                "warnings",
            ],
        ),
        step(
            "clippy-cli",
            &[
                "clippy",
                "-p",
                "ferry-cli",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ],
        ),
    ];
    if CommandLine::cargo(&["nextest", "--version"]).succeeds_quietly() {
        steps.push(step(
            "test",
            &[
                "nextest",
                "run",
                "--workspace",
                "--features",
                FEATURES,
                "--no-fail-fast",
            ],
        ));
        steps.push(step(
            "doctest",
            &["test", "--workspace", "--features", FEATURES, "--doc"],
        ));
    } else {
        println!("xtask: cargo-nextest not found; tests run under `cargo test`");
        steps.push(step(
            "test",
            &[
                "test",
                "--workspace",
                "--features",
                FEATURES,
                "--no-fail-fast",
            ],
        ));
    }
    // The default `ferry`: its unit tests and the binary's answer to `bench`.
    steps.push(step(
        "test-cli",
        &["test", "-p", "ferry-cli", "--lib", "--test", "bench"],
    ));
    steps.push(Step {
        name: "soak",
        command: crate::soak::command(2.0, false),
        tests: false,
    });
    let doc = step(
        "doc",
        &["doc", "--workspace", "--features", FEATURES, "--no-deps"],
    );
    steps.push(Step {
        command: doc.command.env("RUSTDOCFLAGS", "-D warnings"),
        ..doc
    });
    steps
}

/// Runs the CI checks in the workspace root and prints a summary table.
pub fn run() -> Result {
    let steps = steps();
    let mut outcomes: Vec<Outcome> = steps.iter().map(|_| Outcome::NotRun).collect();
    let mut failure = None;
    let mut tally = Tally::default();
    for (i, step) in steps.iter().enumerate() {
        println!(
            "\n==> [{}/{}] {}: {}",
            i + 1,
            steps.len(),
            step.name,
            step.command
        );
        let (result, elapsed) = timed(|| {
            if step.tests {
                step.command.status_with_lines().map(|(ok, lines)| {
                    tally.add(&lines);
                    ok
                })
            } else {
                step.command.status()
            }
        });
        match result {
            Ok(true) => outcomes[i] = Outcome::Passed(elapsed),
            Ok(false) => {
                outcomes[i] = Outcome::Failed(elapsed);
                failure = Some((step, None));
                break;
            }
            Err(e) => {
                outcomes[i] = Outcome::Failed(elapsed);
                failure = Some((step, Some(e)));
                break;
            }
        }
    }
    print_summary(&steps, &outcomes);
    let result = match failure {
        None if tally.passed == 0 => {
            Err("the test steps reported no test at all: check the runners' output".into())
        }
        None => {
            println!("\nxtask: all CI checks passed");
            Ok(())
        }
        Some((step, cause)) => Err(format!(
            "CI step `{}` failed{}\n  rerun it from {} with:\n    {}",
            step.name,
            cause.map(|c| format!(": {c}")).unwrap_or_default(),
            workspace_root().display(),
            step.command
        )),
    };
    // The plain closing line CI reads: every test counted, whichever runner ran it.
    println!("tests: {} passed, {} failed", tally.passed, tally.failed);
    result
}

/// Prints one line per step with its result and time, and the total.
fn print_summary(steps: &[Step], outcomes: &[Outcome]) {
    println!("\n{:<10} {:<8} {:>8}", "step", "result", "time");
    let mut total = Duration::ZERO;
    for (step, outcome) in steps.iter().zip(outcomes) {
        let (result, time) = match outcome {
            Outcome::Passed(d) => ("ok", Some(*d)),
            Outcome::Failed(d) => ("FAILED", Some(*d)),
            Outcome::NotRun => ("not run", None),
        };
        total += time.unwrap_or_default();
        let time = time.map(secs).unwrap_or_else(|| "-".into());
        println!("{:<10} {result:<8} {time:>8}", step.name);
    }
    println!("{:<10} {:<8} {:>8}", "total", "", secs(total));
}
