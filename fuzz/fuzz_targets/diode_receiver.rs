//! Fuzzes a diode receiver with timed datagrams and checks what it delivers (see
//! `check_diode_receiver` in `fuzz/common/props/diode_receiver.rs`).

#![no_main]

#[allow(dead_code)]
mod props {
    include!("../common/props.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    props::check_diode_receiver(data);
});
