//! Real sockets through the project's lossy relay with jitter that reorders
//! datagrams (5 ms latency, 0–2 ms jitter each way, so datagrams sent less
//! than 2 ms apart often overtake each other), on every driver: every byte
//! arrives, in order, exactly once. Nothing here is timed: reordering may cost
//! time (spurious retransmissions), never data.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ferry_async::{CloseReason, Config, SessionStats};
use ferry_relay::{LinkConfig, Relay};
use ferry_tests::harness::{Driver, Messages, Peer, through_relay, within};

/// Latency 5 ms, jitter 0–2 ms: reordering by jitter alone.
fn jittery() -> LinkConfig {
    LinkConfig::default()
        .latency(Duration::from_millis(5))
        .jitter(Duration::from_millis(2))
}

/// The end of the stream: after the last message, and a message no index
/// of [`Messages`] can be mistaken for (its check is by index and size).
const END: &[u8] = b"end of the stream";

/// Sends messages of the sizes in `plan` and then [`END`] from `client` to
/// `server` through `to`. The server checks each message against its index,
/// then that the next one is [`END`] (a message delivered twice, or one
/// missing, would be out of place), and that the session delivered exactly
/// `plan.len() + 1` messages and nothing after the client's close. Returns
/// the client session's counters (read before the close) and the server.
fn exact_stream(
    client: &dyn Peer,
    server: Box<dyn Peer>,
    to: SocketAddr,
    plan: Vec<usize>,
) -> (SessionStats, Box<dyn Peer>) {
    let count = plan.len();
    let expected = plan.clone();
    let receiver = std::thread::spawn(move || {
        let session = server.accept().expect("session");
        for (i, &size) in expected.iter().enumerate() {
            let data = session.recv().expect("message");
            assert!(
                Messages::check(i, size, &data),
                "message {i}: {} bytes, expected {size}",
                data.len()
            );
        }
        assert_eq!(&session.recv().expect("the end")[..], END);
        session.send(Bytes::from_static(b"done")).unwrap();
        assert_eq!(
            session.closed(),
            CloseReason::Remote {
                code: 0,
                reason: Default::default()
            }
        );
        assert!(session.recv().is_err(), "a message after the end");
        assert_eq!(session.stats().messages_received, count as u64 + 1);
        server
    });
    let session = client.connect(to).expect("connect through the relay");
    for (i, &size) in plan.iter().enumerate() {
        session.send(Messages::content(i, size)).unwrap();
    }
    session.send(Bytes::from_static(END)).unwrap();
    assert_eq!(&session.recv().unwrap()[..], b"done");
    let stats = session.stats();
    session.close(0);
    (stats, receiver.join().unwrap())
}

/// `count` sizes spread from 0 to `max` bytes (see [`Messages`]).
fn mixed(seed: u64, count: usize, max: usize) -> Vec<usize> {
    let mut sizes = Messages::new(seed, max);
    (0..count).map(|_| sizes.next_size()).collect()
}

fn run(driver: Driver, link: LinkConfig, seed: u64, plan: Vec<usize>) {
    within(120, move || {
        let (client, server, relay) = through_relay(driver, link, Config::default(), seed);
        let (count, bytes) = (plan.len(), plan.iter().sum::<usize>());
        let started = Instant::now();
        let (stats, server) = exact_stream(client.as_ref(), server, relay.local_addr(), plan);
        println!(
            "{driver:?}: {count} messages, {bytes} bytes in {:?}; client sent {} packets, \
             {} retransmitted, {} declared lost; relay reordered (held back) {}",
            started.elapsed(),
            stats.packets_sent,
            stats.retransmitted,
            stats.lost,
            relay.stats().to_upstream.link.reordered,
        );
        let link = relay.stats();
        assert_eq!(link.to_upstream.link.lost + link.to_client.link.lost, 0);
        client.close();
        server.close();
    });
}

fn jitter_of_2_ms_delivers_every_byte_in_order_exactly_once(driver: Driver) {
    // 200 messages from empty to 256 KiB (about 3 MB).
    run(driver, jittery(), 11, mixed(11, 200, 256 << 10));
}

fn jitter_over_a_bulk_transfer_delivers_every_byte_in_order_exactly_once(driver: Driver) {
    // 4 MiB in 64 KiB messages, back to back: many datagrams in flight, sent
    // well under the jitter apart.
    run(driver, jittery(), 12, vec![64 << 10; 64]);
}

fn jitter_and_datagrams_held_back_8_ms_deliver_every_byte_in_order_exactly_once(driver: Driver) {
    let link = jittery().reorder(0.05, Duration::from_millis(8));
    run(driver, link, 13, mixed(13, 200, 256 << 10));
}

ferry_tests::on_every_driver! {
    jitter_of_2_ms_delivers_every_byte_in_order_exactly_once,
    jitter_over_a_bulk_transfer_delivers_every_byte_in_order_exactly_once,
    jitter_and_datagrams_held_back_8_ms_deliver_every_byte_in_order_exactly_once,
}

/// What the tests above rely on: through the relay, this jitter makes
/// datagrams sent 0.1 ms apart overtake each other.
#[test]
fn the_jitter_reorders_datagrams_sent_close_together() {
    let upstream = UdpSocket::bind("127.0.0.1:0").unwrap();
    upstream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let relay = Relay::start(
        "127.0.0.1:0".parse().unwrap(),
        upstream.local_addr().unwrap(),
        jittery(),
        jittery(),
        7,
    )
    .unwrap();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let count = 200u32;
    for i in 0..count {
        sender
            .send_to(&i.to_be_bytes(), relay.local_addr())
            .unwrap();
        std::thread::sleep(Duration::from_micros(100));
    }
    let mut order = Vec::new();
    let mut buf = [0u8; 16];
    while order.len() < count as usize {
        let n = upstream.recv(&mut buf).expect("every datagram arrives");
        order.push(u32::from_be_bytes(buf[..n].try_into().unwrap()));
    }
    let overtaken = order.windows(2).filter(|w| w[0] > w[1]).count();
    println!("{overtaken} of {count} datagrams arrived before one sent earlier");
    assert!(overtaken >= 10, "{order:?}");
    let mut sorted = order.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..count).collect::<Vec<_>>());
}
