//! The standard scenario: one session, a list of messages, every byte checked.

use std::time::Duration;

use bytes::Bytes;
use ferry_proto::{CloseReason, Config, Event, SendError, SessionId, SessionStats};

use crate::link::{LinkConfig, LinkStats};
use crate::network::{Network, TransmitStats};

/// A client sends messages to a server over simulated links; the server checks
/// that each arrives intact, in order, exactly once.
#[derive(Debug, Clone)]
pub struct Transfer {
    seed: u64,
    forward: LinkConfig,
    backward: LinkConfig,
    client: Config,
    server: Config,
    batch: usize,
}

/// What a [`Transfer`] saw.
#[derive(Debug, Clone, Default)]
pub struct TransferReport {
    /// The handshake completed.
    pub connected: bool,
    /// Messages the client queued.
    pub expected: usize,
    /// Messages the server received that matched the expected message at their
    /// position.
    pub delivered: usize,
    /// Messages received that did not match (wrong bytes, wrong order, or extra).
    /// Any non-zero value is a bug.
    pub mismatched: usize,
    /// Payload bytes delivered intact.
    pub bytes: u64,
    /// Virtual time from `connect` to the last message delivered.
    pub elapsed: Duration,
    /// How the session ended, if it did (as the client saw it, else the server).
    pub closed: Option<CloseReason>,
    /// Times `send` reported the buffer full.
    pub blocked: u64,
    /// The client's session counters, last seen.
    pub client: SessionStats,
    /// The server's session counters, last seen.
    pub server: SessionStats,
    /// Client to server link counters.
    pub forward: LinkStats,
    /// Server to client link counters.
    pub backward: LinkStats,
    /// What the client's endpoint handed the network to send.
    pub transmits: TransmitStats,
}

impl TransferReport {
    /// Every message arrived intact, in order, once.
    pub fn complete(&self) -> bool {
        self.connected && self.delivered == self.expected && self.mismatched == 0
    }

    /// Delivered payload bits per second of virtual time.
    pub fn goodput_bps(&self) -> f64 {
        if self.elapsed.is_zero() {
            return 0.0;
        }
        self.bytes as f64 * 8.0 / self.elapsed.as_secs_f64()
    }
}

impl Transfer {
    /// A transfer over `link` in both directions, with default configurations.
    pub fn new(seed: u64, link: LinkConfig) -> Self {
        Self {
            seed,
            forward: link.clone(),
            backward: link,
            client: Config::default(),
            server: Config {
                accept_incoming: true,
                ..Config::default()
            },
            batch: 1,
        }
    }

    /// Has both endpoints write up to `datagrams` datagrams per transmit, as
    /// a driver with segmentation offload does (see
    /// [`Network::set_transmit_batch`]). Default 1.
    pub fn batch(mut self, datagrams: usize) -> Self {
        self.batch = datagrams;
        self
    }

    /// Uses a different link from server to client.
    pub fn backward(mut self, link: LinkConfig) -> Self {
        self.backward = link;
        self
    }

    /// Configures both endpoints (the server's `accept_incoming` is forced
    /// on): for instance to choose the congestion controller.
    pub fn config(self, config: Config) -> Self {
        self.client_config(config.clone()).server_config(config)
    }

    /// Configures the client endpoint.
    pub fn client_config(mut self, config: Config) -> Self {
        self.client = config;
        self
    }

    /// Configures the server endpoint (`accept_incoming` is forced on).
    pub fn server_config(mut self, config: Config) -> Self {
        self.server = Config {
            accept_incoming: true,
            ..config
        };
        self
    }

    /// Runs until every message arrived, the session closed, or `limit` of
    /// virtual time passed.
    ///
    /// # Panics
    ///
    /// Panics if a configuration is invalid.
    pub fn run<M: Into<Bytes>>(self, messages: Vec<M>, limit: Duration) -> TransferReport {
        let messages: Vec<Bytes> = messages.into_iter().map(Into::into).collect();
        let mut net = Network::new(self.seed);
        let client = net.add_node(self.client).expect("valid client config");
        let server = net.add_node(self.server).expect("valid server config");
        net.set_link(client, server, self.forward);
        net.set_link(server, client, self.backward);
        net.set_transmit_batch(self.batch);
        let start = net.now();
        let server_addr = net.addr(server);
        let id: SessionId = net
            .endpoint(client)
            .connect(start, server_addr)
            .expect("connect");

        let mut report = TransferReport {
            expected: messages.len(),
            ..TransferReport::default()
        };
        let mut next = 0;
        let mut blocked = false;
        let mut received = 0;
        net.run_until(limit, |net| {
            while let Some(event) = net.poll_event(client) {
                match event {
                    Event::SendReady { .. } => blocked = false,
                    Event::Closed { reason, .. } => report.closed = Some(reason),
                    _ => {}
                }
            }
            while let Some(event) = net.poll_event(server) {
                match event {
                    Event::Connected { .. } => report.connected = true,
                    Event::Closed { reason, .. } => {
                        report.closed.get_or_insert(reason);
                    }
                    _ => {}
                }
            }
            while let Some((_, data)) = net.poll_message(server) {
                if messages.get(received) == Some(&data) {
                    report.delivered += 1;
                    report.bytes += data.len() as u64;
                    report.elapsed = net.now() - start;
                } else {
                    report.mismatched += 1;
                }
                received += 1;
            }
            if let Some(mut s) = net.endpoint(client).session(id) {
                while !blocked && next < messages.len() {
                    match s.send(messages[next].clone()) {
                        Ok(()) => next += 1,
                        Err(SendError::Blocked) => {
                            blocked = true;
                            report.blocked += 1;
                        }
                        Err(e) => panic!("send failed: {e}"),
                    }
                }
                report.client = s.stats();
            }
            if let Some(s) = net.endpoint(server).session(id) {
                report.server = s.stats();
            }
            received >= messages.len() || report.closed.is_some()
        });
        report.forward = net.link_stats(client, server).cloned().unwrap_or_default();
        report.backward = net.link_stats(server, client).cloned().unwrap_or_default();
        report.transmits = net.transmit_stats(client).clone();
        report
    }
}
