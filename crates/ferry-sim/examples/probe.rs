use ferry_sim::{LinkConfig, Transfer};
use std::time::Duration;
fn main() {
    for loss in [0.0, 0.01, 0.05, 0.2] {
        let link = LinkConfig::default()
            .latency(Duration::from_millis(5))
            .random_loss(loss)
            .reorder(
                std::env::args()
                    .nth(1)
                    .map(|a| a.parse().unwrap())
                    .unwrap_or(0.0),
                Duration::from_millis(3),
            )
            .bandwidth(100_000_000);
        let messages: Vec<Vec<u8>> = (0..2000u32)
            .map(|i| vec![i as u8; (i as usize * 7919) % 10_000])
            .collect();
        let t = std::time::Instant::now();
        let r = Transfer::new(1, link)
            .client_config(ferry_proto::Config {
                delivery_timeout: Duration::from_millis(
                    std::env::args()
                        .nth(2)
                        .map(|a| a.parse().unwrap())
                        .unwrap_or(100),
                ),
                ..Default::default()
            })
            .run(messages, Duration::from_secs(600));
        println!(
            "loss {loss}: complete={} delivered={}/{} mism={} elapsed={:?} goodput={:.1}Mbps closed={:?} real={:?}\n  client={:?}",
            r.complete(),
            r.delivered,
            r.expected,
            r.mismatched,
            r.elapsed,
            r.goodput_bps() / 1e6,
            r.closed,
            t.elapsed(),
            r.client
        );
    }
}
