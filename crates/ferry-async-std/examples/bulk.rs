//! One session moving N MiB (default 1024) over loopback, with TCP over
//! loopback measured in the same run for comparison.
//!
//! ```text
//! cargo run --release -p ferry-async-std --example bulk [-- MiB]
//! ```

use std::time::Instant;

use async_std::io::{ReadExt, WriteExt};
use ferry_async_std::{Endpoint, EndpointConfig, EndpointExt};

const CHUNK: usize = 1 << 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    async_std::task::block_on(run())
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mib: usize = std::env::args().nth(1).map_or(Ok(1024), |a| a.parse())?;
    let total = (mib * CHUNK) as f64;

    // Ferry.
    let server = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::server())?;
    let client = Endpoint::bind("127.0.0.1:0".parse()?, EndpointConfig::default())?;
    let addr = server.local_addr();
    let receiver = async_std::task::spawn(async move {
        let session = server.accept().await.expect("a session");
        let mut got = 0usize;
        while got < mib * CHUNK {
            got += session.recv().await.expect("message").len();
        }
        got
    });
    let session = client.connect(addr).await?;
    let start = Instant::now();
    let chunk = bytes::Bytes::from(vec![0x5a; CHUNK]);
    for _ in 0..mib {
        session.send(chunk.clone()).await?;
    }
    let got = receiver.await;
    let ferry = start.elapsed();
    assert_eq!(got, mib * CHUNK);
    let stats = session.stats();

    // TCP, same size, same process.
    let listener = async_std::net::TcpListener::bind("127.0.0.1:0").await?;
    let taddr = listener.local_addr()?;
    let sink = async_std::task::spawn(async move {
        let (mut s, _) = listener.accept().await.expect("accept");
        let mut buf = vec![0u8; CHUNK];
        let mut got = 0usize;
        while got < mib * CHUNK {
            let n = s.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            got += n;
        }
        got
    });
    let mut tcp = async_std::net::TcpStream::connect(taddr).await?;
    let start = Instant::now();
    for _ in 0..mib {
        tcp.write_all(&chunk).await?;
    }
    tcp.flush().await?;
    let tgot = sink.await;
    let tcp_time = start.elapsed();
    assert_eq!(tgot, mib * CHUNK);

    let rate = |d: std::time::Duration| total / d.as_secs_f64() / 1e6;
    println!(
        "ferry-async-std  {mib} MiB in {ferry:.2?}: {:.0} MB/s ({} packets, {} retransmitted)",
        rate(ferry),
        stats.packets_sent,
        stats.retransmitted
    );
    println!(
        "tcp              {mib} MiB in {tcp_time:.2?}: {:.0} MB/s",
        rate(tcp_time)
    );
    println!(
        "ratio            {:.2} of TCP",
        rate(ferry) / rate(tcp_time)
    );
    Ok(())
}
