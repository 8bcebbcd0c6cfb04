//! The many-sessions suite: one client endpoint opening many concurrent
//! sessions (1,000 by default) to one server endpoint, on tokio, once per
//! session size (1 MiB and 16 MiB each by default, `--many-mib`); per size,
//! the aggregate goodput beside the one-session bulk figure of the same run,
//! and the CPU seconds per GB (client plus server) beside the one-session
//! CPU figure. The aim (issue 17) is a CPU ratio of at most 1.3.
//!
//! `--shards N` spreads both endpoints over N shards (`EndpointConfig::
//! shards`; 0 = one per core) on tokio's multi-thread runtime instead of a
//! current-thread one; the rows then name the shards. The server's shards
//! take sessions by client address (the kernel's hash): with one client
//! endpoint (one address) the server's sessions all land on one shard, so
//! `--many-clients K` deals the sessions among K client endpoints, each on
//! a port of its own (the rows then name them). The client's sessions spread
//! over its shards in turn, their acks handed over. Each side tells on
//! stderr how its sessions and hand-overs spread.
//!
//! The small size is mostly start-up, handshakes and closes; the large one
//! mostly steady state. With two sizes or more, two derived rows separate
//! them: the CPU the largest size took beyond the smallest, per GB more (the
//! steady state: start-up, handshakes and closes cancel out), and the rest,
//! spread over the sessions (the fixed cost of a session, with the two
//! processes' start-up).
//!
//! The layout is the bulk suite's (`bulk-role`, two processes, current-thread
//! runtimes). The client connects every session first, then queues each
//! session's data in turn, so all of them move at once; the clock runs from
//! the first byte queued until the server, having counted each session's
//! bytes, has closed every session. The server reads each session in a task
//! of its own. CPU time is each whole process's, handshakes included (as in
//! the bulk rows it is compared with).

use ferry_async::ShardStats;
use ferry_proto::{SessionId, Shard};

use crate::bulk::{self, Kind, Outcome};
use crate::report::{Report, Table};

/// Settings of the suite.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Concurrent sessions.
    pub(crate) sessions: usize,
    /// MiB per session, one transfer (and one pair of rows) each.
    pub(crate) mib_each: Vec<u64>,
    /// Ferry's MTU.
    pub(crate) mtu: usize,
    /// Size of the one-session transfer, should the bulk suite not run.
    pub(crate) single_mib: u64,
    /// Transfers per row; the row is their median.
    pub(crate) repeat: usize,
    /// Shards of each side's endpoint (0: one per core).
    pub(crate) shards: usize,
    /// Client endpoints the sessions are dealt among.
    pub(crate) clients: usize,
}

/// Runs the suite; `report` holds the suites run before it (the bulk
/// suite's one-session tokio rows are the baselines when it ran).
pub(crate) fn run(settings: &Settings, report: &Report) -> Result<Table, String> {
    let mut table = Table::new("many");
    let n = settings.sessions;
    let shards = ferry_async::EndpointConfig::default()
        .with_shards(settings.shards)
        .shard_count()
        .map_err(|e| e.to_string())?;
    let (kind, runtime) = if shards == 1 {
        (Kind::Tokio, "tokio current-thread")
    } else {
        (Kind::TokioMulti, "tokio multi-thread")
    };
    let clients = settings.clients.max(1);
    let spread = bulk::Spread { shards, clients };
    let mut per_endpoint = if shards == 1 {
        "1 shard".to_owned()
    } else {
        format!("{shards} shards")
    };
    if clients > 1 {
        per_endpoint = format!("{per_endpoint}, {clients} client endpoints");
    }
    eprintln!(
        "many suite: {n} sessions on one endpoint pair, {:?} MiB each, {runtime}, {per_endpoint} per endpoint",
        settings.mib_each
    );
    let (baseline, baseline_cpu) = one_session(settings, report, &mut table)?;
    let mut measured: Vec<(u64, Outcome)> = Vec::new();
    for &mib in &settings.mib_each {
        let mut name = if shards == 1 {
            format!("many: {n} sessions of {mib} MiB")
        } else {
            format!("many: {n} sessions of {mib} MiB, {shards} shards")
        };
        if clients > 1 {
            name = format!("{name}, {clients} clients");
        }
        let (outcome, spread) =
            match bulk::median(kind, n, mib << 20, settings.mtu, spread, settings.repeat) {
                Ok(measured) => measured,
                Err(e) => {
                    table.fail(format!("{name}, aggregate"), "MB/s", &e);
                    continue;
                }
            };
        table.add(
            format!("{name}, aggregate"),
            outcome.mb_per_s(),
            "MB/s",
            Some(&baseline),
            format!(
                "{} MiB in all, {runtime}, {per_endpoint} per endpoint{spread}",
                mib * n as u64
            ),
        );
        table.add(
            format!("{name} CPU"),
            outcome.cpu_per_gb(),
            "s/GB",
            Some(&baseline_cpu),
            format!(
                "{}, handshakes included; aim: ratio ≤ 1.3",
                outcome.cpu_note()
            ),
        );
        measured.push((mib, outcome));
    }
    steady_state(n, shards, &measured, &baseline_cpu, &mut table);
    Ok(table)
}

/// The names of the one-session rows (MB/s, CPU s/GB) the many rows are
/// compared with: the bulk suite's if it ran, else measured here.
fn one_session(
    settings: &Settings,
    report: &Report,
    table: &mut Table,
) -> Result<(String, String), String> {
    if report.value(bulk::TOKIO).is_some() {
        return Ok((bulk::TOKIO.to_owned(), format!("{} CPU", bulk::TOKIO)));
    }
    let (one, spread) = bulk::median(
        Kind::Tokio,
        1,
        settings.single_mib << 20,
        settings.mtu,
        bulk::Spread::ONE,
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
    let cpu = format!("{name} CPU");
    table.add(&cpu, one.cpu_per_gb(), "s/GB", None, one.cpu_note());
    Ok((name, cpu))
}

/// The two derived rows, from the smallest and the largest size measured
/// (nothing with fewer than two sizes): the CPU the larger took beyond the
/// smaller per GB more, and what is left per session.
fn steady_state(
    sessions: usize,
    shards: usize,
    measured: &[(u64, Outcome)],
    baseline_cpu: &str,
    table: &mut Table,
) {
    let (Some(small), Some(large)) = (
        measured.iter().min_by_key(|(mib, _)| *mib),
        measured.iter().max_by_key(|(mib, _)| *mib),
    ) else {
        return;
    };
    if large.0 == small.0 {
        return;
    }
    let cpu = |o: &Outcome| (o.send_cpu + o.recv_cpu).as_secs_f64();
    let extra_bytes = large.1.received as f64 - small.1.received as f64;
    if extra_bytes <= 0.0 {
        return;
    }
    // CPU = fixed + per_byte × bytes, through the two points.
    let per_byte = (cpu(&large.1) - cpu(&small.1)) / extra_bytes;
    let fixed = cpu(&small.1) - per_byte * small.1.received as f64;
    let sessions_name = if shards == 1 {
        format!("{sessions} sessions")
    } else {
        format!("{sessions} sessions, {shards} shards")
    };
    table.add(
        format!("many: {sessions_name}, steady-state CPU"),
        per_byte * 1e9,
        "s/GB",
        Some(baseline_cpu),
        format!(
            "the {} MiB run's CPU beyond the {} MiB run's, per GB more",
            large.0, small.0
        ),
    );
    table.add(
        format!("many: {sessions_name}, fixed CPU per session"),
        fixed / sessions as f64 * 1e6,
        "µs",
        None,
        "the rest: handshake, close, both processes' start-up, per session",
    );
}

/// With several shards, says on stderr how `side`'s sessions (`ids`) and
/// hand-overs spread over them.
pub(crate) fn tell_shards(side: &str, ids: &[SessionId], stats: &[ShardStats]) {
    if stats.len() <= 1 {
        return;
    }
    let mut sessions = vec![0; stats.len()];
    for &id in ids {
        sessions[usize::from(Shard::of(id, stats.len() as u8))] += 1;
    }
    let handed: Vec<_> = stats.iter().map(|s| s.handed_over).collect();
    let dropped: u64 = stats.iter().map(|s| s.inbox_dropped).sum();
    eprintln!(
        "{side}: {} shards, sessions per shard {sessions:?}, datagrams handed over to each {handed:?}, dropped at full inboxes {dropped}",
        stats.len()
    );
}
