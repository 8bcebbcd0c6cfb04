//! Closing: by the application, by a violation, by the peer's Close or by
//! silence; keep-alive; what a retired session leaves behind.

use std::time::Instant;

use bytes::Bytes;
use tracing::debug;

use super::timer::Timer;
use crate::error::ProtocolViolation;
use crate::event::{CloseReason, TransportCode};
use crate::wire::packet::{Close, CloseCode};

use super::{CLOSE_REPEATS, MAX_RTO, SessionCore, SessionEvent, State};

impl SessionCore {
    /// What to answer, after the session is forgotten, to a peer that keeps
    /// sending: the close packet and the next packet number, if this side closed.
    pub(crate) fn retirement(&self) -> Option<(Close, u64)> {
        self.close_packet.clone().map(|c| (c, self.next_pn))
    }

    /// Closed, or closing with every unprompted Close sent.
    pub(crate) fn close_sent(&self) -> bool {
        match self.state {
            State::Closed => true,
            State::Closing => !self.close_due && self.close_repeats >= CLOSE_REPEATS,
            State::Init | State::Handshaking | State::Established => false,
        }
    }

    pub(crate) fn close(&mut self, now: Instant, code: u64) {
        self.close_with(
            now,
            CloseCode::Application(code),
            Bytes::new(),
            CloseReason::Local { code },
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
        let contacted = self.state != State::Init;
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
    pub(super) fn abandon(&mut self, why: CloseReason) {
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

    pub(super) fn on_close(&mut self, c: Close) {
        let why = match c.code {
            CloseCode::Application(code) => CloseReason::Remote { code },
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
        pair.starter.close(now, 7);
        assert_eq!(pair.starter.state(), State::Closing);
        assert_eq!(
            events(&mut pair.starter),
            [SessionEvent::Closed(CloseReason::Local { code: 7 })]
        );
        pair.exchange();
        assert!(
            events(&mut pair.listener)
                .contains(&SessionEvent::Closed(CloseReason::Remote { code: 7 })),
        );
        assert_eq!(pair.listener.state(), State::Closed);
    }

    #[test]
    fn a_closed_side_answers_late_packets_with_its_close() {
        let mut pair = Pair::established(Config::default());
        let now = pair.now;
        pair.starter.close(now, 3);
        let (close, next) = pair.starter.retirement().expect("this side closed");
        assert_eq!(close.code, CloseCode::Application(3));
        assert!(next > 0);
    }
}
