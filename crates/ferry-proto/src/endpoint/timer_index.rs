//! The endpoint-wide timer index: each session's earliest deadline, sorted,
//! so that `poll_timeout` reads one entry and `handle_timeout` visits only the
//! sessions whose deadline passed. Idle sessions cost nothing per call.

use std::collections::BTreeSet;
use std::time::Instant;

use crate::id::SessionId;

/// Sessions by their earliest deadline. A session has at most one entry; its
/// slot remembers the entry's key, so that moving it costs two lookups.
#[derive(Debug, Default)]
pub(super) struct TimerIndex(BTreeSet<(Instant, SessionId)>);

impl TimerIndex {
    /// The earliest deadline of any session.
    pub(super) fn first(&self) -> Option<Instant> {
        self.0.first().map(|&(at, _)| at)
    }

    /// Files session `id` under `next`, moving it from `key` (where it is
    /// filed now); `key` becomes `next`.
    pub(super) fn update(
        &mut self,
        id: SessionId,
        key: &mut Option<Instant>,
        next: Option<Instant>,
    ) {
        if *key == next {
            return;
        }
        if let Some(old) = key.take() {
            self.0.remove(&(old, id));
        }
        if let Some(at) = next {
            self.0.insert((at, id));
        }
        *key = next;
    }

    /// Takes out the next session whose deadline is at or before `now`.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<SessionId> {
        let &(at, id) = self.0.first()?;
        if at > now {
            return None;
        }
        self.0.pop_first();
        Some(id)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn id(n: u8) -> SessionId {
        SessionId([n; 8])
    }

    #[test]
    fn the_first_deadline_is_the_earliest_of_all_sessions() {
        let t0 = crate::test_support::epoch();
        let mut index = TimerIndex::default();
        let (mut a, mut b) = (None, None);
        index.update(id(1), &mut a, Some(t0 + Duration::from_millis(30)));
        index.update(id(2), &mut b, Some(t0 + Duration::from_millis(10)));
        assert_eq!(index.first(), Some(t0 + Duration::from_millis(10)));
        assert_eq!(b, Some(t0 + Duration::from_millis(10)));
    }

    #[test]
    fn moving_a_deadline_leaves_one_entry_per_session() {
        let t0 = crate::test_support::epoch();
        let mut index = TimerIndex::default();
        let mut key = None;
        index.update(id(1), &mut key, Some(t0 + Duration::from_millis(10)));
        index.update(id(1), &mut key, Some(t0 + Duration::from_millis(50)));
        assert_eq!(index.first(), Some(t0 + Duration::from_millis(50)));
        index.update(id(1), &mut key, None);
        assert_eq!((index.first(), key), (None, None));
    }

    #[test]
    fn only_sessions_whose_deadline_passed_are_due() {
        let t0 = crate::test_support::epoch();
        let mut index = TimerIndex::default();
        let (mut a, mut b, mut c) = (None, None, None);
        index.update(id(1), &mut a, Some(t0 + Duration::from_millis(5)));
        index.update(id(2), &mut b, Some(t0 + Duration::from_millis(10)));
        index.update(id(3), &mut c, Some(t0 + Duration::from_millis(20)));
        let now = t0 + Duration::from_millis(10);
        let due: Vec<_> = std::iter::from_fn(|| index.pop_due(now)).collect();
        assert_eq!(due, vec![id(1), id(2)]);
        assert_eq!(index.first(), Some(t0 + Duration::from_millis(20)));
    }
}
