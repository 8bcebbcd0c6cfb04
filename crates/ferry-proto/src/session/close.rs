//! Closing: by the application, by a violation, by the peer's Close or by
//! silence; keep-alive; what a retired session leaves behind.

use std::time::Instant;

use bytes::Bytes;
use tracing::debug;

use super::timer::Timer;
use crate::error::ProtocolViolation;
use crate::event::{CloseReason, CloseText, TransportCode};
use crate::wire::packet::{Close, CloseCode};

use super::{CLOSE_REPEATS, MAX_RTO, SessionCore, SessionEvent, State};

impl SessionCore {
    /// What to answer, after the session is forgotten, to a peer that keeps
    /// sending: the close packet and the next packet number, if this side closed.
    pub(crate) fn retirement(&self) -> Option<(Close, u64)> {
        self.close_packet.clone().map(|c| (c, self.next_pn))
    }

    /// The endpoint refused this incoming session statelessly with `close`:
    /// kept so that a Connect repeated after the session is retired gets it
    /// again (the first may have been lost).
    pub(crate) fn keep_refusal(&mut self, close: Close) {
        self.close_packet = Some(close);
        self.refused = true;
    }

    /// Whether the close this session retires with is a refusal of it.
    pub(crate) fn refused(&self) -> bool {
        self.refused
    }

    /// Closed, or closing with every unprompted Close sent.
    pub(crate) fn close_sent(&self) -> bool {
        match self.state {
            State::Closed => true,
            State::Closing => !self.close_due && self.close_repeats >= CLOSE_REPEATS,
            State::Init | State::Incoming | State::Handshaking | State::Established => false,
        }
    }

    /// Closes with an application `code` and `reason` (empty for none): the
    /// Close carries both. An incoming session not yet decided on sends
    /// nothing from here (its keys are the starter's to learn; the endpoint
    /// answers it statelessly, see `Endpoint::refuse_incoming`).
    pub(crate) fn close(&mut self, now: Instant, code: u64, reason: CloseText) {
        if self.state == State::Incoming {
            self.abandon(CloseReason::Local { code, reason });
            return;
        }
        self.close_with(
            now,
            CloseCode::Application(code),
            reason.to_bytes(),
            CloseReason::Local { code, reason },
        );
    }

    pub(super) fn close_with(
        &mut self,
        now: Instant,
        code: CloseCode,
        reason: Bytes,
        why: CloseReason,
    ) {
        if matches!(self.state, State::Closing | State::Closed) {
            return;
        }
        debug!(session = %self.id, reason = %why, "closing session");
        let contacted = !matches!(self.state, State::Init | State::Incoming);
        for stream in self.streams.values_mut() {
            stream.send.clear();
        }
        self.datagrams_out.clear();
        self.timers.clear_all();
        self.events.push_back(SessionEvent::Closed(why));
        if contacted {
            // Checked before the state changes: what arrived is told first.
            self.ack_before_close =
                self.riding.is_some() || (self.state == State::Established && self.acks.ack_owed());
            self.state = State::Closing;
            self.close_packet = Some(Close { code, reason });
            self.close_due = true;
            // The close is repeated a few times, one RTO apart, in case it is lost;
            // after the drain period the endpoint still answers the peer's packets
            // with it.
            let rto = self
                .rtt
                .rto(self.peer_max_ack_delay, self.config.delivery_timeout);
            self.timers.set(Timer::Retransmit, now + rto);
            let drain = (rto * (CLOSE_REPEATS + 2)).min(MAX_RTO);
            self.timers.set(Timer::Drain, now + drain);
        } else {
            self.state = State::Closed;
        }
    }

    /// The peer cannot be reached while handshaking: give up at once.
    pub(crate) fn refuse(&mut self) {
        if matches!(self.state, State::Init | State::Handshaking) {
            self.abandon(CloseReason::Refused);
        }
    }

    /// Ends the session at once, without telling the peer (it is gone or silent).
    pub(crate) fn abandon(&mut self, why: CloseReason) {
        if self.state == State::Closed {
            return;
        }
        debug!(session = %self.id, reason = %why, "session abandoned");
        for stream in self.streams.values_mut() {
            stream.send.clear();
        }
        self.datagrams_out.clear();
        self.timers.clear_all();
        if self.state != State::Closing {
            self.events.push_back(SessionEvent::Closed(why));
        }
        self.state = State::Closed;
    }

    pub(super) fn violation(&mut self, now: Instant, v: ProtocolViolation) {
        debug!(session = %self.id, violation = %v, "peer broke the protocol");
        let code = TransportCode::for_violation(v) as u64;
        self.close_with(
            now,
            CloseCode::Transport(code),
            Bytes::from(v.to_string()),
            CloseReason::ProtocolError(v),
        );
    }

    /// The peer's Close. Before the handshake completed, an application code
    /// is the listener application's refusal
    /// ([`CloseReason::Rejected`]); after, the peer's close.
    pub(super) fn on_close(&mut self, c: Close) {
        let reason = CloseText::from_wire(&c.reason);
        let why = match c.code {
            CloseCode::Application(code)
                if matches!(self.state, State::Init | State::Handshaking) =>
            {
                CloseReason::Rejected { code, reason }
            }
            CloseCode::Application(code) => CloseReason::Remote { code, reason },
            CloseCode::Transport(code) => TransportCode::reason(code),
        };
        self.abandon(why);
    }

    pub(super) fn arm_keepalive(&mut self) {
        let from = if self.pings_unanswered == 0 {
            self.last_recv
        } else {
            self.last_ping.map_or(self.last_recv, |(_, t)| t)
        };
        self.timers
            .set(Timer::KeepAlive, from + self.config.ping_interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::session::test_pair::{Pair, events};

    #[test]
    fn a_close_reaches_the_peer_with_its_code() {
        let mut pair = Pair::established(Config::default());
        let now = pair.now;
        pair.starter.close(now, 7, CloseText::EMPTY);
        assert_eq!(pair.starter.state(), State::Closing);
        assert_eq!(
            events(&mut pair.starter),
            [SessionEvent::Closed(CloseReason::Local {
                code: 7,
                reason: CloseText::EMPTY
            })]
        );
        pair.exchange();
        assert!(
            events(&mut pair.listener).contains(&SessionEvent::Closed(CloseReason::Remote {
                code: 7,
                reason: CloseText::EMPTY
            })),
        );
        assert_eq!(pair.listener.state(), State::Closed);
    }

    #[test]
    fn a_close_with_a_reason_reaches_the_peer_with_its_code_and_text() {
        let mut pair = Pair::established(Config::default());
        let now = pair.now;
        pair.starter
            .close(now, 9, CloseText::new("maintenance: back at noon"));
        let (close, _) = pair.starter.retirement().expect("this side closed");
        assert_eq!(&close.reason[..], b"maintenance: back at noon");
        pair.exchange();
        assert!(
            events(&mut pair.listener).contains(&SessionEvent::Closed(CloseReason::Remote {
                code: 9,
                reason: CloseText::new("maintenance: back at noon"),
            })),
        );
    }

    #[test]
    fn a_close_whose_text_is_not_utf8_is_read_lossily() {
        let mut pair = Pair::established(Config::default());
        pair.listener.on_close(Close {
            code: CloseCode::Application(4),
            reason: Bytes::from_static(b"caf\xc3"),
        });
        assert_eq!(
            events(&mut pair.listener),
            [SessionEvent::Closed(CloseReason::Remote {
                code: 4,
                reason: CloseText::new("caf\u{fffd}"),
            })]
        );
    }

    #[test]
    fn a_closed_side_answers_late_packets_with_its_close() {
        let mut pair = Pair::established(Config::default());
        let now = pair.now;
        pair.starter.close(now, 3, CloseText::EMPTY);
        let (close, next) = pair.starter.retirement().expect("this side closed");
        assert_eq!(close.code, CloseCode::Application(3));
        assert!(next > 0);
    }
}
