//! The blocking subscription to closed sessions.

use std::time::Duration;

use ferry_async::ClosedEvent;
use thiserror::Error;

use crate::block_on::{block_on, block_on_until, deadline_after};

/// No session closed before [`ClosedEvents::recv_timeout`] gave up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("timed out waiting for a session to close")]
pub struct ClosedEventTimeout;

/// A subscription to the sessions of one endpoint that close, from
/// [`Endpoint::closed_events`](crate::Endpoint::closed_events).
///
/// Each subscription sees every session that closes after it was made, in
/// order, as [`ClosedEvent::Closed`] with the id and the
/// [`CloseReason`](crate::CloseReason). Its queue is bounded: when the
/// subscriber falls behind, the oldest events are dropped and
/// [`ClosedEvent::Missed`] says how many, in their place. Dropping the
/// subscription ends it; it does not keep the endpoint open.
///
/// Also an [`Iterator`] of events, ending once the endpoint is closed:
///
/// ```no_run
/// # fn watch(server: ferry_blocking::Endpoint) {
/// use ferry_blocking::ClosedEvent;
///
/// for event in server.closed_events() {
///     if let ClosedEvent::Closed { id, reason } = event {
///         eprintln!("session {id} ended: {reason}");
///     }
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct ClosedEvents {
    inner: ferry_async::ClosedEvents,
}

impl ClosedEvents {
    pub(crate) fn from_async(inner: ferry_async::ClosedEvents) -> Self {
        Self { inner }
    }

    /// Blocks until the next event; `None` once the endpoint is closed and
    /// every event was taken.
    pub fn recv(&mut self) -> Option<ClosedEvent> {
        block_on(self.inner.next())
    }

    /// [`recv`](Self::recv), blocking at most `timeout`: `Ok(Some(event))`,
    /// `Ok(None)` once the endpoint is closed (as `recv`), or
    /// `Err(ClosedEventTimeout)` when nothing closed in time (nothing was
    /// taken). A zero `timeout` takes an event only if one is waiting.
    pub fn recv_timeout(
        &mut self,
        timeout: Duration,
    ) -> Result<Option<ClosedEvent>, ClosedEventTimeout> {
        block_on_until(self.inner.next(), deadline_after(timeout)).ok_or(ClosedEventTimeout)
    }
}

impl Iterator for ClosedEvents {
    type Item = ClosedEvent;

    /// [`recv`](ClosedEvents::recv).
    fn next(&mut self) -> Option<ClosedEvent> {
        self.recv()
    }
}
