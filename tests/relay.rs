//! Real sockets through the project's lossy relay: loss, reordering and
//! duplication repaired exactly; a blackhole longer than the keep-alive limit
//! ends both sides with `Timeout`, a shorter one is survived.

use std::time::Duration;

use bytes::Bytes;
use ferry_async::{CloseReason, Config};
use ferry_relay::LinkConfig;
use ferry_tests::harness::{Driver, exchange, through_relay};

fn lossy() -> LinkConfig {
    LinkConfig::default()
        .latency(Duration::from_millis(1))
        .random_loss(0.05)
        .reorder(0.02, Duration::from_millis(3))
        .duplicate(0.02)
}

fn exchange_at_5_percent_loss(driver: Driver) {
    let (client, server, relay) = through_relay(driver, lossy(), Config::default(), 7);
    let (stats, server) = exchange(client.as_ref(), server, relay.local_addr(), 300, 256 << 10);
    let link = relay.stats();
    assert!(link.to_upstream.link.lost > 10, "{link:?}");
    assert!(link.to_upstream.link.duplicated > 0, "{link:?}");
    assert!(stats.retransmitted > 0);
    client.close();
    server.close();
}

macro_rules! lossy_exchange {
    ($($name:ident: $driver:ident,)*) => {$(
        /// 300 messages of random sizes up to 256 KiB at 5% loss with
        /// reordering and duplication, every byte checked.
        #[test]
        fn $name() {
            exchange_at_5_percent_loss(Driver::$driver);
        }
    )*};
}

lossy_exchange! {
    lossy_exchange_tokio: Tokio,
    lossy_exchange_async_std: AsyncStd,
    lossy_exchange_smol: Smol,
    lossy_exchange_blocking: Blocking,
}

fn keepalive() -> Config {
    Config {
        ping_interval: Duration::from_millis(200),
        ping_packet_count: 3,
        ..Config::default()
    }
}

fn blackhole_longer_than_keepalive_times_out_both_sides(driver: Driver) {
    let (client, server, relay) = through_relay(driver, LinkConfig::default(), keepalive(), 7);
    let session = client.connect(relay.local_addr()).unwrap();
    let incoming = server.accept().unwrap();
    session.send(Bytes::from_static(b"before")).unwrap();
    assert_eq!(&incoming.recv().unwrap()[..], b"before");
    relay.blackhole(Duration::from_secs(3));
    assert_eq!(session.closed(), CloseReason::Timeout);
    assert_eq!(incoming.closed(), CloseReason::Timeout);
    client.close();
    server.close();
}

fn blackhole_shorter_than_keepalive_is_survived(driver: Driver) {
    let (client, server, relay) = through_relay(driver, LinkConfig::default(), keepalive(), 7);
    let session = client.connect(relay.local_addr()).unwrap();
    let incoming = server.accept().unwrap();
    relay.blackhole(Duration::from_millis(300));
    // Sent into the blackhole: repaired once it lifts.
    session.send(Bytes::from(vec![3u8; 50_000])).unwrap();
    assert_eq!(incoming.recv().unwrap().len(), 50_000);
    incoming.send(Bytes::from_static(b"still here")).unwrap();
    assert_eq!(&session.recv().unwrap()[..], b"still here");
    assert!(relay.stats().to_upstream.blackholed > 0);
    session.close(1);
    assert_eq!(
        incoming.closed(),
        CloseReason::Remote {
            code: 1,
            reason: Default::default()
        }
    );
    client.close();
    server.close();
}

macro_rules! blackholes {
    ($($long:ident, $short:ident: $driver:ident,)*) => {$(
        /// A blackhole longer than the keep-alive limit: `Timeout` on both sides.
        #[test]
        fn $long() {
            blackhole_longer_than_keepalive_times_out_both_sides(Driver::$driver);
        }

        /// A blackhole shorter than the keep-alive limit: survived, exact.
        #[test]
        fn $short() {
            blackhole_shorter_than_keepalive_is_survived(Driver::$driver);
        }
    )*};
}

blackholes! {
    long_blackhole_tokio, short_blackhole_tokio: Tokio,
    long_blackhole_async_std, short_blackhole_async_std: AsyncStd,
    long_blackhole_smol, short_blackhole_smol: Smol,
    long_blackhole_blocking, short_blackhole_blocking: Blocking,
}
