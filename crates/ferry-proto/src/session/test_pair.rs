//! Two sessions joined back to back, for the session's unit tests: what one
//! sends, the other takes in, in order and with nothing lost unless a test
//! drops it. No endpoint and no simulator: the behaviour under test is the
//! session's own.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use bytes::BytesMut;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::config::Config;
use crate::endpoint::Shared;
use crate::id::SessionId;
use crate::wire::packet::{Ack, Header, Packet};

use super::{SessionCore, SessionEvent, State};

pub(super) const STARTER: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(192, 0, 2, 1),
    1000,
));
pub(super) const LISTENER: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(
    std::net::Ipv4Addr::new(192, 0, 2, 2),
    2000,
));

/// A datagram one session wrote, opened and decoded as its peer would.
pub(super) struct Received {
    pub(super) header: Header,
    pub(super) ack: Option<Ack>,
    pub(super) packet: Packet,
    pub(super) len: usize,
}

/// Everything `session` has to send now, each datagram opened with the
/// protection `receiver` expects for its kind.
pub(super) fn drain(session: &mut SessionCore, now: Instant) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut buf = Vec::new();
    while let Some(len) = session.poll_transmit(now, &mut buf) {
        out.push(buf[..len].to_vec());
        assert!(out.len() < 10_000, "a session that never stops sending");
    }
    out
}

/// Opens and decodes `datagram` as `receiver` would.
pub(super) fn open(receiver: &SessionCore, datagram: &[u8]) -> Received {
    let (header, header_len) = Header::decode(datagram).expect("a valid header");
    let mut data = BytesMut::from(datagram);
    receiver
        .protection_for(header.kind)
        .open(header.number, header_len, &mut data)
        .expect("opens");
    let (ack, packet) =
        Packet::decode_with_ack(&header, data.freeze().slice(header_len..)).expect("a valid body");
    Received {
        header,
        ack,
        packet,
        len: datagram.len(),
    }
}

/// A starter and, once its Connect arrived, a listener.
pub(super) struct Pair {
    pub(super) starter: SessionCore,
    pub(super) listener: SessionCore,
    pub(super) now: Instant,
}

impl Pair {
    /// A starter's Connect, taken in by a new listener; nothing answered yet.
    pub(super) fn connecting(config: Config) -> Self {
        Self::build(config, true)
    }

    /// A starter's Connect, taken in by a listener that waits for the
    /// application's decision (`SessionCore::incoming`).
    pub(super) fn incoming(config: Config) -> Self {
        Self::build(config, false)
    }

    /// `admit`: the listener accepts at once, as without a decision.
    fn build(config: Config, admit: bool) -> Self {
        let now = crate::test_support::epoch();
        let config = Arc::new(config);
        let id = SessionId([7; 8]);
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut starter = SessionCore::connect(
            id,
            LISTENER,
            config.clone(),
            Shared::default(),
            now,
            None,
            0,
            None,
            &mut rng,
        );
        let connect = drain(&mut starter, now);
        assert_eq!(connect.len(), 1, "one Connect");
        let Received {
            header,
            packet,
            len,
            ..
        } = open(&starter, &connect[0]);
        let Packet::Connect(hs) = packet else {
            panic!("the first packet is a Connect: {packet:?}")
        };
        let mut listener = SessionCore::incoming(
            id,
            id,
            STARTER,
            config,
            Shared::default(),
            now,
            header.number,
            &hs,
            None,
            Some(0x5eed),
            len,
        );
        if admit {
            listener.admit(now);
        }
        Self {
            starter,
            listener,
            now,
        }
    }

    /// Both sides established, their `Connected` events taken.
    pub(super) fn established(config: Config) -> Self {
        let mut pair = Self::connecting(config);
        pair.exchange();
        assert_eq!(pair.starter.state(), State::Established);
        assert_eq!(pair.listener.state(), State::Established);
        pair.starter.drain_events().for_each(drop);
        pair.listener.drain_events().for_each(drop);
        pair
    }

    /// Delivers what each side sends to the other until neither has more.
    pub(super) fn exchange(&mut self) {
        for _ in 0..1000 {
            let to_listener = drain(&mut self.starter, self.now);
            let to_starter = drain(&mut self.listener, self.now);
            if to_listener.is_empty() && to_starter.is_empty() {
                return;
            }
            for d in to_listener {
                let r = open(&self.listener, &d);
                self.listener
                    .handle_packet(self.now, STARTER, r.header, r.ack, r.packet, r.len, 0);
            }
            for d in to_starter {
                let r = open(&self.starter, &d);
                self.starter
                    .handle_packet(self.now, LISTENER, r.header, r.ack, r.packet, r.len, 0);
            }
        }
        panic!("the two sessions never fell quiet");
    }
}

/// The events a session has queued, taken.
pub(super) fn events(session: &mut SessionCore) -> Vec<SessionEvent> {
    session.drain_events().collect()
}
