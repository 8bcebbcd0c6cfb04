//! Batches of datagrams for segmentation offload
//! (`Endpoint::poll_transmit_batch`): the endpoint writes up to
//! `max_datagrams` datagrams to one destination into one buffer, all of the
//! first one's size but the last, which may be shorter. A datagram that does
//! not fit a batch (another destination, a larger size) leaves first in the
//! next one, never lost.
//!
//! The first tests drive endpoints by hand over a lossless wire that sees
//! every transmit, cuts it at its segment size and checks each piece on its
//! own: its header, its checksum (which fails if the pieces were cut at the
//! wrong places) and its body. The last ones run transfers through the
//! simulator with batches, clear and encrypted, lossless and lossy.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ferry_proto::crypto::PreSharedKey;
use ferry_proto::wire::packet::{Header, Packet};
use ferry_proto::wire::protection::Protection;
use ferry_proto::{
    Config, CongestionControl, Endpoint, Event, MAX_BATCH_BYTES, SendError, SessionId,
};
use ferry_sim::{LinkConfig, Network, NodeId, Transfer};

const MS: Duration = Duration::from_millis(1);

fn addr(node: usize) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, node as u8 + 1], 4000 + node as u16))
}

/// One transmit, cut into its datagrams, each checked and decoded.
#[derive(Debug)]
struct Sent {
    destination: SocketAddr,
    segment_size: Option<usize>,
    datagrams: Vec<Vec<u8>>,
    packets: Vec<(Header, Packet)>,
}

impl Sent {
    fn sizes(&self) -> Vec<usize> {
        self.datagrams.iter().map(Vec::len).collect()
    }

    fn probes(&self) -> usize {
        self.packets
            .iter()
            .filter(|(_, p)| matches!(p, Packet::Probe { .. }))
            .count()
    }
}

/// Opens and decodes one datagram of a clear session on its own: fails if
/// it is not exactly one whole packet.
fn decode(datagram: &[u8]) -> (Header, Packet) {
    let (header, header_len) = Header::decode(datagram).expect("a header");
    let mut packet = BytesMut::from(datagram);
    Protection::Checksum
        .open(header.number, header_len, &mut packet)
        .unwrap_or_else(|e| panic!("{e}: a datagram cut at the wrong place? {header:?}"));
    let body = packet.split_off(header_len).freeze();
    let (_, decoded) = Packet::decode_with_ack(&header, body).expect("a body");
    (header, decoded)
}

/// Endpoints on a lossless wire driven by hand. Node `i` has address
/// `addr(i)`; datagrams larger than `path_mtu` are lost.
struct Wire {
    now: Instant,
    nodes: Vec<Endpoint>,
    batch: usize,
    path_mtu: usize,
    /// Messages each node received.
    received: Vec<Vec<(SessionId, Bytes)>>,
}

impl Wire {
    /// A client (node 0) and `servers` listeners (nodes 1 and on).
    fn new(servers: usize, batch: usize) -> Self {
        Self::with_config(servers, batch, Config::default())
    }

    fn with_config(servers: usize, batch: usize, config: Config) -> Self {
        let mut nodes = vec![Endpoint::new(config.clone(), 1).unwrap()];
        for i in 0..servers {
            let config = Config {
                accept_incoming: true,
                ..config.clone()
            };
            nodes.push(Endpoint::new(config, 2 + i as u64).unwrap());
        }
        Self {
            now: Instant::now(),
            received: vec![Vec::new(); nodes.len()],
            nodes,
            batch,
            path_mtu: usize::MAX,
        }
    }

    fn connect(&mut self, server: usize) -> SessionId {
        self.nodes[0].connect(self.now, addr(server)).unwrap()
    }

    /// The next transmit of node `i`, checked: one destination, every
    /// datagram a whole packet of one session, all of the segment size but
    /// the last, at most `batch` of them.
    fn poll(&mut self, i: usize) -> Option<Sent> {
        let mut buf = vec![0xee; 100]; // cleared by the endpoint
        let t = self.nodes[i].poll_transmit_batch(self.now, &mut buf, self.batch)?;
        assert_eq!(t.size, buf.len());
        let datagrams: Vec<Vec<u8>> = match t.segment_size {
            Some(size) => buf.chunks(size).map(<[u8]>::to_vec).collect(),
            None => vec![buf],
        };
        assert_eq!(t.segment_size.is_some(), datagrams.len() > 1, "{t:?}");
        assert!(datagrams.len() <= self.batch.max(1), "{t:?}");
        assert!(datagrams.len() == 1 || t.size <= MAX_BATCH_BYTES, "{t:?}");
        let packets: Vec<_> = datagrams.iter().map(|d| decode(d)).collect();
        let session = packets[0].0.session;
        assert!(
            packets.iter().all(|(h, _)| h.session == session),
            "{packets:?}"
        );
        Some(Sent {
            destination: t.destination,
            segment_size: t.segment_size,
            datagrams,
            packets,
        })
    }

    fn deliver(&mut self, from: usize, sent: &Sent) {
        let to = (0..self.nodes.len()).find(|&n| addr(n) == sent.destination);
        let to = to.expect("a destination on the wire");
        for d in &sent.datagrams {
            if d.len() <= self.path_mtu {
                self.nodes[to].handle_datagram(self.now, addr(from), BytesMut::from(&d[..]));
            }
        }
    }

    /// Takes every event of node `i`, and the messages of readable sessions.
    fn read(&mut self, i: usize) {
        while let Some(event) = self.nodes[i].poll_event() {
            if let Event::Readable { session } = event {
                let mut s = self.nodes[i].session(session).unwrap();
                while let Some(m) = s.recv() {
                    self.received[i].push((session, m));
                }
            }
        }
    }

    /// Sends and delivers everything until no node has anything to send;
    /// returns what went, in order, with the sender.
    fn flush(&mut self) -> Vec<(usize, Sent)> {
        let mut log = Vec::new();
        loop {
            let before = log.len();
            for i in 0..self.nodes.len() {
                self.read(i);
                while let Some(sent) = self.poll(i) {
                    self.deliver(i, &sent);
                    log.push((i, sent));
                }
            }
            if log.len() == before {
                return log;
            }
        }
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
        for node in &mut self.nodes {
            if node.poll_timeout().is_some_and(|t| t <= self.now) {
                node.handle_timeout(self.now);
            }
        }
    }

    /// Flushes and advances 1 ms at a time until node `to` received
    /// `count` messages (or 20 s passed); returns the log.
    fn run_until_received(&mut self, to: usize, count: usize) -> Vec<(usize, Sent)> {
        let mut log = Vec::new();
        let end = self.now + Duration::from_secs(20);
        while self.received[to].len() < count && self.now < end {
            log.extend(self.flush());
            self.advance(MS);
        }
        assert_eq!(self.received[to].len(), count, "not every message arrived");
        log
    }

    fn send(&mut self, id: SessionId, message: &[u8], count: usize) {
        let mut s = self.nodes[0].session(id).unwrap();
        for _ in 0..count {
            s.send(message.to_vec()).unwrap();
        }
    }
}

#[test]
fn a_batch_holds_only_same_size_datagrams_to_one_destination_and_the_last_may_be_shorter() {
    let mut wire = Wire::new(1, 16);
    let id = wire.connect(1);
    // Each message is three full packets and a shorter one.
    let message: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
    wire.send(id, &message, 40);
    let log = wire.run_until_received(1, 40);
    assert!(wire.received[1].iter().all(|(_, m)| m[..] == message[..]));

    let batches: Vec<&Sent> = log
        .iter()
        .filter(|(from, s)| *from == 0 && s.datagrams.len() > 1)
        .map(|(_, s)| s)
        .collect();
    assert!(batches.len() >= 10, "{} batches", batches.len());
    let mut short_last = 0;
    for sent in &batches {
        assert_eq!(sent.destination, addr(1));
        let size = sent.segment_size.unwrap();
        let (last, full) = sent
            .sizes()
            .split_last()
            .map(|(l, f)| (*l, f.to_vec()))
            .unwrap();
        assert!(full.iter().all(|&s| s == size), "{:?}", sent.sizes());
        assert!(last <= size, "{:?}", sent.sizes());
        short_last += usize::from(last < size);
    }
    // A message's short last fragment ends its batch.
    assert!(
        short_last >= 10,
        "{short_last} batches ended by a shorter datagram"
    );
    assert_eq!(wire.nodes[1].stats().dropped_malformed, 0);
}

#[test]
fn a_batch_of_one_has_no_segment_size() {
    for batch in [0, 1] {
        let mut wire = Wire::new(1, batch);
        let id = wire.connect(1);
        wire.send(id, &[7; 3000], 20);
        let log = wire.run_until_received(1, 20);
        assert!(log.iter().all(|(_, s)| s.datagrams.len() == 1));
        assert!(log.iter().all(|(_, s)| s.segment_size.is_none()));
    }
    // One datagram ready, a batch of 16 allowed: still no segment size.
    let mut wire = Wire::new(1, 16);
    wire.connect(1);
    let connect = wire.poll(0).expect("the connect");
    assert_eq!((connect.segment_size, connect.datagrams.len()), (None, 1));
    assert!(matches!(connect.packets[0].1, Packet::Connect(_)));
    // And `poll_transmit` is the batch of one.
    let mut wire = Wire::new(1, 16);
    wire.connect(1);
    let mut buf = Vec::new();
    let t = wire.nodes[0].poll_transmit(wire.now, &mut buf).unwrap();
    assert_eq!((t.segment_size, t.size), (None, buf.len()));
}

#[test]
fn max_datagrams_is_honoured_and_a_batch_stays_within_the_gso_limit() {
    for batch in [2, 3, 7] {
        let mut wire = Wire::new(1, batch);
        let id = wire.connect(1);
        wire.send(id, &[1; 100_000], 10);
        let log = wire.run_until_received(1, 10);
        let largest = log.iter().map(|(_, s)| s.datagrams.len()).max();
        assert_eq!(largest, Some(batch));
    }
    // Asked for more than fits 64,000 bytes: as many as fit. (CUBIC: its
    // window grows by the acks of each round, on a wire with no delay.)
    let config = Config {
        congestion: CongestionControl::Cubic,
        ..Config::default()
    };
    let mut wire = Wire::with_config(1, 1000, config);
    let id = wire.connect(1);
    wire.send(id, &[1; 1 << 20], 8);
    let log = wire.run_until_received(1, 8);
    let mut full = 0;
    for (_, sent) in &log {
        let size = sent.datagrams[0].len();
        assert!(sent.datagrams.len() <= (MAX_BATCH_BYTES / size).max(1));
        full += usize::from(sent.datagrams.len() == MAX_BATCH_BYTES / size);
    }
    assert!(full > 0, "no batch reached the limit");
}

#[test]
fn two_sessions_to_different_destinations_never_share_a_batch() {
    let mut wire = Wire::new(2, 16);
    let a = wire.connect(1);
    let b = wire.connect(2);
    wire.send(a, &[1; 20_000], 30);
    wire.send(b, &[2; 20_000], 30);
    let mut log = Vec::new();
    for _ in 0..20_000 {
        if wire.received[1].len() == 30 && wire.received[2].len() == 30 {
            break;
        }
        log.extend(wire.flush());
        wire.advance(MS);
    }
    assert_eq!((wire.received[1].len(), wire.received[2].len()), (30, 30));
    let peer = HashMap::from([(a, addr(1)), (b, addr(2))]);
    let mut destinations = Vec::new();
    for (_, sent) in log.iter().filter(|(from, _)| *from == 0) {
        // Every datagram of the batch belongs to the session of that peer.
        let session = sent.packets[0].0.session;
        assert_eq!(peer[&session], sent.destination, "{:?}", sent.sizes());
        if sent.datagrams.len() > 1 {
            destinations.push(sent.destination);
        }
    }
    // Both sent batches, taking turns rather than one after the other.
    let turns = destinations.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(turns >= 10, "{turns} turns: {destinations:?}");
}

#[test]
fn a_larger_mtu_probe_that_comes_up_inside_a_batch_leaves_in_the_next_transmit() {
    // Probes above 1300 bytes are lost: the search goes on probe after probe,
    // while data flows.
    let mut wire = Wire::new(1, 16);
    wire.path_mtu = 1300;
    let id = wire.connect(1);
    wire.send(id, &[3; 30_000], 40);
    let probes_sent = |wire: &mut Wire| wire.nodes[0].session(id).unwrap().stats().mtu_probes_sent;
    let (mut carried, mut on_wire, mut waiting) = (0, 0, false);
    let end = wire.now + Duration::from_secs(20);
    while wire.received[1].len() < 40 && wire.now < end {
        wire.read(1);
        loop {
            let before = probes_sent(&mut wire);
            let Some(sent) = wire.poll(0) else { break };
            if waiting {
                // The probe the last call wrote but did not return comes first.
                assert!(
                    matches!(sent.packets[0].1, Packet::Probe { .. }),
                    "{sent:?}"
                );
                waiting = false;
            }
            let written = probes_sent(&mut wire) - before;
            on_wire += sent.probes() as u64;
            if written > sent.probes() as u64 {
                assert_eq!(written, 1);
                // Behind datagrams of another size: kept for the next transmit.
                assert!(!sent.datagrams.is_empty());
                assert!(sent.datagrams.iter().all(|d| d.len() < 1300 + 20));
                carried += 1;
                waiting = true;
            }
            wire.deliver(0, &sent);
        }
        for sent in std::iter::from_fn(|| wire.poll(1)).collect::<Vec<_>>() {
            wire.deliver(1, &sent);
        }
        wire.advance(MS);
    }
    assert_eq!(wire.received[1].len(), 40);
    assert!(!waiting);
    let sent = probes_sent(&mut wire);
    assert!(
        carried >= 1,
        "no probe came up inside a batch ({sent} probes)"
    );
    assert_eq!(on_wire, sent, "every probe written left");
}

/// Scenarios through the simulator, whose network splits each transmit
/// at its segment size: a batch cut at the wrong places would arrive as
/// corrupted datagrams and be dropped.
mod simulated {
    use super::*;

    fn messages() -> Vec<Vec<u8>> {
        common::mixed_messages(21, 4 << 20, 1 << 20)
    }

    fn psk() -> Config {
        Config {
            psk: Some(PreSharedKey::from_bytes([9; 32])),
            ..Config::default()
        }
    }

    /// Sends `messages` from the client in batches of `batch`; returns
    /// once every message arrived intact and in order (panics otherwise).
    fn bulk(
        net: &mut Network,
        client: NodeId,
        server: NodeId,
        id: SessionId,
        messages: &[Vec<u8>],
    ) {
        let (mut next, mut received) = (0, 0);
        let done = net.run_until(Duration::from_secs(300), |net| {
            while let Some((_, m)) = net.poll_message(server) {
                assert_eq!(m[..], messages[received][..], "message {received}");
                received += 1;
            }
            let mut s = net.endpoint(client).session(id).unwrap();
            while next < messages.len() {
                match s.send(messages[next].clone()) {
                    Ok(()) => next += 1,
                    Err(SendError::Blocked) => break,
                    Err(e) => panic!("{e}"),
                }
            }
            received == messages.len()
        });
        assert!(done, "{received} of {} messages", messages.len());
    }

    #[test]
    fn a_bulk_transfer_in_batches_of_16_delivers_every_byte_clear_and_encrypted() {
        let link = LinkConfig::default()
            .latency(10 * MS)
            .bandwidth(200_000_000);
        let messages = messages();
        for config in [Config::default(), psk()] {
            let encrypted = config.psk.is_some();
            let mut pair = common::Pair::with_configs(31, link.clone(), config.clone(), config);
            pair.net.set_transmit_batch(16);
            let id = pair.establish();
            bulk(&mut pair.net, pair.client, pair.server, id, &messages);
            pair.net.run_for(100 * MS); // the last acks
            let (client, server) = (pair.client, pair.server);
            let t = pair.net.transmit_stats(client).clone();
            assert!(t.batches > 100 && t.largest_batch == 16, "{t:?}");
            assert!(t.short_last > 0, "{t:?}");
            // Every datagram on the wire was one whole packet, and arrived
            // as one.
            let stats = pair.net.endpoint(client).session(id).unwrap().stats();
            assert_eq!(t.datagrams, stats.packets_sent, "{t:?}");
            assert_eq!(stats.lost, 0, "{stats:?}");
            let e = pair.net.endpoint(server).stats().clone();
            assert_eq!(e.datagrams_received, t.datagrams, "{e:?}");
            assert_eq!(
                (e.dropped_malformed, e.dropped_unauthenticated),
                (0, 0),
                "{e:?}"
            );
            let s = pair.net.endpoint(server).session(id).unwrap().stats();
            assert_eq!(s.cipher.is_some(), encrypted);
        }
    }

    #[test]
    fn a_transfer_in_batches_over_a_lossy_reordering_path_delivers_every_message_in_order() {
        let link = LinkConfig::default()
            .latency(15 * MS)
            .jitter(2 * MS)
            .random_loss(0.03)
            .reorder(0.05, 5 * MS)
            .duplicate(0.01)
            .bandwidth(50_000_000);
        for config in [Config::default(), psk()] {
            let r = Transfer::new(32, link.clone())
                .config(config)
                .batch(16)
                .run(messages(), Duration::from_secs(600));
            assert!(r.complete(), "{r:#?}");
            assert!(
                r.forward.lost > 0 && r.forward.reordered > 0,
                "{:?}",
                r.forward
            );
            assert!(r.transmits.batches > 10, "{:?}", r.transmits);
        }
    }

    /// The listener sends; the starter's address changes mid-transfer. The
    /// listener's path challenge to the new address comes up between
    /// datagrams to the old one: it must leave on its own.
    #[test]
    fn a_batched_sender_follows_its_peer_to_a_new_address_and_delivers_every_message() {
        let link = LinkConfig::default().latency(10 * MS);
        let mut pair = common::Pair::with_configs(7, link, psk(), psk());
        pair.net.set_transmit_batch(16);
        let id = pair.establish();
        let (client, server) = (pair.client, pair.server);
        let messages: Vec<Bytes> = (0..200).map(|i| Bytes::from(vec![i as u8; 3000])).collect();
        for m in &messages {
            pair.net
                .endpoint(server)
                .session(id)
                .unwrap()
                .send(m.clone())
                .unwrap();
        }
        pair.net.run_for(30 * MS);
        let new = pair.net.rebind(client, 9999);
        let mut got = Vec::new();
        pair.net.run_until(Duration::from_secs(60), |net| {
            got.extend(std::iter::from_fn(|| net.poll_message(client)).map(|(_, m)| m));
            got.len() == messages.len()
        });
        assert_eq!(got, messages);
        let s = pair.net.endpoint(server).session(id).unwrap();
        assert_eq!((s.remote_addr(), s.stats().migrations), (new, 1));
        drop(s);
        let t = pair.net.transmit_stats(server);
        assert!(t.batches > 10, "{t:?}");
    }
}
