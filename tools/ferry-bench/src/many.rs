//! The many-sessions suite: one client endpoint opening many concurrent
//! sessions (1,000 by default) to one server endpoint, each moving 1 MiB, on
//! tokio; the aggregate goodput beside the one-session bulk figure of the
//! same run.
//!
//! The layout is the bulk suite's (`bulk-role`, two processes, current-thread
//! runtimes). The client connects every session first, then queues each
//! session's data in turn, so all of them move at once; the clock runs from
//! the first byte queued until the server, having counted each session's
//! bytes, has closed every session. The server reads each session in a task
//! of its own.

use crate::bulk::{self, Kind};
use crate::report::{Report, Table};

/// Settings of the suite.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) sessions: usize,
    pub(crate) mib_each: u64,
    pub(crate) mtu: usize,
    /// Size of the one-session transfer, should the bulk suite not run.
    pub(crate) single_mib: u64,
    /// Transfers per row; the row is their median.
    pub(crate) repeat: usize,
}

pub(crate) fn run(settings: Settings, report: &Report) -> Result<Table, String> {
    let mut table = Table::new("many");
    eprintln!(
        "many suite: {} sessions on one endpoint pair, {} MiB each, tokio",
        settings.sessions, settings.mib_each
    );
    let baseline = if report.value(bulk::TOKIO).is_some() {
        bulk::TOKIO.to_owned()
    } else {
        let (one, spread) = bulk::median(
            Kind::Tokio,
            1,
            settings.single_mib << 20,
            settings.mtu,
            settings.repeat,
        )?;
        let name = "many: ferry tokio, one session".to_owned();
        table.add(
            &name,
            one.mb_per_s(),
            "MB/s",
            None,
            format!(
                "{} MiB (the bulk suite did not run){spread}",
                settings.single_mib
            ),
        );
        name
    };
    let (outcome, spread) = bulk::median(
        Kind::Tokio,
        settings.sessions,
        settings.mib_each << 20,
        settings.mtu,
        settings.repeat,
    )?;
    table.add(
        format!("many: {} sessions, aggregate", settings.sessions),
        outcome.mb_per_s(),
        "MB/s",
        Some(&baseline),
        format!(
            "{} MiB each, {} MiB in all, tokio{spread}",
            settings.mib_each,
            settings.mib_each * settings.sessions as u64
        ),
    );
    table.add(
        format!("many: {} sessions CPU", settings.sessions),
        outcome.cpu_per_gb(),
        "s/GB",
        Some(&format!("{} CPU", bulk::TOKIO)),
        format!("{}, handshakes included", outcome.cpu_note()),
    );
    Ok(table)
}
