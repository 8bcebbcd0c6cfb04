//! The crypto building blocks' tests: handshakes, packet keys, keys' hygiene.

use super::*;
use bytes::BytesMut;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

use crate::error::DecodeError;
use proptest::prelude::*;
use rand::RngCore;

pub(super) const PROLOGUE: &[u8] = &[1, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];

pub(super) fn psk(byte: u8) -> PreSharedKey {
    PreSharedKey::from_bytes([byte; 32])
}

pub(super) fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

/// The two messages of a handshake, and both sides' keys.
pub(super) struct Run {
    pub(super) message1: Vec<u8>,
    pub(super) message2: Vec<u8>,
    pub(super) initiator: PacketKeys,
    pub(super) responder: PacketKeys,
}

fn handshake(seed_i: u64, seed_r: u64, payload1: &[u8], payload2: &[u8]) -> Run {
    let auto = CipherPreference::Auto;
    handshake_with(auto, auto, seed_i, seed_r, payload1, payload2)
}

/// A handshake whose sides offer the ciphers of `prefer_i` and `prefer_r`.
pub(super) fn handshake_with(
    prefer_i: CipherPreference,
    prefer_r: CipherPreference,
    seed_i: u64,
    seed_r: u64,
    payload1: &[u8],
    payload2: &[u8],
) -> Run {
    let key = psk(7);
    let mut i = Handshake::initiator_with(&key, PROLOGUE, prefer_i, &mut rng(seed_i));
    let mut r = Handshake::responder_with(&key, PROLOGUE, prefer_r, &mut rng(seed_r));
    assert!(i.is_initiator() && !r.is_initiator());
    assert!(i.is_my_turn() && !r.is_my_turn());
    let (offer_i, offer_r) = (
        prefer_i.offer(hardware_aes()),
        prefer_r.offer(hardware_aes()),
    );

    let mut message1 = Vec::new();
    i.write_message(payload1, &mut message1).unwrap();
    assert_eq!(
        message1.len(),
        1 + offer_i.len() + payload1.len() + HANDSHAKE_OVERHEAD
    );
    let mut got = Vec::new();
    r.read_message(&message1, &mut got).unwrap();
    assert_eq!(got, payload1);
    assert!(!r.is_finished() && r.is_my_turn());
    let cipher = negotiate(&offer_i, &offer_r).unwrap();
    assert_eq!(r.cipher(), Some(cipher));

    let mut message2 = Vec::new();
    r.write_message(payload2, &mut message2).unwrap();
    assert_eq!(
        message2.len(),
        2 + offer_r.len() + payload2.len() + HANDSHAKE_OVERHEAD
    );
    assert!(r.is_finished() && !r.is_my_turn());
    assert_eq!(i.cipher(), None);
    got.clear();
    i.read_message(&message2, &mut got).unwrap();
    assert_eq!(got, payload2);
    assert!(i.is_finished());
    assert_eq!(i.cipher(), Some(cipher));

    Run {
        message1,
        message2,
        initiator: i.into_keys().unwrap(),
        responder: r.into_keys().unwrap(),
    }
}

pub(super) fn sealed(keys: &PacketKeys, number: u64, header: &[u8], body: &[u8]) -> Vec<u8> {
    let mut packet = [header, body].concat();
    keys.seal(number, header.len(), &mut packet);
    packet
}

pub(super) fn opened(
    keys: &PacketKeys,
    number: u64,
    header_len: usize,
    packet: &[u8],
) -> Result<BytesMut, DecodeError> {
    let mut buf = BytesMut::from(packet);
    keys.open(number, header_len, &mut buf).map(|()| buf)
}

pub(super) const HEADER: &[u8] = &[1, 3, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 5];

#[test]
fn handshake_then_packets_both_ways() {
    let run = handshake(1, 2, b"connect parameters", b"connect-ack parameters");
    for number in [0, 1, 5, 63, 64, u64::MAX] {
        let body = format!("from the initiator, packet {number}");
        let packet = sealed(&run.initiator, number, HEADER, body.as_bytes());
        assert_eq!(packet.len(), HEADER.len() + body.len() + TAG_LEN);
        assert_eq!(&packet[..HEADER.len()], HEADER, "the header stays clear");
        assert_ne!(&packet[HEADER.len()..][..body.len()], body.as_bytes());
        let got = opened(&run.responder, number, HEADER.len(), &packet).unwrap();
        assert_eq!(&got[..], [HEADER, body.as_bytes()].concat());

        let packet = sealed(&run.responder, number, HEADER, b"and back");
        let got = opened(&run.initiator, number, HEADER.len(), &packet).unwrap();
        assert_eq!(&got[..], [HEADER, b"and back"].concat());
    }
    // An empty body still carries a tag.
    let packet = sealed(&run.initiator, 9, HEADER, b"");
    assert_eq!(packet.len(), HEADER.len() + TAG_LEN);
    let got = opened(&run.responder, 9, HEADER.len(), &packet).unwrap();
    assert_eq!(&got[..], HEADER);
}

#[test]
fn keys_follow_the_noise_split_convention() {
    // Noise's own transport messages (nonce 0, empty associated data) are
    // what our packets are with packet number 0 and an empty header: the
    // initiator sends with the split's first key, the responder with the
    // second. (Noise's transport cipher is ChaCha20-Poly1305: force it.)
    let key = psk(4);
    let chacha = CipherPreference::ChaCha20Poly1305;
    let finish = |seed_i, seed_r| {
        let mut i = Handshake::initiator_with(&key, PROLOGUE, chacha, &mut rng(seed_i));
        let mut r = Handshake::responder_with(&key, PROLOGUE, chacha, &mut rng(seed_r));
        let (mut m1, mut m2) = (Vec::new(), Vec::new());
        i.write_message(b"", &mut m1).unwrap();
        r.read_message(&m1, &mut Vec::new()).unwrap();
        r.write_message(b"", &mut m2).unwrap();
        i.read_message(&m2, &mut Vec::new()).unwrap();
        (i, r)
    };
    let (ours_i, ours_r) = finish(1, 2);
    let (noise_i, noise_r) = finish(1, 2);
    let (ours_i, ours_r) = (ours_i.into_keys().unwrap(), ours_r.into_keys().unwrap());
    let mut noise_i = noise_i.state.into_transport_mode().unwrap();
    let mut noise_r = noise_r.state.into_transport_mode().unwrap();
    let mut buf = [0u8; 64];

    let n = noise_i
        .write_message(b"to the responder", &mut buf)
        .unwrap();
    assert_eq!(buf[..n], sealed(&ours_i, 0, b"", b"to the responder"));
    let n = noise_r
        .write_message(b"to the initiator", &mut buf)
        .unwrap();
    assert_eq!(buf[..n], sealed(&ours_r, 0, b"", b"to the initiator"));
}

#[test]
fn packets_match_the_portable_chacha20_poly1305() {
    // The wire format does not depend on the implementation: a packet
    // sealed here is what RustCrypto's ChaCha20-Poly1305 produces with the
    // same key, nonce and associated data, and opens with it.
    use chacha20poly1305::aead::{AeadInPlace, KeyInit};
    let (send, recv) = ([3u8; 32], [9u8; 32]);
    let ours = PacketKeys::new(Cipher::ChaCha20Poly1305, &send, &recv);
    let portable = chacha20poly1305::ChaCha20Poly1305::new((&send).into());
    for (number, body) in [
        (0u64, &b""[..]),
        (1, b"x"),
        (0x0102_0304_0506, &[0xa5; 1500]),
    ] {
        let packet = sealed(&ours, number, HEADER, body);
        let mut expected = body.to_vec();
        let tag = portable
            .encrypt_in_place_detached((&nonce(number)).into(), HEADER, &mut expected)
            .unwrap();
        expected.extend_from_slice(&tag);
        assert_eq!(packet[..HEADER.len()], *HEADER);
        assert_eq!(packet[HEADER.len()..], expected[..]);
    }
    let mut body = b"from the peer".to_vec();
    let tag = chacha20poly1305::ChaCha20Poly1305::new((&recv).into())
        .encrypt_in_place_detached((&nonce(5)).into(), HEADER, &mut body)
        .unwrap();
    let mut packet = BytesMut::from(HEADER);
    packet.extend_from_slice(&body);
    packet.extend_from_slice(&tag);
    ours.open(5, HEADER.len(), &mut packet).unwrap();
    assert_eq!(&packet[HEADER.len()..], b"from the peer");
}

#[test]
fn directions_do_not_mix() {
    let run = handshake(1, 2, b"", b"");
    let from_i = sealed(&run.initiator, 3, HEADER, b"body");
    let from_r = sealed(&run.responder, 3, HEADER, b"body");
    assert_ne!(from_i, from_r, "each direction has its own key");
    // Reflected back to its sender: rejected.
    assert_eq!(
        opened(&run.initiator, 3, HEADER.len(), &from_i),
        Err(DecodeError::Integrity)
    );
    assert_eq!(
        opened(&run.responder, 3, HEADER.len(), &from_r),
        Err(DecodeError::Integrity)
    );
}

#[test]
fn every_session_has_fresh_keys() {
    // Same pre-shared key, different ephemeral keys: the packets of one
    // session do not open in another.
    let one = handshake(1, 2, b"", b"");
    let two = handshake(3, 4, b"", b"");
    let packet = sealed(&one.initiator, 0, HEADER, b"body");
    assert_eq!(
        opened(&two.responder, 0, HEADER.len(), &packet),
        Err(DecodeError::Integrity)
    );
    assert_ne!(one.message1[..32], two.message1[..32]);
}

#[test]
fn wrong_psk_is_detected_by_the_responder_on_message_1() {
    let mut i = Handshake::initiator(&psk(1), PROLOGUE, &mut rng(1));
    let mut r = Handshake::responder(&psk(2), PROLOGUE, &mut rng(2));
    let mut message1 = Vec::new();
    i.write_message(b"hello", &mut message1).unwrap();
    let mut payload = Vec::new();
    assert_eq!(
        r.read_message(&message1, &mut payload),
        Err(CryptoError::AuthenticationFailed)
    );
    assert!(payload.is_empty());
    // The responder is still waiting for a genuine message 1.
    assert!(!r.is_my_turn());
    assert_eq!(r.into_keys().unwrap_err(), CryptoError::NotFinished);
}

#[test]
fn another_prologue_is_rejected() {
    let key = psk(1);
    let mut i = Handshake::initiator(&key, PROLOGUE, &mut rng(1));
    let mut other = PROLOGUE.to_vec();
    other[8] ^= 1; // another session id
    let mut r = Handshake::responder(&key, &other, &mut rng(2));
    let mut message1 = Vec::new();
    i.write_message(b"", &mut message1).unwrap();
    assert_eq!(
        r.read_message(&message1, &mut Vec::new()),
        Err(CryptoError::AuthenticationFailed)
    );
}

#[test]
fn tampered_handshake_messages_fail_and_spoil_nothing() {
    let key = psk(9);
    let mut i = Handshake::initiator(&key, PROLOGUE, &mut rng(1));
    let mut r = Handshake::responder(&key, PROLOGUE, &mut rng(2));
    let mut message1 = Vec::new();
    i.write_message(b"one", &mut message1).unwrap();
    for bit in 0..message1.len() * 8 {
        let mut bad = message1.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            r.read_message(&bad, &mut Vec::new()),
            Err(CryptoError::AuthenticationFailed),
            "bit {bit}"
        );
    }
    assert_eq!(
        r.read_message(&message1[..HANDSHAKE_OVERHEAD - 1], &mut Vec::new()),
        Err(CryptoError::MalformedMessage {
            len: HANDSHAKE_OVERHEAD - 1,
            min: HANDSHAKE_OVERHEAD
        })
    );
    assert_eq!(
        r.read_message(&[0; 70_000], &mut Vec::new()),
        Err(CryptoError::MalformedMessage {
            len: 70_000,
            min: HANDSHAKE_OVERHEAD
        })
    );
    // Cut short but still long enough: the tag no longer matches.
    assert_eq!(
        r.read_message(&message1[..message1.len() - 1], &mut Vec::new()),
        Err(CryptoError::AuthenticationFailed)
    );
    // The genuine message still works after all those failures.
    let mut payload = Vec::new();
    r.read_message(&message1, &mut payload).unwrap();
    assert_eq!(payload, b"one");

    let mut message2 = Vec::new();
    r.write_message(b"two", &mut message2).unwrap();
    for bit in 0..message2.len() * 8 {
        let mut bad = message2.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_eq!(
            i.read_message(&bad, &mut Vec::new()),
            Err(CryptoError::AuthenticationFailed),
            "bit {bit}"
        );
    }
    // Message 1 reflected back to the initiator: rejected too.
    assert_eq!(
        i.read_message(&message1, &mut Vec::new()),
        Err(CryptoError::AuthenticationFailed)
    );
    payload.clear();
    i.read_message(&message2, &mut payload).unwrap();
    assert_eq!(payload, b"two");
    let (ki, kr) = (i.into_keys().unwrap(), r.into_keys().unwrap());
    let packet = sealed(&ki, 0, HEADER, b"ok");
    assert!(opened(&kr, 0, HEADER.len(), &packet).is_ok());
}

#[test]
fn steps_out_of_order_are_refused() {
    let key = psk(3);
    let mut i = Handshake::initiator(&key, PROLOGUE, &mut rng(1));
    let mut r = Handshake::responder(&key, PROLOGUE, &mut rng(2));
    let mut out = vec![0xaa];
    assert_eq!(r.write_message(b"", &mut out), Err(CryptoError::OutOfOrder));
    assert_eq!(out, [0xaa], "nothing appended on error");
    assert_eq!(
        i.read_message(&[0; 64], &mut Vec::new()),
        Err(CryptoError::OutOfOrder)
    );
    i.write_message(b"", &mut out).unwrap();
    assert_eq!(
        out.len(),
        1 + 3 + HANDSHAKE_OVERHEAD,
        "appended after what was there (the offer is 3 bytes)"
    );
    assert_eq!(i.write_message(b"", &mut out), Err(CryptoError::OutOfOrder));
    let mut payload = vec![0xbb];
    r.read_message(&out[1..], &mut payload).unwrap();
    assert_eq!(payload, [0xbb], "an empty payload appends nothing");
    assert_eq!(
        r.read_message(&out[1..], &mut Vec::new()),
        Err(CryptoError::OutOfOrder)
    );
    let mut message2 = Vec::new();
    r.write_message(b"", &mut message2).unwrap();
    assert_eq!(
        r.write_message(b"", &mut message2),
        Err(CryptoError::OutOfOrder)
    );
    assert_eq!(i.into_keys().unwrap_err(), CryptoError::NotFinished);
}

#[test]
fn oversized_payload_is_refused() {
    let mut i = Handshake::initiator(&psk(1), PROLOGUE, &mut rng(1));
    let mut out = Vec::new();
    assert_eq!(
        i.write_message(&vec![0; MAX_HANDSHAKE_PAYLOAD + 1], &mut out),
        Err(CryptoError::PayloadTooLarge {
            size: MAX_HANDSHAKE_PAYLOAD + 1,
            max: MAX_HANDSHAKE_PAYLOAD
        })
    );
    assert!(out.is_empty());
    i.write_message(&vec![0; MAX_HANDSHAKE_PAYLOAD], &mut out)
        .unwrap();
    // The initiator's 3-byte offer; a responder's 4-byte answer would just fit.
    assert_eq!(out.len(), 65_535 - 1);
}

#[test]
fn same_seeds_give_identical_handshakes() {
    let a = handshake(11, 12, b"p1", b"p2");
    let b = handshake(11, 12, b"p1", b"p2");
    assert_eq!(a.message1, b.message1);
    assert_eq!(a.message2, b.message2);
    assert_eq!(
        sealed(&a.initiator, 4, HEADER, b"x"),
        sealed(&b.initiator, 4, HEADER, b"x")
    );
    let c = handshake(11, 13, b"p1", b"p2");
    assert_eq!(a.message1, c.message1);
    assert_ne!(a.message2, c.message2);
}

#[test]
fn tampered_packets_fail_to_open_and_release_nothing() {
    let run = handshake(1, 2, b"", b"");
    let packet = sealed(&run.initiator, 42, HEADER, b"some body bytes");
    let tag_start = packet.len() - TAG_LEN;
    for (what, index) in [
        ("version", 0),
        ("kind", 1),
        ("session id", 5),
        ("packet number", HEADER.len() - 1),
        ("body", HEADER.len() + 3),
        ("tag", tag_start),
        ("last tag byte", packet.len() - 1),
    ] {
        let mut bad = BytesMut::from(&packet[..]);
        bad[index] ^= 0x40;
        let before = bad.clone();
        assert_eq!(
            run.responder.open(42, HEADER.len(), &mut bad),
            Err(DecodeError::Integrity),
            "{what}"
        );
        assert_eq!(bad.len(), before.len(), "{what}: nothing removed");
        assert_eq!(
            bad[..HEADER.len()],
            before[..HEADER.len()],
            "{what}: header kept"
        );
        assert_eq!(bad[tag_start..], before[tag_start..], "{what}: tag kept");
        assert!(
            bad[HEADER.len()..tag_start].iter().all(|&b| b == 0),
            "{what}: no unauthenticated plaintext is released"
        );
    }
    // Header and body boundary moved: the associated data differs.
    assert_eq!(
        opened(&run.responder, 42, HEADER.len() - 1, &packet),
        Err(DecodeError::Integrity)
    );
}

#[test]
fn wrong_number_fails_and_replay_opens_again() {
    let run = handshake(1, 2, b"", b"");
    let packet = sealed(&run.initiator, 7, HEADER, b"body");
    for wrong in [0, 6, 8, 7 << 32, u64::MAX] {
        assert_eq!(
            opened(&run.responder, wrong, HEADER.len(), &packet),
            Err(DecodeError::Integrity)
        );
    }
    // This layer accepts a replay; the session drops it as a duplicate
    // packet number.
    let first = opened(&run.responder, 7, HEADER.len(), &packet).unwrap();
    let again = opened(&run.responder, 7, HEADER.len(), &packet).unwrap();
    assert_eq!(first, again);
}

#[test]
fn short_packets_are_truncated() {
    let run = handshake(1, 2, b"", b"");
    for (len, header_len) in [(0, 0), (15, 0), (20, 5), (26, 11), (5, 100)] {
        assert_eq!(
            opened(&run.responder, 0, header_len, &vec![0; len]),
            Err(DecodeError::Truncated),
            "{len} bytes, header {header_len}"
        );
    }
    assert_eq!(
        opened(&run.responder, 0, 11, &[0; 27]),
        Err(DecodeError::Integrity)
    );
}

#[test]
fn nonce_is_the_big_endian_packet_number() {
    assert_eq!(nonce(0), [0; 12]);
    assert_eq!(nonce(0x0102), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]);
    assert_eq!(nonce(u64::MAX)[4..], [0xff; 8]);
}

#[test]
fn psk_parsing() {
    let hex = "00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF";
    let key = PreSharedKey::from_hex(hex).unwrap();
    assert_eq!(key.0[..4], [0x00, 0x11, 0x22, 0x33]);
    assert_eq!(key.0[28..], [0xcc, 0xdd, 0xee, 0xff]);
    assert_eq!(*key.to_hex(), hex.to_ascii_lowercase());
    let parsed = PreSharedKey::parse(&format!("  {hex}\n")).unwrap();
    assert_eq!(parsed.0, key.0);
    let from_str: PreSharedKey = format!("\t{hex}\r\n").parse().unwrap();
    assert_eq!(from_str.0, key.0);

    assert_eq!(
        PreSharedKey::from_hex(&format!(" {hex}")).unwrap_err(),
        PskError::WrongLength { found: 65 }
    );
    assert_eq!(
        PreSharedKey::parse(&hex[..62]).unwrap_err(),
        PskError::WrongLength { found: 62 }
    );
    assert_eq!(
        PreSharedKey::parse("").unwrap_err(),
        PskError::WrongLength { found: 0 }
    );
    let mut bad = hex.to_owned();
    bad.replace_range(9..10, "g");
    assert_eq!(
        PreSharedKey::parse(&bad).unwrap_err(),
        PskError::NotHex { position: 9 }
    );
    // A non-ASCII character is not a hexadecimal digit either.
    let accented = format!("é{}", &hex[2..]);
    assert_eq!(
        PreSharedKey::parse(&accented).unwrap_err(),
        PskError::NotHex { position: 0 }
    );
    let message = PskError::NotHex { position: 9 }.to_string();
    assert!(!message.contains('g'), "the key's characters stay secret");
}

#[test]
fn psk_generate_and_debug() {
    let a = PreSharedKey::generate(&mut rng(1));
    let b = PreSharedKey::generate(&mut rng(1));
    let c = PreSharedKey::generate(&mut rng(2));
    assert_eq!(a.0, b.0);
    assert_ne!(a.0, c.0);
    let debug = format!("{a:?}");
    assert_eq!(debug, "PreSharedKey(<redacted>)");
    assert!(!debug.contains(&a.to_hex()[..8]));

    let run = handshake(1, 2, b"", b"");
    assert_eq!(format!("{:?}", run.initiator), "PacketKeys(<redacted>)");
    let h = Handshake::responder(&a, PROLOGUE, &mut rng(3));
    assert_eq!(
        format!("{h:?}"),
        "Handshake { initiator: false, finished: false, .. }"
    );
}

#[test]
fn handshake_uses_the_callers_generator() {
    // Two seeds from one generator: two different ephemeral keys.
    let key = psk(1);
    let mut g = rng(5);
    let mut out_a = Vec::new();
    let mut out_b = Vec::new();
    Handshake::initiator(&key, PROLOGUE, &mut g)
        .write_message(b"", &mut out_a)
        .unwrap();
    Handshake::initiator(&key, PROLOGUE, &mut g)
        .write_message(b"", &mut out_b)
        .unwrap();
    assert_ne!(out_a[..32], out_b[..32]);
    // The generator advanced by exactly the 32-byte seed.
    let mut fresh = rng(5);
    let mut skip = [0u8; 64];
    fresh.fill_bytes(&mut skip);
    assert_eq!(fresh.next_u64(), g.next_u64());
}

/// Seals `body` behind `header` as packet `number` with `run`'s initiator
/// keys: the responder opens it to the same bytes, and not with the bit
/// `flip` picks flipped, nor under another packet number.
pub(super) fn seal_open_and_flip(
    run: &Run,
    number: u64,
    header: &[u8],
    body: &[u8],
    flip: prop::sample::Index,
) -> Result<(), TestCaseError> {
    let packet = sealed(&run.initiator, number, header, body);
    prop_assert_eq!(packet.len(), header.len() + body.len() + TAG_LEN);
    let got = opened(&run.responder, number, header.len(), &packet).unwrap();
    prop_assert_eq!(&got[..], &[header, body].concat()[..]);
    let bit = flip.index(packet.len() * 8);
    let mut bad = packet.clone();
    bad[bit / 8] ^= 1 << (bit % 8);
    prop_assert_eq!(
        opened(&run.responder, number, header.len(), &bad),
        Err(DecodeError::Integrity)
    );
    prop_assert_eq!(
        opened(&run.responder, number ^ 1, header.len(), &packet),
        Err(DecodeError::Integrity)
    );
    Ok(())
}

proptest! {
    #[test]
    fn open_inverts_seal_and_any_flipped_bit_fails(
        header in proptest::collection::vec(any::<u8>(), 0..20),
        body in proptest::collection::vec(any::<u8>(), 0..300),
        number in any::<u64>(),
        flip in any::<prop::sample::Index>(),
    ) {
        seal_open_and_flip(&handshake(1, 2, b"", b""), number, &header, &body, flip)?;
    }

    #[test]
    fn open_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
        header_len in 0usize..250,
        number in any::<u64>(),
    ) {
        let run = handshake(1, 2, b"", b"");
        let mut buf = BytesMut::from(&bytes[..]);
        let result = run.responder.open(number, header_len, &mut buf);
        prop_assert!(result.is_err());
        // Nothing removed; at most the body was wiped.
        prop_assert_eq!(buf.len(), bytes.len());
    }

    #[test]
    fn read_message_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let key = psk(1);
        let mut r = Handshake::responder(&key, PROLOGUE, &mut rng(2));
        prop_assert!(r.read_message(&bytes, &mut Vec::new()).is_err());
        let mut i = Handshake::initiator(&key, PROLOGUE, &mut rng(1));
        i.write_message(b"", &mut Vec::new()).unwrap();
        prop_assert!(i.read_message(&bytes, &mut Vec::new()).is_err());
    }
}
