//! Deterministic lossy-link model: one direction of a simulated network path.
//!
//! The model is the [`ferry_netem`] crate's, shared with Ferry's lossy UDP relay
//! (which runs it in real time); the simulator runs it in virtual time. Its
//! items are re-exported here and at the crate root, so `ferry_sim::link::Link`
//! and `ferry_sim::LinkConfig` name the same types as `ferry_netem::Link` and
//! `ferry_netem::LinkConfig`. So are its named real-network presets,
//! [`Profile`].

pub use ferry_netem::{
    Blackhole, DEFAULT_QUEUE_LIMIT_BYTES, IPV4_UDP_OVERHEAD, Link, LinkConfig, LinkStats, Loss,
    Profile, UnknownProfile,
};
