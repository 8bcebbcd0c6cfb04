// A listener with a pre-shared key fed arbitrary datagrams (fuzz target
// `keyed_listener`).
//
// `check_keyed_listener(data)`: the records (the format of `shared.rs`;
// `SEAL` appends a valid checksum, so Connects parse and reach the handshake)
// are fed to a listener that holds the key `FUZZ_KEY`. The fuzzer does not know
// the key, so nothing it sends may ever get in. Checked throughout:
//
//   - no event at all (no `Connected`, nothing delivered);
//   - the listener holds no session;
//   - everything it sends is a Close under the checksum (a stateless refusal),
//     to an address that sent something;
//   - every datagram fed is counted.

use std::collections::HashSet;
use std::time::Instant;

use bytes::BytesMut;
use ferry_proto::crypto::PreSharedKey;
use ferry_proto::wire::packet::Packet;
use ferry_proto::{Config, Endpoint};

use super::shared::{FROM_OTHER, FUZZ_KEY, OTHER, PEER, SEAL, next_record, open, seal, step_duration};

/// Feeds `data` (records) to a listener holding `FUZZ_KEY`; nothing may get in.
pub fn check_keyed_listener(data: &[u8]) -> u64 {
    let config = Config {
        accept_incoming: true,
        psk: Some(PreSharedKey::from_bytes(FUZZ_KEY)),
        ..Config::default()
    };
    let mut endpoint = Endpoint::new(config, 7).expect("valid fuzzing config");
    let mut now = Instant::now();
    let mut senders = HashSet::new();
    let mut buf = Vec::new();
    let mut fed = 0;
    let mut refusals = 0;
    let mut input = data;
    while let Some((step, flags, bytes)) = next_record(&mut input) {
        now += step_duration(step);
        endpoint.handle_timeout(now);
        let from = if flags & FROM_OTHER != 0 { OTHER } else { PEER };
        let datagram = if flags & SEAL != 0 {
            seal(bytes.to_vec())
        } else {
            bytes.to_vec()
        };
        senders.insert(from);
        endpoint.handle_datagram(now, from, BytesMut::from(&datagram[..]));
        fed += 1;
        if let Some(event) = endpoint.poll_event() {
            panic!("a listener with a key let in a stranger: {event:?}");
        }
        assert_eq!(endpoint.session_count(), 0, "state kept for a stranger");
        while let Some(t) = endpoint.poll_transmit(now, &mut buf) {
            assert!(senders.contains(&t.destination), "sent to {}", t.destination);
            let (header, packet) = open(&buf[..t.size]).expect("refusals carry a checksum");
            assert!(
                matches!(packet, Packet::Close(_)),
                "a keyed listener answered a stranger with {:?}",
                header.kind
            );
            refusals += 1;
        }
    }
    assert_eq!(endpoint.stats().datagrams_received, fed);
    refusals
}
