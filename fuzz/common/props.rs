// Properties of ferry-proto checked on arbitrary input, one per file in
// `props/`, each the check of one cargo-fuzz target of the same name:
//
//   props/decode_packet.rs      `check_decode`          the packet codec round trip
//   props/endpoint_listener.rs  `check_endpoint`        a listening endpoint
//   props/endpoint_starter.rs   `check_starter`         an endpoint mid-session as the starter
//   props/handshake.rs          `check_handshake`       two endpoints over a fuzzed network
//   props/keyed_listener.rs     `check_keyed_listener`  a listener holding a pre-shared key
//   props/diode_receiver.rs     `check_diode_receiver`  a diode receiver
//   props/ticket.rs             `check_ticket`          resumption tickets forged, altered, stored
//
// and two files of helpers: `props/shared.rs` (the record format the stateful
// properties read, the addresses and flags it names, packets sealed and opened
// as the endpoint does) and `props/endpoint_driver.rs` (the checking driver of
// the two endpoint properties). Each file's opening comment says what its
// property feeds and what it checks.
//
// This file is shared by the cargo-fuzz targets in `fuzz/fuzz_targets/` and by
// the stable test `crates/ferry-proto/tests/fuzz_corpus.rs`, which replays the
// seed corpora and past crashes; each `include!`s it inside a `mod props { … }`,
// and it `include!`s each file of `props/` as a submodule (paths relative to
// this file), re-exporting what the targets and the test call. It depends only
// on ferry-proto and bytes. (An `include!`d file cannot hold inner doc
// comments, hence these plain ones.)

/// The record format and packet helpers every property shares.
pub mod shared {
    include!("props/shared.rs");
}

/// The driver and checks shared by `check_endpoint` and `check_starter`.
pub mod endpoint_driver {
    include!("props/endpoint_driver.rs");
}

/// `check_decode`: the packet codec round trip.
pub mod decode_packet {
    include!("props/decode_packet.rs");
}

/// `check_endpoint`: a listening endpoint fed arbitrary datagrams.
pub mod endpoint_listener {
    include!("props/endpoint_listener.rs");
}

/// `check_starter`: an endpoint mid-session as the starter.
pub mod endpoint_starter {
    include!("props/endpoint_starter.rs");
}

/// `check_handshake`: two endpoints over a network the fuzzer runs.
pub mod handshake {
    include!("props/handshake.rs");
}

/// `check_keyed_listener`: a listener holding a pre-shared key.
pub mod keyed_listener {
    include!("props/keyed_listener.rs");
}

/// `check_diode_receiver`: a diode receiver fed arbitrary datagrams.
pub mod diode_receiver {
    include!("props/diode_receiver.rs");
}

/// `check_ticket`: resumption tickets forged, altered and stored.
pub mod ticket {
    include!("props/ticket.rs");
}

// What the targets and the replay test call, at the top of `props`. Each
// includer uses only some of it (a target, its own check), hence the `allow`.
#[allow(unused_imports)]
pub use {
    decode_packet::check_decode, diode_receiver::check_diode_receiver,
    endpoint_listener::check_endpoint, endpoint_starter::OUR_SESSION,
    endpoint_starter::check_starter, handshake::check_handshake,
    keyed_listener::check_keyed_listener, shared::*, ticket::check_ticket,
    ticket::genuine_stored_ticket, ticket::ticket_seeds,
};
