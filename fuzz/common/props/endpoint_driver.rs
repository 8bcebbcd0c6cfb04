// The driver the two endpoint properties share (`endpoint_listener.rs`,
// `endpoint_starter.rs`): it feeds an `Endpoint` datagrams and timer deadlines
// in virtual time and checks every datagram it sends, every event it reports
// and the sessions it holds against what the input could justify. What it
// checks is listed in each property's file.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ferry_proto::wire::packet::{Packet, PacketKind};
use ferry_proto::{CloseReason, Config, Endpoint, Event, SessionId, StreamId, Transmit};

use super::shared::{FROM_OTHER, OTHER, PEER, QUIET, SEAL, next_record, open, seal, step_duration};
use super::endpoint_starter::OUR_SESSION;

/// How far a run of `check_endpoint` or `check_starter` got, for tests that
/// want to know their inputs reach deep states.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reached {
    /// Sessions announced with `Connected`.
    pub sessions: usize,
    /// Messages taken after `Readable` and `StreamReadable` events.
    pub messages: usize,
    /// `Datagram` events.
    pub datagrams: usize,
}

/// What the driver knows of a session from its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Life {
    Connected,
    Closed,
}

/// Drives one endpoint and holds what its outputs are checked against.
pub(super) struct Driver {
    pub(super) endpoint: Endpoint,
    pub(super) config: Config,
    /// The session this endpoint started, when it is the starter (its
    /// application sends; a listener's never does).
    pub(super) starter: Option<SessionId>,
    pub(super) now: Instant,
    pub(super) buf: Vec<u8>,
    // What the input held.
    pub(super) fed: u64,
    pub(super) senders: HashSet<SocketAddr>,
    /// Bytes received from and sent to each address, until it proved it
    /// receives there (a listener's amplification limit).
    pub(super) traffic: HashMap<SocketAddr, (u64, u64)>,
    /// Path challenge and retry tokens sent to each address: echoing one
    /// proves the address.
    pub(super) challenges: HashSet<(SocketAddr, u64)>,
    pub(super) retry_tokens: HashSet<(SocketAddr, Bytes)>,
    pub(super) connects: HashSet<SessionId>,
    pub(super) data_bytes: usize,
    pub(super) directs: HashSet<Bytes>,
    pub(super) direct_count: usize,
    // What came out.
    pub(super) lives: BTreeMap<SessionId, Life>,
    pub(super) message_count: usize,
    pub(super) message_bytes: usize,
    pub(super) datagram_count: usize,
}

impl Driver {
    pub(super) fn new(config: Config) -> Self {
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
    pub(super) fn feed_records(&mut self, data: &[u8], ours: Option<SessionId>) {
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
    pub(super) fn feed(&mut self, from: SocketAddr, datagram: &[u8]) {
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
    pub(super) fn run_until(&mut self, until: Instant) {
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
    pub(super) fn drain(&mut self) {
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
        // Path MTU discovery sends up to `max_mtu`.
        let largest = self.config.mtu.max(self.config.max_mtu);
        assert!(t.size <= largest, "{t:?} above the MTU");
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
            // Incoming: the configurations here leave `decide_incoming` off.
            Event::Connected { .. } | Event::Incoming { .. } => unreachable!(),
            Event::StreamOpened { .. } | Event::StreamClosed { .. } | Event::Ticket { .. } => {}
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

    pub(super) fn check_all_closed(&self) {
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
