//! The one-way diode in virtual time: what forward error correction recovers,
//! what it cannot, and that nothing is ever delivered with a hole.

use std::time::Duration;

use ferry_proto::diode::{DiodeConfig, LossReason, LostBlock, ReceiverEvent};
use ferry_sim::diode::DiodeNet;
use ferry_sim::{LinkConfig, Loss};

/// Deterministic, distinct bytes per session.
fn data(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// When the first session was reported lost, and why.
fn first_loss(net: &DiodeNet) -> Option<(std::time::Instant, LossReason)> {
    net.log().iter().find_map(|(at, e)| match e {
        ReceiverEvent::SessionLost { reason, .. } => Some((*at, *reason)),
        _ => None,
    })
}

fn config() -> DiodeConfig {
    DiodeConfig {
        block_size: 128 * 1024,
        bandwidth: 200_000_000,
        ..DiodeConfig::default()
    }
}

/// Every session arrived exactly, finished, with nothing after its end.
fn assert_exact(net: &DiodeNet, sessions: &[(ferry_proto::diode::DiodeSessionId, Vec<u8>)]) {
    for (id, bytes) in sessions {
        let r = net.received(*id).expect("the session started");
        assert_eq!(r.lost, None, "session {id} lost");
        assert!(r.finished, "session {id} not finished");
        assert!(r.data == *bytes, "session {id}: wrong bytes");
        assert!(!r.data_after_end);
    }
}

#[test]
fn random_loss_below_the_repair_margin_is_recovered() {
    let link = LinkConfig::default()
        .latency(Duration::from_millis(2))
        .random_loss(0.04);
    let mut net = DiodeNet::new(config(), link, 1);
    let sessions: Vec<_> = (0..3)
        .map(|i| {
            let d = data(i, 2_000_000 + i as usize * 12_345);
            (net.send_session(d.clone()), d)
        })
        .collect();
    net.run_sessions(Duration::from_secs(30));
    assert_exact(&net, &sessions);
    let stats = net.receiver().stats().clone();
    assert!(stats.blocks_repaired > 0, "{stats:?}");
    assert!(net.link().stats().lost > 100);
}

#[test]
fn burst_loss_within_the_margin_is_recovered() {
    // Bursts of about four datagrams, 2% of datagrams lost overall.
    let link = LinkConfig::default().loss(Loss::GilbertElliott {
        p_good_to_bad: 0.005,
        p_bad_to_good: 0.25,
        loss_in_good: 0.0,
        loss_in_bad: 1.0,
    });
    let mut net = DiodeNet::new(config(), link, 2);
    let d = data(7, 5_000_000);
    let id = net.send_session(d.clone());
    net.run_sessions(Duration::from_secs(30));
    assert_exact(&net, &[(id, d)]);
}

#[test]
fn reordering_across_blocks_and_duplication_are_harmless() {
    // A block of 128 KiB takes ~5 ms at 200 Mbit/s: a 20 ms reordering delay
    // moves datagrams several blocks later.
    let link = LinkConfig::default()
        .latency(Duration::from_millis(1))
        .reorder(0.05, Duration::from_millis(20))
        .duplicate(0.05)
        .random_loss(0.01);
    let mut net = DiodeNet::new(config(), link, 3);
    let d = data(3, 4_000_000);
    let id = net.send_session(d.clone());
    net.run_sessions(Duration::from_secs(30));
    assert_exact(&net, &[(id, d)]);
    assert!(net.receiver().stats().duplicate_symbols > 0);
    assert!(net.link().stats().reordered > 0);
}

#[test]
fn corrupted_datagrams_are_dropped_not_decoded() {
    let link = LinkConfig::default().corrupt(0.01);
    let mut net = DiodeNet::new(config(), link, 4);
    let d = data(4, 3_000_000);
    let id = net.send_session(d.clone());
    net.run_sessions(Duration::from_secs(30));
    assert_exact(&net, &[(id, d)]);
    let invalid = net.receiver().stats().invalid;
    let corrupted = net.link().stats().corrupted;
    assert!(corrupted > 0);
    assert_eq!(
        invalid, corrupted,
        "every corrupted datagram is caught by its CRC"
    );
}

#[test]
fn loss_beyond_the_margin_loses_that_session_and_the_next_arrives_intact() {
    let link = LinkConfig::default().random_loss(0.3);
    let mut net = DiodeNet::new(config(), link, 5);
    let doomed = net.send_session(data(5, 1_000_000));
    net.run_sessions(Duration::from_secs(30));
    let r = net.received(doomed).expect("started");
    assert!(!r.finished);
    assert!(
        matches!(
            r.lost,
            Some(LossReason::BeyondRepairMargin(_) | LossReason::BlockExpired(_))
        ),
        "{:?}",
        r.lost
    );
    assert!(!r.data_after_end);
    assert!(r.data.len() < 1_000_000);

    net.set_link(LinkConfig::default());
    let d = data(6, 1_500_000);
    let next = net.send_session(d.clone());
    net.run_sessions(Duration::from_secs(30));
    assert_exact(&net, &[(next, d)]);
}

#[test]
fn heartbeat_silence_warns_and_recovery_is_reported() {
    let mut net = DiodeNet::new(config(), LinkConfig::default(), 6);
    net.run_for(Duration::from_secs(3));
    assert!(
        !net.log()
            .iter()
            .any(|(_, e)| matches!(e, ReceiverEvent::HeartbeatMissing { .. })),
        "heartbeats arrive every second"
    );
    net.set_link(LinkConfig::default().random_loss(1.0));
    let cut = net.now();
    net.run_for(Duration::from_secs(5));
    let (at, silent) = net
        .log()
        .iter()
        .find_map(|(at, e)| match e {
            ReceiverEvent::HeartbeatMissing { silent_for } => Some((*at, *silent_for)),
            _ => None,
        })
        .expect("a warning");
    // Twice the heartbeat after the last one heard (at most one heartbeat
    // before the cut).
    assert!(silent >= Duration::from_secs(2));
    assert!(at - cut <= Duration::from_secs(2) + Duration::from_millis(10));
    net.set_link(LinkConfig::default());
    net.run_for(Duration::from_secs(2));
    assert!(
        net.log()
            .iter()
            .any(|(_, e)| *e == ReceiverEvent::HeartbeatRecovered)
    );
}

#[test]
fn a_block_that_stops_arriving_expires_after_the_block_timeout() {
    let cfg = DiodeConfig {
        block_expiration_timeout: Some(Duration::from_millis(700)),
        ..config()
    };
    let mut net = DiodeNet::new(cfg, LinkConfig::default(), 7);
    let id = net.send_session(data(7, 3_000_000));
    // Let a few blocks through, then cut the link for good.
    net.run_until(Duration::from_secs(5), |n| {
        n.received(id).is_some_and(|r| r.data.len() >= 500_000)
    });
    // Into the next group of four blocks (a datagram takes 60 µs at
    // 200 Mbit/s; the first group's repair symbols take 2 ms more), so that
    // the receiver holds part of its blocks: an incomplete head block.
    net.run_for(Duration::from_millis(5));
    net.set_link(LinkConfig::default().random_loss(1.0));
    let cut = net.now();
    net.run_for(Duration::from_secs(3));
    let (at, reason) = first_loss(&net).expect("the session is lost");
    let LossReason::BlockExpired(block) = reason else {
        panic!("{reason:?}")
    };
    // Cut mid-group: the head block had some of its symbols, not enough.
    let needed = block.needed.expect("some symbols arrived");
    assert!(block.received > 0 && block.received < needed, "{block:?}");
    assert!(block.block >= 4, "{block:?}");
    assert_eq!(net.receiver().stats().losses.block_expired, 1);
    let after = at - cut;
    assert!(
        after >= Duration::from_millis(600) && after <= Duration::from_millis(800),
        "{after:?}"
    );
}

#[test]
fn a_silent_session_expires_after_the_session_timeout() {
    let cfg = DiodeConfig {
        session_expiration_timeout: Some(Duration::from_secs(3)),
        ..config()
    };
    let mut net = DiodeNet::new(cfg, LinkConfig::default(), 8);
    let d = data(8, 100_000);
    let id = net.send_stalled_session(d.clone(), d.len());
    net.run_for(Duration::from_secs(1));
    assert_eq!(
        net.received(id).unwrap().data,
        d,
        "the flushed block was delivered"
    );
    // The link goes dark: no data, no keep-alive, no heartbeat.
    net.set_link(LinkConfig::default().random_loss(1.0));
    net.run_for(Duration::from_millis(2500));
    assert_eq!(net.received(id).unwrap().lost, None);
    net.run_for(Duration::from_secs(1));
    // It waited for block 1, of which nothing was ever sent.
    assert_eq!(
        net.received(id).unwrap().lost,
        Some(LossReason::SessionExpired(LostBlock {
            block: 1,
            received: 0,
            needed: None
        }))
    );
    assert_eq!(net.receiver().stats().losses.session_expired, 1);
}

#[test]
fn an_idle_session_is_kept_alive_and_finishes_later() {
    let cfg = DiodeConfig {
        session_expiration_timeout: Some(Duration::from_secs(3)),
        ..config()
    };
    let mut net = DiodeNet::new(cfg, LinkConfig::default(), 18);
    let d = data(18, 400_000);
    let id = net.send_stalled_session(d.clone(), 150_000);
    // Idle for three session timeouts: keep-alives hold the session open.
    net.run_for(Duration::from_secs(10));
    let r = net.received(id).expect("started");
    assert_eq!(r.lost, None);
    assert_eq!(r.data, d[..150_000]);
    assert!(net.receiver().stats().keepalives >= 8);
    // The application resumes and finishes.
    assert_eq!(net.sender().write(id, &d[150_000..]).unwrap(), 250_000);
    net.sender().finish(id).unwrap();
    net.run_sessions(Duration::from_secs(5));
    assert_exact(&net, &[(id, d)]);
}

#[test]
fn a_whole_block_lost_before_a_pause_is_reported_without_waiting_for_the_session_timeout() {
    let mut net = DiodeNet::new(config(), LinkConfig::default(), 19);
    let d = data(19, 131_072);
    // Block 0 arrives whole; then the application pauses.
    let id = net.send_stalled_session(d.clone(), d.len());
    net.run_for(Duration::from_secs(1));
    assert_eq!(net.received(id).unwrap().data, d);
    // Block 1 is flushed while the link is dark, then the link comes back:
    // only keep-alives arrive, and they say block 1 was sent.
    net.set_link(LinkConfig::default().random_loss(1.0));
    assert_eq!(net.sender().write(id, &d[..50_000]).unwrap(), 50_000);
    assert!(net.sender().flush(id).unwrap());
    net.run_for(Duration::from_millis(100));
    net.set_link(LinkConfig::default());
    let back = net.now();
    net.run_for(Duration::from_secs(4));
    let (at, reason) = first_loss(&net).expect("lost");
    assert_eq!(
        reason,
        LossReason::BlockExpired(LostBlock {
            block: 1,
            received: 0,
            needed: None
        })
    );
    // A keep-alive within a heartbeat, then the block timeout.
    assert!(at - back <= Duration::from_millis(2100), "{:?}", at - back);
}

#[test]
fn an_aborted_session_is_lost_and_the_next_is_intact() {
    let mut net = DiodeNet::new(config(), LinkConfig::default(), 9);
    let aborted = net.send_session(data(9, 2_000_000));
    net.run_until(Duration::from_secs(5), |n| {
        n.received(aborted).is_some_and(|r| r.data.len() >= 300_000)
    });
    net.abort(aborted);
    let d = data(10, 700_000);
    let next = net.send_session(d.clone());
    net.run_sessions(Duration::from_secs(10));
    let r = net.received(aborted).expect("started");
    assert_eq!(r.lost, Some(LossReason::Aborted));
    assert!(!r.finished);
    assert_exact(&net, &[(next, d)]);
}

#[test]
fn a_restarted_sender_loses_its_interrupted_session_at_once() {
    let mut net = DiodeNet::new(config(), LinkConfig::default(), 11);
    let interrupted = net.send_session(data(11, 5_000_000));
    net.run_until(Duration::from_secs(5), |n| {
        n.received(interrupted)
            .is_some_and(|r| r.data.len() >= 1_000_000)
    });
    net.restart_sender(config(), 12);
    let d = data(12, 800_000);
    let next = net.send_session(d.clone());
    net.run_until(Duration::from_secs(10), |n| {
        n.received(next).is_some_and(|r| r.finished)
    });
    let Some(LossReason::SenderRestarted(block)) = net.received(interrupted).unwrap().lost else {
        panic!("{:?}", net.received(interrupted).unwrap().lost)
    };
    // It waited for the block after the last one delivered.
    let delivered = net.received(interrupted).unwrap().data.len() as u64;
    assert_eq!(block.block, delivered / (128 * 1024), "{block:?}");
    assert!(
        block.needed.is_none_or(|k| block.received < k + 3),
        "{block:?}"
    );
    assert_eq!(net.receiver().stats().losses.sender_restarted, 1);
    assert_exact(&net, &[(next, d)]);
}

#[test]
fn a_restarted_receiver_reports_the_interrupted_session_lost_and_takes_the_next() {
    let mut net = DiodeNet::new(config(), LinkConfig::default(), 13);
    let interrupted = net.send_session(data(13, 6_000_000));
    net.run_until(Duration::from_secs(5), |n| {
        n.received(interrupted)
            .is_some_and(|r| r.data.len() >= 1_000_000)
    });
    net.restart_receiver(config());
    let d = data(14, 900_000);
    let next = net.send_session(d.clone());
    net.run_sessions(Duration::from_secs(20));
    // The new receiver saw the rest of the interrupted session under the same
    // id but never its start: it reports it lost, delivers none of it.
    let lost: Vec<_> = net
        .log()
        .iter()
        .filter_map(|(_, e)| match e {
            ReceiverEvent::SessionLost { session, reason } => Some((*session, *reason)),
            _ => None,
        })
        .collect();
    assert!(
        lost.iter().any(|(s, r)| *s == interrupted
            && matches!(
                r,
                LossReason::BeyondRepairMargin(LostBlock {
                    block: 0,
                    received: 0,
                    needed: None
                }) | LossReason::BlockExpired(LostBlock {
                    block: 0,
                    received: 0,
                    needed: None
                })
            )),
        "{lost:?}"
    );
    assert!(!net.received(interrupted).unwrap().finished);
    assert_exact(&net, &[(next, d)]);
}

#[test]
fn concurrent_sessions_interleave_and_all_arrive() {
    let link = LinkConfig::default().random_loss(0.02);
    let mut net = DiodeNet::new(config(), link, 15);
    let sessions: Vec<_> = (0..6)
        .map(|i| {
            let d = data(100 + i, 300_000 * (i as usize + 1));
            (net.send_session(d.clone()), d)
        })
        .collect();
    net.run_sessions(Duration::from_secs(30));
    assert_exact(&net, &sessions);
}

#[test]
fn empty_and_tiny_sessions() {
    let mut net = DiodeNet::new(config(), LinkConfig::default().random_loss(0.05), 16);
    let sessions: Vec<_> = [0usize, 1, 39, 40, 41, 1416, 128 * 1024, 128 * 1024 + 1]
        .iter()
        .enumerate()
        .map(|(i, &len)| {
            let d = data(200 + i as u64, len);
            (net.send_session(d.clone()), d)
        })
        .collect();
    net.run_sessions(Duration::from_secs(30));
    assert_exact(&net, &sessions);
}

#[test]
fn too_many_sessions_at_the_receiver_are_refused_and_reported() {
    let sender = DiodeConfig {
        max_sessions: 4,
        ..config()
    };
    let receiver = DiodeConfig {
        max_sessions: 2,
        ..config()
    };
    let mut net = DiodeNet::with_configs(sender, receiver, LinkConfig::default(), 17);
    // Four stalled sessions open at once: the receiver holds two.
    let ids: Vec<_> = (0..4)
        .map(|i| net.send_stalled_session(data(300 + i, 50_000), 50_000))
        .collect();
    net.run_for(Duration::from_secs(1));
    let refused = ids
        .iter()
        .filter(|id| {
            net.log().iter().any(|(_, e)| {
                *e == ReceiverEvent::SessionLost {
                    session: **id,
                    reason: LossReason::TooManySessions,
                }
            })
        })
        .count();
    assert_eq!(refused, 2);
    assert_eq!(net.receiver().session_count(), 2);
}

mod invariant {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        /// Whatever the link does, every session either finishes with exactly
        /// its bytes or is reported lost having delivered a prefix of them:
        /// never a hole, never a wrong byte, never silence.
        #[test]
        fn finished_means_exact_and_lost_means_prefix(
            seed: u64,
            loss in 0.0f64..0.4,
            reorder in 0.0f64..0.2,
            duplicate in 0.0f64..0.1,
            corrupt in 0.0f64..0.02,
            repair in 0u32..40,
            sizes in proptest::collection::vec(0usize..400_000, 1..5),
        ) {
            let link = LinkConfig::default()
                .latency(Duration::from_millis(1))
                .random_loss(loss)
                .reorder(reorder, Duration::from_millis(7))
                .duplicate(duplicate)
                .corrupt(corrupt);
            let cfg = DiodeConfig { repair_percentage: repair, block_size: 64 * 1024, ..config() };
            let mut net = DiodeNet::new(cfg, link, seed);
            let sessions: Vec<_> = sizes
                .iter()
                .enumerate()
                .map(|(i, &len)| {
                    let d = data(seed ^ i as u64, len);
                    (net.send_session(d.clone()), d)
                })
                .collect();
            net.run_sessions(Duration::from_secs(60));
            for (id, bytes) in &sessions {
                // A session none of whose datagrams arrived is never started.
                let Some(r) = net.received(*id) else { continue };
                prop_assert!(!r.data_after_end);
                if r.finished {
                    prop_assert!(r.lost.is_none());
                    prop_assert!(r.data == *bytes);
                } else {
                    prop_assert!(r.lost.is_some(), "session neither finished nor lost");
                    prop_assert!(bytes.starts_with(&r.data));
                }
            }
        }
    }
}
