// A diode receiver fed arbitrary datagrams (fuzz target `diode_receiver`).
//
// `check_diode_receiver(data)`: `data` is a sequence of records (format in
// `shared.rs`: `step | flags | len | datagram`), fed to a diode `Receiver`
// (`diode_config`); flag `SEAL` (the only one read) overwrites the datagram's last four bytes with a valid
// CRC-32 so the fuzzer reaches the block logic. Decode jobs run inline after
// every datagram. After the last record the clock runs on for ten minutes.
// Checked throughout:
//
//   - `Data` only for a session that started and has not ended; nothing at all
//     of a session after its `SessionFinished` or `SessionLost`; at most one end
//     per session;
//   - `SessionFinished { bytes }` equals the bytes its `Data` events delivered;
//   - the bytes delivered never exceed the symbol bytes fed;
//   - `session_count() <= max_sessions`, and at most `blocks_in_flight()`
//     (`max_blocks_in_flight`, or twice `interleave_depth`) blocks held per
//     session (`blocks_held()`);
//   - after `handle_timeout(now)` the next deadline is later than `now`;
//   - ten quiet minutes after the last datagram no session is left.

use std::collections::BTreeMap;
use std::time::Instant;

use ferry_proto::diode::{DiodeConfig, DiodeSessionId, Receiver, ReceiverEvent};

use super::shared::{QUIET, SEAL, next_record, step_duration};

/// The diode receiver's settings under fuzzing: small, so limits are reached.
pub fn diode_config() -> DiodeConfig {
    DiodeConfig {
        block_size: 4096,
        max_blocks_in_flight: 4,
        max_sessions: 3,
        ..DiodeConfig::default()
    }
}

/// What a session did, as seen from the receiver's events.
#[derive(Debug, Default)]
struct DiodeLife {
    delivered: u64,
    ended: bool,
}

/// How far a run of [`check_diode_receiver`] got.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DiodeReached {
    /// Sessions reported finished.
    pub finished: usize,
    /// Sessions reported lost.
    pub lost: usize,
    /// Bytes delivered.
    pub bytes: u64,
}

/// Feeds `data` (records) to a diode receiver, checking every event.
pub fn check_diode_receiver(data: &[u8]) -> DiodeReached {
    let config = diode_config();
    let max_sessions = config.max_sessions;
    let max_blocks_in_flight = config.blocks_in_flight();
    let start = Instant::now();
    let mut now = start;
    let mut receiver = Receiver::new(config, now).expect("valid fuzzing config");
    let mut lives: BTreeMap<DiodeSessionId, DiodeLife> = BTreeMap::new();
    let mut reached = DiodeReached::default();
    let mut fed_symbol_bytes = 0u64;

    let mut drain = |receiver: &mut Receiver, now: Instant, reached: &mut DiodeReached| {
        receiver.decode_pending(now);
        while let Some(event) = receiver.poll_event() {
            match event {
                ReceiverEvent::SessionStarted { session } => {
                    assert!(
                        lives.insert(session, DiodeLife::default()).is_none(),
                        "session {session} started twice"
                    );
                }
                ReceiverEvent::Data { session, data } => {
                    let life = lives.get_mut(&session).expect("data before start");
                    assert!(!life.ended, "data after the end of {session}");
                    life.delivered += data.len() as u64;
                    reached.bytes += data.len() as u64;
                }
                ReceiverEvent::SessionFinished { session, bytes } => {
                    let life = lives.get_mut(&session).expect("finish before start");
                    assert!(!life.ended, "{session} ended twice");
                    assert_eq!(life.delivered, bytes, "finished with a different length");
                    life.ended = true;
                    reached.finished += 1;
                }
                ReceiverEvent::SessionLost { session, .. } => {
                    // A session refused at its first datagram never started.
                    let life = lives.entry(session).or_default();
                    assert!(!life.ended, "{session} ended twice");
                    life.ended = true;
                    reached.lost += 1;
                }
                ReceiverEvent::HeartbeatMissing { .. } | ReceiverEvent::HeartbeatRecovered => {}
            }
        }
        assert!(receiver.session_count() <= max_sessions);
        assert!(
            receiver.blocks_held() <= max_sessions * max_blocks_in_flight,
            "{} blocks held",
            receiver.blocks_held()
        );
    };

    let run_until = |receiver: &mut Receiver,
                     now: &mut Instant,
                     until: Instant,
                     drain: &mut dyn FnMut(&mut Receiver, Instant, &mut DiodeReached),
                     reached: &mut DiodeReached| {
        while let Some(deadline) = receiver.poll_timeout() {
            if deadline > until {
                break;
            }
            *now = (*now).max(deadline);
            receiver.handle_timeout(*now);
            drain(receiver, *now, reached);
            if let Some(next) = receiver.poll_timeout() {
                assert!(next > *now, "deadline {next:?} not after now {now:?}: a driver would spin");
            }
        }
        *now = (*now).max(until);
    };

    let mut input = data;
    while let Some((step, flags, bytes)) = next_record(&mut input) {
        let until = now + step_duration(step);
        run_until(&mut receiver, &mut now, until, &mut drain, &mut reached);
        let mut datagram = bytes.to_vec();
        if flags & SEAL != 0 && datagram.len() >= 4 {
            ferry_proto::diode::wire::seal(&mut datagram);
        }
        if let Ok(ferry_proto::diode::wire::DiodePacket::Symbol { symbol, .. }) =
            ferry_proto::diode::wire::decode(&datagram)
        {
            fed_symbol_bytes += symbol.len() as u64;
        }
        receiver.handle_datagram(now, &datagram);
        drain(&mut receiver, now, &mut reached);
        assert!(
            reached.bytes <= fed_symbol_bytes,
            "delivered {} bytes from {} bytes of symbols",
            reached.bytes,
            fed_symbol_bytes
        );
    }
    let until = now + QUIET;
    run_until(&mut receiver, &mut now, until, &mut drain, &mut reached);
    assert_eq!(receiver.session_count(), 0, "sessions left after ten quiet minutes");
    reached
}
