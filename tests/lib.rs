//! Shared harness of the cross-crate tests: one small interface over every
//! driver, so that each can play client or server against each other.
//!
//! The async drivers share their handle types (`ferry_async`); what differs is
//! the runtime that runs the driver task. Their handles are driven here from
//! the test thread with a runtime-free `block_on`, while the driver runs on its
//! own runtime's threads.

#![warn(missing_docs, unreachable_pub)]

pub mod harness;

/// The guide's Rust snippets, compiled and run as doc tests so that they stay
/// true.
#[doc = include_str!("../docs/guide.md")]
#[cfg(doctest)]
pub struct Guide;
