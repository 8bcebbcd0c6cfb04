//! The driven API on tokio, over real sockets on loopback.

use std::time::Duration;

use ferry_tokio::{
    BindError, CloseReason, Config, ConnectError, Endpoint, EndpointConfig, EndpointExt, RecvError,
    SendError, State,
};

/// `future`'s output, or `None` once `limit` has passed.
async fn timeout<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    tokio::time::timeout(limit, future).await.ok()
}

/// Runs `test` on a fresh multi-threaded runtime (its drivers with it),
/// failing (instead of hanging) if it is still running after 30 s.
fn run<T>(test: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(timeout(Duration::from_secs(30), test))
        .expect("still running after 30 s: a lost wake-up?")
}

include!("../../ferry-async/conformance/session.rs");

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
