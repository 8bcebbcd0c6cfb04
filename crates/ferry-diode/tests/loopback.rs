//! The diode driver on loopback sockets: whole transfers, aborts, heartbeats
//! and the errors of `bind`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use ferry_diode::{
    DiodeConfig, DiodeError, DiodeReceiver, DiodeSender, LossReason, ReceiverEvent, SocketOptions,
};
use ferry_proto::diode::DiodeSessionId;

mod common;
use common::{PATIENCE, loopback, random_bytes};

fn fast_config() -> DiodeConfig {
    DiodeConfig {
        mtu: 9000,
        bandwidth: 2_000_000_000,
        max_burst: 512 * 1024,
        heartbeat: Duration::from_millis(200),
        ..DiodeConfig::default()
    }
}

fn options() -> SocketOptions {
    SocketOptions {
        threads: 2,
        ..SocketOptions::default()
    }
}

/// What the receiver said about one session.
#[derive(Debug, Default)]
struct Outcome {
    data: Vec<u8>,
    finished: Option<u64>,
    lost: Option<LossReason>,
}

/// Takes events until `done` holds for the outcomes gathered.
fn collect(
    receiver: &DiodeReceiver,
    outcomes: &mut HashMap<DiodeSessionId, Outcome>,
    done: impl Fn(&HashMap<DiodeSessionId, Outcome>) -> bool,
) {
    let deadline = Instant::now() + PATIENCE;
    while !done(outcomes) {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_event_timeout(left) {
            Ok(ReceiverEvent::SessionStarted { session }) => {
                outcomes.entry(session).or_default();
            }
            Ok(ReceiverEvent::Data { session, data }) => {
                outcomes
                    .entry(session)
                    .or_default()
                    .data
                    .extend_from_slice(&data);
            }
            Ok(ReceiverEvent::SessionFinished { session, bytes }) => {
                outcomes.entry(session).or_default().finished = Some(bytes);
            }
            Ok(ReceiverEvent::SessionLost { session, reason }) => {
                outcomes.entry(session).or_default().lost = Some(reason);
            }
            Ok(_) => {}
            Err(e) => panic!("no event ({e:?}); so far: {:?}", summary(outcomes)),
        }
    }
}

fn summary(
    outcomes: &HashMap<DiodeSessionId, Outcome>,
) -> Vec<(DiodeSessionId, usize, Option<u64>, Option<LossReason>)> {
    outcomes
        .iter()
        .map(|(id, o)| (*id, o.data.len(), o.finished, o.lost))
        .collect()
}

#[test]
fn several_sessions_arrive_intact() {
    const SESSIONS: u64 = 3;
    const LEN: usize = 20_000_000;
    let receiver = DiodeReceiver::bind(loopback(), fast_config(), options()).unwrap();
    let sender =
        DiodeSender::bind(loopback(), receiver.local_addr(), fast_config(), options()).unwrap();

    let expected: HashMap<DiodeSessionId, Vec<u8>> = std::thread::scope(|scope| {
        let writers: Vec<_> = (0..SESSIONS)
            .map(|i| {
                let mut session = sender.open().unwrap();
                scope.spawn(move || {
                    let data = random_bytes(i, LEN);
                    // Uneven writes, with a flush in the middle.
                    let (a, b) = data.split_at(LEN / 3 + 17);
                    session.write_all(a).unwrap();
                    session.flush().unwrap();
                    session.write_all(b).unwrap();
                    let id = session.id();
                    assert_eq!(session.finish().unwrap(), LEN as u64);
                    (id, data)
                })
            })
            .collect();
        let mut outcomes = HashMap::new();
        collect(&receiver, &mut outcomes, |o| {
            o.len() == SESSIONS as usize
                && o.values().all(|s| s.finished.is_some() || s.lost.is_some())
        });
        let expected: HashMap<_, _> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        for (id, outcome) in &outcomes {
            assert_eq!(outcome.lost, None, "session {id} lost");
            assert_eq!(outcome.finished, Some(LEN as u64), "session {id}");
            assert!(outcome.data == expected[id], "session {id}: bytes differ");
        }
        expected
    });
    assert_eq!(expected.len(), SESSIONS as usize);
    sender.close().unwrap();
    let stats = receiver.stats();
    assert_eq!(stats.protocol.sessions_finished, SESSIONS);
    assert_eq!(stats.protocol.sessions_lost, 0);
}

#[test]
fn an_aborted_session_is_lost_and_the_next_is_intact() {
    let receiver = DiodeReceiver::bind(loopback(), fast_config(), options()).unwrap();
    let sender =
        DiodeSender::bind(loopback(), receiver.local_addr(), fast_config(), options()).unwrap();
    let mut outcomes = HashMap::new();

    let mut doomed = sender.open().unwrap();
    let doomed_id = doomed.id();
    doomed.write_all(&random_bytes(1, 1_500_000)).unwrap();
    doomed.flush().unwrap();
    // The receiver must know the session before the abort means anything.
    collect(&receiver, &mut outcomes, |o| o.contains_key(&doomed_id));
    doomed.abort();
    collect(&receiver, &mut outcomes, |o| {
        o.get(&doomed_id).is_some_and(|s| s.lost.is_some())
    });
    assert_eq!(outcomes[&doomed_id].lost, Some(LossReason::Aborted));
    assert_eq!(outcomes[&doomed_id].finished, None);

    let data = random_bytes(2, 3_000_000);
    let mut next = sender.open().unwrap();
    let next_id = next.id();
    next.write_all(&data).unwrap();
    assert_eq!(next.finish().unwrap(), data.len() as u64);
    collect(&receiver, &mut outcomes, |o| {
        o.get(&next_id)
            .is_some_and(|s| s.finished.is_some() || s.lost.is_some())
    });
    assert_eq!(outcomes[&next_id].lost, None);
    assert_eq!(outcomes[&next_id].finished, Some(data.len() as u64));
    assert!(outcomes[&next_id].data == data);

    // Dropping a writer without finishing aborts too.
    let mut dropped = sender.open().unwrap();
    let dropped_id = dropped.id();
    dropped.write_all(&random_bytes(3, 600_000)).unwrap();
    dropped.flush().unwrap();
    collect(&receiver, &mut outcomes, |o| o.contains_key(&dropped_id));
    drop(dropped);
    collect(&receiver, &mut outcomes, |o| {
        o.get(&dropped_id).is_some_and(|s| s.lost.is_some())
    });
    assert_eq!(outcomes[&dropped_id].lost, Some(LossReason::Aborted));
}

#[test]
fn heartbeat_missing_then_recovered() {
    let config = DiodeConfig {
        heartbeat: Duration::from_millis(100),
        ..DiodeConfig::default()
    };
    let receiver = DiodeReceiver::bind(loopback(), config.clone(), options()).unwrap();
    let sender =
        DiodeSender::bind(loopback(), receiver.local_addr(), config.clone(), options()).unwrap();
    let deadline = Instant::now() + PATIENCE;
    while receiver.stats().protocol.heartbeats == 0 {
        assert!(Instant::now() < deadline, "no heartbeat arrived");
        std::thread::sleep(Duration::from_millis(10));
    }
    sender.close().unwrap();

    let wait_for = |want: fn(&ReceiverEvent) -> bool| loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match receiver.recv_event_timeout(left) {
            Ok(event) if want(&event) => return event,
            Ok(_) => {}
            Err(e) => panic!("the expected event did not come: {e:?}"),
        }
    };
    let missing = wait_for(|e| matches!(e, ReceiverEvent::HeartbeatMissing { .. }));
    let ReceiverEvent::HeartbeatMissing { silent_for } = missing else {
        unreachable!()
    };
    assert!(silent_for >= config.heartbeat, "{silent_for:?}");

    let _again = DiodeSender::bind(loopback(), receiver.local_addr(), config, options()).unwrap();
    wait_for(|e| matches!(e, ReceiverEvent::HeartbeatRecovered));
}

#[test]
fn bind_errors_say_what_to_do() {
    let receiver = DiodeReceiver::bind(loopback(), DiodeConfig::default(), options()).unwrap();
    let taken = receiver.local_addr();
    let err = DiodeReceiver::bind(taken, DiodeConfig::default(), options()).unwrap_err();
    assert!(
        matches!(err, DiodeError::AddrInUse(a) if a == taken),
        "{err}"
    );
    assert!(err.to_string().contains("already in use"), "{err}");

    let bad = DiodeConfig {
        repair_percentage: 5000,
        ..DiodeConfig::default()
    };
    let err = DiodeSender::bind(loopback(), taken, bad, options()).unwrap_err();
    assert!(matches!(err, DiodeError::Config(_)), "{err}");
    assert!(err.to_string().contains("`repair_percentage`"), "{err}");

    let err = DiodeSender::bind(
        loopback(),
        "[::1]:9".parse().unwrap(),
        DiodeConfig::default(),
        options(),
    )
    .unwrap_err();
    assert!(matches!(err, DiodeError::AddressFamily { .. }), "{err}");
}

#[test]
fn too_many_sessions_is_refused_and_a_closed_receiver_ends_events() {
    let config = DiodeConfig {
        max_sessions: 1,
        ..DiodeConfig::default()
    };
    let receiver = DiodeReceiver::bind(loopback(), config.clone(), options()).unwrap();
    let sender = DiodeSender::bind(loopback(), receiver.local_addr(), config, options()).unwrap();
    let first = sender.open().unwrap();
    let err = sender.open().unwrap_err();
    assert!(matches!(err, DiodeError::TooManySessions(1)), "{err}");
    assert!(err.to_string().contains("`max_sessions`"), "{err}");
    first.abort();
    sender.open().unwrap().abort();
    drop(sender);

    receiver.close();
    loop {
        match receiver.recv_event_timeout(PATIENCE) {
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e, RecvTimeoutError::Disconnected);
                break;
            }
        }
    }
    assert!(receiver.recv_event().is_none());
}
