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
    assert_eq!(net.receiver().stats().heartbeats_missing, 1);
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
    // id but never its start: it reports it lost at block 0 (of which it
    // caught at most the last repair symbols), delivers none of it.
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
                LossReason::BeyondRepairMargin(b) | LossReason::BlockExpired(b)
                    if b.block == 0 && b.needed.is_none_or(|k| b.received < k)
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

/// Bursts of exactly N datagrams at a chosen point, interleaving, and why a
/// session was lost.
mod bursts {
    use super::*;
    use ferry_sim::diode::BurstModel;

    /// 128 KiB blocks: 93 source and 10 repair symbols each; 8 blocks held
    /// per session, or twice the depth.
    fn depth(depth: usize) -> DiodeConfig {
        DiodeConfig {
            interleave_depth: depth,
            max_blocks_in_flight: (2 * depth).max(8),
            ..config()
        }
    }

    #[test]
    fn a_burst_beyond_the_margin_is_reported_with_its_block_and_symbol_counts() {
        let mut net = DiodeNet::new(depth(1), LinkConfig::default(), 30);
        // Block 3 loses 20 of its 103 datagrams: 83 arrive, it needs 93.
        net.drop_burst(3 * 103 + 5, 20);
        let doomed = net.send_session(data(30, 3_000_000));
        net.run_sessions(Duration::from_secs(10));
        let lost = LostBlock {
            block: 3,
            received: 83,
            needed: Some(93),
        };
        let r = net.received(doomed).expect("started").clone();
        assert_eq!(r.lost, Some(LossReason::BeyondRepairMargin(lost)));
        assert_eq!(r.data.len(), 3 * 128 * 1024, "blocks 0 to 2 were delivered");
        let stats = net.receiver().stats().clone();
        assert_eq!(stats.losses.beyond_repair_margin, 1, "{stats:?}");
        assert_eq!(stats.losses.total(), 1);
        let message = r.lost.unwrap().to_string();
        assert!(
            message.contains("block 3 (83 of the 93 symbols"),
            "{message}"
        );

        let d = data(31, 1_000_000);
        let next = net.send_session(d.clone());
        net.run_sessions(Duration::from_secs(10));
        assert_exact(&net, &[(next, d)]);
    }

    #[test]
    fn interleaving_four_blocks_survives_a_burst_four_times_as_long() {
        for (depth_, burst, survives) in
            [(1, 10, true), (1, 11, false), (4, 40, true), (4, 41, false)]
        {
            let config = depth(depth_);
            // The model says the same, wherever the burst starts.
            assert_eq!(
                BurstModel::new(&config).longest_burst(8, 1).0,
                burst - u64::from(!survives)
            );
            let mut net = DiodeNet::new(config, LinkConfig::default(), 32);
            net.drop_burst(500, burst);
            let d = data(32, 2_000_000);
            let id = net.send_session(d.clone());
            net.run_sessions(Duration::from_secs(10));
            assert_eq!(net.burst_dropped(), burst);
            if survives {
                assert_exact(&net, &[(id, d)]);
            } else {
                let lost = net.received(id).unwrap().lost;
                assert!(
                    matches!(lost, Some(LossReason::BeyondRepairMargin(b)) if b.received == 92 && b.needed == Some(93)),
                    "depth {depth_}, burst {burst}: {lost:?}"
                );
            }
        }
    }

    #[test]
    fn a_sender_with_a_deeper_interleaving_than_the_receiver_holds_is_refused_with_a_reason() {
        let sender = depth(8);
        let receiver = depth(1);
        let mut net = DiodeNet::with_configs(sender, receiver.clone(), LinkConfig::default(), 33);
        let id = net.send_session(data(33, 300_000));
        net.run_for(Duration::from_secs(1));
        assert!(net.log().iter().any(|(_, e)| *e
            == ReceiverEvent::SessionLost {
                session: id,
                reason: LossReason::InterleaveTooDeep {
                    depth: 8,
                    window: 8
                },
            }));
        assert_eq!(net.receiver().stats().losses.refused, 1);
        // A receiver with another depth decodes what fits its window.
        let mut net = DiodeNet::with_configs(depth(4), receiver, LinkConfig::default(), 34);
        let d = data(34, 2_000_000);
        let id = net.send_session(d.clone());
        net.run_sessions(Duration::from_secs(10));
        assert_exact(&net, &[(id, d)]);
    }

    #[test]
    fn a_session_ending_in_a_short_block_survives_a_burst_at_its_end() {
        // The last block holds 1000 bytes and the trailer: one source
        // symbol, and a full block's ten repair symbols.
        let mut net = DiodeNet::new(depth(1), LinkConfig::default(), 35);
        let d = data(35, 4 * 128 * 1024 + 1000);
        net.drop_burst(4 * 103, 10);
        let id = net.send_session(d.clone());
        net.run_sessions(Duration::from_secs(10));
        assert_eq!(net.burst_dropped(), 10);
        assert_exact(&net, &[(id, d)]);
    }

    #[test]
    fn on_a_slow_link_a_block_does_not_expire_between_its_interleaved_symbols() {
        // 50 kbit/s: a datagram every 0.23 s, so a block's own symbols come
        // 1.9 s apart in a group of eight, longer than the block timeout.
        let config = DiodeConfig {
            block_size: 16 * 1024,
            bandwidth: 50_000,
            max_burst: 2000,
            interleave_depth: 8,
            ..DiodeConfig::default()
        };
        let mut net = DiodeNet::new(config, LinkConfig::default(), 37);
        let d = data(37, 100_000);
        let id = net.send_session(d.clone());
        net.run_sessions(Duration::from_secs(120));
        assert_exact(&net, &[(id, d)]);
    }

    #[test]
    fn a_receiver_that_fell_behind_says_so() {
        let mut net = DiodeNet::new(depth(1), LinkConfig::default(), 36);
        let id = net.send_session(data(36, 3_000_000));
        net.run_until(Duration::from_secs(5), |n| {
            n.received(id)
                .is_some_and(|r| r.data.len() >= 2 * 128 * 1024)
        });
        // Its socket overflowed: the driver lost what comes next.
        net.receiver().report_overflow(50);
        let next = net.symbols_sent();
        net.drop_burst(next, 50);
        net.run_sessions(Duration::from_secs(10));
        let lost = net.received(id).unwrap().lost;
        assert!(
            matches!(lost, Some(LossReason::ReceiverBehind(_))),
            "{lost:?}"
        );
        assert_eq!(net.receiver().stats().losses.receiver_behind, 1);
        assert_eq!(net.receiver().stats().overflowed, 50);
    }
}

/// The aim: at 2 % average loss in Gilbert–Elliott bursts (5 datagrams on
/// average, now and then tens), the default settings lose no session.
mod aim {
    use super::*;
    use ferry_sim::diode::BurstModel;

    fn bursty() -> Loss {
        Loss::bursts(0.02, 5.0)
    }

    /// `count` sessions of `len` bytes one after the other over one bursty
    /// link, with `config`: the reasons of those lost, and the fraction of
    /// datagrams the link lost.
    fn transfers(
        config: DiodeConfig,
        count: usize,
        len: usize,
        seed: u64,
    ) -> (Vec<LossReason>, f64) {
        let mut net = DiodeNet::new(config, LinkConfig::default().loss(bursty()), seed);
        net.discard_data();
        let bytes = bytes::Bytes::from(data(seed, len));
        let mut lost = Vec::new();
        for _ in 0..count {
            let id = net.send_session(bytes.clone());
            net.run_sessions(Duration::from_secs(3600));
            let r = net.received(id).expect("started");
            match r.lost {
                Some(reason) => lost.push(reason),
                None => {
                    assert!(r.finished, "neither finished nor lost");
                    assert_eq!(r.delivered, len as u64);
                }
            }
        }
        let link = net.link().stats().clone();
        (lost, link.lost as f64 / link.sent as f64)
    }

    /// The engine itself, reduced to CI's budget: 100 sessions of 4 MiB
    /// (one interleaving group of eight blocks and the trailer each), 400 MiB
    /// in all, every datagram coded, lost or not, decoded and checked.
    #[test]
    fn bursty_loss_at_two_percent_loses_no_session_with_the_defaults() {
        let (lost, rate) = transfers(DiodeConfig::default(), 100, 4 << 20, 40);
        assert!((0.015..0.025).contains(&rate), "the link lost {rate}");
        assert_eq!(lost, [], "sessions lost");
    }

    /// The full size, counted: 100 transfers of 512 MB as the sender orders
    /// their datagrams, over the same link model, each block needing its `K`
    /// symbols (`BurstModel`, whose verdicts the engine confirms in
    /// `bursts::interleaving_four_blocks_survives_a_burst_four_times_as_long`
    /// and the `diode_bursts` example). The defaults lose none; without
    /// interleaving nearly every one is lost, so the count can tell.
    #[test]
    fn bursty_loss_at_two_percent_loses_no_512_mb_session_with_the_defaults_as_counted() {
        let blocks = 512_000_000 / DiodeConfig::default().block_size as u64;
        let model = BurstModel::new(&DiodeConfig::default());
        assert_eq!(model.sessions_lost(bursty(), blocks, 100, 41), 0);
        let one = BurstModel::new(&DiodeConfig {
            interleave_depth: 1,
            ..DiodeConfig::default()
        });
        assert!(one.sessions_lost(bursty(), blocks, 20, 41) >= 15);
    }

    /// The aim at full size through the engine: 100 transfers of 512 MB
    /// (51 GB coded and decoded: seven minutes on one core in the test
    /// profile, half a gigabyte of memory;
    /// `cargo test -p ferry-proto --test diode -- --ignored`).
    #[test]
    #[ignore = "51 GB through the engine, seven minutes: run by hand"]
    fn bursty_loss_at_two_percent_loses_no_session_in_100_transfers_of_512_mb_with_the_defaults() {
        let (lost, rate) = transfers(DiodeConfig::default(), 100, 512_000_000, 42);
        assert!((0.018..0.022).contains(&rate), "the link lost {rate}");
        assert_eq!(lost, [], "sessions lost");
    }
}
