//! The `ferry` command line, driven in-process through its library.

use clap::{CommandFactory, Parser};
use ferry_cli::{Cli, CliError, run};

fn ferry(args: &[&str]) -> (Result<(), CliError>, String) {
    let cli = Cli::try_parse_from(std::iter::once("ferry").chain(args.iter().copied()))
        .expect("arguments parse");
    let mut out = Vec::new();
    let result = run(cli, &mut out);
    (result, String::from_utf8(out).expect("utf-8 report"))
}

#[test]
fn command_line_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn demo_with_embedded_defaults_checks_every_byte() {
    let (result, out) = ferry(&["demo"]);
    result.expect("demo succeeds");
    assert!(out.contains("over UDP on loopback"), "{out}");
    assert!(out.contains("5% loss"), "{out}");
    assert!(out.contains("0 mismatched"), "{out}");
    assert!(out.contains("result: OK"), "{out}");
}

#[test]
fn simulated_demo_checks_every_byte() {
    let (result, out) = ferry(&["demo", "--simulated"]);
    result.expect("demo succeeds");
    assert!(out.contains("virtual time"), "{out}");
    assert!(out.contains("result: OK"), "{out}");
}

#[test]
fn demo_is_reproducible_by_seed() {
    let args = [
        "demo",
        "--simulated",
        "--megabytes",
        "1",
        "--loss",
        "10",
        "--seed",
        "42",
    ];
    let (a, out_a) = ferry(&args);
    let (b, out_b) = ferry(&args);
    a.unwrap();
    b.unwrap();
    assert_eq!(out_a, out_b);
}

#[test]
fn demo_refuses_impossible_settings() {
    let (result, _) = ferry(&["demo", "--loss", "150"]);
    let err = result.unwrap_err();
    assert!(err.to_string().contains("--loss"), "{err}");
}

#[test]
fn unknown_subcommand_is_a_usage_error() {
    assert!(Cli::try_parse_from(["ferry", "teleport"]).is_err());
}
