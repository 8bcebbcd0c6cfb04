//! Helpers shared by the scenario tests.
#![allow(dead_code, unreachable_pub)]

use std::time::Duration;

use ferry_proto::{CloseReason, Config, Event, SessionId};
use ferry_sim::{LinkConfig, Network, NodeId};

/// A client and a server joined by `link` in both directions.
pub struct Pair {
    pub net: Network,
    pub client: NodeId,
    pub server: NodeId,
}

impl Pair {
    pub fn new(seed: u64, link: LinkConfig) -> Self {
        Self::with_configs(seed, link, Config::default(), Config::default())
    }

    pub fn with_configs(seed: u64, link: LinkConfig, client: Config, server: Config) -> Self {
        let mut net = Network::new(seed);
        let client = net.add_node(client).unwrap();
        let server = net
            .add_node(Config {
                accept_incoming: true,
                ..server
            })
            .unwrap();
        net.set_path(client, server, link);
        Self {
            net,
            client,
            server,
        }
    }

    pub fn connect(&mut self) -> SessionId {
        let now = self.net.now();
        let addr = self.net.addr(self.server);
        self.net.endpoint(self.client).connect(now, addr).unwrap()
    }

    /// Connects and runs until both sides report `Connected`.
    pub fn establish(&mut self) -> SessionId {
        let id = self.connect();
        let (client, server) = (self.client, self.server);
        let mut seen = (false, false);
        let ok = self.net.run_until(Duration::from_secs(30), |net| {
            seen.0 |= drain(net, client)
                .iter()
                .any(|e| matches!(e, Event::Connected { .. }));
            seen.1 |= drain(net, server)
                .iter()
                .any(|e| matches!(e, Event::Connected { .. }));
            seen.0 && seen.1
        });
        assert!(ok, "handshake did not complete");
        id
    }
}

/// All events a node has received so far.
pub fn drain(net: &mut Network, node: NodeId) -> Vec<Event> {
    std::iter::from_fn(|| net.poll_event(node)).collect()
}

/// Queues `count` copies of `message` on session `id` of `node`.
pub fn send_copies(net: &mut Network, node: NodeId, id: SessionId, message: &[u8], count: usize) {
    for _ in 0..count {
        net.endpoint(node)
            .session(id)
            .unwrap()
            .send(message.to_vec())
            .unwrap();
    }
}

/// Runs until `node` has received `count` messages (or `limit` passes);
/// returns how many arrived.
pub fn receive_messages(net: &mut Network, node: NodeId, count: usize, limit: Duration) -> usize {
    let mut received = 0;
    net.run_until(limit, |net| {
        received += std::iter::from_fn(|| net.poll_message(node)).count();
        received >= count
    });
    received
}

/// The close reason in a list of events, if any.
pub fn closed(events: &[Event]) -> Option<CloseReason> {
    events.iter().find_map(|e| match e {
        Event::Closed { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

/// Deterministic message contents of mixed sizes: mostly small, some spanning
/// many packets, a few up to `max`.
pub fn mixed_messages(seed: u64, total: usize, max: usize) -> Vec<Vec<u8>> {
    let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut out = Vec::new();
    let mut sum = 0;
    while sum < total {
        let size = match next() % 10 {
            0..=5 => (next() % 1200) as usize,
            6..=8 => (next() % 64_000) as usize,
            _ => (next() % max as u64) as usize,
        };
        let fill = next() as u8;
        let data: Vec<u8> = (0..size).map(|i| fill.wrapping_add(i as u8)).collect();
        sum += size;
        out.push(data);
    }
    out
}
