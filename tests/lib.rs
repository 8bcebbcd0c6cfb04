//! Shared harness of the cross-crate tests: one small interface over every
//! driver, so that each can play client or server against each other, and
//! [`on_every_driver!`], the one way to run a scenario on every driver
//! (`conformance.rs`, `streams.rs`, `manager.rs` use it).
//!
//! The async drivers share their handle types (`ferry_async`); what differs is
//! the runtime that runs the driver task. Their handles are driven here from
//! the test thread with a runtime-free `block_on`, while the driver runs on its
//! own runtime's threads.

#![warn(missing_docs, unreachable_pub)]

pub mod harness;
pub mod tapped;

/// The guide's Rust snippets, compiled and run as doc tests so that they stay
/// true.
#[doc = include_str!("../docs/guide.md")]
#[cfg(doctest)]
pub struct Guide;

/// The diode settings both sides of the diode fault tests use: heartbeats
/// every 100 ms, a sender paced slowly enough to be killed mid-session.
pub fn diode_fault_config() -> ferry_proto::diode::DiodeConfig {
    ferry_proto::diode::DiodeConfig {
        heartbeat: std::time::Duration::from_millis(100),
        bandwidth: 40_000_000,
        block_size: 64 * 1024,
        ..ferry_proto::diode::DiodeConfig::default()
    }
}
