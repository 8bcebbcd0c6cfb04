//! The `ferry` binary under Lidi's program names: run through a link (or a
//! copy) named `diode-send`, `diode-receive`, `diode-send-file`,
//! `diode-receive-file` or `diode-send-dir`, it behaves as `ferry
//! diode-send`, … with the same arguments, so that scripts and units written
//! for Lidi run unchanged:
//!
//! ```sh
//! for tool in diode-send diode-receive diode-send-file diode-receive-file diode-send-dir; do
//!     ln -s "$(command -v ferry)" "/usr/local/bin/$tool"
//! done
//! diode-send -c /etc/lidi/config.toml     # = ferry diode-send -c /etc/lidi/config.toml
//! ```

use std::ffi::OsString;
use std::path::Path;

/// Lidi's program names, each also a `ferry` subcommand.
pub const PROGRAMS: [&str; 5] = [
    "diode-send",
    "diode-receive",
    "diode-send-file",
    "diode-receive-file",
    "diode-send-dir",
];

/// The Lidi program `argv0` names, if any: its file name, without a
/// Windows `.exe`.
pub fn program(argv0: &std::ffi::OsStr) -> Option<&'static str> {
    let name = Path::new(argv0).file_name()?.to_str()?;
    let name = name.strip_suffix(".exe").unwrap_or(name);
    PROGRAMS.iter().copied().find(|p| *p == name)
}

/// The arguments as `ferry` parses them: unchanged, unless the program was
/// run under one of Lidi's names ([`PROGRAMS`]), when `ferry` and that
/// subcommand come first (`diode-send -c x` → `ferry diode-send -c x`).
pub fn args(argv: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut argv = argv.into_iter();
    let Some(argv0) = argv.next() else {
        return vec!["ferry".into()];
    };
    match program(&argv0) {
        Some(subcommand) => ["ferry".into(), subcommand.into()]
            .into_iter()
            .chain(argv)
            .collect(),
        None => std::iter::once(argv0).chain(argv).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn lidi_names_become_subcommands() {
        assert_eq!(
            args(os(&["/usr/local/bin/diode-send", "-c", "x.toml"])),
            os(&["ferry", "diode-send", "-c", "x.toml"])
        );
        assert_eq!(
            args(os(&["diode-receive-file.exe", "out"])),
            os(&["ferry", "diode-receive-file", "out"])
        );
    }

    #[test]
    fn other_names_are_left_alone() {
        for argv0 in [
            "ferry",
            "/usr/bin/ferry",
            "diode-sender",
            "diode-send-dir-2",
        ] {
            assert_eq!(args(os(&[argv0, "demo"])), os(&[argv0, "demo"]));
        }
    }
}
