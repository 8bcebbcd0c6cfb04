//! One cell of the efficiency table: goodput over a lossy bottleneck as a
//! fraction of its capacity, in virtual time; or over a [`Profile`]'s path, as
//! a fraction of what the profile allows.
//!
//! ```
//! use std::time::Duration;
//! use ferry_proto::CongestionControl;
//! use ferry_sim::Efficiency;
//!
//! let report = Efficiency::new(CongestionControl::Bbr, 20_000_000, Duration::from_millis(20), 0.01)
//!     .bytes(2 << 20)
//!     .run();
//! assert!(report.complete);
//! assert!(report.of_capacity > 0.1);
//!
//! // A named profile, and the same path without its impairment.
//! let cell = Efficiency::profile(CongestionControl::Bbr, ferry_sim::Profile::Satellite)
//!     .bytes(1 << 20);
//! let (impaired, clean) = (cell.run(), cell.unimpaired().run());
//! assert!(impaired.complete && clean.complete);
//! assert!(impaired.of_available > 0.0 && clean.of_available > 0.0);
//! ```

use std::time::Duration;

use bytes::Bytes;
use ferry_proto::{Config, CongestionControl};

use crate::link::{DEFAULT_QUEUE_LIMIT_BYTES, LinkConfig, Profile};
use crate::transfer::{Transfer, TransferReport};

/// Size of each message the client sends.
const MESSAGE: usize = 1 << 20;
/// Distinct message contents, cycled (so that a large transfer needs little
/// memory and misordering still shows).
const DISTINCT: usize = 17;

/// A bulk transfer over a bottleneck with random loss in both directions, or
/// over the path of a [`Profile`].
#[derive(Debug, Clone)]
pub struct Efficiency {
    /// The controller both ends run.
    pub controller: CongestionControl,
    /// Bottleneck rate, bits per second.
    pub bandwidth_bps: u64,
    /// Round-trip propagation time (half of it each way).
    pub rtt: Duration,
    /// Random loss probability, each direction (for a profile's cell, its
    /// data direction's average loss, for information).
    pub loss: f64,
    /// The network profile whose links the transfer crosses, with the queue of
    /// [`Efficiency::queue_bytes`]; `None` for a plain cell. When set,
    /// `bandwidth_bps`, `rtt` and `loss` describe the profile's path and are
    /// not applied on their own.
    pub profile: Option<Profile>,
    /// Bytes to transfer, in 1 MiB messages. Default: eight seconds' worth of
    /// the bottleneck's capacity, at least 8 MiB.
    pub bytes: usize,
    /// Bottleneck queue, bytes. Default 1 MiB.
    pub queue_bytes: usize,
    /// Seed of the links' randomness. Default: derived from the cell.
    pub seed: u64,
    /// Configuration of both endpoints (the controller is set from
    /// `controller`). Default [`Config::default`].
    pub config: Config,
}

/// What one [`Efficiency`] run measured.
#[derive(Debug, Clone)]
pub struct EfficiencyReport {
    /// Every message arrived, intact and in order.
    pub complete: bool,
    /// Delivered payload bits per second.
    pub goodput_bps: f64,
    /// Goodput as a fraction of the bottleneck's capacity.
    pub of_capacity: f64,
    /// Goodput as a fraction of what the conditions leave of the capacity:
    /// `(1 − loss) × capacity` for a plain cell, [`Profile::allows_bps`] for a
    /// profile's. 1.0 would be a perfect transport.
    pub of_available: f64,
    /// Virtual time from connect to the last message.
    pub elapsed: Duration,
    /// Retransmitted fragments as a fraction of the packets the client sent.
    pub retransmitted: f64,
    /// Spurious retransmissions as a fraction of the packets the client sent:
    /// data the server received more than once ([`ferry_proto::SessionStats::duplicates`]
    /// at the server; the session counts no spurious retransmission itself). A
    /// retransmission the original had made unnecessary arrives as such a
    /// duplicate unless it is lost too; as no cell's link duplicates datagrams,
    /// nothing else does.
    pub spurious: f64,
    /// The whole transfer's report.
    pub transfer: TransferReport,
}

impl Efficiency {
    /// A cell: `controller` over a `bandwidth_bps` bottleneck with a round
    /// trip of `rtt` and `loss` random loss each way.
    pub fn new(
        controller: CongestionControl,
        bandwidth_bps: u64,
        rtt: Duration,
        loss: f64,
    ) -> Self {
        let eight_seconds = usize::try_from(bandwidth_bps).unwrap_or(usize::MAX);
        Self {
            controller,
            bandwidth_bps,
            rtt,
            loss,
            profile: None,
            bytes: eight_seconds.max(8 << 20),
            queue_bytes: DEFAULT_QUEUE_LIMIT_BYTES,
            seed: rtt.as_millis() as u64 ^ (loss * 1000.0) as u64 ^ bandwidth_bps,
            config: Config::default(),
        }
    }

    /// A cell: `controller` over `profile`'s links (its bandwidth, round trip,
    /// queue and impairment, [`Profile::forward`] from client to server and
    /// [`Profile::backward`] back). The default size is eight seconds' worth
    /// of the profile's bandwidth, at least 8 MiB; the seed derives from the
    /// profile's name.
    pub fn profile(controller: CongestionControl, profile: Profile) -> Self {
        let plain = Self::new(
            controller,
            profile.bandwidth_bps(),
            profile.rtt(),
            profile.forward().loss.expected_loss_rate(),
        );
        // FNV-1a of the name: stable across runs and builds.
        let seed = profile
            .name()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
            });
        Self {
            profile: Some(profile),
            queue_bytes: profile.queue_limit_bytes(),
            seed,
            ..plain
        }
    }

    /// The same cell without impairment: the same controller, bandwidth, round
    /// trip, queue, size and configuration, no loss, no profile. For a
    /// profile's cell this is the transfer over [`Profile::unimpaired`], the
    /// reference that shows what the impairment itself costs.
    pub fn unimpaired(&self) -> Self {
        Self::new(self.controller, self.bandwidth_bps, self.rtt, 0.0)
            .bytes(self.bytes)
            .queue(self.queue_bytes)
            .config(self.config.clone())
    }

    /// The client-to-server and server-to-client links the transfer crosses.
    pub fn links(&self) -> (LinkConfig, LinkConfig) {
        match self.profile {
            Some(profile) => (
                profile.forward().queue_limit(self.queue_bytes),
                profile.backward().queue_limit(self.queue_bytes),
            ),
            None => {
                let link = LinkConfig::default()
                    .latency(self.rtt / 2)
                    .random_loss(self.loss)
                    .bandwidth(self.bandwidth_bps)
                    .queue_limit(self.queue_bytes);
                (link.clone(), link)
            }
        }
    }

    /// The goodput a perfect transport could reach, bits per second:
    /// `(1 − loss) × bandwidth`, or [`Profile::allows_bps`].
    pub fn allows_bps(&self) -> f64 {
        match self.profile {
            Some(profile) => profile.allows_bps(),
            None => (1.0 - self.loss).max(f64::MIN_POSITIVE) * self.bandwidth_bps as f64,
        }
    }

    /// Sets the bytes to transfer.
    pub fn bytes(mut self, bytes: usize) -> Self {
        self.bytes = bytes;
        self
    }

    /// Sets the bottleneck queue size.
    pub fn queue(mut self, bytes: usize) -> Self {
        self.queue_bytes = bytes;
        self
    }

    /// Sets the seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Sets both endpoints' configuration (the controller still comes from
    /// [`Efficiency::controller`]).
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Runs the transfer (for at most six virtual hours).
    ///
    /// # Panics
    ///
    /// Panics if the configuration is invalid.
    pub fn run(&self) -> EfficiencyReport {
        let (forward, backward) = self.links();
        let contents: Vec<Bytes> = (0..DISTINCT)
            .map(|i| Bytes::from(vec![i as u8; MESSAGE]))
            .collect();
        let count = self.bytes.div_ceil(MESSAGE).max(1);
        let messages: Vec<Bytes> = (0..count).map(|i| contents[i % DISTINCT].clone()).collect();
        let config = Config {
            congestion: self.controller,
            ..self.config.clone()
        };
        let report = Transfer::new(self.seed, forward)
            .backward(backward)
            .config(config)
            .run(messages, Duration::from_secs(6 * 3600));
        let goodput = report.goodput_bps();
        let capacity = self.bandwidth_bps as f64;
        EfficiencyReport {
            complete: report.complete(),
            goodput_bps: goodput,
            of_capacity: goodput / capacity,
            of_available: goodput / self.allows_bps(),
            elapsed: report.elapsed,
            retransmitted: report.client.retransmitted as f64
                / report.client.packets_sent.max(1) as f64,
            spurious: report.server.duplicates as f64 / report.client.packets_sent.max(1) as f64,
            transfer: report,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_cell_crosses_the_links_it_always_did() {
        let cell = Efficiency::new(
            CongestionControl::Cubic,
            100_000_000,
            Duration::from_millis(100),
            0.05,
        )
        .queue(1 << 21);
        let link = LinkConfig::default()
            .latency(Duration::from_millis(50))
            .random_loss(0.05)
            .bandwidth(100_000_000)
            .queue_limit(1 << 21);
        assert_eq!(cell.links(), (link.clone(), link));
        assert_eq!(cell.profile, None);
        assert!((cell.allows_bps() - 95e6).abs() < 1e-3);
        assert_eq!(cell.seed, 100 ^ 50 ^ 100_000_000);
    }

    #[test]
    fn a_profile_cell_crosses_the_profile_and_its_unimpaired_twin_the_bare_path() {
        for &profile in Profile::all() {
            let cell = Efficiency::profile(CongestionControl::Bbr, profile).bytes(3 << 20);
            assert_eq!(cell.links(), (profile.forward(), profile.backward()));
            assert_eq!(cell.bandwidth_bps, profile.bandwidth_bps());
            assert_eq!(cell.rtt, profile.rtt());
            assert!((cell.allows_bps() - profile.allows_bps()).abs() < 1e-6);
            let clean = cell.unimpaired();
            // A plain cell's loss is `Random(0.0)`: no loss, and no random draw.
            let bare = profile.unimpaired().random_loss(0.0);
            assert_eq!(clean.links(), (bare.clone(), bare));
            assert_eq!(
                (clean.bytes, clean.controller),
                (3 << 20, CongestionControl::Bbr)
            );
            assert_eq!(clean.loss, 0.0);
        }
        // Seeds differ between profiles and stay the same from run to run.
        let a = Efficiency::profile(CongestionControl::Bbr, Profile::Wifi).seed;
        let b = Efficiency::profile(CongestionControl::Bbr, Profile::Satellite).seed;
        assert_ne!(a, b);
        assert_eq!(
            a,
            Efficiency::profile(CongestionControl::Cubic, Profile::Wifi).seed
        );
    }

    #[test]
    fn a_profile_transfer_completes_and_counts_its_retransmissions() {
        let report = Efficiency::profile(CongestionControl::Bbr, Profile::Reorder5)
            .bytes(2 << 20)
            .run();
        assert!(report.complete, "{:?}", report.transfer);
        assert!(report.of_available > 0.0 && report.of_available <= 1.0);
        // Nothing is lost: every retransmission is spurious.
        assert!(report.spurious <= report.retransmitted + 1e-9);
        assert_eq!(report.transfer.forward.lost, 0);
    }
}
