//! The link model's unit tests.

use super::*;
use crate::testing::*;
use proptest::prelude::*;

#[test]
fn default_is_perfect() {
    let c = LinkConfig::default();
    assert_eq!(c.latency, Duration::ZERO);
    assert_eq!(c.loss, Loss::None);
    assert_eq!(c.bandwidth_bps, None);
    assert_eq!(c.queue_limit_bytes, 1024 * 1024);
    assert!(c.validate().is_ok());

    let t0 = base();
    let mut link = Link::new(c, 7);
    link.send(t0, Bytes::from_static(b"hi"));
    assert_eq!(link.next_arrival(), Some(t0));
    assert_eq!(link.pop_arrival(t0).as_deref(), Some(&b"hi"[..]));
    assert_eq!(link.in_flight(), 0);
}

#[test]
fn perfect_link_delivers_in_order_after_latency() {
    let t0 = base();
    let mut link = Link::new(LinkConfig::default().latency(ms(10)), 1);
    for i in 0..100u32 {
        link.send(t0 + Duration::from_micros(u64::from(i)), numbered(i, 100));
    }
    assert_eq!(link.in_flight(), 100);
    assert_eq!(link.next_arrival(), Some(t0 + ms(10)));
    assert!(link.pop_arrival(t0 + ms(9)).is_none());
    let got = drain_all(&mut link);
    assert_eq!(got.len(), 100);
    for (i, (at, b)) in got.iter().enumerate() {
        assert_eq!(number_of(b), i as u32);
        assert_eq!(*at, t0 + Duration::from_micros(i as u64) + ms(10));
    }
    // Same-instant sends keep send order.
    for i in 0..10u32 {
        link.send(t0 + ms(100), numbered(i, 8));
    }
    let got = drain_all(&mut link);
    let order: Vec<u32> = got.iter().map(|(_, b)| number_of(b)).collect();
    assert_eq!(order, (0..10).collect::<Vec<_>>());
    let s = link.stats();
    assert_eq!(
        (s.sent, s.delivered, s.lost, s.queue_dropped),
        (110, 110, 0, 0)
    );
    assert_eq!(s.sent_bytes, s.delivered_bytes);
}

fn run_scenario(seed: u64) -> (Vec<(Duration, Bytes)>, LinkStats) {
    let t0 = base();
    let mut link = Link::new(chaotic_config(), seed);
    let mut out = Vec::new();
    for i in 0..2000u32 {
        let now = t0 + Duration::from_micros(u64::from(i) * 500);
        link.send(now, numbered(i, 200 + (i as usize % 700)));
        out.extend(
            drain(&mut link, now)
                .into_iter()
                .map(|(at, b)| (at - t0, b)),
        );
    }
    out.extend(drain_all(&mut link).into_iter().map(|(at, b)| (at - t0, b)));
    (out, link.stats().clone())
}

#[test]
fn same_seed_same_output_different_seed_differs() {
    let a = run_scenario(42);
    let b = run_scenario(42);
    assert_eq!(a, b);
    let c = run_scenario(43);
    assert_ne!(a.0, c.0);
    let s = &a.1;
    assert!(s.lost > 0 && s.queue_dropped > 0 && s.duplicated > 0);
    assert!(s.corrupted > 0 && s.reordered > 0);
    assert_eq!(
        s.sent,
        s.lost + s.queue_dropped + s.delivered - s.duplicated
    );
}

#[test]
fn random_loss_rate() {
    let t0 = base();
    let p = 0.1;
    let mut link = Link::new(LinkConfig::default().random_loss(p), 3);
    let n = 100_000u32;
    let payload = Bytes::from_static(b"x");
    for _ in 0..n {
        link.send(t0, payload.clone());
        link.pop_arrival(t0);
    }
    let rate = link.stats().lost as f64 / f64::from(n);
    // Standard deviation is ~0.00095; allow ~5 sigma.
    assert!((rate - p).abs() < 0.005, "loss rate {rate}");
    assert_eq!(link.stats().lost + link.stats().delivered, u64::from(n));
    assert!((Loss::Random(p).expected_loss_rate() - p).abs() < 1e-12);
}

/// Runs of consecutive losses, and the loss rate, for `n` datagrams
/// sent `spacing` apart through `config`.
fn loss_runs(config: LinkConfig, spacing: Duration, n: u32, seed: u64) -> (f64, f64) {
    let t0 = base();
    let mut link = Link::new(config, seed);
    let payload = Bytes::from_static(b"x");
    let (mut bursts, mut run) = (Vec::new(), 0u32);
    for i in 0..n {
        let now = t0 + spacing * i;
        let before = link.stats().lost;
        link.send(now, payload.clone());
        while link.pop_arrival(now + Duration::from_secs(1)).is_some() {}
        if link.stats().lost > before {
            run += 1;
        } else if run > 0 {
            bursts.push(run);
            run = 0;
        }
    }
    let mean = bursts.iter().map(|&b| f64::from(b)).sum::<f64>() / bursts.len().max(1) as f64;
    (mean, link.stats().lost as f64 / f64::from(n))
}

#[test]
fn with_a_loss_clock_a_slow_sender_no_longer_stays_in_a_burst() {
    let loss = Loss::bursts(0.02, 5.0);
    let step = Duration::from_micros(100);
    // One datagram every 100 clock steps: the chain settles between them.
    let (per_datagram, _) = loss_runs(LinkConfig::default().loss(loss), step * 100, 200_000, 3);
    let (clocked, rate) = loss_runs(
        LinkConfig::default().loss(loss).loss_clock(step),
        step * 100,
        200_000,
        3,
    );
    assert!(
        (per_datagram - 5.0).abs() < 0.5,
        "per datagram: {per_datagram}"
    );
    assert!(clocked < 1.2, "with the clock: runs of {clocked}");
    assert!((rate - 0.02).abs() < 0.003, "loss rate {rate}");
}

#[test]
fn a_loss_clock_changes_nothing_for_a_sender_at_the_clock_rate_or_faster() {
    let loss = Loss::bursts(0.02, 5.0);
    let step = Duration::from_micros(100);
    for spacing in [Duration::ZERO, step / 2, step] {
        let plain = loss_runs(LinkConfig::default().loss(loss), spacing, 20_000, 5);
        let clocked = loss_runs(
            LinkConfig::default().loss(loss).loss_clock(step),
            spacing,
            20_000,
            5,
        );
        assert_eq!(plain, clocked, "spacing {spacing:?}");
    }
}

#[test]
fn gilbert_elliott_bursts() {
    let t0 = base();
    let loss = Loss::GilbertElliott {
        p_good_to_bad: 0.05,
        p_bad_to_good: 0.25,
        loss_in_good: 0.0,
        loss_in_bad: 1.0,
    };
    let mut link = Link::new(LinkConfig::default().loss(loss), 11);
    let n = 100_000;
    let payload = Bytes::from_static(b"x");
    let mut bursts = Vec::new();
    let mut run = 0u32;
    for _ in 0..n {
        let before = link.stats().lost;
        link.send(t0, payload.clone());
        link.pop_arrival(t0);
        if link.stats().lost > before {
            run += 1;
        } else if run > 0 {
            bursts.push(run);
            run = 0;
        }
    }
    let mean_burst = bursts.iter().map(|&b| f64::from(b)).sum::<f64>() / bursts.len() as f64;
    assert!((mean_burst - 4.0).abs() < 0.3, "mean burst {mean_burst}");
    let expected = loss.expected_loss_rate();
    assert!((expected - 0.05 / 0.30).abs() < 1e-12);
    let rate = link.stats().lost as f64 / f64::from(n);
    assert!(
        (rate - expected).abs() < 0.01,
        "loss rate {rate} vs {expected}"
    );
}

#[test]
fn reorder_produces_out_of_order_arrivals() {
    let t0 = base();
    let config = LinkConfig::default().latency(ms(10)).reorder(0.2, ms(5));
    let mut link = Link::new(config, 13);
    let n = 5000u32;
    for i in 0..n {
        link.send(t0 + ms(u64::from(i)), numbered(i, 16));
    }
    let got = drain_all(&mut link);
    assert_eq!(got.len(), n as usize);
    let mut max_seen = None;
    let mut out_of_order = 0;
    for (_, b) in &got {
        let k = number_of(b);
        if max_seen.is_some_and(|m| k < m) {
            out_of_order += 1;
        }
        max_seen = max_seen.max(Some(k));
    }
    let reordered = link.stats().reordered;
    assert!(
        (reordered as f64 / f64::from(n) - 0.2).abs() < 0.03,
        "{reordered}"
    );
    assert!(out_of_order > 0);
    // Arrival times never go backwards.
    assert!(got.windows(2).all(|w| w[0].0 <= w[1].0));
}

#[test]
fn duplicate_rate() {
    let t0 = base();
    let mut link = Link::new(LinkConfig::default().latency(ms(1)).duplicate(0.1), 17);
    let n = 20_000u32;
    let mut seen = vec![0u32; n as usize];
    for i in 0..n {
        let now = t0 + ms(u64::from(i));
        link.send(now, numbered(i, 8));
        for (_, b) in drain(&mut link, now) {
            seen[number_of(&b) as usize] += 1;
        }
    }
    for (_, b) in drain_all(&mut link) {
        seen[number_of(&b) as usize] += 1;
    }
    let s = link.stats();
    let rate = s.duplicated as f64 / f64::from(n);
    assert!((rate - 0.1).abs() < 0.01, "duplicate rate {rate}");
    assert_eq!(s.delivered, u64::from(n) + s.duplicated);
    let twice = seen.iter().filter(|&&c| c == 2).count() as u64;
    assert_eq!(twice, s.duplicated);
    assert!(seen.iter().all(|&c| c == 1 || c == 2));
}

#[test]
fn duplicate_arrives_slightly_later() {
    let t0 = base();
    let mut link = Link::new(LinkConfig::default().latency(ms(3)).duplicate(1.0), 1);
    link.send(t0, Bytes::from_static(b"dup"));
    let got = drain_all(&mut link);
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].0, t0 + ms(3));
    let gap = got[1].0 - got[0].0;
    assert!(gap >= Duration::from_micros(1) && gap <= Duration::from_micros(2));
    assert_eq!(got[0].1, got[1].1);
}

#[test]
fn corruption_flips_exactly_one_bit() {
    let t0 = base();
    let mut link = Link::new(LinkConfig::default().corrupt(0.1), 23);
    let n = 20_000u32;
    let originals: Vec<Bytes> = (0..n).map(|i| numbered(i, 64)).collect();
    let mut corrupted = 0u64;
    for original in &originals {
        link.send(t0, original.clone());
        let got = link.pop_arrival(t0).unwrap();
        let flipped: u32 = original
            .iter()
            .zip(got.iter())
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert_eq!(got.len(), original.len());
        assert!(flipped <= 1);
        corrupted += u64::from(flipped);
    }
    // The caller's buffers were never mutated.
    for (i, original) in originals.iter().enumerate() {
        assert_eq!(*original, numbered(i as u32, 64));
    }
    assert_eq!(corrupted, link.stats().corrupted);
    let rate = corrupted as f64 / f64::from(n);
    assert!((rate - 0.1).abs() < 0.01, "corrupt rate {rate}");
}

#[test]
fn zero_length_datagram_is_fine() {
    let t0 = base();
    let config = LinkConfig::default()
        .corrupt(1.0)
        .duplicate(1.0)
        .jitter(ms(1))
        .bandwidth(1_000)
        .queue_limit(0);
    let mut link = Link::new(config, 0);
    link.send(t0, Bytes::new());
    let got = drain_all(&mut link);
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|(_, b)| b.is_empty()));
    let s = link.stats();
    assert_eq!((s.corrupted, s.duplicated, s.queue_dropped), (0, 1, 0));
}

#[test]
fn blackhole_drops_everything_inside_its_windows_and_nothing_outside() {
    use crate::Blackhole;

    let t0 = base();
    let hole = Blackhole::every(ms(1000), ms(200)).offset(ms(300));
    let config = LinkConfig::default().latency(ms(10)).blackhole(hole);
    let mut link = Link::new(config, 5);
    // One datagram every millisecond for ten seconds.
    let n = 10_000u32;
    for i in 0..n {
        link.send(t0 + ms(u64::from(i)), numbered(i, 8));
    }
    let got: Vec<u32> = drain_all(&mut link)
        .iter()
        .map(|(_, b)| number_of(b))
        .collect();
    let expected: Vec<u32> = (0..n)
        .filter(|&i| {
            let i = i64::from(i);
            !(i >= 300 && (i - 300) % 1000 < 200)
        })
        .collect();
    assert_eq!(got, expected);
    let s = link.stats();
    assert_eq!(s.blackholed, 2000);
    assert_eq!(s.sent, s.blackholed + s.delivered);
    assert_eq!(link.origin(), Some(t0));
}

#[test]
fn blackhole_counts_from_the_origin() {
    use crate::Blackhole;

    let t0 = base();
    let config = LinkConfig::default().blackhole(Blackhole::every(ms(100), ms(10)));
    // Without an origin, the first datagram starts the schedule: it is dropped.
    let mut link = Link::new(config.clone(), 1);
    link.send(t0 + ms(5), numbered(0, 8));
    link.send(t0 + ms(14), numbered(1, 8));
    link.send(t0 + ms(15), numbered(2, 8));
    assert_eq!(link.stats().blackholed, 2);
    // With an earlier origin, the schedule is shifted.
    let mut link = Link::new(config, 1);
    link.set_origin(t0);
    link.send(t0 + ms(5), numbered(0, 8));
    link.send(t0 + ms(10), numbered(1, 8));
    link.send(t0 + ms(105), numbered(2, 8));
    assert_eq!(link.stats().blackholed, 2);
    assert_eq!(drain_all(&mut link).len(), 1);
    // Datagrams sent before the origin are never dropped.
    let mut link = Link::new(
        LinkConfig::default().blackhole(Blackhole::every(ms(100), ms(100))),
        1,
    );
    link.set_origin(t0 + ms(50));
    link.send(t0, numbered(0, 8));
    link.send(t0 + ms(50), numbered(1, 8));
    assert_eq!(link.stats().blackholed, 1);
}

#[test]
fn blackhole_draws_no_random_numbers() {
    use crate::Blackhole;

    // An outage schedule that covers none of the datagrams (its first outage is
    // after the last of them) changes nothing, bit for bit.
    let t0 = base();
    let config = LinkConfig::default().random_loss(0.3).jitter(ms(2));
    let run = |config: LinkConfig| {
        let mut link = Link::new(config, 9);
        for i in 0..1000u32 {
            link.send(t0 + ms(u64::from(i)), numbered(i, 8));
        }
        drain_all(&mut link)
    };
    let never = config
        .clone()
        .blackhole(Blackhole::every(ms(10), ms(10)).offset(ms(1_000_000)));
    assert_eq!(run(config), run(never));
}

#[test]
fn datagrams_longer_than_the_mtu_are_dropped_and_counted_and_shorter_ones_cross() {
    let t0 = base();
    let mut link = Link::new(LinkConfig::default().ip_mtu(1500).random_loss(0.5), 3);
    let mut reference = Link::new(LinkConfig::default().random_loss(0.5), 3);
    for i in 0..1000u32 {
        let len = if i % 2 == 0 { 1472 } else { 1473 };
        link.send(t0, numbered(i, len));
        if len <= 1472 {
            reference.send(t0, numbered(i, len));
        }
    }
    assert_eq!(link.stats().too_big, 500);
    // A dropped datagram draws no random number: the others meet the fate
    // they would have met without it.
    let got: Vec<_> = drain_all(&mut link).into_iter().map(|(_, b)| b).collect();
    let want: Vec<_> = drain_all(&mut reference)
        .into_iter()
        .map(|(_, b)| b)
        .collect();
    assert_eq!(got, want);
    assert!(got.iter().all(|b| b.len() == 1472));
    // Lifting the MTU lets every size through again.
    link.set_config(LinkConfig::default().ip_mtu(1500).unlimited_mtu());
    link.send(t0, numbered(0, 9000));
    assert_eq!(drain_all(&mut link).len(), 1);
}

#[test]
#[should_panic(expected = "invalid LinkConfig")]
fn new_panics_on_invalid_config() {
    let _ = Link::new(LinkConfig::default().random_loss(2.0), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn accounting_and_ordering_hold(
        seed in any::<u64>(),
        loss in 0.0..=1.0f64,
        dup in 0.0..=1.0f64,
        reorder in 0.0..=1.0f64,
        bps in proptest::option::of(1_000u64..100_000_000),
        queue in 0usize..50_000,
        mtu in proptest::option::of(0usize..1_500),
        sends in proptest::collection::vec((0u64..2_000, 0usize..1_500), 0..200),
    ) {
        let t0 = base();
        let config = LinkConfig::default()
            .latency(ms(7))
            .jitter(ms(3))
            .blackhole(crate::Blackhole::every(ms(40), ms(5)))
            .random_loss(loss)
            .reorder(reorder, ms(4))
            .duplicate(dup)
            .corrupt(0.5)
            .queue_limit(queue);
        let config = match bps {
            Some(b) => config.bandwidth(b),
            None => config,
        };
        let config = match mtu {
            Some(m) => config.mtu(m),
            None => config,
        };
        let mut link = Link::new(config, seed);
        let mut now = t0;
        let mut last_pop = t0;
        for (gap_us, len) in sends {
            now += Duration::from_micros(gap_us);
            link.send(now, Bytes::from(vec![0xA5; len]));
            if let Some(at) = link.next_arrival() {
                // Nothing ever arrives before latency has elapsed since t0.
                prop_assert!(at >= t0 + ms(7));
            }
            while let Some(at) = link.next_arrival() {
                if at > now { break; }
                prop_assert!(at >= last_pop);
                last_pop = at;
                prop_assert!(link.pop_arrival(now).is_some());
            }
        }
        while let Some(at) = link.next_arrival() {
            prop_assert!(at >= last_pop);
            last_pop = at;
            link.pop_arrival(at);
        }
        let s = link.stats();
        prop_assert_eq!(link.in_flight(), 0);
        prop_assert_eq!(
            s.sent,
            s.too_big + s.blackholed + s.lost + s.queue_dropped + s.delivered - s.duplicated
        );
    }
}
