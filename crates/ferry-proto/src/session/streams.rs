//! Streams: the application's send, open, finish and reset, datagrams out,
//! the peer's new streams and their control frames.

use std::time::Instant;

use bytes::Bytes;

use crate::config::Config;
use crate::error::{DatagramError, ProtocolViolation, SendError, StreamError};
use crate::flow::WindowTuner;
use crate::message::SendProgress;
use crate::recovery::sent::SentKind;
use crate::stream::{ControlKind, Stream};
use crate::wire::packet::Packet;
use crate::wire::stream::{StreamId, StreamKind, StreamOp};

use super::{MAX_REFUSALS, SessionCore, SessionEvent, State};

/// A new stream's receive window, as configured.
pub(super) fn stream_window(config: &Config) -> WindowTuner {
    WindowTuner::new(
        config.stream_recv_window as u64,
        config.max_stream_recv_window as u64,
    )
}

impl SessionCore {
    pub(crate) fn send(&mut self, stream: StreamId, data: Bytes) -> Result<(), SendError> {
        if matches!(self.state, State::Closing | State::Closed) {
            return Err(SendError::Closed);
        }
        let max = self.max_message_size();
        if data.len() > max {
            return Err(SendError::TooLarge {
                size: data.len(),
                max,
            });
        }
        let buffered = self.buffered();
        let (session_limit, stream_limit) = self.send_limits();
        let Some(stream) = self.streams.get_mut(&stream) else {
            return Err(SendError::UnknownStream);
        };
        if stream.send_closed {
            return Err(if stream.refused {
                SendError::UnknownStream
            } else {
                SendError::StreamClosed
            });
        }
        // Per stream, then per session: a stream whose reader stopped fills
        // its own share and blocks, while the others keep sending.
        let mine = stream.send.buffered();
        if mine > 0 && mine + data.len() > stream_limit {
            stream.send_blocked = true;
            return Err(SendError::Blocked);
        }
        if buffered > 0 && buffered + data.len() > session_limit {
            self.send_blocked = true;
            return Err(SendError::Blocked);
        }
        stream.send.push(data);
        stream.sent_messages += 1;
        self.stats.messages_sent += 1;
        Ok(())
    }

    /// Bytes of messages not yet acknowledged, over every stream.
    pub(super) fn buffered(&self) -> usize {
        self.streams.values().map(|s| s.send.buffered()).sum()
    }

    /// Opens a stream of `kind`; the peer learns of it with its first packet.
    pub(crate) fn open_stream(&mut self, kind: StreamKind) -> Result<StreamId, StreamError> {
        if !matches!(self.state, State::Established) {
            return Err(StreamError::NotConnected);
        }
        let open = self
            .streams
            .keys()
            .filter(|&&id| id != StreamId::DEFAULT && id.opener() == self.side)
            .count() as u64;
        if open >= self.peer_max_streams {
            return Err(StreamError::TooManyStreams {
                max: self.peer_max_streams,
            });
        }
        let seq = &mut self.next_local_seq[kind.bits() as usize];
        let id = StreamId::new(*seq, kind, self.side);
        *seq += 1;
        let stream = Stream::new(
            id,
            kind,
            self.config.max_message_size,
            self.peer_stream_window,
            stream_window(&self.config),
        );
        self.streams.insert(id, Box::new(stream));
        Ok(id)
    }

    /// This side sends no more on `stream`; the peer reads what was sent, then
    /// the end.
    pub(crate) fn finish_stream(&mut self, stream: StreamId) -> Result<(), SendError> {
        let s = self
            .streams
            .get_mut(&stream)
            .ok_or(SendError::UnknownStream)?;
        if s.send_closed {
            return Err(SendError::StreamClosed);
        }
        s.send_closed = true;
        s.end = Some(StreamOp::Finish {
            messages: s.sent_messages,
        });
        s.end_due = true;
        Ok(())
    }

    /// This side abandons sending on `stream`: what is not delivered yet is
    /// dropped at both ends, and the peer learns `code`.
    pub(crate) fn reset_stream(&mut self, stream: StreamId, code: u64) -> Result<(), SendError> {
        let s = self
            .streams
            .get_mut(&stream)
            .ok_or(SendError::UnknownStream)?;
        if s.send_closed && !matches!(s.end, Some(StreamOp::Finish { .. })) {
            return Err(SendError::StreamClosed);
        }
        s.send_closed = true;
        s.send.clear();
        s.end = Some(StreamOp::Reset {
            code,
            messages: s.sent_messages,
        });
        s.end_due = true;
        s.end_acked = false;
        Ok(())
    }

    /// How far the peer acknowledged what was sent on `stream`; `None` once
    /// the stream is over at both ends and forgotten (or never was).
    pub(crate) fn send_progress(&self, stream: StreamId) -> Option<SendProgress> {
        self.streams.get(&stream).map(|s| s.send_progress())
    }

    /// [`send_progress`](Self::send_progress) summed over every stream the
    /// session ever had, forgotten ones included.
    pub(crate) fn send_totals(&self) -> SendProgress {
        self.streams
            .values()
            .fold(self.retired_send, |sum, s| sum.add(s.send_progress()))
    }

    /// The ids of the streams open on this session.
    pub(crate) fn stream_ids(&self) -> impl Iterator<Item = StreamId> + '_ {
        self.streams.keys().copied()
    }

    pub(crate) fn send_datagram(&mut self, data: Bytes) -> Result<(), DatagramError> {
        if self.state != State::Established {
            return Err(DatagramError::NotConnected);
        }
        let max = self.max_datagram_size();
        if data.len() > max {
            return Err(DatagramError::TooLarge {
                size: data.len(),
                max,
            });
        }
        if self.datagrams_out.len() >= self.config.datagram_queue {
            self.datagrams_out.pop_front();
            self.stats.datagrams_dropped += 1;
        }
        self.datagrams_out.push_back(data);
        Ok(())
    }

    /// The stream a peer's packet names: an open one, or one the peer opens
    /// now (with every lower one of its kind it has not used yet). `None` for
    /// a stream that is over (late packets are dropped) or refused; `Err` for
    /// an id the peer cannot use.
    pub(super) fn peer_stream(
        &mut self,
        id: StreamId,
    ) -> Result<Option<StreamId>, ProtocolViolation> {
        if self.streams.contains_key(&id) {
            return Ok(Some(id));
        }
        let sid = id;
        let kind = sid.kind().ok_or(ProtocolViolation::UnknownStream)?;
        let k = kind.bits() as usize;
        if sid.opener() == self.side {
            // Ours: over already, or never opened.
            return if sid.sequence() < self.next_local_seq[k] {
                Ok(None)
            } else {
                Err(ProtocolViolation::UnknownStream)
            };
        }
        if sid.sequence() < self.next_peer_seq[k] {
            return Ok(None);
        }
        let mut open = self
            .streams
            .keys()
            .filter(|&&i| i != StreamId::DEFAULT && i.opener() != self.side)
            .count();
        let max = self.config.max_streams;
        // Opening stream n opens every lower one of its kind: a peer never has
        // more than `max_streams` of them opening at once, so a larger jump is
        // a violation (and the loop below stays short).
        if sid.sequence() - self.next_peer_seq[k] >= max as u64 {
            return Err(ProtocolViolation::StreamLimit);
        }
        for seq in self.next_peer_seq[k]..=sid.sequence() {
            let new = StreamId::new(seq, kind, sid.opener());
            if open >= max {
                if self.refusals.len() < MAX_REFUSALS {
                    self.refusals.push_back(new);
                }
                continue;
            }
            open += 1;
            let stream = Stream::new(
                new,
                kind,
                self.config.max_message_size,
                self.peer_stream_window,
                stream_window(&self.config),
            );
            self.streams.insert(new, Box::new(stream));
            self.events.push_back(SessionEvent::StreamOpened(new));
        }
        self.next_peer_seq[k] = sid.sequence() + 1;
        Ok(self.streams.contains_key(&id).then_some(id))
    }

    pub(super) fn on_stream_control(&mut self, now: Instant, id: StreamId, op: StreamOp) {
        if op == StreamOp::Refuse || matches!(op, StreamOp::Credit { .. }) {
            // About a stream this side sends on (ours, or the peer's).
            let Some(s) = self.streams.get_mut(&id) else {
                return;
            };
            match op {
                StreamOp::Credit { max_data } => {
                    s.peer_max_data = s.peer_max_data.max(max_data);
                }
                _ => {
                    s.refused = true;
                    s.send_closed = true;
                    s.send.clear();
                    self.check_stream_end(id);
                }
            }
            return;
        }
        let id = match self.peer_stream(id) {
            Ok(Some(id)) => id,
            Ok(None) => return,
            Err(v) => {
                self.violation(now, v);
                return;
            }
        };
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        match op {
            StreamOp::Finish { messages } => {
                s.peer_final.get_or_insert(messages);
            }
            StreamOp::Reset { code, .. } if s.peer_reset.is_none() => {
                s.peer_reset = Some(code);
                // What was received but will never be read returns as credit.
                if s.kind.is_reliable() {
                    let unread = s.received_cost - s.consumed;
                    s.consumed = s.received_cost;
                    self.consumed += unread;
                }
                s.inbox.clear();
                self.release_reservations(id);
                self.sync_recv_memory();
            }
            _ => {}
        }
        self.check_stream_end(id);
    }

    /// A stream's finish or reset, a credit update, or a refusal.
    pub(super) fn poll_stream_control(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<usize> {
        let (id, op, kind) = if let Some(id) = self.refusals.pop_front() {
            (id, StreamOp::Refuse, ControlKind::Refuse)
        } else {
            let srtt = self.rtt.smoothed();
            // A finish waits for the stream's data to be sent and acknowledged
            // (so the peer can tell the stream is complete); a reset does not.
            let end_ready = |s: &Stream| {
                s.end_due && (s.send.is_empty() || matches!(s.end, Some(StreamOp::Reset { .. })))
            };
            let (&id, s) = self
                .streams
                .iter_mut()
                .find(|(_, s)| end_ready(s) || s.credit_due)?;
            if end_ready(s) {
                s.end_due = false;
                (id, s.end?, ControlKind::End)
            } else {
                s.credit_due = false;
                s.advertised = s.consumed + s.window.update(now, s.consumed, srtt);
                (
                    id,
                    StreamOp::Credit {
                        max_data: s.advertised,
                    },
                    ControlKind::Credit,
                )
            }
        };
        let (pn, len) = self.emit(buf, &Packet::StreamControl { stream: id, op });
        self.on_sent(now, pn, len, SentKind::Control { stream: id, kind });
        Some(len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::id::Side;
    use crate::session::test_pair::Pair;
    use std::time::Duration;

    #[test]
    fn streams_are_numbered_by_kind_and_opener() {
        let mut pair = Pair::established(Config::default());
        let a = pair
            .starter
            .open_stream(StreamKind::ReliableUnordered)
            .unwrap();
        let b = pair
            .starter
            .open_stream(StreamKind::ReliableUnordered)
            .unwrap();
        let c = pair.listener.open_stream(StreamKind::Unreliable).unwrap();
        assert_eq!(
            (a.kind(), a.opener(), a.sequence()),
            (Some(StreamKind::ReliableUnordered), Side::Starter, 0)
        );
        assert_eq!(
            (b.kind(), b.opener(), b.sequence()),
            (Some(StreamKind::ReliableUnordered), Side::Starter, 1)
        );
        assert_eq!(
            (c.kind(), c.opener(), c.sequence()),
            (Some(StreamKind::Unreliable), Side::Listener, 0)
        );
        assert!(pair.starter.stream_ids().eq([StreamId::DEFAULT, a, b]));
    }

    #[test]
    fn no_stream_opens_before_the_handshake() {
        let mut pair = Pair::connecting(Config::default());
        assert!(matches!(
            pair.starter.open_stream(StreamKind::ReliableOrdered),
            Err(StreamError::NotConnected)
        ));
    }

    #[test]
    fn a_peer_learns_of_a_stream_with_its_first_message() {
        let mut pair = Pair::established(Config::default());
        let id = pair
            .starter
            .open_stream(StreamKind::ReliableOrdered)
            .unwrap();
        pair.starter.send(id, Bytes::from_static(b"first")).unwrap();
        pair.exchange();
        let events = crate::session::test_pair::events(&mut pair.listener);
        assert!(
            events.contains(&SessionEvent::StreamOpened(id)),
            "{events:?}"
        );
        assert_eq!(pair.listener.recv(id).as_deref(), Some(&b"first"[..]));
    }

    #[test]
    fn progress_follows_the_peers_acknowledgements() {
        let mut pair = Pair::established(Config::default());
        let id = pair
            .starter
            .open_stream(StreamKind::ReliableOrdered)
            .unwrap();
        for m in [&b"one"[..], b"two", b"three"] {
            pair.starter.send(id, Bytes::from_static(m)).unwrap();
        }
        let p = pair.starter.send_progress(id).unwrap();
        assert_eq!((p.queued, p.acknowledged), (3, 0));
        pair.exchange();
        pair.now += Duration::from_millis(100);
        pair.starter.handle_timeout(pair.now);
        pair.listener.handle_timeout(pair.now);
        pair.exchange();
        let p = pair.starter.send_progress(id).unwrap();
        assert!(p.is_complete());
        assert_eq!(p.finishes_acknowledged, 0, "not finished");
        assert_eq!(pair.starter.send_totals().queued, 3);
        assert_eq!(pair.listener.send_progress(id).unwrap().queued, 0);
        pair.starter.finish_stream(id).unwrap();
        pair.exchange();
        pair.now += Duration::from_millis(100);
        pair.starter.handle_timeout(pair.now);
        pair.listener.handle_timeout(pair.now);
        pair.exchange();
        let p = pair.starter.send_progress(id).unwrap();
        assert_eq!(p.finishes_acknowledged, 1);
    }

    #[test]
    fn a_reset_counts_what_it_dropped_and_totals_outlive_the_stream() {
        let mut pair = Pair::established(Config::default());
        let id = pair
            .starter
            .open_stream(StreamKind::ReliableOrdered)
            .unwrap();
        pair.starter.send(id, Bytes::from_static(b"lost")).unwrap();
        pair.starter.reset_stream(id, 7).unwrap();
        let p = pair.starter.send_progress(id).unwrap();
        assert_eq!((p.queued, p.acknowledged, p.dropped), (1, 0, 1));
        pair.exchange();
        pair.starter.finish_stream(StreamId::DEFAULT).ok();
        // Over at both ends once the peer's side ends too.
        pair.listener.finish_stream(id).unwrap();
        pair.exchange();
        pair.now += Duration::from_millis(100);
        pair.starter.handle_timeout(pair.now);
        pair.listener.handle_timeout(pair.now);
        pair.exchange();
        assert_eq!(pair.starter.send_progress(id), None, "forgotten");
        let totals = pair.starter.send_totals();
        assert_eq!((totals.queued, totals.dropped), (1, 1));
        assert!(!totals.is_complete());
    }
}
