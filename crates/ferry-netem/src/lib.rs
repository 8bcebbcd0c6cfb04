//! Ferry's lossy-link model: one direction of a network path.
//!
//! A [`Link`] accepts datagrams at a time supplied by the caller and
//! schedules them for arrival at the far end after applying, in this order:
//!
//! 1. **MTU** ([`LinkConfig::mtu`]), **outages** ([`Blackhole`]) and **loss**
//!    ([`Loss`]) — datagrams dropped by any of them never occupy the bottleneck
//!    queue;
//! 2. **bottleneck queue** — if [`LinkConfig::bandwidth_bps`] is set, datagrams are
//!    serialised one at a time and tail-dropped when the backlog would exceed
//!    [`LinkConfig::queue_limit_bytes`];
//! 3. **delay** — propagation latency, uniform jitter and, for reordered datagrams,
//!    an extra [`LinkConfig::reorder_delay`];
//! 4. **corruption** — one random bit flipped in a private copy of the payload;
//! 5. **duplication** — a second copy of the (possibly corrupted) datagram arriving
//!    slightly later.
//!
//! The model never reads the clock: it only uses the [`Instant`]s passed in, the
//! virtual time of Ferry's simulator (`ferry-sim`) or the real time of its lossy
//! UDP relay (`ferry-relay`). All randomness comes from a ChaCha8 generator seeded
//! in [`Link::new`], so the same seed and the same sequence of calls produce exactly
//! the same arrivals, bit for bit.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use bytes::Bytes;
//! use ferry_netem::{Link, LinkConfig};
//!
//! let config = LinkConfig::default()
//!     .latency(Duration::from_millis(10))
//!     .bandwidth(8_000_000); // 1 byte per microsecond
//! let mut link = Link::new(config, 7);
//! let t0 = Instant::now();
//! link.send(t0, Bytes::from_static(&[0; 1000]));
//! assert_eq!(link.next_arrival(), Some(t0 + Duration::from_micros(11_000)));
//! assert!(link.pop_arrival(t0).is_none());
//! assert_eq!(link.pop_arrival(t0 + Duration::from_millis(11)).map(|d| d.len()), Some(1000));
//! assert_eq!(link.stats().delivered, 1);
//! ```
//!
//! [`Profile`] names presets of real-network conditions built from these parts
//! (jitter that reorders, reordering, burst loss, a long fat path, a satellite-like,
//! a Wi-Fi-like and a flapping path), each with the goodput it allows a perfect
//! transport, [`Profile::allows_bps`].
//!
//! [`Instant`]: std::time::Instant

#![warn(missing_docs, unreachable_pub)]

mod config;
mod link;
mod profile;
mod queue;
#[cfg(test)]
mod testing;

pub use config::{Blackhole, DEFAULT_QUEUE_LIMIT_BYTES, IPV4_UDP_OVERHEAD, LinkConfig, Loss};
pub use link::{Link, LinkStats};
pub use profile::{Profile, UnknownProfile};
