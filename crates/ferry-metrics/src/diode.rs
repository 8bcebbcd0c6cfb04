//! A diode's figures (what `ferry diode-send` and `diode-receive`
//! export): the diode sender's and receiver's statistics ([`DiodeSenderStats`], [`DiodeReceiverStats`]),
//! read at each scrape.
//!
//! The collectors hold the sender or receiver weakly: once it is gone, a
//! scrape shows only `ferry_build_info`.

use std::fmt;
use std::sync::Weak;

use ferry_diode::{DiodeReceiver, DiodeReceiverStats, DiodeSender, DiodeSenderStats};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::DescriptorEncoder;

use crate::families::{Families, gauge_value};

/// `ferry_diode_send_*`: a [`DiodeSender`]'s figures.
#[derive(Debug)]
pub struct SenderCollector(pub Weak<DiodeSender>);

impl Collector for SenderCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        match self.0.upgrade() {
            Some(sender) => encode_sender(&mut Families(encoder), &sender.stats()),
            None => Ok(()),
        }
    }
}

/// `ferry_diode_receive_*`: a [`DiodeReceiver`]'s figures.
#[derive(Debug)]
pub struct ReceiverCollector(pub Weak<DiodeReceiver>);

impl Collector for ReceiverCollector {
    fn encode(&self, encoder: DescriptorEncoder) -> fmt::Result {
        match self.0.upgrade() {
            Some(receiver) => encode_receiver(&mut Families(encoder), &receiver.stats()),
            None => Ok(()),
        }
    }
}

/// Writes a sender's figures.
pub fn encode_sender(f: &mut Families<'_>, s: &DiodeSenderStats) -> fmt::Result {
    let p = &s.protocol;
    f.counter(
        "diode_send_datagrams",
        "Datagrams sent (symbols, heartbeats, keep-alives, aborts)",
        p.datagrams,
    )?;
    f.counter("diode_send_bytes", "Bytes of the datagrams sent", p.bytes)?;
    f.counter_with(
        "diode_send_symbols",
        "RaptorQ symbols sent, by kind",
        "kind",
        &[("source", p.source_symbols), ("repair", p.repair_symbols)],
    )?;
    f.counter("diode_send_blocks", "Blocks encoded and sent", p.blocks)?;
    f.counter("diode_send_heartbeats", "Heartbeats sent", p.heartbeats)?;
    f.counter(
        "diode_send_keepalives",
        "Keep-alives sent for idle sessions",
        p.keepalives,
    )?;
    f.counter(
        "diode_send_sessions_opened",
        "Sessions opened (one per TCP connection)",
        p.sessions_opened,
    )?;
    f.counter(
        "diode_send_sessions_sent",
        "Sessions whose every datagram went out",
        p.sessions_sent,
    )?;
    f.counter(
        "diode_send_sessions_aborted",
        "Sessions aborted (the receiver discards them)",
        p.sessions_aborted,
    )?;
    let open = p
        .sessions_opened
        .saturating_sub(p.sessions_sent + p.sessions_aborted);
    f.gauge(
        "diode_send_sessions_open",
        "Sessions open now",
        gauge_value(open),
    )?;
    f.counter(
        "diode_send_calls",
        "Send calls to the sockets (a GSO run each)",
        s.sends,
    )?;
    f.counter(
        "diode_send_errors",
        "Send calls that failed: their datagrams are lost",
        s.send_errors,
    )?;
    let ports: Vec<(String, u64)> = s
        .ports
        .iter()
        .map(|port| (port.local.to_string(), port.datagrams))
        .collect();
    let ports: Vec<(&str, u64)> = ports.iter().map(|(a, n)| (a.as_str(), *n)).collect();
    f.counter_with(
        "diode_send_port_datagrams",
        "Datagrams sent from each local socket (one per UDP port)",
        "local",
        &ports,
    )
}

/// Writes a receiver's figures.
pub fn encode_receiver(f: &mut Families<'_>, s: &DiodeReceiverStats) -> fmt::Result {
    let p = &s.protocol;
    f.counter("diode_receive_datagrams", "Datagrams received", p.datagrams)?;
    f.counter(
        "diode_receive_bytes",
        "Bytes of the datagrams received",
        p.bytes,
    )?;
    f.counter_with(
        "diode_receive_dropped",
        "Datagrams dropped, by cause (socket_overflow: the kernel's socket buffer was full)",
        "cause",
        &[
            ("invalid", p.invalid),
            ("duplicate", p.duplicate_symbols),
            ("late", p.late_symbols),
            ("closed_session", p.dropped_closed_session),
            ("socket_overflow", s.socket_drops),
        ],
    )?;
    f.counter(
        "diode_receive_blocks_decoded",
        "Blocks rebuilt",
        p.blocks_decoded,
    )?;
    f.counter(
        "diode_receive_blocks_repaired",
        "Blocks rebuilt with repair symbols",
        p.blocks_repaired,
    )?;
    f.counter(
        "diode_receive_decode_failures",
        "Decode attempts short of symbols (retried with more)",
        p.decode_failures,
    )?;
    f.counter(
        "diode_receive_heartbeats",
        "Heartbeats received",
        p.heartbeats,
    )?;
    f.counter(
        "diode_receive_heartbeats_missing",
        "Times the sender fell silent for twice its heartbeat",
        p.heartbeats_missing,
    )?;
    f.counter(
        "diode_receive_sessions_started",
        "Sessions started",
        p.sessions_started,
    )?;
    f.counter(
        "diode_receive_sessions_finished",
        "Sessions received intact (length and digest checked)",
        p.sessions_finished,
    )?;
    let l = &p.losses;
    f.counter_with(
        "diode_receive_sessions_lost",
        "Sessions lost, by cause",
        "cause",
        &[
            ("beyond_repair_margin", l.beyond_repair_margin),
            ("block_expired", l.block_expired),
            ("session_expired", l.session_expired),
            ("sender_restarted", l.sender_restarted),
            ("receiver_behind", l.receiver_behind),
            ("aborted", l.aborted),
            ("digest_mismatch", l.digest_mismatch),
            ("refused", l.refused),
        ],
    )?;
    // Refused sessions never started.
    let ended = p.sessions_finished + p.sessions_lost.saturating_sub(l.refused);
    let open = p.sessions_started.saturating_sub(ended);
    f.gauge(
        "diode_receive_sessions_open",
        "Sessions being received now",
        gauge_value(open),
    )?;
    f.counter(
        "diode_receive_decode_throttles",
        "Times reading paused because decoding lagged (the socket buffer fills meanwhile)",
        s.decode_throttles,
    )?;
    f.counter(
        "diode_receive_event_queue_waits",
        "Times reading paused because the TCP side did not take data fast enough",
        s.event_queue_waits,
    )?;
    f.gauge(
        "diode_receive_queued_events",
        "Events waiting for the TCP side",
        gauge_value(s.queued_events as u64),
    )?;
    f.counter(
        "diode_receive_errors",
        "Receive calls that failed",
        s.recv_errors,
    )?;
    let ports: Vec<(String, u64)> = s
        .ports
        .iter()
        .map(|port| (port.local.to_string(), port.datagrams))
        .collect();
    let ports: Vec<(&str, u64)> = ports.iter().map(|(a, n)| (a.as_str(), *n)).collect();
    f.counter_with(
        "diode_receive_port_datagrams",
        "Datagrams received on each socket (one per UDP port)",
        "local",
        &ports,
    )
}
