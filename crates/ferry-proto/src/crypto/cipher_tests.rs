//! The cipher negotiation inside real handshakes, peers from before it, and
//! AES-256-GCM packets. (The rule itself is tested in `cipher.rs`.)

use super::tests::{
    HEADER, PROLOGUE, Run, handshake_with, opened, psk, rng, seal_open_and_flip, sealed,
};
use super::*;
use crate::error::DecodeError;
use crate::wire::protection::Protection;
use proptest::prelude::*;

const AES: Cipher = Cipher::Aes256Gcm;
const CHACHA: Cipher = Cipher::ChaCha20Poly1305;

const PREFERENCES: [CipherPreference; 3] = [
    CipherPreference::Auto,
    CipherPreference::Aes256Gcm,
    CipherPreference::ChaCha20Poly1305,
];

/// A handshake whose keys are for `cipher`, forced on the initiator.
fn run_with(cipher: Cipher) -> Run {
    let forced = match cipher {
        Cipher::Aes256Gcm => CipherPreference::Aes256Gcm,
        Cipher::ChaCha20Poly1305 => CipherPreference::ChaCha20Poly1305,
    };
    let run = handshake_with(forced, CipherPreference::Auto, 1, 2, b"", b"");
    assert_eq!(run.initiator.cipher(), cipher);
    run
}

/// The raw Noise side of a handshake, which writes and reads payloads as
/// they are, without any offer: a peer from before negotiation, or a
/// hand-made one.
fn raw_initiator() -> snow::HandshakeState {
    Handshake::initiator(&psk(7), PROLOGUE, &mut rng(11)).state
}

fn raw_responder() -> snow::HandshakeState {
    Handshake::responder(&psk(7), PROLOGUE, &mut rng(12)).state
}

fn raw_write(state: &mut snow::HandshakeState, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0; payload.len() + HANDSHAKE_OVERHEAD];
    let n = state.write_message(payload, &mut out).unwrap();
    out.truncate(n);
    out
}

fn raw_read(state: &mut snow::HandshakeState, message: &[u8]) -> Vec<u8> {
    let mut out = vec![0; message.len()];
    let n = state.read_message(message, &mut out).unwrap();
    out.truncate(n);
    out
}

/// The parameters a Ferry listener repeats in message 2 (`Config::default()`).
const PARAMS: &[u8] = &[
    0x44, 0xb0, 0x81, 0, 0, 0, 0x82, 0, 0, 0, 0x67, 0x10, 0x40, 0x64, 0x81, 0x80, 0, 0,
];

#[test]
fn every_pair_of_preferences_agrees_on_the_rules_cipher_and_packets_flow() {
    for prefer_i in PREFERENCES {
        for prefer_r in PREFERENCES {
            let (offer_i, offer_r) = (
                prefer_i.offer(hardware_aes()),
                prefer_r.offer(hardware_aes()),
            );
            let Ok(cipher) = negotiate(&offer_i, &offer_r) else {
                continue; // Two forced ciphers that differ: tested below.
            };
            let run = handshake_with(prefer_i, prefer_r, 3, 4, b"one", b"two");
            assert_eq!(run.initiator.cipher(), cipher, "{prefer_i} {prefer_r}");
            assert_eq!(run.responder.cipher(), cipher, "{prefer_i} {prefer_r}");
            let packet = sealed(&run.initiator, 8, HEADER, b"to the responder");
            let got = opened(&run.responder, 8, HEADER.len(), &packet).unwrap();
            assert_eq!(&got[HEADER.len()..], b"to the responder");
            let packet = sealed(&run.responder, 8, HEADER, b"to the initiator");
            let got = opened(&run.initiator, 8, HEADER.len(), &packet).unwrap();
            assert_eq!(&got[HEADER.len()..], b"to the initiator");
        }
    }
}

#[test]
fn auto_on_both_sides_follows_this_cpus_hardware() {
    let auto = CipherPreference::Auto;
    let run = handshake_with(auto, auto, 1, 2, b"", b"");
    let expected = if hardware_aes() { AES } else { CHACHA };
    assert_eq!(run.initiator.cipher(), expected);
}

#[test]
fn the_offer_and_the_answer_travel_in_front_of_the_payloads_as_documented() {
    let forced_aes = CipherPreference::Aes256Gcm;
    let mut i = Handshake::initiator_with(&psk(7), PROLOGUE, forced_aes, &mut rng(1));
    let mut message1 = Vec::new();
    i.write_message(b"p1", &mut message1).unwrap();
    let mut raw = raw_responder();
    assert_eq!(raw_read(&mut raw, &message1), [0x01, 0x02, b'p', b'1']);

    // A hand-made answer that follows the rule opens, and the initiator
    // hands on only what follows it.
    let answer = [&[0x02, 0x02, 0x02, 0x01][..], PARAMS].concat();
    let message2 = raw_write(&mut raw, &answer);
    let mut payload = Vec::new();
    i.read_message(&message2, &mut payload).unwrap();
    assert_eq!(payload, PARAMS);
    assert_eq!(i.into_keys().unwrap().cipher(), AES);

    // And the responder's side: its answer to a ChaCha-only offer.
    let chacha = CipherPreference::ChaCha20Poly1305;
    let mut raw = raw_initiator();
    let message1 = raw_write(&mut raw, &[0x01, 0x01]);
    let mut r = Handshake::responder_with(&psk(7), PROLOGUE, chacha, &mut rng(2));
    let mut payload = Vec::new();
    r.read_message(&message1, &mut payload).unwrap();
    assert!(payload.is_empty());
    let mut message2 = Vec::new();
    r.write_message(PARAMS, &mut message2).unwrap();
    assert_eq!(
        raw_read(&mut raw, &message2),
        [&[0x01, 0x01, 0x01][..], PARAMS].concat()
    );
}

#[test]
fn an_initiator_from_before_negotiation_gets_chacha20_poly1305_and_a_bare_answer() {
    let mut raw = raw_initiator();
    let message1 = raw_write(&mut raw, &[]);
    let mut r = Handshake::responder(&psk(7), PROLOGUE, &mut rng(2));
    r.read_message(&message1, &mut Vec::new()).unwrap();
    assert_eq!(r.cipher(), Some(CHACHA));
    let mut message2 = Vec::new();
    r.write_message(PARAMS, &mut message2).unwrap();
    // Exactly the parameters, as such an initiator checks.
    assert_eq!(raw_read(&mut raw, &message2), PARAMS);
    let keys = r.into_keys().unwrap();
    let (send, recv) = raw.dangerously_get_raw_split();
    let theirs = PacketKeys::new(CHACHA, &send, &recv);
    let packet = sealed(&theirs, 0, HEADER, b"hello");
    assert!(opened(&keys, 0, HEADER.len(), &packet).is_ok());

    // A responder that forces AES-256-GCM cannot serve it.
    let forced = CipherPreference::Aes256Gcm;
    let mut raw = raw_initiator();
    let message1 = raw_write(&mut raw, &[]);
    let mut r = Handshake::responder_with(&psk(7), PROLOGUE, forced, &mut rng(2));
    assert_eq!(
        r.read_message(&message1, &mut Vec::new()),
        Err(CryptoError::Negotiation(NegotiationError::NoCommonCipher))
    );
}

#[test]
fn a_responder_from_before_negotiation_is_taken_as_chacha20_poly1305() {
    let mut i = Handshake::initiator(&psk(7), PROLOGUE, &mut rng(1));
    let mut message1 = Vec::new();
    i.write_message(b"", &mut message1).unwrap();
    let mut raw = raw_responder();
    raw_read(&mut raw, &message1);
    let message2 = raw_write(&mut raw, PARAMS);
    let mut payload = Vec::new();
    i.read_message(&message2, &mut payload).unwrap();
    assert_eq!(payload, PARAMS, "nothing taken off");
    assert_eq!(i.into_keys().unwrap().cipher(), CHACHA);

    // Unless the initiator forces AES-256-GCM.
    let forced = CipherPreference::Aes256Gcm;
    let mut i = Handshake::initiator_with(&psk(7), PROLOGUE, forced, &mut rng(1));
    let mut message1 = Vec::new();
    i.write_message(b"", &mut message1).unwrap();
    let mut raw = raw_responder();
    raw_read(&mut raw, &message1);
    let message2 = raw_write(&mut raw, PARAMS);
    assert_eq!(
        i.read_message(&message2, &mut Vec::new()),
        Err(CryptoError::Negotiation(NegotiationError::NoCommonCipher))
    );
}

/// Message 2 from a hand-made responder whose payload is `answer`, read by
/// an initiator that prefers `preference`.
fn initiator_reads(preference: CipherPreference, answer: &[u8]) -> Result<Vec<u8>, CryptoError> {
    let mut i = Handshake::initiator_with(&psk(7), PROLOGUE, preference, &mut rng(1));
    let mut message1 = Vec::new();
    i.write_message(b"", &mut message1).unwrap();
    let mut raw = raw_responder();
    raw_read(&mut raw, &message1);
    let message2 = raw_write(&mut raw, answer);
    let mut payload = Vec::new();
    i.read_message(&message2, &mut payload).map(|()| payload)
}

#[test]
fn a_reply_naming_a_cipher_that_was_not_offered_is_refused_with_a_typed_error() {
    let chacha = CipherPreference::ChaCha20Poly1305;
    let answer = [&[AES.id(), 0x01, AES.id()][..], PARAMS].concat();
    assert_eq!(
        initiator_reads(chacha, &answer),
        Err(CryptoError::Negotiation(NegotiationError::NotOffered {
            id: AES.id()
        }))
    );
    // An id this version does not know.
    let answer = [&[0x3f, 0x01, 0x3f][..], PARAMS].concat();
    assert_eq!(
        initiator_reads(CipherPreference::Auto, &answer),
        Err(CryptoError::Negotiation(NegotiationError::NotOffered {
            id: 0x3f
        }))
    );
}

#[test]
fn a_reply_against_the_rule_is_refused_as_a_downgrade() {
    // The responder claims both ciphers, AES first, and picks whichever the
    // rule does not give for this CPU's offer.
    let ours = CipherPreference::Auto.offer(hardware_aes());
    let theirs = [AES, CHACHA];
    let expected = negotiate(&ours, &theirs).unwrap();
    let other = if expected == AES { CHACHA } else { AES };
    let mut answer = Vec::new();
    encode_reply(other, &theirs, &mut answer);
    answer.extend_from_slice(PARAMS);
    assert_eq!(
        initiator_reads(CipherPreference::Auto, &answer),
        Err(CryptoError::Negotiation(NegotiationError::WrongChoice {
            chosen: other,
            expected
        }))
    );
}

#[test]
fn malformed_offers_in_genuine_messages_are_typed_errors_not_panics() {
    for offer in [&[0x00][..], &[0x02, 0x01], &[0xff, 0x01, 0x02]] {
        let mut raw = raw_initiator();
        let message1 = raw_write(&mut raw, offer);
        let mut r = Handshake::responder(&psk(7), PROLOGUE, &mut rng(2));
        assert_eq!(
            r.read_message(&message1, &mut Vec::new()),
            Err(CryptoError::Negotiation(NegotiationError::MalformedOffer {
                len: offer.len()
            })),
            "{offer:?}"
        );
    }
    for answer in [&[0x02][..], &[0x02, 0x00], &[0x02, 0x03, 0x02]] {
        assert_eq!(
            initiator_reads(CipherPreference::Auto, answer),
            Err(CryptoError::Negotiation(NegotiationError::MalformedOffer {
                len: answer.len()
            })),
            "{answer:?}"
        );
    }
}

#[test]
fn two_different_forced_ciphers_end_the_handshake_at_the_responder() {
    let mut i =
        Handshake::initiator_with(&psk(7), PROLOGUE, CipherPreference::Aes256Gcm, &mut rng(1));
    let mut r = Handshake::responder_with(
        &psk(7),
        PROLOGUE,
        CipherPreference::ChaCha20Poly1305,
        &mut rng(2),
    );
    let mut message1 = Vec::new();
    i.write_message(b"", &mut message1).unwrap();
    let err = r.read_message(&message1, &mut Vec::new()).unwrap_err();
    assert_eq!(
        err,
        CryptoError::Negotiation(NegotiationError::NoCommonCipher)
    );
    assert!(err.to_string().contains("auto"), "{err}");
}

#[test]
fn aes_256_gcm_packets_match_the_gcm_specifications_test_vectors() {
    // McGrew and Viega, "The Galois/Counter Mode of Operation", test cases
    // 13 and 14: a zero 256-bit key and a zero IV (our nonce of packet 0),
    // no associated data (an empty header).
    let keys = PacketKeys::new(AES, &[0; 32], &[0; 32]);
    let hex = |b: &[u8]| b.iter().map(|b| format!("{b:02x}")).collect::<String>();
    assert_eq!(
        hex(&sealed(&keys, 0, b"", b"")),
        "530f8afbc74536b9a963b4f1c4cb738b"
    );
    assert_eq!(
        hex(&sealed(&keys, 0, b"", &[0; 16])),
        "cea7403d4d606b6e074ec5d3baf39d18d0d1c8a799996bf0265b98b5d48ab919"
    );
}

#[test]
fn the_two_ciphers_seal_the_same_packet_differently_and_do_not_open_each_other() {
    let (send, recv) = ([3u8; 32], [9u8; 32]);
    let aes = PacketKeys::new(AES, &send, &recv);
    let chacha = PacketKeys::new(CHACHA, &send, &recv);
    let (aes_peer, chacha_peer) = (
        PacketKeys::new(AES, &recv, &send),
        PacketKeys::new(CHACHA, &recv, &send),
    );
    let a = sealed(&aes, 5, HEADER, b"same body");
    let c = sealed(&chacha, 5, HEADER, b"same body");
    assert_eq!(a.len(), c.len(), "the same layout");
    assert_ne!(a, c);
    assert!(opened(&aes_peer, 5, HEADER.len(), &a).is_ok());
    assert!(opened(&chacha_peer, 5, HEADER.len(), &c).is_ok());
    assert_eq!(
        opened(&chacha_peer, 5, HEADER.len(), &a),
        Err(DecodeError::Integrity)
    );
    assert_eq!(
        opened(&aes_peer, 5, HEADER.len(), &c),
        Err(DecodeError::Integrity)
    );
}

proptest! {
    #[test]
    fn aes_256_gcm_open_inverts_seal_and_any_flipped_bit_fails(
        header in proptest::collection::vec(any::<u8>(), 0..20),
        body in proptest::collection::vec(any::<u8>(), 0..1300),
        number in any::<u64>(),
        flip in any::<prop::sample::Index>(),
    ) {
        seal_open_and_flip(&run_with(AES), number, &header, &body, flip)?;
    }

    #[test]
    fn chacha20_poly1305_open_inverts_seal_and_any_flipped_bit_fails(
        body in proptest::collection::vec(any::<u8>(), 0..1300),
        number in any::<u64>(),
        flip in any::<prop::sample::Index>(),
    ) {
        seal_open_and_flip(&run_with(CHACHA), number, HEADER, &body, flip)?;
    }

    #[test]
    fn read_message_never_panics_on_genuine_messages_with_any_payload(
        payload in proptest::collection::vec(any::<u8>(), 0..40),
    ) {
        // Whatever a key holder puts in the payload, either side answers
        // with a result, never a panic.
        let mut raw = raw_initiator();
        let message1 = raw_write(&mut raw, &payload);
        let mut r = Handshake::responder(&psk(7), PROLOGUE, &mut rng(2));
        let _ = r.read_message(&message1, &mut Vec::new());
        let _ = initiator_reads(CipherPreference::Auto, &payload);
    }
}

/// Seals `body` after `HEADER` as the packet starting at byte
/// `prefix.len()` of a buffer already holding `prefix`.
fn sealed_after(protection: &Protection, prefix: &[u8], number: u64, body: &[u8]) -> Vec<u8> {
    let mut buf = [prefix, HEADER, body].concat();
    protection.seal_at(number, prefix.len(), HEADER.len(), &mut buf);
    buf
}

#[test]
fn sealing_a_packet_after_others_gives_the_bytes_of_sealing_it_alone() {
    let keys = |cipher| Protection::Aead(run_with(cipher).initiator);
    let body = b"a body of some length, to be sealed";
    for protection in [Protection::Checksum, keys(AES), keys(CHACHA)] {
        // Alone: through the start-0 `seal`.
        let mut alone = [HEADER, body].concat();
        protection.seal(9, HEADER.len(), &mut alone);
        assert_eq!(
            alone.len(),
            HEADER.len() + body.len() + protection.overhead()
        );
        for prefix in [&b""[..], b"x", &[0xaa; 1200][..]] {
            let batch = sealed_after(&protection, prefix, 9, body);
            assert_eq!(&batch[..prefix.len()], prefix, "earlier bytes untouched");
            assert_eq!(
                &batch[prefix.len()..],
                &alone[..],
                "{:?}",
                protection.cipher()
            );
        }
        // A packet after a sealed one: both open on their own.
        let mut two = alone.clone();
        let first = two.len();
        two.extend_from_slice(HEADER);
        two.extend_from_slice(b"second");
        protection.seal_at(10, first, HEADER.len(), &mut two);
        assert_eq!(&two[..first], &alone[..]);
        let mut second = [HEADER, &b"second"[..]].concat();
        protection.seal(10, HEADER.len(), &mut second);
        assert_eq!(&two[first..], &second[..]);
    }
    // The packet keys themselves, both ciphers.
    for cipher in [AES, CHACHA] {
        let run = run_with(cipher);
        let alone = sealed(&run.initiator, 4, HEADER, body);
        let mut buf = [&[7u8; 33][..], HEADER, body].concat();
        run.initiator.seal_at(4, 33, HEADER.len(), &mut buf);
        assert_eq!(&buf[33..], &alone[..], "{cipher}");
        let got = opened(&run.responder, 4, HEADER.len(), &buf[33..]).unwrap();
        assert_eq!(&got[HEADER.len()..], body);
    }
}
