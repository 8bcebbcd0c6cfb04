//! 200 concurrent client sessions against one server endpoint, each exchanging
//! messages, all exact; once per driver.

use std::sync::Arc;
use std::thread;

use bytes::Bytes;
use ferry_async::EndpointConfig;
use ferry_tests::harness::{Driver, Messages};

const SESSIONS: usize = 200;
const ROUNDS: usize = 5;

fn two_hundred_sessions_on_one_endpoint(driver: Driver) {
    let server = Arc::new(driver.bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::server()));
    let client = Arc::new(driver.bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::default()));
    let addr = server.local_addr();

    // The server echoes every message on every session, one thread per session.
    let acceptor = {
        let server = server.clone();
        thread::spawn(move || {
            let mut echoes = Vec::new();
            for _ in 0..SESSIONS {
                let session = server.accept().expect("session");
                echoes.push(thread::spawn(move || {
                    while let Ok(m) = session.recv() {
                        if session.send(m).is_err() {
                            break;
                        }
                    }
                }));
            }
            echoes
        })
    };

    let clients: Vec<_> = (0..SESSIONS)
        .map(|n| {
            let client = client.clone();
            thread::spawn(move || {
                let session = client.connect(addr).expect("connect");
                let mut sizes = Messages::new(n as u64, 64 << 10);
                for round in 0..ROUNDS {
                    let index = n * ROUNDS + round;
                    let size = sizes.next_size();
                    session.send(Messages::content(index, size)).expect("send");
                    let echo: Bytes = session.recv().expect("echo");
                    assert!(
                        Messages::check(index, size, &echo),
                        "session {n} round {round}"
                    );
                }
                session
            })
        })
        .collect();
    let sessions: Vec<_> = clients
        .into_iter()
        .map(|h| h.join().expect("client"))
        .collect();
    assert_eq!(server.session_count(), SESSIONS);
    for s in &sessions {
        s.close(0);
    }
    for echo in acceptor.join().expect("acceptor") {
        echo.join().expect("echo thread");
    }
    client.close();
    server.close();
}

macro_rules! many_sessions {
    ($($name:ident: $driver:ident,)*) => {$(
        #[test]
        fn $name() {
            two_hundred_sessions_on_one_endpoint(Driver::$driver);
        }
    )*};
}

many_sessions! {
    two_hundred_sessions_tokio: Tokio,
    two_hundred_sessions_async_std: AsyncStd,
    two_hundred_sessions_smol: Smol,
    two_hundred_sessions_blocking: Blocking,
}
