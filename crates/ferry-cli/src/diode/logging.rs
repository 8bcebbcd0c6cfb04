//! Lidi's log settings on `diode-send` and `diode-receive`: the flags
//! (`--log LEVEL`, Lidi 1's `--log-level`, `--log-file FILE`,
//! `--log4rs-config FILE`) and Lidi 2's `[send]`/`[receive]` `log` and
//! `log_file` keys.
//!
//! The process's log filter is chosen before the command runs
//! ([`crate::entry`]), from the first that gives one:
//!
//! 1. `-v`/`-q`;
//! 2. `--log LEVEL` (or `--log-level`);
//! 3. `FERRY_LOG`, then `RUST_LOG`;
//! 4. the `--config` file's `log`, in `[send]` for `diode-send` and in
//!    `[receive]` for `diode-receive` (peeked at before the file is read in
//!    full: a bad value is refused then, with its line);
//! 5. warnings and errors.
//!
//! The log goes to `--log-file`, else the file's `log_file`, else stderr.
//! A log4rs configuration cannot be read: `--log4rs-config` (and Lidi 1's
//! `--log-config`) is accepted, and warned about.

use std::path::{Path, PathBuf};

use clap::Args;

use super::config::lidi2;
use crate::{Cli, Command};

/// Lidi's log flags.
#[derive(Debug, Clone, Default, Args)]
pub struct LogOptions {
    /// The log level (Lidi's --log; Lidi 1's --log-level): off, error,
    /// warn, info, debug or trace. -v/-q win over it; it wins over
    /// FERRY_LOG, RUST_LOG and the --config file's `log`.
    #[arg(long = "log", visible_alias = "log-level", value_name = "LEVEL",
          value_parser = parse_level)]
    pub level: Option<String>,
    /// Write the log to FILE (appended) instead of stderr (default: the
    /// --config file's `log_file`).
    #[arg(long, value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Lidi's log4rs configuration: accepted and ignored with a warning
    /// (Ferry logs through `tracing`: use --log and --log-file).
    #[arg(long, visible_alias = "log-config", value_name = "FILE")]
    pub log4rs_config: Option<PathBuf>,
}

fn parse_level(text: &str) -> Result<String, String> {
    lidi2::level(text)
}

/// What the command line and the configuration file ask of the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogRequest {
    /// `--log`.
    pub flag_level: Option<String>,
    /// The file's `log` for this tool's side.
    pub file_level: Option<String>,
    /// `--log-file`, else the file's `log_file`.
    pub file: Option<PathBuf>,
    /// `--log4rs-config`, to warn about.
    pub log4rs_config: Option<PathBuf>,
}

impl LogRequest {
    /// The request of `cli`'s command: only `diode-send` and
    /// `diode-receive` have one.
    pub fn of(cli: &Cli) -> Self {
        let (options, config, table) = match &cli.command {
            Command::DiodeSend(a) => (&a.log, a.diode.file.config.as_deref(), "send"),
            Command::DiodeReceive(a) => (&a.log, a.diode.file.config.as_deref(), "receive"),
            _ => return Self::default(),
        };
        let (file_level, log_file) = config.map(|p| peek(p, table)).unwrap_or_default();
        Self {
            flag_level: options.level.clone(),
            file_level,
            file: options.log_file.clone().or(log_file),
            log4rs_config: options.log4rs_config.clone(),
        }
    }

    /// The filter directive: see the module's documentation; `env` reads
    /// an environment variable.
    pub fn directive(
        &self,
        verbose: u8,
        quiet: bool,
        env: impl Fn(&str) -> Option<String>,
    ) -> String {
        let flags = match (quiet, verbose) {
            (true, _) => Some("error"),
            (false, 0) => None,
            (false, 1) => Some("info"),
            (false, 2) => Some("debug"),
            (false, _) => Some("trace"),
        };
        if let Some(level) = flags.or(self.flag_level.as_deref()) {
            return level.to_owned();
        }
        for var in ["FERRY_LOG", "RUST_LOG"] {
            if let Some(v) = env(var).filter(|v| tracing_subscriber::EnvFilter::try_new(v).is_ok())
            {
                return v;
            }
        }
        self.file_level.clone().unwrap_or_else(|| "warn".to_owned())
    }
}

/// The `log` level and `log_file` of `[table]` in the file at `path`, if it
/// reads and they are valid (the file is checked in full later).
fn peek(path: &Path, table: &str) -> (Option<String>, Option<PathBuf>) {
    let Ok(text) = std::fs::read_to_string(path) else {
        return (None, None);
    };
    let Ok(file) = text.parse::<toml::Table>() else {
        return (None, None);
    };
    let side = file.get(table).and_then(toml::Value::as_table);
    let get = |key: &str| side.and_then(|t| t.get(key)).and_then(toml::Value::as_str);
    (
        get("log").and_then(|l| lidi2::level(l).ok()),
        get("log_file").map(PathBuf::from),
    )
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn request(args: &[&str]) -> LogRequest {
        LogRequest::of(&Cli::try_parse_from(args).unwrap())
    }

    #[test]
    fn the_level_comes_from_flags_then_environment_then_file() {
        let dir = tempfile::TempDir::new().unwrap();
        let path = dir.path().join("lidi2.toml");
        std::fs::write(
            &path,
            "[send]\nlog = \"DEBUG\"\nlog_file = \"/tmp/send.log\"\n[receive]\nlog = \"Trace\"\n",
        )
        .unwrap();
        let config = path.to_str().unwrap();
        let send = request(&["ferry", "diode-send", "-c", config]);
        assert_eq!(send.file_level.as_deref(), Some("debug"));
        assert_eq!(send.file, Some(PathBuf::from("/tmp/send.log")));
        let receive = request(&["ferry", "diode-receive", "-c", config]);
        assert_eq!(receive.file_level.as_deref(), Some("trace"));
        assert_eq!(receive.file, None);

        let none = |_: &str| None;
        let env = |v: &str| (v == "RUST_LOG").then(|| "ferry_cli=info".to_owned());
        assert_eq!(send.directive(0, false, none), "debug");
        assert_eq!(send.directive(0, false, env), "ferry_cli=info");
        assert_eq!(send.directive(1, false, env), "info");
        assert_eq!(send.directive(0, true, env), "error");
        let flag = request(&["ferry", "diode-send", "-c", config, "--log-level", "WARN"]);
        assert_eq!(flag.directive(0, false, env), "warn");
        assert_eq!(flag.directive(2, false, env), "debug");
        // Neither: warnings and errors.
        assert_eq!(LogRequest::default().directive(0, false, none), "warn");
    }

    #[test]
    fn lidis_log_flags_are_accepted() {
        let r = request(&[
            "ferry",
            "diode-receive",
            "--log",
            "info",
            "--log-file",
            "/var/log/r.log",
            "--log4rs-config",
            "lidi_log4rs.yml",
        ]);
        assert_eq!(r.flag_level.as_deref(), Some("info"));
        assert_eq!(r.file, Some(PathBuf::from("/var/log/r.log")));
        assert_eq!(r.log4rs_config, Some(PathBuf::from("lidi_log4rs.yml")));
        let r = request(&["ferry", "diode-send", "--log-config", "x.yml"]);
        assert!(r.log4rs_config.is_some());
        assert!(Cli::try_parse_from(["ferry", "diode-send", "--log", "loud"]).is_err());
        // Other commands have no request.
        assert_eq!(request(&["ferry", "demo"]), LogRequest::default());
    }
}
