//! A session endpoint's figures (what `ferry receive`, `forward` and
//! `forward-server` export) ([`Endpoint::stats`],
//! [`Endpoint::session_totals`], [`Endpoint::session_count`]), read at each
//! scrape.

use std::fmt;

use ferry_async::{Endpoint, FallbackStats};
use ferry_proto::{EndpointStats, SessionTotals};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use crate::families::{Families, gauge_value};

/// `ferry_sessions_*`, `ferry_session_*`, `ferry_endpoint_*`: an
/// endpoint's figures (any driver's: every adapter's `Endpoint` is
/// [`ferry_async::Endpoint`]).
#[derive(Debug)]
pub struct EndpointCollector(pub Endpoint);

impl Collector for EndpointCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        let open = self.0.session_count() as u64;
        let mut families = Families(encoder);
        encode(
            &mut families,
            open,
            &self.0.stats(),
            &self.0.session_totals(),
        )?;
        encode_fallback(&mut families, &self.0.fallback_stats())
    }
}

/// Writes the WebSocket fallback's counters (all zero without it).
pub fn encode_fallback(f: &mut Families<'_>, s: &FallbackStats) -> fmt::Result {
    f.counter_with(
        "fallback_connections",
        "WebSocket fallback connections, by what happened to them",
        "event",
        &[
            ("opened", s.opened),
            ("closed", s.closed),
            ("refused", s.refused),
            ("malformed", s.malformed),
        ],
    )?;
    f.counter_with(
        "fallback_datagrams",
        "Datagrams over WebSocket fallback connections: sent, received, dropped (outgoing buffer full)",
        "direction",
        &[
            ("sent", s.datagrams_sent),
            ("received", s.datagrams_received),
            ("dropped", s.datagrams_dropped),
        ],
    )
}

/// Writes an endpoint's figures: `open` sessions now, its counters, and its
/// sessions' totals.
pub fn encode(
    f: &mut Families<'_>,
    open: u64,
    e: &EndpointStats,
    t: &SessionTotals,
) -> fmt::Result {
    f.gauge(
        "sessions_open",
        "Sessions open now (handshaking or established)",
        gauge_value(open),
    )?;
    f.counter(
        "sessions_started",
        "Sessions this endpoint started (connect)",
        e.sessions_started,
    )?;
    f.counter(
        "sessions_accepted",
        "Sessions accepted from peers",
        e.sessions_accepted,
    )?;
    f.counter(
        "sessions_refused",
        "Connects refused: not accepting, full, unusable parameters or failed authentication",
        e.sessions_refused,
    )?;
    f.counter(
        "sessions_refused_by_application",
        "Incoming sessions the application refused (decide_incoming)",
        e.sessions_refused_by_application,
    )?;
    f.counter(
        "sessions_undecided",
        "Incoming sessions the application did not decide on within handshake_timeout (refused)",
        e.sessions_undecided,
    )?;
    f.counter(
        "sessions_established",
        "Handshakes completed, started or accepted",
        e.sessions_established,
    )?;
    f.counter_with(
        "sessions_closed",
        "Sessions closed, by reason",
        "reason",
        &e.sessions_closed.by_name(),
    )?;
    f.histogram(
        "session_handshake_seconds",
        "How long each handshake took at this end",
        &e.handshake_time,
    )?;
    f.counter_with(
        "session_bytes",
        "UDP payload bytes of the sessions, each way",
        "direction",
        &[("sent", t.bytes_sent), ("received", t.bytes_received)],
    )?;
    f.counter_with(
        "session_packets",
        "Datagrams of the sessions, each way",
        "direction",
        &[("sent", t.packets_sent), ("received", t.packets_received)],
    )?;
    f.counter_with(
        "session_messages",
        "Reliable messages, each way (queued by send; delivered)",
        "direction",
        &[("sent", t.messages_sent), ("received", t.messages_received)],
    )?;
    f.counter_with(
        "session_datagrams",
        "Unreliable datagrams, each way",
        "direction",
        &[
            ("sent", t.datagrams_sent),
            ("received", t.datagrams_received),
        ],
    )?;
    f.counter(
        "session_retransmitted",
        "Fragments sent again after a loss",
        t.retransmitted,
    )?;
    f.counter("session_lost_packets", "Packets declared lost", t.lost)?;
    f.counter(
        "session_spurious_losses",
        "Packets declared lost that arrived after all (reordering)",
        t.spurious_losses,
    )?;
    f.counter(
        "session_retransmission_timeouts",
        "Retransmission timeouts that fired",
        t.timeouts,
    )?;
    f.counter(
        "session_tail_probes",
        "Tail loss probes sent",
        t.tail_probes,
    )?;
    f.counter(
        "session_duplicates",
        "Fragments or packets received twice, dropped",
        t.duplicates,
    )?;
    f.counter(
        "session_migrations",
        "Times a session moved to a new peer address",
        t.migrations,
    )?;
    f.counter_with(
        "session_key_updates",
        "Key updates: this side's sending keys moved on (sent), the peer's followed (received)",
        "direction",
        &[
            ("sent", t.key_updates_sent),
            ("received", t.key_updates_received),
        ],
    )?;
    f.histogram(
        "session_rtt_seconds",
        "Round-trip time samples",
        &t.rtt_samples,
    )?;
    f.counter(
        "endpoint_datagrams_received",
        "Datagrams received by the endpoint",
        e.datagrams_received,
    )?;
    f.counter_with(
        "endpoint_dropped",
        "Datagrams dropped, by cause",
        "cause",
        &[
            ("malformed", e.dropped_malformed),
            ("unknown_session", e.dropped_unknown_session),
            ("wrong_address", e.dropped_wrong_address),
            ("unauthenticated", e.dropped_unauthenticated),
            ("rate_limited", e.dropped_rate_limited),
            ("invalid_token", e.dropped_invalid_token),
            ("receive_memory", t.dropped_recv_memory),
        ],
    )?;
    f.counter(
        "endpoint_retries_sent",
        "Connects answered with a retry (address validation under load)",
        e.retries_sent,
    )?;
    f.counter_with(
        "endpoint_tickets",
        "Resumption tickets, by what happened to them",
        "event",
        &[
            ("issued", e.tickets_issued),
            ("received", e.tickets_received),
            ("resumed", e.sessions_resumed),
            ("refused", e.tickets_refused),
            ("fell_back", e.resumptions_refused),
        ],
    )?;
    f.counter_with(
        "endpoint_early_data",
        "Connects carrying early data, by whether the listener delivered it",
        "outcome",
        &[
            ("accepted", e.early_data_accepted),
            ("refused", e.early_data_refused),
        ],
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[derive(Debug)]
    struct Fixed(EndpointStats, SessionTotals);

    impl Collector for Fixed {
        fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
            let mut families = Families(encoder);
            encode(&mut families, 2, &self.0, &self.1)?;
            encode_fallback(
                &mut families,
                &FallbackStats {
                    opened: 3,
                    datagrams_dropped: 9,
                    ..FallbackStats::default()
                },
            )
        }
    }

    #[test]
    fn an_endpoints_figures_read_as_prometheus_families() {
        let mut e = EndpointStats {
            sessions_accepted: 5,
            dropped_unauthenticated: 3,
            ..EndpointStats::default()
        };
        e.sessions_closed.remote = 4;
        e.handshake_time.record(Duration::from_millis(3));
        let mut t = SessionTotals {
            bytes_sent: 1_000,
            bytes_received: 2_000,
            key_updates_sent: 7,
            ..SessionTotals::default()
        };
        t.rtt_samples.record(Duration::from_micros(300));
        t.rtt_samples.record(Duration::from_secs(20));
        let mut registry = prometheus_client::registry::Registry::with_prefix("ferry");
        registry.register_collector(Box::new(Fixed(e, t)));
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &registry).unwrap();
        for line in [
            "ferry_sessions_open 2",
            "ferry_sessions_accepted_total 5",
            "ferry_sessions_closed_total{reason=\"remote\"} 4",
            "ferry_session_bytes_total{direction=\"received\"} 2000",
            "ferry_session_key_updates_total{direction=\"sent\"} 7",
            "ferry_endpoint_dropped_total{cause=\"unauthenticated\"} 3",
            "ferry_session_rtt_seconds_bucket{le=\"0.00025\"} 0",
            "ferry_session_rtt_seconds_bucket{le=\"0.0005\"} 1",
            "ferry_session_rtt_seconds_bucket{le=\"10\"} 1",
            "ferry_session_rtt_seconds_bucket{le=\"+Inf\"} 2",
            "ferry_session_rtt_seconds_count 2",
            "ferry_session_handshake_seconds_count 1",
            "ferry_fallback_connections_total{event=\"opened\"} 3",
            "ferry_fallback_datagrams_total{direction=\"dropped\"} 9",
        ] {
            assert!(text.lines().any(|l| l == line), "{line:?} not in:\n{text}");
        }
    }
}
