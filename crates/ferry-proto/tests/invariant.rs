//! The main invariant, over random networks and message mixes: every message is
//! delivered exactly once, intact and in order — or the session ends with a
//! clear reason. Nothing is ever delivered twice or corrupted.

use std::time::Duration;

use ferry_proto::{CloseReason, Config};
use ferry_sim::{LinkConfig, Loss, Transfer};
use proptest::prelude::*;

fn arb_loss() -> impl Strategy<Value = Loss> {
    prop_oneof![
        Just(Loss::None),
        (0.0..0.3f64).prop_map(Loss::Random),
        (0.001..0.05f64, 0.1..0.6f64, 0.3..0.9f64).prop_map(|(gb, bg, bad)| Loss::GilbertElliott {
            p_good_to_bad: gb,
            p_bad_to_good: bg,
            loss_in_good: 0.001,
            loss_in_bad: bad,
        }),
    ]
}

prop_compose! {
    fn arb_link()(
        latency in 0u64..100,
        jitter in 0u64..20,
        loss in arb_loss(),
        reorder in 0.0..0.2f64,
        reorder_ms in 1u64..30,
        duplicate in 0.0..0.1f64,
        corrupt in 0.0..0.05f64,
        mbps in prop::option::of(1u64..1000),
        queue_kb in 64usize..4096,
    ) -> LinkConfig {
        let mut link = LinkConfig::default()
            .latency(Duration::from_millis(latency))
            .jitter(Duration::from_millis(jitter))
            .loss(loss)
            .reorder(reorder, Duration::from_millis(reorder_ms))
            .duplicate(duplicate)
            .corrupt(corrupt)
            .queue_limit(queue_kb << 10);
        if let Some(mbps) = mbps {
            link = link.bandwidth(mbps * 1_000_000);
        }
        link
    }
}

prop_compose! {
    fn arb_config()(
        mtu in 548usize..9000,
        ack_frequency in 1u32..10,
        ack_delay_ms in 0u64..30,
    ) -> Config {
        Config {
            mtu,
            ack_frequency,
            max_ack_delay: Duration::from_millis(ack_delay_ms),
            ..Config::default()
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn every_message_exactly_once_in_order(
        seed in any::<u64>(),
        forward in arb_link(),
        backward in arb_link(),
        client in arb_config(),
        server in arb_config(),
        sizes in prop::collection::vec(0usize..200_000, 1..30),
    ) {
        let messages: Vec<Vec<u8>> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (i * 31 + j) as u8).collect())
            .collect();
        let report = Transfer::new(seed, forward)
            .backward(backward)
            .client_config(client)
            .server_config(server)
            .run(messages, Duration::from_secs(1200));
        prop_assert_eq!(report.mismatched, 0, "{:#?}", report);
        // Either everything arrived, or the path was so bad for so long that the
        // keep-alive gave up (bursts of loss on a quiet path can silence several
        // pings in a row). Nobody closes the session, so no other reason may appear.
        prop_assert!(
            report.complete() || report.closed == Some(CloseReason::Timeout),
            "neither finished nor timed out: {:#?}", report
        );
    }
}
