//! The efficiency suite, in the simulator's virtual time: goodput as a
//! fraction of link capacity over a 100 Mbit/s bottleneck at 0, 1, 5, 10 and
//! 20% random loss (both directions) and 10 and 100 ms RTT, and over a
//! 1 Gbit/s one at 100 ms RTT. Each row's baseline is `(1 − loss) ×
//! capacity`: what a sender that never wasted a packet could deliver.
//!
//! Transfers use `ferry_sim::Efficiency` (one session, 1 MiB messages, every
//! byte checked) with the default configuration, whose congestion controller
//! is BBR; CUBIC and NewReno follow on the 100 ms path at 0 and 1% loss, for
//! comparison. The bottleneck queue holds
//! 84 ms of traffic at either rate (1 MiB at 100 Mbit/s, 10 MiB at 1 Gbit/s).
//! Transfers are long (400 MB at 100 Mbit/s, 1000 MB at 1 Gbit/s by default)
//! so that the figure is the steady state's: the handshake and the start-up
//! ramp (about 0.7 s on a 100 ms path) and the repair tail cost a fixed
//! second or so, 12% of a 100 MB transfer at 100 Mbit/s but 3% of 400 MB. Virtual
//! time costs real time only as computation: the note gives both.
//!
//! Then, for each controller (BBR, CUBIC, NewReno), one row per network
//! profile (`ferry_sim::Profile`: jitter at RTT/16, /8 and /4, 1% and 5%
//! reordering, burst loss, long fat, satellite, Wi-Fi, flapping), the same
//! size (the 1 Gbit/s size on the long fat path), named `sim: <profile>
//! (<controller>)`. Its baseline is the same transfer over the same path
//! without the impairment (`Profile::unimpaired`: same bandwidth, round trip
//! and queue, nothing else), the row `sim: unimpaired <rate>, <rtt> ms
//! (<controller>)`, so the ratio is what the impairment itself costs; a
//! second ratio sets it beside what the profile allows
//! (`Profile::allows_bps`, `bandwidth × (1 − loss) × (1 − outage duty
//! cycle)`). Notes give retransmissions and spurious retransmissions (data
//! the receiver got twice) per packet sent.

use std::time::{Duration, Instant};

use ferry_proto::CongestionControl;
use ferry_sim::{Efficiency, EfficiencyReport, Profile};

use crate::report::Table;

/// Sizes of the transfers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    /// MB per transfer at 100 Mbit/s.
    pub(crate) mb: usize,
    /// MB per transfer at 1 Gbit/s.
    pub(crate) gbit_mb: usize,
}

/// One cell of the grid.
struct Cell {
    controller: CongestionControl,
    bps: u64,
    rtt_ms: u64,
    loss: f64,
}

const LOSSES: [f64; 5] = [0.0, 0.01, 0.05, 0.10, 0.20];

pub(crate) fn run(settings: Settings) -> Result<Table, String> {
    let mut table = Table::new("efficiency");
    eprintln!(
        "efficiency suite (virtual time): {} MB per transfer at 100 Mbit/s, {} MB at 1 Gbit/s",
        settings.mb, settings.gbit_mb
    );
    let mut cells = Vec::new();
    for rtt_ms in [10, 100] {
        for loss in LOSSES {
            cells.push(Cell {
                controller: CongestionControl::default(),
                bps: 100_000_000,
                rtt_ms,
                loss,
            });
        }
    }
    for loss in [0.0, 0.01, 0.05] {
        cells.push(Cell {
            controller: CongestionControl::default(),
            bps: 1_000_000_000,
            rtt_ms: 100,
            loss,
        });
    }
    for controller in [CongestionControl::Cubic, CongestionControl::NewReno] {
        for loss in [0.0, 0.01] {
            cells.push(Cell {
                controller,
                bps: 100_000_000,
                rtt_ms: 100,
                loss,
            });
        }
    }
    for cell in cells {
        let mb = if cell.bps >= 1_000_000_000 {
            settings.gbit_mb
        } else {
            settings.mb
        };
        let queue = (cell.bps as f64 / 8.0 * 0.084) as usize;
        let started = Instant::now();
        let outcome = Efficiency::new(
            cell.controller,
            cell.bps,
            Duration::from_millis(cell.rtt_ms),
            cell.loss,
        )
        .bytes(mb << 20)
        .queue(queue.max(1 << 20))
        .run();
        let report = outcome.transfer;
        let real = started.elapsed();
        if report.mismatched != 0 {
            return Err(format!(
                "the simulator delivered {} wrong message(s): a bug",
                report.mismatched
            ));
        }
        let capacity = cell.bps as f64 / 1e6;
        let goodput = report.goodput_bps() / 1e6;
        let rate = if cell.bps >= 1_000_000_000 {
            "1 Gbit/s"
        } else {
            "100 Mbit/s"
        };
        let percent = |x: f64| format!("{:.0}%", x * 100.0);
        table.add_against(
            format!(
                "sim: {}{rate}, {} ms, {} loss",
                if cell.controller == CongestionControl::default() {
                    String::new()
                } else {
                    format!("{} ", cell.controller)
                },
                cell.rtt_ms,
                percent(cell.loss)
            ),
            goodput,
            "Mbit/s",
            (
                format!("(1 − {}) × {capacity:.0}", percent(cell.loss)),
                (1.0 - cell.loss) * capacity,
            ),
            format!(
                "{:.1}% of capacity; {mb} MB in {:.1} s virtual, {:.1} s real; {:.1}% resent{}",
                goodput / capacity * 100.0,
                report.elapsed.as_secs_f64(),
                real.as_secs_f64(),
                report.client.retransmitted as f64 / report.client.packets_sent.max(1) as f64
                    * 100.0,
                if report.complete() {
                    ""
                } else {
                    "; INCOMPLETE"
                }
            ),
        );
    }
    profiles(settings, &mut table)?;
    Ok(table)
}

/// A bit rate as the rows name it.
fn rate(bps: u64) -> String {
    if bps >= 1_000_000_000 {
        format!("{} Gbit/s", bps as f64 / 1e9)
    } else {
        format!("{} Mbit/s", bps / 1_000_000)
    }
}

/// Runs one cell; fails on wrong data.
fn measure(cell: &Efficiency) -> Result<(EfficiencyReport, Duration), String> {
    let started = Instant::now();
    let outcome = cell.run();
    if outcome.transfer.mismatched != 0 {
        return Err(format!(
            "the simulator delivered {} wrong message(s): a bug",
            outcome.transfer.mismatched
        ));
    }
    Ok((outcome, started.elapsed()))
}

/// The note of a profile's or an unimpaired row.
fn note(r: &EfficiencyReport, allows: f64, mb: usize, real: Duration) -> String {
    format!(
        "{:.1}% of allowed; {:.2}% resent, {:.2}% spurious; {mb} MB in {:.1} s virtual, {:.1} s real{}",
        r.goodput_bps / allows * 100.0,
        r.retransmitted * 100.0,
        r.spurious * 100.0,
        r.elapsed.as_secs_f64(),
        real.as_secs_f64(),
        if r.complete {
            String::new()
        } else {
            format!(
                "; INCOMPLETE: {} of {} messages, closed: {:?}",
                r.transfer.delivered, r.transfer.expected, r.transfer.closed
            )
        }
    )
}

/// One row per profile and controller, each after the unimpaired row of its
/// path (measured once per path and controller).
fn profiles(settings: Settings, table: &mut Table) -> Result<(), String> {
    for controller in [
        CongestionControl::Bbr,
        CongestionControl::Cubic,
        CongestionControl::NewReno,
    ] {
        let mut paths = Vec::new();
        for &profile in Profile::all() {
            let mb = if profile.bandwidth_bps() >= 1_000_000_000 {
                settings.gbit_mb
            } else {
                settings.mb
            };
            let cell = Efficiency::profile(controller, profile).bytes(mb << 20);
            let path = format!(
                "{}, {} ms",
                rate(profile.bandwidth_bps()),
                profile.rtt().as_millis()
            );
            let clean_name = format!("sim: unimpaired {path} ({controller})");
            let key = (cell.bandwidth_bps, cell.rtt, cell.queue_bytes, cell.bytes);
            if !paths.contains(&key) {
                paths.push(key);
                let clean = cell.unimpaired();
                let (r, real) = measure(&clean)?;
                let capacity = profile.bandwidth_bps() as f64 / 1e6;
                table.add_against(
                    clean_name.clone(),
                    r.goodput_bps / 1e6,
                    "Mbit/s",
                    (format!("capacity {capacity:.0}"), capacity),
                    format!(
                        "{} KiB queue; {}",
                        cell.queue_bytes >> 10,
                        note(&r, clean.allows_bps(), mb, real)
                    ),
                );
            }
            let (r, real) = measure(&cell)?;
            let allows = profile.allows_bps();
            table
                .add(
                    format!("sim: {profile} ({controller})"),
                    r.goodput_bps / 1e6,
                    "Mbit/s",
                    Some(&clean_name),
                    format!("{path}; {}", note(&r, allows, mb, real)),
                )
                .also_value(
                    format!("{profile} allows {:.1}", allows / 1e6),
                    allows / 1e6,
                );
        }
    }
    Ok(())
}
