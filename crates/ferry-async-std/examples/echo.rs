//! An echo server and a client in one process, on loopback.
//!
//! ```text
//! cargo run -p ferry-async-std --example echo                 # both, on 127.0.0.1
//! cargo run -p ferry-async-std --example echo -- server 127.0.0.1:4433
//! cargo run -p ferry-async-std --example echo -- client 127.0.0.1:4433
//! ```

use std::net::SocketAddr;

use ferry_async_std::{Endpoint, EndpointConfig, EndpointExt};

async fn serve(server: Endpoint) {
    while let Some(session) = server.accept().await {
        async_std::task::spawn(async move {
            while let Ok(message) = session.recv().await {
                if session.send(message).await.is_err() {
                    break;
                }
            }
        });
    }
}

async fn client(server: SocketAddr) -> Result<(), Box<dyn std::error::Error>> {
    let endpoint = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::default())?;
    let session = endpoint.connect(server).await?;
    for text in ["hello", "ferry", "on async-std"] {
        session.send(text.as_bytes().to_vec()).await?;
        let echo = session.recv().await?;
        println!(
            "sent {text:?}, got back {:?}",
            String::from_utf8_lossy(&echo)
        );
    }
    let big = vec![7u8; 1 << 20];
    session.send(big.clone()).await?;
    assert_eq!(session.recv().await?, big);
    println!(
        "a 1 MiB message came back intact; rtt {:?}",
        session.stats().rtt
    );
    session.close(0);
    endpoint.close().await;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    async_std::task::block_on(async {
        let args: Vec<String> = std::env::args().skip(1).collect();
        match args.first().map(String::as_str) {
            Some("server") => {
                let addr = args
                    .get(1)
                    .map_or("127.0.0.1:4433", String::as_str)
                    .parse()?;
                let server = Endpoint::bind(addr, EndpointConfig::server())?;
                println!("echo server on {}", server.local_addr());
                serve(server).await;
            }
            Some("client") => {
                let addr = args
                    .get(1)
                    .map_or("127.0.0.1:4433", String::as_str)
                    .parse()?;
                client(addr).await?;
            }
            _ => {
                let server = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::server())?;
                let addr = server.local_addr();
                async_std::task::spawn(serve(server));
                client(addr).await?;
            }
        }
        Ok(())
    })
}
