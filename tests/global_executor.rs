//! What only the adapters on a global executor (ferry-smol, ferry-async-std)
//! have: `bind` needs no runtime context, and the driver runs on the
//! executor's own threads while the caller blocks.
//!
//! The scenarios every driver shares are in `conformance.rs`. ferry-tokio's
//! `runtime_shutdown_wakes_every_waiter` has no counterpart here: these
//! drivers run on a global executor, which lives as long as the process.

use std::time::Duration;

fn local() -> std::net::SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// `future`'s output, or `None` once `limit` has passed.
async fn timeout<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(future.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
}

/// The test, for one adapter: its crate and its `block_on`.
macro_rules! bind_needs_no_runtime {
    ($name:ident, $adapter:ident, $block_on:path) => {
        #[test]
        fn $name() {
            use $adapter::{Endpoint, EndpointConfig, EndpointExt};
            // Runs `test` to completion, failing (instead of hanging) if it is
            // still running after 30 s.
            fn run<T>(test: impl Future<Output = T>) -> T {
                $block_on(timeout(Duration::from_secs(30), test))
                    .expect("still running after 30 s: a lost wake-up?")
            }
            // Bound outside any `block_on`.
            let server = Endpoint::bind(local(), EndpointConfig::server()).unwrap();
            let addr = server.local_addr();
            // This thread then blocks without polling anything while another
            // connects: the server's driver answers the handshake from the
            // runtime's executor threads.
            let client = std::thread::spawn(move || {
                run(async {
                    let client = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
                    let session = client.connect(addr).await.unwrap();
                    session.send(&b"while you slept"[..]).await.unwrap();
                    (client, session)
                })
            })
            .join()
            .unwrap();
            let incoming = run(server.accept()).unwrap();
            assert_eq!(incoming.id(), client.1.id());
            assert_eq!(&run(incoming.recv()).unwrap()[..], b"while you slept");
        }
    };
}

bind_needs_no_runtime!(
    on_smol_bind_needs_no_runtime_and_the_driver_runs_on_its_own,
    ferry_smol,
    smol::block_on
);
bind_needs_no_runtime!(
    on_async_std_bind_needs_no_runtime_and_the_driver_runs_on_its_own,
    ferry_async_std,
    async_std::task::block_on
);
