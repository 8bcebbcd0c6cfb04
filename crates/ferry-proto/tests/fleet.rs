//! A fleet of servers behind one stateless load balancer, in the simulator:
//! session ids that carry a server id keep every session on its server when
//! clients change address, and a server leaving ends only its own sessions.

mod common;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use bytes::Bytes;
use ferry_proto::{CloseReason, Config, Event, PreSharedKey, ServerId, SessionId};
use ferry_sim::{BalancePolicy, BalancerId, LinkConfig, Network, NodeId};

const SERVERS: usize = 3;
const CLIENTS: usize = 12;
const MESSAGES: usize = 40;
const SIZE: usize = 3000;

/// Migration needs a key: only an authenticated packet may move a session.
fn keyed(config: Config) -> Config {
    Config {
        psk: Some(PreSharedKey::from_bytes([0x42; 32])),
        ..config
    }
}

struct Fleet {
    net: Network,
    balancer: BalancerId,
    servers: Vec<(NodeId, ServerId)>,
    clients: Vec<NodeId>,
    /// Each client's session id (the client's own id for it).
    sessions: Vec<SessionId>,
}

impl Fleet {
    /// Three servers with server ids behind a balancer of `policy`, twelve
    /// clients, each path 10 ms with 1% loss; every client connects.
    fn new(seed: u64, policy: BalancePolicy) -> Self {
        let mut net = Network::new(seed);
        let balancer = net.add_balancer(policy);
        let servers: Vec<_> = (0..SERVERS)
            .map(|i| {
                let id = ServerId::new(1, &[0xf0, i as u8 + 1]).unwrap();
                let config = keyed(Config {
                    accept_incoming: true,
                    server_id: Some(id),
                    ..Config::default()
                });
                let node = net.add_node(config).unwrap();
                net.add_backend(balancer, node);
                (node, id)
            })
            .collect();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| net.add_node(keyed(Config::default())).unwrap())
            .collect();
        let link = LinkConfig::default()
            .latency(Duration::from_millis(10))
            .random_loss(0.01);
        for &c in &clients {
            for &(s, _) in &servers {
                net.set_path(c, s, link.clone());
            }
        }
        let vip = net.balancer_addr(balancer);
        let now = net.now();
        let sessions = clients
            .iter()
            .map(|&c| net.endpoint(c).connect(now, vip).unwrap())
            .collect();
        Self {
            net,
            balancer,
            servers,
            clients,
            sessions,
        }
    }

    /// Every client queues `MESSAGES` messages, each naming its client.
    fn send(&mut self) {
        for (i, (&c, &id)) in self.clients.iter().zip(&self.sessions).enumerate() {
            let mut s = self.net.endpoint(c).session(id).unwrap();
            for _ in 0..MESSAGES {
                s.send(Bytes::from(vec![i as u8; SIZE])).unwrap();
            }
        }
    }

    /// Runs until the servers took `want` messages per client (or `limit`
    /// passes); returns, per server, the clients whose messages it took and
    /// how many.
    fn collect(&mut self, limit: Duration, want: usize) -> Vec<BTreeMap<u8, usize>> {
        let mut got = vec![BTreeMap::new(); SERVERS];
        let servers: Vec<_> = self.servers.iter().map(|s| s.0).collect();
        self.net.run_until(limit, |net| {
            for (k, &s) in servers.iter().enumerate() {
                while let Some((_, m)) = net.poll_message(s) {
                    assert_eq!(m.len(), SIZE);
                    *got[k].entry(m[0]).or_insert(0) += 1;
                }
            }
            let total: usize = got.iter().flat_map(|g| g.values()).sum();
            total == want * CLIENTS
        });
        got
    }

    /// Every client moves to a new port, as a NAT rebinding does.
    fn rebind_clients(&mut self) {
        for (i, &c) in self.clients.iter().enumerate() {
            self.net.rebind(c, 20_000 + i as u16);
        }
    }

    /// The ids each server holds.
    fn server_sessions(&mut self, k: usize) -> Vec<SessionId> {
        let node = self.servers[k].0;
        self.net.endpoint(node).sessions().collect()
    }
}

#[test]
fn sessions_stay_on_their_servers_when_clients_change_address() {
    let mut fleet = Fleet::new(11, BalancePolicy::SessionId);
    fleet.send();
    fleet.net.run_for(Duration::from_millis(60));
    fleet.rebind_clients();
    let got = fleet.collect(Duration::from_secs(60), MESSAGES);
    // Each client's messages all reached one server, whole.
    let mut placed = HashMap::new();
    for (k, per_client) in got.iter().enumerate() {
        for (&client, &n) in per_client {
            assert_eq!(n, MESSAGES, "client {client} on server {k}");
            assert!(placed.insert(client, k).is_none(), "client {client} split");
        }
    }
    assert_eq!(placed.len(), CLIENTS, "every client's messages arrived");
    let used: HashSet<_> = placed.values().collect();
    assert!(used.len() > 1, "the connects were spread: {placed:?}");
    for k in 0..SERVERS {
        let (node, server_id) = fleet.servers[k];
        let ids = fleet.server_sessions(k);
        for &id in &ids {
            assert!(server_id.issued(id), "{id} on server {k} carries its id");
            let s = fleet.net.endpoint(node).session(id).unwrap();
            assert_eq!(s.stats().migrations, 1, "{id} followed its client");
        }
        let stats = fleet.net.endpoint(node).stats();
        assert_eq!(
            stats.dropped_unknown_session, 0,
            "server {k} never got another server's packet"
        );
    }
    // The clients write the ids their servers issued, not their own.
    for (&c, &id) in fleet.clients.iter().zip(&fleet.sessions) {
        assert!(fleet.net.endpoint(c).session(id).is_some());
        assert!(fleet.servers.iter().all(|(_, s)| !s.issued(id)));
    }
}

#[test]
fn a_balancer_hashing_source_addresses_loses_sessions_when_clients_move() {
    // The control: the same fleet behind a balancer that hashes the source
    // address. After the move most clients land on a server that does not
    // know their session.
    let mut fleet = Fleet::new(11, BalancePolicy::SourceAddress);
    fleet.send();
    fleet.net.run_for(Duration::from_millis(60));
    fleet.rebind_clients();
    let got = fleet.collect(Duration::from_secs(20), MESSAGES);
    let total: usize = got.iter().flat_map(|g| g.values()).sum();
    assert!(total < MESSAGES * CLIENTS, "some transfers stalled");
    let unknown: u64 = (0..SERVERS)
        .map(|k| {
            let node = fleet.servers[k].0;
            fleet.net.endpoint(node).stats().dropped_unknown_session
        })
        .sum();
    assert!(unknown > 0, "packets reached servers without their session");
}

#[test]
fn a_server_leaving_ends_only_its_own_sessions_and_new_ones_go_elsewhere() {
    let mut fleet = Fleet::new(12, BalancePolicy::SessionId);
    fleet.send();
    let got = fleet.collect(Duration::from_secs(60), MESSAGES);
    let on_first: HashSet<u8> = got[0].keys().copied().collect();
    assert!(!on_first.is_empty(), "server 0 holds sessions: {got:?}");
    let (gone, _) = fleet.servers[0];
    let balancer = fleet.balancer;
    fleet.net.set_in_service(balancer, gone, false);
    // Everyone sends again; the clients of the server that left get nowhere
    // (whichever server gets their packets drops them) and their sessions
    // end by keep-alive; every other session goes on.
    fleet.send();
    let again = fleet.collect(Duration::from_secs(20), MESSAGES);
    assert!(
        again[0].is_empty(),
        "nothing reaches a server out of service"
    );
    let others: usize = again[1..].iter().flat_map(|g| g.values()).sum();
    assert_eq!(others, (CLIENTS - on_first.len()) * MESSAGES);
    let mut closed = HashSet::new();
    let clients = fleet.clients.clone();
    fleet.net.run_until(Duration::from_secs(120), |net| {
        for (i, &c) in clients.iter().enumerate() {
            while let Some(e) = net.poll_event(c) {
                if let Event::Closed { reason, .. } = e {
                    assert_eq!(reason, CloseReason::Timeout, "client {i}");
                    closed.insert(i as u8);
                }
            }
        }
        closed == on_first
    });
    assert_eq!(
        closed, on_first,
        "exactly the clients of the server that left"
    );
    // Those clients connect again, and land on the servers still in service.
    let vip = fleet.net.balancer_addr(balancer);
    let now = fleet.net.now();
    for &i in &on_first {
        let c = fleet.clients[usize::from(i)];
        fleet.sessions[usize::from(i)] = fleet.net.endpoint(c).connect(now, vip).unwrap();
        let mut s = fleet
            .net
            .endpoint(c)
            .session(fleet.sessions[usize::from(i)])
            .unwrap();
        s.send(Bytes::from(vec![i; SIZE])).unwrap();
    }
    let mut back = 0;
    let live: Vec<_> = fleet.servers[1..].iter().map(|s| s.0).collect();
    fleet.net.run_until(Duration::from_secs(30), |net| {
        for &s in &live {
            while let Some((_, m)) = net.poll_message(s) {
                assert!(on_first.contains(&m[0]));
                back += 1;
            }
        }
        back == on_first.len()
    });
    assert_eq!(back, on_first.len(), "reconnected clients are served");
}
