//! The wire format: everything that decides what bytes travel, and nothing
//! above it. This layer imports only [`crate::crypto`] (the packet keys that
//! seal a trailer), the session ids and [`crate::error`]; sessions, streams'
//! state and the endpoint build on it.
//!
//! - [`codec`]: variable-length integers and a bounds-checked reader;
//! - [`packet`]: the header, every packet kind and its body;
//! - [`protection`]: sealing and opening a packet's trailer (CRC-32 or AEAD);
//! - [`stream`]: stream ids, kinds and the stream control operations.

pub mod codec;
pub mod packet;
pub mod protection;
pub mod stream;
