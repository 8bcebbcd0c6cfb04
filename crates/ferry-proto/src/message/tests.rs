//! Fragmenting and reassembly: unit and property tests.

use super::*;
use proptest::prelude::*;

fn drain(q: &mut SendQueue, room: usize) -> Vec<Fragment> {
    std::iter::from_fn(|| q.next_fragment(room, u64::MAX)).collect()
}

#[test]
fn split_and_reassemble() {
    let mut q = SendQueue::default();
    let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    q.push(Bytes::from(data.clone()));
    q.push(Bytes::new());
    let frags = drain(&mut q, 1000);
    assert_eq!(frags.iter().filter(|f| f.message == 0).count(), 11);
    assert!(frags.iter().all(|f| f.payload.len() <= 1000));
    let mut r = Reassembly::new(1 << 20);
    for f in frags.iter().rev() {
        assert!(matches!(
            r.on_fragment(f.message, f.index, f.count, f.payload.clone()),
            Ok(Accepted::New(_))
        ));
    }
    let (m0, cost) = r.pop_ready().unwrap();
    assert_eq!(&m0[..], &data[..]);
    assert_eq!(cost, 10_000 + 11 * FRAGMENT_COST);
    assert_eq!(r.pop_ready().unwrap().0.len(), 0);
    assert!(r.pop_ready().is_none());
    // Late duplicates are recognised.
    let f = &frags[0];
    assert_eq!(
        r.on_fragment(f.message, f.index, f.count, f.payload.clone()),
        Ok(Accepted::Duplicate)
    );
}

#[test]
fn acks_release_and_losses_retransmit() {
    let mut q = SendQueue::default();
    q.push(Bytes::from(vec![1; 2500]));
    let frags = drain(&mut q, 1000);
    assert_eq!(frags.len(), 3);
    assert_eq!(q.on_acked(0, 0), 0);
    q.on_lost(0, 1);
    q.on_lost(0, 0); // already acked: not resent
    let again = drain(&mut q, 1000);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].index, 1);
    assert!(!again[0].first);
    assert_eq!(q.on_acked(0, 1), 0);
    assert_eq!(q.on_acked(0, 2), 1);
    assert!(q.is_empty());
    assert_eq!(q.buffered(), 0);
}

#[test]
fn progress_counts_messages_settled_in_order_only() {
    let mut q = SendQueue::default();
    q.push(Bytes::from(vec![1; 1500]));
    q.push(Bytes::from(vec![2; 10]));
    let frags = drain(&mut q, 1000);
    assert_eq!(frags.len(), 3);
    let progress = |q: &SendQueue| (q.progress().queued, q.progress().acknowledged);
    assert_eq!(progress(&q), (2, 0));
    // The second message whole, the first half: nothing settled yet.
    q.on_acked(1, 0);
    q.on_acked(0, 1);
    assert_eq!(progress(&q), (2, 0));
    q.on_acked(0, 0);
    assert_eq!(progress(&q), (2, 2));
    assert!(q.progress().is_complete());
    assert_eq!(q.progress().pending(), 0);
}

#[test]
fn progress_counts_dropped_and_given_up_messages() {
    let mut q = SendQueue::new(StreamId::DEFAULT, true);
    q.push(Bytes::from(vec![1; 10]));
    q.push(Bytes::from(vec![2; 10]));
    q.push(Bytes::from(vec![3; 10]));
    drain(&mut q, 1000);
    q.on_lost(0, 0);
    let p = q.progress();
    assert_eq!((p.acknowledged, p.given_up, p.dropped), (1, 1, 0));
    assert!(!p.is_complete(), "a given-up message is no acknowledgement");
    q.on_acked(1, 0);
    q.clear();
    let p = q.progress();
    assert_eq!(
        p,
        SendProgress {
            queued: 3,
            acknowledged: 2,
            given_up: 1,
            dropped: 1,
            finishes_acknowledged: 0
        }
    );
    assert_eq!(p.pending(), 0);
}

#[test]
fn credit_blocks_new_data_only() {
    let mut q = SendQueue::default();
    q.push(Bytes::from(vec![0; 300]));
    assert!(q.next_fragment(1000, 100).is_none());
    assert_eq!(q.next_unsent_cost(1000), Some(300 + FRAGMENT_COST));
    assert!(q.next_fragment(1000, 300 + FRAGMENT_COST).is_some());
}

#[test]
fn holes_are_seen_until_repaired() {
    let mut r = Reassembly::new(1 << 20);
    let f = |n| Bytes::from(vec![0; n]);
    assert!(!r.has_hole());
    r.on_fragment(0, 0, 3, f(300)).unwrap();
    assert!(!r.has_hole(), "in order so far");
    r.on_fragment(0, 2, 3, f(300)).unwrap();
    assert!(r.has_hole(), "fragment 1 is missing");
    r.on_fragment(0, 1, 3, f(300)).unwrap();
    assert!(!r.has_hole());
    assert!(r.pop_ready().is_some());
    r.on_fragment(2, 0, 1, f(10)).unwrap();
    assert!(r.has_hole(), "message 1 is missing");
    r.on_fragment(1, 0, 1, f(10)).unwrap();
    // Complete messages are taken before the question is asked.
    while r.pop_ready().is_some() {}
    assert!(!r.has_hole());
}

#[test]
fn announced_sizes_reserve_within_the_budget() {
    // First fragments of messages announced at 900 kB each: the first is
    // reserved whole, the others only grow with what arrives.
    let mut r = Reassembly::with_delivery(1 << 20, Delivery::Ordered, 1 << 20);
    for message in 0..10 {
        r.on_fragment(message, 0, 3000, Bytes::from(vec![1; 300]))
            .unwrap();
        assert!(r.reserved <= 1 << 20);
    }
    assert_eq!(r.reserved, 900_000);
    let mut tiny = Reassembly::with_delivery(1 << 20, Delivery::Ordered, 1 << 20);
    tiny.on_fragment(0, 0, 2, Bytes::from(vec![2; 300]))
        .unwrap();
    tiny.on_fragment(0, 1, 2, Bytes::from(vec![3; 5])).unwrap();
    let (m, _) = tiny.pop_ready().unwrap();
    assert_eq!(m.len(), 305);
    assert_eq!(tiny.reserved, 0, "released with the message");
}

#[test]
fn inconsistent_fragments_are_violations() {
    let mut r = Reassembly::new(1 << 20);
    r.on_fragment(0, 0, 3, Bytes::from(vec![0; 300])).unwrap();
    assert_eq!(
        r.on_fragment(0, 1, 4, Bytes::from(vec![0; 300])),
        Err(ProtocolViolation::BadFragment)
    );
    assert_eq!(
        r.on_fragment(1, 0, 2, Bytes::from(vec![0; 10])),
        Err(ProtocolViolation::BadFragment),
        "tiny non-final fragment"
    );
    let mut small = Reassembly::new(1000);
    assert_eq!(
        small.on_fragment(0, 0, 1, Bytes::from(vec![0; 1001])),
        Err(ProtocolViolation::MessageTooLarge)
    );
    assert_eq!(
        small.on_fragment(0, 0, 100, Bytes::from(vec![0; 300])),
        Err(ProtocolViolation::MessageTooLarge)
    );
}

proptest! {
    /// Whatever order and duplication fragments arrive in, messages come out
    /// whole, in order, once.
    #[test]
    fn any_arrival_order(
        sizes in prop::collection::vec(0usize..5000, 1..8),
        order in prop::collection::vec(any::<prop::sample::Index>(), 0..200),
    ) {
        let mut q = SendQueue::default();
        let messages: Vec<Bytes> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| Bytes::from(vec![i as u8; n]))
            .collect();
        for m in &messages {
            q.push(m.clone());
        }
        let frags = drain(&mut q, 600);
        let mut r = Reassembly::new(1 << 20);
        let mut out = Vec::new();
        // Arbitrary (re)deliveries first, then everything once so all complete.
        for ix in order.iter().map(|ix| ix.index(frags.len())).chain(0..frags.len()) {
            let f = &frags[ix];
            r.on_fragment(f.message, f.index, f.count, f.payload.clone()).unwrap();
            while let Some((m, _)) = r.pop_ready() {
                out.push(m);
            }
        }
        prop_assert_eq!(out, messages);
        prop_assert_eq!(r.pending_messages(), 0);
    }
}
