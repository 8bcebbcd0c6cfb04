//! The conditions of a link: [`LinkConfig`] and its loss model, [`Loss`].

use std::time::Duration;

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

/// Configuration of one direction of a path.
///
/// [`LinkConfig::default`] is a perfect link: zero latency, no jitter, no loss,
/// reordering, duplication or corruption, unlimited bandwidth and a 1 MiB queue limit.
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
        assert!(ok.loss(ge).validate().is_err());
    }
}
