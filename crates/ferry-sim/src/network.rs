//! Endpoints joined by simulated links, advanced in virtual time.

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

/// The simulated wall clock at the start of every run (2027-01-15), in
/// seconds since the Unix epoch: what identity handshakes are dated from.
const VIRTUAL_EPOCH_SECS: u64 = 1_800_000_000;

use bytes::{Bytes, BytesMut};
use ferry_proto::{Config, ConfigError, Endpoint, Event, SessionId, StreamId};

use crate::balancer::{Backend, BalancePolicy, Balancer, BalancerId};
use crate::link::{Link, LinkConfig, LinkStats};

/// Index of a node in a [`Network`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub usize);

/// Index of a bottleneck link in a [`Network`], shared by the paths routed
/// through it (see [`Network::add_bottleneck`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BottleneckId(pub usize);

/// A link several paths cross: one queue, one rate, for all their datagrams.
#[derive(Debug)]
struct Bottleneck {
    link: Link,
    /// Where each datagram in the link goes, `(from, to)`, in the order they
    /// leave it: the link keeps order (no jitter, reordering or duplication),
    /// so the routes leave in the order their datagrams entered.
    routes: VecDeque<(usize, usize)>,
}

impl Bottleneck {
    /// A datagram of the path `route` enters the bottleneck at `now`.
    fn enter(&mut self, now: Instant, route: (usize, usize), datagram: Bytes) {
        let dropped = |s: &LinkStats| s.too_big + s.blackholed + s.lost + s.queue_dropped;
        let before = dropped(self.link.stats());
        self.link.send(now, datagram);
        if dropped(self.link.stats()) == before {
            self.routes.push_back(route);
        }
    }
}

/// What a node's endpoint handed the network to send: transmits (the
/// datagrams of one [`Endpoint::poll_transmit_batch`] call) and the datagrams
/// in them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransmitStats {
    /// Transmits taken from the endpoint.
    pub transmits: u64,
    /// Datagrams in them, each sent on its own over the links.
    pub datagrams: u64,
    /// Transmits that held two datagrams or more (a `segment_size`).
    pub batches: u64,
    /// Batches whose last datagram was shorter than the others.
    pub short_last: u64,
    /// The most datagrams one transmit held.
    pub largest_batch: usize,
}

#[derive(Debug)]
struct Node {
    endpoint: Endpoint,
    addr: SocketAddr,
    /// The address its datagrams seem to come from: a balancer's, for a
    /// backend behind one (direct server return).
    public: Option<SocketAddr>,
    transmits: TransmitStats,
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
    /// The address its datagrams seem to come from.
    fn source(&self) -> SocketAddr {
        self.public.unwrap_or(self.addr)
    }

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
    bottlenecks: Vec<Bottleneck>,
    /// The bottleneck each routed path `(from, to)` crosses after its own link.
    routes: BTreeMap<(usize, usize), usize>,
    by_addr: BTreeMap<SocketAddr, usize>,
    balancers: Vec<Balancer>,
    /// Each balancer's public address.
    vips: BTreeMap<SocketAddr, usize>,
    buf: Vec<u8>,
    /// Most datagrams asked of an endpoint per transmit.
    transmit_batch: usize,
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
            bottlenecks: Vec::new(),
            routes: BTreeMap::new(),
            by_addr: BTreeMap::new(),
            balancers: Vec::new(),
            vips: BTreeMap::new(),
            buf: Vec::with_capacity(65_536),
            transmit_batch: 1,
            steps: 0,
        }
    }

    /// Adds an endpoint with `config`. Its address is virtual (TEST-NET-1, never
    /// used on a real network).
    pub fn add_node(&mut self, config: Config) -> Result<NodeId, ConfigError> {
        let index = self.nodes.len();
        let seed = self.seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ (index as u64 + 1);
        let mut endpoint = Endpoint::new(config, seed)?;
        // A virtual wall clock, the same for every run: each node's clock
        // stands a few seconds apart, as real machines' do.
        endpoint.set_wall_clock(
            self.now,
            std::time::UNIX_EPOCH + Duration::from_secs(VIRTUAL_EPOCH_SECS + 7 * index as u64),
        );
        let addr = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(192, 0, 2, (index + 1) as u8)),
            4000 + index as u16,
        );
        self.nodes.push(Node {
            endpoint,
            addr,
            public: None,
            transmits: TransmitStats::default(),
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

    /// Adds a stateless load balancer with a public address of its own (in
    /// TEST-NET-2), picking each datagram's backend by `policy`. Datagrams
    /// sent to that address go to a backend over the sender's link to it; the
    /// backends' datagrams seem to come from the public address (direct server
    /// return), and the backend sees the client's real address.
    pub fn add_balancer(&mut self, policy: BalancePolicy) -> BalancerId {
        let index = self.balancers.len();
        let addr = SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(198, 51, 100, (index + 1) as u8)),
            443,
        );
        self.balancers.push(Balancer {
            addr,
            policy,
            backends: Vec::new(),
        });
        self.vips.insert(addr, index);
        BalancerId(index)
    }

    /// The public address of `balancer`.
    pub fn balancer_addr(&self, balancer: BalancerId) -> SocketAddr {
        self.balancers[balancer.0].addr
    }

    /// Puts `node` behind `balancer`, in service, with the server id its
    /// endpoint's configuration names (the balancer learns it, as an operator
    /// would configure it).
    pub fn add_backend(&mut self, balancer: BalancerId, node: NodeId) {
        let b = &mut self.balancers[balancer.0];
        self.nodes[node.0].public = Some(b.addr);
        b.backends.push(Backend {
            node,
            server_id: self.nodes[node.0].endpoint.config().server_id,
            in_service: true,
        });
    }

    /// Takes `node` out of `balancer`'s service (a server leaving the fleet)
    /// or back in: out of service, it gets no more datagrams.
    pub fn set_in_service(&mut self, balancer: BalancerId, node: NodeId, in_service: bool) {
        for b in &mut self.balancers[balancer.0].backends {
            if b.node == node {
                b.in_service = in_service;
            }
        }
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

    /// Adds a bottleneck: a link that the paths routed through it
    /// ([`Network::route_through`]) share, one queue and one rate for all their
    /// datagrams, as flows from different hosts share a router's outgoing link.
    ///
    /// A shared bottleneck keeps datagrams in order: its `config` may set a
    /// rate, a queue, a latency, loss and corruption, but no jitter,
    /// reordering or duplication (put those on the paths' own links).
    ///
    /// # Panics
    ///
    /// Panics if `config` sets jitter, reordering or duplication, or fails
    /// [`LinkConfig::validate`].
    pub fn add_bottleneck(&mut self, config: LinkConfig) -> BottleneckId {
        assert!(
            config.jitter.is_zero() && config.reorder == 0.0 && config.duplicate == 0.0,
            "a shared bottleneck keeps order: no jitter, reordering or duplication \
             (set them on the paths' own links)"
        );
        let index = self.bottlenecks.len();
        let seed = self.seed
            ^ 0x5bd1_e995_0000_0000
            ^ (index as u64 + 1).wrapping_mul(0xe703_7ed1_a0b4_28db);
        self.bottlenecks.push(Bottleneck {
            link: Link::new(config, seed),
            routes: VecDeque::new(),
        });
        BottleneckId(index)
    }

    /// Routes the datagrams from `from` to `to` through `bottleneck`: each
    /// crosses the path's own link (set with [`Network::set_link`] or
    /// [`Network::set_path`]; without one nothing gets through, as before),
    /// then the bottleneck, then arrives. The own link is where a path's
    /// extra latency goes, so that flows through one bottleneck can have
    /// different round trips. Paths not routed (the default) are unchanged.
    ///
    /// # Panics
    ///
    /// Panics if `bottleneck` is not one of this network's.
    pub fn route_through(&mut self, from: NodeId, to: NodeId, bottleneck: BottleneckId) {
        assert!(bottleneck.0 < self.bottlenecks.len(), "no such bottleneck");
        self.routes.insert((from.0, to.0), bottleneck.0);
    }

    /// Counters of a bottleneck: every datagram of every path routed through it.
    pub fn bottleneck_stats(&self, bottleneck: BottleneckId) -> &LinkStats {
        self.bottlenecks[bottleneck.0].link.stats()
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

    /// Has every endpoint write up to `datagrams` datagrams per transmit
    /// ([`Endpoint::poll_transmit_batch`]), as a driver with segmentation
    /// offload does; the network splits each transmit into its datagrams.
    /// The default, 1, takes one datagram at a time
    /// ([`Endpoint::poll_transmit`]).
    pub fn set_transmit_batch(&mut self, datagrams: usize) {
        self.transmit_batch = datagrams.max(1);
    }

    /// What the node's endpoint handed the network to send.
    pub fn transmit_stats(&self, node: NodeId) -> &TransmitStats {
        &self.nodes[node.0].transmits
    }

    /// Counters of the link from `from` to `to`.
    pub fn link_stats(&self, from: NodeId, to: NodeId) -> Option<&LinkStats> {
        self.links.get(&(from.0, to.0)).map(Link::stats)
    }

    /// When the next thing happens, if anything is scheduled.
    pub fn next_event_time(&self) -> Option<Instant> {
        let arrivals = self
            .links
            .values()
            .chain(self.bottlenecks.iter().map(|b| &b.link))
            .filter_map(Link::next_arrival);
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
        while let Some(t) =
            node.endpoint
                .poll_transmit_batch(now, &mut self.buf, self.transmit_batch)
        {
            let segment = t.segment_size.unwrap_or(t.size).max(1);
            let datagrams = self.buf[..t.size].chunks(segment);
            let stats = &mut node.transmits;
            stats.transmits += 1;
            stats.datagrams += datagrams.len() as u64;
            stats.largest_batch = stats.largest_batch.max(datagrams.len());
            if t.segment_size.is_some() {
                stats.batches += 1;
                if t.size % segment != 0 {
                    stats.short_last += 1;
                }
            }
            let to = self.by_addr.get(&t.destination).copied();
            let balancer = self.vips.get(&t.destination).map(|&b| &self.balancers[b]);
            for datagram in datagrams {
                let to = match balancer {
                    Some(b) => b.pick(node.addr, datagram).map(|n| n.0),
                    None => to,
                };
                if let Some(to) = to
                    && let Some(link) = self.links.get_mut(&(i, to))
                {
                    link.send(now, Bytes::copy_from_slice(datagram));
                }
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
            let source = self.nodes[from].source();
            let via = self.routes.get(&(from, to)).copied();
            while let Some(datagram) = link.pop_arrival(now) {
                match via {
                    Some(b) => self.bottlenecks[b].enter(now, (from, to), datagram),
                    None => self.nodes[to].endpoint.handle_datagram(
                        now,
                        source,
                        BytesMut::from(&datagram[..]),
                    ),
                }
            }
        }
        // After the own links: a datagram may leave its own link and the
        // bottleneck at the same instant (no rate, no latency).
        for bottleneck in &mut self.bottlenecks {
            while let Some(datagram) = bottleneck.link.pop_arrival(now) {
                let (from, to) = bottleneck
                    .routes
                    .pop_front()
                    .expect("a route for every datagram in the bottleneck");
                let source = self.nodes[from].source();
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

#[cfg(test)]
mod tests {
    use ferry_proto::SendError;

    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn server_config() -> Config {
        Config {
            accept_incoming: true,
            ..Config::default()
        }
    }

    /// Two clients, each with its own server, whose client → server paths
    /// (with one-way latencies `own`) cross one `bottleneck`; the way back
    /// is the own link only.
    struct Dumbbell {
        net: Network,
        clients: [NodeId; 2],
        servers: [NodeId; 2],
        bottleneck: BottleneckId,
        sessions: Vec<(NodeId, SessionId)>,
    }

    impl Dumbbell {
        fn new(seed: u64, own: [Duration; 2], bottleneck: LinkConfig) -> Self {
            let mut net = Network::new(seed);
            let clients = [0, 1].map(|_| net.add_node(Config::default()).unwrap());
            let servers = [0, 1].map(|_| net.add_node(server_config()).unwrap());
            let b = net.add_bottleneck(bottleneck);
            for i in 0..2 {
                let link = LinkConfig::default().latency(own[i]);
                net.set_path(clients[i], servers[i], link);
                net.route_through(clients[i], servers[i], b);
            }
            Self {
                net,
                clients,
                servers,
                bottleneck: b,
                sessions: Vec::new(),
            }
        }

        fn connect(&mut self) {
            for i in 0..2 {
                let (now, to) = (self.net.now(), self.net.addr(self.servers[i]));
                let id = self.net.endpoint(self.clients[i]).connect(now, to).unwrap();
                self.sessions.push((self.clients[i], id));
            }
        }

        /// Runs for `d`, every session's send buffer kept full; returns the
        /// bytes each server received.
        fn bulk(&mut self, d: Duration) -> [u64; 2] {
            let message = Bytes::from(vec![7u8; 16 << 10]);
            let mut received = [0u64; 2];
            let (sessions, servers) = (&self.sessions, self.servers);
            self.net.run_until(d, |net| {
                for &(node, id) in sessions {
                    if let Some(mut s) = net.endpoint(node).session(id) {
                        loop {
                            match s.send(message.clone()) {
                                Ok(()) => {}
                                Err(SendError::Blocked) => break,
                                Err(e) => panic!("send: {e}"),
                            }
                        }
                    }
                }
                for (i, &server) in servers.iter().enumerate() {
                    while let Some((_, m)) = net.poll_message(server) {
                        received[i] += m.len() as u64;
                    }
                }
                false
            });
            received
        }

        fn min_rtt(&mut self, i: usize) -> Duration {
            let (node, id) = self.sessions[i];
            self.net.endpoint(node).session(id).unwrap().stats().min_rtt
        }
    }

    #[test]
    fn each_path_through_a_bottleneck_keeps_its_own_round_trip() {
        let shared = LinkConfig::default().latency(5 * MS);
        let mut d = Dumbbell::new(1, [10 * MS, 40 * MS], shared);
        d.connect();
        d.bulk(Duration::from_secs(1));
        // Own link both ways, the bottleneck one way.
        let (a, b) = (d.min_rtt(0), d.min_rtt(1));
        assert!(a >= 25 * MS && a < 27 * MS, "{a:?}");
        assert!(b >= 85 * MS && b < 87 * MS, "{b:?}");
    }

    #[test]
    fn paths_through_a_bottleneck_share_its_rate_and_queue() {
        let rate = 8_000_000; // one byte per microsecond
        let shared = LinkConfig::default()
            .latency(5 * MS)
            .bandwidth(rate)
            .queue_limit(30_000);
        let mut d = Dumbbell::new(2, [10 * MS, 10 * MS], shared);
        d.connect();
        let secs = 3;
        let got = d.bulk(Duration::from_secs(secs));
        let stats = d.net.bottleneck_stats(d.bottleneck).clone();
        // Everything each own link delivered entered the bottleneck.
        let entered: u64 = (0..2)
            .map(|i| {
                d.net
                    .link_stats(d.clients[i], d.servers[i])
                    .unwrap()
                    .delivered
            })
            .sum();
        assert_eq!(stats.sent, entered);
        // Together, no more than the one rate (plus what sat in the queue).
        let capacity = rate / 8 * secs;
        assert!(stats.delivered_bytes <= capacity + 30_000, "{stats:?}");
        assert!(stats.delivered_bytes >= capacity * 8 / 10, "{stats:?}");
        assert!(
            stats.queue_dropped > 0,
            "the shared queue overflowed: {stats:?}"
        );
        assert!(got[0] > 0 && got[1] > 0, "{got:?}");
        assert!(got[0] + got[1] <= capacity, "{got:?}");
        // Every datagram reached its own server, from its own client.
        for &server in &d.servers {
            let e = d.net.endpoint(server).stats();
            assert_eq!(e.dropped_unknown_session, 0);
            assert_eq!(e.dropped_wrong_address, 0);
        }
    }

    #[test]
    fn a_shared_bottleneck_is_deterministic() {
        let run = || {
            let shared = LinkConfig::default()
                .bandwidth(4_000_000)
                .queue_limit(20_000)
                .random_loss(0.01);
            let mut d = Dumbbell::new(3, [5 * MS, 20 * MS], shared);
            d.connect();
            let got = d.bulk(Duration::from_secs(2));
            (got, d.net.bottleneck_stats(d.bottleneck).clone())
        };
        assert_eq!(run(), run());
    }

    /// Routing through a bottleneck with no rate, latency or loss changes
    /// nothing: same arrivals, same run.
    #[test]
    fn a_transparent_bottleneck_changes_nothing() {
        let run = |routed: bool| {
            let mut net = Network::new(4);
            let client = net.add_node(Config::default()).unwrap();
            let server = net.add_node(server_config()).unwrap();
            let link = LinkConfig::default()
                .latency(10 * MS)
                .jitter(MS)
                .random_loss(0.02)
                .bandwidth(20_000_000);
            net.set_path(client, server, link);
            if routed {
                let b = net.add_bottleneck(LinkConfig::default());
                net.route_through(client, server, b);
                net.route_through(server, client, b);
            }
            let (now, to) = (net.now(), net.addr(server));
            let id = net.endpoint(client).connect(now, to).unwrap();
            let mut received = 0u64;
            net.run_until(Duration::from_secs(2), |net| {
                if let Some(mut s) = net.endpoint(client).session(id) {
                    while s.send(vec![1u8; 10_000]).is_ok() {}
                }
                while let Some((_, m)) = net.poll_message(server) {
                    received += m.len() as u64;
                }
                false
            });
            let stats = net.endpoint(client).session(id).unwrap().stats();
            (received, stats.packets_sent, stats.lost, net.steps())
        };
        let (plain, routed) = (run(false), run(true));
        assert!(plain.0 > 1_000_000, "{plain:?}");
        assert_eq!(plain, routed);
    }

    #[test]
    #[should_panic(expected = "keeps order")]
    fn a_bottleneck_that_would_reorder_is_refused() {
        Network::new(5).add_bottleneck(LinkConfig::default().jitter(MS));
    }
}
