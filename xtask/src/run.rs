//! Running cargo from the workspace root, and timing what runs.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The result of an xtask: `Err` carries the message printed before exiting non-zero.
pub type Result<T = ()> = std::result::Result<T, String>;

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask/ lives inside the workspace root")
}

/// The cargo binary to run: `$CARGO` when set (as it is under `cargo xtask`), else
/// `cargo` from `PATH`.
pub fn cargo_bin() -> OsString {
    std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into())
}

/// A command line to run in the workspace root, printable exactly as a person
/// would type it to run it again.
#[derive(Debug, Clone)]
pub struct CommandLine {
    program: OsString,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl CommandLine {
    /// `cargo` (see [`cargo_bin`]) with these arguments.
    pub fn cargo(args: &[&str]) -> Self {
        Self::new(cargo_bin(), args)
    }

    /// `cargo` from `PATH`, which must be rustup's proxy for `+toolchain` to work
    /// (`$CARGO` names one toolchain's cargo, which rejects `+nightly`).
    pub fn rustup_cargo(args: &[&str]) -> Self {
        Self::new("cargo".into(), args)
    }

    fn new(program: OsString, args: &[&str]) -> Self {
        Self {
            program,
            args: args.iter().map(|a| a.to_string()).collect(),
            env: Vec::new(),
        }
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Appends an argument.
    pub fn arg(mut self, arg: impl Into<String>) -> Self {
        self.args.push(arg.into());
        self
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(workspace_root());
        cmd
    }

    /// Runs the command with inherited stdio; `Ok(true)` if it exited successfully.
    pub fn status(&self) -> Result<bool> {
        self.command()
            .status()
            .map(|s| s.success())
            .map_err(|e| format!("could not start `{self}`: {e}"))
    }

    /// Runs the command, echoing its output as it comes, and returns whether it
    /// exited successfully along with every line it printed (both streams).
    pub fn status_with_lines(&self) -> Result<(bool, Vec<String>)> {
        let mut child = self
            .command()
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("could not start `{self}`: {e}"))?;
        let stdout = child.stdout.take().expect("piped");
        let stderr = child.stderr.take().expect("piped");
        let echo_out = std::thread::spawn(move || echo_lines(stdout, false));
        let echo_err = std::thread::spawn(move || echo_lines(stderr, true));
        let status = child
            .wait()
            .map_err(|e| format!("could not wait for `{self}`: {e}"))?;
        let mut lines = echo_out.join().unwrap_or_default();
        lines.extend(echo_err.join().unwrap_or_default());
        Ok((status.success(), lines))
    }

    /// Runs the command silently; whether it started and exited successfully.
    pub fn succeeds_quietly(&self) -> bool {
        self.command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Runs the command and returns its standard output, if it exited successfully.
    pub fn output(&self) -> Result<String> {
        let out = self
            .command()
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| format!("could not start `{self}`: {e}"))?;
        if !out.status.success() {
            return Err(format!("`{self}` failed ({})", out.status));
        }
        String::from_utf8(out.stdout).map_err(|_| format!("`{self}` printed invalid UTF-8"))
    }
}

impl fmt::Display for CommandLine {
    /// Shows `KEY='value' cargo args…`, naming cargo by its file name so the line
    /// can be pasted into a shell.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (k, v) in &self.env {
            write!(f, "{k}='{v}' ")?;
        }
        let program = PathBuf::from(&self.program);
        let name = program.file_name().unwrap_or(program.as_os_str());
        write!(f, "{}", name.to_string_lossy())?;
        for a in &self.args {
            if a.contains(' ') {
                write!(f, " '{a}'")?;
            } else {
                write!(f, " {a}")?;
            }
        }
        Ok(())
    }
}

/// Copies `stream` line by line to this process's stdout (or stderr), keeping the lines.
fn echo_lines(stream: impl std::io::Read, to_stderr: bool) -> Vec<String> {
    use std::io::{BufRead, BufReader, Write};
    let mut lines = Vec::new();
    for line in BufReader::new(stream)
        .lines()
        .map_while(std::result::Result::ok)
    {
        if to_stderr {
            let _ = writeln!(std::io::stderr(), "{line}");
        } else {
            let _ = writeln!(std::io::stdout(), "{line}");
        }
        lines.push(line);
    }
    lines
}

/// Formats a duration as seconds with one decimal, e.g. `12.3s`.
pub fn secs(d: Duration) -> String {
    format!("{:.1}s", d.as_secs_f64())
}

/// Runs `f` and returns its result with the time it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}
