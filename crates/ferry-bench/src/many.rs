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
        let one = bulk::transfer(Kind::Tokio, 1, settings.single_mib << 20, settings.mtu)?;
        let name = "many: ferry tokio, one session".to_owned();
        table.add(
            &name,
            one.mb_per_s(),
            "MB/s",
            None,
            format!("{} MiB (the bulk suite did not run)", settings.single_mib),
        );
        name
    };
    let outcome = bulk::transfer(
        Kind::Tokio,
        settings.sessions,
        settings.mib_each << 20,
        settings.mtu,
    )?;
    table.add(
        format!("many: {} sessions, aggregate", settings.sessions),
        outcome.mb_per_s(),
        "MB/s",
        Some(&baseline),
        format!(
            "{} MiB each, {} MiB in all, tokio",
            settings.mib_each,
            settings.mib_each * settings.sessions as u64
        ),
    );
    table.add(
        format!("many: {} sessions CPU", settings.sessions),
        outcome.cpu_per_gb(),
        "s/GB",
        Some(&format!("{} CPU", bulk::TOKIO)),
        format!("{}, handshakes included", cpu_note(&outcome)),
    );
    Ok(table)
}

fn cpu_note(outcome: &bulk::Outcome) -> String {
    format!(
        "sender {:.2} s + receiver {:.2} s",
        outcome.send_cpu.as_secs_f64(),
        outcome.recv_cpu.as_secs_f64()
    )
}
