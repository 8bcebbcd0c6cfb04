//! An echo server and a client in one process, on loopback, on plain threads.
//!
//! ```text
//! cargo run -p ferry-blocking --example echo                 # both, on 127.0.0.1
//! cargo run -p ferry-blocking --example echo -- server 127.0.0.1:4433
//! cargo run -p ferry-blocking --example echo -- client 127.0.0.1:4433
//! ```

use std::net::SocketAddr;
use std::thread;

use ferry_blocking::{Endpoint, EndpointConfig};

/// Echoes every message of every session, a thread per session, until the
/// endpoint closes.
fn serve(server: Endpoint) {
    while let Some(session) = server.accept() {
        thread::spawn(move || {
            while let Ok(message) = session.recv() {
                if session.send(message).is_err() {
                    break;
                }
            }
        });
    }
}

fn client(server: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::default())?;
    let session = endpoint.connect(server)?;
    for text in ["hello", "ferry", "on plain threads"] {
        session.send(text.as_bytes().to_vec())?;
        let echo = session.recv()?;
        println!(
            "sent {text:?}, got back {:?}",
            String::from_utf8_lossy(&echo)
        );
    }
    let big = vec![7u8; 1 << 20];
    session.send(big.clone())?;
    assert_eq!(session.recv()?, big);
    println!(
        "a 1 MiB message came back intact; rtt {:?}",
        session.stats().rtt
    );
    session.close(0);
    endpoint.close();
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("server") => {
            let addr = args
                .get(1)
                .map_or("127.0.0.1:4433", String::as_str)
                .parse()?;
            let server = Endpoint::bind(addr, EndpointConfig::server())?;
            println!("echo server on {}", server.local_addr());
            serve(server);
        }
        Some("client") => {
            let addr = args
                .get(1)
                .map_or("127.0.0.1:4433", String::as_str)
                .parse()?;
            client(addr)?;
        }
        _ => {
            let server = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::server())?;
            let addr = server.local_addr();
            thread::spawn(move || serve(server));
            client(addr)?;
        }
    }
    Ok(())
}
