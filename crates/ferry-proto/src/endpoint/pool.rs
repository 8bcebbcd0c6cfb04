//! Large message buffers kept for reuse.
//!
//! A reassembled message is handed to the application as [`Bytes`]; once the
//! application drops it, its buffer comes back here instead of to the
//! allocator. Large buffers are what the allocator tends to give back to the
//! operating system, so a bulk transfer would otherwise fault in (and zero)
//! fresh pages for every message it receives. The pool is bounded: beyond
//! [`POOL_MAX_BYTES`] a returned buffer is freed as usual.

use std::sync::{Arc, Mutex, MutexGuard, Weak};

use bytes::Bytes;

/// Buffers smaller than this are left to the allocator.
pub(crate) const POOL_MIN_BUFFER: usize = 64 << 10;
/// Most bytes of idle buffers one pool keeps.
pub(crate) const POOL_MAX_BYTES: usize = 16 << 20;

#[derive(Debug, Default)]
struct Idle {
    buffers: Vec<Vec<u8>>,
    bytes: usize,
}

/// A pool of message buffers, shared by the sessions of one endpoint (clones
/// share it).
#[derive(Debug, Clone, Default)]
pub(crate) struct BufferPool(Arc<Mutex<Idle>>);

fn lock(idle: &Mutex<Idle>) -> MutexGuard<'_, Idle> {
    // Nothing panics while holding the lock; a poisoned pool is still sound.
    idle.lock().unwrap_or_else(|e| e.into_inner())
}

impl BufferPool {
    /// An empty buffer with room for at least `capacity` bytes: an idle one
    /// of at most about twice that, or a new one.
    pub(crate) fn take(&self, capacity: usize) -> Vec<u8> {
        if capacity >= POOL_MIN_BUFFER {
            // Rounded up, so that messages of about one size (their
            // fragments' headers vary by a few bytes) share buffers.
            let capacity = capacity.next_multiple_of(POOL_MIN_BUFFER);
            let mut idle = lock(&self.0);
            if let Some(i) = idle
                .buffers
                .iter()
                .position(|b| b.capacity() >= capacity && b.capacity() / 2 <= capacity)
            {
                let buffer = idle.buffers.swap_remove(i);
                idle.bytes -= buffer.capacity();
                return buffer;
            }
            return Vec::with_capacity(capacity);
        }
        Vec::with_capacity(capacity)
    }

    /// `buffer` as [`Bytes`]; a large one returns to the pool when the last
    /// `Bytes` referring to it is dropped.
    pub(crate) fn freeze(&self, buffer: Vec<u8>) -> Bytes {
        if buffer.capacity() >= POOL_MIN_BUFFER {
            Bytes::from_owner(Pooled {
                buffer,
                pool: Arc::downgrade(&self.0),
            })
        } else {
            Bytes::from(buffer)
        }
    }

    /// Bytes of idle buffers held.
    #[cfg(test)]
    pub(crate) fn idle_bytes(&self) -> usize {
        lock(&self.0).bytes
    }
}

/// A buffer lent to the application.
struct Pooled {
    buffer: Vec<u8>,
    pool: Weak<Mutex<Idle>>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buffer
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let Some(pool) = self.pool.upgrade() else {
            return;
        };
        let mut idle = lock(&pool);
        let capacity = self.buffer.capacity();
        if idle.bytes + capacity <= POOL_MAX_BYTES {
            let mut buffer = std::mem::take(&mut self.buffer);
            buffer.clear();
            idle.bytes += capacity;
            idle.buffers.push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_buffers_come_back_small_ones_do_not() {
        let pool = BufferPool::default();
        let mut big = pool.take(1 << 20);
        big.extend_from_slice(&[7; 1000]);
        let address = big.as_ptr();
        let message = pool.freeze(big);
        let copy = message.clone();
        drop(message);
        assert_eq!(pool.idle_bytes(), 0, "still referred to");
        assert_eq!(&copy[..], &[7; 1000][..]);
        drop(copy);
        assert!(pool.idle_bytes() >= 1 << 20);
        let again = pool.take(600 << 10);
        assert_eq!(again.as_ptr(), address, "reused");
        assert!(again.is_empty());
        assert_eq!(pool.idle_bytes(), 0);
        // Too large for what is asked: a new buffer.
        drop(pool.freeze(again));
        let smaller = pool.take(100 << 10);
        assert_ne!(smaller.as_ptr(), address);

        drop(pool.freeze(pool.take(1000)));
        assert!(pool.idle_bytes() >= 1 << 20, "small buffers are not kept");
    }

    #[test]
    fn the_pool_is_bounded_and_may_go_first() {
        let pool = BufferPool::default();
        let messages: Vec<Bytes> = (0..40).map(|_| pool.freeze(pool.take(1 << 20))).collect();
        drop(messages);
        assert!(pool.idle_bytes() <= POOL_MAX_BYTES);
        let late = pool.freeze(pool.take(1 << 20));
        drop(pool);
        drop(late);
    }
}
