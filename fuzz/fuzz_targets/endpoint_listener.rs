//! Fuzzes a listening endpoint with timed datagrams from two peers and checks what
//! it delivers, sends and keeps (see `check_endpoint` in `fuzz/common/props/endpoint_listener.rs`).

#![no_main]

#[allow(dead_code)]
mod props {
    include!("../common/props.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    props::check_endpoint(data);
});
