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
//! diode-receive                           # reads /etc/lidi/config.toml, as Lidi's does
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

/// Where Lidi's `diode-send` and `diode-receive` read their configuration
/// when not given `-c`.
pub const LIDI_DEFAULT_CONFIG: &str = "/etc/lidi/config.toml";

/// The arguments as `ferry` parses them: unchanged, unless the program was
/// run under one of Lidi's names ([`PROGRAMS`]), when `ferry` and that
/// subcommand come first (`diode-send -c x` → `ferry diode-send -c x`).
/// Run as `diode-send` or `diode-receive` without `-c`/`--config`, they
/// read [`LIDI_DEFAULT_CONFIG`] if it exists, as Lidi's do.
pub fn args(argv: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    args_with(argv, |path| path.exists())
}

/// [`args`], with `exists` telling whether a file exists.
pub fn args_with(
    argv: impl IntoIterator<Item = OsString>,
    exists: impl Fn(&Path) -> bool,
) -> Vec<OsString> {
    let mut argv = argv.into_iter();
    let Some(argv0) = argv.next() else {
        return vec!["ferry".into()];
    };
    let Some(subcommand) = program(&argv0) else {
        return std::iter::once(argv0).chain(argv).collect();
    };
    let rest: Vec<OsString> = argv.collect();
    let mut out: Vec<OsString> = vec!["ferry".into(), subcommand.into()];
    let has_config = rest.iter().any(|a| {
        a.to_str().is_some_and(|a| {
            a == "--config" || a.starts_with("--config=") || (a.starts_with("-c") && a != "--")
        })
    });
    if matches!(subcommand, "diode-send" | "diode-receive")
        && !has_config
        && exists(Path::new(LIDI_DEFAULT_CONFIG))
    {
        out.extend(["--config".into(), LIDI_DEFAULT_CONFIG.into()]);
    }
    out.extend(rest);
    out
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
    fn lidis_default_configuration_is_read_when_it_exists() {
        let yes = |_: &Path| true;
        assert_eq!(
            args_with(os(&["diode-send"]), yes),
            os(&["ferry", "diode-send", "--config", LIDI_DEFAULT_CONFIG])
        );
        assert_eq!(
            args_with(os(&["diode-receive", "-c", "x.toml"]), yes),
            os(&["ferry", "diode-receive", "-c", "x.toml"])
        );
        assert_eq!(
            args_with(os(&["diode-receive", "--config=x.toml"]), yes),
            os(&["ferry", "diode-receive", "--config=x.toml"])
        );
        assert_eq!(
            args_with(os(&["diode-send"]), |_: &Path| false),
            os(&["ferry", "diode-send"])
        );
        // The file tools read no configuration in Lidi.
        assert_eq!(
            args_with(os(&["diode-send-file", "a"]), yes),
            os(&["ferry", "diode-send-file", "a"])
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
