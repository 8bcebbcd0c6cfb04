//! What only the blocking API has, over real sockets on loopback: the
//! `_timeout` forms, a send that blocks the thread under backpressure, many
//! threads sharing one session, and the driver thread's end.
//!
//! The scenarios every driver shares (messages, datagrams, bind and connect
//! errors, closing and dropping) run on this driver too, from the workspace's
//! `tests/conformance.rs`.

use std::collections::HashMap;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use ferry_blocking::{
    AcceptTimeout, CloseReason, Config, Endpoint, EndpointConfig, RecvError, SendError, State,
};

fn local() -> SocketAddr {
    "127.0.0.1:0".parse().unwrap()
}

/// Runs `test` on a thread of its own and fails if it takes longer than
/// `secs`: a blocking call that never returns is a failure, not a hung run.
fn within<T: Send + 'static>(secs: u64, test: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let _ = tx.send(test());
    });
    match rx.recv_timeout(Duration::from_secs(secs)) {
        Ok(value) => {
            worker.join().unwrap();
            value
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            // The test panicked: report its panic.
            std::panic::resume_unwind(worker.join().unwrap_err())
        }
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test still blocked after {secs} s"),
    }
}

/// A server, a client and one established session seen from both sides.
fn pair(
    server_config: EndpointConfig,
    client_config: EndpointConfig,
) -> (
    Endpoint,
    Endpoint,
    ferry_blocking::Session,
    ferry_blocking::Session,
) {
    let server = Endpoint::bind(local(), server_config).unwrap();
    let client = Endpoint::bind(local(), client_config).unwrap();
    let session = client.connect(server.local_addr()).unwrap();
    let incoming = server.accept().unwrap();
    (server, client, session, incoming)
}

#[test]
fn recv_timeout_times_out_on_a_silent_session() {
    within(30, || {
        let (_server, _client, session, incoming) =
            pair(EndpointConfig::server(), EndpointConfig::default());
        let start = Instant::now();
        assert_eq!(
            incoming.recv_timeout(Duration::from_millis(200)),
            Err(RecvError::Timeout)
        );
        let waited = start.elapsed();
        assert!(waited >= Duration::from_millis(200), "{waited:?}");
        assert!(waited < Duration::from_secs(3), "{waited:?}");
        assert_eq!(
            incoming.recv_datagram_timeout(Duration::from_millis(50)),
            Err(RecvError::Timeout)
        );
        // A zero timeout only looks.
        assert_eq!(
            incoming.recv_timeout(Duration::ZERO),
            Err(RecvError::Timeout)
        );
        // Many short timeouts in a row, as a polling loop would do.
        for _ in 0..50 {
            assert_eq!(
                incoming.recv_timeout(Duration::from_millis(1)),
                Err(RecvError::Timeout)
            );
        }
        assert_eq!(session.state(), State::Established);

        // A timed-out receive took nothing: the next message is the next one.
        session.send(&b"after"[..]).unwrap();
        assert_eq!(
            &incoming.recv_timeout(Duration::from_secs(5)).unwrap()[..],
            b"after"
        );
    });
}

#[test]
fn accept_timeout_then_closed() {
    within(30, || {
        let server = Endpoint::bind(local(), EndpointConfig::server()).unwrap();
        let start = Instant::now();
        assert!(matches!(
            server.accept_timeout(Duration::from_millis(100)),
            Err(AcceptTimeout)
        ));
        assert!(start.elapsed() >= Duration::from_millis(100));

        let client = Endpoint::bind(local(), EndpointConfig::default()).unwrap();
        let session = client.connect(server.local_addr()).unwrap();
        let incoming = server
            .accept_timeout(Duration::from_secs(5))
            .unwrap()
            .unwrap();
        assert_eq!(incoming.id(), session.id());

        // A blocked accept returns None when another thread closes the endpoint.
        let acceptor = {
            let server = server.clone();
            thread::spawn(move || server.accept().is_none())
        };
        thread::sleep(Duration::from_millis(50));
        server.close();
        assert!(acceptor.join().unwrap());
        assert!(matches!(
            server.accept_timeout(Duration::from_secs(1)),
            Ok(None)
        ));
    });
}

/// Message `seq` of `size` bytes: the sequence number, then a pattern.
fn numbered(seq: u64, size: usize) -> Vec<u8> {
    let mut m = vec![(seq % 251) as u8; size.max(8)];
    m[..8].copy_from_slice(&seq.to_be_bytes());
    m
}

fn number_of(message: &[u8]) -> u64 {
    u64::from_be_bytes(message[..8].try_into().unwrap())
}

#[test]
fn send_blocks_under_backpressure_and_resumes() {
    within(60, || {
        const SIZE: usize = 32 << 10;
        const COUNT: u64 = 64;
        // The receiver holds about two messages before its application reads;
        // the sender buffers four.
        let mut receiver = Config {
            accept_incoming: true,
            max_message_size: 64 << 10,
            ..Config::default()
        };
        receiver.recv_window = receiver.min_recv_window();
        let sender = Config {
            send_buffer: 4 * SIZE,
            ..Config::default()
        };
        let (_server, _client, session, incoming) =
            pair(EndpointConfig::from(receiver), EndpointConfig::from(sender));

        // Fill the window and the buffer: a send then times out, unqueued.
        let mut queued = 0;
        loop {
            match session.send_timeout(numbered(queued, SIZE), Duration::from_millis(250)) {
                Ok(()) => queued += 1,
                Err(SendError::Timeout) => break,
                Err(e) => panic!("{e}"),
            }
            assert!(queued < COUNT, "no backpressure after {queued} messages");
        }
        assert!(queued >= 4, "only {queued} messages before backpressure");

        // A blocking send now waits for the reader.
        let progress = Arc::new(AtomicUsize::new(0));
        let writer = {
            let session = session.clone();
            let progress = progress.clone();
            thread::spawn(move || {
                for seq in queued..COUNT {
                    session.send(numbered(seq, SIZE)).unwrap();
                    progress.fetch_add(1, Ordering::SeqCst);
                }
            })
        };
        // Blocked: no progress over a while, far from done. (Usually no
        // progress at all; a slow ack during the filling above may let a few
        // more messages in first.)
        thread::sleep(Duration::from_millis(300));
        let before = progress.load(Ordering::SeqCst);
        thread::sleep(Duration::from_millis(200));
        let after = progress.load(Ordering::SeqCst);
        assert_eq!(before, after, "send keeps returning with nobody reading");
        assert!(
            (after as u64) < COUNT - queued - 4,
            "{after} sends returned with nobody reading"
        );

        // The reader starts: the writer resumes and every message arrives once, in order.
        for seq in 0..COUNT {
            let m = incoming.recv_timeout(Duration::from_secs(10)).unwrap();
            assert_eq!(m.len(), SIZE);
            assert_eq!(number_of(&m), seq);
        }
        writer.join().unwrap();
        assert_eq!(progress.load(Ordering::SeqCst) as u64, COUNT - queued);
        assert_eq!(
            incoming.recv_timeout(Duration::from_millis(50)),
            Err(RecvError::Timeout)
        );
    });
}

#[test]
fn many_threads_share_one_session() {
    within(60, || {
        const THREADS: u64 = 6;
        const EACH: u64 = 200;
        let (_server, _client, session, incoming) =
            pair(EndpointConfig::server(), EndpointConfig::default());
        let received: Mutex<Vec<Vec<(u64, u64)>>> = Mutex::default();
        let taken = AtomicUsize::new(0);
        let total = (THREADS * EACH) as usize;
        thread::scope(|s| {
            // Writers share `&session`; readers share `&incoming`.
            for t in 0..THREADS {
                let session = &session;
                s.spawn(move || {
                    for i in 0..EACH {
                        let size = 8 + ((t * 7919 + i * 104_729) % 4000) as usize;
                        let mut m = numbered(t << 32 | i, size);
                        m.truncate(size);
                        session.send(m).unwrap();
                    }
                });
            }
            for _ in 0..THREADS {
                let (incoming, received, taken) = (&incoming, &received, &taken);
                s.spawn(move || {
                    let mut mine = Vec::new();
                    while taken.load(Ordering::SeqCst) < total {
                        match incoming.recv_timeout(Duration::from_millis(20)) {
                            Ok(m) => {
                                let n = number_of(&m);
                                mine.push((n >> 32, n & 0xffff_ffff));
                                taken.fetch_add(1, Ordering::SeqCst);
                            }
                            Err(RecvError::Timeout) => {}
                            Err(e) => panic!("{e}"),
                        }
                    }
                    received.lock().unwrap().push(mine);
                });
            }
        });
        let received = received.into_inner().unwrap();
        let mut seen: HashMap<u64, Vec<u64>> = HashMap::new();
        for mine in &received {
            // What one reader took of one writer's messages is in order.
            let mut last: HashMap<u64, u64> = HashMap::new();
            for &(t, i) in mine {
                if let Some(&prev) = last.get(&t) {
                    assert!(i > prev, "writer {t}: {i} after {prev}");
                }
                last.insert(t, i);
                seen.entry(t).or_default().push(i);
            }
        }
        assert_eq!(seen.len() as u64, THREADS);
        for (t, mut got) in seen {
            got.sort_unstable();
            assert_eq!(got, (0..EACH).collect::<Vec<_>>(), "writer {t}");
        }
    });
}

/// Whether `addr` can be bound again: the endpoint's socket is closed.
fn port_free(addr: SocketAddr) -> bool {
    UdpSocket::bind(addr).is_ok()
}

#[test]
fn dropping_the_endpoint_stops_its_driver_thread() {
    within(30, || {
        let (server, client, session, incoming) =
            pair(EndpointConfig::server(), EndpointConfig::default());
        session.send(vec![3; 5000]).unwrap();
        assert_eq!(incoming.recv().unwrap().len(), 5000);
        let addr = client.local_addr();
        assert!(!port_free(addr));

        // The session handle does not keep the endpoint alive: dropping the
        // endpoint closes it, and the driver thread ends and closes the socket.
        drop(client);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !port_free(addr) {
            assert!(
                Instant::now() < deadline,
                "the driver thread still holds {addr}"
            );
            thread::sleep(Duration::from_millis(5));
        }
        assert!(matches!(session.closed(), CloseReason::Local { .. }));
        assert!(matches!(incoming.closed(), CloseReason::Remote { .. }));
        assert!(matches!(
            session.send(vec![1]),
            Err(SendError::Closed(_) | SendError::EndpointClosed)
        ));

        // `close` returns only once the thread has ended: the port is free at once.
        let addr = server.local_addr();
        server.close();
        assert!(port_free(addr));
        server.close();
    });
}
