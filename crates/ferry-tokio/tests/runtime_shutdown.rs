//! What only the tokio adapter has: its drivers are tasks of the caller's
//! runtime, and die with it.
//!
//! The scenarios every driver shares run on tokio too, from the workspace's
//! `tests/conformance.rs`.

use ferry_tokio::{Endpoint, EndpointConfig, EndpointExt};

fn local() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

#[test]
fn runtime_shutdown_wakes_every_waiter() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (client, session) = rt.block_on(async {
        let server = Endpoint::bind(local(), EndpointConfig::server()).unwrap();
        let client = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
        let session = client.connect(server.local_addr()).await.unwrap();
        (client, session)
    });
    drop(rt);
    // The drivers are gone with their runtime: waiting returns instead of hanging.
    let other = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let result = other.block_on(session.recv());
    assert!(result.is_err(), "{result:?}");
    other.block_on(client.close());
}
