//! Fuzzes resumption tickets: forged or altered ones never resume a session
//! nor get early data delivered, the genuine one resumes once, a stored one
//! reads back the same (see `check_ticket` in `fuzz/common/props/ticket.rs`).

#![no_main]

#[allow(dead_code)]
mod props {
    include!("../common/props.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    props::check_ticket(data);
});
