//! The `ferry` binary: see [`ferry_cli::entry::main`]. Run through a link
//! named after one of Lidi's programs (`diode-send`, …) it is that program.

use std::process::ExitCode;

fn main() -> ExitCode {
    ferry_cli::entry::main()
}
