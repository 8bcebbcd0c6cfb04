//! Admission control: how many new sessions one source address may start per
//! second.
//!
//! Each new session costs the listener state and, with a key, a
//! Diffie-Hellman computation, so one host must not be able to start them
//! without bound. Sources are counted per IP address (a host can pick any
//! port) in one-second windows. The table of sources is bounded too: when a
//! flood of (possibly spoofed) addresses fills it within a window, connects
//! from addresses not yet in it are refused until the window ends, which
//! bounds the listener's work at `MAX_SOURCES × limit` handshakes per second.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// Source addresses remembered per one-second window.
pub(crate) const MAX_SOURCES: usize = 4096;

const WINDOW: Duration = Duration::from_secs(1);

/// New-session counts per source address in the current window.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    window_start: Option<Instant>,
    counts: HashMap<IpAddr, u32>,
}

impl Admission {
    /// Whether `source` may start one more session at `now` under `limit` per
    /// second (0: no limit); counts it if so.
    pub(crate) fn admit(&mut self, now: Instant, source: IpAddr, limit: u32) -> bool {
        if limit == 0 {
            return true;
        }
        if self
            .window_start
            .is_none_or(|start| now.saturating_duration_since(start) >= WINDOW)
        {
            self.window_start = Some(now);
            self.counts.clear();
        }
        let full = self.counts.len() >= MAX_SOURCES;
        match self.counts.get_mut(&source) {
            Some(count) if *count >= limit => false,
            Some(count) => {
                *count += 1;
                true
            }
            None if full => false,
            None => {
                self.counts.insert(source, 1);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(n: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(n))
    }

    #[test]
    fn limit_per_source_per_second() {
        let t0 = crate::test_support::epoch();
        let mut a = Admission::default();
        for _ in 0..3 {
            assert!(a.admit(t0, ip(1), 3));
        }
        assert!(!a.admit(t0, ip(1), 3), "the fourth in the same second");
        assert!(a.admit(t0, ip(2), 3), "another source is not affected");
        assert!(a.admit(t0 + WINDOW, ip(1), 3), "a new second");
        assert!(a.admit(t0, ip(1), 0), "0 means no limit");
    }

    #[test]
    fn the_table_of_sources_is_bounded() {
        let t0 = crate::test_support::epoch();
        let mut a = Admission::default();
        for n in 0..MAX_SOURCES as u32 {
            assert!(a.admit(t0, ip(n), 1));
        }
        assert!(
            !a.admit(t0, ip(u32::MAX), 1),
            "a full table refuses newcomers"
        );
        assert_eq!(a.counts.len(), MAX_SOURCES);
        assert!(a.admit(t0 + WINDOW, ip(u32::MAX), 1));
        assert_eq!(a.counts.len(), 1);
    }
}
