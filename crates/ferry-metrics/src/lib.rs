//! Prometheus metrics for Ferry.
//!
//! Ferry's libraries count what they do ([`EndpointStats`](ferry_proto::EndpointStats),
//! [`SessionTotals`](ferry_proto::SessionTotals),
//! [`DiodeSenderStats`](ferry_diode::DiodeSenderStats),
//! [`DiodeReceiverStats`](ferry_diode::DiodeReceiverStats)); this crate
//! turns those figures into Prometheus metric families, read at the moment
//! of each scrape, so that nothing is counted twice on the data path:
//!
//! - [`EndpointCollector`]: a session endpoint's figures (`ferry_sessions_*`,
//!   `ferry_session_*`, `ferry_endpoint_*`);
//! - [`SenderCollector`], [`ReceiverCollector`]: a diode's
//!   (`ferry_diode_send_*`, `ferry_diode_receive_*`);
//! - [`MetricsServer`]: a small HTTP endpoint (`GET /metrics`, Prometheus's
//!   text format 0.0.4) on a thread of its own, for programs that have
//!   none; a program with its own exporter registers the collectors in its
//!   own [`prometheus_client`] registry instead.
//!
//! ```no_run
//! /// Serves `endpoint`'s figures on port 9100 until the server is dropped.
//! fn serve(
//!     endpoint: &ferry_async::Endpoint,
//! ) -> Result<ferry_metrics::MetricsServer, Box<dyn std::error::Error>> {
//!     let mut registry = ferry_metrics::registry();
//!     registry.register_collector(Box::new(ferry_metrics::EndpointCollector(endpoint.clone())));
//!     let server = ferry_metrics::MetricsServer::start("127.0.0.1:9100".parse()?, registry)?;
//!     println!("metrics at http://{}/metrics", server.addr());
//!     Ok(server)
//! }
//! ```
//!
//! Every name starts with `ferry_`; `ferry_build_info{version}` is always
//! there. The list, with what to alert on, is in the guide's §7.1.

use std::fmt;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::registry::Registry;

pub mod diode;
mod families;
mod server;
pub mod session;

pub use diode::{ReceiverCollector, SenderCollector};
pub use families::{Families, gauge_value};
pub use prometheus_client;
pub use server::{CONTENT_TYPE, MetricsError, MetricsServer};
pub use session::EndpointCollector;

/// A registry with Ferry's prefix (`ferry_`) and `ferry_build_info`: add
/// collectors and hand it to [`MetricsServer::start`].
pub fn registry() -> Registry {
    let mut registry = Registry::with_prefix("ferry");
    registry.register_collector(Box::new(BuildInfo));
    registry
}

/// The text a scrape of `registry` answers (Prometheus's format 0.0.4).
pub fn encode(registry: &Registry) -> Result<String, fmt::Error> {
    let mut text = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut text, registry)?;
    Ok(text)
}

/// `ferry_build_info{version="…"} 1`.
#[derive(Debug)]
struct BuildInfo;

impl Collector for BuildInfo {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        let mut f = Families(encoder);
        f.gauge_with(
            "build_info",
            "The version of Ferry (always 1)",
            "version",
            &[(env!("CARGO_PKG_VERSION"), 1)],
        )
    }
}
