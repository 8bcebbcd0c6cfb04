//! Resident memory, sampled over the run, and whether it stayed flat.

use std::fmt;
use std::time::Duration;

/// The process's resident set size in bytes (Linux; `None` elsewhere).
pub(crate) fn rss_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// RSS samples over time.
#[derive(Debug, Default)]
pub(crate) struct Samples {
    points: Vec<(Duration, u64)>,
}

/// What the samples say.
#[derive(Debug)]
pub(crate) struct Verdict {
    /// Memory stayed within bounds after warm-up (or too few samples to say
    /// otherwise).
    pub(crate) flat: bool,
    text: String,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl Samples {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    pub(crate) fn push(&mut self, at: Duration, rss: Option<u64>) {
        if let Some(rss) = rss {
            self.points.push((at, rss));
        }
    }

    /// The first quarter of the run is warm-up; the median of the next
    /// quarter is compared with the median of the last. Memory is flat when
    /// the last is at most 25% + 16 MiB above the first.
    pub(crate) fn verdict(&self) -> Verdict {
        let n = self.points.len();
        if n < 8 {
            return Verdict {
                flat: true,
                text: format!("{n} samples, too few to judge a trend (run longer)"),
            };
        }
        let quarter = n / 4;
        let early = median(&self.points[quarter..2 * quarter]);
        let late = median(&self.points[n - quarter..]);
        let peak = self.points.iter().map(|p| p.1).max().unwrap_or(0);
        let limit = early + early / 4 + (16 << 20);
        let mib = |b: u64| b as f64 / (1 << 20) as f64;
        let per_minute = slope_per_minute(&self.points[quarter..]);
        let flat = late <= limit;
        Verdict {
            flat,
            text: format!(
                "rss after warm-up {:.1} MiB, at the end {:.1} MiB (limit {:.1}), peak {:.1} MiB, trend {:+.2} MiB/min: {}",
                mib(early),
                mib(late),
                mib(limit),
                mib(peak),
                per_minute / (1 << 20) as f64,
                if flat { "flat" } else { "GROWING" }
            ),
        }
    }
}

fn median(points: &[(Duration, u64)]) -> u64 {
    let mut v: Vec<u64> = points.iter().map(|p| p.1).collect();
    v.sort_unstable();
    v[v.len() / 2]
}

/// Least-squares slope of RSS over time, in bytes per minute.
fn slope_per_minute(points: &[(Duration, u64)]) -> f64 {
    let n = points.len() as f64;
    let xs: Vec<f64> = points.iter().map(|p| p.0.as_secs_f64() / 60.0).collect();
    let ys: Vec<f64> = points.iter().map(|p| p.1 as f64).collect();
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(&ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if var == 0.0 { 0.0 } else { cov / var }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(f: impl Fn(u64) -> u64) -> Samples {
        let mut s = Samples::new();
        for i in 0..40 {
            s.push(Duration::from_secs(i * 5), Some(f(i)));
        }
        s
    }

    #[test]
    fn flat_memory_passes_and_growth_fails() {
        let mib = 1u64 << 20;
        // Warm-up growth, then flat with noise.
        assert!(
            samples(|i| if i < 10 {
                i * 5 * mib
            } else {
                50 * mib + (i % 3) * mib
            })
            .verdict()
            .flat
        );
        // A steady leak of 2 MiB per sample.
        let leak = samples(|i| 50 * mib + i * 2 * mib).verdict();
        assert!(!leak.flat, "{leak}");
        assert!(rss_bytes().is_some_and(|b| b > 0));
    }
}
