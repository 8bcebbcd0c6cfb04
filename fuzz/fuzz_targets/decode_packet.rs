//! Fuzzes the packet codec: whatever decodes must re-encode to something that
//! decodes the same (see `check_decode` in `fuzz/common/props/decode_packet.rs`).

#![no_main]

#[allow(dead_code)]
mod props {
    include!("../common/props.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check_decode(data));
