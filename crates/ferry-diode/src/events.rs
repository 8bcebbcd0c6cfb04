//! The bounded queue of events between the receive thread and the
//! application.

use std::collections::VecDeque;
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Condvar, Mutex};
use std::time::Instant;

use ferry_proto::diode::ReceiverEvent;

use crate::socket::lock;

/// Events other than data that may wait, whatever their size.
const MAX_QUEUED_EVENTS: usize = 4096;

/// The bounded queue between the receive thread and the application.
#[derive(Debug)]
pub(crate) struct EventQueue {
    inner: Mutex<Queue>,
    not_empty: Condvar,
    not_full: Condvar,
    max_bytes: usize,
}

#[derive(Debug, Default)]
struct Queue {
    items: VecDeque<ReceiverEvent>,
    bytes: usize,
    closed: bool,
    /// Times a push found the queue full and waited for the application.
    waits: u64,
}

fn event_bytes(event: &ReceiverEvent) -> usize {
    match event {
        ReceiverEvent::Data { data, .. } => data.len(),
        _ => 0,
    }
}

impl EventQueue {
    /// An empty queue holding at most `max_bytes` of data (and always one
    /// event).
    pub(crate) fn new(max_bytes: usize) -> Self {
        Self {
            inner: Mutex::new(Queue::default()),
            not_empty: Condvar::new(),
            not_full: Condvar::new(),
            max_bytes,
        }
    }

    fn full(&self, q: &Queue, size: usize) -> bool {
        !q.items.is_empty()
            && (q.bytes + size > self.max_bytes || q.items.len() >= MAX_QUEUED_EVENTS)
    }

    /// Whether the queue is full now: a reader of the socket should wait.
    pub(crate) fn is_full(&self) -> bool {
        let q = lock(&self.inner);
        self.full(&q, 0)
    }

    /// Times a push waited for the application.
    pub(crate) fn waits(&self) -> u64 {
        lock(&self.inner).waits
    }

    /// Queues an event, waiting while the queue is full; `false` once closed.
    pub(crate) fn push(&self, event: ReceiverEvent) -> bool {
        let size = event_bytes(&event);
        let mut q = lock(&self.inner);
        let mut waited = false;
        loop {
            if q.closed {
                return false;
            }
            if !self.full(&q, size) {
                break;
            }
            if !waited {
                waited = true;
                q.waits += 1;
            }
            q = self
                .not_full
                .wait(q)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
        q.bytes += size;
        q.items.push_back(event);
        drop(q);
        self.not_empty.notify_one();
        true
    }

    pub(crate) fn pop(&self, deadline: Option<Instant>) -> Result<ReceiverEvent, RecvTimeoutError> {
        let mut q = lock(&self.inner);
        loop {
            if let Some(event) = q.items.pop_front() {
                q.bytes -= event_bytes(&event);
                drop(q);
                self.not_full.notify_one();
                return Ok(event);
            }
            if q.closed {
                return Err(RecvTimeoutError::Disconnected);
            }
            q = match deadline {
                None => self
                    .not_empty
                    .wait(q)
                    .unwrap_or_else(std::sync::PoisonError::into_inner),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(RecvTimeoutError::Timeout);
                    }
                    self.not_empty
                        .wait_timeout(q, left)
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .0
                }
            };
        }
    }

    pub(crate) fn close(&self) {
        lock(&self.inner).closed = true;
        self.not_empty.notify_all();
        self.not_full.notify_all();
    }

    pub(crate) fn len(&self) -> usize {
        lock(&self.inner).items.len()
    }
}
