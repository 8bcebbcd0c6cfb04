//! Loss recovery on paths that reorder: loss is told from lateness (RACK),
//! a lost tail is probed before the retransmission timeout, and reordering
//! costs neither goodput nor retransmissions (protocol.md §6.5–§6.7).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ferry_proto::wire::packet::{Header, PacketKind};
use ferry_proto::{Config, CongestionControl, Endpoint, Event, SessionId};
use ferry_sim::{LinkConfig, Transfer};

const ONE_WAY: Duration = Duration::from_millis(20);
const RTT: Duration = Duration::from_millis(40);

/// Two endpoints joined by a lossless path of fixed delay in virtual time,
/// where a test may drop chosen datagrams from the client.
struct Wire {
    client: Endpoint,
    server: Endpoint,
    now: Instant,
    in_flight: Vec<(Instant, bool, Vec<u8>)>,
}

const CLIENT: &str = "192.0.2.1:1000";
const SERVER: &str = "192.0.2.2:2000";

impl Wire {
    fn new() -> Self {
        Self {
            client: Endpoint::new(Config::default(), 1).unwrap(),
            server: Endpoint::new(
                Config {
                    accept_incoming: true,
                    ..Config::default()
                },
                2,
            )
            .unwrap(),
            now: Instant::now(),
            in_flight: Vec::new(),
        }
    }

    /// Runs until `until`, dropping the client's datagrams `drop` picks;
    /// returns the server's events and messages with their arrival times.
    fn run(
        &mut self,
        until: Instant,
        drop: &mut dyn FnMut(&[u8]) -> bool,
    ) -> Vec<(Instant, Event)> {
        let (client_addr, server_addr): (SocketAddr, SocketAddr) =
            (CLIENT.parse().unwrap(), SERVER.parse().unwrap());
        let mut events = Vec::new();
        let mut buf = Vec::new();
        loop {
            while let Some(t) = self.client.poll_transmit(self.now, &mut buf) {
                if !drop(&buf[..t.size]) {
                    self.in_flight
                        .push((self.now + ONE_WAY, true, buf[..t.size].to_vec()));
                }
            }
            while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
                self.in_flight
                    .push((self.now + ONE_WAY, false, buf[..t.size].to_vec()));
            }
            while let Some(e) = self.server.poll_event() {
                events.push((self.now, e));
            }
            while self.client.poll_event().is_some() {}
            let next = self
                .in_flight
                .iter()
                .map(|d| d.0)
                .chain(self.client.poll_timeout())
                .chain(self.server.poll_timeout())
                .min();
            match next {
                Some(t) if t <= until => self.now = self.now.max(t),
                _ => return events,
            }
            let (due, later): (Vec<_>, Vec<_>) =
                self.in_flight.drain(..).partition(|d| d.0 <= self.now);
            self.in_flight = later;
            for (_, to_server, bytes) in due {
                if to_server {
                    self.server
                        .handle_datagram(self.now, client_addr, BytesMut::from(&bytes[..]));
                } else {
                    self.client
                        .handle_datagram(self.now, server_addr, BytesMut::from(&bytes[..]));
                }
            }
            if self.client.poll_timeout().is_some_and(|t| t <= self.now) {
                self.client.handle_timeout(self.now);
            }
            if self.server.poll_timeout().is_some_and(|t| t <= self.now) {
                self.server.handle_timeout(self.now);
            }
        }
    }
}

fn is_data(datagram: &[u8]) -> bool {
    Header::decode(datagram).is_ok_and(|(h, _)| h.kind == PacketKind::Data)
}

#[test]
fn a_lost_tail_packet_is_repaired_within_two_round_trips() {
    let mut wire = Wire::new();
    let id: SessionId = wire
        .client
        .connect(wire.now, SERVER.parse().unwrap())
        .unwrap();
    // Some traffic first, so that the RTT estimate is settled.
    for i in 0..30u8 {
        wire.client
            .session(id)
            .unwrap()
            .send(Bytes::from(vec![i; 100]))
            .unwrap();
        let until = wire.now + RTT;
        wire.run(until, &mut |_| false);
        while wire.server.session(id).unwrap().recv().is_some() {}
    }
    // A message of five packets whose last one is lost (five whatever the
    // size path MTU discovery confirmed by now: fragments carry a little
    // less than the MTU).
    let mtu = wire.client.session(id).unwrap().stats().mtu;
    let size = 4 * (mtu - 40) + 100;
    let sent_at = wire.now;
    wire.client
        .session(id)
        .unwrap()
        .send(Bytes::from(vec![7u8; size]))
        .unwrap();
    let mut data_packets = 0;
    let events = wire.run(sent_at + 10 * RTT, &mut |d| {
        if is_data(d) {
            data_packets += 1;
            data_packets == 5
        } else {
            false
        }
    });
    let arrived = events
        .iter()
        .find(|(_, e)| matches!(e, Event::Readable { .. }))
        .map(|(t, _)| *t)
        .expect("the message arrives");
    assert_eq!(
        wire.server.session(id).unwrap().recv().map(|m| m.len()),
        Some(size)
    );
    let delay = arrived - (sent_at + ONE_WAY);
    println!(
        "the lost tail arrived {delay:?} after it would have ({:.2} round trips)",
        delay.as_secs_f64() / RTT.as_secs_f64()
    );
    let stats = wire.client.session(id).unwrap().stats();
    assert_eq!(stats.tail_probes, 1, "{stats:?}");
    assert_eq!(stats.timeouts, 0, "repaired before the RTO");
    assert!(
        delay <= 2 * RTT,
        "the tail arrived {delay:?} late ({:.2} round trips)",
        delay.as_secs_f64() / RTT.as_secs_f64()
    );
}

/// Goodput over 100 Mbit/s and a 40 ms round trip, with uniform jitter of
/// `jitter` on every datagram (which reorders them), and the client's
/// retransmitted and spuriously lost packets per packet sent.
fn jittered(controller: CongestionControl, jitter: Duration) -> (f64, f64, f64) {
    let link = LinkConfig::default()
        .latency(ONE_WAY)
        .jitter(jitter)
        .bandwidth(100_000_000);
    let messages: Vec<Bytes> = (0..16u8).map(|i| Bytes::from(vec![i; 1 << 20])).collect();
    let config = Config {
        congestion: controller,
        ..Config::default()
    };
    let report = Transfer::new(7, link)
        .config(config)
        .run(messages, Duration::from_secs(600));
    assert!(report.complete(), "{report:?}");
    let sent = report.client.packets_sent.max(1) as f64;
    (
        report.goodput_bps(),
        report.client.retransmitted as f64 / sent,
        report.client.spurious_losses as f64 / sent,
    )
}

#[test]
fn jitter_of_a_quarter_of_the_rtt_costs_bbr_and_cubic_little_goodput() {
    for controller in [CongestionControl::Bbr, CongestionControl::Cubic] {
        let (clear, _, _) = jittered(controller, Duration::ZERO);
        for jitter in [RTT / 16, RTT / 8, RTT / 4] {
            let (goodput, _, _) = jittered(controller, jitter);
            println!(
                "{controller}: jitter {jitter:?}: {:.1} of {:.1} Mbit/s ({:.2})",
                goodput / 1e6,
                clear / 1e6,
                goodput / clear
            );
            assert!(
                goodput >= 0.8 * clear,
                "{controller} with {jitter:?} of jitter: {goodput} against {clear}"
            );
        }
    }
}

#[test]
fn pure_reordering_causes_almost_no_spurious_retransmission() {
    for controller in [CongestionControl::Bbr, CongestionControl::Cubic] {
        let (_, clear_retransmitted, _) = jittered(controller, Duration::ZERO);
        let (_, retransmitted, spurious) = jittered(controller, RTT / 4);
        println!(
            "{controller}: retransmitted {retransmitted:.4} per packet (without jitter \
             {clear_retransmitted:.4}), spurious losses {spurious:.4}"
        );
        // The bottleneck queue's own drops are real losses, with or without
        // jitter (CUBIC overflows it in slow start): what reordering must not
        // add is losses that were only late.
        assert!(
            spurious < 0.01,
            "{controller}: {retransmitted} retransmitted, {spurious} spurious"
        );
    }
}

#[test]
fn a_fast_flow_on_a_reordering_path_has_every_packet_acknowledged() {
    // No bottleneck: BBR reaches hundreds of Mbit/s, so 5 ms of jitter
    // leaves a hole every few packets over hundreds of numbers: more ranges
    // than one ack carries, and than a receiver remembered before.
    let run = |jitter: Duration| {
        let link = LinkConfig::default().latency(ONE_WAY).jitter(jitter);
        let messages: Vec<Bytes> = (0..16u8).map(|i| Bytes::from(vec![i; 1 << 20])).collect();
        let report = Transfer::new(3, link).run(messages, Duration::from_secs(600));
        assert!(report.complete(), "{report:?}");
        report
    };
    let clear = run(Duration::ZERO);
    let jittered = run(Duration::from_millis(5));
    let sent = jittered.client.packets_sent as f64;
    println!(
        "{:.0} of {:.0} Mbit/s, {} spurious losses, {} duplicates received of {sent} packets",
        jittered.goodput_bps() / 1e6,
        clear.goodput_bps() / 1e6,
        jittered.client.spurious_losses,
        jittered.server.duplicates,
    );
    assert!(jittered.goodput_bps() >= 0.8 * clear.goodput_bps());
    assert!((jittered.server.duplicates as f64) < 0.01 * sent);
}
