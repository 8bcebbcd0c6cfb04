//! The codec's tests: every kind round-trips, malformed headers and bodies
//! are errors, and property tests that any packet round-trips and no bytes
//! make the decoder panic.

use super::*;
use crate::wire::codec::{Reader, VARINT_MAX};
use proptest::prelude::*;

fn round_trip(packet: &Packet, session: SessionId, number: u64) {
    let mut out = Vec::new();
    packet.encode(session, number, &mut out);
    let (header, ack, decoded) = Packet::decode(Bytes::from(out)).expect("decodes");
    assert_eq!(ack, None);
    assert!(!header.with_ack);
    assert_eq!(header.session, session);
    assert_eq!(header.number, number);
    assert_eq!(header.kind, packet.kind());
    assert_eq!(&decoded, packet);
}

#[test]
fn every_kind_round_trips() {
    let id = SessionId::from(7);
    let hs = Handshake {
        max_udp_payload: 1200,
        max_message_size: 1 << 24,
        initial_max_data: 1 << 25,
        max_ack_delay_micros: 10_000,
        max_streams: 100,
        initial_max_stream_data: 1 << 24,
        listener_id: None,
        auth: Bytes::new(),
        token: Bytes::new(),
        features: 0,
        resume: Bytes::new(),
        early: Bytes::new(),
    };
    let ack = Handshake {
        listener_id: Some(SessionId::from(0xc0ff_ee00_1234_5678)),
        ..hs.clone()
    };
    let with_auth = Handshake {
        auth: Bytes::from(vec![7; 80]),
        ..hs.clone()
    };
    let with_token = Handshake {
        token: Bytes::from(vec![9; 20]),
        ..hs.clone()
    };
    let with_both = Handshake {
        token: Bytes::from(vec![9; 20]),
        ..with_auth.clone()
    };
    for p in [
        Packet::Connect(hs.clone()),
        Packet::ConnectAck(ack.clone()),
        Packet::Connect(with_auth.clone()),
        Packet::ConnectAck(Handshake {
            auth: Bytes::from(vec![7; 80]),
            ..ack
        }),
        Packet::Connect(with_token),
        Packet::Connect(with_both),
        Packet::Connect(Handshake {
            features: FEATURES,
            ..hs.clone()
        }),
        Packet::Retry {
            token: Bytes::from(vec![1; MAX_RETRY_TOKEN]),
        },
        Packet::Retry {
            token: Bytes::new(),
        },
        Packet::PathChallenge { token: 0xdead_beef },
        Packet::PathResponse { token: u64::MAX },
        Packet::StreamControl {
            stream: StreamId(13),
            op: StreamOp::Finish { messages: 7 },
        },
        Packet::StreamControl {
            stream: StreamId(13),
            op: StreamOp::Reset {
                code: 3,
                messages: 9,
            },
        },
        Packet::StreamControl {
            stream: StreamId(2),
            op: StreamOp::Credit { max_data: 1 << 30 },
        },
        Packet::StreamControl {
            stream: StreamId(2),
            op: StreamOp::Refuse,
        },
        Packet::Data(Data {
            stream: StreamId(0),
            message: 3,
            fragment: 1,
            fragments: 2,
            payload: Bytes::from_static(b"hello"),
        }),
        Packet::Ack(Ack {
            delay_micros: 250,
            max_data: 99,
            ranges: vec![10..=12, 5..=7, 0..=0],
        }),
        Packet::RepeatRequest(RepeatRequest {
            missing: vec![8..=9],
        }),
        Packet::Ping,
        Packet::PingAck { ping: 42 },
        Packet::Close(Close {
            code: CloseCode::Application(3),
            reason: Bytes::from_static(b"bye"),
        }),
        Packet::Close(Close {
            code: CloseCode::Transport(1),
            reason: Bytes::new(),
        }),
        Packet::Datagram(Bytes::from_static(b"datagram")),
        Packet::Probe { padding: 0 },
        Packet::Probe { padding: 1400 },
        Packet::DataPart(DataPart {
            stream: StreamId(4),
            message: 9,
            fragment: 3,
            fragments: 700,
            fragment_len: 1420,
            offset: 1170,
            payload: Bytes::from(vec![5; 250]),
        }),
    ] {
        round_trip(&p, id, 1_000_000);
    }
}

#[test]
fn malformed_ranges_are_cut_not_panicked_on() {
    let mut out = Vec::new();
    encode_ranges(&mut out, &[10..=12, 9..=9, 1..=2]);
    let ranges = decode_ranges(&mut Reader::new(&out)).unwrap();
    assert_eq!(ranges, vec![10..=12]);
}

#[test]
fn header_errors() {
    assert_eq!(Header::decode(&[]), Err(DecodeError::Truncated));
    assert_eq!(
        Header::decode(&[2, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(DecodeError::UnsupportedVersion(2))
    );
    assert_eq!(
        Header::decode(&[1, 0x7f, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        Err(DecodeError::UnknownKind(0x7f))
    );
    assert_eq!(
        Header::decode(&[1, 1, 0, 0, 0]),
        Err(DecodeError::Truncated)
    );
}

#[test]
fn impossible_bodies() {
    // Fragment index beyond count.
    let mut out = Vec::new();
    encode_data_fields(&mut out, StreamId::DEFAULT, 0, 2, 2);
    assert!(matches!(
        Packet::decode_body(PacketKind::Data, Bytes::from(out)),
        Err(DecodeError::InvalidFragment { .. })
    ));
    // Zero fragments.
    let mut out = Vec::new();
    encode_data_fields(&mut out, StreamId::DEFAULT, 0, 0, 0);
    assert!(Packet::decode_body(PacketKind::Data, Bytes::from(out)).is_err());
    // Ack range below zero.
    let body = vec![0, 0, 1, 3, 4];
    assert_eq!(
        Packet::decode_body(PacketKind::Ack, Bytes::from(body)),
        Err(DecodeError::InvalidRange)
    );
    // Too many ranges claimed.
    let mut body = vec![0, 0];
    put_varint(&mut body, 1_000_000);
    assert_eq!(
        Packet::decode_body(PacketKind::Ack, Bytes::from(body)),
        Err(DecodeError::TooManyRanges)
    );
    // Trailing bytes after a ping.
    assert_eq!(
        Packet::decode_body(PacketKind::Ping, Bytes::from_static(&[0])),
        Err(DecodeError::TrailingBytes(1))
    );
    // Parts that do not fit their fragment, or are empty, or of an empty or
    // impossibly long fragment.
    let part = |fragment_len: u64, offset: u64, len: usize| {
        let mut out = Vec::new();
        encode_data_fields(&mut out, StreamId::DEFAULT, 0, 1, 2);
        put_varint(&mut out, fragment_len);
        put_varint(&mut out, offset);
        out.resize(out.len() + len, 7);
        Packet::decode_body(PacketKind::DataPart, Bytes::from(out))
    };
    assert!(part(1000, 999, 1).is_ok());
    for (fragment_len, offset, len) in [
        (1000, 999, 2),
        (1000, 0, 0),
        (0, 0, 1),
        (MAX_FRAGMENT_LEN as u64 + 1, 0, 1),
        (1000, u64::MAX >> 2, 1),
    ] {
        assert_eq!(
            part(fragment_len, offset, len),
            Err(DecodeError::ValueOutOfRange),
            "{fragment_len} {offset} {len}"
        );
    }
    let mut out = Vec::new();
    encode_data_fields(&mut out, StreamId::DEFAULT, 0, 2, 2);
    assert!(matches!(
        Packet::decode_body(PacketKind::DataPart, Bytes::from(out)),
        Err(DecodeError::InvalidFragment { .. })
    ));
    // A probe's padding is whatever it holds.
    assert_eq!(
        Packet::decode_body(PacketKind::Probe, Bytes::from_static(&[1, 2, 3])),
        Ok(Packet::Probe { padding: 3 })
    );
    // Close reason longer than what follows.
    assert_eq!(
        Packet::decode_body(PacketKind::Close, Bytes::from_static(&[0, 0, 10, b'a'])),
        Err(DecodeError::Truncated)
    );
}

fn arb_ranges() -> impl Strategy<Value = Vec<RangeInclusive<u64>>> {
    (
        0u64..1 << 40,
        prop::collection::vec((0u64..1000, 0u64..1000), 0..MAX_RANGES),
    )
        .prop_map(|(top, steps)| {
            let mut ranges = Vec::new();
            let mut end = top + 2_000_000;
            for (gap, len) in steps {
                let Some(start) = end.checked_sub(len) else {
                    break;
                };
                ranges.push(start..=end);
                match start.checked_sub(gap + 2) {
                    Some(e) => end = e,
                    None => break,
                }
            }
            ranges
        })
}

fn arb_packet() -> impl Strategy<Value = Packet> {
    let bytes = prop::collection::vec(any::<u8>(), 0..1500).prop_map(Bytes::from);
    let hs = (
        0..=VARINT_MAX,
        0..=VARINT_MAX,
        0..=VARINT_MAX,
        0..=VARINT_MAX,
        (0..=VARINT_MAX, 0..=VARINT_MAX, 0..=VARINT_MAX),
        prop::collection::vec(any::<u8>(), 0..200).prop_map(Bytes::from),
        prop::collection::vec(any::<u8>(), 0..=MAX_RETRY_TOKEN).prop_map(Bytes::from),
        any::<u64>(),
    )
        .prop_map(
            |(a, b, c, d, (e, f, features), auth, token, id)| Handshake {
                max_udp_payload: a,
                max_message_size: b,
                initial_max_data: c,
                max_ack_delay_micros: d,
                max_streams: e,
                initial_max_stream_data: f,
                listener_id: Some(SessionId::from(id)),
                // Some with a resumption field (cut from the other fields'
                // bytes), some without.
                resume: token.slice(..token.len() / 2),
                early: auth
                    .slice(auth.len() / 2..)
                    .slice(..if id % 2 == 0 { 0 } else { auth.len() / 4 }),
                auth,
                token,
                // The codec's own bit.
                features: features & !FEATURE_RESUME,
            },
        );
    let token = prop::collection::vec(any::<u8>(), 0..=MAX_RETRY_TOKEN).prop_map(Bytes::from);
    prop_oneof![
        hs.clone().prop_map(|mut h| {
            // A Connect carries no listener id.
            h.listener_id = None;
            Packet::Connect(h)
        }),
        hs.prop_map(|mut h| {
            // A ConnectAck carries no token.
            h.token = Bytes::new();
            Packet::ConnectAck(h)
        }),
        token.prop_map(|token| Packet::Retry { token }),
        (
            0..=VARINT_MAX,
            0..=VARINT_MAX,
            1..=u32::MAX,
            any::<u32>(),
            bytes.clone()
        )
            .prop_map(
                |(stream, message, fragments, f, payload)| Packet::Data(Data {
                    stream: StreamId(stream),
                    message,
                    fragment: f % fragments,
                    fragments,
                    payload,
                })
            ),
        (0..=VARINT_MAX, 0..=VARINT_MAX, arb_ranges()).prop_map(|(d, m, ranges)| {
            Packet::Ack(Ack {
                delay_micros: d,
                max_data: m,
                ranges,
            })
        }),
        arb_ranges().prop_map(|missing| Packet::RepeatRequest(RepeatRequest { missing })),
        (
            0..=VARINT_MAX,
            any::<u8>(),
            any::<bool>(),
            prop::collection::vec(any::<u8>(), 0..=MAX_TICKET_LEN)
        )
            .prop_map(
                |(lifetime, flags, keyed, ticket)| Packet::Ticket(NewTicket {
                    lifetime,
                    flags,
                    secret: if keyed {
                        Bytes::from(vec![7; 32])
                    } else {
                        Bytes::new()
                    },
                    ticket: Bytes::from(ticket),
                })
            ),
        Just(Packet::Ping),
        (0..=VARINT_MAX).prop_map(|ping| Packet::PingAck { ping }),
        (
            any::<bool>(),
            0..=VARINT_MAX,
            prop::collection::vec(any::<u8>(), 0..=MAX_CLOSE_REASON)
        )
            .prop_map(|(app, code, reason)| Packet::Close(Close {
                code: if app {
                    CloseCode::Application(code)
                } else {
                    CloseCode::Transport(code)
                },
                reason: Bytes::from(reason),
            })),
        bytes.clone().prop_map(Packet::Datagram),
        (0usize..1500).prop_map(|padding| Packet::Probe { padding }),
        (
            (0..=VARINT_MAX, 0..=VARINT_MAX, 1..=u32::MAX, any::<u32>()),
            (0..MAX_FRAGMENT_LEN as u32, bytes)
        )
            .prop_map(|((stream, message, fragments, f), (offset, payload))| {
                // At least one byte, ending within a fragment of at most
                // the largest length.
                let payload = if payload.is_empty() {
                    Bytes::from_static(b"x")
                } else {
                    payload
                };
                let offset = offset.min((MAX_FRAGMENT_LEN - payload.len()) as u32);
                Packet::DataPart(DataPart {
                    stream: StreamId(stream),
                    message,
                    fragment: f % fragments,
                    fragments,
                    fragment_len: offset + payload.len() as u32,
                    offset,
                    payload,
                })
            }),
    ]
}

#[test]
fn packets_of_data_carry_an_ack_before_their_body() {
    let ack = Ack {
        delay_micros: 250,
        max_data: 1 << 20,
        ranges: vec![10..=12, 4..=7],
    };
    let data = Packet::Data(Data {
        stream: StreamId::DEFAULT,
        message: 3,
        fragment: 0,
        fragments: 1,
        payload: Bytes::from_static(b"reply"),
    });
    let mut out = Vec::new();
    data.encode_with_ack(SessionId::from(9), 5, Some(&ack), &mut out);
    assert_eq!(out[1], PacketKind::Data as u8 | ACK_FLAG);
    let mut alone = Vec::new();
    data.encode(SessionId::from(9), 5, &mut alone);
    assert_eq!(out.len(), alone.len() + ack.encoded_len());
    let (header, carried, packet) = Packet::decode(Bytes::from(out)).unwrap();
    assert!(header.with_ack);
    assert_eq!(carried, Some(ack.clone()));
    assert_eq!(packet, data);
    for packet in [
        Packet::Datagram(Bytes::from_static(b"d")),
        Packet::StreamControl {
            stream: StreamId(4),
            op: StreamOp::Credit { max_data: 7 },
        },
    ] {
        let mut out = Vec::new();
        packet.encode_with_ack(SessionId::from(9), 6, Some(&ack), &mut out);
        let (_, carried, decoded) = Packet::decode(Bytes::from(out)).unwrap();
        assert_eq!((carried.as_ref(), &decoded), (Some(&ack), &packet));
    }
}

#[test]
fn only_packets_of_data_may_carry_an_ack() {
    let ack = Ack {
        delay_micros: 0,
        max_data: 0,
        ranges: vec![1..=1],
    };
    // The encoder leaves the ack out of a kind that may not carry one...
    let mut out = Vec::new();
    Packet::Ping.encode_with_ack(SessionId::from(1), 2, Some(&ack), &mut out);
    let mut plain = Vec::new();
    Packet::Ping.encode(SessionId::from(1), 2, &mut plain);
    assert_eq!(out, plain);
    // ...and the decoder refuses the flag on one.
    for kind in [
        PacketKind::Ack,
        PacketKind::Ping,
        PacketKind::Close,
        PacketKind::Connect,
    ] {
        out[1] = kind as u8 | ACK_FLAG;
        assert_eq!(
            Packet::decode(Bytes::from(out.clone())),
            Err(DecodeError::UnknownKind(kind as u8 | ACK_FLAG))
        );
    }
    // A flagged packet whose ack is cut short is malformed, not a panic.
    let mut out = Vec::new();
    Packet::Datagram(Bytes::new()).encode_with_ack(SessionId::from(1), 2, Some(&ack), &mut out);
    out.truncate(out.len() - 1);
    assert!(Packet::decode(Bytes::from(out)).is_err());
}

fn arb_ack() -> impl Strategy<Value = Ack> {
    (any::<u32>(), any::<u32>(), arb_ranges()).prop_map(|(delay, max_data, ranges)| Ack {
        delay_micros: u64::from(delay),
        max_data: u64::from(max_data),
        ranges,
    })
}

proptest! {
    #[test]
    fn any_packet_of_data_round_trips_with_any_ack(
        p in arb_packet().prop_filter("carries data", |p| p.kind().may_carry_ack()),
        ack in arb_ack(),
        number in 0..=VARINT_MAX,
    ) {
        let mut out = Vec::new();
        p.encode_with_ack(SessionId::from(3), number, Some(&ack), &mut out);
        let (header, carried, decoded) = Packet::decode(Bytes::from(out)).unwrap();
        prop_assert!(header.with_ack);
        prop_assert_eq!(carried, Some(ack));
        prop_assert_eq!(decoded, p);
    }

    #[test]
    fn an_acks_encoded_len_is_what_it_encodes(ack in arb_ack()) {
        let mut out = Vec::new();
        ack.encode(&mut out);
        prop_assert_eq!(out.len(), ack.encoded_len());
    }

    #[test]
    fn any_packet_round_trips(p in arb_packet(), session in any::<u64>(), number in 0..=VARINT_MAX) {
        round_trip(&p, SessionId::from(session), number);
    }

    #[test]
    fn arbitrary_bytes_never_panic(data in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok((header, ack, packet)) = Packet::decode(Bytes::from(data)) {
            // Whatever decodes must encode back to something that decodes the same.
            let mut out = Vec::new();
            packet.encode_with_ack(header.session, header.number, ack.as_ref(), &mut out);
            let (h2, a2, p2) = Packet::decode(Bytes::from(out)).unwrap();
            // The key phase is the protection's to set when sealing: the
            // codec writes what the header says, never the bit.
            prop_assert_eq!(h2, Header { key_phase: false, ..header });
            prop_assert_eq!(a2, ack);
            prop_assert_eq!(p2, packet);
        }
    }
}

#[test]
fn the_key_phase_bit_round_trips_beside_the_ack_flag() {
    for (kind, with_ack) in [
        (PacketKind::Data, true),
        (PacketKind::Data, false),
        (PacketKind::Ack, false),
        (PacketKind::Close, false),
        (PacketKind::Ping, false),
    ] {
        let header = Header {
            kind,
            session: SessionId::from(9),
            number: 300,
            with_ack,
            key_phase: true,
        };
        let mut out = Vec::new();
        header.encode(&mut out);
        assert_eq!(out[1] & KEY_PHASE, KEY_PHASE);
        assert_eq!(out[1] & ACK_FLAG != 0, with_ack);
        assert_eq!(Header::decode(&out), Ok((header, out.len())));
        out[1] &= !KEY_PHASE;
        let (plain, _) = Header::decode(&out).unwrap();
        assert!(!plain.key_phase);
        assert_eq!(plain.kind, kind);
    }
}

#[test]
fn handshake_kinds_never_carry_a_key_phase() {
    for kind in [
        PacketKind::Connect,
        PacketKind::ConnectAck,
        PacketKind::Retry,
    ] {
        let byte = kind as u8 | KEY_PHASE;
        assert_eq!(
            Header::decode(&[VERSION, byte, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(DecodeError::UnknownKind(byte))
        );
    }
}

#[test]
fn features_come_after_the_token_where_older_decoders_ignore_them() {
    let hs = Handshake {
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
    };
    let mut plain = Vec::new();
    Packet::Connect(hs.clone()).encode_body(&mut plain);
    let mut featured = Vec::new();
    Packet::Connect(Handshake {
        features: FEATURE_KEY_UPDATE,
        ..hs.clone()
    })
    .encode_body(&mut featured);
    // Empty auth and token lengths, then the features: what a decoder from
    // before features reads as two empty fields and a rest it ignores.
    assert_eq!(featured, [&plain[..], &[0, 0, 1]].concat());
    // Padded with zeros (a Connect), they still decode.
    featured.extend_from_slice(&[0; 40]);
    let Packet::Connect(back) = Packet::decode_body(PacketKind::Connect, featured.into()).unwrap()
    else {
        panic!("a connect");
    };
    assert_eq!(back.features, FEATURE_KEY_UPDATE);
    // A Connect without features, padded, reads as none.
    plain.extend_from_slice(&[0; 40]);
    let Packet::Connect(back) = Packet::decode_body(PacketKind::Connect, plain.into()).unwrap()
    else {
        panic!("a connect");
    };
    assert_eq!(back.features, 0);
    // The authenticated copy of the parameters ends with them, only when set.
    let mut params = Vec::new();
    hs.encode_params(&mut params);
    let mut with = Vec::new();
    Handshake {
        features: FEATURE_KEY_UPDATE,
        ..hs
    }
    .encode_params(&mut with);
    assert_eq!(with, [&params[..], &[1]].concat());
}

#[test]
fn a_resumption_field_comes_after_the_features_with_their_resume_bit() {
    let hs = Handshake {
        resume: Bytes::from_static(&[0xaa; 3]),
        early: Bytes::from_static(b"hi"),
        ..Handshake::decode_body(
            PacketKind::Connect,
            &Bytes::from_static(&[0x44, 0xb0, 1, 1, 1, 1, 1]),
            &mut Reader::new(&[0x44, 0xb0, 1, 1, 1, 1, 1]),
        )
        .unwrap()
    };
    let mut body = Vec::new();
    Packet::Connect(hs.clone()).encode_body(&mut body);
    // Empty auth and token, the features (none but the resume bit), the
    // ticket and the early data.
    assert_eq!(
        body[7..],
        [
            0,
            0,
            FEATURE_RESUME as u8,
            3,
            0xaa,
            0xaa,
            0xaa,
            2,
            b'h',
            b'i'
        ]
    );
    body.extend_from_slice(&[0; 40]);
    let Packet::Connect(back) = Packet::decode_body(PacketKind::Connect, body.into()).unwrap()
    else {
        panic!("a connect");
    };
    assert_eq!(back, hs);
    // A ticket longer than any this version issues is malformed.
    let mut long = Vec::new();
    Packet::Connect(Handshake {
        resume: Bytes::from(vec![1; MAX_TICKET_LEN + 1]),
        ..hs
    })
    .encode_body(&mut long);
    assert!(Packet::decode_body(PacketKind::Connect, long.into()).is_err());
}
