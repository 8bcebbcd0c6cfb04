// The handshake between two real endpoints over a network the fuzzer runs
// (fuzz target `handshake`).
//
// `check_handshake(data)`: byte 0 picks the setting: bits 0–1 the keys
// (0: none, 1: the same key on both sides, 2: a key on the starter only,
// 3: different keys), bit 2 a listener that asks every connect for a retry
// (`max_pending_handshakes = 0`), bit 3 identities (Noise IK): then bits 0–1
// say 0: the starter is admitted, 1: admitted, with the same pre-shared key
// on both sides too, 2: the starter pinned another listener key, 3: the
// starter's key is not in the listener's `authorized_keys`. The starter connects; the rest of `data`
// is records (the layout of `shared.rs`) that each act on the network after the
// step: `flags` bits 0–3 pick the action, on the oldest datagram in flight
// toward the listener (even action) or the starter (odd):
//
//   0/1 deliver it · 2/3 drop it · 4/5 deliver it and keep a copy in flight ·
//   6/7 flip the bit the record's first two bytes name, then deliver it ·
//   8/9 move it behind the others · 10/11 deliver the record's bytes (sealed
//   with a checksum if bit 4 is set) from the other side's address instead.
//
// Then the network turns lossless and the clock runs on. Checked:
//   - with mismatched keys, neither side ever reports `Connected`, and the
//     listener holds no session at the end;
//   - with matching keys (or none), both sides end in the same state: both
//     established (and then a message each way arrives intact, exactly once)
//     or both without the session;
//   - with a key, every message delivered is one the test sent: nothing the
//     fuzzer forged gets in;
//   - no datagram exceeds the MTU, and every one decodes.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use ferry_proto::crypto::{Identity, PreSharedKey};
use ferry_proto::wire::packet::Header;
use ferry_proto::{Config, Endpoint, Event, SessionId};

use super::shared::{FUZZ_KEY, next_record, seal, step_duration};

/// The address of the starter in `check_handshake`.
pub const STARTER_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 10)), 5000);
/// The address of the listener in `check_handshake`.
pub const LISTENER_ADDR: SocketAddr =
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 20)), 6000);

struct Side {
    endpoint: Endpoint,
    addr: SocketAddr,
    connected: bool,
    closed: bool,
    messages: Vec<Bytes>,
}

impl Side {
    fn new(config: Config, seed: u64, addr: SocketAddr) -> Self {
        Self {
            endpoint: Endpoint::new(config, seed).expect("valid handshake config"),
            addr,
            connected: false,
            closed: false,
            messages: Vec::new(),
        }
    }

    /// Moves datagrams out to `wire` and takes events.
    fn pump(&mut self, now: Instant, wire: &mut VecDeque<Vec<u8>>, mtu: usize) {
        let mut buf = Vec::new();
        let mut sent = 0;
        while let Some(t) = self.endpoint.poll_transmit(now, &mut buf) {
            sent += 1;
            assert!(sent <= 10_000, "the endpoint keeps transmitting");
            assert!(t.size <= mtu, "{t:?} above the MTU");
            assert!(
                Header::decode(&buf[..t.size]).is_ok(),
                "an undecodable datagram"
            );
            wire.push_back(buf[..t.size].to_vec());
        }
        while let Some(e) = self.endpoint.poll_event() {
            match e {
                Event::Connected { .. } => self.connected = true,
                Event::Closed { .. } => self.closed = true,
                Event::Readable { session } => {
                    if let Some(mut s) = self.endpoint.session(session) {
                        while let Some(m) = s.recv() {
                            self.messages.push(m);
                        }
                    }
                }
                _ => {}
            }
        }
    }

    fn established(&mut self, id: SessionId) -> bool {
        self.endpoint
            .session(id)
            .is_some_and(|s| s.state() == ferry_proto::State::Established)
    }
}

/// Two endpoints and the datagrams in flight between them.
struct Net {
    starter: Side,
    listener: Side,
    /// In flight toward the listener, and toward the starter.
    to_listener: VecDeque<Vec<u8>>,
    to_starter: VecDeque<Vec<u8>>,
    now: Instant,
    mtu: usize,
}

impl Net {
    fn deliver(&mut self, toward_starter: bool, datagram: Vec<u8>) {
        let (to, from) = if toward_starter {
            (&mut self.starter, LISTENER_ADDR)
        } else {
            (&mut self.listener, STARTER_ADDR)
        };
        to.endpoint
            .handle_datagram(self.now, from, BytesMut::from(&datagram[..]));
    }

    fn wire(&mut self, toward_starter: bool) -> &mut VecDeque<Vec<u8>> {
        if toward_starter {
            &mut self.to_starter
        } else {
            &mut self.to_listener
        }
    }

    fn pump(&mut self) {
        self.starter.pump(self.now, &mut self.to_listener, self.mtu);
        self.listener.pump(self.now, &mut self.to_starter, self.mtu);
    }

    fn fire_timers(&mut self) {
        self.starter.endpoint.handle_timeout(self.now);
        self.listener.endpoint.handle_timeout(self.now);
    }

    /// A lossless network until `until`: what is in flight arrives, in order,
    /// and timers fire at their deadlines.
    fn run(&mut self, until: Instant) {
        loop {
            let mut moved = false;
            while let Some(d) = self.to_listener.pop_front() {
                self.deliver(false, d);
                moved = true;
            }
            while let Some(d) = self.to_starter.pop_front() {
                self.deliver(true, d);
                moved = true;
            }
            self.pump();
            if moved || !self.to_listener.is_empty() || !self.to_starter.is_empty() {
                continue;
            }
            let next = [
                self.starter.endpoint.poll_timeout(),
                self.listener.endpoint.poll_timeout(),
            ]
            .into_iter()
            .flatten()
            .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.fire_timers();
                    self.pump();
                }
                _ => break,
            }
        }
        self.now = self.now.max(until);
    }
}

/// Runs the handshake over the network `data` describes (see above);
/// returns whether the session was established.
pub fn check_handshake(data: &[u8]) -> bool {
    let Some((&setting, mut input)) = data.split_first() else {
        return false;
    };
    let identities = setting & 0b1000 != 0;
    let (starter_key, listener_key) = match (identities, setting & 0b11) {
        (false, 0) | (true, 0 | 2 | 3) => (None, None),
        (_, 1) => (Some(FUZZ_KEY), Some(FUZZ_KEY)),
        (false, 2) => (Some(FUZZ_KEY), None),
        _ => (Some(FUZZ_KEY), Some([0xa5; 32])),
    };
    let matching = starter_key == listener_key && !(identities && setting & 0b11 >= 2);
    let keyed = |key: Option<[u8; 32]>| Config {
        psk: key.map(PreSharedKey::from_bytes),
        handshake_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let (starter_id, listener_id, stranger) = (
        Identity::from_private_bytes([0x11; 32]),
        Identity::from_private_bytes([0x22; 32]),
        Identity::from_private_bytes([0x33; 32]),
    );
    let mut starter_config = keyed(starter_key);
    let mut listener_config = Config {
        accept_incoming: true,
        max_pending_handshakes: if setting & 0b100 != 0 { 0 } else { 256 },
        ..keyed(listener_key)
    };
    if identities {
        let pinned = match setting & 0b11 {
            2 => stranger.public_key(),
            _ => listener_id.public_key(),
        };
        let admitted = match setting & 0b11 {
            3 => stranger.public_key(),
            _ => starter_id.public_key(),
        };
        starter_config.identity = Some(starter_id);
        starter_config.listener_key = Some(pinned);
        listener_config.identity = Some(listener_id);
        listener_config.authorized_keys = Some([admitted].into_iter().collect());
    }
    let keyed_session = starter_key.is_some() || identities;
    let mut net = Net {
        // Path MTU discovery sends up to `max_mtu` (the same on both sides).
        mtu: listener_config.mtu.max(listener_config.max_mtu),
        starter: Side::new(starter_config, 11, STARTER_ADDR),
        listener: Side::new(listener_config, 12, LISTENER_ADDR),
        to_listener: VecDeque::new(),
        to_starter: VecDeque::new(),
        now: Instant::now(),
    };
    let now = net.now;
    // Identity handshakes are dated (the listener's replay check).
    net.starter
        .endpoint
        .set_wall_clock(now, UNIX_EPOCH + Duration::from_secs(1_800_000_000));
    let id = net
        .starter
        .endpoint
        .connect(now, LISTENER_ADDR)
        .expect("connect");
    net.pump();

    while let Some((step, flags, bytes)) = next_record(&mut input) {
        net.now += step_duration(step);
        net.fire_timers();
        let toward_starter = flags & 1 != 0;
        match (flags & 0x0f) >> 1 {
            0 => {
                if let Some(d) = net.wire(toward_starter).pop_front() {
                    net.deliver(toward_starter, d);
                }
            }
            1 => {
                net.wire(toward_starter).pop_front();
            }
            2 => {
                if let Some(d) = net.wire(toward_starter).front().cloned() {
                    net.deliver(toward_starter, d);
                }
            }
            3 => {
                if let Some(mut d) = net.wire(toward_starter).pop_front() {
                    let bit = usize::from(u16::from_be_bytes([
                        bytes.first().copied().unwrap_or(0),
                        bytes.get(1).copied().unwrap_or(0),
                    ]));
                    let len = d.len();
                    if len > 0 {
                        d[(bit / 8) % len] ^= 1 << (bit % 8);
                    }
                    net.deliver(toward_starter, d);
                }
            }
            4 => {
                let wire = net.wire(toward_starter);
                if let Some(d) = wire.pop_front() {
                    wire.push_back(d);
                }
            }
            _ => {
                let d = if flags & 0x10 != 0 {
                    seal(bytes.to_vec())
                } else {
                    bytes.to_vec()
                };
                net.deliver(toward_starter, d);
            }
        }
        net.pump();
    }

    // Long enough for a handshake to finish or time out, and for a session one
    // side lost to time out on the other.
    net.run(net.now + Duration::from_secs(30));

    if !matching {
        assert!(!net.starter.connected, "connected with the wrong key");
        assert!(
            net.starter.messages.is_empty() && net.listener.messages.is_empty(),
            "delivered something from an unauthenticated peer"
        );
        assert!(!net.listener.connected, "accepted the wrong key");
        assert_eq!(
            net.listener.endpoint.session_count(),
            0,
            "state kept for a stranger"
        );
        return false;
    }
    let (a, b) = (net.starter.established(id), net.listener.established(id));
    assert_eq!(
        a, b,
        "the starter is {}established and the listener {}",
        if a { "" } else { "not " },
        if b { "is" } else { "is not" }
    );
    if a {
        if keyed_session {
            assert!(
                net.starter.messages.is_empty() && net.listener.messages.is_empty(),
                "a forged message got in"
            );
        }
        let (from_starter, from_listener) = (
            Bytes::from_static(b"from the starter"),
            Bytes::from_static(b"from the listener"),
        );
        for (side, message) in [
            (&mut net.starter, &from_starter),
            (&mut net.listener, &from_listener),
        ] {
            side.messages.clear();
            side.endpoint
                .session(id)
                .expect("established")
                .send(message.clone())
                .expect("room to send");
        }
        net.pump();
        net.run(net.now + Duration::from_secs(5));
        if keyed_session {
            assert_eq!(net.listener.messages, vec![from_starter]);
            assert_eq!(net.starter.messages, vec![from_listener]);
        } else {
            // Without a key, data the fuzzer forged earlier may complete
            // now too; what was sent now still arrives, last and once.
            assert_eq!(net.listener.messages.last(), Some(&from_starter));
            assert_eq!(net.starter.messages.last(), Some(&from_listener));
        }
    }
    a
}
