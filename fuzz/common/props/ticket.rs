// Resumption tickets (fuzz target `ticket`).
//
// `check_ticket(data)`: a listener that issues tickets (in the clear, so the
// fuzzer can write Connects by hand) gives a genuine ticket to a starter it
// ran a handshake with; then byte 0 of `data` picks what the rest is:
//
//   0: a stored ticket (`Ticket::from_bytes`): it must never panic, and what
//      reads back must write the same bytes; then it is resumed with, as a
//      starter would;
//   1: bytes XORed into the genuine sealed ticket (all zeros: the genuine one);
//   2: a sealed ticket in its own right, of any length;
//
// and a Connect carrying the (1, 2) ticket, with the rest as early data, is
// presented to the listener twice, from two session ids. Checked:
//
//   - nothing panics;
//   - a ticket other than the genuine one never resumes a session, nor has
//     its early data delivered: it is refused, or dropped;
//   - the genuine one resumes exactly once (the second time it is refused);
//   - every answer to a refused ticket is a Close under the checksum.
//
// Returns whether a session was resumed.

use std::net::SocketAddr;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bytes::{Bytes, BytesMut};
use ferry_proto::wire::packet::{Handshake, Packet};
use ferry_proto::{Config, Endpoint, Event, SessionId, Ticket};

use super::shared::{HANDSHAKE, PEER, datagram, open};

/// A clear listener issuing tickets, and a starter that holds one of its
/// tickets, at `now`: (listener, the listener's address, the ticket).
fn with_ticket(now: Instant) -> (Endpoint, SocketAddr, Ticket) {
    let listener_addr: SocketAddr = "192.0.2.30:4433".parse().expect("an address");
    let mut listener = Endpoint::new(
        Config {
            accept_incoming: true,
            issue_tickets: true,
            accept_early_data: true,
            ..Config::default()
        },
        11,
    )
    .expect("a valid config");
    let mut starter = Endpoint::new(Config::default(), 12).expect("a valid config");
    let wall = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    listener.set_wall_clock(now, wall);
    starter.set_wall_clock(now, wall);
    let id = starter.connect(now, listener_addr).expect("a connect");
    let mut buf = Vec::new();
    for _ in 0..8 {
        while let Some(t) = starter.poll_transmit(now, &mut buf) {
            listener.handle_datagram(now, PEER, BytesMut::from(&buf[..t.size]));
        }
        while let Some(t) = listener.poll_transmit(now, &mut buf) {
            starter.handle_datagram(now, listener_addr, BytesMut::from(&buf[..t.size]));
        }
    }
    while listener.poll_event().is_some() {}
    let ticket = starter
        .session(id)
        .and_then(|s| s.ticket())
        .expect("the listener gave a ticket");
    (listener, listener_addr, ticket)
}

/// A Connect from session `id` carrying `ticket` and `early`.
fn connect(id: SessionId, ticket: &[u8], early: &[u8]) -> Vec<u8> {
    datagram(
        &Packet::Connect(Handshake {
            resume: Bytes::copy_from_slice(ticket),
            early: Bytes::copy_from_slice(early),
            ..HANDSHAKE
        }),
        id,
        0,
    )
}

/// The sealed part of a stored ticket: its last bytes.
fn sealed(ticket: &Ticket) -> Vec<u8> {
    let stored = ticket.to_bytes();
    stored[stored.len() - ferry_proto::crypto::ticket::SEALED_LEN..].to_vec()
}

/// Presents `ticket` (sealed bytes) twice with `early`; whether a session was
/// resumed, and the early messages delivered.
fn present(listener: &mut Endpoint, now: Instant, ticket: &[u8], early: &[u8]) -> (bool, usize) {
    let mut buf = Vec::new();
    let mut delivered = 0;
    // Early data as the starter encodes it: one message, the bytes.
    let mut encoded = Vec::new();
    let len = early.len().min(600);
    encoded.push(0x40 | (len >> 8) as u8);
    encoded.push(len as u8);
    encoded.extend_from_slice(&early[..len]);
    for id in [*b"ticket01", *b"ticket02"] {
        let before = listener.stats().sessions_resumed;
        let connect = connect(SessionId(id), ticket, &encoded);
        listener.handle_datagram(now, PEER, BytesMut::from(&connect[..]));
        let resumed = listener.stats().sessions_resumed > before;
        while let Some(t) = listener.poll_transmit(now, &mut buf) {
            let (_, packet) = open(&buf[..t.size]).expect("answers under the checksum decode");
            // (No ticket at all is a plain Connect, answered as one.)
            if !resumed && !ticket.is_empty() {
                assert!(
                    matches!(packet, Packet::Close(_)),
                    "a refused ticket answered with {packet:?}"
                );
            }
        }
        while let Some(event) = listener.poll_event() {
            if let Event::Readable { session } = event {
                let mut s = listener.session(session).expect("a readable session");
                while s.recv().is_some() {
                    delivered += 1;
                }
            }
        }
    }
    (listener.stats().sessions_resumed > 0, delivered)
}

/// The genuine ticket of `check_ticket`, as stored (`Ticket::to_bytes`): the
/// same on every run.
pub fn genuine_stored_ticket() -> Vec<u8> {
    with_ticket(Instant::now()).2.to_bytes()
}

/// Seeds of `ticket`: the genuine ticket stored, unaltered, with a bit
/// flipped, cut short, and bytes of no ticket.
pub fn ticket_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let stored = genuine_stored_ticket();
    let mut flipped = vec![0; 20];
    flipped[12] = 0x20;
    vec![
        ("stored", [&[0][..], &stored].concat()),
        (
            "stored_cut",
            [&[0][..], &stored[..stored.len() - 1]].concat(),
        ),
        (
            "genuine_with_early",
            [&[1][..], &[0; 155], b"early"].concat(),
        ),
        ("bit_flipped", [&[1][..], &flipped].concat()),
        ("garbage", [&[2][..], &[0xab; 155]].concat()),
        ("empty", vec![2]),
    ]
}

/// Forged, altered and stored tickets: see the top of this file.
pub fn check_ticket(data: &[u8]) -> bool {
    let now = Instant::now();
    let (mut listener, listener_addr, genuine) = with_ticket(now);
    let Some((&mode, rest)) = data.split_first() else {
        return false;
    };
    let genuine_sealed = sealed(&genuine);
    let (ticket, early) = match mode % 3 {
        0 => {
            let Ok(stored) = Ticket::from_bytes(rest) else {
                return false;
            };
            assert_eq!(
                stored.to_bytes(),
                rest,
                "a stored ticket reads back the same"
            );
            if stored.listener() != listener_addr {
                return false;
            }
            (sealed(&stored), &[][..])
        }
        1 => {
            let cut = rest.len().min(genuine_sealed.len());
            let mut t = genuine_sealed.clone();
            for (b, x) in t.iter_mut().zip(&rest[..cut]) {
                *b ^= x;
            }
            (t, &rest[cut..])
        }
        _ => {
            let cut = rest.len().min(300);
            (rest[..cut].to_vec(), &rest[cut..])
        }
    };
    let is_genuine = ticket == genuine_sealed;
    let (resumed, delivered) = present(&mut listener, now, &ticket, early);
    let stats = listener.stats().clone();
    if is_genuine {
        assert!(resumed, "the genuine ticket resumes");
        assert_eq!(stats.sessions_resumed, 1, "once");
        assert!(delivered <= 1, "early data delivered once at most");
    } else {
        assert!(!resumed, "a forged ticket resumed a session");
        assert_eq!(delivered, 0, "a forged ticket's early data was delivered");
    }
    resumed
}
