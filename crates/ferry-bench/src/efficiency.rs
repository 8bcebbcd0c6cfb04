//! The efficiency suite, in the simulator's virtual time: goodput as a
//! fraction of link capacity over a 100 Mbit/s bottleneck at 0, 1, 5, 10 and
//! 20% random loss (both directions) and 10 and 100 ms RTT, and over a
//! 1 Gbit/s one at 100 ms RTT. Each row's baseline is `(1 − loss) ×
//! capacity`: what a sender that never wasted a packet could deliver.
//!
//! Transfers use `ferry_sim::Transfer` (one session, 1 MiB messages, every
//! byte checked) with the default configuration. The bottleneck queue holds
//! 84 ms of traffic at either rate (1 MiB at 100 Mbit/s, 10 MiB at 1 Gbit/s).
//! At 1 Gbit/s the transfer is larger (500 MB by default) so that the
//! slow-start ramp, a few round trips, weighs little in the figure. Virtual
//! time costs real time only as computation: the note gives both.

use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_sim::{LinkConfig, Transfer};

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
                bps: 100_000_000,
                rtt_ms,
                loss,
            });
        }
    }
    for loss in [0.0, 0.01] {
        cells.push(Cell {
            bps: 1_000_000_000,
            rtt_ms: 100,
            loss,
        });
    }
    // 1 MiB messages; 256 distinct contents, so a misordered one shows.
    let contents: Vec<Bytes> = (0..=255u8).map(|i| Bytes::from(vec![i; 1 << 20])).collect();
    for cell in cells {
        let mb = if cell.bps >= 1_000_000_000 {
            settings.gbit_mb
        } else {
            settings.mb
        };
        let messages: Vec<Bytes> = (0..mb).map(|i| contents[i % 256].clone()).collect();
        let queue = (cell.bps as f64 / 8.0 * 0.084) as usize;
        let link = LinkConfig::default()
            .latency(Duration::from_millis(cell.rtt_ms / 2))
            .random_loss(cell.loss)
            .bandwidth(cell.bps)
            .queue_limit(queue.max(1 << 20));
        let started = Instant::now();
        let seed = cell.rtt_ms ^ (cell.loss * 1000.0) as u64 ^ cell.bps;
        let report = Transfer::new(seed, link).run(messages, Duration::from_secs(6 * 3600));
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
                "sim: {rate}, {} ms, {} loss",
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
    Ok(table)
}
