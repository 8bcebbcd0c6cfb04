//! Path MTU discovery: packetization-layer PMTUD (DPLPMTUD, RFC 8899), as
//! quinn does it. Sans-IO: the session reports what it sent, what was
//! acknowledged and what was lost, with the time; this module says which
//! size to probe next and which size data packets use.
//!
//! A session starts at its **base** size, the handshake's MTU (which the
//! padded Connect proved the path carries), and searches upward to the
//! configured upper bound, [`Config::max_mtu`](crate::Config::max_mtu):
//!
//! - **Search.** The first probe of a search is the upper bound itself (on
//!   a path that carries it, one round trip finds it), then a binary search
//!   between the confirmed size and the largest size not known to fail. A
//!   size is confirmed when its probe is acknowledged; data packets use it
//!   from then on. [`MAX_PROBE_LOSSES`] lost probes of a size mark it too
//!   large. The search ends when the next step would gain less than
//!   [`MIN_PROBE_STEP`] bytes, and starts again [`SEARCH_INTERVAL`] later
//!   (the path may have changed).
//! - **Probes** are padding only: their loss costs no data and is not
//!   congestion (the session neither retransmits nor tells its controller).
//!   One is in flight at a time.
//! - **Black holes.** When packets larger than the base keep getting lost
//!   while smaller ones arrive — [`BLACK_HOLE_LOSSES`] lost, none of the
//!   larger ones sent after the first of them acknowledged, and something
//!   sent after it acknowledged — the path no longer carries the size in
//!   use: back to the base, and search again after [`BLACK_HOLE_COOLDOWN`].
//!   With the losses but no such evidence yet, the session sends a ping
//!   (small) to get some: a path that drops everything (an outage) is not a
//!   black hole.

use std::time::{Duration, Instant};

use tracing::debug;

/// Probes of one size lost before that size is taken as too large.
pub(crate) const MAX_PROBE_LOSSES: u32 = 3;
/// A search ends when its next probe would be less than this many bytes
/// larger than the confirmed size.
pub(crate) const MIN_PROBE_STEP: usize = 20;
/// After a search ends, the next starts this much later (quinn's 600 s).
pub(crate) const SEARCH_INTERVAL: Duration = Duration::from_secs(600);
/// After a black hole, the search starts again this much later.
pub(crate) const BLACK_HOLE_COOLDOWN: Duration = Duration::from_secs(60);
/// Lost packets larger than the base, sent after the last such packet
/// acknowledged, that make a black hole (with evidence that smaller packets
/// still arrive).
pub(crate) const BLACK_HOLE_LOSSES: u32 = 6;

/// Where the search stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// The upper bound is not above the base: nothing to discover.
    Off,
    /// Probing. The confirmed size is the current one.
    Search {
        /// The largest size not known to fail.
        upper: usize,
        /// The size probed now.
        size: usize,
        /// Probes of `size` lost so far.
        losses: u32,
        /// The packet number of the probe in flight, if one is.
        in_flight: Option<u64>,
    },
    /// No search until then.
    Idle { until: Instant },
}

/// What an acknowledged probe changed (see [`MtuDiscovery::on_probe_acked`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Confirmed {
    /// Nothing: not the probe in flight, or no larger than the current size.
    Nothing,
    /// The current size grew.
    Grew,
    /// The current size grew for the first time on this path, during its
    /// first search: early, when a congestion controller built for the
    /// base size has learned little, and may start again for the new size.
    FirstGrowth,
}

/// What the session should do after losses (see [`MtuDiscovery::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// Nothing.
    Fine,
    /// Large packets go missing but nothing shows that small ones arrive:
    /// send a (small) ping, whose acknowledgement would.
    Ping,
    /// A black hole: the MTU fell back to the base.
    BlackHole,
}

/// Tells an MTU black hole from congestion: which large packets were lost
/// after the last one that arrived.
#[derive(Debug, Clone, Default)]
struct BlackHoleDetector {
    /// The largest number of an acknowledged non-probe packet larger than
    /// the base.
    large_acked: Option<u64>,
    /// Non-probe packets larger than the base declared lost, sent after
    /// `large_acked`.
    suspects: u32,
    /// The smallest number among them.
    first_suspect: Option<u64>,
    /// When a ping was last asked for, for evidence.
    pinged: Option<Instant>,
}

/// One session's path MTU discovery.
#[derive(Debug, Clone)]
pub(crate) struct MtuDiscovery {
    base: usize,
    max: usize,
    current: usize,
    phase: Phase,
    detector: BlackHoleDetector,
    /// The path's first search is under way.
    first_search: bool,
}

impl MtuDiscovery {
    /// Discovery on a new path: `base` is carried, up to `max` may be; the
    /// first search starts at once.
    pub(crate) fn new(base: usize, max: usize) -> Self {
        let phase = if max > base {
            Phase::Search {
                upper: max,
                size: max,
                losses: 0,
                in_flight: None,
            }
        } else {
            Phase::Off
        };
        Self {
            base,
            max,
            current: base,
            first_search: phase != Phase::Off,
            phase,
            detector: BlackHoleDetector::default(),
        }
    }

    /// The size every packet may have: the handshake's.
    pub(crate) fn base(&self) -> usize {
        self.base
    }

    /// The largest size confirmed: what data packets use.
    pub(crate) fn current(&self) -> usize {
        self.current
    }

    /// Whether a probe is in flight.
    pub(crate) fn probing(&self) -> bool {
        matches!(
            self.phase,
            Phase::Search {
                in_flight: Some(_),
                ..
            }
        )
    }

    /// The size to probe now, if a probe is due (at most one is in flight).
    pub(crate) fn probe_size(&mut self, now: Instant) -> Option<usize> {
        if let Phase::Idle { until } = self.phase
            && now >= until
        {
            self.phase = self.search_from_top(now);
        }
        match self.phase {
            Phase::Search {
                size,
                in_flight: None,
                ..
            } => Some(size),
            _ => None,
        }
    }

    /// The probe of [`probe_size`](Self::probe_size) left as packet `pn`.
    pub(crate) fn on_probe_sent(&mut self, pn: u64) {
        if let Phase::Search { in_flight, .. } = &mut self.phase {
            *in_flight = Some(pn);
        }
    }

    /// Probe `pn` was acknowledged: its size is confirmed.
    pub(crate) fn on_probe_acked(&mut self, now: Instant, pn: u64) -> Confirmed {
        let Phase::Search {
            upper,
            size,
            in_flight: Some(probe),
            ..
        } = self.phase
        else {
            return Confirmed::Nothing;
        };
        if probe != pn {
            return Confirmed::Nothing;
        }
        let confirmed = if size <= self.current {
            Confirmed::Nothing
        } else if self.first_search && self.current == self.base {
            Confirmed::FirstGrowth
        } else {
            Confirmed::Grew
        };
        self.current = self.current.max(size);
        debug!(mtu = self.current, "path MTU probe acknowledged");
        self.phase = self.next_step(now, upper);
        confirmed
    }

    /// Probe `pn` was declared lost (its loss is not congestion).
    pub(crate) fn on_probe_lost(&mut self, now: Instant, pn: u64) {
        let Phase::Search {
            upper,
            size,
            losses,
            in_flight: Some(probe),
        } = self.phase
        else {
            return;
        };
        if probe != pn {
            return;
        }
        if losses + 1 < MAX_PROBE_LOSSES {
            self.phase = Phase::Search {
                upper,
                size,
                losses: losses + 1,
                in_flight: None,
            };
            return;
        }
        debug!(
            size,
            "path MTU probes lost: the path does not carry this size"
        );
        self.phase = self.next_step(now, size - 1);
    }

    /// A packet other than a probe, of `size` bytes, was acknowledged.
    pub(crate) fn on_acked(&mut self, pn: u64, size: usize) {
        if size <= self.base {
            return;
        }
        let d = &mut self.detector;
        d.large_acked = d.large_acked.max(Some(pn));
        if d.first_suspect.is_some_and(|first| pn > first) {
            // A large packet sent after the losses arrived: they were not
            // about its size.
            d.suspects = 0;
            d.first_suspect = None;
        }
    }

    /// A packet other than a probe, of `size` bytes, was declared lost.
    pub(crate) fn on_lost(&mut self, pn: u64, size: usize) {
        let d = &mut self.detector;
        if size > self.base && d.large_acked.is_none_or(|acked| pn > acked) {
            d.suspects += 1;
            d.first_suspect = Some(d.first_suspect.map_or(pn, |first| first.min(pn)));
        }
    }

    /// After losses: whether they show a black hole. `largest_acked` is the
    /// largest packet number the peer acknowledged (of any kind); a ping is
    /// asked for at most once per `ping_every`.
    pub(crate) fn check(
        &mut self,
        now: Instant,
        largest_acked: Option<u64>,
        ping_every: Duration,
    ) -> Check {
        let d = &mut self.detector;
        let Some(first) = d.first_suspect else {
            return Check::Fine;
        };
        if self.current == self.base {
            // Nothing to fall back from (what was lost predates a fallback).
            self.detector = BlackHoleDetector::default();
            return Check::Fine;
        }
        if d.suspects < BLACK_HOLE_LOSSES {
            return Check::Fine;
        }
        if largest_acked.is_some_and(|l| l > first) {
            debug!(
                lost = d.suspects,
                mtu = self.current,
                base = self.base,
                "path MTU black hole: large packets lost while small ones arrive"
            );
            self.current = self.base;
            self.detector = BlackHoleDetector::default();
            self.first_search = false;
            self.phase = if self.max > self.base {
                Phase::Idle {
                    until: now + BLACK_HOLE_COOLDOWN,
                }
            } else {
                Phase::Off
            };
            return Check::BlackHole;
        }
        if d.pinged.is_some_and(|at| now < at + ping_every) {
            return Check::Fine;
        }
        d.pinged = Some(now);
        Check::Ping
    }

    /// A new search from the current size up to the upper bound, or none if
    /// the current size is the upper bound.
    fn search_from_top(&self, now: Instant) -> Phase {
        if self.current >= self.max {
            return Phase::Idle {
                until: now + SEARCH_INTERVAL,
            };
        }
        Phase::Search {
            upper: self.max,
            size: self.max,
            losses: 0,
            in_flight: None,
        }
    }

    /// The next probe of a binary search between the current size and
    /// `upper`, or the end of the search.
    fn next_step(&mut self, now: Instant, upper: usize) -> Phase {
        if upper < self.current + MIN_PROBE_STEP {
            debug!(mtu = self.current, "path MTU search done");
            self.first_search = false;
            return Phase::Idle {
                until: now + SEARCH_INTERVAL,
            };
        }
        Phase::Search {
            upper,
            size: self.current + (upper - self.current).div_ceil(2),
            losses: 0,
            in_flight: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        crate::test_support::epoch()
    }

    const SECOND: Duration = Duration::from_secs(1);

    /// Runs a search on a path that carries `limit` bytes, a probe per
    /// second; returns the sizes probed and the MTU it settled at.
    fn search(d: &mut MtuDiscovery, limit: usize, start: Instant) -> (Vec<usize>, Instant) {
        let mut probed = Vec::new();
        let mut now = start;
        let mut pn = 100;
        while let Some(size) = d.probe_size(now) {
            probed.push(size);
            d.on_probe_sent(pn);
            now += SECOND;
            if size <= limit {
                d.on_probe_acked(now, pn);
            } else {
                d.on_probe_lost(now, pn);
            }
            pn += 1;
            assert!(probed.len() < 100, "a search that never ends: {probed:?}");
        }
        (probed, now)
    }

    #[test]
    fn a_path_that_carries_the_upper_bound_is_confirmed_with_one_probe() {
        let mut d = MtuDiscovery::new(1200, 1452);
        assert_eq!(d.current(), 1200);
        let (probed, _) = search(&mut d, 1472, t0());
        assert_eq!(probed, vec![1452]);
        assert_eq!(d.current(), 1452);
    }

    #[test]
    fn three_lost_probes_of_a_size_mark_it_too_large_and_the_search_settles_near_the_limit() {
        let mut d = MtuDiscovery::new(1200, 1452);
        // An IPv4 path of MTU 1280: 1252 bytes of UDP payload.
        let (probed, _) = search(&mut d, 1252, t0());
        assert_eq!(&probed[..3], &[1452; 3], "the top first, three times");
        assert!(d.current() <= 1252, "{probed:?}");
        assert!(d.current() + MIN_PROBE_STEP > 1252, "{probed:?}");
        // Every size that failed was tried exactly three times.
        for size in &probed {
            let tries = probed.iter().filter(|s| *s == size).count();
            assert_eq!(tries, if *size > 1252 { 3 } else { 1 }, "{probed:?}");
        }
    }

    #[test]
    fn a_path_that_carries_only_the_base_keeps_the_base() {
        let mut d = MtuDiscovery::new(1200, 1452);
        let (probed, _) = search(&mut d, 1200, t0());
        assert_eq!(d.current(), 1200);
        assert!(probed.iter().all(|&s| s > 1200 && s <= 1452));
        assert!(probed.len() <= 3 * 5, "{probed:?}");
    }

    #[test]
    fn jumbo_and_loopback_bounds_are_searched_the_same_way() {
        for (max, limit) in [(8952, 8952), (65_507, 65_507), (8952, 4000)] {
            let mut d = MtuDiscovery::new(1200, max);
            search(&mut d, limit, t0());
            assert!(d.current() <= limit && d.current() + MIN_PROBE_STEP > limit);
        }
    }

    #[test]
    fn nothing_is_probed_when_the_upper_bound_is_not_above_the_base() {
        for max in [1000, 1200] {
            let mut d = MtuDiscovery::new(1200, max);
            assert_eq!(d.probe_size(t0()), None);
            assert_eq!(d.probe_size(t0() + SEARCH_INTERVAL * 2), None);
            assert_eq!(d.current(), 1200);
        }
    }

    #[test]
    fn only_the_first_growth_of_a_paths_first_search_is_early() {
        let mut d = MtuDiscovery::new(1200, 1452);
        let confirm = |d: &mut MtuDiscovery, pn, carried: bool| {
            d.probe_size(t0()).unwrap();
            d.on_probe_sent(pn);
            if carried {
                d.on_probe_acked(t0(), pn)
            } else {
                d.on_probe_lost(t0(), pn);
                Confirmed::Nothing
            }
        };
        for pn in 0..3 {
            confirm(&mut d, pn, false);
        }
        assert_eq!(confirm(&mut d, 3, true), Confirmed::FirstGrowth);
        assert_eq!(confirm(&mut d, 4, true), Confirmed::Grew);
        // A later search's growth is not early.
        let mut d = MtuDiscovery::new(1200, 1452);
        let (_, done) = search(&mut d, 1200, t0());
        let later = done + SEARCH_INTERVAL;
        assert_eq!(d.probe_size(later), Some(1452));
        d.on_probe_sent(9);
        assert_eq!(d.on_probe_acked(later, 9), Confirmed::Grew);
    }

    #[test]
    fn one_probe_is_in_flight_at_a_time() {
        let mut d = MtuDiscovery::new(1200, 1452);
        assert_eq!(d.probe_size(t0()), Some(1452));
        d.on_probe_sent(7);
        assert!(d.probing());
        assert_eq!(d.probe_size(t0()), None);
        // An acknowledgement of another packet number is not the probe's.
        assert_eq!(d.on_probe_acked(t0(), 8), Confirmed::Nothing);
        d.on_probe_lost(t0(), 8);
        assert!(d.probing());
        d.on_probe_lost(t0(), 7);
        assert_eq!(d.probe_size(t0()), Some(1452), "the same size again");
    }

    #[test]
    fn a_completed_search_starts_again_after_ten_minutes_from_the_top() {
        let mut d = MtuDiscovery::new(1200, 1452);
        let (_, done) = search(&mut d, 1400, t0());
        let settled = d.current();
        assert_eq!(d.probe_size(done + SEARCH_INTERVAL - SECOND), None);
        // The path grew meanwhile.
        let (probed, _) = search(&mut d, 1500, done + SEARCH_INTERVAL);
        assert_eq!(probed, vec![1452]);
        assert!(d.current() > settled);
    }

    #[test]
    fn large_packets_lost_while_small_ones_arrive_make_a_black_hole_and_fall_back_to_the_base() {
        let mut d = MtuDiscovery::new(1200, 1452);
        search(&mut d, 1452, t0());
        let now = t0() + Duration::from_secs(30);
        d.on_acked(10, 1452);
        for pn in 11..11 + u64::from(BLACK_HOLE_LOSSES) {
            d.on_lost(pn, 1452);
        }
        // Nothing sent after the losses arrived (yet): no verdict, but a
        // ping to find out.
        assert_eq!(d.check(now, Some(10), SECOND), Check::Ping);
        assert_eq!(
            d.check(now, Some(10), SECOND),
            Check::Fine,
            "one per interval"
        );
        assert_eq!(d.current(), 1452);
        // The small ping (packet 30) arrived.
        assert_eq!(d.check(now, Some(30), SECOND), Check::BlackHole);
        assert_eq!(d.current(), 1200);
        assert_eq!(d.check(now, Some(30), SECOND), Check::Fine);
        // Searching resumes after the cooldown, from the top.
        assert_eq!(d.probe_size(now + BLACK_HOLE_COOLDOWN - SECOND), None);
        assert_eq!(d.probe_size(now + BLACK_HOLE_COOLDOWN), Some(1452));
    }

    #[test]
    fn losses_followed_by_an_acknowledged_large_packet_are_congestion_not_a_black_hole() {
        let mut d = MtuDiscovery::new(1200, 1452);
        search(&mut d, 1452, t0());
        for pn in 10..30 {
            d.on_lost(pn, 1452);
        }
        d.on_acked(31, 1452);
        assert_eq!(d.check(t0(), Some(40), SECOND), Check::Fine);
        // Losses of packets sent before a large one that arrived do not count.
        for pn in 20..30 {
            d.on_lost(pn, 1452);
        }
        assert_eq!(d.check(t0(), Some(40), SECOND), Check::Fine);
        // Nor do small packets' losses, whatever their number.
        for pn in 40..100 {
            d.on_lost(pn, 1200);
        }
        assert_eq!(d.check(t0(), Some(200), SECOND), Check::Fine);
        assert_eq!(d.current(), 1452);
    }

    #[test]
    fn a_probe_acknowledged_after_a_black_hole_confirms_nothing() {
        let mut d = MtuDiscovery::new(1200, 1452);
        let (_, done) = search(&mut d, 1400, t0());
        let now = done + SEARCH_INTERVAL;
        assert_eq!(d.probe_size(now), Some(1452));
        d.on_probe_sent(5);
        for pn in 6..6 + u64::from(BLACK_HOLE_LOSSES) {
            d.on_lost(pn, d.current());
        }
        assert_eq!(d.check(now, Some(50), SECOND), Check::BlackHole);
        assert_eq!(d.on_probe_acked(now, 5), Confirmed::Nothing);
        assert_eq!(d.current(), 1200);
    }

    #[test]
    fn losses_at_the_base_size_are_never_a_black_hole() {
        let mut d = MtuDiscovery::new(1200, 1452);
        for pn in 0..100 {
            d.on_lost(pn, 1300);
        }
        assert_eq!(d.check(t0(), Some(500), SECOND), Check::Fine);
        assert_eq!(d.probe_size(t0()), Some(1452), "the search goes on");
    }
}
