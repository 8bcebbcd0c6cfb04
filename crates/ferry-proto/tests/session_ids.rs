//! Session ids: the id a listener issues, what each side writes in its
//! headers, Connects repeated after the listener answered, and shards.

use std::net::SocketAddr;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use ferry_proto::wire::packet::{FIXED_HEADER_LEN, Header, PacketKind};
use ferry_proto::{Config, Endpoint, Event, ServerId, Shard};

const CLIENT: &str = "192.0.2.1:1000";
const SERVER: &str = "192.0.2.2:2000";

fn addr(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// Every datagram `from` wants to send now, whole.
fn sent(from: &mut Endpoint, now: Instant) -> Vec<Vec<u8>> {
    let mut buf = Vec::new();
    std::iter::from_fn(|| {
        from.poll_transmit(now, &mut buf)
            .map(|t| buf[..t.size].to_vec())
    })
    .collect()
}

fn deliver(to: &mut Endpoint, now: Instant, from: &str, datagrams: &[Vec<u8>]) {
    for d in datagrams {
        to.handle_datagram(now, addr(from), BytesMut::from(&d[..]));
    }
}

fn header(datagram: &[u8]) -> Header {
    Header::decode(datagram).unwrap().0
}

fn events(endpoint: &mut Endpoint) -> Vec<Event> {
    std::iter::from_fn(|| endpoint.poll_event()).collect()
}

fn server(server_id: Option<ServerId>) -> Endpoint {
    let config = Config {
        accept_incoming: true,
        server_id,
        ..Config::default()
    };
    Endpoint::new(config, 2).unwrap()
}

#[test]
fn a_listener_with_a_server_id_issues_its_own_id_and_the_starter_writes_it() {
    let now = Instant::now();
    let server_id = ServerId::new(0, &[0x5e, 0x77]).unwrap();
    let (mut client, mut server) = (
        Endpoint::new(Config::default(), 1).unwrap(),
        server(Some(server_id)),
    );
    let id = client.connect(now, addr(SERVER)).unwrap();
    let connect = sent(&mut client, now);
    assert_eq!(
        header(&connect[0]).session,
        id,
        "a Connect carries the starter's id"
    );
    deliver(&mut server, now, CLIENT, &connect);
    let Some(Event::Connected { session: issued }) = events(&mut server).first().cloned() else {
        panic!("the server accepted")
    };
    assert_ne!(issued, id);
    assert!(server_id.issued(issued));
    let answer = sent(&mut server, now);
    assert!(
        answer.iter().all(|d| header(d).session == id),
        "the server writes the starter's id"
    );
    deliver(&mut client, now, SERVER, &answer);
    assert_eq!(events(&mut client), vec![Event::Connected { session: id }]);
    client.session(id).unwrap().send(&b"hello"[..]).unwrap();
    let data = sent(&mut client, now);
    assert!(!data.is_empty());
    assert!(
        data.iter().all(|d| header(d).session == issued),
        "the client writes the server's id"
    );
    deliver(&mut server, now, CLIENT, &data);
    assert_eq!(
        server.session(issued).unwrap().recv(),
        Some(Bytes::from_static(b"hello"))
    );
    assert_eq!(server.session_count(), 1);
    assert_eq!(server.stats().dropped_unknown_session, 0);
}

#[test]
fn a_listener_without_a_server_id_issues_the_starters_id_back() {
    let now = Instant::now();
    let (mut client, mut server) = (Endpoint::new(Config::default(), 1).unwrap(), server(None));
    let id = client.connect(now, addr(SERVER)).unwrap();
    deliver(&mut server, now, CLIENT, &sent(&mut client, now));
    assert_eq!(events(&mut server), vec![Event::Connected { session: id }]);
}

#[test]
fn a_connect_repeated_after_a_lost_answer_reaches_the_session_already_accepted() {
    let mut now = Instant::now();
    let server_id = ServerId::new(2, &[9]).unwrap();
    let (mut client, mut server) = (
        Endpoint::new(Config::default(), 1).unwrap(),
        server(Some(server_id)),
    );
    let id = client.connect(now, addr(SERVER)).unwrap();
    deliver(&mut server, now, CLIENT, &sent(&mut client, now));
    let lost = sent(&mut server, now);
    assert!(!lost.is_empty(), "the ConnectAck, lost on the way");
    now = client.poll_timeout().unwrap();
    client.handle_timeout(now);
    let again = sent(&mut client, now);
    assert_eq!(header(&again[0]).kind, PacketKind::Connect);
    deliver(&mut server, now, CLIENT, &again);
    assert_eq!(
        server.session_count(),
        1,
        "the same session, not a second one"
    );
    assert_eq!(server.stats().sessions_accepted, 1);
    let answer = sent(&mut server, now);
    assert!(
        answer
            .iter()
            .any(|d| header(d).kind == PacketKind::ConnectAck),
        "answered again"
    );
    deliver(&mut client, now, SERVER, &answer);
    assert_eq!(events(&mut client), vec![Event::Connected { session: id }]);
}

#[test]
fn a_late_connect_for_a_session_that_is_over_is_not_accepted_again() {
    let now = Instant::now();
    let server_id = ServerId::new(0, &[1, 2, 3]).unwrap();
    let (mut client, mut server) = (
        Endpoint::new(Config::default(), 1).unwrap(),
        server(Some(server_id)),
    );
    client.connect(now, addr(SERVER)).unwrap();
    let connect = sent(&mut client, now);
    deliver(&mut server, now, CLIENT, &connect);
    let Some(Event::Connected { session: issued }) = events(&mut server).first().cloned() else {
        panic!("accepted")
    };
    server.session(issued).unwrap().close(now, 0);
    // The server's close leaves; the session ends and is forgotten.
    let mut later = now;
    for _ in 0..100 {
        sent(&mut server, later);
        events(&mut server);
        match server.poll_timeout() {
            Some(t) if server.session_count() > 0 => {
                later = t;
                server.handle_timeout(later);
            }
            _ => break,
        }
    }
    assert_eq!(server.session_count(), 0);
    deliver(&mut server, later, CLIENT, &connect);
    assert_eq!(server.session_count(), 0, "not accepted again");
    assert_eq!(server.stats().sessions_accepted, 1);
    assert_eq!(server.stats().dropped_unknown_session, 1);
}

#[test]
fn every_id_a_shard_issues_names_it_and_the_peers_packets_say_so() {
    let now = Instant::now();
    let count = 4;
    for index in 0..count {
        let mut server = server(None);
        server.set_shard(Shard { index, count }).unwrap();
        let mut client = Endpoint::new(Config::default(), 10 + u64::from(index)).unwrap();
        let mut sharded_client = Endpoint::new(Config::default(), 20).unwrap();
        sharded_client.set_shard(Shard { index, count }).unwrap();
        for _ in 0..8 {
            let own = sharded_client.connect(now, addr(SERVER)).unwrap();
            assert_eq!(
                Shard::of(own, count),
                index,
                "a starter's own id names its shard"
            );
            let id = client.connect(now, addr(SERVER)).unwrap();
            let connect = sent(&mut client, now);
            assert_eq!(
                Shard::of_datagram(&connect[0], count),
                None,
                "a Connect stays where it lands"
            );
            deliver(&mut server, now, CLIENT, &connect);
            deliver(&mut client, now, SERVER, &sent(&mut server, now));
            client.session(id).unwrap().send(&b"x"[..]).unwrap();
            for d in sent(&mut client, now) {
                assert_eq!(Shard::of_datagram(&d, count), Some(index));
            }
        }
        assert_eq!(server.session_count(), 8);
        assert!(server.sessions().all(|id| Shard::of(id, count) == index));
    }
}

#[test]
fn a_shard_outside_its_count_is_refused() {
    let mut e = Endpoint::new(Config::default(), 1).unwrap();
    assert!(e.set_shard(Shard { index: 0, count: 0 }).is_err());
    assert!(e.set_shard(Shard { index: 4, count: 4 }).is_err());
    assert!(
        e.set_shard(Shard {
            index: 0,
            count: ferry_proto::MAX_SHARDS + 1
        })
        .is_err()
    );
    assert!(e.set_shard(Shard { index: 3, count: 4 }).is_ok());
    assert_eq!(e.shard(), Shard { index: 3, count: 4 });
    assert_eq!(
        Shard::of_datagram(&[1; FIXED_HEADER_LEN - 1], 4),
        None,
        "too short"
    );
}
