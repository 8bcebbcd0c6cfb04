//! The identity handshake's tests: who gets in, who learns what, and what a
//! wrong key costs.

use super::tests::{PROLOGUE, psk, rng};
use super::*;

fn identity(seed: u64) -> Identity {
    Identity::generate(&mut rng(1000 + seed))
}

/// Both sides' handshakes for an identity session: the starter pins
/// `pinned` as the listener's key.
fn sides(
    starter: &Identity,
    listener: &Identity,
    pinned: &PublicKey,
    keys: (Option<&PreSharedKey>, Option<&PreSharedKey>),
) -> (Handshake, Handshake) {
    let auto = CipherPreference::Auto;
    let i =
        Handshake::initiator_with_identity(starter, pinned, keys.0, PROLOGUE, auto, &mut rng(1));
    let r = Handshake::responder_with_identity(listener, keys.1, PROLOGUE, auto, &mut rng(2));
    (i, r)
}

#[test]
fn an_identity_handshake_authenticates_both_static_keys_in_one_round_trip() {
    let (a, b) = (identity(1), identity(2));
    let (mut i, mut r) = sides(&a, &b, &b.public_key(), (None, None));
    let mut m1 = Vec::new();
    i.write_message(b"hello", &mut m1).unwrap();
    // The static key travels encrypted: its bytes are not in the message.
    assert!(!m1.windows(32).any(|w| w == a.public_key().as_bytes()));
    let mut got = Vec::new();
    r.read_message(&m1, &mut got).unwrap();
    assert_eq!(got, b"hello");
    assert_eq!(r.remote_identity(), Some(a.public_key()));
    let mut m2 = Vec::new();
    r.write_message(b"params", &mut m2).unwrap();
    got.clear();
    i.read_message(&m2, &mut got).unwrap();
    assert_eq!(got, b"params");
    assert_eq!(i.remote_identity(), Some(b.public_key()));
    assert!(i.is_finished() && r.is_finished());
    let (ki, kr) = (i.into_keys().unwrap(), r.into_keys().unwrap());
    let mut sealed = b"header-body".to_vec();
    ki.seal(9, 6, &mut sealed);
    let mut packet = bytes::BytesMut::from(&sealed[..]);
    kr.open(9, 6, &mut packet).unwrap();
    assert_eq!(&packet[..], b"header-body");
}

#[test]
fn a_starter_that_pinned_the_wrong_listener_key_is_refused_at_message_one() {
    let (a, b, c) = (identity(1), identity(2), identity(3));
    let (mut i, mut r) = sides(&a, &b, &c.public_key(), (None, None));
    let mut m1 = Vec::new();
    i.write_message(&[], &mut m1).unwrap();
    let mut got = Vec::new();
    assert_eq!(
        r.read_message(&m1, &mut got),
        Err(CryptoError::AuthenticationFailed)
    );
    assert_eq!(r.remote_identity(), None, "nothing learnt from a failure");
}

#[test]
fn a_listener_with_another_key_cannot_answer_a_pinned_starter() {
    // An impostor at the listener's address who pretends to be `b`.
    let (a, b, impostor) = (identity(1), identity(2), identity(3));
    let (mut i, _) = sides(&a, &b, &b.public_key(), (None, None));
    let (_, mut r) = sides(&a, &impostor, &impostor.public_key(), (None, None));
    let mut m1 = Vec::new();
    i.write_message(&[], &mut m1).unwrap();
    let mut got = Vec::new();
    assert!(r.read_message(&m1, &mut got).is_err());
}

#[test]
fn with_a_pre_shared_key_on_top_both_the_key_and_the_identities_must_match() {
    let (a, b) = (identity(1), identity(2));
    let (k, other) = (psk(7), psk(8));
    let (mut i, mut r) = sides(&a, &b, &b.public_key(), (Some(&k), Some(&k)));
    let (mut m1, mut m2, mut got) = (Vec::new(), Vec::new(), Vec::new());
    i.write_message(&[], &mut m1).unwrap();
    r.read_message(&m1, &mut got).unwrap();
    r.write_message(&[], &mut m2).unwrap();
    i.read_message(&m2, &mut got).unwrap();
    assert!(i.into_keys().is_ok());

    // Another key: the listener's answer does not open at the starter.
    let (mut i, mut r) = sides(&a, &b, &b.public_key(), (Some(&k), Some(&other)));
    let (mut m1, mut m2) = (Vec::new(), Vec::new());
    i.write_message(&[], &mut m1).unwrap();
    r.read_message(&m1, &mut got).unwrap();
    r.write_message(&[], &mut m2).unwrap();
    assert_eq!(
        i.read_message(&m2, &mut got),
        Err(CryptoError::AuthenticationFailed)
    );
}

#[test]
fn the_identity_and_pre_shared_key_handshakes_do_not_mix() {
    let (a, b) = (identity(1), identity(2));
    let k = psk(7);
    let auto = CipherPreference::Auto;
    let mut i =
        Handshake::initiator_with_identity(&a, &b.public_key(), None, PROLOGUE, auto, &mut rng(1));
    let mut r = Handshake::responder_with(&k, PROLOGUE, auto, &mut rng(2));
    let (mut m1, mut got) = (Vec::new(), Vec::new());
    i.write_message(&[], &mut m1).unwrap();
    assert!(r.read_message(&m1, &mut got).is_err());

    let mut i = Handshake::initiator_with(&k, PROLOGUE, auto, &mut rng(1));
    let mut r = Handshake::responder_with_identity(&b, None, PROLOGUE, auto, &mut rng(2));
    m1.clear();
    i.write_message(&[], &mut m1).unwrap();
    assert!(r.read_message(&m1, &mut got).is_err());
}

#[test]
fn message_one_of_the_identity_handshake_is_larger_by_the_encrypted_static_key() {
    let (a, b) = (identity(1), identity(2));
    let (mut i, _) = sides(&a, &b, &b.public_key(), (None, None));
    let mut m1 = Vec::new();
    i.write_message(b"12345678", &mut m1).unwrap();
    let offer = CipherPreference::Auto.offer(hardware_aes()).len();
    assert_eq!(
        m1.len(),
        1 + offer + 8 + HANDSHAKE_OVERHEAD + STATIC_KEY_OVERHEAD
    );
}
