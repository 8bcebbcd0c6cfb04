//! The endpoint-wide bound on received data held in memory.
//!
//! Each session's receive window bounds what its peer may make it hold; with
//! thousands of sessions those bounds add up to more than a machine has. So
//! the sessions of one endpoint also share one budget,
//! `Config::max_recv_memory`: the flow-control cost of reliable data received
//! and not yet taken by the application (fragments being reassembled, and
//! messages delivered but unread). A data packet that would take the total
//! beyond it is dropped before it is acknowledged, so its sender sends it
//! again later: the bound costs throughput, never data.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The bytes held by all sessions of one endpoint (clones share the count).
#[derive(Debug, Clone, Default)]
pub(crate) struct RecvMemory(Arc<AtomicU64>);

impl RecvMemory {
    /// Bytes held now.
    pub(crate) fn used(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// One session's share changed from `old` to `new` bytes.
    pub(crate) fn update(&self, old: u64, new: u64) {
        if new > old {
            self.0.fetch_add(new - old, Ordering::Relaxed);
        } else if old > new {
            self.0.fetch_sub(old - new, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up_across_clones() {
        let a = RecvMemory::default();
        let b = a.clone();
        a.update(0, 100);
        b.update(0, 50);
        assert_eq!(a.used(), 150);
        a.update(100, 30);
        assert_eq!(b.used(), 80);
        b.update(50, 0);
        a.update(30, 0);
        assert_eq!(a.used(), 0);
    }
}
