//! [`MetricsServer`]: `GET /metrics` over HTTP, on a thread of its own
//! (`tiny_http`).

use std::fmt;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::JoinHandle;

use prometheus_client::registry::Registry;
use thiserror::Error;
use tracing::{debug, info, warn};

/// The content type of Prometheus's text format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Why the endpoint could not start.
#[derive(Debug, Error)]
pub enum MetricsError {
    /// The address could not be listened on; the message says what to do.
    #[error("cannot serve metrics on {addr}: {advice}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// What to do.
        advice: &'static str,
        /// The system's error.
        #[source]
        source: io::Error,
    },
    /// The HTTP server or its thread could not start.
    #[error("cannot serve metrics on {addr}: {message}")]
    Start {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        message: String,
    },
}

/// A running metrics endpoint. Dropping it stops serving.
pub struct MetricsServer {
    addr: SocketAddr,
    server: Arc<tiny_http::Server>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Listens on `addr` (port 0: one the system chooses, see
    /// [`addr`](Self::addr)) and serves `registry` at `/metrics` until
    /// dropped.
    pub fn start(addr: SocketAddr, registry: Registry) -> Result<Self, MetricsError> {
        let listener = TcpListener::bind(addr).map_err(|source| MetricsError::Bind {
            addr,
            advice: match source.kind() {
                io::ErrorKind::AddrInUse => {
                    "it is already in use: stop the program that holds it, or choose another port"
                }
                io::ErrorKind::AddrNotAvailable => {
                    "it is not an address of this host: use one of its addresses, or 0.0.0.0"
                }
                io::ErrorKind::PermissionDenied => {
                    "permission denied: use a port above 1023, or run with the needed privilege"
                }
                _ => "check the address",
            },
            source,
        })?;
        let start = |message: String| MetricsError::Start { addr, message };
        let addr = listener.local_addr().map_err(|e| start(e.to_string()))?;
        let server =
            tiny_http::Server::from_listener(listener, None).map_err(|e| start(e.to_string()))?;
        let server = Arc::new(server);
        let serving = Arc::clone(&server);
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || serve(&serving, &registry))
            .map_err(|e| start(format!("cannot start its thread: {e}")))?;
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

    use prometheus_client::collector::Collector;
    use prometheus_client::encoding::DescriptorEncoder;

    use super::*;
    use crate::{Families, registry};

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
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), registry).unwrap();
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
        let err = MetricsServer::start(taken.local_addr().unwrap(), registry()).unwrap_err();
        assert!(err.to_string().contains("already in use"), "{err}");
    }

    #[test]
    fn dropping_the_server_frees_its_port() {
        let server = MetricsServer::start("127.0.0.1:0".parse().unwrap(), registry()).unwrap();
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
