// A listening endpoint fed arbitrary datagrams (fuzz target `endpoint_listener`).
//
// `check_endpoint(data)`: `data` is a sequence of records (format in
// `shared.rs`; flags `SEAL` and `FROM_OTHER`), each a datagram sent to a
// listening `Endpoint` (`listener_config`) after some time has passed. Timers
// that fall due meanwhile fire at their deadlines, as in a real driver
// (`endpoint_driver.rs`).
//
// Every run starts with a valid Connect for session `SESSION` from `PEER` (packet
// number 0), so the fuzzer starts from an established session. After the last
// record the clock runs on for ten minutes (`QUIET`) with no input. Checked
// throughout:
//
//   - every datagram the endpoint sends is at most the MTU, goes to an address that
//     sent something, carries a valid checksum, decodes, belongs to a session some
//     valid Connect named, and is no Connect, Data or Datagram (the application here
//     never connects or sends); to an address that has not proved it receives
//     there (an echoed path challenge or retry token), it sends at most
//     `amplification_factor` times what it received from it;
//   - `Connected` comes once per session, only for a session some valid Connect
//     named, and before any other event of that session; nothing follows `Closed`;
//   - every `Readable` or `StreamReadable` event has at least one message to
//     take (`recv_on`), each at most `max_message_size`, and the bytes of all
//     messages taken never exceed the payload bytes of the valid Data packets
//     fed; a `Datagram` event carries the payload of a valid Datagram packet fed,
//     and there are never more of them than such packets;
//   - no `SendReady` (nothing was ever sent) and no `Closed` with a local reason;
//   - `session_count() <= max_sessions`, `recv_memory() <= max_recv_memory`;
//     every session the endpoint holds was announced, and an announced session
//     only disappears after `Closed`;
//   - the endpoint's stats count every datagram fed and every session announced;
//   - `handle_timeout(now)` does not keep leaving a deadline at or before `now`
//     (more than 16 rounds in a row fails: a driver sleeping until
//     `poll_timeout` would spin);
//   - ten quiet minutes after the last datagram every session has closed.

use ferry_proto::Config;
use ferry_proto::wire::packet::Packet;

use super::endpoint_driver::{Driver, Reached};
use super::shared::{HANDSHAKE, PEER, QUIET, SESSION, datagram};

/// The configuration of the fuzzed listener: the defaults, accepting sessions,
/// with few enough sessions allowed that the limit is reachable.
pub fn listener_config() -> Config {
    Config {
        accept_incoming: true,
        max_sessions: 4,
        // Reachable too: beyond one unproven session, connects get a retry,
        // and a few large messages fill the endpoint's receive memory.
        max_pending_handshakes: 1,
        max_message_size: 256 << 10,
        recv_window: 512 << 10,
        max_recv_window: 512 << 10,
        stream_recv_window: 512 << 10,
        max_stream_recv_window: 512 << 10,
        max_recv_memory: 512 << 10,
        ..Config::default()
    }
}

/// Feeds `data` (records, as described at the top of this file) to a listening
/// endpoint after a valid Connect, checking every output.
pub fn check_endpoint(data: &[u8]) -> Reached {
    let mut driver = Driver::new(listener_config());
    driver.feed(PEER, &datagram(&Packet::Connect(HANDSHAKE), SESSION, 0));
    driver.feed_records(data, None);
    driver.run_until(driver.now + QUIET);
    driver.check_all_closed();
    Reached {
        sessions: driver.lives.len(),
        messages: driver.message_count,
        datagrams: driver.datagram_count,
    }
}
