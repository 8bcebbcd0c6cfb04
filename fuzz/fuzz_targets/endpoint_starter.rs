//! Fuzzes an endpoint mid-session as the starter: it connected, got a valid
//! ConnectAck and sent three messages; then timed datagrams from its peer
//! (see `check_starter` in `fuzz/common/props/endpoint_starter.rs`).

#![no_main]

#[allow(dead_code)]
mod props {
    include!("../common/props.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    props::check_starter(data);
});
