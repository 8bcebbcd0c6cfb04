//! Diagnostics the bulk roles print on stderr after a transfer: what the
//! sessions' packets went through and what the endpoint dropped. For reading
//! a run (where did the packets go?), never a figure of the tables.

use ferry_proto::{EndpointStats, SessionStats};

/// Prints, on stderr, what the sessions' packets went through: a
/// diagnostic for reading a run (spurious losses, timeouts), not a figure.
pub(crate) fn report_losses(stats: impl Iterator<Item = SessionStats>) {
    let mut t = SessionStats::default();
    for s in stats {
        t.packets_sent += s.packets_sent;
        t.packets_received += s.packets_received;
        t.retransmitted += s.retransmitted;
        t.lost += s.lost;
        t.spurious_losses += s.spurious_losses;
        t.timeouts += s.timeouts;
        t.tail_probes += s.tail_probes;
        t.duplicates += s.duplicates;
        t.dropped_recv_memory += s.dropped_recv_memory;
        t.acks_sent += s.acks_sent;
        t.repeat_requests_sent += s.repeat_requests_sent;
        t.key_updates_sent += s.key_updates_sent;
        t.key_updates_received += s.key_updates_received;
    }
    eprintln!(
        "LOSSES sent {} received {} retransmitted {} lost {} spurious {} timeouts {} \
         tail probes {} duplicates {} dropped (memory) {} acks {} repeat requests {} \
         key updates {}/{}",
        t.packets_sent,
        t.packets_received,
        t.retransmitted,
        t.lost,
        t.spurious_losses,
        t.timeouts,
        t.tail_probes,
        t.duplicates,
        t.dropped_recv_memory,
        t.acks_sent,
        t.repeat_requests_sent,
        t.key_updates_sent,
        t.key_updates_received
    );
}

/// Prints, on stderr, the endpoint's counters of datagrams in and dropped.
pub(crate) fn report_endpoint(endpoint: &EndpointStats) {
    eprintln!(
        "ENDPOINT datagrams {} malformed {} unknown session {} wrong address {}",
        endpoint.datagrams_received,
        endpoint.dropped_malformed,
        endpoint.dropped_unknown_session,
        endpoint.dropped_wrong_address
    );
}
