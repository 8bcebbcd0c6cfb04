//! Who is on the other end, by public key: identity sessions on every
//! driver (tokio, async-std, smol, blocking) over real sockets on loopback.

use std::net::SocketAddr;

use bytes::Bytes;
use ferry_async::types::{CloseReason, Config, ConnectError, EndpointConfig, Identity, PublicKey};
use ferry_tests::harness::{Driver, within};

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

fn identity(byte: u8) -> Identity {
    Identity::from_private_bytes([byte; 32])
}

/// A listener proving `me` that admits only `admitted`.
fn listener(me: &Identity, admitted: PublicKey) -> EndpointConfig {
    EndpointConfig::from(Config {
        accept_incoming: true,
        identity: Some(me.clone()),
        authorized_keys: Some([admitted].into_iter().collect()),
        ..Config::default()
    })
}

/// A starter proving `me`, pinning per session.
fn starter(me: &Identity) -> EndpointConfig {
    EndpointConfig::from(Config {
        identity: Some(me.clone()),
        ..Config::default()
    })
}

/// A listed key gets in with the listener's key pinned, each side names the
/// other, and messages cross.
fn a_listed_key_gets_in_and_each_side_names_the_other(driver: Driver) {
    within(30, move || {
        let (alice, server_id) = (identity(1), identity(2));
        let server = driver.bind(local(), listener(&server_id, alice.public_key()));
        let client = driver.bind(local(), starter(&alice));
        let session = client
            .connect_to(server.local_addr(), server_id.public_key())
            .unwrap();
        let accepted = server.accept().unwrap();
        assert_eq!(session.peer_identity(), Some(server_id.public_key()));
        assert_eq!(accepted.peer_identity(), Some(alice.public_key()));
        session.send(Bytes::from_static(b"signed, alice")).unwrap();
        assert_eq!(accepted.recv().unwrap(), "signed, alice");
        assert!(session.stats().cipher.is_some(), "encrypted");
    });
}

/// An unlisted key and a wrong pin both fail `connect` with
/// `AuthenticationFailed`, and the listener holds nothing for them.
fn an_unlisted_key_and_a_wrong_pin_get_nothing(driver: Driver) {
    within(30, move || {
        let (alice, mallory, server_id) = (identity(1), identity(3), identity(2));
        let server = driver.bind(local(), listener(&server_id, alice.public_key()));
        let stranger = driver.bind(local(), starter(&mallory));
        let refused = stranger.connect_to(server.local_addr(), server_id.public_key());
        assert!(
            matches!(
                refused,
                Err(ConnectError::Failed(CloseReason::AuthenticationFailed))
            ),
            "{:?}",
            refused.err()
        );
        let client = driver.bind(local(), starter(&alice));
        let mispinned = client.connect_to(server.local_addr(), mallory.public_key());
        assert!(
            matches!(
                mispinned,
                Err(ConnectError::Failed(CloseReason::AuthenticationFailed))
            ),
            "{:?}",
            mispinned.err()
        );
        assert_eq!(server.session_count(), 0);
        let stats = server.stats();
        assert_eq!(stats.dropped_unauthorized, 1);
        assert_eq!(stats.sessions_accepted, 0);
    });
}

ferry_tests::on_every_driver! {
    a_listed_key_gets_in_and_each_side_names_the_other,
    an_unlisted_key_and_a_wrong_pin_get_nothing,
}
