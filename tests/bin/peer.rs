//! A Ferry peer in its own process, for tests that kill it mid-session.
//!
//! ```text
//! ferry-test-peer connect ADDR   # connect, send "hello", print "ready", then idle
//! ferry-test-peer listen         # print "addr ADDR", accept one session, read a
//!                                # message, print "ready", then idle
//! ```
//!
//! It never closes a session: the test kills it, as a crash or `kill -9` would.

use std::io::Write;
use std::time::Duration;

use ferry_blocking::{Config, Endpoint, EndpointConfig};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut out = std::io::stdout();
    let endpoint;
    let _session;
    match args.first().map(String::as_str) {
        Some("connect") => {
            let addr = args
                .get(1)
                .and_then(|a| a.parse().ok())
                .expect("usage: ferry-test-peer connect ADDR");
            endpoint = Endpoint::bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::default())
                .expect("bind");
            let session = endpoint.connect(addr).expect("connect");
            session.send(&b"hello"[..]).expect("send");
            _session = session;
        }
        Some("listen") => {
            let config = Config {
                accept_incoming: true,
                ..Config::default()
            };
            endpoint = Endpoint::bind("127.0.0.1:0".parse().unwrap(), EndpointConfig::from(config))
                .expect("bind");
            writeln!(out, "addr {}", endpoint.local_addr()).unwrap();
            out.flush().unwrap();
            let session = endpoint.accept().expect("a session");
            session.recv().expect("a message");
            _session = session;
        }
        _ => {
            eprintln!("usage: ferry-test-peer connect ADDR | listen");
            std::process::exit(2);
        }
    }
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
