//! The endpoint's hold on each session: a [`Slot`] pairs the session's own
//! state with the endpoint's bookkeeping about it, and after anything touches
//! a session the endpoint collects its events, re-files its deadline in the
//! timer index, queues it to send, and forgets it (keeping a retired id) once
//! it is closed and read.

use std::time::Instant;

use crate::event::Event;
use crate::id::{SessionId, Side};
use crate::session::{SessionCore, SessionEvent, State};

use super::{Endpoint, RETIRED_IDS, Retired};

/// One session as the endpoint holds it.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) session: SessionCore,
    /// The session's key in the endpoint's timer index.
    pub(super) timer_key: Option<Instant>,
    /// Whether the session sits in the endpoint's send queue.
    pub(super) queued: bool,
    /// Counted among the endpoint's sessions whose peer's address is unproven.
    pub(super) counted_unvalidated: bool,
    /// Counted among the endpoint's incoming sessions waiting for the
    /// application's decision.
    pub(super) counted_undecided: bool,
}

impl Slot {
    pub(super) fn new(session: SessionCore, counted_unvalidated: bool) -> Self {
        Self {
            session,
            timer_key: None,
            queued: false,
            counted_unvalidated,
            counted_undecided: false,
        }
    }
}

/// A session's event as the application sees it, naming the session.
fn named(id: SessionId, event: SessionEvent) -> Option<Event> {
    Some(match event {
        SessionEvent::Connected => Event::Connected { session: id },
        SessionEvent::Readable => Event::Readable { session: id },
        SessionEvent::StreamOpened(stream) => Event::StreamOpened {
            session: id,
            stream,
        },
        SessionEvent::StreamReadable(stream) => Event::StreamReadable {
            session: id,
            stream,
        },
        SessionEvent::StreamClosed(stream, end) => Event::StreamClosed {
            session: id,
            stream,
            end,
        },
        SessionEvent::Datagram(data) => Event::Datagram { session: id, data },
        SessionEvent::SendReady => Event::SendReady { session: id },
        SessionEvent::Closed(reason) => Event::Closed {
            session: id,
            reason,
        },
        SessionEvent::Ticket => Event::Ticket { session: id },
        SessionEvent::ResumptionRefused => return None,
    })
}

impl Endpoint {
    /// After anything happened to a session: collect its events, re-index its
    /// timer, queue it to send, or forget it once closed.
    pub(super) fn touched(&mut self, id: SessionId) {
        self.refresh(id);
        self.mark_ready(id);
    }

    pub(super) fn refresh(&mut self, id: SessionId) {
        self.refresh_with(id, true);
    }

    pub(super) fn mark_ready(&mut self, id: SessionId) {
        if let Some(slot) = self.sessions.get_mut(&id)
            && !slot.queued
        {
            slot.queued = true;
            self.ready.push_back(id);
        }
    }

    /// `forget` allows removing a finished session; a live
    /// [`Session`](super::Session) handle passes `false` so that its session
    /// outlives it (its drop forgets it).
    pub(super) fn refresh_with(&mut self, id: SessionId, forget: bool) {
        let Some(slot) = self.sessions.get_mut(&id) else {
            return;
        };
        let session = &mut slot.session;
        if slot.counted_unvalidated && (session.is_validated() || session.state() == State::Closed)
        {
            slot.counted_unvalidated = false;
            self.unvalidated -= 1;
        }
        if slot.counted_undecided && session.state() != State::Incoming {
            slot.counted_undecided = false;
            self.undecided -= 1;
        }
        // Most calls (a packet sent, an ack taken in) have no event to move.
        if session.has_events() {
            let stats = &mut self.stats;
            let handshake_time = session.handshake_time();
            self.events.extend(session.drain_events().filter_map(|e| {
                match &e {
                    SessionEvent::Connected => {
                        stats.sessions_established += 1;
                        if let Some(t) = handshake_time {
                            stats.handshake_time.record(t);
                        }
                    }
                    SessionEvent::Closed(reason) => stats.sessions_closed.count(reason),
                    SessionEvent::Ticket => stats.tickets_received += 1,
                    SessionEvent::ResumptionRefused => stats.resumptions_refused += 1,
                    _ => {}
                }
                named(id, e)
            }));
        }
        self.timers
            .update(id, &mut slot.timer_key, session.next_timeout());
        // A closed session stays until its delivered messages are taken.
        if forget && session.state() == State::Closed && !session.has_unread() {
            self.timers.update(id, &mut slot.timer_key, None);
            let retired = Retired {
                remote: session.remote(),
                peer_id: session.peer_id(),
                alias: (session.side() == Side::Listener).then(|| session.peer_id()),
                close: session.retirement(),
                refused: session.refused(),
                protection: session.protection().clone(),
                stats: session.stats(),
                send_totals: session.send_totals(),
            };
            self.closed_totals.add_session(&retired.stats);
            self.sessions.remove(&id);
            self.retire(id, retired);
        }
    }

    fn retire(&mut self, id: SessionId, retired: Retired) {
        if self.retired.len() >= RETIRED_IDS
            && let Some(old) = self.retired.pop_front()
            && let Some(Retired {
                alias: Some(alias), ..
            }) = self.retired_info.remove(&old)
        {
            self.aliases.remove(&alias);
        }
        self.retired.push_back(id);
        self.retired_info.insert(id, retired);
    }
}
