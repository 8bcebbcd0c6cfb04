//! 10 MB of mixed-size messages, delivered exactly under loss, reordering,
//! duplication, corruption and burst loss.

mod common;

use std::time::Duration;

use common::mixed_messages;
use ferry_sim::{LinkConfig, Loss, Transfer, TransferReport};

const TEN_MB: usize = 10 << 20;

fn path(loss: f64) -> LinkConfig {
    LinkConfig::default()
        .latency(Duration::from_millis(10))
        .jitter(Duration::from_millis(1))
        .random_loss(loss)
        .reorder(0.02, Duration::from_millis(4))
        .duplicate(0.01)
        .bandwidth(100_000_000)
}

fn run(seed: u64, link: LinkConfig) -> TransferReport {
    let messages = mixed_messages(seed, TEN_MB, 1 << 20);
    let report = Transfer::new(seed, link).run(messages, Duration::from_secs(3600));
    assert!(report.complete(), "{report:#?}");
    assert_eq!(report.mismatched, 0);
    report
}

#[test]
fn ten_mb_without_loss() {
    let r = run(10, path(0.0));
    assert!(r.bytes >= TEN_MB as u64);
}

#[test]
fn ten_mb_at_1_percent_loss() {
    let r = run(11, path(0.01));
    assert!(r.client.retransmitted > 0);
}

#[test]
fn ten_mb_at_5_percent_loss() {
    let r = run(12, path(0.05));
    assert!(r.client.retransmitted > 0);
    assert!(r.server.repeat_requests_sent > 0, "gaps are reported");
}

#[test]
fn ten_mb_at_20_percent_loss() {
    let r = run(13, path(0.2));
    assert!(r.client.retransmitted as f64 > 0.1 * r.client.packets_sent as f64 * 0.5);
}

#[test]
fn duplicates_are_delivered_once() {
    let r = run(14, path(0.0).duplicate(0.2));
    assert!(r.forward.duplicated > 100);
    assert!(r.server.duplicates > 100);
}

#[test]
fn corrupted_datagrams_are_dropped_not_delivered() {
    let r = run(15, path(0.01).corrupt(0.05));
    assert!(r.forward.corrupted > 100, "{:?}", r.forward);
}

#[test]
fn burst_loss() {
    let link = path(0.0).loss(Loss::GilbertElliott {
        p_good_to_bad: 0.01,
        p_bad_to_good: 0.3,
        loss_in_good: 0.001,
        loss_in_bad: 0.8,
    });
    run(16, link);
}

#[test]
fn asymmetric_path_lossy_acks() {
    let messages = mixed_messages(17, TEN_MB / 4, 1 << 20);
    let report = Transfer::new(17, path(0.0))
        .backward(path(0.3))
        .run(messages, Duration::from_secs(3600));
    assert!(report.complete(), "{report:#?}");
}

#[test]
fn same_seed_same_run() {
    let a = run(18, path(0.05));
    let b = run(18, path(0.05));
    assert_eq!(a.elapsed, b.elapsed);
    assert_eq!(a.client, b.client);
    assert_eq!(a.server, b.server);
    assert_eq!(a.forward, b.forward);
    let c = run(19, path(0.05));
    assert_ne!(
        a.forward, c.forward,
        "a different seed gives a different run"
    );
}
