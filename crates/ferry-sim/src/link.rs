//! Deterministic lossy-link model: one direction of a simulated network path.
//!
//! A [`Link`] accepts datagrams at a virtual time supplied by the caller and
//! schedules them for arrival at the far end after applying, in this order:
//!
//! 1. **loss** ([`Loss`]) — lost datagrams never occupy the bottleneck queue;
//! 2. **bottleneck queue** — if [`LinkConfig::bandwidth_bps`] is set, datagrams are
//!    serialised one at a time and tail-dropped when the backlog would exceed
//!    [`LinkConfig::queue_limit_bytes`];
//! 3. **delay** — propagation latency, uniform jitter and, for reordered datagrams,
//!    an extra [`LinkConfig::reorder_delay`];
//! 4. **corruption** — one random bit flipped in a private copy of the payload;
//! 5. **duplication** — a second copy of the (possibly corrupted) datagram arriving
//!    slightly later.
//!
//! Time is virtual: the module never reads the wall clock, it only uses the
//! [`Instant`]s passed in. All randomness comes from a [`ChaCha8Rng`] seeded in
//! [`Link::new`], so the same seed and the same sequence of calls produce exactly
//! the same arrivals, bit for bit.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Default bottleneck queue limit of [`LinkConfig::default`]: 1 MiB.
pub const DEFAULT_QUEUE_LIMIT_BYTES: usize = 1 << 20;

/// Fixed part of the extra delay of a duplicated datagram's second copy.
const DUPLICATE_GAP: Duration = Duration::from_micros(1);
/// Upper bound (inclusive, in nanoseconds) of the random part of that extra delay.
const DUPLICATE_SPREAD_NANOS: u64 = 1_000;

const NANOS_PER_SEC: u128 = 1_000_000_000;

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

/// Configuration of one direction of a simulated path.
///
/// [`LinkConfig::default`] is a perfect link: zero latency, no jitter, no loss,
/// reordering, duplication or corruption, unlimited bandwidth and a 1 MiB queue limit.
/// Every field has a chaining builder method of the same name (taking `self`):
///
/// ```
/// use std::time::Duration;
/// use ferry_sim::link::LinkConfig;
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
        }
    }
}

impl LinkConfig {
    /// Sets the one-way propagation delay.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency = latency;
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

    /// Checks that every probability is within `0.0..=1.0` (and not NaN) and that a
    /// bandwidth cap, if any, is non-zero.
    pub fn validate(&self) -> Result<(), String> {
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

/// Counters kept by a [`Link`].
///
/// Duplicated copies are counted in `delivered`, so `delivered` may exceed `sent`.
/// Once the link has drained,
/// `sent == lost + queue_dropped + delivered - duplicated`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LinkStats {
    /// Datagrams passed to [`Link::send`].
    pub sent: u64,
    /// Payload bytes passed to [`Link::send`].
    pub sent_bytes: u64,
    /// Datagrams returned by [`Link::pop_arrival`] (duplicate copies included).
    pub delivered: u64,
    /// Payload bytes returned by [`Link::pop_arrival`].
    pub delivered_bytes: u64,
    /// Datagrams dropped by the loss model.
    pub lost: u64,
    /// Datagrams tail-dropped by the bottleneck queue.
    pub queue_dropped: u64,
    /// Datagrams for which an extra copy was scheduled.
    pub duplicated: u64,
    /// Datagrams that had one bit flipped.
    pub corrupted: u64,
    /// Datagrams held back by the reorder delay.
    pub reordered: u64,
}

/// A datagram scheduled to arrive; ordered by `(at, seq)` only.
#[derive(Debug, Clone)]
struct Scheduled {
    at: Instant,
    seq: u64,
    datagram: Bytes,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Scheduled {}

impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

/// One direction of a simulated network path, in virtual time.
///
/// # Determinism
///
/// Random draws are taken only for enabled features (a probability strictly between
/// 0 and 1, a non-zero jitter), always in the same order, so for a given seed the
/// outcome depends only on the configuration and the sequence of calls. Arrival-time
/// ties are broken by scheduling order.
#[derive(Debug, Clone)]
pub struct Link {
    config: LinkConfig,
    rng: ChaCha8Rng,
    /// Gilbert–Elliott chain state (`true` = bad).
    ge_bad: bool,
    /// When the bottleneck finishes serialising everything accepted so far.
    busy_until: Option<Instant>,
    /// Sub-nanosecond remainder of the serialisation schedule, in units of
    /// `1 / bandwidth_bps` ns, carried while the bottleneck stays busy so that
    /// back-to-back datagrams accumulate no rounding drift.
    serialization_carry: u128,
    next_seq: u64,
    in_flight: BinaryHeap<Reverse<Scheduled>>,
    stats: LinkStats,
}

impl Link {
    /// Creates a link with `config`, drawing all randomness from a ChaCha8 generator
    /// seeded with `seed`.
    ///
    /// # Panics
    ///
    /// Panics if [`LinkConfig::validate`] fails.
    pub fn new(config: LinkConfig, seed: u64) -> Self {
        if let Err(e) = config.validate() {
            panic!("invalid LinkConfig: {e}");
        }
        Self {
            config,
            rng: ChaCha8Rng::seed_from_u64(seed),
            ge_bad: false,
            busy_until: None,
            serialization_carry: 0,
            next_seq: 0,
            in_flight: BinaryHeap::new(),
            stats: LinkStats::default(),
        }
    }

    /// The link's configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Changes the conditions for datagrams sent from now on. Datagrams already in
    /// flight arrive as they were scheduled.
    ///
    /// # Panics
    ///
    /// Panics if [`LinkConfig::validate`] fails.
    pub fn set_config(&mut self, config: LinkConfig) {
        if let Err(e) = config.validate() {
            panic!("invalid LinkConfig: {e}");
        }
        self.config = config;
    }

    /// A datagram enters the link at `now`.
    ///
    /// `now` should not go backwards between calls; the bottleneck queue assumes a
    /// monotonic clock.
    pub fn send(&mut self, now: Instant, datagram: Bytes) {
        let len = datagram.len();
        self.stats.sent += 1;
        self.stats.sent_bytes += len as u64;

        if self.is_lost() {
            self.stats.lost += 1;
            return;
        }

        let departure = match self.config.bandwidth_bps {
            None => now,
            Some(bps) => match self.enqueue(now, len, bps) {
                Some(departure) => departure,
                None => {
                    self.stats.queue_dropped += 1;
                    return;
                }
            },
        };

        let mut arrival = departure + self.config.latency;
        let jitter_nanos = duration_nanos_u64(self.config.jitter);
        if jitter_nanos > 0 {
            arrival += Duration::from_nanos(self.rng.random_range(0..=jitter_nanos));
        }
        if self.chance(self.config.reorder) {
            arrival += self.config.reorder_delay;
            self.stats.reordered += 1;
        }

        let datagram = if len > 0 && self.chance(self.config.corrupt) {
            self.stats.corrupted += 1;
            let bit = self.rng.random_range(0..len * 8);
            let mut copy = datagram.to_vec();
            copy[bit / 8] ^= 1 << (bit % 8);
            Bytes::from(copy)
        } else {
            datagram
        };

        let duplicate = if self.chance(self.config.duplicate) {
            self.stats.duplicated += 1;
            let spread = self.rng.random_range(0..=DUPLICATE_SPREAD_NANOS);
            Some(arrival + DUPLICATE_GAP + Duration::from_nanos(spread))
        } else {
            None
        };

        if let Some(at) = duplicate {
            self.schedule(arrival, datagram.clone());
            self.schedule(at, datagram);
        } else {
            self.schedule(arrival, datagram);
        }
    }

    /// When the next datagram arrives at the far end, if any is in flight.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.in_flight.peek().map(|Reverse(s)| s.at)
    }

    /// Removes and returns the earliest datagram whose arrival time is <= now.
    pub fn pop_arrival(&mut self, now: Instant) -> Option<Bytes> {
        if self.next_arrival()? > now {
            return None;
        }
        let Reverse(scheduled) = self.in_flight.pop()?;
        self.stats.delivered += 1;
        self.stats.delivered_bytes += scheduled.datagram.len() as u64;
        Some(scheduled.datagram)
    }

    /// Number of datagrams (duplicate copies included) scheduled but not yet popped.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Counters accumulated since the link was created.
    pub fn stats(&self) -> &LinkStats {
        &self.stats
    }

    /// Bernoulli trial; draws from the generator only when `0 < p < 1`.
    fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            false
        } else if p >= 1.0 {
            true
        } else {
            self.rng.random::<f64>() < p
        }
    }

    /// Applies the loss model to one datagram.
    fn is_lost(&mut self) -> bool {
        match self.config.loss {
            Loss::None => false,
            Loss::Random(p) => self.chance(p),
            Loss::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_in_good,
                loss_in_bad,
            } => {
                if self.ge_bad {
                    if self.chance(p_bad_to_good) {
                        self.ge_bad = false;
                    }
                } else if self.chance(p_good_to_bad) {
                    self.ge_bad = true;
                }
                let p = if self.ge_bad {
                    loss_in_bad
                } else {
                    loss_in_good
                };
                self.chance(p)
            }
        }
    }

    /// Puts a datagram of `len` bytes into the bottleneck queue, returning when it has
    /// been fully serialised, or `None` if it is tail-dropped.
    fn enqueue(&mut self, now: Instant, len: usize, bps: u64) -> Option<Instant> {
        let bps = u128::from(bps);
        let (start, backlog_bytes, carry) = match self.busy_until {
            Some(busy) if busy > now => {
                let backlog = (busy - now).as_nanos().saturating_mul(bps) / (8 * NANOS_PER_SEC);
                (busy, backlog, self.serialization_carry)
            }
            _ => (now, 0, 0),
        };
        let limit = self.config.queue_limit_bytes as u128;
        if backlog_bytes.saturating_add(len as u128) > limit {
            return None;
        }
        let numerator = (len as u128) * 8 * NANOS_PER_SEC + carry;
        let departure = start + duration_from_nanos_u128(numerator / bps);
        self.serialization_carry = numerator % bps;
        self.busy_until = Some(departure);
        Some(departure)
    }

    fn schedule(&mut self, at: Instant, datagram: Bytes) {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.in_flight
            .push(Reverse(Scheduled { at, seq, datagram }));
    }
}

fn duration_nanos_u64(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn duration_from_nanos_u128(nanos: u128) -> Duration {
    let secs = u64::try_from(nanos / NANOS_PER_SEC).unwrap_or(u64::MAX);
    // Always < 1e9, fits in u32.
    let subsec = (nanos % NANOS_PER_SEC) as u32;
    Duration::new(secs, subsec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The one place a real clock is read: `Instant` has no other constructor, so the
    /// tests (like the simulator) take a single base instant and add durations to it.
    fn base() -> Instant {
        Instant::now()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn numbered(i: u32, len: usize) -> Bytes {
        let mut v = vec![0u8; len.max(4)];
        v[..4].copy_from_slice(&i.to_be_bytes());
        Bytes::from(v)
    }

    fn number_of(b: &Bytes) -> u32 {
        u32::from_be_bytes(b[..4].try_into().unwrap())
    }

    /// Pops everything that has arrived by `until`, with arrival times.
    fn drain(link: &mut Link, until: Instant) -> Vec<(Instant, Bytes)> {
        let mut out = Vec::new();
        while let Some(at) = link.next_arrival() {
            if at > until {
                break;
            }
            let b = link.pop_arrival(at).unwrap();
            out.push((at, b));
        }
        out
    }

    fn drain_all(link: &mut Link) -> Vec<(Instant, Bytes)> {
        let mut out = Vec::new();
        while let Some(at) = link.next_arrival() {
            out.push((at, link.pop_arrival(at).unwrap()));
        }
        out
    }

    #[test]
    fn default_is_perfect() {
        let c = LinkConfig::default();
        assert_eq!(c.latency, Duration::ZERO);
        assert_eq!(c.loss, Loss::None);
        assert_eq!(c.bandwidth_bps, None);
        assert_eq!(c.queue_limit_bytes, 1024 * 1024);
        assert!(c.validate().is_ok());

        let t0 = base();
        let mut link = Link::new(c, 7);
        link.send(t0, Bytes::from_static(b"hi"));
        assert_eq!(link.next_arrival(), Some(t0));
        assert_eq!(link.pop_arrival(t0).as_deref(), Some(&b"hi"[..]));
        assert_eq!(link.in_flight(), 0);
    }

    #[test]
    fn perfect_link_delivers_in_order_after_latency() {
        let t0 = base();
        let mut link = Link::new(LinkConfig::default().latency(ms(10)), 1);
        for i in 0..100u32 {
            link.send(t0 + Duration::from_micros(u64::from(i)), numbered(i, 100));
        }
        assert_eq!(link.in_flight(), 100);
        assert_eq!(link.next_arrival(), Some(t0 + ms(10)));
        assert!(link.pop_arrival(t0 + ms(9)).is_none());
        let got = drain_all(&mut link);
        assert_eq!(got.len(), 100);
        for (i, (at, b)) in got.iter().enumerate() {
            assert_eq!(number_of(b), i as u32);
            assert_eq!(*at, t0 + Duration::from_micros(i as u64) + ms(10));
        }
        // Same-instant sends keep send order.
        for i in 0..10u32 {
            link.send(t0 + ms(100), numbered(i, 8));
        }
        let got = drain_all(&mut link);
        let order: Vec<u32> = got.iter().map(|(_, b)| number_of(b)).collect();
        assert_eq!(order, (0..10).collect::<Vec<_>>());
        let s = link.stats();
        assert_eq!(
            (s.sent, s.delivered, s.lost, s.queue_dropped),
            (110, 110, 0, 0)
        );
        assert_eq!(s.sent_bytes, s.delivered_bytes);
    }

    fn chaotic_config() -> LinkConfig {
        LinkConfig::default()
            .latency(ms(20))
            .jitter(ms(5))
            .random_loss(0.1)
            .reorder(0.05, ms(10))
            .duplicate(0.05)
            .corrupt(0.05)
            .bandwidth(5_000_000)
            .queue_limit(20_000)
    }

    fn run_scenario(seed: u64) -> (Vec<(Duration, Bytes)>, LinkStats) {
        let t0 = base();
        let mut link = Link::new(chaotic_config(), seed);
        let mut out = Vec::new();
        for i in 0..2000u32 {
            let now = t0 + Duration::from_micros(u64::from(i) * 500);
            link.send(now, numbered(i, 200 + (i as usize % 700)));
            out.extend(
                drain(&mut link, now)
                    .into_iter()
                    .map(|(at, b)| (at - t0, b)),
            );
        }
        out.extend(drain_all(&mut link).into_iter().map(|(at, b)| (at - t0, b)));
        (out, link.stats().clone())
    }

    #[test]
    fn same_seed_same_output_different_seed_differs() {
        let a = run_scenario(42);
        let b = run_scenario(42);
        assert_eq!(a, b);
        let c = run_scenario(43);
        assert_ne!(a.0, c.0);
        let s = &a.1;
        assert!(s.lost > 0 && s.queue_dropped > 0 && s.duplicated > 0);
        assert!(s.corrupted > 0 && s.reordered > 0);
        assert_eq!(
            s.sent,
            s.lost + s.queue_dropped + s.delivered - s.duplicated
        );
    }

    #[test]
    fn random_loss_rate() {
        let t0 = base();
        let p = 0.1;
        let mut link = Link::new(LinkConfig::default().random_loss(p), 3);
        let n = 100_000u32;
        let payload = Bytes::from_static(b"x");
        for _ in 0..n {
            link.send(t0, payload.clone());
            link.pop_arrival(t0);
        }
        let rate = link.stats().lost as f64 / f64::from(n);
        // Standard deviation is ~0.00095; allow ~5 sigma.
        assert!((rate - p).abs() < 0.005, "loss rate {rate}");
        assert_eq!(link.stats().lost + link.stats().delivered, u64::from(n));
        assert!((Loss::Random(p).expected_loss_rate() - p).abs() < 1e-12);
    }

    #[test]
    fn gilbert_elliott_bursts() {
        let t0 = base();
        let loss = Loss::GilbertElliott {
            p_good_to_bad: 0.05,
            p_bad_to_good: 0.25,
            loss_in_good: 0.0,
            loss_in_bad: 1.0,
        };
        let mut link = Link::new(LinkConfig::default().loss(loss), 11);
        let n = 100_000;
        let payload = Bytes::from_static(b"x");
        let mut bursts = Vec::new();
        let mut run = 0u32;
        for _ in 0..n {
            let before = link.stats().lost;
            link.send(t0, payload.clone());
            link.pop_arrival(t0);
            if link.stats().lost > before {
                run += 1;
            } else if run > 0 {
                bursts.push(run);
                run = 0;
            }
        }
        let mean_burst = bursts.iter().map(|&b| f64::from(b)).sum::<f64>() / bursts.len() as f64;
        assert!((mean_burst - 4.0).abs() < 0.3, "mean burst {mean_burst}");
        let expected = loss.expected_loss_rate();
        assert!((expected - 0.05 / 0.30).abs() < 1e-12);
        let rate = link.stats().lost as f64 / f64::from(n);
        assert!(
            (rate - expected).abs() < 0.01,
            "loss rate {rate} vs {expected}"
        );
    }

    #[test]
    fn bandwidth_cap_drains_in_one_second() {
        let t0 = base();
        let config = LinkConfig::default()
            .bandwidth(10_000_000)
            .queue_limit(2_000_000);
        let mut link = Link::new(config, 5);
        for i in 0..1000u32 {
            link.send(t0, numbered(i, 1250));
        }
        assert_eq!(link.stats().queue_dropped, 0);
        let got = drain_all(&mut link);
        assert_eq!(got.len(), 1000);
        for (i, (at, b)) in got.iter().enumerate() {
            assert_eq!(number_of(b), i as u32);
            assert_eq!(*at, t0 + ms(i as u64 + 1));
        }
        assert_eq!(got.last().unwrap().0, t0 + Duration::from_secs(1));
    }

    #[test]
    fn bandwidth_has_no_rounding_drift() {
        // 1 byte at 3 bit/s = 8/3 s per datagram; 3 back-to-back datagrams take exactly 8 s.
        let t0 = base();
        let mut link = Link::new(LinkConfig::default().bandwidth(3), 0);
        for _ in 0..3 {
            link.send(t0, Bytes::from_static(b"a"));
        }
        let got = drain_all(&mut link);
        assert_eq!(got[2].0, t0 + Duration::from_secs(8));
    }

    #[test]
    fn paced_below_capacity_is_not_queued() {
        let t0 = base();
        let config = LinkConfig::default()
            .bandwidth(10_000_000)
            .latency(ms(5))
            .queue_limit(1250);
        let mut link = Link::new(config, 5);
        for i in 0..100u64 {
            link.send(t0 + ms(2 * i), numbered(i as u32, 1250));
        }
        assert_eq!(link.stats().queue_dropped, 0);
        let got = drain_all(&mut link);
        for (i, (at, _)) in got.iter().enumerate() {
            assert_eq!(*at, t0 + ms(2 * i as u64 + 1 + 5));
        }
    }

    #[test]
    fn queue_limit_tail_drops() {
        let t0 = base();
        // 10 datagrams of 1250 bytes fill the queue exactly.
        let config = LinkConfig::default()
            .bandwidth(10_000_000)
            .queue_limit(12_500);
        let mut link = Link::new(config, 9);
        for i in 0..20u32 {
            link.send(t0, numbered(i, 1250));
        }
        assert_eq!(link.stats().queue_dropped, 10);
        assert_eq!(link.in_flight(), 10);
        // One serialisation time later there is room for exactly one more.
        link.send(t0 + ms(1), numbered(20, 1250));
        link.send(t0 + ms(1), numbered(21, 1250));
        assert_eq!(link.stats().queue_dropped, 11);
        let got = drain_all(&mut link);
        let order: Vec<u32> = got.iter().map(|(_, b)| number_of(b)).collect();
        let mut expected: Vec<u32> = (0..10).collect();
        expected.push(20);
        assert_eq!(order, expected);
        // A datagram larger than the whole queue is always dropped.
        link.send(t0 + Duration::from_secs(10), Bytes::from(vec![0; 12_501]));
        assert_eq!(link.stats().queue_dropped, 12);
        // Without a bandwidth cap the queue never fills.
        let mut free = Link::new(LinkConfig::default().queue_limit(10), 9);
        free.send(t0, Bytes::from(vec![0; 100]));
        assert_eq!(free.stats().queue_dropped, 0);
    }

    #[test]
    fn reorder_produces_out_of_order_arrivals() {
        let t0 = base();
        let config = LinkConfig::default().latency(ms(10)).reorder(0.2, ms(5));
        let mut link = Link::new(config, 13);
        let n = 5000u32;
        for i in 0..n {
            link.send(t0 + ms(u64::from(i)), numbered(i, 16));
        }
        let got = drain_all(&mut link);
        assert_eq!(got.len(), n as usize);
        let mut max_seen = None;
        let mut out_of_order = 0;
        for (_, b) in &got {
            let k = number_of(b);
            if max_seen.is_some_and(|m| k < m) {
                out_of_order += 1;
            }
            max_seen = max_seen.max(Some(k));
        }
        let reordered = link.stats().reordered;
        assert!(
            (reordered as f64 / f64::from(n) - 0.2).abs() < 0.03,
            "{reordered}"
        );
        assert!(out_of_order > 0);
        // Arrival times never go backwards.
        assert!(got.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn duplicate_rate() {
        let t0 = base();
        let mut link = Link::new(LinkConfig::default().latency(ms(1)).duplicate(0.1), 17);
        let n = 20_000u32;
        let mut seen = vec![0u32; n as usize];
        for i in 0..n {
            let now = t0 + ms(u64::from(i));
            link.send(now, numbered(i, 8));
            for (_, b) in drain(&mut link, now) {
                seen[number_of(&b) as usize] += 1;
            }
        }
        for (_, b) in drain_all(&mut link) {
            seen[number_of(&b) as usize] += 1;
        }
        let s = link.stats();
        let rate = s.duplicated as f64 / f64::from(n);
        assert!((rate - 0.1).abs() < 0.01, "duplicate rate {rate}");
        assert_eq!(s.delivered, u64::from(n) + s.duplicated);
        let twice = seen.iter().filter(|&&c| c == 2).count() as u64;
        assert_eq!(twice, s.duplicated);
        assert!(seen.iter().all(|&c| c == 1 || c == 2));
    }

    #[test]
    fn duplicate_arrives_slightly_later() {
        let t0 = base();
        let mut link = Link::new(LinkConfig::default().latency(ms(3)).duplicate(1.0), 1);
        link.send(t0, Bytes::from_static(b"dup"));
        let got = drain_all(&mut link);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, t0 + ms(3));
        let gap = got[1].0 - got[0].0;
        assert!(gap >= Duration::from_micros(1) && gap <= Duration::from_micros(2));
        assert_eq!(got[0].1, got[1].1);
    }

    #[test]
    fn corruption_flips_exactly_one_bit() {
        let t0 = base();
        let mut link = Link::new(LinkConfig::default().corrupt(0.1), 23);
        let n = 20_000u32;
        let originals: Vec<Bytes> = (0..n).map(|i| numbered(i, 64)).collect();
        let mut corrupted = 0u64;
        for original in &originals {
            link.send(t0, original.clone());
            let got = link.pop_arrival(t0).unwrap();
            let flipped: u32 = original
                .iter()
                .zip(got.iter())
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            assert_eq!(got.len(), original.len());
            assert!(flipped <= 1);
            corrupted += u64::from(flipped);
        }
        // The caller's buffers were never mutated.
        for (i, original) in originals.iter().enumerate() {
            assert_eq!(*original, numbered(i as u32, 64));
        }
        assert_eq!(corrupted, link.stats().corrupted);
        let rate = corrupted as f64 / f64::from(n);
        assert!((rate - 0.1).abs() < 0.01, "corrupt rate {rate}");
    }

    #[test]
    fn zero_length_datagram_is_fine() {
        let t0 = base();
        let config = LinkConfig::default()
            .corrupt(1.0)
            .duplicate(1.0)
            .jitter(ms(1))
            .bandwidth(1_000)
            .queue_limit(0);
        let mut link = Link::new(config, 0);
        link.send(t0, Bytes::new());
        let got = drain_all(&mut link);
        assert_eq!(got.len(), 2);
        assert!(got.iter().all(|(_, b)| b.is_empty()));
        let s = link.stats();
        assert_eq!((s.corrupted, s.duplicated, s.queue_dropped), (0, 1, 0));
    }

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
        assert!(ok.loss(ge).validate().is_err());
    }

    #[test]
    #[should_panic(expected = "invalid LinkConfig")]
    fn new_panics_on_invalid_config() {
        let _ = Link::new(LinkConfig::default().random_loss(2.0), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn accounting_and_ordering_hold(
            seed in any::<u64>(),
            loss in 0.0..=1.0f64,
            dup in 0.0..=1.0f64,
            reorder in 0.0..=1.0f64,
            bps in proptest::option::of(1_000u64..100_000_000),
            queue in 0usize..50_000,
            sends in proptest::collection::vec((0u64..2_000, 0usize..1_500), 0..200),
        ) {
            let t0 = base();
            let config = LinkConfig::default()
                .latency(ms(7))
                .jitter(ms(3))
                .random_loss(loss)
                .reorder(reorder, ms(4))
                .duplicate(dup)
                .corrupt(0.5)
                .queue_limit(queue);
            let config = match bps {
                Some(b) => config.bandwidth(b),
                None => config,
            };
            let mut link = Link::new(config, seed);
            let mut now = t0;
            let mut last_pop = t0;
            for (gap_us, len) in sends {
                now += Duration::from_micros(gap_us);
                link.send(now, Bytes::from(vec![0xA5; len]));
                if let Some(at) = link.next_arrival() {
                    // Nothing ever arrives before latency has elapsed since t0.
                    prop_assert!(at >= t0 + ms(7));
                }
                while let Some(at) = link.next_arrival() {
                    if at > now { break; }
                    prop_assert!(at >= last_pop);
                    last_pop = at;
                    prop_assert!(link.pop_arrival(now).is_some());
                }
            }
            while let Some(at) = link.next_arrival() {
                prop_assert!(at >= last_pop);
                last_pop = at;
                link.pop_arrival(at);
            }
            let s = link.stats();
            prop_assert_eq!(link.in_flight(), 0);
            prop_assert_eq!(s.sent, s.lost + s.queue_dropped + s.delivered - s.duplicated);
        }
    }
}
