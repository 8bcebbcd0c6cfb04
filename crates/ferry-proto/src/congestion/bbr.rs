//! BBR: congestion control by a model of the path.
//!
//! The controller keeps two numbers about the path: the bottleneck bandwidth
//! (`max_bw`, the largest delivery-rate sample of the last ten round trips)
//! and the round-trip propagation time (`min_rtt`, the smallest RTT sample of
//! the last ten seconds). It paces at `pacing_gain × max_bw` and keeps at most
//! `cwnd_gain × max_bw × min_rtt` (the bandwidth-delay product, BDP) in flight.
//!
//! - **Startup** paces at 2/ln 2 ≈ 2.89 × `max_bw`, doubling the delivery rate
//!   each round trip, until `max_bw` grew less than 25% over three rounds
//!   (or over one round that lost more than 2%): the pipe is full.
//! - **Drain** paces at the inverse gain until the queue Startup built is gone
//!   (inflight ≤ BDP, or an RTT sample within 1/8 of `min_rtt`).
//! - **ProbeBw** cycles through eight phases of about one `min_rtt`: 1.25
//!   (probe for more bandwidth), 0.75 (drain what the probe queued), then six
//!   at 1.0 (cruise). Each session starts the cycle at its own phase. On a
//!   path that loses a fraction `p` of its packets at random, the probe's gain
//!   is `1.25 / (1 − p)` so that it can still deliver 25% more than `max_bw`.
//!   While a queue stands at the bottleneck (even the smallest RTT of a round
//!   well above `min_rtt`, as when flows sharing it each keep their own
//!   peak), cruise paces at 0.8 to drain it.
//! - **ProbeRtt**: when `min_rtt` was not refreshed for ten seconds, inflight
//!   drops to half a BDP for 200 ms and one round trip so that the queue
//!   empties and the true propagation time shows.
//!
//! Loss (after BBRv2): random loss leaves the model alone — the window is not
//! cut per loss, so a path that loses 5% of its packets still runs at 95% of
//! its rate. Each round trip's loss rate is compared with the path's usual
//! rate (a moving average over rounds that neither probed nor saw a queue). A
//! round that loses much more than usual (more than 2%, and more than twice
//! the usual plus 1%) while probing, or while the RTT shows a standing queue,
//! means the bottleneck queue overflowed: inflight is capped (`inflight_hi`)
//! at 85% of the round's peak (not below one BDP), at most once per ProbeBw
//! cycle. Each cycle whose probe found no excess loss raises the cap by twice
//! the previous step, starting at one packet; past four BDP the cap is lifted.
//! After persistent congestion (two retransmission timeouts) the window is
//! four packets until a round trip completes.

use std::time::{Duration, Instant};

use super::{AckEvent, CongestionControl, Controller, LossEvent, initial_window};

/// Startup's pacing gain: 2/ln 2, the smallest that doubles the delivery
/// rate every round trip.
const STARTUP_GAIN: f64 = 2.885;
/// Drain's pacing gain: the inverse, which empties Startup's queue in a round.
const DRAIN_GAIN: f64 = 1.0 / STARTUP_GAIN;
/// Inflight allowed, in bandwidth-delay products (room for delayed and
/// stretched acks).
const CWND_GAIN: f64 = 2.0;
/// ProbeBw's pacing gains, one phase of about `min_rtt` each.
const CYCLE: [f64; 8] = [1.25, 0.75, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0];
/// Cruise's pacing gain while a queue stands at the bottleneck.
const CRUISE_DRAIN_GAIN: f64 = 0.8;
/// The highest probing gain, whatever the usual loss rate.
const MAX_PROBE_GAIN: f64 = 2.0;
/// `max_bw` is the largest sample of this many round trips.
const BW_ROUNDS: usize = 10;
/// The round trip the window is sized to is never taken below this.
const MIN_WINDOW_RTT: Duration = Duration::from_millis(4);

/// `min_rtt` expires after this long without a sample as small.
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// How long ProbeRtt holds inflight low (plus one round trip).
const PROBE_RTT_TIME: Duration = Duration::from_millis(200);
/// Fewest packets in flight BBR ever allows.
const MIN_PIPE_PACKETS: u64 = 4;
/// The pipe is full when `max_bw` grew less than this over `FULL_BW_ROUNDS`.
const FULL_BW_GROWTH: f64 = 1.25;
const FULL_BW_ROUNDS: u32 = 3;
/// A round losing more than this (and more than twice the usual) is congested.
const LOSS_THRESH: f64 = 0.02;
/// Rounds whose loss the usual rate is learned from before it is trusted.
const BASELINE_ROUNDS: u32 = 4;
/// Fewest packets a round must lose to count as congested.
const LOSS_MIN_PACKETS: u64 = 3;
/// Fewest packets a round must carry for its loss rate to mean anything.
const ROUND_MIN_PACKETS: u64 = 20;

/// BBR's state machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Startup,
    Drain,
    ProbeBw,
    ProbeRtt,
}

/// A BBR controller for one session.
#[derive(Debug, Clone)]
pub(crate) struct Bbr {
    mss: u64,
    mode: Mode,
    window: u64,
    /// The largest delivery rate of each of the last rounds, bytes/s.
    bw: [u64; BW_ROUNDS],
    bw_slot: usize,
    min_rtt: Option<Duration>,
    min_rtt_stamp: Option<Instant>,
    round_count: u64,
    next_round_delivered: u64,
    round_start: bool,
    full_bw: u64,
    full_bw_rounds: u32,
    /// `max_bw` when the previous round ended.
    last_round_bw: u64,
    filled_pipe: bool,
    pacing_gain: f64,
    cwnd_gain: f64,
    pacing_rate: u64,
    cycle_index: usize,
    cycle_stamp: Option<Instant>,
    /// Bytes lost during the current ProbeBw phase.
    phase_lost: u64,
    probe_rtt_done: Option<Instant>,
    probe_rtt_round_done: bool,
    /// The window to return to after ProbeRtt or a timeout.
    prior_window: u64,
    /// After a retransmission timeout: the window stays small until a round
    /// trip completes.
    timed_out: bool,
    // Loss accounting, per round trip.
    round_acked: u64,
    round_lost: u64,
    round_peak_inflight: u64,
    round_probed: bool,
    prev_round_probed: bool,
    /// The smallest RTT sample of the round.
    round_min_rtt: Option<Duration>,
    /// The last round that did not probe saw a queue.
    standing_queue: bool,
    /// Inflight was capped during the current ProbeBw cycle already.
    cut_this_cycle: bool,
    /// The path's usual loss rate, learned from rounds that were not congested.
    loss_baseline: f64,
    baseline_rounds: u32,
    /// Inflight cap set by congestion loss (`u64::MAX`: none).
    inflight_hi: u64,
    /// The cap before the last cut, while the losses behind it may still
    /// prove spurious.
    inflight_hi_before_cut: Option<u64>,
    /// How much the cap grows after the next cycle without congestion.
    probe_step: u64,
    seed: u64,
}

impl Bbr {
    pub(crate) fn new(mss: usize, seed: u64) -> Self {
        let mss = mss as u64;
        Self {
            mss,
            mode: Mode::Startup,
            window: initial_window(mss),
            bw: [0; BW_ROUNDS],
            bw_slot: 0,
            min_rtt: None,
            min_rtt_stamp: None,
            round_count: 0,
            next_round_delivered: 0,
            round_start: false,
            full_bw: 0,
            full_bw_rounds: 0,
            last_round_bw: 0,
            filled_pipe: false,
            pacing_gain: STARTUP_GAIN,
            cwnd_gain: CWND_GAIN,
            pacing_rate: 0,
            cycle_index: 0,
            cycle_stamp: None,
            phase_lost: 0,
            probe_rtt_done: None,
            probe_rtt_round_done: false,
            prior_window: 0,
            timed_out: false,
            round_acked: 0,
            round_lost: 0,
            round_peak_inflight: 0,
            round_probed: false,
            prev_round_probed: false,
            round_min_rtt: None,
            standing_queue: false,
            cut_this_cycle: false,
            loss_baseline: 0.0,
            baseline_rounds: 0,
            inflight_hi: u64::MAX,
            inflight_hi_before_cut: None,
            probe_step: mss,
            seed,
        }
    }

    #[cfg(test)]
    pub(crate) fn mode(&self) -> Mode {
        self.mode
    }

    fn max_bw(&self) -> u64 {
        self.bw.iter().copied().max().unwrap_or(0)
    }

    fn min_pipe(&self) -> u64 {
        MIN_PIPE_PACKETS * self.mss
    }

    /// The bandwidth-delay product times `gain`, bytes; `None` before the
    /// model has both numbers.
    fn bdp(&self, gain: f64) -> Option<u64> {
        let bw = self.max_bw();
        // Hosts deliver acks in batches on the scale of a timer tick or an
        // interrupt coalescing interval: a window sized to a sub-millisecond
        // round trip (loopback, a LAN) starves the pipe while the next batch
        // is on its way. (Linux's BBR measures this aggregation; a floor of a
        // few milliseconds covers it on the paths where it matters: on
        // loopback, 1 ms gave about 1.2 GB/s and 4 ms 2.2 GB/s.)
        let rtt = self.min_rtt?.max(MIN_WINDOW_RTT);
        if bw == 0 {
            return None;
        }
        Some((bw as f64 * rtt.as_secs_f64() * gain) as u64)
    }

    fn probe_rtt_window(&self) -> u64 {
        self.bdp(0.5).unwrap_or(0).max(self.min_pipe())
    }

    fn enter_probe_bw(&mut self, now: Instant) {
        self.mode = Mode::ProbeBw;
        self.cwnd_gain = CWND_GAIN;
        // Start anywhere but the drain phase, differently per session, so that
        // flows sharing a bottleneck do not probe in step.
        let start = (self.seed % 7) as usize;
        self.cycle_index = if start >= 1 { start + 1 } else { 0 };
        self.pacing_gain = self.cycle_gain();
        self.cycle_stamp = Some(now);
        self.phase_lost = 0;
    }

    /// The pacing gain of the current ProbeBw phase. A probe must deliver a
    /// quarter more than `max_bw`; where a fraction `p` of what is sent is
    /// lost at random, it has to send `1.25 / (1 − p)` times as much (else
    /// under heavy random loss the estimate could only ever drift down).
    fn cycle_gain(&self) -> f64 {
        let gain = CYCLE[self.cycle_index];
        if gain > 1.0 {
            (gain / (1.0 - self.loss_baseline)).min(MAX_PROBE_GAIN)
        } else {
            gain
        }
    }

    fn advance_cycle(&mut self, now: Instant) {
        self.cycle_index = (self.cycle_index + 1) % CYCLE.len();
        self.pacing_gain = self.cycle_gain();
        if self.cycle_index == 0 {
            self.cut_this_cycle = false;
        }
        self.cycle_stamp = Some(now);
        self.phase_lost = 0;
    }

    fn check_cycle(&mut self, now: Instant, prior_inflight: u64) {
        if self.mode != Mode::ProbeBw {
            return;
        }
        let Some(rtt) = self.min_rtt else { return };
        let elapsed = self
            .cycle_stamp
            .is_none_or(|s| now.saturating_duration_since(s) > rtt);
        let gain = self.pacing_gain;
        let next = if gain > 1.0 {
            // Probe until the pipe held the extra, or loss said it cannot.
            let target = self.bdp(gain).unwrap_or(0);
            elapsed && (prior_inflight >= target || self.phase_lost > 0 || self.window < target)
        } else if gain < 1.0 {
            elapsed || prior_inflight <= self.bdp(1.0).unwrap_or(0)
        } else {
            elapsed
        };
        if next {
            self.advance_cycle(now);
        }
    }

    /// At the end of each round trip: was the pipe full, was the round congested?
    fn on_round_end(&mut self, now: Instant, rate_app_limited: bool) {
        let carried = self.round_acked + self.round_lost;
        let loss = if carried >= ROUND_MIN_PACKETS * self.mss {
            Some(self.round_lost as f64 / carried as f64)
        } else {
            None
        };
        let lost_enough = self.round_lost >= LOSS_MIN_PACKETS * self.mss;
        let bw = self.max_bw();
        if !self.filled_pipe {
            // The delivery rate stopped doubling and the round lost much: the
            // queue overflowed. (Checked even when the samples are
            // application-limited: a sender that runs out of data in bursts
            // can still overflow the queue at Startup's gain.)
            let stalled = (bw as f64) < self.last_round_bw as f64 * FULL_BW_GROWTH;
            if stalled && lost_enough && loss.is_some_and(|l| l > LOSS_THRESH) {
                self.filled_pipe = true;
            }
        }
        if !self.filled_pipe && !rate_app_limited {
            if bw as f64 >= self.full_bw as f64 * FULL_BW_GROWTH {
                self.full_bw = bw;
                self.full_bw_rounds = 0;
            } else {
                self.full_bw_rounds += 1;
                if self.full_bw_rounds >= FULL_BW_ROUNDS {
                    self.filled_pipe = true;
                }
            }
        }
        self.last_round_bw = bw;
        // Losses show a round trip after their packets left: a round that
        // began while probing, or followed one that did, answers for the probe.
        let probing = self.round_probed || self.prev_round_probed;
        // A queue stands at the bottleneck: even the round's smallest RTT is
        // well above min_rtt (jitter raises some samples, not all). Random
        // loss on a path paced at its rate comes without one.
        let queued = self.min_rtt.is_some_and(|m| {
            self.round_min_rtt
                .is_some_and(|r| r > m + m / 4 + Duration::from_millis(1))
        });
        self.standing_queue = queued && !probing;
        if self.mode == Mode::ProbeBw {
            let threshold = LOSS_THRESH.max(2.0 * self.loss_baseline + 0.01);
            let congested = (probing || queued)
                && self.baseline_rounds >= BASELINE_ROUNDS
                && lost_enough
                && loss.is_some_and(|l| l > threshold);
            if congested {
                // The probe overflowed the queue: cap inflight below where it
                // was (once per cycle), and stop probing.
                if !self.cut_this_cycle {
                    // Never below one BDP of this flow's own estimate: the
                    // cap trims the queue, the bandwidth model keeps the share.
                    let cap = ((self.round_peak_inflight as f64 * 0.85) as u64)
                        .max(self.bdp(1.0).unwrap_or(0));
                    self.inflight_hi_before_cut = Some(self.inflight_hi);
                    self.inflight_hi = self.inflight_hi.min(cap).max(self.min_pipe());
                    self.cut_this_cycle = true;
                    self.probe_step = self.mss;
                }
                if self.pacing_gain > 1.0 {
                    self.advance_cycle(now);
                }
                tracing::trace!(?loss, threshold, cap = self.inflight_hi, "bbr: congestion");
            } else {
                if !probing
                    && !queued
                    && let Some(loss) = loss
                {
                    // The usual loss rate, learned while not probing.
                    self.loss_baseline = if self.baseline_rounds == 0 {
                        loss
                    } else {
                        self.loss_baseline + (loss - self.loss_baseline) / 8.0
                    };
                    self.baseline_rounds += 1;
                }
                if self.round_probed && !self.cut_this_cycle && self.inflight_hi != u64::MAX {
                    // A probe that found no excess loss: the cap grows back,
                    // by one packet after the first such cycle, two after the
                    // next, then four...: small overflows near the limit,
                    // quick recovery far from it, and the same steps for
                    // every flow (which is what makes them converge).
                    self.inflight_hi = self.inflight_hi.saturating_add(self.probe_step);
                    self.probe_step = self.probe_step.saturating_mul(2);
                    if self.bdp(4.0).is_some_and(|limit| self.inflight_hi > limit) {
                        self.inflight_hi = u64::MAX;
                    }
                }
            }
        }
        self.round_acked = 0;
        self.round_lost = 0;
        self.round_peak_inflight = 0;
        self.round_min_rtt = None;
        self.prev_round_probed = self.round_probed;
        self.round_probed = self.pacing_gain > 1.0;
    }

    fn check_drain(&mut self, now: Instant, inflight: u64, rtt: Option<Duration>) {
        if self.mode == Mode::Startup && self.filled_pipe {
            self.mode = Mode::Drain;
            self.pacing_gain = DRAIN_GAIN;
            self.cwnd_gain = CWND_GAIN;
        }
        if self.mode != Mode::Drain {
            return;
        }
        // The queue is gone when inflight fits the pipe — or when a packet
        // came back as fast as the path allows: inflight may still count
        // packets Startup's overflow lost that loss detection has not
        // declared yet, and waiting for them would leave the link idle.
        let fits = self.bdp(1.0).is_none_or(|bdp| inflight <= bdp);
        let empty = rtt
            .zip(self.min_rtt)
            .is_some_and(|(r, m)| r <= m + m / 8 + Duration::from_millis(1));
        if fits || empty {
            self.enter_probe_bw(now);
        }
    }

    fn update_min_rtt(&mut self, now: Instant, sample: Option<Duration>, inflight: u64) {
        let expired = self.min_rtt_stamp.is_some_and(|s| now > s + MIN_RTT_WINDOW);
        if let Some(rtt) = sample
            && (self.min_rtt.is_none_or(|m| rtt <= m) || expired)
        {
            self.min_rtt = Some(rtt);
            self.min_rtt_stamp = Some(now);
        }
        if expired && self.mode != Mode::ProbeRtt {
            self.mode = Mode::ProbeRtt;
            self.pacing_gain = 1.0;
            self.cwnd_gain = 1.0;
            self.prior_window = self.prior_window.max(self.window);
            self.probe_rtt_done = None;
        }
        if self.mode == Mode::ProbeRtt {
            match self.probe_rtt_done {
                None if inflight <= self.probe_rtt_window() => {
                    self.probe_rtt_done = Some(now + PROBE_RTT_TIME);
                    self.probe_rtt_round_done = false;
                    self.next_round_delivered = 0; // set on the next ack's round check
                }
                None => {}
                Some(done) => {
                    if self.round_start {
                        self.probe_rtt_round_done = true;
                    }
                    if self.probe_rtt_round_done && now >= done {
                        self.min_rtt_stamp = Some(now);
                        self.window = self.window.max(self.prior_window);
                        self.prior_window = 0;
                        if self.filled_pipe {
                            self.enter_probe_bw(now);
                        } else {
                            self.mode = Mode::Startup;
                            self.pacing_gain = STARTUP_GAIN;
                            self.cwnd_gain = CWND_GAIN;
                        }
                    }
                }
            }
        }
    }

    fn update_window(&mut self, acked: u64, total_delivered: u64) {
        let target = self
            .bdp(self.cwnd_gain)
            .map_or(initial_window(self.mss), |b| b + 3 * self.mss);
        if self.timed_out {
            // Packet conservation until a round trip completes.
            self.window = self.min_pipe();
        } else if self.filled_pipe {
            self.window = (self.window + acked).min(target);
        } else if self.window < target || total_delivered < initial_window(self.mss) {
            self.window += acked;
        }
        self.window = self.window.min(self.inflight_hi);
        if self.mode == Mode::ProbeRtt {
            self.window = self.window.min(self.probe_rtt_window());
        }
        self.window = self.window.max(self.min_pipe());
    }
}

impl Controller for Bbr {
    fn kind(&self) -> CongestionControl {
        CongestionControl::Bbr
    }

    fn window(&self) -> u64 {
        self.window
    }

    fn pacing_rate(&self, srtt: Duration) -> Option<u64> {
        if self.pacing_rate > 0 {
            // Never slower than the smallest window per RTT: a model measured
            // while the peer's flow control held the sender back must not
            // hold it back once the credit comes.
            let floor = super::window_rate(self.min_pipe(), srtt, 100);
            return Some(self.pacing_rate.max(floor));
        }
        // No bandwidth sample yet: the initial window over the RTT, at
        // Startup's gain.
        Some(super::window_rate(
            initial_window(self.mss),
            srtt,
            (STARTUP_GAIN * 100.0) as u64,
        ))
    }

    fn bandwidth(&self) -> Option<u64> {
        Some(self.max_bw()).filter(|&b| b > 0)
    }

    fn on_sent(&mut self, _now: Instant, _bytes: u64, bytes_in_flight: u64) {
        self.round_peak_inflight = self.round_peak_inflight.max(bytes_in_flight);
    }

    fn on_packet_acked(&mut self, _now: Instant, _sent: Instant, bytes: u64) {
        self.round_acked += bytes;
    }

    fn on_loss(&mut self, event: &LossEvent) {
        self.round_lost += event.bytes_lost;
        self.phase_lost += event.bytes_lost;
    }

    fn undo_loss(&mut self) {
        // The losses counted were late packets: they say nothing of a queue.
        self.round_lost = 0;
        self.phase_lost = 0;
        if let Some(before) = self.inflight_hi_before_cut.take() {
            self.inflight_hi = self.inflight_hi.max(before);
        }
        if self.timed_out {
            self.timed_out = false;
            self.window = self.window.max(self.prior_window);
            self.prior_window = 0;
        }
    }

    fn on_timeout(&mut self, _now: Instant) {
        self.prior_window = self.prior_window.max(self.window);
        self.timed_out = true;
        self.window = self.min_pipe();
    }

    fn on_ack(&mut self, event: &AckEvent) {
        let now = event.now;
        let Some(rs) = event.rate else {
            return;
        };
        // Round trips: one ends when a packet sent after it began is acknowledged.
        self.round_start = false;
        if rs.prior_delivered >= self.next_round_delivered {
            self.next_round_delivered = rs.total_delivered;
            self.round_count += 1;
            self.round_start = true;
            self.on_round_end(now, rs.app_limited);
            self.bw_slot = (self.bw_slot + 1) % BW_ROUNDS;
            self.bw[self.bw_slot] = 0;
            if self.timed_out {
                self.timed_out = false;
                self.window = self.window.max(self.prior_window);
                self.prior_window = 0;
            }
        }
        if let Some(rate) = rs.rate()
            && (!rs.app_limited || rate >= self.max_bw())
        {
            self.bw[self.bw_slot] = self.bw[self.bw_slot].max(rate);
        }
        if let Some(rtt) = event.rtt_sample {
            self.round_min_rtt = Some(self.round_min_rtt.map_or(rtt, |r| r.min(rtt)));
        }
        let prior_inflight = event.bytes_in_flight + event.bytes_acked;
        self.check_cycle(now, prior_inflight);
        self.check_drain(now, event.bytes_in_flight, event.rtt_sample);
        self.update_min_rtt(now, event.rtt_sample, event.bytes_in_flight);
        let bw = self.max_bw();
        if bw > 0 {
            let mut gain = self.pacing_gain;
            if self.mode == Mode::ProbeBw && gain == 1.0 && self.standing_queue {
                // Cruising into a queue that does not drain (flows sharing the
                // bottleneck each keep their own peak): drain it, so that the
                // flows are paced rather than window-limited and converge.
                gain = CRUISE_DRAIN_GAIN;
            }
            let rate = (bw as f64 * gain) as u64;
            if self.filled_pipe || rate > self.pacing_rate {
                self.pacing_rate = rate.max(1);
            }
        }
        self.update_window(event.bytes_acked, rs.total_delivered);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::congestion::RateSample;

    const MSS: u64 = 1000;

    /// A fluid model of one flow over a bottleneck of `bw` bytes/s with a
    /// `rtt` propagation delay and an unbounded queue: each step acks one
    /// round trip's worth of data.
    struct Path {
        bbr: Bbr,
        now: Instant,
        delivered: u64,
        bw: u64,
        rtt: Duration,
        /// Extra delay of a queue someone else keeps at the bottleneck.
        standing: Duration,
    }

    impl Path {
        fn new(bw: u64, rtt: Duration) -> Self {
            Self {
                bbr: Bbr::new(MSS as usize, 3),
                now: crate::test_support::epoch(),
                delivered: 0,
                bw,
                rtt,
                standing: Duration::ZERO,
            }
        }

        /// One round trip: the flow sends what its window and pacing allow,
        /// the bottleneck delivers at most `bw × rtt` of it, `loss` of it is lost.
        fn round(&mut self, loss: f64) -> u64 {
            let rtt = self.rtt;
            let paced = self.bbr.pacing_rate(rtt).unwrap() as f64 * rtt.as_secs_f64();
            let sent = (self.bbr.window() as f64).min(paced) as u64;
            let through = sent.min(self.bw * rtt.as_millis() as u64 / 1000);
            // The queue adds delay when the flow sends more than the pipe holds.
            let queue =
                Duration::from_secs_f64(sent.saturating_sub(through) as f64 / self.bw as f64)
                    + self.standing;
            let lost = (through as f64 * loss) as u64;
            let acked = through - lost;
            let prior = self.delivered;
            self.bbr.on_sent(self.now, sent, sent);
            self.now += rtt + queue;
            if lost > 0 {
                self.bbr.on_loss(&LossEvent {
                    now: self.now,
                    largest_sent: self.now,
                    bytes_lost: lost,
                });
            }
            // Acks arrive in ten batches over the round.
            for _ in 0..10 {
                self.bbr.on_packet_acked(self.now, self.now, acked / 10);
                self.delivered += acked / 10;
                self.bbr.on_ack(&AckEvent {
                    now: self.now,
                    bytes_acked: acked / 10,
                    bytes_in_flight: 0,
                    srtt: rtt + queue,
                    rtt_sample: Some(rtt + queue),
                    rate: Some(RateSample {
                        delivered: self.delivered - prior,
                        interval: Some(rtt + queue),
                        prior_delivered: prior,
                        total_delivered: self.delivered,
                        app_limited: false,
                    }),
                });
            }
            acked
        }
    }

    #[test]
    fn startup_fills_the_pipe_then_drains_and_cruises() {
        let mut p = Path::new(10_000_000, Duration::from_millis(50));
        assert_eq!(p.bbr.mode(), Mode::Startup);
        let mut rounds = 0;
        while p.bbr.mode() == Mode::Startup {
            p.round(0.0);
            rounds += 1;
            assert!(rounds < 30, "startup never ended: {:?}", p.bbr);
        }
        // 500 kB BDP from a 10 kB window: ~6 doublings, then 3 flat rounds.
        assert!((6..=14).contains(&rounds), "{rounds} rounds");
        let bw = p.bbr.bandwidth().unwrap();
        // (The fluid model stretches the sample interval by the queue it builds.)
        assert!((7_000_000..=10_100_000).contains(&bw), "{bw}");
        for _ in 0..5 {
            p.round(0.0);
        }
        assert_eq!(p.bbr.mode(), Mode::ProbeBw);
        // cwnd = 2 BDP (+ 3 packets) of the model.
        let bdp = p.bbr.bandwidth().unwrap() / 20;
        assert_eq!(p.bbr.window(), 2 * bdp + 3 * MSS);
    }

    #[test]
    fn random_loss_does_not_shrink_the_model() {
        let mut p = Path::new(10_000_000, Duration::from_millis(50));
        for _ in 0..40 {
            p.round(0.05);
        }
        assert_eq!(p.bbr.mode(), Mode::ProbeBw);
        let bw = p.bbr.bandwidth().unwrap();
        // Delivery rate sees 95% of the link (the model's intervals stretch
        // a little more).
        assert!(bw >= 8_500_000, "{bw}");
        assert_eq!(
            p.bbr.inflight_hi,
            u64::MAX,
            "random loss is not congestion: {:?}",
            p.bbr
        );
        assert!(p.bbr.window() >= 800_000, "{}", p.bbr.window());
    }

    #[test]
    fn heavy_loss_over_the_usual_caps_inflight() {
        let mut p = Path::new(10_000_000, Duration::from_millis(50));
        for _ in 0..30 {
            p.round(0.01);
        }
        assert_eq!(p.bbr.inflight_hi, u64::MAX);
        // More loss without a queue is more random loss: learned, not feared.
        for _ in 0..2 {
            p.round(0.05);
        }
        assert_eq!(p.bbr.inflight_hi, u64::MAX);
        // Something else fills the queue (the RTT rises by 30 ms) and a
        // quarter of each round is dropped: congestion.
        p.standing = Duration::from_millis(30);
        for _ in 0..3 {
            p.round(0.25);
        }
        assert!(p.bbr.inflight_hi < u64::MAX, "{:?}", p.bbr);
        assert!(p.bbr.window() <= p.bbr.inflight_hi);
    }

    #[test]
    fn probe_rtt_after_ten_seconds_without_a_lower_rtt() {
        let mut p = Path::new(10_000_000, Duration::from_millis(50));
        for _ in 0..20 {
            p.round(0.0);
        }
        assert_eq!(p.bbr.mode(), Mode::ProbeBw);
        // Every later sample is a little higher than min_rtt.
        p.rtt = Duration::from_millis(51);
        let mut saw_probe_rtt = false;
        for _ in 0..400 {
            p.round(0.0);
            if p.bbr.mode() == Mode::ProbeRtt {
                saw_probe_rtt = true;
                assert!(p.bbr.window() <= 300_000, "{}", p.bbr.window());
            }
        }
        assert!(saw_probe_rtt);
        assert_eq!(p.bbr.mode(), Mode::ProbeBw, "ProbeRtt ends");
        assert_eq!(p.bbr.min_rtt, Some(Duration::from_millis(51)));
    }

    #[test]
    fn timeout_shrinks_then_restores() {
        let mut p = Path::new(10_000_000, Duration::from_millis(50));
        for _ in 0..20 {
            p.round(0.0);
        }
        let w = p.bbr.window();
        p.bbr.on_timeout(p.now);
        assert_eq!(p.bbr.window(), 4 * MSS);
        p.round(0.0);
        p.round(0.0);
        assert!(p.bbr.window() >= w * 9 / 10, "{} vs {w}", p.bbr.window());
    }
}
