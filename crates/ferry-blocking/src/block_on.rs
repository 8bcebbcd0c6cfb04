//! Running one of `ferry-async`'s handle futures on the calling thread.

use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long a thread waiting in [`block_on`] spins (yielding the CPU between
/// checks) before it parks, when its last wait was that short or shorter. A
/// wake-up that comes during the spin costs the waker no system call and the
/// waiter no trip through the scheduler's sleep and wake-up (an
/// inter-processor interrupt, on another core): on a request and its answer,
/// most of the round trip.
pub(crate) const WAIT_SPIN: Duration = Duration::from_micros(100);

thread_local! {
    /// Whether this thread's next wait spins first: its last wait ended
    /// within [`WAIT_SPIN`]. A wait that lasted longer (a quiet session, an
    /// `accept` loop) parks at once next time, so idle threads burn nothing.
    static SPIN_NEXT: Cell<bool> = const { Cell::new(true) };
}

/// Wakes a thread parked in [`block_on`].
struct Unparker {
    thread: Thread,
    /// Set by a wake-up, cleared by the thread when it polls again; an unpark
    /// that comes without it (a stale waker's) is slept through.
    notified: AtomicBool,
}

impl Wake for Unparker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.notified.swap(true, Ordering::Release) {
            HANDED_OFF.set(true);
            self.thread.unpark();
        }
    }
}

thread_local! {
    /// This thread woke a thread waiting in [`block_on`] since it last asked
    /// ([`take_handed_off`]). The driver thread asks after each poll: the
    /// woken handle's next command is likely to follow soon.
    static HANDED_OFF: Cell<bool> = const { Cell::new(false) };
}

/// Whether the calling thread woke a thread waiting in [`block_on`] since the
/// last call; clears the mark.
pub(crate) fn take_handed_off() -> bool {
    HANDED_OFF.replace(false)
}

thread_local! {
    /// One waker per thread, reused by every call: `ferry-async` keeps a waker
    /// per waiting thread (it compares them with `will_wake`), so calls that
    /// time out over and over on a quiet session do not pile wakers up.
    static WAKER: (Arc<Unparker>, Waker) = {
        let unparker = Arc::new(Unparker {
            thread: thread::current(),
            notified: AtomicBool::new(false),
        });
        let waker = Waker::from(unparker.clone());
        (unparker, waker)
    };
}

/// The instant `timeout` from now; `None` (never) if that is not representable.
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Polls `future` on the calling thread, parking between polls, until it
/// completes or `deadline` passes (`None`: no deadline). The future is polled
/// at least once, so a deadline in the past makes a non-blocking attempt.
/// Before parking, the thread spins for up to [`WAIT_SPIN`] if its last wait
/// was that short.
///
/// On timeout the future is dropped: the handle futures of `ferry-async` are
/// cancel-safe, so nothing was taken or queued.
pub(crate) fn block_on_until<F: Future>(future: F, deadline: Option<Instant>) -> Option<F::Output> {
    WAKER.with(|(unparker, waker)| {
        let mut cx = Context::from_waker(waker);
        let mut future = pin!(future);
        // A wake-up meant for an earlier call; this call polls first anyway.
        unparker.notified.store(false, Ordering::Relaxed);
        loop {
            if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
                return Some(output);
            }
            // Spin a little if this thread's waits are short (an answer to a
            // request often comes within a round trip), then park until
            // woken; `park` may also return spuriously.
            let started = Instant::now();
            let spin_end = SPIN_NEXT.get().then(|| started + WAIT_SPIN);
            while !unparker.notified.swap(false, Ordering::Acquire) {
                let now = Instant::now();
                if deadline.is_some_and(|deadline| now >= deadline) {
                    SPIN_NEXT.set(now - started <= WAIT_SPIN);
                    return None;
                }
                if spin_end.is_some_and(|end| now < end) {
                    thread::yield_now();
                    continue;
                }
                match deadline {
                    None => thread::park(),
                    Some(deadline) => thread::park_timeout(deadline - now),
                }
            }
            SPIN_NEXT.set(started.elapsed() <= WAIT_SPIN);
        }
    })
}

/// Polls `future` on the calling thread until it completes.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    block_on_until(future, None).expect("no deadline, no timeout")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wake_from_another_thread_completes_the_future() {
        let flag = Arc::new(AtomicBool::new(false));
        let slot: Arc<std::sync::Mutex<Option<Waker>>> = Arc::default();
        let waker_slot = slot.clone();
        let set = flag.clone();
        let helper = thread::spawn(move || {
            thread::sleep(Duration::from_millis(20));
            set.store(true, Ordering::SeqCst);
            if let Some(w) = waker_slot.lock().unwrap().take() {
                w.wake();
            }
        });
        let out = block_on(std::future::poll_fn(|cx| {
            *slot.lock().unwrap() = Some(cx.waker().clone());
            if flag.load(Ordering::SeqCst) {
                Poll::Ready(7)
            } else {
                Poll::Pending
            }
        }));
        assert_eq!(out, 7);
        helper.join().unwrap();
    }

    #[test]
    fn a_deadline_ends_the_wait() {
        let start = Instant::now();
        let out = block_on_until(
            std::future::pending::<()>(),
            deadline_after(Duration::from_millis(30)),
        );
        assert!(out.is_none());
        assert!(start.elapsed() >= Duration::from_millis(30));
    }

    #[test]
    fn a_past_deadline_still_polls_once() {
        let out = block_on_until(std::future::ready(1), Some(Instant::now()));
        assert_eq!(out, Some(1));
    }
}
