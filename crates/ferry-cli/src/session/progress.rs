//! Progress of a transfer: a bar with rate and ETA on a terminal
//! (`indicatif`, drawn on stderr), a plain line every second otherwise.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use clap::ValueEnum;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ProgressMode {
    /// A bar when stdout and stderr are terminals, else lines.
    #[default]
    Auto,
    /// A bar (with rate and ETA) on stderr.
    Bar,
    /// A plain line on stdout every second.
    Lines,
    /// Nothing until the summary.
    Off,
}

impl ProgressMode {
    /// The mode to use: `Auto` decided, `Off` when quiet.
    pub fn resolve(self, quiet: bool) -> Self {
        match self {
            _ if quiet => Self::Off,
            Self::Auto if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() => {
                Self::Bar
            }
            Self::Auto => Self::Lines,
            mode => mode,
        }
    }
}

/// Counters of one transfer, shared by the tasks doing it.
#[derive(Debug)]
pub struct Progress {
    /// What the transfer is ("to 10.0.0.2:7000").
    pub label: String,
    /// Entries (files and directories) expected; 0 while unknown.
    pub total_entries: AtomicU64,
    /// Bytes expected; 0 while unknown.
    pub total_bytes: AtomicU64,
    /// Entries done.
    pub entries: AtomicU64,
    /// Bytes done (for a sender: stored at the receiver, as it reports).
    pub bytes: AtomicU64,
    /// The file being worked on.
    pub current: Mutex<String>,
    /// When the transfer started.
    pub start: Instant,
}

impl Progress {
    /// Counters at zero.
    pub fn new(label: impl Into<String>) -> Self {
        Self {
            label: label.into(),
            total_entries: AtomicU64::new(0),
            total_bytes: AtomicU64::new(0),
            entries: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            current: Mutex::new(String::new()),
            start: Instant::now(),
        }
    }

    /// Sets the file being worked on.
    pub fn set_current(&self, name: &str) {
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) = name.to_owned();
    }

    fn current(&self) -> String {
        self.current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// One line: entries, bytes, percentage, rate, ETA.
    pub fn line(&self, rate: f64) -> String {
        let bytes = self.bytes.load(Ordering::Relaxed);
        let total = self.total_bytes.load(Ordering::Relaxed);
        let entries = self.entries.load(Ordering::Relaxed);
        let total_entries = self.total_entries.load(Ordering::Relaxed);
        let mut line = format!("{}: {entries}", self.label);
        if total_entries > 0 {
            line += &format!("/{total_entries}");
        }
        line += &format!(" files, {}", human_bytes(bytes));
        if total > 0 {
            line += &format!(
                " of {} ({:.0}%)",
                human_bytes(total),
                bytes as f64 * 100.0 / total as f64
            );
        }
        line += &format!(", {}/s", human_bytes(rate as u64));
        if total > bytes && rate > 0.0 {
            line += &format!(", ETA {}", human_duration((total - bytes) as f64 / rate));
        }
        let current = self.current();
        if !current.is_empty() {
            line += &format!(", {current}");
        }
        line
    }
}

/// Draws progress of transfers: bars, lines or nothing.
#[derive(Debug)]
pub struct View {
    mode: ProgressMode,
    multi: Option<MultiProgress>,
    shown: Vec<Shown>,
}

#[derive(Debug)]
struct Shown {
    progress: std::sync::Arc<Progress>,
    bar: Option<ProgressBar>,
    last: (Instant, u64),
    rate: f64,
}

impl View {
    /// A view in `mode` (resolved: not `Auto`).
    pub fn new(mode: ProgressMode) -> Self {
        let multi = (mode == ProgressMode::Bar)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Self {
            mode,
            multi,
            shown: Vec::new(),
        }
    }

    /// How often [`update`](Self::update) should be called.
    pub fn period(&self) -> Duration {
        match self.mode {
            ProgressMode::Bar => Duration::from_millis(100),
            _ => Duration::from_secs(1),
        }
    }

    /// Shows a transfer from now on.
    pub fn add(&mut self, progress: std::sync::Arc<Progress>) {
        let bar = self.multi.as_ref().map(|multi| {
            let bar = multi.add(ProgressBar::new(0));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} ETA {eta} {msg}",
                )
                .expect("valid template"),
            );
            bar.set_prefix(progress.label.clone());
            bar
        });
        self.shown.push(Shown {
            last: (progress.start, 0),
            progress,
            bar,
            rate: 0.0,
        });
    }

    /// Stops showing a transfer (its bar is cleared).
    pub fn remove(&mut self, progress: &std::sync::Arc<Progress>) {
        self.shown.retain(|s| {
            let keep = !std::sync::Arc::ptr_eq(&s.progress, progress);
            if !keep && let Some(bar) = &s.bar {
                bar.finish_and_clear();
            }
            keep
        });
    }

    /// Redraws the bars, or writes a line per transfer to `out`.
    pub fn update(&mut self, out: &mut dyn Write) -> std::io::Result<()> {
        let now = Instant::now();
        for s in &mut self.shown {
            let p = &s.progress;
            let bytes = p.bytes.load(Ordering::Relaxed);
            match &s.bar {
                Some(bar) => {
                    let total = p.total_bytes.load(Ordering::Relaxed);
                    if total > 0 {
                        bar.set_length(total);
                    }
                    bar.set_position(bytes);
                    bar.set_message(p.current());
                }
                None if self.mode == ProgressMode::Lines => {
                    let (then, before) = s.last;
                    let dt = now.duration_since(then).as_secs_f64();
                    if dt > 0.0 {
                        let recent = bytes.saturating_sub(before) as f64 / dt;
                        // Smooth a little, so that one slow second does not
                        // swing the ETA.
                        s.rate = if s.rate == 0.0 {
                            recent
                        } else {
                            0.5 * s.rate + 0.5 * recent
                        };
                    }
                    s.last = (now, bytes);
                    writeln!(out, "{}", p.line(s.rate))?;
                }
                None => {}
            }
        }
        out.flush()
    }

    /// Prints `text` without tearing a bar.
    pub fn println(&self, out: &mut dyn Write, text: &str) -> std::io::Result<()> {
        match &self.multi {
            Some(multi) => multi.suspend(|| writeln!(out, "{text}").and_then(|()| out.flush())),
            None => writeln!(out, "{text}").and_then(|()| out.flush()),
        }
    }
}

/// Bytes in binary units: `512 B`, `3.2 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// Seconds as `42 s`, `3 min 20 s`, `2 h 5 min`.
pub fn human_duration(secs: f64) -> String {
    let s = secs.round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(1023), "1023 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 20), "5.0 MiB");
        assert_eq!(human_duration(4.4), "4 s");
        assert_eq!(human_duration(200.0), "3 min 20 s");
        assert_eq!(human_duration(7500.0), "2 h 5 min");
    }

    #[test]
    fn a_line_says_it_all() {
        let p = Progress::new("to 127.0.0.1:9");
        p.total_entries.store(4, Ordering::Relaxed);
        p.total_bytes.store(4 << 20, Ordering::Relaxed);
        p.entries.store(1, Ordering::Relaxed);
        p.bytes.store(1 << 20, Ordering::Relaxed);
        p.set_current("a/b.bin");
        let line = p.line(1024.0 * 1024.0);
        assert_eq!(
            line,
            "to 127.0.0.1:9: 1/4 files, 1.0 MiB of 4.0 MiB (25%), 1.0 MiB/s, ETA 3 s, a/b.bin"
        );
    }
}
