//! The `--metrics` flag of the long-running commands, served by
//! [`ferry_metrics`] (the collectors and the HTTP endpoint live there, for
//! applications too).

use std::net::SocketAddr;

pub use ferry_metrics::{MetricsServer, ReceiverCollector, SenderCollector, registry};
use prometheus_client::registry::Registry;

use crate::CliError;

mod files;

pub use files::{DirCollector, FilesCollector};

/// The `--metrics` flag of the long-running commands.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9001;
    /// port 0: one the system chooses, printed at start).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<SocketAddr>,
}

impl MetricsArgs {
    /// Serves `endpoint`'s figures at `--metrics`, else at the file's
    /// `metrics` (`file`), else nowhere.
    pub fn serve_endpoint(
        &self,
        file: Option<SocketAddr>,
        endpoint: &ferry_tokio::Endpoint,
    ) -> Result<Option<MetricsServer>, CliError> {
        let Some(addr) = self.metrics.or(file) else {
            return Ok(None);
        };
        let mut registry = registry();
        registry.register_collector(Box::new(ferry_metrics::EndpointCollector(endpoint.clone())));
        start(addr, registry).map(Some)
    }
}

/// Starts the endpoint; errors name the flag.
pub fn start(addr: SocketAddr, registry: Registry) -> Result<MetricsServer, CliError> {
    MetricsServer::start(addr, registry).map_err(|e| CliError::Network(format!("{e} (--metrics)")))
}

/// `, metrics at http://ADDR/metrics` for a start-up line, or nothing.
pub fn start_line(server: &Option<MetricsServer>) -> String {
    server.as_ref().map_or_else(String::new, |m| {
        format!(", metrics at http://{}/metrics", m.addr())
    })
}
