// An endpoint mid-session as the starter, fed arbitrary datagrams from its
// peer (fuzz target `endpoint_starter`).
//
// `check_starter(data)`: the endpoint connected to [`PEER`], got a valid
// ConnectAck and sent [`STARTER_MESSAGES`]; then `data`, records as in
// `shared.rs` with one more flag, [`OUR_SESSION`], comes from its peer. What
// the driver (`endpoint_driver.rs`) checks for a listener holds from the
// starter's side too, with these differences: every datagram of its session
// goes to the peer, within the MTU, and any other is the refusal of a valid
// Connect (a Close); it never sends a Datagram or a ConnectAck, nor a Connect
// once connected; `SendReady` may come (it sends).

use bytes::Bytes;
use ferry_proto::Config;
use ferry_proto::wire::packet::{Handshake, Packet};

use super::endpoint_driver::{Driver, Life, Reached};
use super::shared::{HANDSHAKE, PEER, QUIET, datagram};

/// Record flag of `check_starter`: the datagram's session id (bytes 2..10)
/// is overwritten with the starter's, which the fuzzer cannot know, before
/// any checksum is added.
pub const OUR_SESSION: u8 = 0b100;

/// The sizes of the messages the starter sends once connected.
pub const STARTER_MESSAGES: [usize; 3] = [100, 5_000, 40_000];

/// Feeds `data` (records, with the [`OUR_SESSION`] flag too) to an endpoint
/// that started a session to [`PEER`], got a valid ConnectAck and sent
/// [`STARTER_MESSAGES`]: an endpoint mid-session. Checks what the listener
/// check does, from the starter's side: every datagram of its session goes to
/// the peer, within the MTU, and any other is the refusal of a valid Connect;
/// events follow the session's life; nothing
/// is delivered that valid Data did not carry; and ten quiet minutes after the
/// last datagram the session has closed.
pub fn check_starter(data: &[u8]) -> Reached {
    let mut driver = Driver::new(Config::default());
    let id = driver
        .endpoint
        .connect(driver.now, PEER)
        .expect("connect");
    driver.starter = Some(id);
    driver.connects.insert(id);
    driver.senders.insert(PEER);
    driver.drain();
    driver.feed(PEER, &datagram(
        &Packet::ConnectAck(Handshake {
            listener_id: Some(id),
            ..HANDSHAKE
        }),
        id,
        0,
    ));
    assert_eq!(
        driver.lives.get(&id),
        Some(&Life::Connected),
        "a valid ConnectAck connects the starter"
    );
    {
        let mut session = driver.endpoint.session(id).expect("connected");
        for (i, &len) in STARTER_MESSAGES.iter().enumerate() {
            session
                .send(Bytes::from(vec![i as u8; len]))
                .expect("room for the first messages");
        }
    }
    driver.drain();
    driver.feed_records(data, Some(id));
    driver.run_until(driver.now + QUIET);
    driver.check_all_closed();
    Reached {
        sessions: driver.lives.len(),
        messages: driver.message_count,
        datagrams: driver.datagram_count,
    }
}
