//! The state of one direction of the relay: its [`Link`], corruption, blackhole and
//! counters. Everything here is plain data; the threads live in `relay.rs`.

use std::time::Instant;

use bytes::Bytes;
use ferry_netem::{Link, LinkConfig, LinkStats};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Length of the routing header the relay puts in front of every datagram it hands
/// to a [`Link`]: the client's index as a little-endian `u32`.
///
/// The link model carries nothing but bytes, so the route has to travel inside them.
pub(crate) const HEADER_LEN: usize = 4;

/// Counters of one direction of a [`Relay`](crate::Relay).
///
/// Every datagram read from a socket is either blackholed on entry (by
/// [`Relay::blackhole`](crate::Relay::blackhole)) or passed to the direction's link
/// (and counted in [`LinkStats::sent`]; the link's own periodic outages,
/// [`LinkConfig::blackhole`], drop some of those, counted in
/// [`LinkStats::blackholed`]). Every datagram the link
/// releases ([`LinkStats::delivered`], duplicate copies included) is either blackholed
/// in flight, forwarded, or lost to a send error:
///
/// ```text
/// received  = link.sent + (blackholed - blackholed_in_flight)
/// delivered = forwarded + blackholed_in_flight + send_errors
/// ```
///
/// Byte counts in [`DirectionStats::link`] are payload bytes (the relay's internal
/// routing header is not included) and [`LinkStats::corrupted`] counts the relay's own
/// corruption (see [`Relay`](crate::Relay)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DirectionStats {
    /// What the link model did: loss, queue drops, duplication, reordering, corruption.
    pub link: LinkStats,
    /// Datagrams dropped by [`Relay::blackhole`](crate::Relay::blackhole), on entry or
    /// in flight.
    pub blackholed: u64,
    /// The part of [`DirectionStats::blackholed`] that had entered the link before the
    /// blackhole and would have been delivered while it was active.
    pub blackholed_in_flight: u64,
    /// Datagrams written to the outgoing socket.
    pub forwarded: u64,
    /// Datagrams the link released but the outgoing socket refused (for example a full
    /// send buffer, or an ICMP "port unreachable" reported by a connected socket).
    pub send_errors: u64,
}

/// Whether, and until when, a direction drops everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Blackhole {
    Off,
    Until(Instant),
    /// The requested end is beyond what [`Instant`] can represent.
    Forever,
}

impl Blackhole {
    fn active(self, now: Instant) -> bool {
        match self {
            Blackhole::Off => false,
            Blackhole::Until(end) => now < end,
            Blackhole::Forever => true,
        }
    }
}

/// One direction: a [`Link`] plus what the relay adds around it.
#[derive(Debug)]
pub(crate) struct Direction {
    link: Link,
    /// Corruption probability; applied by the relay, not the link, so that the routing
    /// header is never corrupted.
    corrupt: f64,
    corrupt_rng: ChaCha8Rng,
    corrupted: u64,
    blackhole: Blackhole,
    blackholed: u64,
    blackholed_in_flight: u64,
    forwarded: u64,
    send_errors: u64,
    /// Latest time passed to the link; keeps the link's clock monotonic.
    last_now: Option<Instant>,
}

impl Direction {
    /// `config` must be valid. The link's periodic outages, if any, count from
    /// `origin`.
    pub(crate) fn new(
        config: &LinkConfig,
        origin: Instant,
        link_seed: u64,
        corrupt_seed: u64,
    ) -> Self {
        let mut link = Link::new(link_config(config), link_seed);
        link.set_origin(origin);
        Self {
            link,
            corrupt: config.corrupt,
            corrupt_rng: ChaCha8Rng::seed_from_u64(corrupt_seed),
            corrupted: 0,
            blackhole: Blackhole::Off,
            blackholed: 0,
            blackholed_in_flight: 0,
            forwarded: 0,
            send_errors: 0,
            last_now: None,
        }
    }

    /// `config` must be valid.
    pub(crate) fn set_config(&mut self, config: &LinkConfig) {
        self.link.set_config(link_config(config));
        self.corrupt = config.corrupt;
    }

    pub(crate) fn set_blackhole(&mut self, blackhole: Blackhole) {
        self.blackhole = blackhole;
    }

    /// A datagram read from a socket enters this direction. `frame` is the routing
    /// header followed by the payload.
    pub(crate) fn ingress(&mut self, now: Instant, mut frame: Vec<u8>) {
        debug_assert!(frame.len() >= HEADER_LEN);
        let now = self.last_now.map_or(now, |last| now.max(last));
        self.last_now = Some(now);
        if self.blackhole.active(now) {
            self.blackholed += 1;
            return;
        }

        // Corrupt before the link sees the datagram, like the link itself does (so both
        // copies of a duplicate carry the same flipped bit), but only count datagrams the
        // link keeps, as the link would.
        let payload_bits = (frame.len() - HEADER_LEN) * 8;
        let corrupt = payload_bits > 0 && chance(&mut self.corrupt_rng, self.corrupt);
        if corrupt {
            let bit = self.corrupt_rng.random_range(0..payload_bits);
            frame[HEADER_LEN + bit / 8] ^= 1 << (bit % 8);
        }

        let stats = self.link.stats();
        let dropped_before = stats.lost + stats.queue_dropped;
        self.link.send(now, Bytes::from(frame));
        let stats = self.link.stats();
        if corrupt && stats.lost + stats.queue_dropped == dropped_before {
            self.corrupted += 1;
        }
    }

    /// Takes the next datagram due at `now` that the blackhole lets through, as
    /// `(client index, payload)`. The caller must report the outcome of sending it with
    /// [`Direction::record_send`].
    pub(crate) fn pop_due(&mut self, now: Instant) -> Option<(usize, Bytes)> {
        while let Some(frame) = self.link.pop_arrival(now) {
            if self.blackhole.active(now) {
                self.blackholed += 1;
                self.blackholed_in_flight += 1;
                continue;
            }
            let mut id = [0u8; HEADER_LEN];
            id.copy_from_slice(&frame[..HEADER_LEN]);
            let id = u32::from_le_bytes(id) as usize;
            return Some((id, frame.slice(HEADER_LEN..)));
        }
        None
    }

    pub(crate) fn record_send(&mut self, ok: bool) {
        if ok {
            self.forwarded += 1;
        } else {
            self.send_errors += 1;
        }
    }

    pub(crate) fn next_arrival(&self) -> Option<Instant> {
        self.link.next_arrival()
    }

    pub(crate) fn stats(&self) -> DirectionStats {
        let mut link = self.link.stats().clone();
        let header = HEADER_LEN as u64;
        link.sent_bytes -= header * link.sent;
        link.delivered_bytes -= header * link.delivered;
        link.corrupted = self.corrupted;
        DirectionStats {
            link,
            blackholed: self.blackholed,
            blackholed_in_flight: self.blackholed_in_flight,
            forwarded: self.forwarded,
            send_errors: self.send_errors,
        }
    }
}

/// Builds the frame the link carries: routing header, then payload.
pub(crate) fn frame(id: usize, payload: &[u8]) -> Vec<u8> {
    let id = u32::try_from(id).expect("client index fits in u32");
    let mut frame = Vec::with_capacity(HEADER_LEN + payload.len());
    frame.extend_from_slice(&id.to_le_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// The configuration handed to the link: the relay does corruption itself.
fn link_config(config: &LinkConfig) -> LinkConfig {
    LinkConfig {
        corrupt: 0.0,
        ..config.clone()
    }
}

/// Bernoulli trial; draws only when `0 < p < 1`, like the link.
fn chance(rng: &mut ChaCha8Rng, p: f64) -> bool {
    if p <= 0.0 {
        false
    } else if p >= 1.0 {
        true
    } else {
        rng.random::<f64>() < p
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn header_is_stripped_and_not_counted() {
        let t0 = Instant::now();
        let mut dir = Direction::new(&LinkConfig::default(), t0, 1, 2);
        dir.ingress(t0, frame(7, b"hello"));
        dir.ingress(t0, frame(3, b""));
        let (id, payload) = dir.pop_due(t0).unwrap();
        assert_eq!((id, &payload[..]), (7, &b"hello"[..]));
        let (id, payload) = dir.pop_due(t0).unwrap();
        assert_eq!((id, payload.len()), (3, 0));
        dir.record_send(true);
        dir.record_send(false);
        let stats = dir.stats();
        assert_eq!((stats.link.sent, stats.link.sent_bytes), (2, 5));
        assert_eq!(stats.link.delivered_bytes, 5);
        assert_eq!((stats.forwarded, stats.send_errors), (1, 1));
    }

    #[test]
    fn corruption_spares_the_header_and_is_counted() {
        let t0 = Instant::now();
        let config = LinkConfig::default().corrupt(1.0).duplicate(1.0);
        let mut dir = Direction::new(&config, t0, 1, 2);
        let payload = [0x5Au8; 32];
        for i in 0..100 {
            dir.ingress(t0, frame(i, &payload));
        }
        let mut popped = 0;
        let t1 = t0 + Duration::from_millis(1);
        while let Some((id, got)) = dir.pop_due(t1) {
            assert!(id < 100);
            let flipped: u32 = got
                .iter()
                .zip(payload)
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            assert_eq!(flipped, 1);
            popped += 1;
        }
        assert_eq!(popped, 200);
        assert_eq!(dir.stats().link.corrupted, 100);
        // An empty datagram cannot be corrupted.
        dir.ingress(t1, frame(0, b""));
        assert_eq!(dir.stats().link.corrupted, 100);
    }

    #[test]
    fn lost_datagrams_are_not_counted_as_corrupted() {
        let t0 = Instant::now();
        let config = LinkConfig::default().corrupt(1.0).random_loss(1.0);
        let mut dir = Direction::new(&config, t0, 1, 2);
        dir.ingress(t0, frame(0, b"x"));
        let stats = dir.stats();
        assert_eq!((stats.link.lost, stats.link.corrupted), (1, 0));
    }

    #[test]
    fn blackhole_on_entry_and_in_flight() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut dir = Direction::new(&LinkConfig::default().latency(ms(10)), t0, 1, 2);
        dir.ingress(t0, frame(0, b"in flight"));
        dir.set_blackhole(Blackhole::Until(t0 + ms(20)));
        dir.ingress(t0 + ms(1), frame(0, b"entry"));
        assert!(dir.pop_due(t0 + ms(15)).is_none());
        dir.ingress(t0 + ms(20), frame(0, b"after"));
        assert_eq!(dir.pop_due(t0 + ms(30)).unwrap().1, &b"after"[..]);
        let stats = dir.stats();
        assert_eq!((stats.blackholed, stats.blackholed_in_flight), (2, 1));
        assert_eq!((stats.link.sent, stats.link.delivered), (2, 2));
        dir.set_blackhole(Blackhole::Forever);
        dir.ingress(t0 + ms(40), frame(0, b"forever"));
        assert_eq!(dir.stats().blackholed, 3);
    }

    #[test]
    fn periodic_outages_count_from_the_origin() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let config =
            LinkConfig::default().blackhole(ferry_netem::Blackhole::every(ms(100), ms(10)));
        let mut dir = Direction::new(&config, t0, 1, 2);
        // Sent 105 ms after the origin: dark. 115 ms: through.
        dir.ingress(t0 + ms(105), frame(0, b"dark"));
        dir.ingress(t0 + ms(115), frame(0, b"light"));
        assert_eq!(dir.pop_due(t0 + ms(200)).unwrap().1, &b"light"[..]);
        assert!(dir.pop_due(t0 + ms(200)).is_none());
        let stats = dir.stats();
        assert_eq!((stats.link.sent, stats.link.blackholed), (2, 1));
        assert_eq!(stats.blackholed, 0);
    }

    #[test]
    fn clock_never_goes_backwards_for_the_link() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let config = LinkConfig::default().bandwidth(8_000).queue_limit(10_000);
        let mut dir = Direction::new(&config, t0, 1, 2);
        dir.ingress(t0 + ms(5), frame(0, &[0; 96]));
        // An earlier timestamp is treated as the latest one seen.
        dir.ingress(t0, frame(0, &[0; 96]));
        assert_eq!(dir.next_arrival(), Some(t0 + ms(5) + ms(100)));
    }
}
