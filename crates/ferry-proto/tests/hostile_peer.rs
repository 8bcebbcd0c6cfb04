//! A peer that breaks the rules is closed with a protocol error; bytes that are
//! not ours are dropped and counted. Packets are forged by hand here.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ferry_proto::StreamId;
use ferry_proto::wire::packet::{Ack, CloseCode, Data, Handshake, Header, Packet, PacketKind};
use ferry_proto::wire::protection::Protection;
use ferry_proto::{CloseReason, Config, Endpoint, Event, ProtocolViolation, SessionId};

const PEER: &str = "192.0.2.7:9000";

/// The parameters of every forged Connect.
fn handshake() -> Handshake {
    Handshake {
        max_udp_payload: 1200,
        max_message_size: 1 << 20,
        initial_max_data: 1 << 20,
        max_ack_delay_micros: 10_000,
        max_streams: 100,
        initial_max_stream_data: 1 << 20,
        listener_id: None,
        auth: Bytes::new(),
        token: Bytes::new(),
        features: 0,
        resume: Bytes::new(),
        early: Bytes::new(),
    }
}

/// Plays a misbehaving starter against a real listening endpoint.
struct Forger {
    server: Endpoint,
    id: SessionId,
    pn: u64,
    now: Instant,
    peer: SocketAddr,
}

impl Forger {
    fn new(config: Config) -> Self {
        let server = Endpoint::new(
            Config {
                accept_incoming: true,
                ..config
            },
            1,
        )
        .unwrap();
        let mut f = Self {
            server,
            id: SessionId::from(0x1234),
            pn: 0,
            now: Instant::now(),
            peer: PEER.parse().unwrap(),
        };
        f.send(Packet::Connect(handshake()));
        assert_eq!(
            f.server.poll_event(),
            Some(Event::Connected { session: f.id })
        );
        f
    }

    fn datagram(&mut self, packet: &Packet) -> BytesMut {
        let mut buf = Vec::new();
        packet.encode(self.id, self.pn, &mut buf);
        if packet.kind() == PacketKind::Connect {
            // Connects are padded to the MTU (1200 with the checksum).
            buf.resize(buf.len().max(1196), 0);
        }
        let header_len = Header {
            kind: packet.kind(),
            session: self.id,
            number: self.pn,
            with_ack: false,
            key_phase: false,
        }
        .encoded_len();
        Protection::Checksum.seal(self.pn, header_len, &mut buf);
        self.pn += 1;
        BytesMut::from(&buf[..])
    }

    fn send(&mut self, packet: Packet) {
        let d = self.datagram(&packet);
        self.server.handle_datagram(self.now, self.peer, d);
    }

    fn data(&mut self, message: u64, fragment: u32, fragments: u32, len: usize) {
        self.send(Packet::Data(Data {
            stream: StreamId(0),
            message,
            fragment,
            fragments,
            payload: Bytes::from(vec![0xab; len]),
        }));
    }

    /// Everything the server sent back, decoded.
    fn replies(&mut self) -> Vec<Packet> {
        let mut buf = Vec::new();
        let mut out = Vec::new();
        while let Some(t) = self.server.poll_transmit(self.now, &mut buf) {
            assert_eq!(t.destination, self.peer);
            let body = &buf[..t.size - 4];
            out.push(Packet::decode(Bytes::copy_from_slice(body)).unwrap().2);
        }
        out
    }

    fn closed_with(&mut self) -> Option<CloseReason> {
        std::iter::from_fn(|| self.server.poll_event()).find_map(|e| match e {
            Event::Closed { reason, .. } => Some(reason),
            _ => None,
        })
    }
}

fn assert_violation(f: &mut Forger, v: ProtocolViolation) {
    assert_eq!(f.closed_with(), Some(CloseReason::ProtocolError(v)));
    let close = f.replies().into_iter().find_map(|p| match p {
        Packet::Close(c) => Some(c),
        _ => None,
    });
    let close = close.expect("a close packet is sent");
    assert!(matches!(close.code, CloseCode::Transport(_)), "{close:?}");
}

#[test]
fn exceeding_the_receive_window_is_a_protocol_error() {
    let config = Config {
        max_message_size: 64 << 10,
        recv_window: 80 << 10,
        ..Config::default()
    };
    let mut f = Forger::new(config);
    // Messages of one fragment each, never read by the application: the window
    // (80 KiB of cost) is exceeded by about the 72nd.
    for m in 0..100 {
        f.data(m, 0, 1, 1100);
        if f.server.session(f.id).is_none()
            || f.server.session(f.id).unwrap().state() != ferry_proto::State::Established
        {
            break;
        }
    }
    // The application never polled, so the credit was never extended.
    let reason = std::iter::from_fn(|| f.server.poll_event()).find_map(|e| match e {
        Event::Closed { reason, .. } => Some(reason),
        _ => None,
    });
    assert_eq!(
        reason,
        Some(CloseReason::ProtocolError(ProtocolViolation::FlowControl))
    );
}

#[test]
fn inconsistent_fragment_counts() {
    let mut f = Forger::new(Config::default());
    f.data(0, 0, 3, 1000);
    f.data(0, 1, 4, 1000);
    assert_violation(&mut f, ProtocolViolation::BadFragment);
}

#[test]
fn tiny_middle_fragments() {
    let mut f = Forger::new(Config::default());
    f.data(0, 0, 1000, 1);
    assert_violation(&mut f, ProtocolViolation::BadFragment);
}

#[test]
fn message_beyond_max_message_size() {
    let config = Config {
        max_message_size: 4096,
        recv_window: 1 << 20,
        ..Config::default()
    };
    let mut f = Forger::new(config);
    for i in 0..4 {
        f.data(0, i, 5, 1100);
    }
    assert_violation(&mut f, ProtocolViolation::MessageTooLarge);
}

#[test]
fn unknown_stream() {
    let mut f = Forger::new(Config::default());
    f.send(Packet::Data(Data {
        stream: StreamId(9),
        message: 0,
        fragment: 0,
        fragments: 1,
        payload: Bytes::from_static(b"x"),
    }));
    assert_violation(&mut f, ProtocolViolation::UnknownStream);
}

/// Found by the endpoint fuzzer: a stream id 2^50 streams ahead once made the
/// listener open every stream below it, one by one.
#[test]
fn a_stream_far_beyond_the_limit_is_a_violation_not_a_loop() {
    let mut f = Forger::new(Config::default());
    f.send(Packet::Data(Data {
        stream: StreamId((1 << 50) << 3),
        message: 0,
        fragment: 0,
        fragments: 1,
        payload: Bytes::from_static(b"x"),
    }));
    assert_violation(&mut f, ProtocolViolation::StreamLimit);
}

#[test]
fn ack_for_a_packet_never_sent() {
    let mut f = Forger::new(Config::default());
    f.replies();
    f.send(Packet::Ack(Ack {
        delay_micros: 0,
        max_data: 1 << 20,
        ranges: vec![1_000_000..=1_000_000],
    }));
    assert_violation(&mut f, ProtocolViolation::InvalidAck);
}

#[test]
fn strangers_and_garbage_are_counted_not_obeyed() {
    let mut f = Forger::new(Config::default());
    let now = f.now;
    // Valid packet, wrong source address.
    let d = f.datagram(&Packet::Datagram(Bytes::from_static(b"spoofed")));
    f.server
        .handle_datagram(now, "192.0.2.99:1".parse().unwrap(), d);
    // Corrupted packet.
    let mut d = f.datagram(&Packet::Datagram(Bytes::from_static(b"corrupt")));
    let last = d.len() - 6;
    d[last] ^= 0x40;
    f.server.handle_datagram(now, f.peer, d);
    // Garbage and an unknown session.
    f.server
        .handle_datagram(now, f.peer, BytesMut::from(&b"\x01\x03garbage"[..]));
    f.server.handle_datagram(now, f.peer, BytesMut::new());
    let stats = f.server.stats().clone();
    assert_eq!(stats.dropped_wrong_address, 1);
    assert_eq!(stats.dropped_malformed, 3);
    assert_eq!(f.server.poll_event(), None, "nothing delivered");
    // The session is unharmed.
    f.send(Packet::Datagram(Bytes::from_static(b"real")));
    assert_eq!(
        f.server.poll_event(),
        Some(Event::Datagram {
            session: f.id,
            data: Bytes::from_static(b"real")
        })
    );
}

#[test]
fn duplicate_connect_is_answered_again_not_duplicated() {
    let mut f = Forger::new(Config::default());
    let acks = |p: &Vec<Packet>| {
        p.iter()
            .filter(|p| matches!(p, Packet::ConnectAck(_)))
            .count()
    };
    assert_eq!(acks(&f.replies()), 1);
    f.send(Packet::Connect(handshake()));
    assert_eq!(acks(&f.replies()), 1, "a lost connect ack is sent again");
    assert_eq!(f.server.session_count(), 1);
    assert_eq!(f.server.poll_event(), None, "no second Connected");
}

/// One host starting sessions as fast as it can gets `max_handshakes_per_source`
/// per second; the rest are dropped without an answer and counted, and other
/// hosts, and the next second, are unaffected.
#[test]
fn handshakes_per_source_are_limited() {
    let mut f = Forger::new(Config {
        max_handshakes_per_source: 5,
        ..Config::default()
    });
    let connect = |f: &mut Forger, id: u64, from: SocketAddr| {
        f.id = SessionId::from(id);
        f.pn = 0;
        f.peer = from;
        f.send(Packet::Connect(handshake()));
    };
    let here: SocketAddr = PEER.parse().unwrap();
    // The Forger's own session was the first of five; four more, then three
    // beyond the limit (from another port of the same host).
    for id in 1..=4 {
        connect(&mut f, 0x1000 + id, here);
    }
    assert!(!f.replies().is_empty(), "the accepted ones are answered");
    let other_port: SocketAddr = "192.0.2.7:9001".parse().unwrap();
    for id in 5..=7 {
        connect(&mut f, 0x1000 + id, other_port);
    }
    assert_eq!(f.server.session_count(), 5);
    assert_eq!(f.server.stats().dropped_rate_limited, 3);
    assert_eq!(f.server.stats().sessions_refused, 0, "dropped, not refused");
    let replies = f.replies();
    assert!(
        replies.is_empty(),
        "no answer to a dropped connect: {replies:?}"
    );
    // Another host is not held back.
    connect(&mut f, 0x2000, "198.51.100.1:9000".parse().unwrap());
    assert_eq!(f.server.session_count(), 6);
    // Nor is this one, a second later.
    f.now += std::time::Duration::from_secs(1);
    connect(&mut f, 0x1008, here);
    assert_eq!(f.server.session_count(), 7);
    assert_eq!(f.server.stats().dropped_rate_limited, 3);
}

/// Bytes the server sends to `to` until it has nothing more to send, running
/// its timers for `for_` of virtual time.
fn drain_to(f: &mut Forger, to: SocketAddr, for_: std::time::Duration) -> (usize, Vec<Packet>) {
    let mut buf = Vec::new();
    let (mut bytes, mut packets) = (0, Vec::new());
    let end = f.now + for_;
    loop {
        while let Some(t) = f.server.poll_transmit(f.now, &mut buf) {
            if t.destination == to {
                bytes += t.size;
                packets.push(
                    Packet::decode(Bytes::copy_from_slice(&buf[..t.size - 4]))
                        .unwrap()
                        .2,
                );
            }
        }
        match f.server.poll_timeout() {
            Some(at) if at <= end => {
                f.now = f.now.max(at);
                f.server.handle_timeout(f.now);
            }
            _ => break,
        }
    }
    (bytes, packets)
}

/// A connect forged with someone else's address gets that address at most
/// three times its size, however much the application sends, and the
/// session is dropped when the address is never proven.
#[test]
fn a_forged_connect_is_not_amplified() {
    let mut f = Forger::new(Config::default());
    let peer = f.peer;
    f.server
        .session(f.id)
        .unwrap()
        .send(Bytes::from(vec![1; 1 << 20]))
        .unwrap();
    let (sent, packets) = drain_to(&mut f, peer, std::time::Duration::from_secs(30));
    assert!(
        sent > 0 && sent <= 3 * 1200,
        "{sent} bytes sent for a 1200-byte connect"
    );
    assert!(packets.iter().any(|p| matches!(p, Packet::ConnectAck(_))));
    assert!(
        packets
            .iter()
            .any(|p| matches!(p, Packet::PathChallenge { .. })),
        "a clear listener challenges the address: {packets:?}"
    );
    assert_eq!(f.closed_with(), Some(CloseReason::Timeout));
    assert_eq!(f.server.session_count(), 0);
    assert!(
        f.server
            .closed_session_stats(f.id)
            .unwrap()
            .amplification_limited
            >= 1
    );
}

/// Answering the challenge proves the address and lifts the limit; a wrong
/// answer does not.
#[test]
fn answering_the_challenge_lifts_the_limit() {
    let mut f = Forger::new(Config::default());
    let peer = f.peer;
    f.server
        .session(f.id)
        .unwrap()
        .send(Bytes::from(vec![1; 100_000]))
        .unwrap();
    let (before, packets) = drain_to(&mut f, peer, std::time::Duration::ZERO);
    let token = packets
        .iter()
        .find_map(|p| match p {
            Packet::PathChallenge { token } => Some(*token),
            _ => None,
        })
        .expect("a challenge");
    f.send(Packet::PathResponse {
        token: token.wrapping_add(1),
    });
    let (wrong, _) = drain_to(&mut f, peer, std::time::Duration::ZERO);
    assert!(
        before + wrong <= 3 * 1200 + 3 * 60,
        "a wrong answer proves nothing"
    );
    f.send(Packet::PathResponse { token });
    let (after, _) = drain_to(&mut f, peer, std::time::Duration::ZERO);
    // Beyond the limit now, as far as the congestion window allows.
    assert!(
        after >= 4 * 1200,
        "only {after} bytes after the address was proven"
    );
}

/// Beyond `max_pending_handshakes` unproven sessions, connects get a
/// stateless retry; only the token, from the address and for the session it
/// was issued to, opens a session.
#[test]
fn a_connect_flood_gets_retries_and_holds_no_state() {
    let mut f = Forger::new(Config {
        max_pending_handshakes: 1,
        ..Config::default()
    });
    f.replies();
    let mut buf = Vec::new();
    let mut retries = Vec::new();
    for i in 0..100u32 {
        f.id = SessionId::from(0x5000 + u64::from(i));
        f.pn = 0;
        f.peer = SocketAddr::from(([198, 51, 100, (i % 250) as u8], 4000 + i as u16));
        let connect = f.datagram(&Packet::Connect(handshake()));
        let len = connect.len();
        f.server.handle_datagram(f.now, f.peer, connect);
        while let Some(t) = f.server.poll_transmit(f.now, &mut buf) {
            assert_eq!(t.destination, f.peer);
            assert!(t.size < len, "a retry is smaller than the connect");
            match Packet::decode(Bytes::copy_from_slice(&buf[..t.size - 4])).unwrap() {
                (h, None, Packet::Retry { token }) => retries.push((h.session, f.peer, token)),
                other => panic!("{other:?}"),
            }
        }
    }
    assert_eq!(retries.len(), 100);
    assert_eq!(f.server.session_count(), 1, "no state for the flood");
    assert_eq!(f.server.stats().retries_sent, 100);

    let connect_with = |f: &mut Forger, id: SessionId, from: SocketAddr, token: &Bytes| {
        f.id = id;
        f.pn = 1;
        f.peer = from;
        f.send(Packet::Connect(Handshake {
            token: token.clone(),
            ..handshake()
        }));
    };
    // A token from another address, or for another session, or altered.
    let (id, from, token) = retries[0].clone();
    connect_with(&mut f, id, "203.0.113.9:1".parse().unwrap(), &token);
    connect_with(&mut f, SessionId::from(0x9999), from, &token);
    let mut altered = token.to_vec();
    altered[10] ^= 0x40;
    connect_with(&mut f, id, from, &Bytes::from(altered));
    assert_eq!(f.server.stats().dropped_invalid_token, 3);
    assert_eq!(f.server.session_count(), 1);
    // The genuine one opens a session whose address is already proven: it
    // sends freely, with no challenge.
    connect_with(&mut f, id, from, &token);
    assert_eq!(f.server.session_count(), 2);
    f.server
        .session(id)
        .unwrap()
        .send(Bytes::from(vec![1; 100_000]))
        .unwrap();
    let (sent, packets) = drain_to(&mut f, from, std::time::Duration::ZERO);
    assert!(sent > 3 * 1200 + 1200, "{sent}");
    assert!(
        !packets
            .iter()
            .any(|p| matches!(p, Packet::PathChallenge { .. }))
    );
    // An expired token is refused.
    let (id, from, token) = retries[1].clone();
    f.now += std::time::Duration::from_secs(60);
    connect_with(&mut f, id, from, &token);
    assert_eq!(f.server.stats().dropped_invalid_token, 4);
}

/// The sessions of one endpoint together hold at most `max_recv_memory` of
/// received data: beyond it a new message is dropped unacknowledged (its
/// sender sends it again), and a message under way keeps the room reserved
/// when it started, so it always completes.
#[test]
fn received_data_is_bounded_per_endpoint() {
    const KIB: usize = 1 << 10;
    let config = Config {
        max_message_size: 32 * KIB,
        recv_window: 140 * KIB,
        max_recv_window: 140 * KIB,
        stream_recv_window: 140 * KIB,
        max_stream_recv_window: 140 * KIB,
        max_recv_memory: 150 * KIB,
        ..Config::default()
    };
    let mut f = Forger::new(config);
    let a = f.id;
    // Session A: 80 messages of 1000 bytes, never read.
    for m in 0..80 {
        f.data(m, 0, 1, 1000);
    }
    let stats = |f: &mut Forger, id| f.server.session(id).unwrap().stats();
    assert_eq!(stats(&mut f, a).messages_received, 80);
    assert_eq!(stats(&mut f, a).dropped_recv_memory, 0);
    // Session B, from another host: room for about 70 more.
    f.id = SessionId::from(0x7777);
    f.pn = 0;
    f.peer = "198.51.100.20:5000".parse().unwrap();
    f.send(Packet::Connect(handshake()));
    let b = f.id;
    for m in 0..80 {
        f.data(m, 0, 1, 1000);
    }
    let got = stats(&mut f, b).messages_received;
    let dropped = stats(&mut f, b).dropped_recv_memory;
    assert!((60..75).contains(&got), "{got} messages taken in");
    assert_eq!(got + dropped, 80);
    // A message of 20 fragments does not start while its whole size does not
    // fit, even though a fragment would.
    f.data(100, 0, 20, 1100);
    assert_eq!(stats(&mut f, b).dropped_recv_memory, dropped + 1);
    // A late copy of a message already delivered is no new message: it is
    // taken in (and acknowledged) as a duplicate, not dropped for room.
    f.data(0, 0, 1, 1000);
    assert_eq!(stats(&mut f, b).dropped_recv_memory, dropped + 1);
    assert_eq!(stats(&mut f, b).duplicates, 1);
    // A's application reads: the room comes back, and B's resent data fits.
    while f.server.session(a).unwrap().recv().is_some() {}
    f.pn += 1;
    for m in got..80 {
        f.data(m, 0, 1, 1000);
    }
    assert_eq!(stats(&mut f, b).messages_received, 80);
    // The large message starts now, and completes.
    for i in 0..20 {
        f.data(80, i, 20, 1100);
    }
    assert_eq!(stats(&mut f, b).messages_received, 81);
    assert_eq!(stats(&mut f, b).dropped_recv_memory, dropped + 1);
}
