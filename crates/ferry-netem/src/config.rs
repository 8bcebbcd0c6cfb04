//! The conditions of a link: [`LinkConfig`], its loss model, [`Loss`], and its
//! periodic outages, [`Blackhole`].

use std::time::Duration;

/// IPv4 and UDP headers: what an IPv4 link's MTU loses before the UDP
/// payload ([`LinkConfig::ip_mtu`]).
pub const IPV4_UDP_OVERHEAD: usize = 28;

/// Default bottleneck queue limit of [`LinkConfig::default`]: 1 MiB.
pub const DEFAULT_QUEUE_LIMIT_BYTES: usize = 1 << 20;

/// How datagrams are lost.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Loss {
    /// No random loss.
    #[default]
    None,
    /// Each datagram is lost independently with this probability (0.0..=1.0).
    Random(f64),
    /// Gilbert–Elliott two-state burst loss: a Markov chain with a good and a bad state,
    /// evaluated once per datagram.
    ///
    /// For every datagram the chain first takes one transition step, then the datagram
    /// is lost with the loss probability of the (new) current state. The chain starts in
    /// the good state.
    GilbertElliott {
        /// Probability of moving from the good to the bad state at each datagram.
        p_good_to_bad: f64,
        /// Probability of moving from the bad to the good state at each datagram.
        p_bad_to_good: f64,
        /// Probability that a datagram is lost while the chain is in the good state.
        loss_in_good: f64,
        /// Probability that a datagram is lost while the chain is in the bad state.
        loss_in_bad: f64,
    },
}

impl Loss {
    /// Gilbert–Elliott loss in bursts: every datagram of a bad run is lost and none
    /// of a good run, the long-run loss rate is `average` and bad runs last
    /// `mean_burst` datagrams on average (geometrically distributed).
    ///
    /// That is `p_bad_to_good = 1 / mean_burst` and
    /// `p_good_to_bad = average · p_bad_to_good / (1 − average)`, so good runs last
    /// `mean_burst · (1 − average) / average` datagrams on average.
    ///
    /// ```
    /// use ferry_netem::Loss;
    ///
    /// let loss = Loss::bursts(0.02, 5.0);
    /// assert!((loss.expected_loss_rate() - 0.02).abs() < 1e-12);
    /// assert!((loss.mean_burst() - 5.0).abs() < 1e-12);
    /// ```
    ///
    /// # Panics
    ///
    /// Panics unless `0 < average < 1` and `mean_burst >= 1`.
    pub fn bursts(average: f64, mean_burst: f64) -> Loss {
        assert!(
            average > 0.0 && average < 1.0,
            "average loss must be in (0, 1), got {average}"
        );
        assert!(
            mean_burst >= 1.0,
            "mean burst must be >= 1, got {mean_burst}"
        );
        let p_bad_to_good = 1.0 / mean_burst;
        Loss::GilbertElliott {
            p_good_to_bad: (average * p_bad_to_good / (1.0 - average)).min(1.0),
            p_bad_to_good,
            loss_in_good: 0.0,
            loss_in_bad: 1.0,
        }
    }

    /// Mean length, in datagrams, of a run of consecutive losses.
    ///
    /// For [`Loss::Random`] with probability `p` runs are geometric with mean
    /// `1 / (1 − p)`; for [`Loss::GilbertElliott`] with `loss_in_good = 0` and
    /// `loss_in_bad = 1` it is the mean bad run, `1 / p_bad_to_good` (other
    /// Gilbert–Elliott chains have no closed form here and report that same
    /// figure, the mean time spent in the bad state). [`Loss::None`] and a
    /// certain loss have no runs to measure: 0 and infinity.
    pub fn mean_burst(&self) -> f64 {
        match *self {
            Loss::None => 0.0,
            Loss::Random(p) if p <= 0.0 => 0.0,
            Loss::Random(p) => 1.0 / (1.0 - p),
            Loss::GilbertElliott { p_bad_to_good, .. } => 1.0 / p_bad_to_good,
        }
    }

    /// Long-run fraction of datagrams this model loses.
    ///
    /// For [`Loss::GilbertElliott`] this is the stationary loss rate
    /// `π_good · loss_in_good + π_bad · loss_in_bad` with
    /// `π_bad = p_good_to_bad / (p_good_to_bad + p_bad_to_good)`. If both transition
    /// probabilities are zero the chain never leaves the good state.
    pub fn expected_loss_rate(&self) -> f64 {
        match *self {
            Loss::None => 0.0,
            Loss::Random(p) => p,
            Loss::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_in_good,
                loss_in_bad,
            } => {
                let total = p_good_to_bad + p_bad_to_good;
                let pi_bad = if total > 0.0 {
                    p_good_to_bad / total
                } else {
                    0.0
                };
                (1.0 - pi_bad) * loss_in_good + pi_bad * loss_in_bad
            }
        }
    }

    fn validate(&self) -> Result<(), String> {
        match *self {
            Loss::None => Ok(()),
            Loss::Random(p) => check_probability("loss", p),
            Loss::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_in_good,
                loss_in_bad,
            } => {
                check_probability("loss.p_good_to_bad", p_good_to_bad)?;
                check_probability("loss.p_bad_to_good", p_bad_to_good)?;
                check_probability("loss.loss_in_good", loss_in_good)?;
                check_probability("loss.loss_in_bad", loss_in_bad)
            }
        }
    }
}

fn check_probability(name: &str, p: f64) -> Result<(), String> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!(
            "{name} must be a probability in 0.0..=1.0, got {p}"
        ))
    }
}

/// Periodic outages: during each one the link drops every datagram sent into it.
///
/// Outages repeat every [`Blackhole::period`] and last [`Blackhole::duration`];
/// the first begins [`Blackhole::offset`] after the link's origin, the instant of
/// the first datagram it was sent (or the one given to
/// [`Link::set_origin`](crate::Link::set_origin)). A datagram sent at `t` is
/// dropped when `(t − origin − offset) mod period < duration` and
/// `t ≥ origin + offset`; datagrams already in flight are not affected (the
/// outage is at the link's entrance, like its loss). Outages draw no random
/// numbers: they are the same in every run, and the datagrams they drop are
/// counted in [`LinkStats::blackholed`](crate::LinkStats::blackholed).
///
/// ```
/// use std::time::Duration;
/// use ferry_netem::Blackhole;
///
/// // 200 ms dark every 5 s, the first from 1 s on.
/// let flap = Blackhole::every(Duration::from_secs(5), Duration::from_millis(200))
///     .offset(Duration::from_secs(1));
/// assert!((flap.duty_cycle() - 0.04).abs() < 1e-12);
/// assert!(!flap.covers(Duration::from_millis(999)));
/// assert!(flap.covers(Duration::from_millis(1_000)));
/// assert!(flap.covers(Duration::from_millis(6_199)));
/// assert!(!flap.covers(Duration::from_millis(6_200)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Blackhole {
    /// Time from the start of one outage to the start of the next; non-zero.
    pub period: Duration,
    /// Length of each outage; at most [`Blackhole::period`].
    pub duration: Duration,
    /// Time from the link's origin to the start of the first outage.
    pub offset: Duration,
}

impl Blackhole {
    /// Outages of `duration` every `period`, the first at the link's origin.
    pub fn every(period: Duration, duration: Duration) -> Self {
        Self {
            period,
            duration,
            offset: Duration::ZERO,
        }
    }

    /// Sets the time from the link's origin to the first outage.
    pub fn offset(mut self, offset: Duration) -> Self {
        self.offset = offset;
        self
    }

    /// Fraction of the time the link is dark, `duration / period`.
    pub fn duty_cycle(&self) -> f64 {
        if self.period.is_zero() {
            return 0.0;
        }
        (self.duration.as_secs_f64() / self.period.as_secs_f64()).min(1.0)
    }

    /// Whether a datagram sent `since_origin` after the link's origin is dropped.
    pub fn covers(&self, since_origin: Duration) -> bool {
        let Some(into) = since_origin.checked_sub(self.offset) else {
            return false;
        };
        if self.period.is_zero() {
            return false;
        }
        let phase = into.as_nanos() % self.period.as_nanos();
        phase < self.duration.as_nanos()
    }

    fn validate(&self) -> Result<(), String> {
        if self.period.is_zero() {
            return Err("blackhole.period must be non-zero".to_owned());
        }
        if self.duration > self.period {
            return Err(format!(
                "blackhole.duration ({:?}) must not exceed its period ({:?})",
                self.duration, self.period
            ));
        }
        Ok(())
    }
}

/// Configuration of one direction of a path.
///
/// [`LinkConfig::default`] is a perfect link: zero latency, no jitter, no loss,
/// reordering, duplication, corruption or outages, unlimited bandwidth, any
/// datagram size and a 1 MiB queue limit.
/// Every field has a chaining builder method of the same name (taking `self`):
///
/// ```
/// use std::time::Duration;
/// use ferry_netem::LinkConfig;
///
/// let config = LinkConfig::default()
///     .latency(Duration::from_millis(20))
///     .jitter(Duration::from_millis(2))
///     .random_loss(0.01)
///     .bandwidth(10_000_000);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub latency: Duration,
    /// Extra delay, uniform in `[0, jitter]`, drawn independently per datagram.
    ///
    /// Jitter can by itself make datagrams arrive out of order.
    pub jitter: Duration,
    /// How datagrams are lost.
    pub loss: Loss,
    /// Probability that a datagram is held back by an extra [`LinkConfig::reorder_delay`].
    pub reorder: f64,
    /// Extra delay applied to datagrams selected by [`LinkConfig::reorder`].
    pub reorder_delay: Duration,
    /// Probability that a datagram is delivered twice (the second copy slightly later).
    pub duplicate: f64,
    /// Probability that one random bit of a (non-empty) datagram is flipped.
    pub corrupt: f64,
    /// Serialisation rate of the bottleneck in bits per second; `None` = infinite.
    ///
    /// Only payload bytes are counted (no per-datagram header overhead).
    pub bandwidth_bps: Option<u64>,
    /// Bottleneck queue size in bytes. A datagram that would make the backlog exceed it
    /// is tail-dropped. Only meaningful when [`LinkConfig::bandwidth_bps`] is set.
    pub queue_limit_bytes: usize,
    /// Periodic outages during which every datagram sent is dropped; `None` = never.
    pub blackhole: Option<Blackhole>,
    /// With [`Loss::GilbertElliott`]: the chain also takes one step for each
    /// whole `loss_clock` that passes without a datagram, so that a burst
    /// lasts a time rather than a count of datagrams. `None` (the default):
    /// one step per datagram only, as tc-netem does. A sender that slows
    /// down then stays in a burst for as long as it takes to send a few more
    /// datagrams, seconds for one that backs off to a datagram a second:
    /// longer than bursts on real paths, which last about as long as the
    /// same number of datagrams take at the path's rate.
    pub loss_clock: Option<Duration>,
    /// Largest datagram the link carries, in bytes of UDP payload; a larger
    /// one is dropped (counted in [`LinkStats::too_big`](crate::LinkStats::too_big)),
    /// as a router drops a packet beyond its next hop's MTU when the sender
    /// forbade fragmentation. `None` (the default): any size.
    ///
    /// A link's MTU counts IP and UDP headers too: a 1500-byte Ethernet path
    /// carries 1472 bytes of UDP payload over IPv4 (20 + 8 bytes of headers)
    /// and 1452 over IPv6 (40 + 8); [`LinkConfig::ip_mtu`] converts.
    pub mtu: Option<usize>,
}

impl Default for LinkConfig {
    fn default() -> Self {
        Self {
            latency: Duration::ZERO,
            jitter: Duration::ZERO,
            loss: Loss::None,
            reorder: 0.0,
            reorder_delay: Duration::ZERO,
            duplicate: 0.0,
            corrupt: 0.0,
            bandwidth_bps: None,
            queue_limit_bytes: DEFAULT_QUEUE_LIMIT_BYTES,
            blackhole: None,
            loss_clock: None,
            mtu: None,
        }
    }
}

impl LinkConfig {
    /// Sets the one-way propagation delay.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
        self
    }

    /// Sets the burst chain's clock (see [`LinkConfig::loss_clock`]).
    pub fn loss_clock(mut self, step: Duration) -> Self {
        self.loss_clock = Some(step);
        self
    }

    /// Sets the maximum jitter (extra delay uniform in `[0, jitter]`).
    pub fn jitter(mut self, jitter: Duration) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets the loss model.
    pub fn loss(mut self, loss: Loss) -> Self {
        self.loss = loss;
        self
    }

    /// Sets independent random loss with probability `p` (shorthand for
    /// `.loss(Loss::Random(p))`).
    pub fn random_loss(self, p: f64) -> Self {
        self.loss(Loss::Random(p))
    }

    /// Holds back each datagram with probability `p` by an extra `delay`.
    pub fn reorder(mut self, p: f64, delay: Duration) -> Self {
        self.reorder = p;
        self.reorder_delay = delay;
        self
    }

    /// Delivers each datagram twice with probability `p`.
    pub fn duplicate(mut self, p: f64) -> Self {
        self.duplicate = p;
        self
    }

    /// Flips one random bit of each datagram with probability `p`.
    pub fn corrupt(mut self, p: f64) -> Self {
        self.corrupt = p;
        self
    }

    /// Drops every datagram longer than `bytes` of UDP payload (see
    /// [`LinkConfig::mtu`]).
    pub fn mtu(mut self, bytes: usize) -> Self {
        self.mtu = Some(bytes);
        self
    }

    /// Drops every datagram that an IPv4 path of this MTU (IP packet size,
    /// headers included) cannot carry: UDP payloads above `ip_mtu − 28`.
    /// `ip_mtu(1500)` is Ethernet's 1472-byte payload limit; `ip_mtu(1280)`,
    /// IPv6's minimum MTU, carries 1252 bytes.
    ///
    /// ```
    /// use ferry_netem::LinkConfig;
    ///
    /// assert_eq!(LinkConfig::default().ip_mtu(1500).mtu, Some(1472));
    /// ```
    pub fn ip_mtu(self, ip_mtu: usize) -> Self {
        self.mtu(ip_mtu.saturating_sub(IPV4_UDP_OVERHEAD))
    }

    /// Lifts the MTU: datagrams of any size cross.
    pub fn unlimited_mtu(mut self) -> Self {
        self.mtu = None;
        self
    }

    /// Caps the bottleneck serialisation rate at `bps` bits per second.
    pub fn bandwidth(mut self, bps: u64) -> Self {
        self.bandwidth_bps = Some(bps);
        self
    }

    /// Removes the bandwidth cap (infinite serialisation rate).
    pub fn unlimited_bandwidth(mut self) -> Self {
        self.bandwidth_bps = None;
        self
    }

    /// Sets the bottleneck queue limit in bytes.
    pub fn queue_limit(mut self, bytes: usize) -> Self {
        self.queue_limit_bytes = bytes;
        self
    }

    /// The fraction of what is sent that this link delivers in the long run,
    /// bandwidth aside: `(1 − average loss) × (1 − outage duty cycle) ×
    /// (1 − corrupt)` (a corrupted datagram fails any integrity check, so it
    /// counts as lost). Duplicates, jitter and reordering cost nothing here.
    ///
    /// Times the bandwidth, it is the goodput ceiling of a perfect transport
    /// whose data crosses this link (header overhead aside).
    pub fn delivered_fraction(&self) -> f64 {
        let duty = self.blackhole.map_or(0.0, |b| b.duty_cycle());
        (1.0 - self.loss.expected_loss_rate()) * (1.0 - duty) * (1.0 - self.corrupt)
    }

    /// Drops every datagram sent during the periodic outages of `blackhole`.
    pub fn blackhole(mut self, blackhole: Blackhole) -> Self {
        self.blackhole = Some(blackhole);
        self
    }

    /// Checks that every probability is within `0.0..=1.0` (and not NaN), that a
    /// bandwidth cap, if any, is non-zero and that outages, if any, have a non-zero
    /// period no shorter than their duration.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(blackhole) = &self.blackhole {
            blackhole.validate()?;
        }
        self.loss.validate()?;
        check_probability("reorder", self.reorder)?;
        check_probability("duplicate", self.duplicate)?;
        check_probability("corrupt", self.corrupt)?;
        if self.bandwidth_bps == Some(0) {
            return Err("bandwidth_bps must be non-zero (use None for unlimited)".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::*;

    #[test]
    fn validate_rejects_bad_values() {
        let ok = chaotic_config();
        assert!(ok.validate().is_ok());
        assert!(ok.clone().random_loss(f64::NAN).validate().is_err());
        assert!(ok.clone().random_loss(1.5).validate().is_err());
        assert!(ok.clone().duplicate(-0.1).validate().is_err());
        assert!(ok.clone().corrupt(f64::NAN).validate().is_err());
        assert!(ok.clone().reorder(2.0, ms(1)).validate().is_err());
        assert!(ok.clone().bandwidth(0).validate().is_err());
        assert!(ok.clone().unlimited_bandwidth().validate().is_ok());
        let ge = Loss::GilbertElliott {
            p_good_to_bad: 0.1,
            p_bad_to_good: f64::NAN,
            loss_in_good: 0.0,
            loss_in_bad: 1.0,
        };
        assert!(ok.clone().loss(ge).validate().is_err());
        let hole = Blackhole::every(ms(100), ms(10));
        assert!(ok.clone().blackhole(hole).validate().is_ok());
        assert!(
            ok.clone()
                .blackhole(Blackhole::every(ms(0), ms(0)))
                .validate()
                .is_err()
        );
        assert!(
            ok.blackhole(Blackhole::every(ms(10), ms(11)))
                .validate()
                .is_err()
        );
    }

    #[test]
    fn bursts_have_the_asked_rate_and_length() {
        let loss = Loss::bursts(0.1, 4.0);
        assert!((loss.expected_loss_rate() - 0.1).abs() < 1e-12);
        assert!((loss.mean_burst() - 4.0).abs() < 1e-12);
        assert!(loss.validate().is_ok());
        assert_eq!(Loss::None.mean_burst(), 0.0);
        assert!((Loss::Random(0.5).mean_burst() - 2.0).abs() < 1e-12);
    }

    #[test]
    #[should_panic(expected = "mean burst")]
    fn bursts_reject_short_bursts() {
        let _ = Loss::bursts(0.1, 0.5);
    }

    #[test]
    fn blackhole_windows() {
        let hole = Blackhole::every(ms(1000), ms(200)).offset(ms(50));
        assert!(!hole.covers(ms(0)));
        assert!(!hole.covers(ms(49)));
        assert!(hole.covers(ms(50)));
        assert!(hole.covers(ms(249)));
        assert!(!hole.covers(ms(250)));
        assert!(!hole.covers(ms(1049)));
        assert!(hole.covers(ms(1050)));
        assert!((hole.duty_cycle() - 0.2).abs() < 1e-12);
        // A zero-length outage never covers anything; a full one covers everything.
        assert!(!Blackhole::every(ms(10), ms(0)).covers(ms(0)));
        assert!(Blackhole::every(ms(10), ms(10)).covers(ms(12_345)));
    }
}
