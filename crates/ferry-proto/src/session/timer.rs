//! A session's timers: one fixed slot per kind, the next wake-up is their minimum.

use std::time::Instant;

/// Every timer a session can arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    /// Resend the connect packet.
    Handshake = 0,
    /// Give up the handshake.
    HandshakeDeadline = 1,
    /// A packet below the largest acknowledged one becomes lost by time.
    /// Also armed for the very instant an ack arrives: loss detection runs
    /// once every datagram that arrived with the ack has been taken in, so
    /// that a driver that fell behind, handing over a batch of acks at once,
    /// never has the first declare lost what the next acknowledges.
    Loss = 6,
    /// Retransmission timeout, or a probe when flow control blocks the sender.
    Retransmit = 2,
    /// A delayed ack falls due.
    Ack = 3,
    /// Nothing heard for a while: ping, or give up.
    KeepAlive = 4,
    /// The closing period ends and the session is forgotten.
    Drain = 5,
    /// The pacer releases the next packet.
    Pace = 7,
    /// The peer's previous receive keys are wiped (key updates).
    KeyDiscard = 8,
}

const COUNT: usize = 9;
const ALL: [Timer; COUNT] = [
    Timer::Handshake,
    Timer::HandshakeDeadline,
    Timer::Retransmit,
    Timer::Ack,
    Timer::KeepAlive,
    Timer::Drain,
    Timer::Loss,
    Timer::Pace,
    Timer::KeyDiscard,
];

/// The deadlines, one per [`Timer`].
#[derive(Debug, Clone, Default)]
pub(crate) struct Timers([Option<Instant>; COUNT]);

impl Timers {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        self.0[timer as usize] = Some(at);
    }

    pub(crate) fn clear(&mut self, timer: Timer) {
        self.0[timer as usize] = None;
    }

    pub(crate) fn get(&self, timer: Timer) -> Option<Instant> {
        self.0[timer as usize]
    }

    pub(crate) fn clear_all(&mut self) {
        self.0 = [None; COUNT];
    }

    /// The earliest deadline.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }

    /// Disarms and returns every timer that expired at `now`.
    pub(crate) fn expired(&mut self, now: Instant) -> impl Iterator<Item = Timer> + use<> {
        let mut fired = [None; COUNT];
        for (slot, timer) in ALL.iter().enumerate() {
            if self.0[slot].is_some_and(|t| t <= now) {
                self.0[slot] = None;
                fired[slot] = Some(*timer);
            }
        }
        fired.into_iter().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn next_and_expiry() {
        let t0 = crate::test_support::epoch();
        let mut t = Timers::default();
        assert_eq!(t.next(), None);
        t.set(Timer::KeepAlive, t0 + Duration::from_secs(2));
        t.set(Timer::Ack, t0 + Duration::from_secs(1));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(1)));
        let fired: Vec<_> = t.expired(t0 + Duration::from_secs(1)).collect();
        assert_eq!(fired, vec![Timer::Ack]);
        assert_eq!(t.get(Timer::Ack), None);
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(2)));
    }
}
