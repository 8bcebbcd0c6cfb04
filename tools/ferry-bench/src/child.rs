//! Child processes: the running executable re-invoking itself in a hidden
//! role (one side of a transfer), so each side's CPU time is its own.
//!
//! The executable is `ferry-bench` or `ferry`; which arguments lead to the
//! roles (nothing for `ferry-bench`, `bench-role` for `ferry`) is set once per
//! run by [`set_role_prefix`].
//!
//! A child prints `READY …` once it listens (the receiving side) and
//! `RESULT …` at the end, whitespace-separated fields, on stdout; anything
//! else it prints goes to stderr.

use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::RwLock;
use std::time::Duration;

/// The arguments that lead this executable to its role subcommands.
static ROLE_PREFIX: RwLock<&'static [&'static str]> = RwLock::new(&[]);

/// The name a child's command line takes for `value` (its clap name).
pub(crate) fn arg_name(value: impl clap::ValueEnum) -> String {
    value
        .to_possible_value()
        .expect("no skipped variants")
        .get_name()
        .to_owned()
}

/// Sets the arguments placed between this executable and a role's
/// subcommand (`bulk-role`, …) when a suite starts a child.
pub(crate) fn set_role_prefix(prefix: &'static [&'static str]) {
    *ROLE_PREFIX.write().unwrap_or_else(|e| e.into_inner()) = prefix;
}

/// `<this executable> <prefix…> <subcommand>`, its stdout piped and its
/// stderr inherited.
pub(crate) fn command(subcommand: &str) -> Result<Command, String> {
    let exe = std::env::current_exe().map_err(|e| format!("own executable: {e}"))?;
    let prefix = *ROLE_PREFIX.read().unwrap_or_else(|e| e.into_inner());
    let mut command = Command::new(exe);
    command
        .args(prefix)
        .arg(subcommand)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    Ok(command)
}

/// A running child and its stdout.
pub(crate) struct Role {
    child: Child,
    out: BufReader<ChildStdout>,
}

impl Role {
    /// Starts `<this executable> <prefix…> <subcommand> <args…>`.
    pub(crate) fn spawn(subcommand: &str, args: &[String]) -> Result<Self, String> {
        let mut child = command(subcommand)?
            .args(args)
            .spawn()
            .map_err(|e| format!("cannot start a child: {e}"))?;
        let out = BufReader::new(child.stdout.take().expect("piped"));
        Ok(Self { child, out })
    }

    /// Starts the server side of a pair (`subcommand server…`), waits for
    /// its `READY <addr> [cert]`, then the client side (`subcommand
    /// client…`), told where the server is with `--addr` (and `--cert`, when
    /// the server printed one). Returns `(server, client)`.
    pub(crate) fn spawn_pair(
        subcommand: &str,
        server: &[String],
        client: &[String],
    ) -> Result<(Self, Self), String> {
        let mut first = Self::spawn(subcommand, server)?;
        let ready = first.expect("READY")?;
        let mut client = client.to_vec();
        client.extend(["--addr".into(), field::<String>(&ready, 0)?]);
        if let Some(cert) = ready.get(1) {
            client.extend(["--cert".into(), cert.clone()]);
        }
        let second = Self::spawn(subcommand, &client)?;
        Ok((first, second))
    }

    /// Reads lines until one starts with `prefix`; returns its fields after
    /// the prefix.
    pub(crate) fn expect(&mut self, prefix: &str) -> Result<Vec<String>, String> {
        expect_line(&mut self.out, prefix)
            .map(|rest| rest.split_whitespace().map(str::to_owned).collect())
    }

    /// Waits for the child to exit; an unsuccessful exit is an error.
    pub(crate) fn wait(mut self) -> Result<(), String> {
        let status = self
            .child
            .wait()
            .map_err(|e| format!("waiting for a child: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("a child failed: {status}"))
        }
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        // A child left behind by an error is stopped, never leaked.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Reads lines from a child until one starts with `prefix`.
pub(crate) fn expect_line(reader: &mut impl BufRead, prefix: &str) -> Result<String, String> {
    let mut line = String::new();
    loop {
        line.clear();
        let n = reader
            .read_line(&mut line)
            .map_err(|e| format!("reading a child's output: {e}"))?;
        if n == 0 {
            return Err(format!("a child ended before printing `{prefix}`"));
        }
        if let Some(rest) = line.trim().strip_prefix(prefix) {
            return Ok(rest.trim().to_owned());
        }
    }
}

/// Field `i` parsed, or an error naming it.
pub(crate) fn field<T: std::str::FromStr>(fields: &[String], i: usize) -> Result<T, String> {
    fields
        .get(i)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| format!("a child's result lacks field {i}: {fields:?}"))
}

/// Seconds as printed by a child.
pub(crate) fn secs(fields: &[String], i: usize) -> Result<Duration, String> {
    field::<f64>(fields, i).map(Duration::from_secs_f64)
}

/// Prints a line for the parent and flushes it.
pub(crate) fn tell(line: std::fmt::Arguments<'_>) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Ends this (child) process after `limit`: a transfer that stalls fails
/// its suite instead of hanging the run (the parent sees the child end
/// without a result, and stops the other side).
pub(crate) fn watchdog(limit: Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(limit);
        eprintln!(
            "ferry-bench: a child gave up after {:.0} s",
            limit.as_secs_f64()
        );
        std::process::exit(3);
    });
}
