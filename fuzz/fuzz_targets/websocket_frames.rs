//! Fuzzes the WebSocket framing of the fallback transport: no input panics,
//! allocates beyond the message limit or takes more than it was given, and
//! every message decoded round-trips (see `check_websocket_frames` in
//! `fuzz/common/async_props/websocket_frames.rs`).

#![no_main]

mod props {
    include!("../common/async_props/websocket_frames.rs");
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| props::check_websocket_frames(data));
