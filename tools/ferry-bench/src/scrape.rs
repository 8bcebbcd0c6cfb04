//! The bulk suite's scraped row: while the transfer runs, each side serves
//! its endpoint's Prometheus metrics (`ferry-metrics`, as `ferry receive
//! --metrics` does) and a thread of the same process scrapes them over
//! HTTP every [`EVERY`] — a hundred and fifty times Prometheus's usual 15 s —
//! so that the row beside the plain one shows what scraping costs.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use ferry_metrics::{EndpointCollector, MetricsServer, registry};

/// How often the scraper scrapes.
pub(crate) const EVERY: Duration = Duration::from_millis(100);

/// A metrics endpoint and the thread scraping it.
pub(crate) struct Scraper {
    _server: MetricsServer,
    stop: Arc<AtomicBool>,
    scrapes: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

impl Scraper {
    /// Serves `endpoint`'s figures on a free loopback port and starts
    /// scraping them.
    pub(crate) fn start(endpoint: &ferry_async::Endpoint) -> Result<Self, String> {
        let mut registry = registry();
        registry.register_collector(Box::new(EndpointCollector(endpoint.clone())));
        let server = MetricsServer::start("127.0.0.1:0".parse().expect("address"), registry)
            .map_err(|e| e.to_string())?;
        let addr = server.addr();
        let stop = Arc::new(AtomicBool::new(false));
        let scrapes = Arc::new(AtomicU64::new(0));
        let (flag, count) = (stop.clone(), scrapes.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::SeqCst) {
                if let Ok(mut s) = TcpStream::connect(addr) {
                    let mut body = Vec::new();
                    if write!(s, "GET /metrics HTTP/1.0\r\n\r\n").is_ok()
                        && s.read_to_end(&mut body).is_ok()
                        && body.windows(18).any(|w| w == b"ferry_session_byte")
                    {
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
                std::thread::sleep(EVERY);
            }
        });
        Ok(Self {
            _server: server,
            stop,
            scrapes,
            thread: Some(thread),
        })
    }

    /// Stops scraping; the scrapes that returned the endpoint's figures.
    pub(crate) fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.scrapes.load(Ordering::Relaxed)
    }
}
