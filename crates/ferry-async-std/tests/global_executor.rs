//! The driven API on async-std, over real sockets on loopback.

use std::time::Duration;

use ferry_async_std::{
    BindError, CloseReason, Config, ConnectError, Endpoint, EndpointConfig, EndpointExt, RecvError,
    SendError, State,
};

/// `future`'s output, or `None` once `limit` has passed.
async fn timeout<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(future.await) }, async {
        async_io::Timer::after(limit).await;
        None
    })
    .await
}

/// Runs `test` to completion on async-std, failing (instead of hanging) if it is
/// still running after 30 s.
fn run<T>(test: impl Future<Output = T>) -> T {
    async_std::task::block_on(timeout(Duration::from_secs(30), test))
        .expect("still running after 30 s: a lost wake-up?")
}

include!("../../ferry-async/conformance/session.rs");
include!("../../ferry-async/conformance/global_executor.rs");

// ferry-tokio's `runtime_shutdown_wakes_every_waiter` has no counterpart here:
// the driver runs on async-std's global executor, which lives as long as the process.
