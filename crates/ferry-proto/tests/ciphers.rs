//! Encrypted sessions under each packet cipher: the handshake agrees on
//! AES-256-GCM or ChaCha20-Poly1305, both sides report it, and data flows.

mod common;

use std::time::Duration;

use common::{Pair, receive_messages, send_copies};
use ferry_proto::crypto::{PreSharedKey, hardware_aes};
use ferry_proto::{Cipher, CipherPreference, Config, SessionId};
use ferry_sim::{LinkConfig, Transfer};

fn keyed(cipher: CipherPreference) -> Config {
    Config {
        psk: Some(PreSharedKey::from_bytes([0x42; 32])),
        cipher,
        ..Config::default()
    }
}

/// Establishes a session between a client preferring `client` and a server
/// preferring `server`, sends messages both ways, and returns the cipher
/// each side reports.
fn exchange(
    client: CipherPreference,
    server: CipherPreference,
) -> (Option<Cipher>, Option<Cipher>) {
    let link = LinkConfig::default().latency(Duration::from_millis(5));
    let mut pair = Pair::with_configs(7, link, keyed(client), keyed(server));
    let id: SessionId = pair.establish();
    let (c, s) = (pair.client, pair.server);
    send_copies(&mut pair.net, c, id, &[0xc1; 5000], 20);
    assert_eq!(
        receive_messages(&mut pair.net, s, 20, Duration::from_secs(10)),
        20
    );
    send_copies(&mut pair.net, s, id, &[0x5e; 3000], 20);
    assert_eq!(
        receive_messages(&mut pair.net, c, 20, Duration::from_secs(10)),
        20
    );
    let cipher =
        |pair: &mut Pair, node| pair.net.endpoint(node).session(id).unwrap().stats().cipher;
    (cipher(&mut pair, c), cipher(&mut pair, s))
}

#[test]
fn a_session_forced_to_aes_256_gcm_uses_it_on_both_sides_and_carries_data() {
    let both = exchange(CipherPreference::Aes256Gcm, CipherPreference::Auto);
    assert_eq!(both, (Some(Cipher::Aes256Gcm), Some(Cipher::Aes256Gcm)));
}

#[test]
fn a_session_forced_to_chacha20_poly1305_uses_it_on_both_sides_and_carries_data() {
    let both = exchange(CipherPreference::ChaCha20Poly1305, CipherPreference::Auto);
    let chacha = Some(Cipher::ChaCha20Poly1305);
    assert_eq!(both, (chacha, chacha));
}

#[test]
fn a_listener_forcing_a_cipher_gets_it_from_an_auto_starter() {
    for forced in [Cipher::Aes256Gcm, Cipher::ChaCha20Poly1305] {
        let preference = match forced {
            Cipher::Aes256Gcm => CipherPreference::Aes256Gcm,
            _ => CipherPreference::ChaCha20Poly1305,
        };
        let both = exchange(CipherPreference::Auto, preference);
        assert_eq!(both, (Some(forced), Some(forced)));
    }
}

#[test]
fn two_sides_forcing_different_ciphers_never_establish() {
    let link = LinkConfig::default().latency(Duration::from_millis(5));
    let mut pair = Pair::with_configs(
        9,
        link,
        keyed(CipherPreference::Aes256Gcm),
        keyed(CipherPreference::ChaCha20Poly1305),
    );
    let id = pair.connect();
    pair.net.run_for(Duration::from_secs(20));
    let state = pair
        .net
        .endpoint(pair.client)
        .session(id)
        .map(|s| s.state());
    assert_ne!(state, Some(ferry_proto::State::Established));
}

#[test]
fn two_auto_sides_use_aes_256_gcm_exactly_when_the_cpu_has_hardware_aes() {
    let expected = if hardware_aes() {
        Cipher::Aes256Gcm
    } else {
        Cipher::ChaCha20Poly1305
    };
    let auto = CipherPreference::Auto;
    assert_eq!(exchange(auto, auto), (Some(expected), Some(expected)));
}

#[test]
fn a_session_without_a_key_reports_no_cipher() {
    let mut pair = Pair::new(3, LinkConfig::default());
    let id = pair.establish();
    let (c, s) = (pair.client, pair.server);
    for node in [c, s] {
        let stats = pair.net.endpoint(node).session(id).unwrap().stats();
        assert_eq!(stats.cipher, None);
    }
}

#[test]
fn an_aes_256_gcm_transfer_under_loss_reordering_and_corruption_is_exact() {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(5))
        .random_loss(0.05)
        .duplicate(0.02)
        .corrupt(0.01)
        .reorder(0.02, Duration::from_millis(3));
    let messages: Vec<Vec<u8>> = (0..150u32)
        .map(|i| vec![i as u8; 1 + (i as usize * 997) % 20_000])
        .collect();
    let report = Transfer::new(5, link)
        .client_config(keyed(CipherPreference::Aes256Gcm))
        .server_config(keyed(CipherPreference::Auto))
        .run(messages, Duration::from_secs(120));
    assert!(report.complete(), "{report:?}");
}
