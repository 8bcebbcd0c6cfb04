//! A Ferry peer in its own process, for tests that kill it mid-session.
//!
//! ```text
//! ferry-test-peer connect ADDR   # connect, send "hello", print "ready", then idle
//! ferry-test-peer listen         # print "addr ADDR", accept one session, read a
//!                                # message, print "ready", then idle
//! ferry-test-peer diode-send ADDR  # open a diode session to ADDR, print "ready"
//!                                  # after the first megabyte, write forever
//! ```
//!
//! It never closes a session: the test kills it, as a crash or `kill -9` would.

use std::io::Write;
use std::time::Duration;

use ferry_blocking::{Config, Endpoint, EndpointConfig};
use ferry_diode::{DiodeSender, SocketOptions};
use ferry_tests::diode_fault_config;

/// A diode sender that writes until it is killed.
fn diode_send(to: std::net::SocketAddr) -> ! {
    let sender = DiodeSender::bind(
        "127.0.0.1:0".parse().unwrap(),
        to,
        diode_fault_config(),
        SocketOptions::default(),
    )
    .expect("bind the diode sender");
    let mut session = sender.open().expect("open a diode session");
    let chunk = vec![0x5a; 64 << 10];
    let mut written = 0usize;
    let mut told = false;
    loop {
        session.write_all(&chunk).expect("write");
        written += chunk.len();
        if !told && written >= 1 << 20 {
            session.flush().expect("flush");
            println!("ready");
            std::io::stdout().flush().unwrap();
            told = true;
        }
    }
}

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
        Some("diode-send") => {
            let addr = args
                .get(1)
                .and_then(|a| a.parse().ok())
                .expect("usage: ferry-test-peer diode-send ADDR");
            diode_send(addr);
        }
        _ => {
            eprintln!("usage: ferry-test-peer connect ADDR | listen | diode-send ADDR");
            std::process::exit(2);
        }
    }
    writeln!(out, "ready").unwrap();
    out.flush().unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}
