// Properties of ferry-proto checked on arbitrary input.
//
// Shared by the cargo-fuzz targets in `fuzz/fuzz_targets/` and by the stable test
// `crates/ferry-proto/tests/fuzz_corpus.rs`, which replays the seed corpora and
// past crashes; each `include!`s this file inside a `mod props { … }`. It depends
// only on ferry-proto and bytes. (An `include!`d file cannot hold inner doc
// comments, hence these plain ones.)
//
// `check_decode(data)`: `data` is one unprotected packet (header and body, no
// checksum trailer). If it decodes, encoding the result and decoding again gives
// the same header and packet; the re-encoding is canonical and no longer than the
// input.
//
// `check_endpoint(data)`: `data` is a sequence of records, each a datagram sent to
// a listening `Endpoint` after some time has passed:
//
//     step: u8 | flags: u8 | len: u16 (big-endian) | datagram: [u8; len]
//
//   - `step` advances the clock before the datagram: bits 0–6 are an amount, in
//     seconds if bit 7 ([`STEP_SECONDS`]) is set, else in milliseconds. Timers that
//     fall due meanwhile fire at their deadlines, as in a real driver.
//   - `flags` bit 0 ([`SEAL`]): the driver appends a valid checksum trailer, so
//     the fuzzer can reach the session logic without computing CRC-32s; bit 1
//     ([`FROM_OTHER`]): the datagram comes from [`OTHER`] instead of [`PEER`].
//   - A record cut short by the end of the input keeps what remains.
//
// Every run starts with a valid Connect for session [`SESSION`] from [`PEER`] (packet
// number 0), so the fuzzer starts from an established session. After the last
// record the clock runs on for ten minutes with no input. Checked throughout:
//
//   - every datagram the endpoint sends is at most the MTU, goes to an address that
//     sent something, carries a valid checksum, decodes, belongs to a session some
//     valid Connect named, and is no Connect, Data or Datagram (the application here
//     never connects or sends);
//   - `Connected` comes once per session, only for a session some valid Connect
//     named, and before any other event of that session; nothing follows `Closed`;
//   - a `Message` needs valid Data packets in the input (the bytes of all messages
//     delivered never exceed the payload bytes of the valid Data packets fed), and
//     is at most `max_message_size`; a `Datagram` carries the payload of a valid
//     Datagram packet fed, and there are never more of them than such packets;
//   - no `SendReady` (nothing was ever sent) and no `Closed` with a local reason;
//   - `session_count() <= max_sessions`, `recv_memory() <= max_recv_memory`;
//     every session the endpoint holds was
//     announced, and an announced session only disappears after `Closed`;
//   - the endpoint's stats count every datagram fed and every session announced;
//   - after `handle_timeout(now)` the next deadline is later than `now` (a driver
//     sleeping until `poll_timeout` would otherwise spin);
//   - ten quiet minutes after the last datagram every session has closed.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ferry_proto::wire::packet::{Handshake, Header, Packet, PacketKind};
use ferry_proto::wire::protection::Protection;
use ferry_proto::{CloseReason, Config, Endpoint, Event, SessionId, StreamId, Transmit};

/// Decodes `data` as an unprotected packet and, if it decodes, checks that
/// decode → encode → decode is stable and the encoding canonical.
pub fn check_decode(data: &[u8]) {
    let Ok((header, packet)) = Packet::decode(Bytes::copy_from_slice(data)) else {
        return;
    };
    assert_eq!(header.kind, packet.kind(), "header kind and body disagree");
    let mut out = Vec::new();
    packet.encode(header.session, header.number, &mut out);
    let (header2, packet2) = Packet::decode(Bytes::from(out.clone()))
        .unwrap_or_else(|e| panic!("re-encoded {packet:?} does not decode: {e}"));
    assert_eq!(header2, header, "header changed across a round trip");
    assert_eq!(packet2, packet, "packet changed across a round trip");
    assert_eq!(
        Header::decode(&out).map(|(_, len)| len),
        Ok(header.encoded_len()),
        "Header::len disagrees with the encoding"
    );
    let mut again = Vec::new();
    packet2.encode(header2.session, header2.number, &mut again);
    assert_eq!(again, out, "encoding is not canonical");
    assert!(
        out.len() <= data.len(),
        "re-encoding grew the packet from {} to {} bytes",
        data.len(),
        out.len()
    );
}

/// The session the opening Connect of every endpoint run names.
pub const SESSION: SessionId = SessionId(*b"ferryfz1");
/// Where the opening Connect and records without [`FROM_OTHER`] come from.
pub const PEER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 4433);
/// Where records with [`FROM_OTHER`] come from.
pub const OTHER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)), 4433);
/// Record flag: append a valid checksum trailer to the datagram.
pub const SEAL: u8 = 0b01;
/// Record flag: the datagram comes from [`OTHER`].
pub const FROM_OTHER: u8 = 0b10;
/// Record step bit: the amount is in seconds rather than milliseconds.
pub const STEP_SECONDS: u8 = 0x80;
/// How long the clock runs on after the last record.
pub const QUIET: Duration = Duration::from_secs(600);

/// Record flag of `check_starter`: the datagram's session id (bytes 2..10)
/// is overwritten with the starter's, which the fuzzer cannot know, before
/// any checksum is added.
pub const OUR_SESSION: u8 = 0b100;

/// The sizes of the messages the starter sends once connected.
pub const STARTER_MESSAGES: [usize; 3] = [100, 5_000, 40_000];

/// The handshake parameters of the opening Connect.
pub const HANDSHAKE: Handshake = Handshake {
    max_udp_payload: 1200,
    max_message_size: 1 << 24,
    initial_max_data: 1 << 25,
    max_ack_delay_micros: 10_000,
    max_streams: 100,
    initial_max_stream_data: 1 << 24,
    auth: Bytes::new(),
    token: Bytes::new(),
};

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

/// Encodes one record of the endpoint input format.
pub fn record(step: u8, flags: u8, datagram: &[u8]) -> Vec<u8> {
    let len = u16::try_from(datagram.len()).expect("a record holds at most 65535 bytes");
    let mut out = vec![step, flags];
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(datagram);
    out
}

/// Appends the checksum trailer to an encoded packet, as the endpoint's sender
/// does. A packet whose header does not decode gets a trailer all the same.
pub fn seal(mut packet: Vec<u8>) -> Vec<u8> {
    let (number, header_len) = Header::decode(&packet)
        .map(|(h, len)| (h.number, len))
        .unwrap_or((0, 0));
    Protection::Checksum.seal(number, header_len, &mut packet);
    packet
}

/// Encodes and seals `packet` as a datagram of `session` with packet `number`.
pub fn datagram(packet: &Packet, session: SessionId, number: u64) -> Vec<u8> {
    let mut buf = Vec::new();
    packet.encode(session, number, &mut buf);
    if packet.kind() == PacketKind::Connect {
        // Connects are padded to the MTU, trailer included.
        buf.resize(buf.len().max(HANDSHAKE.max_udp_payload as usize - 4), 0);
    }
    let header_len = Header {
        kind: packet.kind(),
        session,
        number,
    }
    .encoded_len();
    Protection::Checksum.seal(number, header_len, &mut buf);
    buf
}

/// Checks the trailer of a received datagram and decodes it, as the endpoint does.
pub fn open(datagram: &[u8]) -> Option<(Header, Packet)> {
    let (header, header_len) = Header::decode(datagram).ok()?;
    let mut buf = BytesMut::from(datagram);
    Protection::Checksum
        .open(header.number, header_len, &mut buf)
        .ok()?;
    Packet::decode(buf.freeze()).ok()
}

/// How far a run of [`check_endpoint`] got, for tests that want to know their
/// inputs reach deep states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reached {
    /// Sessions announced with `Connected`.
    pub sessions: usize,
    /// `Message` events.
    pub messages: usize,
    /// `Datagram` events.
    pub datagrams: usize,
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
    driver.feed(PEER, &datagram(&Packet::ConnectAck(HANDSHAKE), id, 0));
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

/// How far a record's `step` advances the clock: bits 0–6 an amount, in
/// seconds if bit 7 ([`STEP_SECONDS`]) is set, else in milliseconds.
pub fn step_duration(step: u8) -> Duration {
    let amount = u64::from(step & !STEP_SECONDS);
    if step & STEP_SECONDS != 0 {
        Duration::from_secs(amount)
    } else {
        Duration::from_millis(amount)
    }
}

/// Splits the next record off `input`: (step, flags, datagram).
pub fn next_record<'a>(input: &mut &'a [u8]) -> Option<(u8, u8, &'a [u8])> {
    let data = *input;
    let step = *data.first()?;
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let len = usize::from(u16::from_be_bytes([byte(2), byte(3)]));
    let rest = data.get(4..).unwrap_or_default();
    let (datagram, tail) = rest.split_at(len.min(rest.len()));
    *input = tail;
    Some((step, byte(1), datagram))
}

/// What the driver knows of a session from its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Life {
    Connected,
    Closed,
}

/// Drives one endpoint and holds what its outputs are checked against.
struct Driver {
    endpoint: Endpoint,
    config: Config,
    /// The session this endpoint started, when it is the starter (its
    /// application sends; a listener's never does).
    starter: Option<SessionId>,
    now: Instant,
    buf: Vec<u8>,
    // What the input held.
    fed: u64,
    senders: HashSet<SocketAddr>,
    /// Bytes received from and sent to each address, until it proved it
    /// receives there (a listener's amplification limit).
    traffic: HashMap<SocketAddr, (u64, u64)>,
    /// Path challenge and retry tokens sent to each address: echoing one
    /// proves the address.
    challenges: HashSet<(SocketAddr, u64)>,
    retry_tokens: HashSet<(SocketAddr, Bytes)>,
    connects: HashSet<SessionId>,
    data_bytes: usize,
    directs: HashSet<Bytes>,
    direct_count: usize,
    // What came out.
    lives: BTreeMap<SessionId, Life>,
    message_count: usize,
    message_bytes: usize,
    datagram_count: usize,
}

impl Driver {
    fn new(config: Config) -> Self {
        Self {
            endpoint: Endpoint::new(config.clone(), 1).expect("valid config"),
            config,
            starter: None,
            now: Instant::now(),
            buf: Vec::new(),
            fed: 0,
            senders: HashSet::new(),
            traffic: HashMap::new(),
            challenges: HashSet::new(),
            retry_tokens: HashSet::new(),
            connects: HashSet::new(),
            data_bytes: 0,
            directs: HashSet::new(),
            direct_count: 0,
            lives: BTreeMap::new(),
            message_count: 0,
            message_bytes: 0,
            datagram_count: 0,
        }
    }

    /// Feeds the records of `data`, advancing the clock before each; with
    /// `ours`, records flagged [`OUR_SESSION`] get that session id.
    fn feed_records(&mut self, data: &[u8], ours: Option<SessionId>) {
        let mut input = data;
        while let Some((step, flags, bytes)) = next_record(&mut input) {
            self.run_until(self.now + step_duration(step));
            let from = if flags & FROM_OTHER != 0 { OTHER } else { PEER };
            let mut bytes = bytes.to_vec();
            if let Some(id) = ours
                && flags & OUR_SESSION != 0
                && bytes.len() >= 10
            {
                bytes[2..10].copy_from_slice(&id.0);
            }
            if flags & SEAL != 0 {
                bytes = seal(bytes);
            }
            self.feed(from, &bytes);
        }
    }

    /// Hands one datagram to the endpoint, noting what valid packet it holds.
    fn feed(&mut self, from: SocketAddr, datagram: &[u8]) {
        self.fed += 1;
        self.senders.insert(from);
        if let Some(t) = self.traffic.get_mut(&from) {
            t.0 += datagram.len() as u64;
        } else {
            self.traffic.insert(from, (datagram.len() as u64, 0));
        }
        if let Some((header, packet)) = open(datagram) {
            match packet {
                Packet::Connect(h) => {
                    if self.retry_tokens.contains(&(from, h.token.clone())) {
                        self.traffic.remove(&from);
                    }
                    self.connects.insert(header.session);
                }
                Packet::PathResponse { token } if self.challenges.contains(&(from, token)) => {
                    self.traffic.remove(&from);
                }
                Packet::Data(d) => self.data_bytes += d.payload.len(),
                Packet::Datagram(payload) => {
                    self.directs.insert(payload);
                    self.direct_count += 1;
                }
                _ => {}
            }
        }
        self.endpoint
            .handle_datagram(self.now, from, BytesMut::from(datagram));
        self.drain();
    }

    /// Advances the clock to `until`, firing every timer at its deadline.
    fn run_until(&mut self, until: Instant) {
        let mut rounds_at_now = 0;
        while let Some(deadline) = self.endpoint.poll_timeout() {
            if deadline > until {
                break;
            }
            if deadline <= self.now {
                rounds_at_now += 1;
                assert!(
                    rounds_at_now <= 16,
                    "handle_timeout({:?}) keeps leaving a deadline at or before now ({:?} earlier)",
                    self.now,
                    self.now - deadline
                );
            } else {
                rounds_at_now = 0;
                self.now = deadline;
            }
            self.endpoint.handle_timeout(self.now);
            self.drain();
        }
        self.now = self.now.max(until);
    }

    /// Takes every transmit and event, checking each, until none is left.
    fn drain(&mut self) {
        let mut transmits = 0;
        loop {
            let mut progress = false;
            while let Some(t) = self.endpoint.poll_transmit(self.now, &mut self.buf) {
                transmits += 1;
                assert!(transmits <= 1000, "the endpoint keeps transmitting");
                self.check_transmit(t);
                progress = true;
            }
            while let Some(event) = self.endpoint.poll_event() {
                self.check_event(event);
                progress = true;
            }
            if !progress {
                break;
            }
        }
        self.check_sessions();
    }

    fn check_transmit(&mut self, t: Transmit) {
        assert!(t.size <= self.buf.len(), "{t:?} beyond the buffer");
        assert!(t.size <= self.config.mtu, "{t:?} above the MTU");
        assert!(
            self.senders.contains(&t.destination),
            "{t:?} to an address that never sent anything"
        );
        let (header, packet) = open(&self.buf[..t.size])
            .unwrap_or_else(|| panic!("the endpoint sent an invalid datagram: {t:?}"));
        match &packet {
            Packet::PathChallenge { token } => {
                self.challenges.insert((t.destination, *token));
            }
            Packet::Retry { token } => {
                self.retry_tokens.insert((t.destination, token.clone()));
            }
            _ => {}
        }
        // (With a key, any packet that opens proves the address; the input
        // cannot make one, so only clear listeners are checked.)
        if self.starter.is_none()
            && self.config.psk.is_none()
            && let Some((received, sent)) = self.traffic.get_mut(&t.destination)
        {
            // A listener answers an unproven address with at most
            // `amplification_factor` times what came from it.
            *sent += t.size as u64;
            assert!(
                *sent <= u64::from(self.config.amplification_factor) * *received,
                "sent {sent} bytes to {} after receiving {received}: amplification",
                t.destination
            );
        }
        assert!(
            self.connects.contains(&header.session),
            "sent a packet for a session no valid Connect named: {header:?}"
        );
        match self.starter {
            None => assert!(
                !matches!(
                    header.kind,
                    PacketKind::Connect | PacketKind::Data | PacketKind::Datagram
                ),
                "a listener whose application sends nothing sent {packet:?}"
            ),
            // A starter does not accept sessions, but it refuses a Connect
            // (statelessly, with a Close) wherever that came from.
            Some(id) if header.session != id => assert!(
                matches!(packet, Packet::Close(_)),
                "a starter sent {packet:?} for a session not its own"
            ),
            Some(id) => {
                assert_eq!(t.destination, PEER, "the starter sends to its peer only");
                assert!(
                    !matches!(header.kind, PacketKind::Datagram | PacketKind::ConnectAck),
                    "a starter whose application sends no datagram sent {packet:?}"
                );
                assert!(
                    header.kind != PacketKind::Connect || !self.lives.contains_key(&id),
                    "a Connect after the session was connected"
                );
            }
        }
    }

    fn check_event(&mut self, event: Event) {
        let session = event.session();
        let life = self.lives.get(&session).copied();
        if let Event::Connected { .. } = event {
            assert!(
                self.connects.contains(&session),
                "Connected for {session:?} without a valid Connect"
            );
            assert_eq!(life, None, "a second Connected for {session:?}");
            self.lives.insert(session, Life::Connected);
            return;
        }
        assert_eq!(
            life,
            Some(Life::Connected),
            "{event:?} for a session not connected or already closed"
        );
        match event {
            Event::Connected { .. } => unreachable!(),
            Event::StreamOpened { .. } | Event::StreamClosed { .. } => {}
            Event::Readable { session } | Event::StreamReadable { session, .. } => {
                let stream = match event {
                    Event::StreamReadable { stream, .. } => stream,
                    _ => StreamId::DEFAULT,
                };
                let mut session = self
                    .endpoint
                    .session(session)
                    .expect("a readable session is held");
                let mut taken = 0;
                while let Some(data) = session.recv_on(stream) {
                    taken += 1;
                    assert!(
                        data.len() <= self.config.max_message_size,
                        "message of {} bytes",
                        data.len()
                    );
                    self.message_count += 1;
                    self.message_bytes += data.len();
                    assert!(
                        self.message_bytes <= self.data_bytes,
                        "{} message bytes delivered from {} bytes of valid Data payload",
                        self.message_bytes,
                        self.data_bytes
                    );
                }
                assert!(taken > 0, "Readable with no message to take");
            }
            Event::Datagram { data, .. } => {
                assert!(
                    self.directs.contains(&data),
                    "a Datagram no valid Datagram packet carried: {data:?}"
                );
                self.datagram_count += 1;
                assert!(
                    self.datagram_count <= self.direct_count,
                    "more Datagram events than valid Datagram packets"
                );
            }
            Event::SendReady { .. } => assert!(
                self.starter.is_some(),
                "SendReady though nothing was ever sent"
            ),
            Event::Closed { reason, .. } => {
                assert!(
                    !matches!(reason, CloseReason::Local { .. }),
                    "closed locally though nothing closed it: {reason:?}"
                );
                self.lives.insert(session, Life::Closed);
            }
        }
    }

    fn check_sessions(&self) {
        let stats = self.endpoint.stats();
        assert_eq!(
            stats.datagrams_received, self.fed,
            "stats count {} datagrams received, {} were fed",
            stats.datagrams_received, self.fed
        );
        let accepted = if self.starter.is_some() {
            0
        } else {
            self.lives.len() as u64
        };
        assert_eq!(
            stats.sessions_accepted,
            accepted,
            "stats count {} sessions accepted, {} were announced",
            stats.sessions_accepted,
            self.lives.len()
        );
        let count = self.endpoint.session_count();
        assert!(
            count <= self.config.max_sessions,
            "{count} sessions open, limit {}",
            self.config.max_sessions
        );
        assert!(
            self.endpoint.recv_memory() <= self.config.max_recv_memory as u64,
            "{} bytes of received data held, limit {}",
            self.endpoint.recv_memory(),
            self.config.max_recv_memory
        );
        let held: HashSet<SessionId> = self.endpoint.sessions().collect();
        assert_eq!(held.len(), count, "sessions() and session_count() disagree");
        for id in &held {
            assert!(
                self.lives.contains_key(id) || self.starter == Some(*id),
                "the endpoint holds {id:?}, never announced"
            );
        }
        for (id, life) in &self.lives {
            assert!(
                *life == Life::Closed || held.contains(id),
                "{id:?} vanished without a Closed event"
            );
        }
    }

    fn check_all_closed(&self) {
        let open: Vec<_> = self.endpoint.sessions().collect();
        assert!(
            open.is_empty(),
            "sessions still open after {QUIET:?} without input: {open:?}"
        );
        for (id, life) in &self.lives {
            assert_eq!(*life, Life::Closed, "{id:?} ended without a Closed event");
        }
    }
}

// ---------------------------------------------------------------------------
// The diode receiver.
//
// `check_diode_receiver(data)`: `data` is a sequence of records in the same
// format as the endpoint's (`step | flags | len | datagram`), fed to a diode
// `Receiver`; flag `SEAL` overwrites the datagram's last four bytes with a valid
// CRC-32 so the fuzzer reaches the block logic. Decode jobs run inline after
// every datagram. After the last record the clock runs on for ten minutes.
// Checked throughout:
//
//   - `Data` only for a session that started and has not ended; nothing at all
//     of a session after its `SessionFinished` or `SessionLost`; at most one end
//     per session;
//   - `SessionFinished { bytes }` equals the bytes its `Data` events delivered;
//   - the bytes delivered never exceed the symbol bytes fed;
//   - `session_count() <= max_sessions`, and at most `max_blocks_in_flight`
//     blocks held per session (`blocks_held()`);
//   - after `handle_timeout(now)` the next deadline is later than `now`;
//   - ten quiet minutes after the last datagram no session is left.

use ferry_proto::diode::{DiodeConfig, DiodeSessionId, Receiver, ReceiverEvent};

/// The diode receiver's settings under fuzzing: small, so limits are reached.
pub fn diode_config() -> DiodeConfig {
    DiodeConfig {
        block_size: 4096,
        max_blocks_in_flight: 4,
        max_sessions: 3,
        ..DiodeConfig::default()
    }
}

/// What a session did, as seen from the receiver's events.
#[derive(Debug, Default)]
struct DiodeLife {
    delivered: u64,
    ended: bool,
}

/// How far a run of [`check_diode_receiver`] got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiodeReached {
    /// Sessions reported finished.
    pub finished: usize,
    /// Sessions reported lost.
    pub lost: usize,
    /// Bytes delivered.
    pub bytes: u64,
}

/// Feeds `data` (records) to a diode receiver, checking every event.
pub fn check_diode_receiver(data: &[u8]) -> DiodeReached {
    let config = diode_config();
    let max_sessions = config.max_sessions;
    let max_blocks_in_flight = config.max_blocks_in_flight;
    let start = Instant::now();
    let mut now = start;
    let mut receiver = Receiver::new(config, now).expect("valid fuzzing config");
    let mut lives: BTreeMap<DiodeSessionId, DiodeLife> = BTreeMap::new();
    let mut reached = DiodeReached::default();
    let mut fed_symbol_bytes = 0u64;

    let mut drain = |receiver: &mut Receiver, now: Instant, reached: &mut DiodeReached| {
        receiver.decode_pending(now);
        while let Some(event) = receiver.poll_event() {
            match event {
                ReceiverEvent::SessionStarted { session } => {
                    assert!(
                        lives.insert(session, DiodeLife::default()).is_none(),
                        "session {session} started twice"
                    );
                }
                ReceiverEvent::Data { session, data } => {
                    let life = lives.get_mut(&session).expect("data before start");
                    assert!(!life.ended, "data after the end of {session}");
                    life.delivered += data.len() as u64;
                    reached.bytes += data.len() as u64;
                }
                ReceiverEvent::SessionFinished { session, bytes } => {
                    let life = lives.get_mut(&session).expect("finish before start");
                    assert!(!life.ended, "{session} ended twice");
                    assert_eq!(life.delivered, bytes, "finished with a different length");
                    life.ended = true;
                    reached.finished += 1;
                }
                ReceiverEvent::SessionLost { session, .. } => {
                    // A session refused at its first datagram never started.
                    let life = lives.entry(session).or_default();
                    assert!(!life.ended, "{session} ended twice");
                    life.ended = true;
                    reached.lost += 1;
                }
                ReceiverEvent::HeartbeatMissing { .. } | ReceiverEvent::HeartbeatRecovered => {}
            }
        }
        assert!(receiver.session_count() <= max_sessions);
        assert!(
            receiver.blocks_held() <= max_sessions * max_blocks_in_flight,
            "{} blocks held",
            receiver.blocks_held()
        );
    };

    let run_until = |receiver: &mut Receiver,
                     now: &mut Instant,
                     until: Instant,
                     drain: &mut dyn FnMut(&mut Receiver, Instant, &mut DiodeReached),
                     reached: &mut DiodeReached| {
        while let Some(deadline) = receiver.poll_timeout() {
            if deadline > until {
                break;
            }
            *now = (*now).max(deadline);
            receiver.handle_timeout(*now);
            drain(receiver, *now, reached);
            if let Some(next) = receiver.poll_timeout() {
                assert!(next > *now, "deadline {next:?} not after now {now:?}: a driver would spin");
            }
        }
        *now = (*now).max(until);
    };

    let mut input = data;
    while let Some((step, flags, bytes)) = next_record(&mut input) {
        let until = now + step_duration(step);
        run_until(&mut receiver, &mut now, until, &mut drain, &mut reached);
        let mut datagram = bytes.to_vec();
        if flags & SEAL != 0 && datagram.len() >= 4 {
            ferry_proto::diode::wire::seal(&mut datagram);
        }
        if let Ok(ferry_proto::diode::wire::DiodePacket::Symbol { symbol, .. }) =
            ferry_proto::diode::wire::decode(&datagram)
        {
            fed_symbol_bytes += symbol.len() as u64;
        }
        receiver.handle_datagram(now, &datagram);
        drain(&mut receiver, now, &mut reached);
        assert!(
            reached.bytes <= fed_symbol_bytes,
            "delivered {} bytes from {} bytes of symbols",
            reached.bytes,
            fed_symbol_bytes
        );
    }
    let until = now + QUIET;
    run_until(&mut receiver, &mut now, until, &mut drain, &mut reached);
    assert_eq!(receiver.session_count(), 0, "sessions left after ten quiet minutes");
    reached
}

// ---------------------------------------------------------------------------
// A listener with a pre-shared key.
//
// `check_keyed_listener(data)`: the records (same format as the endpoint's;
// `SEAL` appends a valid checksum, so Connects parse and reach the handshake)
// are fed to a listener that holds the key `FUZZ_KEY`. The fuzzer does not know
// the key, so nothing it sends may ever get in. Checked throughout:
//
//   - no event at all (no `Connected`, nothing delivered);
//   - the listener holds no session;
//   - everything it sends is a Close under the checksum (a stateless refusal),
//     to an address that sent something;
//   - every datagram fed is counted.

use ferry_proto::crypto::PreSharedKey;

/// The key of the fuzzed keyed listener (the fuzzer is not told it).
pub const FUZZ_KEY: [u8; 32] = [0x5a; 32];

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

// ---------------------------------------------------------------------------
// The handshake between two real endpoints over a network the fuzzer runs.
//
// `check_handshake(data)`: byte 0 picks the setting: bits 0–1 the keys
// (0: none, 1: the same key on both sides, 2: a key on the starter only,
// 3: different keys), bit 2 a listener that asks every connect for a retry
// (`max_pending_handshakes = 0`). The starter connects; the rest of `data`
// is records (same layout as above) that each act on the network after the
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
    let (starter_key, listener_key) = match setting & 0b11 {
        0 => (None, None),
        1 => (Some(FUZZ_KEY), Some(FUZZ_KEY)),
        2 => (Some(FUZZ_KEY), None),
        _ => (Some(FUZZ_KEY), Some([0xa5; 32])),
    };
    let matching = starter_key == listener_key;
    let keyed = |key: Option<[u8; 32]>| Config {
        psk: key.map(PreSharedKey::from_bytes),
        handshake_timeout: Duration::from_secs(5),
        ..Config::default()
    };
    let listener_config = Config {
        accept_incoming: true,
        max_pending_handshakes: if setting & 0b100 != 0 { 0 } else { 256 },
        ..keyed(listener_key)
    };
    let mut net = Net {
        mtu: listener_config.mtu,
        starter: Side::new(keyed(starter_key), 11, STARTER_ADDR),
        listener: Side::new(listener_config, 12, LISTENER_ADDR),
        to_listener: VecDeque::new(),
        to_starter: VecDeque::new(),
        now: Instant::now(),
    };
    let now = net.now;
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
        if starter_key.is_some() {
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
        if starter_key.is_some() {
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
