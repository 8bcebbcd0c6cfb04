//! The Prometheus endpoint of the long-running commands (`--metrics ADDR`):
//! `GET /metrics` answers with the command's counters in Prometheus's text
//! format (version 0.0.4), read from the library's own statistics at the
//! moment of the scrape — nothing is counted twice, and a scrape costs the
//! transfer nothing but the lock the statistics take.
//!
//! - [`MetricsServer`]: the HTTP endpoint, on a thread of its own
//!   (`tiny_http`), serving a `prometheus_client` registry.
//! - [`diode`]: what `diode-send` and `diode-receive` export.
//! - [`Families`]: writes counters and gauges, with or without a label, so
//!   that a collector reads as a list of figures.
//!
//! Every name starts with `ferry_`; `ferry_build_info{version}` is always
//! there. The list, with what to alert on, is in `docs/guide.md`
//! ("Metrics").

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use tracing::{debug, info, warn};

use crate::CliError;

pub mod diode;
pub mod session;

/// The `--metrics` flag of the long-running commands.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics (e.g. 127.0.0.1:9001;
    /// port 0: one the system chooses, logged at start).
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
        registry.register_collector(Box::new(session::EndpointCollector(endpoint.clone())));
        MetricsServer::start(addr, "--metrics", registry).map(Some)
    }
}

/// `, metrics at http://ADDR/metrics` for a start-up line, or nothing.
pub fn start_line(server: &Option<MetricsServer>) -> String {
    server.as_ref().map_or_else(String::new, |m| {
        format!(", metrics at http://{}/metrics", m.addr())
    })
}

/// The content type of Prometheus's text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A registry with Ferry's prefix and `ferry_build_info`; add the command's
/// collectors and hand it to [`MetricsServer::start`].
pub fn registry() -> Registry {
    let mut registry = Registry::with_prefix("ferry");
    registry.register_collector(Box::new(BuildInfo));
    registry
}

/// `ferry_build_info{version="…"} 1`.
#[derive(Debug)]
struct BuildInfo;

impl Collector for BuildInfo {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        let mut f = Families(encoder);
        f.gauge_with(
            "build_info",
            "The ferry binary's version (always 1)",
            "version",
            &[(env!("CARGO_PKG_VERSION"), 1)],
        )
    }
}

/// Writes metric families into a scrape: one call per figure.
pub struct Families<'a>(pub DescriptorEncoder<'a>);

impl Families<'_> {
    /// A counter (its samples get Prometheus's `_total` suffix).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) -> fmt::Result {
        let counter = ConstCounter::new(value);
        let m = self
            .0
            .encode_descriptor(name, help, None, counter.metric_type())?;
        counter.encode(m)
    }

    /// A gauge.
    pub fn gauge(&mut self, name: &str, help: &str, value: i64) -> fmt::Result {
        let gauge = ConstGauge::new(value);
        let m = self
            .0
            .encode_descriptor(name, help, None, gauge.metric_type())?;
        gauge.encode(m)
    }

    /// A counter with one label: a sample per `(label value, count)`.
    pub fn counter_with(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: &[(&str, u64)],
    ) -> fmt::Result {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Counter)?;
        for (value, count) in values {
            let labels = [(label, *value)];
            ConstCounter::new(*count).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }

    /// A gauge with one label: a sample per `(label value, value)`.
    pub fn gauge_with(
        &mut self,
        name: &str,
        help: &str,
        label: &str,
        values: &[(&str, i64)],
    ) -> fmt::Result {
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Gauge)?;
        for (value, v) in values {
            let labels = [(label, *value)];
            ConstGauge::new(*v).encode(m.encode_family(&labels)?)?;
        }
        Ok(())
    }
}

impl Families<'_> {
    /// A histogram of durations, in seconds (`_bucket{le}`, `_sum`,
    /// `_count`), with the library's fixed bounds.
    pub fn histogram(&mut self, name: &str, help: &str, h: &ferry_proto::Histogram) -> fmt::Result {
        // The encoder takes each bucket's own count, and adds them up.
        let mut below = 0;
        let mut buckets: Vec<(f64, u64)> = h
            .cumulative()
            .map(|(bound, total)| {
                let n = total - below;
                below = total;
                (bound.as_secs_f64(), n)
            })
            .collect();
        buckets.push((f64::INFINITY, h.count() - below));
        let mut m = self
            .0
            .encode_descriptor(name, help, None, MetricType::Histogram)?;
        m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
            h.sum().as_secs_f64(),
            h.count(),
            &buckets,
            None,
        )
    }
}

/// Saturating `u64` → `i64` for gauges.
pub(crate) fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A running metrics endpoint. Dropping it stops serving.
pub struct MetricsServer {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` (`flag` names where it came from, for the error)
    /// and serves `registry` at `/metrics` until dropped.
    pub fn start(addr: SocketAddr, flag: &str, registry: Registry) -> Result<Self, CliError> {
        let listener = crate::diode::bind_tcp(addr, flag)?;
        let addr = listener.local_addr().map_err(|e| CliError::Io {
            context: "cannot read the metrics listening address".into(),
            source: e,
        })?;
        let server = tiny_http::Server::from_listener(listener, None).map_err(|e| {
            CliError::Network(format!("cannot serve metrics on {addr} ({flag}): {e}"))
        })?;
        let server = Arc::new(server);
        let serving = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || serve(&serving, &registry))
            .map_err(|e| CliError::Io {
                context: "cannot start the metrics thread".into(),
                source: e,
            })?;
        info!(%addr, "serving Prometheus metrics at http://{addr}/metrics");
        Ok(Self {
            addr,
            server,
            thread: Some(thread),
        })
    }

    /// The address served on (with the port the system chose for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetricsServer")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Answers requests until unblocked: `GET /metrics` the scrape, `GET /` a
/// pointer to it, anything else 404 (405 for another method).
fn serve(server: &tiny_http::Server, registry: &Registry) {
    for request in server.incoming_requests() {
        let path = request.url().split('?').next().unwrap_or("").to_owned();
        let get = matches!(
            request.method(),
            tiny_http::Method::Get | tiny_http::Method::Head
        );
        let (status, content_type, body) = match (get, path.as_str()) {
            (true, "/metrics") => {
                let mut text = String::new();
                match prometheus_client::encoding::prometheus_text::encode(&mut text, registry) {
                    Ok(()) => (200, CONTENT_TYPE, text),
                    Err(e) => {
                        warn!(error = %e, "cannot encode the metrics");
                        (
                            500,
                            "text/plain; charset=utf-8",
                            "cannot encode the metrics\n".into(),
                        )
                    }
                }
            }
            (true, "/") => (
                200,
                "text/plain; charset=utf-8",
                "ferry: metrics at /metrics\n".into(),
            ),
            (true, _) => (
                404,
                "text/plain; charset=utf-8",
                "not found: try /metrics\n".into(),
            ),
            (false, _) => (405, "text/plain; charset=utf-8", "only GET\n".into()),
        };
        let header = tiny_http::Header::from_bytes(&b"Content-Type"[..], content_type.as_bytes())
            .expect("a valid header");
        let response = tiny_http::Response::from_string(body)
            .with_status_code(status)
            .with_header(header);
        if let Err(e) = request.respond(response) {
            debug!(error = %e, "a metrics client went away");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use super::*;

    /// An HTTP/1.0 GET of `path`: status line and body.
    pub(crate) fn get(addr: SocketAddr, path: &str) -> (String, String) {
        let mut stream = TcpStream::connect(addr).unwrap();
        write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        let (head, body) = response.split_once("\r\n\r\n").unwrap();
        (head.lines().next().unwrap().to_owned(), body.to_owned())
    }

    #[derive(Debug)]
    struct Figures;

    impl Collector for Figures {
        fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
            let mut f = Families(encoder);
            f.counter("things", "Things done", 7)?;
            f.gauge("open", "Open now", 3)?;
            f.counter_with("drops", "Dropped", "cause", &[("late", 1), ("invalid", 2)])
        }
    }

    #[test]
    fn a_scrape_shows_every_family_with_the_ferry_prefix() {
        let mut registry = registry();
        registry.register_collector(Box::new(Figures));
        let server =
            MetricsServer::start("127.0.0.1:0".parse().unwrap(), "--metrics", registry).unwrap();
        let (status, body) = get(server.addr(), "/metrics");
        assert!(status.contains("200"), "{status}");
        for line in [
            "# TYPE ferry_things_total counter",
            "ferry_things_total 7",
            "ferry_open 3",
            "ferry_drops_total{cause=\"late\"} 1",
            "ferry_drops_total{cause=\"invalid\"} 2",
            &format!(
                "ferry_build_info{{version=\"{}\"}} 1",
                env!("CARGO_PKG_VERSION")
            ),
        ] {
            assert!(body.lines().any(|l| l == line), "{line:?} not in:\n{body}");
        }
        let (status, _) = get(server.addr(), "/nothing");
        assert!(status.contains("404"), "{status}");
    }

    #[test]
    fn a_busy_address_is_refused_with_advice() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let err =
            MetricsServer::start(taken.local_addr().unwrap(), "--metrics", registry()).unwrap_err();
        assert!(err.to_string().contains("--metrics"), "{err}");
        assert!(err.to_string().contains("already in use"), "{err}");
    }

    #[test]
    fn dropping_the_server_frees_its_port() {
        let server =
            MetricsServer::start("127.0.0.1:0".parse().unwrap(), "--metrics", registry()).unwrap();
        let addr = server.addr();
        drop(server);
        // tiny_http's accept thread lets go of the socket as it wakes.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while std::net::TcpListener::bind(addr).is_err() {
            assert!(std::time::Instant::now() < deadline, "{addr} still held");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
}
