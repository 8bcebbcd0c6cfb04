//! Fuzzes a listener that holds a pre-shared key: nothing the fuzzer sends
//! may get in (see `check_keyed_listener` in `fuzz/common/props/keyed_listener.rs`).

#![no_main]

#[allow(dead_code)]
mod props {
    include!("../common/props.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    props::check_keyed_listener(data);
});
