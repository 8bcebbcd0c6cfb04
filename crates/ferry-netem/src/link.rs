//! [`Link`]: datagrams in, datagrams out at their arrival times, with the
//! conditions of its [`LinkConfig`] applied on the way.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::config::{LinkConfig, Loss};
use crate::queue::Bottleneck;

/// Fixed part of the extra delay of a duplicated datagram's second copy.
const DUPLICATE_GAP: Duration = Duration::from_micros(1);
/// Upper bound (inclusive, in nanoseconds) of the random part of that extra delay.
const DUPLICATE_SPREAD_NANOS: u64 = 1_000;

/// Counters kept by a [`Link`].
///
/// Duplicated copies are counted in `delivered`, so `delivered` may exceed `sent`.
/// Once the link has drained,
/// `sent == too_big + blackholed + lost + queue_dropped + delivered - duplicated`.
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
    /// Datagrams dropped for being longer than [`LinkConfig::mtu`](crate::LinkConfig::mtu).
    pub too_big: u64,
    /// Datagrams dropped because they were sent during an outage of
    /// [`LinkConfig::blackhole`](crate::LinkConfig::blackhole).
    pub blackholed: u64,
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

/// One direction of a network path, in the caller's time (virtual or real).
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
    /// When the chain last stepped (with [`LinkConfig::loss_clock`]).
    ge_stepped: Option<Instant>,
    /// The bandwidth cap's queue (used only when `bandwidth_bps` is set).
    bottleneck: Bottleneck,
    next_seq: u64,
    in_flight: BinaryHeap<Reverse<Scheduled>>,
    stats: LinkStats,
    /// Where [`LinkConfig::blackhole`]'s schedule starts: set by
    /// [`Link::set_origin`], else by the first [`Link::send`].
    origin: Option<Instant>,
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
            ge_stepped: None,
            bottleneck: Bottleneck::default(),
            next_seq: 0,
            in_flight: BinaryHeap::new(),
            stats: LinkStats::default(),
            origin: None,
        }
    }

    /// Sets the instant [`LinkConfig::blackhole`]'s outages are counted from.
    ///
    /// Without it, the origin is the instant of the first [`Link::send`]. Two links
    /// given the same origin (the two directions of a path) go dark together.
    pub fn set_origin(&mut self, origin: Instant) {
        self.origin = Some(origin);
    }

    /// The instant [`LinkConfig::blackhole`]'s outages are counted from, once known.
    pub fn origin(&self) -> Option<Instant> {
        self.origin
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
        let origin = *self.origin.get_or_insert(now);
        if self.config.mtu.is_some_and(|mtu| len > mtu) {
            // Before any random draw: a path's MTU changes no other datagram's fate.
            self.stats.too_big += 1;
            return;
        }

        if let Some(blackhole) = &self.config.blackhole
            && let Some(since_origin) = now.checked_duration_since(origin)
            && blackhole.covers(since_origin)
        {
            self.stats.blackholed += 1;
            return;
        }
        self.idle_steps(now);
        if self.is_lost() {
            self.stats.lost += 1;
            return;
        }

        let departure = match self.config.bandwidth_bps {
            None => now,
            Some(bps) => match self
                .bottleneck
                .enqueue(now, len, bps, self.config.queue_limit_bytes)
            {
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

    /// With a loss clock, moves the burst chain by the steps that passed
    /// without a datagram since it last moved: the datagram's own step is
    /// taken by [`Self::is_lost`], so `k` whole clock periods make `k − 1`
    /// idle steps, drawn at once from the chain's `n`-step law.
    fn idle_steps(&mut self, now: Instant) {
        let (
            Some(step),
            Loss::GilbertElliott {
                p_good_to_bad: p,
                p_bad_to_good: r,
                ..
            },
        ) = (self.config.loss_clock, self.config.loss)
        else {
            return;
        };
        let last = self.ge_stepped.replace(now);
        let Some(last) = last else {
            return;
        };
        let periods = now.saturating_duration_since(last).as_nanos() / step.as_nanos().max(1);
        let idle = periods.saturating_sub(1);
        if idle == 0 || p + r <= 0.0 {
            return;
        }
        // P(bad after n steps) = π + (s − π)·λⁿ, with π = p / (p + r),
        // λ = 1 − p − r and s = 1 if bad now, else 0.
        let pi = p / (p + r);
        let lambda = 1.0 - p - r;
        let n = i32::try_from(idle).unwrap_or(i32::MAX);
        let start = if self.ge_bad { 1.0 } else { 0.0 };
        let bad = pi + (start - pi) * lambda.powi(n);
        self.ge_bad = self.chance(bad);
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

#[cfg(test)]
mod tests;
