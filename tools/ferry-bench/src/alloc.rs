//! Memory held by this process: the heap bytes a [`CountingAllocator`]
//! counted when the executable installed it (`ferry-bench` does), else the
//! resident set size the kernel reports.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the bytes it holds so that the `sessions`
/// suite can report the memory per idle session to the byte.
///
/// An executable that runs the suites installs it with
/// `#[global_allocator] static ALLOCATOR: ferry_bench::CountingAllocator =
/// ferry_bench::CountingAllocator;`. Without it the figure is the growth of
/// the resident set instead, coarser (whole pages, and memory the allocator
/// keeps after a free).
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAllocator;

static HELD: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter is only arithmetic.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract is the system allocator's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// How [`held_bytes`] measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Measure {
    /// Heap bytes counted by [`CountingAllocator`].
    Heap,
    /// The resident set size, from `/proc/self/statm`.
    Resident,
}

impl Measure {
    /// How the figure was taken, for a row's note.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Self::Heap => "heap bytes counted",
            Self::Resident => "growth of the resident set: the allocator is not counting",
        }
    }
}

/// The memory this process holds now, and how it was measured; `None` when
/// neither the counting allocator nor the kernel can say.
pub(crate) fn held_bytes() -> Option<(usize, Measure)> {
    // With the counting allocator installed, something is always allocated
    // by the time a suite runs (the arguments, the report).
    match HELD.load(Ordering::Relaxed) {
        0 => resident_bytes().map(|b| (b, Measure::Resident)),
        held => Some((held, Measure::Heap)),
    }
}

/// The resident set size (Linux); `None` elsewhere.
fn resident_bytes() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(page).ok().map(|page| pages * page)
}
