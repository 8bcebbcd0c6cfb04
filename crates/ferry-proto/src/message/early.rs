//! A send queue's first messages as early data: taken whole before any
//! fragment of them left, and settled once the peer took them from the
//! resumed session's Connect (`session/resume.rs`).

use bytes::Bytes;

use super::SendQueue;
use crate::wire::codec::varint_len;

impl SendQueue {
    /// The first messages, whole and never sent, whose encodings (a varint
    /// length and the bytes) fit `budget`: early data. None once a fragment
    /// left.
    pub(crate) fn unsent_front(&self, budget: usize) -> Vec<Bytes> {
        let mut out = Vec::new();
        let mut used = 0;
        for m in self.messages.iter().take_while(|m| m.count == 0) {
            used += varint_len(m.data.len() as u64) + m.data.len();
            if self.cursor != 0 || used > budget {
                break;
            }
            out.push(m.data.clone());
        }
        out
    }

    /// The first `n` messages, never sent, reached the peer otherwise (as
    /// early data): settled as if acknowledged.
    pub(crate) fn settle_unsent(&mut self, n: usize) {
        for _ in 0..n {
            if self.cursor != 0 || self.messages.front().is_none_or(|m| m.count != 0) {
                return;
            }
            if let Some(m) = self.messages.pop_front() {
                self.buffered -= m.data.len();
                self.acknowledged += 1;
            }
        }
    }
}
