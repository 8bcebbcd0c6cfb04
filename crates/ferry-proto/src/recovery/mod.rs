//! The pieces of loss recovery a session is built from: what arrived and
//! when to acknowledge it ([`ack`]), what is in flight and what was lost
//! ([`sent`]), and the round-trip time ([`rtt`]). The session's own recovery
//! logic, which drives them, is in `session/recovery.rs`; congestion control
//! is beside this folder, in `congestion/`.

pub(crate) mod ack;
pub(crate) mod reorder;
pub(crate) mod rtt;
pub(crate) mod sent;
