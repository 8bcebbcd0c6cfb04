//! CPU time of this process: `getrusage(RUSAGE_SELF)`, user plus system,
//! every thread the process ever ran included, to the microsecond.

use std::time::Duration;

/// User plus system CPU time this process used so far; zero if the kernel
/// would not say.
pub(crate) fn process_cpu() -> Duration {
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage` for the call's duration.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    cpu_time(&usage)
}

/// User plus system CPU time of a resource usage report.
pub(crate) fn cpu_time(usage: &libc::rusage) -> Duration {
    let time = |t: libc::timeval| {
        Duration::from_secs(t.tv_sec.max(0) as u64) + Duration::from_micros(t.tv_usec.max(0) as u64)
    };
    time(usage.ru_utime) + time(usage.ru_stime)
}
