//! Encrypted sessions on real sockets: every driver against another with a
//! shared key, and a wrong key refused on every driver.

use std::thread;

use ferry_async::{Config, EndpointConfig};
use ferry_proto::crypto::PreSharedKey;
use ferry_tests::harness::{Driver, Messages};

fn config(key: u8, server: bool) -> EndpointConfig {
    EndpointConfig::from(Config {
        psk: Some(PreSharedKey::from_bytes([key; 32])),
        accept_incoming: server,
        ..Config::default()
    })
}

/// 300 messages up to 256 KiB each way of an encrypted session, every byte
/// checked.
fn encrypted_exchange(client: Driver, server: Driver) {
    let server_peer = server.bind("127.0.0.1:0".parse().unwrap(), config(42, true));
    let client_peer = client.bind("127.0.0.1:0".parse().unwrap(), config(42, false));
    let addr = server_peer.local_addr();
    let mut sizes = Messages::new(11, 256 << 10);
    let plan: Vec<usize> = (0..300).map(|_| sizes.next_size()).collect();
    let expected = plan.clone();
    let echo = thread::spawn(move || {
        let session = server_peer.accept().expect("a session");
        for (i, &size) in expected.iter().enumerate() {
            let data = session.recv().expect("message");
            assert!(Messages::check(i, size, &data), "message {i}");
            session.send(data).expect("echo");
        }
        session.closed();
        server_peer
    });
    let session = client_peer
        .connect(addr)
        .expect("connect with the shared key");
    for (i, &size) in plan.iter().enumerate() {
        session.send(Messages::content(i, size)).expect("send");
    }
    for (i, &size) in plan.iter().enumerate() {
        let data = session.recv().expect("echo");
        assert!(Messages::check(i, size, &data), "echo {i}");
    }
    session.close(0);
    let server_peer = echo.join().expect("server thread");
    client_peer.close();
    server_peer.close();
}

fn wrong_key(driver: Driver) {
    let server = driver.bind("127.0.0.1:0".parse().unwrap(), config(1, true));
    let client = driver.bind("127.0.0.1:0".parse().unwrap(), config(2, false));
    let err = client
        .connect(server.local_addr())
        .err()
        .expect("a wrong key must not connect");
    assert_eq!(
        err,
        ferry_async::ConnectError::Failed(ferry_async::CloseReason::AuthenticationFailed)
    );
    assert!(err.to_string().contains("authentication failed"), "{err}");
    assert_eq!(server.session_count(), 0, "the listener keeps nothing");
    client.close();
    server.close();
}

macro_rules! crypto_tests {
    ($($exchange:ident, $wrong:ident: $client:ident -> $server:ident,)*) => {$(
        #[test]
        fn $exchange() {
            encrypted_exchange(Driver::$client, Driver::$server);
        }

        #[test]
        fn $wrong() {
            wrong_key(Driver::$client);
        }
    )*};
}

crypto_tests! {
    encrypted_tokio_to_blocking, wrong_key_tokio: Tokio -> Blocking,
    encrypted_blocking_to_smol, wrong_key_blocking: Blocking -> Smol,
    encrypted_smol_to_async_std, wrong_key_smol: Smol -> AsyncStd,
    encrypted_async_std_to_tokio, wrong_key_async_std: AsyncStd -> Tokio,
}
