//! The `ferry` program itself (its `main` is `ferry_cli::entry::main`),
//! built in this package so that `tests/lidi/links.rs` can run it through links
//! named after Lidi's programs.

fn main() -> std::process::ExitCode {
    ferry_cli::entry::main()
}
