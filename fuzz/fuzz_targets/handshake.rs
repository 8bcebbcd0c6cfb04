//! Fuzzes the handshake between two real endpoints, with and without keys,
//! over a network the fuzzer runs: it drops, duplicates, corrupts, reorders
//! and forges datagrams (see `check_handshake` in `fuzz/common/props/handshake.rs`).

#![no_main]

#[allow(dead_code)]
mod props {
    include!("../common/props.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    props::check_handshake(data);
});
