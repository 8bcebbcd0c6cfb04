//! A deterministic network simulator for Ferry.
//!
//! [`Network`] joins any number of [`ferry_proto::Endpoint`]s by one-way
//! [`Link`]s in virtual time: nothing sleeps, and a 100 MB transfer over a
//! 100 ms path takes as long as the packets take to process, not to travel.
//! Every random choice (loss, burst loss, reordering, duplication, corruption,
//! jitter) comes from generators seeded by the network's seed, so the same seed
//! gives the same run, bit for bit.
//!
//! [`Transfer`] drives the common scenario — one session, many messages, every
//! byte checked — and reports what happened; [`Efficiency`] runs one bulk
//! transfer over a lossy bottleneck, or over a named real-network [`Profile`]
//! (jitter, reordering, burst loss, long fat, satellite, Wi-Fi, flapping),
//! and reports goodput against what the path allows.
//!
//! ```
//! use std::time::Duration;
//! use ferry_sim::{LinkConfig, Transfer};
//!
//! let link = LinkConfig::default()
//!     .latency(Duration::from_millis(10))
//!     .random_loss(0.05)
//!     .bandwidth(100_000_000);
//! let messages: Vec<Vec<u8>> = (0..100u32).map(|i| vec![i as u8; 3000]).collect();
//! let report = Transfer::new(7, link).run(messages.clone(), Duration::from_secs(60));
//! assert!(report.complete(), "{report:?}");
//! ```

#![warn(missing_docs, unreachable_pub)]

mod balancer;
pub mod diode;
mod efficiency;
pub mod link;
mod network;
mod transfer;

pub use balancer::{BalancePolicy, BalancerId};
pub use efficiency::{Efficiency, EfficiencyReport};
pub use link::{Blackhole, Link, LinkConfig, LinkStats, Loss, Profile, UnknownProfile};
pub use network::{BottleneckId, Network, NodeId, TransmitStats};
pub use transfer::{Transfer, TransferReport};
