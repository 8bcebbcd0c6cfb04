//! Endpoints joined by simulated links, advanced in virtual time.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ferry_proto::{Config, ConfigError, Endpoint, Event, SessionId, StreamId};

use crate::link::{Link, LinkConfig, LinkStats};

/// Index of a node in a [`Network`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

#[derive(Debug)]
struct Node {
    endpoint: Endpoint,
    addr: SocketAddr,
    events: VecDeque<Event>,
    /// Messages the simulated application took from its sessions' stream 0.
    messages: VecDeque<(SessionId, Bytes)>,
    /// Messages it took from other streams.
    stream_messages: VecDeque<(SessionId, StreamId, Bytes)>,
    /// Whether the simulated application takes events and messages as they
    /// come. When it does not, messages stay in the endpoint and hold its
    /// receive window.
    reading: bool,
}

impl Node {
    /// Takes every event, and every message of every readable session.
    fn read(&mut self) {
        while let Some(event) = self.endpoint.poll_event() {
            if let Event::Readable { session } = event
                && let Some(mut s) = self.endpoint.session(session)
            {
                while let Some(data) = s.recv() {
                    self.messages.push_back((session, data));
                }
            }
            if let Event::StreamReadable { session, stream } = event
                && let Some(mut s) = self.endpoint.session(session)
            {
                while let Some(data) = s.recv_on(stream) {
                    self.stream_messages.push_back((session, stream, data));
                }
            }
            self.events.push_back(event);
        }
    }
}

/// Endpoints, the links between them, and a virtual clock.
///
/// Each step advances the clock to the next thing that happens (a datagram
/// arriving or an endpoint timer expiring), delivers and runs everything due
/// then, and sends whatever the endpoints want to send.
#[derive(Debug)]
pub struct Network {
    seed: u64,
    start: Instant,
    now: Instant,
    nodes: Vec<Node>,
    links: BTreeMap<(usize, usize), Link>,
    by_addr: BTreeMap<SocketAddr, usize>,
    buf: Vec<u8>,
    steps: u64,
}

impl Network {
    /// An empty network whose randomness all derives from `seed`.
    pub fn new(seed: u64) -> Self {
        // The only clock read: an arbitrary origin. Everything after is offsets.
        let start = Instant::now();
        Self {
            seed,
            start,
            now: start,
            nodes: Vec::new(),
            links: BTreeMap::new(),
            by_addr: BTreeMap::new(),
            buf: Vec::with_capacity(65_536),
            steps: 0,
        }
    }

    /// Adds an endpoint with `config`. Its address is virtual (TEST-NET-1, never
    /// used on a real network).
    pub fn add_node(&mut self, config: Config) -> Result<NodeId, ConfigError> {
        let index = self.nodes.len();
        let seed = self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (index as u64 + 1);
        let endpoint = Endpoint::new(config, seed)?;
        let addr = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, (index + 1) as u8)),
            4000 + index as u16,
        );
        self.nodes.push(Node {
            endpoint,
            addr,
            events: VecDeque::new(),
            messages: VecDeque::new(),
            stream_messages: VecDeque::new(),
            reading: true,
        });
        self.by_addr.insert(addr, index);
        Ok(NodeId(index))
    }

    /// Moves `node` to a new port, as a NAT rebinding or a change of network
    /// does: from now on its datagrams come from the new address, and
    /// datagrams sent to the old one are lost. Returns the new address.
    pub fn rebind(&mut self, node: NodeId, port: u16) -> SocketAddr {
        let old = self.nodes[node.0].addr;
        let new = SocketAddr::new(old.ip(), port);
        self.by_addr.remove(&old);
        self.by_addr.insert(new, node.0);
        self.nodes[node.0].addr = new;
        new
    }

    /// Sets the link from `from` to `to` (one direction).
    pub fn set_link(&mut self, from: NodeId, to: NodeId, config: LinkConfig) {
        let n = self.links.len() as u64;
        let seed = self.seed
            ^ ((from.0 as u64) << 32 | to.0 as u64).wrapping_mul(0xa076_1d64_78bd_642f)
            ^ n;
        self.links.insert((from.0, to.0), Link::new(config, seed));
    }

    /// Sets both directions between `a` and `b` to the same configuration.
    pub fn set_path(&mut self, a: NodeId, b: NodeId, config: LinkConfig) {
        self.set_link(a, b, config.clone());
        self.set_link(b, a, config);
    }

    /// Changes the conditions of the link from `from` to `to`; datagrams already
    /// in flight on it arrive as scheduled.
    pub fn change_link(&mut self, from: NodeId, to: NodeId, config: LinkConfig) {
        match self.links.get_mut(&(from.0, to.0)) {
            Some(link) => link.set_config(config),
            None => self.set_link(from, to, config),
        }
    }

    /// The virtual time now.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Virtual time elapsed since the network was created.
    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }

    /// Steps taken so far.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The node's virtual address.
    pub fn addr(&self, node: NodeId) -> SocketAddr {
        self.nodes[node.0].addr
    }

    /// The node's endpoint, to issue commands or read state. Anything it wants
    /// to send leaves at the next step.
    pub fn endpoint(&mut self, node: NodeId) -> &mut Endpoint {
        &mut self.nodes[node.0].endpoint
    }

    /// The next event the node's application received, if any.
    pub fn poll_event(&mut self, node: NodeId) -> Option<Event> {
        self.nodes[node.0].events.pop_front()
    }

    /// The next message the node's application took from one of its sessions
    /// (on [`Event::Readable`]), if any.
    pub fn poll_message(&mut self, node: NodeId) -> Option<(SessionId, Bytes)> {
        self.nodes[node.0].messages.pop_front()
    }

    /// The next message the application at `node` took from a stream other
    /// than stream 0, if it is reading.
    pub fn poll_stream_message(&mut self, node: NodeId) -> Option<(SessionId, StreamId, Bytes)> {
        self.nodes[node.0].stream_messages.pop_front()
    }

    /// Whether the node's application takes events and messages as they come
    /// (the default). A node that does not read lets delivered messages pile up
    /// in its endpoint, against its receive window.
    pub fn set_reading(&mut self, node: NodeId, reading: bool) {
        self.nodes[node.0].reading = reading;
    }

    /// Counters of the link from `from` to `to`.
    pub fn link_stats(&self, from: NodeId, to: NodeId) -> Option<&LinkStats> {
        self.links.get(&(from.0, to.0)).map(Link::stats)
    }

    /// When the next thing happens, if anything is scheduled.
    pub fn next_event_time(&self) -> Option<Instant> {
        let arrivals = self.links.values().filter_map(Link::next_arrival);
        let timers = self.nodes.iter().filter_map(|n| n.endpoint.poll_timeout());
        arrivals.chain(timers).min()
    }

    /// Sends what every endpoint has to send and collects events, without
    /// advancing time.
    pub fn flush(&mut self) {
        for i in 0..self.nodes.len() {
            self.flush_node(i);
        }
    }

    fn flush_node(&mut self, i: usize) {
        let now = self.now;
        let node = &mut self.nodes[i];
        // Events first: taking messages frees credit, and the ack that announces
        // it should leave in this same flush.
        if node.reading {
            node.read();
        }
        while let Some(t) = node.endpoint.poll_transmit(now, &mut self.buf) {
            let datagram = Bytes::copy_from_slice(&self.buf[..t.size]);
            if let Some(&to) = self.by_addr.get(&t.destination)
                && let Some(link) = self.links.get_mut(&(i, to))
            {
                link.send(now, datagram);
            }
        }
        if node.reading {
            node.read();
        }
    }

    /// Advances to the next instant at which something happens and runs it.
    /// Returns `false` when nothing is scheduled: the network is idle forever.
    pub fn step(&mut self) -> bool {
        self.flush();
        let Some(next) = self.next_event_time() else {
            return false;
        };
        self.now = self.now.max(next);
        let now = self.now;
        self.steps += 1;
        for (&(from, to), link) in self.links.iter_mut() {
            let source = self.nodes[from].addr;
            while let Some(datagram) = link.pop_arrival(now) {
                self.nodes[to]
                    .endpoint
                    .handle_datagram(now, source, BytesMut::from(&datagram[..]));
            }
        }
        for node in &mut self.nodes {
            if node.endpoint.poll_timeout().is_some_and(|t| t <= now) {
                node.endpoint.handle_timeout(now);
            }
        }
        self.flush();
        true
    }

    /// Steps until `done` returns true (checked before every step) or `limit` of
    /// virtual time has passed since the call. Returns whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&mut Self) -> bool) -> bool {
        let deadline = self.now + limit;
        loop {
            self.flush();
            if done(self) {
                return true;
            }
            match self.next_event_time() {
                Some(t) if t <= deadline => {
                    self.step();
                }
                _ => {
                    self.now = self.now.max(deadline);
                    return done(self);
                }
            }
        }
    }

    /// Runs for `duration` of virtual time.
    pub fn run_for(&mut self, duration: Duration) {
        self.run_until(duration, |_| false);
    }
}
