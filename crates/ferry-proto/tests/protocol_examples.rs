//! The packet dumps of `docs/protocol.md` §3–§4, byte for byte: each is
//! encoded here with `Packet::encode`, sealed with the checksum, compared
//! with the text of the document, and decoded back; and the cipher
//! negotiation's payloads of §6.13. Change the two together.

use std::ops::RangeInclusive;

use bytes::Bytes;
use ferry_proto::SessionId;
use ferry_proto::wire::packet::{
    Ack, Close, CloseCode, Data, DataPart, Header, Packet, RepeatRequest,
};
use ferry_proto::wire::protection::Protection;
use ferry_proto::wire::stream::{StreamId, StreamOp};

/// The session id of every example: `01 23 45 67 89 ab cd ef`.
const SESSION: u64 = 0x0123_4567_89ab_cdef;

/// The datagram for `packet` with packet number `pn`, as spaced hex.
fn dump(packet: &Packet, pn: u64) -> String {
    dump_with_ack(packet, pn, None)
}

/// The datagram for `packet` carrying `ack`, as spaced hex.
fn dump_with_ack(packet: &Packet, pn: u64, ack: Option<&Ack>) -> String {
    let session = SessionId::from(SESSION);
    let mut buf = Vec::new();
    packet.encode_with_ack(session, pn, ack, &mut buf);
    let header_len = Header {
        kind: packet.kind(),
        session,
        number: pn,
        with_ack: false,
        key_phase: false,
    }
    .encoded_len();
    Protection::Checksum.seal(pn, header_len, &mut buf);
    // And back.
    let mut copy = bytes::BytesMut::from(&buf[..]);
    Protection::Checksum
        .open(pn, header_len, &mut copy)
        .expect("the checksum holds");
    let (header, carried, decoded) = Packet::decode(copy.freeze()).expect("decodes");
    assert_eq!(header.number, pn);
    assert_eq!(carried.as_ref(), ack);
    assert_eq!(&decoded, packet);
    buf.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn ranges(r: &[RangeInclusive<u64>]) -> Vec<RangeInclusive<u64>> {
    r.to_vec()
}

#[test]
fn section_3_the_checksum() {
    // A Ping with packet number 9: its CRC-32 is the document's check value.
    assert_eq!(
        dump(&Packet::Ping, 9),
        "01 06 01 23 45 67 89 ab cd ef 09 db 86 14 d2"
    );
}

#[test]
fn section_4_3_data() {
    let data = |message, fragment, fragments, payload: &'static [u8]| {
        Packet::Data(Data {
            stream: StreamId(0),
            message,
            fragment,
            fragments,
            payload: Bytes::from_static(payload),
        })
    };
    assert_eq!(
        dump(&data(3, 1, 2, b"hello"), 7),
        "01 03 01 23 45 67 89 ab cd ef 07 00 03 01 02 68 65 6c 6c 6f 02 77 30 2a"
    );
    assert_eq!(
        dump(&data(0, 0, 1, b"hi"), 300),
        "01 03 01 23 45 67 89 ab cd ef 41 2c 00 00 00 01 68 69 68 c7 c2 6d"
    );
}

#[test]
fn section_4_4_ack() {
    let ack = Packet::Ack(Ack {
        delay_micros: 250,
        max_data: 33_555_432,
        ranges: ranges(&[10..=12, 5..=7, 0..=0]),
    });
    assert_eq!(
        dump(&ack, 4),
        "01 04 01 23 45 67 89 ab cd ef 04 40 fa 82 00 03 e8 03 0c 02 01 02 03 00 52 e2 6f 23"
    );
    let empty = Packet::Ack(Ack {
        delay_micros: 0,
        max_data: 1000,
        ranges: Vec::new(),
    });
    assert_eq!(
        dump(&empty, 4),
        "01 04 01 23 45 67 89 ab cd ef 04 00 43 e8 00 37 6b db 52"
    );
}

#[test]
fn section_4_16_carried_ack() {
    let reply = Packet::Data(Data {
        stream: StreamId(0),
        message: 0,
        fragment: 0,
        fragments: 1,
        payload: Bytes::from_static(b"hi"),
    });
    let ack = Ack {
        delay_micros: 250,
        max_data: 33_555_432,
        ranges: ranges(&[0..=3]),
    };
    assert_eq!(
        dump_with_ack(&reply, 5, Some(&ack)),
        "01 83 01 23 45 67 89 ab cd ef 05 40 fa 82 00 03 e8 01 03 03 00 00 00 01 68 69 85 6f 5b ee"
    );
}

#[test]
fn section_4_5_repeat_request() {
    let one = Packet::RepeatRequest(RepeatRequest {
        missing: ranges(&[8..=9]),
    });
    assert_eq!(
        dump(&one, 5),
        "01 05 01 23 45 67 89 ab cd ef 05 01 09 01 0b 22 fb 49"
    );
    let two = Packet::RepeatRequest(RepeatRequest {
        missing: ranges(&[20..=20, 14..=16]),
    });
    assert_eq!(
        dump(&two, 5),
        "01 05 01 23 45 67 89 ab cd ef 05 02 14 00 02 02 72 24 5a 0e"
    );
}

#[test]
fn section_4_6_and_4_7_ping_and_ping_ack() {
    assert_eq!(
        dump(&Packet::PingAck { ping: 42 }, 11),
        "01 07 01 23 45 67 89 ab cd ef 0b 2a 92 07 ae f5"
    );
}

#[test]
fn section_4_8_close() {
    let bye = Packet::Close(Close {
        code: CloseCode::Application(3),
        reason: Bytes::from_static(b"bye"),
    });
    assert_eq!(
        dump(&bye, 12),
        "01 08 01 23 45 67 89 ab cd ef 0c 00 03 03 62 79 65 9d 63 5a e7"
    );
    let refusal = Packet::Close(Close {
        code: CloseCode::Transport(2),
        reason: Bytes::new(),
    });
    assert_eq!(
        dump(&refusal, 0),
        "01 08 01 23 45 67 89 ab cd ef 00 01 02 00 ef 23 82 58"
    );
}

#[test]
fn section_4_9_direct() {
    assert_eq!(
        dump(&Packet::Datagram(Bytes::from_static(b"datagram")), 13),
        "01 09 01 23 45 67 89 ab cd ef 0d 64 61 74 61 67 72 61 6d dc 34 96 81"
    );
}

#[test]
fn section_4_10_and_4_11_path_challenge_and_response() {
    let token = 0x1122_3344_5566_7788;
    assert_eq!(
        dump(&Packet::PathChallenge { token }, 14),
        "01 0a 01 23 45 67 89 ab cd ef 0e 11 22 33 44 55 66 77 88 08 e5 85 30"
    );
    assert_eq!(
        dump(&Packet::PathResponse { token }, 15),
        "01 0b 01 23 45 67 89 ab cd ef 0f 11 22 33 44 55 66 77 88 f0 cc 27 92"
    );
}

#[test]
fn section_4_12_stream_control() {
    let control = |stream, op| Packet::StreamControl {
        stream: StreamId(stream),
        op,
    };
    assert_eq!(
        dump(&control(8, StreamOp::Finish { messages: 3 }), 16),
        "01 0c 01 23 45 67 89 ab cd ef 10 08 00 03 db 6d b7 e6"
    );
    assert_eq!(
        dump(
            &control(
                8,
                StreamOp::Reset {
                    code: 7,
                    messages: 3
                }
            ),
            17
        ),
        "01 0c 01 23 45 67 89 ab cd ef 11 08 01 07 03 5a 77 12 4e"
    );
    assert_eq!(
        dump(
            &control(
                1,
                StreamOp::Credit {
                    max_data: 25_169_920
                }
            ),
            18
        ),
        "01 0c 01 23 45 67 89 ab cd ef 12 01 02 81 80 10 00 ec 5e 34 a1"
    );
    assert_eq!(
        dump(&control(16, StreamOp::Refuse), 19),
        "01 0c 01 23 45 67 89 ab cd ef 13 10 03 c0 40 37 b5"
    );
}

#[test]
fn section_4_3_data_on_a_stream() {
    let data = Packet::Data(Data {
        stream: StreamId(8),
        message: 2,
        fragment: 0,
        fragments: 1,
        payload: Bytes::from_static(b"stream"),
    });
    assert_eq!(
        dump(&data, 20),
        "01 03 01 23 45 67 89 ab cd ef 14 08 02 00 01 73 74 72 65 61 6d e1 47 da 37"
    );
}

/// The handshake parameters of `Config::default()`, as §4.1 and §4.2 show them.
fn default_params() -> ferry_proto::wire::packet::Handshake {
    ferry_proto::wire::packet::Handshake {
        max_udp_payload: 1200,
        max_message_size: 16 << 20,
        initial_max_data: 32 << 20,
        max_ack_delay_micros: 10_000,
        max_streams: 100,
        initial_max_stream_data: 24 << 20,
        listener_id: None,
        auth: Bytes::new(),
        token: Bytes::new(),
        features: 0,
        resume: Bytes::new(),
        early: Bytes::new(),
    }
}

#[test]
fn section_4_1_connect() {
    // The first Connect of a starter with the defaults, as it really leaves:
    // a real endpoint's, with its session id replaced by the example's.
    let mut starter = ferry_proto::Endpoint::new(ferry_proto::Config::default(), 1).unwrap();
    let now = std::time::Instant::now();
    starter
        .connect(now, "192.0.2.1:1".parse().unwrap())
        .unwrap();
    let mut buf = Vec::new();
    let t = starter.poll_transmit(now, &mut buf).unwrap();
    assert_eq!(t.size, 1200);
    buf[2..10].copy_from_slice(&SESSION.to_be_bytes());
    let len = buf.len();
    let crc = crc32fast::hash(&buf[..len - 4]);
    buf[len - 4..].copy_from_slice(&crc.to_be_bytes());
    let hex = |b: &[u8]| {
        b.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        hex(&buf[..0x1d]),
        "01 01 01 23 45 67 89 ab cd ef 00 44 b0 81 00 00 00 82 00 00 00 67 10 40 64 81 80 00 00"
    );
    assert!(buf[0x1d..len - 4].iter().all(|&b| b == 0), "padding");
    assert_eq!(hex(&buf[len - 4..]), "43 67 e6 b8");
    // What it decodes to.
    let (_, _, packet) = Packet::decode(Bytes::copy_from_slice(&buf[..len - 4])).unwrap();
    assert_eq!(packet, Packet::Connect(default_params()));
}

#[test]
fn section_4_2_connect_ack() {
    assert_eq!(
        dump(
            &Packet::ConnectAck(ferry_proto::wire::packet::Handshake {
                // The listener issues the starter's id back (no server id).
                listener_id: Some(ferry_proto::SessionId::from(SESSION)),
                ..default_params()
            }),
            0
        ),
        "01 02 01 23 45 67 89 ab cd ef 00 44 b0 81 00 00 00 82 00 00 00 67 10 40 64 81 80 00 00 01 23 45 67 89 ab cd ef 3d 5a 33 b7"
    );
}

#[test]
fn section_4_13_retry() {
    let token = Bytes::from((0..36u8).collect::<Vec<_>>());
    assert_eq!(
        dump(&Packet::Retry { token }, 0).len(),
        (11 + 1 + 36 + 4) * 3 - 1,
        "52 bytes"
    );
}

#[test]
fn section_6_13_cipher_negotiation() {
    use ferry_proto::crypto::{
        Cipher, CipherPreference, HANDSHAKE_OVERHEAD, Handshake, PreSharedKey, encode_offer,
        encode_reply, negotiate,
    };
    let hex = |b: &[u8]| {
        b.iter()
            .map(|b| format!("{b:02x}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let offer = |preference: CipherPreference, hardware_aes: bool| {
        let mut out = Vec::new();
        encode_offer(&preference.offer(hardware_aes), &mut out);
        hex(&out)
    };
    // Message 1's payload: the starter's offer.
    assert_eq!(offer(CipherPreference::Auto, true), "02 02 01");
    assert_eq!(offer(CipherPreference::Auto, false), "02 01 02");
    for hardware_aes in [false, true] {
        assert_eq!(offer(CipherPreference::Aes256Gcm, hardware_aes), "01 02");
        assert_eq!(
            offer(CipherPreference::ChaCha20Poly1305, hardware_aes),
            "01 01"
        );
    }
    // Message 2's payload: the pick, the listener's offer, its parameters.
    let answer = |starter: bool, listener: bool| {
        let (ours, theirs) = (
            CipherPreference::Auto.offer(starter),
            CipherPreference::Auto.offer(listener),
        );
        let mut out = Vec::new();
        encode_reply(negotiate(&ours, &theirs).unwrap(), &theirs, &mut out);
        default_params().encode_params(&mut out);
        hex(&out)
    };
    let params = "44 b0 81 00 00 00 82 00 00 00 67 10 40 64 81 80 00 00";
    assert_eq!(answer(true, true), format!("02 02 02 01 {params}"));
    assert_eq!(answer(true, false), format!("01 02 01 02 {params}"));
    assert_eq!(answer(false, true), format!("01 02 02 01 {params}"));

    // Through a real handshake: a starter forcing AES-256-GCM, a listener
    // on auto. 48 bytes of Noise around payloads of 2 and 3 + 18 bytes.
    let psk = PreSharedKey::from_bytes([0x42; 32]);
    let prologue = [1, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
    let mut rng = <rand_chacha::ChaCha20Rng as rand::SeedableRng>::seed_from_u64(1);
    let mut starter =
        Handshake::initiator_with(&psk, &prologue, CipherPreference::Aes256Gcm, &mut rng);
    let mut listener = Handshake::responder(&psk, &prologue, &mut rng);
    let mut message1 = Vec::new();
    starter.write_message(&[], &mut message1).unwrap();
    assert_eq!(message1.len(), HANDSHAKE_OVERHEAD + 2);
    listener.read_message(&message1, &mut Vec::new()).unwrap();
    let mut params_bytes = Vec::new();
    default_params().encode_params(&mut params_bytes);
    let mut message2 = Vec::new();
    listener
        .write_message(&params_bytes, &mut message2)
        .unwrap();
    assert_eq!(message2.len(), HANDSHAKE_OVERHEAD + 4 + 18);
    let mut payload = Vec::new();
    starter.read_message(&message2, &mut payload).unwrap();
    assert_eq!(payload, params_bytes, "the answer is taken off");
    assert_eq!(starter.cipher(), Some(Cipher::Aes256Gcm));
    assert_eq!(listener.cipher(), Some(Cipher::Aes256Gcm));

    // And in a Connect: with a key, `auth_len` follows the parameters, 51
    // (0x33) for an auto starter's message 1.
    let mut starter = ferry_proto::Endpoint::new(
        ferry_proto::Config {
            psk: Some(psk),
            ..ferry_proto::Config::default()
        },
        1,
    )
    .unwrap();
    let now = std::time::Instant::now();
    starter
        .connect(now, "192.0.2.1:1".parse().unwrap())
        .unwrap();
    let mut buf = Vec::new();
    assert_eq!(starter.poll_transmit(now, &mut buf).unwrap().size, 1200);
    assert_eq!(hex(&buf[0x0b..0x1e]), format!("{params} 33"));
    let (_, _, packet) = Packet::decode(Bytes::copy_from_slice(&buf[..buf.len() - 4])).unwrap();
    let Packet::Connect(hs) = packet else {
        panic!("a Connect")
    };
    assert_eq!(hs.auth.len(), HANDSHAKE_OVERHEAD + 3);
}

#[test]
fn section_4_14_probe() {
    assert_eq!(
        dump(&Packet::Probe { padding: 8 }, 21),
        "01 0e 01 23 45 67 89 ab cd ef 15 00 00 00 00 00 00 00 00 d9 e2 b0 31"
    );
    // A probe of 1452 bytes: the 11-byte header, 1437 bytes of padding and
    // the CRC-32.
    let full = dump(&Packet::Probe { padding: 1437 }, 21);
    assert_eq!(full.split(' ').count(), 1452);
    assert!(full.ends_with("29 9b 8c ee"), "{full}");
}

#[test]
fn section_4_15_data_part() {
    let part = Packet::DataPart(DataPart {
        stream: StreamId(0),
        message: 5,
        fragment: 3,
        fragments: 700,
        fragment_len: 1420,
        offset: 1418,
        payload: Bytes::from_static(b"ok"),
    });
    assert_eq!(
        dump(&part, 22),
        "01 0f 01 23 45 67 89 ab cd ef 16 00 05 03 42 bc 45 8c 45 8a 6f 6b 98 4a 02 86"
    );
}

#[test]
fn section_4_17_ticket() {
    use ferry_proto::wire::packet::NewTicket;
    // In the clear (no secret), a ticket cut short to 8 bytes for the example
    // (Ferry's listener seals 155).
    let ticket = NewTicket {
        lifetime: 86_400,
        flags: 0x01,
        secret: Bytes::new(),
        ticket: Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33]),
    };
    assert_eq!(
        dump(&Packet::Ticket(ticket), 2),
        "01 10 01 23 45 67 89 ab cd ef 02 80 01 51 80 01 00 08 de ad be ef 00 11 22 33 23 cf e9 2e"
    );
}
