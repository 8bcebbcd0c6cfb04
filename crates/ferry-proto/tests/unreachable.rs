//! ICMP unreachable reports end a handshake early only when unambiguous.

use std::time::Instant;

use ferry_proto::{CloseReason, Config, Endpoint, Event, State};

fn closed_reasons(e: &mut Endpoint) -> Vec<CloseReason> {
    std::iter::from_fn(|| e.poll_event())
        .filter_map(|ev| match ev {
            Event::Closed { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

#[test]
fn a_lone_handshake_to_the_host_is_refused() {
    let now = Instant::now();
    let mut e = Endpoint::new(Config::default(), 1).unwrap();
    let id = e.connect(now, "192.0.2.1:9".parse().unwrap()).unwrap();
    e.connect(now, "192.0.2.2:9".parse().unwrap()).unwrap();
    e.handle_unreachable("192.0.2.1".parse().unwrap());
    assert_eq!(closed_reasons(&mut e), vec![CloseReason::Refused]);
    assert!(e.session(id).is_none());
    assert_eq!(
        e.session_count(),
        1,
        "the other host's session is untouched"
    );
}

#[test]
fn two_handshakes_to_the_host_are_ambiguous() {
    let now = Instant::now();
    let mut e = Endpoint::new(Config::default(), 2).unwrap();
    let a = e.connect(now, "192.0.2.1:9".parse().unwrap()).unwrap();
    e.connect(now, "192.0.2.1:10".parse().unwrap()).unwrap();
    e.handle_unreachable("192.0.2.1".parse().unwrap());
    assert!(closed_reasons(&mut e).is_empty());
    assert_eq!(e.session(a).unwrap().state(), State::Init);
}
