//! Stopping on a signal: SIGTERM (what service managers send) and SIGINT
//! (Ctrl-C) both start a **graceful stop**; a second signal of either kind
//! ends the process at once.
//!
//! One mechanism serves every command: the first call to [`signals`]
//! installs the handlers (with `signal-hook`) and a thread that waits for
//! the signals. The first one marks the process as stopping
//! ([`Shutdown::requested`]); the std-thread commands (the diode tools)
//! block in [`Shutdown::wait`], the async ones (the session tools) await
//! [`Shutdown::stopped`]. Each command then stops accepting new work, lets
//! the work in flight finish for at most its grace period (`--grace-period`,
//! [`DEFAULT_GRACE`]; the session tools also read `grace_period` in their
//! `[session]` table), cuts what is left with a warning, and exits. A second
//! signal, while that goes on, exits at once with [`Exit::Interrupted`]
//! (130) whatever the first was: temporary files (`.NAME.ferry-part-*`) may
//! then stay behind.
//!
//! [`InFlight`] counts the work a command waits for.
//!
//! SIGHUP is not a stop: the session listeners (`receive`,
//! `forward-server`, `perf server`) watch it to reload their authorized
//! keys ([`crate::session::reload`]); the other commands keep its default
//! action (the process ends).
//!
//! On platforms other than Unix only Ctrl-C is watched (through tokio), with
//! the same first/second behaviour.

use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::info;

use crate::CliError;
use crate::exit::Exit;

/// How long work in flight may take to finish after the first signal, when
/// neither `--grace-period` nor the configuration file says.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Longest grace period accepted: one day.
pub const MAX_GRACE: Duration = Duration::from_secs(86_400);

/// The `--grace-period` flag of the long-running commands.
#[derive(Debug, Clone, Copy, Default, clap::Args)]
pub struct GraceArgs {
    /// On SIGTERM or Ctrl-C: stop accepting, and give the work in flight this
    /// many seconds to finish before it is cut (default 10; 0: cut at once;
    /// fractions allowed). A second signal exits at once.
    #[arg(long = "grace-period", value_name = "SECONDS", value_parser = parse_grace)]
    pub grace_period: Option<Duration>,
}

impl GraceArgs {
    /// The grace period: the flag, else `file` (the configuration file's),
    /// else [`DEFAULT_GRACE`].
    pub fn resolve(&self, file: Option<Duration>) -> Duration {
        self.grace_period.or(file).unwrap_or(DEFAULT_GRACE)
    }
}

/// Parses `--grace-period`: seconds, a decimal number from 0 to a day.
pub fn parse_grace(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds (e.g. 10, or 2.5)"))?;
    if !(0.0..=MAX_GRACE.as_secs_f64()).contains(&secs) {
        return Err(format!(
            "{s} s: give from 0 to {} seconds",
            MAX_GRACE.as_secs()
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Which signal started the stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGTERM: a service manager, `kill`.
    Terminate,
    /// SIGINT: Ctrl-C.
    Interrupt,
}

impl Signal {
    /// Its usual name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Terminate => "SIGTERM",
            Self::Interrupt => "SIGINT",
        }
    }
}

/// Whether the process was asked to stop; see the [module](self).
#[derive(Debug)]
pub struct Shutdown {
    requested: Mutex<Option<Signal>>,
    changed: Condvar,
    watch: watch::Sender<Option<Signal>>,
}

impl Shutdown {
    fn new() -> Self {
        Self {
            requested: Mutex::new(None),
            changed: Condvar::new(),
            watch: watch::Sender::new(None),
        }
    }

    /// The signal that asked the process to stop, if one did.
    pub fn requested(&self) -> Option<Signal> {
        *self.requested.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Asks for a graceful stop, as the first signal does; false if one
    /// was asked for already.
    pub fn request(&self, signal: Signal) -> bool {
        let mut requested = self.requested.lock().unwrap_or_else(|e| e.into_inner());
        if requested.is_some() {
            return false;
        }
        *requested = Some(signal);
        self.changed.notify_all();
        self.watch.send_replace(Some(signal));
        true
    }

    /// Blocks until a stop is asked for.
    pub fn wait(&self) -> Signal {
        let mut requested = self.requested.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(signal) = *requested {
                return signal;
            }
            requested = self
                .changed
                .wait(requested)
                .unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Resolves once a stop is asked for (at once if it was already).
    pub async fn stopped(&self) -> Signal {
        let mut rx = self.watch.subscribe();
        match rx.wait_for(Option::is_some).await {
            Ok(signal) => signal.expect("waited for Some"),
            // The sender lives in a static: never dropped.
            Err(_) => std::future::pending().await,
        }
    }
}

static SHUTDOWN: OnceLock<Shutdown> = OnceLock::new();
static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();

/// The process's [`Shutdown`], the signal handlers installed on the first
/// call: from then on SIGTERM and SIGINT no longer kill the process at
/// once (a second one does).
pub fn signals() -> Result<&'static Shutdown, CliError> {
    let shutdown = SHUTDOWN.get_or_init(Shutdown::new);
    INSTALLED
        .get_or_init(install)
        .clone()
        .map_err(|e| CliError::Io {
            context: "cannot watch for SIGTERM and SIGINT".into(),
            source: std::io::Error::other(e),
        })?;
    Ok(shutdown)
}

/// A second signal: exit now.
fn second(signal: Signal) -> ! {
    eprintln!(
        "ferry: {} again: exiting at once, work in flight is cut",
        signal.name()
    );
    std::process::exit(i32::from(Exit::Interrupted.code()))
}

/// The first signal: the graceful stop; the next: exit.
fn on_signal(signal: Signal) {
    let shutdown = SHUTDOWN.get_or_init(Shutdown::new);
    if shutdown.request(signal) {
        info!(
            signal = signal.name(),
            "stopping gracefully (a second signal exits at once)"
        );
    } else {
        second(signal);
    }
}

#[cfg(unix)]
fn install() -> Result<(), String> {
    use signal_hook::consts::{SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGTERM, SIGINT]).map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("ferry-signals".into())
        .spawn(move || {
            for number in signals.forever() {
                on_signal(if number == SIGTERM {
                    Signal::Terminate
                } else {
                    Signal::Interrupt
                });
            }
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(not(unix))]
fn install() -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    std::thread::Builder::new()
        .name("ferry-signals".into())
        .spawn(move || {
            runtime.block_on(async {
                while tokio::signal::ctrl_c().await.is_ok() {
                    on_signal(Signal::Interrupt);
                }
            })
        })
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Work in flight (sessions, connections) that a stop waits for: each piece
/// holds a [`Busy`] guard while it runs.
#[derive(Debug, Default)]
pub struct InFlight {
    count: Mutex<usize>,
    idle: Condvar,
}

/// One piece of work in flight; done when dropped.
#[derive(Debug)]
pub struct Busy(Arc<InFlight>);

impl Drop for Busy {
    fn drop(&mut self) {
        let mut count = self.0.count.lock().unwrap_or_else(|e| e.into_inner());
        *count -= 1;
        if *count == 0 {
            self.0.idle.notify_all();
        }
    }
}

impl InFlight {
    /// A new, empty count.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Counts one piece of work until the guard is dropped.
    pub fn enter(self: &Arc<Self>) -> Busy {
        *self.count.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        Busy(Arc::clone(self))
    }

    /// Pieces of work in flight now.
    pub fn count(&self) -> usize {
        *self.count.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until nothing is in flight (true) or `timeout` passed (false).
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        while *count > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            count = self
                .idle
                .wait_timeout(count, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }

    /// [`wait_idle`](Self::wait_idle) for async code: looks every 20 ms.
    pub async fn wait_idle_async(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.count() == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep_until(deadline.min(tokio::time::Instant::now() + STEP)).await;
        }
    }
}

const STEP: Duration = Duration::from_millis(20);

/// A stop begins: logs it (`what` stops and what may finish) and gives
/// the report's line, `stopping (SIGNAL): N things in flight, waiting up
/// to T`, which operators and tests read.
pub(crate) fn stop_line(
    signal: Signal,
    in_flight: u64,
    (one, many): (&str, &str),
    grace: Duration,
    what: &str,
) -> String {
    info!(
        signal = signal.name(),
        in_flight,
        ?grace,
        "stopping: {what}"
    );
    format!(
        "stopping ({}): {} in flight, waiting up to {}",
        signal.name(),
        crate::counted(in_flight, one, many),
        secs(grace)
    )
}

/// Seconds, for messages: "10 s", "2.5 s".
pub(crate) fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grace_periods_are_seconds_from_zero_to_a_day() {
        assert_eq!(parse_grace("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_grace("2.5"), Ok(Duration::from_millis(2500)));
        assert_eq!(parse_grace("0"), Ok(Duration::ZERO));
        assert!(parse_grace("-1").is_err());
        assert!(parse_grace("ten").is_err());
        assert!(parse_grace("86401").is_err());
        assert!(parse_grace("NaN").is_err());
    }

    #[test]
    fn the_flag_wins_over_the_file_which_wins_over_the_default() {
        let none = GraceArgs::default();
        assert_eq!(none.resolve(None), DEFAULT_GRACE);
        assert_eq!(
            none.resolve(Some(Duration::from_secs(3))),
            Duration::from_secs(3)
        );
        let flag = GraceArgs {
            grace_period: Some(Duration::from_secs(1)),
        };
        assert_eq!(
            flag.resolve(Some(Duration::from_secs(3))),
            Duration::from_secs(1)
        );
    }

    #[test]
    fn only_the_first_request_counts() {
        let shutdown = Shutdown::new();
        assert_eq!(shutdown.requested(), None);
        assert!(shutdown.request(Signal::Terminate));
        assert!(!shutdown.request(Signal::Interrupt));
        assert_eq!(shutdown.wait(), Signal::Terminate);
    }

    #[test]
    fn in_flight_work_is_waited_for() {
        let work = InFlight::new();
        assert!(work.wait_idle(Duration::ZERO));
        let busy = work.enter();
        assert_eq!(work.count(), 1);
        assert!(!work.wait_idle(Duration::from_millis(1)));
        let done = std::thread::spawn(move || drop(busy));
        assert!(work.wait_idle(Duration::from_secs(30)));
        done.join().unwrap();
    }
}
