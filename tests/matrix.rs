//! Every driver as client against every driver as server, over real sockets on
//! loopback: 1,000 messages of random sizes up to 1 MiB, every byte checked, in
//! order, and the server answers each hundredth message.

use std::thread;

use bytes::Bytes;
use ferry_async::{CloseReason, EndpointConfig};
use ferry_tests::harness::{Driver, Messages};

const MESSAGES: usize = 1_000;
const MAX_SIZE: usize = 1 << 20;

fn exchange(client: Driver, server: Driver, seed: u64) {
    let server_peer = server.bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::server());
    let client_peer = client.bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::default());
    let addr = server_peer.local_addr();

    let mut sizes = Messages::new(seed, MAX_SIZE);
    let plan: Vec<usize> = (0..MESSAGES).map(|_| sizes.next_size()).collect();
    let expected = plan.clone();
    let receiver = thread::spawn(move || {
        let session = server_peer.accept().expect("a session");
        for (i, &size) in expected.iter().enumerate() {
            let data = session.recv().expect("message");
            assert!(
                Messages::check(i, size, &data),
                "message {i}: {} bytes, expected {size}, or wrong content",
                data.len()
            );
            if i % 100 == 99 {
                session
                    .send(Bytes::from(format!("got {}", i + 1)))
                    .expect("reply");
            }
        }
        let reason = session.closed();
        (reason, server_peer)
    });

    let session = client_peer.connect(addr).expect("connect");
    for (i, &size) in plan.iter().enumerate() {
        session.send(Messages::content(i, size)).expect("send");
    }
    for n in 1..=MESSAGES / 100 {
        let reply = session.recv().expect("reply");
        assert_eq!(reply, Bytes::from(format!("got {}", n * 100)));
    }
    session.close(7);
    let (reason, server_peer) = receiver.join().expect("server thread");
    assert_eq!(
        reason,
        CloseReason::Remote {
            code: 7,
            reason: Default::default()
        }
    );
    client_peer.close();
    server_peer.close();
}

macro_rules! matrix {
    ($($name:ident: $client:ident -> $server:ident,)*) => {$(
        #[test]
        fn $name() {
            exchange(Driver::$client, Driver::$server, line!() as u64);
        }
    )*};
}

matrix! {
    tokio_to_tokio: Tokio -> Tokio,
    tokio_to_async_std: Tokio -> AsyncStd,
    tokio_to_smol: Tokio -> Smol,
    tokio_to_blocking: Tokio -> Blocking,
    async_std_to_tokio: AsyncStd -> Tokio,
    async_std_to_async_std: AsyncStd -> AsyncStd,
    async_std_to_smol: AsyncStd -> Smol,
    async_std_to_blocking: AsyncStd -> Blocking,
    smol_to_tokio: Smol -> Tokio,
    smol_to_async_std: Smol -> AsyncStd,
    smol_to_smol: Smol -> Smol,
    smol_to_blocking: Smol -> Blocking,
    blocking_to_tokio: Blocking -> Tokio,
    blocking_to_async_std: Blocking -> AsyncStd,
    blocking_to_smol: Blocking -> Smol,
    blocking_to_blocking: Blocking -> Blocking,
}

#[test]
fn every_driver_is_in_the_matrix() {
    // Adding a driver means adding its row and column to `matrix!` above.
    assert_eq!(Driver::ALL.len(), 4);
}
