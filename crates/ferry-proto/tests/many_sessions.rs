//! Ten thousand sessions on one endpoint, idle but kept alive: every one
//! survives, and what an idle session costs in memory is measured (printed;
//! `cargo test -p ferry-proto --test many_sessions -- --nocapture`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ferry_proto::{Config, Event};
use ferry_sim::{LinkConfig, Network};

/// Counts the bytes this test binary holds on the heap.
struct Counting;

static HELD: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        HELD.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        HELD.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

const SESSIONS: usize = 10_000;

#[test]
fn ten_thousand_idle_sessions_stay_alive() {
    let config = Config {
        max_sessions: SESSIONS,
        // Every session comes from the one client address at once.
        max_handshakes_per_source: 0,
        ping_interval: Duration::from_secs(1),
        ..Config::default()
    };
    let mut net = Network::new(1);
    let client = net.add_node(config.clone()).unwrap();
    let server = net
        .add_node(Config {
            accept_incoming: true,
            ..config
        })
        .unwrap();
    net.set_path(
        client,
        server,
        LinkConfig::default().latency(Duration::from_millis(5)),
    );
    let before = HELD.load(Ordering::Relaxed);
    let addr = net.addr(server);
    for _ in 0..SESSIONS {
        let now = net.now();
        net.endpoint(client).connect(now, addr).unwrap();
    }
    let mut connected = (0, 0);
    net.run_until(Duration::from_secs(30), |net| {
        while let Some(e) = net.poll_event(client) {
            connected.0 += usize::from(matches!(e, Event::Connected { .. }));
        }
        while let Some(e) = net.poll_event(server) {
            connected.1 += usize::from(matches!(e, Event::Connected { .. }));
        }
        connected == (SESSIONS, SESSIONS)
    });
    assert_eq!(connected, (SESSIONS, SESSIONS));
    // Idle for ten keep-alive intervals: pings keep every session up.
    net.run_for(Duration::from_secs(10));
    let mut closed = 0;
    for node in [client, server] {
        while let Some(e) = net.poll_event(node) {
            closed += usize::from(matches!(e, Event::Closed { .. }));
        }
    }
    assert_eq!(closed, 0, "no idle session timed out");
    assert_eq!(net.endpoint(server).session_count(), SESSIONS);
    assert_eq!(net.endpoint(client).session_count(), SESSIONS);
    let held = HELD.load(Ordering::Relaxed).saturating_sub(before);
    let per_session = held / (2 * SESSIONS);
    println!(
        "{SESSIONS} idle sessions on each of two endpoints: {:.1} MiB held, {per_session} bytes per session",
        held as f64 / (1 << 20) as f64
    );
    // A bound, not a timing: an idle session must stay small.
    assert!(
        per_session < 16 * 1024,
        "{per_session} bytes per idle session"
    );
}
