//! The WebSocket fallback's flags and `[session]` keys: a listener's
//! `--tcp-fallback` / `--tcp-fallback-listen ADDR` (`tcp_fallback`,
//! `tcp_fallback_listen`), a starter's `--fallback-after SECONDS` /
//! `--no-fallback` (`fallback_after`, in ms, 0: off).

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use ferry_tokio::{Endpoint, Session, Transport};

/// A listener's fallback flags (`receive`, `forward-server`, `perf server`).
#[derive(Debug, Clone, Default, Args)]
pub struct ListenerFallback {
    /// Also accept sessions over TCP, as WebSocket messages (path /ferry),
    /// on the UDP port number: starters whose UDP is blocked fall back to
    /// it (theirs with --fallback-after). Overrides `tcp_fallback`.
    #[arg(long)]
    pub tcp_fallback: bool,
    /// Accept the WebSocket fallback on this TCP address instead of the
    /// UDP port number (implies --tcp-fallback). Overrides
    /// `tcp_fallback_listen`.
    #[arg(long, value_name = "HOST:PORT")]
    pub tcp_fallback_listen: Option<SocketAddr>,
}

/// A starter's fallback flags (`send`, `forward`, `perf client`).
#[derive(Debug, Clone, Default, Args)]
pub struct StarterFallback {
    /// When the listener has not answered over UDP after this many seconds
    /// (fractions allowed), go on over TCP as WebSocket messages to the
    /// same address and port number (the listener needs --tcp-fallback).
    /// Default: UDP only (or `fallback_after`, in ms, of the file).
    #[arg(long, value_name = "SECONDS", value_parser = parse_after)]
    pub fallback_after: Option<Duration>,
    /// UDP only, whatever `fallback_after` of the file says.
    #[arg(long, conflicts_with = "fallback_after")]
    pub no_fallback: bool,
}

/// Parses `--fallback-after`: seconds, more than 0 and at most an hour.
fn parse_after(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds (e.g. 2, or 0.5)"))?;
    if !(secs > 0.0 && secs <= 3600.0) {
        return Err(format!("{s} s: give more than 0 and at most 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

impl ListenerFallback {
    /// Applies the flags over the file's settings.
    pub(crate) fn apply(&self, config: &mut ferry_tokio::FallbackConfig) {
        config.listen |= self.tcp_fallback;
        if let Some(addr) = self.tcp_fallback_listen {
            config.listen_addr = Some(addr);
        }
        if config.listen_addr.is_some() {
            config.listen = true;
        }
        config.after = None;
    }
}

impl StarterFallback {
    /// Applies the flags over the file's settings.
    pub(crate) fn apply(&self, config: &mut ferry_tokio::FallbackConfig) {
        config.listen = false;
        config.listen_addr = None;
        if let Some(after) = self.fallback_after {
            config.after = Some(after);
        }
        if self.no_fallback {
            config.after = None;
        }
    }
}

/// How a starter names the transport of its new session: `over UDP`, or
/// `over WebSocket/TCP (UDP got no answer in 2 s)`.
pub fn transport_note(session: &Session, after: Option<Duration>) -> String {
    match session.transport() {
        Transport::Udp => "over UDP".into(),
        Transport::WebSocket => format!(
            "over WebSocket/TCP (UDP got no answer in {} s)",
            after.map_or(0.0, |a| a.as_secs_f64())
        ),
    }
}

/// What a listener's first line adds about the fallback: nothing, or
/// `, WebSocket fallback on TCP ADDR`.
pub fn listener_fallback_note(endpoint: &Endpoint) -> String {
    endpoint.fallback_addr().map_or_else(String::new, |addr| {
        format!(", WebSocket fallback on TCP {addr}")
    })
}
