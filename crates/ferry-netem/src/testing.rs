//! Helpers shared by the unit tests.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::{Link, LinkConfig};

/// The one place a real clock is read: `Instant` has no other constructor, so the
/// tests (like the simulator) take a single base instant and add durations to it.
pub(crate) fn base() -> Instant {
    Instant::now()
}

/// `n` milliseconds.
pub(crate) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A datagram of `len` bytes (at least 4) that starts with `i`, big-endian.
pub(crate) fn numbered(i: u32, len: usize) -> Bytes {
    let mut v = vec![0u8; len.max(4)];
    v[..4].copy_from_slice(&i.to_be_bytes());
    Bytes::from(v)
}

/// The number a [`numbered`] datagram starts with.
pub(crate) fn number_of(b: &Bytes) -> u32 {
    u32::from_be_bytes(b[..4].try_into().unwrap())
}

/// Pops everything that has arrived by `until`, with arrival times.
pub(crate) fn drain(link: &mut Link, until: Instant) -> Vec<(Instant, Bytes)> {
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

/// Pops everything in flight, with arrival times.
pub(crate) fn drain_all(link: &mut Link) -> Vec<(Instant, Bytes)> {
    let mut out = Vec::new();
    while let Some(at) = link.next_arrival() {
        out.push((at, link.pop_arrival(at).unwrap()));
    }
    out
}

/// Every condition at once: delay, jitter, loss, reordering, duplication,
/// corruption and a small bottleneck queue.
pub(crate) fn chaotic_config() -> LinkConfig {
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
