//! Named real-network conditions: [`Profile`].

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::config::{Blackhole, LinkConfig, Loss};

/// A named preset of real-network conditions: a path's bandwidth, round-trip
/// time and bottleneck queue plus one impairment, as a [`LinkConfig`] per
/// direction.
///
/// Every preset is symmetric ([`Profile::forward`] and [`Profile::backward`]
/// are the same configuration, each with half the round trip as latency) and
/// says what it *allows*: [`Profile::allows_bps`], the goodput a perfect
/// transport could reach on it, the bandwidth less what the data direction
/// loses for good (average loss, outages). [`Profile::unimpaired`] is the same
/// path without the impairment (same bandwidth, latency and queue, nothing
/// else), the reference that shows what the impairment itself costs.
///
/// Unless a preset says otherwise the path is 100 Mbit/s with a 100 ms round
/// trip and a 1 MiB bottleneck queue (84 ms at that rate). The jitter and
/// reordering presets lose nothing: all they allow is the bandwidth, so a
/// transport that reads their late datagrams as lost pays for it.
///
/// ```
/// use ferry_netem::{Link, Profile};
///
/// let wifi: Profile = "wifi".parse()?;
/// assert_eq!(wifi, Profile::Wifi);
/// let link = Link::new(wifi.forward(), 7);
/// assert_eq!(link.config().bandwidth_bps, Some(wifi.bandwidth_bps()));
/// assert!(wifi.allows_bps() < wifi.bandwidth_bps() as f64);
/// for profile in Profile::all() {
///     assert!(profile.forward().validate().is_ok(), "{profile}");
/// }
/// # Ok::<(), ferry_netem::UnknownProfile>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Profile {
    /// `jitter-1/16`: every datagram is delayed by an extra uniform
    /// `[0, RTT/16]` (6.25 ms) each way. At 100 Mbit/s datagrams leave about
    /// 0.1 ms apart, so jitter this wide reorders most of them by dozens of
    /// places. No loss: allows the full 100 Mbit/s.
    Jitter16,
    /// `jitter-1/8`: uniform jitter of `[0, RTT/8]` (12.5 ms) each way, no
    /// loss: allows 100 Mbit/s.
    Jitter8,
    /// `jitter-1/4`: uniform jitter of `[0, RTT/4]` (25 ms) each way, no
    /// loss: allows 100 Mbit/s.
    Jitter4,
    /// `reorder-1%`: 1% of the datagrams, each way, are held back by an extra
    /// RTT/8 (12.5 ms) and arrive after a hundred or so later ones. No loss:
    /// allows 100 Mbit/s.
    Reorder1,
    /// `reorder-5%`: 5% of the datagrams, each way, are held back by RTT/8
    /// (12.5 ms). No loss: allows 100 Mbit/s.
    Reorder5,
    /// `burst-loss`: Gilbert–Elliott loss each way ([`Loss::bursts`]): 2% of
    /// the datagrams on average, lost in bursts of 5 on average
    /// (`p_good_to_bad` ≈ 0.0041, `p_bad_to_good` = 0.2, everything lost in the
    /// bad state, nothing in the good one). Allows 98 Mbit/s.
    BurstLoss,
    /// `long-fat`: a long fat path, 1 Gbit/s with a 200 ms round trip (a
    /// bandwidth-delay product of 25 MB) and a 10 MiB queue (84 ms); no
    /// impairment beyond its size. Allows 1 Gbit/s.
    LongFat,
    /// `satellite`: a geostationary-satellite-like path, 50 Mbit/s with a
    /// 600 ms round trip, 1% random loss each way and a 1 MiB queue (168 ms).
    /// Allows 49.5 Mbit/s.
    Satellite,
    /// `wifi`: a Wi-Fi-like path, 50 Mbit/s with a 20 ms round trip, uniform
    /// jitter of `[0, 5 ms]` (RTT/4) each way and loss in bursts (1% on
    /// average, bursts of 4 on average), with a 512 KiB queue (84 ms).
    /// Allows 49.5 Mbit/s.
    Wifi,
    /// `flapping`: a path that goes dark, both ways, for 200 ms every 5 s (the
    /// first outage 2 s after the link's first datagram; see [`Blackhole`]);
    /// nothing else. Dark 4% of the time: allows 96 Mbit/s in the long run
    /// (a transfer lasting a few periods sees about that share).
    Flapping,
}

/// Every preset, in the order [`Profile::all`] gives them.
const ALL: [Profile; 10] = [
    Profile::Jitter16,
    Profile::Jitter8,
    Profile::Jitter4,
    Profile::Reorder1,
    Profile::Reorder5,
    Profile::BurstLoss,
    Profile::LongFat,
    Profile::Satellite,
    Profile::Wifi,
    Profile::Flapping,
];

const MBIT: u64 = 1_000_000;
const MIB: usize = 1 << 20;

impl Profile {
    /// Every preset: jitter (three widths), reordering (two rates), burst
    /// loss, long fat, satellite, Wi-Fi, flapping.
    pub fn all() -> &'static [Profile] {
        &ALL
    }

    /// The preset's name, as [`Profile::from_name`] and [`FromStr`] take it:
    /// `jitter-1/16`, `jitter-1/8`, `jitter-1/4`, `reorder-1%`, `reorder-5%`,
    /// `burst-loss`, `long-fat`, `satellite`, `wifi`, `flapping`.
    pub fn name(self) -> &'static str {
        match self {
            Profile::Jitter16 => "jitter-1/16",
            Profile::Jitter8 => "jitter-1/8",
            Profile::Jitter4 => "jitter-1/4",
            Profile::Reorder1 => "reorder-1%",
            Profile::Reorder5 => "reorder-5%",
            Profile::BurstLoss => "burst-loss",
            Profile::LongFat => "long-fat",
            Profile::Satellite => "satellite",
            Profile::Wifi => "wifi",
            Profile::Flapping => "flapping",
        }
    }

    /// The preset called `name` (see [`Profile::name`]; ASCII case is ignored).
    pub fn from_name(name: &str) -> Option<Profile> {
        ALL.into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(name.trim()))
    }

    /// What the preset models and its parameters, in one line.
    pub fn summary(self) -> &'static str {
        match self {
            Profile::Jitter16 => {
                "jitter that reorders: uniform [0, RTT/16] extra delay each way, no loss"
            }
            Profile::Jitter8 => {
                "jitter that reorders: uniform [0, RTT/8] extra delay each way, no loss"
            }
            Profile::Jitter4 => {
                "jitter that reorders: uniform [0, RTT/4] extra delay each way, no loss"
            }
            Profile::Reorder1 => "1% of datagrams held back by RTT/8 each way, no loss",
            Profile::Reorder5 => "5% of datagrams held back by RTT/8 each way, no loss",
            Profile::BurstLoss => {
                "Gilbert-Elliott loss each way: 2% on average, bursts of 5 on average"
            }
            Profile::LongFat => "long fat path: 1 Gbit/s, 200 ms RTT, 10 MiB queue",
            Profile::Satellite => "satellite-like: 50 Mbit/s, 600 ms RTT, 1% random loss each way",
            Profile::Wifi => {
                "Wi-Fi-like: 50 Mbit/s, 20 ms RTT, [0, 5 ms] jitter, 1% loss in bursts of 4"
            }
            Profile::Flapping => "dark both ways for 200 ms every 5 s (from 2 s on), nothing else",
        }
    }

    /// The bottleneck's rate, bits per second (the same each way).
    pub fn bandwidth_bps(self) -> u64 {
        match self {
            Profile::LongFat => 1_000 * MBIT,
            Profile::Satellite | Profile::Wifi => 50 * MBIT,
            _ => 100 * MBIT,
        }
    }

    /// The round-trip propagation time (half of it each way), before jitter,
    /// reordering delay and queueing.
    pub fn rtt(self) -> Duration {
        match self {
            Profile::LongFat => Duration::from_millis(200),
            Profile::Satellite => Duration::from_millis(600),
            Profile::Wifi => Duration::from_millis(20),
            _ => Duration::from_millis(100),
        }
    }

    /// The bottleneck queue, bytes (the same each way).
    pub fn queue_limit_bytes(self) -> usize {
        match self {
            Profile::LongFat => 10 * MIB,
            Profile::Wifi => MIB / 2,
            _ => MIB,
        }
    }

    /// The path without the impairment: the preset's bandwidth, half its round
    /// trip as latency and its queue, nothing else. Efficiency on this link is
    /// the reference the preset's own is set beside.
    pub fn unimpaired(self) -> LinkConfig {
        LinkConfig::default()
            .latency(self.rtt() / 2)
            .bandwidth(self.bandwidth_bps())
            .queue_limit(self.queue_limit_bytes())
    }

    /// How long a full-size datagram (1,200 bytes) takes at the path's rate:
    /// the burst presets' loss clock, so that a burst of five datagrams lasts
    /// what five datagrams take at that rate, however slowly a sender sends.
    pub fn datagram_time(self) -> Duration {
        Duration::from_nanos(1_200 * 8 * 1_000_000_000 / self.bandwidth_bps().max(1))
    }

    /// The data direction (client to server, or sender to receiver).
    pub fn forward(self) -> LinkConfig {
        let path = self.unimpaired();
        let rtt = self.rtt();
        match self {
            Profile::Jitter16 => path.jitter(rtt / 16),
            Profile::Jitter8 => path.jitter(rtt / 8),
            Profile::Jitter4 => path.jitter(rtt / 4),
            Profile::Reorder1 => path.reorder(0.01, rtt / 8),
            Profile::Reorder5 => path.reorder(0.05, rtt / 8),
            Profile::BurstLoss => path
                .loss(Loss::bursts(0.02, 5.0))
                .loss_clock(self.datagram_time()),
            Profile::LongFat => path,
            Profile::Satellite => path.random_loss(0.01),
            Profile::Wifi => path
                .jitter(rtt / 4)
                .loss(Loss::bursts(0.01, 4.0))
                .loss_clock(self.datagram_time()),
            Profile::Flapping => path.blackhole(
                Blackhole::every(Duration::from_secs(5), Duration::from_millis(200))
                    .offset(Duration::from_secs(2)),
            ),
        }
    }

    /// The return direction (acknowledgements); every preset is symmetric, so
    /// this is [`Profile::forward`].
    pub fn backward(self) -> LinkConfig {
        self.forward()
    }

    /// The fraction of the bandwidth a perfect transport could deliver:
    /// [`LinkConfig::delivered_fraction`] of the data direction.
    pub fn allowed_fraction(self) -> f64 {
        self.forward().delivered_fraction()
    }

    /// The goodput ceiling, bits per second: the bandwidth times
    /// [`Profile::allowed_fraction`], that is
    /// `bandwidth × (1 − average loss) × (1 − outage duty cycle)`. Efficiency on
    /// the preset is goodput as a fraction of this.
    pub fn allows_bps(self) -> f64 {
        self.bandwidth_bps() as f64 * self.allowed_fraction()
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is no [`Profile`]'s; its message lists the names there are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownProfile(pub String);

impl fmt::Display for UnknownProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown network profile {:?}; the profiles are ", self.0)?;
        for (i, profile) in ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(profile.name())?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownProfile {}

impl FromStr for Profile {
    type Err = UnknownProfile;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Profile::from_name(s).ok_or_else(|| UnknownProfile(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use bytes::Bytes;

    use super::*;
    use crate::Link;
    use crate::testing::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        let mut names = HashSet::new();
        for &profile in Profile::all() {
            assert!(names.insert(profile.name()));
            assert_eq!(profile.name().parse::<Profile>(), Ok(profile));
            assert_eq!(
                Profile::from_name(&profile.name().to_uppercase()),
                Some(profile)
            );
            assert_eq!(profile.to_string(), profile.name());
            assert!(profile.forward().validate().is_ok(), "{profile}");
            assert_eq!(profile.forward(), profile.backward());
            assert!(!profile.summary().is_empty());
        }
        assert_eq!(names.len(), 10);
        let err = "dialup".parse::<Profile>().unwrap_err();
        assert!(err.to_string().contains("wifi"), "{err}");
    }

    #[test]
    fn unimpaired_is_the_same_path_with_nothing_else() {
        for &profile in Profile::all() {
            let clean = profile.unimpaired();
            let link = profile.forward();
            assert_eq!(clean.latency, link.latency);
            assert_eq!(clean.latency * 2, profile.rtt());
            assert_eq!(clean.bandwidth_bps, Some(profile.bandwidth_bps()));
            assert_eq!(clean.bandwidth_bps, link.bandwidth_bps);
            assert_eq!(clean.queue_limit_bytes, link.queue_limit_bytes);
            assert_eq!(
                clean,
                LinkConfig::default()
                    .latency(profile.rtt() / 2)
                    .bandwidth(profile.bandwidth_bps())
                    .queue_limit(profile.queue_limit_bytes())
            );
            assert!((clean.delivered_fraction() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn allowances_are_what_the_docs_say() {
        let mbit = |p: Profile| p.allows_bps() / 1e6;
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        for p in [
            Profile::Jitter16,
            Profile::Jitter8,
            Profile::Jitter4,
            Profile::Reorder1,
            Profile::Reorder5,
        ] {
            assert!(close(mbit(p), 100.0), "{p}");
        }
        assert!(close(mbit(Profile::BurstLoss), 98.0));
        assert!(close(mbit(Profile::LongFat), 1000.0));
        assert!(close(mbit(Profile::Satellite), 49.5));
        assert!(close(mbit(Profile::Wifi), 49.5));
        assert!(close(mbit(Profile::Flapping), 96.0));
    }

    #[test]
    fn jitter_widths_are_fractions_of_the_rtt() {
        assert_eq!(Profile::Jitter16.forward().jitter, ms(100) / 16);
        assert_eq!(Profile::Jitter8.forward().jitter, ms(100) / 8);
        assert_eq!(Profile::Jitter4.forward().jitter, ms(25));
        assert_eq!(Profile::Wifi.forward().jitter, Profile::Wifi.rtt() / 4);
        let reorder = Profile::Reorder5.forward();
        assert_eq!(
            (reorder.reorder, reorder.reorder_delay),
            (0.05, ms(100) / 8)
        );
    }

    /// Sends `n` datagrams back to back through `profile`'s forward link, one
    /// every `gap`, and returns which were lost (by any cause).
    fn losses(profile: Profile, n: u32, gap: Duration, seed: u64) -> (Vec<bool>, Link) {
        let t0 = base();
        // No bandwidth cap: only the impairment drops datagrams.
        let mut link = Link::new(profile.forward().unlimited_bandwidth(), seed);
        for i in 0..n {
            link.send(t0 + gap * i, numbered(i, 16));
        }
        let mut arrived = vec![false; n as usize];
        for (_, b) in drain_all(&mut link) {
            arrived[number_of(&b) as usize] = true;
        }
        (arrived.into_iter().map(|a| !a).collect(), link)
    }

    fn bursts(lost: &[bool]) -> Vec<u32> {
        let mut runs = Vec::new();
        let mut run = 0;
        for &l in lost {
            if l {
                run += 1;
            } else if run > 0 {
                runs.push(run);
                run = 0;
            }
        }
        if run > 0 {
            runs.push(run);
        }
        runs
    }

    #[test]
    fn burst_loss_rate_and_mean_burst_are_as_documented() {
        let n = 1_000_000;
        let (lost, link) = losses(Profile::BurstLoss, n, Duration::from_micros(100), 2024);
        let rate = lost.iter().filter(|&&l| l).count() as f64 / f64::from(n);
        // About 4,000 bursts: the rate's standard deviation is about 0.0008.
        assert!((rate - 0.02).abs() < 0.003, "loss rate {rate}");
        let runs = bursts(&lost);
        let mean = runs.iter().map(|&r| f64::from(r)).sum::<f64>() / runs.len() as f64;
        assert!((mean - 5.0).abs() < 0.3, "mean burst {mean}");
        assert_eq!(
            link.stats().lost,
            lost.iter().filter(|&&l| l).count() as u64
        );
        let Loss::GilbertElliott { p_bad_to_good, .. } = Profile::BurstLoss.forward().loss else {
            panic!("burst-loss is Gilbert-Elliott");
        };
        assert!((p_bad_to_good - 0.2).abs() < 1e-12);
    }

    #[test]
    fn wifi_loses_in_bursts_too() {
        let n = 1_000_000;
        let (lost, _) = losses(Profile::Wifi, n, Duration::from_micros(200), 7);
        let rate = lost.iter().filter(|&&l| l).count() as f64 / f64::from(n);
        assert!((rate - 0.01).abs() < 0.002, "loss rate {rate}");
        let runs = bursts(&lost);
        let mean = runs.iter().map(|&r| f64::from(r)).sum::<f64>() / runs.len() as f64;
        assert!((mean - 4.0).abs() < 0.3, "mean burst {mean}");
    }

    #[test]
    fn satellite_loses_one_percent_independently() {
        let n = 200_000;
        let (lost, _) = losses(Profile::Satellite, n, Duration::from_micros(200), 3);
        let rate = lost.iter().filter(|&&l| l).count() as f64 / f64::from(n);
        assert!((rate - 0.01).abs() < 0.002, "loss rate {rate}");
        let runs = bursts(&lost);
        let mean = runs.iter().map(|&r| f64::from(r)).sum::<f64>() / runs.len() as f64;
        assert!(mean < 1.1, "mean burst {mean}");
    }

    #[test]
    fn jitter_and_reorder_presets_lose_nothing_but_reorder() {
        for profile in [
            Profile::Jitter16,
            Profile::Jitter8,
            Profile::Jitter4,
            Profile::Reorder1,
            Profile::Reorder5,
            Profile::LongFat,
        ] {
            let t0 = base();
            let mut link = Link::new(profile.forward(), 11);
            let n = 20_000u32;
            // One 1,200-byte datagram every 0.1 ms: 96 Mbit/s, under every cap.
            for i in 0..n {
                link.send(t0 + Duration::from_micros(100) * i, numbered(i, 1200));
            }
            let got: Vec<u32> = drain_all(&mut link)
                .iter()
                .map(|(_, b)| number_of(b))
                .collect();
            assert_eq!(got.len(), n as usize, "{profile}");
            let late = got.windows(2).filter(|w| w[1] < w[0]).count();
            if profile == Profile::LongFat {
                assert_eq!(late, 0);
            } else {
                assert!(late > 0, "{profile} reorders");
            }
        }
    }

    #[test]
    fn flapping_goes_dark_on_schedule_and_nowhere_else() {
        let t0 = base();
        let mut link = Link::new(Profile::Flapping.forward().unlimited_bandwidth(), 1);
        link.set_origin(t0);
        // One datagram every millisecond for 30 s.
        let n = 30_000u32;
        for i in 0..n {
            link.send(t0 + ms(u64::from(i)), Bytes::from(i.to_be_bytes().to_vec()));
        }
        let got: HashSet<u32> = drain_all(&mut link)
            .iter()
            .map(|(_, b)| number_of(b))
            .collect();
        for i in 0..n {
            let dark = i >= 2_000 && (i - 2_000) % 5_000 < 200;
            assert_eq!(!got.contains(&i), dark, "datagram sent at {i} ms");
        }
        let s = link.stats();
        assert_eq!((s.blackholed, s.lost), (6 * 200, 0));
        let duty = Profile::Flapping.forward().blackhole.unwrap().duty_cycle();
        assert!((duty - 0.04).abs() < 1e-12);
    }
}
