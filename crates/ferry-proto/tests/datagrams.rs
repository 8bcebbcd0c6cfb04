//! Direct (unreliable) datagrams: delivered or lost, never retransmitted.

mod common;

use std::time::Duration;

use common::{Pair, drain};
use ferry_proto::{DatagramError, Event};
use ferry_sim::LinkConfig;

#[test]
fn datagrams_are_lost_not_retransmitted() {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(5))
        .random_loss(0.1);
    let mut pair = Pair::new(1, link);
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    let mut got = Vec::new();
    for round in 0..100u32 {
        for i in 0..10u32 {
            let n = round * 10 + i;
            pair.net
                .endpoint(client)
                .session(id)
                .unwrap()
                .send_datagram(n.to_be_bytes().to_vec())
                .unwrap();
        }
        pair.net.run_for(Duration::from_millis(20));
        for e in drain(&mut pair.net, server) {
            if let Event::Datagram { data, .. } = e {
                got.push(u32::from_be_bytes(data[..].try_into().unwrap()));
            }
        }
    }
    pair.net.run_for(Duration::from_secs(1));
    let stats = pair.net.endpoint(client).session(id).unwrap().stats();
    assert_eq!(stats.datagrams_sent, 1000);
    assert_eq!(stats.retransmitted, 0);
    // About 10% lost; none twice.
    assert!((850..=950).contains(&got.len()), "{} delivered", got.len());
    let mut dedup = got.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), got.len());
}

#[test]
fn datagram_size_and_state_are_checked() {
    let mut pair = Pair::new(2, LinkConfig::default());
    let id = pair.connect();
    let mut s = pair.net.endpoint(pair.client).session(id).unwrap();
    assert_eq!(s.send_datagram(vec![1]), Err(DatagramError::NotConnected));
    drop(s);
    let id = pair.establish();
    let mut s = pair.net.endpoint(pair.client).session(id).unwrap();
    let max = s.max_datagram_size();
    assert!(max > 1100 && max < 1200, "{max}");
    assert_eq!(
        s.send_datagram(vec![0; max + 1]),
        Err(DatagramError::TooLarge { size: max + 1, max })
    );
    s.send_datagram(vec![0; max]).unwrap();
}

#[test]
fn messages_and_datagrams_share_a_session() {
    let mut pair = Pair::new(3, LinkConfig::default().latency(Duration::from_millis(5)));
    let id = pair.establish();
    let (client, server) = (pair.client, pair.server);
    {
        let mut s = pair.net.endpoint(client).session(id).unwrap();
        s.send(vec![1u8; 100_000]).unwrap();
        s.send_datagram(&b"ping"[..]).unwrap();
        s.send(vec![2u8; 10]).unwrap();
    }
    pair.net.run_for(Duration::from_secs(1));
    let events = drain(&mut pair.net, server);
    let messages: Vec<_> = std::iter::from_fn(|| pair.net.poll_message(server))
        .map(|(_, data)| data.len())
        .collect();
    assert_eq!(messages, vec![100_000, 10]);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Datagram { data, .. } if &data[..] == b"ping"))
    );
}
