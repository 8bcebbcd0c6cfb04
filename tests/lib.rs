//! Shared harness of the cross-crate tests: one small interface over every
//! driver, so that each can play client or server against each other, and
//! [`on_every_driver!`], the one way to run a scenario on every driver
//! (`conformance.rs`, `streams.rs`, `manager.rs` use it).
//!
//! The async drivers share their handle types (`ferry_async`); what differs is
//! the runtime that runs the driver task. Their handles are driven here from
//! the test thread with a runtime-free `block_on`, while the driver runs on its
//! own runtime's threads.

#![warn(missing_docs, unreachable_pub)]

pub mod harness;
pub mod pending;
pub mod tapped;

/// The guide's Rust snippets, compiled and run as doc tests so that they stay
/// true.
#[doc = include_str!("../docs/guide.md")]
#[cfg(doctest)]
pub struct Guide;

/// The diode settings both sides of the diode fault tests use: heartbeats
/// every 100 ms, a sender paced slowly enough to be killed mid-session.
pub fn diode_fault_config() -> ferry_proto::diode::DiodeConfig {
    ferry_proto::diode::DiodeConfig {
        heartbeat: std::time::Duration::from_millis(100),
        bandwidth: 40_000_000,
        block_size: 64 * 1024,
        ..ferry_proto::diode::DiodeConfig::default()
    }
}

/// Scrapes a `--metrics` endpoint as Prometheus would (`GET /metrics`) and
/// gives the body; panics unless the answer is 200 with the text format.
pub fn scrape(addr: std::net::SocketAddr) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr).expect("the metrics endpoint accepts");
    write!(stream, "GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(
        head.starts_with("HTTP/1.") && head.contains(" 200 "),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    body.to_owned()
}

/// The value of the sample `series` (name and labels, as printed:
/// `ferry_x_total{cause="late"}`) in a scrape, if present.
pub fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok()).flatten()
    })
}
